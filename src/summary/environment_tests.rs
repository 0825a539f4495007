//! The typed `environment` reads what the untyped one wrote, and writes it back unchanged.

use super::*;
use crate::summary::Summary;

/// A real `make selftest` summary (v2.9.4 stub, one gateway), written while `environment` was
/// an untyped JSON value; events and samples trimmed.
const OLD_SUMMARY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/corpus/summary/ok-compose-selftest-v294.json"
));

fn old_environment_json() -> serde_json::Value {
    let summary: serde_json::Value = serde_json::from_str(OLD_SUMMARY).expect("fixture is JSON");
    summary["environment"].clone()
}

#[test]
fn an_old_summary_parses_with_its_evidence_typed() {
    let summary: Summary = serde_json::from_str(OLD_SUMMARY).expect("old summary parses");
    let env = summary.environment.expect("environment");
    let gateway = env.gateway.as_ref().expect("gateway");
    assert_eq!(gateway.image.as_deref(), Some("reload-repro:ux"));
    assert!(
        gateway
            .image_id
            .as_deref()
            .is_some_and(|i| i.starts_with("sha256:"))
    );
    assert_eq!(
        env.redis.as_ref().and_then(|r| r.image.as_deref()),
        Some("redis:7.0.15-bookworm")
    );
    assert_eq!(
        env.logs.get("gateway").map(String::as_str),
        Some("gateway.log.gz")
    );
    assert_eq!(env.logs_lines_left_out.get("gateway"), Some(&10_824));
    let timeline = env.gateway_timeline().expect("timeline");
    assert_eq!(timeline.events.len(), 12);
    assert_eq!(timeline.events[0].kind, ReloadEventKind::PoliciesFound);
    assert_eq!(env.gateway_stats.as_ref().map(|s| s.samples.len()), Some(6));
    assert!(env.gateways.is_empty());
}

#[test]
fn the_old_json_is_written_back_key_for_key() {
    let old = old_environment_json();
    let typed: Environment = serde_json::from_value(old.clone()).expect("typed");
    assert_eq!(serde_json::to_value(&typed).expect("json"), old);
}

#[test]
fn typed_output_has_the_key_order_of_the_untyped_object() {
    // The untyped value sorted its keys; declaring fields alphabetically keeps the bytes.
    let mut typed: Environment = serde_json::from_value(old_environment_json()).expect("typed");
    typed.logs_truncated = vec!["gateway".into()];
    typed.gateways = vec![GatewayEvidence {
        container: "p-gateway-2".into(),
        container_number: Some(2),
        gateway: 2,
        identity: typed.gateway.clone(),
        log: Some("gateway-2.log.gz".into()),
        reload_timeline: typed.reload_timeline.clone(),
        stats: typed.gateway_stats.clone(),
    }];
    let direct = serde_json::to_string_pretty(&typed).expect("typed json");
    let through_value =
        serde_json::to_string_pretty(&serde_json::to_value(&typed).expect("value")).expect("json");
    assert_eq!(direct, through_value);
}

#[test]
fn unknown_keys_are_refused_like_everywhere_else_in_the_summary() {
    let mut old = old_environment_json();
    old["surprise"] = 1.into();
    let err = serde_json::from_value::<Environment>(old).expect_err("unknown key refused");
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn the_timeline_of_a_fleet_is_gateway_ones() {
    let timeline = ReloadTimeline {
        reloads_completed: 3,
        ..Default::default()
    };
    let env = Environment {
        gateways: vec![GatewayEvidence {
            gateway: 1,
            reload_timeline: Some(timeline.clone()),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(env.gateway_timeline(), Some(&timeline));
    assert_eq!(env.service("gateway"), None);
}
