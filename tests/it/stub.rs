//! The stub gateway end to end: a real redis-server, a tiny in-test dashboard, real HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use reload_repro::protocol::{NOTIFICATION_CHANNEL, Notification};
use reload_repro::stub::{ReloadMode, ReloadWork, StubArgs, StubStats, serve};
use tokio::sync::oneshot;

use crate::support::{TestRedis, free_port};

const SECRET: &str = "test-gateway-secret";
const NODE_SECRET: &str = "test-node-secret";

/// What the dashboard stand-in saw on one `/system/policies` request.
#[derive(Debug, Clone)]
struct SeenFetch {
    authorization: String,
    node_id: String,
    nonce: String,
}

#[derive(Default)]
struct DashboardState {
    policies: Mutex<Vec<String>>,
    fetches: Mutex<Vec<SeenFetch>>,
}

/// A dashboard stand-in serving a fixed (growable) policy list, nonce `nonce-<n>`.
struct Dashboard {
    url: String,
    state: Arc<DashboardState>,
}

impl Dashboard {
    async fn start(initial: &[&str]) -> Dashboard {
        let state = Arc::new(DashboardState::default());
        state
            .policies
            .lock()
            .unwrap()
            .extend(initial.iter().map(|s| s.to_string()));
        let app = axum::Router::new()
            .route("/system/policies", get(policies))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Dashboard { url, state }
    }

    fn add(&self, id: &str) {
        self.state.policies.lock().unwrap().push(id.to_owned());
    }

    fn fetches(&self) -> Vec<SeenFetch> {
        self.state.fetches.lock().unwrap().clone()
    }
}

async fn policies(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
) -> axum::Json<serde_json::Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let n = {
        let mut fetches = state.fetches.lock().unwrap();
        fetches.push(SeenFetch {
            authorization: header("authorization"),
            node_id: header("x-tyk-nodeid"),
            nonce: header("x-tyk-nonce"),
        });
        fetches.len()
    };
    let list: Vec<_> = state
        .policies
        .lock()
        .unwrap()
        .iter()
        .map(|id| serde_json::json!({"id": id, "name": id, "org_id": "monarch"}))
        .collect();
    axum::Json(serde_json::json!({"Status": "OK", "Message": list, "Nonce": format!("nonce-{n}")}))
}

fn args(dashboard: &str, redis: &str, mode: ReloadMode) -> StubArgs {
    StubArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        dashboard: dashboard.to_owned(),
        redis: redis.to_owned().into(),
        secret: SECRET.into(),
        node_secret: NODE_SECRET.into(),
        allow_insecure: false,
        reload_mode: mode,
        tick: Duration::from_millis(50),
        reload_cost_ms: 0,
        per_policy_cost_us: 0,
        swap_share: 1.0,
        reload_work: ReloadWork::Sleep,
        no_policy_log: false,
        stall_after_reloads: None,
        resubscribe_delay: Duration::from_millis(100),
        subscribe_delay: Duration::ZERO,
        accept_unknown_policies: false,
    }
}

