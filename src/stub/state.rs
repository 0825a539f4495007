//! The stub's shared state: scheduler, loaded policies, counters, and the reload work itself.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::ReloadMode;
use super::policies::fetch_policies;
use super::publisher::Publisher;
use super::reload::{Scheduler, TriggerOutcome};

/// Settings the running stub needs (validated from [`super::StubArgs`]).
#[derive(Clone)]
pub struct StubConfig {
    /// Reload scheduling to emulate.
    pub mode: ReloadMode,
    /// Gateway secret (`X-Tyk-Authorization`).
    pub secret: String,
    /// Node secret: sent to the dashboard, checks notification signatures.
    pub node_secret: String,
    /// Skip notification signature checks.
    pub allow_insecure: bool,
    /// Policy connection string (no path).
    pub dashboard: String,
    /// Fixed cost of one reload.
    pub reload_cost: Duration,
    /// Extra cost per policy loaded.
    pub per_policy_cost: Duration,
    /// Reloads after which the stub stops reloading.
    pub stall_after_reloads: Option<u64>,
}

impl std::fmt::Debug for StubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubConfig")
            .field("mode", &self.mode)
            .field("secret", &"***")
            .field("node_secret", &"***")
            .field("allow_insecure", &self.allow_insecure)
            .field("dashboard", &self.dashboard)
            .field("reload_cost", &self.reload_cost)
            .field("per_policy_cost", &self.per_policy_cost)
            .field("stall_after_reloads", &self.stall_after_reloads)
            .finish()
    }
}

/// Counters served on `GET /repro/stub/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StubStats {
    /// Version string, saying which scheduling is emulated.
    pub version: String,
    /// Reloads started (the startup load is not one).
    pub reloads: u64,
    /// Reload triggers received (HTTP and pub/sub).
    pub triggers: u64,
    /// v2.9.4: triggers counted as served by a reload that had already fetched its policies.
    pub lost_trigger_candidates: u64,
    /// Policies currently known (keys can be created for them).
    pub policies_loaded: u64,
    /// When the last reload (or the startup load) ended, Unix epoch milliseconds; 0 if never.
    pub last_reload_at_ms: u64,
    /// `--stall-after-reloads` reached: no reload will start again.
    pub stalled: bool,
    /// The Redis subscription is up.
    pub subscribed: bool,
    /// Notifications received on the channel.
    pub notifications: u64,
    /// Notifications ignored for an unknown command.
    pub ignored_notifications: u64,
    /// Notifications rejected for a bad signature.
    pub invalid_signatures: u64,
    /// Notifications that were not valid JSON.
    pub malformed_notifications: u64,
    /// Policy fetches that kept the old policies (error, 403, malformed or empty).
    pub fetch_failures: u64,
}

/// Counters bumped from several tasks.
#[derive(Debug, Default)]
pub struct Counters {
    /// See [`StubStats::subscribed`].
    pub subscribed: AtomicBool,
    /// See [`StubStats::notifications`].
    pub notifications: AtomicU64,
    /// See [`StubStats::ignored_notifications`].
    pub ignored_notifications: AtomicU64,
    /// See [`StubStats::invalid_signatures`].
    pub invalid_signatures: AtomicU64,
    /// See [`StubStats::malformed_notifications`].
    pub malformed_notifications: AtomicU64,
    /// See [`StubStats::fetch_failures`].
    pub fetch_failures: AtomicU64,
    /// See [`StubStats::last_reload_at_ms`].
    pub last_reload_at_ms: AtomicU64,
}

/// Everything the control API, the subscriber and the reload loop share.
#[derive(Debug)]
pub struct StubState {
    /// Settings.
    pub config: StubConfig,
    /// Counters.
    pub counters: Counters,
    /// Publishes `GroupReload` for `/tyk/reload/group`.
    pub publisher: Publisher,
    /// Cancelled when the stub stops; blocked callers stop waiting then.
    pub shutdown: CancellationToken,
    scheduler: Mutex<Scheduler<oneshot::Sender<()>>>,
    /// Swapped whole at the end of a reload, so readers never wait on a 100k-id rebuild.
    policies: RwLock<Arc<HashSet<String>>>,
    nonce: Mutex<String>,
    node_id: String,
    http: reqwest::Client,
}

