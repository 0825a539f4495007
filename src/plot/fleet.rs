//! `time-to-usable-per-gateway.svg`, for runs against several gateways: one censored CDF of
//! time to a usable key per gateway, the fleet's (a key usable on EVERY gateway, at the last
//! gateway's time) over them, and the spread (last − first gateway per scenario usable
//! everywhere) dashed on the same time axis. Drawn with the run's `time-to-usable.svg` code
//! ([`super::cdf::cdf_svg`]); nothing here runs for a run against one gateway.

use plotters::style::RGBColor;

use super::cdf::{CdfCurve, CurveKind, cdf_svg, step_points};
use super::latency::wait_ms;
use crate::summary::{GatewayResult, Outcome, ScenarioRecord, Summary};

/// File name of the figure.
pub const PER_GATEWAY_PLOT: &str = "time-to-usable-per-gateway.svg";

/// Gateway line colours, in `--gateway` order (cycled beyond eight); none is the red of
/// "still waiting", the grey of "failed", the fleet's or the spread's colour.
pub(crate) const GATEWAY_COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// The fleet's line (usable on every gateway).
pub(crate) const FLEET: RGBColor = RGBColor(20, 20, 90);
/// The spread's dashed line.
pub(crate) const SPREAD: RGBColor = RGBColor(150, 150, 150);

/// Shortest time drawn, seconds (the log axis cannot start at 0).
const FLOOR_S: f64 = 0.001;

/// The figure; `None` for a run against one gateway. An error when the records carry no
/// per-gateway rows (the figure cannot be drawn from the summary alone).
pub fn per_gateway_svg(
    s: &Summary,
    records: &[ScenarioRecord],
    run_end_ms: f64,
    title: &str,
) -> Option<anyhow::Result<String>> {
    (s.gateways.len() > 1).then(|| draw(s, records, run_end_ms, title))
}

fn draw(
    s: &Summary,
    records: &[ScenarioRecord],
    run_end_ms: f64,
    title: &str,
) -> anyhow::Result<String> {
    let n = s.gateways.len();
    if let Some(r) = records.iter().find(|r| r.gateways.len() != n) {
        anyhow::bail!(
            "scenario {} has {} per-gateway rows in scenarios.jsonl, the summary {n} gateways",
            r.seq,
            r.gateways.len()
        );
    }
    let mut curves: Vec<CdfCurve> = s
        .gateways
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let outcomes = records
                .iter()
                .map(|r| (r.gateways[i].outcome, r.gateways[i].success_ms));
            let colour = GATEWAY_COLOURS[i % GATEWAY_COLOURS.len()];
            curve(gateway_label(i, g), colour, outcomes, records.len())
        })
        .collect();
    let fleet = records.iter().map(|r| (r.outcome, r.success_ms));
    let label = format!("fleet: usable on all {n} gateways (last gateway)");
    curves.push(curve(label, FLEET, fleet, records.len()));
    curves.push(spread_curve(s, records));
    let reach = records
        .iter()
        .filter(|r| r.outcome == Outcome::Outstanding)
        .map(|r| wait_ms(r, run_end_ms) / 1_000.0)
        .fold(0.0, f64::max);
    cdf_svg(
        title,
        "time from scheduled start to a usable key, s (log scale)",
        &curves,
        reach,
    )
}

/// `gateway 2 (repro-gateway-2)`, or with its URL outside compose.
fn gateway_label(i: usize, g: &GatewayResult) -> String {
    let name = g
        .container
        .as_deref()
        .filter(|c| !c.is_empty())
        .unwrap_or(&g.url);
    format!("gateway {} ({name})", i + 1)
}

/// A time-to-usable curve over `(outcome, success_ms)` on one gateway (or the fleet).
fn curve(
    label: String,
    colour: RGBColor,
    outcomes: impl Iterator<Item = (Outcome, Option<f64>)>,
    total: usize,
) -> CdfCurve {
    let (mut times, mut waiting, mut failed) = (Vec::new(), 0usize, 0usize);
    for (outcome, success_ms) in outcomes {
        match (outcome, success_ms) {
            (Outcome::Success, Some(ms)) => times.push((ms / 1_000.0).max(FLOOR_S)),
            (Outcome::Failed, _) => failed += 1,
            // Still waiting (a success without a time counts as waiting too).
            _ => waiting += 1,
        }
    }
    let share = |k: usize| {
        if total == 0 {
            0.0
        } else {
            k as f64 / total as f64
        }
    };
    CdfCurve {
        label,
        colour,
        points: step_points(&mut times, total),
        waiting_share: share(waiting),
        failed_share: share(failed),
        waited_s: None,
        kind: CurveKind::Usable,
    }
}

/// Last − first gateway per scenario usable everywhere, as a share of all scenarios; the
/// legend gives the summary's p50/p99 (over every scenario, not a sample) when it has them.
fn spread_curve(s: &Summary, records: &[ScenarioRecord]) -> CdfCurve {
    let mut spreads: Vec<f64> = records
        .iter()
        .filter_map(|r| {
            let times: Option<Vec<f64>> = r
                .gateways
                .iter()
                .map(|g| {
                    (g.outcome == Outcome::Success)
                        .then_some(g.success_ms)
                        .flatten()
                })
                .collect();
            let times = times?;
            let lo = times.iter().copied().fold(f64::MAX, f64::min);
            let hi = times.iter().copied().fold(f64::MIN, f64::max);
            (!times.is_empty()).then_some((hi - lo) / 1_000.0)
        })
        .map(|x| x.max(FLOOR_S))
        .collect();
    let counted = spreads.len();
    let points = step_points(&mut spreads, records.len());
    let quantile = |q: f64| {
        let at = ((counted as f64 * q).ceil() as usize).clamp(1, counted.max(1)) - 1;
        spreads.get(at).map(|x| x * 1_000.0)
    };
    let (p50, p99) = match s.fleet.as_ref().map(|f| &f.spread_ms) {
        Some(l) if l.count > 0 => (l.p50, l.p99),
        _ => (quantile(0.5), quantile(0.99)),
    };
    let ms = |x: Option<f64>| x.map_or("–".to_owned(), |v| format!("{v:.0} ms"));
    CdfCurve {
        label: format!(
            "spread last − first gateway: p50 {}, p99 {} ({counted} scenarios usable everywhere)",
            ms(p50),
            ms(p99)
        ),
        colour: SPREAD,
        points,
        waiting_share: 0.0,
        failed_share: 0.0,
        waited_s: None,
        kind: CurveKind::Spread,
    }
}
