//! After the load: turn what was recorded into the summary and write the run's files.
//!
//! Order of writes: `fetches.json`, `report.txt`, `summary.md`, plots, then `summary.json`, and
//! only then `latest` is moved, so `latest/summary.json` is always complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::client::Endpoints;
use super::options::RunOptions;
use super::output::RunDir;
use super::record::{Collected, LiveCounters, Timeline};
use super::schedule::ScheduleReport;
use super::stop::StopCause;
use crate::protocol::{FetchRecord, MockStats};
use crate::summary::reloads::{ReloadInput, reload_stats};
use crate::summary::{
    GatewayInfo, LatencyStats, ReloadStats, RunFiles, SCHEMA_VERSION, ScenarioConfig,
    ScenarioCounts, SchedulerStats, Summary, TopRow, Verdict,
};

/// Everything the load phase produced.
pub struct LoadOutcome {
    /// Why it stopped.
    pub cause: StopCause,
    /// Mock counters at the start.
    pub baseline: MockStats,
    /// Mock counters last seen.
    pub final_stats: Option<MockStats>,
    /// The scheduler's report.
    pub schedule: ScheduleReport,
    /// The collector's state.
    pub collected: Collected,
    /// Live counters.
    pub counters: Arc<LiveCounters>,
    /// Per-second series.
    pub timeline: Arc<Timeline>,
    /// Load start.
    pub origin: Instant,
    /// Load start, Unix ms.
    pub origin_unix_ms: u64,
    /// Stop, Unix ms.
    pub end_unix_ms: u64,
    /// Load start to stop.
    pub elapsed: Duration,
    /// Whether every scenario handed in its record.
    pub drained: bool,
    /// Gateway version, if it told.
    pub gateway_version: Option<String>,
    /// Where the version came from.
    pub gateway_version_source: String,
    /// Container stats sampler, under compose.
    pub sampler: Option<crate::evidence::StatsSampler>,
}

/// What one run knows about itself.
pub struct RunContext {
    /// Validated options.
    pub options: RunOptions,
    /// Its directory.
    pub dir: RunDir,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// A summary plus the files that accompany it.
pub struct Finished {
    /// The summary.
    pub summary: Summary,
    /// The mock's fetch log for the run window.
    pub fetches: Vec<FetchRecord>,
    /// Unfinished rows for `report.txt`.
    pub unfinished: Vec<TopRow>,
    /// Records kept for plots.
    pub plot_points: Vec<crate::summary::ScenarioRecord>,
    /// Fetch times, seconds since the load started.
    pub fetch_offsets_s: Vec<f64>,
    /// Container stats sampler, under compose.
    pub sampler: Option<crate::evidence::StatsSampler>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl RunContext {
    /// The context of a run in `dir`.
    pub fn new(options: &RunOptions, dir: &RunDir, started_at: DateTime<Utc>) -> Self {
        Self {
            options: options.clone(),
            dir: dir.clone(),
            started_at,
        }
    }

    fn config(&self, initial_policies: u64) -> ScenarioConfig {
        let o = &self.options;
        ScenarioConfig {
            rate_per_s: o.rate,
            duration_s: o.duration.as_secs_f64(),
            trigger: o.trigger.as_str().to_owned(),
            deadline_s: o.deadline.as_secs_f64(),
            stall_timeout_s: o.stall_timeout.as_secs_f64(),
            request_timeout_s: o.request_timeout.as_secs_f64(),
            backoff: o.backoff.to_config(),
            initial_policies,
        }
    }

    /// A summary with nothing measured yet.
    fn empty_summary(&self, verdict: Verdict, reason: String) -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            label: self.options.label.clone(),
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(Utc::now()),
            kit_version: env!("CARGO_PKG_VERSION").to_owned(),
            config: self.config(0),
            gateway: GatewayInfo {
                url: self.options.gateway.clone(),
                version: None,
                version_source: "unknown".into(),
                is_stub: false,
            },
            verdict,
            reason,
            scenarios: ScenarioCounts {
                scheduled: self.options.scheduled,
                ..Default::default()
            },
            latency_ms: crate::summary::stats::latency_stats(
                &crate::summary::histogram::new_latency_histogram(),
            ),
            top: Vec::new(),
            reloads: ReloadStats::default(),
            scheduler: SchedulerStats {
                late_threshold_ms: super::LATE_THRESHOLD.as_secs_f64() * 1000.0,
                ..Default::default()
            },
            timeline: Vec::new(),
            files: RunFiles::default(),
            environment: None,
        }
    }

