//! Readiness gates before the load, in order, under one outer deadline (`--wait-ready`):
//! Redis `PING` (when `--redis` is given) → dashboard `/health` → gateway `/tyk/apis` with the
//! secret. All probes run from outside the containers (v5 gateway images have no shell). A
//! gate that is not passed in time yields the reason for an `infra_error` summary, naming the
//! service and, under compose, its last log lines.

use std::time::{Duration, Instant};

use super::client::Endpoints;
use super::options::RunOptions;
use crate::evidence::{Evidence, EvidenceTarget};

/// Pause between probes of a service that is not ready yet.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Log lines quoted from a service that never became ready.
const LOG_LINES: usize = 15;

/// Connects to the Docker API when a compose project is named (evidence is optional).
pub async fn connect_evidence(options: &RunOptions) -> Option<Evidence> {
    let project = options.compose_project.clone()?;
    let evidence = Evidence::connect(EvidenceTarget {
        project,
        gateway_service: "gateway".into(),
        services: vec!["gateway".into(), "dashboard".into(), "redis".into()],
    })
    .await?;
    // Container logs may echo secrets (a gateway printing its config): scrub them from evidence.
    Some(evidence.with_secrets(options.secrets()))
}

/// Waits for every service; `Err(reason)` names the first that did not become ready.
pub async fn wait_ready(
    options: &RunOptions,
    endpoints: &Endpoints,
    evidence: Option<&Evidence>,
) -> Result<(), String> {
    let deadline = Instant::now() + options.wait_ready;
    if let Some(url) = &options.redis {
        let shown = redact_url(url);
        gate("redis", deadline, evidence, || async {
            ping_redis(url)
                .await
                .map_err(|e| (false, format!("Redis at {shown}: {e}")))
        })
        .await?;
    }
    gate("dashboard", deadline, evidence, || async {
        endpoints.probe_dashboard().await.map_err(|e| (false, e))
    })
    .await?;
    gate("gateway", deadline, evidence, || endpoints.probe_gateway()).await
}

/// Probes until ready, a fatal answer, or the deadline (one probe at least).
async fn gate<F, Fut>(
    service: &str,
    deadline: Instant,
    evidence: Option<&Evidence>,
    mut probe: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), (bool, String)>>,
{
    let waited_from = Instant::now();
    loop {
        let reason = match probe().await {
            Ok(()) => return Ok(()),
            Err((true, reason)) => reason,
            Err((false, reason)) if Instant::now() + PROBE_EVERY < deadline => {
                tracing::debug!("{service} not ready yet: {reason}");
                tokio::time::sleep(PROBE_EVERY).await;
                continue;
            }
            Err((false, reason)) => format!(
                "{service} not ready after {:.0}s: {reason}",
                waited_from.elapsed().as_secs_f64()
            ),
        };
        return Err(with_logs(service, reason, evidence).await);
    }
}

async fn with_logs(service: &str, reason: String, evidence: Option<&Evidence>) -> String {
    let Some(evidence) = evidence else {
        return reason;
    };
    match evidence.last_log_lines(service, LOG_LINES).await {
        Ok(lines) if !lines.is_empty() => {
            format!("{reason}; last {service} log lines:\n{}", lines.join("\n"))
        }
        Ok(_) => format!("{reason}; the {service} container logged nothing"),
        Err(e) => format!("{reason}; its logs could not be read: {e:#}"),
    }
}

/// `PING` with a 2 s bound on connecting and answering.
pub async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid URL: {e}"))?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Hides a password in `redis://user:password@host`.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_passwords_are_hidden() {
        assert_eq!(
            super::redact_url("redis://:s3cret@redis:6379"),
            "redis://:***@redis:6379"
        );
        assert_eq!(
            super::redact_url("redis://redis:6379"),
            "redis://redis:6379"
        );
    }
}
