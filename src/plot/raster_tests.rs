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
