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
use crate::summary::{GatewayScenario, Outcome, ScenarioRecord};

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
    /// One lane per gateway measured; with one gateway its lane shares `endpoints`, `timeline`
    /// and `tally` above, so a single-gateway run records exactly what it always did.
    pub lanes: Vec<Lane>,
}

/// What a scenario uses on one gateway of the fleet.
pub struct Lane {
    /// Clients aimed at this gateway.
    pub endpoints: Endpoints,
    /// This gateway's attempt classes.
    pub timeline: Arc<Timeline>,
    /// This gateway's re-check.
    pub tally: Arc<EndTally>,
}

impl Lane {
    /// The lane of a single-gateway run: the run's own clients and records.
    pub fn single(endpoints: &Endpoints, timeline: &Arc<Timeline>, tally: &Arc<EndTally>) -> Self {
        Self {
            endpoints: endpoints.clone(),
            timeline: timeline.clone(),
            tally: tally.clone(),
        }
    }
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
        // `reload` asks every gateway itself; `group` asks the first, Redis fans it out.
        let targets = match ctx.trigger {
            Trigger::Reload => ctx.lanes.len(),
            _ => 1,
        };
        let sends = ctx.lanes[..targets].iter().map(|lane| async {
            let sent = Instant::now();
            let t = lane.endpoints.trigger_classified(ctx.trigger).await;
            (sent, Instant::now(), t)
        });
        let triggered = tokio::select! {
            t = futures::future::join_all(sends) => t,
            _ = cancel.cancelled() => {
                return on_every_gateway(ctx, seq, scheduled, record, Step::LastLook).await;
            }
        };
        *heard = true;
        for (sent, answered, triggered) in triggered {
            ctx.timeline.outcomes.record(
                AttemptKind::Trigger,
                sent,
                answered,
                triggered.class,
                triggered.connect_timeouts,
            );
            match triggered.result {
                Ok(()) => {
                    ctx.counters.triggers.fetch_add(1, Ordering::Relaxed);
                }
                Err(Failure::Fatal(e)) => {
                    ctx.tally.trigger_failed();
                    let e = e.to_string();
                    ctx.stop.stop(StopCause::Fatal(e.clone()));
                    record.last_error = Some(e);
                    return Outcome::Failed;
                }
                // The key creation below will show whether the gateway is really gone.
                Err(Failure::Transient(e)) => {
                    ctx.tally.trigger_failed();
                    *heard = false;
                    record.last_error = Some(e.to_string());
                }
            }
        }
    }

    on_every_gateway(ctx, seq, scheduled, record, Step::Keys).await
}

/// What a scenario does on each gateway.
#[derive(Clone, Copy)]
enum Step {
    /// Create the key, retrying.
    Keys,
    /// The run stopped before the key creation: the last look only.
    LastLook,
}

/// Runs `step` on every gateway: with one, straight into the record's own fields (as a
/// single-gateway run always did); with several, concurrently, one row per gateway, folded by
/// [`fleet_outcome`].
async fn on_every_gateway(
    ctx: &ScenarioContext,
    seq: u64,
    scheduled: Instant,
    record: &mut ScenarioRecord,
    step: Step,
) -> Outcome {
    if let [lane] = ctx.lanes.as_slice() {
        let policy = record.policy_id.clone();
        let on = on_gateway(
            ctx,
            lane,
            seq,
            scheduled,
            policy,
            record.last_error.take(),
            step,
        )
        .await;
        record.attempts = on.attempts;
        record.success_ms = on.success_ms;
        record.last_failure_ms = on.last_failure_ms;
        record.last_error = on.last_error;
        return on.outcome;
    }
    let all = ctx.lanes.iter().map(|lane| {
        let (policy, last_error) = (record.policy_id.clone(), record.last_error.clone());
        on_gateway(ctx, lane, seq, scheduled, policy, last_error, step)
    });
    record.gateways = futures::future::join_all(all).await;
    fleet_outcome(record)
}

/// `step` on one gateway, from a fresh row carrying the error seen so far.
async fn on_gateway(
    ctx: &ScenarioContext,
    lane: &Lane,
    seq: u64,
    scheduled: Instant,
    policy: String,
    last_error: Option<String>,
    step: Step,
) -> GatewayScenario {
    let mut on = GatewayScenario {
        attempts: 0,
        success_ms: None,
        outcome: Outcome::Outstanding,
        last_failure_ms: None,
        last_error,
    };
    on.outcome = match step {
        Step::Keys => key_loop(ctx, lane, seq, scheduled, &policy, &mut on).await,
        Step::LastLook => last_look(ctx, lane, scheduled, &policy, &mut on).await,
    };
    on
}

