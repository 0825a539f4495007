//! Renderers of a [`Comparison`]: the terminal table, GitHub-flavoured Markdown, JSON.
//!
//! Each is a pure function to a `String`; `mod.rs` decides where the text goes.

use std::fmt::Write as _;

use super::compare::{
    Comparison, HangComparison, MetricComparison, SideInfo, UnresponsiveComparison, fmt_p,
    fmt_value,
};
use crate::summary::set::PerRunValues;

/// Largest Markdown document, bytes: GitHub refuses PR comments above 65 536 characters.
pub const MARKDOWN_LIMIT: usize = 64_000;

/// Warnings shown in Markdown; the JSON has them all.
const MAX_WARNINGS: usize = 20;

/// Per-run rows listed per side in Markdown before the rest is left to `diff.json`.
const MAX_RUN_ROWS: usize = 100;

/// The terminal table: aligned columns, verdict last so it is what the eye lands on.
pub fn render_terminal(c: &Comparison) -> String {
    let mut out = String::new();
    for (name, side) in [("A", &c.a), ("B", &c.b)] {
        let _ = writeln!(
            out,
            "{name}: {}  ({}; {}){}",
            side.label,
            side.gateway,
            runs_text(side),
            images_text(side)
        );
    }
    let ci_head = format!("{:.0}% CI of B−A", (1.0 - c.options.alpha) * 100.0);
    let _ = writeln!(
        out,
        "\n{:<20} {:>12} {:>12} {:>10} {:>8}  {ci_head}",
        "metric", "A", "B", "delta", "p"
    );
    for m in &c.metrics {
        terminal_metric_row(&mut out, m.metric.title(), m);
    }
    terminal_counts_rows(&mut out, &c.hangs, &c.unresponsive, c.a.verdicts.pass);
    if let Some(f) = &c.fleet {
        fleet::terminal_fleet(&mut out, c, f);
    }
    let _ = writeln!(
        out,
        "(* decides the verdict; ~ = not significant at alpha {}; > = not reached: fewer \
         scenarios got their key than the percentile needs)",
        c.options.alpha
    );
    if !c.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for w in &c.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    let _ = writeln!(out, "\nverdict: {} — {}", c.verdict.as_str(), c.reason);
    out
}

/// One metric row of the terminal table under `title` (`*` added for a primary metric).
fn terminal_metric_row(out: &mut String, title: &str, m: &MetricComparison) {
    let star = if m.primary { "*" } else { " " };
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>12} {:>10} {:>8}  {}",
        format!("{title}{star}"),
        a_text(m),
        b_text(m),
        delta_text(m),
        fmt_p(m.p_value),
        ci_text(m)
    );
}

/// The hangs and unresponsive rows of the terminal table (of the runs, or of one gateway).
fn terminal_counts_rows(
    out: &mut String,
    h: &HangComparison,
    u: &UnresponsiveComparison,
    a_passes: u64,
) {
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>12} {:>10} {:>8}",
        "hangs*",
        format!("{}/{}", h.a_hangs[0], h.a_hangs[1]),
        format!("{}/{}", h.b_hangs[0], h.b_hangs[1]),
        hang_change(h),
        fmt_p(Some(h.p_value))
    );
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>12} {:>10} {:>8}",
        "unresponsive*",
        format!("{}/{}", u.a_runs[0], u.a_runs[1]),
        format!("{}/{}", u.b_runs[0], u.b_runs[1]),
        unresponsive_change(u, a_passes),
        fmt_p(Some(u.p_value))
    );
}

