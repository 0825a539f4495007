//! `report.html`: one self-contained page per run (and, through [`page`], per diff) for CI
//! artifacts. Inline SVG and inline CSS only; a Content-Security-Policy forbids every fetch, so
//! the page renders the same offline and can never reach the network.

use std::fmt::Write as _;

use crate::summary::Summary;

/// Blocks every network fetch; inline styles only (no scripts at all).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;\
max-width:1040px;padding:0 16px;color:#222;line-height:1.4}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}\
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:600}\
.pass,.improved,.no_change{background:#2c7a2c}.hang,.regressed{background:#d62728}\
.infra_error,.interrupted,.inconclusive{background:#8a6d00}\
.stub{background:#fff3cd;border:1px solid #e0c060;padding:.5em .8em;border-radius:4px}\
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;\
text-align:left;vertical-align:top}th{font-weight:600;white-space:nowrap}\
figure{margin:1em 0}svg{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.8em;\
overflow-x:auto}.error{color:#b00}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// A figure holding an inline SVG, or the reason it is missing.
pub fn figure(name: &str, svg: Result<&str, &str>) -> String {
    match svg {
        // The SVG comes from plotters, which escapes its text.
        Ok(svg) => format!("<figure id=\"{}\">{svg}</figure>\n", escape(name)),
        Err(e) => format!(
            "<p class=\"error\">{} could not be drawn: {}</p>\n",
            escape(name),
            escape(e)
        ),
    }
}

/// A two-column table of `(heading, value text)` rows.
pub fn table(rows: &[(&str, String)]) -> String {
    let mut out = String::from("<table>\n");
    for (head, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(head),
            escape(value)
        );
    }
    out.push_str("</table>\n");
    out
}

/// A verdict badge; `class` is the snake_case verdict name.
pub fn badge(class: &str) -> String {
    format!("<span class=\"verdict {0}\">{0}</span>", escape(class))
}

/// The run's page: verdict and reason, the figures that matter, the plots, the files.
pub(crate) fn run_report_html(
    s: &Summary,
    plots: &[(&str, Result<&str, &anyhow::Error>)],
) -> String {
    let title = super::run_title(s);
    let mut body = format!(
        "<h1>reload-repro: {}</h1>\n<p>{} {}</p>\n",
        escape(&title),
        badge(s.verdict.as_str()),
        escape(&s.reason)
    );
    if s.gateway.is_stub {
        body.push_str(
            "<p class=\"stub\">This run used the kit's <b>stub gateway</b>: it tests the kit, it \
             is not a Tyk result.</p>\n",
        );
    }
    body.push_str("<h2>Figures</h2>\n");
    body.push_str(&table(&figures(s)));
    body.push_str("<h2>Plots</h2>\n");
    for (name, svg) in plots {
        let drawn = match svg {
            Ok(svg) => figure(name, Ok(svg)),
            Err(e) => figure(name, Err(&format!("{e:#}"))),
        };
        body.push_str(&drawn);
    }
    body.push_str("<h2>Files</h2>\n<ul>\n");
    for file in run_files(s) {
        let _ = writeln!(body, "<li><a href=\"{0}\">{0}</a></li>", escape(&file));
    }
    body.push_str("</ul>\n");
    page(&format!("reload-repro {title}"), &body)
}

fn figures(s: &Summary) -> Vec<(&'static str, String)> {
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0} ms"));
    let secs = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:+.2} s"));
    let n = &s.scenarios;
    let l = &s.latency_ms;
    let r = &s.reloads;
    let c = &s.config;
    let gateway = format!(
        "{} (version from {}){}, {}",
        s.gateway.version.as_deref().unwrap_or("unknown"),
        s.gateway.version_source,
        if s.gateway.is_stub { ", stub" } else { "" },
        s.gateway.url
    );
    vec![
        ("verdict", s.verdict.as_str().to_owned()),
        ("gateway", gateway),
        (
            "scenarios",
            format!(
                "{} scheduled, {} started, {} got a key, {} failed, {} still waiting",
                n.scheduled, n.started, n.succeeded, n.failed, n.outstanding
            ),
        ),
        (
            "latency of those that got a key",
            format!(
                "p50 {}, p90 {}, p99 {}, max {} ({} scenarios)",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                l.count
            ),
        ),
        (
            "reloads (dashboard's view)",
            format!(
                "{} triggers sent, {} policy fetches, longest gap without a fetch {}, last fetch − last add {}",
                r.triggers_sent,
                r.policy_fetches,
                r.longest_gap_without_fetch_s
                    .map_or("—".to_owned(), |g| format!("{g:.2} s")),
                secs(r.last_fetch_after_last_add_s)
            ),
        ),
        (
            "runner",
            format!(
                "start lag p99 {:.1} ms, {} late starts{}",
                s.scheduler.lag_p99_ms,
                s.scheduler.late_starts,
                if s.scheduler.runner_was_bottleneck {
                    " (the runner limited the run)"
                } else {
                    ""
                }
            ),
        ),
        (
            "load",
            format!(
                "{} scenarios/s for {} s, trigger {}, deadline {} s, from {} policies",
                c.rate_per_s, c.duration_s, c.trigger, c.deadline_s, c.initial_policies
            ),
        ),
        ("started", s.started_at.clone()),
        ("kit", s.kit_version.clone()),
    ]
}

/// The run directory's files worth opening, relative links.
fn run_files(s: &Summary) -> Vec<String> {
    let f = &s.files;
    let mut files = vec![
        "summary.json".to_owned(),
        f.markdown.clone(),
        f.report.clone(),
        f.scenarios.clone(),
        f.fetches.clone(),
    ];
    if s.gateways.len() > 1 {
        files.push(super::PER_GATEWAY_PLOT.to_owned());
    }
    if let Some(env) = &s.environment {
        files.extend(env.logs.values().cloned());
    }
    files
}
