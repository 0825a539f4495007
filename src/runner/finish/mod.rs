//! After the load: turn what was recorded into the summary, then write the run's files.
//!
//! Parts: this file (what a run knows about itself, and the summary's assembly), [`facts`]
//! (the facts the verdict is decided on), [`unserved`] (successes no fetch could explain),
//! [`version`] (the gateway version's fallbacks), [`write`] (the run's files), [`set`] (the
//! `--runs N` set summary). The verdict itself is [`super::verdict`].

mod facts;
pub mod fleet;
mod set;
mod unserved;
mod version;
mod write;

pub use fleet::FleetOutcome;
pub use set::write_set;
pub use write::{write_counts_only, write_run};

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::client::Endpoints;
use super::options::RunOptions;
use super::output::RunDir;
use super::recheck::EndTally;
use super::record::{Collected, LiveCounters, Timeline};
use super::schedule::ScheduleReport;
use super::stop::StopCause;
use super::watch::WatchEnd;
use crate::protocol::{FetchRecord, MockStats};
use crate::summary::{
    GatewayInfo, ReloadStats, RunFiles, SCHEMA_VERSION, ScenarioConfig, ScenarioCounts,
    SchedulerStats, Summary, TopRow, Verdict,
};

/// Everything the load phase produced.
pub struct LoadOutcome {
    /// Why it stopped.
    pub cause: StopCause,
    /// Mock counters at the start.
    pub baseline: MockStats,
    /// What the watcher saw last (the mock's counters among it).
    pub watch: WatchEnd,
    /// What the scenarios and the final re-check reported.
    pub tally: Arc<EndTally>,
    /// How the gateway container died or restarted during the run (compose), if it did.
    pub container_death: Option<String>,
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
    /// Per-gateway records, with more than one gateway.
    pub fleet: Option<FleetOutcome>,
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

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
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
    pub(super) fn empty_summary(&self, verdict: Verdict, reason: String) -> Summary {
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
            time_to_usable: None,
            attempts: None,
            gateways: Vec::new(),
            fleet: None,
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
    let fetch_log_ok = matches!(fetch_log, Ok(Ok(_)));
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
        .iter()
        .filter(|f| f.received_at_ms >= load.origin_unix_ms && f.received_at_ms <= load.end_unix_ms)
        .cloned()
        .collect();
    let accepted: Vec<&FetchRecord> = fetches.iter().filter(|f| f.authorized).collect();
    let fetch_offsets_s: Vec<f64> = accepted
        .iter()
        .map(|f| (f.received_at_ms.saturating_sub(load.origin_unix_ms)) as f64 / 1000.0)
        .collect();

    let end = match tokio::time::timeout(Duration::from_secs(2), endpoints.stats()).await {
        Ok(Ok(stats)) => stats,
        _ => load
            .watch
            .last_stats
            .clone()
            .unwrap_or_else(|| load.baseline.clone()),
    };
    let delta = facts::MockDelta::between(&load.baseline, &end, ctx.options.gateways);
    let reloads = facts::reload_summary(ctx, &load, &delta, &accepted, &fetches);
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
    // Re-check successes come after the stop: every fetch since the load started counts.
    let since_origin: Vec<&FetchRecord> = all_fetches
        .iter()
        .filter(|f| f.authorized && f.received_at_ms >= load.origin_unix_ms)
        .collect();
    let unserved = fetch_log_ok
        .then(|| {
            unserved::count_unserved(
                &ctx.dir.path.join("scenarios.jsonl.partial"),
                load.origin_unix_ms,
                &since_origin,
            )
        })
        .flatten();
    let facts = facts::verdict_facts(
        ctx,
        &load,
        &delta,
        &scenarios,
        &latency_ms,
        &reloads,
        unserved,
    );
    let (mut verdict, mut reason) = super::verdict::decide_verdict(&facts);
    let gateways = match &load.fleet {
        Some(fleet) => {
            let results = fleet::gateway_results(
                &scenarios,
                &facts,
                &load,
                fleet,
                &ctx.options.fleet,
                &ctx.options.fleet_containers,
            );
            (verdict, reason) = fleet::fleet_verdict((verdict, reason), &results);
            results
        }
        None => Vec::new(),
    };
    if let Some(count) = unserved.filter(|c| *c > 0)
        && verdict != Verdict::InfraError
    {
        notes.push(format!(
            "{count} success(es) came before any policy fetch had served their policy"
        ));
    }
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
    summary.scheduler = facts::scheduler_stats(&load.schedule);
    summary.timeline = load.timeline.samples(seconds, &fetches_per_second);
    summary.fleet = load.fleet.as_ref().map(|f| {
        fleet::fleet_stats(
            &f.collected.spread,
            gateways.len(),
            ctx.options.scheduled,
            &fetches,
        )
    });
    summary.gateways = gateways;
    super::record::fill_derived(
        &mut summary,
        &load.collected,
        &load.timeline.outcomes,
        load.elapsed,
        &fetch_offsets_s,
    );
    Finished {
        summary,
        fetches,
        unfinished: load.collected.unfinished,
        plot_points: load.collected.plot_points,
        fetch_offsets_s,
        sampler: load.sampler,
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
