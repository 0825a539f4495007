//! Redis started through testcontainers under the in-process dashboard mock, and the Docker API
//! version relay testcontainers needs on older daemons.
//!
//! testcontainers 0.28 (bollard 0.21) puts API version 1.53 in every request path, and a daemon
//! refuses any client newer than itself ("client version 1.53 is too new. Maximum supported API
//! version is 1.41" from Debian's dockerd 20.10, the one offline CI installs). When the daemon is
//! older, a relay on a private Unix socket rewrites the version in each request line to the
//! daemon's and passes every other byte through; `DOCKER_HOST` points testcontainers at it. A
//! daemon that speaks 1.53 is used directly.
//!
//! The container gets its own network and publishes no port: the test reaches it at its address
//! on that network, so no traffic goes anywhere but the test's own container.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use reload_repro::dashboard::{DashboardArgs, NotifyMode, build_state, serve};
use reload_repro::protocol::{NOTIFICATION_CHANNEL, Notification};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const NODE_SECRET: &str = "it-compose-node-secret";
/// Bound on every step: image start, subscription, publish, reply.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The daemon's Unix socket, from `DOCKER_HOST` or the default path; None for a TCP daemon.
fn daemon_socket() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) => host.strip_prefix("unix://").map(PathBuf::from),
        Err(_) => Some(PathBuf::from("/var/run/docker.sock")),
    }
}

