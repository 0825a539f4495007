//! CDFs of time to a usable key over ALL scenarios, for a run and for the diff's two sides.
//!
//! The y axis is the share of all scenarios, so a curve's plateau is the share that got a key;
//! above it a red bar at the right edge shows the share still waiting when the run ended (and
//! a grey one the share that failed). The time axis is logarithmic with round ticks (0.1, 0.2,
//! 0.5, 1, 2, 5, 10, 30 s, …) because a hang's tail sits orders of magnitude above the median.

use plotters::prelude::*;

use super::frame::{self, FAILED, LegendEntry, SUCCESS, Swatch, WAITING};
use crate::summary::{Outcome, ScenarioRecord};

/// Steps drawn per curve at most: more points than pixels only make the file larger.
const MAX_STEPS: usize = 2_000;
/// Right-edge bars per curve span this factor of the log axis.
const BAR_FACTOR: f64 = 1.12;

/// One curve.
#[derive(Debug, Clone)]
pub(crate) struct CdfCurve {
    /// Legend label.
    pub label: String,
    /// Line colour.
    pub colour: RGBColor,
    /// Step points `(seconds, share of all scenarios)`, x ascending, share ascending.
    pub points: Vec<(f64, f64)>,
    /// Share of all scenarios still waiting at the end (0 to 1).
    pub waiting_share: f64,
    /// Share of all scenarios that failed (0 to 1).
    pub failed_share: f64,
    /// Shortest and longest wait so far of the scenarios still waiting, seconds, when known:
    /// drawn as a red span (their time to a usable key lies to the right of it).
    pub waited_s: Option<(f64, f64)>,
    /// What the curve shows.
    pub kind: CurveKind,
}

/// What a curve shows, which decides how it is drawn and named in the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CurveKind {
    /// Time to a usable key: solid, its plateau the share that got one, bars for the rest.
    Usable,
    /// A spread between gateways (last − first) over the scenarios usable everywhere:
    /// dashed, no waiting or failed share of its own.
    Spread,
}

impl CdfCurve {
    /// The share that got a key: where the curve's plateau lies.
    pub fn plateau(&self) -> f64 {
        self.points.last().map_or(0.0, |&(_, y)| y)
    }
}

/// Step points of sorted `times_s` as shares of `total`, thinned to [`MAX_STEPS`] steps.
pub(crate) fn step_points(times_s: &mut [f64], total: usize) -> Vec<(f64, f64)> {
    times_s.sort_by(f64::total_cmp);
    if times_s.is_empty() || total == 0 {
        return Vec::new();
    }
    let n = times_s.len();
    let stride = n.div_ceil(MAX_STEPS).max(1);
    let mut points = Vec::with_capacity(2 * (n / stride + 2));
    points.push((times_s[0], 0.0));
    let mut previous = 0.0;
    let mut i = stride - 1;
    loop {
        let at = i.min(n - 1);
        let share = (at + 1) as f64 / total as f64;
        points.push((times_s[at], previous));
        points.push((times_s[at], share));
        previous = share;
        if at == n - 1 {
            break;
        }
        i += stride;
    }
    points
}

/// The run's CDF: successes at their latency; failed and still-waiting scenarios never reach
/// the curve, so its plateau is the success share. Extends the x axis to the longest wait.
pub fn time_to_usable_svg(
    records: &[ScenarioRecord],
    run_end_ms: f64,
    title: &str,
) -> anyhow::Result<String> {
    let total = records.len();
    let (_, failed, waiting) = super::outcome_counts(records);
    let mut times: Vec<f64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Success)
        .filter_map(|r| r.success_ms)
        .map(|ms| (ms / 1_000.0).max(0.001))
        .collect();
    let waits: Vec<f64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Outstanding)
        .map(|r| (super::latency::wait_ms(r, run_end_ms) / 1_000.0).max(0.001))
        .collect();
    let waited_s = (!waits.is_empty()).then(|| {
        let lo = waits.iter().copied().fold(f64::MAX, f64::min);
        (lo, waits.iter().copied().fold(lo, f64::max))
    });
    let share = |n: usize| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    let curve = CdfCurve {
        label: format!("usable within t ({total} scenarios)"),
        colour: SUCCESS,
        points: step_points(&mut times, total),
        waiting_share: share(waiting),
        failed_share: share(failed),
        waited_s,
        kind: CurveKind::Usable,
    };
    cdf_svg(
        title,
        "time from scheduled start to a usable key, s (log scale)",
        &[curve],
        waited_s.map_or(0.0, |(_, hi)| hi),
    )
}

