//! Evidence per run, collected through the Docker API (bollard): container logs, image
//! identities, gateway CPU/memory samples and a reload timeline parsed from the gateway log.
//!
//! Evidence is optional: without a reachable Docker socket [`Evidence::connect`] returns `None`
//! and the run goes on. Nothing here fails a run; problems become `errors` entries.
//!
//! [`Evidence::finish`] returns the typed [`Environment`] stored as `summary.environment` (every
//! field is documented in `src/summary/environment.rs` and `schema/summary.schema.json`):
//! - `gateway`, `dashboard`, `redis`: image identity of each service's container (`image`,
//!   `image_id`, `repo_digests`, `container_id`; the gateway also `version_from_log`, from its
//!   start line). A service whose container was not found is absent and named in `errors`.
//! - `kit_version`; `compose_sha256`, `gateway_config_sha256` from env `REPRO_COMPOSE_SHA256` /
//!   `REPRO_GATEWAY_CONFIG_SHA256` (set by scripts/repro.sh), `null` when unset.
//! - `gateway_stats`: CPU % (as the docker CLI computes it) and memory (without page cache)
//!   about once a second, with max and mean; `reload_timeline`: see [`ReloadTimeline`].
//! - `logs`: log name → file in the run directory (`gateway.log.gz`, …): the container's
//!   stdout+stderr, gzip (read with `zcat`), each line prefixed with docker's receive timestamp
//!   (RFC 3339, ns), secrets redacted, long runs of look-alike lines cut and a text cap applied,
//!   reload lines always kept whole (see [`logfile`]); `logs_lines_left_out`, `logs_truncated`.
//! - `errors`: what could not be collected, one sentence each.
//!
//! Several gateway containers (`make repro GATEWAYS=N`: compose `--scale gateway=N`): the runner
//! finds them with [`Evidence::discover_gateways`] and hands them over with
//! [`Evidence::set_gateway_containers`] before [`Evidence::start_sampling`]. Then each gets its
//! own stats sampler, log file (`gateway-1.log.gz`, `gateway-2.log.gz`, …; log names
//! `gateway-1`, …), reload timeline, image identity and version, as one entry of `gateways` in
//! gateway order, and [`Evidence::gateway_states`] looks at each for the container-death check.
//! The top-level `gateway` is gateway 1's identity; `gateway_stats` and `reload_timeline` are
//! null (they are per entry). With one container nothing changes.

mod containers;
mod fleet;
pub mod gateway_state;
pub mod logfile;
mod sampler;
mod timeline;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bollard::Docker;

pub use crate::summary::environment::{Environment, GatewayEvidence};
pub use containers::{CONTAINER_NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL, ServiceEvidence};
pub use fleet::{GatewayContainer, log_name, order_containers};
pub use logfile::read_log_timeline;
pub use sampler::{GatewayStats, StatsSample, StatsSampler};
pub use timeline::{
    GatewayReloads, MAX_EVENTS, ReloadEvent, ReloadEventKind, ReloadTimeline, TimelineBuilder,
    parse_reload_timeline,
};

use crate::telemetry::Secret;
use containers::{DOCKER_CALL_TIMEOUT, find_container, inspect_service};
use fleet::shown_gateway;
use sampler::StatsSubject;

/// Timeout bollard applies to each request; our own, shorter ones normally fire first.
const CLIENT_TIMEOUT_S: u64 = 120;

/// Identifies the stack: compose project name + service names (compose labels
/// `com.docker.compose.project` / `com.docker.compose.service`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceTarget {
    /// Compose project name (`-p`), e.g. `reload-repro-20261127-101500`.
    pub project: String,
    /// Service whose stats are sampled and whose log gives the reload timeline (`gateway`).
    pub gateway_service: String,
    /// Services whose logs and images are collected (`gateway`, `dashboard`, `redis`).
    pub services: Vec<String>,
    /// The gateway service's containers by name, in gateway order (see
    /// [`Evidence::discover_gateways`]); empty: its one container, found by the compose labels.
    pub gateway_containers: Vec<String>,
}

