//! HTTP calls the runner makes: the mock's admin API and the gateway's control API.
//!
//! Every request has the per-request timeout. Answers are classified here, once: "not yet"
//! (retry), transient (retry, the gateway may be restarting) or fatal (a configuration error
//! that retrying for minutes would only hide).

use std::time::Duration;

use reqwest::StatusCode;

use crate::protocol::{
    AddedPolicy, FetchRecord, HEADER_ADMIN_TOKEN, HEADER_GATEWAY_AUTH, KeyCreateRequest,
    MSG_POLICY_NOT_FOUND_PREFIX, MockStats,
};
use crate::telemetry::redact;

use super::options::{RunOptions, Trigger};

/// The answer to one key-creation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAttempt {
    /// 200: the gateway knows the policy.
    Created,
    /// 500 "policy not found": the gateway has not loaded it yet.
    NotYet(String),
    /// No answer (refused, reset, timed out): retry, the gateway may come back.
    Transient(String),
    /// An answer retrying cannot change (400, 403, other): stop the run.
    Fatal(String),
}

/// Clients for the two services the runner talks to.
#[derive(Clone)]
pub struct Endpoints {
    http: reqwest::Client,
    gateway: String,
    dashboard: String,
    secret: String,
    admin_token: Option<String>,
    /// Everything to hide from error texts, the node secret included (`RunOptions::secrets`).
    hidden: Vec<String>,
}

