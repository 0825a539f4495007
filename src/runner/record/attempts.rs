//! Attempt outcomes as they happen: per-second counts by class for key creations and trigger
//! calls, the start times of unanswered attempts (for the near-reload finding), and the step
//! that turns them, with the collector's state, into the summary's `attempts` and
//! `time_to_usable`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::summary::attempts::{AttemptClass, near_reload};
use crate::summary::censored::{time_to_usable, waits_from_scheduled_us, weighted_ms_from_us};
use crate::summary::{AttemptCounts, AttemptSecond, AttemptStats, Summary};

use super::Collected;

/// Start times of unanswered attempts kept for the near-reload check; the rest are counted.
pub const MAX_UNANSWERED_TIMES: usize = 200_000;

/// An attempt near a reload: started within this of a policy fetch.
pub const NEAR_RELOAD_WINDOW: Duration = Duration::from_millis(500);

/// Which call an attempt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// `POST /tyk/keys/create`.
    KeyCreation,
    /// `/tyk/reload` or `/tyk/reload/group`.
    Trigger,
}

type ClassSlots = [AtomicU64; 6];

/// Per-second attempt outcomes, shared by every scenario task.
#[derive(Debug)]
pub struct AttemptRecorder {
    origin: Instant,
    key: Vec<ClassSlots>,
    trigger: Vec<ClassSlots>,
    scenarios_with_timeout: AtomicU64,
    unanswered_ms: Mutex<Vec<u64>>,
}

impl AttemptRecorder {
    /// A recorder of `seconds` slots from `origin` (the last slot absorbs later events).
    pub fn new(origin: Instant, seconds: usize) -> Self {
        let slots = || {
            (0..seconds.max(1))
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect()
        };
        Self {
            origin,
            key: slots(),
            trigger: slots(),
            scenarios_with_timeout: AtomicU64::new(0),
            unanswered_ms: Mutex::new(Vec::new()),
        }
    }

    fn slot(&self, at: Instant) -> usize {
        let second = at.saturating_duration_since(self.origin).as_secs() as usize;
        second.min(self.key.len() - 1)
    }

    /// One attempt of `kind` started at `started`, ended at `ended` in `class`, after
    /// `connect_timeouts` connects abandoned and retried at once (each counted as well).
    pub fn record(
        &self,
        kind: AttemptKind,
        started: Instant,
        ended: Instant,
        class: AttemptClass,
        connect_timeouts: u32,
    ) {
        let slots = match kind {
            AttemptKind::KeyCreation => &self.key,
            AttemptKind::Trigger => &self.trigger,
        };
        let slot = &slots[self.slot(ended)];
        slot[class.index()].fetch_add(1, Ordering::Relaxed);
        if connect_timeouts > 0 {
            slot[AttemptClass::ConnectTimedOut.index()]
                .fetch_add(u64::from(connect_timeouts), Ordering::Relaxed);
        }
        if class.is_unanswered() || connect_timeouts > 0 {
            let at = started.saturating_duration_since(self.origin).as_millis() as u64;
            let mut times = self
                .unanswered_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if times.len() < MAX_UNANSWERED_TIMES {
                times.push(at);
            }
        }
    }

    /// A scenario had its first key-creation attempt end in the request timeout.
    pub fn record_scenario_timed_out(&self) {
        self.scenarios_with_timeout.fetch_add(1, Ordering::Relaxed);
    }

    /// The per-second series for the first `seconds` seconds.
    pub fn samples(&self, seconds: usize) -> Vec<AttemptSecond> {
        let n = seconds.clamp(1, self.key.len());
        (0..n)
            .map(|i| AttemptSecond {
                second: i as u64,
                key_creations: counts(&self.key[i]),
                triggers: counts(&self.trigger[i]),
            })
            .collect()
    }

    /// Totals over every slot.
    pub fn totals(&self, kind: AttemptKind) -> AttemptCounts {
        let slots = match kind {
            AttemptKind::KeyCreation => &self.key,
            AttemptKind::Trigger => &self.trigger,
        };
        let mut sum = [0u64; 6];
        for slot in slots {
            for (total, n) in sum.iter_mut().zip(slot) {
                *total += n.load(Ordering::Relaxed);
            }
        }
        AttemptCounts::from_array(sum)
    }

