//! A run against a fleet of gateways on one Redis and one mock (issue 13): every scenario
//! creates its key on every gateway, each gateway gets its own result, and the verdict names
//! the gateway that lost policies and none of the healthy ones.
//!
//! Three stubs on loopback: two `fixed`, one `v2.9.4` forced to lose triggers (its reload costs
//! 6 s, longer than the 3 s burst, so policies added after its first fetch are never loaded —
//! see `run.rs` for why that makes the loss certain). Reloads sleep instead of burning CPU so
//! three stubs and the runner fit on two cores.

use reload_repro::summary::{Outcome, ScenarioRecord, Verdict};

use super::support::TestRedis;
use super::support::stack::{
    FLEET_HEALTHY_STUB as HEALTHY, FLEET_LOSING_STUB as LOSES_TRIGGERS, Served, read_summary,
    run_with, start_dashboard, start_stub,
};

async fn fleet(redis: &TestRedis, dashboard: &Served, modes: &[&[&str]]) -> Vec<Served> {
    let mut gateways = Vec::new();
    for flags in modes {
        gateways.push(
            start_stub(&redis.url, &dashboard.url, flags)
                .await
                .expect("stub starts"),
        );
    }
    gateways
}

fn argv(dashboard: &Served, gateways: &[Served], out: &std::path::Path) -> Vec<String> {
    let mut argv: Vec<String> = vec!["run".into()];
    for g in gateways {
        argv.extend(["--gateway".into(), g.url.clone()]);
    }
    argv.extend(
        [
            "--dashboard",
            &dashboard.url,
            "--out",
            &out.display().to_string(),
            "--quiet",
            "--rate",
            "200",
            "--duration",
            "3s",
            "--backoff",
            "fine",
            "--stall-timeout",
            "10s",
            "--label",
            "fleet",
        ]
        .map(String::from),
    );
    argv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_losing_triggers_makes_the_fleet_hang_and_only_it_is_named() {
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, &["--initial-policies", "100"])
        .await
        .expect("dashboard starts");
    let gateways = fleet(&redis, &dashboard, &[HEALTHY, LOSES_TRIGGERS, HEALTHY]).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = run_with(&argv(&dashboard, &gateways, out.path()))
        .await
        .expect("run completes");

    let urls: Vec<&str> = gateways.iter().map(|g| g.url.as_str()).collect();
    assert_eq!(summary.verdict, Verdict::Hang, "{}", summary.reason);
    let failing = summary
        .reason
        .split(" got every policy")
        .next()
        .unwrap_or_default();
    let (named, healthy_part) = failing.rsplit_once("; ").unwrap_or((failing, ""));
    assert!(named.contains(urls[1]), "{}", summary.reason);
    assert!(
        !named.contains(urls[0]) && !named.contains(urls[2]),
        "healthy gateways named as failing: {}",
        summary.reason
    );
    assert!(
        healthy_part.contains(urls[0]) && healthy_part.contains(urls[2]),
        "{}",
        summary.reason
    );

    // One result per gateway, in the order given, with its own verdict and counts.
    let results: Vec<(&str, Verdict)> = summary
        .gateways
        .iter()
        .map(|g| (g.url.as_str(), g.verdict))
        .collect();
    assert_eq!(
        results,
        vec![
            (urls[0], Verdict::Pass),
            (urls[1], Verdict::Hang),
            (urls[2], Verdict::Pass)
        ]
    );
    let scheduled = summary.scenarios.scheduled;
    for g in &summary.gateways {
        let n = &g.scenarios;
        assert_eq!(n.scheduled, scheduled);
        assert_eq!(n.started, n.succeeded + n.failed + n.outstanding);
        assert_eq!(g.time_to_usable.scenarios, scheduled);
        assert!(g.key_creations.ok > 0, "{}: keys were created", g.url);
    }
    assert_eq!(summary.gateways[0].scenarios.succeeded, scheduled);
    assert!(summary.gateways[1].scenarios.outstanding > 0);
    // The fleet is usable only where every gateway is: the lossy one bounds it.
    assert_eq!(
        summary.scenarios.outstanding,
        summary.gateways[1].scenarios.outstanding
    );
    let fleet = summary.fleet.as_ref().expect("a fleet block");
    assert_eq!(fleet.gateways, 3);
    assert_eq!(fleet.usable_everywhere, summary.scenarios.succeeded);
    assert!(
        fleet.fetches_by_node.len() >= 3,
        "{:?}",
        fleet.fetches_by_node
    );

    // Every line of scenarios.jsonl has a row per gateway, and its outcome is the fleet's.
    let lines = std::fs::read_to_string(dir.path.join("scenarios.jsonl")).unwrap();
    let records: Vec<ScenarioRecord> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len() as u64, summary.scenarios.started);
    for r in records.iter().filter(|r| r.add_done_ms.is_some()) {
        assert_eq!(r.gateways.len(), 3, "seq {}", r.seq);
        let all = r.gateways.iter().all(|g| g.outcome == Outcome::Success);
        assert_eq!(r.outcome == Outcome::Success, all, "seq {}", r.seq);
    }
    assert_eq!(read_summary(&dir.path), summary);

    // summary.md has a row per gateway with its own verdict.
    let md = std::fs::read_to_string(dir.path.join("summary.md")).unwrap();
    assert!(md.contains("## Per gateway"), "{md}");
    let row = |url: &str| {
        md.lines()
            .find(|l| l.contains(&format!("`{url}`")) && l.starts_with('|'))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row(urls[1]).contains("| hang |"), "{md}");
    assert!(row(urls[0]).contains("| pass |"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fleet_passes_with_every_gateway_and_the_spread() {
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, &["--initial-policies", "100"])
        .await
        .expect("dashboard starts");
    let gateways = fleet(&redis, &dashboard, &[HEALTHY, HEALTHY]).await;
    let out = tempfile::tempdir().unwrap();
    let (_, summary) = run_with(&argv(&dashboard, &gateways, out.path()))
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);
    assert!(summary.gateways.iter().all(|g| g.verdict == Verdict::Pass));
    let fleet = summary.fleet.as_ref().expect("a fleet block");
    assert_eq!(fleet.usable_everywhere, summary.scenarios.scheduled);
    assert!((fleet.share_usable_everywhere - 1.0).abs() < 1e-9);
    assert_eq!(fleet.spread_ms.count, fleet.usable_everywhere);
    // The last gateway is never earlier than the first.
    assert!(fleet.last_ms.p50 >= fleet.first_ms.p50);
    // The fleet's latency is the last gateway's.
    assert_eq!(summary.latency_ms.p50, fleet.last_ms.p50);
}
