//! Publishing on `tyk.cluster.notifications` (for `/tyk/reload/group`), over one lazily
//! (re)connected multiplexed Redis connection.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use crate::protocol::{NOTIFICATION_CHANNEL, Notification};

/// Bound on connecting to Redis and on one PUBLISH.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis publisher that reconnects on the next publish after any failure.
pub struct Publisher {
    client: redis::Client,
    url: String,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("url", &self.url).finish()
    }
}

/// `redis://user:pass@host` → `redis://***@host`: a Redis password never reaches a log.
fn display_url(url: &str) -> String {
    crate::telemetry::redact_userinfo(url)
}

impl Publisher {
    /// Parses the URL; does not connect yet.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            anyhow::anyhow!(
                "--redis {:?} is not a Redis URL ({e}): use redis://HOST:PORT",
                display_url(url)
            )
        })?;
        Ok(Self {
            client,
            url: display_url(url),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// The client, for the subscriber's own dedicated connection.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The URL without any password, for logs and error messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects now (startup check), with an error that names the URL.
    pub async fn connect(&self) -> anyhow::Result<()> {
        let mut slot = self.connection.lock().await;
        *slot = Some(self.open().await?);
        Ok(())
    }

    async fn open(&self) -> anyhow::Result<MultiplexedConnection> {
        let url = &self.url;
        match tokio::time::timeout(
            REDIS_TIMEOUT,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => anyhow::bail!(
                "cannot connect to Redis at {url} ({e}): start Redis or fix --redis / REPRO_REDIS"
            ),
            Err(_) => anyhow::bail!(
                "no answer from Redis at {url} within {REDIS_TIMEOUT:?}: start Redis or fix --redis / REPRO_REDIS"
            ),
        }
    }

    /// Publishes one notification; returns how many subscribers received it.
    pub async fn publish(&self, notification: &Notification) -> anyhow::Result<u64> {
        let body = serde_json::to_string(notification)?;
        let mut slot = self.connection.lock().await;
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let sent: Result<redis::RedisResult<u64>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, conn.publish(NOTIFICATION_CHANNEL, body)).await;
        match sent {
            Ok(Ok(receivers)) => {
                *slot = Some(conn);
                Ok(receivers)
            }
            // The connection is dropped: the next publish opens a fresh one.
            Ok(Err(e)) => anyhow::bail!("PUBLISH to Redis at {} failed: {e}", self.url),
            Err(_) => anyhow::bail!(
                "PUBLISH to Redis at {} got no answer within {REDIS_TIMEOUT:?}",
                self.url
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_url_hides_a_redis_password() {
        assert_eq!(
            super::display_url("redis://:hunter2@redis:6379/0"),
            "redis://***@redis:6379/0"
        );
        assert_eq!(
            super::display_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
