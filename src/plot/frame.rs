//! The one chart frame every plot uses (run plots and the diff's): white canvas, title at the
//! top left, the plot area, and the legend in its own strip BELOW the plot area, so it never
//! covers data. Also the palette and the axis helpers the plots share.
//!
//! Text uses plotters' built-in size estimate (no `ttf` feature): an SVG carries text as
//! `<text>` elements and the viewer renders it, so no font is needed at build time.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A drawing area of the SVG backend.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Width of every plot, pixels.
pub(crate) const WIDTH: u32 = 1_000;
/// Height of the title strip, pixels.
const TITLE_HEIGHT: u32 = 40;
/// Height of the plot area (axes and labels included), pixels.
const PLOT_HEIGHT: u32 = 520;
/// Height of one legend row, pixels.
const LEGEND_ROW: u32 = 24;
/// Legend entries per row.
const LEGEND_COLUMNS: usize = 2;
/// Left edge of the legend, pixels (lines up with the y axis).
const LEGEND_LEFT: i32 = 76;
/// Width of one legend column, pixels.
const LEGEND_COLUMN_WIDTH: i32 = 460;

/// Successes, keys created, side A.
pub(crate) const SUCCESS: RGBColor = RGBColor(31, 119, 180);
/// Scenarios still waiting (outstanding, in flight): the "still waiting" marker colour.
pub(crate) const WAITING: RGBColor = RGBColor(214, 39, 40);
/// Scenarios that failed for good.
pub(crate) const FAILED: RGBColor = RGBColor(64, 64, 64);
/// Policy fetches the dashboard answered.
pub(crate) const FETCH: RGBColor = RGBColor(44, 160, 44);
/// Reload windows from the gateway log (drawn as a light band).
pub(crate) const RELOAD: RGBColor = RGBColor(255, 187, 120);
/// "Policies found" lines from the gateway log (the new policy set goes live).
pub(crate) const POLICIES_FOUND: RGBColor = RGBColor(230, 110, 0);
/// Attempts that ended in the runner's request timeout.
pub(crate) const TIMEOUT: RGBColor = RGBColor(140, 86, 75);
/// Side B of a diff.
pub(crate) const SIDE_B: RGBColor = RGBColor(148, 103, 189);
/// Grid lines.
const GRID: RGBColor = RGBColor(225, 225, 225);

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    /// A filled dot.
    Dot(RGBColor),
    /// An x-shaped cross.
    Cross(RGBColor),
    /// An upward triangle ("still waiting": the value lies above).
    Triangle(RGBColor),
    /// A solid line.
    Line(RGBColor),
    /// A vertical tick (events in time).
    Tick(RGBColor),
    /// A filled box (bands, bars).
    Band(RGBColor),
}

/// One legend entry.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    /// Its text, with counts.
    pub label: String,
    /// Its sample mark.
    pub swatch: Swatch,
}

impl LegendEntry {
    /// An entry.
    pub fn new(label: impl Into<String>, swatch: Swatch) -> Self {
        Self {
            label: label.into(),
            swatch,
        }
    }
}

/// Draws one plot: `draw` fills the plot area (use [`chart`] there); returns the SVG text.
pub(crate) fn svg(
    title: &str,
    legend: &[LegendEntry],
    draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let rows = legend.len().div_ceil(LEGEND_COLUMNS) as u32;
    let height = TITLE_HEIGHT + PLOT_HEIGHT + rows * LEGEND_ROW + 12;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(TITLE_HEIGHT);
        let font = ("sans-serif", 20).into_font().color(&BLACK);
        top.draw(&Text::new(
            title.to_owned(),
            (16, TITLE_HEIGHT as i32 / 2),
            font.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let (plot, legend_area) = rest.split_vertically(PLOT_HEIGHT);
        draw(&plot)?;
        draw_legend(&legend_area, legend)?;
        root.present()
            .map_err(|e| anyhow::anyhow!("could not finish the plot `{title}`: {e}"))?;
    }
    Ok(out)
}

/// A chart builder with the shared margins and label areas; add the ranges.
pub(crate) fn chart<'a, 'b>(area: &'a Area<'b>) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(8)
        // Room for the last x label, which plotters centres on the right edge.
        .margin_right(36)
        .x_label_area_size(48)
        .y_label_area_size(68);
    builder
}

