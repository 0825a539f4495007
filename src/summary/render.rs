//! Human renderings of a [`Summary`]: `summary.md` (GitHub-flavoured Markdown), `report.txt`
//! (the seed tool's format, so old and new results read alike) and a compact terminal table.
//!
//! Each renderer is a pure function of the summary; nothing here measures or decides.

use std::fmt::Write as _;

use crate::summary::attempts::attempt_notes;
use crate::summary::censored::format_quantile;
use crate::summary::stats::go_duration;
use crate::summary::{AttemptCounts, Summary, TopRow};

/// Lines of `FAIL`/`OUTSTANDING` rows `report.txt` prints before summing up the rest.
pub const REPORT_MAX_UNFINISHED_LINES: usize = 1_000;

/// `summary.md`: headline (verdict, reason, gateway, stub warning), results, top rows, config.
pub fn render_markdown(s: &Summary) -> String {
    let mut md = String::new();
    let verdict = s.verdict.as_str();
    let _ = writeln!(
        md,
        "# reload-repro `{}`: {}\n",
        s.label,
        verdict.to_uppercase()
    );
    if s.gateway.is_stub {
        let _ = writeln!(
            md,
            "> [!WARNING]\n> This run used the kit's stub gateway, not Tyk: it checks the kit and \
             is never a Tyk result.\n"
        );
    }
    if s.scheduler.runner_was_bottleneck {
        let _ = writeln!(
            md,
            "> [!CAUTION]\n> The runner fell behind its own schedule ({} late starts): latencies \
             include the runner's delay.\n",
            s.scheduler.late_starts
        );
    }
    let _ = writeln!(md, "**Verdict: {verdict}.** {}\n", cell(&s.reason));
    for note in attempt_notes(s) {
        let _ = writeln!(md, "- {}", cell(&note));
    }
    if !attempt_notes(s).is_empty() {
        md.push('\n');
    }
    let g = &s.gateway;
    let version = g.version.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        md,
        "Gateway `{version}` (version from {}) at `{}`; load started {}, summary written {}, \
         reload-repro {}.\n",
        g.version_source, g.url, s.started_at, s.finished_at, s.kit_version
    );
    push_results(&mut md, s);
    push_fleet(&mut md, s);
    push_top_rows(&mut md, &s.top);
    push_config(&mut md, s);
    let f = &s.files;
    let _ = writeln!(
        md,
        "Files: [{}]({}), [{}]({}), [{}]({}).",
        f.report, f.report, f.scenarios, f.scenarios, f.fetches, f.fetches
    );
    // The run's plots and report.html (file names owned by the plot module).
    let _ = write!(
        md,
        "\n{}",
        crate::plot::markdown_plot_links(s.gateways.len() > 1)
    );
    md
}

/// The results section: one small table per area.
fn push_results(md: &mut String, s: &Summary) {
    let c = &s.scenarios;
    let l = &s.latency_ms;
    let r = &s.reloads;
    let k = &s.scheduler;
    md.push_str("## Results\n\n### Scenarios\n\n");
    md.push_str("| Scheduled | Started | Succeeded | Failed | Outstanding |\n");
    md.push_str("|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} |\n",
        c.scheduled, c.started, c.succeeded, c.failed, c.outstanding
    );
    md.push_str("### Latency of successful scenarios\n\n");
    md.push_str("| Count | p50 | p90 | p99 | Max | Mean |\n|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} |\n",
        l.count,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        ms(l.mean)
    );
    push_time_to_usable(md, s);
    push_attempts(md, s);
    md.push_str("### Reloads seen by the dashboard mock\n\n");
    md.push_str(
        "| Triggers sent | Policy fetches | Triggers per fetch | Fetch p50 | Longest gap without \
         fetch | Last fetch after last add | Rejected fetches | Publish errors |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        r.triggers_sent,
        r.policy_fetches,
        ratio(r.coalescing_ratio),
        ms(r.fetch_p50_ms),
        seconds(r.longest_gap_without_fetch_s),
        last_fetch_after_add(r.last_fetch_after_last_add_s),
        r.rejected_fetches,
        r.publish_errors
    );
    md.push_str("### Runner schedule\n\n");
    md.push_str("| Lag p50 | Lag p99 | Lag max | Late starts | Runner was the bottleneck |\n");
    md.push_str("|---:|---:|---:|---:|:---|\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} (> {}) | {} |\n",
        ms(Some(k.lag_p50_ms)),
        ms(Some(k.lag_p99_ms)),
        ms(Some(k.lag_max_ms)),
        k.late_starts,
        ms(Some(k.late_threshold_ms)),
        if k.runner_was_bottleneck { "yes" } else { "no" }
    );
}