    fn unanswered_times(&self) -> Vec<u64> {
        self.unanswered_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn counts(slot: &ClassSlots) -> AttemptCounts {
    AttemptCounts::from_array(std::array::from_fn(|i| slot[i].load(Ordering::Relaxed)))
}

/// Fills `summary.attempts` and `summary.time_to_usable` from what the load recorded.
///
/// Reads from `summary` what is already there: the config (trigger, request timeout), the
/// scheduled count, and for `notify` the mock's publish counts (`reloads`). `elapsed` is the
/// load's start to its stop; `fetch_offsets_s` the accepted policy fetches, seconds since then.
pub fn fill_derived(
    summary: &mut Summary,
    collected: &Collected,
    recorder: &AttemptRecorder,
    elapsed: Duration,
    fetch_offsets_s: &[f64],
) {
    let end_ms = elapsed.as_secs_f64() * 1_000.0;
    summary.time_to_usable = Some(time_to_usable(
        &weighted_ms_from_us(&collected.latency_us),
        &waits_from_scheduled_us(&collected.censored_scheduled_us, end_ms),
        summary.scenarios.scheduled,
    ));
    let (triggers, counted_by) = match summary.config.trigger.as_str() {
        "notify" => {
            let failed = summary.reloads.publish_errors;
            let counts = AttemptCounts {
                ok: summary.reloads.triggers_sent.saturating_sub(failed),
                other: failed,
                ..AttemptCounts::default()
            };
            (counts, "mock")
        }
        "reload" | "group" => (recorder.totals(AttemptKind::Trigger), "runner"),
        _ => (AttemptCounts::default(), "none"),
    };
    let fetches_ms: Vec<u64> = fetch_offsets_s
        .iter()
        .map(|s| (s * 1_000.0).round() as u64)
        .collect();
    let request_timeout = Duration::from_secs_f64(summary.config.request_timeout_s.max(0.0));
    summary.attempts = Some(AttemptStats {
        key_creations: recorder.totals(AttemptKind::KeyCreation),
        triggers,
        triggers_counted_by: counted_by.to_owned(),
        connect_timeout_ms: super::super::client::connect_timeout(request_timeout).as_secs_f64()
            * 1_000.0,
        scenarios_with_timeout: recorder.scenarios_with_timeout.load(Ordering::Relaxed),
        near_reload: near_reload(
            &recorder.unanswered_times(),
            &fetches_ms,
            NEAR_RELOAD_WINDOW.as_millis() as u64,
            end_ms as u64,
        ),
        timeline: recorder.samples(elapsed.as_secs() as usize + 1),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_classes_land_in_the_second_the_attempt_ended() {
        let origin = Instant::now();
        let r = AttemptRecorder::new(origin, 3);
        let s = Duration::from_secs(1);
        let key = AttemptKind::KeyCreation;
        r.record(key, origin, origin, AttemptClass::NotYet, 0);
        r.record(key, origin, origin + s, AttemptClass::TimedOut, 0);
        r.record(key, origin + s, origin + s * 2, AttemptClass::Ok, 2);
        r.record(
            AttemptKind::Trigger,
            origin,
            origin,
            AttemptClass::RefusedOrReset,
            0,
        );
        r.record(key, origin, origin + s * 50, AttemptClass::Other, 0); // clamps into the last
        let samples = r.samples(3);
        assert_eq!(samples[0].key_creations.not_yet, 1);
        assert_eq!(samples[0].triggers.refused_or_reset, 1);
        assert_eq!(samples[1].key_creations.timed_out, 1);
        assert_eq!(samples[2].key_creations.ok, 1);
        assert_eq!(samples[2].key_creations.connect_timed_out, 2);
        assert_eq!(samples[2].key_creations.other, 1);
        let totals = r.totals(key);
        assert_eq!(totals, AttemptCounts::from_array([1, 1, 1, 2, 0, 1]));
        let summed: u64 = samples.iter().map(|x| x.key_creations.total()).sum();
        assert_eq!(
            summed,
            totals.total(),
            "the series adds up to the run's totals"
        );
        // Unanswered attempts keep their start: the timeout, the connect retries, the trigger.
        assert_eq!(r.unanswered_times(), vec![0, 1_000, 0]);
    }
}
