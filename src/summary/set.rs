//! `set.json`: what `reload-repro run --runs N` writes next to its N run directories.
//!
//! A set keeps the per-run values (runs are the unit of comparison: scenarios that share a
//! reload are not independent) and a latency summary over all runs' histograms merged.
//! Layout: `OUT/LABEL/set-<UTC ts>/set.json`, runs listed relative to the set directory.
//! `scripts/repro.sh` (every `make repro`, RUNS=N ≥ 1) writes one through `reload-repro set`;
//! `reload-repro run --runs N` writes one too. A set also records what its runs tested (gateway
//! image, digest, version, config hashes), so `diff` can refuse a side that mixes builds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{CensoredQuantile, LatencyStats, Summary, Verdict};

/// Layout version of `set.json`. Readers refuse documents newer than they know. Version 2 added
/// the censored time to usable to `per_run`; version 1 documents are still read.
pub const SET_SCHEMA_VERSION: u32 = 2;

/// File name of a set summary inside its set directory.
pub const SET_FILE: &str = "set.json";

/// N repetitions of one scenario against one gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSet {
    /// Layout version of this document (currently 2).
    pub schema_version: u32,
    /// Free label of the runs, e.g. the gateway tag (`2.9.4`, `pr`).
    pub label: String,
    /// When the set was written, RFC 3339 UTC.
    pub created_at: String,
    /// Run directories relative to the set directory, e.g. `../20261127T101500Z`, in run order.
    pub runs: Vec<String>,
    /// Latency over the successful scenarios of all runs (histograms merged), milliseconds.
    pub merged_latency_ms: LatencyStats,
    /// The values `diff` compares, one entry per run, in the order of `runs`.
    pub per_run: Vec<PerRunValues>,
    /// What the runs tested, when they all agree on it (absent in sets of older kits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<RunIdentity>,
    /// Where the runs disagree on what they tested (digest, config hashes), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixed: Vec<String>,
    /// The verdict the caller stated as success (`--expect`), when the set was run for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Verdict>,
    /// True when a signal stopped the set before all its runs were done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// What one run (or a whole set) tested: the gateway build and the kit's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunIdentity {
    /// Gateway image as compose was given it, e.g. `tykio/tyk-gateway:v2.9.4`.
    pub gateway_image: Option<String>,
    /// Local image id of the gateway (`sha256:…`): the digest that tells two builds apart.
    pub gateway_image_id: Option<String>,
    /// Registry digests of the gateway image (empty for images built locally).
    #[serde(default)]
    pub gateway_repo_digests: Vec<String>,
    /// Gateway version as the run learned it (`v2.9.4`, `stub/…`).
    pub gateway_version: Option<String>,
    /// True when the gateway was the kit's stub (never a Tyk result).
    pub is_stub: bool,
    /// SHA-256 of the compose file(s) the run used.
    pub compose_sha256: Option<String>,
    /// SHA-256 of the gateway configuration (`run/`) the run used.
    pub gateway_config_sha256: Option<String>,
}

