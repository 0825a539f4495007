//! Every plot rasterised to PNG (resvg, the SVG text exactly as written) and checked by its
//! pixels: data in the plot area, the "still waiting" red exactly when scenarios wait, a fitted
//! y axis, reload bands and timeout bars on the timeline. Set `REPRO_PLOT_DIR` to keep the PNGs.
//!
//! resvg is built without its text feature, so labels are not drawn here; their content is
//! checked on the SVG text in `tests.rs`.

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

use super::fixtures::{HANG_FETCHES, hang_records, hang_timeline, pass_records, summary};
use super::frame::{RELOAD, SUCCESS, TIMEOUT, WAITING};
use super::*;
use crate::summary::Verdict;

/// The data region of the frame, pixels: inside the axes (see `frame.rs`: title 40, margin 8,
/// y labels 68, x labels 48, right margin 36).
pub(crate) const DATA: Region = Region {
    x0: 78,
    y0: 50,
    x1: 962,
    y1: 502,
};

/// A rectangle of pixels, end-exclusive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

/// Renders SVG text to a pixmap; with `REPRO_PLOT_DIR` set also writes `<name>.png` there.
pub(crate) fn rasterise(name: &str, svg: &str) -> Pixmap {
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default())
        .unwrap_or_else(|e| panic!("{name} is not valid SVG: {e}"));
    let size = tree.size().to_int_size();
    let mut pixmap = Pixmap::new(size.width(), size.height()).expect("non-empty plot");
    resvg::render(&tree, Transform::default(), &mut pixmap.as_mut());
    let png = pixmap.encode_png().expect("PNG encoding");
    assert!(png.len() > 1_000, "{name}: a {} byte PNG", png.len());
    if let Some(dir) = std::env::var_os("REPRO_PLOT_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    pixmap
}

/// Pixels in `region` within `tolerance` of `colour` on every channel.
pub(crate) fn count_colour(
    p: &Pixmap,
    region: Region,
    colour: (u8, u8, u8),
    tolerance: u8,
) -> usize {
    rows_with_colour(p, region, colour, tolerance).iter().sum()
}

/// Per row of `region`, how many pixels are near `colour`.
fn rows_with_colour(
    p: &Pixmap,
    region: Region,
    (r, g, b): (u8, u8, u8),
    tolerance: u8,
) -> Vec<usize> {
    let near = |a: u8, b: u8| a.abs_diff(b) <= tolerance;
    (region.y0..region.y1.min(p.height()))
        .map(|y| {
            (region.x0..region.x1.min(p.width()))
                .filter_map(|x| p.pixel(x, y))
                .map(|px| px.demultiply())
                .filter(|c| near(c.red(), r) && near(c.green(), g) && near(c.blue(), b))
                .count()
        })
        .collect()
}

