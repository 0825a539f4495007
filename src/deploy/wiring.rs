//! What the compose file says about how services reach each other, read from the settings
//! themselves rather than restated: the port of each service is the one the other services'
//! URLs use (`--redis=redis://redis:6379`, `http://dashboard:9000`), checked against the port
//! the service itself listens on; a `service_healthy` dependency becomes a wait on the
//! dependency's own healthcheck, pointed at its Service instead of loopback.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use super::compose::{Compose, Service};

/// The gateway's listen port variable (Tyk's `listen_port`).
const TYK_LISTEN_PORT: &str = "TYK_GW_LISTENPORT";

/// Every string a service is configured with: its command, then its environment values.
fn settings(service: &Service) -> impl Iterator<Item = &str> {
    service
        .command
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(service.environment.values().map(|v| v.value.as_str()))
}

/// A URL in one setting: the whole string, or what follows `=` in `--flag=URL`.
fn url_in(setting: &str) -> Option<url::Url> {
    let candidate = match setting.strip_prefix("--") {
        Some(flag) => flag.split_once('=')?.1,
        None => setting,
    };
    if !candidate.contains("://") {
        return None;
    }
    url::Url::parse(candidate).ok()
}

/// For every service that another service reaches by URL: the ports used.
pub fn service_ports(compose: &Compose) -> BTreeMap<String, BTreeSet<u16>> {
    let mut ports: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for service in compose.services.values() {
        for url in settings(service).filter_map(url_in) {
            let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
                continue;
            };
            if compose.services.contains_key(host) {
                ports.entry(host.to_owned()).or_default().insert(port);
            }
        }
    }
    ports
}

/// The ports a service says it listens on: `--listen=HOST:PORT` and `TYK_GW_LISTENPORT`.
pub fn listen_ports(service: &Service) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for arg in service.command.iter().flatten() {
        if let Some(addr) = arg.strip_prefix("--listen=")
            && let Some((_, port)) = addr.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            out.insert(port);
        }
    }
    if let Some(port) = service.environment.get(TYK_LISTEN_PORT)
        && let Ok(port) = port.value.parse()
    {
        out.insert(port);
    }
    out
}

/// The one port clients use for `name`, checked against what it listens on.
pub fn port_of(compose: &Compose, name: &str) -> anyhow::Result<u16> {
    let used = service_ports(compose).remove(name).unwrap_or_default();
    let Some(&port) = used.first() else {
        bail!("no service reaches `{name}` by a URL with its host name, so its port is unknown");
    };
    if used.len() > 1 {
        bail!(
            "services reach `{name}` on several ports {used:?}: one port per service is supported"
        );
    }
    let listens = compose
        .services
        .get(name)
        .map(listen_ports)
        .unwrap_or_default();
    if !listens.is_empty() && !listens.contains(&port) {
        bail!(
            "other services reach `{name}` on port {port} but it listens on {listens:?}: \
             fix the compose file"
        );
    }
    Ok(port)
}

/// A dependency's healthcheck run from another pod: loopback URLs pointed at `host`, and
/// `redis-cli` given `-h host`. None when the check cannot be run remotely.
pub fn remote_check(test: &[String], host: &str) -> Option<Vec<String>> {
    let mut changed = false;
    let mut out: Vec<String> = test
        .iter()
        .map(|arg| {
            for local in [
                "://127.0.0.1:",
                "://127.0.0.1/",
                "://localhost:",
                "://localhost/",
            ] {
                if arg.contains(local) {
                    changed = true;
                    let remote = local.replace("127.0.0.1", host).replace("localhost", host);
                    return arg.replacen(local, &remote, 1);
                }
            }
            arg.clone()
        })
        .collect();
    if out.first().map(String::as_str) == Some("redis-cli") && !out.iter().any(|a| a == "-h") {
        out.splice(1..1, ["-h".to_owned(), host.to_owned()]);
        changed = true;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::compose::parse;

    const FILE: &str = r#"
services:
  redis:
    image: r
  dashboard:
    image: k
    command: [dashboard, --listen=0.0.0.0:9000, --redis=redis://redis:6379]
  gateway:
    image: t
    environment:
      TYK_GW_LISTENPORT: "8080"
      TYK_GW_POLICIES_POLICYCONNECTIONSTRING: http://dashboard:9000
  runner:
    image: k
    command: [run, --gateway=http://gateway:8080, --dashboard=http://dashboard:9000, --out=/results]
"#;

    #[test]
    fn ports_come_from_the_urls_that_name_each_service() {
        let c = parse(FILE, &|_| None).unwrap();
        let ports = service_ports(&c);
        assert_eq!(ports["redis"], BTreeSet::from([6379]));
        assert_eq!(ports["dashboard"], BTreeSet::from([9000]));
        assert_eq!(ports["gateway"], BTreeSet::from([8080]));
        assert!(!ports.contains_key("runner"));
        assert_eq!(port_of(&c, "gateway").unwrap(), 8080);
        assert!(port_of(&c, "runner").is_err());
    }

    #[test]
    fn a_port_the_service_does_not_listen_on_is_an_error() {
        let c = parse(
            &FILE.replace("--listen=0.0.0.0:9000", "--listen=0.0.0.0:9001"),
            &|_| None,
        )
        .unwrap();
        let err = port_of(&c, "dashboard").unwrap_err().to_string();
        assert!(err.contains("port 9000") && err.contains("9001"), "{err}");
    }

    #[test]
    fn healthchecks_are_pointed_at_the_service() {
        let curl: Vec<String> = ["curl", "-fsS", "http://127.0.0.1:9000/health"]
            .map(String::from)
            .into();
        assert_eq!(
            remote_check(&curl, "dashboard").unwrap(),
            ["curl", "-fsS", "http://dashboard:9000/health"]
        );
        let redis: Vec<String> = ["redis-cli", "ping"].map(String::from).into();
        assert_eq!(
            remote_check(&redis, "redis").unwrap(),
            ["redis-cli", "-h", "redis", "ping"]
        );
        let other: Vec<String> = ["true"].map(String::from).into();
        assert_eq!(remote_check(&other, "x"), None);
    }
}
