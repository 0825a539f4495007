//! `reload-repro diff` on real stub runs: sets of repeated runs from the in-process stack,
//! compared through the binary so exit codes and the JSON verdict are what users get.

use std::path::Path;
use std::process::Command;

use reload_repro::summary::Verdict;

use super::support::stack::{Stack, run_set};

/// The same runner flags for every set, so the configurations are comparable.
const RUN: &[&str] = &[
    "--rate",
    "100",
    "--duration",
    "2s",
    "--backoff",
    "fine",
    "--stall-timeout",
    "3s",
    "--deadline",
    "20s",
    "--runs",
    "4",
];

async fn stub_set(out: &Path, label: &str, stub_flags: &[&str]) -> Vec<Verdict> {
    let stack = Stack::start(&["--initial-policies", "1000"], stub_flags).await;
    let mut flags = RUN.to_vec();
    flags.extend(["--label", label]);
    let summaries = run_set(&stack, out, &flags).await.expect("set runs");
    summaries.iter().map(|s| s.verdict).collect()
}

struct DiffResult {
    code: i32,
    verdict: String,
    stdout: String,
    json: serde_json::Value,
}

fn diff(out: &Path, a: &str, b: &str, extra: &[&str]) -> DiffResult {
    let json_path = out.join(format!("{a}-vs-{b}.json").replace('/', "_"));
    let output = Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .arg("diff")
        .arg(out.join(a))
        .arg(out.join(b))
        .arg("--json")
        .arg(&json_path)
        .args(extra)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("diff runs");
    let json: serde_json::Value = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    DiffResult {
        code: output.status.code().unwrap_or(-1),
        verdict: json["verdict"].as_str().unwrap_or_default().to_owned(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
        json,
    }
}

/// v2.9.4 and fixed run at the SAME cost (780 ms + 22 µs/policy ≈ 0.8 s): back-to-back v2.9.4
/// reloads fetch at ~0, 0.8, 1.6 s into the 2 s burst, so its last 0.4 s is lost in every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_of_stub_runs_say_improved_no_change_and_regressed() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let fixed = [
        "--reload-mode",
        "fixed",
        "--tick",
        "200ms",
        "--reload-cost-ms",
        "780",
    ];
    let v294 = [
        "--reload-mode",
        "v2.9.4",
        "--tick",
        "200ms",
        "--reload-cost-ms",
        "780",
    ];
    let slow = [
        "--reload-mode",
        "fixed",
        "--tick",
        "200ms",
        "--reload-cost-ms",
        "1600",
    ];

    assert_eq!(stub_set(dir, "v294", &v294).await, vec![Verdict::Hang; 4]);
    assert_eq!(
        stub_set(dir, "fixed-a", &fixed).await,
        vec![Verdict::Pass; 4]
    );
    assert_eq!(
        stub_set(dir, "fixed-b", &fixed).await,
        vec![Verdict::Pass; 4]
    );
    assert_eq!(stub_set(dir, "slow", &slow).await, vec![Verdict::Pass; 4]);

    let improved = diff(dir, "v294", "fixed-a", &[]);
    assert_eq!(
        (improved.code, improved.verdict.as_str()),
        (0, "improved"),
        "{}",
        improved.stdout
    );
    assert!(
        improved.stdout.contains("hang"),
        "the hang → pass change is shown: {}",
        improved.stdout
    );

    let same = diff(dir, "fixed-a", "fixed-b", &[]);
    assert_eq!(
        (same.code, same.verdict.as_str()),
        (0, "no_change"),
        "{}",
        same.stdout
    );

    let regressed = diff(dir, "fixed-a", "slow", &[]);
    assert_eq!(
        (regressed.code, regressed.verdict.as_str()),
        (1, "regressed"),
        "{}",
        regressed.stdout
    );
    assert!(regressed.json.is_object());

    // One run per side cannot be significant: inconclusive, and it says why.
    let one_a = std::fs::read_link(dir.join("fixed-a/latest")).unwrap();
    let one_b = std::fs::read_link(dir.join("slow/latest")).unwrap();
    let single = diff(
        dir,
        &format!("fixed-a/{}", one_a.display()),
        &format!("slow/{}", one_b.display()),
        &[],
    );
    assert_eq!(single.code, 3, "{}", single.stdout);
    assert!(
        single.stdout.to_lowercase().contains("one run"),
        "{}",
        single.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_refuses_runs_with_different_configurations_naming_the_field() {
    let out = tempfile::tempdir().unwrap();
    let stack = Stack::start(&["--initial-policies", "100"], &["--tick", "200ms"]).await;
    for (label, rate) in [("a", "50"), ("b", "40")] {
        stack
            .run(
                out.path(),
                &[
                    "--rate",
                    rate,
                    "--duration",
                    "1s",
                    "--backoff",
                    "fine",
                    "--label",
                    label,
                ],
            )
            .await
            .expect("run completes");
    }
    let result = diff(out.path(), "a", "b", &[]);
    assert_eq!(result.code, 2, "{}", result.stdout);
    assert!(result.stdout.contains("rate"), "{}", result.stdout);
    let forced = diff(out.path(), "a", "b", &["--force"]);
    assert_ne!(forced.code, 2, "{}", forced.stdout);
}

/// A summary from the corpus (a real stub run, schema 2) rewritten to `usable` scenarios at
/// `latency_ms` and the rest of 2,500 lost after waiting 60 s.
fn synthetic_run(dir: &Path, latency_ms: f64, usable: u64) {
    use reload_repro::summary::censored::time_to_usable;
    use reload_repro::summary::histogram::{encode_histogram, new_latency_histogram};
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/summary/ok-hang-stub-schema2.json"
    );
    let mut s: reload_repro::summary::Summary =
        serde_json::from_str(&std::fs::read_to_string(corpus).unwrap()).unwrap();
    let lost = 2_500 - usable;
    s.verdict = if lost > 0 {
        Verdict::Hang
    } else {
        Verdict::Pass
    };
    s.scenarios.succeeded = usable;
    s.scenarios.outstanding = lost;
    let mut h = new_latency_histogram();
    for i in 0..usable {
        h.record(((latency_ms + (i % 100) as f64) * 1_000.0) as u64)
            .unwrap();
    }
    s.latency_ms = reload_repro::summary::stats::latency_stats(&h);
    s.latency_ms.histogram_b64 = encode_histogram(&h);
    let usable_ms: Vec<(f64, u64)> = (0..100)
        .map(|i| (latency_ms + i as f64, usable / 100))
        .collect();
    s.time_to_usable = Some(time_to_usable(&usable_ms, &[(60_000.0, lost)], 2_500));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(&s).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_candidate_that_lost_a_fifth_of_its_policies_is_not_improved_although_its_survivors_are_faster()
{
    let out = tempfile::tempdir().unwrap();
    for i in 0..4 {
        synthetic_run(
            &out.path().join(format!("complete/2026010{i}T000000Z")),
            2_000.0 + i as f64,
            2_500,
        );
        synthetic_run(
            &out.path().join(format!("lossy/2026010{i}T000000Z")),
            1_000.0 + i as f64,
            2_000,
        );
    }
    let result = diff(out.path(), "complete", "lossy", &[]);
    assert_eq!(
        (result.code, result.verdict.as_str()),
        (1, "regressed"),
        "{}",
        result.stdout
    );
    let p99 = result.json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "latency_p99")
        .unwrap()
        .clone();
    assert!(
        p99["b_median"].as_f64() < p99["a_median"].as_f64(),
        "the survivors of B are faster: {p99}"
    );
    assert!(
        result
            .stdout
            .contains("time to usable p90 2090 ms → > 60000 ms"),
        "{}",
        result.stdout
    );
}

