//! Reload scheduling (protocol §5) as a pure state machine, plus the async loop that drives it.
//!
//! The state machine knows nothing about time or I/O: triggers come in, a tick asks "start a
//! reload now?", and `finish` hands back the callbacks the finished reload serves. That makes
//! both behaviours unit-testable step by step:
//! - [`ReloadMode::V294`]: one `reloading` flag. Triggers while it is set are "already queued"
//!   and served by the pending or RUNNING reload, whose policy fetch happened at its start: a
//!   change behind a trigger that arrives mid-reload is lost until some later trigger.
//! - [`ReloadMode::Fixed`]: every trigger joins a list; each tick takes the whole list and runs
//!   one reload for it. Triggers arriving mid-reload wait for the next tick. None is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::ReloadMode;
use super::state::StubState;

/// What a trigger did to the schedule (the caller logs it the way Tyk does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// A reload was scheduled for the next tick ("Reload queued").
    Queued,
    /// A reload was already pending or running and counts this trigger as served
    /// ("Reload already queued"). `while_running` marks a lost-trigger candidate.
    AlreadyQueued {
        /// The reload serving it had already fetched its policies.
        while_running: bool,
    },
}

/// The reload scheduler. `W` is whatever must be told when a reload serving a trigger ends
/// (a oneshot sender in the server, a plain number in tests).
#[derive(Debug)]
pub struct Scheduler<W> {
    mode: ReloadMode,
    stall_after_reloads: Option<u64>,
    /// v2.9.4's flag: set from the first trigger until the reload it scheduled ends.
    reloading: bool,
    /// A reload is executing (between `tick` returning true and `finish`).
    running: bool,
    /// Waiters of triggers not yet taken by a reload (fixed), or served by the pending/running
    /// reload (v2.9.4).
    waiting: Vec<W>,
    /// Fixed mode: triggers queued for the next tick (waiters or not).
    queued_triggers: u64,
    /// Waiters taken by the running reload (fixed mode).
    taken: Vec<W>,
    reloads_started: u64,
    triggers: u64,
    lost_trigger_candidates: u64,
}

impl<W> Scheduler<W> {
    /// A scheduler with nothing queued. `stall_after_reloads`: start no reload after that many.
    pub fn new(mode: ReloadMode, stall_after_reloads: Option<u64>) -> Self {
        Self {
            mode,
            stall_after_reloads,
            reloading: false,
            running: false,
            waiting: Vec::new(),
            queued_triggers: 0,
            taken: Vec::new(),
            reloads_started: 0,
            triggers: 0,
            lost_trigger_candidates: 0,
        }
    }

    /// Records one trigger; `waiter` (a `block=true` caller) is told when a reload serves it.
    pub fn trigger(&mut self, waiter: Option<W>) -> TriggerOutcome {
        self.triggers += 1;
        let outcome = match self.mode {
            ReloadMode::V294 if self.reloading => {
                if self.running {
                    self.lost_trigger_candidates += 1;
                }
                TriggerOutcome::AlreadyQueued {
                    while_running: self.running,
                }
            }
            ReloadMode::V294 => {
                self.reloading = true;
                TriggerOutcome::Queued
            }
            ReloadMode::Fixed => {
                self.queued_triggers += 1;
                TriggerOutcome::Queued
            }
        };
        self.waiting.extend(waiter);
        outcome
    }

    /// Called on every tick: true when a reload must start now (at most one per tick, never
    /// while one runs, never once stalled).
    pub fn tick(&mut self) -> bool {
        if self.running || self.is_stalled() {
            return false;
        }
        let start = match self.mode {
            ReloadMode::V294 => self.reloading,
            ReloadMode::Fixed => {
                let any = self.queued_triggers > 0;
                self.queued_triggers = 0;
                self.taken = std::mem::take(&mut self.waiting);
                any
            }
        };
        if start {
            self.running = true;
            self.reloads_started += 1;
        }
        start
    }

    /// The running reload ended: returns the waiters it serves. v2.9.4 clears its flag and
    /// schedules nothing, whatever arrived meanwhile.
    pub fn finish(&mut self) -> Vec<W> {
        if !self.running {
            return Vec::new();
        }
        self.running = false;
        match self.mode {
            ReloadMode::V294 => {
                self.reloading = false;
                std::mem::take(&mut self.waiting)
            }
            ReloadMode::Fixed => std::mem::take(&mut self.taken),
        }
    }

