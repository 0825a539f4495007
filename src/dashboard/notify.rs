//! Publishing `PolicyChanged` on Redis after each add, the way the real dashboard tells gateways.
//!
//! The message is signed with the node secret (tyk-protocol §4) so it is accepted whether or not
//! the gateway checks signatures. It never changes, so it is encoded once. Publishing goes through
//! a small connection pool with a timeout on every step: a slow Redis must delay a notification,
//! never wedge the add that precedes it.
//!
//! PUBLISH answers with the number of subscribers that received the message: it is kept (a
//! notification nobody heard is the kit's failure, not the gateway's), and so is how long each
//! PUBLISH took. A background task looks at `PUBSUB NUMSUB` every 200 ms so the runner can wait
//! until every gateway listens before it starts the load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deadpool_redis::{Config, Pool, Runtime};

use crate::protocol::{NOTIFICATION_CHANNEL, Notification, SLOW_PUBLISH_MS};

/// How long one publish (pool checkout + PUBLISH) may take before it counts as failed.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber count is refreshed.
const NUMSUB_EVERY: Duration = Duration::from_millis(200);
/// Slots of the receiver-count histogram; the last one counts that many receivers or more.
const RECEIVER_SLOTS: usize = 16;
/// `subscribers` value meaning "not known (yet)".
const UNKNOWN: u64 = u64::MAX;

/// What PUBLISH and PUBSUB NUMSUB told, shared with the NUMSUB task.
#[derive(Debug)]
pub struct PublishFacts {
    receivers: [AtomicU64; RECEIVER_SLOTS],
    subscribers: AtomicU64,
    max_us: AtomicU64,
    slow: AtomicU64,
}

impl Default for PublishFacts {
    fn default() -> Self {
        Self {
            receivers: std::array::from_fn(|_| AtomicU64::new(0)),
            subscribers: AtomicU64::new(UNKNOWN),
            max_us: AtomicU64::new(0),
            slow: AtomicU64::new(0),
        }
    }
}

impl PublishFacts {
    fn record(&self, took: Duration, receivers: Option<u64>) {
        let us = took.as_micros() as u64;
        self.max_us.fetch_max(us, Ordering::Relaxed);
        if us > SLOW_PUBLISH_MS * 1000 {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(n) = receivers {
            let slot = (n as usize).min(RECEIVER_SLOTS - 1);
            self.receivers[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// PUBLISHes per receiver count (see `MockStats::publish_receivers`).
    pub fn receivers(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .receivers
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        while v.last() == Some(&0) {
            v.pop();
        }
        v
    }

    /// The last `PUBSUB NUMSUB` answer, if any.
    pub fn subscribers(&self) -> Option<u64> {
        Some(self.subscribers.load(Ordering::Relaxed)).filter(|n| *n != UNKNOWN)
    }

    /// Slowest PUBLISH, microseconds.
    pub fn max_us(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }

    /// PUBLISHes slower than `SLOW_PUBLISH_MS`.
    pub fn slow(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }
}

/// How the mock tells gateways a policy changed.
pub enum Publisher {
    /// `--notify none`: adds are silent (the runner triggers reloads itself).
    Disabled,
    /// `--notify redis`: PUBLISH on `tyk.cluster.notifications`.
    Redis(RedisPublisher),
}

/// A Redis pool plus the pre-encoded, signed `PolicyChanged` message.
pub struct RedisPublisher {
    pool: Pool,
    message: String,
    url_for_humans: String,
    facts: Arc<PublishFacts>,
}

impl Publisher {
    /// Publishes one `PolicyChanged`; `Ok(None)` when notifications are disabled, else
    /// `Ok(Some(receivers))`.
    pub async fn publish_policy_changed(&self) -> anyhow::Result<Option<u64>> {
        match self {
            Publisher::Disabled => Ok(None),
            Publisher::Redis(redis) => redis.publish().await.map(Some),
        }
    }

    /// Receiver counts, subscriber count and PUBLISH latency; `None` when disabled.
    pub fn facts(&self) -> Option<&PublishFacts> {
        match self {
            Publisher::Disabled => None,
            Publisher::Redis(redis) => Some(&redis.facts),
        }
    }
}

impl RedisPublisher {
    /// Connects to `url` and checks it answers PING within `timeout`, before anything is served.
    pub async fn connect(url: &str, node_secret: &str, timeout: Duration) -> anyhow::Result<Self> {
        let url_for_humans = crate::telemetry::redact_url(url);
        let password = crate::telemetry::url_password(url);
        let unreachable = |cause: String| {
            let cause = crate::telemetry::redact(&cause, &[&password, node_secret]);
            anyhow::anyhow!(
                "cannot reach Redis at {url_for_humans}: {cause} \
                 (start redis-server or pass --redis / REPRO_REDIS)"
            )
        };
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| unreachable(e.to_string()))?;
        let ping = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(cause)) => return Err(unreachable(cause)),
            Err(_) => return Err(unreachable(format!("no answer to PING within {timeout:?}"))),
        }
        let message =
            serde_json::to_string(&Notification::signed("PolicyChanged", "", node_secret))
                .context("encoding the PolicyChanged notification")?;
        let facts = Arc::new(PublishFacts::default());
        tokio::spawn(watch_subscribers(pool.clone(), Arc::downgrade(&facts)));
        Ok(Self {
            pool,
            message,
            url_for_humans,
            facts,
        })
    }

    /// The Redis URL with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url_for_humans
    }