/// GitHub-flavoured Markdown: verdict and headline table first, details folded, < 64 KB.
pub fn render_markdown(c: &Comparison) -> String {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "### reload-repro diff: `{}` → `{}`: **{}**\n\n{}\n",
        cell(&c.a.label),
        cell(&c.b.label),
        c.verdict.as_str(),
        cell(&c.reason)
    );
    let _ = writeln!(
        head,
        "| metric | A: {} | B: {} | delta | p |",
        cell(&c.a.label),
        cell(&c.b.label)
    );
    let _ = writeln!(head, "|---|--:|--:|--:|--:|");
    for m in c.metrics.iter().filter(|m| m.primary) {
        let _ = writeln!(head, "{}", metric_row(m, false));
    }
    let h = &c.hangs;
    let _ = writeln!(
        head,
        "| hangs (runs) | {}/{} | {}/{} | {} | {} |",
        h.a_hangs[0],
        h.a_hangs[1],
        h.b_hangs[0],
        h.b_hangs[1],
        hang_change(h),
        fmt_p(Some(h.p_value))
    );
    let u = &c.unresponsive;
    let _ = writeln!(
        head,
        "| gateway unresponsive (runs) | {}/{} | {}/{} | {} | {} |",
        u.a_runs[0],
        u.a_runs[1],
        u.b_runs[0],
        u.b_runs[1],
        unresponsive_change(u, c.a.verdicts.pass),
        fmt_p(Some(u.p_value))
    );
    if let Some(f) = &c.fleet {
        fleet::markdown_fleet_head(&mut head, c, f);
    }
    for (name, side) in [("A", &c.a), ("B", &c.b)] {
        let _ = writeln!(
            head,
            "\n{name}: gateway {}{}",
            cell(&side.gateway),
            images_text(side)
        );
    }
    if !c.warnings.is_empty() {
        head.push('\n');
        for w in c.warnings.iter().take(MAX_WARNINGS) {
            let _ = writeln!(head, "> ⚠️ {}", cell(w));
        }
        if c.warnings.len() > MAX_WARNINGS {
            let more = c.warnings.len() - MAX_WARNINGS;
            let _ = writeln!(head, "> … and {more} more warnings in `diff.json`.");
        }
    }
    let details = markdown_details(c, true);
    let mut doc = format!("{head}\n{details}");
    if doc.len() > MARKDOWN_LIMIT {
        doc = format!("{head}\n{}", markdown_details(c, false));
    }
    if doc.len() > MARKDOWN_LIMIT {
        // Only absurd labels or warnings get here: keep the head, cut at a char boundary.
        let note = "\n\n_(truncated to fit 64 KB; see diff.json)_\n";
        let mut cut = MARKDOWN_LIMIT - note.len();
        while !doc.is_char_boundary(cut) {
            cut -= 1;
        }
        doc.truncate(cut);
        doc.push_str(note);
    }
    doc
}

/// The folded part: every metric with n and CI, per-run values, config, options.
fn markdown_details(c: &Comparison, with_runs: bool) -> String {
    let mut out = String::from("<details><summary>All metrics, runs and options</summary>\n\n");
    let ci_head = format!("{:.0} % CI of B − A", (1.0 - c.options.alpha) * 100.0);
    let _ = writeln!(
        out,
        "| metric | A (n) | B (n) | delta | p | test | {ci_head} |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|---|---|");
    for m in &c.metrics {
        let _ = writeln!(out, "{}", metric_row(m, true));
    }
    if let Some(f) = &c.fleet {
        fleet::markdown_fleet_details(&mut out, f);
    }
    if !c.config_differences.is_empty() {
        let _ = writeln!(
            out,
            "\n**Scenario differences (compared with `--force`)**\n"
        );
        let _ = writeln!(out, "| field | A | B |\n|---|---|---|");
        for d in &c.config_differences {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&d.field),
                cell(&d.a),
                cell(&d.b)
            );
        }
    }
    for (name, side) in [("A", &c.a), ("B", &c.b)] {
        let _ = writeln!(
            out,
            "\n**{name}: `{}`** ({}; {}; from `{}`)\n",
            cell(&side.label),
            cell(&side.gateway),
            runs_text(side),
            cell(&side.source)
        );
        if with_runs {
            out.push_str(&per_run_table(&side.per_run));
        } else {
            out.push_str("_Per-run values left out to stay under 64 KB: see `diff.json`._\n");
        }
    }
    let o = &c.options;
    let _ = writeln!(
        out,
        "\nalpha {}, minimum effect {} %, {} bootstrap resamples (seed {}). Mann-Whitney U on \
         per-run values (runs are the unit), Fisher's exact test on hang counts.\n\n</details>",
        o.alpha, o.min_effect_pct, o.bootstrap, o.seed
    );
    out
}

fn per_run_table(runs: &[PerRunValues]) -> String {
    let mut out = String::from(
        "| run | verdict | usable p50 ms | usable p90 ms | p50 ms | p99 ms | max ms | outstanding | fetches | coalescing | lag p99 ms |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let opt = |x: Option<f64>, unit: &str| x.map_or("–".to_owned(), |v| fmt_value(v, unit));
    for r in runs.iter().take(MAX_RUN_ROWS) {
        let usable = |q: &Option<crate::summary::CensoredQuantile>| match q {
            Some(q) => match (q.ms, q.reached) {
                (Some(ms), true) => fmt_value(ms, ""),
                (Some(ms), false) => format!("> {}", fmt_value(ms, "")),
                (None, _) => "–".to_owned(),
            },
            None => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&r.run_dir),
            r.verdict.as_str(),
            usable(&r.usable_p50),
            usable(&r.usable_p90),
            opt(r.p50_ms, ""),
            opt(r.p99_ms, ""),
            opt(r.max_ms, ""),
            opt(r.outstanding_share.map(|s| s * 100.0), "%"),
            r.policy_fetches,
            opt(r.coalescing_ratio, ""),
            fmt_value(r.lag_p99_ms, "")
        );
    }
    if runs.len() > MAX_RUN_ROWS {
        let _ = writeln!(
            out,
            "\n_{} more runs in `diff.json`._",
            runs.len() - MAX_RUN_ROWS
        );
    }
    out
}

fn metric_row(m: &MetricComparison, detailed: bool) -> String {
    titled_metric_row(m.metric.title(), m, detailed)
}

