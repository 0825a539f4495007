//! SVG-level tests of the run plots and report.html (pixels are checked in `raster_tests.rs`).

use super::fixtures::{HANG_FETCHES, hang_records, hang_timeline, pass_records, summary};
use super::*;
use crate::summary::Verdict;

fn files_of(s: &Summary, records: &[ScenarioRecord]) -> Vec<(&'static str, String)> {
    let input = RunPlotInput {
        summary: s,
        records,
        fetch_offsets_s: &HANG_FETCHES,
        timed_out_per_s: Some(&[0, 3, 0, 12, 1]),
    };
    run_plot_files(&input)
        .into_iter()
        .map(|(name, text)| (name, text.unwrap_or_else(|e| panic!("{name}: {e:#}"))))
        .collect()
}

fn file<'a>(files: &'a [(&str, String)], name: &str) -> &'a str {
    &files.iter().find(|(n, _)| *n == name).expect(name).1
}

/// The y coordinate of the `<text>` element holding `needle`.
fn text_y(svg: &str, needle: &str) -> f64 {
    let at = svg
        .find(needle)
        .unwrap_or_else(|| panic!("no text {needle:?}"));
    let open = svg[..at].rfind("<text").expect("a text element");
    let attrs = &svg[open..at];
    let y = attrs.split(" y=\"").nth(1).expect("y attribute");
    y.split('"').next().unwrap().parse().expect("numeric y")
}

#[test]
fn a_run_gives_three_plots_and_a_report() {
    let records = hang_records();
    let files = files_of(&summary(Verdict::Hang, &records), &records);
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "time-to-usable.svg",
            "latency-by-index.svg",
            "timeline.svg",
            "report.html"
        ]
    );
    for (name, text) in &files[..3] {
        assert!(text.starts_with("<svg"), "{name}: {}", &text[..80]);
        assert!(
            text.contains("2.9.4 (hang)"),
            "{name} has the run in its title"
        );
    }
}

#[test]
fn latency_plot_draws_every_scenario_with_an_index_at_its_own_height() {
    let records = hang_records();
    let svg = latency_by_index_svg(&records, 12_000.0, "t").unwrap();
    assert!(svg.contains("key created (269), at its latency"));
    assert!(svg.contains("still waiting at the end of the run (30), at their wait so far"));
    // 269 successes + the legend's sample dot; index 0 is not drawn.
    assert_eq!(svg.matches("<circle").count(), 270);
    // 30 triangles + the legend's.
    assert_eq!(svg.matches("<polygon").count(), 31);
}

#[test]
fn a_scenario_still_waiting_is_drawn_at_its_wait_not_at_the_deadline() {
    let r = &hang_records()[280];
    assert_eq!(r.outcome, Outcome::Outstanding);
    assert_eq!(latency::wait_ms(r, 12_000.0), 12_000.0 - 280.0 * 20.0);
    assert_eq!(latency::wait_ms(r, 1_000.0), 0.0, "never negative");
}

#[test]
fn the_y_axis_is_fitted_to_the_data() {
    assert_eq!(frame::fitted_top(3.0, 0.1), 3.0 * 1.08);
    assert_eq!(frame::fitted_top(0.0, 0.1), 0.1);
    assert_eq!(frame::fitted_top(f64::NAN, 1.0), 1.0);
    let svg = latency_by_index_svg(&pass_records(), 60_000.0, "pass").unwrap();
    // Latencies reach 3 s: the axis stops near there, not at a 60 s deadline.
    for label in ["10.0", "30.0", "60.0"] {
        assert!(
            !svg.contains(&format!(">\n{label}\n</text>")),
            "axis not fitted: {label}"
        );
    }
    assert!(svg.contains(">\n3.0\n</text>"), "the axis reaches the data");
}

#[test]
fn the_cdf_has_round_log_ticks_and_shows_the_waiting_share() {
    let records = hang_records();
    let svg = cdf::time_to_usable_svg(&records, 12_000.0, "t").unwrap();
    for tick in ["0.5", "1", "2", "5", "10"] {
        assert!(
            svg.contains(&format!(">\n{tick}\n</text>")),
            "tick {tick} missing"
        );
    }
    assert!(svg.contains("89.7 % got a key"), "269 of 300");
    assert!(svg.contains("still waiting at the end of the run: 10.0 %"));
    assert!(svg.contains("failed: 0.3 %"));
}

