//! One scenario: add a policy at the mock → trigger a reload → create a key bound to it,
//! retrying with backoff until the gateway answers 200, the run stops, or a fatal answer.
//!
//! Every wait races the run's cancellation, so a stopped run never waits on a scenario. When
//! the run stops for a stall, the deadline or a silent gateway, a scenario that has its policy
//! asks once more before it gives up ([`super::recheck`]), within a shared time budget.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::backoff::BackoffPolicy;
use super::client::{Endpoints, KeyAttempt};
use super::errors::Failure;
use super::options::Trigger;
use super::recheck::EndTally;
use super::record::{AttemptKind, LiveCounters, Timeline};
use super::stop::{StopCause, StopSignal};
use crate::summary::attempts::AttemptClass;
use crate::summary::{Outcome, ScenarioRecord};

/// What every scenario of a run shares.
pub struct ScenarioContext {
    /// HTTP clients.
    pub endpoints: Endpoints,
    /// Trigger kind.
    pub trigger: Trigger,
    /// Retry schedule.
    pub backoff: BackoffPolicy,
    /// Jitter seed base (scenario `seq` uses `seed + seq`).
    pub seed: u64,
    /// Live counters.
    pub counters: Arc<LiveCounters>,
    /// Per-second series.
    pub timeline: Arc<Timeline>,
    /// Cancelled when the run stops.
    pub cancel: CancellationToken,
    /// Where a fatal answer stops the run.
    pub stop: Arc<StopSignal>,
    /// When the load started (schedule origin).
    pub origin: Instant,
    /// Gateways a notification must reach to count as heard.
    pub gateways: u64,
    /// The re-check and what the verdict learns from the scenarios.
    pub tally: Arc<EndTally>,
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Runs scenario `seq`, scheduled at `scheduled`, started `lag` late; always returns its record.
pub async fn run_scenario(
    ctx: Arc<ScenarioContext>,
    seq: u64,
    scheduled: Instant,
    lag: Duration,
) -> ScenarioRecord {
    let mut record = ScenarioRecord {
        seq,
        index: 0,
        policy_id: String::new(),
        scheduled_ms: ms_between(ctx.origin, scheduled),
        lag_ms: lag.as_secs_f64() * 1000.0,
        add_done_ms: None,
        attempts: 0,
        last_failure_ms: None,
        success_ms: None,
        outcome: Outcome::Outstanding,
        last_error: None,
        gateways: Vec::new(),
    };
    let mut heard = true;
    let outcome = drive(&ctx, seq, scheduled, &mut record, &mut heard).await;
    record.outcome = outcome;
    if outcome == Outcome::Outstanding && !heard {
        ctx.tally.outstanding_unheard();
    }
    let now = Instant::now();
    match outcome {
        Outcome::Success => {
            ctx.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            ctx.timeline.record_finish(now, true);
        }
        Outcome::Failed => {
            ctx.counters.failed.fetch_add(1, Ordering::Relaxed);
            ctx.timeline.record_finish(now, false);
        }
        Outcome::Outstanding => {}
    }
    record
}

async fn drive(
    ctx: &ScenarioContext,
    seq: u64,
    scheduled: Instant,
    record: &mut ScenarioRecord,
    heard: &mut bool,
) -> Outcome {
    let cancel = &ctx.cancel;
    let adding = Instant::now();
    let added = tokio::select! {
        added = ctx.endpoints.add_policy() => added,
        _ = cancel.cancelled() => return Outcome::Outstanding,
    };
    ctx.tally.record_add(adding.elapsed());
    let policy = match added {
        Ok(policy) => policy,
        Err(e) => {
            record.last_error = Some(e.to_string());
            return Outcome::Failed;
        }
    };
    ctx.counters.adds.fetch_add(1, Ordering::Relaxed);
    if ctx.trigger == Trigger::Notify {
        *heard = policy.receivers.is_some_and(|n| n >= ctx.gateways);
    }
    record.index = policy.index;
    record.policy_id = policy.id;
    record.add_done_ms = Some(ms_between(scheduled, Instant::now()));

    if ctx.trigger == Trigger::Reload || ctx.trigger == Trigger::Group {
        let sent = Instant::now();
        let triggered = tokio::select! {
            t = ctx.endpoints.trigger_classified(ctx.trigger) => t,
            _ = cancel.cancelled() => return last_look(ctx, scheduled, record).await,
        };
        let kind = AttemptKind::Trigger;
        let outcomes = &ctx.timeline.outcomes;
        outcomes.record(
            kind,
            sent,
            Instant::now(),
            triggered.class,
            triggered.connect_timeouts,
        );
        let triggered = triggered.result;
        *heard = triggered.is_ok();
        if triggered.is_err() {
            ctx.tally.trigger_failed();
        }
        match triggered {
            Ok(()) => {
                ctx.counters.triggers.fetch_add(1, Ordering::Relaxed);
            }
            Err(Failure::Fatal(e)) => {
                let e = e.to_string();
                ctx.stop.stop(StopCause::Fatal(e.clone()));
                record.last_error = Some(e);
                return Outcome::Failed;
            }
            // The key creation below will show whether the gateway is really gone.
            Err(Failure::Transient(e)) => record.last_error = Some(e.to_string()),
        }
    }

    let mut backoff = ctx.backoff.start(ctx.seed.wrapping_add(seq));
    let mut timed_out_before = false;
    loop {
        record.attempts += 1;
        ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        ctx.timeline.record_attempt(sent);
        let attempt = tokio::select! {
            a = ctx.endpoints.create_key_classified(&record.policy_id) => a,
            _ = cancel.cancelled() => return last_look(ctx, scheduled, record).await,
        };
        let answered = Instant::now();
        let outcomes = &ctx.timeline.outcomes;
        let kind = AttemptKind::KeyCreation;
        outcomes.record(
            kind,
            sent,
            answered,
            attempt.class,
            attempt.connect_timeouts,
        );
        if attempt.class == AttemptClass::TimedOut && !timed_out_before {
            timed_out_before = true;
            outcomes.record_scenario_timed_out();
        }
        match attempt.result {
            KeyAttempt::Created => {
                record.success_ms = Some(ms_between(scheduled, answered));
                return Outcome::Success;
            }
            KeyAttempt::NotYet(e) | KeyAttempt::Transient(e) => {
                record.last_failure_ms = Some(ms_between(scheduled, answered));
                record.last_error = Some(e);
            }
            KeyAttempt::Fatal(e) => {
                ctx.stop.stop(StopCause::Fatal(e.clone()));
                record.last_error = Some(e);
                return Outcome::Failed;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_wait()) => {}
            _ = cancel.cancelled() => return last_look(ctx, scheduled, record).await,
        }
    }
}

/// The run stopped while this scenario waited: ask once more if the stop cause wants a
/// re-check, else stay outstanding.
async fn last_look(
    ctx: &ScenarioContext,
    scheduled: Instant,
    record: &mut ScenarioRecord,
) -> Outcome {
    if !super::recheck::wanted(ctx.stop.cause().as_ref()) {
        return Outcome::Outstanding;
    }
    record.attempts += 1;
    ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let answer = ctx.tally.recheck(&ctx.endpoints, &record.policy_id).await;
    let answered = Instant::now();
    match answer {
        Some(KeyAttempt::Created) => {
            record.success_ms = Some(ms_between(scheduled, answered));
            Outcome::Success
        }
        Some(KeyAttempt::NotYet(e) | KeyAttempt::Transient(e) | KeyAttempt::Fatal(e)) => {
            record.last_failure_ms = Some(ms_between(scheduled, answered));
            record.last_error = Some(e);
            Outcome::Outstanding
        }
        None => Outcome::Outstanding,
    }
}
