//! End to end on loopback, in process: Redis, the dashboard mock, the stub gateway and the
//! runner, each scenario family ending in the verdict it must produce.

use std::time::{Duration, Instant};

use chrono::DateTime;
use reload_repro::summary::{Outcome, ScenarioRecord, Summary, Verdict};

use super::support::stack::{Stack, read_summary, start_dashboard};
use super::support::{TestRedis, free_port};

fn scenarios(dir: &std::path::Path) -> Vec<ScenarioRecord> {
    std::fs::read_to_string(dir.join("scenarios.jsonl"))
        .expect("scenarios.jsonl exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a scenario record"))
        .collect()
}

fn assert_valid_against_schema(dir: &std::path::Path) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/summary.schema.json"
        ))
        .expect("schema file"),
    )
    .expect("schema parses");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "summary.json violates the schema: {errors:?}"
    );
}

fn accounted(s: &Summary) -> bool {
    let n = &s.scenarios;
    n.started == n.succeeded + n.failed + n.outstanding
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_scheduling_passes_and_every_latency_includes_the_reload_cost() {
    let stack = Stack::start(&[], &["--reload-mode", "fixed", "--reload-cost-ms", "300"]).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &["--rate", "200", "--duration", "2s", "--backoff", "fine"],
        )
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);
    assert_eq!(summary.scenarios.scheduled, 400);
    assert_eq!(summary.scenarios.succeeded, 400);
    assert_eq!(summary.config.initial_policies, 80_400);
    assert!(summary.gateway.is_stub, "a stub run says so");
    let records = scenarios(&dir.path);
    assert_eq!(records.len(), 400);
    for r in &records {
        assert_eq!(r.outcome, Outcome::Success);
        let latency = r.success_ms.unwrap();
        assert!(
            latency >= 300.0,
            "scenario {} took {latency} ms < the 300 ms reload",
            r.seq
        );
    }
    assert!(summary.reloads.policy_fetches >= 2);
    assert_eq!(
        read_summary(&dir.path),
        summary,
        "the file holds what the runner returned"
    );
    assert_valid_against_schema(&dir.path);
    let latest = out.path().join("run/latest/summary.json");
    assert!(latest.exists(), "latest points at the run");
    let report = std::fs::read_to_string(dir.path.join("report.txt")).unwrap();
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("SUCCESS 80"))
            .count(),
        10
    );
}

