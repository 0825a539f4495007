//! Gateway container CPU and memory, sampled through the Docker stats API during a run (one
//! task per gateway container when the service runs several).
//!
//! Each tick asks for one `one-shot` stats snapshot (fast: the daemon does not wait a second to
//! fill `precpu_stats`) and computes CPU % against the previous snapshot the way the docker CLI
//! does: `cpu_delta / system_delta × online_cpus × 100`. Memory is usage minus the page cache
//! (`inactive_file`), as `docker stats` shows it. The daemon refreshes stats about once a
//! second, so intervals below 1 s are raised to 1 s.

use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::containers::{DOCKER_CALL_TIMEOUT, find_container};
pub use crate::summary::environment::{GatewayStats, StatsSample};

/// Samples beyond this many are dropped (a day at one a second is far more than any run).
const MAX_SAMPLES: usize = 100_000;
/// Distinct sampling errors kept for the evidence JSON.
const MAX_ERRORS: usize = 5;
/// The daemon refreshes container stats about once a second (a second one-shot request within
/// that second waits for the next refresh), so faster ticks would only queue behind it.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl GatewayStats {
    /// Summarises `samples`.
    pub fn from_samples(samples: Vec<StatsSample>) -> Self {
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_percent).collect();
        let mem: Vec<u64> = samples.iter().map(|s| s.mem_bytes).collect();
        GatewayStats {
            cpu_percent_max: cpu.iter().copied().reduce(f64::max),
            cpu_percent_mean: (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
            mem_bytes_max: mem.iter().copied().max(),
            mem_bytes_mean: (!mem.is_empty())
                .then(|| (mem.iter().map(|&m| m as u128).sum::<u128>() / mem.len() as u128) as u64),
            samples,
        }
    }
}

/// Which container a sampler follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatsSubject {
    /// The (running, newest) container of a compose service, looked up again after an error.
    Service {
        /// Compose project name.
        project: String,
        /// Compose service name.
        service: String,
    },
    /// One container by name (or id).
    Container(String),
}

impl StatsSubject {
    /// How errors name it.
    fn shown(&self) -> String {
        match self {
            StatsSubject::Service { service, .. } => format!("`{service}`"),
            StatsSubject::Container(name) => format!("container `{name}`"),
        }
    }
}

/// A running sampler (one task per container, one clock); hand it to
/// [`super::Evidence::finish`], which stops it.
pub struct StatsSampler {
    cancel: CancellationToken,
    handles: Vec<JoinHandle<SamplerOutput>>,
}

impl std::fmt::Debug for StatsSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSampler")
            .field("containers", &self.handles.len())
            .finish_non_exhaustive()
    }
}

/// What a stopped sampler collected from one container.
#[derive(Debug, Default)]
pub(crate) struct SamplerOutput {
    pub samples: Vec<StatsSample>,
    pub errors: Vec<String>,
}

impl StatsSampler {
    /// Spawns one sampling task per subject on the current tokio runtime; every sample's `t_s`
    /// counts from this call, so the subjects' series share one clock.
    pub(crate) fn spawn(docker: Docker, subjects: Vec<StatsSubject>, every: Duration) -> Self {
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let handles = subjects
            .into_iter()
            .map(|subject| {
                let task_cancel = cancel.clone();
                let docker = docker.clone();
                tokio::spawn(async move {
                    let mut out = SamplerOutput::default();
                    let sampling = sample_loop(
                        &docker,
                        &subject,
                        started,
                        every.max(MIN_INTERVAL),
                        &mut out,
                    );
                    tokio::select! {
                        _ = task_cancel.cancelled() => {}
                        _ = sampling => {}
                    }
                    out
                })
            })
            .collect();
        StatsSampler { cancel, handles }
    }

    /// Stops sampling and returns what was collected, one output per subject in spawn order.
    pub(crate) async fn stop(self) -> Vec<SamplerOutput> {
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + DOCKER_CALL_TIMEOUT;
        let mut outputs = Vec::with_capacity(self.handles.len());
        for handle in self.handles {
            outputs.push(match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => SamplerOutput {
                    errors: vec![format!("stats sampler task failed: {e}")],
                    ..Default::default()
                },
                Err(_) => SamplerOutput {
                    errors: vec!["stats sampler did not stop within 10 s".into()],
                    ..Default::default()
                },
            });
        }
        outputs
    }
}

/// Ticks forever (the caller cancels), pushing samples and distinct errors into `out`.
async fn sample_loop(
    docker: &Docker,
    subject: &StatsSubject,
    started: tokio::time::Instant,
    every: Duration,
    out: &mut SamplerOutput,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut container: Option<String> = None;
    let mut previous: Option<CpuReading> = None;
    loop {
        ticker.tick().await;
        let result = async {
            let id = match (&container, subject) {
                (Some(id), _) => id.clone(),
                (None, StatsSubject::Container(name)) => name.clone(),
                (None, StatsSubject::Service { project, service }) => {
                    find_container(docker, project, service).await?
                }
            };
            container = Some(id.clone());
            fetch_stats(docker, &id).await
        }
        .await;
        match result {
            Ok(stats) => {
                let reading = CpuReading::from_stats(&stats);
                let cpu_percent = previous.zip(reading).and_then(|(p, c)| cpu_percent(p, c));
                previous = reading;
                if out.samples.len() < MAX_SAMPLES {
                    out.samples.push(StatsSample {
                        t_s: started.elapsed().as_secs_f64(),
                        cpu_percent,
                        mem_bytes: memory_without_cache(&stats),
                    });
                }
            }
            Err(e) => {
                // The container may have been recreated: look it up again next tick.
                container = None;
                let text = format!("stats of {}: {e:#}", subject.shown());
                if out.errors.len() < MAX_ERRORS && !out.errors.contains(&text) {
                    out.errors.push(text);
                }
            }
        }
    }
}

