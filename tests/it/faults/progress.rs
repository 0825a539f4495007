//! Progress without a terminal: plain `phase:` lines in the order the run goes through them,
//! and `progress:` lines with the current rates, the outstanding count and the countdowns.

use std::time::Duration;

use reload_repro::summary::Verdict;

use super::super::support::stack::{Stack, read_summary};
use super::signals::{Runner, wait_for_load};
use super::{FAST_STUB, SMALL_POOL, run_argv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_the_phases_come_as_plain_lines_in_order() {
    // The stub never reloads after its startup load, so the run goes through every phase:
    // load, waiting, the stall verdict's re-check, collecting evidence.
    let mut stub = FAST_STUB.to_vec();
    stub.extend(["--stall-after-reloads", "0"]);
    let stack = Stack::start(SMALL_POOL, &stub).await;
    let out = tempfile::tempdir().unwrap();
    let flags = [
        "--rate",
        "50",
        "--duration",
        "1s",
        "--backoff",
        "fine",
        "--stall-timeout",
        "6s",
        "--deadline",
        "60s",
    ];
    let argv: Vec<String> = run_argv(&stack.gateway.url, &stack.dashboard.url, out.path(), &flags)
        .into_iter()
        .filter(|a| a != "--quiet")
        .collect();
    let mut runner = Runner::start(&argv, &[], out.path());
    let dir = wait_for_load(out.path()).await;
    // No wall-clock bound: this only catches a runner that never ends.
    let status = runner.wait(Duration::from_secs(120)).await;
    assert_eq!(
        status.code(),
        Some(1),
        "a hang exits 1: {}",
        runner.stderr_text()
    );
    assert_eq!(read_summary(&dir).verdict, Verdict::Hang);

    let stderr = runner.stderr_text();
    let phases: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("phase: "))
        .collect();
    let expected = [
        "waiting for the services to be ready",
        "load: 50 scenarios at 50/s",
        "waiting for ",
        "re-check of the ",
        "collecting evidence",
    ];
    let mut at = 0;
    for want in expected {
        let found = phases[at..].iter().position(|p| p.starts_with(want));
        let Some(i) = found else {
            panic!("phase `{want}` missing or out of order in {phases:?}:\n{stderr}");
        };
        at += i + 1;
    }
    assert!(
        phases.iter().any(|p| p.ends_with(" outstanding")),
        "{phases:?}"
    );
    let progress = stderr
        .lines()
        .find(|l| l.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line:\n{stderr}"));
    for part in [
        "outstanding",
        "starts/s",
        "keys/s",
        "deadline in",
        "stall verdict in",
    ] {
        assert!(progress.contains(part), "`{part}` in {progress}");
    }
    // The last block is the verdict, with the run directory.
    assert!(stderr.contains("verdict: HANG"), "{stderr}");
    assert!(
        stderr.contains(&format!("run dir:     {}", dir.display())),
        "{stderr}"
    );
}