/// A fleet run: one row per gateway, then how each change spread (nothing with one gateway).
fn push_fleet(md: &mut String, s: &Summary) {
    let Some(f) = &s.fleet else {
        return;
    };
    md.push_str(
        "## Per gateway

The results above describe the fleet: a scenario is usable once its \
         key works on every gateway, at the last gateway's time.

",
    );
    md.push_str(
        "| # | Gateway | Verdict | Succeeded | Outstanding | Failed | Time to usable p50 | p90 | \
         Key attempts (ok / not yet / no answer) | Reason |\n",
    );
    md.push_str("|---:|:---|:---|---:|---:|---:|---:|---:|---:|:---|\n");
    for (i, g) in s.gateways.iter().enumerate() {
        let name = match &g.container {
            Some(c) => format!("`{}` ({})", g.url, cell(c)),
            None => format!("`{}`", g.url),
        };
        let k = &g.key_creations;
        let _ = writeln!(
            md,
            "| {} | {name} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            i + 1,
            g.verdict.as_str(),
            g.scenarios.succeeded,
            g.scenarios.outstanding,
            g.scenarios.failed,
            format_quantile(&g.time_to_usable.p50),
            format_quantile(&g.time_to_usable.p90),
            k.ok,
            k.not_yet,
            k.timed_out + k.connect_timed_out + k.refused_or_reset,
            cell(&g.reason)
        );
    }
    let _ = writeln!(
        md,
        "\n### Spread over the fleet\n\n{} of {} scheduled scenarios ({:.1} %) got their key on \
         every one of the {} gateways. Over those, per scenario:\n",
        f.usable_everywhere,
        s.scenarios.scheduled,
        f.share_usable_everywhere * 100.0,
        f.gateways
    );
    md.push_str("| Gateway | p50 | p90 | p99 | Max |\n|:---|---:|---:|---:|---:|\n");
    for (name, l) in [
        ("first", &f.first_ms),
        ("median", &f.median_ms),
        ("last", &f.last_ms),
        ("last − first", &f.spread_ms),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        );
    }
    md.push_str("\nPolicy fetches per gateway node (`x-tyk-nodeid`):");
    for n in &f.fetches_by_node {
        let _ = write!(
            md,
            " `{}` {} ({:.1} MB);",
            cell(&n.node_id),
            n.fetches,
            n.bytes as f64 / 1e6
        );
    }
    md.push_str("\n\n");
}

/// Time to usable over all scheduled scenarios (the censored statistics), when recorded.
fn push_time_to_usable(md: &mut String, s: &Summary) {
    let Some(t) = &s.time_to_usable else {
        return;
    };
    md.push_str("### Time to usable, all scheduled scenarios\n\n");
    let mut head = String::from("| Scenarios | Never usable | p50 | p90 |");
    let mut rule = String::from("|---:|---:|---:|---:|");
    let mut row = format!(
        "| {} | {} | {} | {} |",
        t.scenarios,
        t.censored,
        format_quantile(&t.p50),
        format_quantile(&t.p90)
    );
    for b in &t.share_usable_by {
        let _ = write!(head, " Usable by {} s |", b.within_s);
        rule.push_str("---:|");
        let bound = if b.censored_earlier > 0 { " (≥)" } else { "" };
        let _ = write!(row, " {:.1} %{bound} |", b.share * 100.0);
    }
    let _ = writeln!(md, "{head}\n{rule}\n{row}\n");
    let _ = writeln!(
        md,
        "Scenarios that never got their key count as not usable, censored at their wait (scheduled \
         start to the end of the run); \"> X\" means fewer scenarios got their key than the \
         percentile needs: it is larger than X. (≥): some waited less than that time, so the \
         share is a lower bound.\n"
    );
}

