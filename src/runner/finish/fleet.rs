//! A fleet run's per-gateway results and its verdict.
//!
//! Each gateway's verdict comes from the same decision core as a run's
//! ([`super::super::verdict::decide_verdict`]): the run's facts with that gateway's own counts,
//! latencies, re-check, probe silence and container evidence in place of the fleet's. The run's
//! verdict is `pass` only if every gateway passed; otherwise it names the gateways that did not,
//! and only those. What concerns the whole run (a signal, a fatal answer, the kit falling
//! behind, a silent dashboard) is decided once, on the fleet's facts, and stays the verdict.

use std::sync::Arc;

use super::super::recheck::EndTally;
use super::super::record::fleet::{FleetCollected, Spread};
use super::super::record::{AttemptKind, Collected, Timeline};
use super::super::verdict::{VerdictFacts, decide_verdict};
use super::LoadOutcome;
use crate::protocol::FetchRecord;
use crate::summary::censored::{time_to_usable, waits_from_scheduled_us, weighted_ms_from_us};
use crate::summary::stats::latency_stats;
use crate::summary::{FleetStats, GatewayResult, NodeFetches, ScenarioCounts, Verdict};

/// What the load phase recorded per gateway, with more than one gateway.
pub struct FleetOutcome {
    /// Per-gateway collectors and the spread.
    pub collected: FleetCollected,
    /// Per gateway: its attempt classes and its re-check.
    pub lanes: Vec<(Arc<Timeline>, Arc<EndTally>)>,
    /// Per gateway: how its container died or restarted (compose), if it did.
    pub container_deaths: Vec<Option<String>>,
}

/// How gateway `i` is named in reasons: its URL, and its container when known.
pub fn gateway_name(url: &str, container: Option<&str>) -> String {
    match container {
        Some(c) => format!("{url} ({c})"),
        None => url.to_owned(),
    }
}

/// The facts of gateway `lane`: the run's, with that gateway's own observations.
fn lane_facts(
    base: &VerdictFacts,
    load: &LoadOutcome,
    fleet: &FleetOutcome,
    lane: usize,
    counts: &ScenarioCounts,
    collected: &Collected,
) -> VerdictFacts {
    let latency = latency_stats(&collected.latency_us);
    let mut f = base.clone();
    f.succeeded = counts.succeeded;
    f.failed = counts.failed;
    f.outstanding = counts.outstanding;
    f.latency_ms = (latency.p50, latency.p99, latency.max);
    f.failure_examples = collected.failure_examples.clone();
    f.last_error = collected
        .unfinished
        .iter()
        .find_map(|r| r.last_error.clone());
    if let Some((_, tally)) = fleet.lanes.get(lane) {
        f.recheck = tally.recheck_counts();
    }
    f.gateway_silence = load.watch.lane_silence(lane);
    f.container_death = fleet.container_deaths.get(lane).cloned().flatten();
    // Successes before any fetch are judged on the fleet's records (the canary before the
    // load asks every gateway for an unknown policy).
    f.unserved_successes = 0;
    f
}

/// One result per gateway, in the order of `--gateway`.
pub fn gateway_results(
    scenarios: &ScenarioCounts,
    base: &VerdictFacts,
    load: &LoadOutcome,
    fleet: &FleetOutcome,
    urls: &[String],
    containers: &[Option<String>],
) -> Vec<GatewayResult> {
    let end_ms = load.elapsed.as_secs_f64() * 1_000.0;
    fleet
        .collected
        .lanes
        .iter()
        .enumerate()
        .map(|(i, collected)| {
            let started = scenarios.started;
            let counts = ScenarioCounts {
                scheduled: scenarios.scheduled,
                started,
                succeeded: collected.succeeded,
                failed: collected.failed,
                outstanding: started.saturating_sub(collected.succeeded + collected.failed),
            };
            let facts = lane_facts(base, load, fleet, i, &counts, collected);
            let (verdict, reason) = decide_verdict(&facts);
            let key_creations = fleet
                .lanes
                .get(i)
                .map(|(timeline, _)| timeline.outcomes.totals(AttemptKind::KeyCreation))
                .unwrap_or_default();
            GatewayResult {
                url: urls.get(i).cloned().unwrap_or_default(),
                container: containers.get(i).cloned().flatten(),
                verdict,
                reason,
                latency_ms: latency_stats(&collected.latency_us),
                time_to_usable: time_to_usable(
                    &weighted_ms_from_us(&collected.latency_us),
                    &waits_from_scheduled_us(&collected.censored_scheduled_us, end_ms),
                    counts.scheduled,
                ),
                scenarios: counts,
                key_creations,
            }
        })
        .collect()
}

