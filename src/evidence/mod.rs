//! Evidence per run, collected through the Docker API (bollard): container logs, image
//! identities, gateway CPU/memory samples and a reload timeline parsed from the gateway log.
//!
//! Evidence is optional: without a reachable Docker socket [`Evidence::connect`] returns `None`
//! and the run goes on. Nothing here fails a run; problems become `errors` entries.
//!
//! The JSON that [`Evidence::finish`] returns (stored as `summary.environment`):
//! - `<service>` (one object per service of the target, e.g. `gateway`, `dashboard`, `redis`):
//!   `image` (name as compose gave it), `image_id` (`sha256:…`), `repo_digests` (registry
//!   digests, empty for local images), `container_id`; the gateway also has `version_from_log`
//!   (from its start line, e.g. `v2.9.4`). A service whose container was not found is absent
//!   and named in `errors`.
//! - `kit_version`: this crate's version.
//! - `compose_sha256`, `gateway_config_sha256`: from env `REPRO_COMPOSE_SHA256` /
//!   `REPRO_GATEWAY_CONFIG_SHA256` (set by the Makefile), `null` when unset.
//! - `gateway_stats`: `samples` (`t_s` since sampling began, `cpu_percent` as the docker CLI
//!   computes it, `null` on the first sample, `mem_bytes` without page cache), `cpu_percent_max`,
//!   `cpu_percent_mean`, `mem_bytes_max`, `mem_bytes_mean`; `null` when no sampler ran.
//! - `reload_timeline`: see [`ReloadTimeline`] (`null` when the gateway log could not be read).
//! - `logs`: service → file name inside the run directory (`gateway.log.gz`, …). Files hold the
//!   container's stdout+stderr, gzip-compressed (read them with `zcat`), each line prefixed with
//!   docker's receive timestamp (RFC 3339, ns), secrets redacted; long runs of look-alike lines
//!   are cut and a text cap applies, reload lines always kept whole (see [`logfile`]).
//! - `logs_lines_left_out`: service → lines the file stands for with
//!   `[reload-repro: N lines left out here]` (absent when none were).
//! - `logs_truncated`: services whose log file hit the text cap (absent when none did).
//! - `errors`: what could not be collected, one sentence each.

mod containers;
pub mod gateway_state;
pub mod logfile;
mod sampler;
mod timeline;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

pub use containers::{PROJECT_LABEL, SERVICE_LABEL, ServiceEvidence};
pub use logfile::read_log_timeline;
pub use sampler::{GatewayStats, StatsSample, StatsSampler};
pub use timeline::{
    GatewayReloads, MAX_EVENTS, ReloadEvent, ReloadEventKind, ReloadTimeline, TimelineBuilder,
    parse_reload_timeline,
};

use containers::DOCKER_CALL_TIMEOUT;

/// Timeout bollard applies to each request; our own, shorter ones normally fire first.
const CLIENT_TIMEOUT_S: u64 = 120;

/// Identifies the stack: compose project name + service names (compose labels
/// `com.docker.compose.project` / `com.docker.compose.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceTarget {
    /// Compose project name (`-p`), e.g. `reload-repro-20261127-101500`.
    pub project: String,
    /// Service whose stats are sampled and whose log gives the reload timeline (`gateway`).
    pub gateway_service: String,
    /// Services whose logs and images are collected (`gateway`, `dashboard`, `redis`).
    pub services: Vec<String>,
}

/// A connection to the Docker daemon running the stack.
pub struct Evidence {
    docker: Docker,
    target: EvidenceTarget,
    secrets: Vec<String>,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed; their count shows redaction is configured.
        f.debug_struct("Evidence")
            .field("target", &self.target)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish_non_exhaustive()
    }
}

/// Set once the "no Docker" warning was logged, so repeated runs do not repeat it.
static WARNED_UNREACHABLE: AtomicBool = AtomicBool::new(false);