/// The daemon's newest API version (`ApiVersion` of `GET /version`), e.g. `(1, 41)`.
fn daemon_api_version(socket: &PathBuf) -> (usize, usize) {
    let mut stream = StdUnixStream::connect(socket).expect("the Docker socket accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("GET /version");
    let body = reply.split_once("\r\n\r\n").expect("an HTTP reply").1;
    let json: serde_json::Value = serde_json::from_str(body).expect("version JSON");
    let version = json["ApiVersion"].as_str().expect("ApiVersion");
    let (major, minor) = version.split_once('.').expect("major.minor");
    (major.parse().unwrap(), minor.parse().unwrap())
}

/// The relay's socket file, removed when the test is done with it.
pub struct RelaySocket(PathBuf);

impl Drop for RelaySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Points testcontainers at the daemon, through the version relay when the daemon is older than
/// the API version testcontainers speaks. Call before any other thread exists; keep the result
/// until the containers are gone.
pub fn route_testcontainers_to_the_daemon() -> Option<RelaySocket> {
    let socket = daemon_socket()?;
    let ours = bollard::API_DEFAULT_VERSION;
    let (major, minor) = daemon_api_version(&socket);
    if (major, minor) >= (ours.major_version, ours.minor_version) {
        return None;
    }
    let from = format!(" /v{ours}/").into_bytes();
    let to = format!(" /v{major}.{minor}/").into_bytes();
    let relay = std::env::temp_dir().join(format!(
        "reload-repro-docker-relay-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&relay);
    let listener =
        std::os::unix::net::UnixListener::bind(&relay).expect("binding the relay socket");
    listener.set_nonblocking(true).unwrap();
    // Its own thread and runtime: the relay must outlive the test's runtime, because dropping a
    // container (testcontainers removes it in Drop) still needs the daemon.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("relay runtime");
        runtime.block_on(serve_relay(listener, socket, from, to));
    });
    // SAFETY: called at the start of the test, before its runtime starts; nextest runs each
    // test in its own process, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{}", relay.display())) };
    Some(RelaySocket(relay))
}

async fn serve_relay(
    listener: std::os::unix::net::UnixListener,
    daemon: PathBuf,
    from: Vec<u8>,
    to: Vec<u8>,
) {
    let listener = UnixListener::from_std(listener).expect("relay listener");
    while let Ok((client, _)) = listener.accept().await {
        let (daemon, from, to) = (daemon.clone(), from.clone(), to.clone());
        tokio::spawn(async move {
            let Ok(upstream) = UnixStream::connect(&daemon).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut daemon_read, mut daemon_write) = upstream.into_split();
            let requests = async {
                let _ = copy_rewriting(&mut client_read, &mut daemon_write, &from, &to).await;
                let _ = daemon_write.shutdown().await;
            };
            let replies = async {
                let _ = tokio::io::copy(&mut daemon_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(requests, replies);
        });
    }
}

/// Copies `reader` to `writer`, replacing `from` by `to`. Only a tail that could begin a match
/// is held back, so a complete request is never left waiting in the relay.
async fn copy_rewriting(
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
    from: &[u8],
    to: &[u8],
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.write_all(&pending).await;
        }
        pending.extend_from_slice(&buf[..n]);
        let rewritten = replace_all(&pending, from, to);
        let hold = (1..from.len())
            .rev()
            .find(|&k| rewritten.ends_with(&from[..k]))
            .unwrap_or(0);
        let (ready, tail) = rewritten.split_at(rewritten.len() - hold);
        writer.write_all(ready).await?;
        pending = tail.to_vec();
    }
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// `POST /repro/policies` on the mock over a fresh connection; the reply's status code.
async fn add_policy(base: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /repro/policies HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(STEP_TIMEOUT, exchange)
        .await
        .expect("the mock answers the add");
    let text = String::from_utf8_lossy(&raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The Redis image as the compose file names it (`REDIS_IMAGE` overrides), split for testcontainers.
fn redis_image() -> GenericImage {
    let image = std::env::var("REDIS_IMAGE").unwrap_or_else(|_| "redis:7.0.15-bookworm".into());
    let (name, tag) = image.rsplit_once(':').expect("REDIS_IMAGE is name:tag");
    GenericImage::new(name, tag)
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
}

/// The test body: Redis in a container, the mock in process, a signed PolicyChanged on the wire.
pub async fn mock_announces_policy_changes_on_containerised_redis() {
    let network = format!(
        "reload-repro-it-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let redis = redis_image()
        .with_network(network)
        .with_startup_timeout(STEP_TIMEOUT)
        .start()
        .await
        .expect("Redis starts through testcontainers (is the image tagged locally? make images-offline)");
    let ip = redis
        .get_bridge_ip_address()
        .await
        .expect("Redis has an address");
    let url = format!("redis://{ip}:6379");

    let args = DashboardArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis: url.clone().into(),
        node_secret: NODE_SECRET.into(),
        initial_policies: 10,
        org_id: "monarch".into(),
        notify: NotifyMode::Redis,
        admin_token: None,
        max_fetch_log: 100,
    };
    let state = build_state(&args)
        .await
        .expect("the mock reaches Redis in the container");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));

    let mut pubsub = tokio::time::timeout(STEP_TIMEOUT, async {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(NOTIFICATION_CHANNEL).await.unwrap();
        pubsub
    })
    .await
    .expect("subscribed in time");
    let mut messages = pubsub.on_message();
    assert_eq!(add_policy(&base).await, 200);

    let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("a notification within 10 s")
        .expect("the subscription stays open");
    let payload: String = message.get_payload().unwrap();
    let notification: Notification = serde_json::from_str(&payload).unwrap();
    assert_eq!(notification.command, "PolicyChanged");
    assert!(notification.signature_valid(NODE_SECRET), "{payload}");
    assert!(
        !payload.contains(NODE_SECRET),
        "the secret never goes on the wire"
    );

    drop(messages);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    redis.rm().await.expect("the container is removed");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_relay_rewrites_a_version_split_across_reads_and_holds_nothing_else_back() {
        let (mut client, mut relay_in) = tokio::io::duplex(64);
        let (mut relay_out, mut daemon) = tokio::io::duplex(4096);
        let copy = tokio::spawn(async move {
            super::copy_rewriting(&mut relay_in, &mut relay_out, b" /v1.53/", b" /v1.41/").await
        });
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        client.write_all(b"GET /v1.5").await.unwrap();
        client.write_all(b"3/info HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = vec![0u8; 28];
        daemon.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET /v1.41/info HTTP/1.1\r\n\r\n");
        drop(client);
        copy.await.unwrap().unwrap();
    }
}
