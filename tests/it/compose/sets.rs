//! Run sets through `scripts/repro.sh` and `scripts/diff.sh`, as `make repro` / `make diff` and
//! CI call them: two RUNS=2 calls under one label give two sets, and a diff of the label uses
//! the latest only (2 runs, not 4) and names it; Ctrl-C during the load exits 130 and leaves an
//! interrupted summary and set that never becomes `latest-set`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reload_repro::summary::Verdict;
use reload_repro::summary::set::RunSet;

use super::{
    ProjectCleanup, SELFTEST_ENV, assert_torn_down, kit_image, require_docker, results_dir,
    run_script, unique_label, wait_with_deadline,
};

fn read_set(path: &Path) -> RunSet {
    let text = std::fs::read_to_string(path.join("set.json"))
        .unwrap_or_else(|e| panic!("no set.json in {}: {e}", path.display()));
    serde_json::from_str(&text).expect("set.json parses")
}

/// Set directories of a label, oldest first.
fn set_dirs(label_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(label_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("set-"))
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
#[ignore = "needs Docker"]
fn two_runs_2_calls_under_one_label_then_diff_uses_the_latest_set_only_and_names_it() {
    require_docker();
    let results = results_dir();
    let cleanup = ProjectCleanup {
        results: results.path().to_owned(),
    };
    let label = unique_label("sets");
    let mut env = SELFTEST_ENV.to_vec();
    env.extend([
        ("STUB_RELOAD_COST_MS", "300"),
        ("RUNS", "2"),
        ("DURATION", "2s"),
    ]);
    for call in 1..=2 {
        let run = run_script(results.path(), &label, &["--stub", "fixed"], &env);
        assert_eq!(run.status.code(), Some(0), "call {call}:\n{}", run.output);
        assert!(
            run.output.contains("pass 2/2"),
            "cross-run line:\n{}",
            run.output
        );
        assert!(run.output.contains("Time to usable:"), "{}", run.output);
    }
    assert_torn_down(&cleanup);
    let label_dir = results.path().join(&label);
    let sets = set_dirs(&label_dir);
    assert_eq!(sets.len(), 2, "{sets:?}");
    let (first, second) = (&sets[0], &sets[1]);
    let latest = std::fs::read_link(label_dir.join("latest-set")).unwrap();
    assert_eq!(Some(latest.as_os_str()), second.file_name());
    let set = read_set(second);
    assert_eq!(set.runs.len(), 2);
    let identity = set.identity.expect("the runs agree on what they tested");
    assert!(identity.is_stub);
    assert!(
        identity
            .gateway_image_id
            .is_some_and(|id| id.starts_with("sha256:"))
    );
    assert!(set.mixed.is_empty(), "{:?}", set.mixed);

    // The label (its latest set) against the first set named explicitly.
    let out = results.path().join("diff");
    let mut diff = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/diff.sh"));
    diff.arg(&label)
        .arg(first)
        .env("RESULTS_DIR", results.path())
        .env("REPRO_IMAGE", kit_image())
        .env("OUT", &out)
        .env_remove("FORCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = diff.spawn().expect("scripts/diff.sh starts");
    let status = wait_with_deadline(&mut child, Duration::from_secs(120)).expect("diff returns");
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // One fixed-mode set against another: 2 vs 2 runs is too few to test.
    assert_eq!(status.code(), Some(3), "inconclusive expected:\n{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(
        json["a"]["runs"], 2,
        "the latest set only, not all 4 runs: {}",
        json["a"]
    );
    assert_eq!(json["b"]["runs"], 2);
    let second_name = second.file_name().unwrap().to_string_lossy().into_owned();
    let a_source = json["a"]["source"].as_str().unwrap_or_default();
    assert!(
        a_source.contains(&second_name) && a_source.contains("latest-set"),
        "the report names the set it used: {a_source}"
    );
    let markdown = std::fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(markdown.contains(&second_name), "{markdown}");
}

#[test]
#[ignore = "needs Docker"]
fn ctrl_c_during_the_load_exits_130_with_an_interrupted_summary_and_set() {
    require_docker();
    let results = results_dir();
    let cleanup = ProjectCleanup {
        results: results.path().to_owned(),
    };
    let label = unique_label("sigint");
    let log_path = results.path().join("script.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/repro.sh"));
    command
        .args(["--stub", "fixed", "--label", &label])
        .env("RESULTS_DIR", results.path())
        .env("REPRO_IMAGE", kit_image())
        .env("RUNS", "2")
        .env("KEEP", "0")
        .env("STUB_RELOAD_COST_MS", "300")
        .env_remove("EXPECT")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (key, value) in SELFTEST_ENV {
        command.env(key, value);
    }
    // A long load, so the signal surely lands in it.
    command.env("DURATION", "60s").env("DEADLINE", "90s");
    let mut child = command.spawn().expect("scripts/repro.sh starts");
    let started = Instant::now();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    while !read_log().contains("running the load") {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "never started:\n{}",
            read_log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended early:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Into the load, well before its 60 s end: wait for the scenarios stream (readiness takes
    // anything from 3 s to far more on a busy machine, so no fixed sleep), then a little more.
    while !crate::faults::compose_kill::load_started(results.path(), &label) {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the load never started:\n{}",
            read_log()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended early:\n{}",
            read_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status =
        wait_with_deadline(&mut child, Duration::from_secs(120)).expect("repro.sh returns");
    let output = read_log();
    assert_eq!(status.code(), Some(130), "{output}");
    let label_dir = results.path().join(&label);
    let summary: reload_repro::summary::Summary = serde_json::from_str(
        &std::fs::read_to_string(label_dir.join("latest/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary.verdict, Verdict::Interrupted, "{}", summary.reason);
    let sets = set_dirs(&label_dir);
    assert_eq!(sets.len(), 1);
    let set = read_set(&sets[0]);
    assert!(set.interrupted);
    assert_eq!(set.runs.len(), 1, "the second run never started");
    assert!(
        !label_dir.join("latest-set").exists(),
        "an interrupted set is not the latest"
    );
    assert_torn_down(&cleanup);
}
