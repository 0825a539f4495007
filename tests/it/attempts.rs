//! Attempt outcomes by class, the censored time to usable and `report.txt`, on loopback: a real
//! redis-server, the dashboard mock, the stub gateway, and the runner.
//!
//! Timeouts come from a small delaying proxy in front of the stub: it holds chosen requests for
//! longer than the runner's `--request-timeout`, so the test knows exactly how many attempts
//! must be classified as timed out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reload_repro::summary::Verdict;

use super::support::stack::Stack;

/// How long the proxy holds a chosen request: far beyond the runner's 400 ms request timeout.
const HOLD: Duration = Duration::from_millis(1_500);

/// Every `TRIGGER_EVERY`-th reload call is held.
const TRIGGER_EVERY: u64 = 4;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    key_requests: Arc<Mutex<HashMap<String, u32>>>,
    held_keys: Arc<AtomicU64>,
    reload_calls: Arc<AtomicU64>,
    held_triggers: Arc<AtomicU64>,
}

impl Proxy {
    /// Holds the second key creation of every policy (the first retry) and every 4th reload.
    async fn should_hold(&self, method: &Method, path: &str, body: &[u8]) -> bool {
        if method == Method::POST && path == "/tyk/keys/create" {
            let policy = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["apply_policies"][0].as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut seen = self.key_requests.lock().unwrap();
            let n = seen.entry(policy).or_insert(0);
            *n += 1;
            if *n == 2 {
                self.held_keys.fetch_add(1, Ordering::SeqCst);
                return true;
            }
        }
        if path == "/tyk/reload" {
            let n = self.reload_calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n.is_multiple_of(TRIGGER_EVERY) {
                self.held_triggers.fetch_add(1, Ordering::SeqCst);
                return true;
            }
        }
        false
    }
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if proxy.should_hold(&method, &path, &body).await {
        tokio::time::sleep(HOLD).await;
        return (StatusCode::SERVICE_UNAVAILABLE, "held by the test proxy").into_response();
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut request = proxy
        .client
        .request(method, format!("{}{path}{query}", proxy.upstream))
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(r) => {
            let status = r.status();
            let bytes = r.bytes().await.unwrap_or_default();
            (status, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn start_proxy(upstream: &str) -> (String, Proxy) {
    let proxy = Proxy {
        upstream: upstream.to_owned(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("proxy client"),
        key_requests: Arc::default(),
        held_keys: Arc::default(),
        reload_calls: Arc::default(),
        held_triggers: Arc::default(),
    };
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_held_past_the_request_timeout_are_counted_as_timed_out_per_run_and_per_second() {
    let stack = Stack::start(
        &["--initial-policies", "1000"],
        &[
            "--reload-mode",
            "fixed",
            "--tick",
            "200ms",
            "--reload-cost-ms",
            "100",
        ],
    )
    .await;
    let (proxy_url, proxy) = start_proxy(&stack.gateway.url).await;
    let out = tempfile::tempdir().unwrap();
    let mut argv: Vec<String> = ["run", "--gateway", &proxy_url, "--dashboard"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(stack.dashboard.url.clone());
    for flag in [
        "--out",
        &out.path().display().to_string(),
        "--quiet",
        "--trigger",
        "reload",
        "--request-timeout",
        "400ms",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--backoff",
        "fine",
        "--deadline",
        "30s",
    ] {
        argv.push(flag.to_owned());
    }
    let (dir, summary) = super::support::stack::run_with(&argv)
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::Pass, "{}", summary.reason);

    let held_keys = proxy.held_keys.load(Ordering::SeqCst);
    let held_triggers = proxy.held_triggers.load(Ordering::SeqCst);
    let reload_calls = proxy.reload_calls.load(Ordering::SeqCst);
    assert!(
        held_keys > 0,
        "the fixed stub makes first attempts wait a reload"
    );
    let a = summary.attempts.as_ref().expect("attempt classes recorded");
    let k = &a.key_creations;
    assert_eq!(
        k.timed_out, held_keys,
        "every held key creation timed out: {k:?}"
    );
    assert_eq!(
        a.scenarios_with_timeout, held_keys,
        "one held attempt per scenario"
    );
    assert_eq!(k.ok, 100, "every scenario created its key once");
    assert!(k.not_yet > 0, "{k:?}");
    assert_eq!((k.refused_or_reset, k.other), (0, 0), "{k:?}");
    assert_eq!(a.triggers_counted_by, "runner");
    assert_eq!(a.triggers.timed_out, held_triggers, "{:?}", a.triggers);
    assert_eq!(
        a.triggers.ok + held_triggers,
        reload_calls,
        "{:?}",
        a.triggers
    );
    assert_eq!(a.triggers.total(), 100);
    assert_eq!(
        a.connect_timeout_ms, 400.0,
        "never longer than the request timeout"
    );

    // Per second: the series adds up to the totals, and the timeouts land after the load began.
    let per_second: u64 = a.timeline.iter().map(|s| s.key_creations.timed_out).sum();
    assert_eq!(per_second, k.timed_out);
    let triggers: u64 = a.timeline.iter().map(|s| s.triggers.timed_out).sum();
    assert_eq!(triggers, held_triggers);
    assert_eq!(
        a.timeline.len(),
        summary.timeline.len(),
        "aligned with the timeline"
    );
    assert!(a.timeline.iter().any(|s| s.key_creations.timed_out > 0));

    // The figures say so, in summary.md and next to the verdict in the terminal table.
    let md = std::fs::read_to_string(dir.path.join("summary.md")).unwrap();
    let note = format!("{held_keys} key-creation attempts timed out");
    assert!(md.contains(&note), "{md}");
    assert!(md.contains("### Attempts by outcome"), "{md}");
    assert!(
        md.contains(&format!("{held_triggers} of 100 trigger calls failed")),
        "{md}"
    );
    let table = reload_repro::summary::render::render_table(&summary);
    assert!(table.contains(&note), "{table}");

    // A pass: everything usable, and the censored p90 is reached.
    let t = summary
        .time_to_usable
        .as_ref()
        .expect("time to usable recorded");
    assert_eq!((t.scenarios, t.usable, t.censored), (100, 100, 0));
    assert!(t.p90.reached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_run_reports_its_highest_successes_and_a_censored_time_to_usable() {
    // v2.9.4 scheduling with a 2.5 s reload outlasting the 2 s burst hangs for certain.
    let stack = Stack::start(
        &["--initial-policies", "1000"],
        &[
            "--reload-mode",
            "v2.9.4",
            "--tick",
            "200ms",
            "--reload-cost-ms",
            "2500",
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let (dir, summary) = stack
        .run(
            out.path(),
            &[
                "--rate",
                "100",
                "--duration",
                "2s",
                "--backoff",
                "fine",
                "--stall-timeout",
                "3s",
                "--deadline",
                "20s",
            ],
        )
        .await
        .expect("run completes");
    assert_eq!(summary.verdict, Verdict::Hang, "{}", summary.reason);
    let n = &summary.scenarios;
    assert!(n.succeeded > 0 && n.outstanding > 0, "{n:?}");

    let report = std::fs::read_to_string(dir.path.join("report.txt")).unwrap();
    let successes: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("SUCCESS "))
        .collect();
    assert_eq!(successes.len() as u64, n.succeeded.min(10), "{report}");
    let first = successes[0];
    assert!(
        first.contains(" ==>") && first.ends_with('s'),
        "seed shape `SUCCESS <index> ==><duration>`: {first}"
    );
    let outstanding = report
        .lines()
        .filter(|l| l.starts_with("OUTSTANDING "))
        .count() as u64;
    assert_eq!(outstanding, n.outstanding.min(1_000), "{report}");

    let t = summary
        .time_to_usable
        .as_ref()
        .expect("time to usable recorded");
    assert_eq!(t.censored, n.scheduled - n.succeeded);
    if n.outstanding * 10 > n.scheduled {
        assert!(
            !t.p90.reached,
            "more than 10 % lost: the p90 is only a bound"
        );
    }
    // The earliest lost scenario waited about the stall timeout (3 s) or more.
    assert!(t.longest_wait_ms.unwrap() >= 2_500.0, "{t:?}");
    let md = std::fs::read_to_string(dir.path.join("summary.md")).unwrap();
    assert!(
        md.contains("### Time to usable, all scheduled scenarios"),
        "{md}"
    );
}