async fn fetch_stats(docker: &Docker, id: &str) -> anyhow::Result<ContainerStatsResponse> {
    let options = StatsOptionsBuilder::new()
        .stream(false)
        .one_shot(true)
        .build();
    let mut stream = docker.stats(id, Some(options));
    match tokio::time::timeout(DOCKER_CALL_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(stats))) => Ok(stats),
        Ok(Some(Err(e))) => Err(anyhow::anyhow!("Docker stats API failed: {e}")),
        Ok(None) => Err(anyhow::anyhow!(
            "Docker stats API returned nothing (container stopped?)"
        )),
        Err(_) => Err(anyhow::anyhow!(
            "Docker stats API did not answer within 10 s"
        )),
    }
}

/// The counters CPU % is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CpuReading {
    /// Container CPU time, ns.
    pub total_usage: u64,
    /// Host CPU time, ns (all cores).
    pub system_usage: u64,
    /// CPUs the container may use.
    pub online_cpus: u32,
}

impl CpuReading {
    fn from_stats(stats: &ContainerStatsResponse) -> Option<Self> {
        let cpu = stats.cpu_stats.as_ref()?;
        let usage = cpu.cpu_usage.as_ref()?;
        let online = cpu.online_cpus.filter(|&n| n > 0).or_else(|| {
            usage
                .percpu_usage
                .as_ref()
                .map(|v| v.len() as u32)
                .filter(|&n| n > 0)
        })?;
        Some(CpuReading {
            total_usage: usage.total_usage?,
            system_usage: cpu.system_cpu_usage?,
            online_cpus: online,
        })
    }
}

/// The docker CLI formula; `None` when the host counter did not move (or went backwards, after
/// a restart), `Some(0.0)` for an idle container.
pub(crate) fn cpu_percent(previous: CpuReading, current: CpuReading) -> Option<f64> {
    let system_delta = current.system_usage.checked_sub(previous.system_usage)?;
    if system_delta == 0 {
        return None;
    }
    let cpu_delta = current.total_usage.checked_sub(previous.total_usage)?;
    Some(cpu_delta as f64 / system_delta as f64 * f64::from(current.online_cpus) * 100.0)
}

/// Usage minus `total_inactive_file` (cgroup v1) or `inactive_file` (v2), as `docker stats`.
pub(crate) fn memory_without_cache(stats: &ContainerStatsResponse) -> u64 {
    let Some(mem) = stats.memory_stats.as_ref() else {
        return 0;
    };
    let usage = mem.usage.unwrap_or(0);
    let cache = mem.stats.as_ref().and_then(|s| {
        s.get("total_inactive_file")
            .or_else(|| s.get("inactive_file"))
            .copied()
    });
    match cache {
        Some(c) if c < usage => usage - c,
        _ => usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(total: u64, system: u64) -> CpuReading {
        CpuReading {
            total_usage: total,
            system_usage: system,
            online_cpus: 2,
        }
    }

    #[test]
    fn cpu_percent_follows_the_docker_cli_formula() {
        // Half the host's CPU time on a 2-CPU host is one full core: 100 %.
        let pct = cpu_percent(reading(1_000, 10_000), reading(6_000, 20_000));
        assert_eq!(pct, Some(100.0));
    }

    #[test]
    fn cpu_percent_is_absent_when_the_host_counter_did_not_move_or_reset() {
        assert_eq!(cpu_percent(reading(1, 10), reading(5, 10)), None);
        assert_eq!(cpu_percent(reading(9, 10), reading(5, 20)), None);
        assert_eq!(cpu_percent(reading(5, 10), reading(5, 20)), Some(0.0));
    }

    #[test]
    fn memory_leaves_out_the_inactive_page_cache() {
        let stats: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "memory_stats": {"usage": 1000, "stats": {"total_inactive_file": 300}}
        }))
        .expect("stats json");
        assert_eq!(memory_without_cache(&stats), 700);
        let v2: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "memory_stats": {"usage": 1000, "stats": {"inactive_file": 5000}}
        }))
        .expect("stats json");
        assert_eq!(memory_without_cache(&v2), 1000);
    }

    #[test]
    fn gateway_stats_summarise_max_and_mean() {
        let samples = vec![
            StatsSample {
                t_s: 0.0,
                cpu_percent: None,
                mem_bytes: 100,
            },
            StatsSample {
                t_s: 1.0,
                cpu_percent: Some(50.0),
                mem_bytes: 300,
            },
            StatsSample {
                t_s: 2.0,
                cpu_percent: Some(150.0),
                mem_bytes: 200,
            },
        ];
        let stats = GatewayStats::from_samples(samples);
        assert_eq!(stats.cpu_percent_max, Some(150.0));
        assert_eq!(stats.cpu_percent_mean, Some(100.0));
        assert_eq!(stats.mem_bytes_max, Some(300));
        assert_eq!(stats.mem_bytes_mean, Some(200));
        assert_eq!(GatewayStats::from_samples(vec![]).cpu_percent_max, None);
    }
}
