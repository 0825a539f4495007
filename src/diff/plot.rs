//! The diff's plot and page: both sides' time to a usable key over ALL their scenarios in one
//! CDF (`latency-cdf.svg`, drawn in the run plots' frame), and `report.html` for CI artifacts.
//!
//! A side's curve is its merged latency histogram scaled by the share of scenarios that got a
//! key (1 − the runs' mean outstanding share), so a hanging side's curve plateaus below 100 %
//! and the red bar above the plateau shows what is still waiting.

use hdrhistogram::Histogram;

use super::compare::Comparison;
use super::side::Side;
use crate::plot::cdf::{CdfCurve, CurveKind, cdf_svg};
use crate::plot::frame::{SIDE_B, SUCCESS};
use crate::plot::html;

/// Lowest latency drawn, seconds (the log axis cannot start at 0).
const FLOOR_S: f64 = 0.000_1;

/// Renders the two CDFs to an SVG document; a side without histogram is named in the title.
pub fn render_latency_cdf(a: &Side, b: &Side) -> anyhow::Result<String> {
    let curves: Vec<CdfCurve> = [(a, "A", SUCCESS), (b, "B", SIDE_B)]
        .into_iter()
        .map(|(side, name, colour)| side_curve(side, name, colour))
        .collect();
    let missing: Vec<&str> = curves
        .iter()
        .filter(|c| c.points.is_empty())
        .map(|c| c.label.as_str())
        .collect();
    let title = if missing.is_empty() {
        "Time to a usable key, all scenarios of all runs".to_owned()
    } else {
        format!(
            "Time to a usable key — no latency histogram for {}",
            missing.join(", ")
        )
    };
    cdf_svg(
        &title,
        "time from scheduled start to a usable key, s (log scale)",
        &curves,
        0.0,
    )
}

/// The diff's page: verdict and reason, the comparison table as the terminal shows it, the CDF.
pub fn render_report_html(c: &Comparison, cdf_svg: &str) -> String {
    let title = format!("reload-repro diff: {} → {}", c.a.label, c.b.label);
    let mut body = format!(
        "<h1>{}</h1>\n<p>{} {}</p>\n",
        html::escape(&title),
        html::badge(c.verdict.as_str()),
        html::escape(&c.reason)
    );
    body.push_str("<h2>Comparison</h2>\n<pre>");
    body.push_str(&html::escape(&super::render::render_terminal(c)));
    body.push_str("</pre>\n<h2>Time to a usable key</h2>\n");
    body.push_str(&html::figure("latency-cdf.svg", Ok(cdf_svg)));
    body.push_str(
        "<h2>Files</h2>\n<ul><li><a href=\"diff.md\">diff.md</a></li>\
         <li><a href=\"diff.json\">diff.json</a></li>\
         <li><a href=\"latency-cdf.svg\">latency-cdf.svg</a></li></ul>\n",
    );
    html::page(&title, &body)
}

/// One side's curve: label with its versions, steps scaled to the share that got a key.
fn side_curve(side: &Side, name: &str, colour: plotters::style::RGBColor) -> CdfCurve {
    let label = format!("{name}: {} ({})", side.label, side.gateway_versions());
    let shares: Vec<f64> = side
        .runs
        .iter()
        .filter_map(|r| r.values.outstanding_share)
        .collect();
    let waiting_share = if shares.is_empty() {
        0.0
    } else {
        (shares.iter().sum::<f64>() / shares.len() as f64).clamp(0.0, 1.0)
    };
    let points = side
        .latency_histogram
        .as_ref()
        .map(|h| cdf_points(h, 1.0 - waiting_share))
        .unwrap_or_default();
    CdfCurve {
        label,
        colour,
        points,
        waiting_share,
        failed_share: 0.0,
        waited_s: None,
        kind: CurveKind::Usable,
    }
}

/// Step points `(latency s, cumulative share × scale)` of a histogram in microseconds.
fn cdf_points(h: &Histogram<u64>, scale: f64) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut previous = 0.0;
    for v in h.iter_recorded() {
        let x = (v.value_iterated_to() as f64 / 1e6).max(FLOOR_S);
        // Two points per bucket draw a step, which is what an empirical CDF is.
        points.push((x, previous));
        previous = v.quantile() * scale;
        points.push((x, previous));
    }
    points
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::diff::side::{SideKind, encode_histogram};
    use crate::summary::set::sample_summary;

    fn side_with(label: &str, us: &[u64], outstanding: u64) -> Side {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in us {
            h.record(v).unwrap();
        }
        let mut s = sample_summary();
        s.label = label.into();
        s.latency_ms.count = us.len() as u64;
        s.latency_ms.histogram_b64 = encode_histogram(&h);
        s.scenarios.scheduled = 100;
        s.scenarios.outstanding = outstanding;
        Side::from_runs(label, SideKind::Run, &[(label.to_owned(), s)])
    }

    pub(crate) fn hang_and_fix() -> (Side, Side) {
        (
            side_with("2.9.4", &[50_000, 120_000, 3_000_000, 9_000_000], 20),
            side_with("pr", &[40_000, 60_000, 90_000, 200_000], 0),
        )
    }

    #[test]
    fn the_svg_overlays_both_sides_with_their_labels_and_plateaus() {
        let (a, b) = hang_and_fix();
        let svg = render_latency_cdf(&a, &b).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(
            svg.contains("A: 2.9.4 (v2.9.4): 80.0 % got a key"),
            "hang side plateaus"
        );
        assert!(svg.contains("B: pr (v2.9.4): 100.0 % got a key"));
        assert!(svg.contains("still waiting at the end of the run: 20.0 % / 0 %"));
        assert!(svg.matches("<polyline").count() >= 2);
    }

    #[test]
    fn a_side_without_histogram_still_gives_an_svg_that_says_so() {
        let a = side_with("2.9.4", &[50_000], 0);
        let b = Side::from_runs("pr", SideKind::Run, &[("pr".into(), sample_summary())]);
        let svg = render_latency_cdf(&a, &b).unwrap();
        assert!(
            svg.contains("no latency histogram for B: 2.9.4"),
            "label is the run's own"
        );
    }

    #[test]
    fn cdf_points_end_at_the_scale() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(1000).unwrap();
        h.record(2000).unwrap();
        let p = cdf_points(&h, 0.8);
        assert_eq!(p.first().unwrap().1, 0.0);
        assert!((p.last().unwrap().1 - 0.8).abs() < 1e-12);
    }

    #[test]
    fn the_diff_report_is_one_page_with_the_verdict_and_the_plot() {
        let (a, b) = hang_and_fix();
        let options = crate::diff::CompareOptions {
            alpha: 0.05,
            min_effect_pct: 10.0,
            bootstrap: 0,
            seed: 1,
            force: false,
        };
        let c = crate::diff::compare(&a, &b, &options);
        let svg = render_latency_cdf(&a, &b).unwrap();
        let page = render_report_html(&c, &svg);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("Content-Security-Policy"));
        assert!(page.contains(c.verdict.as_str()));
        assert_eq!(page.matches("<svg").count(), 1);
        assert!(!page.contains("<script") && !page.contains("https://"));
    }
}
