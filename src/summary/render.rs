//! Human renderings of a [`Summary`]: `summary.md` (GitHub-flavoured Markdown), `report.txt`
//! (the seed tool's format, so old and new results read alike) and a compact terminal table.
//!
//! Each renderer is a pure function of the summary; nothing here measures or decides.

use std::fmt::Write as _;

use crate::summary::stats::go_duration;
use crate::summary::{Summary, TopRow};

/// Lines of `FAIL`/`OUTSTANDING` rows `report.txt` prints before summing up the rest.
const REPORT_MAX_UNFINISHED_LINES: usize = 1_000;

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
    let g = &s.gateway;
    let version = g.version.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        md,
        "Gateway `{version}` (version from {}) at `{}`; load started {}, summary written {}, \
         reload-repro {}.\n",
        g.version_source, g.url, s.started_at, s.finished_at, s.kit_version
    );
    push_results(&mut md, s);
    push_top_rows(&mut md, &s.top);
    push_config(&mut md, s);
    let f = &s.files;
    let _ = writeln!(
        md,
        "Files: [{}]({}), [{}]({}), [{}]({}).",
        f.report, f.report, f.scenarios, f.scenarios, f.fetches, f.fetches
    );
    // The run's plots and report.html (file names owned by the plot module).
    let _ = write!(md, "\n{}", crate::plot::markdown_plot_links());
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

