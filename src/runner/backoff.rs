//! Retry schedule of key creation: exponential backoff with randomisation, per scenario.
//!
//! Written here rather than taken from a crate on purpose: the seed used cenkalti/backoff's
//! schedule (interval × multiplier, each wait drawn from `[d·(1−j), d·(1+j)]`, capped interval),
//! and reproducing it exactly matters for comparing with the seed's figures. The retry crates at
//! hand (backon) only add jitter on top of the interval, which shifts every latency upward.
//! Each scenario owns a seeded RNG, so runs are repeatable and scenarios do not share jitter.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::summary::BackoffConfig;

/// A retry schedule: first interval, growth, randomisation and cap.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffPolicy {
    /// Preset name (`seed`, `fine`) or `custom`.
    pub name: String,
    /// First interval.
    pub initial: Duration,
    /// Growth factor per attempt (≥ 1).
    pub multiplier: f64,
    /// Randomisation factor in `[0, 1)`.
    pub jitter: f64,
    /// Cap of the interval before randomisation.
    pub max_interval: Duration,
}

impl BackoffPolicy {
    /// The seed's schedule: 0.5 s, ×1.5, ±50 %, 60 s cap.
    pub fn seed() -> Self {
        Self {
            name: "seed".into(),
            initial: Duration::from_millis(500),
            multiplier: 1.5,
            jitter: 0.5,
            max_interval: Duration::from_secs(60),
        }
    }

    /// A finer schedule that shows reload latency with less quantisation: 50 ms, ×1.5, ±20 %,
    /// capped at 1 s so a policy is seen at most ~1.2 s after it arrived.
    pub fn fine() -> Self {
        Self {
            name: "fine".into(),
            initial: Duration::from_millis(50),
            multiplier: 1.5,
            jitter: 0.2,
            max_interval: Duration::from_secs(1),
        }
    }

    /// Parses `seed`, `fine` or `initial=500ms,multiplier=1.5,jitter=0.5,max=60s` (any subset,
    /// the rest taken from `seed`).
    pub fn parse(spec: &str) -> Result<Self, BackoffError> {
        match spec.trim() {
            "seed" => return Ok(Self::seed()),
            "fine" => return Ok(Self::fine()),
            _ => {}
        }
        let mut policy = Self {
            name: "custom".into(),
            ..Self::seed()
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| BackoffError::NotKeyValue(part.to_owned()))?;
            match key.trim() {
                "initial" => policy.initial = parse_duration(value)?,
                "max" => policy.max_interval = parse_duration(value)?,
                "multiplier" => policy.multiplier = parse_number(value)?,
                "jitter" => policy.jitter = parse_number(value)?,
                other => {
                    return Err(BackoffError::UnknownKey(other.to_owned()));
                }
            }
        }
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the values make a schedule that ends and grows.
    pub fn validate(&self) -> Result<(), BackoffError> {
        if self.initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if !(self.multiplier >= 1.0 && self.multiplier <= 10.0) {
            return Err(BackoffError::Multiplier(self.multiplier));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(BackoffError::Jitter(self.jitter));
        }
        if self.max_interval < self.initial {
            return Err(BackoffError::MaxBelowInitial);
        }
        Ok(())
    }

    /// The schedule as it appears in the summary.
    pub fn to_config(&self) -> BackoffConfig {
        BackoffConfig {
            name: self.name.clone(),
            initial_ms: self.initial.as_secs_f64() * 1000.0,
            multiplier: self.multiplier,
            jitter: self.jitter,
            max_interval_ms: self.max_interval.as_secs_f64() * 1000.0,
        }
    }

    /// The longest single wait the schedule can draw: the capped interval at its upper jitter.
    pub fn longest_wait(&self) -> Duration {
        self.max_interval.mul_f64(1.0 + self.jitter)
    }

