//! HTTP calls the runner makes: the mock's admin API and the gateway's control API.
//!
//! Every request has the per-request timeout. Answers are classified here, once: "not yet"
//! (retry), transient (retry, the gateway may be restarting) or fatal (a configuration error
//! that retrying for minutes would only hide). Each attempt is also put in a class
//! ([`AttemptClass`]) for the summary's attempt counts.
//!
//! Two timeouts: a short connect timeout (a connect that hangs, e.g. behind a full accept
//! queue, is abandoned and retried at once, not counted as a backoff step) and the request
//! timeout for the answer. So the kit's own request timeout sets the tail only when the gateway
//! really did not answer, and the summary says how often that was.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;

use crate::protocol::{
    AddedPolicy, FetchRecord, HEADER_ADMIN_TOKEN, HEADER_GATEWAY_AUTH, KeyCreateRequest,
    MSG_POLICY_NOT_FOUND_PREFIX, MockStats,
};
use crate::summary::attempts::AttemptClass;
use crate::telemetry::redact;

/// Longest TCP connect before it is abandoned and tried again at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects abandoned and retried at once within one attempt, before it counts as failed.
pub const CONNECT_RETRIES: u32 = 3;

/// The connect timeout used with a request timeout: [`CONNECT_TIMEOUT`], never longer than it.
pub fn connect_timeout(request_timeout: Duration) -> Duration {
    request_timeout.min(CONNECT_TIMEOUT)
}

/// An answer with the class of the attempt and the connects retried at once on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified<T> {
    /// The answer.
    pub result: T,
    /// How the (last) request ended.
    pub class: AttemptClass,
    /// Connects that timed out and were retried at once before it.
    pub connect_timeouts: u32,
}

