//! The fleet part of the renderers (both sides ran against several gateways): the fleet-level
//! rows (the last gateway's time to usable, usable everywhere, spread) and one block per
//! gateway, in the same columns as the run-level rows. Nothing here runs for one gateway.

use std::fmt::Write as _;

use super::{
    a_text, b_text, cell, delta_text, fmt_p, terminal_counts_rows, terminal_metric_row,
    titled_metric_row,
};
use crate::diff::compare::{
    Comparison, FleetComparison, GatewayComparison, Metric, MetricComparison, VerdictCounts,
};

/// Gateways listed in the Markdown head; the rest are in the details and `diff.json`.
const MAX_HEAD_GATEWAYS: usize = 50;

/// The last gateway's time to usable: the run-level p50/p90 rows of a fleet comparison.
fn last_gateway_rows(c: &Comparison) -> impl Iterator<Item = (&'static str, &MetricComparison)> {
    c.metrics.iter().filter_map(|m| match m.metric {
        Metric::UsableP50 => Some(("last gw usable p50", m)),
        Metric::UsableP90 => Some(("last gw usable p90", m)),
        _ => None,
    })
}

/// `5 pass, 1 hang`; `no runs` when empty.
fn verdicts_text(v: &VerdictCounts) -> String {
    let parts: Vec<String> = [
        (v.pass, "pass"),
        (v.hang, "hang"),
        (v.unresponsive, "unresponsive"),
        (v.infra_error, "infra_error"),
        (v.interrupted, "interrupted"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, name)| format!("{n} {name}"))
    .collect();
    if parts.is_empty() {
        "no runs".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The gateway's name, once when both sides call it the same.
fn gateway_name(g: &GatewayComparison) -> String {
    if g.a_gateway == g.b_gateway {
        g.a_gateway.clone()
    } else {
        format!("A {} / B {}", g.a_gateway, g.b_gateway)
    }
}

fn sizes(f: &FleetComparison) -> String {
    let [a, b] = f.gateways;
    if a == b {
        format!("{a} gateways")
    } else {
        format!("{a} gateways in A, {b} in B")
    }
}

/// The terminal's fleet section, after the run-level rows.
pub(super) fn terminal_fleet(out: &mut String, c: &Comparison, f: &FleetComparison) {
    let _ = writeln!(
        out,
        "\nfleet of {} (the rows above describe the fleet: a scenario counts once its key \
         works on every gateway, at the last gateway's time):",
        sizes(f)
    );
    for (title, m) in last_gateway_rows(c) {
        terminal_metric_row(out, title, m);
    }
    for m in &f.metrics {
        terminal_metric_row(out, m.metric.title(), m);
    }
    for g in &f.per_gateway {
        let _ = writeln!(
            out,
            "\ngateway {}: {} — A {}; B {} → {}",
            g.gateway,
            gateway_name(g),
            verdicts_text(&g.a_verdicts),
            verdicts_text(&g.b_verdicts),
            g.verdict.as_str()
        );
        for m in &g.metrics {
            terminal_metric_row(out, m.metric.title(), m);
        }
        terminal_counts_rows(out, &g.hangs, &g.unresponsive, g.a_verdicts.pass);
    }
}

/// The Markdown head's fleet tables: fleet rows, then one line per gateway.
pub(super) fn markdown_fleet_head(head: &mut String, c: &Comparison, f: &FleetComparison) {
    let _ = writeln!(
        head,
        "\n**Fleet of {}** (the rows above describe the fleet: a scenario counts once its key \
         works on every gateway, at the last gateway's time)\n",
        sizes(f)
    );
    let _ = writeln!(head, "| fleet | A | B | delta | p |\n|---|--:|--:|--:|--:|");
    for (title, m) in last_gateway_rows(c) {
        let _ = writeln!(head, "{}", titled_metric_row(title, m, false));
    }
    for m in &f.metrics {
        let _ = writeln!(head, "{}", titled_metric_row(m.metric.title(), m, false));
    }
    let _ = writeln!(
        head,
        "\n| gateway | A runs | B runs | time to usable p90 | verdict |\n|---|---|---|--:|---|"
    );
    for g in f.per_gateway.iter().take(MAX_HEAD_GATEWAYS) {
        let p90 = g
            .metrics
            .iter()
            .find(|m| m.metric == Metric::UsableP90)
            .map_or("–".to_owned(), |m| {
                format!("{} → {} {}", a_text(m), b_text(m), delta_text(m))
            });
        let verdict = match g.verdict.as_str() {
            v @ ("regressed" | "improved") => format!("**{v}**: {}", cell(&g.reason)),
            v => v.to_owned(),
        };
        let _ = writeln!(
            head,
            "| {} `{}` | {} | {} | {p90} | {verdict} |",
            g.gateway,
            cell(&gateway_name(g)),
            verdicts_text(&g.a_verdicts),
            verdicts_text(&g.b_verdicts),
        );
    }
    if f.per_gateway.len() > MAX_HEAD_GATEWAYS {
        let more = f.per_gateway.len() - MAX_HEAD_GATEWAYS;
        let _ = writeln!(head, "\n_{more} more gateways below and in `diff.json`._");
    }
}

/// The folded part's per-gateway rows, with n, test and CI.
pub(super) fn markdown_fleet_details(out: &mut String, f: &FleetComparison) {
    for m in &f.metrics {
        let _ = writeln!(out, "{}", titled_metric_row(m.metric.title(), m, true));
    }
    for g in &f.per_gateway {
        for m in &g.metrics {
            let title = format!("gateway {}: {}", g.gateway, m.metric.title());
            let _ = writeln!(out, "{}", titled_metric_row(&title, m, true));
        }
        let _ = writeln!(
            out,
            "| gateway {}: hangs (runs) | {}/{} | {}/{} | | {} | fisher | |",
            g.gateway,
            g.hangs.a_hangs[0],
            g.hangs.a_hangs[1],
            g.hangs.b_hangs[0],
            g.hangs.b_hangs[1],
            fmt_p(Some(g.hangs.p_value))
        );
    }
}