// Stub reload flags of the fleet runs below: cheap sleeping reloads, or a v2.9.4 gateway whose
// 6 s reload outlasts the 2 s burst, so it loses the policies added after its first fetch.
use super::support::stack::{
    FLEET_HEALTHY_STUB as FLEET_HEALTHY, FLEET_LOSING_STUB as FLEET_LOSES,
};

/// One real run of `label` against stubs with `modes` (one per gateway) on one Redis and mock.
async fn fleet_run(out: &Path, label: &str, modes: &[&[&str]]) -> reload_repro::summary::Summary {
    use super::support::TestRedis;
    use super::support::stack::{run_with, start_dashboard, start_stub};
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, &["--initial-policies", "100"])
        .await
        .expect("dashboard starts");
    let mut argv: Vec<String> = vec!["run".into()];
    let mut stubs = Vec::new();
    for flags in modes {
        let stub = start_stub(&redis.url, &dashboard.url, flags)
            .await
            .expect("stub starts");
        argv.extend(["--gateway".into(), stub.url.clone()]);
        stubs.push(stub);
    }
    let out = out.display().to_string();
    argv.extend(
        [
            "--dashboard",
            &dashboard.url,
            "--out",
            &out,
            "--quiet",
            "--rate",
            "150",
            "--duration",
            "2s",
            "--backoff",
            "fine",
            "--stall-timeout",
            "6s",
            "--label",
            label,
        ]
        .map(String::from),
    );
    let (dir, summary) = run_with(&argv).await.expect("run completes");
    // The run wrote its per-gateway figure, with a line per gateway and the fleet's.
    let svg = std::fs::read_to_string(dir.path.join("time-to-usable-per-gateway.svg"))
        .expect("a fleet run writes time-to-usable-per-gateway.svg");
    for i in 1..=modes.len() {
        assert!(
            svg.contains(&format!("gateway {i} (")),
            "gateway {i} in the legend"
        );
    }
    assert!(svg.contains(&format!("fleet: usable on all {} gateways", modes.len())));
    summary
}

