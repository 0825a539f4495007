//! Time to usable over EVERY scheduled scenario, the outstanding ones censored at their wait.
//!
//! The survivors' percentiles (`latency_ms`) describe only the scenarios that got their key: a
//! run that lost 20 % of its policies can have a faster p99 than one that lost none. This module
//! counts the lost ones too, with a plain censored empirical CDF (every scenario's wait is known,
//! so no Kaplan–Meier weighting is needed):
//!
//! - a scenario that got its key is *usable* at its latency (exact);
//! - one that did not (outstanding, failed, never started) is *censored* at its wait: the time
//!   from its scheduled start to the end of the run. All we know is that it was not usable then.
//! - `share usable by t` = usable scenarios with latency ≤ t / all scheduled scenarios. It is
//!   exact when every censored scenario waited at least t, else a lower bound (the count of
//!   censored scenarios that waited less is reported with it).
//! - the quantile q is the smallest t where that share reaches q. When it never does (more than
//!   1 − q of the scenarios never got their key) the quantile is unknown but larger than the
//!   `⌈q·n⌉`-th smallest of all lower bounds (latencies and waits): reported as "> X s".
//!
//! Pure functions; the runner feeds them histograms, `diff` reads their output.

use hdrhistogram::Histogram;

use crate::summary::{CensoredQuantile, ShareUsableBy, Summary, TimeToUsable};

/// The instants (seconds) at which the share of usable scenarios is reported.
pub const SHARE_BY_S: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 30.0];

/// How the statistic is computed, as `summary.json` names it.
pub const METHOD: &str = "censored empirical CDF over all scheduled scenarios; outstanding, failed \
     and unstarted scenarios censored at their wait (scheduled start to end of run)";

/// `(value in ms, how many scenarios had it)`, any order.
pub type Weighted = (f64, u64);

/// Time to usable of `total` scheduled scenarios: `usable` latencies and `censored` waits (ms).
///
/// Scenarios beyond the two lists (`total` larger than their counts: records that never
/// arrived, starts that never happened) are censored at 0 ms, the only wait known for sure.
pub fn time_to_usable(usable: &[Weighted], censored: &[Weighted], total: u64) -> TimeToUsable {
    let clean = |v: &[Weighted]| -> Vec<Weighted> {
        let mut v: Vec<Weighted> = v
            .iter()
            .filter(|(ms, n)| *n > 0 && !ms.is_nan())
            .map(|&(ms, n)| (ms.max(0.0), n))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let usable = clean(usable);
    let mut censored = clean(censored);
    let usable_n = weight(&usable);
    let censored_listed = weight(&censored);
    let total = total.max(usable_n.saturating_add(censored_listed));
    let missing = total.saturating_sub(usable_n.saturating_add(censored_listed));
    if missing > 0 {
        censored.insert(0, (0.0, missing));
    }
    let censored_n = censored_listed.saturating_add(missing);
    let share_usable_by = SHARE_BY_S
        .iter()
        .map(|&s| {
            let t = s * 1_000.0;
            let by = count_at_or_below(&usable, t);
            ShareUsableBy {
                within_s: s,
                usable: by,
                share: ratio(by, total),
                censored_earlier: count_below(&censored, t),
            }
        })
        .collect();
    TimeToUsable {
        method: METHOD.to_owned(),
        scenarios: total,
        usable: usable_n,
        censored: censored_n,
        longest_wait_ms: censored.last().map(|w| w.0),
        p50: quantile(&usable, &censored, total, 0.5),
        p90: quantile(&usable, &censored, total, 0.9),
        share_usable_by,
    }
}

/// The censored quantile `q` (see the module doc); `None` fields when nothing was scheduled.
fn quantile(usable: &[Weighted], censored: &[Weighted], total: u64, q: f64) -> CensoredQuantile {
    if total == 0 {
        return CensoredQuantile {
            ms: None,
            reached: false,
        };
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    if let Some(ms) = kth(usable.iter().copied(), rank) {
        return CensoredQuantile {
            ms: Some(ms),
            reached: true,
        };
    }
    let mut bounds: Vec<Weighted> = usable.iter().chain(censored).copied().collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    CensoredQuantile {
        ms: kth(bounds.into_iter(), rank),
        reached: false,
    }
}

/// The `rank`-th smallest (1-based) value of ascending weighted samples.
fn kth(sorted: impl Iterator<Item = Weighted>, rank: u64) -> Option<f64> {
    let mut seen = 0u64;
    for (ms, n) in sorted {
        seen = seen.saturating_add(n);
        if seen >= rank {
            return Some(ms);
        }
    }
    None
}

/// Total weight, saturating (hostile summaries can hold absurd counts).
fn weight(samples: &[Weighted]) -> u64 {
    samples.iter().fold(0u64, |sum, w| sum.saturating_add(w.1))
}

fn count_at_or_below(sorted: &[Weighted], t: f64) -> u64 {
    let below: Vec<Weighted> = sorted.iter().take_while(|w| w.0 <= t).copied().collect();
    weight(&below)
}

fn count_below(sorted: &[Weighted], t: f64) -> u64 {
    let below: Vec<Weighted> = sorted.iter().take_while(|w| w.0 < t).copied().collect();
    weight(&below)
}

fn ratio(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        n as f64 / total as f64
    }
}

/// The recorded values of a histogram in microseconds as weighted milliseconds.
pub fn weighted_ms_from_us(h: &Histogram<u64>) -> Vec<Weighted> {
    h.iter_recorded()
        .map(|v| {
            let us = h.median_equivalent(v.value_iterated_to());
            (us as f64 / 1_000.0, v.count_at_value())
        })
        .collect()
}

/// Waits of censored scenarios: `end_ms − scheduled` for each scheduled offset (µs histogram).
pub fn waits_from_scheduled_us(scheduled_us: &Histogram<u64>, end_ms: f64) -> Vec<Weighted> {
    weighted_ms_from_us(scheduled_us)
        .into_iter()
        .map(|(at, n)| ((end_ms - at).max(0.0), n))
        .collect()
}

/// Time to usable for a summary written before it was recorded (schema 1), from what that
/// summary kept: the survivors' histogram, the counts, and the run's length.
///
/// The outstanding scenarios' waits are not in such a summary; each is taken as the run's
/// length minus the load's duration (the wait of the last scheduled scenario, a lower bound
/// for every one of them). `None` when the histogram cannot be read.
pub fn derive_for_old_summary(s: &Summary) -> Option<TimeToUsable> {
    let usable = if s.latency_ms.count == 0 {
        Vec::new()
    } else {
        let h = crate::summary::histogram::decode_histogram(&s.latency_ms.histogram_b64).ok()?;
        weighted_ms_from_us(&h)
    };
    let usable_n: u64 = usable.iter().map(|w| w.1).sum();
    let run_s = run_length_s(&s.started_at, &s.finished_at).unwrap_or(0.0);
    let wait_ms = ((run_s - s.config.duration_s) * 1_000.0).max(0.0);
    // Every scheduled scenario the histogram does not hold was not usable at the end.
    let censored = [(wait_ms, s.scenarios.scheduled.saturating_sub(usable_n))];
    Some(time_to_usable(&usable, &censored, s.scenarios.scheduled))
}

fn run_length_s(started: &str, finished: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(started).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(finished).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1_000.0)
}

