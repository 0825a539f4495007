//! Writing sets: `set add` (take the run `latest` now names into the set), `set finish`
//! (`set.json`, `latest-set`, the cross-run lines, the exit status), and the set that
//! `reload-repro run --runs N` writes itself.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};

use super::outcome::{self, Expect, RunFigures};
use super::plan::{self, Plan};
use crate::runner::RunOptions;
use crate::runner::output::{RunDir, point_link, write_atomic};
use crate::shutdown::Signal;
use crate::summary::histogram::{decode_histogram, merge_histograms};
use crate::summary::set::{
    RunIdentity, RunSet, SET_FILE, SET_SCHEMA_VERSION, per_run_values, set_identity,
};
use crate::summary::{Summary, Verdict};

/// Symlink in a label directory to its newest complete set.
pub const LATEST_SET: &str = "latest-set";

/// Builds `set.json` from `(run directory relative to the set, summary)` pairs in run order.
pub fn build_set(label: &str, created_at: String, runs: &[(String, Summary)]) -> RunSet {
    let histograms: Vec<_> = runs
        .iter()
        .filter(|(_, s)| s.latency_ms.count > 0)
        .filter_map(|(_, s)| decode_histogram(&s.latency_ms.histogram_b64).ok())
        .collect();
    let merged = merge_histograms(histograms.iter());
    let identities: Vec<(String, RunIdentity)> = runs
        .iter()
        .map(|(dir, s)| (dir.clone(), RunIdentity::of(s)))
        .collect();
    let (identity, mixed) = set_identity(&identities);
    RunSet {
        schema_version: SET_SCHEMA_VERSION,
        label: label.to_owned(),
        created_at,
        runs: runs.iter().map(|(dir, _)| dir.clone()).collect(),
        merged_latency_ms: crate::summary::stats::latency_stats(&merged),
        per_run: runs.iter().map(|(dir, s)| per_run_values(dir, s)).collect(),
        identity,
        mixed,
        expect: None,
        interrupted: false,
    }
}

/// The set of a `reload-repro run --runs N` series, next to its runs.
pub fn write_set(options: &RunOptions, runs: &[(RunDir, Summary)]) -> anyhow::Result<()> {
    let created = Utc::now();
    let label_dir = options.out.join(&options.label);
    let name = plan::create_set_dir(&label_dir, &created.format("%Y%m%dT%H%M%SZ").to_string())?;
    let pairs: Vec<(String, Summary)> = runs
        .iter()
        .map(|(dir, s)| (format!("../{}", dir.name), s.clone()))
        .collect();
    let set = build_set(
        &options.label,
        created.to_rfc3339_opts(SecondsFormat::Millis, true),
        &pairs,
    );
    let set_dir = label_dir.join(&name);
    write_atomic(&set_dir.join(SET_FILE), &serde_json::to_vec_pretty(&set)?)?;
    point_link(&label_dir, LATEST_SET, &name)?;
    eprintln!("set of {} runs: {}", runs.len(), set_dir.display());
    Ok(())
}

/// What `set add` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// A new run, now in the set: its directory.
    Run(PathBuf),
    /// `latest` names no run newer than the set's start that the set does not hold yet.
    Nothing,
}

/// The set directory's label directory (`OUT/LABEL`).
fn label_dir_of(set_dir: &Path) -> anyhow::Result<&Path> {
    set_dir
        .parent()
        .with_context(|| format!("--set {}: not a set directory", set_dir.display()))
}

/// `set add`: takes the run `OUT/LABEL/latest` points at into the set, if this set has not
/// seen it and it started after the set began (a run that wrote no summary leaves `latest`
/// where it was, so that older run must not be taken for this one).
pub fn add(set_dir: &Path) -> anyhow::Result<(Added, Option<Summary>)> {
    let mut plan = plan::read_plan(set_dir)?;
    let label_dir = label_dir_of(set_dir)?;
    let Ok(target) = std::fs::read_link(label_dir.join("latest")) else {
        return Ok((Added::Nothing, None));
    };
    let name = target.to_string_lossy().into_owned();
    let stamp = plan.set_name.trim_start_matches("set-");
    let stamp = stamp.split('-').next().unwrap_or(stamp);
    if plan.runs.contains(&name) || name.as_str() < stamp {
        return Ok((Added::Nothing, None));
    }
    let run_dir = label_dir.join(&name);
    let summary = crate::diff::load::read_summary(&run_dir.join("summary.json"))
        .with_context(|| format!("reading the summary of {}", run_dir.display()))?;
    plan.runs.push(name);
    plan::write_plan(set_dir, &plan)?;
    Ok((Added::Run(run_dir), Some(summary)))
}

