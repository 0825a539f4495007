//! Merge: refusals (nothing written), the verdict rule, and a merge of synthetic shards.

use std::path::{Path, PathBuf};

use super::check::{ShardRun, check_shards};
use super::merge;
use super::verdict::{ShardOutcome, merged_verdict};
use crate::summary::{Outcome, ScenarioCounts, ScenarioRecord, ShardInfo, Summary, Verdict};

fn shard_summary(index: u64, count: u64, run_id: &str, scheduled: u64) -> Summary {
    let mut s = crate::summary::set::sample_summary();
    s.shard = Some(ShardInfo {
        index,
        count,
        run_id: run_id.into(),
    });
    s.verdict = Verdict::Pass;
    s.reason = format!("shard {index} fine");
    s.scenarios = ScenarioCounts {
        scheduled,
        started: scheduled,
        succeeded: scheduled,
        failed: 0,
        outstanding: 0,
    };
    s.time_to_usable = None;
    s
}

fn run(dir: &str, summary: Summary) -> ShardRun {
    ShardRun {
        dir: PathBuf::from(dir),
        summary,
    }
}

fn refusal(runs: Vec<ShardRun>) -> String {
    check_shards(runs).err().map(|e| e.0).unwrap_or_default()
}

#[test]
fn shards_of_different_runs_configs_or_with_gaps_are_refused_naming_the_directories() {
    let a = run("out/a", shard_summary(0, 2, "r1", 5));
    let b = run("out/b", shard_summary(1, 2, "r1", 5));
    assert!(check_shards(vec![b.clone(), a.clone()]).is_ok());
    let ordered = check_shards(vec![b.clone(), a.clone()]).unwrap();
    assert_eq!(ordered[0].dir, PathBuf::from("out/a"), "ordered by index");

    let other = run("out/x", shard_summary(1, 2, "r2", 5));
    let text = refusal(vec![a.clone(), other]);
    assert!(
        text.contains("different runs") && text.contains("out/x") && text.contains("`r2`"),
        "{text}"
    );

    let mut config = shard_summary(1, 2, "r1", 5);
    config.config.rate_per_s *= 2.0;
    let text = refusal(vec![a.clone(), run("out/c", config)]);
    assert!(
        text.contains("configurations") && text.contains("out/c"),
        "{text}"
    );

    // The pool size each shard read at its start may differ: not a config difference.
    let mut pool = shard_summary(1, 2, "r1", 5);
    pool.config.initial_policies += 1;
    assert!(check_shards(vec![a.clone(), run("out/p", pool)]).is_ok());

    let dup = run("out/d", shard_summary(0, 2, "r1", 5));
    let text = refusal(vec![a.clone(), dup]);
    assert!(
        text.contains("given twice") && text.contains("out/a") && text.contains("out/d"),
        "{text}"
    );

    let text = refusal(vec![a.clone()]);
    assert!(text.contains("missing shard(s) 1/2"), "{text}");

    let mut plain = shard_summary(1, 2, "r1", 5);
    plain.shard = None;
    let text = refusal(vec![a, run("out/plain", plain)]);
    assert!(
        text.contains("not a shard") && text.contains("out/plain"),
        "{text}"
    );
}

fn outcome(index: u64, verdict: Verdict, succeeded: u64) -> ShardOutcome {
    ShardOutcome {
        index,
        count: 3,
        verdict,
        reason: format!("why {index}"),
        scenarios: ScenarioCounts {
            scheduled: 10,
            started: 10,
            succeeded,
            failed: 0,
            outstanding: 10 - succeeded,
        },
    }
}

fn total(shards: &[ShardOutcome]) -> ScenarioCounts {
    ScenarioCounts {
        scheduled: shards.iter().map(|s| s.scenarios.scheduled).sum(),
        succeeded: shards.iter().map(|s| s.scenarios.succeeded).sum(),
        ..ScenarioCounts::default()
    }
}

#[test]
fn the_merged_verdict_is_pass_only_when_every_shard_passed_and_every_key_was_made() {
    let all = vec![
        outcome(0, Verdict::Pass, 10),
        outcome(1, Verdict::Pass, 10),
        outcome(2, Verdict::Pass, 10),
    ];
    let (v, reason) = merged_verdict(&all, &total(&all));
    assert_eq!(v, Verdict::Pass, "{reason}");
    assert!(reason.contains("30 scheduled"), "{reason}");

    let hang = vec![
        outcome(0, Verdict::Pass, 10),
        outcome(1, Verdict::Hang, 7),
        outcome(2, Verdict::Pass, 10),
    ];
    let (v, reason) = merged_verdict(&hang, &total(&hang));
    assert_eq!(v, Verdict::Hang);
    assert!(
        reason.starts_with("shard 1/3 ended hang: why 1"),
        "{reason}"
    );

    let mixed = vec![
        outcome(0, Verdict::Hang, 7),
        outcome(1, Verdict::Pass, 10),
        outcome(2, Verdict::InfraError, 0),
    ];
    let (v, reason) = merged_verdict(&mixed, &total(&mixed));
    assert_eq!(
        v,
        Verdict::InfraError,
        "one unmeasured shard spoils the run"
    );
    assert!(reason.starts_with("shard 2/3"), "{reason}");
    assert!(reason.contains("shard 0/3 hang"), "{reason}");

    let short = vec![outcome(0, Verdict::Pass, 9), outcome(1, Verdict::Pass, 10)];
    let (v, reason) = merged_verdict(&short, &total(&short));
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("shard 0/3 9 of 10"), "{reason}");
}

