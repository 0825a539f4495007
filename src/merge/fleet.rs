//! The per-gateway results (`gateways`) and the fleet block (`fleet`) of a merged fleet run,
//! from the per-scenario `gateways` arrays of every shard's records (pure: no I/O).
//!
//! Each shard's records are folded by the runner's own fleet collector
//! (`runner::record::fleet::FleetCollector`: one collector per gateway, and the spread). Per
//! gateway, as for the whole run: counts and key-creation attempts add up; latency and time to
//! usable are recomputed from the merged lanes (each censored scenario at its own shard's end of
//! run); the verdict is [`super::verdict::merged_verdict`] over the shards' verdicts for that
//! gateway. The fleet block is the runner's `fleet_stats` over the merged spread histograms and
//! the shared mock's fetch log (from the shard that finished last).

use super::verdict::{ShardOutcome, merged_verdict};
use crate::protocol::FetchRecord;
use crate::runner::finish::fleet::fleet_stats;
use crate::runner::record::fleet::{FleetCollected, Spread};
use crate::summary::censored::{time_to_usable, waits_from_scheduled_us, weighted_ms_from_us};
use crate::summary::histogram::merge_histograms;
use crate::summary::stats::latency_stats;
use crate::summary::{AttemptCounts, FleetStats, GatewayResult, ScenarioCounts, Summary};

/// One shard as the fleet merge reads it.
pub struct FleetShard<'a> {
    /// Its summary.
    pub summary: &'a Summary,
    /// Its records folded by the runner's fleet collector (`None`: one gateway).
    pub fleet: Option<&'a FleetCollected>,
    /// Its end of run, ms since the shared origin.
    pub end_ms: f64,
}

fn add_counts(a: ScenarioCounts, b: &ScenarioCounts) -> ScenarioCounts {
    ScenarioCounts {
        scheduled: a.scheduled + b.scheduled,
        started: a.started + b.started,
        succeeded: a.succeeded + b.succeeded,
        failed: a.failed + b.failed,
        outstanding: a.outstanding + b.outstanding,
    }
}

fn add_attempts(a: AttemptCounts, b: &AttemptCounts) -> AttemptCounts {
    AttemptCounts {
        ok: a.ok + b.ok,
        not_yet: a.not_yet + b.not_yet,
        timed_out: a.timed_out + b.timed_out,
        connect_timed_out: a.connect_timed_out + b.connect_timed_out,
        refused_or_reset: a.refused_or_reset + b.refused_or_reset,
        other: a.other + b.other,
    }
}

/// `gateways` and `fleet` of the merged run; empty / `None` for single-gateway shards (or
/// when a shard's records could not be folded per gateway).
pub fn merge_fleet(
    shards: &[FleetShard<'_>],
    scheduled: u64,
    fetches: &[FetchRecord],
) -> (Vec<GatewayResult>, Option<FleetStats>) {
    let Some(first) = shards.first() else {
        return (Vec::new(), None);
    };
    let n = first.summary.gateways.len();
    let folded: Option<Vec<&FleetCollected>> = shards.iter().map(|s| s.fleet).collect();
    let Some(folded) = folded.filter(|f| n > 1 && f.iter().all(|c| c.lanes.len() == n)) else {
        return (Vec::new(), None);
    };
    let gateways = (0..n)
        .map(|g| {
            let parts: Vec<&GatewayResult> = shards
                .iter()
                .filter_map(|s| s.summary.gateways.get(g))
                .collect();
            let mut result = first.summary.gateways[g].clone();
            result.scenarios = parts.iter().fold(ScenarioCounts::default(), |a, p| {
                add_counts(a, &p.scenarios)
            });
            result.key_creations = parts.iter().fold(AttemptCounts::default(), |a, p| {
                add_attempts(a, &p.key_creations)
            });
            let latency = merge_histograms(folded.iter().map(|f| &f.lanes[g].latency_us));
            result.latency_ms = latency_stats(&latency);
            let waits: Vec<_> = shards
                .iter()
                .zip(&folded)
                .flat_map(|(s, f)| {
                    waits_from_scheduled_us(&f.lanes[g].censored_scheduled_us, s.end_ms)
                })
                .collect();
            result.time_to_usable =
                time_to_usable(&weighted_ms_from_us(&latency), &waits, scheduled);
            let outcomes: Vec<ShardOutcome> = shards
                .iter()
                .zip(&parts)
                .map(|(s, p)| {
                    ShardOutcome::of(s.summary.shard.as_ref(), p.verdict, &p.reason, &p.scenarios)
                })
                .collect();
            (result.verdict, result.reason) = merged_verdict(&outcomes, &result.scenarios);
            result
        })
        .collect();
    let spread = Spread {
        usable_everywhere: folded.iter().map(|f| f.spread.usable_everywhere).sum(),
        first_us: merge_histograms(folded.iter().map(|f| &f.spread.first_us)),
        median_us: merge_histograms(folded.iter().map(|f| &f.spread.median_us)),
        last_us: merge_histograms(folded.iter().map(|f| &f.spread.last_us)),
        spread_us: merge_histograms(folded.iter().map(|f| &f.spread.spread_us)),
    };
    (gateways, Some(fleet_stats(&spread, n, scheduled, fetches)))
}
