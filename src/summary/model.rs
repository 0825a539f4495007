//! The run summary: what `summary.json` holds, field by field.
//!
//! Pure data (serde + schemars), no I/O and no async runtime, so the diff and the renderers can
//! read it anywhere. `schema/summary.schema.json` is generated from these types (see the
//! `schema_file_matches_model` test) and every `///` below becomes a field description there.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Layout version of `summary.json`. Readers refuse documents newer than they know.
/// Version 2 added `time_to_usable` and `attempts`; version 3 added `gateways` and `fleet` (runs
/// against several gateways). Older documents are still read.
pub const SCHEMA_VERSION: u32 = 3;

/// Everything one run of `reload-repro run` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Layout version of this document (currently 3).
    pub schema_version: u32,
    /// Free label of the run, e.g. the gateway tag (`2.9.4`, `pr`).
    pub label: String,
    /// When the load started, RFC 3339 UTC.
    pub started_at: String,
    /// When the summary was written, RFC 3339 UTC.
    pub finished_at: String,
    /// Version of reload-repro that wrote this.
    pub kit_version: String,
    /// The scenario configuration; two summaries are comparable only if these match.
    pub config: ScenarioConfig,
    /// The gateway under test.
    pub gateway: GatewayInfo,
    /// The outcome of the run.
    pub verdict: Verdict,
    /// Why the verdict is what it is, in one sentence with the evidence.
    pub reason: String,
    /// What happened to the scheduled scenarios.
    pub scenarios: ScenarioCounts,
    /// Latency (first 200 minus scheduled start) over successful scenarios, milliseconds.
    pub latency_ms: LatencyStats,
    /// The 10 highest policy indexes, as the seed tool printed them.
    pub top: Vec<TopRow>,
    /// Reload activity as seen by the dashboard mock.
    pub reloads: ReloadStats,
    /// Whether the runner itself kept up with its schedule.
    pub scheduler: SchedulerStats,
    /// Per-second time series from the start of the load.
    pub timeline: Vec<SecondSample>,
    /// Where the run's other files are, relative to the summary.
    pub files: RunFiles,
    /// Container evidence, present when the run went through `make repro` (compose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<serde_json::Value>,
    /// Time to usable over ALL scheduled scenarios, the unfinished ones censored at their wait
    /// (schema 2; absent in older summaries, where `diff` derives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_usable: Option<TimeToUsable>,
    /// Outcomes of key-creation and trigger attempts by class (schema 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<AttemptStats>,
    /// One result per gateway, in the order of `--gateway` (schema 3; only when the run had more
    /// than one). The top-level `scenarios`, `latency_ms`, `time_to_usable` and `top` then
    /// describe the fleet: a scenario succeeds once its key was created on EVERY gateway, and its
    /// latency is the last gateway's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayResult>,
    /// How a change spread over the fleet (schema 3; only with more than one gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStats>,
}

/// What one gateway of a fleet run got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayResult {
    /// Control API base URL the runner used for this gateway.
    pub url: String,
    /// Container name under compose; null when the runner had no Docker access.
    pub container: Option<String>,
    /// This gateway's verdict, decided from its own facts by the same rules as a run's.
    pub verdict: Verdict,
    /// Why, in one sentence with the evidence.
    pub reason: String,
    /// The scenarios as seen on this gateway: `succeeded` = the key was created on it.
    pub scenarios: ScenarioCounts,
    /// Latency (first 200 from this gateway minus scheduled start), milliseconds.
    pub latency_ms: LatencyStats,
    /// Time to usable on this gateway over every scheduled scenario (censored).
    pub time_to_usable: TimeToUsable,
    /// Key-creation attempts on this gateway by class.
    pub key_creations: AttemptCounts,
}

/// How each change spread over the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetStats {
    /// Gateways in the run.
    pub gateways: u64,
    /// Scenarios whose key was created on every gateway.
    pub usable_everywhere: u64,
    /// `usable_everywhere` / scheduled scenarios (0 to 1).
    pub share_usable_everywhere: f64,
    /// Per scenario usable everywhere: the first gateway's latency, milliseconds.
    pub first_ms: LatencyStats,
    /// Per scenario usable everywhere: the median gateway's latency, milliseconds.
    pub median_ms: LatencyStats,
    /// Per scenario usable everywhere: the last gateway's latency, milliseconds.
    pub last_ms: LatencyStats,
    /// Per scenario usable everywhere: last minus first gateway, milliseconds.
    pub spread_ms: LatencyStats,
    /// Policy fetches the mock answered during the run, per `x-tyk-nodeid` (one per gateway
    /// process; node ids are the gateways' own, so they are not matched to URLs).
    pub fetches_by_node: Vec<NodeFetches>,
}