/// A connection to the Docker daemon running the stack.
#[derive(Debug)]
pub struct Evidence {
    docker: Docker,
    target: EvidenceTarget,
    /// Redacted from every log line; `Debug` shows `<redacted>` for each.
    secrets: Vec<Secret>,
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
        self.secrets = secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
        self
    }

    /// The stack this collects from.
    pub fn target(&self) -> &EvidenceTarget {
        &self.target
    }

    /// Last n lines of a service's container log (stdout+stderr), for infra_error reasons.
    pub async fn last_log_lines(&self, service: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let id = find_container(&self.docker, &self.target.project, service).await?;
        containers::tail_lines(&self.docker, &id, n, &self.secrets).await
    }

    /// Last n lines of one container's log (by name or id), e.g. one gateway of a fleet.
    pub async fn last_container_log_lines(
        &self,
        container: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        containers::tail_lines(&self.docker, container, n, &self.secrets).await
    }

    /// Starts sampling CPU % and memory of the gateway container, or of each of
    /// `gateway_containers`, every `every` via the stats API (at least 1 s apart: the daemon
    /// refreshes stats about once a second). Call it after [`Evidence::set_gateway_containers`].
    pub fn start_sampling(&self, every: Duration) -> StatsSampler {
        let subjects = if self.target.gateway_containers.is_empty() {
            vec![StatsSubject::Service {
                project: self.target.project.clone(),
                service: self.target.gateway_service.clone(),
            }]
        } else {
            self.target
                .gateway_containers
                .iter()
                .cloned()
                .map(StatsSubject::Container)
                .collect()
        };
        StatsSampler::spawn(self.docker.clone(), subjects, every)
    }

    /// Writes a log file per service (per gateway container with several) into run_dir
    /// (streamed, compressed and bounded, see [`logfile`]) and returns the evidence for
    /// `summary.environment`.
    pub async fn finish(self, sampler: Option<StatsSampler>, run_dir: &Path) -> Environment {
        let mut report = new_environment();
        let mut stats = Vec::new();
        if let Some(sampler) = sampler {
            for out in sampler.stop().await {
                report.errors.extend(out.errors);
                stats.push(GatewayStats::from_samples(out.samples));
            }
        }
        let fleet = self.target.gateway_containers.len() > 1;
        if !fleet {
            report.gateway_stats = stats.first().cloned();
        }
        for service in &self.target.services {
            if fleet && *service == self.target.gateway_service {
                self.collect_gateways(run_dir, &stats, &mut report).await;
            } else if let Err(e) = self.collect_service(service, run_dir, &mut report).await {
                report.errors.push(format!("service `{service}`: {e:#}"));
            }
        }
        report
    }

    /// Image identity and log file of one service; the gateway's log also feeds the timeline.
    async fn collect_service(
        &self,
        service: &str,
        run_dir: &Path,
        report: &mut Environment,
    ) -> anyhow::Result<()> {
        let is_gateway = service == self.target.gateway_service;
        let id = match self.target.gateway_containers.first() {
            Some(name) if is_gateway => name.clone(),
            _ => find_container(&self.docker, &self.target.project, service).await?,
        };
        let shown = format!("service `{service}`");
        let mut evidence = match inspect_service(&self.docker, &id).await {
            Ok((e, _)) => e,
            Err(e) => {
                report.errors.push(format!("{shown}: {e:#}"));
                ServiceEvidence {
                    container_id: Some(id.clone()),
                    ..Default::default()
                }
            }
        };
        let timeline = self
            .copy_log(&id, service, is_gateway, run_dir, &shown, report)
            .await;
        if let Some(timeline) = timeline {
            evidence.version_from_log = timeline.version.clone();
            report.reload_timeline = Some(timeline);
        }
        match report.service_mut(service) {
            Some(slot) => *slot = Some(evidence),
            None => report.errors.push(format!(
                "{shown}: its log was kept, but summary.environment records the image of \
                 gateway, dashboard and redis only"
            )),
        }
        Ok(())
    }

    /// One `gateways` entry per gateway container, in gateway order, with `stats[i]` from the
    /// sampler; the top-level `gateway` becomes gateway 1's identity.
    async fn collect_gateways(
        &self,
        run_dir: &Path,
        stats: &[GatewayStats],
        report: &mut Environment,
    ) {
        let containers = &self.target.gateway_containers;
        for (i, name) in containers.iter().enumerate() {
            let position = i + 1;
            let shown = shown_gateway(position, name);
            let (mut identity, number) = match inspect_service(&self.docker, name).await {
                Ok((e, n)) => (Some(e), n),
                Err(e) => {
                    report.errors.push(format!("{shown}: {e:#}"));
                    (None, None)
                }
            };
            let log = log_name(&self.target.gateway_service, position, containers.len());
            let timeline = self
                .copy_log(name, &log, true, run_dir, &shown, report)
                .await;
            if let (Some(identity), Some(timeline)) = (identity.as_mut(), timeline.as_ref()) {
                identity.version_from_log = timeline.version.clone();
            }
            report.gateways.push(GatewayEvidence {
                container: name.clone(),
                container_number: number,
                gateway: u32::try_from(position).unwrap_or(u32::MAX),
                identity,
                log: report.logs.get(&log).cloned(),
                reload_timeline: timeline,
                stats: stats.get(i).cloned(),
            });
        }
        report.gateway = report.gateways.first().and_then(|g| g.identity.clone());
    }

    /// Copies container `id`'s log to `<log_name>.log.gz`, recording it under `log_name` in
    /// `logs` (and `logs_truncated`, `logs_lines_left_out`); the reload timeline of the lines
    /// when `with_timeline`. Problems become `errors` starting with `shown`.
    async fn copy_log(
        &self,
        id: &str,
        log_name: &str,
        with_timeline: bool,
        run_dir: &Path,
        shown: &str,
        report: &mut Environment,
    ) -> Option<ReloadTimeline> {
        let file_name = format!("{log_name}.log.gz");
        let path = run_dir.join(&file_name);
        let mut builder = with_timeline.then(TimelineBuilder::default);
        let copied = containers::copy_log(&self.docker, id, &path, &self.secrets, |line| {
            if let Some(b) = builder.as_mut() {
                b.push_line(line);
            }
        })
        .await;
        match copied {
            Ok(copy) => {
                report.logs.insert(log_name.to_owned(), file_name);
                if copy.stats.capped {
                    report.logs_truncated.push(log_name.to_owned());
                }
                if copy.stats.lines_left_out > 0 {
                    report
                        .logs_lines_left_out
                        .insert(log_name.to_owned(), copy.stats.lines_left_out);
                }
                if let Some(e) = copy.error {
                    report.errors.push(format!("{shown}: {e}"));
                }
                builder.map(TimelineBuilder::finish)
            }
            Err(e) => {
                report.errors.push(format!("{shown} log: {e:#}"));
                None
            }
        }
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

/// An empty report with the kit's version and the config hashes from the environment.
fn new_environment() -> Environment {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    Environment {
        kit_version: env!("CARGO_PKG_VERSION").to_owned(),
        compose_sha256: env("REPRO_COMPOSE_SHA256"),
        gateway_config_sha256: env("REPRO_GATEWAY_CONFIG_SHA256"),
        ..Default::default()
    }
}
