//! Latency against policy index: where a hang shows as a rising wall of red triangles (the
//! scenarios still waiting) at the right end of the index range.

use plotters::prelude::*;

use super::frame::{self, FAILED, LegendEntry, SUCCESS, Swatch, WAITING};
use crate::summary::{Outcome, ScenarioRecord};

/// Latency (seconds) against policy index. Successes are dots at their latency; scenarios still
/// waiting are red triangles at their real wait, `run_end_ms − scheduled_ms` (the true latency
/// is above); failed ones are crosses where they gave up. The y axis is fitted to what is drawn.
/// Scenarios whose add failed (index 0) have no index and are not drawn.
pub fn latency_by_index_svg(
    records: &[ScenarioRecord],
    run_end_ms: f64,
    title: &str,
) -> anyhow::Result<String> {
    let drawn: Vec<&ScenarioRecord> = records.iter().filter(|r| r.index > 0).collect();
    let points = |outcome: Outcome| -> Vec<(u64, f64)> {
        drawn
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| (r.index, wait_ms(r, run_end_ms) / 1_000.0))
            .collect()
    };
    let successes = points(Outcome::Success);
    let waiting = points(Outcome::Outstanding);
    let failed = points(Outcome::Failed);
    let x_min = drawn.iter().map(|r| r.index).min().unwrap_or(0);
    let x_max = drawn.iter().map(|r| r.index).max().unwrap_or(0).max(x_min) + 1;
    let y_top = successes
        .iter()
        .chain(&waiting)
        .chain(&failed)
        .map(|&(_, y)| y)
        .fold(0.0, f64::max);
    let y_max = frame::fitted_top(y_top, 0.1);

    let mut legend = vec![LegendEntry::new(
        format!("key created ({}), at its latency", successes.len()),
        Swatch::Dot(SUCCESS),
    )];
    if !waiting.is_empty() || failed.is_empty() {
        legend.push(LegendEntry::new(
            format!(
                "still waiting at the end of the run ({}), at their wait so far",
                waiting.len()
            ),
            Swatch::Triangle(WAITING),
        ));
    }
    if !failed.is_empty() {
        legend.push(LegendEntry::new(
            format!("failed ({}), where they gave up", failed.len()),
            Swatch::Cross(FAILED),
        ));
    }
    frame::svg(title, &legend, |area| {
        let mut chart = frame::chart(area).build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        frame::style_mesh(&mut chart.configure_mesh())
            .x_desc("policy index (policies served after the scenario's add)")
            .y_desc("seconds since the scheduled start")
            .draw()?;
        chart.draw_series(
            successes
                .iter()
                .map(|&p| Circle::new(p, 2, SUCCESS.filled())),
        )?;
        chart.draw_series(
            failed
                .iter()
                .map(|&p| Cross::new(p, 4, FAILED.stroke_width(2))),
        )?;
        chart.draw_series(
            waiting
                .iter()
                .map(|&p| TriangleMarker::new(p, 5, WAITING.filled())),
        )?;
        Ok(())
    })
}

/// What a scenario's mark stands for, milliseconds since its scheduled start: the latency of a
/// success, the time a failed one gave up, the wait so far of one still waiting.
pub(crate) fn wait_ms(r: &ScenarioRecord, run_end_ms: f64) -> f64 {
    match r.outcome {
        Outcome::Success => r.success_ms.unwrap_or(0.0),
        Outcome::Failed => r.last_failure_ms.or(r.add_done_ms).unwrap_or(0.0),
        Outcome::Outstanding => (run_end_ms - r.scheduled_ms).max(0.0),
    }
}