/// Draws the curves in the shared frame; `x_reach_s` widens the time axis (e.g. to the longest
/// wait of a scenario still waiting).
pub(crate) fn cdf_svg(
    title: &str,
    x_desc: &str,
    curves: &[CdfCurve],
    x_reach_s: f64,
) -> anyhow::Result<String> {
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|&(x, _)| x));
    let (lo, hi) = xs.fold((f64::MAX, x_reach_s), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi, ticks) = frame::log_axis_s(if lo == f64::MAX { 0.1 } else { lo }, hi);
    // Room at the right for the bars: one slot per curve beyond the data.
    let bars_at = hi;
    let hi = hi * BAR_FACTOR.powi(curves.len() as i32 + 1);

    let mut legend: Vec<LegendEntry> = curves
        .iter()
        .map(|c| {
            let text = match c.kind {
                CurveKind::Usable => {
                    format!("{}: {:.1} % got a key", c.label, c.plateau() * 100.0)
                }
                CurveKind::Spread => format!("{} (dashed)", c.label),
            };
            LegendEntry::new(text, Swatch::Line(c.colour))
        })
        .collect();
    let usable = || curves.iter().filter(|c| c.kind == CurveKind::Usable);
    let waiting: Vec<String> = usable().map(|c| format_share(c.waiting_share)).collect();
    let waited = match curves {
        [
            CdfCurve {
                waited_s: Some((lo, hi)),
                ..
            },
        ] => format!(" (waited {lo:.1}–{hi:.1} s so far)"),
        _ => String::new(),
    };
    legend.push(LegendEntry::new(
        format!(
            "still waiting at the end of the run: {}{waited}",
            waiting.join(" / ")
        ),
        Swatch::Band(WAITING),
    ));
    if curves.iter().any(|c| c.failed_share > 0.0) {
        let failed: Vec<String> = usable().map(|c| format_share(c.failed_share)).collect();
        legend.push(LegendEntry::new(
            format!("failed: {}", failed.join(" / ")),
            Swatch::Band(FAILED),
        ));
    }

    frame::svg(title, &legend, |area| {
        let mut chart = frame::chart(area)
            .build_cartesian_2d((lo..hi).log_scale().with_key_points(ticks), 0.0..1.0)?;
        frame::style_mesh(&mut chart.configure_mesh())
            .x_desc(x_desc)
            .x_label_formatter(&|x| frame::format_seconds(*x))
            .y_desc("share of all scenarios")
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .draw()?;
        for (i, c) in curves.iter().enumerate() {
            let plateau = c.plateau();
            if let Some(&(last_x, _)) = c.points.last() {
                if c.kind == CurveKind::Spread {
                    chart.draw_series(DashedLineSeries::new(
                        c.points.iter().copied(),
                        10,
                        5,
                        c.colour.stroke_width(2),
                    ))?;
                    continue;
                }
                chart.draw_series(LineSeries::new(
                    c.points.iter().copied(),
                    c.colour.stroke_width(2),
                ))?;
                // The plateau carried to the bars, dashed, so the eye finds the share.
                chart.draw_series(DashedLineSeries::new(
                    [
                        (last_x, plateau),
                        (bars_at * BAR_FACTOR.powi(i as i32), plateau),
                    ],
                    6,
                    4,
                    c.colour.stroke_width(1),
                ))?;
            }
            let x0 = bars_at * BAR_FACTOR.powi(i as i32);
            let x1 = x0 * BAR_FACTOR;
            let bar = |from: f64, to: f64, colour: RGBColor| {
                Rectangle::new([(x0, from), (x1, to)], colour.filled())
            };
            let wait_top = (plateau + c.waiting_share).min(1.0);
            if let Some((lo, hi)) = c.waited_s {
                let y = (plateau + wait_top) / 2.0;
                chart.draw_series(LineSeries::new([(lo, y), (hi, y)], WAITING.stroke_width(4)))?;
                chart.draw_series(DashedLineSeries::new(
                    [(hi, y), (x0, y)],
                    6,
                    4,
                    WAITING.stroke_width(1),
                ))?;
            }
            if c.waiting_share > 0.0 {
                chart.draw_series([bar(plateau, wait_top, WAITING)])?;
            }
            if c.failed_share > 0.0 {
                chart.draw_series([bar(wait_top, (wait_top + c.failed_share).min(1.0), FAILED)])?;
            }
            if curves.len() > 1 {
                chart.draw_series([Rectangle::new(
                    [(x0, plateau), (x1, plateau)],
                    c.colour.stroke_width(3),
                )])?;
            }
        }
        Ok(())
    })
}

/// `19.2 %`, `0 %`.
fn format_share(share: f64) -> String {
    if share == 0.0 {
        "0 %".into()
    } else {
        format!("{:.1} %", share * 100.0)
    }
}
