//! Reload scheduling (protocol §5): both gateway loops as pure state machines ([`Scheduler`]),
//! and the thin task that drives one against a real clock ([`driver`]).
//!
//! The machines know nothing about time or I/O. Events come in — a tick of Go's one-slot
//! ticker, a trigger, "the running reload is done" — and the machine says whether a reload
//! begins now and, when one ends, which callbacks it serves:
//! - [`ReloadMode::V294`] ([`v294`]): the `reloading` flag and the one-slot start signal. A
//!   trigger that finds the loop holding its tick starts a reload at once; triggers while a
//!   reload is pending or running are "already queued" and served by it, although a running
//!   reload fetched its policies before they arrived: those changes are lost until an unrelated
//!   trigger comes.
//! - [`ReloadMode::Fixed`] ([`fixed`]): each tick takes the whole trigger list and reloads once
//!   for it; triggers during a reload wait for the next tick. None is lost.

pub mod driver;
mod fixed;
mod v294;

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod tests;

pub use driver::{ReloadQueue, drive_reloads, run_reload_loop};

use super::ReloadMode;

/// What a trigger did to the schedule (the caller logs it the way Tyk does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// "Reload queued": v2.9.4 sent its start signal; the fix appended to its list.
    Queued,
    /// "Reload already queued" (v2.9.4 only): a reload is pending or running and counts this
    /// trigger as served. `while_running` marks a lost-trigger candidate: that reload has
    /// already fetched its policies.
    AlreadyQueued {
        /// The reload serving it had already fetched its policies.
        while_running: bool,
    },
}

#[derive(Debug)]
enum Machine<W> {
    V294(v294::V294<W>),
    Fixed(fixed::Fixed<W>),
}

/// The reload scheduler of one mode, plus counters. `W` is whatever must be told when a reload
/// serving a trigger ends (a oneshot sender in the server, a plain number in tests).
#[derive(Debug)]
pub struct Scheduler<W> {
    machine: Machine<W>,
    stall_after_reloads: Option<u64>,
    /// A reload has begun and the driver has not picked it up yet.
    start_pending: bool,
    reloads_started: u64,
    triggers: u64,
    lost_trigger_candidates: u64,
}

impl<W> Scheduler<W> {
    /// A scheduler with nothing queued, as the loops are at process start (v2.9.4's reload loop
    /// waits for its first tick; the fix waits for a tick with a non-empty list).
    /// `stall_after_reloads`: start no reload after that many.
    pub fn new(mode: ReloadMode, stall_after_reloads: Option<u64>) -> Self {
        let machine = match mode {
            ReloadMode::V294 => Machine::V294(v294::V294::new()),
            ReloadMode::Fixed => Machine::Fixed(fixed::Fixed::new()),
        };
        Self {
            machine,
            stall_after_reloads,
            start_pending: false,
            reloads_started: 0,
            triggers: 0,
            lost_trigger_candidates: 0,
        }
    }

    /// One tick of the reload loop's ticker. True when a reload begins now.
    pub fn tick(&mut self) -> bool {
        let may_start = !self.is_stalled();
        let started = match &mut self.machine {
            Machine::V294(m) => m.tick(may_start),
            Machine::Fixed(m) => m.tick(may_start),
        };
        self.note_start(started)
    }

    /// One trigger; `waiter` (a `block=true` caller) is told when a reload serves it. The bool
    /// is true when a reload begins now (v2.9.4 with the loop holding its tick).
    pub fn trigger(&mut self, waiter: Option<W>) -> (TriggerOutcome, bool) {
        self.triggers += 1;
        let may_start = !self.is_stalled();
        let (outcome, started) = match &mut self.machine {
            Machine::V294(m) => m.trigger(waiter, may_start),
            Machine::Fixed(m) => {
                m.trigger(waiter);
                (TriggerOutcome::Queued, false)
            }
        };
        if outcome
            == (TriggerOutcome::AlreadyQueued {
                while_running: true,
            })
        {
            self.lost_trigger_candidates += 1;
        }
        (outcome, self.note_start(started))
    }

    /// The running reload is done: returns the waiters it serves. True in the second place
    /// when the next reload begins at once (the fix, with a tick waiting and triggers queued).
    pub fn finish(&mut self) -> (Vec<W>, bool) {
        let may_start = !self.is_stalled();
        let (served, started) = match &mut self.machine {
            Machine::V294(m) => (m.finish(), false),
            Machine::Fixed(m) => m.finish(may_start),
        };
        (served, self.note_start(started))
    }

    /// The driver asks: has a reload begun that it has not started yet? (Clears the flag.)
    pub fn take_start(&mut self) -> bool {
        std::mem::take(&mut self.start_pending)
    }

    /// Drops every waiter (shutdown), so blocked callers stop waiting.
    pub fn abandon(&mut self) -> Vec<W> {
        match &mut self.machine {
            Machine::V294(m) => m.abandon(),
            Machine::Fixed(m) => m.abandon(),
        }
    }

    /// Whether `--stall-after-reloads` has been reached: no reload will ever start again.
    pub fn is_stalled(&self) -> bool {
        self.stall_after_reloads
            .is_some_and(|limit| self.reloads_started >= limit)
    }

    /// Reloads started so far.
    pub fn reloads_started(&self) -> u64 {
        self.reloads_started
    }

    /// Triggers received so far.
    pub fn triggers(&self) -> u64 {
        self.triggers
    }

    /// v2.9.4: triggers counted as served by a reload that had already fetched.
    pub fn lost_trigger_candidates(&self) -> u64 {
        self.lost_trigger_candidates
    }

    /// A reload is executing (begun, not yet finished).
    pub fn is_running(&self) -> bool {
        match &self.machine {
            Machine::V294(m) => m.at == v294::LoopAt::Reloading,
            Machine::Fixed(m) => m.running,
        }
    }

    fn note_start(&mut self, started: bool) -> bool {
        if started {
            self.reloads_started += 1;
            self.start_pending = true;
        }
        started
    }
}