/// Loss is made certain rather than likely: the stub's reload costs 6 s, longer than the 5 s
/// burst, so the reload that starts at the first tick (≤ 1 s in) is still running when the
/// last policy is added. v2.9.4 scheduling counts every trigger during it as served and
/// schedules nothing after it, so every policy added after its fetch is never loaded. With the
/// `fine` backoff (≤ 1.2 s between attempts) the last success comes ≤ ~8.2 s after the start,
/// and the stall detector (10 s) ends the run within stall timeout + 5 s of the last start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v294_scheduling_at_seed_load_hangs_and_says_so_within_the_stall_timeout() {
    let stack = Stack::start(
        &[],
        &["--reload-mode", "v2.9.4", "--reload-cost-ms", "6000"],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &[
                "--rate",
                "500",
                "--duration",
                "5s",
                "--backoff",
                "fine",
                "--stall-timeout",
                "10s",
                "--label",
                "v2.9.4",
            ],
        )
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::Hang, "{}", summary.reason);
    assert!(summary.scenarios.outstanding > 0);
    assert!(accounted(&summary));
    assert!(summary.reason.contains("stalled"), "{}", summary.reason);
    assert!(
        summary.reloads.last_fetch_after_last_add_s.unwrap() < 0.0,
        "the newest policies were never fetched"
    );
    let started = DateTime::parse_from_rfc3339(&summary.started_at).unwrap();
    let finished = DateTime::parse_from_rfc3339(&summary.finished_at).unwrap();
    let last_start_s = 5.0;
    let written_after_last_start = (finished - started).as_seconds_f64() - last_start_s;
    // What this proves is that the stall detector ended the run (the reason says "stalled"),
    // not the 120 s deadline. The summary came 15.7 s after the last start once on a busy 2-core
    // machine (the whole test: 19.8 s, docs/performance.md); stall timeout + 40 s is a 3× margin
    // and still far short of the deadline, which is what a missed stall verdict would run into.
    assert!(
        written_after_last_start <= 10.0 + 40.0,
        "summary written {written_after_last_start:.1}s after the last start: {} / {:?} / {:?} / {:?}",
        summary.reason,
        summary.reloads,
        summary.scheduler,
        summary.timeline
    );
    let report = std::fs::read_to_string(dir.path.join("report.txt")).unwrap();
    assert!(report.contains("OUTSTANDING"));
    assert_valid_against_schema(&dir.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_stops_reloading_ends_as_a_hang() {
    let stack = Stack::start(
        &["--initial-policies", "1000"],
        &[
            "--reload-mode",
            "fixed",
            "--stall-after-reloads",
            "2",
            "--tick",
            "200ms",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (_, summary) = stack
        .run(
            out.path(),
            &[
                "--rate",
                "100",
                "--duration",
                "2s",
                "--backoff",
                "fine",
                "--stall-timeout",
                "3s",
            ],
        )
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::Hang, "{}", summary.reason);
    assert!(summary.scenarios.outstanding > 0);
    assert!(accounted(&summary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_node_secret_ends_quickly_as_infra_error_naming_the_secret() {
    let stack = Stack::start(
        &[
            "--initial-policies",
            "1000",
            "--node-secret",
            "the-dashboards-secret",
        ],
        // Like `allow_insecure_configs: true` in run/tyk.conf: the notification signature (made
        // with the dashboard's secret) is not checked, so reloads happen and their fetches fail.
        &["--node-secret", "another-secret", "--allow-insecure"],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let (_, summary) = stack
        .run(
            out.path(),
            &["--rate", "100", "--duration", "3s", "--backoff", "fine"],
        )
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::InfraError, "{}", summary.reason);
    assert!(summary.reason.contains("node_secret"), "{}", summary.reason);
    // A missed infra error would run into the stall verdict (a Hang, caught above) or the
    // 120 s deadline; measured ~4 s (docs/performance.md), so 60 s is a wide margin below it.
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "took {:?}",
        began.elapsed()
    );
    assert!(accounted(&summary));
    assert!(!summary.reason.contains("the-dashboards-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_named_before_any_load() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let err = start_dashboard(&url, &[])
        .await
        .err()
        .expect("dashboard refuses to start");
    assert!(format!("{err:#}").contains(&url), "{err:#}");

    // The runner checks Redis first and writes an infra_error summary without starting load.
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, &["--initial-policies", "10"])
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let argv: Vec<String> = [
        "run",
        "--redis",
        &url,
        "--dashboard",
        &dashboard.url,
        "--wait-ready",
        "1s",
        "--quiet",
        "--out",
        &out.path().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (_, summary) = super::support::stack::run_with(&argv).await.unwrap();
    assert_eq!(summary.verdict, Verdict::InfraError);
    assert!(summary.reason.contains(&url), "{}", summary.reason);
    assert_eq!(summary.scenarios.started, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_gateway_secret_stops_at_once_naming_the_flag() {
    let stack = Stack::start(&["--initial-policies", "100"], &[]).await;
    let out = tempfile::tempdir().unwrap();
    let (_, summary) = stack
        .run(
            out.path(),
            &[
                "--secret",
                "not-the-secret",
                "--rate",
                "50",
                "--duration",
                "1s",
            ],
        )
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::InfraError);
    assert!(summary.reason.contains("--secret"), "{}", summary.reason);
    assert!(!summary.reason.contains("not-the-secret"));
    assert_eq!(
        summary.scenarios.started, 0,
        "the readiness probe caught it before load"
    );
}
