//! `summary.environment`: the container evidence of a compose run (image identities, gateway
//! CPU/memory, the reload timeline from the gateway log, the log files), as typed data.
//!
//! The collector is `crate::evidence` (Docker API); these are only the types, pure serde +
//! schemars, so the summary, diff and plots read them without Docker. Fields are declared in
//! alphabetical order on purpose: `summary.json` keeps the key order it had when `environment`
//! was an untyped JSON object (serde_json sorts object keys), so one-gateway summaries are
//! byte-for-byte what they were. With several gateway containers (`make repro GATEWAYS=N`) the
//! per-container evidence is in `gateways`, one entry per container in gateway order.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Container evidence of one run (`make repro`, compose).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// SHA-256 of the compose file(s), from env `REPRO_COMPOSE_SHA256`; null when unset.
    pub compose_sha256: Option<String>,
    /// The dashboard mock's container; absent when it was not found (see `errors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<ServiceEvidence>,
    /// What could not be collected, one sentence each.
    #[serde(default)]
    pub errors: Vec<String>,
    /// The gateway's container (with several gateway containers: the first one's, so image
    /// readers need not know about fleets); absent when it was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ServiceEvidence>,
    /// SHA-256 of the gateway config (`run/`), from env `REPRO_GATEWAY_CONFIG_SHA256`.
    pub gateway_config_sha256: Option<String>,
    /// Gateway CPU and memory over the run; null when no sampler ran, and with several gateway
    /// containers (then each entry of `gateways` has its own).
    pub gateway_stats: Option<GatewayStats>,
    /// One entry per gateway container, in gateway order (gateway 1 first), present only with
    /// several gateway containers (`GATEWAYS=N`, N > 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayEvidence>,
    /// Version of reload-repro that collected this.
    pub kit_version: String,
    /// Log name → file name in the run directory (`gateway` → `gateway.log.gz`; with several
    /// gateway containers `gateway-1` → `gateway-1.log.gz`, …). gzip, read with `zcat`.
    #[serde(default)]
    pub logs: BTreeMap<String, String>,
    /// Log name → lines the file stands for with `[reload-repro: N lines left out here]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs_lines_left_out: BTreeMap<String, u64>,
    /// Logs whose file hit the text cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs_truncated: Vec<String>,
    /// Redis's container; absent when it was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<ServiceEvidence>,
    /// Reloads as the gateway logged them; null when its log could not be read, and with
    /// several gateway containers (then each entry of `gateways` has its own).
    pub reload_timeline: Option<ReloadTimeline>,
}

impl Environment {
    /// The evidence of a service by its compose name (`gateway`, `dashboard`, `redis`).
    pub fn service(&self, name: &str) -> Option<&ServiceEvidence> {
        match name {
            "gateway" => self.gateway.as_ref(),
            "dashboard" => self.dashboard.as_ref(),
            "redis" => self.redis.as_ref(),
            _ => None,
        }
    }

    /// The slot for a service's evidence; `None` for a service the summary does not record.
    pub fn service_mut(&mut self, name: &str) -> Option<&mut Option<ServiceEvidence>> {
        match name {
            "gateway" => Some(&mut self.gateway),
            "dashboard" => Some(&mut self.dashboard),
            "redis" => Some(&mut self.redis),
            _ => None,
        }
    }

    /// The reload timeline of the gateway (with several containers: gateway 1's).
    pub fn gateway_timeline(&self) -> Option<&ReloadTimeline> {
        self.reload_timeline
            .as_ref()
            .or_else(|| self.gateways.first()?.reload_timeline.as_ref())
    }
}

/// The evidence of one gateway container when the gateway service runs several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayEvidence {
    /// Container name, e.g. `reload-repro-…-gateway-2` (Compose v2) or `…_gateway_2` (v1).
    pub container: String,
    /// Compose's container number (label `com.docker.compose.container-number`), when set.
    pub container_number: Option<u32>,
    /// 1-based position: "gateway N" in the run's messages and `summary.gateways[N-1]`.
    pub gateway: u32,
    /// Image identity of the container (and `version_from_log`); null when inspect failed.
    pub identity: Option<ServiceEvidence>,
    /// File name of its log in the run directory (`gateway-N.log.gz`); null when not written.
    pub log: Option<String>,
    /// Reloads as this container logged them; null when its log could not be read.
    pub reload_timeline: Option<ReloadTimeline>,
    /// Its CPU and memory over the run; null when no sampler ran.
    pub stats: Option<GatewayStats>,
}

