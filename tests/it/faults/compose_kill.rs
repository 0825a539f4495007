//! Under Docker Compose with the stub gateway: `docker kill` of the gateway container mid-run
//! ends as `unresponsive`, the container's exit state (code 137) in the reason (issue 14).
//!
//! Needs a Docker daemon and the kit image, like `tests/it/compose.rs`: `#[ignore = "needs
//! Docker"]`, run by `.ci/run` (`--run-ignored all`), where a missing daemon or image fails it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reload_repro::summary::{Summary, Verdict};

fn docker() -> String {
    std::env::var("DOCKER").unwrap_or_else(|_| "docker".into())
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new(docker())
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the project's containers and networks even when an assertion failed.
struct Cleanup(PathBuf);

impl Cleanup {
    fn project(&self) -> Option<String> {
        std::fs::read_to_string(self.0.join(".last-project"))
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(project) = self.project() else {
            return;
        };
        let filter = format!("label=com.docker.compose.project={project}");
        for id in docker_lines(&["ps", "-aq", "--filter", &filter]) {
            let _ = docker_lines(&["rm", "-f", "-v", &id]);
        }
        for id in docker_lines(&["network", "ls", "-q", "--filter", &filter]) {
            let _ = docker_lines(&["network", "rm", &id]);
        }
    }
}

/// Whether the run of `label` under `results` has started its load (its scenarios stream).
pub(crate) fn load_started(results: &Path, label: &str) -> bool {
    std::fs::read_dir(results.join(label))
        .map(|dirs| {
            dirs.flatten()
                .any(|d| d.path().join("scenarios.jsonl.partial").exists())
        })
        .unwrap_or(false)
}

#[test]
#[ignore = "needs Docker"]
fn docker_kill_of_the_gateway_container_is_unresponsive_with_its_exit_state() {
    crate::compose::require_docker();
    let results = tempfile::Builder::new()
        .prefix("reload-repro-kill-")
        .tempdir()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(results.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let cleanup = Cleanup(results.path().to_owned());
    let label = format!(
        "it-kill-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let log_path = results.path().join("script.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let image = crate::compose::kit_image();
    let mut script = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/repro.sh"))
        .args([
            "--stub",
            "fixed",
            "--label",
            &label,
            "--expect",
            "unresponsive",
        ])
        .env("RESULTS_DIR", results.path())
        .env("REPRO_IMAGE", &image)
        .envs([
            ("RUNS", "1"),
            ("KEEP", "0"),
            ("DURATION", "20s"),
            ("DEADLINE", "60s"),
            ("INITIAL_POLICIES", "2000"),
            ("BACKOFF", "fine"),
            ("STALL_TIMEOUT", "10s"),
            ("RATE", "100"),
            ("TRIGGER", "notify"),
            ("STUB_RELOAD_COST_MS", "100"),
        ])
        .env_remove("WAIT_READY")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("scripts/repro.sh starts");

    let began = Instant::now();
    while !load_started(results.path(), &label) {
        assert!(
            began.elapsed() < Duration::from_secs(180),
            "the load never started:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        if let Ok(Some(status)) = script.try_wait() {
            panic!(
                "repro.sh ended ({status}) before the load:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let project = cleanup.project().expect("repro.sh records its project");
    let gateway = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--filter",
        "label=com.docker.compose.service=gateway",
    ]);
    assert_eq!(gateway.len(), 1, "one gateway container: {gateway:?}");
    assert!(
        !docker_lines(&["kill", &gateway[0]]).is_empty(),
        "docker kill {}",
        gateway[0]
    );

    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Ok(Some(status)) = script.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = script.kill();
            panic!("repro.sh did not end within 240 s after the kill");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let text = std::fs::read_to_string(results.path().join(&label).join("latest/summary.json"))
        .unwrap_or_else(|e| panic!("no summary: {e}\n{output}"));
    let summary: Summary = serde_json::from_str(&text).unwrap();
    eprintln!("verdict {:?}: {}", summary.verdict, summary.reason);
    assert_eq!(
        summary.verdict,
        Verdict::Unresponsive,
        "{}\n{output}",
        summary.reason
    );
    assert!(
        summary.reason.contains("exit code 137") && summary.reason.contains("container"),
        "the container's exit state is in the reason: {}",
        summary.reason
    );
    assert!(
        !summary.reason.contains("lost reload triggers"),
        "{}",
        summary.reason
    );
    assert!(
        status.success(),
        "repro.sh --expect unresponsive: {status}\n{output}"
    );
}
