//! Questions the runner asks the gateway besides key creation: is it alive (the watcher's probe
//! every tick), which APIs has it loaded (readiness), and does it refuse a key for a policy that
//! does not exist (the canary before the load).
//!
//! It has its own HTTP client with a short timeout: a probe must answer within one look of the
//! watcher, whatever `--request-timeout` says.

use std::time::Duration;

use reqwest::StatusCode;

use super::client::{Endpoints, KeyAttempt, gateway_unreachable, status_error};
use super::errors::{ClientError, Failure};
use super::options::RunOptions;
use crate::protocol::HEADER_GATEWAY_AUTH;

/// Bound on one liveness probe or API listing.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The gateway's control API, for probes.
#[derive(Clone)]
pub struct GatewayChecks {
    http: reqwest::Client,
    gateway: String,
    secret: String,
}

/// What the canary's answer means for the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// "policy not found": the gateway checks policies.
    Refused,
    /// 200 for a policy that does not exist: every scenario would succeed at once.
    Accepted(String),
    /// No answer or another answer: the load will show it, the canary cannot tell.
    Inconclusive(String),
}

impl GatewayChecks {
    /// Probes for the run's gateway.
    pub fn new(options: &RunOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .connect_timeout(PROBE_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            gateway: options.gateway.clone(),
            secret: options.secret.clone(),
        })
    }

    /// The same probes, aimed at another gateway of the fleet.
    pub fn for_gateway(&self, gateway: &str) -> Self {
        Self {
            gateway: gateway.to_owned(),
            ..self.clone()
        }
    }

    /// `Ok` when the gateway answers anything at all on `/tyk/apis` (a 403 is an answer);
    /// `Err` with the transport error (refused, reset, timed out) otherwise.
    pub async fn reachable(&self) -> Result<(), ClientError> {
        let url = format!("{}/tyk/apis", self.gateway);
        let sent = self
            .http
            .get(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => Err(ClientError::Unreachable(e)),
        }
    }

    /// The ids of the APIs `GET /tyk/apis` lists.
    pub async fn list_apis(&self) -> Result<Vec<String>, Failure<ClientError>> {
        let url = format!("{}/tyk/apis", self.gateway);
        let response = self
            .http
            .get(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .send()
            .await
            .map_err(|e| Failure::Transient(gateway_unreachable(&url, e)))?;
        if response.status() == StatusCode::FORBIDDEN {
            return Err(Failure::Fatal(ClientError::SecretRejected { url }));
        }
        if !response.status().is_success() {
            let status = response.status();
            return Err(Failure::Transient(status_error("gateway", url, status)));
        }
        let list: serde_json::Value = match response.json().await {
            Ok(list) => list,
            Err(source) => {
                return Err(Failure::Transient(ClientError::UnreadableApis {
                    url,
                    source,
                }));
            }
        };
        Ok(api_ids(&list))
    }
}

/// Ids of the APIs in a `/tyk/apis` answer (a list of definitions); unnamed ones count as `?`.
pub fn api_ids(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .map(|apis| {
            apis.iter()
                .map(|api| {
                    api.get("api_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asks for a key bound to a random policy id nobody created.
pub async fn ask_canary(endpoints: &Endpoints) -> Canary {
    let policy = format!("repro-canary-{}", hex::encode(rand::random::<[u8; 8]>()));
    match endpoints.create_key(&policy).await {
        KeyAttempt::NotYet(_) => Canary::Refused,
        KeyAttempt::Created => Canary::Accepted(policy),
        KeyAttempt::Transient(e) | KeyAttempt::Fatal(e) => Canary::Inconclusive(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ids_come_from_each_definition() {
        let list = serde_json::json!([{"api_id": "httpbin", "org_id": "monarch"}, {"name": "x"}]);
        assert_eq!(api_ids(&list), vec!["httpbin", "?"]);
        assert!(api_ids(&serde_json::json!([])).is_empty());
        assert!(api_ids(&serde_json::json!({"status": "error"})).is_empty());
    }
}
