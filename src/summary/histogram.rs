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
/// Bounded like [`decode_bounded`]: a hostile `summary.json` cannot make it allocate gigabytes.
pub fn decode_histogram(b64: &str) -> Result<Histogram<u64>, HistogramError> {
    let text = b64.trim();
    if text.is_empty() {
        return Ok(new_latency_histogram());
    }
    decode_bounded(text).map_err(|fault| match fault {
        HistogramFault::Base64(e) => HistogramError::Base64(e),
        HistogramFault::Deserialize(e) => HistogramError::Format(e.to_string()),
        other => HistogramError::Format(other.to_string()),
    })
}

/// Largest base64 histogram decoded, bytes: a bound on memory for hostile summaries.
pub const MAX_HISTOGRAM_B64: usize = 8 * 1024 * 1024;

/// Cookie of hdrhistogram's uncompressed V2 encoding (`V2_COOKIE_BASE | 0x10` in its source).
pub const V2_COOKIE: u32 = 0x1c84_9313;

/// Bytes of the V2 header before the payload.
const V2_HEADER_LEN: usize = 40;

/// Cookie of the V2 + DEFLATE encoding `summary.json` holds (`V2_COMPRESSED_COOKIE_BASE | 0x10`).
pub const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;

/// Largest inflated histogram accepted, bytes; a real one is at most a few hundred kilobytes.
pub const MAX_INFLATED: u64 = 4 * 1024 * 1024;

/// What exactly is wrong with an encoded histogram (short texts, for per-run warnings).
#[derive(Debug, thiserror::Error)]
pub enum HistogramFault {
    /// The text is empty.
    #[error("no histogram recorded")]
    Empty,
    /// The text is longer than [`MAX_HISTOGRAM_B64`].
    #[error("histogram larger than {MAX_HISTOGRAM_B64} bytes")]
    TooLarge,
    /// The text is not base64.
    #[error("not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// The V2 + DEFLATE header claims more bytes than there are.
    #[error("compressed histogram header does not match its size")]
    CompressedHeader,
    /// The DEFLATE stream is broken.
    #[error("undecodable compressed histogram: {0}")]
    Inflate(#[source] std::io::Error),
    /// The DEFLATE stream inflates past [`MAX_INFLATED`].
    #[error("histogram inflates to more than {MAX_INFLATED} bytes")]
    Inflated,
    /// Not the V2 cookie.
    #[error("not an HdrHistogram V2 encoding")]
    NotV2,
    /// The V2 header claims more payload than there is, or impossible precision.
    #[error("histogram header does not match its size")]
    Header,
    /// hdrhistogram refused the bytes.
    #[error("undecodable histogram: {0:?}")]
    Deserialize(#[source] hdrhistogram::serialization::DeserializeError),
}

/// Decodes a base64 V2 histogram, plain or V2 + DEFLATE (what runs write), after inflating it
/// under a bound and checking its header against its size, because hdrhistogram allocates
/// whatever payload length the header claims. The one decoder of stored histograms.
pub fn decode_bounded(b64: &str) -> Result<Histogram<u64>, HistogramFault> {
    if b64.is_empty() {
        return Err(HistogramFault::Empty);
    }
    if b64.len() > MAX_HISTOGRAM_B64 {
        return Err(HistogramFault::TooLarge);
    }
    let bytes = BASE64.decode(b64).map_err(HistogramFault::Base64)?;
    let bytes = inflate_if_compressed(bytes)?;
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    if word(0) != Some(V2_COOKIE) {
        return Err(HistogramFault::NotV2);
    }
    let payload_len = word(4).unwrap_or(u32::MAX) as usize;
    let digits = word(12).unwrap_or(u32::MAX);
    if bytes.len() < V2_HEADER_LEN || payload_len > bytes.len() - V2_HEADER_LEN || digits > 5 {
        return Err(HistogramFault::Header);
    }
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramFault::Deserialize)
}

/// Turns V2 + DEFLATE into plain V2 (other bytes pass through), never inflating past
/// [`MAX_INFLATED`]: a small hostile document must not expand into gigabytes.
fn inflate_if_compressed(bytes: Vec<u8>) -> Result<Vec<u8>, HistogramFault> {
    use std::io::Read as _;
    let word = |at: usize| bytes.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
    if word(0).map(u32::from_be_bytes) != Some(V2_DEFLATE_COOKIE) {
        return Ok(bytes);
    }
    let compressed_len = word(4).map_or(usize::MAX, |w| u32::from_be_bytes(w) as usize);
    let compressed = bytes
        .get(8..)
        .filter(|rest| compressed_len <= rest.len())
        .map(|rest| &rest[..compressed_len])
        .ok_or(HistogramFault::CompressedHeader)?;
    let mut plain = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut plain)
        .map_err(HistogramFault::Inflate)?;
    if plain.len() as u64 > MAX_INFLATED {
        return Err(HistogramFault::Inflated);
    }
    Ok(plain)
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
    fn decode_refuses_a_hostile_header_without_allocating_its_payload() {
        let mut bytes = vec![0u8; 44];
        bytes[..4].copy_from_slice(&V2_COOKIE.to_be_bytes());
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode_histogram(&BASE64.encode(bytes)).unwrap_err();
        assert!(matches!(err, HistogramError::Format(_)), "{err}");
        assert!(err.to_string().contains("header does not match"), "{err}");
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
