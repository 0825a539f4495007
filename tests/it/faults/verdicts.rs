//! Verdicts a user can bet a release on (issue 14), natively on loopback with a real
//! redis-server, the dashboard mock and the stub gateway: a gateway that subscribes late is
//! waited for (or, without the wait, its unheard notifications are named, never a `hang`); a
//! killed gateway is `unresponsive`; a gateway that accepts keys for unknown policies is caught
//! by the canary before any load; a retry schedule slower than the stall timeout still passes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reload_repro::summary::Verdict;

use super::super::support::stack::{Stack, run_with, start_dashboard};
use super::super::support::{TestRedis, free_port};
use super::{FAST_STUB, SMALL_POOL, assert_accounted, assert_schema_valid, run_argv};

/// A stub that subscribes to notifications 10 s after its control API answers, like v3.x.
const LATE_STUB: &[&str] = &[
    "--reload-mode",
    "fixed",
    "--tick",
    "200ms",
    "--subscribe-delay",
    "10s",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_subscribes_ten_seconds_late_is_waited_for_and_passes() {
    let stack = Stack::start(SMALL_POOL, LATE_STUB).await;
    let out = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let (dir, summary) = stack
        .run(
            out.path(),
            &["--rate", "50", "--duration", "1s", "--backoff", "fine"],
        )
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);
    assert_eq!(summary.scenarios.succeeded, 50);
    assert_eq!(
        summary.reloads.publish_errors, 0,
        "every notification was heard: {:?}",
        summary.reloads
    );
    assert!(
        began.elapsed() >= Duration::from_secs(9),
        "the load waited for the subscriber ({:?})",
        began.elapsed()
    );
    assert_schema_valid(&dir.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_subscriber_wait_notifications_nobody_heard_are_an_infra_error_not_a_hang() {
    let stack = Stack::start(SMALL_POOL, LATE_STUB).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &[
                "--rate",
                "50",
                "--duration",
                "1s",
                "--backoff",
                "fine",
                "--stall-timeout",
                "3s",
                "--no-wait-subscribers",
            ],
        )
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::InfraError, "{}", summary.reason);
    assert!(
        summary
            .reason
            .contains("PolicyChanged notification(s) reached fewer than 1 subscriber"),
        "{}",
        summary.reason
    );
    assert!(
        !summary.reason.contains("lost reload triggers"),
        "{}",
        summary.reason
    );
    assert_eq!(summary.scenarios.outstanding, 50);
    assert_eq!(
        summary.reloads.publish_errors, 50,
        "unheard counts as failed"
    );
    assert_accounted(&summary);
    assert_schema_valid(&dir.path);
}

