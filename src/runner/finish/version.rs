//! The gateway's version, from the best source that has it: `/hello` (asked before the load),
//! else the gateway log's start line (`Tyk Gateway started (v2.9.4)`, parsed by the evidence
//! collector under compose), else the image tag. The source is always named.

use crate::summary::GatewayInfo;

/// Fills `gateway.version` from the evidence JSON when `/hello` gave none.
pub fn fill_version_from_evidence(gateway: &mut GatewayInfo, environment: &serde_json::Value) {
    if gateway.version.is_some() {
        return;
    }
    let service = environment.get("gateway");
    let text = |key: &str| {
        service
            .and_then(|g| g.get(key))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(version) = text("version_from_log") {
        gateway.version = Some(version);
        gateway.version_source = "gateway log".into();
    } else if let Some(tag) = text("image").and_then(|image| image_tag(&image)) {
        gateway.version = Some(tag);
        gateway.version_source = "image tag".into();
    }
    gateway.is_stub = gateway
        .version
        .as_deref()
        .is_some_and(|v| v.starts_with("stub/"));
}

/// `tykio/tyk-gateway:v2.9.4` → `v2.9.4`; no tag (or `latest`) → none. A registry port
/// (`host:5000/tyk`) is not a tag.
pub fn image_tag(image: &str) -> Option<String> {
    let name = image.split('@').next()?;
    let last = name.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    (!tag.is_empty() && tag != "latest").then(|| tag.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown() -> GatewayInfo {
        GatewayInfo {
            url: "http://gw".into(),
            version: None,
            version_source: "unknown".into(),
            is_stub: false,
        }
    }

    #[test]
    fn the_log_comes_before_the_image_tag_and_hello_before_both() {
        let env = serde_json::json!({"gateway": {"version_from_log": "v2.9.4.4", "image": "tykio/tyk-gateway:v2.9.4"}});
        let mut g = unknown();
        fill_version_from_evidence(&mut g, &env);
        assert_eq!(
            (g.version.as_deref(), g.version_source.as_str()),
            (Some("v2.9.4.4"), "gateway log")
        );

        let env = serde_json::json!({"gateway": {"version_from_log": null, "image": "tykio/tyk-gateway:v3.1.0"}});
        let mut g = unknown();
        fill_version_from_evidence(&mut g, &env);
        assert_eq!(
            (g.version.as_deref(), g.version_source.as_str()),
            (Some("v3.1.0"), "image tag")
        );

        let mut g = GatewayInfo {
            version: Some("v5.8.15".into()),
            version_source: "/hello".into(),
            ..unknown()
        };
        fill_version_from_evidence(&mut g, &env);
        assert_eq!(g.version_source, "/hello");

        let mut g = unknown();
        fill_version_from_evidence(&mut g, &serde_json::json!({}));
        assert_eq!(g.version, None);
    }

    #[test]
    fn image_tags_are_read_without_mistaking_a_registry_port() {
        assert_eq!(
            image_tag("tykio/tyk-gateway:v2.9.4").as_deref(),
            Some("v2.9.4")
        );
        assert_eq!(image_tag("localhost:5000/tyk-gateway"), None);
        assert_eq!(
            image_tag("reload-repro:verdict").as_deref(),
            Some("verdict")
        );
        assert_eq!(image_tag("tyk:latest"), None);
        assert_eq!(image_tag("tyk@sha256:abc"), None);
    }
}