    async fn publish(&self) -> anyhow::Result<u64> {
        let began = Instant::now();
        let send = async {
            let mut conn = self.pool.get().await?;
            let receivers = redis::cmd("PUBLISH")
                .arg(NOTIFICATION_CHANNEL)
                .arg(&self.message)
                .query_async::<i64>(&mut conn)
                .await?;
            anyhow::Ok(receivers.max(0) as u64)
        };
        let result = tokio::time::timeout(PUBLISH_TIMEOUT, send)
            .await
            .map_err(|_| anyhow::anyhow!("PUBLISH took longer than {PUBLISH_TIMEOUT:?}"))
            .and_then(|r| r)
            .with_context(|| format!("publishing PolicyChanged on {}", self.url_for_humans));
        self.facts
            .record(began.elapsed(), result.as_ref().ok().copied());
        result
    }
}

/// Refreshes the subscriber count until the publisher is dropped. A Redis that does not answer
/// makes the count unknown, never stale.
async fn watch_subscribers(pool: Pool, facts: std::sync::Weak<PublishFacts>) {
    let mut every = tokio::time::interval(NUMSUB_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let ask = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(NOTIFICATION_CHANNEL)
                .query_async::<(String, u64)>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        };
        let answer = tokio::time::timeout(PUBLISH_TIMEOUT, ask).await;
        let Some(facts) = facts.upgrade() else {
            return;
        };
        let count = match answer {
            Ok(Ok((_, n))) => n,
            _ => UNKNOWN,
        };
        facts.subscribers.store(count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_facts_count_receivers_and_slow_publishes() {
        let facts = PublishFacts::default();
        assert_eq!(facts.subscribers(), None, "unknown until NUMSUB answers");
        facts.record(Duration::from_millis(1), Some(0));
        facts.record(Duration::from_millis(2), Some(1));
        facts.record(Duration::from_millis(700), Some(1));
        facts.record(Duration::from_millis(2000), None);
        facts.record(Duration::from_millis(1), Some(40));
        let mut receivers = vec![1, 2];
        receivers.resize(RECEIVER_SLOTS, 0);
        receivers[RECEIVER_SLOTS - 1] = 1;
        assert_eq!(facts.receivers(), receivers);
        assert_eq!(facts.slow(), 2);
        assert_eq!(facts.max_us(), 2_000_000);
        let stats = crate::protocol::MockStats {
            publish_receivers: facts.receivers(),
            ..Default::default()
        };
        assert_eq!(stats.publishes_reaching_fewer_than(1), 1);
        assert_eq!(stats.publishes_reaching_fewer_than(2), 3);
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_reported_with_its_url_and_what_to_do() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("redis://:hunter2@127.0.0.1:{port}");
        let err = RedisPublisher::connect(&url, "nodesecret", Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        let text = format!("{err:#}");
        assert!(text.contains(&format!(
            "cannot reach Redis at redis://:***@127.0.0.1:{port}"
        )));
        assert!(text.contains("REPRO_REDIS"));
        assert!(!text.contains("hunter2") && !text.contains("nodesecret"));
    }
}
