//! Statistics the summary reports: latency quantiles, exact quantiles of small samples, the
//! seed's "top rows", and Go's duration format (so `report.txt` reads like the seed's output).

use hdrhistogram::Histogram;

use crate::summary::histogram::encode_histogram;
use crate::summary::{LatencyStats, ScenarioRecord, TopRow};

/// Microseconds per millisecond: histograms hold µs, the summary speaks ms.
const US_PER_MS: f64 = 1_000.0;

/// Latency statistics in milliseconds from a histogram of microseconds.
///
/// Quantiles and `max` are HDR values (the highest value equivalent to the recorded one, within
/// 3 significant figures). Every statistic is `None` when nothing was recorded; the histogram is
/// always encoded so runs can be merged later.
pub fn latency_stats(h: &Histogram<u64>) -> LatencyStats {
    let histogram_b64 = encode_histogram(h);
    if h.is_empty() {
        return LatencyStats {
            count: 0,
            histogram_b64,
            ..LatencyStats::default()
        };
    }
    let at = |q: f64| Some(h.value_at_quantile(q) as f64 / US_PER_MS);
    LatencyStats {
        count: h.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: Some(h.max() as f64 / US_PER_MS),
        mean: Some(h.mean() / US_PER_MS),
        histogram_b64,
    }
}

/// The nearest-rank quantile `q` (0..=1, clamped) of an ascending slice; `None` when empty or
/// `q` is NaN.
///
/// Nearest rank: the smallest value with at least `q·n` values at or below it, so the result is
/// always one of the samples (p50 of `[1, 2, 3, 4]` is 2, p100 is 4, p0 is 1).
pub fn quantile_ms(sorted_ms: &[f64], q: f64) -> Option<f64> {
    if sorted_ms.is_empty() || q.is_nan() {
        return None;
    }
    let n = sorted_ms.len();
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    sorted_ms.get(rank.clamp(1, n) - 1).copied()
}

/// The `n` scenarios with the highest policy index, highest first, as the seed reported them.
///
/// Scenarios whose add failed (index 0) have no policy and are left out; equal indexes (which a
/// wrapping mock can produce) keep the later scenario first.
pub fn top_rows(records: &[ScenarioRecord], n: usize) -> Vec<TopRow> {
    let mut picked: Vec<&ScenarioRecord> = records.iter().filter(|r| r.index > 0).collect();
    picked.sort_by(|a, b| b.index.cmp(&a.index).then(b.seq.cmp(&a.seq)));
    picked.into_iter().take(n).map(top_row_from).collect()
}

/// One record as a report row.
pub fn top_row_from(r: &ScenarioRecord) -> TopRow {
    TopRow {
        index: r.index,
        policy_id: r.policy_id.clone(),
        outcome: r.outcome.as_str().to_owned(),
        latency_ms: r.success_ms,
        last_failure_ms: r.last_failure_ms,
        attempts: r.attempts,
        last_error: r.last_error.clone(),
    }
}

