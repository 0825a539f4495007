//! Output problems and absurd options: both are refused before any load (exit 2, the message
//! names the directory or the flag). Run files are written atomically and `latest` only ever
//! points at a complete run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use predicates::str::contains;
use reload_repro::protocol::MockStats;
use reload_repro::runner::output::write_atomic;
use reload_repro::summary::Verdict;

use super::super::support::stack::{Stack, read_summary, start_dashboard};
use super::super::support::{TestRedis, free_port};
use super::signals::Runner;
use super::{FAST_STUB, SMALL_POOL, run_argv};

/// A small tmpfs, unmounted when dropped; `None` (with the reason printed) where mounting is
/// not permitted, e.g. an unprivileged CI container.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a {size} tmpfs here ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount(8): {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn mock_stats(dashboard: &str) -> MockStats {
    reqwest::get(format!("{dashboard}/repro/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the binary with `--out out` against a live dashboard and a closed gateway port; the
/// run must be refused (exit 2, stderr containing `needle`) before any policy is added.
async fn refused_before_load(out: &Path, needle: &str) {
    let redis = TestRedis::start();
    let dashboard = start_dashboard(&redis.url, SMALL_POOL).await.unwrap();
    let gateway = format!("http://127.0.0.1:{}", free_port());
    let logs = tempfile::tempdir().unwrap();
    let argv = run_argv(&gateway, &dashboard.url, out, &["--wait-ready", "1s"]);
    let mut runner = Runner::start(&argv, &[], logs.path());
    let status = runner.wait(Duration::from_secs(10)).await;
    let stderr = runner.stderr_text();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    assert_eq!(
        mock_stats(&dashboard.url).await.adds,
        0,
        "no load was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_dir_under_a_regular_file_fails_before_load_with_exit_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("results");
    refused_before_load(&out, &out.join("run").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: mounts a tmpfs"]
async fn a_full_output_dir_fails_before_load_with_exit_2_naming_it() {
    // Run only when asked for (`--run-ignored`, as .ci/run does): then no tmpfs is a failure.
    let Some(tmpfs) = Tmpfs::mount("600k") else {
        panic!("cannot mount a tmpfs here (see above): run as root or without --run-ignored");
    };
    refused_before_load(tmpfs.path(), "is not writable or is full").await;
    let leftovers: Vec<PathBuf> = walk(tmpfs.path())
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "the probe cleans up: {leftovers:?}");
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_write_that_fails_half_way_leaves_the_previous_file_whole() {
    // Run only when asked for (`--run-ignored`, as .ci/run does): then no tmpfs is a failure.
    let Some(tmpfs) = Tmpfs::mount("600k") else {
        panic!("cannot mount a tmpfs here (see above): run as root or without --run-ignored");
    };
    let path = tmpfs.path().join("summary.json");
    std::fs::write(&path, b"{\"previous\": true}").unwrap();
    // More than the filesystem holds: the write fails part-way, like a crash or a full disk.
    let err = write_atomic(&path, &vec![b' '; 2 << 20]).unwrap_err();
    assert!(format!("{err:#}").contains("summary.json"), "{err:#}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"previous\": true}");
    assert!(
        !tmpfs.path().join("summary.json.tmp").exists(),
        "no temp file is left"
    );
}

#[test]
fn a_write_that_cannot_start_leaves_the_previous_file_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("summary.json");
    std::fs::write(&path, b"{}").unwrap();
    // The temp file cannot be created: a directory stands in its way.
    std::fs::create_dir(tmp.path().join("summary.json.tmp")).unwrap();
    let err = write_atomic(&path, b"{\"new\": 1}").unwrap_err();
    assert!(format!("{err:#}").contains("summary.json"), "{err:#}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_leaves_no_temp_files_and_latest_points_at_its_complete_summary() {
    let stack = Stack::start(SMALL_POOL, FAST_STUB).await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &["--rate", "50", "--duration", "1s", "--backoff", "fine"],
        )
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);

    let temporary: Vec<PathBuf> = walk(out.path())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".tmp") || name.ends_with(".partial") || name.starts_with(".latest")
        })
        .collect();
    assert!(temporary.is_empty(), "{temporary:?}");
    let latest = out.path().join("run/latest");
    assert_eq!(
        std::fs::read_link(&latest).unwrap(),
        PathBuf::from(&dir.name)
    );
    assert_eq!(read_summary(&latest), summary);
    for name in [
        "scenarios.jsonl",
        "fetches.json",
        "report.txt",
        "summary.md",
    ] {
        assert!(dir.path.join(name).is_file(), "{name} is written");
    }
}

/// The binary refuses `args` with exit 2 and a message containing `needle`, writing nothing.
fn refused(args: &[&str], needle: &str) {
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("results");
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(&results)
        // Validation comes before any connection: the default gateway is never contacted.
        .timeout(Duration::from_secs(10))
        .assert()
        .code(2)
        .stderr(contains("error: "))
        .stderr(contains(needle));
    assert!(!results.exists(), "nothing is written for {args:?}");
}

#[test]
fn a_rate_of_zero_is_refused_naming_the_rate_flag() {
    refused(
        &["--rate", "0"],
        "--rate 0: must be a number of scenarios per second",
    );
}

#[test]
fn a_zero_duration_is_refused_naming_the_duration_flag() {
    refused(
        &["--duration", "0s"],
        "invalid value '0s' for '--duration <DURATION>': must be longer than zero",
    );
}

#[test]
fn a_negative_duration_is_refused_naming_the_duration_flag() {
    refused(
        &["--duration", "-1s"],
        "invalid value '-1s' for '--duration <DURATION>'",
    );
}

#[test]
fn ten_million_scenarios_are_refused_with_the_limit() {
    refused(
        &["--rate", "100000", "--duration", "100s"],
        "= 10000000 scenarios: at most 2000000 per run",
    );
}

#[test]
fn a_deadline_shorter_than_the_duration_is_refused_naming_both_flags() {
    refused(
        &["--deadline", "1s", "--duration", "5s"],
        "--deadline 1s is shorter than --duration 5s",
    );
}

#[test]
fn a_gateway_url_without_a_scheme_is_refused_with_an_example() {
    refused(
        &["--gateway", "localhost:8080"],
        "--gateway `localhost:8080`",
    );
    refused(&["--gateway", "localhost:8080"], "http://127.0.0.1:8080");
}