use super::errors::{ClientError, Failure};
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
            .connect_timeout(connect_timeout(options.request_timeout))
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

    /// The same clients and dashboard, aimed at another gateway of the fleet.
    pub fn for_gateway(&self, gateway: &str) -> Self {
        Self {
            gateway: gateway.to_owned(),
            ..self.clone()
        }
    }

    /// The gateway these endpoints talk to.
    pub fn gateway_url(&self) -> &str {
        &self.gateway
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
    pub async fn add_policy(&self) -> Result<AddedPolicy, ClientError> {
        let url = format!("{}/repro/policies", self.dashboard);
        let (response, _) = send_retrying_connect(|| self.admin(self.http.post(&url)).send()).await;
        let response = response.map_err(|source| dashboard_unreachable(&url, source))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Answered(self.scrub(&format!(
                "dashboard {url} answered {status}: {}",
                snippet(&body)
            ))));
        }
        response
            .json::<AddedPolicy>()
            .await
            .map_err(|source| ClientError::Unreadable { url, source })
    }

    /// Sends the per-scenario trigger.
    pub async fn trigger(&self, trigger: Trigger) -> Result<(), Failure<ClientError>> {
        self.trigger_classified(trigger).await.result
    }

    /// [`Endpoints::trigger`] with the attempt's class.
    pub async fn trigger_classified(
        &self,
        trigger: Trigger,
    ) -> Classified<Result<(), Failure<ClientError>>> {
        let path = match trigger {
            Trigger::Notify | Trigger::None => {
                return Classified {
                    result: Ok(()),
                    class: AttemptClass::Ok,
                    connect_timeouts: 0,
                };
            }
            Trigger::Reload => "/tyk/reload",
            Trigger::Group => "/tyk/reload/group",
        };
        let url = format!("{}{path}", self.gateway);
        let (sent, connect_timeouts) = send_retrying_connect(|| {
            self.http
                .get(&url)
                .header(HEADER_GATEWAY_AUTH, &self.secret)
                .send()
        })
        .await;
        let done = |result, class| Classified {
            result,
            class,
            connect_timeouts,
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let class = classify_transport(&e);
                return done(Err(Failure::Transient(gateway_unreachable(&url, e))), class);
            }
        };
        match response.status() {
            StatusCode::OK => done(Ok(()), AttemptClass::Ok),
            StatusCode::FORBIDDEN => done(
                Err(Failure::Fatal(ClientError::SecretRejected { url })),
                AttemptClass::Other,
            ),
            status => {
                let body = response.text().await.unwrap_or_default();
                let message = self.scrub(&format!(
                    "gateway {url} answered {status}: {}",
                    snippet(&body)
                ));
                done(
                    Err(Failure::Fatal(ClientError::Answered(message))),
                    AttemptClass::Other,
                )
            }
        }
    }

    /// One `POST /tyk/keys/create` bound to `policy_id`.
    pub async fn create_key(&self, policy_id: &str) -> KeyAttempt {
        self.create_key_classified(policy_id).await.result
    }

    /// [`Endpoints::create_key`] with the attempt's class.
    pub async fn create_key_classified(&self, policy_id: &str) -> Classified<KeyAttempt> {
        let url = format!("{}/tyk/keys/create", self.gateway);
        let body = KeyCreateRequest {
            apply_policies: vec![policy_id.to_owned()],
        };
        let (sent, connect_timeouts) = send_retrying_connect(|| {
            self.http
                .post(&url)
                .header(HEADER_GATEWAY_AUTH, &self.secret)
                .json(&body)
                .send()
        })
        .await;
        let done = |result: KeyAttempt, class| Classified {
            result,
            class,
            connect_timeouts,
        };
        let transient = |e: &reqwest::Error| {
            done(
                KeyAttempt::Transient(format!("gateway {url}: {}", describe(e))),
                classify_transport(e),
            )
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => return transient(&e),
        };
        let status = response.status();
        if status == StatusCode::OK {
            return done(KeyAttempt::Created, AttemptClass::Ok);
        }
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return transient(&e),
        };
        let attempt = classify_key_failure(status, &self.scrub(&text), &url);
        let class = match attempt {
            KeyAttempt::Created => AttemptClass::Ok,
            KeyAttempt::NotYet(_) => AttemptClass::NotYet,
            KeyAttempt::Transient(_) | KeyAttempt::Fatal(_) => AttemptClass::Other,
        };
        done(attempt, class)
    }

    /// The mock's counters.
    pub async fn stats(&self) -> Result<MockStats, ClientError> {
        let url = format!("{}/repro/stats", self.dashboard);
        self.get_json(&url).await
    }

    /// The mock's fetch log since `since_ms` (Unix ms).
    pub async fn mock_fetches(&self, since_ms: u64) -> Result<Vec<FetchRecord>, ClientError> {
        let url = format!("{}/repro/fetches?since_ms={since_ms}", self.dashboard);
        self.get_json(&url).await
    }

    /// `POST /repro/reset`: back to the initial policy pool (between repetitions).
    pub async fn reset_pool(&self) -> Result<(), ClientError> {
        let url = format!("{}/repro/reset", self.dashboard);
        let response = self
            .admin(self.http.post(&url))
            .send()
            .await
            .map_err(|source| dashboard_unreachable(&url, source))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error("dashboard", url, response.status()))
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ClientError> {
        let response = self
            .admin(self.http.get(url))
            .send()
            .await
            .map_err(|source| dashboard_unreachable(url, source))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ClientError::AdminToken {
                url: url.to_owned(),
                status,
            });
        }
        if !status.is_success() {
            return Err(status_error("dashboard", url.to_owned(), status));
        }
        response
            .json::<T>()
            .await
            .map_err(|source| ClientError::Unreadable {
                url: url.to_owned(),
                source,
            })
    }

    /// Dashboard readiness: `GET /health` answers 200.
    pub async fn probe_dashboard(&self) -> Result<(), ClientError> {
        let url = format!("{}/health", self.dashboard);
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(status_error("dashboard", url, r.status())),
            Err(e) => Err(dashboard_unreachable(&url, e)),
        }
    }

    /// Gateway readiness: `GET /tyk/apis` with the secret (v2.9.x).
    pub async fn probe_gateway(&self) -> Result<(), Failure<ClientError>> {
        let url = format!("{}/tyk/apis", self.gateway);
        match self
            .http
            .get(&url)
            .header(HEADER_GATEWAY_AUTH, &self.secret)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status() == StatusCode::FORBIDDEN => {
                Err(Failure::Fatal(ClientError::SecretRejected { url }))
            }
            Ok(r) => Err(Failure::Transient(status_error("gateway", url, r.status()))),
            Err(e) => Err(Failure::Transient(gateway_unreachable(&url, e))),
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

/// No answer from the dashboard at `url`.
pub(crate) fn dashboard_unreachable(url: &str, source: reqwest::Error) -> ClientError {
    ClientError::Transport {
        service: "dashboard",
        url: url.to_owned(),
        source,
    }
}

/// No answer from the gateway at `url`.
pub(crate) fn gateway_unreachable(url: &str, source: reqwest::Error) -> ClientError {
    ClientError::Transport {
        service: "gateway",
        url: url.to_owned(),
        source,
    }
}

/// An unexpected status from `service`.
pub(crate) fn status_error(service: &'static str, url: String, status: StatusCode) -> ClientError {
    ClientError::Status {
        service,
        url,
        status,
    }
}

/// The message for a gateway that answered 403 to the secret.
pub(crate) fn secret_rejected(url: &str) -> String {
    format!(
        "gateway {url} answered 403: it rejected the secret; pass the gateway's `secret` with --secret / REPRO_SECRET"
    )
}

/// A short, single-line excerpt of a body for error messages.
fn snippet(body: &str) -> String {
    let line: String = body.trim().chars().take(200).collect();
    line.replace(['\n', '\r'], " ")
}

/// Sends a request, abandoning a connect that times out and trying again at once (at most
/// [`CONNECT_RETRIES`] times); returns the last result and the connects retried.
async fn send_retrying_connect<F, Fut>(mut send: F) -> (reqwest::Result<reqwest::Response>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut retried = 0;
    loop {
        match send().await {
            Err(e) if is_connect_timeout(&e) && retried < CONNECT_RETRIES => retried += 1,
            other => return (other, retried),
        }
    }
}

fn is_connect_timeout(error: &reqwest::Error) -> bool {
    error.is_connect() && error.is_timeout()
}

/// The class of a request that got no answer.
pub fn classify_transport(error: &reqwest::Error) -> AttemptClass {
    if is_connect_timeout(error) {
        return AttemptClass::ConnectTimedOut;
    }
    if error.is_timeout() {
        return AttemptClass::TimedOut;
    }
    if error.is_connect() || is_reset(error) {
        return AttemptClass::RefusedOrReset;
    }
    AttemptClass::Other
}

/// A connection reset, aborted or closed before the answer, anywhere in the cause chain.
fn is_reset(error: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        // hyper's "connection closed before message completed" (hyper is not a direct
        // dependency, so its error is recognised by its text).
        let text = cause.to_string();
        if text.contains("connection closed") || text.contains("connection reset") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// reqwest's error with the cause chain, shortened to what a user can act on.
pub fn describe(error: &reqwest::Error) -> String {
    if is_connect_timeout(error) {
        return "connect timed out".into();
    }
    if error.is_timeout() {
        return "timed out".into();
    }
    if error.is_connect() {
        return "connection refused or unreachable".into();
    }
    crate::telemetry::error_chain(error)
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

    fn client(request_timeout_ms: u64) -> reqwest::Client {
        let request = Duration::from_millis(request_timeout_ms);
        reqwest::Client::builder()
            .timeout(request)
            .connect_timeout(connect_timeout(request).min(Duration::from_millis(300)))
            .build()
            .unwrap()
    }

    async fn classify_get(client: &reqwest::Client, url: &str) -> (AttemptClass, u32) {
        let (sent, retried) = send_retrying_connect(|| client.get(url).send()).await;
        (classify_transport(&sent.unwrap_err()), retried)
    }

    #[tokio::test]
    async fn a_refused_connect_a_silent_gateway_and_a_dropped_connection_are_told_apart() {
        let c = client(400);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused_url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        assert_eq!(
            classify_get(&c, &refused_url).await,
            (AttemptClass::RefusedOrReset, 0)
        );

        // Accepts and reads, never answers: the request timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_url = format!("http://{}/", silent.local_addr().unwrap());
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        assert_eq!(
            classify_get(&c, &silent_url).await,
            (AttemptClass::TimedOut, 0)
        );
        holder.abort();

        // Accepts, reads the request, closes without a word: reset / closed early.
        let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rude_url = format!("http://{}/", rude.local_addr().unwrap());
        let closer = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            while let Ok((mut s, _)) = rude.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                drop(s);
            }
        });
        assert_eq!(
            classify_get(&c, &rude_url).await,
            (AttemptClass::RefusedOrReset, 0)
        );
        closer.abort();
    }

    #[tokio::test]
    async fn a_connect_that_hangs_is_retried_at_once_then_counted_as_a_connect_timeout() {
        // A listener with a backlog of one that never accepts: once its queue is full, the
        // kernel drops further SYNs and connects hang (on loopback, nothing leaves the host).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => fillers.push(s),
                _ => break,
            }
        }
        let c = client(5_000);
        let (class, retried) = classify_get(&c, &format!("http://{addr}/")).await;
        assert_eq!(
            (class, retried),
            (AttemptClass::ConnectTimedOut, CONNECT_RETRIES),
            "every hanging connect is retried at once, the last one counted"
        );
        drop(listener);
    }
}
