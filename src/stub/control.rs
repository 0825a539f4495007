//! The control API (protocol §4, §6, §7) on the listen address, routed by hand so the
//! gateway's order holds exactly: unknown path 404 (plain text) → auth 403 → method 405.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use super::state::StubState;
use crate::protocol::{
    ControlReply, HEADER_GATEWAY_AUTH, KeyCreateRequest, MSG_ADMIN_FORBIDDEN,
    MSG_METHOD_NOT_SUPPORTED, MSG_UNMARSHALLING_FAILED, Notification, policy_not_found_message,
};

/// Longest a `?block=true` reload call waits (a stalled stub would otherwise hold it forever).
pub const BLOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// Org of the one API the stub pretends to serve (the seed's org).
const API_ORG: &str = "monarch";

/// The routes the stub answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Hello,
    Reload,
    GroupReload,
    KeyCreate,
    Apis,
    Stats,
}

impl Route {
    fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/hello" => Route::Hello,
            "/tyk/reload" => Route::Reload,
            "/tyk/reload/group" => Route::GroupReload,
            "/tyk/keys/create" => Route::KeyCreate,
            "/tyk/apis" => Route::Apis,
            "/repro/stub/stats" => Route::Stats,
            _ => return None,
        })
    }

    fn needs_secret(self) -> bool {
        self != Route::Hello
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Hello => true,
            Route::KeyCreate => method == Method::POST,
            _ => method == Method::GET,
        }
    }
}

/// Deliberate misbehaviour for testing the runner's checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControlOptions {
    /// Answer 200 to key creation for policies the stub never loaded, as a gateway with no API
    /// for the policies' org does (protocol §6): the runner's canary must catch it.
    pub accept_unknown_policies: bool,
}

/// The control API as a router (test it with `oneshot`, serve it with `axum::serve`).
pub fn app(state: Arc<StubState>) -> Router {
    app_with(state, ControlOptions::default())
}

/// [`app`] with misbehaviour switched on.
pub fn app_with(state: Arc<StubState>, options: ControlOptions) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(Extension(options))
        .with_state(state)
}

async fn dispatch(
    State(state): State<Arc<StubState>>,
    Extension(options): Extension<ControlOptions>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The gateway strips trailing slashes before routing.
    let path = uri.path().trim_end_matches('/');
    let Some(route) = Route::from_path(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
            .into_response();
    };
    if route.needs_secret() && !authorized(&headers, state.config.secret.expose()) {
        return error_reply(StatusCode::FORBIDDEN, MSG_ADMIN_FORBIDDEN);
    }
    if !route.allows(&method) {
        return error_reply(StatusCode::METHOD_NOT_ALLOWED, MSG_METHOD_NOT_SUPPORTED);
    }
    match route {
        Route::Hello => hello(&state),
        Route::Reload => reload(&state, wants_block(uri.query())).await,
        Route::GroupReload => group_reload(&state).await,
        Route::KeyCreate => create_key(&state, &body, options),
        Route::Apis => apis(),
        Route::Stats => json_reply(StatusCode::OK, &state.stats()),
    }
}

fn authorized(headers: &HeaderMap, secret: &str) -> bool {
    headers
        .get(HEADER_GATEWAY_AUTH)
        .is_some_and(|v| v.as_bytes() == secret.as_bytes())
}

/// Go's `r.URL.Query().Get("block") == "true"`: the first `block` value counts.
fn wants_block(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("block="))
        .is_some_and(|v| v == "true")
}

fn hello(state: &StubState) -> Response {
    let version = super::version_string(state.config.mode);
    json_reply(
        StatusCode::OK,
        &json!({"status": "pass", "version": version}),
    )
}

async fn reload(state: &StubState, block: bool) -> Response {
    if !block {
        state.trigger_reload(None);
        return ok_reply();
    }
    let (tx, rx) = oneshot::channel();
    state.trigger_reload(Some(tx));
    tokio::select! {
        served = rx => match served {
            Ok(()) => ok_reply(),
            Err(_) => error_reply(StatusCode::SERVICE_UNAVAILABLE, "Stub gateway is shutting down"),
        },
        _ = state.shutdown.cancelled() => {
            error_reply(StatusCode::SERVICE_UNAVAILABLE, "Stub gateway is shutting down")
        }
        _ = tokio::time::sleep(BLOCK_TIMEOUT) => error_reply(
            StatusCode::GATEWAY_TIMEOUT,
            "No reload completed in time (is --stall-after-reloads set?)",
        ),
    }
}

async fn group_reload(state: &StubState) -> Response {
    let notification = Notification::signed("GroupReload", "", state.config.node_secret.expose());
    match state.publisher.publish(&notification).await {
        Ok(_) => ok_reply(),
        Err(err) => {
            tracing::error!("Group reload not sent: {err:#}");
            error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to send group reload",
            )
        }
    }
}

fn create_key(state: &StubState, body: &[u8], options: ControlOptions) -> Response {
    let Ok(request) = serde_json::from_slice::<KeyCreateRequest>(body) else {
        return error_reply(StatusCode::INTERNAL_SERVER_ERROR, MSG_UNMARSHALLING_FAILED);
    };
    if let Some(missing) = request
        .apply_policies
        .iter()
        .find(|id| !options.accept_unknown_policies && !state.knows_policy(id))
    {
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &policy_not_found_message(missing),
        );
    }
    let key = hex::encode(rand::random::<[u8; 16]>());
    json_reply(
        StatusCode::OK,
        &json!({"key": key, "status": "ok", "action": "added"}),
    )
}

fn apis() -> Response {
    json_reply(
        StatusCode::OK,
        &json!([{
            "api_id": "stub-api",
            "name": "stub API",
            "org_id": API_ORG,
            "active": true,
            "proxy": {"listen_path": "/httpbin/"},
        }]),
    )
}

fn ok_reply() -> Response {
    json_reply(
        StatusCode::OK,
        &ControlReply {
            status: "ok".into(),
            message: String::new(),
        },
    )
}

fn error_reply(status: StatusCode, message: &str) -> Response {
    json_reply(
        status,
        &ControlReply {
            status: "error".into(),
            message: message.into(),
        },
    )
}

/// JSON with the trailing newline Go's encoder writes.
fn json_reply(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
