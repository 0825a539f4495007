//! Unit tests of the reload timeline parser, one hand-made snippet per log format.

use super::*;

const LOGRUS_V294: &str = r#"time="Nov 27 10:15:00" level=info msg="Tyk Gateway started (v2.9.4)" prefix=main
time="Nov 27 10:15:00" level=info msg="Policies found (80400 total)" prefix=main
time="Nov 27 10:15:01" level=info msg="API reload complete" prefix=main
time="Nov 27 10:15:02" level=info msg="Reloading endpoints" prefix=pub-sub
time="Nov 27 10:15:02" level=info msg="Reload queued" prefix=main
time="Nov 27 10:15:03" level=info msg="Reloading endpoints" prefix=pub-sub
time="Nov 27 10:15:03" level=info msg="Reload already queued" prefix=main
time="Nov 27 10:15:03" level=info msg="Policies found (80401 total)" prefix=main
time="Nov 27 10:15:04" level=info msg="API reload complete" prefix=main
"#;

#[test]
fn logrus_v2_9_4_log_gives_counts_durations_and_version() {
    let tl = parse_reload_timeline(LOGRUS_V294);
    assert_eq!(tl.version.as_deref(), Some("v2.9.4"));
    assert_eq!(tl.triggers_seen, 2);
    assert_eq!(tl.reloads_queued, 1);
    assert_eq!(tl.already_queued, 1);
    assert_eq!(tl.reloads_completed, 2);
    assert_eq!(tl.policies_found_last, Some(80401));
    // The startup completion has no open window; the second pairs 10:15:02 → 10:15:04.
    assert_eq!(tl.reload_durations_s, vec![2.0]);
    assert_eq!(tl.events_total, 9);
    assert_eq!(tl.lines_read, 9);
    assert_eq!(tl.origin_time.as_deref(), Some("Nov 27 10:15:00"));
    let last = tl.events.last().expect("events");
    assert_eq!(last.kind, ReloadEventKind::ApiReloadComplete);
    assert_eq!(last.line, 9);
    assert_eq!(last.t_s, Some(4.0));
    assert_eq!(tl.events[1].policies, Some(80400));
}

#[test]
fn logrus_rfc3339_times_quoted_or_bare_are_parsed() {
    let log = "time=\"2020-06-05T10:15:01Z\" level=info msg=\"Reload queued\"\n\
               time=2020-06-05T10:15:02.500Z level=info msg=\"API reload complete\"\n";
    let tl = parse_reload_timeline(log);
    assert_eq!(tl.reload_durations_s, vec![1.5]);
    assert_eq!(tl.events[0].time.as_deref(), Some("2020-06-05T10:15:01Z"));
}

#[test]
fn v5_json_log_lines_are_parsed() {
    let log = r#"{"level":"info","msg":"Tyk Gateway started (v5.8.15)","prefix":"main","time":"2024-05-01T10:15:00Z"}
{"level":"info","msg":"Reloading endpoints","prefix":"pub-sub","time":"2024-05-01T10:15:01.250Z"}
{"level":"info","msg":"Policies found (12 total)","prefix":"policy","time":"2024-05-01T10:15:02Z"}
{"level":"info","msg":"API reload complete","prefix":"main","time":"2024-05-01T10:15:02.000Z"}
"#;
    let tl = parse_reload_timeline(log);
    assert_eq!(tl.version.as_deref(), Some("v5.8.15"));
    assert_eq!(tl.triggers_seen, 1);
    assert_eq!(tl.policies_found_last, Some(12));
    assert_eq!(tl.reload_durations_s, vec![0.75]);
}

#[test]
fn stub_tracing_output_with_and_without_colours_is_parsed() {
    let log = "2026-11-27T10:15:00.000000Z  INFO stub gateway started (stub/v2.9.4)\n\
               2026-11-27T10:15:01.100000Z  INFO Reloading endpoints\n\
               \u{1b}[2m2026-11-27T10:15:01.200000Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m Reload queued\n\
               2026-11-27T10:15:01.900000Z  INFO Policies found (7 total)\n\
               2026-11-27T10:15:02.350000Z  INFO API reload complete\n";
    let tl = parse_reload_timeline(log);
    assert_eq!(tl.version.as_deref(), Some("stub/v2.9.4"));
    assert_eq!(tl.triggers_seen, 1);
    assert_eq!(tl.reloads_queued, 1);
    assert_eq!(tl.policies_found_last, Some(7));
    assert_eq!(tl.reload_durations_s.len(), 1);
    assert!((tl.reload_durations_s[0] - 1.25).abs() < 1e-9);
    assert_eq!(
        tl.events[2].time.as_deref(),
        Some("2026-11-27T10:15:01.200000Z")
    );
}

#[test]
fn docker_timestamp_prefix_wins_over_the_coarse_logrus_time() {
    let log = "2026-11-27T10:15:02.100000000Z time=\"Nov 27 10:15:02\" level=info msg=\"Reload queued\"\n\
               2026-11-27T10:15:02.900000000Z time=\"Nov 27 10:15:02\" level=info msg=\"API reload complete\"\n";
    let tl = parse_reload_timeline(log);
    assert_eq!(tl.reload_durations_s.len(), 1);
    assert!((tl.reload_durations_s[0] - 0.8).abs() < 1e-9);
}

#[test]
fn lines_without_a_time_keep_their_line_number_and_give_no_duration() {
    let log = "starting\nmsg=\"Reloading endpoints\"\nmsg=\"API reload complete\"\n";
    let tl = parse_reload_timeline(log);
    assert_eq!(tl.reloads_completed, 1);
    assert!(tl.reload_durations_s.is_empty());
    assert_eq!(tl.events[0].line, 2);
    assert_eq!(tl.events[0].time, None);
    assert_eq!(tl.events[0].t_s, None);
    assert_eq!(tl.origin_time, None);
}

#[test]
fn events_are_capped_but_counters_stay_exact() {
    let mut log = String::new();
    for i in 0..(MAX_EVENTS + 5) {
        log.push_str(&format!(
            "2026-11-27T10:00:00Z INFO Reloading endpoints {i}\n2026-11-27T10:00:01Z INFO API reload complete\n"
        ));
    }
    let tl = parse_reload_timeline(&log);
    assert_eq!(tl.events.len(), MAX_EVENTS);
    assert_eq!(tl.events_total, 2 * (MAX_EVENTS as u64 + 5));
    assert_eq!(tl.triggers_seen, MAX_EVENTS as u64 + 5);
    assert_eq!(tl.reloads_completed, MAX_EVENTS as u64 + 5);
}

#[test]
fn a_restart_closes_the_open_reload_window() {
    let log = "2026-11-27T10:00:00Z INFO Reloading endpoints\n\
               2026-11-27T10:00:05Z INFO stub gateway started (stub/fixed)\n\
               2026-11-27T10:00:06Z INFO API reload complete\n";
    let tl = parse_reload_timeline(log);
    assert!(tl.reload_durations_s.is_empty());
    assert_eq!(tl.version.as_deref(), Some("stub/fixed"));
}

#[test]
fn timeline_serialises_with_snake_case_kinds() {
    let tl = parse_reload_timeline("2026-11-27T10:00:00Z INFO Reload already queued\n");
    let json = serde_json::to_value(&tl).expect("serialise");
    assert_eq!(json["events"][0]["kind"], "reload_already_queued");
    assert_eq!(json["already_queued"], 1);
}
