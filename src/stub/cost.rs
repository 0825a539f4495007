//! The reload cost model: what one reload costs and where in it the new policies become visible.
//!
//! A reload of `n` policies takes `base + per_policy × n` (wall time, from the fetch at its
//! start). The new policy set is swapped in (`syncPolicies`, "Policies found (N total)") after
//! `base + swap_share × per_policy × n`; the rest is the API part of the reload, during which the
//! reload still counts as running (v2.9.4's loss window goes on). The real work — parsing the
//! fetched body and, in v2.9.4 mode, one log line per policy — is done inside the first phase;
//! [`ReloadWork::Busy`] burns CPU for whatever is left of each phase, [`ReloadWork::Sleep`]
//! sleeps it. Both modes of the stub use the same model: they differ only in scheduling.
//! docs/stub-calibration.md says which real figure each default reproduces.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How the part of a reload's cost beyond its real work is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReloadWork {
    /// Burn CPU on a blocking thread until the modelled time has passed, as a real gateway's
    /// reload competes for the cores with everything else.
    Busy,
    /// Sleep instead: the same timing without the CPU load (cheap tests).
    Sleep,
}

/// One reload's modelled cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReloadCost {
    /// Part that does not depend on the policy count (spent before the swap).
    pub base: Duration,
    /// Part per policy in the fetched list.
    pub per_policy: Duration,
    /// Share (0–1) of the per-policy part spent before the swap.
    pub swap_share: f64,
    /// How the cost is spent.
    pub work: ReloadWork,
}

impl ReloadCost {
    /// A model that costs nothing: reloads are as fast as the real work allows.
    pub const FREE: ReloadCost = ReloadCost {
        base: Duration::ZERO,
        per_policy: Duration::ZERO,
        swap_share: 1.0,
        work: ReloadWork::Sleep,
    };

    fn per_policy_total(&self, policies: usize) -> Duration {
        self.per_policy
            .saturating_mul(u32::try_from(policies).unwrap_or(u32::MAX))
    }

    /// Fetch → swap: the earliest the new policies become visible.
    pub fn until_swap(&self, policies: usize) -> Duration {
        self.base
            .saturating_add(self.per_policy_total(policies).mul_f64(self.swap_share))
    }

    /// Swap → done: the API part of the reload.
    pub fn after_swap(&self, policies: usize) -> Duration {
        self.per_policy_total(policies)
            .mul_f64(1.0 - self.swap_share)
    }

    /// The whole reload, fetch to done.
    pub fn total(&self, policies: usize) -> Duration {
        self.until_swap(policies)
            .saturating_add(self.after_swap(policies))
    }

    /// One line for logs and `make selftest`: "200 ms + 22 µs/policy (1.97 s at 80,400), busy".
    pub fn describe(&self, policies: usize) -> String {
        let work = match self.work {
            ReloadWork::Busy => "CPU-burning",
            ReloadWork::Sleep => "sleeping",
        };
        format!(
            "{} ms + {} µs/policy ({:.2} s at {policies} policies, swap after {:.0} %), {work}",
            self.base.as_millis(),
            self.per_policy.as_micros(),
            self.total(policies).as_secs_f64(),
            self.swap_share * 100.0
        )
    }
}

/// Burns CPU on the calling thread until `deadline` or until `stop` is cancelled. Returns the
/// rounds of busy work done (kept opaque to the optimiser).
pub fn burn_until(deadline: Instant, stop: &CancellationToken) -> u64 {
    let mut rounds = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while Instant::now() < deadline && !stop.is_cancelled() {
        // ~10 µs of integer work between clock reads: cheap to check, impossible to elide.
        for _ in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
        }
        rounds = rounds.wrapping_add(std::hint::black_box(state) & 1);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ReloadCost {
        ReloadCost {
            base: Duration::from_millis(200),
            per_policy: Duration::from_micros(22),
            swap_share: 0.6,
            work: ReloadWork::Busy,
        }
    }

    #[test]
    fn the_model_splits_base_and_per_policy_cost_at_the_swap() {
        let m = model();
        assert_eq!(
            m.total(80_400),
            Duration::from_micros(200_000 + 22 * 80_400)
        );
        assert_eq!(m.until_swap(0), Duration::from_millis(200));
        assert_eq!(m.after_swap(0), Duration::ZERO);
        let sum = m.until_swap(80_400) + m.after_swap(80_400);
        assert!(sum.abs_diff(m.total(80_400)) < Duration::from_micros(2));
        assert!(m.until_swap(80_400) > Duration::from_millis(1_200));
        assert!(
            m.describe(80_400).contains("1.97 s at 80400"),
            "{}",
            m.describe(80_400)
        );
    }

    #[test]
    fn burning_stops_at_the_deadline_or_when_cancelled() {
        let stop = CancellationToken::new();
        let began = Instant::now();
        burn_until(began + Duration::from_millis(20), &stop);
        assert!(began.elapsed() >= Duration::from_millis(20));
        stop.cancel();
        let began = Instant::now();
        burn_until(began + Duration::from_secs(60), &stop);
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "a cancelled burn returns"
        );
    }
}