impl Endpoints {
    /// Builds the HTTP client with the run's request timeout.
    pub fn new(options: &RunOptions) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            http,
            gateway: options.gateway.clone(),
            dashboard: options.dashboard.clone(),
            secret: options.secret.clone(),
            admin_token: options.admin_token.clone(),
            hidden: options.secrets(),
        })
    }

    fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.hidden.iter().map(String::as_str).collect();
        redact(text, &secrets)
    }

    fn admin(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.admin_token {
            Some(token) => builder.header(HEADER_ADMIN_TOKEN, token),
            None => builder,
        }
    }

    /// `POST /repro/policies` on the mock.
    pub async fn add_policy(&self) -> Result<AddedPolicy, String> {
        let url = format!("{}/repro/policies", self.dashboard);
        let response = self
            .admin(self.http.post(&url))
            .send()
            .await
            .map_err(|e| format!("dashboard {url}: {}", describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(self.scrub(&format!(
                "dashboard {url} answered {status}: {}",
                snippet(&body)
            )));
        }
        response
            .json::<AddedPolicy>()
            .await
            .map_err(|e| format!("dashboard {url}: unreadable answer: {e}"))
    }

    /// Sends the per-scenario trigger; `Err((fatal, message))`.
    pub async fn trigger(&self, trigger: Trigger) -> Result<(), (bool, String)> {
        let path = match trigger {
            Trigger::Notify | Trigger::None => return Ok(()),
            Trigger::Reload => "/tyk/reload",
            Trigger::Group => "/tyk/reload/group",
        };
        let url = format!("{}{path}", self.gateway);
        let response = self
            .http
            .get(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .send()
            .await
            .map_err(|e| (false, format!("gateway {url}: {}", describe(&e))))?;
        match response.status() {
            StatusCode::OK => Ok(()),
            StatusCode::FORBIDDEN => Err((true, secret_rejected(&url))),
            status => {
                let body = response.text().await.unwrap_or_default();
                Err((
                    true,
                    self.scrub(&format!(
                        "gateway {url} answered {status}: {}",
                        snippet(&body)
                    )),
                ))
            }
        }
    }

    /// One `POST /tyk/keys/create` bound to `policy_id`.
    pub async fn create_key(&self, policy_id: &str) -> KeyAttempt {
        let url = format!("{}/tyk/keys/create", self.gateway);
        let body = KeyCreateRequest {
            apply_policies: vec![policy_id.to_owned()],
        };
        let response = match self
            .http
            .post(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return KeyAttempt::Transient(format!("gateway {url}: {}", describe(&e))),
        };
        let status = response.status();
        if status == StatusCode::OK {
            return KeyAttempt::Created;
        }
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return KeyAttempt::Transient(format!("gateway {url}: {}", describe(&e))),
        };
        classify_key_failure(status, &self.scrub(&text), &url)
    }

    /// The mock's counters.
    pub async fn mock_stats(&self) -> Result<MockStats, String> {
        let url = format!("{}/repro/stats", self.dashboard);
        self.get_json(&url).await
    }

    /// The mock's fetch log since `since_ms` (Unix ms).
    pub async fn mock_fetches(&self, since_ms: u64) -> Result<Vec<FetchRecord>, String> {
        let url = format!("{}/repro/fetches?since_ms={since_ms}", self.dashboard);
        self.get_json(&url).await
    }

    /// `POST /repro/reset`: back to the initial policy pool (between repetitions).
    pub async fn reset_pool(&self) -> Result<(), String> {
        let url = format!("{}/repro/reset", self.dashboard);
        let response = self
            .admin(self.http.post(&url))
            .send()
            .await
            .map_err(|e| format!("dashboard {url}: {}", describe(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("dashboard {url} answered {}", response.status()))
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .admin(self.http.get(url))
            .send()
            .await
            .map_err(|e| format!("dashboard {url}: {}", describe(&e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(format!(
                "dashboard {url} answered {status}: pass the mock's admin token with --admin-token / REPRO_ADMIN_TOKEN"
            ));
        }
        if !status.is_success() {
            return Err(format!("dashboard {url} answered {status}"));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| format!("dashboard {url}: unreadable answer: {e}"))
    }

    /// Dashboard readiness: `GET /health` answers 200.
    pub async fn probe_dashboard(&self) -> Result<(), String> {
        let url = format!("{}/health", self.dashboard);
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("dashboard {url} answered {}", r.status())),
            Err(e) => Err(format!("dashboard {url}: {}", describe(&e))),
        }
    }

    /// Gateway readiness: `GET /tyk/apis` with the secret (v2.9.x); `Err((fatal, why))`.
    pub async fn probe_gateway(&self) -> Result<(), (bool, String)> {
        let url = format!("{}/tyk/apis", self.gateway);
        match self
            .http
            .get(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status() == StatusCode::FORBIDDEN => Err((true, secret_rejected(&url))),
            Ok(r) => Err((false, format!("gateway {url} answered {}", r.status()))),
            Err(e) => Err((false, format!("gateway {url}: {}", describe(&e)))),
        }
    }

    /// The gateway's version from `/hello` when it tells (v5, the stub); `(version, source)`.
    pub async fn gateway_version(&self) -> (Option<String>, String) {
        let url = format!("{}/hello", self.gateway);
        let Ok(response) = self.http.get(&url).send().await else {
            return (None, "unknown".into());
        };
        let text = response.text().await.unwrap_or_default();
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
            .filter(|v| !v.is_empty());
        match version {
            Some(v) => (Some(v), "/hello".into()),
            None => (
                None,
                "unknown (/hello gives no version; v2.9.x logs it)".into(),
            ),
        }
    }
}

/// Classifies a non-200 key-creation answer.
pub fn classify_key_failure(status: StatusCode, body: &str, url: &str) -> KeyAttempt {
    let message = serde_json::from_str::<crate::protocol::ControlReply>(body)
        .map(|r| r.message)
        .unwrap_or_else(|_| snippet(body));
    match status {
        StatusCode::INTERNAL_SERVER_ERROR if message.contains(MSG_POLICY_NOT_FOUND_PREFIX) => {
            KeyAttempt::NotYet(message)
        }
        StatusCode::FORBIDDEN => KeyAttempt::Fatal(secret_rejected(url)),
        StatusCode::BAD_REQUEST => KeyAttempt::Fatal(format!(
            "gateway {url} answered 400 `{message}`: keys for policies without access rights need `allow_master_keys: true` in the gateway config"
        )),
        status => KeyAttempt::Fatal(format!(
            "gateway {url} answered {status} `{message}` to key creation (expected 200 or 500 policy not found)"
        )),
    }
}

fn secret_rejected(url: &str) -> String {
    format!(
        "gateway {url} answered 403: it rejected the secret; pass the gateway's `secret` with --secret / REPRO_SECRET"
    )
}

/// A short, single-line excerpt of a body for error messages.
fn snippet(body: &str) -> String {
    let line: String = body.trim().chars().take(200).collect();
    line.replace(['\n', '\r'], " ")
}

/// reqwest's error with the cause chain, shortened to what a user can act on.
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    if error.is_connect() {
        return "connection refused or unreachable".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_not_found_is_not_yet_and_other_answers_are_fatal() {
        let url = "http://gw/tyk/keys/create";
        let not_found =
            r#"{"status":"error","message":"Failed to create key - policy not found: \"abc\""}"#;
        assert!(matches!(
            classify_key_failure(StatusCode::INTERNAL_SERVER_ERROR, not_found, url),
            KeyAttempt::NotYet(_)
        ));
        let forbidden = classify_key_failure(StatusCode::FORBIDDEN, "{}", url);
        assert!(matches!(&forbidden, KeyAttempt::Fatal(m) if m.contains("--secret")));
        let bad = classify_key_failure(
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","message":"keys must have at least one Access Rights record set."}"#,
            url,
        );
        assert!(matches!(&bad, KeyAttempt::Fatal(m) if m.contains("allow_master_keys")));
        let org = classify_key_failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"status":"error","message":"attempting to apply policy from different organisation to key, skipping"}"#,
            url,
        );
        assert!(matches!(&org, KeyAttempt::Fatal(m) if m.contains("different organisation")));
        let garbage =
            classify_key_failure(StatusCode::OK.max(StatusCode::IM_A_TEAPOT), "<html>", url);
        assert!(
            matches!(&garbage, KeyAttempt::Fatal(m) if m.contains("418") && m.contains("<html>"))
        );
    }
}
