//! Per-run SVG plots: latency by policy index (where the hang shows as a wall of marks at the
//! deadline) and the per-second timeline with every policy fetch marked (where it shows as
//! fetches stopping while scenarios are still in flight).
//!
//! Pure functions returning SVG text; the caller writes the files. plotters' SVG backend emits
//! `<text>` elements and only estimates their size, so no system fonts are needed.

use anyhow::Context as _;
use plotters::prelude::*;

use crate::summary::{Outcome, ScenarioRecord, SecondSample};

/// Size of every plot, pixels.
const SIZE: (u32, u32) = (1_000, 560);
/// Colour of successes and of the succeeded line.
const SUCCESS_COLOUR: RGBColor = RGBColor(31, 119, 180);
/// Colour of unfinished scenarios and of the in-flight line.
const UNFINISHED_COLOUR: RGBColor = RGBColor(214, 39, 40);
/// Colour of the policy-fetch marks.
const FETCH_COLOUR: RGBColor = RGBColor(44, 160, 44);

/// Latency (seconds) against policy index: successes as dots, failed and outstanding scenarios
/// as crosses at `deadline_ms` (they waited at least that long). Scenarios whose add failed
/// (index 0) have no index and are not drawn.
pub fn latency_by_index_svg(
    records: &[ScenarioRecord],
    deadline_ms: f64,
    title: &str,
) -> anyhow::Result<String> {
    let deadline_s = deadline_ms / 1_000.0;
    let drawn: Vec<&ScenarioRecord> = records.iter().filter(|r| r.index > 0).collect();
    let successes: Vec<(u64, f64)> = drawn
        .iter()
        .filter(|r| r.outcome == Outcome::Success)
        .filter_map(|r| Some((r.index, r.success_ms? / 1_000.0)))
        .collect();
    let unfinished: Vec<u64> = drawn
        .iter()
        .filter(|r| r.outcome != Outcome::Success)
        .map(|r| r.index)
        .collect();
    let x_min = drawn.iter().map(|r| r.index).min().unwrap_or(0);
    let x_max = drawn.iter().map(|r| r.index).max().unwrap_or(0).max(x_min) + 1;
    let y_top = successes.iter().map(|&(_, y)| y).fold(deadline_s, f64::max);
    let y_max = if y_top.is_finite() && y_top > 0.0 {
        y_top * 1.05
    } else {
        1.0
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            // Room for the last x label, which plotters centres on the right edge.
            .margin_right(36)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("policy index (policies served after the add)")
            .y_desc("latency (s)")
            .draw()?;
        chart
            .draw_series(
                successes
                    .iter()
                    .map(|&point| Circle::new(point, 2, SUCCESS_COLOUR.filled())),
            )?
            .label(format!("key created ({})", successes.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), 3, SUCCESS_COLOUR.filled()));
        let cross_style = UNFINISHED_COLOUR.stroke_width(2);
        chart
            .draw_series(
                unfinished
                    .iter()
                    .map(|&x| Cross::new((x, deadline_s), 4, cross_style)),
            )?
            .label(format!(
                "failed or outstanding ({}), drawn at the deadline",
                unfinished.len()
            ))
            .legend(move |(x, y)| Cross::new((x + 10, y), 4, cross_style));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()
            .context("could not finish the latency plot")?;
    }
    Ok(svg)
}

