//! Step-by-step tests of the two machines (no clock: events in order).

use super::*;

fn scheduler(mode: ReloadMode) -> Scheduler<u32> {
    Scheduler::new(mode, None)
}

const QUEUED: (TriggerOutcome, bool) = (TriggerOutcome::Queued, false);

#[test]
fn v294_a_trigger_before_the_first_tick_waits_for_it() {
    let mut s = scheduler(ReloadMode::V294);
    assert_eq!(s.trigger(Some(1)), QUEUED, "the loop has not had its tick");
    assert!(!s.take_start());
    assert!(
        s.tick(),
        "the first tick lets the pending start signal through"
    );
    assert!(s.take_start());
    assert!(!s.take_start(), "picked up once");
}

#[test]
fn v294_a_trigger_starts_at_once_when_the_loop_holds_its_tick() {
    let mut s = scheduler(ReloadMode::V294);
    assert!(!s.tick(), "first tick taken, nothing to do");
    assert_eq!(s.trigger(Some(1)), (TriggerOutcome::Queued, true));
    assert!(s.is_running());
}

#[test]
fn v294_loses_a_trigger_that_arrives_during_a_reload() {
    let mut s = scheduler(ReloadMode::V294);
    s.tick();
    assert_eq!(s.trigger(Some(1)), (TriggerOutcome::Queued, true));
    assert_eq!(
        s.trigger(Some(2)),
        (
            TriggerOutcome::AlreadyQueued {
                while_running: true
            },
            false
        )
    );
    // Both callbacks fire when the running reload ends, though it fetched before trigger 2.
    assert_eq!(s.finish(), (vec![1, 2], false));
    assert!(!s.tick(), "no follow-up reload is scheduled");
    assert!(!s.tick());
    assert_eq!(s.reloads_started(), 1);
    assert_eq!(s.lost_trigger_candidates(), 1);
}

#[test]
fn v294_serves_triggers_queued_before_the_tick_with_one_reload() {
    let mut s = scheduler(ReloadMode::V294);
    s.trigger(Some(1));
    assert_eq!(
        s.trigger(Some(2)),
        (
            TriggerOutcome::AlreadyQueued {
                while_running: false
            },
            false
        )
    );
    assert!(s.tick());
    assert_eq!(s.finish(), (vec![1, 2], false));
    assert_eq!(s.lost_trigger_candidates(), 0);
}

#[test]
fn v294_keeps_one_tick_from_a_long_reload_and_drops_the_rest() {
    let mut s = scheduler(ReloadMode::V294);
    s.tick();
    assert!(s.trigger(None).1);
    for _ in 0..3 {
        assert!(!s.tick(), "ticks during the reload only fill the one slot");
    }
    s.finish();
    // The waiting tick was consumed right after done: the next trigger starts at once …
    assert_eq!(s.trigger(None), (TriggerOutcome::Queued, true));
    s.finish();
    // … and the dropped ticks are gone: now the loop waits for a fresh one.
    assert_eq!(s.trigger(None), QUEUED);
    assert!(s.tick());
}

#[test]
fn fixed_waits_for_a_tick_and_runs_a_follow_up_for_triggers_during_a_reload() {
    let mut s = scheduler(ReloadMode::Fixed);
    assert_eq!(s.trigger(Some(1)), QUEUED, "never starts on a trigger");
    assert!(s.tick());
    assert_eq!(s.trigger(Some(2)), QUEUED);
    assert!(
        !s.tick(),
        "never a second reload while one runs: the tick waits"
    );
    assert_eq!(
        s.finish(),
        (vec![1], true),
        "only what it took is served; the waiting tick starts the follow-up at once"
    );
    assert_eq!(s.finish(), (vec![2], false));
    assert!(!s.tick(), "nothing queued, nothing to do");
    assert_eq!(s.reloads_started(), 2);
    assert_eq!(s.lost_trigger_candidates(), 0);
}

#[test]
fn fixed_waits_for_the_next_tick_after_a_short_reload() {
    let mut s = scheduler(ReloadMode::Fixed);
    s.trigger(Some(1));
    assert!(s.tick());
    s.trigger(Some(2));
    assert_eq!(
        s.finish(),
        (vec![1], false),
        "no tick came during the reload"
    );
    assert!(s.tick());
    assert_eq!(s.finish(), (vec![2], false));
}

#[test]
fn fixed_runs_at_most_one_reload_per_tick_for_many_triggers() {
    let mut s = scheduler(ReloadMode::Fixed);
    for w in 0..100 {
        s.trigger(Some(w));
    }
    s.trigger(None);
    assert!(s.tick());
    assert_eq!(s.finish(), ((0..100).collect::<Vec<_>>(), false));
    assert!(!s.tick());
    assert_eq!(s.triggers(), 101);
    assert_eq!(s.reloads_started(), 1);
}

#[test]
fn callbacks_fire_only_when_the_reload_that_covers_them_ends() {
    for mode in [ReloadMode::V294, ReloadMode::Fixed] {
        let mut s = scheduler(mode);
        s.trigger(Some(7));
        assert!(
            s.finish().0.is_empty(),
            "{mode:?}: nothing runs before a tick"
        );
        assert!(s.tick());
        assert!(s.is_running());
        assert_eq!(s.finish().0, vec![7], "{mode:?}");
    }
}

#[test]
fn stall_after_reloads_stops_reloading_but_keeps_counting_triggers() {
    for mode in [ReloadMode::V294, ReloadMode::Fixed] {
        let mut s: Scheduler<u32> = Scheduler::new(mode, Some(1));
        s.trigger(None);
        assert!(s.tick());
        s.finish();
        assert!(s.is_stalled());
        assert!(!s.trigger(Some(3)).1, "{mode:?}: stalled for good");
        assert!(!s.tick());
        assert!(!s.tick());
        assert_eq!(s.triggers(), 2);
        assert_eq!(s.reloads_started(), 1);
        assert_eq!(s.abandon(), vec![3]);
    }
}

#[test]
fn stall_after_zero_reloads_never_reloads() {
    for mode in [ReloadMode::V294, ReloadMode::Fixed] {
        let mut s: Scheduler<u32> = Scheduler::new(mode, Some(0));
        s.tick();
        assert!(!s.trigger(None).1);
        assert!(!s.tick());
        assert!(!s.take_start());
    }
}