/// A running stub; stopped (and checked to stop cleanly) by `stop`.
struct Stub {
    base: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Stub {
    async fn start(args: StubArgs) -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, args, async move {
            let _ = stopped.await;
        }));
        let stub = Stub {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop,
            task,
        };
        stub.wait_for("subscribed to Redis", |s| s.subscribed).await;
        stub
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-tyk-authorization", SECRET)
            .send()
            .await
            .unwrap()
    }

    async fn stats(&self) -> StubStats {
        self.get("/repro/stub/stats").await.json().await.unwrap()
    }

    async fn create_key(&self, policy: &str) -> u16 {
        self.http
            .post(format!("{}/tyk/keys/create", self.base))
            .header("x-tyk-authorization", SECRET)
            .json(&serde_json::json!({"apply_policies": [policy]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&StubStats) -> bool) -> StubStats {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = self
                .http
                .get(format!("{}/repro/stub/stats", self.base))
                .header("x-tyk-authorization", SECRET)
                .send()
                .await
                && let Ok(stats) = reply.json::<StubStats>().await
                && done(&stats)
            {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stub never {what} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stub stops within 10 s")
            .unwrap();
        result.expect("stub stops without error");
    }
}

async fn publish(redis: &TestRedis, body: &str) {
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(NOTIFICATION_CHANNEL)
        .arg(body)
        .query_async(&mut conn)
        .await
        .unwrap();
}

fn signed(command: &str, secret: &str) -> String {
    serde_json::to_string(&Notification::signed(command, "", secret)).unwrap()
}

/// Enough ticks (50 ms each) for any queued reload to have started and ended.
async fn let_ticks_pass() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_signed_policy_changed_makes_a_new_policy_usable() {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let stub = Stub::start(args(&dashboard.url, &redis.url, ReloadMode::Fixed)).await;
    assert_eq!(stub.create_key("p1").await, 200, "loaded at startup");
    assert_eq!(stub.create_key("p2").await, 500, "not served yet");

    dashboard.add("p2");
    publish(&redis, &signed("PolicyChanged", NODE_SECRET)).await;
    stub.wait_for("reloaded", |s| s.reloads == 1 && s.policies_loaded == 2)
        .await;
    assert_eq!(stub.create_key("p2").await, 200);
    stub.stop().await;
}

#[tokio::test]
async fn unsigned_and_garbage_notifications_are_ignored() {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let stub = Stub::start(args(&dashboard.url, &redis.url, ReloadMode::Fixed)).await;
    dashboard.add("p2");

    publish(&redis, "not json at all").await;
    publish(&redis, r#"{"command":"PolicyChanged","payload":""}"#).await;
    publish(&redis, &signed("PolicyChanged", "someone-elses-secret")).await;
    publish(&redis, &signed("NoticeGatewayDRLNotification", NODE_SECRET)).await;
    let stats = stub
        .wait_for("saw 4 notifications", |s| s.notifications == 4)
        .await;
    assert_eq!(stats.malformed_notifications, 1);
    assert_eq!(stats.invalid_signatures, 2);
    assert_eq!(stats.ignored_notifications, 1);
    let_ticks_pass().await;
    let stats = stub.stats().await;
    assert_eq!((stats.triggers, stats.reloads), (0, 0));
    assert_eq!(stub.create_key("p2").await, 500);

    // Still subscribed and working after all that.
    publish(&redis, &signed("ApiUpdated", NODE_SECRET)).await;
    // The policy count, not the reload count: on a busy machine the count can be seen before
    // the new policies are swapped in.
    stub.wait_for("reloaded", |s| s.reloads == 1 && s.policies_loaded == 2)
        .await;
    assert_eq!(stub.create_key("p2").await, 200);
    stub.stop().await;
}

#[tokio::test]
async fn policy_fetches_carry_node_secret_node_id_and_echo_the_nonce() {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let stub = Stub::start(args(&dashboard.url, &redis.url, ReloadMode::Fixed)).await;
    let reply = stub.get("/tyk/reload?block=true").await;
    assert_eq!(reply.status(), 200);

    let fetches = dashboard.fetches();
    assert_eq!(fetches.len(), 2, "startup load + one reload: {fetches:?}");
    let node_id = fetches[0].node_id.clone();
    let uuid = node_id.strip_prefix("solo-").expect("solo-<uuid4>");
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{node_id}");
    for fetch in &fetches {
        assert_eq!(fetch.authorization, NODE_SECRET);
        assert_eq!(fetch.node_id, node_id, "fixed per process");
    }
    assert_eq!(fetches[0].nonce, "", "empty on the first call");
    assert_eq!(fetches[1].nonce, "nonce-1", "echoes the last reply's Nonce");
    stub.stop().await;
}

#[tokio::test]
async fn group_reload_goes_through_redis_and_reloads() {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let stub = Stub::start(args(&dashboard.url, &redis.url, ReloadMode::Fixed)).await;
    dashboard.add("p2");
    let reply = stub.get("/tyk/reload/group").await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.text().await.unwrap(),
        "{\"status\":\"ok\",\"message\":\"\"}\n"
    );
    let stats = stub
        .wait_for("reloaded", |s| s.reloads == 1 && s.policies_loaded == 2)
        .await;
    assert_eq!(
        stats.invalid_signatures, 0,
        "the stub signs what it publishes"
    );
    stub.stop().await;
}

#[tokio::test]
async fn stall_after_one_reload_stops_reloading_for_good() {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let mut stub_args = args(&dashboard.url, &redis.url, ReloadMode::Fixed);
    stub_args.stall_after_reloads = Some(1);
    let stub = Stub::start(stub_args).await;
    assert_eq!(stub.get("/tyk/reload?block=true").await.status(), 200);

    dashboard.add("p2");
    assert_eq!(
        stub.get("/tyk/reload").await.status(),
        200,
        "still accepted"
    );
    publish(&redis, &signed("PolicyChanged", NODE_SECRET)).await;
    stub.wait_for("counted 3 triggers", |s| s.triggers == 3)
        .await;
    let_ticks_pass().await;
    let stats = stub.stats().await;
    assert!(stats.stalled);
    assert_eq!(stats.reloads, 1);
    assert_eq!(dashboard.fetches().len(), 2, "no fetch after the stall");
    assert_eq!(stub.create_key("p2").await, 500);
    stub.stop().await;
}

/// The scenario the kit exists for: a change whose trigger lands while a reload runs.
async fn change_during_a_reload(mode: ReloadMode) -> (Stub, Dashboard, TestRedis) {
    let redis = TestRedis::start();
    let dashboard = Dashboard::start(&["p1"]).await;
    let mut stub_args = args(&dashboard.url, &redis.url, mode);
    stub_args.reload_cost_ms = 400;
    let stub = Stub::start(stub_args).await;
    assert_eq!(stub.get("/tyk/reload").await.status(), 200);
    // The reload has fetched once the dashboard sees a second request; its cost runs now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dashboard.fetches().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload never fetched"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    dashboard.add("p2");
    publish(&redis, &signed("PolicyChanged", NODE_SECRET)).await;
    stub.wait_for("counted 2 triggers", |s| s.triggers == 2)
        .await;
    (stub, dashboard, redis)
}

#[tokio::test]
async fn v294_scheduling_loses_a_change_made_during_a_reload() {
    let (stub, _dashboard, _redis) = change_during_a_reload(ReloadMode::V294).await;
    // Time for the running reload to end and for a follow-up, were there one, to run its course.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = stub.stats().await;
    assert_eq!(stats.reloads, 1, "no follow-up reload");
    assert_eq!(stats.lost_trigger_candidates, 1);
    assert_eq!(stub.create_key("p2").await, 500, "p2 is never loaded");
    stub.stop().await;
}

#[tokio::test]
async fn fixed_scheduling_picks_up_a_change_made_during_a_reload() {
    let (stub, _dashboard, _redis) = change_during_a_reload(ReloadMode::Fixed).await;
    let stats = stub
        .wait_for("ran the follow-up", |s| s.policies_loaded == 2)
        .await;
    assert_eq!(stats.reloads, 2, "a follow-up reload on the next tick");
    assert_eq!(stats.lost_trigger_candidates, 0);
    assert_eq!(stub.create_key("p2").await, 200);
    stub.stop().await;
}

#[tokio::test]
async fn a_dashboard_that_is_down_at_startup_leaves_the_stub_empty_but_running() {
    let redis = TestRedis::start();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let stub = Stub::start(args(&closed, &redis.url, ReloadMode::V294)).await;
    let stats = stub.stats().await;
    assert_eq!(stats.policies_loaded, 0);
    assert_eq!(stats.fetch_failures, 1);
    assert_eq!(stats.version, "stub/v2.9.4-scheduling");
    let hello: serde_json::Value = stub.get("/hello").await.json().await.unwrap();
    assert_eq!(hello["version"], "stub/v2.9.4-scheduling");
    stub.stop().await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_startup_naming_the_url() {
    let dashboard = Dashboard::start(&["p1"]).await;
    let redis_url = format!("redis://127.0.0.1:{}", free_port());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        serve(
            listener,
            args(&dashboard.url, &redis_url, ReloadMode::Fixed),
            std::future::pending(),
        ),
    )
    .await
    .expect("fails fast");
    let message = format!("{:#}", result.unwrap_err());
    assert!(message.contains(&redis_url), "{message}");
    assert!(message.contains("--redis"), "{message}");
}