impl StubState {
    /// State with no policies loaded yet.
    pub fn new(
        config: StubConfig,
        publisher: Publisher,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self {
            scheduler: Mutex::new(Scheduler::new(config.mode, config.stall_after_reloads)),
            config,
            counters: Counters::default(),
            publisher,
            shutdown,
            policies: RwLock::new(Arc::new(HashSet::new())),
            nonce: Mutex::new(String::new()),
            // Unregistered gateways call themselves `solo-<uuid4>`, fixed for the process.
            node_id: format!("solo-{}", uuid::Uuid::new_v4()),
            http,
        })
    }

    /// The scheduler; a panic elsewhere must not wedge every later trigger, so poison is ignored.
    pub fn lock_scheduler(&self) -> MutexGuard<'_, Scheduler<oneshot::Sender<()>>> {
        self.scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one reload trigger, logging like Tyk; `waiter` fires when a reload serves it.
    pub fn trigger_reload(&self, waiter: Option<oneshot::Sender<()>>) {
        let outcome = self.lock_scheduler().trigger(waiter);
        match outcome {
            TriggerOutcome::Queued => tracing::info!("Reload queued"),
            TriggerOutcome::AlreadyQueued { .. } => tracing::info!("Reload already queued"),
        }
    }

    /// Whether a key can be bound to this policy now.
    pub fn knows_policy(&self, id: &str) -> bool {
        self.current_policies().contains(id)
    }

    /// Replaces the known policies at once (the end of a reload; tests seed it directly).
    pub fn set_policies(&self, ids: HashSet<String>) {
        *self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(ids);
    }

    fn current_policies(&self) -> Arc<HashSet<String>> {
        self.policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One reload's work: fetch at the START, spend the programmed cost, and only then make the
    /// new set visible. Fetching first is what lets v2.9.4 miss changes made mid-reload.
    pub async fn reload_policies(&self) {
        let nonce = self
            .nonce
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let fetched = fetch_policies(
            &self.http,
            &self.config.dashboard,
            &self.config.node_secret,
            &self.node_id,
            &nonce,
        )
        .await;
        let fresh = match fetched {
            Ok(set) => {
                *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = set.nonce;
                Some(set.ids)
            }
            Err(err) => {
                self.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{err}");
                None
            }
        };
        let count = fresh
            .as_ref()
            .map_or_else(|| self.current_policies().len(), HashSet::len);
        tokio::time::sleep(self.reload_cost(count)).await;
        if let Some(ids) = fresh {
            self.set_policies(ids);
        }
        tracing::info!("Policies found ({count} total)");
        self.counters
            .last_reload_at_ms
            .store(now_ms(), Ordering::Relaxed);
    }

    /// `--reload-cost-ms` + policies × `--per-policy-cost-us`.
    fn reload_cost(&self, policies: usize) -> Duration {
        let per_policy = self
            .config
            .per_policy_cost
            .saturating_mul(u32::try_from(policies).unwrap_or(u32::MAX));
        self.config.reload_cost.saturating_add(per_policy)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StubStats {
        let (reloads, triggers, lost, stalled) = {
            let s = self.lock_scheduler();
            (
                s.reloads_started(),
                s.triggers(),
                s.lost_trigger_candidates(),
                s.is_stalled(),
            )
        };
        let c = &self.counters;
        StubStats {
            version: super::version_string(self.config.mode).to_owned(),
            reloads,
            triggers,
            lost_trigger_candidates: lost,
            policies_loaded: self.current_policies().len() as u64,
            last_reload_at_ms: c.last_reload_at_ms.load(Ordering::Relaxed),
            stalled,
            subscribed: c.subscribed.load(Ordering::Relaxed),
            notifications: c.notifications.load(Ordering::Relaxed),
            ignored_notifications: c.ignored_notifications.load(Ordering::Relaxed),
            invalid_signatures: c.invalid_signatures.load(Ordering::Relaxed),
            malformed_notifications: c.malformed_notifications.load(Ordering::Relaxed),
            fetch_failures: c.fetch_failures.load(Ordering::Relaxed),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
