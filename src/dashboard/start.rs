//! `POST /repro/start`: the start barrier of a sharded run (`run --shard K/N --run-id ID`).
//!
//! Every shard checks in with `{run_id, shard, shards, wait_ms}` once it is ready. The request
//! is held until all N shards of the run id checked in; then every one gets the same start
//! instant (`start_unix_ms`, [`START_LEAD`] after the last check-in) and computes its own
//! monotonic origin from it. Refused (409): a shard that disagrees with the run's N, a shard
//! index already checked in, a run id that already started or failed. When a shard's
//! `wait_ms` runs out first, the run id fails: every waiting shard gets 504 naming the missing
//! shards (the runner turns it into an `infra_error` summary), and later check-ins get 409.
//!
//! Memory is bounded: at most [`MAX_RUNS`] run ids are remembered, the oldest forgotten first.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{MethodRouter, post};
use serde_json::json;
use tokio::sync::watch;

use crate::runner::shard::{MAX_RUN_ID_CHARS, MAX_SHARDS, StartAnswer, StartRequest};

/// How far after the last check-in the common start lies: time for every answer to arrive.
pub const START_LEAD: Duration = Duration::from_millis(500);
/// Run ids remembered; the oldest is forgotten when a new one arrives beyond this.
pub const MAX_RUNS: usize = 256;
/// Longest wait a check-in may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Where a run id stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Waiting,
    Started(u64),
    Failed(String),
}

#[derive(Debug)]
struct Run {
    shards: u64,
    arrived: BTreeSet<u64>,
    phase: watch::Sender<Phase>,
}

/// Why a check-in got no start instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed request (400).
    BadRequest(String),
    /// It contradicts the run id's state (409).
    Conflict(String),
    /// The other shards did not all check in within the wait (504).
    Timeout(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refusal::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Refusal::Conflict(m) => (StatusCode::CONFLICT, m),
            Refusal::Timeout(m) => (StatusCode::GATEWAY_TIMEOUT, m),
        };
        (status, Json(json!({"status": "error", "message": message}))).into_response()
    }
}

/// The barriers of every remembered run id.
#[derive(Debug, Default)]
pub struct Barriers {
    inner: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    runs: HashMap<String, Run>,
    order: VecDeque<String>,
}

impl Barriers {
    /// Checks `req` in and waits until every shard of its run id did (or its wait ran out).
    pub async fn check_in(&self, req: &StartRequest) -> Result<StartAnswer, Refusal> {
        validate(req)?;
        let mut phase = self.arrive(req)?;
        let wait = Duration::from_millis(req.wait_ms).min(MAX_WAIT);
        let settled = tokio::time::timeout(wait, phase.wait_for(|p| *p != Phase::Waiting)).await;
        let outcome = match settled {
            Ok(Ok(p)) => p.clone(),
            Ok(Err(_)) => Phase::Failed(format!("run `{}` was forgotten", req.run_id)),
            Err(_) => self.give_up(req),
        };
        match outcome {
            Phase::Started(start_unix_ms) => Ok(StartAnswer {
                run_id: req.run_id.clone(),
                shards: req.shards,
                start_unix_ms,
            }),
            Phase::Failed(reason) => Err(Refusal::Timeout(reason)),
            Phase::Waiting => Err(Refusal::Timeout(format!(
                "run `{}` did not start",
                req.run_id
            ))),
        }
    }

    fn arrive(&self, req: &StartRequest) -> Result<watch::Receiver<Phase>, Refusal> {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !book.runs.contains_key(&req.run_id) {
            while book.runs.len() >= MAX_RUNS {
                let Some(oldest) = book.order.pop_front() else {
                    break;
                };
                book.runs.remove(&oldest);
            }
            book.order.push_back(req.run_id.clone());
            let (phase, _) = watch::channel(Phase::Waiting);
            book.runs.insert(
                req.run_id.clone(),
                Run {
                    shards: req.shards,
                    arrived: BTreeSet::new(),
                    phase,
                },
            );
        }
        let id = &req.run_id;
        let Some(run) = book.runs.get_mut(id) else {
            return Err(Refusal::Conflict(format!("run `{id}` was forgotten")));
        };
        if run.shards != req.shards {
            return Err(Refusal::Conflict(format!(
                "shard {}/{} of run `{id}`: the run's first shard said {} shards; give every \
                 shard the same --shard K/N count",
                req.shard, req.shards, run.shards
            )));
        }
        match run.phase.borrow().clone() {
            Phase::Started(_) => {
                return Err(Refusal::Conflict(format!(
                    "run `{id}` has already started: use a new --run-id for a new run"
                )));
            }
            Phase::Failed(reason) => {
                return Err(Refusal::Conflict(format!(
                    "run `{id}` failed ({reason}): use a new --run-id"
                )));
            }
            Phase::Waiting => {}
        }
        if !run.arrived.insert(req.shard) {
            return Err(Refusal::Conflict(format!(
                "shard {}/{} of run `{id}` has already checked in: give each runner its own K",
                req.shard, req.shards
            )));
        }
        let receiver = run.phase.subscribe();
        if run.arrived.len() as u64 == run.shards {
            let start = unix_ms() + START_LEAD.as_millis() as u64;
            run.phase.send_replace(Phase::Started(start));
        }
        Ok(receiver)
    }

    /// The wait of `req` ran out: the run fails for every shard (unless it started meanwhile).
    fn give_up(&self, req: &StartRequest) -> Phase {
        let mut book = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = book.runs.get_mut(&req.run_id) else {
            return Phase::Failed(format!("run `{}` was forgotten", req.run_id));
        };
        if let phase @ (Phase::Started(_) | Phase::Failed(_)) = run.phase.borrow().clone() {
            return phase;
        }
        let missing: Vec<String> = (0..run.shards)
            .filter(|k| !run.arrived.contains(k))
            .map(|k| format!("{k}/{}", run.shards))
            .collect();
        let reason = format!(
            "shard(s) {} of run `{}` did not check in within {:?} (checked in: {}); start every \
             shard with the same --run-id and --dashboard",
            missing.join(", "),
            req.run_id,
            Duration::from_millis(req.wait_ms).min(MAX_WAIT),
            run.arrived
                .iter()
                .map(|k| format!("{k}/{}", run.shards))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let failed = Phase::Failed(reason);
        run.phase.send_replace(failed.clone());
        failed
    }

    /// Run ids remembered.
    pub fn remembered(&self) -> usize {
        self.inner.lock().map_or(0, |b| b.runs.len())
    }
}

fn validate(req: &StartRequest) -> Result<(), Refusal> {
    if req.run_id.is_empty() || req.run_id.chars().count() > MAX_RUN_ID_CHARS {
        return Err(Refusal::BadRequest(format!(
            "run_id must have 1 to {MAX_RUN_ID_CHARS} characters"
        )));
    }
    if req.shards == 0 || req.shards > MAX_SHARDS || req.shard >= req.shards {
        return Err(Refusal::BadRequest(format!(
            "shard {}/{}: need 0 ≤ shard < shards ≤ {MAX_SHARDS}",
            req.shard, req.shards
        )));
    }
    Ok(())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The route, with a barrier book of its own (one per app).
pub fn route<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    post(start).with_state(Arc::new(Barriers::default()))
}

async fn start(State(barriers): State<Arc<Barriers>>, body: axum::body::Bytes) -> Response {
    let req: StartRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return Refusal::BadRequest(format!(
                "body must be {{\"run_id\", \"shard\", \"shards\", \"wait_ms\"}}: {e}"
            ))
            .into_response();
        }
    };
    match barriers.check_in(&req).await {
        Ok(answer) => Json(answer).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
