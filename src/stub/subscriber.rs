//! The Redis subscription to `tyk.cluster.notifications` (protocol §4): one dedicated
//! connection, messages handled one at a time, resubscribed after any failure, never fatal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::publisher::REDIS_TIMEOUT;
use super::state::StubState;
use crate::protocol::{NOTIFICATION_CHANNEL, Notification};

/// How often the idle subscription is pinged, so a dead connection is noticed.
const PING_EVERY: Duration = Duration::from_secs(30);

/// What the gateway does with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Queue one reload.
    Reload(String),
    /// Not JSON of the notification shape: logged and skipped.
    Malformed(String),
    /// Signature check failed ("Payload signature is invalid!").
    InvalidSignature,
    /// A command that does not reload (e.g. the gateways' own DRL notices).
    Ignored(String),
}

/// Classifies one message body. Like the gateway, the signature is checked before the command.
pub fn judge_message(body: &[u8], node_secret: &str, allow_insecure: bool) -> Verdict {
    // serde would also read `["PolicyChanged"]` as a struct; the gateway (Go) wants an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Verdict::Malformed("not a JSON object".into());
    }
    let notification: Notification = match serde_json::from_slice(body) {
        Ok(n) => n,
        Err(e) => return Verdict::Malformed(e.to_string()),
    };
    if !allow_insecure && !notification.signature_valid(node_secret) {
        return Verdict::InvalidSignature;
    }
    if notification.queues_reload() {
        Verdict::Reload(notification.command)
    } else {
        Verdict::Ignored(notification.command)
    }
}

/// Acts on one message: counts it and queues a reload when it asks for one.
pub fn handle_message(state: &StubState, body: &[u8]) {
    let c = &state.counters;
    c.notifications.fetch_add(1, Ordering::Relaxed);
    let config = &state.config;
    match judge_message(body, config.node_secret.expose(), config.allow_insecure) {
        Verdict::Reload(command) => {
            tracing::info!(command, "Reloading endpoints");
            state.trigger_reload(None);
        }
        Verdict::Malformed(detail) => {
            c.malformed_notifications.fetch_add(1, Ordering::Relaxed);
            tracing::error!("Unmarshalling message body failed, malformed: {detail}");
        }
        Verdict::InvalidSignature => {
            c.invalid_signatures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("Payload signature is invalid!");
        }
        Verdict::Ignored(command) => {
            c.ignored_notifications.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(command, "Ignoring notification");
        }
    }
}

/// [`run_subscriber`] after a first wait of `delay` (`--subscribe-delay`): a gateway that
/// subscribes late, as v3.x does ~10 s after its control API answers (protocol §4).
pub async fn run_subscriber_after(
    delay: Duration,
    state: Arc<StubState>,
    retry_delay: Duration,
    shutdown: CancellationToken,
) {
    if !delay.is_zero() {
        tracing::info!(
            "Subscribing to {NOTIFICATION_CHANNEL} only in {} (--subscribe-delay)",
            humantime::format_duration(delay)
        );
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    run_subscriber(state, retry_delay, shutdown).await;
}

/// Keeps a subscription up until `shutdown`, waiting `retry_delay` after each failure.
pub async fn run_subscriber(
    state: Arc<StubState>,
    retry_delay: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let result = subscribe_once(&state, &shutdown).await;
        state.counters.subscribed.store(false, Ordering::Relaxed);
        if shutdown.is_cancelled() {
            return;
        }
        if let Err(err) = result {
            tracing::error!(
                "Redis subscription failed: {err:#}; retrying in {}",
                humantime::format_duration(retry_delay)
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry_delay) => {}
        }
    }
}

async fn subscribe_once(state: &StubState, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let url = state.publisher.url();
    let client = state.publisher.client();
    let pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| anyhow::anyhow!("no answer from Redis at {url}"))??;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(NOTIFICATION_CHANNEL))
        .await
        .map_err(|_| anyhow::anyhow!("SUBSCRIBE got no answer from Redis at {url}"))??;
    state.counters.subscribed.store(true, Ordering::Relaxed);
    tracing::info!("Subscribed to {NOTIFICATION_CHANNEL} on {url}");
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = stream.next() => match message {
                Some(msg) => handle_message(state, msg.get_payload_bytes()),
                None => anyhow::bail!("Redis at {url} closed the subscription"),
            },
            _ = ping.tick() => {
                tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<()>())
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis at {url} did not answer a PING"))??;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_reload_commands_queue_a_reload() {
        let body = serde_json::to_vec(&Notification::signed("PolicyChanged", "", "ns")).unwrap();
        assert_eq!(
            judge_message(&body, "ns", false),
            Verdict::Reload("PolicyChanged".into())
        );
    }

    #[test]
    fn unsigned_messages_are_rejected_unless_insecure() {
        let body = br#"{"command":"PolicyChanged","payload":""}"#;
        assert_eq!(judge_message(body, "ns", false), Verdict::InvalidSignature);
        assert_eq!(
            judge_message(body, "ns", true),
            Verdict::Reload("PolicyChanged".into())
        );
        let wrong_secret = serde_json::to_vec(&Notification::signed("ApiAdded", "", "x")).unwrap();
        assert_eq!(
            judge_message(&wrong_secret, "ns", false),
            Verdict::InvalidSignature
        );
    }

    #[test]
    fn garbage_and_unknown_commands_do_not_reload() {
        assert!(matches!(
            judge_message(b"not json", "ns", true),
            Verdict::Malformed(_)
        ));
        assert!(matches!(
            judge_message(br#"["PolicyChanged"]"#, "ns", true),
            Verdict::Malformed(_)
        ));
        let drl = serde_json::to_vec(&Notification::signed(
            "NoticeGatewayDRLNotification",
            "{}",
            "ns",
        ))
        .unwrap();
        assert_eq!(
            judge_message(&drl, "ns", false),
            Verdict::Ignored("NoticeGatewayDRLNotification".into())
        );
    }
}
