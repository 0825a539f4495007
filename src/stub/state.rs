//! The stub's shared state: scheduler, loaded policies, counters, and the reload work itself.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::ReloadMode;
use super::cost::{ReloadCost, ReloadWork, burn_until};
use super::policies::{PolicyFetchError, PolicySet, fetch_policy_body, parse_fetched};
use super::publisher::Publisher;
use super::reload::{ReloadQueue, Scheduler, TriggerOutcome};
use crate::telemetry::Secret;

/// Settings the running stub needs (validated from [`super::StubArgs`]).
#[derive(Clone, Debug)]
pub struct StubConfig {
    /// Reload scheduling to emulate.
    pub mode: ReloadMode,
    /// Gateway secret (`X-Tyk-Authorization`).
    pub secret: Secret,
    /// Node secret: sent to the dashboard, checks notification signatures.
    pub node_secret: Secret,
    /// Skip notification signature checks.
    pub allow_insecure: bool,
    /// Policy connection string (no path).
    pub dashboard: String,
    /// What one reload costs and where the swap falls.
    pub cost: ReloadCost,
    /// Log one INFO line per policy per reload (v2.9.4 mode unless turned off).
    pub log_policies: bool,
    /// Reloads after which the stub stops reloading.
    pub stall_after_reloads: Option<u64>,
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
    /// The reload scheduling (state machine + wake-up for its driver).
    pub reloads: ReloadQueue<oneshot::Sender<()>>,
    /// Swapped whole at the swap point of a reload, so readers never wait on a 100k-id rebuild.
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
            reloads: ReloadQueue::new(config.mode, config.stall_after_reloads),
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
        self.reloads.lock()
    }

    /// Queues one reload trigger, logging like Tyk; `waiter` fires when a reload serves it.
    pub fn trigger_reload(&self, waiter: Option<oneshot::Sender<()>>) {
        let outcome = self.reloads.trigger(waiter);
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

    /// One reload's work (protocol §5, modelled by [`ReloadCost`]): fetch at the START; parse
    /// (and in v2.9.4 mode log every policy) on a blocking thread, burning CPU up to the swap
    /// point; swap the new set in ("Policies found"); then the API part of the cost. Fetching
    /// first is what lets v2.9.4 miss changes made mid-reload.
    pub async fn reload_policies(&self) {
        tracing::info!("reload: initiating");
        self.load_policies(self.config.cost).await;
    }

    /// The startup load: fetch, parse, log and swap, without the modelled cost.
    pub async fn load_policies_at_startup(&self) {
        self.load_policies(ReloadCost::FREE).await;
    }

    async fn load_policies(&self, cost: ReloadCost) {
        let began = std::time::Instant::now();
        let nonce = self
            .nonce
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let fetched = fetch_policy_body(
            &self.http,
            &self.config.dashboard,
            self.config.node_secret.expose(),
            &self.node_id,
            &nonce,
        )
        .await;
        let log_policies = self.config.log_policies;
        let known = self.current_policies().len();
        let stop = self.shutdown.clone();
        let policy_phase = tokio::task::spawn_blocking(move || {
            let parsed = fetched.and_then(|(status, body)| parse_fetched(status, &body));
            let count = parsed.as_ref().map_or(known, |set| set.ids.len());
            if let Ok(set) = &parsed {
                log_each_policy(set, log_policies);
            }
            let swap_at = began + cost.until_swap(count);
            if cost.work == ReloadWork::Busy {
                burn_until(swap_at, &stop);
            }
            (parsed, count, swap_at)
        })
        .await;
        let (parsed, count, swap_at) = match policy_phase {
            Ok(done) => done,
            Err(e) => {
                let err = PolicyFetchError::Request(format!("policy parser task failed: {e}"));
                (Err(err), self.current_policies().len(), began)
            }
        };
        if cost.work == ReloadWork::Sleep {
            tokio::time::sleep(swap_at.saturating_duration_since(std::time::Instant::now())).await;
        }
        match parsed {
            Ok(set) => {
                *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = set.nonce;
                self.set_policies(set.ids);
            }
            Err(err) => {
                self.counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{err}");
            }
        }
        tracing::info!("Policies found ({count} total)");
        self.counters
            .last_reload_at_ms
            .store(now_ms(), Ordering::Relaxed);
        self.spend_api_part(cost, count).await;
    }

    /// The part of the reload after the swap (APIs, middleware): still running, nothing to show.
    async fn spend_api_part(&self, cost: ReloadCost, count: usize) {
        let api_part = cost.after_swap(count);
        if api_part.is_zero() {
            return;
        }
        match cost.work {
            ReloadWork::Sleep => tokio::time::sleep(api_part).await,
            ReloadWork::Busy => {
                let stop = self.shutdown.clone();
                let until = std::time::Instant::now() + api_part;
                // A join error only means the burn was cut short: nothing else to undo.
                let _ = tokio::task::spawn_blocking(move || burn_until(until, &stop)).await;
            }
        }
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

/// v2.9.4 logs every policy id at INFO on each reload (the fix demoted it to debug): the line
/// volume, ~10 MB per reload at 80k policies, is part of what a reload costs under Docker.
fn log_each_policy(set: &PolicySet, at_info: bool) {
    if at_info {
        for id in &set.ids {
            tracing::info!(prefix = "policy", "Processing policy ID: {id}");
        }
    } else if tracing::enabled!(tracing::Level::DEBUG) {
        for id in &set.ids {
            tracing::debug!(prefix = "policy", "Processing policy ID: {id}");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