/// The summary's time to usable, derived for summaries older than the field.
pub fn time_to_usable_of(s: &Summary) -> Option<TimeToUsable> {
    s.time_to_usable
        .clone()
        .or_else(|| derive_for_old_summary(s))
}

/// A censored quantile for people: `1.20 s`, `> 60.0 s`, `—`.
pub fn format_quantile(q: &CensoredQuantile) -> String {
    match (q.ms, q.reached) {
        (None, _) => "—".into(),
        (Some(ms), true) => format_seconds(ms),
        (Some(ms), false) => format!("> {}", format_seconds(ms)),
    }
}

fn format_seconds(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(ms: &[f64]) -> Vec<Weighted> {
        ms.iter().map(|&m| (m, 1)).collect()
    }

    #[test]
    fn without_censoring_the_quantiles_are_the_nearest_rank_latencies() {
        let usable = ones(&[
            100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1_500.0,
        ]);
        let t = time_to_usable(&usable, &[], 10);
        assert_eq!((t.usable, t.censored, t.scenarios), (10, 0, 10));
        assert_eq!(
            t.p50,
            CensoredQuantile {
                ms: Some(500.0),
                reached: true
            }
        );
        assert_eq!(
            t.p90,
            CensoredQuantile {
                ms: Some(900.0),
                reached: true
            }
        );
        let by_1s = &t.share_usable_by[0];
        assert_eq!((by_1s.within_s, by_1s.usable, by_1s.share), (1.0, 9, 0.9));
        assert_eq!(t.share_usable_by[1].share, 1.0);
        assert_eq!(t.longest_wait_ms, None);
    }

    #[test]
    fn a_quantile_beyond_the_usable_share_is_more_than_the_censored_wait() {
        // 4 of 10 usable at 1 s, 6 still waiting after 30 s: the median is not reached.
        let t = time_to_usable(&[(1_000.0, 4)], &[(30_000.0, 6)], 10);
        assert_eq!(
            t.p50,
            CensoredQuantile {
                ms: Some(30_000.0),
                reached: false
            }
        );
        assert_eq!(format_quantile(&t.p50), "> 30.00 s");
        assert_eq!(
            t.share_usable_by[4].share, 0.4,
            "even by 30 s only 40 % usable"
        );
        assert_eq!(t.share_usable_by[4].censored_earlier, 0);
        assert_eq!(t.longest_wait_ms, Some(30_000.0));
    }

    #[test]
    fn censored_scenarios_that_waited_less_than_t_make_the_share_a_lower_bound() {
        // Started late, the run ended 0.5 s after them: at 1 s their state is unknown.
        let t = time_to_usable(&[(200.0, 8)], &[(500.0, 2)], 10);
        assert_eq!(t.share_usable_by[0].share, 0.8);
        assert_eq!(t.share_usable_by[0].censored_earlier, 2);
        // The p90 is not reached; the bound is the 9th smallest of 200×8, 500×2.
        assert_eq!(
            t.p90,
            CensoredQuantile {
                ms: Some(500.0),
                reached: false
            }
        );
    }

    #[test]
    fn scenarios_not_in_either_list_are_censored_at_zero() {
        let t = time_to_usable(&[(100.0, 5)], &[], 10);
        assert_eq!((t.usable, t.censored), (5, 5));
        assert_eq!(
            t.p50,
            CensoredQuantile {
                ms: Some(100.0),
                reached: true
            }
        );
        assert_eq!(
            t.p90,
            CensoredQuantile {
                ms: Some(100.0),
                reached: false
            }
        );
        assert_eq!(t.share_usable_by[0].censored_earlier, 5);
    }

    #[test]
    fn losing_a_fifth_never_looks_faster_than_losing_nothing() {
        // A: all 100 usable at 2 s. B: survivors at 1 s, but 20 lost (waited 60 s).
        let a = time_to_usable(&[(2_000.0, 100)], &[], 100);
        let b = time_to_usable(&[(1_000.0, 80)], &[(60_000.0, 20)], 100);
        assert!(b.p90.ms.unwrap() > a.p90.ms.unwrap());
        assert!(!b.p90.reached);
        assert!(b.share_usable_by[4].share < a.share_usable_by[4].share);
    }

    #[test]
    fn nothing_scheduled_gives_empty_quantiles_and_zero_shares() {
        let t = time_to_usable(&[], &[], 0);
        assert_eq!(
            t.p50,
            CensoredQuantile {
                ms: None,
                reached: false
            }
        );
        assert_eq!(format_quantile(&t.p50), "—");
        assert!(t.share_usable_by.iter().all(|s| s.share == 0.0));
        // NaN and zero weights are ignored, negative waits clamp to 0.
        let t = time_to_usable(&[(f64::NAN, 3), (5.0, 0)], &[(-4.0, 1)], 1);
        assert_eq!((t.usable, t.censored), (0, 1));
        assert_eq!(t.p50.ms, Some(0.0));
    }

    #[test]
    fn histograms_feed_the_function_within_their_precision() {
        let mut usable = crate::summary::histogram::new_latency_histogram();
        for ms in [100u64, 200, 300] {
            usable.record(ms * 1_000).unwrap();
        }
        let mut scheduled = crate::summary::histogram::new_latency_histogram();
        scheduled.record(4_000_000).unwrap(); // scheduled at 4 s
        let waits = waits_from_scheduled_us(&scheduled, 10_000.0);
        assert_eq!(waits.len(), 1);
        assert!((waits[0].0 - 6_000.0).abs() < 10.0, "{waits:?}");
        let t = time_to_usable(&weighted_ms_from_us(&usable), &waits, 4);
        assert!((t.p50.ms.unwrap() - 200.0).abs() < 1.0);
        assert!(!t.p90.reached);
    }

    #[test]
    fn an_old_summary_gets_its_time_to_usable_from_its_histogram_and_counts() {
        let mut s = crate::summary::set::sample_summary();
        let mut h = crate::summary::histogram::new_latency_histogram();
        for _ in 0..270 {
            h.record(100_000).unwrap();
        }
        s.latency_ms.histogram_b64 = crate::summary::histogram::encode_histogram(&h);
        s.time_to_usable = None;
        // 60 s run, 30 s load: the 30 outstanding waited at least 30 s.
        let t = time_to_usable_of(&s).expect("derived");
        assert_eq!((t.scenarios, t.usable, t.censored), (300, 270, 30));
        assert_eq!(t.p90.ms.map(f64::round), Some(100.0));
        assert!(t.p90.reached, "270 of 300 is exactly 90 %");
        assert_eq!(t.longest_wait_ms, Some(30_000.0));
        s.latency_ms.histogram_b64 = "garbage".into();
        assert_eq!(time_to_usable_of(&s), None);
    }
}