/// A Markdown metric row under `title`.
fn titled_metric_row(title: &str, m: &MetricComparison, detailed: bool) -> String {
    let (a, b) = (a_text(m), b_text(m));
    if detailed {
        let test = m
            .method
            .map_or("–".to_owned(), |t| format!("{t:?}").to_lowercase());
        format!(
            "| {title} | {a} ({}) | {b} ({}) | {} | {} | {test} | {} |",
            m.a_n,
            m.b_n,
            delta_text(m),
            fmt_p(m.p_value),
            ci_text(m)
        )
    } else {
        format!(
            "| {title} | {a} | {b} | {} | {} |",
            delta_text(m),
            fmt_p(m.p_value)
        )
    }
}

/// `±x %` when significant, `~` when tested and not, `?` when untested (too few runs).
fn delta_text(m: &MetricComparison) -> String {
    let delta = match (m.delta_pct, m.a_median, m.b_median) {
        (Some(d), _, _) => format!("{d:+.1} %"),
        (None, Some(_), Some(_)) => "from 0".to_owned(),
        _ => return "–".to_owned(),
    };
    match (m.p_value, m.significant) {
        (Some(_), true) => delta,
        (Some(_), false) => "~".to_owned(),
        (None, _) => format!("{delta} ?"),
    }
}

fn median_text(x: Option<f64>, unit: &str) -> String {
    x.map_or("–".to_owned(), |v| fmt_value(v, unit))
}

/// A median, `> x` when it is only a bound (at least half the side's runs did not reach the
/// censored percentile).
fn bounded_text(x: Option<f64>, unit: &str, bounds: usize, n: usize) -> String {
    let text = median_text(x, unit);
    if x.is_some() && n > 0 && bounds * 2 >= n {
        format!("> {text}")
    } else {
        text
    }
}

fn a_text(m: &MetricComparison) -> String {
    bounded_text(m.a_median, &m.unit, m.a_bounds, m.a_n)
}

fn b_text(m: &MetricComparison) -> String {
    bounded_text(m.b_median, &m.unit, m.b_bounds, m.b_n)
}

fn images_text(side: &SideInfo) -> String {
    match side.gateway_images.as_slice() {
        [] => String::new(),
        [one] => format!("; image {}", short_image(one)),
        many => format!("; {} images", many.len()),
    }
}

/// `repo@sha256:0123456789ab` or `sha256:0123456789ab`: enough to tell builds apart.
fn short_image(image: &str) -> String {
    match image.find("sha256:") {
        Some(at) => image.chars().take(at + 7 + 12).collect(),
        None => image.chars().take(80).collect(),
    }
}

fn unresponsive_change(u: &UnresponsiveComparison, a_passes: u64) -> String {
    let (a, b) = (u.a_runs[0], u.b_runs[0]);
    if a == b {
        return "=".to_owned();
    }
    let text = if b > a { "more" } else { "fewer" };
    // B dying where A never did decides the verdict without a test (see decide_verdict).
    if u.significant || (a == 0 && a_passes > 0) {
        text.to_owned()
    } else {
        format!("{text} ~")
    }
}

fn ci_text(m: &MetricComparison) -> String {
    match m.ci {
        Some([lo, hi]) => {
            let unit = if m.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", m.unit)
            };
            format!("[{}, {}]{unit}", fmt_value(lo, ""), fmt_value(hi, ""))
        }
        None => "–".to_owned(),
    }
}

fn hang_change(h: &HangComparison) -> String {
    let share = |x: [u64; 2]| {
        if x[1] == 0 {
            0.0
        } else {
            x[0] as f64 / x[1] as f64
        }
    };
    let (a, b) = (share(h.a_hangs), share(h.b_hangs));
    let text = if a == b {
        return "=".to_owned();
    } else if a == 1.0 && b == 0.0 {
        "hang→pass"
    } else if a == 0.0 && b == 1.0 {
        "pass→hang"
    } else if b < a {
        "fewer"
    } else {
        "more"
    };
    if h.significant {
        text.to_owned()
    } else {
        format!("{text} ~")
    }
}

fn runs_text(side: &SideInfo) -> String {
    let v = &side.verdicts;
    let mut parts = vec![format!("{} run(s)", side.runs)];
    for (n, name) in [
        (v.pass, "pass"),
        (v.hang, "hang"),
        (v.unresponsive, "unresponsive"),
        (v.infra_error, "infra_error"),
        (v.interrupted, "interrupted"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {name}"));
        }
    }
    parts.join(", ")
}

/// Makes user text safe inside a table cell or code span.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('`', "'")
        .replace(['\n', '\r'], " ")
}

/// The comparison as pretty JSON (what `--json` writes).
pub fn render_json(c: &Comparison) -> serde_json::Result<String> {
    serde_json::to_string_pretty(c)
}

mod fleet;

#[cfg(test)]
mod tests;
