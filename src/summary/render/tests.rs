//! Snapshots of the run renderers, and the schema file checked against the model.

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
        time_to_usable: None,
        attempts: None,
        gateways: Vec::new(),
        fleet: None,
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
    insta::assert_snapshot!(render_report_txt(&s.top, &unfinished, 0), @r#"
    SUCCESS 82904 ==>21.805158857s
    SUCCESS 82903 ==>21.150249165s
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
    let report = render_report_txt(&sample_summary().top, &unfinished, 0);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 2 + 1_000 + 1);
    assert_eq!(lines[2], "OUTSTANDING 1005 ==>waited 20.3105s");
    assert_eq!(lines.last(), Some(&"… 5 more"));
    // Rows the collector already left out are counted in the same line.
    let report = render_report_txt(&[], &unfinished[..3], 7);
    assert_eq!(report.lines().last(), Some("… 7 more"));
    assert!(
        render_report_txt(&[], &unfinished[..3], 0)
            .lines()
            .all(|l| !l.contains("more"))
    );
}

#[test]
fn markdown_and_table_show_time_to_usable_and_attempt_classes_with_their_notes() {
    let mut s = sample_summary();
    s.time_to_usable = Some(crate::summary::censored::time_to_usable(
        &[(1_200.0, 2_400)],
        &[(61_000.0, 105)],
        2_505,
    ));
    s.attempts = Some(AttemptStats {
        key_creations: AttemptCounts {
            ok: 2_400,
            not_yet: 9_000,
            timed_out: 312,
            ..Default::default()
        },
        triggers: AttemptCounts {
            ok: 2_505,
            ..Default::default()
        },
        triggers_counted_by: "mock".into(),
        connect_timeout_ms: 1_000.0,
        scenarios_with_timeout: 300,
        ..Default::default()
    });
    let md = render_markdown(&s);
    assert!(
        md.contains("### Time to usable, all scheduled scenarios"),
        "{md}"
    );
    assert!(
        md.contains("| 2505 | 105 | 1.20 s | 1.20 s | 0.0 % | 95.8 % | 95.8 % |"),
        "{md}"
    );
    assert!(
        md.contains("| Key creations | 2400 | 9000 | 312 | 0 | 0 | 0 |"),
        "{md}"
    );
    assert!(md.contains("| Notifications (mock) | 2505 |"), "{md}");
    assert!(
        md.contains("- 312 key-creation attempts timed out (in 300 scenarios): the latency tail includes the kit's 10 s request timeout"),
        "{md}"
    );
    let table = render_table(&s);
    assert!(
        table.contains("usable     p50 1.20 s  p90 1.20 s  by 5 s 95.8 %"),
        "{table}"
    );
    assert!(
        table.contains("note       312 key-creation attempts timed out"),
        "{table}"
    );
    // p99 over all 2505 is not reached: more than 1 % never got a key.
    s.time_to_usable = Some(crate::summary::censored::time_to_usable(
        &[(1_200.0, 1_000)],
        &[(61_000.0, 1_505)],
        2_505,
    ));
    assert!(
        render_table(&s).contains("p50 > 61.00 s"),
        "{}",
        render_table(&s)
    );
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

/// `schema/summary.schema.json` is generated from the model; these keep the file honest.
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
        let mut summary = super::sample_summary();
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
