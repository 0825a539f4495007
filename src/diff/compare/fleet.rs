//! Fleet rows: when both sides ran against several gateways, the fleet-level rows (share of
//! scenarios usable on every gateway, spread last − first) and gateway i of A against gateway
//! i of B. Every row is a [`MetricComparison`] made by the same code as the run-level rows
//! (median over runs, Mann-Whitney, bootstrap CI, minimum effect), and each gateway gets its
//! own hang and unresponsive tests and verdict by the same rule ([`super::decide`]).

use schemars::JsonSchema;
use serde::Serialize;

use super::decide::{Signals, Tally, decide};
use super::{
    CiVerdict, CompareOptions, HangComparison, Metric, MetricComparison, Obs,
    UnresponsiveComparison, VerdictCounts, compare_hangs, compare_metrics, compare_unresponsive,
    observations,
};
use crate::diff::side::{Side, is_usable};

/// Bootstrap seeds of the fleet rows start here (the run-level rows use 0..), and gateway i's
/// at `SEED_FLEET + SEED_PER_GATEWAY × i`, so no two rows share a seed.
const SEED_FLEET: u64 = 1_000;
const SEED_PER_GATEWAY: u64 = 100;

/// The fleet part of a comparison.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FleetComparison {
    /// Gateways per run of A and of B (equal unless compared with `--force`).
    pub gateways: [u64; 2],
    /// Fleet-level rows: usable everywhere (primary), spread p50 and p99. The last gateway's
    /// time to usable is the comparison's top-level `usable_p50`/`usable_p90`.
    pub metrics: Vec<MetricComparison>,
    /// Gateway i of A against gateway i of B, for every gateway both sides have.
    pub per_gateway: Vec<GatewayComparison>,
}

/// Gateway i of A against gateway i of B.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GatewayComparison {
    /// 1-based position in `--gateway` order.
    pub gateway: usize,
    /// A's gateway at this position, `URL (container)`; several when A's runs disagree.
    pub a_gateway: String,
    /// B's gateway at this position.
    pub b_gateway: String,
    /// A's runs by this gateway's own verdict.
    pub a_verdicts: VerdictCounts,
    /// B's runs by this gateway's own verdict.
    pub b_verdicts: VerdictCounts,
    /// Its time to usable p50 and p90, keys created, outstanding share.
    pub metrics: Vec<MetricComparison>,
    /// Runs in which this gateway hung, A against B.
    pub hangs: HangComparison,
    /// Runs in which this gateway stopped answering, A against B.
    pub unresponsive: UnresponsiveComparison,
    /// This gateway's verdict by the comparison's rule.
    pub verdict: CiVerdict,
    /// Why.
    pub reason: String,
}

/// The fleet rows, when both sides have fleet runs; and warnings (one side a fleet and the
/// other not, or fleets of different sizes compared with `--force`).
pub(super) fn compare_fleet(
    a: &Side,
    b: &Side,
    opts: &CompareOptions,
) -> (Option<FleetComparison>, Vec<String>) {
    let (na, nb) = (fleet_size(a), fleet_size(b));
    let mut warnings = Vec::new();
    let (Some(na), Some(nb)) = (na, nb) else {
        if na.is_some() != nb.is_some() {
            warnings.push(format!(
                "only {} ran against several gateways: no fleet or per-gateway rows (its \
                 top-level figures are its last gateway's)",
                if na.is_some() { "A" } else { "B" }
            ));
        }
        return (None, warnings);
    };
    if na != nb {
        warnings.push(format!(
            "A ran against {na} gateways and B against {nb} (compared with --force): only the \
             first {} are compared gateway by gateway",
            na.min(nb)
        ));
    }
    let (oa, ob) = (observations(a), observations(b));
    let metrics = compare_metrics(&Metric::FLEET, &oa, &ob, opts, SEED_FLEET);
    let per_gateway = (0..na.min(nb))
        .map(|i| compare_gateway(a, b, i, opts))
        .collect();
    let fleet = FleetComparison {
        gateways: [na as u64, nb as u64],
        metrics,
        per_gateway,
    };
    (Some(fleet), warnings)
}

/// The most gateways a fleet run of the side had; `None` when no run was a fleet run.
fn fleet_size(side: &Side) -> Option<usize> {
    side.runs
        .iter()
        .filter_map(|r| r.fleet.as_ref().map(|f| f.gateways.len()))
        .max()
}

/// Gateway `i` (0-based) of the usable runs of a side, as observations of its own values;
/// a run whose gateway `i` measured nothing (infra_error) is left out as a run would be.
fn gateway_observations(side: &Side, i: usize) -> Vec<Obs<'_>> {
    side.runs
        .iter()
        .filter_map(|r| r.fleet.as_ref()?.gateways.get(i))
        .filter(|g| is_usable(g.values.verdict))
        .map(|g| Obs {
            values: &g.values,
            fleet: None,
            succeeded: Some(g.succeeded),
        })
        .collect()
}

fn compare_gateway(a: &Side, b: &Side, i: usize, opts: &CompareOptions) -> GatewayComparison {
    let (oa, ob) = (gateway_observations(a, i), gateway_observations(b, i));
    let seed = SEED_FLEET + SEED_PER_GATEWAY * (i as u64 + 1);
    let metrics = compare_metrics(&Metric::PER_GATEWAY, &oa, &ob, opts, seed);
    let hangs = compare_hangs(&oa, &ob, opts.alpha);
    let unresponsive = compare_unresponsive(&oa, &ob, opts.alpha);
    let verdicts = |s: &Side| {
        VerdictCounts::of(
            s.runs
                .iter()
                .filter_map(|r| r.fleet.as_ref()?.gateways.get(i))
                .map(|g| g.values.verdict),
        )
    };
    let (a_verdicts, b_verdicts) = (verdicts(a), verdicts(b));
    let signals = Signals::of(&metrics, &hangs, &unresponsive, a_verdicts.pass);
    let tally = |o: &[Obs<'_>], v: &VerdictCounts| Tally {
        usable_runs: o.len(),
        verdicts: v.clone(),
    };
    let (verdict, reason) = decide(
        &tally(&oa, &a_verdicts),
        &tally(&ob, &b_verdicts),
        signals,
        opts,
    );
    GatewayComparison {
        gateway: i + 1,
        a_gateway: names(a, i),
        b_gateway: names(b, i),
        a_verdicts,
        b_verdicts,
        metrics,
        hangs,
        unresponsive,
        verdict,
        reason,
    }
}

/// The names gateway `i` had in a side's runs, deduplicated in run order.
fn names(side: &Side, i: usize) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for g in side
        .runs
        .iter()
        .filter_map(|r| r.fleet.as_ref()?.gateways.get(i))
    {
        if !seen.contains(&g.name.as_str()) {
            seen.push(&g.name);
        }
    }
    match seen.as_slice() {
        [] => "unknown".to_owned(),
        [one] => (*one).to_owned(),
        [first, rest @ ..] => format!("{first} (and {} other names)", rest.len()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
