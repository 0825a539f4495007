//! One side of a diff: the runs behind `A` or `B`, whatever path form named them.
//!
//! Built from already parsed summaries, so it is pure data; `load.rs` does the file work.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::summary::histogram::decode_bounded;
use crate::summary::set::{PerRunValues, per_run_values};
use crate::summary::{ScenarioConfig, Summary, Verdict};

mod fleet;

pub use fleet::{FleetRun, GatewayRun, gateway_name};

/// What form of path named the side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SideKind {
    /// A `summary.json` file.
    Summary,
    /// A run directory holding `summary.json`.
    Run,
    /// A set directory or its `set.json`.
    Set,
    /// A label directory: its `latest-set`.
    LabelLatestSet,
    /// A label directory without a set: all its runs.
    LabelAllRuns,
}

/// One run of a side, reduced to what the diff needs.
#[derive(Debug, Clone)]
pub struct SideRun {
    /// The compared values.
    pub values: PerRunValues,
    /// The scenario configuration of the run.
    pub config: ScenarioConfig,
    /// Gateway version string, when known.
    pub gateway_version: Option<String>,
    /// Where the version came from (`/hello`, `log`, `image tag`, `unknown`).
    pub gateway_version_source: String,
    /// The gateway image: its registry digest, else its image id (compose runs only).
    pub gateway_image: Option<String>,
    /// True when the gateway was the kit's stub.
    pub is_stub: bool,
    /// Gateways the run measured (1 for a run against one gateway).
    pub gateways: u64,
    /// Fleet and per-gateway facts, when the run had more than one gateway.
    pub fleet: Option<FleetRun>,
}

/// `A` or `B`: a label and its runs.
#[derive(Debug, Clone)]
pub struct Side {
    /// The runs' label (the gateway tag).
    pub label: String,
    /// The path the user gave.
    pub source: String,
    /// What form of path it was.
    pub kind: SideKind,
    /// The runs, in run order.
    pub runs: Vec<SideRun>,
    /// All runs' latency histograms merged (microseconds); `None` when none was readable.
    pub latency_histogram: Option<Histogram<u64>>,
    /// Things the reader should know (unreadable histograms, mixed labels).
    pub warnings: Vec<String>,
}

impl Side {
    /// Builds a side from `(run_dir, summary)` pairs in run order.
    pub fn from_runs(source: &str, kind: SideKind, runs: &[(String, Summary)]) -> Side {
        let label = runs
            .first()
            .map(|(_, s)| s.label.clone())
            .unwrap_or_default();
        let mut warnings = Vec::new();
        let mut merged: Option<Histogram<u64>> = None;
        // Per-run problems are summarised: a thousand runs must not give a thousand lines.
        let mut other_labels = Vec::new();
        let mut unreadable = Vec::new();
        for (dir, s) in runs {
            if s.label != label {
                other_labels.push(format!("{dir} (`{}`)", s.label));
            }
            if s.latency_ms.count == 0 {
                continue;
            }
            let added = match decode_bounded(&s.latency_ms.histogram_b64) {
                Ok(h) => merge_into(&mut merged, &h).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = added {
                unreadable.push(format!("{dir}: {why}"));
            }
        }
        if let Some(first) = other_labels.first() {
            warnings.push(format!(
                "{} run(s) have another label than `{label}`, e.g. {first}",
                other_labels.len()
            ));
        }
        if let Some(first) = unreadable.first() {
            warnings.push(format!(
                "{} of {} runs left out of the latency CDF, e.g. {first}",
                unreadable.len(),
                runs.len()
            ));
        }
        Side {
            label,
            source: source.to_owned(),
            kind,
            runs: runs
                .iter()
                .map(|(dir, s)| {
                    let values = per_run_values(dir, s);
                    SideRun {
                        fleet: FleetRun::of(dir, s, &values),
                        values,
                        config: s.config.clone(),
                        gateway_version: s.gateway.version.clone(),
                        gateway_version_source: s.gateway.version_source.clone(),
                        gateway_image: gateway_image(s),
                        is_stub: s.gateway.is_stub,
                        gateways: s.gateways.len().max(1) as u64,
                    }
                })
                .collect(),
            latency_histogram: merged,
            warnings,
        }
    }

    /// Runs that measured the gateway (`pass`, `hang`, `unresponsive`); the others
    /// (`infra_error`, `interrupted`) carry no signal about it.
    pub fn usable_runs(&self) -> impl Iterator<Item = &SideRun> {
        self.runs.iter().filter(|r| is_usable(r.values.verdict))
    }

    /// The most gateways any run of the side measured (1 without a fleet run).
    pub fn gateway_count(&self) -> u64 {
        self.runs.iter().map(|r| r.gateways).max().unwrap_or(1)
    }

    /// Like [`Side::gateway_versions`], each version with its source: `v2.9.4 (from log)`.
    pub fn gateway_versions_with_source(&self) -> String {
        let versions: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let v = r.gateway_version.as_deref().unwrap_or("unknown");
                // Older sources carry an explanation after the name: keep the name only.
                let source = r
                    .gateway_version_source
                    .split(" (")
                    .next()
                    .unwrap_or_default();
                let stub = if r.is_stub { ", stub" } else { "" };
                if r.gateway_version.is_some() && !source.is_empty() {
                    format!("{v} (from {source}{stub})")
                } else if r.is_stub {
                    format!("{v} (stub)")
                } else {
                    v.to_owned()
                }
            })
            .collect();
        joined_or_unknown(versions)
    }

    /// The gateway images of the runs (digest or id), deduplicated and sorted.
    pub fn gateway_images(&self) -> Vec<String> {
        let mut images: Vec<String> = self
            .runs
            .iter()
            .filter_map(|r| r.gateway_image.clone())
            .collect();
        images.sort();
        images.dedup();
        images
    }

    /// The gateway version(s) of the runs, deduplicated, e.g. `v2.9.4`; `unknown` if none.
    pub fn gateway_versions(&self) -> String {
        let versions: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let v = r.gateway_version.as_deref().unwrap_or("unknown");
                if r.is_stub {
                    format!("{v} (stub)")
                } else {
                    v.to_owned()
                }
            })
            .collect();
        joined_or_unknown(versions)
    }
}