fn record(seq: u64, outcome: Outcome, success_ms: Option<f64>) -> ScenarioRecord {
    ScenarioRecord {
        success_ms,
        scheduled_ms: seq as f64 * 100.0,
        ..crate::summary::fixtures::record(seq, 1000 + seq, outcome)
    }
}

/// Writes a shard run directory with `records` and a summary counting them.
fn write_shard(
    root: &Path,
    index: u64,
    count: u64,
    run_id: &str,
    records: &[ScenarioRecord],
) -> PathBuf {
    let dir = root.join(format!("shard-{index}"));
    std::fs::create_dir_all(&dir).unwrap();
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(dir.join("scenarios.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut s = shard_summary(index, count, run_id, records.len() as u64);
    let ok = records
        .iter()
        .filter(|r| r.outcome == Outcome::Success)
        .count() as u64;
    s.scenarios.succeeded = ok;
    s.scenarios.outstanding = records.len() as u64 - ok;
    if ok < records.len() as u64 {
        s.verdict = Verdict::Hang;
        s.reason = "policies lost".into();
    }
    std::fs::write(dir.join("summary.json"), serde_json::to_string(&s).unwrap()).unwrap();
    dir
}

#[test]
fn merged_counts_add_up_and_latency_comes_from_the_merged_records() {
    let root = tempfile::tempdir().unwrap();
    let a: Vec<_> = (0..10)
        .step_by(2)
        .map(|s| record(s, Outcome::Success, Some(10.0 + s as f64)))
        .collect();
    let b: Vec<_> = (1..10)
        .step_by(2)
        .map(|s| record(s, Outcome::Success, Some(1000.0)))
        .collect();
    let dirs = vec![
        write_shard(root.path(), 1, 2, "r", &b),
        write_shard(root.path(), 0, 2, "r", &a),
    ];
    let out = root.path().join("merged");
    let s = merge(&out, &dirs).unwrap();
    assert_eq!(s.verdict, Verdict::Pass, "{}", s.reason);
    assert_eq!(s.scenarios.scheduled, 10);
    assert_eq!(s.scenarios.succeeded, 10);
    assert_eq!(s.latency_ms.count, 10);
    // Half the latencies are ~1 s (shard 1), half ≤ 18 ms (shard 0): p90 is shard 1's.
    assert!(s.latency_ms.p90.unwrap() > 900.0, "{:?}", s.latency_ms);
    assert!(s.latency_ms.p50.unwrap() < 20.0, "{:?}", s.latency_ms);
    let t = s.time_to_usable.unwrap();
    assert_eq!((t.scenarios, t.usable, t.censored), (10, 10, 0));
    assert_eq!(s.top.len(), 10);
    assert_eq!(s.top[0].index, 1009);
    assert!(s.shard.is_none());
    assert_eq!(s.label, "2.9.4", "shards labelled alike keep the label");
    let lines = std::fs::read_to_string(out.join("scenarios.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 10);
    for file in [
        "summary.json",
        "summary.md",
        "report.txt",
        "fetches.json",
        "report.html",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    // A second merge into the same, now full, directory is refused.
    let again = merge(&out, &dirs).unwrap_err().to_string();
    assert!(again.contains("not empty"), "{again}");
}

#[test]
fn a_hang_in_one_shard_censors_its_waits_and_makes_the_merge_a_hang() {
    let root = tempfile::tempdir().unwrap();
    let a: Vec<_> = (0..6)
        .step_by(2)
        .map(|s| record(s, Outcome::Success, Some(50.0)))
        .collect();
    let b: Vec<_> = (1..6)
        .step_by(2)
        .map(|s| record(s, Outcome::Outstanding, None))
        .collect();
    let dirs = vec![
        write_shard(root.path(), 0, 2, "r", &a),
        write_shard(root.path(), 1, 2, "r", &b),
    ];
    let s = merge(&root.path().join("m"), &dirs).unwrap();
    assert_eq!(s.verdict, Verdict::Hang);
    assert!(s.reason.starts_with("shard 1/2 ended hang"), "{}", s.reason);
    assert_eq!((s.scenarios.succeeded, s.scenarios.outstanding), (3, 3));
    let t = s.time_to_usable.unwrap();
    assert_eq!((t.usable, t.censored), (3, 3));
    assert!(!t.p90.reached, "half never got a key");
}

#[test]
fn refused_merges_write_nothing() {
    let root = tempfile::tempdir().unwrap();
    let a = write_shard(
        root.path(),
        0,
        2,
        "r1",
        &[record(0, Outcome::Success, Some(5.0))],
    );
    let b = write_shard(
        root.path(),
        1,
        2,
        "r2",
        &[record(1, Outcome::Success, Some(5.0))],
    );
    let out = root.path().join("merged");
    let text = format!("{:#}", merge(&out, &[a.clone(), b]).unwrap_err());
    assert!(
        text.contains("merge refused") && text.contains("different runs"),
        "{text}"
    );
    assert!(!out.exists());

    // A record that is not the shard's own (seq 2 in shard 1/2).
    let wrong = write_shard(
        &root.path().join("w"),
        1,
        2,
        "r1",
        &[record(2, Outcome::Success, Some(5.0))],
    );
    let text = format!("{:#}", merge(&out, &[a, wrong]).unwrap_err());
    assert!(text.contains("not shard 1/2's"), "{text}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("merging"))
        .collect();
    assert!(leftovers.is_empty(), "temporary directory removed");
}

fn on_gateway(ms: Option<f64>) -> crate::summary::GatewayScenario {
    crate::summary::GatewayScenario {
        attempts: 1,
        success_ms: ms,
        outcome: if ms.is_some() {
            Outcome::Success
        } else {
            Outcome::Outstanding
        },
        last_failure_ms: None,
        last_error: None,
    }
}

fn gateway_result(
    url: &str,
    verdict: Verdict,
    succeeded: u64,
    scheduled: u64,
) -> crate::summary::GatewayResult {
    crate::summary::GatewayResult {
        url: url.into(),
        container: None,
        verdict,
        reason: format!("{url} {}", verdict.as_str()),
        scenarios: ScenarioCounts {
            scheduled,
            started: scheduled,
            succeeded,
            failed: 0,
            outstanding: scheduled - succeeded,
        },
        latency_ms: crate::summary::LatencyStats::default(),
        time_to_usable: crate::summary::censored::time_to_usable(&[], &[], 0),
        key_creations: crate::summary::AttemptCounts::default(),
    }
}

#[test]
fn fleet_shards_merge_per_gateway_from_the_records_and_name_the_losing_gateway_per_shard() {
    let root = tempfile::tempdir().unwrap();
    // Shard 0: both gateways get every key. Shard 1: gateway 2 loses seq 3.
    let fleet_record = |seq: u64, g2: Option<f64>| {
        let both = g2.is_some();
        ScenarioRecord {
            gateways: vec![on_gateway(Some(10.0)), on_gateway(g2)],
            ..record(
                seq,
                if both {
                    Outcome::Success
                } else {
                    Outcome::Outstanding
                },
                both.then_some(g2.unwrap_or(0.0)),
            )
        }
    };
    let a = vec![fleet_record(0, Some(30.0)), fleet_record(2, Some(50.0))];
    let b = vec![fleet_record(1, Some(20.0)), fleet_record(3, None)];
    let dirs = vec![
        write_shard(root.path(), 0, 2, "f", &a),
        write_shard(root.path(), 1, 2, "f", &b),
    ];
    for (k, dir) in dirs.iter().enumerate() {
        let path = dir.join("summary.json");
        let mut s: Summary =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let lost = k == 1;
        s.gateways = vec![
            gateway_result("http://g1", Verdict::Pass, 2, 2),
            gateway_result(
                "http://g2",
                if lost { Verdict::Hang } else { Verdict::Pass },
                2 - lost as u64,
                2,
            ),
        ];
        s.fleet = Some(crate::summary::FleetStats {
            gateways: 2,
            usable_everywhere: 2 - lost as u64,
            share_usable_everywhere: 0.0,
            first_ms: Default::default(),
            median_ms: Default::default(),
            last_ms: Default::default(),
            spread_ms: Default::default(),
            fetches_by_node: Vec::new(),
        });
        std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
    }
    let s = merge(&root.path().join("m"), &dirs).unwrap();
    assert_eq!(s.gateways.len(), 2);
    let (g1, g2) = (&s.gateways[0], &s.gateways[1]);
    assert_eq!(g1.verdict, Verdict::Pass, "{}", g1.reason);
    assert_eq!((g1.scenarios.succeeded, g1.latency_ms.count), (4, 4));
    assert_eq!(g2.verdict, Verdict::Hang);
    assert!(
        g2.reason.starts_with("shard 1/2 ended hang: http://g2"),
        "{}",
        g2.reason
    );
    assert_eq!(
        (g2.time_to_usable.usable, g2.time_to_usable.censored),
        (3, 1)
    );
    let fleet = s.fleet.unwrap();
    assert_eq!(fleet.usable_everywhere, 3);
    assert!((fleet.share_usable_everywhere - 0.75).abs() < 1e-9);
    assert_eq!(fleet.spread_ms.count, 3);
    // Spreads 20, 40 and 10 ms: the largest is 40.
    assert!(
        (fleet.spread_ms.max.unwrap() - 40.0).abs() < 0.1,
        "{:?}",
        fleet.spread_ms
    );

    // Shards of different fleets are refused.
    let path = dirs[1].join("summary.json");
    let mut other: Summary =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    other.gateways[1].url = "http://elsewhere".into();
    std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
    let text = format!("{:#}", merge(&root.path().join("m2"), &dirs).unwrap_err());
    assert!(
        text.contains("different gateways") && text.contains("http://elsewhere"),
        "{text}"
    );
}