/// The fleet block: how each change spread, and who fetched.
pub fn fleet_stats(
    spread: &Spread,
    gateways: usize,
    scheduled: u64,
    fetches: &[FetchRecord],
) -> FleetStats {
    let mut by_node: Vec<NodeFetches> = Vec::new();
    for f in fetches.iter().filter(|f| f.authorized) {
        match by_node.iter_mut().find(|n| n.node_id == f.node_id) {
            Some(n) => {
                n.fetches += 1;
                n.bytes += f.bytes;
            }
            None => by_node.push(NodeFetches {
                node_id: f.node_id.clone(),
                fetches: 1,
                bytes: f.bytes,
            }),
        }
    }
    by_node.sort_by(|a, b| b.fetches.cmp(&a.fetches).then(a.node_id.cmp(&b.node_id)));
    FleetStats {
        gateways: gateways as u64,
        usable_everywhere: spread.usable_everywhere,
        share_usable_everywhere: if scheduled == 0 {
            0.0
        } else {
            spread.usable_everywhere as f64 / scheduled as f64
        },
        first_ms: latency_stats(&spread.first_us),
        median_ms: latency_stats(&spread.median_us),
        last_ms: latency_stats(&spread.last_us),
        spread_ms: latency_stats(&spread.spread_us),
        fetches_by_node: by_node,
    }
}