/// The shared grid and label styles.
pub(crate) fn style_mesh<'a, 'b, 'c, X: Ranged, Y: Ranged>(
    mesh: &'c mut plotters::chart::MeshStyle<'a, 'b, X, Y, SVGBackend<'a>>,
) -> &'c mut plotters::chart::MeshStyle<'a, 'b, X, Y, SVGBackend<'a>> {
    mesh.bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
}

fn draw_legend(area: &Area<'_>, legend: &[LegendEntry]) -> anyhow::Result<()> {
    let font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in legend.iter().enumerate() {
        let x = LEGEND_LEFT + (i % LEGEND_COLUMNS) as i32 * LEGEND_COLUMN_WIDTH;
        let y = (i / LEGEND_COLUMNS) as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2 + 4;
        draw_swatch(area, entry.swatch, (x + 12, y))?;
        area.draw(&Text::new(entry.label.clone(), (x + 32, y), font.clone()))?;
    }
    Ok(())
}

fn draw_swatch(area: &Area<'_>, swatch: Swatch, (x, y): (i32, i32)) -> anyhow::Result<()> {
    match swatch {
        Swatch::Dot(c) => area.draw(&Circle::new((x, y), 4, c.filled()))?,
        Swatch::Cross(c) => area.draw(&Cross::new((x, y), 5, c.stroke_width(2)))?,
        Swatch::Triangle(c) => area.draw(&TriangleMarker::new((x, y), 6, c.filled()))?,
        Swatch::Line(c) => area.draw(&PathElement::new(
            vec![(x - 12, y), (x + 12, y)],
            c.stroke_width(3),
        ))?,
        Swatch::Tick(c) => area.draw(&PathElement::new(
            vec![(x, y - 8), (x, y + 8)],
            c.stroke_width(2),
        ))?,
        Swatch::Band(c) => area.draw(&Rectangle::new(
            [(x - 10, y - 7), (x + 10, y + 7)],
            c.filled(),
        ))?,
    }
    Ok(())
}

/// Round tick values for a log time axis in seconds (1-2-5 steps, then 10, 20, 30 s, minutes).
const LOG_TICKS_S: [f64; 20] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0,
];

/// A log axis range over `[lo, hi]` seconds widened to round ticks, and the ticks inside it.
pub(crate) fn log_axis_s(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let lo = if lo.is_finite() && lo > 0.0 { lo } else { 0.1 };
    let hi = if hi.is_finite() && hi > lo {
        hi
    } else {
        lo * 10.0
    };
    let first = LOG_TICKS_S
        .iter()
        .copied()
        .rev()
        .find(|&t| t <= lo)
        .unwrap_or(LOG_TICKS_S[0]);
    let last = LOG_TICKS_S.iter().copied().find(|&t| t >= hi).unwrap_or(hi);
    // At least one step on each side of the data, so a curve never starts on the frame.
    let (lo, hi) = (first.min(lo / 1.5), last.max(hi * 1.1));
    let ticks = LOG_TICKS_S
        .iter()
        .copied()
        .filter(|&t| t >= lo && t <= hi)
        .collect();
    (lo, hi, ticks)
}

/// A tick label of a time in seconds: `0.05`, `0.5`, `2`, `30`, `2 min`.
pub(crate) fn format_seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.0} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.0}")
    } else {
        let text = format!("{s:.3}");
        text.trim_end_matches('0').to_owned()
    }
}

/// Top of a linear axis for data reaching `max`: a little headroom, never zero.
pub(crate) fn fitted_top(max: f64, at_least: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        (max * 1.08).max(at_least)
    } else {
        at_least
    }
}
