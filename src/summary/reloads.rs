//! Reload statistics from the dashboard's side: how often the gateway fetched policies, the
//! longest silence, and whether the newest policies were ever fetched (the lost-trigger sign).

use crate::summary::ReloadStats;
use crate::summary::stats::quantile_ms;

/// What the dashboard mock saw during one run; all times are unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadInput {
    /// Authorized policy fetches inside the run window, ascending.
    pub fetch_times_ms: Vec<u64>,
    /// Time the mock spent serving each of those fetches, microseconds (any order).
    pub fetch_durations_us: Vec<u64>,
    /// Start of the run window (the load started).
    pub window_start_ms: u64,
    /// End of the run window (the run ended).
    pub window_end_ms: u64,
    /// When the last policy was added, if any was.
    pub last_add_ms: Option<u64>,
    /// Reload triggers sent (notifications published or reload calls made).
    pub triggers_sent: u64,
    /// Fetches the mock refused (wrong node secret).
    pub rejected_fetches: u64,
    /// Notifications that failed to publish.
    pub publish_errors: u64,
}

/// Summarises the fetch log of one run.
///
/// - `longest_gap_without_fetch_s`: largest step in `[window_start, fetch₁, …, fetchₙ,
///   window_end]`; `None` only when the window ends before it starts.
/// - `last_fetch_after_last_add_s`: last fetch − last add; negative means the newest policies
///   were never fetched. `None` without an add or without any fetch.
/// - `coalescing_ratio`: triggers per fetch; `None` without fetches.
pub fn reload_stats(input: &ReloadInput) -> ReloadStats {
    // Sorted defensively: an unsorted log would otherwise produce negative "gaps".
    let mut fetches = input.fetch_times_ms.clone();
    fetches.sort_unstable();
    let policy_fetches = fetches.len() as u64;
    ReloadStats {
        triggers_sent: input.triggers_sent,
        policy_fetches,
        rejected_fetches: input.rejected_fetches,
        publish_errors: input.publish_errors,
        fetch_p50_ms: median_duration_ms(&input.fetch_durations_us),
        longest_gap_without_fetch_s: longest_gap_s(&fetches, input),
        last_fetch_after_last_add_s: match (fetches.last(), input.last_add_ms) {
            (Some(&fetch), Some(add)) => Some(signed_diff_ms(fetch, add) / 1_000.0),
            _ => None,
        },
        coalescing_ratio: (policy_fetches > 0)
            .then(|| input.triggers_sent as f64 / policy_fetches as f64),
    }
}

/// Longest step between consecutive instants of `[start, fetches…, end]`, seconds.
fn longest_gap_s(sorted_fetches: &[u64], input: &ReloadInput) -> Option<f64> {
    if input.window_end_ms < input.window_start_ms {
        return None;
    }
    let instants = std::iter::once(input.window_start_ms)
        .chain(sorted_fetches.iter().copied())
        .chain(std::iter::once(input.window_end_ms));
    let mut longest = 0u64;
    let mut previous = None;
    for t in instants {
        if let Some(p) = previous {
            // A fetch logged just outside the window counts as at its edge, never as negative.
            longest = longest.max(t.saturating_sub(p));
        }
        previous = Some(t);
    }
    Some(longest as f64 / 1_000.0)
}

/// Median of durations given in microseconds, in milliseconds.
fn median_duration_ms(durations_us: &[u64]) -> Option<f64> {
    let mut ms: Vec<f64> = durations_us.iter().map(|&us| us as f64 / 1_000.0).collect();
    ms.sort_by(f64::total_cmp);
    quantile_ms(&ms, 0.5)
}

/// `a − b` in milliseconds, as a signed value.
fn signed_diff_ms(a: u64, b: u64) -> f64 {
    if a >= b {
        (a - b) as f64
    } else {
        -((b - a) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn input(fetch_offsets_ms: &[u64], end_offset_ms: u64, last_add_offset_ms: u64) -> ReloadInput {
        ReloadInput {
            fetch_times_ms: fetch_offsets_ms.iter().map(|o| T0 + o).collect(),
            fetch_durations_us: vec![70_000, 65_000, 90_000],
            window_start_ms: T0,
            window_end_ms: T0 + end_offset_ms,
            last_add_ms: Some(T0 + last_add_offset_ms),
            triggers_sent: 2_505,
            rejected_fetches: 1,
            publish_errors: 2,
        }
    }

    #[test]
    fn longest_gap_counts_the_silence_after_the_last_fetch() {
        // Fetches stop at 4.3 s, the load ends at 5.0 s and the run waits until 65 s.
        let s = reload_stats(&input(&[800, 1_900, 3_100, 4_300], 65_000, 5_000));
        assert_eq!(s.longest_gap_without_fetch_s, Some(60.7));
        assert_eq!(s.policy_fetches, 4);
        assert_eq!(s.coalescing_ratio, Some(2_505.0 / 4.0));
        assert_eq!(
            (s.triggers_sent, s.rejected_fetches, s.publish_errors),
            (2_505, 1, 2)
        );
        assert_eq!(s.fetch_p50_ms, Some(70.0));
    }

    #[test]
    fn longest_gap_can_be_at_the_start_or_between_fetches() {
        let s = reload_stats(&input(&[3_000, 3_500, 9_000, 9_900], 10_000, 5_000));
        assert_eq!(s.longest_gap_without_fetch_s, Some(5.5));
        let s = reload_stats(&input(&[7_000, 8_000], 9_000, 5_000));
        assert_eq!(s.longest_gap_without_fetch_s, Some(7.0));
    }

    #[test]
    fn last_fetch_before_last_add_is_negative_the_lost_trigger_signature() {
        let s = reload_stats(&input(&[1_000, 2_000, 4_400], 65_000, 5_000));
        assert_eq!(s.last_fetch_after_last_add_s, Some(-0.6));
        let s = reload_stats(&input(&[1_000, 2_000, 6_250], 65_000, 5_000));
        assert_eq!(s.last_fetch_after_last_add_s, Some(1.25));
    }

    #[test]
    fn unsorted_fetch_log_gives_the_same_answer_as_sorted() {
        let sorted = reload_stats(&input(&[800, 1_900, 3_100], 6_000, 5_000));
        let unsorted = reload_stats(&input(&[3_100, 800, 1_900], 6_000, 5_000));
        assert_eq!(sorted, unsorted);
    }

    #[test]
    fn no_fetches_means_one_gap_the_whole_window_and_no_ratios() {
        let mut i = input(&[], 65_000, 5_000);
        i.fetch_durations_us.clear();
        let s = reload_stats(&i);
        assert_eq!(s.policy_fetches, 0);
        assert_eq!(s.longest_gap_without_fetch_s, Some(65.0));
        assert_eq!(s.last_fetch_after_last_add_s, None);
        assert_eq!(s.coalescing_ratio, None);
        assert_eq!(s.fetch_p50_ms, None);
    }

    #[test]
    fn no_add_or_an_inverted_window_leaves_those_fields_empty() {
        let mut i = input(&[1_000], 5_000, 0);
        i.last_add_ms = None;
        assert_eq!(reload_stats(&i).last_fetch_after_last_add_s, None);
        i.window_end_ms = i.window_start_ms - 1;
        assert_eq!(reload_stats(&i).longest_gap_without_fetch_s, None);
    }
}
