//! Secrets: the gateway secret, the node secret and the admin token never appear in a run's
//! files, in the binary's output, or in `diff` output — in passing runs, and in failing runs
//! where a service echoes them back in its error answers.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use reload_repro::summary::Verdict;

use super::super::support::stack::{Stack, read_summary};
use super::signals::{Runner, wait_for_load};
use super::{SMALL_POOL, fake_gateway, run_argv};

const GATEWAY_SECRET: &str = "gw-secret-Zq8v1XcR";
const NODE_SECRET: &str = "node-secret-Hk3m9PwT";
const ADMIN_TOKEN: &str = "admin-token-Lp7n2QsY";
const SECRETS: [&str; 3] = [GATEWAY_SECRET, NODE_SECRET, ADMIN_TOKEN];

/// The runner flags and environment that carry all three secrets.
fn secret_flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec!["--secret", GATEWAY_SECRET, "--admin-token", ADMIN_TOKEN];
    flags.extend_from_slice(extra);
    flags
}
const SECRET_ENV: [(&str, &str); 1] = [("REPRO_NODE_SECRET", NODE_SECRET)];

/// A stack whose dashboard and stub use the distinctive secrets.
async fn secret_stack() -> Stack {
    let mut dashboard = SMALL_POOL.to_vec();
    dashboard.extend(["--node-secret", NODE_SECRET, "--admin-token", ADMIN_TOKEN]);
    let stub = [
        "--reload-mode",
        "fixed",
        "--tick",
        "200ms",
        "--secret",
        GATEWAY_SECRET,
        "--node-secret",
        NODE_SECRET,
    ];
    Stack::start(&dashboard, &stub).await
}

fn assert_no_secret_in(text: &str, what: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

/// Every file under `dir`, read as bytes (symlinks are followed once, as `latest` is).
fn assert_no_secret_under(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            assert_no_secret_under(&path);
        } else if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert_no_secret_in(
                &String::from_utf8_lossy(&bytes),
                &path.display().to_string(),
            );
        }
    }
}

fn assert_runner_output_clean(runner: &Runner, logs: &Path) {
    assert_no_secret_in(&runner.stderr_text(), "the runner's stderr");
    let stdout = std::fs::read_to_string(logs.join("runner.stdout")).unwrap();
    assert_no_secret_in(&stdout, "the runner's stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_a_passing_run_its_output_or_its_diff() {
    let stack = secret_stack().await;
    let out = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let flags = secret_flags(&["--rate", "50", "--duration", "1s", "--backoff", "fine"]);
    let argv = run_argv(&stack.gateway.url, &stack.dashboard.url, out.path(), &flags);
    let mut runner = Runner::start(&argv, &SECRET_ENV, logs.path());
    let dir = wait_for_load(out.path()).await;
    let status = runner.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "{}", runner.stderr_text());
    assert_eq!(read_summary(&dir).verdict, Verdict::Pass);
    assert_no_secret_under(out.path());
    assert_runner_output_clean(&runner, logs.path());

    let diff_out = out.path().join("diff");
    let diff = std::process::Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .arg("diff")
        .args([&dir, &dir])
        .args(["--bootstrap", "100", "--out"])
        .arg(&diff_out)
        .output()
        .unwrap();
    assert!(diff_out.join("diff.md").exists(), "{diff:?}");
    assert_no_secret_in(&String::from_utf8_lossy(&diff.stdout), "diff's stdout");
    assert_no_secret_in(&String::from_utf8_lossy(&diff.stderr), "diff's stderr");
    assert_no_secret_under(&diff_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_back_by_a_failing_gateway_are_redacted_everywhere() {
    let stack = secret_stack().await;
    let body: &'static str = Box::leak(
        format!("bad request from secret={GATEWAY_SECRET} node={NODE_SECRET} token={ADMIN_TOKEN}")
            .into_boxed_str(),
    );
    let gateway = fake_gateway(
        &stack.redis.url,
        &stack.dashboard.url,
        NODE_SECRET,
        StatusCode::BAD_GATEWAY,
        body,
        Duration::ZERO,
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let flags = secret_flags(&["--rate", "50", "--duration", "1s", "--backoff", "fine"]);
    let argv = run_argv(&gateway, &stack.dashboard.url, out.path(), &flags);
    let mut runner = Runner::start(&argv, &SECRET_ENV, logs.path());
    let dir = wait_for_load(out.path()).await;
    let status = runner.wait(Duration::from_secs(20)).await;

    assert_eq!(status.code(), Some(2), "{}", runner.stderr_text());
    let summary = read_summary(&dir);
    assert_eq!(summary.verdict, Verdict::InfraError);
    assert!(
        summary.reason.contains("secret=*** node=*** token=***"),
        "the echo is kept, its secrets hidden: {}",
        summary.reason
    );
    assert_no_secret_under(out.path());
    assert_runner_output_clean(&runner, logs.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_gateway_secret_is_never_shown_nor_the_right_one() {
    let stack = secret_stack().await;
    let out = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let wrong = "wrong-secret-Bd5t6JuE";
    let flags = [
        "--secret",
        wrong,
        "--admin-token",
        ADMIN_TOKEN,
        "--rate",
        "50",
    ];
    let argv = run_argv(&stack.gateway.url, &stack.dashboard.url, out.path(), &flags);
    let mut runner = Runner::start(&argv, &SECRET_ENV, logs.path());
    let status = runner.wait(Duration::from_secs(20)).await;

    assert_eq!(status.code(), Some(2), "{}", runner.stderr_text());
    let summary = read_summary(&out.path().join("run/latest"));
    assert_eq!(summary.verdict, Verdict::InfraError);
    assert!(summary.reason.contains("--secret"), "{}", summary.reason);
    assert_no_secret_under(out.path());
    assert_runner_output_clean(&runner, logs.path());
    for (what, text) in [
        ("stderr", runner.stderr_text()),
        (
            "summary",
            std::fs::read_to_string(out.path().join("run/latest/summary.json")).unwrap(),
        ),
    ] {
        assert!(
            !text.contains(wrong),
            "{what} shows the wrong secret:\n{text}"
        );
    }
}