/// The signal a run's interrupted summary names (its reason says which).
fn signal_of(s: &Summary) -> Option<Signal> {
    (s.verdict == Verdict::Interrupted).then(|| {
        if s.reason.contains("SIGTERM") {
            Signal::Terminate
        } else {
            Signal::Interrupt
        }
    })
}

/// What `set finish` produced.
pub struct Finished {
    /// The exit status of the set.
    pub exit_code: u8,
    /// The cross-run lines.
    pub report: String,
    /// The set written.
    pub set: RunSet,
}

/// `set finish`: writes `set.json`, moves `latest-set` (only for a set that ran to the end and
/// holds runs), and returns the cross-run lines and the exit status.
pub fn finish(set_dir: &Path, caught: Option<Signal>) -> anyhow::Result<Finished> {
    let plan: Plan = plan::read_plan(set_dir)?;
    let label_dir = label_dir_of(set_dir)?;
    let mut runs = Vec::new();
    for name in &plan.runs {
        let path = label_dir.join(name).join("summary.json");
        let summary = crate::diff::load::read_summary(&path)?;
        runs.push((format!("../{name}"), summary));
    }
    let mut set = build_set(
        &plan.label,
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        &runs,
    );
    if let Some(identity) = set.identity.as_mut()
        && identity.gateway_image.is_none()
    {
        // A run without container evidence (e.g. the image could not be pulled) still names it.
        identity.gateway_image = plan.gateway_image.clone();
    }
    let expect = Expect(plan.expect.clone());
    set.expect = plan
        .expect
        .first()
        .copied()
        .filter(|_| plan.expect.len() == 1);
    let mut verdicts: Vec<(Verdict, Option<Signal>)> = runs
        .iter()
        .map(|(_, s)| (s.verdict, signal_of(s)))
        .collect();
    let signalled = caught.is_some() || verdicts.iter().any(|(v, _)| *v == Verdict::Interrupted);
    let missing = (plan.runs_planned as usize).saturating_sub(runs.len());
    if !signalled {
        // A run that left no summary at all: the kit could not measure it.
        verdicts.extend(std::iter::repeat_n((Verdict::InfraError, None), missing));
    }
    let interrupted = signalled || missing > 0;
    set.interrupted = signalled;
    write_atomic(&set_dir.join(SET_FILE), &serde_json::to_vec_pretty(&set)?)?;
    let figures: Vec<RunFigures> = runs
        .iter()
        .map(|(_, s)| RunFigures {
            verdict: s.verdict,
            // The censored median over all scheduled scenarios; a schema-1 summary (no
            // `time_to_usable`) falls back to the survivors' median.
            time_to_usable_ms: s
                .time_to_usable
                .as_ref()
                .map_or(s.latency_ms.p50, |t| t.p50.ms),
            time_to_usable_reached: s.time_to_usable.as_ref().is_none_or(|t| t.p50.reached),
            outstanding_share: (s.scenarios.scheduled > 0)
                .then(|| s.scenarios.outstanding as f64 / s.scenarios.scheduled as f64),
        })
        .collect();
    // A set of one run ends with that run's verdict block (the runner printed it last): the
    // cross-run lines would only say it again. A set of several ends with this one block.
    let several = runs.len() > 1;
    let mut report = if several {
        outcome::cross_run_lines(&plan.label, &plan.set_name, &figures, &expect)
    } else {
        String::new()
    };
    if several && let Some(image) = set.identity.as_ref().and_then(|i| i.gateway_image.as_ref()) {
        report.push_str(&format!("  Gateway image:   {image}\n"));
    }
    for m in &set.mixed {
        report.push_str(&format!("  warning: {m}\n"));
    }
    if interrupted || runs.is_empty() {
        report.push_str(&format!(
            "  {LATEST_SET} not moved: this set {}; `diff` keeps using the previous one\n",
            if runs.is_empty() {
                "holds no run"
            } else if signalled {
                "was interrupted"
            } else {
                "misses runs"
            }
        ));
    } else {
        point_link(label_dir, LATEST_SET, &plan.set_name)?;
    }
    if several {
        report.push_str(&format!("  set directory:   {}\n", set_dir.display()));
    }
    let exit_code = outcome::exit_code(&verdicts, &expect, caught);
    Ok(Finished {
        exit_code,
        report,
        set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::set::sample_summary;

    fn begin(out: &Path, runs: u32, expect: &str) -> PathBuf {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("docker-compose.yml"), "a").unwrap();
        std::fs::create_dir_all(repo.path().join("run")).unwrap();
        let args = plan::BeginArgs {
            out: out.to_owned(),
            image: Some("tykio/tyk-gateway:v2.9.4".into()),
            stub: None,
            label: Some("2.9.4".into()),
            expect: expect.into(),
            repo: repo.path().to_owned(),
        };
        let runs = runs.to_string();
        let text = plan::begin(&args, move |k| (k == "RUNS").then(|| runs.clone())).unwrap();
        PathBuf::from(
            text.lines()
                .find_map(|l| l.strip_prefix("set_dir="))
                .unwrap(),
        )
    }

    /// What the runner does: a run directory with a summary, then `latest` moved to it.
    fn fake_run(label_dir: &Path, name: &str, verdict: Verdict) {
        let dir = label_dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = sample_summary();
        s.verdict = verdict;
        std::fs::write(dir.join("summary.json"), serde_json::to_vec(&s).unwrap()).unwrap();
        point_link(label_dir, "latest", name).unwrap();
    }

    #[test]
    fn a_set_takes_only_its_own_runs_and_a_missing_summary_is_seen() {
        let out = tempfile::tempdir().unwrap();
        let label_dir = out.path().join("2.9.4");
        // A run of an earlier invocation: `latest` names it before this set starts.
        fake_run(&label_dir, "20200101T000000Z", Verdict::Pass);
        let set_dir = begin(out.path(), 2, "hang");
        assert_eq!(
            add(&set_dir).unwrap().0,
            Added::Nothing,
            "an older run is not ours"
        );
        fake_run(&label_dir, "29990101T000000Z", Verdict::Hang);
        assert!(matches!(add(&set_dir).unwrap().0, Added::Run(_)));
        assert_eq!(
            add(&set_dir).unwrap().0,
            Added::Nothing,
            "the same run twice"
        );
        fake_run(&label_dir, "29990101T000000Z-2", Verdict::Hang);
        assert!(matches!(add(&set_dir).unwrap().0, Added::Run(_)));
        let done = finish(&set_dir, None).unwrap();
        assert_eq!(done.exit_code, 0, "{}", done.report);
        assert_eq!(
            done.set.runs,
            ["../29990101T000000Z", "../29990101T000000Z-2"]
        );
        assert!(done.report.contains("hang 2/2"), "{}", done.report);
        let latest_set = std::fs::read_link(label_dir.join(LATEST_SET)).unwrap();
        assert_eq!(latest_set, set_dir.file_name().unwrap());
    }

    #[test]
    fn an_interrupted_set_is_written_but_does_not_become_the_latest() {
        let out = tempfile::tempdir().unwrap();
        let label_dir = out.path().join("2.9.4");
        let set_dir = begin(out.path(), 3, "pass");
        fake_run(&label_dir, "29990101T000000Z", Verdict::Pass);
        add(&set_dir).unwrap();
        let done = finish(&set_dir, Some(Signal::Interrupt)).unwrap();
        assert_eq!(done.exit_code, 130);
        assert!(done.set.interrupted);
        assert!(set_dir.join(SET_FILE).is_file());
        assert!(!label_dir.join(LATEST_SET).exists(), "{}", done.report);
    }

    #[test]
    fn a_set_whose_runs_hung_exits_1_when_pass_was_expected() {
        let out = tempfile::tempdir().unwrap();
        let set_dir = begin(out.path(), 1, "pass");
        fake_run(&out.path().join("2.9.4"), "29990101T000000Z", Verdict::Hang);
        add(&set_dir).unwrap();
        assert_eq!(finish(&set_dir, None).unwrap().exit_code, 1);
    }
}
