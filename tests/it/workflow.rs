//! The CI workflow (`.github/workflows/reload-repro.yml`) run step by step the way GitHub runs
//! it: steps in order, each `if:` evaluated (`success()` by default, `always()`, `!cancelled()`,
//! `steps.X.outcome`, `steps.X.outputs.Y`), each `run:` under `bash --noprofile --norc -eo
//! pipefail` in the checkout with the job's and the step's `env`, a fresh `GITHUB_OUTPUT` read
//! back into `steps.X.outputs`, and `GITHUB_STEP_SUMMARY` collected into the job summary.
//! `actions/checkout` is the copy of this checkout the job runs in; `actions/upload-artifact`
//! checks that its `path` holds files.
//!
//! Against the stub (REPRO_STUB_BASE / REPRO_STUB_PR in the runner's environment, as the workflow
//! documents) with short loads and RUNS=2 at alpha 0.4 (2 hanging vs 2 passing runs give
//! Fisher p = 0.33): v2.9.4-mode base vs fixed PR must succeed with `improved`, fixed base vs
//! v2.9.4-mode PR must fail with `regressed`. Both need Docker and the kit image.

mod expr;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_yaml::Value;

use crate::compose::{docker_lines, kit_image, require_docker, wait_with_deadline};

const WORKFLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/.github/workflows/reload-repro.yml"
);

/// One step as it ended.
#[derive(Debug)]
struct StepResult {
    name: String,
    outcome: String,
    log: String,
}

/// The job as it ended.
struct JobResult {
    success: bool,
    steps: Vec<StepResult>,
    summary: String,
    workspace: tempfile::TempDir,
}