/// Formats milliseconds the way Go's `time.Duration.String()` does, rounded to the nanosecond:
/// `"21.805158857s"`, `"500ms"`, `"1m2.5s"`, `"2m0s"`, `"1.5µs"`, `"0s"`, `"-1.5s"`.
///
/// NaN prints as `"0s"`; infinities saturate like Go's largest duration.
pub fn go_duration(ms: f64) -> String {
    let ns = if ms.is_nan() {
        0
    } else {
        // `as` saturates at i64 bounds, matching Go's Duration range.
        (ms * 1e6).round() as i64
    };
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u == 0 {
        return "0s".to_owned();
    }
    const SECOND: u64 = 1_000_000_000;
    if u < SECOND {
        // Below a second Go picks the largest unit that keeps an integer part.
        let (precision, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        return format!("{sign}{}{unit}", format_fraction(u, precision));
    }
    let seconds = format_fraction(u % (60 * SECOND), 9);
    let minutes = u / (60 * SECOND);
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `v / 10^precision` with the fraction's trailing zeros (and a bare point) dropped.
fn format_fraction(v: u64, precision: u32) -> String {
    let scale = 10u64.pow(precision);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Outcome;
    use crate::summary::histogram::{decode_histogram, new_latency_histogram};

    #[test]
    fn go_duration_matches_go_for_the_seeds_and_textbook_values() {
        // Each right-hand side is what Go's time.Duration.String() prints for that value.
        let cases = [
            (21805.158857, "21.805158857s"),
            (22391.14931, "22.39114931s"),
            (1_500.0, "1.5s"),
            (120_000.0, "2m0s"),
            (62_500.0, "1m2.5s"),
            (150.0, "150ms"),
            (500.0, "500ms"),
            (1.234567, "1.234567ms"),
            (0.0015, "1.5µs"),
            (0.000_001, "1ns"),
            (0.0, "0s"),
            (-1_500.0, "-1.5s"),
            (3_600_000.0, "1h0m0s"),
            (3_723_004.0, "1h2m3.004s"),
            (f64::NAN, "0s"),
        ];
        for (ms, want) in cases {
            assert_eq!(go_duration(ms), want, "go_duration({ms})");
        }
        assert_eq!(go_duration(f64::INFINITY), "2562047h47m16.854775807s");
    }

    #[test]
    fn quantile_ms_uses_nearest_rank() {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile_ms(&data, 0.5), Some(5.0));
        assert_eq!(quantile_ms(&data, 0.9), Some(9.0));
        assert_eq!(quantile_ms(&data, 0.99), Some(10.0));
        assert_eq!(quantile_ms(&data, 1.0), Some(10.0));
        assert_eq!(quantile_ms(&data, 0.0), Some(1.0));
        assert_eq!(quantile_ms(&data, 7.0), Some(10.0), "q above 1 is clamped");
        assert_eq!(quantile_ms(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
        assert_eq!(quantile_ms(&[42.0], 0.99), Some(42.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
        assert_eq!(quantile_ms(&data, f64::NAN), None);
    }

    #[test]
    fn latency_stats_reports_milliseconds_within_three_significant_figures() {
        let mut h = new_latency_histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1_000).unwrap();
        }
        let s = latency_stats(&h);
        assert_eq!(s.count, 100);
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.001 + 1e-9, "{got} vs {want}");
        };
        close(s.p50, 50.0);
        close(s.p90, 90.0);
        close(s.p99, 99.0);
        close(s.max, 100.0);
        close(s.mean, 50.5);
        assert_eq!(decode_histogram(&s.histogram_b64).unwrap(), h);
    }

    #[test]
    fn latency_stats_of_nothing_has_no_numbers_but_a_histogram() {
        let s = latency_stats(&new_latency_histogram());
        assert_eq!(
            (s.count, s.p50, s.p99, s.max, s.mean),
            (0, None, None, None, None)
        );
        assert!(decode_histogram(&s.histogram_b64).unwrap().is_empty());
    }

    fn record(seq: u64, index: u64, outcome: Outcome) -> ScenarioRecord {
        ScenarioRecord {
            add_done_ms: Some(5.0),
            attempts: 3,
            last_failure_ms: Some(900.0),
            success_ms: (outcome == Outcome::Success).then_some(1_200.0),
            last_error: (outcome != Outcome::Success).then(|| "policy not found".to_owned()),
            ..crate::summary::fixtures::record(seq, index, outcome)
        }
    }

    #[test]
    fn top_rows_picks_the_highest_indexes_highest_first() {
        let records = vec![
            record(0, 80_401, Outcome::Success),
            record(1, 80_403, Outcome::Outstanding),
            record(2, 0, Outcome::Failed),
            record(3, 80_402, Outcome::Success),
            record(4, 80_404, Outcome::Failed),
        ];
        let rows = top_rows(&records, 3);
        let got: Vec<(u64, &str)> = rows.iter().map(|r| (r.index, r.outcome.as_str())).collect();
        assert_eq!(
            got,
            [
                (80_404, "failed"),
                (80_403, "outstanding"),
                (80_402, "success")
            ]
        );
        assert_eq!(rows[2].latency_ms, Some(1_200.0));
        assert_eq!(rows[2].policy_id, "p80402");
        assert_eq!(
            top_rows(&records, 10).len(),
            4,
            "index 0 (failed add) is never a top row"
        );
        assert!(top_rows(&[], 10).is_empty());
    }
}
