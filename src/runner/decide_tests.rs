//! Every stop cause and every tie of [`decide_stop`], with times as plain durations.

use super::*;

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

fn rules() -> StopRules {
    StopRules::new(s(120.0), s(30.0))
}

/// A healthy run 10 s in: the schedule is done, scenarios wait, progress 1 s ago.
fn healthy() -> WatchFacts {
    WatchFacts {
        now: s(10.0),
        last_scheduled: Some(s(5.0)),
        in_flight: 40,
        last_fetch: Some(s(9.0)),
        last_success: Some(s(9.5)),
        started: 2500,
        scheduled: 2500,
        ..Default::default()
    }
}

#[test]
fn nothing_stops_a_run_that_makes_progress() {
    assert_eq!(decide_stop(&healthy(), &rules()), None);
}

#[test]
fn every_scenario_finished_is_completed() {
    let f = WatchFacts {
        in_flight: 0,
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), Some(StopCause::Completed));
}

#[test]
fn no_scenario_running_before_the_schedule_is_done_is_not_completed() {
    let f = WatchFacts {
        in_flight: 0,
        last_scheduled: None,
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), None);
}

#[test]
fn the_deadline_after_the_last_start_stops_the_run() {
    let f = WatchFacts {
        now: s(125.0),
        last_success: Some(s(124.0)),
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), Some(StopCause::Deadline));
}

#[test]
fn no_success_and_no_fetch_for_the_stall_timeout_is_a_stall_naming_the_last_fetch() {
    let f = WatchFacts {
        now: s(40.0),
        ..healthy()
    };
    let Some(StopCause::Stall(reason)) = decide_stop(&f, &rules()) else {
        panic!("expected a stall");
    };
    assert!(reason.contains("9.0s after the load started"), "{reason}");
    let never = WatchFacts {
        now: s(31.0),
        last_fetch: None,
        last_success: None,
        ..healthy()
    };
    let Some(StopCause::Stall(reason)) = decide_stop(&never, &rules()) else {
        panic!("expected a stall");
    };
    assert!(reason.contains("no policy fetch since the load started"));
}

#[test]
fn a_fetch_keeps_a_run_without_successes_alive() {
    let f = WatchFacts {
        now: s(40.0),
        last_fetch: Some(s(39.0)),
        last_success: None,
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), None);
}

#[test]
fn a_fatal_answer_stops_the_run_with_its_reason() {
    let f = WatchFacts {
        fatal: Some("node_secret differs".into()),
        ..healthy()
    };
    assert_eq!(
        decide_stop(&f, &rules()),
        Some(StopCause::Fatal("node_secret differs".into()))
    );
}

#[test]
fn a_signal_wins_over_everything_even_a_due_stall() {
    let f = WatchFacts {
        now: s(200.0),
        signal: Some(Signal::Interrupt),
        fatal: Some("x".into()),
        dashboard_silent_for: s(60.0),
        gateway_silent_since: Some(s(1.0)),
        behind_schedule: s(9.0),
        ..healthy()
    };
    assert_eq!(
        decide_stop(&f, &rules()),
        Some(StopCause::Signal(Signal::Interrupt))
    );
}

#[test]
fn a_fatal_answer_wins_over_completion() {
    let f = WatchFacts {
        in_flight: 0,
        fatal: Some("secret".into()),
        ..healthy()
    };
    assert!(matches!(
        decide_stop(&f, &rules()),
        Some(StopCause::Fatal(_))
    ));
}

#[test]
fn completion_wins_over_a_silent_dashboard_and_a_silent_gateway() {
    let f = WatchFacts {
        in_flight: 0,
        dashboard_silent_for: s(20.0),
        gateway_silent_since: Some(s(0.0)),
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), Some(StopCause::Completed));
}

#[test]
fn a_dashboard_silent_too_long_stops_the_run_naming_its_error() {
    let f = WatchFacts {
        dashboard_silent_for: s(10.5),
        dashboard_error: "connection refused".into(),
        ..healthy()
    };
    let Some(StopCause::DashboardSilent(reason)) = decide_stop(&f, &rules()) else {
        panic!("expected the dashboard");
    };
    assert!(reason.contains("connection refused"), "{reason}");
}

