//! The fixed loop (678e32599, v2.9.4.4, v3.1+, v5; protocol §5) as a pure state.
//!
//! Every trigger appends its callback to a mutex-protected list ("Reload queued"). On every tick
//! the reload loop takes the whole list; if it is non-empty it reloads once, then runs the
//! callbacks it took. The reload runs inside the loop's `case <-tick:`, so ticks during it wait
//! in the ticker's one slot (the rest are dropped): after a reload longer than the period the
//! next one starts at once with whatever queued meanwhile. None is lost.

/// The loop, its one-slot tick channel and the callback list.
#[derive(Debug)]
pub(super) struct Fixed<W> {
    pub(super) running: bool,
    tick_waiting: bool,
    /// Triggers queued for the next tick (waiters or not).
    queued: u64,
    list: Vec<W>,
    /// Callbacks taken by the running reload.
    taken: Vec<W>,
}

impl<W> Fixed<W> {
    pub(super) fn new() -> Self {
        Self {
            running: false,
            tick_waiting: false,
            queued: 0,
            list: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// The ticker fires. Returns true when a reload begins now.
    pub(super) fn tick(&mut self, may_start: bool) -> bool {
        if self.running {
            self.tick_waiting = true;
            return false;
        }
        self.take_list(may_start)
    }

    /// A trigger: queued for the next tick, never starts a reload itself.
    pub(super) fn trigger(&mut self, waiter: Option<W>) {
        self.queued += 1;
        self.list.extend(waiter);
    }

    /// The running reload ended: returns the callbacks it took; the bool is true when the next
    /// reload begins at once (a tick was waiting and triggers queued meanwhile).
    pub(super) fn finish(&mut self, may_start: bool) -> (Vec<W>, bool) {
        if !self.running {
            return (Vec::new(), false);
        }
        self.running = false;
        let served = std::mem::take(&mut self.taken);
        let next = self.tick_waiting && {
            self.tick_waiting = false;
            self.take_list(may_start)
        };
        (served, next)
    }

    /// Every callback still held (shutdown).
    pub(super) fn abandon(&mut self) -> Vec<W> {
        let mut all = std::mem::take(&mut self.list);
        all.append(&mut self.taken);
        all
    }

    fn take_list(&mut self, may_start: bool) -> bool {
        if self.queued == 0 || !may_start {
            return false;
        }
        self.queued = 0;
        self.taken = std::mem::take(&mut self.list);
        self.running = true;
        true
    }
}
