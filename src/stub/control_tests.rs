//! Router tests for the control API, driven with `oneshot` (no socket, no Redis).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::app;
use crate::stub::publisher::Publisher;
use crate::stub::{ReloadMode, StubConfig, StubState};

const SECRET: &str = "gateway-secret";

fn state(mode: ReloadMode) -> Arc<StubState> {
    let config = StubConfig {
        mode,
        secret: SECRET.into(),
        node_secret: "node-secret".into(),
        allow_insecure: false,
        // Never contacted by these tests.
        dashboard: "http://127.0.0.1:9".into(),
        cost: crate::stub::ReloadCost::FREE,
        log_policies: false,
        stall_after_reloads: None,
    };
    let publisher = Publisher::new("redis://127.0.0.1:9").unwrap();
    let state = StubState::new(config, publisher, CancellationToken::new()).unwrap();
    state.set_policies(["known".to_string()].into_iter().collect());
    Arc::new(state)
}

async fn call(
    state: &Arc<StubState>,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(secret) = secret {
        request = request.header("X-Tyk-Authorization", secret);
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn a_missing_or_wrong_secret_gets_the_gateways_403_body() {
    let s = state(ReloadMode::Fixed);
    let expected = "{\"status\":\"error\",\"message\":\"Attempted administrative access with invalid or missing key!\"}\n";
    assert_eq!(
        call(&s, "GET", "/tyk/reload", None, "").await,
        (StatusCode::FORBIDDEN, expected.to_owned())
    );
    assert_eq!(
        call(&s, "GET", "/tyk/apis", Some("wrong"), "").await,
        (StatusCode::FORBIDDEN, expected.to_owned())
    );
}

#[tokio::test]
async fn a_wrong_method_gets_405_after_the_auth_check() {
    let s = state(ReloadMode::Fixed);
    let (status, body) = call(&s, "GET", "/tyk/keys/create", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        body,
        "{\"status\":\"error\",\"message\":\"Method not supported\"}\n"
    );
    let (status, _) = call(&s, "DELETE", "/tyk/reload", None, "").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "auth is checked before the method"
    );
}

#[tokio::test]
async fn an_unknown_path_gets_plain_text_404_even_without_a_secret() {
    let s = state(ReloadMode::Fixed);
    for path in ["/tyk/nope", "/", "/tyk/reloadx"] {
        let (status, body) = call(&s, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, "404 page not found\n", "{path}");
    }
}

#[tokio::test]
async fn a_trailing_slash_is_stripped() {
    let s = state(ReloadMode::Fixed);
    let (status, body) = call(&s, "GET", "/tyk/reload/", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "{\"status\":\"ok\",\"message\":\"\"}\n");
    let (status, _) = call(&s, "GET", "/tyk/apis/", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reload_without_block_queues_one_trigger_and_answers_at_once() {
    let s = state(ReloadMode::V294);
    let (status, _) = call(&s, "GET", "/tyk/reload?block=false", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.stats().triggers, 1);
    assert_eq!(
        s.stats().reloads,
        0,
        "the reload happens on the loop's next tick"
    );
}

#[tokio::test]
async fn blocked_reload_answers_after_the_reload_that_serves_it() {
    let s = state(ReloadMode::Fixed);
    let caller = tokio::spawn({
        let s = s.clone();
        async move { call(&s, "GET", "/tyk/reload?block=true", Some(SECRET), "").await }
    });
    // Play the reload loop by hand: wait for the trigger, tick, finish.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.stats().triggers == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "trigger never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!caller.is_finished());
    assert!(s.lock_scheduler().tick());
    for waiter in s.lock_scheduler().finish().0 {
        waiter.send(()).unwrap();
    }
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), caller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "{\"status\":\"ok\",\"message\":\"\"}\n");
}

#[tokio::test]
async fn key_create_for_a_known_policy_answers_200_added() {
    let s = state(ReloadMode::Fixed);
    let (status, body) = call(
        &s,
        "POST",
        "/tyk/keys/create",
        Some(SECRET),
        r#"{"apply_policies":["known"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with('\n'));
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "ok");
    assert_eq!(reply["action"], "added");
    let key = reply["key"].as_str().unwrap();
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn key_create_for_an_unknown_policy_answers_the_gateways_500() {
    let s = state(ReloadMode::Fixed);
    let (status, body) = call(
        &s,
        "POST",
        "/tyk/keys/create",
        Some(SECRET),
        r#"{"apply_policies":["missing"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        "{\"status\":\"error\",\"message\":\"Failed to create key - policy not found: \\\"missing\\\"\"}\n"
    );
}

#[tokio::test]
async fn key_create_with_a_bad_body_answers_unmarshalling_failed() {
    let s = state(ReloadMode::Fixed);
    for bad in ["", "{", r#"{"apply_policies":"known"}"#] {
        let (status, body) = call(&s, "POST", "/tyk/keys/create", Some(SECRET), bad).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{bad:?}");
        assert_eq!(
            body, "{\"status\":\"error\",\"message\":\"Unmarshalling failed\"}\n",
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn hello_needs_no_secret_and_reports_a_stub_version() {
    for (mode, version) in [
        (ReloadMode::V294, "stub/v2.9.4-scheduling"),
        (ReloadMode::Fixed, "stub/fixed-scheduling"),
    ] {
        let s = state(mode);
        let (status, body) = call(&s, "GET", "/hello", None, "").await;
        assert_eq!(status, StatusCode::OK);
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["status"], "pass");
        assert_eq!(reply["version"], version);
    }
}

#[tokio::test]
async fn apis_lists_one_api_in_the_policies_org() {
    let s = state(ReloadMode::Fixed);
    let (status, body) = call(&s, "GET", "/tyk/apis", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply.as_array().unwrap().len(), 1);
    assert_eq!(reply[0]["org_id"], "monarch");
}

#[tokio::test]
async fn stats_need_the_secret_and_report_counters() {
    let s = state(ReloadMode::V294);
    let (status, _) = call(&s, "GET", "/repro/stub/stats", None, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(&s, "GET", "/repro/stub/stats", Some(SECRET), "").await;
    assert_eq!(status, StatusCode::OK);
    let stats: crate::stub::StubStats = serde_json::from_str(&body).unwrap();
    assert_eq!(stats.policies_loaded, 1);
    assert_eq!(stats.version, "stub/v2.9.4-scheduling");
    assert!(!stats.stalled);
}

#[test]
fn stub_args_debug_never_shows_the_secrets() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::stub::StubArgs,
    }
    let cli = Cli::parse_from(["x", "--secret", "s3cr3t-gw", "--node-secret", "s3cr3t-node"]);
    let shown = format!("{:?}", cli.args);
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert_eq!(cli.args.reload_mode, ReloadMode::Fixed);
    assert_eq!(cli.args.tick, Duration::from_secs(1));
}