#[test]
fn a_stall_while_the_dashboard_is_silent_is_blamed_on_the_dashboard() {
    let f = WatchFacts {
        now: s(40.0),
        dashboard_silent_for: s(3.0),
        dashboard_error: "timed out".into(),
        ..healthy()
    };
    let Some(StopCause::DashboardSilent(reason)) = decide_stop(&f, &rules()) else {
        panic!(
            "expected the dashboard, got {:?}",
            decide_stop(&f, &rules())
        );
    };
    assert!(reason.contains("while 40 scenarios waited"), "{reason}");
    // A short silence (one slow answer) does not take the blame.
    let blip = WatchFacts {
        dashboard_silent_for: s(0.5),
        ..f
    };
    assert!(matches!(
        decide_stop(&blip, &rules()),
        Some(StopCause::Stall(_))
    ));
}

#[test]
fn a_gateway_silent_for_the_unresponsive_time_stops_the_run_saying_since_when() {
    let f = WatchFacts {
        now: s(22.5),
        last_fetch: Some(s(22.0)),
        gateway_silent_since: Some(s(12.4)),
        gateway_error: "connection refused".into(),
        ..healthy()
    };
    let Some(StopCause::Unresponsive(reason)) = decide_stop(&f, &rules()) else {
        panic!("expected unresponsive");
    };
    assert!(reason.contains("since 12.4s"), "{reason}");
    assert!(reason.contains("connection refused"), "{reason}");
    let brief = WatchFacts {
        now: s(15.0),
        ..f.clone()
    };
    assert_eq!(
        decide_stop(&brief, &rules()),
        None,
        "3 s of silence is not yet"
    );
}

#[test]
fn a_silent_gateway_with_nothing_waiting_is_not_unresponsive() {
    let f = WatchFacts {
        now: s(3.0),
        last_scheduled: None,
        in_flight: 0,
        gateway_silent_since: Some(s(0.0)),
        ..healthy()
    };
    let later = WatchFacts { now: s(30.0), ..f };
    assert_eq!(decide_stop(&later, &rules()), None);
}

#[test]
fn a_dashboard_silence_wins_over_a_silent_gateway() {
    let f = WatchFacts {
        now: s(30.0),
        last_fetch: Some(s(29.0)),
        dashboard_silent_for: s(11.0),
        gateway_silent_since: Some(s(5.0)),
        ..healthy()
    };
    assert!(matches!(
        decide_stop(&f, &rules()),
        Some(StopCause::DashboardSilent(_))
    ));
}

#[test]
fn an_unresponsive_gateway_wins_over_a_due_stall_and_the_deadline() {
    let f = WatchFacts {
        now: s(130.0),
        last_fetch: Some(s(5.0)),
        last_success: Some(s(5.0)),
        gateway_silent_since: Some(s(6.0)),
        ..healthy()
    };
    assert!(matches!(
        decide_stop(&f, &rules()),
        Some(StopCause::Unresponsive(_))
    ));
}

#[test]
fn the_deadline_wins_over_a_stall_due_at_the_same_look() {
    let f = WatchFacts {
        now: s(125.0),
        last_fetch: Some(s(5.0)),
        last_success: Some(s(5.0)),
        ..healthy()
    };
    assert_eq!(decide_stop(&f, &rules()), Some(StopCause::Deadline));
}

#[test]
fn starts_trailing_their_schedule_stop_the_run_as_saturated_before_any_other_rule() {
    let f = WatchFacts {
        now: s(40.0),
        last_scheduled: None,
        behind_schedule: s(2.7),
        dashboard_silent_for: s(12.0),
        gateway_silent_since: Some(s(20.0)),
        started: 19_520,
        scheduled: 30_000,
        ..healthy()
    };
    let Some(StopCause::Saturated(reason)) = decide_stop(&f, &rules()) else {
        panic!("expected saturation");
    };
    assert!(
        reason.contains("2.7s") && reason.contains("19520 of 30000"),
        "{reason}"
    );
    let ok = WatchFacts {
        behind_schedule: s(0.05),
        dashboard_silent_for: s(0.0),
        gateway_silent_since: None,
        last_success: Some(s(39.9)),
        ..f
    };
    assert_eq!(decide_stop(&ok, &rules()), None);
}

#[test]
fn behind_schedule_counts_the_starts_due_but_not_made() {
    assert_eq!(behind_schedule(s(1.0), 500.0, 501, 2500), Duration::ZERO);
    assert_eq!(behind_schedule(s(4.0), 500.0, 1001, 2500), s(2.0));
    // Never more due than scheduled.
    assert_eq!(behind_schedule(s(100.0), 500.0, 2500, 2500), Duration::ZERO);
}