    /// Drops every waiter (shutdown), so blocked callers stop waiting.
    pub fn abandon(&mut self) -> Vec<W> {
        let mut all = std::mem::take(&mut self.waiting);
        all.append(&mut self.taken);
        all
    }

    /// Whether `--stall-after-reloads` has been reached: no reload will ever start again.
    pub fn is_stalled(&self) -> bool {
        self.stall_after_reloads
            .is_some_and(|limit| self.reloads_started >= limit)
    }

    /// Reloads started so far (the startup load is not one).
    pub fn reloads_started(&self) -> u64 {
        self.reloads_started
    }

    /// Triggers received so far.
    pub fn triggers(&self) -> u64 {
        self.triggers
    }

    /// v2.9.4 triggers counted as served by a reload that had already fetched its policies.
    pub fn lost_trigger_candidates(&self) -> u64 {
        self.lost_trigger_candidates
    }

    /// Whether a reload is executing now.
    pub fn is_running(&self) -> bool {
        self.running
    }
}

/// Drives the scheduler on a tick until `shutdown`: runs each reload to completion inside the
/// loop (so at most one per tick), then wakes the waiters it served.
pub async fn run_reload_loop(state: Arc<StubState>, tick: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(tick);
    // Go's ticker keeps one missed tick buffered: after a long reload the next tick comes at
    // once, later ones stay on the original grid. `Skip` does the same.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        if !state.lock_scheduler().tick() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = state.reload_policies() => {}
        }
        let waiters = state.lock_scheduler().finish();
        for waiter in waiters {
            // A caller that gave up has dropped its receiver: nothing to tell.
            let _ = waiter.send(());
        }
        tracing::info!("API reload complete");
    }
    drop(state.lock_scheduler().abandon());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(mode: ReloadMode) -> Scheduler<u32> {
        Scheduler::new(mode, None)
    }

    #[test]
    fn v294_loses_a_trigger_that_arrives_during_a_reload() {
        let mut s = scheduler(ReloadMode::V294);
        assert_eq!(s.trigger(Some(1)), TriggerOutcome::Queued);
        assert!(
            s.tick(),
            "the first trigger starts a reload on the next tick"
        );
        assert_eq!(
            s.trigger(Some(2)),
            TriggerOutcome::AlreadyQueued {
                while_running: true
            }
        );
        // Both callbacks fire when the running reload ends, though it fetched before trigger 2.
        assert_eq!(s.finish(), vec![1, 2]);
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
            TriggerOutcome::AlreadyQueued {
                while_running: false
            }
        );
        assert!(s.tick());
        assert_eq!(s.finish(), vec![1, 2]);
        assert_eq!(s.lost_trigger_candidates(), 0);
    }

    #[test]
    fn fixed_runs_a_follow_up_reload_on_the_next_tick() {
        let mut s = scheduler(ReloadMode::Fixed);
        s.trigger(Some(1));
        assert!(s.tick());
        assert_eq!(s.trigger(Some(2)), TriggerOutcome::Queued);
        assert!(!s.tick(), "never a second reload while one runs");
        assert_eq!(
            s.finish(),
            vec![1],
            "only the trigger taken at the start is served"
        );
        assert!(
            s.tick(),
            "the trigger that arrived mid-reload gets its own reload"
        );
        assert_eq!(s.finish(), vec![2]);
        assert!(!s.tick(), "nothing queued, nothing to do");
        assert_eq!(s.reloads_started(), 2);
        assert_eq!(s.lost_trigger_candidates(), 0);
    }

    #[test]
    fn fixed_runs_at_most_one_reload_per_tick_for_many_triggers() {
        let mut s = scheduler(ReloadMode::Fixed);
        for w in 0..100 {
            s.trigger(Some(w));
        }
        s.trigger(None);
        assert!(s.tick());
        assert_eq!(s.finish(), (0..100).collect::<Vec<_>>());
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
                s.finish().is_empty(),
                "{mode:?}: nothing runs before a tick"
            );
            assert!(s.tick());
            assert!(s.is_running());
            assert_eq!(s.finish(), vec![7], "{mode:?}");
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
            s.trigger(Some(3));
            assert!(!s.tick(), "{mode:?}: stalled for good");
            assert!(!s.tick());
            assert_eq!(s.triggers(), 2);
            assert_eq!(s.reloads_started(), 1);
            assert_eq!(s.abandon(), vec![3]);
        }
    }

    #[test]
    fn stall_after_zero_reloads_never_reloads() {
        let mut s: Scheduler<u32> = Scheduler::new(ReloadMode::Fixed, Some(0));
        s.trigger(None);
        assert!(!s.tick());
    }
}