/// Pixels in `region` that carry a colour (not white, not grey): drawn data.
fn coloured(p: &Pixmap, region: Region) -> usize {
    let mut n = 0;
    for y in region.y0..region.y1.min(p.height()) {
        for x in region.x0..region.x1.min(p.width()) {
            if let Some(px) = p.pixel(x, y) {
                let c = px.demultiply();
                let (hi, lo) = (
                    c.red().max(c.green()).max(c.blue()),
                    c.red().min(c.green()).min(c.blue()),
                );
                if hi - lo > 60 {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Pixels in `region` where green clearly dominates (fetch lines, whatever lies beneath).
fn count_green(p: &Pixmap, region: Region) -> usize {
    let mut n = 0;
    for y in region.y0..region.y1.min(p.height()) {
        for x in region.x0..region.x1.min(p.width()) {
            if let Some(px) = p.pixel(x, y) {
                let c = px.demultiply();
                let g = i32::from(c.green());
                if g > i32::from(c.red()) + 40 && g > i32::from(c.blue()) + 40 {
                    n += 1;
                }
            }
        }
    }
    n
}

fn rgb(c: plotters::style::RGBColor) -> (u8, u8, u8) {
    (c.0, c.1, c.2)
}

/// `colour` drawn at `alpha` over white.
fn over_white(c: plotters::style::RGBColor, alpha: f64) -> (u8, u8, u8) {
    let mix = |v: u8| (f64::from(v) * alpha + 255.0 * (1.0 - alpha)).round() as u8;
    (mix(c.0), mix(c.1), mix(c.2))
}

fn run_files(
    verdict: Verdict,
    records: &[ScenarioRecord],
    timeouts: Option<&[u64]>,
) -> Vec<(&'static str, Pixmap)> {
    let s = summary(verdict, records);
    let input = RunPlotInput {
        summary: &s,
        records,
        fetch_offsets_s: &HANG_FETCHES,
        timed_out_per_s: timeouts,
    };
    run_plot_files(&input)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".svg"))
        .map(|(name, svg)| {
            let svg = svg.unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let png_name = format!("{}-{}", verdict.as_str(), name.trim_end_matches(".svg"));
            (name, rasterise(&png_name, &svg))
        })
        .collect()
}

fn pixmap<'a>(files: &'a [(&str, Pixmap)], name: &str) -> &'a Pixmap {
    &files.iter().find(|(n, _)| *n == name).expect(name).1
}

#[test]
fn every_run_plot_rasterises_with_data_in_the_plot_area() {
    for verdict in [Verdict::Hang, Verdict::Pass] {
        let records = if verdict == Verdict::Hang {
            hang_records()
        } else {
            pass_records()
        };
        for (name, p) in run_files(verdict, &records, Some(&[0, 2, 5])) {
            let n = coloured(&p, DATA);
            assert!(
                n > 500,
                "{verdict:?} {name}: only {n} coloured pixels in the plot area"
            );
        }
    }
}

#[test]
fn the_still_waiting_red_appears_exactly_when_scenarios_wait() {
    let red = rgb(WAITING);
    let hang = run_files(Verdict::Hang, &hang_records(), None);
    let pass = run_files(Verdict::Pass, &pass_records(), None);
    for name in ["latency-by-index.svg", "time-to-usable.svg"] {
        let in_hang = count_colour(pixmap(&hang, name), DATA, red, 30);
        let in_pass = count_colour(pixmap(&pass, name), DATA, red, 30);
        assert!(in_hang > 100, "{name}: {in_hang} red pixels in a hang");
        assert_eq!(in_pass, 0, "{name}: red in a run where nothing waits");
    }
}

#[test]
fn a_pass_run_uses_the_height_of_the_latency_plot() {
    let pass = run_files(Verdict::Pass, &pass_records(), None);
    let rows = rows_with_colour(
        pixmap(&pass, "latency-by-index.svg"),
        DATA,
        rgb(SUCCESS),
        30,
    );
    let top = rows.iter().position(|&n| n > 0).expect("dots drawn");
    let height = rows.len();
    assert!(
        top < height / 5,
        "highest dot {top} px below the top of a {height} px plot: the axis is not fitted"
    );
}

#[test]
fn the_timeline_shows_reload_bands_fetches_and_timeouts() {
    let files = run_files(Verdict::Hang, &hang_records(), Some(&[0, 20, 40, 10]));
    let p = pixmap(&files, "timeline.svg");
    let band = count_colour(p, DATA, over_white(RELOAD, 0.45), 8);
    let bars = count_colour(p, DATA, over_white(TIMEOUT, 0.8), 12);
    let fetch = count_green(p, DATA);
    assert!(band > 5_000, "{band} pixels of gateway reload band");
    assert!(bars > 500, "{bars} pixels of timeout bars");
    assert!(fetch > 400, "{fetch} pixels of fetch lines");

    let plain = timeline_svg(&TimelineInput {
        samples: &hang_timeline(),
        fetch_offsets_s: &HANG_FETCHES,
        gateway: None,
        timed_out_per_s: None,
        title: "plain",
    })
    .unwrap();
    let p = rasterise("timeline-without-evidence", &plain);
    assert_eq!(count_colour(&p, DATA, over_white(RELOAD, 0.45), 8), 0);
    assert_eq!(count_colour(&p, DATA, over_white(TIMEOUT, 0.8), 12), 0);
}

#[test]
fn legends_leave_the_plot_area_to_the_data() {
    // The legend's swatches are the only full-strength marks below the plot area.
    let files = run_files(Verdict::Hang, &hang_records(), None);
    let p = pixmap(&files, "latency-by-index.svg");
    let below = Region {
        x0: 0,
        y0: 562,
        x1: p.width(),
        y1: p.height(),
    };
    assert!(
        count_colour(p, below, rgb(SUCCESS), 30) > 10,
        "legend dot below the plot"
    );
    assert!(
        count_colour(p, below, rgb(WAITING), 30) > 10,
        "legend triangle below the plot"
    );
}

#[test]
fn the_diff_cdf_rasterises_with_the_hanging_side_waiting() {
    let (a, b) = crate::diff::plot::tests::hang_and_fix();
    let svg = crate::diff::plot::render_latency_cdf(&a, &b).unwrap();
    let p = rasterise("diff-latency-cdf", &svg);
    assert!(coloured(&p, DATA) > 500);
    assert!(
        count_colour(&p, DATA, rgb(WAITING), 30) > 100,
        "A's waiting bar"
    );
}

/// The colour of each `<polyline>` with at least `min_points` points and stroke width 2 (the
/// curves; dashes, plateau marks and the frame are shorter or thinner).
fn curve_colours(svg: &str, min_points: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for element in svg.split("<polyline").skip(1) {
        let element = element.split("/>").next().unwrap_or_default();
        let attr = |name: &str| {
            element
                .split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        let points = attr("points").split_whitespace().count();
        if attr("stroke-width") == "2" && points >= min_points {
            let colour = attr("stroke").to_uppercase();
            if !out.contains(&colour) {
                out.push(colour);
            }
        }
    }
    out
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

#[test]
fn the_per_gateway_figure_has_one_line_per_gateway_plus_the_fleet_and_the_spread() {
    use super::fixtures::{FLEET_GATEWAYS, fleet_records, fleet_run_summary};
    use super::fleet::{FLEET, GATEWAY_COLOURS, SPREAD};
    let records = fleet_records();
    let s = fleet_run_summary(&records);
    let input = RunPlotInput {
        summary: &s,
        records: &records,
        fetch_offsets_s: &HANG_FETCHES,
        timed_out_per_s: None,
    };
    let files = run_plot_files(&input);
    let svg = files
        .iter()
        .find(|(n, _)| *n == PER_GATEWAY_PLOT)
        .expect("the per-gateway figure of a fleet run")
        .1
        .as_ref()
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Structure: N + 1 solid curves of distinct colours (gateways, fleet), the spread dashed.
    let mut expected: Vec<String> = GATEWAY_COLOURS[..FLEET_GATEWAYS]
        .iter()
        .map(|c| hex(*c))
        .collect();
    expected.push(hex(FLEET));
    assert_eq!(curve_colours(svg, 10), expected);
    assert!(
        curve_colours(svg, 2).contains(&hex(SPREAD)),
        "no spread dashes"
    );
    assert!(
        !curve_colours(svg, 10).contains(&hex(SPREAD)),
        "the spread is not dashed"
    );
    for label in [
        "gateway 1 (repro-gateway-1): 100.0 % got a key",
        "gateway 3 (repro-gateway-3): 90.0 % got a key",
        "fleet: usable on all 3 gateways (last gateway): 90.0 % got a key",
        "spread last − first gateway: p50 1200 ms, p99 2600 ms (270 scenarios usable everywhere)",
        "still waiting at the end of the run: 0 % / 0 % / 10.0 % / 10.0 %",
    ] {
        assert!(svg.contains(label), "legend {label:?} missing");
    }
    // Pixels: every line is visible in the plot area (none hidden under another), and the
    // still-waiting red of gateway 3 and the fleet.
    let p = rasterise("fleet-time-to-usable-per-gateway", svg);
    for colour in GATEWAY_COLOURS[..FLEET_GATEWAYS].iter().chain([&FLEET]) {
        let n = count_colour(&p, DATA, rgb(*colour), 30);
        assert!(n > 150, "{}: only {n} pixels of its line", hex(*colour));
    }
    assert!(
        count_colour(&p, DATA, rgb(SPREAD), 12) > 100,
        "spread pixels"
    );
    assert!(
        count_colour(&p, DATA, rgb(WAITING), 30) > 100,
        "waiting bars"
    );
    let html = &files.iter().find(|(n, _)| *n == REPORT_HTML).unwrap().1;
    let html = html.as_ref().unwrap();
    assert!(html.contains("<figure id=\"time-to-usable-per-gateway.svg\">"));
    assert!(html.contains("<a href=\"time-to-usable-per-gateway.svg\">"));
}

#[test]
fn single_gateway_runs_have_no_per_gateway_figure_and_bad_records_are_named() {
    use super::fixtures::{fleet_records, fleet_run_summary};
    let records = hang_records();
    let s = summary(Verdict::Hang, &records);
    let input = RunPlotInput {
        summary: &s,
        records: &records,
        fetch_offsets_s: &HANG_FETCHES,
        timed_out_per_s: None,
    };
    let files = run_plot_files(&input);
    assert!(files.iter().all(|(n, _)| *n != PER_GATEWAY_PLOT));
    let html = files.iter().find(|(n, _)| *n == REPORT_HTML).unwrap();
    assert!(!html.1.as_ref().unwrap().contains("per-gateway"));
    // A fleet summary with records lacking their per-gateway rows: an error naming it, and
    // the report says the figure could not be drawn.
    let s = fleet_run_summary(&fleet_records());
    let input = RunPlotInput {
        summary: &s,
        ..input
    };
    let files = run_plot_files(&input);
    let err = files.iter().find(|(n, _)| *n == PER_GATEWAY_PLOT).unwrap();
    let err = format!("{:#}", err.1.as_ref().unwrap_err());
    assert!(err.contains("scenario 0 has 0 per-gateway rows"), "{err}");
    let html = files.iter().find(|(n, _)| *n == REPORT_HTML).unwrap();
    assert!(
        html.1
            .as_ref()
            .unwrap()
            .contains("time-to-usable-per-gateway.svg could not be drawn")
    );
}