impl JobResult {
    fn step(&self, name: &str) -> &StepResult {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step `{name}`"))
    }
    fn logs(&self) -> String {
        self.steps
            .iter()
            .map(|s| format!("--- {} ({})\n{}", s.name, s.outcome, s.log))
            .collect()
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The env mapping of a job or step, expressions evaluated.
fn env_of(node: &Value, ctx: &expr::Context) -> Vec<(String, String)> {
    node.get("env")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = expr::substitute(&text(v), ctx).expect("env expression");
                    (text(k), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of this checkout's files (tracked and new, not ignored): what actions/checkout gives.
fn checkout() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = Command::new("git")
        .args(["ls-files", "-co", "--exclude-standard", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    let dir = tempfile::Builder::new()
        .prefix("reload-repro-wf-")
        .tempdir()
        .unwrap();
    for rel in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let from = root.join(rel);
        if !from.is_file() {
            continue;
        }
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `k=v` lines and `k<<DELIM … DELIM` blocks of a GITHUB_OUTPUT file.
fn read_outputs(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, delim)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            out.insert(k.to_owned(), value.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

/// Runs the workflow's only job with `inputs`, `runner_env` as the runner machine's environment.
fn run_job(inputs: &[(&str, &str)], runner_env: &[(&str, &str)]) -> JobResult {
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(WORKFLOW).unwrap()).unwrap();
    let jobs = doc["jobs"].as_mapping().expect("jobs");
    assert_eq!(jobs.len(), 1, "the harness runs a one-job workflow");
    let job = jobs.values().next().unwrap();
    let workspace = checkout();
    let ws = workspace.path().to_owned();
    let mut ctx = expr::Context {
        inputs: inputs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..Default::default()
    };
    ctx.github.insert("ref".into(), "refs/heads/test".into());
    let job_env = env_of(job, &ctx);
    ctx.env = job_env.iter().cloned().collect();
    let mut steps = Vec::new();
    let mut summary = String::new();
    for (i, step) in job["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let name = step.get("name").map(text).unwrap_or_else(|| {
            step.get("uses")
                .map(text)
                .unwrap_or_else(|| format!("step {i}"))
        });
        let condition = step
            .get("if")
            .map(text)
            .unwrap_or_else(|| "success()".into());
        let run = expr::condition(&condition, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (outcome, log, outputs) = if !run {
            ("skipped".to_owned(), String::new(), HashMap::new())
        } else if let Some(uses) = step.get("uses").map(text) {
            run_action(&uses, step, &ws, &ctx)
        } else {
            let (outcome, log, outputs, step_summary) =
                run_shell(step, &ws, &ctx, &job_env, runner_env);
            summary.push_str(&step_summary);
            (outcome, log, outputs)
        };
        if outcome == "failure" {
            ctx.job_failed = true;
        }
        if let Some(id) = step.get("id").map(text) {
            ctx.steps.insert(id, (outcome.clone(), outputs));
        }
        steps.push(StepResult { name, outcome, log });
    }
    JobResult {
        success: !ctx.job_failed,
        steps,
        summary,
        workspace,
    }
}

fn run_action(
    uses: &str,
    step: &Value,
    ws: &Path,
    ctx: &expr::Context,
) -> (String, String, HashMap<String, String>) {
    let (action, pin) = uses.split_once('@').expect("uses: owner/name@ref");
    assert!(
        pin.len() == 40 && pin.chars().all(|c| c.is_ascii_hexdigit()),
        "{uses}: actions are pinned to a commit"
    );
    match action {
        "actions/checkout" => (
            "success".into(),
            format!("checkout: {}", ws.display()),
            HashMap::new(),
        ),
        "actions/upload-artifact" => {
            let path = expr::substitute(&text(&step["with"]["path"]), ctx).unwrap();
            let files = walk(&ws.join(&path));
            let log = format!("would upload {} file(s) from {path}", files.len());
            (
                "success".into(),
                log,
                HashMap::from([("count".into(), files.len().to_string())]),
            )
        }
        other => panic!("the harness does not know the action {other}"),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn run_shell(
    step: &Value,
    ws: &Path,
    ctx: &expr::Context,
    job_env: &[(String, String)],
    runner_env: &[(&str, &str)],
) -> (String, String, HashMap<String, String>, String) {
    let script = expr::substitute(&text(&step["run"]), ctx).expect("run: expressions");
    let tmp = tempfile::tempdir().unwrap();
    let (script_path, output, step_summary, log_path) = (
        tmp.path().join("step.sh"),
        tmp.path().join("output"),
        tmp.path().join("summary"),
        tmp.path().join("log"),
    );
    std::fs::write(&script_path, script).unwrap();
    std::fs::write(&output, "").unwrap();
    std::fs::write(&step_summary, "").unwrap();
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script_path)
        .current_dir(ws)
        .envs(runner_env.iter().copied())
        .envs(job_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(env_of(step, ctx))
        .env("CI", "true")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .env("RUNNER_TEMP", tmp.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let minutes = step
        .get("timeout-minutes")
        .and_then(Value::as_u64)
        .unwrap_or(360);
    let mut child = command.spawn().expect("bash starts");
    let status = wait_with_deadline(&mut child, Duration::from_secs(minutes * 60));
    let outcome = if status.is_some_and(|s| s.success()) {
        "success"
    } else {
        "failure"
    };
    (
        outcome.into(),
        std::fs::read_to_string(&log_path).unwrap_or_default(),
        read_outputs(&output),
        std::fs::read_to_string(&step_summary).unwrap_or_default(),
    )
}

/// Short loads, small RUNS: the stub's v2.9.4 reload (4 s) outlasts the 2 s load, so that mode
/// surely hangs (see the Makefile's selftest comment), and the fixed mode passes in seconds.
fn stub_env<'a>(base: &'a str, pr: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("REPRO_STUB_BASE", base),
        ("REPRO_STUB_PR", pr),
        ("DURATION", "2s"),
        ("RATE", "200"),
        ("INITIAL_POLICIES", "500"),
        ("DEADLINE", "30s"),
        ("STALL_TIMEOUT", "8s"),
        ("BACKOFF", "fine"),
        ("WAIT_READY", "60s"),
        ("STUB_RELOAD_COST_MS", "4000"),
        ("KEEP", "0"),
    ]
}

fn inputs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("base_tag", "2.9.4"),
        ("pr_image", "ghcr.io/example/tyk-gateway:pr-1"),
        ("runs", "2"),
        ("alpha", "0.4"),
    ]
}

fn run_stub_job(base: &str, pr: &str) -> JobResult {
    require_docker();
    let image = kit_image();
    let mut env = stub_env(base, pr);
    env.push(("REPRO_IMAGE", &image));
    let job = run_job(&inputs(), &env);
    // Nothing of the job's stacks is left: their names carry the copy's checkout id.
    let checkout_id: String = {
        use sha2::Digest;
        let path = job.workspace.path().to_string_lossy().into_owned();
        hex::encode(sha2::Sha256::digest(path.as_bytes()))[..8].to_owned()
    };
    let prefix = format!("reload-repro-{checkout_id}-");
    let format = "{{.Label \"com.docker.compose.project\"}}";
    let leftovers: Vec<String> = docker_lines(&["ps", "-a", "--format", format])
        .into_iter()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    assert!(leftovers.is_empty(), "stacks left: {leftovers:?}");
    job
}

fn verdict_of(job: &JobResult) -> String {
    let path = job.workspace.path().join("results/diff/diff.json");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}:\n{}", job.logs())),
    )
    .unwrap();
    json["verdict"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn every_step_of_the_workflow_is_understood_by_the_harness() {
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(WORKFLOW).unwrap()).unwrap();
    let ctx = expr::Context::default();
    for step in doc["jobs"]["compare"]["steps"].as_sequence().unwrap() {
        if let Some(condition) = step.get("if") {
            expr::condition(&text(condition), &ctx).unwrap();
        }
        if let Some(run) = step.get("run") {
            expr::substitute(&text(run), &ctx).unwrap();
            assert!(
                !text(run).contains("make repro"),
                "CI calls scripts/repro.sh, not make"
            );
        }
    }
}

#[test]
#[ignore = "needs Docker"]
fn the_workflow_succeeds_with_improved_when_the_pr_fixes_the_hang() {
    let job = run_stub_job("v2.9.4", "fixed");
    assert_eq!(verdict_of(&job), "improved", "{}", job.logs());
    assert!(job.success, "the job must succeed:\n{}", job.logs());
    assert_eq!(
        job.step("Run the base gateway").outcome,
        "success",
        "a hanging base is a measurement"
    );
    assert!(
        job.summary.contains("improved"),
        "job summary: {}",
        job.summary
    );
    assert_ne!(
        job.step("Upload results").log,
        "would upload 0 file(s) from results/"
    );
}

#[test]
#[ignore = "needs Docker"]
fn the_workflow_fails_with_regressed_when_the_pr_brings_the_hang_back() {
    let job = run_stub_job("fixed", "v2.9.4");
    assert_eq!(verdict_of(&job), "regressed", "{}", job.logs());
    assert!(!job.success, "the job must fail:\n{}", job.logs());
    assert_eq!(
        job.step("Run the PR image").outcome,
        "success",
        "{}",
        job.logs()
    );
    assert_eq!(job.step("Verdict").outcome, "failure");
    assert!(
        job.summary.contains("regressed"),
        "job summary: {}",
        job.summary
    );
    assert_eq!(job.step("Upload results").outcome, "success");
}
