//! One summary from the shards' summaries and their per-scenario records (pure: no I/O).
//!
//! - counts, attempt counts and the per-second timelines add up (a second is the same second
//!   in every shard: they share one origin);
//! - latency, time to usable, the top rows and the scheduler's lag are recomputed from the
//!   merged per-scenario records with the summary module's functions; each censored scenario
//!   keeps the wait its own shard measured (its shard's end of run, recovered from that
//!   shard's `longest_wait_ms` and its earliest censored start);
//! - reload statistics come from the shared mock: the shard that finished last saw the most
//!   of it, so its block is taken, with runner-counted triggers (`reload`/`group`) added up
//!   and the last fetch re-measured against the run's last add;
//! - the verdict is [`super::verdict::merged_verdict`];
//! - fleet runs: `gateways` and `fleet` are [`super::fleet::merge_fleet`]'s.

use hdrhistogram::Histogram;

use super::check::ShardRun;
use super::fleet::{FleetShard, merge_fleet};
use super::verdict::{ShardOutcome, merged_verdict};
use crate::protocol::FetchRecord;
use crate::runner::record::fleet::FleetCollected;
use crate::runner::record::{Collected, MAX_UNFINISHED_ROWS};
use crate::summary::censored::{time_to_usable, waits_from_scheduled_us, weighted_ms_from_us};
use crate::summary::histogram::merge_histograms;
use crate::summary::stats::{latency_stats, top_rows};
use crate::summary::{
    AttemptCounts, AttemptSecond, AttemptStats, RunFiles, ScenarioCounts, ScenarioRecord,
    SchedulerStats, SecondSample, Summary, TopRow,
};

/// One shard with what its records gave.
pub struct ShardData {
    /// Directory and summary.
    pub run: ShardRun,
    /// Its records folded by the runner's collector.
    pub collected: Collected,
    /// Start lags of its records, microseconds.
    pub lag_us: Histogram<u64>,
    /// Its records folded per gateway by the runner's fleet collector (fleet runs).
    pub fleet: Option<FleetCollected>,
}

/// The merged summary and the companions its files need.
pub struct Merged {
    /// The merged summary.
    pub summary: Summary,
    /// Unfinished rows for `report.txt`.
    pub unfinished: Vec<TopRow>,
}

/// The shard that finished last: its view of the shared mock covers the most of the run.
pub fn latest_shard(shards: &[ShardData]) -> usize {
    (0..shards.len())
        .max_by(|&a, &b| {
            let at = |i: usize| &shards[i].run.summary.finished_at;
            at(a).cmp(at(b))
        })
        .unwrap_or(0)
}

/// Merges `shards` (ordered by shard index, at least one); `fetches` is the fetch log of the
/// [`latest_shard`].
pub fn combine(shards: &[ShardData], fetches: &[FetchRecord]) -> Merged {
    let summaries: Vec<&Summary> = shards.iter().map(|s| &s.run.summary).collect();
    let latest = latest_shard(shards);
    let mut out = summaries[0].clone();
    // Shards labelled alike keep the label; otherwise the run id names the merged run.
    if summaries.iter().any(|s| s.label != out.label)
        && let Some(info) = &out.shard
    {
        out.label = info.run_id.clone();
    }
    out.shard = None;
    out.environment = None;
    out.files = RunFiles::default();
    out.started_at = summaries
        .iter()
        .map(|s| s.started_at.clone())
        .min()
        .unwrap_or_default();
    out.finished_at = summaries
        .iter()
        .map(|s| s.finished_at.clone())
        .max()
        .unwrap_or_default();
    out.config.initial_policies = summaries
        .iter()
        .map(|s| s.config.initial_policies)
        .min()
        .unwrap_or(0);
    out.gateway.is_stub = summaries.iter().any(|s| s.gateway.is_stub);
    out.scenarios = summaries.iter().fold(ScenarioCounts::default(), |a, s| {
        let b = &s.scenarios;
        ScenarioCounts {
            scheduled: a.scheduled + b.scheduled,
            started: a.started + b.started,
            succeeded: a.succeeded + b.succeeded,
            failed: a.failed + b.failed,
            outstanding: a.outstanding + b.outstanding,
        }
    });

    let latency = merge_histograms(shards.iter().map(|s| &s.collected.latency_us));
    out.latency_ms = latency_stats(&latency);
    let tops: Vec<ScenarioRecord> = shards
        .iter()
        .flat_map(|s| s.collected.top.iter().cloned())
        .collect();
    out.top = top_rows(&tops, 10);
    let waits: Vec<_> = shards
        .iter()
        .flat_map(|s| {
            let end_ms = end_of_run_ms(&s.run.summary, &s.collected.censored_scheduled_us);
            waits_from_scheduled_us(&s.collected.censored_scheduled_us, end_ms)
        })
        .collect();
    out.time_to_usable = Some(time_to_usable(
        &weighted_ms_from_us(&latency),
        &waits,
        out.scenarios.scheduled,
    ));
    out.scheduler = scheduler(shards, &out);
    out.timeline = timeline(&summaries);
    out.reloads = summaries[latest].reloads.clone();
    let runner_counted = matches!(out.config.trigger.as_str(), "reload" | "group");
    if runner_counted {
        out.reloads.triggers_sent = summaries.iter().map(|s| s.reloads.triggers_sent).sum();
        let fetches = out.reloads.policy_fetches;
        out.reloads.coalescing_ratio =
            (fetches > 0).then(|| out.reloads.triggers_sent as f64 / fetches as f64);
    }
    let last_add = shards
        .iter()
        .filter_map(|s| s.collected.last_add_ms)
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
    if let (Some(after), Some(own), Some(all)) = (
        out.reloads.last_fetch_after_last_add_s,
        shards[latest].collected.last_add_ms,
        last_add,
    ) {
        out.reloads.last_fetch_after_last_add_s = Some(after + (own - all) / 1_000.0);
    }
    out.attempts = attempts(&summaries, latest, runner_counted);
    let fleet_shards: Vec<FleetShard<'_>> = shards
        .iter()
        .map(|s| FleetShard {
            summary: &s.run.summary,
            fleet: s.fleet.as_ref(),
            end_ms: end_of_run_ms(&s.run.summary, &s.collected.censored_scheduled_us),
        })
        .collect();
    (out.gateways, out.fleet) = merge_fleet(&fleet_shards, out.scenarios.scheduled, fetches);

    let outcomes: Vec<ShardOutcome> = summaries
        .iter()
        .map(|s| ShardOutcome::of(s.shard.as_ref(), s.verdict, &s.reason, &s.scenarios))
        .collect();
    (out.verdict, out.reason) = merged_verdict(&outcomes, &out.scenarios);

    let mut unfinished: Vec<TopRow> = shards
        .iter()
        .flat_map(|s| s.collected.unfinished.iter().cloned())
        .collect();
    unfinished.sort_by_key(|r| std::cmp::Reverse(r.index));
    unfinished.truncate(MAX_UNFINISHED_ROWS);
    Merged {
        summary: out,
        unfinished,
    }
}