    /// An `infra_error` summary: nothing was loaded.
    pub fn infra_error(&self, reason: String) -> Finished {
        Finished {
            summary: self.empty_summary(Verdict::InfraError, reason),
            fetches: Vec::new(),
            unfinished: Vec::new(),
            plot_points: Vec::new(),
            fetch_offsets_s: Vec::new(),
            sampler: None,
        }
    }
}

/// Builds the summary from the load's outcome, reading the mock's fetch log.
pub async fn summarize(ctx: &RunContext, endpoints: &Endpoints, load: LoadOutcome) -> Finished {
    let mut notes = Vec::new();
    let fetch_log = tokio::time::timeout(
        Duration::from_secs(5),
        endpoints.mock_fetches(load.origin_unix_ms),
    )
    .await;
    let all_fetches = match fetch_log {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            notes.push(format!("fetch log unavailable: {e}"));
            Vec::new()
        }
        Err(_) => {
            notes.push("fetch log unavailable: the dashboard did not answer in 5 s".into());
            Vec::new()
        }
    };
    let fetches: Vec<FetchRecord> = all_fetches
        .into_iter()
        .filter(|f| f.received_at_ms >= load.origin_unix_ms && f.received_at_ms <= load.end_unix_ms)
        .collect();
    let accepted: Vec<&FetchRecord> = fetches.iter().filter(|f| f.authorized).collect();
    let fetch_offsets_s: Vec<f64> = accepted
        .iter()
        .map(|f| (f.received_at_ms.saturating_sub(load.origin_unix_ms)) as f64 / 1000.0)
        .collect();

    let reloads = reload_summary(ctx, &load, &accepted, &fetches);
    let c = &load.collected;
    let started = load.schedule.started;
    // Records that never arrived (drain timeout) are still waiting: count them as outstanding.
    let outstanding = started.saturating_sub(c.succeeded + c.failed);
    let scenarios = ScenarioCounts {
        scheduled: ctx.options.scheduled,
        started,
        succeeded: c.succeeded,
        failed: c.failed,
        outstanding,
    };
    let latency_ms = crate::summary::stats::latency_stats(&c.latency_us);
    let (verdict, mut reason) = verdict(ctx, &load, &scenarios, &latency_ms, &reloads);
    if !load.drained {
        notes.push("some scenarios did not stop within 5 s and count as outstanding".into());
    }
    if let Some(e) = &c.write_error {
        notes.push(format!("scenarios.jsonl is incomplete: {e}"));
    }
    if !notes.is_empty() {
        reason = format!("{reason} ({})", notes.join("; "));
    }

    let seconds = load.elapsed.as_secs() as usize + 1;
    let mut fetches_per_second = vec![0u64; seconds];
    for offset in &fetch_offsets_s {
        if let Some(slot) = fetches_per_second.get_mut(*offset as usize) {
            *slot += 1;
        }
    }
    let mut summary = ctx.empty_summary(verdict, reason);
    // `started_at` is when the load started, not when the runner began waiting for readiness.
    if let Some(origin) = DateTime::<Utc>::from_timestamp_millis(load.origin_unix_ms as i64) {
        summary.started_at = rfc3339(origin);
    }
    summary.config.initial_policies = load.baseline.policies_served;
    summary.gateway.version = load.gateway_version.clone();
    summary.gateway.version_source = load.gateway_version_source.clone();
    summary.gateway.is_stub = load
        .gateway_version
        .as_deref()
        .is_some_and(|v| v.starts_with("stub/"));
    summary.scenarios = scenarios;
    summary.latency_ms = latency_ms;
    summary.top = c.top.iter().map(super::record::top_row).collect();
    summary.reloads = reloads;
    summary.scheduler = scheduler_stats(&load.schedule);
    summary.timeline = load.timeline.samples(seconds, &fetches_per_second);
    Finished {
        summary,
        fetches,
        unfinished: load.collected.unfinished,
        plot_points: load.collected.plot_points,
        fetch_offsets_s,
        sampler: load.sampler,
    }
}

