//! The per-second timeline: keys created and scenarios in flight, with every reload event the
//! run knows of. A hang shows as fetches and gateway reloads stopping while scenarios still wait.

use plotters::prelude::*;

use super::frame::{
    self, FETCH, LegendEntry, POLICIES_FOUND, RELOAD, SUCCESS, Swatch, TIMEOUT, WAITING,
};
use crate::evidence::GatewayReloads;
use crate::summary::SecondSample;

/// Gateway reload windows starting earlier than this before the load are clipped (the startup
/// reload can begin long before).
const MAX_LEAD_S: f64 = 5.0;

/// What the timeline is drawn from.
#[derive(Debug, Clone, Copy)]
pub struct TimelineInput<'a> {
    /// Per-second counts from the summary.
    pub samples: &'a [SecondSample],
    /// Policy fetches the dashboard answered, seconds since the load started.
    pub fetch_offsets_s: &'a [f64],
    /// Reloads from the gateway's own log, seconds since the load started, when collected.
    pub gateway: Option<&'a GatewayReloads>,
    /// Attempts that ended in the runner's request timeout per second (index = second).
    pub timed_out_per_s: Option<&'a [u64]>,
    /// Plot title.
    pub title: &'a str,
}

/// Keys created per second (middle of their second) and in flight (end of their second, when
/// the model samples them) against seconds since the load started; dashboard fetches as green
/// lines, gateway reload windows as orange bands with an orange tick at each "Policies found",
/// timed-out attempts as brown bars.
pub fn timeline_svg(input: &TimelineInput<'_>) -> anyhow::Result<String> {
    let succeeded: Vec<(f64, f64)> = input
        .samples
        .iter()
        .map(|s| (s.second as f64 + 0.5, s.succeeded as f64))
        .collect();
    let in_flight: Vec<(f64, f64)> = input
        .samples
        .iter()
        .map(|s| (s.second as f64 + 1.0, s.in_flight as f64))
        .collect();
    let fetches: Vec<f64> = finite(input.fetch_offsets_s.iter().copied());
    let empty = GatewayReloads::default();
    let gateway = input.gateway.unwrap_or(&empty);
    let windows: Vec<(f64, f64)> = gateway
        .windows
        .iter()
        .copied()
        .filter(|(a, b)| a.is_finite() && b.is_finite() && *b >= -MAX_LEAD_S)
        .map(|(a, b)| (a.max(-MAX_LEAD_S), b))
        .collect();
    let found: Vec<f64> = finite(gateway.policies_found_s.iter().copied())
        .into_iter()
        .filter(|t| *t >= -MAX_LEAD_S)
        .collect();
    let timeouts: Vec<(f64, u64)> = input
        .timed_out_per_s
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s as f64, *n))
        .collect();

    let events = fetches
        .iter()
        .chain(&found)
        .copied()
        .chain(windows.iter().flat_map(|&(a, b)| [a, b]));
    let (x_min, x_max) = events.fold((0.0, super::series_end_s(input.samples)), |(lo, hi), x| {
        (f64::min(lo, x), f64::max(hi, x))
    });
    let y_top = succeeded
        .iter()
        .chain(&in_flight)
        .map(|&(_, y)| y)
        .chain(timeouts.iter().map(|&(_, n)| n as f64))
        .fold(0.0, f64::max);
    let y_max = frame::fitted_top(y_top, 1.0);

    let mut legend = vec![
        LegendEntry::new("keys created per second", Swatch::Line(SUCCESS)),
        LegendEntry::new(
            "in flight (waiting for their policy)",
            Swatch::Line(WAITING),
        ),
        LegendEntry::new(
            format!("policy fetch answered by the dashboard ({})", fetches.len()),
            Swatch::Tick(FETCH),
        ),
    ];
    if input.gateway.is_some() {
        legend.push(LegendEntry::new(
            format!(
                "gateway reload, queued → complete (gateway log: {})",
                windows.len()
            ),
            Swatch::Band(RELOAD),
        ));
        legend.push(LegendEntry::new(
            format!("gateway \"Policies found\" ({})", found.len()),
            Swatch::Tick(POLICIES_FOUND),
        ));
    }
    if input.timed_out_per_s.is_some() {
        let total: u64 = timeouts.iter().map(|&(_, n)| n).sum();
        legend.push(LegendEntry::new(
            format!("attempts that timed out, per second ({total})"),
            Swatch::Band(TIMEOUT),
        ));
    }

    frame::svg(input.title, &legend, |area| {
        let mut chart = frame::chart(area).build_cartesian_2d(x_min..x_max, 0.0..y_max)?;
        frame::style_mesh(&mut chart.configure_mesh())
            .x_desc("seconds since the load started")
            .y_desc("scenarios")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        chart.draw_series(
            windows
                .iter()
                .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, y_max)], RELOAD.mix(0.45).filled())),
        )?;
        chart.draw_series(timeouts.iter().map(|&(s, n)| {
            Rectangle::new(
                [(s + 0.1, 0.0), (s + 0.9, n as f64)],
                TIMEOUT.mix(0.8).filled(),
            )
        }))?;
        let fetch_style = FETCH.mix(0.7).stroke_width(2);
        chart.draw_series(
            fetches
                .iter()
                .map(|&x| PathElement::new(vec![(x, 0.0), (x, y_max)], fetch_style)),
        )?;
        let found_style = POLICIES_FOUND.stroke_width(3);
        chart.draw_series(
            found
                .iter()
                .map(|&x| PathElement::new(vec![(x, y_max * 0.9), (x, y_max)], found_style)),
        )?;
        chart.draw_series(LineSeries::new(succeeded, SUCCESS.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(in_flight, WAITING.stroke_width(2)))?;
        Ok(())
    })
}

fn finite(values: impl Iterator<Item = f64>) -> Vec<f64> {
    values.filter(|x| x.is_finite()).collect()
}