/// Image identity of one service's container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEvidence {
    /// Id of the container the evidence came from.
    pub container_id: Option<String>,
    /// Image as the compose file names it, e.g. `tykio/tyk-gateway:v2.9.4`.
    pub image: Option<String>,
    /// Content id of that image (`sha256:…`).
    pub image_id: Option<String>,
    /// Registry digests of the image (empty for a locally built or imported image).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Version from the gateway's start line (gateway only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_from_log: Option<String>,
}

/// One stats snapshot of a gateway container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsSample {
    /// CPU use in percent of one core (200 = two cores busy), as the docker CLI computes it;
    /// null on the first sample.
    pub cpu_percent: Option<f64>,
    /// Memory in use without the page cache, bytes.
    pub mem_bytes: u64,
    /// Seconds since sampling started.
    pub t_s: f64,
}

/// The stats samples of a run with their extremes and means.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayStats {
    /// Highest CPU %, over samples that have one.
    pub cpu_percent_max: Option<f64>,
    /// Mean CPU %, over samples that have one.
    pub cpu_percent_mean: Option<f64>,
    /// Highest memory use, bytes.
    pub mem_bytes_max: Option<u64>,
    /// Mean memory use, bytes.
    pub mem_bytes_mean: Option<u64>,
    /// Every sample in time order (about one a second).
    pub samples: Vec<StatsSample>,
}

/// What one recognised gateway log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReloadEventKind {
    /// "Reloading endpoints": a reload trigger reached the gateway.
    ReloadingEndpoints,
    /// "Reload queued": the gateway scheduled a reload.
    ReloadQueued,
    /// "Reload already queued": a trigger absorbed by a reload already scheduled or running.
    ReloadAlreadyQueued,
    /// "API reload complete": a reload finished.
    ApiReloadComplete,
    /// "Policies found (N total)": a policy fetch returned N policies.
    PoliciesFound,
    /// "Tyk Gateway started (v…)" or "stub gateway started (…)": the process (re)started.
    GatewayStarted,
}

/// One recognised line of the gateway log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadEvent {
    /// What the line says.
    pub kind: ReloadEventKind,
    /// 1-based line number in the log.
    pub line: u64,
    /// N of "Policies found (N total)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<u64>,
    /// Seconds since the first timestamped event of this log, when the time parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_s: Option<f64>,
    /// The line's timestamp as written (docker prefix, logrus `time=` or JSON `time`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// The reload history of one gateway log (see `crate::evidence` for the pairing rule).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadTimeline {
    /// "Reload already queued" lines: triggers folded into a reload in progress.
    pub already_queued: u64,
    /// Recognised lines in log order, at most 10,000.
    pub events: Vec<ReloadEvent>,
    /// Recognised lines in total (may exceed the length of `events`).
    pub events_total: u64,
    /// Lines read from the log.
    pub lines_read: u64,
    /// The `time` of the event that `t_s` counts from.
    pub origin_time: Option<String>,
    /// N of the last "Policies found (N total)".
    pub policies_found_last: Option<u64>,
    /// Window open ("Reloading endpoints" / "Reload queued") → "API reload complete", seconds.
    pub reload_durations_s: Vec<f64>,
    /// "API reload complete" lines: reloads executed.
    pub reloads_completed: u64,
    /// "Reload queued" lines.
    pub reloads_queued: u64,
    /// "Reloading endpoints" lines: triggers the gateway received.
    pub triggers_seen: u64,
    /// Version from the last start line, e.g. `v2.9.4` or `stub/v2.9.4`.
    pub version: Option<String>,
}

#[cfg(test)]
#[path = "environment_tests.rs"]
mod tests;
