//! Attempt outcomes by class: what each key creation and trigger call ended in, whether the
//! failures cluster around reloads (a gateway finding), and the sentences that say when these
//! shape the figures ("312 attempts timed out: the tail includes the kit's 5 s timeout").
//!
//! Pure functions; the runner's client decides the class of each answer.

use crate::summary::{AttemptCounts, NearReload, Summary};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptClass {
    /// Answered 200.
    Ok,
    /// "policy not found": not loaded yet.
    NotYet,
    /// No answer within the request timeout.
    TimedOut,
    /// The TCP connect did not complete within the connect timeout.
    ConnectTimedOut,
    /// Connection refused, reset, or closed before the answer.
    RefusedOrReset,
    /// Anything else.
    Other,
}

impl AttemptClass {
    /// Every class, in the order of [`AttemptCounts`]'s fields.
    pub const ALL: [AttemptClass; 6] = [
        AttemptClass::Ok,
        AttemptClass::NotYet,
        AttemptClass::TimedOut,
        AttemptClass::ConnectTimedOut,
        AttemptClass::RefusedOrReset,
        AttemptClass::Other,
    ];

    /// Position in [`AttemptClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// True when the gateway gave no answer at all (timeouts, refused, reset).
    pub fn is_unanswered(self) -> bool {
        matches!(
            self,
            AttemptClass::TimedOut | AttemptClass::ConnectTimedOut | AttemptClass::RefusedOrReset
        )
    }
}

impl AttemptCounts {
    /// Counts from one number per class, in [`AttemptClass::ALL`] order.
    pub fn from_array(n: [u64; 6]) -> Self {
        Self {
            ok: n[0],
            not_yet: n[1],
            timed_out: n[2],
            connect_timed_out: n[3],
            refused_or_reset: n[4],
            other: n[5],
        }
    }

    /// Adds one attempt of `class`.
    pub fn add(&mut self, class: AttemptClass) {
        *match class {
            AttemptClass::Ok => &mut self.ok,
            AttemptClass::NotYet => &mut self.not_yet,
            AttemptClass::TimedOut => &mut self.timed_out,
            AttemptClass::ConnectTimedOut => &mut self.connect_timed_out,
            AttemptClass::RefusedOrReset => &mut self.refused_or_reset,
            AttemptClass::Other => &mut self.other,
        } += 1;
    }

    /// Every attempt counted.
    pub fn total(&self) -> u64 {
        self.ok
            .saturating_add(self.not_yet)
            .saturating_add(self.failed())
    }

    /// Attempts that failed for another reason than "not yet".
    pub fn failed(&self) -> u64 {
        self.timed_out
            .saturating_add(self.connect_timed_out)
            .saturating_add(self.refused_or_reset)
            .saturating_add(self.other)
    }
}

/// Smallest number of failures near fetches that can be a finding.
const MIN_FINDING: u64 = 5;

/// Whether failed attempts cluster around policy fetches.
///
/// `failures_ms` are the start times of attempts that got no answer, `fetches_ms` the policy
/// fetches, both ms since the load started; `run_ms` is the run's length. A failure is near a
/// reload when it started within `window_ms` of a fetch. It is a *finding* when at least
/// [`MIN_FINDING`] are, at least half of all failures are, and that share is at least 1.5× the
/// share of the run the windows cover (so reloads every second do not make every failure look
/// like one).
pub fn near_reload(
    failures_ms: &[u64],
    fetches_ms: &[u64],
    window_ms: u64,
    run_ms: u64,
) -> NearReload {
    let mut fetches = fetches_ms.to_vec();
    fetches.sort_unstable();
    let near = |t: u64| {
        let i = fetches.partition_point(|&f| f < t.saturating_sub(window_ms));
        fetches
            .get(i)
            .is_some_and(|&f| f <= t.saturating_add(window_ms))
    };
    let near_fetch = failures_ms.iter().filter(|&&t| near(t)).count() as u64;
    let failed = failures_ms.len() as u64;
    let window_share = covered_share(&fetches, window_ms, run_ms);
    let near_share = if failed == 0 {
        0.0
    } else {
        near_fetch as f64 / failed as f64
    };
    NearReload {
        window_ms: window_ms as f64,
        failed_attempts: failed,
        near_fetch,
        window_share,
        finding: near_fetch >= MIN_FINDING && near_share >= 0.5 && near_share >= 1.5 * window_share,
    }
}

/// Share of `[0, run_ms]` within `window_ms` of a (sorted) fetch.
fn covered_share(sorted_fetches: &[u64], window_ms: u64, run_ms: u64) -> f64 {
    if run_ms == 0 {
        return 0.0;
    }
    let mut covered = 0u64;
    let mut reach = 0u64; // end of the union so far
    for &f in sorted_fetches {
        let start = f.saturating_sub(window_ms).max(reach).min(run_ms);
        let end = f.saturating_add(window_ms).min(run_ms);
        if end > start {
            covered += end - start;
        }
        reach = reach.max(end);
    }
    covered as f64 / run_ms as f64
}