impl Evidence {
    /// None (with a warning logged once) when the Docker socket is unreachable — evidence is optional.
    pub async fn connect(target: EvidenceTarget) -> Option<Evidence> {
        match connect_docker().await {
            Ok(docker) => Some(Evidence {
                docker,
                target,
                secrets: Vec::new(),
            }),
            Err(e) => {
                if !WARNED_UNREACHABLE.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "no container evidence (logs, image ids, stats): {e:#}. Mount the Docker \
                         socket (/var/run/docker.sock) or set DOCKER_HOST to collect it"
                    );
                }
                None
            }
        }
    }

    /// Redacts these values (gateway secret, node secret) from every log line collected.
    pub fn with_secrets(mut self, secrets: Vec<String>) -> Self {
        self.secrets = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        self
    }

    /// The stack this collects from.
    pub fn target(&self) -> &EvidenceTarget {
        &self.target
    }

    /// Last n lines of a service's container log (stdout+stderr), for infra_error reasons.
    pub async fn last_log_lines(&self, service: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let id = containers::find_container(&self.docker, &self.target.project, service).await?;
        containers::tail_lines(&self.docker, &id, n, &self.secrets).await
    }

    /// Starts sampling the gateway container's CPU % and memory every `every` via the stats API
    /// (at least 1 s apart: the daemon refreshes stats about once a second).
    pub fn start_sampling(&self, every: Duration) -> StatsSampler {
        StatsSampler::spawn(
            self.docker.clone(),
            self.target.project.clone(),
            self.target.gateway_service.clone(),
            every,
        )
    }

    /// Writes `<service>.log.gz` for every service into run_dir (streamed, compressed and
    /// bounded, see [`logfile`]) and returns the evidence JSON for `summary.environment`.
    pub async fn finish(self, sampler: Option<StatsSampler>, run_dir: &Path) -> serde_json::Value {
        let mut report = EvidenceReport::new();
        if let Some(sampler) = sampler {
            let out = sampler.stop().await;
            report.errors.extend(out.errors);
            report.gateway_stats = Some(GatewayStats::from_samples(out.samples));
        }
        for service in &self.target.services {
            if let Err(e) = self.collect_service(service, run_dir, &mut report).await {
                report.errors.push(format!("service `{service}`: {e:#}"));
            }
        }
        serde_json::to_value(&report).unwrap_or_else(
            |e| serde_json::json!({ "errors": [format!("evidence could not be serialised: {e}")] }),
        )
    }

    /// Image identity and log file of one service; the gateway's log also feeds the timeline.
    async fn collect_service(
        &self,
        service: &str,
        run_dir: &Path,
        report: &mut EvidenceReport,
    ) -> anyhow::Result<()> {
        let id = containers::find_container(&self.docker, &self.target.project, service).await?;
        let is_gateway = service == self.target.gateway_service;
        let mut evidence = match containers::inspect_service(&self.docker, &id).await {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(format!("service `{service}`: {e:#}"));
                ServiceEvidence {
                    container_id: Some(id.clone()),
                    ..Default::default()
                }
            }
        };
        let file_name = format!("{service}.log.gz");
        let path = run_dir.join(&file_name);
        let mut builder = is_gateway.then(TimelineBuilder::default);
        let copied = containers::copy_log(&self.docker, &id, &path, &self.secrets, |line| {
            if let Some(b) = builder.as_mut() {
                b.push_line(line);
            }
        })
        .await;
        match copied {
            Ok(copy) => {
                report.logs.insert(service.to_owned(), file_name);
                if copy.stats.capped {
                    report.logs_truncated.push(service.to_owned());
                }
                if copy.stats.lines_left_out > 0 {
                    report
                        .logs_lines_left_out
                        .insert(service.to_owned(), copy.stats.lines_left_out);
                }
                if let Some(e) = copy.error {
                    report.errors.push(format!("service `{service}`: {e}"));
                }
                if let Some(b) = builder {
                    let timeline = b.finish();
                    evidence.version_from_log = timeline.version.clone();
                    report.reload_timeline = Some(timeline);
                }
            }
            Err(e) => report
                .errors
                .push(format!("service `{service}` log: {e:#}")),
        }
        report.services.insert(service.to_owned(), evidence);
        Ok(())
    }
}

/// Connects with `DOCKER_HOST` or the default socket, agrees an API version (the daemon here
/// is older than bollard's default) and proves the daemon answers.
async fn connect_docker() -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .map_err(|e| anyhow::anyhow!("cannot open the Docker socket: {e}"))?
        .with_timeout(Duration::from_secs(CLIENT_TIMEOUT_S));
    let docker = tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| anyhow::anyhow!("the Docker daemon did not answer within 10 s"))?
        .map_err(|e| anyhow::anyhow!("the Docker daemon did not answer: {e}"))?;
    tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.ping())
        .await
        .map_err(|_| anyhow::anyhow!("the Docker daemon did not answer a ping within 10 s"))?
        .map_err(|e| anyhow::anyhow!("the Docker daemon did not answer a ping: {e}"))?;
    Ok(docker)
}

/// The evidence JSON; see the module docs for every key.
#[derive(Debug, Serialize)]
struct EvidenceReport {
    /// One entry per service found, flattened to the top level (`gateway`, `redis`, …).
    #[serde(flatten)]
    services: BTreeMap<String, ServiceEvidence>,
    /// This crate's version.
    kit_version: &'static str,
    /// SHA-256 of the compose file, from env `REPRO_COMPOSE_SHA256`.
    compose_sha256: Option<String>,
    /// SHA-256 of the gateway config, from env `REPRO_GATEWAY_CONFIG_SHA256`.
    gateway_config_sha256: Option<String>,
    /// Gateway CPU and memory over the run.
    gateway_stats: Option<GatewayStats>,
    /// Reloads as the gateway logged them.
    reload_timeline: Option<ReloadTimeline>,
    /// Service → log file name in the run directory.
    logs: BTreeMap<String, String>,
    /// Service → lines left out of its log file (look-alike runs, text past the cap).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    logs_lines_left_out: BTreeMap<String, u64>,
    /// Services whose log file hit the text cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs_truncated: Vec<String>,
    /// What could not be collected.
    errors: Vec<String>,
}

impl EvidenceReport {
    fn new() -> Self {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        EvidenceReport {
            services: BTreeMap::new(),
            kit_version: env!("CARGO_PKG_VERSION"),
            compose_sha256: env("REPRO_COMPOSE_SHA256"),
            gateway_config_sha256: env("REPRO_GATEWAY_CONFIG_SHA256"),
            gateway_stats: None,
            reload_timeline: None,
            logs: BTreeMap::new(),
            logs_lines_left_out: BTreeMap::new(),
            logs_truncated: Vec::new(),
            errors: Vec::new(),
        }
    }
}
