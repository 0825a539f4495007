//! Readiness gates before the load, in order, under one outer deadline (`--wait-ready`):
//! Redis `PING` (when `--redis` is given) → dashboard `/health` → gateway `/tyk/apis` with the
//! secret → the gateway lists at least one API → the dashboard served an authorised policy
//! fetch to every gateway node (`--gateways`) → every gateway subscribes to the notification
//! channel (`PUBSUB NUMSUB`, triggers `notify` and `group`, unless `--no-wait-subscribers`) →
//! the canary: a key for a policy that does not exist must be refused.
//!
//! "Answers HTTP" is not "ready": a v3.x gateway serves its control API ~10 s before it
//! subscribes, and before its startup reload it accepts keys for any policy. All probes run
//! from outside the containers (v5 gateway images have no shell). A gate that is not passed in
//! time yields the reason for an `infra_error` summary, naming the service and, under compose,
//! its last log lines.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::client::Endpoints;
use super::errors::{Failure, PingError, ReadyError};
use super::gateway_checks::{Canary, GatewayChecks, ask_canary};
use super::options::{RunOptions, Trigger};
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
) -> Result<(), ReadyError> {
    let deadline = Instant::now() + options.wait_ready;
    if let Some(url) = &options.redis {
        let shown = crate::telemetry::redact_url(url);
        gate("redis", deadline, evidence, || async {
            ping_redis(url).await.map_err(|source| {
                Failure::Transient(ReadyError::Redis {
                    shown: shown.clone(),
                    source,
                })
            })
        })
        .await?;
    }
    gate("dashboard", deadline, evidence, || async {
        endpoints
            .probe_dashboard()
            .await
            .map_err(|e| Failure::Transient(e.into()))
    })
    .await?;
    // Every gateway of a fleet is probed and must list its APIs, in the order given.
    let base_checks = GatewayChecks::new(options).map_err(ReadyError::Checks)?;
    for url in &options.fleet {
        let endpoints = &endpoints.for_gateway(url);
        gate("gateway", deadline, evidence, || async {
            endpoints
                .probe_gateway()
                .await
                .map_err(|f| f.map(ReadyError::from))
        })
        .await?;
        let checks = &base_checks.for_gateway(url);
        gate("gateway", deadline, evidence, || async move {
            match checks
                .list_apis()
                .await
                .map_err(|f| f.map(ReadyError::from))?
            {
                ids if ids.is_empty() => Err(Failure::Transient(ReadyError::NoApi)),
                _ => Ok(()),
            }
        })
        .await?;
    }
    gate("gateway", deadline, evidence, || async move {
        let fetches = endpoints
            .mock_fetches(0)
            .await
            .map_err(|e| Failure::Transient(e.into()))?;
        fetch_per_node(&fetches, options.gateways)
    })
    .await?;
    if wants_subscribers(options) {
        gate("gateway", deadline, evidence, || async move {
            let stats = endpoints
                .stats()
                .await
                .map_err(|e| Failure::Transient(e.into()))?;
            subscribed(stats.subscribers, options.gateways)
        })
        .await?;
    }
    for url in &options.fleet {
        let endpoints = &endpoints.for_gateway(url);
        gate("gateway", deadline, evidence, || async move {
            match ask_canary(endpoints).await {
                Canary::Refused => Ok(()),
                Canary::Accepted(policy) => Err(Failure::Fatal(ReadyError::CanaryAccepted {
                    policy,
                    gateway: url.clone(),
                })),
                Canary::Inconclusive(answer) => {
                    // No answer or another error: the load itself will show it.
                    tracing::warn!("the canary key creation on {url} was inconclusive: {answer}");
                    Ok(())
                }
            }
        })
        .await?;
    }
    Ok(())
}

/// Reason when the gateway lists no API.
pub(crate) const NO_API: &str = "GET /tyk/apis lists no API: the gateway loaded nothing from its     `app_path`, and with no API it accepts keys for unknown policies (every scenario would     'succeed'); mount the kit's run/apps at the gateway's app_path (compose:     ./run/apps:/opt/tyk-gateway/apps, add `:z` under SELinux)";

fn wants_subscribers(options: &RunOptions) -> bool {
    !options.no_wait_subscribers && matches!(options.trigger, Trigger::Notify | Trigger::Group)
}

