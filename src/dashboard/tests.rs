//! Router tests through `tower::ServiceExt::oneshot`: no socket, no Redis (`--notify none`).

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::protocol::{AddedPolicy, FetchRecord, MockStats, PolicyListReply};

const SECRET: &str = "test-node-secret";

fn args(initial_policies: u64, admin_token: Option<&str>) -> DashboardArgs {
    DashboardArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis: "redis://127.0.0.1:1".to_owned().into(),
        node_secret: SECRET.into(),
        initial_policies,
        org_id: "monarch".into(),
        notify: NotifyMode::None,
        admin_token: admin_token.map(crate::telemetry::Secret::from),
        max_fetch_log: 100,
    }
}

async fn router(initial_policies: u64, admin_token: Option<&str>) -> Router {
    app(build_state(&args(initial_policies, admin_token))
        .await
        .unwrap())
}

async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn fetch(path: &str, secret: Option<&str>, nonce: &str) -> Request<Body> {
    let mut builder = Request::get(path)
        .header("x-tyk-nodeid", "solo-test")
        .header("x-tyk-nonce", nonce);
    if let Some(secret) = secret {
        builder = builder.header("authorization", secret);
    }
    builder.body(Body::empty()).unwrap()
}

async fn stats(app: &Router) -> MockStats {
    let (_, _, body) = send(app, get("/repro/stats")).await;
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_fetch_without_the_node_secret_is_refused_and_counted() {
    let app = router(3, None).await;
    for secret in [None, Some("wrong")] {
        let (status, headers, body) = send(&app, fetch("/system/policies", secret, "")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"Status":"Error","Message":"Authorization failed","Nonce":""}"#
        );
    }
    let s = stats(&app).await;
    assert_eq!((s.rejected_fetches, s.fetches), (2, 0));
    let (_, _, body) = send(&app, get("/repro/fetches")).await;
    let log: Vec<FetchRecord> = serde_json::from_slice(&body).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| !r.authorized && r.served == 0));
}

#[tokio::test]
async fn an_authorized_fetch_serves_every_policy_as_json_with_a_length() {
    let app = router(5, None).await;
    for path in ["/system/policies", "//system/policies"] {
        let (status, headers, body) = send(&app, fetch(path, Some(SECRET), "")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            headers[header::CONTENT_LENGTH],
            body.len().to_string().as_str()
        );
        assert!(body.starts_with(br#"{"Status":"OK","Message":[{"id":""#));
        let reply: PolicyListReply = serde_json::from_slice(&body).unwrap();
        assert_eq!(reply.message.len(), 5);
        assert!(!reply.nonce.is_empty());
    }
    let s = stats(&app).await;
    assert_eq!(
        (s.fetches, s.policies_served, s.initial_policies),
        (2, 5, 5)
    );
}

#[tokio::test]
async fn an_unknown_nonce_is_counted_but_still_served() {
    let app = router(2, None).await;
    let (_, _, body) = send(&app, fetch("/system/policies", Some(SECRET), "")).await;
    let issued = serde_json::from_slice::<PolicyListReply>(&body)
        .unwrap()
        .nonce;
    let (status, _, _) = send(&app, fetch("/system/policies", Some(SECRET), &issued)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&app, fetch("/system/policies", Some(SECRET), "nonce")).await;
    assert_eq!(status, StatusCode::OK);
    let s = stats(&app).await;
    assert_eq!((s.fetches, s.nonce_mismatches), (3, 1));
    let (_, _, body) = send(&app, get("/repro/fetches")).await;
    let log: Vec<FetchRecord> = serde_json::from_slice(&body).unwrap();
    let oks: Vec<bool> = log.iter().map(|r| r.nonce_ok).collect();
    assert_eq!(oks, vec![true, true, false]);
    assert!(
        log.iter()
            .all(|r| r.node_id == "solo-test" && r.served == 2 && r.bytes > 0)
    );
}

#[tokio::test]
async fn an_added_policy_is_in_the_next_fetch() {
    let app = router(3, None).await;
    let add = Request::post("/repro/policies")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&app, add).await;
    assert_eq!(status, StatusCode::OK);
    let added: AddedPolicy = serde_json::from_slice(&body).unwrap();
    assert_eq!((added.index, added.served), (4, 4));
    let (_, _, body) = send(&app, fetch("/system/policies", Some(SECRET), "")).await;
    let reply: PolicyListReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply.message.last().unwrap().id, added.id);
    let s = stats(&app).await;
    assert_eq!((s.adds, s.published, s.publish_errors), (1, 0, 0));
}

#[tokio::test]
async fn the_seed_routes_answer_in_the_seed_text_formats() {
    let app = router(3, None).await;
    let (_, _, body) = send(&app, fetch("/system/policies", Some(SECRET), "")).await;
    let first = serde_json::from_slice::<PolicyListReply>(&body)
        .unwrap()
        .message[0]
        .id
        .clone();
    let (status, _, body) = send(&app, get("/origin")).await;
    assert_eq!(
        (status, String::from_utf8(body).unwrap()),
        (StatusCode::OK, first)
    );
    let (status, _, body) = send(&app, get("/create")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let (id, index) = text.split_once('|').unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(index, "4");
}

#[tokio::test]
async fn health_reports_the_policy_count_and_unknown_routes_are_404() {
    let app = router(7, Some("tok")).await;
    let (status, _, body) = send(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, serde_json::json!({"status": "ok", "policies": 7}));
    let (status, _, _) = send(&app, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = router(1, None).await;
    let big = vec![b'x'; routes::MAX_BODY_BYTES + 1];
    let request = Request::post("/repro/policies")
        .body(Body::from(big))
        .unwrap();
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stats(&app).await.adds, 0);
}

#[tokio::test]
async fn the_admin_token_guards_repro_routes_only() {
    let app = router(1, Some("tok")).await;
    let (status, _, _) = send(&app, get("/repro/stats")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/repro/stats")
        .header("x-repro-token", "bad")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let add = Request::post("/repro/policies")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, add).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::get("/repro/stats")
        .header("x-repro-token", "tok")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, right).await.0, StatusCode::OK);
    let (status, _, _) = send(&app, fetch("/system/policies", Some(SECRET), "")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn fetches_can_be_filtered_by_arrival_time() {
    let app = router(1, None).await;
    send(&app, fetch("/system/policies", Some(SECRET), "")).await;
    let (_, _, body) = send(&app, get("/repro/fetches?since_ms=0")).await;
    assert_eq!(
        serde_json::from_slice::<Vec<FetchRecord>>(&body)
            .unwrap()
            .len(),
        1
    );
    let (_, _, body) = send(&app, get(&format!("/repro/fetches?since_ms={}", u64::MAX))).await;
    assert!(
        serde_json::from_slice::<Vec<FetchRecord>>(&body)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn debug_output_never_shows_the_secrets() {
    let mut a = args(1, Some("admintok"));
    a.redis = "redis://:redispw@host:6379".into();
    let text = format!("{a:?}");
    assert!(!text.contains(SECRET) && !text.contains("admintok") && !text.contains("redispw"));
    assert!(text.contains("***"));
}
