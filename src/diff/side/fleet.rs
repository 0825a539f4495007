//! The fleet facts of one run against several gateways, reduced to what the diff compares:
//! the share of scenarios usable on every gateway, the spread (last − first gateway), and per
//! gateway the same values a whole run gives ([`PerRunValues`]), so the diff's row machinery
//! compares gateway i of A with gateway i of B as it compares two runs.

use crate::summary::set::PerRunValues;
use crate::summary::{GatewayResult, Summary};

/// What a fleet run measured beyond its top-level (last-gateway) values.
#[derive(Debug, Clone)]
pub struct FleetRun {
    /// Scenarios whose key was created on every gateway / scheduled scenarios (0 to 1).
    pub share_usable_everywhere: f64,
    /// Median of last − first gateway over the scenarios usable everywhere, milliseconds.
    pub spread_p50_ms: Option<f64>,
    /// 99th percentile of the spread, milliseconds.
    pub spread_p99_ms: Option<f64>,
    /// One entry per gateway, in the order of `--gateway`.
    pub gateways: Vec<GatewayRun>,
}

/// One gateway of a fleet run.
#[derive(Debug, Clone)]
pub struct GatewayRun {
    /// `URL (container)` as the summary names it.
    pub name: String,
    /// Its values in a run's shape: its own verdict, latency, censored time to usable and
    /// outstanding share; the reload and scheduler figures are the run's (shared by the fleet).
    pub values: PerRunValues,
    /// Scenarios whose key was created on this gateway.
    pub succeeded: u64,
}

impl FleetRun {
    /// The fleet facts of a summary; `None` for a run against one gateway, or when `fleet` is
    /// missing.
    pub fn of(run_dir: &str, s: &Summary, run: &PerRunValues) -> Option<FleetRun> {
        if s.gateways.len() < 2 {
            return None;
        }
        let fleet = s.fleet.as_ref()?;
        Some(FleetRun {
            share_usable_everywhere: fleet.share_usable_everywhere,
            spread_p50_ms: fleet.spread_ms.p50,
            spread_p99_ms: fleet.spread_ms.p99,
            gateways: s
                .gateways
                .iter()
                .map(|g| GatewayRun::of(run_dir, g, run))
                .collect(),
        })
    }
}

impl GatewayRun {
    fn of(run_dir: &str, g: &GatewayResult, run: &PerRunValues) -> GatewayRun {
        let scheduled = g.scenarios.scheduled;
        GatewayRun {
            name: gateway_name(g),
            values: PerRunValues {
                run_dir: run_dir.to_owned(),
                verdict: g.verdict,
                p50_ms: g.latency_ms.p50,
                p90_ms: g.latency_ms.p90,
                p99_ms: g.latency_ms.p99,
                max_ms: g.latency_ms.max,
                outstanding_share: (scheduled > 0)
                    .then(|| g.scenarios.outstanding as f64 / scheduled as f64),
                usable_p50: Some(g.time_to_usable.p50.clone()),
                usable_p90: Some(g.time_to_usable.p90.clone()),
                usable_derived: false,
                ..run.clone()
            },
            succeeded: g.scenarios.succeeded,
        }
    }
}

/// `http://gateway-3:8080 (repro-gateway-3)`, or the URL alone outside compose.
pub fn gateway_name(g: &GatewayResult) -> String {
    match &g.container {
        Some(c) if !c.is_empty() => format!("{} ({c})", g.url),
        _ => g.url.clone(),
    }
}