/// Ready when `gateways` distinct nodes had a policy list served; fatal when fetches were only
/// ever refused (the node secret differs).
pub fn fetch_per_node(
    fetches: &[crate::protocol::FetchRecord],
    gateways: u64,
) -> Result<(), Failure<ReadyError>> {
    let served: BTreeSet<&str> = fetches
        .iter()
        .filter(|f| f.authorized)
        .map(|f| f.node_id.as_str())
        .collect();
    let refused = fetches.iter().filter(|f| !f.authorized).count();
    if served.len() as u64 >= gateways {
        return Ok(());
    }
    if served.is_empty() && refused > 0 {
        return Err(Failure::Fatal(ReadyError::NodeSecret { refused }));
    }
    Err(Failure::Transient(ReadyError::NotFetched {
        served: served.len(),
        gateways,
    }))
}

/// Ready when at least `gateways` subscribers listen; unknown (the mock does not notify) passes.
pub fn subscribed(subscribers: Option<u64>, gateways: u64) -> Result<(), Failure<ReadyError>> {
    match subscribers {
        None => {
            tracing::debug!("subscriber count unknown (the mock does not publish): not waited for");
            Ok(())
        }
        Some(n) if n >= gateways => Ok(()),
        Some(n) => Err(Failure::Transient(ReadyError::NotSubscribed {
            subscribed: n,
            gateways,
        })),
    }
}

/// Probes until ready, a fatal answer, or the deadline (one probe at least).
async fn gate<F, Fut>(
    service: &str,
    deadline: Instant,
    evidence: Option<&Evidence>,
    mut probe: F,
) -> Result<(), ReadyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure<ReadyError>>>,
{
    let waited_from = Instant::now();
    loop {
        let reason = match probe().await {
            Ok(()) => return Ok(()),
            Err(Failure::Fatal(reason)) => reason,
            Err(Failure::Transient(reason)) if Instant::now() + PROBE_EVERY < deadline => {
                tracing::debug!("{service} not ready yet: {reason}");
                tokio::time::sleep(PROBE_EVERY).await;
                continue;
            }
            Err(Failure::Transient(reason)) => ReadyError::NotReady {
                service: service.to_owned(),
                waited_s: waited_from.elapsed().as_secs_f64(),
                reason: Box::new(reason),
            },
        };
        return Err(with_logs(service, reason, evidence).await);
    }
}

async fn with_logs(service: &str, reason: ReadyError, evidence: Option<&Evidence>) -> ReadyError {
    let Some(evidence) = evidence else {
        return reason;
    };
    let tail = match evidence.last_log_lines(service, LOG_LINES).await {
        Ok(lines) if !lines.is_empty() => {
            format!("; last {service} log lines:\n{}", lines.join("\n"))
        }
        Ok(_) => format!("; the {service} container logged nothing"),
        Err(e) => format!("; its logs could not be read: {e:#}"),
    };
    ReadyError::WithLogs {
        reason: Box::new(reason),
        tail,
    }
}

/// `PING` with a 2 s bound on connecting and answering.
pub async fn ping_redis(url: &str) -> Result<(), PingError> {
    let client = redis::Client::open(url).map_err(PingError::InvalidUrl)?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(PingError::Redis(e)),
        Err(_) => Err(PingError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FetchRecord;

    fn fetch(node: &str, authorized: bool) -> FetchRecord {
        FetchRecord {
            received_at_ms: 1,
            served: 10,
            bytes: 100,
            duration_us: 5,
            node_id: node.into(),
            nonce_ok: true,
            authorized,
        }
    }

    #[test]
    fn every_node_must_have_fetched_its_policies() {
        assert!(fetch_per_node(&[fetch("a", true)], 1).is_ok());
        let one_of_two = fetch_per_node(&[fetch("a", true), fetch("a", true)], 2);
        assert!(
            matches!(one_of_two, Err(Failure::Transient(m)) if m.to_string().contains("1 of 2"))
        );
        assert!(matches!(fetch_per_node(&[], 1), Err(Failure::Transient(_))));
        let refused = fetch_per_node(&[fetch("a", false)], 1);
        assert!(matches!(refused, Err(Failure::Fatal(m)) if m.to_string().contains("node_secret")));
    }

    #[test]
    fn subscribers_must_number_the_gateways() {
        assert!(subscribed(Some(1), 1).is_ok());
        assert!(subscribed(None, 1).is_ok());
        let none = subscribed(Some(0), 1);
        assert!(
            matches!(none, Err(Failure::Transient(m)) if m.to_string().contains("0 of 1") && m.to_string().contains("--no-wait-subscribers"))
        );
    }
}