/// Fetches one gateway node made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFetches {
    /// `x-tyk-nodeid` as sent.
    pub node_id: String,
    /// Fetches answered 200.
    pub fetches: u64,
    /// Bytes served to it.
    pub bytes: u64,
}

/// Time to usable over every scheduled scenario: a censored empirical CDF.
///
/// A scenario that got its key counts at its latency; one that did not (outstanding, failed,
/// never started) is censored at its wait, the time from its scheduled start to the end of
/// the run. See `src/summary/censored.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeToUsable {
    /// How it was computed.
    pub method: String,
    /// Scenarios counted: every scheduled one.
    pub scenarios: u64,
    /// Scenarios that got their key.
    pub usable: u64,
    /// Scenarios that did not (censored at their wait).
    pub censored: u64,
    /// Longest wait of a censored scenario, milliseconds; null when none was censored.
    pub longest_wait_ms: Option<f64>,
    /// Median time to usable.
    pub p50: CensoredQuantile,
    /// 90th percentile time to usable.
    pub p90: CensoredQuantile,
    /// Share of all scheduled scenarios usable within 1, 2, 5, 10 and 30 s.
    pub share_usable_by: Vec<ShareUsableBy>,
}

/// A quantile of a censored sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CensoredQuantile {
    /// Milliseconds: the quantile when `reached`, else a lower bound of it ("> ms").
    pub ms: Option<f64>,
    /// False when fewer scenarios got their key than the quantile needs: it is only known to
    /// exceed `ms`.
    pub reached: bool,
}

/// Share of scheduled scenarios usable within a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareUsableBy {
    /// The time, seconds after the scheduled start.
    pub within_s: f64,
    /// Scenarios that got their key within it.
    pub usable: u64,
    /// `usable` / all scheduled scenarios (0 to 1).
    pub share: f64,
    /// Censored scenarios whose wait was shorter than `within_s` (the run ended first): when
    /// not 0, `share` is a lower bound.
    pub censored_earlier: u64,
}

/// Attempt outcomes by class, per run and per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptStats {
    /// Key-creation attempts (`POST /tyk/keys/create`).
    pub key_creations: AttemptCounts,
    /// Reload triggers: the runner's reload/group calls, or the mock's notification publishes.
    pub triggers: AttemptCounts,
    /// Who counted `triggers`: `runner` (reload/group calls), `mock` (notify publishes: `ok`
    /// published, `other` failed to publish) or `none`.
    pub triggers_counted_by: String,
    /// The connect timeout, milliseconds: a connect that takes longer is retried at once, not
    /// counted as a backoff step.
    pub connect_timeout_ms: f64,
    /// Scenarios with at least one key-creation attempt that ended in the request timeout.
    pub scenarios_with_timeout: u64,
    /// Failed attempts (no answer: timed out, refused, reset) that started near a policy fetch.
    pub near_reload: NearReload,
    /// Per second from the start of the load (aligned with `timeline`).
    pub timeline: Vec<AttemptSecond>,
}

/// Attempts of one kind, by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptCounts {
    /// Answered 200.
    pub ok: u64,
    /// Answered "policy not found": the gateway has not loaded the policy yet.
    pub not_yet: u64,
    /// No answer within the request timeout (`--request-timeout`).
    pub timed_out: u64,
    /// The TCP connect did not complete within the connect timeout (retried at once).
    pub connect_timed_out: u64,
    /// Connection refused, reset or closed before the answer.
    pub refused_or_reset: u64,
    /// Anything else: another status, an unreadable answer, a publish error.
    pub other: u64,
}

/// Failed attempts near reloads: the gateway dropping requests while it reloads (Tyk #1402).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NearReload {
    /// An attempt is near a reload when it started within this many ms of a policy fetch.
    pub window_ms: f64,
    /// Attempts without an answer (timed out, connect timed out, refused or reset) considered.
    pub failed_attempts: u64,
    /// Of those, the ones that started near a policy fetch.
    pub near_fetch: u64,
    /// Share of the run's time covered by the windows around fetches (what chance would give).
    pub window_share: f64,
    /// True when failures cluster around fetches: a gateway finding, not a kit problem.
    pub finding: bool,
}

