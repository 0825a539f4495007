//! The mock's shared state: the policy pool, nonce book, fetch log, publisher and counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::{AddedPolicy, MockStats};

use super::fetch_log::FetchLog;
use super::nonces::NonceBook;
use super::notify::Publisher;
use super::pool::PolicyPool;

/// Everything the handlers share; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct DashboardState {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) pool: PolicyPool,
    pub(super) nonces: NonceBook,
    pub(super) fetch_log: FetchLog,
    pub(super) publisher: Publisher,
    pub(super) node_secret: String,
    pub(super) admin_token: Option<String>,
    pub(super) counters: Counters,
    pub(super) initial_policies: u64,
}

/// Monotonic counters behind `GET /repro/stats`.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) fetches: AtomicU64,
    pub(super) adds: AtomicU64,
    pub(super) rejected_fetches: AtomicU64,
    pub(super) nonce_mismatches: AtomicU64,
    pub(super) published: AtomicU64,
    pub(super) publish_errors: AtomicU64,
}

/// Parts from which [`DashboardState`] is assembled (see `build_state`).
pub(super) struct StateParts {
    pub(super) pool: PolicyPool,
    pub(super) nonces: NonceBook,
    pub(super) fetch_log: FetchLog,
    pub(super) publisher: Publisher,
    pub(super) node_secret: String,
    pub(super) admin_token: Option<String>,
}

impl fmt::Debug for DashboardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The node secret and admin token are deliberately left out.
        f.debug_struct("DashboardState")
            .field("policies", &self.shared.pool.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DashboardState {
    pub(super) fn new(parts: StateParts) -> Self {
        let initial_policies = parts.pool.len();
        Self {
            shared: Arc::new(Shared {
                pool: parts.pool,
                nonces: parts.nonces,
                fetch_log: parts.fetch_log,
                publisher: parts.publisher,
                node_secret: parts.node_secret,
                admin_token: parts.admin_token,
                counters: Counters::default(),
                initial_policies,
            }),
        }
    }

    /// The counters as `GET /repro/stats` reports them.
    pub fn stats(&self) -> MockStats {
        let c = &self.shared.counters;
        let publish = self.shared.publisher.facts();
        MockStats {
            publish_receivers: publish.map(|f| f.receivers()).unwrap_or_default(),
            subscribers: publish.and_then(|f| f.subscribers()),
            publish_max_us: publish.map_or(0, |f| f.max_us()),
            slow_publishes: publish.map_or(0, |f| f.slow()),
            policies_served: self.shared.pool.len(),
            fetches: c.fetches.load(Ordering::Relaxed),
            adds: c.adds.load(Ordering::Relaxed),
            rejected_fetches: c.rejected_fetches.load(Ordering::Relaxed),
            nonce_mismatches: c.nonce_mismatches.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            publish_errors: c.publish_errors.load(Ordering::Relaxed),
            initial_policies: self.shared.initial_policies,
        }
    }

    /// Back to `--initial-policies` fresh policies (between repetitions of a run).
    pub fn reset_pool(&self) -> u64 {
        self.shared.pool.reset(self.shared.initial_policies);
        self.shared.pool.len()
    }

    /// Adds one policy, then (it is already visible to fetches) publishes `PolicyChanged`.
    ///
    /// A failed publish is logged and counted, never turned into a failed add: the policy exists
    /// and the runner's retries will show the missing reload.
    pub async fn add_policy(&self) -> AddedPolicy {
        let added = self.shared.pool.add();
        let c = &self.shared.counters;
        c.adds.fetch_add(1, Ordering::Relaxed);
        let receivers = match self.shared.publisher.publish_policy_changed().await {
            Ok(Some(receivers)) => {
                c.published.fetch_add(1, Ordering::Relaxed);
                Some(receivers)
            }
            Ok(None) => None,
            Err(err) => {
                c.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(index = added.index, "PolicyChanged not published: {err:#}");
                None
            }
        };
        AddedPolicy {
            id: added.id,
            index: added.index,
            served: self.shared.pool.len(),
            receivers,
        }
    }
}

pub(super) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
