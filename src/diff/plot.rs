//! The diff's latency CDF: both sides' merged histograms overlaid in one SVG.
//!
//! Log-scaled time axis, because a hang's tail sits orders of magnitude above the median.
//! Text uses plotters' built-in font estimate (no `ttf`/`ab_glyph` feature): an SVG carries
//! text as `<text>` elements and the viewer renders it, so no font is needed at build time.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::side::Side;

/// Size of the SVG, pixels.
const SIZE: (u32, u32) = (900, 520);

/// Lowest latency drawn, milliseconds (the log axis cannot start at 0).
const FLOOR_MS: f64 = 0.1;

/// A legend label, its step points `(ms, share)`, and its colour.
type Curve = (String, Vec<(f64, f64)>, RGBColor);

/// Renders the two CDFs to an SVG document; a side without histogram is named in the title.
pub fn render_latency_cdf(a: &Side, b: &Side) -> anyhow::Result<String> {
    let curves: Vec<Curve> = [(a, "A", BLUE), (b, "B", RED)]
        .into_iter()
        .map(|(side, name, color)| {
            let label = format!("{name}: {} ({})", side.label, side.gateway_versions());
            let points = side
                .latency_histogram
                .as_ref()
                .map(cdf_points)
                .unwrap_or_default();
            (label, points, color)
        })
        .collect();
    let all = curves
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|&(x, _)| x));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = if lo > hi {
        (1.0, 1000.0)
    } else {
        (lo.max(FLOOR_MS) / 1.2, hi * 1.2)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let missing: Vec<&str> = curves
            .iter()
            .filter(|(_, p, _)| p.is_empty())
            .map(|(l, _, _)| l.as_str())
            .collect();
        let title = if missing.is_empty() {
            "Latency CDF (all runs merged)".to_owned()
        } else {
            format!(
                "Latency CDF — no latency histogram for {}",
                missing.join(", ")
            )
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("latency, ms (log scale)")
            .x_labels(8)
            .x_label_formatter(&|x| format_ms(*x))
            .light_line_style(WHITE.mix(0.0))
            .y_desc("share of successful scenarios")
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .draw()?;
        for (label, points, color) in &curves {
            if points.is_empty() {
                continue;
            }
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Axis label of a latency: no decimals once it is above a few milliseconds.
fn format_ms(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Step points `(latency ms, cumulative share)` of a histogram in microseconds.
fn cdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut previous = 0.0;
    for v in h.iter_recorded() {
        let x = (v.value_iterated_to() as f64 / 1000.0).max(FLOOR_MS);
        // Two points per bucket draw a step, which is what an empirical CDF is.
        points.push((x, previous));
        previous = v.quantile();
        points.push((x, previous));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::side::{SideKind, encode_histogram};
    use crate::summary::set::sample_summary;

    fn side_with(label: &str, us: &[u64]) -> Side {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in us {
            h.record(v).unwrap();
        }
        let mut s = sample_summary();
        s.label = label.into();
        s.latency_ms.count = us.len() as u64;
        s.latency_ms.histogram_b64 = encode_histogram(&h);
        Side::from_runs(label, SideKind::Run, &[(label.to_owned(), s)])
    }

    #[test]
    fn the_svg_overlays_both_sides_with_their_labels() {
        let a = side_with("2.9.4", &[50_000, 120_000, 3_000_000, 9_000_000]);
        let b = side_with("pr", &[40_000, 60_000, 90_000, 200_000]);
        let svg = render_latency_cdf(&a, &b).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("A: 2.9.4 (v2.9.4)") && svg.contains("B: pr (v2.9.4)"));
        assert!(svg.matches("<polyline").count() >= 2);
    }

    #[test]
    fn a_side_without_histogram_still_gives_an_svg_that_says_so() {
        let a = side_with("2.9.4", &[50_000]);
        let b = Side::from_runs("pr", SideKind::Run, &[("pr".into(), sample_summary())]);
        let svg = render_latency_cdf(&a, &b).unwrap();
        assert!(
            svg.contains("no latency histogram for B: 2.9.4"),
            "label is the run's own"
        );
    }

    #[test]
    fn cdf_points_end_at_one() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(1000).unwrap();
        h.record(2000).unwrap();
        let p = cdf_points(&h);
        assert_eq!(p.first().unwrap().1, 0.0);
        assert_eq!(p.last().unwrap().1, 1.0);
    }
}
