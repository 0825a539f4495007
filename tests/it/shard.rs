//! `run --shard K/N` and `merge`, natively: two shard processes against one stack (Redis, the
//! mock, a `fixed` stub on loopback), merged, give the totals and verdict of one runner at the
//! same rate and duration against a fresh stack; merge refuses shards of different runs.

use std::path::{Path, PathBuf};
use std::process::Output;

use reload_repro::summary::{Summary, Verdict};

use super::support::stack::{Stack, read_summary};

const STUB: &[&str] = &["--reload-mode", "fixed", "--reload-cost-ms", "300"];
const LOAD: &[&str] = &["--rate", "100", "--duration", "2s", "--backoff", "fine"];

fn bin() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_reload-repro"))
}

/// Runs `run` as a child process against `stack`, writing under `out/label`.
async fn run_process(stack: &Stack, out: &Path, label: &str, extra: &[&str]) -> Output {
    let mut command = bin();
    command
        .arg("run")
        .args(stack.run_flags(out))
        .args(["--label", label])
        .args(LOAD)
        .args(extra)
        .env_remove("REPRO_SHARD")
        .env_remove("REPRO_RUN_ID")
        .kill_on_drop(true);
    command.output().await.expect("the runner starts")
}

fn latest(out: &Path, label: &str) -> PathBuf {
    std::fs::canonicalize(out.join(label).join("latest")).expect("latest points at the run")
}