/// Attempt outcomes by class, when recorded.
fn push_attempts(md: &mut String, s: &Summary) {
    let Some(a) = &s.attempts else {
        return;
    };
    md.push_str("### Attempts by outcome\n\n");
    md.push_str(
        "| Calls | OK | Not yet | Timed out | Connect timed out (retried at once) | Refused or \
         reset | Other |\n|:---|---:|---:|---:|---:|---:|---:|\n",
    );
    let row = |md: &mut String, name: &str, c: &AttemptCounts| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            c.ok, c.not_yet, c.timed_out, c.connect_timed_out, c.refused_or_reset, c.other
        );
    };
    row(md, "Key creations", &a.key_creations);
    let triggers = match a.triggers_counted_by.as_str() {
        "mock" => "Notifications (mock)",
        _ => "Trigger calls",
    };
    if a.triggers_counted_by != "none" {
        row(md, triggers, &a.triggers);
    }
    let n = &a.near_reload;
    if n.failed_attempts == 0 {
        md.push('\n');
        return;
    }
    let _ = writeln!(
        md,
        "\n{} of {} unanswered attempts started within {} ms of a policy fetch (those windows \
         cover {:.0} % of the run){}.\n",
        n.near_fetch,
        n.failed_attempts,
        n.window_ms,
        n.window_share * 100.0,
        if n.finding {
            ": a gateway finding, requests failing while it reloads (Tyk #1402)"
        } else {
            ""
        }
    );
}

/// The seed's "10 highest indexes", with what the seed could not show.
fn push_top_rows(md: &mut String, rows: &[TopRow]) {
    if rows.is_empty() {
        return;
    }
    md.push_str("## Highest policy indexes\n\n");
    md.push_str("| Index | Outcome | Latency | Last failed attempt | Attempts | Last error |\n");
    md.push_str("|---:|:---|---:|---:|---:|:---|\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.index,
            r.outcome,
            ms(r.latency_ms),
            ms(r.last_failure_ms),
            r.attempts,
            r.last_error.as_deref().map(cell).unwrap_or_default()
        );
    }
    md.push('\n');
}

/// The scenario configuration: what makes two runs comparable.
fn push_config(md: &mut String, s: &Summary) {
    let c = &s.config;
    let b = &c.backoff;
    md.push_str("## Configuration\n\n| Setting | Value |\n|:---|:---|\n");
    let rows = [
        ("Rate", format!("{} starts/s", c.rate_per_s)),
        ("Load duration", format!("{} s", c.duration_s)),
        ("Trigger", format!("`{}`", c.trigger)),
        (
            "Deadline after the last start",
            format!("{} s", c.deadline_s),
        ),
        ("Stall timeout", format!("{} s", c.stall_timeout_s)),
        ("Request timeout", format!("{} s", c.request_timeout_s)),
        (
            "Backoff",
            format!(
                "`{}`: {} initial, ×{}, ±{} % jitter, {} max interval",
                b.name,
                ms(Some(b.initial_ms)),
                b.multiplier,
                b.jitter * 100.0,
                ms(Some(b.max_interval_ms))
            ),
        ),
        ("Initial policies", c.initial_policies.to_string()),
    ];
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {value} |");
    }
    md.push('\n');
}

/// `report.txt` in the seed's format: `SUCCESS <index> ==><duration>` for the highest indexes
/// among the successes (highest first, as the seed printed them), then one
/// `FAIL`/`OUTSTANDING` line per unfinished scenario (highest index first, at most
/// [`REPORT_MAX_UNFINISHED_LINES`]) and `… N more` for the `more` left out.
///
/// An outstanding scenario's wait is its last failed attempt after its scheduled start (the
/// record holds no later instant for it); `?` when it never attempted.
pub fn render_report_txt(successes: &[TopRow], unfinished: &[TopRow], more: u64) -> String {
    let mut out = String::new();
    let mut succeeded: Vec<&TopRow> = successes
        .iter()
        .filter(|r| r.outcome == "success")
        .collect();
    succeeded.sort_by_key(|r| std::cmp::Reverse(r.index));
    for r in succeeded {
        let latency = r.latency_ms.map(go_duration).unwrap_or_else(|| "?".into());
        let _ = writeln!(out, "SUCCESS {} ==>{latency}", r.index);
    }
    let mut rest: Vec<&TopRow> = unfinished.iter().collect();
    rest.sort_by_key(|r| std::cmp::Reverse(r.index));
    for r in rest.iter().take(REPORT_MAX_UNFINISHED_LINES) {
        if r.outcome == "outstanding" {
            let waited = r
                .last_failure_ms
                .map(go_duration)
                .unwrap_or_else(|| "?".into());
            let _ = writeln!(out, "OUTSTANDING {} ==>waited {waited}", r.index);
        } else {
            let error = r.last_error.as_deref().unwrap_or("unknown error");
            let _ = writeln!(out, "FAIL {} ==>{}", r.index, one_line(error));
        }
    }
    let more = more + rest.len().saturating_sub(REPORT_MAX_UNFINISHED_LINES) as u64;
    if more > 0 {
        let _ = writeln!(out, "… {more} more");
    }
    out
}