impl RunIdentity {
    /// The identity one run recorded: its gateway and the container evidence, when any.
    pub fn of(s: &Summary) -> RunIdentity {
        // Read through JSON so this works whatever type `environment` has (its keys are fixed).
        let env = serde_json::to_value(&s.environment).unwrap_or_default();
        let text = |pointer: &str| {
            env.pointer(pointer)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let digests = env
            .pointer("/gateway/repo_digests")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        RunIdentity {
            gateway_image: text("/gateway/image"),
            gateway_image_id: text("/gateway/image_id"),
            gateway_repo_digests: digests,
            gateway_version: s.gateway.version.clone(),
            is_stub: s.gateway.is_stub,
            compose_sha256: text("/compose_sha256"),
            gateway_config_sha256: text("/gateway_config_sha256"),
        }
    }
}

/// Where runs disagree on what they tested: one sentence per field (gateway image id, compose
/// file, gateway config). A value a run did not record (a native run) is not a disagreement.
pub fn identity_conflicts(runs: &[(String, RunIdentity)]) -> Vec<String> {
    type Field = (&'static str, fn(&RunIdentity) -> Option<&String>);
    let fields: [Field; 3] = [
        ("gateway image id (digest)", |i| i.gateway_image_id.as_ref()),
        ("compose file sha256", |i| i.compose_sha256.as_ref()),
        ("gateway config sha256", |i| {
            i.gateway_config_sha256.as_ref()
        }),
    ];
    let mut out = Vec::new();
    for (name, get) in fields {
        let mut seen: Vec<(&String, &str)> = Vec::new();
        for (dir, identity) in runs {
            if let Some(value) = get(identity)
                && !seen.iter().any(|(v, _)| *v == value)
            {
                seen.push((value, dir));
            }
        }
        if seen.len() > 1 {
            let list: Vec<String> = seen
                .iter()
                .map(|(value, dir)| format!("{} in {dir}", short(value)))
                .collect();
            out.push(format!(
                "the runs disagree on the {name}: {}",
                list.join(", ")
            ));
        }
    }
    out
}

/// The identity of a set: the first run's, when no run contradicts it.
pub fn set_identity(runs: &[(String, RunIdentity)]) -> (Option<RunIdentity>, Vec<String>) {
    let conflicts = identity_conflicts(runs);
    let identity = runs.first().map(|(_, i)| i.clone());
    if conflicts.is_empty() {
        (identity, conflicts)
    } else {
        (None, conflicts)
    }
}

fn short(value: &str) -> String {
    let bare = value.strip_prefix("sha256:").unwrap_or(value);
    bare.chars().take(12).collect()
}

/// The values of one run that `diff` compares between sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerRunValues {
    /// The run directory, as listed in `RunSet::runs` (or as given to `diff`).
    pub run_dir: String,
    /// The run's verdict.
    pub verdict: Verdict,
    /// Median latency, milliseconds; null when nothing succeeded.
    pub p50_ms: Option<f64>,
    /// 90th percentile latency, milliseconds; null when nothing succeeded.
    pub p90_ms: Option<f64>,
    /// 99th percentile latency, milliseconds; null when nothing succeeded.
    pub p99_ms: Option<f64>,
    /// Largest latency, milliseconds; null when nothing succeeded.
    pub max_ms: Option<f64>,
    /// Outstanding scenarios divided by scheduled scenarios (0 to 1); null when none scheduled.
    pub outstanding_share: Option<f64>,
    /// Policy-list fetches (reloads) the dashboard answered during the run.
    pub policy_fetches: u64,
    /// Reload triggers per fetch; null when there was no fetch.
    pub coalescing_ratio: Option<f64>,
    /// 99th percentile of the runner's start lag behind schedule, milliseconds.
    pub lag_p99_ms: f64,
    /// Median time to usable over all scheduled scenarios (censored); null when unknown.
    #[serde(default)]
    pub usable_p50: Option<CensoredQuantile>,
    /// 90th percentile time to usable over all scheduled scenarios (censored).
    #[serde(default)]
    pub usable_p90: Option<CensoredQuantile>,
    /// True when the summary predates `time_to_usable` (schema 1) and it was derived from its
    /// histogram and counts.
    #[serde(default)]
    pub usable_derived: bool,
}

/// Extracts the compared values of one run; `run_dir` is recorded as given.
pub fn per_run_values(run_dir: &str, s: &Summary) -> PerRunValues {
    let usable = super::censored::time_to_usable_of(s);
    let outstanding_share = (s.scenarios.scheduled > 0)
        .then(|| s.scenarios.outstanding as f64 / s.scenarios.scheduled as f64);
    PerRunValues {
        run_dir: run_dir.to_owned(),
        verdict: s.verdict,
        p50_ms: s.latency_ms.p50,
        p90_ms: s.latency_ms.p90,
        p99_ms: s.latency_ms.p99,
        max_ms: s.latency_ms.max,
        outstanding_share,
        policy_fetches: s.reloads.policy_fetches,
        coalescing_ratio: s.reloads.coalescing_ratio,
        lag_p99_ms: s.scheduler.lag_p99_ms,
        usable_p50: usable.as_ref().map(|t| t.p50.clone()),
        usable_p90: usable.as_ref().map(|t| t.p90.clone()),
        usable_derived: s.time_to_usable.is_none() && usable.is_some(),
    }
}

/// A plausible hang run of v2.9.4 for other modules' tests to vary.
#[cfg(test)]
pub(crate) fn sample_summary() -> Summary {
    use crate::summary::model::*;
    Summary {
        schema_version: SCHEMA_VERSION,
        label: "2.9.4".into(),
        started_at: "2026-11-27T10:15:00Z".into(),
        finished_at: "2026-11-27T10:16:00Z".into(),
        kit_version: "0.1.0".into(),
        config: ScenarioConfig {
            rate_per_s: 10.0,
            duration_s: 30.0,
            trigger: "notify".into(),
            deadline_s: 30.0,
            stall_timeout_s: 10.0,
            request_timeout_s: 5.0,
            backoff: BackoffConfig {
                name: "seed".into(),
                initial_ms: 100.0,
                multiplier: 1.5,
                jitter: 0.5,
                max_interval_ms: 5000.0,
            },
            initial_policies: 100,
        },
        gateway: GatewayInfo {
            url: "http://127.0.0.1:8080".into(),
            version: Some("v2.9.4".into()),
            version_source: "/hello".into(),
            is_stub: false,
        },
        verdict: Verdict::Hang,
        reason: "r".into(),
        scenarios: ScenarioCounts {
            scheduled: 300,
            started: 300,
            succeeded: 270,
            failed: 0,
            outstanding: 30,
        },
        latency_ms: LatencyStats {
            count: 270,
            p50: Some(100.0),
            p90: Some(200.0),
            p99: Some(900.0),
            max: Some(1500.0),
            mean: Some(150.0),
            histogram_b64: String::new(),
        },
        top: vec![],
        reloads: ReloadStats {
            triggers_sent: 300,
            policy_fetches: 20,
            coalescing_ratio: Some(15.0),
            ..ReloadStats::default()
        },
        scheduler: SchedulerStats {
            lag_p99_ms: 1.5,
            ..SchedulerStats::default()
        },
        timeline: vec![],
        files: RunFiles::default(),
        environment: None,
        time_to_usable: None,
        attempts: None,
        gateways: Vec::new(),
        fleet: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::model::*;

    fn summary() -> Summary {
        sample_summary()
    }

    #[test]
    fn per_run_values_takes_the_compared_fields_and_computes_the_outstanding_share() {
        let v = per_run_values("../20261127T101500Z", &summary());
        assert_eq!(v.run_dir, "../20261127T101500Z");
        assert_eq!(v.verdict, Verdict::Hang);
        assert_eq!(v.p99_ms, Some(900.0));
        assert_eq!(v.max_ms, Some(1500.0));
        assert_eq!(v.outstanding_share, Some(0.1));
        assert_eq!(v.policy_fetches, 20);
        assert_eq!(v.coalescing_ratio, Some(15.0));
        assert_eq!(v.lag_p99_ms, 1.5);
    }

    #[test]
    fn outstanding_share_is_null_when_nothing_was_scheduled() {
        let mut s = summary();
        s.scenarios = ScenarioCounts::default();
        assert_eq!(per_run_values("r", &s).outstanding_share, None);
    }
}