fn reload_summary(
    ctx: &RunContext,
    load: &LoadOutcome,
    accepted: &[&FetchRecord],
    all: &[FetchRecord],
) -> ReloadStats {
    let end = load
        .final_stats
        .clone()
        .unwrap_or_else(|| load.baseline.clone());
    let triggers_sent = match ctx.options.trigger {
        super::Trigger::Notify => end.published.saturating_sub(load.baseline.published),
        super::Trigger::Reload | super::Trigger::Group => load
            .counters
            .triggers
            .load(std::sync::atomic::Ordering::Relaxed),
        super::Trigger::None => 0,
    };
    let input = ReloadInput {
        fetch_times_ms: accepted.iter().map(|f| f.received_at_ms).collect(),
        fetch_durations_us: accepted.iter().map(|f| f.duration_us).collect(),
        window_start_ms: load.origin_unix_ms,
        window_end_ms: load.end_unix_ms,
        last_add_ms: load
            .collected
            .last_add_ms
            .map(|ms| load.origin_unix_ms + ms.round() as u64),
        triggers_sent,
        rejected_fetches: all.iter().filter(|f| !f.authorized).count() as u64,
        publish_errors: end
            .publish_errors
            .saturating_sub(load.baseline.publish_errors),
    };
    reload_stats(&input)
}

fn scheduler_stats(report: &ScheduleReport) -> SchedulerStats {
    let h = &report.lag_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let (p50, p99, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        )
    };
    SchedulerStats {
        lag_p50_ms: p50,
        lag_p99_ms: p99,
        lag_max_ms: max,
        late_starts: report.late_starts,
        late_threshold_ms: super::LATE_THRESHOLD.as_secs_f64() * 1000.0,
        runner_was_bottleneck: report.started > 0 && report.late_starts * 100 > report.started,
    }
}