/// Attempt outcomes in one second of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptSecond {
    /// Seconds since the load started.
    pub second: u64,
    /// Key-creation attempts that ended in this second, by class.
    pub key_creations: AttemptCounts,
    /// Trigger calls (reload/group) that ended in this second, by class.
    pub triggers: AttemptCounts,
}

/// The knobs that define a scenario; `diff` refuses to compare runs where these differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Scenario starts per second.
    pub rate_per_s: f64,
    /// Length of the load phase, seconds.
    pub duration_s: f64,
    /// How each scenario triggers the reload: `notify`, `reload`, `group` or `none`.
    pub trigger: String,
    /// How long after the last scheduled start waiting scenarios are given, seconds.
    pub deadline_s: f64,
    /// No success and no policy fetch for this long while scenarios wait ends the run, seconds.
    pub stall_timeout_s: f64,
    /// Timeout of each HTTP request, seconds.
    pub request_timeout_s: f64,
    /// Retry schedule of key creation.
    pub backoff: BackoffConfig,
    /// Policies the dashboard served when the load started (learned from the mock).
    pub initial_policies: u64,
}

/// Exponential backoff between key-creation attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// Name of the preset (`seed`, `fine`) or `custom`.
    pub name: String,
    /// First interval, milliseconds.
    pub initial_ms: f64,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Randomisation factor: each interval is drawn from `[d·(1−j), d·(1+j)]`.
    pub jitter: f64,
    /// Largest interval before jitter, milliseconds.
    pub max_interval_ms: f64,
}

/// The gateway under test, as far as it could be learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayInfo {
    /// Control API base URL the runner used.
    pub url: String,
    /// Version string, e.g. `v2.9.4` or `stub/v2.9.4-scheduling`; null when unknown.
    pub version: Option<String>,
    /// Where `version` came from (`/hello`, `log`, `image tag`, `unknown`).
    pub version_source: String,
    /// True when the gateway is the kit's stub: such a run is never a Tyk result.
    pub is_stub: bool,
}

/// Outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every scheduled scenario created its key before the deadline.
    Pass,
    /// Some scenarios never got their key: deadline reached or the gateway stalled.
    Hang,
    /// The gateway stopped answering (transport errors, timeouts, its container exited or was
    /// OOM-killed): a result about the gateway, but not the lost-trigger hang.
    Unresponsive,
    /// The kit could not measure: wrong secret, unreachable service, unexpected answers.
    InfraError,
    /// Stopped by Ctrl-C or SIGTERM; holds what was measured until then.
    Interrupted,
}

impl Verdict {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Hang => "hang",
            Verdict::Unresponsive => "unresponsive",
            Verdict::InfraError => "infra_error",
            Verdict::Interrupted => "interrupted",
        }
    }
}

/// Accounting of scheduled scenarios: `started = succeeded + failed + outstanding`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCounts {
    /// Scenarios the schedule planned (`rate × duration`).
    pub scheduled: u64,
    /// Scenarios that were started before the run ended.
    pub started: u64,
    /// Scenarios whose key was created.
    pub succeeded: u64,
    /// Scenarios that ended in an error that retrying cannot fix.
    pub failed: u64,
    /// Scenarios still waiting for their policy when the run ended.
    pub outstanding: u64,
}

/// Latency statistics over successful scenarios, milliseconds. Null when nothing succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyStats {
    /// Number of latencies recorded.
    pub count: u64,
    /// Median, milliseconds.
    pub p50: Option<f64>,
    /// 90th percentile, milliseconds.
    pub p90: Option<f64>,
    /// 99th percentile, milliseconds.
    pub p99: Option<f64>,
    /// Largest latency, milliseconds.
    pub max: Option<f64>,
    /// Mean, milliseconds.
    pub mean: Option<f64>,
    /// HDR histogram of latencies in microseconds, V2 serialization, base64; merge runs with it.
    pub histogram_b64: String,
}

/// One row of the seed's report: a scenario by policy index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopRow {
    /// Policy count after this scenario's add.
    pub index: u64,
    /// Id of the policy the key was bound to.
    pub policy_id: String,
    /// `success`, `failed` or `outstanding`.
    pub outcome: String,
    /// First success minus scheduled start, milliseconds; null unless it succeeded.
    pub latency_ms: Option<f64>,
    /// Last failed attempt minus scheduled start, milliseconds: the policy arrived between this
    /// and `latency_ms` (backoff quantisation). Null when the first attempt succeeded.
    pub last_failure_ms: Option<f64>,
    /// Key-creation attempts made.
    pub attempts: u32,
    /// Last error seen, if any.
    pub last_error: Option<String>,
}

