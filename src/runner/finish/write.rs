//! Writing a run's files: `fetches.json`, `report.txt`, `summary.md`, plots, then
//! `summary.json`, and only then `latest` is moved, so `latest/summary.json` is always complete.
//! Evidence is collected first, and the gateway version falls back to what it gives.

use super::super::record::LiveCounters;
use super::version::fill_version_from_evidence;
use super::{Finished, RunContext};
use crate::summary::{ScenarioCounts, Summary, Verdict};

/// Writes every file of the run, then moves `latest`.
pub async fn write_run(
    ctx: &RunContext,
    mut finished: Finished,
    evidence: Option<crate::evidence::Evidence>,
) -> anyhow::Result<Summary> {
    let dir = &ctx.dir;
    let secrets = ctx.options.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let scrub = |text: String| crate::telemetry::redact(&text, &secrets);
    if let Some(evidence) = evidence {
        let sampler = finished.sampler.take();
        let environment = evidence.finish(sampler, &dir.path).await;
        let as_json = serde_json::to_value(&environment).unwrap_or_default();
        fill_version_from_evidence(&mut finished.summary.gateway, &as_json);
        finished.summary.environment = Some(environment);
    }
    if !dir.path.join("scenarios.jsonl.partial").exists()
        && !dir.path.join("scenarios.jsonl").exists()
    {
        dir.write_atomic("scenarios.jsonl", b"")?;
    } else if dir.path.join("scenarios.jsonl.partial").exists() {
        dir.seal_scenarios()?;
    }
    let summary = &finished.summary;
    dir.write_atomic(
        "fetches.json",
        &serde_json::to_vec_pretty(&finished.fetches)?,
    )?;
    let report = super::super::record::report_txt(
        &dir.path.join("scenarios.jsonl"),
        summary,
        &finished.unfinished,
    );
    dir.write_atomic("report.txt", scrub(report).as_bytes())?;
    let markdown = crate::summary::render::render_markdown(summary);
    dir.write_atomic("summary.md", scrub(markdown).as_bytes())?;
    write_plots(ctx, &finished);
    let json = serde_json::to_string_pretty(summary)?;
    dir.write_atomic("summary.json", scrub(json).as_bytes())?;
    dir.point_latest()?;
    Ok(finished.summary)
}

fn write_plots(ctx: &RunContext, finished: &Finished) {
    // Key-creation attempts that timed out (request or connect), per second of the run.
    let timed_out_per_s: Option<Vec<u64>> = finished.summary.attempts.as_ref().map(|a| {
        let mut per_s = Vec::new();
        for s in &a.timeline {
            let i = usize::try_from(s.second).unwrap_or(usize::MAX);
            if i < 100_000 {
                if per_s.len() <= i {
                    per_s.resize(i + 1, 0);
                }
                per_s[i] += s.key_creations.timed_out + s.key_creations.connect_timed_out;
            }
        }
        per_s
    });
    let input = crate::plot::RunPlotInput {
        summary: &finished.summary,
        records: &finished.plot_points,
        fetch_offsets_s: &finished.fetch_offsets_s,
        timed_out_per_s: timed_out_per_s.as_deref(),
    };
    let secrets = ctx.options.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for (name, file) in crate::plot::run_plot_files(&input) {
        let written = file.and_then(|text| {
            let text = crate::telemetry::redact(&text, &secrets);
            ctx.dir.write_atomic(name, text.as_bytes())
        });
        if let Err(e) = written {
            tracing::warn!("could not write {name}: {e:#}");
        }
    }
}

/// On a second Ctrl-C: writes at once a summary from the live counters only, then `latest`.
pub fn write_counts_only(
    ctx: &RunContext,
    counters: &LiveCounters,
    signal: crate::shutdown::Signal,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let started = counters.started.load(Relaxed);
    let succeeded = counters.succeeded.load(Relaxed);
    let failed = counters.failed.load(Relaxed);
    let reason = format!(
        "interrupted twice ({}): the run stopped at once and this summary holds counts only",
        if signal == crate::shutdown::Signal::Terminate {
            "SIGTERM"
        } else {
            "Ctrl-C (SIGINT)"
        }
    );
    let mut summary = ctx.empty_summary(Verdict::Interrupted, reason);
    summary.scenarios = ScenarioCounts {
        scheduled: ctx.options.scheduled,
        started,
        succeeded,
        failed,
        outstanding: started.saturating_sub(succeeded + failed),
    };
    if let Ok(json) = serde_json::to_vec_pretty(&summary) {
        let _ = ctx.dir.write_atomic("summary.json", &json);
        let _ = ctx.dir.point_latest();
    }
}