/// `reload-repro stub-gateway` as a child process on a free port, answering `/hello`.
async fn spawn_stub_process(redis: &str, dashboard: &str) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .args(["stub-gateway", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", redis, "--dashboard", dashboard])
        .args(FAST_STUB)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning reload-repro stub-gateway");
    let url = format!("http://127.0.0.1:{port}");
    super::wait_answering(&format!("{url}/hello")).await;
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_process_killed_mid_run_is_unresponsive_naming_the_refused_connections() {
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, SMALL_POOL).await.unwrap();
    let (mut child, gateway) = spawn_stub_process(&redis.url, &dashboard.url).await;
    let out = tempfile::tempdir().unwrap();
    let argv = run_argv(
        &gateway,
        &dashboard.url,
        out.path(),
        &[
            "--rate",
            "100",
            "--duration",
            "4s",
            "--backoff",
            "fine",
            "--stall-timeout",
            "3s",
        ],
    );
    let pid = child.id();
    let kill = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // SIGKILL, as `kill -9` would.
        child.kill().expect("kill -9 the stub");
        child.wait().expect("reap the stub")
    });
    let began = Instant::now();
    let (dir, summary) = run_with(&argv).await.expect("run completes");
    let status = kill.await.unwrap();
    assert!(status.code().is_none(), "pid {pid} died by a signal");

    assert_eq!(summary.verdict, Verdict::Unresponsive, "{}", summary.reason);
    assert!(
        summary.reason.contains("connection refused"),
        "{}",
        summary.reason
    );
    assert!(
        summary.reason.contains("since")
            && summary.reason.contains("the gateway stopped answering"),
        "{}",
        summary.reason
    );
    assert!(
        !summary.reason.contains("lost reload triggers"),
        "{}",
        summary.reason
    );
    assert!(summary.scenarios.succeeded > 0, "it worked before the kill");
    assert!(summary.scenarios.outstanding > 0);
    assert!(
        // Ending before the 120 s deadline is the point; measured ~8 s (docs/performance.md).
        began.elapsed() < super::PROMPT_END,
        "{:?}",
        began.elapsed()
    );
    assert_accounted(&summary);
    assert_schema_valid(&dir.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_accepting_keys_for_unknown_policies_is_caught_by_the_canary_before_any_load() {
    let mut stub = FAST_STUB.to_vec();
    stub.push("--accept-unknown-policies");
    let stack = Stack::start(SMALL_POOL, &stub).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(out.path(), &["--rate", "50", "--duration", "1s"])
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::InfraError, "{}", summary.reason);
    for needle in [
        "canary",
        "accepts keys for unknown policies",
        "app_path",
        "apps mount",
    ] {
        assert!(
            summary.reason.contains(needle),
            "{needle}: {}",
            summary.reason
        );
    }
    assert_eq!(summary.scenarios.started, 0, "no load was started");
    assert_schema_valid(&dir.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_sleeping_longer_than_the_stall_timeout_pass_after_the_final_re_check() {
    let stack = Stack::start(SMALL_POOL, FAST_STUB).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &[
                "--rate",
                "50",
                "--duration",
                "1s",
                "--backoff",
                "initial=12s,multiplier=1,jitter=0,max=12s",
                "--stall-timeout",
                "5s",
            ],
        )
        .await
        .expect("run completes");

    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);
    assert_eq!(summary.scenarios.succeeded, 50);
    assert_eq!(summary.scenarios.outstanding, 0);
    assert!(
        summary.reason.contains("only on the final re-check"),
        "{}",
        summary.reason
    );
    assert_schema_valid(&dir.path);
}

/// Delays every add at the mock by 1.2 s: the mock "falls behind".
fn slow_adds(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.uri().path() == "/repro/policies" {
                tokio::time::sleep(Duration::from_millis(1200)).await;
            }
            next.run(request).await
        },
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_mock_is_named_with_what_to_lower_instead_of_a_hang() {
    let redis = TestRedis::start();
    let dashboard = super::crashable_dashboard(&redis.url, SMALL_POOL, slow_adds).await;
    // A stub that never reloads: without the saturation this run would be a hang.
    let gateway = super::super::support::stack::start_stub(
        &redis.url,
        &dashboard.url,
        &["--stall-after-reloads", "0"],
    )
    .await
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let argv = run_argv(
        &gateway.url,
        &dashboard.url,
        out.path(),
        &[
            "--rate",
            "20",
            "--duration",
            "1s",
            "--backoff",
            "fine",
            "--stall-timeout",
            "3s",
        ],
    );
    let (dir, summary) = run_with(&argv).await.expect("run completes");

    assert_eq!(summary.verdict, Verdict::InfraError, "{}", summary.reason);
    for needle in [
        "the kit itself was saturated",
        "the dashboard mock took up to",
        "RATE, DURATION or INITIAL_POLICIES",
    ] {
        assert!(
            summary.reason.contains(needle),
            "{needle}: {}",
            summary.reason
        );
    }
    assert!(summary.scenarios.outstanding > 0);
    assert_accounted(&summary);
    assert_schema_valid(&dir.path);
}
