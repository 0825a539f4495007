//! The last look before a hang, and what the scenarios tell the verdict about themselves.
//!
//! When the run stops for a stall, the deadline or a silent gateway, every scenario still
//! waiting asks once more for its key before it hands in its record, with bounded concurrency
//! and one shared time budget. A retry schedule that sleeps longer than the stall timeout then
//! cannot turn a healthy gateway into a `hang`: those scenarios succeed here (their latency is
//! this probe's answer). How the waiting ones answered ("policy not found" or no answer at all)
//! is what tells a hang from a gateway that is gone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::client::{Endpoints, KeyAttempt};
use super::stop::StopCause;
use super::verdict::{KitLoad, RecheckCounts};

/// Time all re-check probes of a run share, from the first one.
pub const RECHECK_BUDGET: Duration = Duration::from_secs(10);
/// Re-check probes in flight at once.
const RECHECK_CONCURRENCY: usize = 64;
/// An add slower than this is a sign the dashboard mock (or the machine) is saturated.
pub const SLOW_ADD: Duration = Duration::from_secs(1);

/// Whether a run stopped for `cause` re-checks its waiting scenarios.
pub fn wanted(cause: Option<&StopCause>) -> bool {
    matches!(
        cause,
        Some(StopCause::Stall(_) | StopCause::Deadline | StopCause::Unresponsive(_))
    )
}

/// Counters the scenarios fill in and the verdict reads.
#[derive(Debug)]
pub struct EndTally {
    semaphore: Semaphore,
    budget_ends: Mutex<Option<Instant>>,
    probed: AtomicU64,
    succeeded: AtomicU64,
    not_found: AtomicU64,
    no_answer: AtomicU64,
    other: AtomicU64,
    out_of_time: AtomicU64,
    last_no_answer: Mutex<Option<String>>,
    last_not_found: Mutex<Option<String>>,
    outstanding_unheard: AtomicU64,
    trigger_failures: AtomicU64,
    slow_adds: AtomicU64,
    add_max_us: AtomicU64,
}

impl Default for EndTally {
    fn default() -> Self {
        Self {
            semaphore: Semaphore::new(RECHECK_CONCURRENCY),
            budget_ends: Mutex::new(None),
            probed: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
            no_answer: AtomicU64::new(0),
            other: AtomicU64::new(0),
            out_of_time: AtomicU64::new(0),
            last_no_answer: Mutex::new(None),
            last_not_found: Mutex::new(None),
            outstanding_unheard: AtomicU64::new(0),
            trigger_failures: AtomicU64::new(0),
            slow_adds: AtomicU64::new(0),
            add_max_us: AtomicU64::new(0),
        }
    }
}

impl EndTally {
    /// One last key creation for `policy_id`; `None` when the shared budget ran out first.
    pub async fn recheck(&self, endpoints: &Endpoints, policy_id: &str) -> Option<KeyAttempt> {
        let ends = {
            let mut slot = self.budget_ends.lock().ok()?;
            *slot.get_or_insert_with(|| Instant::now() + RECHECK_BUDGET)
        };
        let probe = async {
            let _permit = self.semaphore.acquire().await.ok()?;
            Some(endpoints.create_key(policy_id).await)
        };
        let answer = tokio::time::timeout_at(ends, probe).await.ok().flatten();
        self.probed.fetch_add(1, Relaxed);
        let (counter, keep) = match &answer {
            None => (&self.out_of_time, None),
            Some(KeyAttempt::Created) => (&self.succeeded, None),
            Some(KeyAttempt::NotYet(e)) => (&self.not_found, Some((&self.last_not_found, e))),
            Some(KeyAttempt::Transient(e)) => (&self.no_answer, Some((&self.last_no_answer, e))),
            Some(KeyAttempt::Fatal(_)) => (&self.other, None),
        };
        counter.fetch_add(1, Relaxed);
        if let Some((slot, text)) = keep
            && let Ok(mut slot) = slot.lock()
        {
            *slot = Some(text.clone());
        }
        answer
    }

    /// A scenario ended outstanding although its reload trigger reached no gateway.
    pub fn outstanding_unheard(&self) {
        self.outstanding_unheard.fetch_add(1, Relaxed);
    }

    /// A `reload`/`group` trigger call failed.
    pub fn trigger_failed(&self) {
        self.trigger_failures.fetch_add(1, Relaxed);
    }

    /// How long one add at the mock took.
    pub fn record_add(&self, took: Duration) {
        self.add_max_us.fetch_max(took.as_micros() as u64, Relaxed);
        if took > SLOW_ADD {
            self.slow_adds.fetch_add(1, Relaxed);
        }
    }

    /// What the re-check saw.
    pub fn recheck_counts(&self) -> RecheckCounts {
        let text = |m: &Mutex<Option<String>>| m.lock().ok().and_then(|t| t.clone());
        RecheckCounts {
            probed: self.probed.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            not_found: self.not_found.load(Relaxed),
            no_answer: self.no_answer.load(Relaxed),
            other: self.other.load(Relaxed),
            out_of_time: self.out_of_time.load(Relaxed),
            last_no_answer: text(&self.last_no_answer),
            last_not_found: text(&self.last_not_found),
        }
    }

    /// Outstanding scenarios whose own trigger went unheard.
    pub fn unheard_outstanding(&self) -> u64 {
        self.outstanding_unheard.load(Relaxed)
    }

    /// Failed `reload`/`group` trigger calls.
    pub fn trigger_failures(&self) -> u64 {
        self.trigger_failures.load(Relaxed)
    }

    /// The mock's add answer times as the saturation check reads them.
    pub fn fill_adds(&self, load: &mut KitLoad) {
        load.slow_adds = self.slow_adds.load(Relaxed);
        load.add_max_ms = self.add_max_us.load(Relaxed) as f64 / 1000.0;
    }
}