/// Real fleets through the binary: a fleet whose gateway 2 loses triggers against a healthy
/// fleet gets fleet and per-gateway rows naming gateway 2; fleets of different sizes are
/// refused (exit 2) naming `fleet.gateways`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_runs_are_diffed_per_gateway_and_other_fleet_sizes_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let healthy = fleet_run(dir, "healthy", &[FLEET_HEALTHY; 3]).await;
    assert_eq!(healthy.verdict, Verdict::Pass, "{}", healthy.reason);
    let lossy = fleet_run(dir, "lossy", &[FLEET_HEALTHY, FLEET_LOSES, FLEET_HEALTHY]).await;
    assert_eq!(lossy.verdict, Verdict::Hang, "{}", lossy.reason);
    let pair = fleet_run(dir, "pair", &[FLEET_HEALTHY; 2]).await;
    assert_eq!(pair.gateways.len(), 2);

    // One run per side: inconclusive (exit 3), but the rows say where it went wrong.
    let d = diff(dir, "healthy/latest", "lossy/latest", &[]);
    assert_eq!(
        (d.code, d.verdict.as_str()),
        (3, "inconclusive"),
        "{}",
        d.stdout
    );
    let fleet = &d.json["fleet"];
    assert_eq!(fleet["gateways"], serde_json::json!([3, 3]), "{}", d.stdout);
    assert_eq!(fleet["per_gateway"][1]["b_verdicts"]["hang"], 1);
    assert_eq!(fleet["per_gateway"][0]["b_verdicts"]["pass"], 1);
    assert!(
        d.stdout.contains("A 1 pass; B 1 hang → inconclusive")
            && d.stdout.contains("usable everywhere*"),
        "{}",
        d.stdout
    );

    let refused = diff(dir, "healthy/latest", "pair/latest", &[]);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stdout.contains("fleet.gateways: A = 3, B = 2"),
        "{}",
        refused.stdout
    );
    let forced = diff(dir, "healthy/latest", "pair/latest", &["--force"]);
    assert_eq!(forced.code, 3, "{}", forced.stdout);
    assert!(
        forced.stdout.contains("only the first 2 are compared"),
        "{}",
        forced.stdout
    );
}
