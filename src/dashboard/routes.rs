//! HTTP handlers: the gateway's `/system/policies`, the runner's `/repro/*`, the seed's routes.

use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use crate::protocol::{
    FetchRecord, HEADER_ADMIN_TOKEN, HEADER_AUTHORIZATION, HEADER_NODE_ID, HEADER_NONCE,
};

use super::pool::reply_chunks;
use super::state::{DashboardState, count};

/// Largest request body accepted; every route ignores bodies, so anything big is a mistake.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The real dashboard's 403 body, field order included (serde_json would sort the keys).
const AUTH_FAILED_BODY: &str = r#"{"Status":"Error","Message":"Authorization failed","Nonce":""}"#;

/// Longest `x-tyk-nodeid` kept in the fetch log, so a hostile header cannot bloat the log.
const MAX_NODE_ID_CHARS: usize = 128;

/// The mock's routes. `/repro/*` requires `x-repro-token` when an admin token is configured.
pub fn app(state: DashboardState) -> Router {
    let admin = Router::new()
        .route("/repro/policies", post(add_policy))
        .route("/repro/fetches", get(list_fetches))
        .route("/repro/stats", get(show_stats))
        .route("/repro/reset", post(reset_pool))
        .route("/repro/start", super::start::route())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ));
    Router::new()
        .route("/system/policies", get(fetch_policies))
        // A trailing `/` in the gateway's connection string yields `//system/policies` (§2).
        .route("//system/policies", get(fetch_policies))
        .route("/create", get(create_seed_policy))
        .route("/origin", get(show_origin))
        .route("/health", get(show_health))
        .merge(admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn fetch_policies(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let shared = &state.shared;
    let received_at_ms = unix_ms();
    let node_id: String = header_text(&headers, HEADER_NODE_ID)
        .chars()
        .take(MAX_NODE_ID_CHARS)
        .collect();
    let echoed = header_text(&headers, HEADER_NONCE);
    let nonce_ok = shared.nonces.is_known(&echoed);
    if !nonce_ok {
        count(&shared.counters.nonce_mismatches);
        tracing::warn!(%node_id, nonce = %echoed, "policy fetch echoed a nonce this mock did not issue recently; served anyway");
    }
    let authorized = headers
        .get(HEADER_AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == shared.node_secret.as_bytes());
    if !authorized {
        count(&shared.counters.rejected_fetches);
        tracing::warn!(%node_id, "policy fetch refused: authorization header is not the node secret");
        shared.fetch_log.record(FetchRecord {
            received_at_ms,
            served: 0,
            bytes: 0,
            duration_us: micros(started),
            node_id,
            nonce_ok,
            authorized,
        });
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            AUTH_FAILED_BODY,
        )
            .into_response();
    }
    let snapshot = shared.pool.snapshot();
    let nonce = shared.nonces.issue();
    let (chunks, len) = reply_chunks(&snapshot, &nonce);
    let mut response = Response::new(yielding_body(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A streamed body has no known size; hyper honours an explicit Content-Length instead.
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    count(&shared.counters.fetches);
    shared.fetch_log.record(FetchRecord {
        received_at_ms,
        served: snapshot.count,
        bytes: len,
        duration_us: micros(started),
        node_id,
        nonce_ok,
        authorized,
    });
    response
}

/// The reply as a stream that gives its worker back to the runtime before each chunk.
///
/// Why: hyper writes a ready body until the socket refuses more, and on loopback the gateway
/// drains it as fast, so one fetch held a worker for its whole 10 MB. With N gateways fetching at
/// once both workers were taken back to back, and an add (whose task also waits for Redis's reply)
/// queued behind them: add p50 68–93 ms at N = 10. Yielding between the frozen segments (~530 KB,
/// ~20 per fetch) brought it to ~5.5 ms at the same MB/s; smaller slices cut the add further but
/// cost throughput (docs/performance.md, "Dashboard mock under fan-out").
fn yielding_body(chunks: Vec<Bytes>) -> Body {
    let stream = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::task::yield_now().await;
        Ok::<_, Infallible>(chunk)
    });
    Body::from_stream(stream)
}

/// `POST /repro/reset`: a fresh pool of the initial size (the runner's `--runs N` calls it).
async fn reset_pool(State(state): State<DashboardState>, _body: Bytes) -> Response {
    let served = tokio::task::spawn_blocking(move || state.reset_pool()).await;
    match served {
        Ok(served) => Json(serde_json::json!({ "served": served })).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reset failed: {e}"),
        )
            .into_response(),
    }
}

/// `POST /repro/policies`: the body is read (to enforce the size limit) and ignored.
async fn add_policy(State(state): State<DashboardState>, _body: Bytes) -> Response {
    Json(state.add_policy().await).into_response()
}

/// The seed's `GET /create`: text `<id>|<index>`.
async fn create_seed_policy(State(state): State<DashboardState>) -> Response {
    let added = state.add_policy().await;
    format!("{}|{}", added.id, added.index).into_response()
}

/// The seed's `GET /origin`: the first policy id as text.
async fn show_origin(State(state): State<DashboardState>) -> Response {
    match state.shared.pool.first_id() {
        Some(id) => id.into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no policies yet (start with --initial-policies > 0 or add one)",
        )
            .into_response(),
    }
}

async fn show_health(State(state): State<DashboardState>) -> Response {
    Json(json!({"status": "ok", "policies": state.shared.pool.len()})).into_response()
}

#[derive(Debug, Deserialize)]
struct FetchQuery {
    since_ms: Option<u64>,
}

async fn list_fetches(
    State(state): State<DashboardState>,
    Query(query): Query<FetchQuery>,
) -> Response {
    Json(state.shared.fetch_log.since(query.since_ms)).into_response()
}

async fn show_stats(State(state): State<DashboardState>) -> Response {
    Json(state.stats()).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

async fn require_admin_token(
    State(state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = &state.shared.admin_token {
        let given = request.headers().get(HEADER_ADMIN_TOKEN);
        if given.is_none_or(|v| v.as_bytes() != expected.as_bytes()) {
            let message = format!(
                "missing or wrong {HEADER_ADMIN_TOKEN} header: send the value of --admin-token / REPRO_ADMIN_TOKEN"
            );
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"status": "error", "message": message})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

#[cfg(test)]
mod body_tests {
    use std::task::Poll;

    use axum::body::HttpBody as _;

    use super::*;

    /// Polls the body once, as hyper's connection task would.
    fn poll_once(body: &mut Body) -> Poll<Option<Bytes>> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        std::pin::Pin::new(body)
            .poll_frame(&mut cx)
            .map(|frame| frame.map(|f| f.unwrap().into_data().unwrap()))
    }

    #[tokio::test]
    async fn the_policy_body_gives_the_worker_back_before_each_chunk() {
        let chunks = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        let mut body = yielding_body(chunks);
        for expected in [&b"ab"[..], &b"cd"[..]] {
            assert!(
                poll_once(&mut body).is_pending(),
                "yields before {expected:?}"
            );
            assert_eq!(
                poll_once(&mut body),
                Poll::Ready(Some(Bytes::from(expected)))
            );
        }
        assert_eq!(poll_once(&mut body), Poll::Ready(None));
        // The whole body, as a client reads it, is the chunks in order.
        let all = axum::body::to_bytes(
            yielding_body(vec![Bytes::from_static(b"x"), Bytes::from_static(b"yz")]),
            64,
        )
        .await
        .unwrap();
        assert_eq!(all, "xyz");
    }
}