/// A shard's end of run in ms since the shared origin, as its own time to usable measured it:
/// its longest censored wait plus its earliest censored start. Only its censored waits depend
/// on it; with none, any value does.
fn end_of_run_ms(summary: &Summary, censored_scheduled_us: &Histogram<u64>) -> f64 {
    let earliest = weighted_ms_from_us(censored_scheduled_us)
        .first()
        .map_or(0.0, |w| w.0);
    let longest = summary
        .time_to_usable
        .as_ref()
        .and_then(|t| t.longest_wait_ms)
        .unwrap_or(0.0);
    earliest + longest
}

fn scheduler(shards: &[ShardData], merged: &Summary) -> SchedulerStats {
    let lag = merge_histograms(shards.iter().map(|s| &s.lag_us));
    let ms = |us: u64| us as f64 / 1_000.0;
    let late_starts: u64 = shards
        .iter()
        .map(|s| s.run.summary.scheduler.late_starts)
        .sum();
    let started = merged.scenarios.started;
    let (p50, p99, max) = if lag.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            ms(lag.value_at_quantile(0.5)),
            ms(lag.value_at_quantile(0.99)),
            ms(lag.max()),
        )
    };
    SchedulerStats {
        lag_p50_ms: p50,
        lag_p99_ms: p99,
        lag_max_ms: max,
        late_starts,
        late_threshold_ms: merged.scheduler.late_threshold_ms,
        runner_was_bottleneck: started > 0 && late_starts * 100 > started,
    }
}

/// Per-second samples added up; `fetches` are the shared mock's, so the largest count is kept.
fn timeline(summaries: &[&Summary]) -> Vec<SecondSample> {
    let seconds = summaries
        .iter()
        .map(|s| s.timeline.len())
        .max()
        .unwrap_or(0);
    (0..seconds)
        .map(|i| {
            let mut sum = SecondSample {
                second: i as u64,
                ..SecondSample::default()
            };
            for sample in summaries.iter().filter_map(|s| s.timeline.get(i)) {
                sum.started += sample.started;
                sum.succeeded += sample.succeeded;
                sum.in_flight += sample.in_flight;
                sum.attempts += sample.attempts;
                sum.fetches = sum.fetches.max(sample.fetches);
            }
            sum
        })
        .collect()
}

fn add(into: &mut AttemptCounts, more: &AttemptCounts) {
    into.ok += more.ok;
    into.not_yet += more.not_yet;
    into.timed_out += more.timed_out;
    into.connect_timed_out += more.connect_timed_out;
    into.refused_or_reset += more.refused_or_reset;
    into.other += more.other;
}

/// Attempt counts added; triggers counted by the mock (notify) are the latest shard's.
fn attempts(summaries: &[&Summary], latest: usize, runner_counted: bool) -> Option<AttemptStats> {
    let all: Vec<&AttemptStats> = summaries
        .iter()
        .map(|s| s.attempts.as_ref())
        .collect::<Option<_>>()?;
    let mut out = all[latest].clone();
    out.key_creations = AttemptCounts::default();
    out.scenarios_with_timeout = 0;
    out.near_reload.failed_attempts = 0;
    out.near_reload.near_fetch = 0;
    out.near_reload.finding = false;
    if runner_counted {
        out.triggers = AttemptCounts::default();
    }
    let seconds = all.iter().map(|a| a.timeline.len()).max().unwrap_or(0);
    out.timeline = (0..seconds)
        .map(|i| AttemptSecond {
            second: i as u64,
            key_creations: AttemptCounts::default(),
            triggers: if runner_counted {
                AttemptCounts::default()
            } else {
                all[latest]
                    .timeline
                    .get(i)
                    .map(|s| s.triggers.clone())
                    .unwrap_or_default()
            },
        })
        .collect();
    for a in &all {
        add(&mut out.key_creations, &a.key_creations);
        out.scenarios_with_timeout += a.scenarios_with_timeout;
        out.near_reload.failed_attempts += a.near_reload.failed_attempts;
        out.near_reload.near_fetch += a.near_reload.near_fetch;
        out.near_reload.finding |= a.near_reload.finding;
        if runner_counted {
            add(&mut out.triggers, &a.triggers);
        }
        for (slot, s) in out.timeline.iter_mut().zip(&a.timeline) {
            add(&mut slot.key_creations, &s.key_creations);
            if runner_counted {
                add(&mut slot.triggers, &s.triggers);
            }
        }
    }
    Some(out)
}