#[test]
fn log_axis_ticks_are_round_and_cover_the_data() {
    let (lo, hi, ticks) = frame::log_axis_s(0.8, 12.0);
    assert!(lo <= 0.8 / 1.5 && hi >= 12.0);
    assert_eq!(ticks, [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
    assert_eq!(frame::format_seconds(0.05), "0.05");
    assert_eq!(frame::format_seconds(30.0), "30");
    assert_eq!(frame::format_seconds(300.0), "5 min");
}

#[test]
fn cdf_steps_are_thinned_and_end_at_the_success_share() {
    let mut times: Vec<f64> = (0..10_000).map(|i| f64::from(i) / 100.0).collect();
    let points = cdf::step_points(&mut times, 20_000);
    assert!(points.len() <= 2 * 2_000 + 2, "{}", points.len());
    assert_eq!(points.first().unwrap().1, 0.0);
    assert_eq!(points.last().unwrap(), &(99.99, 0.5));
    assert!(
        points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
    );
}

#[test]
fn the_timeline_draws_gateway_reloads_and_timeouts_when_given() {
    let records = hang_records();
    let files = files_of(&summary(Verdict::Hang, &records), &records);
    let svg = file(&files, "timeline.svg");
    assert!(svg.contains("policy fetch answered by the dashboard (4)"));
    assert!(svg.contains("gateway reload, queued → complete (gateway log: 2)"));
    assert!(
        svg.contains("gateway \"Policies found\" (2)")
            || svg.contains("gateway &quot;Policies found&quot; (2)")
    );
    assert!(svg.contains("attempts that timed out, per second (16)"));

    let without = timeline_svg(&TimelineInput {
        samples: &hang_timeline(),
        fetch_offsets_s: &HANG_FETCHES,
        gateway: None,
        timed_out_per_s: None,
        title: "t",
    })
    .unwrap();
    assert!(!without.contains("gateway reload"));
    assert!(!without.contains("timed out"));
}

#[test]
fn stub_runs_say_stub_in_every_title() {
    let records = pass_records();
    let mut s = summary(Verdict::Pass, &records);
    s.gateway.is_stub = true;
    s.gateway.version = Some("stub/v2.9.4".into());
    let files = files_of(&s, &records);
    for (name, text) in &files {
        assert!(text.contains("2.9.4 (pass, stub gateway)"), "{name}");
    }
    assert!(file(&files, "report.html").contains("not a Tyk result"));
}

#[test]
fn legends_sit_below_the_plot_area() {
    let records = hang_records();
    let files = files_of(&summary(Verdict::Hang, &records), &records);
    // Title strip 40 px + plot area 520 px: every legend label starts below 560.
    for (name, label) in [
        ("latency-by-index.svg", "key created (269)"),
        ("time-to-usable.svg", "still waiting at the end of the run"),
        ("timeline.svg", "keys created per second"),
    ] {
        let y = text_y(file(&files, name), label);
        assert!(y > 560.0, "{name}: legend at y={y}");
    }
}

#[test]
fn report_html_is_self_contained() {
    let records = hang_records();
    let files = files_of(&summary(Verdict::Hang, &records), &records);
    let html = file(&files, "report.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("30 still waiting"));
    assert!(html.contains("<a href=\"gateway.log.gz\">"));
    for banned in ["<script", "<link", "<img", "@import", "url(", "https://"] {
        assert!(!html.contains(banned), "{banned} in report.html");
    }
    let outside: Vec<&str> = html
        .match_indices("http://")
        .map(|(at, _)| &html[at..(at + 40).min(html.len())])
        .filter(|s| !s.starts_with("http://www.w3.org/") && !s.starts_with("http://127.0.0.1"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn html_escapes_labels() {
    assert_eq!(html::escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    let records = pass_records();
    let mut s = summary(Verdict::Pass, &records);
    s.label = "<script>x</script>".into();
    let files = files_of(&s, &records);
    assert!(!file(&files, "report.html").contains("<script>"));
}

#[test]
fn markdown_links_every_plot_and_the_report() {
    let md = markdown_plot_links(false);
    for (file, _) in RUN_PLOTS {
        assert!(md.contains(&format!("]({file})")), "{md}");
    }
    assert!(!md.contains(PER_GATEWAY_PLOT));
    assert!(markdown_plot_links(true).contains(&format!("]({PER_GATEWAY_PLOT})")));
    assert!(md.contains("![time to a usable key, all scenarios](time-to-usable.svg)"));
    assert!(md.contains("[report.html](report.html)"));
}

#[test]
fn plots_of_an_empty_run_still_render() {
    let s = summary(Verdict::InfraError, &[]);
    let input = RunPlotInput {
        summary: &s,
        records: &[],
        fetch_offsets_s: &[],
        timed_out_per_s: None,
    };
    for (name, text) in run_plot_files(&input) {
        let text = text.unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(!text.is_empty());
    }
}

#[test]
fn the_run_end_comes_from_the_summary_times() {
    let records = hang_records();
    let s = summary(Verdict::Hang, &records);
    assert_eq!(run_end_ms(&s, &records), 12_000.0);
    let mut no_times = s.clone();
    no_times.finished_at = "not a time".into();
    assert_eq!(
        run_end_ms(&no_times, &records),
        12_000.0,
        "12 one-second samples"
    );
}

/// Writes the fixtures' files to `$REPRO_PLOT_DIR` (if set) to look at them.
#[test]
fn plots_can_be_written_for_inspection() {
    let Some(dir) = std::env::var_os("REPRO_PLOT_DIR") else {
        return;
    };
    for (verdict, records) in [
        (Verdict::Hang, hang_records()),
        (Verdict::Pass, pass_records()),
    ] {
        for (name, text) in files_of(&summary(verdict, &records), &records) {
            std::fs::write(
                std::path::Path::new(&dir).join(format!("{}-{name}", verdict.as_str())),
                text,
            )
            .unwrap();
        }
    }
}
