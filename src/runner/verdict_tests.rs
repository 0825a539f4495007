//! Every verdict of [`decide_verdict`] and every tie between its rules.

use super::*;

/// 2,500 scenarios, 157 still "policy not found" after a stall: the v2.9.4 signature.
fn hung() -> VerdictFacts {
    VerdictFacts {
        cause: StopCause::Stall("stalled: no key created and no policy fetched for 30s".into()),
        started: 2500,
        scheduled: 2500,
        succeeded: 2343,
        failed: 0,
        outstanding: 157,
        elapsed_s: 36.0,
        deadline_s: 120.0,
        latency_ms: (Some(900.0), Some(4000.0), Some(5000.0)),
        failure_examples: Vec::new(),
        last_fetch_after_last_add_s: Some(-0.32),
        last_error: Some("Failed to create key - policy not found: \"p\"".into()),
        gateways: 1,
        publish_errors: 0,
        unheard_notifications: 0,
        trigger_failures: 0,
        outstanding_unheard: 0,
        recheck: RecheckCounts {
            probed: 157,
            not_found: 157,
            ..Default::default()
        },
        gateway_silence: None,
        container_death: None,
        kit: KitLoad {
            lag_p99_ms: 4.0,
            started: 2500,
            scheduled: 2500,
            adds: 2500,
            published: 2500,
            ..Default::default()
        },
        unserved_successes: 0,
    }
}

fn passed() -> VerdictFacts {
    VerdictFacts {
        cause: StopCause::Completed,
        succeeded: 2500,
        outstanding: 0,
        recheck: RecheckCounts::default(),
        last_error: None,
        ..hung()
    }
}

/// The gateway died: every re-check refused.
fn killed() -> VerdictFacts {
    VerdictFacts {
        recheck: RecheckCounts {
            probed: 157,
            no_answer: 157,
            last_no_answer: Some("gateway http://gw/tyk/keys/create: connection refused".into()),
            ..Default::default()
        },
        gateway_silence: Some("connection refused since 12.4s into the load".into()),
        ..hung()
    }
}

fn saturated_kit() -> KitLoad {
    KitLoad {
        lag_p99_ms: 2700.0,
        late_starts: 12_599,
        started: 19_520,
        scheduled: 30_000,
        adds: 19_520,
        published: 19_000,
        slow_publishes: 900,
        publish_max_ms: 2100.0,
        ..Default::default()
    }
}

#[test]
fn lost_policies_answered_not_found_are_a_hang_naming_the_lost_triggers() {
    let (v, reason) = decide_verdict(&hung());
    assert_eq!(v, Verdict::Hang);
    assert!(reason.contains("157 of 2500"), "{reason}");
    assert!(reason.contains("lost reload triggers"), "{reason}");
    assert!(
        reason.contains("157 still \"policy not found\""),
        "{reason}"
    );
}

#[test]
fn the_deadline_with_scenarios_waiting_is_a_hang() {
    let f = VerdictFacts {
        cause: StopCause::Deadline,
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Hang);
    assert!(reason.contains("still waited 120s"), "{reason}");
}

#[test]
fn every_scenario_done_is_a_pass_with_the_latency() {
    let (v, reason) = decide_verdict(&passed());
    assert_eq!(v, Verdict::Pass);
    assert!(
        reason.contains("all 2500") && reason.contains("p50 900 ms"),
        "{reason}"
    );
}

#[test]
fn failures_in_a_completed_run_are_an_infra_error_quoting_them() {
    let f = VerdictFacts {
        succeeded: 2499,
        failed: 1,
        failure_examples: vec!["dashboard answered 500".into()],
        ..passed()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("dashboard answered 500"));
}