fn verdict(
    ctx: &RunContext,
    load: &LoadOutcome,
    n: &ScenarioCounts,
    latency: &LatencyStats,
    reloads: &ReloadStats,
) -> (Verdict, String) {
    let lost = match reloads.last_fetch_after_last_add_s {
        Some(gap) if gap < 0.0 => format!(
            "; the last policy fetch came {:.2}s BEFORE the last policy add (lost reload triggers)",
            -gap
        ),
        Some(gap) => format!("; the last policy fetch came {gap:.2}s after the last policy add"),
        None => String::new(),
    };
    // What the waiting scenarios last saw tells "not loaded yet" from "gateway gone".
    let last_error = load
        .collected
        .unfinished
        .iter()
        .find_map(|r| r.last_error.as_deref())
        .map(|e| format!("; last answer seen: {e}"))
        .unwrap_or_default();
    let lost = format!("{lost}{last_error}");
    match &load.cause {
        StopCause::Signal(signal) => (
            Verdict::Interrupted,
            format!(
                "interrupted by {} after {:.1}s: {} of {} started scenarios succeeded, {} waiting",
                match signal {
                    crate::shutdown::Signal::Interrupt => "Ctrl-C (SIGINT)",
                    crate::shutdown::Signal::Terminate => "SIGTERM",
                },
                load.elapsed.as_secs_f64(),
                n.succeeded,
                n.started,
                n.outstanding
            ),
        ),
        StopCause::Fatal(reason) => (Verdict::InfraError, reason.clone()),
        // Notifications lost on the way are the kit's failure, not the gateway's lost triggers.
        StopCause::Stall(_) | StopCause::Deadline if reloads.publish_errors > 0 => (
            Verdict::InfraError,
            format!(
                "{} of {} scenarios never got their key, but {} PolicyChanged notification(s) could not be published on Redis: \
                 the gateway was never told about the newest policies, so this is not a gateway hang (check Redis and the dashboard's log){last_error}",
                n.outstanding, n.started, reloads.publish_errors
            ),
        ),
        StopCause::Stall(reason) => (
            Verdict::Hang,
            format!(
                "{} of {} scenarios never got their key: {reason}{lost}",
                n.outstanding, n.started
            ),
        ),
        StopCause::Deadline => (
            Verdict::Hang,
            format!(
                "{} of {} scenarios still waited {:.0}s after the last scheduled start{lost}",
                n.outstanding,
                n.started,
                ctx.options.deadline.as_secs_f64()
            ),
        ),
        StopCause::Completed if n.failed > 0 => (
            Verdict::InfraError,
            format!(
                "{} of {} scenarios failed: {}",
                n.failed,
                n.started,
                load.collected.failure_examples.join(" | ")
            ),
        ),
        StopCause::Completed => (
            Verdict::Pass,
            format!(
                "all {} scenarios got their key; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                n.succeeded,
                latency.p50.unwrap_or(0.0),
                latency.p99.unwrap_or(0.0),
                latency.max.unwrap_or(0.0)
            ),
        ),
    }
}

/// The exit code a signal-stopped run asks for.
pub fn signal_exit_code(summary: &Summary) -> Option<u8> {
    if summary.verdict != Verdict::Interrupted {
        return None;
    }
    Some(if summary.reason.contains("SIGTERM") {
        143
    } else {
        130
    })
}

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
    let report = crate::summary::render::render_report_txt(summary, &finished.unfinished);
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
    let input = crate::plot::RunPlotInput {
        summary: &finished.summary,
        records: &finished.plot_points,
        fetch_offsets_s: &finished.fetch_offsets_s,
        // Wired at merge: the summary's per-second count of attempts that timed out.
        timed_out_per_s: None,
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

/// Writes the set summary of a `--runs N` series.
pub fn write_set(options: &RunOptions, runs: &[(RunDir, Summary)]) -> anyhow::Result<()> {
    use crate::summary::histogram::{decode_histogram, merge_histograms};
    use crate::summary::set::{RunSet, SET_FILE, SET_SCHEMA_VERSION, per_run_values};

    let created = Utc::now();
    let label_dir = options.out.join(&options.label);
    let name = format!("set-{}", created.format("%Y%m%dT%H%M%SZ"));
    let set_dir = label_dir.join(&name);
    std::fs::create_dir_all(&set_dir)
        .map_err(|e| anyhow::anyhow!("cannot create set directory {}: {e}", set_dir.display()))?;
    let histograms: Vec<_> = runs
        .iter()
        .filter_map(|(_, s)| decode_histogram(&s.latency_ms.histogram_b64).ok())
        .collect();
    let merged = merge_histograms(histograms.iter());
    let set = RunSet {
        schema_version: SET_SCHEMA_VERSION,
        label: options.label.clone(),
        created_at: rfc3339(created),
        runs: runs
            .iter()
            .map(|(dir, _)| format!("../{}", dir.name))
            .collect(),
        merged_latency_ms: crate::summary::stats::latency_stats(&merged),
        per_run: runs
            .iter()
            .map(|(dir, s)| per_run_values(&format!("../{}", dir.name), s))
            .collect(),
    };
    super::output::write_atomic(&set_dir.join(SET_FILE), &serde_json::to_vec_pretty(&set)?)?;
    super::output::point_link(&label_dir, "latest-set", &name)?;
    eprintln!("set of {} runs: {}", runs.len(), set_dir.display());
    Ok(())
}