async fn merge(out: &Path, dirs: &[PathBuf]) -> Output {
    bin()
        .arg("merge")
        .arg("--out")
        .arg(out)
        .args(dirs)
        .output()
        .await
        .expect("merge starts")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout {}\nstderr {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merged_give_the_totals_and_verdict_of_one_runner() {
    let out = tempfile::tempdir().unwrap();
    let sharded = Stack::start(&[], STUB).await;
    let (a, b) = tokio::join!(
        run_process(
            &sharded,
            out.path(),
            "s0",
            &["--shard", "0/2", "--run-id", "it-1"]
        ),
        run_process(
            &sharded,
            out.path(),
            "s1",
            &["--shard", "1/2", "--run-id", "it-1"]
        ),
    );
    assert_eq!(a.status.code(), Some(0), "shard 0: {}", text(&a));
    assert_eq!(b.status.code(), Some(0), "shard 1: {}", text(&b));
    let dirs = vec![latest(out.path(), "s0"), latest(out.path(), "s1")];
    let shards: Vec<Summary> = dirs.iter().map(|d| read_summary(d)).collect();
    for (k, s) in shards.iter().enumerate() {
        let info = s.shard.as_ref().expect("a shard's summary says so");
        assert_eq!(
            (info.index, info.count, info.run_id.as_str()),
            (k as u64, 2, "it-1")
        );
        assert_eq!(s.scenarios.scheduled, 100, "shard {k} drives half of 200");
    }
    // Same start instant: both loads started at the one the mock handed out.
    assert_eq!(shards[0].started_at, shards[1].started_at);

    let merged_dir = out.path().join("merged");
    let merged = merge(&merged_dir, &dirs).await;
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let m = read_summary(&merged_dir);
    assert_eq!(
        m.label, "it-1",
        "differently labelled shards: the run id names the merge"
    );
    let seqs: std::collections::BTreeSet<u64> =
        std::fs::read_to_string(merged_dir.join("scenarios.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
    assert_eq!(
        seqs,
        (0..200).collect(),
        "every scenario of the schedule, once"
    );

    let single_stack = Stack::start(&[], STUB).await;
    let single_out = tempfile::tempdir().unwrap();
    let one = run_process(&single_stack, single_out.path(), "one", &[]).await;
    assert_eq!(one.status.code(), Some(0), "single runner: {}", text(&one));
    let single = read_summary(&latest(single_out.path(), "one"));

    assert_eq!(single.verdict, Verdict::Pass, "{}", single.reason);
    assert_eq!(m.verdict, single.verdict, "{}", m.reason);
    assert_eq!(m.scenarios.scheduled, single.scenarios.scheduled);
    assert_eq!(m.scenarios.succeeded, single.scenarios.succeeded);
    assert_eq!(m.latency_ms.count, single.latency_ms.count);
    assert_eq!(m.time_to_usable.as_ref().unwrap().usable, 200);
    assert_eq!(m.config.rate_per_s, single.config.rate_per_s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_refuses_shards_of_different_runs_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let stack = Stack::start(&[], STUB).await;
    // N = 1: a shard run of its own, through the same barrier, quick to make twice.
    let a = run_process(
        &stack,
        out.path(),
        "a",
        &["--shard", "0/1", "--run-id", "run-a"],
    )
    .await;
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    let b = run_process(
        &stack,
        out.path(),
        "b",
        &["--shard", "0/1", "--run-id", "run-b"],
    )
    .await;
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let dirs = vec![latest(out.path(), "a"), latest(out.path(), "b")];
    let target = out.path().join("merged");
    let refused = merge(&target, &dirs).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("different runs"), "{stderr}");
    assert!(
        stderr.contains("run-a") && stderr.contains("run-b"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing written");

    // The same run id again is refused by the mock's barrier: an infra_error summary, exit 2.
    let again = run_process(
        &stack,
        out.path(),
        "c",
        &["--shard", "0/1", "--run-id", "run-a"],
    )
    .await;
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let c = read_summary(&latest(out.path(), "c"));
    assert_eq!(c.verdict, Verdict::InfraError);
    assert!(c.reason.contains("already started"), "{}", c.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_partner_never_comes_ends_in_infra_error_naming_the_missing_shard() {
    let out = tempfile::tempdir().unwrap();
    let stack = Stack::start(&[], STUB).await;
    let alone = run_process(
        &stack,
        out.path(),
        "alone",
        &["--shard", "0/2", "--run-id", "lonely", "--wait-ready", "3s"],
    )
    .await;
    assert_eq!(alone.status.code(), Some(2), "{}", text(&alone));
    let s = read_summary(&latest(out.path(), "alone"));
    assert_eq!(s.verdict, Verdict::InfraError);
    assert!(s.reason.contains("shard(s) 1/2"), "{}", s.reason);
    assert_eq!(s.scenarios.started, 0, "no load without the common start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_a_two_gateway_fleet_merge_per_gateway_and_fleet_results() {
    use super::support::TestRedis;
    use super::support::stack::FLEET_HEALTHY_STUB as HEALTHY;
    use super::support::stack::{start_dashboard, start_stub};
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, &[]).await.expect("mock starts");
    let g1 = start_stub(&redis.url, &dashboard.url, HEALTHY)
        .await
        .expect("stub 1");
    let g2 = start_stub(&redis.url, &dashboard.url, HEALTHY)
        .await
        .expect("stub 2");
    let out = tempfile::tempdir().unwrap();
    let shard = |k: &'static str, label: &'static str| {
        let mut command = bin();
        command
            .arg("run")
            .args(["--gateway", &g1.url, "--gateway", &g2.url])
            .args(["--dashboard", &dashboard.url, "--quiet", "--label", label])
            .arg("--out")
            .arg(out.path())
            .args(LOAD)
            .args(["--shard", k, "--run-id", "fleet-1"])
            .kill_on_drop(true);
        async move { command.output().await.expect("the runner starts") }
    };
    let (a, b) = tokio::join!(shard("0/2", "f0"), shard("1/2", "f1"));
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let dirs = vec![latest(out.path(), "f0"), latest(out.path(), "f1")];
    let merged_dir = out.path().join("merged");
    let merged = merge(&merged_dir, &dirs).await;
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let m = read_summary(&merged_dir);
    assert_eq!(m.verdict, Verdict::Pass, "{}", m.reason);
    assert_eq!(m.gateways.len(), 2);
    for g in &m.gateways {
        assert_eq!(g.verdict, Verdict::Pass, "{}", g.reason);
        assert_eq!((g.scenarios.scheduled, g.scenarios.succeeded), (200, 200));
        assert_eq!(g.latency_ms.count, 200);
    }
    assert_eq!(
        (m.gateways[0].url.as_str(), m.gateways[1].url.as_str()),
        (g1.url.as_str(), g2.url.as_str())
    );
    let fleet = m.fleet.expect("a fleet block");
    assert_eq!(fleet.usable_everywhere, 200);
    assert_eq!(fleet.spread_ms.count, 200);
}