/// `report.txt` in the seed's format: `SUCCESS <index> ==><duration>` for the succeeded top
/// rows (highest index first), `----------`, then one `FAIL`/`OUTSTANDING` line per unfinished
/// scenario (highest index first, at most 1000 lines, then `… N more`).
///
/// An outstanding scenario's wait is its last failed attempt after its scheduled start (the
/// model records no later instant for it); `?` when it never attempted.
pub fn render_report_txt(s: &Summary, unfinished: &[TopRow]) -> String {
    let mut out = String::new();
    let mut succeeded: Vec<&TopRow> = s.top.iter().filter(|r| r.outcome == "success").collect();
    succeeded.sort_by_key(|r| std::cmp::Reverse(r.index));
    for r in succeeded {
        let latency = r.latency_ms.map(go_duration).unwrap_or_else(|| "?".into());
        let _ = writeln!(out, "SUCCESS {} ==>{latency}", r.index);
    }
    out.push_str("----------\n");
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
    if rest.len() > REPORT_MAX_UNFINISHED_LINES {
        let _ = writeln!(out, "… {} more", rest.len() - REPORT_MAX_UNFINISHED_LINES);
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
mod tests {
    use super::*;
    use crate::summary::*;

    fn row(index: u64, outcome: &str, latency_ms: Option<f64>, error: Option<&str>) -> TopRow {
        TopRow {
            index,
            policy_id: format!("pol-{index}"),
            outcome: outcome.into(),
            latency_ms,
            last_failure_ms: Some(20_310.5),
            attempts: 9,
            last_error: error.map(str::to_owned),
        }
    }

    /// A v2.9.4-looking hang: fetches stopped 0.6 s before the last add.
    pub(crate) fn sample_summary() -> Summary {
        Summary {
            schema_version: SCHEMA_VERSION,
            label: "2.9.4".into(),
            started_at: "2024-05-01T10:00:00Z".into(),
            finished_at: "2024-05-01T10:01:10Z".into(),
            kit_version: "0.1.0".into(),
            config: ScenarioConfig {
                rate_per_s: 501.0,
                duration_s: 5.0,
                trigger: "notify".into(),
                deadline_s: 60.0,
                stall_timeout_s: 30.0,
                request_timeout_s: 10.0,
                backoff: BackoffConfig {
                    name: "seed".into(),
                    initial_ms: 500.0,
                    multiplier: 1.5,
                    jitter: 0.5,
                    max_interval_ms: 60_000.0,
                },
                initial_policies: 80_400,
            },
            gateway: GatewayInfo {
                url: "http://gateway:8080".into(),
                version: Some("v2.9.4".into()),
                version_source: "log".into(),
                is_stub: false,
            },
            verdict: Verdict::Hang,
            reason: "105 scenarios never got their key; the last fetch came 0.6 s before the \
                     last add | lost triggers"
                .into(),
            scenarios: ScenarioCounts {
                scheduled: 2_505,
                started: 2_505,
                succeeded: 2_400,
                failed: 0,
                outstanding: 105,
            },
            latency_ms: LatencyStats {
                count: 2_400,
                p50: Some(1_203.7),
                p90: Some(4_100.0),
                p99: Some(21_805.158857),
                max: Some(24_977.9),
                mean: Some(2_010.25),
                histogram_b64: String::new(),
            },
            top: vec![
                row(82_905, "outstanding", None, Some("policy not found")),
                row(
                    82_904,
                    "success",
                    Some(21_805.158857),
                    Some("policy not found"),
                ),
                row(82_903, "success", Some(21_150.249165), None),
                row(
                    82_902,
                    "failed",
                    None,
                    Some("400 keys must have\nan access right"),
                ),
            ],
            reloads: ReloadStats {
                triggers_sent: 2_505,
                policy_fetches: 6,
                rejected_fetches: 0,
                publish_errors: 0,
                fetch_p50_ms: Some(68.4),
                longest_gap_without_fetch_s: Some(60.7),
                last_fetch_after_last_add_s: Some(-0.6),
                coalescing_ratio: Some(417.5),
            },
            scheduler: SchedulerStats {
                lag_p50_ms: 0.12,
                lag_p99_ms: 2.5,
                lag_max_ms: 7.25,
                late_starts: 0,
                late_threshold_ms: 50.0,
                runner_was_bottleneck: false,
            },
            timeline: vec![SecondSample {
                second: 0,
                started: 501,
                succeeded: 0,
                in_flight: 501,
                attempts: 501,
                fetches: 1,
            }],
            files: RunFiles::default(),
            environment: None,
        }
    }

    #[test]
    fn markdown_shows_verdict_results_top_rows_and_config() {
        insta::assert_snapshot!(render_markdown(&sample_summary()), @r#"
        # reload-repro `2.9.4`: HANG

        **Verdict: hang.** 105 scenarios never got their key; the last fetch came 0.6 s before the last add \| lost triggers

        Gateway `v2.9.4` (version from log) at `http://gateway:8080`; load started 2024-05-01T10:00:00Z, summary written 2024-05-01T10:01:10Z, reload-repro 0.1.0.

        ## Results

        ### Scenarios

        | Scheduled | Started | Succeeded | Failed | Outstanding |
        |---:|---:|---:|---:|---:|
        | 2505 | 2505 | 2400 | 0 | 105 |

        ### Latency of successful scenarios

        | Count | p50 | p90 | p99 | Max | Mean |
        |---:|---:|---:|---:|---:|---:|
        | 2400 | 1.20 s | 4.10 s | 21.81 s | 24.98 s | 2.01 s |

        ### Reloads seen by the dashboard mock

        | Triggers sent | Policy fetches | Triggers per fetch | Fetch p50 | Longest gap without fetch | Last fetch after last add | Rejected fetches | Publish errors |
        |---:|---:|---:|---:|---:|---:|---:|---:|
        | 2505 | 6 | 417.5 | 68.4 ms | 60.70 s | -0.60 s (newest policies never fetched) | 0 | 0 |

        ### Runner schedule

        | Lag p50 | Lag p99 | Lag max | Late starts | Runner was the bottleneck |
        |---:|---:|---:|---:|:---|
        | 0.1 ms | 2.5 ms | 7.2 ms | 0 (> 50.0 ms) | no |

        ## Highest policy indexes

        | Index | Outcome | Latency | Last failed attempt | Attempts | Last error |
        |---:|:---|---:|---:|---:|:---|
        | 82905 | outstanding | — | 20.31 s | 9 | policy not found |
        | 82904 | success | 21.81 s | 20.31 s | 9 | policy not found |
        | 82903 | success | 21.15 s | 20.31 s | 9 |  |
        | 82902 | failed | — | 20.31 s | 9 | 400 keys must have an access right |

        ## Configuration

        | Setting | Value |
        |:---|:---|
        | Rate | 501 starts/s |
        | Load duration | 5 s |
        | Trigger | `notify` |
        | Deadline after the last start | 60 s |
        | Stall timeout | 30 s |
        | Request timeout | 10 s |
        | Backoff | `seed`: 500.0 ms initial, ×1.5, ±50 % jitter, 60.00 s max interval |
        | Initial policies | 80400 |

        Files: [report.txt](report.txt), [scenarios.jsonl](scenarios.jsonl), [fetches.json](fetches.json).

        ## Plots

        ![time to a usable key, all scenarios](time-to-usable.svg)

        ![latency by policy index](latency-by-index.svg)

        ![per-second timeline with reloads](timeline.svg)

        All of it on one page: [report.html](report.html).
        "#);
    }

    #[test]
    fn markdown_warns_when_the_gateway_is_the_stub_or_the_runner_lagged() {
        let mut s = sample_summary();
        s.gateway.is_stub = true;
        s.scheduler.runner_was_bottleneck = true;
        s.scheduler.late_starts = 40;
        let md = render_markdown(&s);
        assert!(md.contains("> [!WARNING]\n> This run used the kit's stub gateway, not Tyk"));
        assert!(md.contains("> [!CAUTION]\n> The runner fell behind its own schedule (40 late"));
        assert!(!render_markdown(&sample_summary()).contains("[!WARNING]"));
    }

    #[test]
    fn report_txt_reads_like_the_seed_then_lists_unfinished_scenarios() {
        let s = sample_summary();
        let unfinished = [
            row(
                82_902,
                "failed",
                None,
                Some("400 keys must have\nan access right"),
            ),
            row(82_905, "outstanding", None, Some("policy not found")),
            row(82_901, "failed", None, None),
        ];
        insta::assert_snapshot!(render_report_txt(&s, &unfinished), @r#"
        SUCCESS 82904 ==>21.805158857s
        SUCCESS 82903 ==>21.150249165s
        ----------
        OUTSTANDING 82905 ==>waited 20.3105s
        FAIL 82902 ==>400 keys must have an access right
        FAIL 82901 ==>unknown error
        "#);
    }

    #[test]
    fn report_txt_caps_unfinished_lines_at_one_thousand() {
        let unfinished: Vec<TopRow> = (1..=1_005)
            .map(|i| row(i, "outstanding", None, None))
            .collect();
        let report = render_report_txt(&sample_summary(), &unfinished);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2 + 1 + 1_000 + 1);
        assert_eq!(lines[3], "OUTSTANDING 1005 ==>waited 20.3105s");
        assert_eq!(lines.last(), Some(&"… 5 more"));
    }

    #[test]
    fn terminal_table_fits_the_key_numbers_on_a_few_lines() {
        let mut s = sample_summary();
        s.gateway.is_stub = true;
        insta::assert_snapshot!(render_table(&s), @r#"
        run        2.9.4  verdict HANG  [STUB: not a Tyk result]
        reason     105 scenarios never got their key; the last fetch came 0.6 s before the last add | lost triggers
        gateway    v2.9.4 (log)  http://gateway:8080
        scenarios  scheduled 2505  started 2505  succeeded 2400  failed 0  outstanding 105
        latency    p50 1.20 s  p90 4.10 s  p99 21.81 s  max 24.98 s  (n=2400)
        reloads    fetches 6  triggers 2505  per fetch 417.5  longest gap 60.70 s  last fetch after last add -0.60 s (newest policies never fetched)
        scheduler  lag p50 0.1 ms  p99 2.5 ms  max 7.2 ms  late 0
        "#);
    }
}

/// `schema/summary.schema.json` is generated from the model; these keep the file honest.
#[cfg(test)]
mod schema_tests {
    use std::path::PathBuf;

    use crate::summary::Summary;

    fn schema_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json")
    }

    fn generated_schema() -> String {
        let schema = schemars::schema_for!(Summary);
        serde_json::to_string_pretty(&schema).unwrap() + "\n"
    }

    #[test]
    fn schema_file_matches_model() {
        let generated = generated_schema();
        let path = schema_path();
        if std::env::var_os("REPRO_BLESS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date with src/summary/model.rs; regenerate it with \
             `REPRO_BLESS=1 cargo test --lib schema_file_matches_model` and commit it",
            path.display()
        );
    }

    #[test]
    fn a_full_summary_validates_against_the_committed_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut summary = super::tests::sample_summary();
        summary.environment =
            Some(serde_json::json!({"gateway_image": "tykio/tyk-gateway:v2.9.4"}));
        let instance = serde_json::to_value(&summary).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "summary does not match the schema: {errors:#?}"
        );

        let mut broken = instance.clone();
        broken["verdict"] = "maybe".into();
        broken["surprise"] = 1.into();
        assert!(
            !validator.is_valid(&broken),
            "the schema must reject unknown verdicts and fields"
        );
    }
}
