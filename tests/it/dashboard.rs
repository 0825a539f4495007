//! The dashboard mock over real sockets with a real redis-server: notifications, startup errors,
//! publish failures and shutdown.

use std::time::Duration;

use futures::StreamExt;
use reload_repro::dashboard::{DashboardArgs, NotifyMode, build_state, serve};
use reload_repro::protocol::{
    AddedPolicy, MockStats, NOTIFICATION_CHANNEL, Notification, PolicyListReply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::TestRedis;

const SECRET: &str = "it-node-secret";

fn args(redis: &str, notify: NotifyMode) -> DashboardArgs {
    DashboardArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis: redis.to_owned().into(),
        node_secret: SECRET.into(),
        initial_policies: 100,
        org_id: "monarch".into(),
        notify,
        admin_token: None,
        max_fetch_log: 1000,
    }
}

/// A running mock: its base URL, a way to stop it, and the server task.
struct Mock {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_mock(args: &DashboardArgs) -> Mock {
    let state = build_state(args).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    Mock {
        base,
        stop: Some(stop),
        task,
    }
}

/// A parsed HTTP/1.1 response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection, read until the server closes it.
///
/// Raw HTTP rather than reqwest: in test builds a dev-dependency (jsonschema) turns on reqwest's
/// `rustls-no-provider`, and `reqwest::Client::new()` then panics for want of a crypto provider.
async fn request(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let addr = base.trim_start_matches("http://");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("content-length: 0\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("no complete reply within 10 s");
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn add_policy(base: &str) -> AddedPolicy {
    let reply = request(base, "POST", "/repro/policies", &[]).await;
    assert_eq!(reply.status, 200);
    serde_json::from_slice(&reply.body).unwrap()
}

async fn stats(base: &str) -> MockStats {
    serde_json::from_slice(&request(base, "GET", "/repro/stats", &[]).await.body).unwrap()
}

#[tokio::test]
async fn an_added_policy_is_announced_with_a_signed_policy_changed() {
    let redis = TestRedis::start();
    let mock = start_mock(&args(&redis.url, NotifyMode::Redis)).await;
    let mut pubsub = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe(NOTIFICATION_CHANNEL).await.unwrap();
    let mut messages = pubsub.on_message();

    let added = add_policy(&mock.base).await;
    assert_eq!(added.index, 101);

    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    let payload: String = message.get_payload().unwrap();
    let notification: Notification = serde_json::from_str(&payload).unwrap();
    assert_eq!(notification.command, "PolicyChanged");
    assert!(notification.signature_valid(SECRET));
    assert!(!payload.contains(SECRET));
    assert_eq!(stats(&mock.base).await.published, 1);
}

#[tokio::test]
async fn a_fetch_over_a_socket_carries_content_length_and_the_newest_policy() {
    let redis = TestRedis::start();
    let mock = start_mock(&args(&redis.url, NotifyMode::Redis)).await;
    let added = add_policy(&mock.base).await;
    let reply = request(
        &mock.base,
        "GET",
        "//system/policies",
        &[("authorization", SECRET)],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let length: usize = reply
        .header("content-length")
        .expect("Content-Length must be set")
        .parse()
        .unwrap();
    assert!(reply.header("transfer-encoding").is_none());
    let body = reply.body;
    assert_eq!(body.len(), length);
    let reply: PolicyListReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply.message.len(), 101);
    assert_eq!(reply.message.last().unwrap().id, added.id);
}

#[tokio::test]
async fn an_unreachable_redis_stops_startup_with_an_error_naming_the_url() {
    let port = crate::support::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let err = build_state(&args(&url, NotifyMode::Redis))
        .await
        .err()
        .unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("cannot reach Redis at {url}")),
        "{text}"
    );
    assert!(text.contains("--redis / REPRO_REDIS"), "{text}");
}

#[tokio::test]
async fn a_failed_publish_is_counted_and_the_add_still_succeeds() {
    let mut redis = TestRedis::start();
    let mock = start_mock(&args(&redis.url, NotifyMode::Redis)).await;
    redis.stop();
    let added = add_policy(&mock.base).await;
    assert_eq!(added.index, 101);
    let s = stats(&mock.base).await;
    assert_eq!((s.adds, s.published, s.publish_errors), (1, 0, 1));
}

#[tokio::test]
async fn the_server_stops_when_the_shutdown_future_resolves() {
    let mut mock = start_mock(&args("redis://unused", NotifyMode::None)).await;
    // A keep-alive connection stays open: shutdown must still finish within the drain deadline.
    let addr = mock.base.trim_start_matches("http://").to_owned();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    mock.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), &mut mock.task)
        .await
        .expect("serve did not return after shutdown");
    result.unwrap().unwrap();
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "still accepting connections after shutdown"
    );
    drop(idle);
}
