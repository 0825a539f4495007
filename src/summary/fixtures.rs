//! Test fixtures shared by the unit tests of the summary, the runner's records and the plots:
//! one [`record`] builder; each test overrides the fields it cares about with `..record(..)`.
//! Fleet runs (several gateways): [`fleet_summary`] from per-gateway summaries, and
//! [`gateway_scenario`] for the per-gateway rows of a record.

use crate::summary::{
    AttemptCounts, FleetStats, GatewayResult, GatewayScenario, LatencyStats, Outcome,
    ScenarioRecord, Summary, Verdict,
};

/// A scenario record for policy `p{index}`, scheduled at `seq × 2 ms`, two attempts, not
/// (yet) succeeded and without error text.
pub(crate) fn record(seq: u64, index: u64, outcome: Outcome) -> ScenarioRecord {
    ScenarioRecord {
        seq,
        index,
        policy_id: format!("p{index}"),
        scheduled_ms: seq as f64 * 2.0,
        lag_ms: 0.1,
        add_done_ms: Some(1.0),
        attempts: 2,
        last_failure_ms: Some(5.0),
        success_ms: None,
        outcome,
        last_error: None,
        gateways: Vec::new(),
    }
}

/// A gateway's row of a fleet scenario record: two attempts on it, ended as `outcome`.
pub(crate) fn gateway_scenario(outcome: Outcome, success_ms: Option<f64>) -> GatewayScenario {
    GatewayScenario {
        attempts: 2,
        success_ms,
        outcome,
        last_failure_ms: Some(5.0),
        last_error: None,
    }
}

/// Gateway `i` (0-based) of a fleet as a run against it alone measured it: `one` is such a
/// single-gateway summary (its verdict, reason, counts, latency and time to usable are
/// taken over; its time to usable is derived when it has none).
pub(crate) fn gateway_result(i: usize, one: &Summary) -> GatewayResult {
    GatewayResult {
        url: format!("http://gateway-{}:8080", i + 1),
        container: Some(format!("repro-gateway-{}", i + 1)),
        verdict: one.verdict,
        reason: one.reason.clone(),
        scenarios: one.scenarios.clone(),
        latency_ms: one.latency_ms.clone(),
        time_to_usable: crate::summary::censored::time_to_usable_of(one)
            .expect("a fixture gateway with a time to usable"),
        key_creations: AttemptCounts::default(),
    }
}

/// Makes `top` the summary of a run against `gateways.len()` gateways, gateway i measured as
/// `gateways[i]` (see [`gateway_result`]). `top` must already describe the fleet as the runner
/// writes it (counts of keys created everywhere, the last gateway's latency); its verdict
/// becomes the worst gateway's (unresponsive over hang over pass), and the fleet's spread over
/// the scenarios usable everywhere is `spread_ms` = (p50, p99).
pub(crate) fn fleet_summary(
    mut top: Summary,
    gateways: &[Summary],
    spread_ms: (f64, f64),
) -> Summary {
    top.gateways = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| gateway_result(i, g))
        .collect();
    let worst = [Verdict::Unresponsive, Verdict::Hang]
        .into_iter()
        .find(|v| top.gateways.iter().any(|g| g.verdict == *v));
    if let Some(v) = worst {
        top.verdict = v;
    }
    let everywhere = top.scenarios.succeeded;
    let scheduled = top.scenarios.scheduled.max(1);
    let stats = |p50: Option<f64>, p99: Option<f64>| LatencyStats {
        count: everywhere,
        p50,
        p90: p99,
        p99,
        max: p99,
        mean: p50,
        histogram_b64: String::new(),
    };
    top.fleet = Some(FleetStats {
        gateways: gateways.len() as u64,
        usable_everywhere: everywhere,
        share_usable_everywhere: everywhere as f64 / scheduled as f64,
        first_ms: stats(top.latency_ms.p50, top.latency_ms.p99),
        median_ms: stats(top.latency_ms.p50, top.latency_ms.p99),
        last_ms: stats(top.latency_ms.p50, top.latency_ms.p99),
        spread_ms: stats(Some(spread_ms.0), Some(spread_ms.1)),
        fetches_by_node: Vec::new(),
    });
    top
}