/// A compact plain-text table for the terminal (what `make repro` prints at the end).
pub fn render_table(s: &Summary) -> String {
    let mut t = String::new();
    let g = &s.gateway;
    let stub = if g.is_stub {
        "  [STUB: not a Tyk result]"
    } else {
        ""
    };
    let _ = writeln!(
        t,
        "run        {}  verdict {}{stub}",
        s.label,
        s.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(t, "reason     {}", one_line(&s.reason));
    let version = g.version.as_deref().unwrap_or("unknown");
    let _ = writeln!(t, "gateway    {version} ({})  {}", g.version_source, g.url);
    let c = &s.scenarios;
    let _ = writeln!(
        t,
        "scenarios  scheduled {}  started {}  succeeded {}  failed {}  outstanding {}",
        c.scheduled, c.started, c.succeeded, c.failed, c.outstanding
    );
    let l = &s.latency_ms;
    let _ = writeln!(
        t,
        "latency    p50 {}  p90 {}  p99 {}  max {}  (n={})",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.max),
        l.count
    );
    if let Some(u) = &s.time_to_usable {
        let by = |secs: f64| {
            u.share_usable_by
                .iter()
                .find(|b| b.within_s == secs)
                .map_or("—".to_owned(), |b| format!("{:.1} %", b.share * 100.0))
        };
        let _ = writeln!(
            t,
            "usable     p50 {}  p90 {}  by 5 s {}  by 30 s {}  never {} of {}",
            format_quantile(&u.p50),
            format_quantile(&u.p90),
            by(5.0),
            by(30.0),
            u.censored,
            u.scenarios
        );
    }
    let r = &s.reloads;
    let _ = writeln!(
        t,
        "reloads    fetches {}  triggers {}  per fetch {}  longest gap {}  last fetch after last \
         add {}",
        r.policy_fetches,
        r.triggers_sent,
        ratio(r.coalescing_ratio),
        seconds(r.longest_gap_without_fetch_s),
        last_fetch_after_add(r.last_fetch_after_last_add_s)
    );
    let k = &s.scheduler;
    let bottleneck = if k.runner_was_bottleneck {
        "  [runner was the bottleneck]"
    } else {
        ""
    };
    let _ = writeln!(
        t,
        "scheduler  lag p50 {}  p99 {}  max {}  late {}{bottleneck}",
        ms(Some(k.lag_p50_ms)),
        ms(Some(k.lag_p99_ms)),
        ms(Some(k.lag_max_ms)),
        k.late_starts
    );
    for note in attempt_notes(s) {
        let _ = writeln!(t, "note       {}", one_line(&note));
    }
    t
}

/// Milliseconds for people: `68.0 ms`, `1.20 s`; `—` when absent.
fn ms(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 1_000.0 => format!("{:.2} s", v / 1_000.0),
        Some(v) => format!("{v:.1} ms"),
        None => "—".into(),
    }
}

/// Seconds with two decimals; `—` when absent.
fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.2} s"))
}

/// A ratio with one decimal; `—` when absent.
fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.1}"))
}

/// Seconds, spelling out what a negative value means.
fn last_fetch_after_add(value: Option<f64>) -> String {
    match value {
        Some(v) if v < 0.0 => format!("{} (newest policies never fetched)", seconds(value)),
        _ => seconds(value),
    }
}

/// Text made safe for one Markdown table cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Text folded onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
