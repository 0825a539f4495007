//! Tests of reading sides from disk, hostile files included.

use std::fs;
use std::path::Path;

use super::*;
use crate::summary::set::{PerRunValues, RunSet, per_run_values, sample_summary};

fn write_summary(dir: &Path, label: &str) {
    fs::create_dir_all(dir).unwrap();
    let mut s = sample_summary();
    s.label = label.into();
    fs::write(
        dir.join("summary.json"),
        serde_json::to_vec_pretty(&s).unwrap(),
    )
    .unwrap();
}

fn error_of(path: &Path) -> String {
    load_side(path).unwrap_err().to_string()
}

#[test]
fn a_summary_file_and_a_run_directory_are_one_run_each() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("2.9.4/20261127T101500Z");
    write_summary(&run, "2.9.4");
    let side = load_side(&run.join("summary.json")).unwrap();
    assert_eq!((side.kind, side.runs.len()), (SideKind::Summary, 1));
    let side = load_side(&run).unwrap();
    assert_eq!(
        (side.kind, side.runs.len(), side.label.as_str()),
        (SideKind::Run, 1, "2.9.4")
    );
}

#[test]
fn a_label_directory_without_a_set_means_all_its_runs_once_each() {
    let tmp = tempfile::tempdir().unwrap();
    let label = tmp.path().join("pr");
    write_summary(&label.join("20261127T101500Z"), "pr");
    write_summary(&label.join("20261127T102000Z"), "pr");
    std::os::unix::fs::symlink("20261127T102000Z", label.join("latest")).unwrap();
    let side = load_side(&label).unwrap();
    assert_eq!(side.kind, SideKind::LabelAllRuns);
    assert_eq!(
        side.runs.len(),
        2,
        "the `latest` symlink must not count twice"
    );
    assert!(side.runs[0].values.run_dir.ends_with("20261127T101500Z"));
}

#[test]
fn a_label_directory_with_latest_set_means_that_set_only() {
    let tmp = tempfile::tempdir().unwrap();
    let label = tmp.path().join("pr");
    for ts in ["20261127T100000Z", "20261127T101500Z", "20261127T102000Z"] {
        write_summary(&label.join(ts), "pr");
    }
    let per_run: Vec<PerRunValues> = ["../20261127T101500Z", "../20261127T102000Z"]
        .iter()
        .map(|d| per_run_values(d, &sample_summary()))
        .collect();
    let set = RunSet {
        schema_version: 1,
        label: "pr".into(),
        created_at: "2026-11-27T10:25:00Z".into(),
        runs: per_run.iter().map(|p| p.run_dir.clone()).collect(),
        merged_latency_ms: Default::default(),
        per_run,
        ..Default::default()
    };
    let set_dir = label.join("set-20261127T102500Z");
    fs::create_dir_all(&set_dir).unwrap();
    fs::write(set_dir.join("set.json"), serde_json::to_vec(&set).unwrap()).unwrap();
    std::os::unix::fs::symlink("set-20261127T102500Z", label.join("latest-set")).unwrap();

    let side = load_side(&label).unwrap();
    assert_eq!((side.kind, side.runs.len()), (SideKind::LabelLatestSet, 2));
    assert_eq!(side.runs[1].values.run_dir, "../20261127T102000Z");
    assert!(
        side.source
            .ends_with("pr/set-20261127T102500Z (latest-set)"),
        "the report names the set it used: {}",
        side.source
    );
    let side = load_side(&set_dir).unwrap();
    assert_eq!((side.kind, side.runs.len()), (SideKind::Set, 2));
}

#[test]
fn a_set_listing_a_missing_run_names_that_run() {
    let tmp = tempfile::tempdir().unwrap();
    let set_dir = tmp.path().join("set-1");
    fs::create_dir_all(&set_dir).unwrap();
    let set = serde_json::json!({"schema_version": 1, "label": "x", "created_at": "t",
        "runs": ["../gone"], "merged_latency_ms": {"count": 0, "p50": null, "p90": null,
        "p99": null, "max": null, "mean": null, "histogram_b64": ""}, "per_run": []});
    fs::write(set_dir.join("set.json"), set.to_string()).unwrap();
    let err = error_of(&set_dir);
    assert!(err.contains("gone/summary.json"), "{err}");
}

