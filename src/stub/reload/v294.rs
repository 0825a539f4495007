//! v2.9.4's two goroutines (`reloadQueueLoop` + `reloadLoop`, protocol §5) as one pure state.
//!
//! - Go's `time.Tick` channel holds ONE pending tick and drops the rest (`tick_waiting`).
//! - The start signal is a channel of capacity one (`start_signal`).
//! - The queue loop's `reloading` flag: a trigger while it is clear sends the start signal and
//!   sets it ("Reload queued"); a trigger while it is set only adds its callback ("Reload already
//!   queued"). Done runs every callback and clears it. Nothing schedules a follow-up.
//! - The reload loop takes one tick, then repeats: wait for a start signal → reload (policy fetch
//!   at the START) → report done → take one tick.
//!
//! So a reload starts AT ONCE on a trigger when the loop already holds its tick (always the case
//! after a reload longer than the tick period), and a change whose trigger lands after the
//! running reload's fetch is counted as served by it.

use super::TriggerOutcome;

/// Where the reload loop is blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopAt {
    /// `<-tick` before the first iteration.
    FirstTick,
    /// `range startReloadChan`: waiting for a start signal.
    StartSignal,
    /// `doReload()`: the policy fetch is behind it.
    Reloading,
    /// `<-tick` after reporting done.
    Tick,
}

/// The combined state of both goroutines and their three channels.
#[derive(Debug)]
pub(super) struct V294<W> {
    pub(super) at: LoopAt,
    /// The tick channel's one slot.
    tick_waiting: bool,
    /// The start channel's one slot.
    start_signal: bool,
    /// The queue loop's flag.
    reloading: bool,
    /// Callbacks the coming or running reload will run when done.
    callbacks: Vec<W>,
}

impl<W> V294<W> {
    pub(super) fn new() -> Self {
        Self {
            at: LoopAt::FirstTick,
            tick_waiting: false,
            start_signal: false,
            reloading: false,
            callbacks: Vec::new(),
        }
    }

    /// The ticker fires. Returns true when a reload begins now.
    pub(super) fn tick(&mut self, may_start: bool) -> bool {
        match self.at {
            LoopAt::FirstTick | LoopAt::Tick => {
                self.at = LoopAt::StartSignal;
                self.try_start(may_start)
            }
            // Nobody reads the tick channel now: it keeps one tick, the rest are dropped.
            LoopAt::StartSignal | LoopAt::Reloading => {
                self.tick_waiting = true;
                false
            }
        }
    }

    /// A trigger reaches the queue loop. The bool is true when a reload begins now.
    pub(super) fn trigger(&mut self, waiter: Option<W>, may_start: bool) -> (TriggerOutcome, bool) {
        self.callbacks.extend(waiter);
        if self.reloading {
            let while_running = self.at == LoopAt::Reloading;
            return (TriggerOutcome::AlreadyQueued { while_running }, false);
        }
        self.reloading = true;
        // Capacity one, and empty: the flag was clear, so no signal is pending.
        self.start_signal = true;
        (TriggerOutcome::Queued, self.try_start(may_start))
    }

    /// The running reload reports done: every callback runs, the flag clears, and the reload
    /// loop takes its tick (at once when one is waiting). Returns the callbacks.
    pub(super) fn finish(&mut self) -> Vec<W> {
        if self.at != LoopAt::Reloading {
            return Vec::new();
        }
        self.reloading = false;
        self.at = LoopAt::Tick;
        if self.tick_waiting {
            self.tick_waiting = false;
            // No signal can be pending (the flag was set until now), so nothing starts here.
            self.at = LoopAt::StartSignal;
        }
        std::mem::take(&mut self.callbacks)
    }

    /// Every callback still held (shutdown).
    pub(super) fn abandon(&mut self) -> Vec<W> {
        std::mem::take(&mut self.callbacks)
    }

    fn try_start(&mut self, may_start: bool) -> bool {
        if self.at == LoopAt::StartSignal && self.start_signal && may_start {
            self.start_signal = false;
            self.at = LoopAt::Reloading;
            return true;
        }
        false
    }
}
