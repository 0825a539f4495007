//! The per-gateway results (`gateways`) and the fleet block (`fleet`) of a merged fleet run,
//! from the per-scenario `gateways` arrays of every shard's records (pure: no I/O).
//!
//! Per gateway, as for the whole run: counts and key-creation attempts add up; latency and
//! time to usable are recomputed from the records (each censored scenario at its own shard's
//! end of run); the verdict is [`super::verdict::merged_verdict`] over the shards' verdicts for
//! that gateway. The fleet block: `usable_everywhere` adds up; first / median / last gateway and
//! spread are recomputed from the records usable everywhere; `fetches_by_node` is the shared
//! mock's, from the shard that finished last.

use hdrhistogram::Histogram;

use super::verdict::{ShardOutcome, merged_verdict};
use crate::summary::censored::{time_to_usable, waits_from_scheduled_us, weighted_ms_from_us};
use crate::summary::histogram::{merge_histograms, new_latency_histogram};
use crate::summary::stats::{latency_stats, quantile_ms};
use crate::summary::{
    AttemptCounts, FleetStats, GatewayResult, Outcome, ScenarioCounts, ScenarioRecord, Summary,
};

/// One gateway's records of one shard.
struct GatewayFold {
    latency_us: Histogram<u64>,
    censored_scheduled_us: Histogram<u64>,
}

/// What one shard's records say about the fleet.
pub struct FleetFold {
    gateways: Vec<GatewayFold>,
    first_us: Histogram<u64>,
    median_us: Histogram<u64>,
    last_us: Histogram<u64>,
    spread_us: Histogram<u64>,
}

fn record_ms(h: &mut Histogram<u64>, ms: f64) {
    let us = (ms * 1000.0).round().max(1.0) as u64;
    h.saturating_record(us.min(h.high()));
}

impl FleetFold {
    /// A fold for `gateways` gateways (0: a single-gateway run, nothing is kept).
    pub fn new(gateways: usize) -> Self {
        Self {
            gateways: (0..gateways)
                .map(|_| GatewayFold {
                    latency_us: new_latency_histogram(),
                    censored_scheduled_us: new_latency_histogram(),
                })
                .collect(),
            first_us: new_latency_histogram(),
            median_us: new_latency_histogram(),
            last_us: new_latency_histogram(),
            spread_us: new_latency_histogram(),
        }
    }

    /// Folds one record's `gateways` array in (a shorter or missing array counts as not usable
    /// on the gateways it lacks).
    pub fn push(&mut self, record: &ScenarioRecord) {
        if self.gateways.is_empty() {
            return;
        }
        let mut everywhere = Vec::with_capacity(self.gateways.len());
        for (i, fold) in self.gateways.iter_mut().enumerate() {
            let on = record.gateways.get(i);
            match on.and_then(|g| (g.outcome == Outcome::Success).then_some(g.success_ms)) {
                Some(ms) => {
                    let ms = ms.unwrap_or(0.0);
                    record_ms(&mut fold.latency_us, ms);
                    everywhere.push(ms);
                }
                None => record_ms(&mut fold.censored_scheduled_us, record.scheduled_ms),
            }
        }
        if everywhere.len() == self.gateways.len() {
            everywhere.sort_by(f64::total_cmp);
            let first = everywhere[0];
            let last = everywhere[everywhere.len() - 1];
            record_ms(&mut self.first_us, first);
            record_ms(
                &mut self.median_us,
                quantile_ms(&everywhere, 0.5).unwrap_or(first),
            );
            record_ms(&mut self.last_us, last);
            record_ms(&mut self.spread_us, last - first);
        }
    }
}

/// One shard as the fleet merge reads it.
pub struct FleetShard<'a> {
    /// Its summary.
    pub summary: &'a Summary,
    /// Its records' fold.
    pub fold: &'a FleetFold,
    /// Its end of run, ms since the shared origin.
    pub end_ms: f64,
}