#[test]
fn malformed_truncated_empty_and_binary_files_name_the_file_and_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let good = serde_json::to_string_pretty(&sample_summary()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated.json",
            good.as_bytes()[..good.len() / 2].to_vec(),
            "looks truncated",
        ),
        (
            "malformed.json",
            b"{\n  \"schema_version\": 1,\n  oops\n}".to_vec(),
            "line 3 column 3",
        ),
        ("empty.json", Vec::new(), "the file is empty"),
        ("binary.json", vec![0x7b, 0xff, 0xfe, 0x00], "binary data"),
        (
            "wrong.json",
            b"{\"schema_version\": 1}".to_vec(),
            "missing field",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = tmp.path().join(name);
        fs::write(&path, bytes).unwrap();
        let err = error_of(&path);
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    let err = error_of(&tmp.path().join("truncated.json"));
    assert!(
        err.contains(" at line "),
        "a truncated file also gives the position: {err}"
    );
}

#[test]
fn a_future_schema_version_asks_for_an_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("summary.json");
    let mut doc = serde_json::to_value(sample_summary()).unwrap();
    doc["schema_version"] = 99.into();
    doc["field_from_the_future"] = true.into();
    fs::write(&path, doc.to_string()).unwrap();
    let err = error_of(&path);
    assert!(
        err.contains("schema_version 99") && err.contains("upgrade"),
        "{err}"
    );
}

#[test]
fn a_huge_file_is_refused_by_its_size_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.json");
    // Sparse: 100 MB on paper, nothing on disk, and nothing read.
    fs::File::create(&path)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let err = error_of(&path);
    assert!(
        err.contains("huge.json") && err.contains("larger than"),
        "{err}"
    );
}

#[test]
fn missing_paths_and_empty_directories_say_what_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let err = error_of(&tmp.path().join("nope"));
    assert!(err.contains("nope"), "{err}");
    let err = error_of(tmp.path());
    assert!(
        err.contains("pass a summary.json, a run directory"),
        "{err}"
    );
}

#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fifo.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(error_of(&path).contains("not a regular file"));
}

/// Two runs of one label whose gateway images differ (an old PR build and a new one).
fn write_mixed_builds(label: &Path) {
    for (ts, image_id) in [
        ("20261127T101500Z", "sha256:aaaa"),
        ("20261127T102000Z", "sha256:bbbb"),
    ] {
        let dir = label.join(ts);
        fs::create_dir_all(&dir).unwrap();
        let mut s = sample_summary();
        s.environment = Some(crate::summary::Environment {
            gateway: Some(crate::summary::environment::ServiceEvidence {
                image: Some("tyk:pr".into()),
                image_id: Some(image_id.into()),
                ..Default::default()
            }),
            compose_sha256: Some("c".into()),
            gateway_config_sha256: Some("g".into()),
            ..Default::default()
        });
        fs::write(dir.join("summary.json"), serde_json::to_vec(&s).unwrap()).unwrap();
    }
}

#[test]
fn a_side_mixing_two_gateway_builds_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let label = tmp.path().join("pr");
    write_mixed_builds(&label);
    let err = load_side_checked(&label, false).unwrap_err().to_string();
    assert!(err.contains("gateway image id"), "{err}");
    assert!(err.contains("aaaa") && err.contains("bbbb"), "{err}");
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn a_mixed_side_compared_with_force_carries_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let label = tmp.path().join("pr");
    write_mixed_builds(&label);
    let side = load_side_checked(&label, true).unwrap();
    assert_eq!(side.runs.len(), 2);
    assert!(
        side.warnings
            .iter()
            .any(|w| w.contains("gateway image id") && w.contains("--force")),
        "{:?}",
        side.warnings
    );
}
