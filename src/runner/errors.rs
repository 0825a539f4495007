//! Typed errors of the runner's HTTP calls and readiness gates.
//!
//! Every error keeps its cause (`#[source]`) and renders the same one-line text the kit always
//! showed; callers show it with `Display` at the edge (the summary's `reason`, a scenario's
//! `last_error`). [`Failure`] carries the fatal/transient distinction the gates and the verdict
//! core match on: fatal is a configuration error retrying would only hide.

use reqwest::StatusCode;

use super::client::describe;
use crate::protocol::NOTIFICATION_CHANNEL;

/// A failed probe or trigger: stop now ([`Failure::Fatal`]) or try again ([`Failure::Transient`]).
#[derive(Debug, thiserror::Error)]
pub enum Failure<E> {
    /// An answer retrying cannot change (a rejected secret, an unexpected status).
    #[error("{0}")]
    Fatal(E),
    /// No answer or "not yet": the service may still come up.
    #[error("{0}")]
    Transient(E),
}

impl<E> Failure<E> {
    /// Whether retrying is pointless.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Failure::Fatal(_))
    }

    /// The error, whatever its class.
    pub fn into_inner(self) -> E {
        match self {
            Failure::Fatal(e) | Failure::Transient(e) => e,
        }
    }

    /// The same class around another error.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Failure<F> {
        match self {
            Failure::Fatal(e) => Failure::Fatal(f(e)),
            Failure::Transient(e) => Failure::Transient(f(e)),
        }
    }
}

/// A call to the mock dashboard or the gateway that did not give the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: refused, reset, timed out.
    #[error("{service} {url}: {}", describe(.source))]
    Transport {
        /// `dashboard` or `gateway`.
        service: &'static str,
        /// The request's URL.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer, without naming the service (the watcher's liveness probe).
    #[error("{}", describe(.0))]
    Unreachable(#[source] reqwest::Error),
    /// An unexpected status.
    #[error("{service} {url} answered {status}")]
    Status {
        /// `dashboard` or `gateway`.
        service: &'static str,
        /// The request's URL.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// An unexpected status with an excerpt of the body, secrets already hidden.
    #[error("{0}")]
    Answered(String),
    /// 401/403 from the mock's admin API.
    #[error(
        "dashboard {url} answered {status}: pass the mock's admin token with --admin-token / REPRO_ADMIN_TOKEN"
    )]
    AdminToken {
        /// The request's URL.
        url: String,
        /// 401 or 403.
        status: StatusCode,
    },
    /// 403 from the gateway's control API.
    #[error("{}", super::client::secret_rejected(.url))]
    SecretRejected {
        /// The request's URL.
        url: String,
    },
    /// A 2xx whose body is not what the API promises.
    #[error("dashboard {url}: unreadable answer: {source}")]
    Unreadable {
        /// The request's URL.
        url: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
    /// `/tyk/apis` answered something that is not a list.
    #[error("gateway {url}: unreadable API list: {source}")]
    UnreadableApis {
        /// The request's URL.
        url: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
}

/// Why Redis did not answer `PING`.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// `--redis` is not a Redis URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Connecting or `PING` failed.
    #[error("{0}")]
    Redis(#[source] redis::RedisError),
    /// No answer in 2 s.
    #[error("timed out")]
    TimedOut,
}

/// Why a readiness gate was not passed.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// A call to the dashboard or the gateway.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Redis did not answer `PING`.
    #[error("Redis at {shown}: {source}")]
    Redis {
        /// The URL, password hidden.
        shown: String,
        /// Why.
        #[source]
        source: PingError,
    },
    /// The gateway probes could not be set up.
    #[error("{0:#}")]
    Checks(anyhow::Error),
    /// `/tyk/apis` lists nothing.
    #[error("{}", super::ready::NO_API)]
    NoApi,
    /// Every policy fetch was refused: the node secrets differ.
    #[error(
        "the dashboard refused {refused} policy fetch(es) from the gateway with 403 and accepted none:                  the gateway's node_secret differs from the dashboard's --node-secret (REPRO_NODE_SECRET); make them equal"
    )]
    NodeSecret {
        /// Fetches refused.
        refused: usize,
    },
    /// Not every gateway node fetched its policies yet.
    #[error(
        "the dashboard served its policy list to {served} of {gateways} gateway node(s): the gateway              has not loaded its startup policies yet (check that its              policies.policy_connection_string points at the dashboard)"
    )]
    NotFetched {
        /// Nodes served.
        served: usize,
        /// Nodes expected.
        gateways: u64,
    },
    /// Not every gateway subscribed to the notification channel yet.
    #[error("{subscribed} of {gateways} gateway(s) subscribed to {channel} on the                  dashboard's Redis: notifications sent now would reach nobody (v3.x subscribes                  ~10 s after it starts; check the gateway's storage Redis is the dashboard's, or                  pass --no-wait-subscribers to start anyway)", channel = NOTIFICATION_CHANNEL)]
    NotSubscribed {
        /// Subscribers counted.
        subscribed: u64,
        /// Gateways expected.
        gateways: u64,
    },
    /// The gateway created a key for a policy that does not exist.
    #[error(
        "canary: the gateway at {gateway} created a key for policy `{policy}`, which does not          exist: it accepts keys for unknown policies, so every scenario would 'succeed' at once.          It probably loaded no API for the policies' org: check `app_path` in the gateway's          config and the apps mount (the kit's run/apps, org `monarch`). No load was started"
    )]
    CanaryAccepted {
        /// The made-up policy id.
        policy: String,
        /// The gateway's URL.
        gateway: String,
    },
    /// A transient failure that lasted until the deadline.
    #[error("{service} not ready after {waited_s:.0}s: {reason}")]
    NotReady {
        /// The service waited for.
        service: String,
        /// Seconds waited at this gate.
        waited_s: f64,
        /// The last probe's failure.
        #[source]
        reason: Box<ReadyError>,
    },
    /// A failure with what the service's container logged (`tail` starts with `; `).
    #[error("{reason}{tail}")]
    WithLogs {
        /// The failure.
        #[source]
        reason: Box<ReadyError>,
        /// The log excerpt or why there is none.
        tail: String,
    },
}
