//! Per-run plots and `report.html`: what a person looks at first.
//!
//! - `latency-by-index.svg`: latency against policy index, y axis fitted to the data; scenarios
//!   still waiting at the end of the run drawn at their real wait (scheduled start → run end)
//!   as red triangles ("still waiting": the true value lies above).
//! - `timeline.svg`: per-second keys created and scenarios in flight, every policy fetch the
//!   dashboard answered, the gateway's own reload windows and "Policies found" lines (from its
//!   log, when the run collected it), and attempts that timed out (when given).
//! - `time-to-usable.svg`: CDF of time to a usable key over ALL scenarios, log time axis with
//!   round ticks; its plateau is the share that got a key, the red bar above it the share still
//!   waiting.
//! - `time-to-usable-per-gateway.svg` (runs against several gateways only): the same CDF per
//!   gateway, the fleet's (usable on every gateway: the last gateway's time) and the spread
//!   last − first gateway, dashed.
//! - `report.html`: one self-contained page (inline SVG and CSS, no network) with the verdict,
//!   the figures and the three plots, for CI artifacts.
//!
//! Pure functions returning text; the caller writes the files ([`run_plot_files`]). Every plot
//! is drawn in the one frame of [`frame`] (title, plot area, legend below the data).

pub(crate) mod cdf;
mod fleet;
pub(crate) mod frame;
pub mod html;
mod latency;
mod timeline;

pub use fleet::PER_GATEWAY_PLOT;
pub use latency::latency_by_index_svg;
pub use timeline::{TimelineInput, timeline_svg};

use chrono::DateTime;

use crate::evidence::GatewayReloads;
use crate::summary::{Outcome, ScenarioRecord, SecondSample, Summary};

/// File names of the run plots with their alt text, in the order `summary.md` shows them.
pub const RUN_PLOTS: [(&str, &str); 3] = [
    ("time-to-usable.svg", "time to a usable key, all scenarios"),
    ("latency-by-index.svg", "latency by policy index"),
    ("timeline.svg", "per-second timeline with reloads"),
];

/// The self-contained HTML report of a run or a diff.
pub const REPORT_HTML: &str = "report.html";

/// What the run plots are drawn from.
#[derive(Debug, Clone, Copy)]
pub struct RunPlotInput<'a> {
    /// The run's summary (title, verdict, timeline, run window, gateway evidence).
    pub summary: &'a Summary,
    /// Per-scenario records: all of them, or an even sample by schedule position.
    pub records: &'a [ScenarioRecord],
    /// Policy fetches the dashboard answered, seconds since the load started.
    pub fetch_offsets_s: &'a [f64],
    /// Attempts that ended in the runner's request timeout, per second of the load (index =
    /// second); `None` when the run did not count them.
    pub timed_out_per_s: Option<&'a [u64]>,
}

/// Every plot file of a run and `report.html`, by file name; a plot that could not be drawn is
/// an error (and a note in `report.html`), the others are still written.
pub fn run_plot_files(input: &RunPlotInput<'_>) -> Vec<(&'static str, anyhow::Result<String>)> {
    let s = input.summary;
    let title = run_title(s);
    let run_end_ms = run_end_ms(s, input.records);
    let reloads = gateway_reloads(s);
    let usable = cdf::time_to_usable_svg(
        input.records,
        run_end_ms,
        &format!("{title}: time to a usable key"),
    );
    let latency = latency_by_index_svg(
        input.records,
        run_end_ms,
        &format!("{title}: latency by policy index"),
    );
    let timeline = timeline_svg(&TimelineInput {
        samples: &s.timeline,
        fetch_offsets_s: input.fetch_offsets_s,
        gateway: reloads.as_ref(),
        timed_out_per_s: input.timed_out_per_s,
        title: &format!("{title}: per second"),
    });
    let mut files = vec![
        (RUN_PLOTS[0].0, usable),
        (RUN_PLOTS[1].0, latency),
        (RUN_PLOTS[2].0, timeline),
    ];
    let per_gateway_title = format!("{title}: time to a usable key per gateway");
    if let Some(svg) = fleet::per_gateway_svg(s, input.records, run_end_ms, &per_gateway_title) {
        files.insert(1, (PER_GATEWAY_PLOT, svg));
    }
    let plots: Vec<(&str, Result<&str, &anyhow::Error>)> = files
        .iter()
        .map(|(name, svg)| (*name, svg.as_ref().map(String::as_str)))
        .collect();
    let report = html::run_report_html(s, &plots);
    files.push((REPORT_HTML, Ok(report)));
    files
}

/// The `summary.md` section that shows the plots (Markdown image links, relative paths).
pub fn markdown_plot_links(fleet: bool) -> String {
    let mut out = String::from("## Plots\n\n");
    for (file, alt) in RUN_PLOTS {
        out.push_str(&format!("![{alt}]({file})\n\n"));
    }
    if fleet {
        out.push_str(&format!(
            "![time to a usable key per gateway, and the spread]({PER_GATEWAY_PLOT})\n\n"
        ));
    }
    out.push_str(&format!(
        "All of it on one page: [{REPORT_HTML}]({REPORT_HTML}).\n"
    ));
    out
}

/// `label (verdict)`, with `stub gateway` in it for runs against the kit's stub.
pub fn run_title(s: &Summary) -> String {
    let stub = if s.gateway.is_stub {
        ", stub gateway"
    } else {
        ""
    };
    format!("{} ({}{stub})", s.label, s.verdict.as_str())
}

/// End of the run, milliseconds since the load started: when the summary was taken (right after
/// the load stopped), never before the last moment a record saw; the timeline's length without
/// times.
fn run_end_ms(s: &Summary, records: &[ScenarioRecord]) -> f64 {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok();
    let from_times = parse(&s.started_at)
        .zip(parse(&s.finished_at))
        .map(|(a, b)| (b - a).num_milliseconds() as f64)
        .filter(|ms| *ms > 0.0);
    let seen = records
        .iter()
        .map(|r| r.scheduled_ms + r.success_ms.or(r.last_failure_ms).unwrap_or(0.0))
        .fold(0.0, f64::max);
    let from_timeline = s.timeline.len() as f64 * 1000.0;
    from_times.unwrap_or(from_timeline).max(seen)
}

/// The gateway's reloads on the run's clock, from the evidence's `reload_timeline`.
fn gateway_reloads(s: &Summary) -> Option<GatewayReloads> {
    s.environment
        .as_ref()?
        .gateway_timeline()?
        .reloads_since(&s.started_at)
}

/// Counts of a record set by outcome: `(succeeded, failed, outstanding)`.
pub(crate) fn outcome_counts(records: &[ScenarioRecord]) -> (usize, usize, usize) {
    records
        .iter()
        .fold((0, 0, 0), |(s, f, o), r| match r.outcome {
            Outcome::Success => (s + 1, f, o),
            Outcome::Failed => (s, f + 1, o),
            Outcome::Outstanding => (s, f, o + 1),
        })
}

/// Seconds covered by a per-second series.
pub(crate) fn series_end_s(samples: &[SecondSample]) -> f64 {
    samples
        .iter()
        .map(|s| s.second as f64 + 1.0)
        .fold(1.0, f64::max)
}

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod raster_tests;
#[cfg(test)]
mod tests;