    /// A fresh schedule for one scenario, its jitter drawn from its own RNG.
    pub fn start(&self, seed: u64) -> Backoff {
        Backoff {
            policy: self.clone(),
            current: self.initial.as_secs_f64(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

/// One scenario's position in its retry schedule.
#[derive(Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    current: f64,
    rng: SmallRng,
}

impl Backoff {
    /// The next wait: the current interval randomised by ±jitter; then the interval grows.
    pub fn next_wait(&mut self) -> Duration {
        let delta = self.policy.jitter * self.current;
        let low = self.current - delta;
        let high = self.current + delta;
        let wait = if delta > 0.0 {
            self.rng.random_range(low..=high)
        } else {
            self.current
        };
        let cap = self.policy.max_interval.as_secs_f64();
        self.current = (self.current * self.policy.multiplier).min(cap);
        Duration::from_secs_f64(wait.max(0.0))
    }
}

/// Why a `--backoff` spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum BackoffError {
    /// A part without `=`.
    #[error("`{0}` is not key=value")]
    NotKeyValue(String),
    /// A key the schedule does not have.
    #[error("unknown key `{0}` (use initial, multiplier, jitter, max)")]
    UnknownKey(String),
    /// A value that is not a duration.
    #[error("`{value}`: {source}")]
    Duration {
        /// The value as given.
        value: String,
        /// humantime's reason.
        #[source]
        source: humantime::DurationError,
    },
    /// A value that is not a number.
    #[error("`{value}`: {source}")]
    Number {
        /// The value as given.
        value: String,
        /// The parser's reason.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// `initial=0`.
    #[error("initial must be > 0")]
    ZeroInitial,
    /// A multiplier outside [1, 10].
    #[error("multiplier {0} must be in [1, 10]")]
    Multiplier(f64),
    /// A jitter outside [0, 1).
    #[error("jitter {0} must be in [0, 1)")]
    Jitter(f64),
    /// `max` below `initial`.
    #[error("max must be ≥ initial")]
    MaxBelowInitial,
}

fn parse_duration(value: &str) -> Result<Duration, BackoffError> {
    humantime::parse_duration(value.trim()).map_err(|source| BackoffError::Duration {
        value: value.to_owned(),
        source,
    })
}

fn parse_number(value: &str) -> Result<f64, BackoffError> {
    value
        .trim()
        .parse::<f64>()
        .map_err(|source| BackoffError::Number {
            value: value.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_schedule_stays_within_half_either_side_of_a_growing_interval() {
        let mut b = BackoffPolicy::seed().start(7);
        let mut interval = 0.5_f64;
        for _ in 0..40 {
            let wait = b.next_wait().as_secs_f64();
            assert!(wait >= interval * 0.5 - 1e-9, "{wait} < half of {interval}");
            assert!(wait <= interval * 1.5 + 1e-9, "{wait} > 1.5 × {interval}");
            interval = (interval * 1.5).min(60.0);
        }
        assert_eq!(interval, 60.0, "the interval reaches its cap");
    }

    #[test]
    fn scenarios_with_different_seeds_draw_different_jitter_and_same_seed_repeats() {
        let policy = BackoffPolicy::seed();
        let a: Vec<_> = (0..5)
            .map({
                let mut b = policy.start(1);
                move |_| b.next_wait()
            })
            .collect();
        let again: Vec<_> = (0..5)
            .map({
                let mut b = policy.start(1);
                move |_| b.next_wait()
            })
            .collect();
        let other: Vec<_> = (0..5)
            .map({
                let mut b = policy.start(2);
                move |_| b.next_wait()
            })
            .collect();
        assert_eq!(a, again);
        assert_ne!(a, other);
    }

    #[test]
    fn zero_jitter_gives_the_exact_geometric_schedule() {
        let policy = BackoffPolicy::parse("initial=100ms,multiplier=2,jitter=0,max=1s").unwrap();
        let mut b = policy.start(0);
        let waits: Vec<u128> = (0..6).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            BackoffPolicy::parse("initial=0s")
                .unwrap_err()
                .to_string()
                .contains("initial")
        );
        assert!(
            BackoffPolicy::parse("jitter=1.5")
                .unwrap_err()
                .to_string()
                .contains("jitter")
        );
        assert!(
            BackoffPolicy::parse("speed=3")
                .unwrap_err()
                .to_string()
                .contains("unknown key")
        );
        assert!(
            BackoffPolicy::parse("initial")
                .unwrap_err()
                .to_string()
                .contains("key=value")
        );
    }
}