/// The run's verdict from the fleet's own (what concerns the whole run) and each gateway's.
pub fn fleet_verdict(fleet: (Verdict, String), gateways: &[GatewayResult]) -> (Verdict, String) {
    let (verdict, reason) = fleet;
    if matches!(verdict, Verdict::Interrupted) {
        return (verdict, reason);
    }
    let name = |g: &GatewayResult| gateway_name(&g.url, g.container.as_deref());
    let of = |wanted: Verdict| -> Vec<&GatewayResult> {
        gateways.iter().filter(|g| g.verdict == wanted).collect()
    };
    let (infra, hung, dead) = (
        of(Verdict::InfraError),
        of(Verdict::Hang),
        of(Verdict::Unresponsive),
    );
    // A run-wide infra_error (the kit, the dashboard, a fatal answer) is the fleet's own.
    if verdict == Verdict::InfraError && (infra.len() == gateways.len() || infra.is_empty()) {
        return (verdict, reason);
    }
    let healthy: Vec<String> = gateways
        .iter()
        .filter(|g| g.verdict == Verdict::Pass)
        .map(name)
        .collect();
    if infra.is_empty() && hung.is_empty() && dead.is_empty() {
        return (
            Verdict::Pass,
            format!(
                "every one of the {} gateways got every policy: {reason}",
                gateways.len()
            ),
        );
    }
    let mut parts: Vec<String> = Vec::new();
    for g in infra.iter().chain(&hung).chain(&dead) {
        parts.push(format!("{} {}: {}", name(g), g.verdict.as_str(), g.reason));
    }
    let healthy = match healthy.len() {
        0 => String::new(),
        1 => format!("; {} got every policy", healthy[0]),
        _ => format!("; {} got every policy", healthy.join(", ")),
    };
    let of_n = |n: usize| format!("{n} of {} gateways", gateways.len());
    let (verdict, lead) = if !infra.is_empty() {
        (
            Verdict::InfraError,
            format!("{} could not be measured", of_n(infra.len())),
        )
    } else if !hung.is_empty() {
        (Verdict::Hang, format!("{} lost policies", of_n(hung.len())))
    } else {
        (
            Verdict::Unresponsive,
            format!("{} stopped answering", of_n(dead.len())),
        )
    };
    (verdict, format!("{lead}: {}{healthy}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{AttemptCounts, LatencyStats, TimeToUsable};

    fn result(url: &str, verdict: Verdict) -> GatewayResult {
        GatewayResult {
            url: url.into(),
            container: None,
            verdict,
            reason: format!("{} reason", verdict.as_str()),
            scenarios: ScenarioCounts::default(),
            latency_ms: LatencyStats::default(),
            time_to_usable: TimeToUsable {
                method: String::new(),
                scenarios: 0,
                usable: 0,
                censored: 0,
                longest_wait_ms: None,
                p50: crate::summary::CensoredQuantile {
                    ms: None,
                    reached: false,
                },
                p90: crate::summary::CensoredQuantile {
                    ms: None,
                    reached: false,
                },
                share_usable_by: Vec::new(),
            },
            key_creations: AttemptCounts::default(),
        }
    }

    #[test]
    fn a_hang_on_one_gateway_names_it_and_not_the_healthy_ones_as_failing() {
        let gateways = [
            result("http://a:1", Verdict::Pass),
            result("http://b:1", Verdict::Pass),
            result("http://c:1", Verdict::Hang),
        ];
        let (v, reason) = fleet_verdict((Verdict::Hang, "fleet".into()), &gateways);
        assert_eq!(v, Verdict::Hang);
        assert!(
            reason.starts_with("1 of 3 gateways lost policies: http://c:1 hang"),
            "{reason}"
        );
        let failing = reason.split("; http://a:1").next().unwrap_or_default();
        assert!(
            !failing.contains("http://a:1") && !failing.contains("http://b:1"),
            "{reason}"
        );
        assert!(
            reason.ends_with("http://a:1, http://b:1 got every policy"),
            "{reason}"
        );
    }

    #[test]
    fn pass_needs_every_gateway_and_a_dead_one_is_unresponsive() {
        let all = [
            result("http://a:1", Verdict::Pass),
            result("http://b:1", Verdict::Pass),
        ];
        assert_eq!(
            fleet_verdict((Verdict::Pass, "ok".into()), &all).0,
            Verdict::Pass
        );
        let one_dead = [
            result("http://a:1", Verdict::Pass),
            result("http://b:1", Verdict::Unresponsive),
        ];
        let (v, reason) = fleet_verdict((Verdict::Hang, "x".into()), &one_dead);
        assert_eq!(v, Verdict::Unresponsive);
        assert!(reason.contains("http://b:1 unresponsive"), "{reason}");
        let both = [
            result("http://a:1", Verdict::Hang),
            result("http://b:1", Verdict::Unresponsive),
        ];
        let (v, reason) = fleet_verdict((Verdict::Hang, "x".into()), &both);
        assert_eq!(v, Verdict::Hang);
        assert!(reason.contains("http://a:1 hang") && reason.contains("http://b:1 unresponsive"));
    }

    #[test]
    fn run_wide_verdicts_stay_the_fleets() {
        let all = [
            result("http://a:1", Verdict::InfraError),
            result("http://b:1", Verdict::InfraError),
        ];
        let (v, reason) =
            fleet_verdict((Verdict::InfraError, "the runner fell behind".into()), &all);
        assert_eq!(
            (v, reason.as_str()),
            (Verdict::InfraError, "the runner fell behind")
        );
        let (v, _) = fleet_verdict((Verdict::Interrupted, "Ctrl-C".into()), &all);
        assert_eq!(v, Verdict::Interrupted);
    }

    #[test]
    fn fetches_are_counted_per_node_busiest_first() {
        let fetch = |node: &str, bytes: u64, authorized: bool| FetchRecord {
            received_at_ms: 0,
            served: 1,
            bytes,
            duration_us: 1,
            node_id: node.into(),
            nonce_ok: true,
            authorized,
        };
        let spread = super::super::super::record::fleet::FleetCollector::new(2, 1)
            .map(|c| c.finish().spread)
            .expect("two gateways");
        let stats = fleet_stats(
            &spread,
            2,
            10,
            &[
                fetch("a", 5, true),
                fetch("b", 7, true),
                fetch("b", 7, true),
                fetch("c", 1, false),
            ],
        );
        let nodes: Vec<(&str, u64, u64)> = stats
            .fetches_by_node
            .iter()
            .map(|n| (n.node_id.as_str(), n.fetches, n.bytes))
            .collect();
        assert_eq!(nodes, vec![("b", 2, 14), ("a", 1, 5)]);
        assert_eq!(stats.share_usable_everywhere, 0.0);
    }
}
