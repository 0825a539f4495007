//! Latency histograms: one shape for every run, and a text encoding for `summary.json`.
//!
//! Every run records latencies in microseconds into an HDR histogram of the same bounds, so runs
//! can be merged (the diff pools repeated runs) and re-read by any HdrHistogram tool: the
//! encoding is the standard "V2 + DEFLATE" binary format in base64, the same text the Java
//! `HistogramLogProcessor` reads.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

/// Smallest latency told apart from zero: one microsecond.
pub const LOWEST_US: u64 = 1;
/// Largest latency recorded as itself: one hour (larger values saturate to it).
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Why a stored histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    /// The text is not base64.
    #[error(
        "histogram_b64 is not valid base64 ({0}); the summary.json was edited or truncated: \
         re-run or restore the file"
    )]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 (or V2 + DEFLATE) serialization.
    #[error(
        "histogram_b64 does not hold an HdrHistogram V2 serialization ({0}); the summary.json \
         was edited or written by another tool: re-run or restore the file"
    )]
    Format(String),
}

/// An empty histogram for latencies in microseconds: 1 µs .. 1 hour, 3 significant figures.
pub fn new_latency_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES) {
        Ok(h) => h,
        // Constants that pass every check hdrhistogram makes (low >= 1, high >= 2 * low,
        // sigfig <= 5): a failure here is a bug in this file, caught by the first unit test.
        Err(e) => unreachable!("latency histogram bounds rejected: {e}"),
    }
}

/// Serializes `h` as V2 + DEFLATE and encodes it in standard base64 (padded).
///
/// A histogram of `u64` counts always serializes; should the library ever refuse, the result is
/// the empty string, which [`decode_histogram`] reads back as an empty histogram.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => BASE64.encode(&bytes),
        Err(e) => {
            tracing::warn!("could not serialize the latency histogram: {e}");
            String::new()
        }
    }
}

/// Reads a histogram written by [`encode_histogram`] (or any V2 / V2 + DEFLATE base64 text).
///
/// The empty string is an empty latency histogram, so hand-written summaries need no encoding.
pub fn decode_histogram(b64: &str) -> Result<Histogram<u64>, HistogramError> {
    let text = b64.trim();
    if text.is_empty() {
        return Ok(new_latency_histogram());
    }
    let bytes = BASE64.decode(text)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Format(e.to_string()))
}

/// Adds all histograms into one latency histogram (counts add up; bounds grow if one is wider).
pub fn merge_histograms<'a>(hs: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut merged = new_latency_histogram();
    // A decoded histogram may come with wider bounds than ours: grow instead of failing.
    merged.auto(true);
    for h in hs {
        if merged.add(h).is_err() {
            // Only reachable if a value cannot be represented at all; keep it, saturated.
            for v in h.iter_recorded() {
                merged.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }
    merged.auto(false);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(values_us: &[u64]) -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn latency_histogram_covers_one_microsecond_to_one_hour() {
        let mut h = new_latency_histogram();
        h.record(1).unwrap();
        h.record(HIGHEST_US).unwrap();
        assert!(
            h.record(HIGHEST_US * 2).is_err(),
            "values above an hour must not resize"
        );
        assert_eq!(h.sigfig(), 3);
    }

    #[test]
    fn encode_then_decode_gives_back_the_same_counts() {
        let h = histogram_of(&[1, 250, 1_000, 68_000, 1_000_000, 21_805_158, 3_600_000_000]);
        let text = encode_histogram(&h);
        assert!(!text.is_empty());
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 7);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn empty_histogram_round_trips_and_empty_text_is_empty() {
        let back = decode_histogram(&encode_histogram(&new_latency_histogram())).unwrap();
        assert!(back.is_empty());
        assert!(decode_histogram("").unwrap().is_empty());
    }

    #[test]
    fn decode_rejects_bad_text_with_an_actionable_message() {
        let err = decode_histogram("not base64 at all!").unwrap_err();
        assert!(matches!(err, HistogramError::Base64(_)));
        assert!(err.to_string().contains("histogram_b64"));
        let err = decode_histogram(&BASE64.encode(b"\x00\x01\x02\x03garbage")).unwrap_err();
        assert!(matches!(err, HistogramError::Format(_)), "{err}");
    }

    #[test]
    fn merge_adds_counts_of_every_histogram() {
        let a = histogram_of(&[1_000, 2_000, 3_000]);
        let b = histogram_of(&[4_000, 5_000]);
        let empty = new_latency_histogram();
        let merged = merge_histograms([&a, &b, &empty]);
        assert_eq!(merged.len(), 5);
        assert_eq!(merged.min(), 1_000);
        assert!(merged.equivalent(merged.max(), 5_000));
        assert!(merge_histograms([]).is_empty());
    }

    #[test]
    fn merge_accepts_a_histogram_with_wider_bounds() {
        let mut wide = Histogram::<u64>::new_with_bounds(1, HIGHEST_US * 10, 3).unwrap();
        wide.record(HIGHEST_US * 5).unwrap();
        let merged = merge_histograms([&wide, &histogram_of(&[10])]);
        assert_eq!(merged.len(), 2);
        assert!(merged.equivalent(merged.max(), HIGHEST_US * 5));
    }
}