/// `gateways` and `fleet` of the merged run; empty / `None` for single-gateway shards.
pub fn merge_fleet(
    shards: &[FleetShard<'_>],
    scheduled: u64,
    latest: usize,
) -> (Vec<GatewayResult>, Option<FleetStats>) {
    let Some(first) = shards.first() else {
        return (Vec::new(), None);
    };
    let n = first.summary.gateways.len();
    if n == 0 {
        return (Vec::new(), None);
    }
    let gateways = (0..n)
        .map(|g| {
            let mut result = first.summary.gateways[g].clone();
            let own = |s: &FleetShard<'_>| s.summary.gateways.get(g).cloned();
            let parts: Vec<GatewayResult> = shards.iter().filter_map(own).collect();
            result.scenarios = parts.iter().fold(ScenarioCounts::default(), |a, p| {
                let b = &p.scenarios;
                ScenarioCounts {
                    scheduled: a.scheduled + b.scheduled,
                    started: a.started + b.started,
                    succeeded: a.succeeded + b.succeeded,
                    failed: a.failed + b.failed,
                    outstanding: a.outstanding + b.outstanding,
                }
            });
            result.key_creations = parts.iter().fold(AttemptCounts::default(), |a, p| {
                let b = &p.key_creations;
                AttemptCounts {
                    ok: a.ok + b.ok,
                    not_yet: a.not_yet + b.not_yet,
                    timed_out: a.timed_out + b.timed_out,
                    connect_timed_out: a.connect_timed_out + b.connect_timed_out,
                    refused_or_reset: a.refused_or_reset + b.refused_or_reset,
                    other: a.other + b.other,
                }
            });
            let latency = merge_histograms(shards.iter().map(|s| &s.fold.gateways[g].latency_us));
            result.latency_ms = latency_stats(&latency);
            let waits: Vec<_> = shards
                .iter()
                .flat_map(|s| {
                    waits_from_scheduled_us(&s.fold.gateways[g].censored_scheduled_us, s.end_ms)
                })
                .collect();
            result.time_to_usable =
                time_to_usable(&weighted_ms_from_us(&latency), &waits, scheduled);
            let outcomes: Vec<ShardOutcome> = shards
                .iter()
                .zip(&parts)
                .map(|(s, p)| {
                    let info = s
                        .summary
                        .shard
                        .clone()
                        .unwrap_or(crate::summary::ShardInfo {
                            index: 0,
                            count: 1,
                            run_id: String::new(),
                        });
                    ShardOutcome {
                        index: info.index,
                        count: info.count,
                        verdict: p.verdict,
                        reason: p.reason.clone(),
                        scenarios: p.scenarios.clone(),
                    }
                })
                .collect();
            (result.verdict, result.reason) = merged_verdict(&outcomes, &result.scenarios);
            result
        })
        .collect();
    let usable_everywhere: u64 = shards
        .iter()
        .filter_map(|s| s.summary.fleet.as_ref().map(|f| f.usable_everywhere))
        .sum();
    let stats = |pick: fn(&FleetFold) -> &Histogram<u64>| {
        latency_stats(&merge_histograms(shards.iter().map(|s| pick(s.fold))))
    };
    let fleet = FleetStats {
        gateways: n as u64,
        usable_everywhere,
        share_usable_everywhere: if scheduled == 0 {
            0.0
        } else {
            usable_everywhere as f64 / scheduled as f64
        },
        first_ms: stats(|f| &f.first_us),
        median_ms: stats(|f| &f.median_us),
        last_ms: stats(|f| &f.last_us),
        spread_ms: stats(|f| &f.spread_us),
        fetches_by_node: shards
            .get(latest)
            .and_then(|s| s.summary.fleet.as_ref())
            .map(|f| f.fetches_by_node.clone())
            .unwrap_or_default(),
    };
    (gateways, Some(fleet))
}
