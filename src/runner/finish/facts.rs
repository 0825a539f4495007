//! The facts the summary's reload block and the verdict are computed from, gathered from the
//! load's outcome, the mock's final counters and the run's options. No decisions here: those
//! are [`super::super::verdict::decide_verdict`]'s.

use std::sync::atomic::Ordering::Relaxed;

use super::super::Trigger;
use super::super::schedule::ScheduleReport;
use super::super::verdict::{KitLoad, VerdictFacts};
use super::{LoadOutcome, RunContext};
use crate::protocol::{FetchRecord, MockStats};
use crate::summary::reloads::{ReloadInput, reload_stats};
use crate::summary::{LatencyStats, ReloadStats, ScenarioCounts, SchedulerStats};

/// What changed in the mock's counters during the run.
pub struct MockDelta {
    /// PolicyChanged published.
    pub published: u64,
    /// PUBLISH failures.
    pub publish_errors: u64,
    /// PUBLISHes that reached fewer subscribers than there are gateways.
    pub unheard: u64,
    /// PUBLISHes slower than `SLOW_PUBLISH_MS`.
    pub slow_publishes: u64,
    /// Slowest PUBLISH so far (the mock keeps no per-run maximum), ms.
    pub publish_max_ms: f64,
}

impl MockDelta {
    /// `end` minus `start`, for `gateways` gateways.
    pub fn between(start: &MockStats, end: &MockStats, gateways: u64) -> Self {
        Self {
            published: end.published.saturating_sub(start.published),
            publish_errors: end.publish_errors.saturating_sub(start.publish_errors),
            unheard: end
                .publishes_reaching_fewer_than(gateways)
                .saturating_sub(start.publishes_reaching_fewer_than(gateways)),
            slow_publishes: end.slow_publishes.saturating_sub(start.slow_publishes),
            publish_max_ms: end.publish_max_us as f64 / 1000.0,
        }
    }
}

/// The summary's reload block. Notifications nobody heard count as publish errors.
pub fn reload_summary(
    ctx: &RunContext,
    load: &LoadOutcome,
    delta: &MockDelta,
    accepted: &[&FetchRecord],
    all: &[FetchRecord],
) -> ReloadStats {
    let triggers_sent = match ctx.options.trigger {
        Trigger::Notify => delta.published,
        Trigger::Reload | Trigger::Group => load.counters.triggers.load(Relaxed),
        Trigger::None => 0,
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
        publish_errors: delta.publish_errors + delta.unheard,
    };
    reload_stats(&input)
}

/// The scheduler block: lag percentiles and late starts.
pub fn scheduler_stats(report: &ScheduleReport) -> SchedulerStats {
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
        late_threshold_ms: super::super::LATE_THRESHOLD.as_secs_f64() * 1000.0,
        runner_was_bottleneck: report.started > 0 && report.late_starts * 100 > report.started,
    }
}

/// Everything [`super::super::verdict::decide_verdict`] needs.
pub fn verdict_facts(
    ctx: &RunContext,
    load: &LoadOutcome,
    delta: &MockDelta,
    n: &ScenarioCounts,
    latency: &LatencyStats,
    reloads: &ReloadStats,
    unserved: Option<u64>,
) -> VerdictFacts {
    let scheduler = scheduler_stats(&load.schedule);
    let mut kit = KitLoad {
        lag_p99_ms: scheduler.lag_p99_ms,
        late_starts: scheduler.late_starts,
        started: n.started,
        scheduled: n.scheduled,
        adds: load.counters.adds.load(Relaxed),
        published: delta.published,
        slow_publishes: delta.slow_publishes,
        publish_max_ms: delta.publish_max_ms,
        dashboard_silence: match &load.cause {
            super::StopCause::DashboardSilent(reason) => Some(reason.clone()),
            _ => None,
        },
        behind: match &load.cause {
            super::StopCause::Saturated(reason) => Some(reason.clone()),
            _ => None,
        },
        ..Default::default()
    };
    load.tally.fill_adds(&mut kit);
    VerdictFacts {
        cause: load.cause.clone(),
        started: n.started,
        scheduled: n.scheduled,
        succeeded: n.succeeded,
        failed: n.failed,
        outstanding: n.outstanding,
        elapsed_s: load.elapsed.as_secs_f64(),
        deadline_s: ctx.options.deadline.as_secs_f64(),
        latency_ms: (latency.p50, latency.p99, latency.max),
        failure_examples: load.collected.failure_examples.clone(),
        last_fetch_after_last_add_s: reloads.last_fetch_after_last_add_s,
        // What the waiting scenarios last saw tells "not loaded yet" from "gateway gone".
        last_error: load
            .collected
            .unfinished
            .iter()
            .find_map(|r| r.last_error.clone()),
        gateways: ctx.options.gateways,
        publish_errors: delta.publish_errors,
        unheard_notifications: delta.unheard,
        trigger_failures: load.tally.trigger_failures(),
        outstanding_unheard: load.tally.unheard_outstanding(),
        recheck: load.tally.recheck_counts(),
        gateway_silence: load.watch.gateway_silence(),
        container_death: load.container_death.clone(),
        kit,
        unserved_successes: unserved.unwrap_or(0),
    }
}
