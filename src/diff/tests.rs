//! Tests of the subcommand as a whole: files in, files and exit code out.

use std::fs;
use std::path::Path;

use super::*;
use crate::diff::compare::tests::run;

/// Writes `n` run directories of one label under `out`, as the runner lays them out.
fn write_runs(out: &Path, label: &str, n: usize, scale: f64, outstanding: u64) {
    for i in 0..n {
        let dir = out.join(label).join(format!("20261127T10{i:02}00Z"));
        fs::create_dir_all(&dir).unwrap();
        let s = run(label, scale * (1.0 + i as f64 / 100.0), outstanding);
        fs::write(
            dir.join("summary.json"),
            serde_json::to_vec_pretty(&s).unwrap(),
        )
        .unwrap();
    }
}

fn args(a: &Path, b: &Path) -> DiffArgs {
    DiffArgs {
        a: a.into(),
        b: b.into(),
        force: false,
        min_effect: 10.0,
        alpha: 0.05,
        bootstrap: 200,
        seed: 1,
        markdown: None,
        json: None,
        out: None,
    }
}

#[test]
fn a_fixed_gateway_against_hanging_runs_exits_0_and_writes_the_out_directory() {
    let tmp = tempfile::tempdir().unwrap();
    // Set DIFF_DEMO_DIR to keep the files, e.g. to render latency-cdf.svg and look at it.
    let root = std::env::var_os("DIFF_DEMO_DIR").map_or(tmp.path().to_owned(), Into::into);
    write_runs(&root, "2.9.4", 5, 3.0, 30);
    write_runs(&root, "pr", 5, 1.0, 0);
    let out = root.join("diff-2.9.4-vs-pr");
    let code = main(DiffArgs {
        out: Some(out.clone()),
        ..args(&root.join("2.9.4"), &root.join("pr"))
    });
    assert_eq!(code.unwrap(), ExitCode::from(0));
    let md = fs::read_to_string(out.join("diff.md")).unwrap();
    assert!(
        md.contains("**improved**") && md.contains("hang→pass"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("diff.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"], "improved");
    let svg = fs::read_to_string(out.join("latency-cdf.svg")).unwrap();
    assert!(svg.contains("A: 2.9.4 (v2.9.4)") && svg.contains("B: pr (v2.9.4.4)"));
}

#[test]
fn a_slower_candidate_exits_1_and_one_run_each_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    write_runs(tmp.path(), "fast", 5, 1.0, 0);
    write_runs(tmp.path(), "slow", 5, 3.0, 0);
    let (fast, slow) = (tmp.path().join("fast"), tmp.path().join("slow"));
    assert_eq!(main(args(&fast, &slow)).unwrap(), ExitCode::from(1));
    let one = |l: &str| tmp.path().join(l).join("20261127T100000Z");
    assert_eq!(
        main(args(&one("fast"), &one("slow"))).unwrap(),
        ExitCode::from(3)
    );
}

#[test]
fn different_scenarios_are_refused_by_field_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    write_runs(tmp.path(), "a", 1, 1.0, 0);
    let b = tmp.path().join("b/summary.json");
    fs::create_dir_all(b.parent().unwrap()).unwrap();
    let mut s = run("b", 1.0, 0);
    s.config.trigger = "reload".into();
    fs::write(&b, serde_json::to_vec(&s).unwrap()).unwrap();
    let a = tmp.path().join("a");
    let err = format!("{:#}", main(args(&a, &b)).unwrap_err());
    assert!(err.contains("config.trigger: A = notify, B = reload") && err.contains("--force"));
    let md = tmp.path().join("forced.md");
    let forced = DiffArgs {
        force: true,
        markdown: Some(md.clone()),
        ..args(&a, &b)
    };
    assert_eq!(main(forced).unwrap(), ExitCode::from(3));
    assert!(
        fs::read_to_string(md)
            .unwrap()
            .contains("compared with --force")
    );
}

#[test]
fn absurd_options_name_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let err = main(DiffArgs {
        alpha: 1.5,
        ..args(p, p)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("--alpha"), "{err}");
    let err = main(DiffArgs {
        min_effect: -1.0,
        ..args(p, p)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("--min-effect"), "{err}");
}

#[test]
fn a_broken_input_names_the_side_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("summary.json");
    fs::write(&bad, "{\"schema_version\": 1,").unwrap();
    let err = format!("{:#}", main(args(&bad, &bad)).unwrap_err());
    assert!(
        err.starts_with("reading A: ") && err.contains("summary.json"),
        "{err}"
    );
    assert!(err.contains("line 1 column 21"), "{err}");
}

/// Writes `n` fleet runs of one label (gateway i at `gateways[i]`, see `fleet_run`).
fn write_fleet_runs(out: &Path, label: &str, n: usize, gateways: &[(f64, u64)]) {
    for i in 0..n {
        let dir = out.join(label).join(format!("20261127T10{i:02}00Z"));
        fs::create_dir_all(&dir).unwrap();
        let jittered: Vec<(f64, u64)> = gateways
            .iter()
            .map(|&(x, o)| (x * (1.0 + i as f64 / 100.0), o))
            .collect();
        let s = crate::diff::compare::fleet::tests::fleet_run(label, &jittered);
        fs::write(
            dir.join("summary.json"),
            serde_json::to_vec_pretty(&s).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn fleet_runs_exit_1_when_a_gateway_starts_to_hang_and_other_fleet_sizes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let healthy = [(1.0, 0), (1.1, 0), (1.2, 0)];
    write_fleet_runs(tmp.path(), "base", 5, &healthy);
    write_fleet_runs(tmp.path(), "pr", 5, &[(1.0, 0), (1.1, 0), (1.2, 30)]);
    write_fleet_runs(tmp.path(), "two", 5, &healthy[..2]);
    let side = |l: &str| tmp.path().join(l);
    let json = tmp.path().join("diff.json");
    let code = main(DiffArgs {
        json: Some(json.clone()),
        ..args(&side("base"), &side("pr"))
    });
    assert_eq!(code.unwrap(), ExitCode::from(1));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(json).unwrap()).unwrap();
    assert_eq!(v["fleet"]["per_gateway"][2]["verdict"], "regressed");
    assert_eq!(v["fleet"]["per_gateway"][0]["verdict"], "no_change");
    let err = format!("{:#}", main(args(&side("base"), &side("two"))).unwrap_err());
    assert!(
        err.contains("fleet.gateways: A = 3, B = 2") && err.contains("same number of gateways"),
        "{err}"
    );
    let forced = DiffArgs {
        force: true,
        ..args(&side("base"), &side("two"))
    };
    assert_eq!(main(forced).unwrap(), ExitCode::from(0));
}
