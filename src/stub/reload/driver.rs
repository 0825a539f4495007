//! The thin task around a [`Scheduler`]: delivers the ticks of a Go-like ticker, runs the reload
//! the machine asks for, and reports it done. It decides nothing itself.
//!
//! The ticker keeps firing while a reload runs (the machine buffers one tick and drops the rest,
//! as Go's channel does), so the reload is a future polled beside the ticker, never awaited in
//! line. Triggers arrive from other tasks through [`ReloadQueue::trigger`], which wakes the
//! driver when the machine says a reload begins now.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Scheduler, TriggerOutcome};
use crate::stub::ReloadMode;
use crate::stub::state::StubState;

/// A scheduler shared by the trigger sources and the driver.
#[derive(Debug)]
pub struct ReloadQueue<W> {
    scheduler: Mutex<Scheduler<W>>,
    wake: Notify,
    /// Set once the driver has delivered its first tick.
    first_tick: tokio::sync::watch::Sender<bool>,
}

impl<W> ReloadQueue<W> {
    /// A queue with nothing pending (see [`Scheduler::new`]).
    pub fn new(mode: ReloadMode, stall_after_reloads: Option<u64>) -> Self {
        Self {
            scheduler: Mutex::new(Scheduler::new(mode, stall_after_reloads)),
            wake: Notify::new(),
            first_tick: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Resolves once the driver has delivered its first tick (at once if it has).
    pub async fn first_tick_taken(&self) {
        let mut seen = self.first_tick.subscribe();
        // The sender lives as long as `self`: an error cannot happen while we borrow it.
        let _ = seen.wait_for(|taken| *taken).await;
    }

    /// The scheduler; a panic elsewhere must not wedge every later trigger, so poison is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Scheduler<W>> {
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one trigger and wakes the driver when it starts a reload.
    pub fn trigger(&self, waiter: Option<W>) -> TriggerOutcome {
        let (outcome, started) = self.lock().trigger(waiter);
        if started {
            self.wake.notify_one();
        }
        outcome
    }
}

/// Drives `queue` until `shutdown`: a tick every `period` (the first one `period` after the
/// call, like `time.Tick`), `reload()` whenever the machine begins one, `served(waiters)` when
/// it ends. Waiters still held at shutdown are dropped.
pub async fn drive_reloads<W, R, F>(
    queue: &ReloadQueue<W>,
    period: Duration,
    mut reload: R,
    mut served: impl FnMut(Vec<W>),
    shutdown: &CancellationToken,
) where
    R: FnMut() -> F,
    F: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    // Go's ticker stays on its grid and drops what nobody reads; the machine does the dropping,
    // and the driver never falls behind (it only flips state), so `Skip` never comes into play.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut running: Option<Pin<Box<F>>> = None;
    loop {
        if running.is_none() && queue.lock().take_start() {
            running = Some(Box::pin(reload()));
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = async {
                match running.as_mut() {
                    Some(work) => work.await,
                    None => std::future::pending().await,
                }
            } => {
                running = None;
                let (waiters, _) = queue.lock().finish();
                served(waiters);
            }
            _ = ticker.tick() => {
                queue.lock().tick();
                queue.first_tick.send_replace(true);
            }
            _ = queue.wake.notified() => {}
        }
    }
    drop(queue.lock().abandon());
}

/// The stub's reload loop: [`drive_reloads`] with [`StubState::reload_policies`] as the work
/// and the `block=true` callers as the waiters.
pub async fn run_reload_loop(state: Arc<StubState>, tick: Duration, shutdown: CancellationToken) {
    let work = || {
        let state = state.clone();
        async move {
            state.reload_policies().await;
            tracing::info!("API reload complete");
        }
    };
    let served = |waiters: Vec<oneshot::Sender<()>>| {
        for waiter in waiters {
            // A caller that gave up has dropped its receiver: nothing to tell.
            let _ = waiter.send(());
        }
    };
    drive_reloads(&state.reloads, tick, work, served, &shutdown).await;
}