/// Per-second succeeded and in-flight counts against seconds since the load started, with a
/// vertical mark at every policy fetch (`fetch_offsets_s`, seconds since the load started).
///
/// Succeeded counts sit in the middle of their second; in-flight counts at its end, which is
/// when the model samples them.
pub fn timeline_svg(
    timeline: &[SecondSample],
    fetch_offsets_s: &[f64],
    title: &str,
) -> anyhow::Result<String> {
    let succeeded: Vec<(f64, f64)> = timeline
        .iter()
        .map(|s| (s.second as f64 + 0.5, s.succeeded as f64))
        .collect();
    let in_flight: Vec<(f64, f64)> = timeline
        .iter()
        .map(|s| (s.second as f64 + 1.0, s.in_flight as f64))
        .collect();
    let fetches: Vec<f64> = fetch_offsets_s
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let x_last = timeline
        .iter()
        .map(|s| s.second as f64 + 1.0)
        .fold(1.0, f64::max);
    let x_max = fetches.iter().copied().fold(x_last, f64::max);
    let x_min = fetches.iter().copied().fold(0.0, f64::min);
    let y_top = succeeded
        .iter()
        .chain(&in_flight)
        .map(|&(_, y)| y)
        .fold(1.0, f64::max);
    let y_max = y_top * 1.1;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            // Room for the last x label, which plotters centres on the right edge.
            .margin_right(36)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load started")
            .y_desc("scenarios")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let fetch_style = FETCH_COLOUR.mix(0.6).stroke_width(1);
        chart
            .draw_series(
                fetches
                    .iter()
                    .map(|&x| PathElement::new(vec![(x, 0.0), (x, y_max)], fetch_style)),
            )?
            .label(format!("policy fetch ({})", fetches.len()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x + 10, y - 6), (x + 10, y + 6)], fetch_style)
            });
        chart
            .draw_series(LineSeries::new(succeeded, SUCCESS_COLOUR.stroke_width(2)))?
            .label("keys created per second")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], SUCCESS_COLOUR.stroke_width(2))
            });
        chart
            .draw_series(LineSeries::new(
                in_flight,
                UNFINISHED_COLOUR.stroke_width(2),
            ))?
            .label("in flight (waiting for their policy)")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], UNFINISHED_COLOUR.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()
            .context("could not finish the timeline plot")?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, index: u64, outcome: Outcome, success_ms: Option<f64>) -> ScenarioRecord {
        ScenarioRecord {
            seq,
            index,
            policy_id: format!("p{index}"),
            scheduled_ms: seq as f64 * 2.0,
            lag_ms: 0.1,
            add_done_ms: Some(3.0),
            attempts: 2,
            last_failure_ms: Some(500.0),
            success_ms,
            outcome,
            last_error: None,
        }
    }

    /// A hang-shaped run: latencies grow with the index, the last 30 never finish.
    pub(crate) fn hang_records() -> Vec<ScenarioRecord> {
        (0..300u64)
            .map(|i| match i {
                0 => record(i, 0, Outcome::Failed, None),
                270.. => record(i, 80_400 + i, Outcome::Outstanding, None),
                _ => record(
                    i,
                    80_400 + i,
                    Outcome::Success,
                    Some(800.0 + (i % 50) as f64 * 40.0),
                ),
            })
            .collect()
    }

    pub(crate) fn hang_timeline() -> Vec<SecondSample> {
        (0..12u64)
            .map(|second| SecondSample {
                second,
                started: if second < 5 { 60 } else { 0 },
                succeeded: if (1..6).contains(&second) { 54 } else { 0 },
                in_flight: if second < 5 {
                    60 * (second + 1) - 54 * second
                } else {
                    30
                },
                attempts: 120,
                fetches: u64::from(second < 5),
            })
            .collect()
    }

    #[test]
    fn latency_plot_draws_one_dot_per_success_and_one_cross_per_unfinished() {
        let svg = latency_by_index_svg(&hang_records(), 60_000.0, "v2.9.4 latency").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("v2.9.4 latency"));
        assert!(svg.contains("key created (269)"));
        assert!(svg.contains("failed or outstanding (30), drawn at the deadline"));
        // 269 successes + the legend's sample dot.
        assert_eq!(svg.matches("<circle").count(), 270);
    }

    #[test]
    fn timeline_plot_marks_every_fetch_and_draws_both_lines() {
        let fetches = [0.8, 1.9, 3.1, 4.3];
        let svg = timeline_svg(&hang_timeline(), &fetches, "v2.9.4 timeline").unwrap();
        assert!(svg.contains("v2.9.4 timeline"));
        assert!(svg.contains("policy fetch (4)"));
        assert!(svg.contains("keys created per second"));
        assert!(svg.contains("in flight (waiting for their policy)"));
    }

    #[test]
    fn plots_of_an_empty_run_still_render() {
        let svg = latency_by_index_svg(&[], 60_000.0, "empty").unwrap();
        assert!(svg.contains("key created (0)"));
        let svg = timeline_svg(&[], &[], "empty").unwrap();
        assert!(svg.contains("policy fetch (0)"));
    }

    /// Writes both plots of the hang fixture to `$REPRO_PLOT_DIR` (if set) to look at them.
    #[test]
    fn plots_can_be_written_for_inspection() {
        let Some(dir) = std::env::var_os("REPRO_PLOT_DIR") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let latency = latency_by_index_svg(&hang_records(), 6_000.0, "hang: latency").unwrap();
        std::fs::write(dir.join("latency.svg"), latency).unwrap();
        let fetches = [0.8, 1.9, 3.1, 4.3];
        let timeline = timeline_svg(&hang_timeline(), &fetches, "hang: timeline").unwrap();
        std::fs::write(dir.join("timeline.svg"), timeline).unwrap();
    }
}