/// Whether a run (or one gateway of it) with this verdict measured the gateway: `pass`,
/// `hang`, `unresponsive`.
pub fn is_usable(v: Verdict) -> bool {
    matches!(v, Verdict::Pass | Verdict::Hang | Verdict::Unresponsive)
}

/// The gateway image of a compose run: `environment.gateway.repo_digests[0]`, else
/// `environment.gateway.image_id`; `None` outside compose.
fn gateway_image(s: &Summary) -> Option<String> {
    let gateway = s.environment.as_ref()?.gateway.as_ref()?;
    let digest = gateway.repo_digests.first().map(String::as_str);
    digest
        .or(gateway.image_id.as_deref())
        .filter(|i| !i.is_empty())
        .map(|i| i.chars().take(200).collect())
}

/// Adds `h` to `merged`, creating it on first use.
fn merge_into(merged: &mut Option<Histogram<u64>>, h: &Histogram<u64>) -> Result<(), NotMergeable> {
    match merged {
        None => {
            // Decoded histograms have a fixed range; the merged one must grow to fit all runs.
            let mut m = h.clone();
            m.auto(true);
            *merged = Some(m);
        }
        Some(m) => m.add(h).map_err(NotMergeable)?,
    }
    Ok(())
}

/// A run's histogram that cannot be added to the others.
#[derive(Debug, thiserror::Error)]
#[error("histogram not mergeable ({0:?})")]
struct NotMergeable(#[source] hdrhistogram::AdditionError);

/// Encodes a histogram the way summaries hold it (for tests of this module and its users).
/// Distinct values, sorted and comma-joined; `unknown` when there are none.
fn joined_or_unknown(mut values: Vec<String>) -> String {
    values.sort();
    values.dedup();
    if values.is_empty() {
        "unknown".into()
    } else {
        values.join(", ")
    }
}

#[cfg(test)]
pub(crate) fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::prelude::{BASE64_STANDARD, Engine};
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    let mut buf = Vec::new();
    V2Serializer::new().serialize(h, &mut buf).unwrap();
    BASE64_STANDARD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::histogram::{
        MAX_INFLATED, V2_COOKIE, V2_DEFLATE_COOKIE, decode_bounded as decode_histogram,
    };
    use crate::summary::set::sample_summary;
    use base64::prelude::{BASE64_STANDARD, Engine};

    fn summary_with_latencies(us: &[u64]) -> Summary {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in us {
            h.record(v).unwrap();
        }
        let mut s = sample_summary();
        s.latency_ms.count = us.len() as u64;
        s.latency_ms.histogram_b64 = encode_histogram(&h);
        s
    }

    #[test]
    fn histograms_of_all_runs_are_merged() {
        let runs = vec![
            ("r1".to_owned(), summary_with_latencies(&[1000, 2000])),
            ("r2".to_owned(), summary_with_latencies(&[3000])),
        ];
        let side = Side::from_runs("x", SideKind::LabelAllRuns, &runs);
        let h = side.latency_histogram.unwrap();
        assert_eq!(h.len(), 3);
        assert!(side.warnings.is_empty(), "{:?}", side.warnings);
    }

    #[test]
    fn a_hostile_histogram_header_is_refused_without_allocating_it() {
        // V2 cookie, then a payload length of 4 GiB in a 44-byte document.
        let mut bytes = vec![0u8; 44];
        bytes[..4].copy_from_slice(&V2_COOKIE.to_be_bytes());
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode_histogram(&BASE64_STANDARD.encode(bytes))
            .unwrap_err()
            .to_string();
        assert!(err.contains("header"), "{err}");
        assert!(
            decode_histogram("%%%")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
    }

    #[test]
    fn the_compressed_histogram_runs_write_is_read_back() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [1_000, 250_000, 3_900_000] {
            h.record(v).unwrap();
        }
        let text = crate::summary::histogram::encode_histogram(&h);
        assert_eq!(decode_histogram(&text).unwrap(), h);
    }

    #[test]
    fn a_compressed_histogram_that_inflates_past_the_bound_is_refused() {
        use std::io::Write as _;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&V2_COOKIE.to_be_bytes()).unwrap();
        zlib.write_all(&vec![0u8; MAX_INFLATED as usize]).unwrap();
        let compressed = zlib.finish().unwrap();
        let mut bytes = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&compressed);
        let err = decode_histogram(&BASE64_STANDARD.encode(&bytes))
            .unwrap_err()
            .to_string();
        assert!(err.contains("inflates to more than"), "{err}");
        bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode_histogram(&BASE64_STANDARD.encode(&bytes))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match its size"), "{err}");
    }

    #[test]
    fn an_unreadable_histogram_becomes_a_warning_naming_the_run() {
        let mut s = sample_summary();
        s.latency_ms.histogram_b64 = "AAAA".into();
        let side = Side::from_runs("x", SideKind::Run, &[("run-7".to_owned(), s)]);
        assert!(side.latency_histogram.is_none());
        let expected = "1 of 1 runs left out of the latency CDF, e.g. run-7: not an";
        assert!(
            side.warnings[0].starts_with(expected),
            "{:?}",
            side.warnings
        );
    }
}