/// Reload activity seen from the dashboard's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadStats {
    /// Reload triggers sent (notifications published, or reload calls made).
    pub triggers_sent: u64,
    /// Policy-list fetches answered during the run.
    pub policy_fetches: u64,
    /// Fetches the dashboard refused (wrong node secret).
    pub rejected_fetches: u64,
    /// Notifications that failed to publish.
    pub publish_errors: u64,
    /// Median time the dashboard spent serving one fetch, milliseconds.
    pub fetch_p50_ms: Option<f64>,
    /// Longest time between consecutive fetches (or run start/end) during the run, seconds.
    pub longest_gap_without_fetch_s: Option<f64>,
    /// Last fetch minus last policy add, seconds; negative means the newest policies were
    /// never fetched (the lost-trigger signature).
    pub last_fetch_after_last_add_s: Option<f64>,
    /// Triggers per fetch: how many triggers each reload absorbed.
    pub coalescing_ratio: Option<f64>,
}

/// How well the runner kept its own schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulerStats {
    /// Median start lag behind schedule, milliseconds.
    pub lag_p50_ms: f64,
    /// 99th percentile start lag, milliseconds.
    pub lag_p99_ms: f64,
    /// Largest start lag, milliseconds.
    pub lag_max_ms: f64,
    /// Starts later than `late_threshold_ms`.
    pub late_starts: u64,
    /// Lag above which a start counts as late, milliseconds.
    pub late_threshold_ms: f64,
    /// True when the runner, not the gateway, limited the run (more than 1 % late starts).
    pub runner_was_bottleneck: bool,
}

/// One second of the run, counted from the start of the load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondSample {
    /// Seconds since the load started.
    pub second: u64,
    /// Scenarios started in this second.
    pub started: u64,
    /// Scenarios that got their key in this second.
    pub succeeded: u64,
    /// Scenarios started but not finished at the end of this second.
    pub in_flight: u64,
    /// Key-creation attempts made in this second.
    pub attempts: u64,
    /// Policy fetches the dashboard answered in this second.
    pub fetches: u64,
}

/// The run's other files, relative to the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFiles {
    /// Per-scenario records, one JSON object per line.
    pub scenarios: String,
    /// The dashboard's fetch log for the run window.
    pub fetches: String,
    /// The seed-format report.
    pub report: String,
    /// The human summary.
    pub markdown: String,
}

impl Default for RunFiles {
    fn default() -> Self {
        Self {
            scenarios: "scenarios.jsonl".into(),
            fetches: "fetches.json".into(),
            report: "report.txt".into(),
            markdown: "summary.md".into(),
        }
    }
}

/// One scenario as written to `scenarios.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioRecord {
    /// Position in the schedule (0-based).
    pub seq: u64,
    /// Policy count after the add; 0 if the add failed.
    pub index: u64,
    /// Policy id; empty if the add failed.
    pub policy_id: String,
    /// Scheduled start, milliseconds since the load started.
    pub scheduled_ms: f64,
    /// Actual start minus scheduled start, milliseconds.
    pub lag_ms: f64,
    /// Add done, milliseconds since the scheduled start; null if it did not complete.
    pub add_done_ms: Option<f64>,
    /// Key-creation attempts.
    pub attempts: u32,
    /// Last failed attempt, milliseconds since the scheduled start.
    pub last_failure_ms: Option<f64>,
    /// First 200, milliseconds since the scheduled start (the latency).
    pub success_ms: Option<f64>,
    /// `success`, `failed` or `outstanding`.
    pub outcome: Outcome,
    /// Last error seen.
    pub last_error: Option<String>,
    /// Per gateway, in the order of `--gateway` (only with more than one gateway; the fields
    /// above then describe the fleet: success once every gateway answered 200).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayScenario>,
}

/// One scenario on one gateway of a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GatewayScenario {
    /// Key-creation attempts on this gateway.
    pub attempts: u32,
    /// First 200 from this gateway, milliseconds since the scheduled start.
    pub success_ms: Option<f64>,
    /// How it ended on this gateway.
    pub outcome: Outcome,
    /// Last failed attempt on this gateway, milliseconds since the scheduled start.
    pub last_failure_ms: Option<f64>,
    /// Last error this gateway gave.
    pub last_error: Option<String>,
}

/// How one scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The key was created.
    Success,
    /// An error retrying cannot fix.
    Failed,
    /// Still waiting when the run ended.
    Outstanding,
}

impl Outcome {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Outstanding => "outstanding",
        }
    }
}