/// Folds the per-gateway outcomes into the scenario's own fields: it succeeded once every
/// gateway answered 200 (at the last one's time), failed if any gateway failed it for good.
pub fn fleet_outcome(record: &mut ScenarioRecord) -> Outcome {
    let on = &record.gateways;
    record.attempts = on.iter().map(|g| g.attempts).sum();
    record.last_failure_ms = on.iter().filter_map(|g| g.last_failure_ms).reduce(f64::max);
    record.last_error = on
        .iter()
        .filter(|g| g.outcome != Outcome::Success)
        .find_map(|g| g.last_error.clone())
        .or_else(|| on.iter().find_map(|g| g.last_error.clone()));
    if on.iter().any(|g| g.outcome == Outcome::Failed) {
        return Outcome::Failed;
    }
    if on.iter().all(|g| g.outcome == Outcome::Success) {
        record.success_ms = on.iter().filter_map(|g| g.success_ms).reduce(f64::max);
        return Outcome::Success;
    }
    Outcome::Outstanding
}

/// Creates the key on one gateway, retrying with backoff until it answers 200, the run stops
/// or an answer is fatal.
async fn key_loop(
    ctx: &ScenarioContext,
    lane: &Lane,
    seq: u64,
    scheduled: Instant,
    policy_id: &str,
    on: &mut GatewayScenario,
) -> Outcome {
    let cancel = &ctx.cancel;
    // With one gateway the lane's timeline is the run's: record each attempt once.
    let fleet_timeline = (!Arc::ptr_eq(&lane.timeline, &ctx.timeline)).then_some(&ctx.timeline);
    let mut backoff = ctx.backoff.start(ctx.seed.wrapping_add(seq));
    let mut timed_out_before = false;
    loop {
        on.attempts += 1;
        ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        ctx.timeline.record_attempt(sent);
        let attempt = tokio::select! {
            a = lane.endpoints.create_key_classified(policy_id) => a,
            _ = cancel.cancelled() => return last_look(ctx, lane, scheduled, policy_id, on).await,
        };
        let answered = Instant::now();
        let first_timeout = attempt.class == AttemptClass::TimedOut && !timed_out_before;
        timed_out_before |= first_timeout;
        for timeline in std::iter::once(&lane.timeline).chain(fleet_timeline) {
            let outcomes = &timeline.outcomes;
            let kind = AttemptKind::KeyCreation;
            outcomes.record(
                kind,
                sent,
                answered,
                attempt.class,
                attempt.connect_timeouts,
            );
            if first_timeout {
                outcomes.record_scenario_timed_out();
            }
        }
        match attempt.result {
            KeyAttempt::Created => {
                on.success_ms = Some(ms_between(scheduled, answered));
                return Outcome::Success;
            }
            KeyAttempt::NotYet(e) | KeyAttempt::Transient(e) => {
                on.last_failure_ms = Some(ms_between(scheduled, answered));
                on.last_error = Some(e);
            }
            KeyAttempt::Fatal(e) => {
                ctx.stop.stop(StopCause::Fatal(e.clone()));
                on.last_error = Some(e);
                return Outcome::Failed;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_wait()) => {}
            _ = cancel.cancelled() => return last_look(ctx, lane, scheduled, policy_id, on).await,
        }
    }
}

/// The run stopped while this scenario waited on `lane`: ask once more if the stop cause
/// wants a re-check, else stay outstanding.
async fn last_look(
    ctx: &ScenarioContext,
    lane: &Lane,
    scheduled: Instant,
    policy_id: &str,
    on: &mut GatewayScenario,
) -> Outcome {
    if !super::recheck::wanted(ctx.stop.cause().as_ref()) {
        return Outcome::Outstanding;
    }
    on.attempts += 1;
    ctx.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let answer = lane.tally.recheck(&lane.endpoints, policy_id).await;
    let answered = Instant::now();
    match answer {
        Some(KeyAttempt::Created) => {
            on.success_ms = Some(ms_between(scheduled, answered));
            Outcome::Success
        }
        Some(KeyAttempt::NotYet(e) | KeyAttempt::Transient(e) | KeyAttempt::Fatal(e)) => {
            on.last_failure_ms = Some(ms_between(scheduled, answered));
            on.last_error = Some(e);
            Outcome::Outstanding
        }
        None => Outcome::Outstanding,
    }
}