#[test]
fn successes_no_fetch_had_served_turn_a_pass_into_an_infra_error_naming_app_path() {
    let f = VerdictFacts {
        unserved_successes: 130,
        ..passed()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(
        reason.contains("130 of 2500") && reason.contains("app_path"),
        "{reason}"
    );
}

#[test]
fn a_stall_that_the_final_re_check_resolves_is_a_pass_saying_so() {
    let f = VerdictFacts {
        succeeded: 2500,
        outstanding: 0,
        recheck: RecheckCounts {
            probed: 400,
            succeeded: 400,
            ..Default::default()
        },
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Pass, "{reason}");
    assert!(
        reason.contains("400 of them only on the final re-check"),
        "{reason}"
    );
}

#[test]
fn a_run_cut_short_is_never_a_pass_even_with_nothing_waiting() {
    let f = VerdictFacts {
        cause: StopCause::Unresponsive("the gateway has not answered since 2.0s".into()),
        started: 300,
        succeeded: 300,
        outstanding: 0,
        recheck: RecheckCounts::default(),
        ..hung()
    };
    let (v, _) = decide_verdict(&f);
    assert_eq!(v, Verdict::Unresponsive);
}

#[test]
fn a_gateway_that_refuses_every_re_check_is_unresponsive_not_a_hang() {
    let (v, reason) = decide_verdict(&killed());
    assert_eq!(v, Verdict::Unresponsive);
    assert!(
        reason.contains("connection refused since 12.4s"),
        "{reason}"
    );
    assert!(reason.contains("157 of 157"), "{reason}");
    assert!(!reason.contains("BEFORE the last policy add"), "{reason}");
}

#[test]
fn re_checks_out_of_time_count_as_no_answer() {
    let f = VerdictFacts {
        recheck: RecheckCounts {
            probed: 157,
            no_answer: 20,
            out_of_time: 137,
            ..Default::default()
        },
        ..hung()
    };
    assert_eq!(decide_verdict(&f).0, Verdict::Unresponsive);
}

#[test]
fn the_watchers_unresponsive_stop_is_unresponsive_naming_since_when() {
    let f = VerdictFacts {
        cause: StopCause::Unresponsive(
            "the gateway has not answered since 12.4s into the load (10.0s): connection refused"
                .into(),
        ),
        recheck: RecheckCounts::default(),
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Unresponsive);
    assert!(reason.contains("since 12.4s"), "{reason}");
}

#[test]
fn a_silent_gateway_that_answers_not_found_at_the_end_is_still_a_hang() {
    let f = VerdictFacts {
        gateway_silence: Some("timed out since 20.0s".into()),
        ..hung()
    };
    assert_eq!(decide_verdict(&f).0, Verdict::Hang);
}

#[test]
fn a_container_that_exited_is_unresponsive_with_its_exit_state_even_when_saturated() {
    let f = VerdictFacts {
        container_death: Some(
            "container exited with code 137 (OOM-killed) 21.3s into the load".into(),
        ),
        kit: saturated_kit(),
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Unresponsive);
    assert!(
        reason.contains("code 137") && reason.contains("OOM"),
        "{reason}"
    );
    assert!(reason.contains("saturated"), "{reason}");
}

#[test]
fn a_saturated_kit_is_an_infra_error_naming_each_part_and_what_to_lower() {
    let f = VerdictFacts {
        cause: StopCause::DashboardSilent(
            "the dashboard mock stopped answering for 10s during the run: timed out".into(),
        ),
        kit: KitLoad {
            dashboard_silence: Some("the dashboard mock stopped answering for 10s".into()),
            ..saturated_kit()
        },
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    for needle in [
        "saturated",
        "lag p99 2700 ms",
        "PUBLISH took up to 2100 ms",
        "only 19520 of 30000",
        "RATE, DURATION or INITIAL_POLICIES",
        "dashboard mock stopped answering",
    ] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
}

#[test]
fn saturation_wins_over_a_silent_gateway_and_unheard_triggers() {
    let f = VerdictFacts {
        kit: saturated_kit(),
        outstanding_unheard: 157,
        publish_errors: 157,
        ..killed()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("saturated"), "{reason}");
}

#[test]
fn a_saturated_pass_stays_a_pass_with_a_note() {
    let f = VerdictFacts {
        kit: saturated_kit(),
        started: 30_000,
        scheduled: 30_000,
        succeeded: 30_000,
        ..passed()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Pass);
    assert!(reason.contains("the kit fell behind"), "{reason}");
}

#[test]
fn one_slow_publish_is_not_saturation() {
    let k = KitLoad {
        published: 2500,
        slow_publishes: 1,
        publish_max_ms: 1900.0,
        ..hung().kit
    };
    assert!(saturation(&k).is_empty());
}

#[test]
fn a_silent_dashboard_alone_is_an_infra_error_naming_it() {
    let f = VerdictFacts {
        cause: StopCause::DashboardSilent("the dashboard mock stopped answering for 10s".into()),
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("dashboard mock stopped answering"));
}

#[test]
fn triggers_that_reached_nobody_are_an_infra_error_naming_the_unheard_notifications() {
    let f = VerdictFacts {
        succeeded: 0,
        outstanding: 2500,
        unheard_notifications: 2500,
        outstanding_unheard: 2500,
        last_fetch_after_last_add_s: Some(-4.9),
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(
        reason.contains("2500 PolicyChanged notification(s) reached fewer than 1 subscriber"),
        "{reason}"
    );
    assert!(!reason.contains("lost reload triggers"), "{reason}");
}

#[test]
fn publish_errors_for_the_missing_policies_are_an_infra_error() {
    let f = VerdictFacts {
        publish_errors: 150,
        outstanding_unheard: 157,
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("could not be published"), "{reason}");
}

#[test]
fn a_publish_error_unrelated_to_the_lost_policies_leaves_the_hang_standing() {
    let f = VerdictFacts {
        publish_errors: 3,
        outstanding_unheard: 0,
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Hang);
    assert!(
        reason.contains("none of them for the policies still missing"),
        "{reason}"
    );
}

#[test]
fn some_missing_policies_unheard_still_leaves_a_hang_for_the_others() {
    let f = VerdictFacts {
        publish_errors: 10,
        outstanding_unheard: 10,
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Hang);
    assert!(
        reason.contains("10 of the missing policies went unheard"),
        "{reason}"
    );
}

#[test]
fn a_gone_gateway_wins_over_unheard_triggers() {
    let f = VerdictFacts {
        outstanding_unheard: 157,
        unheard_notifications: 157,
        ..killed()
    };
    assert_eq!(decide_verdict(&f).0, Verdict::Unresponsive);
}

#[test]
fn a_signal_during_a_stall_is_interrupted() {
    let f = VerdictFacts {
        cause: StopCause::Signal(Signal::Terminate),
        ..killed()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::Interrupted);
    assert!(reason.contains("SIGTERM"), "{reason}");
}

#[test]
fn a_fatal_answer_is_an_infra_error_with_its_reason_whatever_else_was_seen() {
    let f = VerdictFacts {
        cause: StopCause::Fatal("gateway answered 400: allow_master_keys".into()),
        kit: saturated_kit(),
        ..killed()
    };
    assert_eq!(
        decide_verdict(&f),
        (
            Verdict::InfraError,
            "gateway answered 400: allow_master_keys".into()
        )
    );
}

#[test]
fn a_saturated_stop_is_an_infra_error_with_the_runners_account() {
    let f = VerdictFacts {
        cause: StopCause::Saturated("the runner's starts trailed their schedule by 2.5s".into()),
        started: 10_000,
        scheduled: 30_000,
        kit: KitLoad {
            behind: Some("the runner's starts trailed their schedule by 2.5s".into()),
            ..hung().kit
        },
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(
        reason.contains("trailed their schedule by 2.5s"),
        "{reason}"
    );
}

#[test]
fn notifications_the_mock_never_sent_are_named_as_such() {
    let f = VerdictFacts {
        outstanding_unheard: 157,
        ..hung()
    };
    let (v, reason) = decide_verdict(&f);
    assert_eq!(v, Verdict::InfraError);
    assert!(reason.contains("published no notification"), "{reason}");
}