/// Sentences for the verdict block when attempt outcomes shape the figures; empty otherwise.
pub fn attempt_notes(s: &Summary) -> Vec<String> {
    let Some(a) = &s.attempts else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    let k = &a.key_creations;
    if k.timed_out > 0 {
        notes.push(format!(
            "{} key-creation attempts timed out (in {} scenarios): the latency tail includes \
             the kit's {} s request timeout",
            k.timed_out,
            a.scenarios_with_timeout,
            trim(s.config.request_timeout_s)
        ));
    }
    if k.connect_timed_out > 0 {
        notes.push(format!(
            "{} connects to the gateway took longer than {} ms and were retried at once",
            k.connect_timed_out,
            trim(a.connect_timeout_ms)
        ));
    }
    if k.refused_or_reset > 0 {
        notes.push(format!(
            "{} key-creation attempts were refused or reset by the gateway",
            k.refused_or_reset
        ));
    }
    if k.other > 0 {
        notes.push(format!(
            "{} key-creation attempts got an unexpected answer",
            k.other
        ));
    }
    let t = &a.triggers;
    if t.failed() > 0 {
        notes.push(if a.triggers_counted_by == "mock" {
            format!(
                "{} of {} PolicyChanged notifications failed to publish",
                t.failed(),
                t.total()
            )
        } else {
            format!(
                "{} of {} trigger calls failed ({} timed out, {} connect timeouts, {} refused or \
                 reset, {} other)",
                t.failed(),
                t.total(),
                t.timed_out,
                t.connect_timed_out,
                t.refused_or_reset,
                t.other
            )
        });
    }
    let n = &a.near_reload;
    if n.finding {
        notes.push(format!(
            "gateway finding: {} of {} unanswered attempts started within {} ms of a policy \
             fetch (those windows cover {:.0} % of the run): the gateway drops requests while \
             it reloads (Tyk #1402's symptom)",
            n.near_fetch,
            n.failed_attempts,
            trim(n.window_ms),
            n.window_share * 100.0
        ));
    }
    notes
}

/// A number without a trailing `.0`.
fn trim(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::AttemptStats;

    #[test]
    fn counts_add_up_by_class() {
        let mut c = AttemptCounts::default();
        for class in AttemptClass::ALL {
            c.add(class);
        }
        c.add(AttemptClass::TimedOut);
        assert_eq!(c.total(), 7);
        assert_eq!(c.failed(), 5);
        assert_eq!(c, AttemptCounts::from_array([1, 1, 2, 1, 1, 1]));
        assert!(AttemptClass::RefusedOrReset.is_unanswered());
        assert!(!AttemptClass::NotYet.is_unanswered());
        assert!(!AttemptClass::Other.is_unanswered());
    }

    #[test]
    fn failures_clustered_at_fetches_are_a_finding() {
        // Fetches at 1 s, 3 s, 5 s of a 10 s run; windows of 250 ms cover 15 % of it.
        let fetches = [1_000, 3_000, 5_000];
        let failures = [900, 1_100, 1_200, 2_950, 3_100, 5_010, 8_000];
        let n = near_reload(&failures, &fetches, 250, 10_000);
        assert_eq!((n.failed_attempts, n.near_fetch), (7, 6));
        assert!((n.window_share - 0.15).abs() < 1e-9, "{}", n.window_share);
        assert!(n.finding);
    }

    #[test]
    fn failures_spread_over_the_run_or_too_few_are_no_finding() {
        let fetches = [1_000, 3_000, 5_000];
        let spread: Vec<u64> = (0..100).map(|i| i * 100).collect();
        let n = near_reload(&spread, &fetches, 250, 10_000);
        assert!(!n.finding, "{n:?}");
        let few = near_reload(&[1_000, 3_000], &fetches, 250, 10_000);
        assert_eq!(few.near_fetch, 2);
        assert!(!few.finding);
        // Reloads every 500 ms with a 250 ms window cover the whole run: nothing can stand out.
        let dense: Vec<u64> = (0..=20).map(|i| i * 500).collect();
        let n = near_reload(&spread, &dense, 250, 10_000);
        assert!((n.window_share - 1.0).abs() < 1e-9);
        assert!(!n.finding);
        let none = near_reload(&[], &[], 250, 0);
        assert_eq!((none.failed_attempts, none.window_share), (0, 0.0));
    }

    #[test]
    fn notes_say_when_timeouts_and_failed_triggers_shape_the_figures() {
        let mut s = crate::summary::set::sample_summary();
        assert!(attempt_notes(&s).is_empty(), "no attempt stats, no notes");
        s.attempts = Some(AttemptStats {
            key_creations: AttemptCounts {
                ok: 2_500,
                not_yet: 4_000,
                timed_out: 312,
                ..Default::default()
            },
            triggers: AttemptCounts {
                ok: 2_473,
                timed_out: 20,
                refused_or_reset: 7,
                ..Default::default()
            },
            triggers_counted_by: "runner".into(),
            connect_timeout_ms: 1_000.0,
            scenarios_with_timeout: 290,
            ..Default::default()
        });
        let notes = attempt_notes(&s);
        assert_eq!(
            notes,
            [
                "312 key-creation attempts timed out (in 290 scenarios): the latency tail \
                 includes the kit's 5 s request timeout",
                "27 of 2500 trigger calls failed (20 timed out, 0 connect timeouts, 7 refused or \
                 reset, 0 other)"
            ]
        );
    }
}
