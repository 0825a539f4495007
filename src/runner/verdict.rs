//! The verdict as one pure function of what the run observed: no I/O. `finish` gathers the
//! facts ([`VerdictFacts`]) and calls [`decide_verdict`].
//!
//! Order, first match wins:
//! 1. a signal → `interrupted`; a fatal answer → `infra_error` with it;
//! 2. completed: failures → `infra_error`; successes no fetch could have served → `infra_error`
//!    (the gateway accepts keys for unknown policies); else `pass` (saturation only noted);
//! 3. stopped early (stall, deadline, silent gateway) but nothing is left waiting after the
//!    final re-check → `pass`;
//! 4. the gateway's container exited, was OOM-killed or restarted → `unresponsive`;
//! 5. the kit fell behind (runner lag, slow PUBLISH, slow mock) → `infra_error` naming the
//!    saturation and what to lower: a hang measured on a saturated machine proves nothing;
//! 6. the dashboard went silent → `infra_error`;
//! 7. the gateway stopped answering (watcher's probe, or most re-checks got no answer) →
//!    `unresponsive`;
//! 8. every waiting scenario's trigger reached no gateway → `infra_error` naming the unheard
//!    notifications (the gateway was never told);
//! 9. otherwise → `hang`: the gateway answers "policy not found" for policies it was told of.

use super::stop::StopCause;
use crate::shutdown::Signal;
use crate::summary::Verdict;

/// Scheduler lag p99 at which the runner counts as saturated, milliseconds.
pub const SATURATED_LAG_P99_MS: f64 = 500.0;
/// Share of slow PUBLISHes / adds (per cent) at which Redis / the mock counts as saturated.
pub const SATURATED_SLOW_SHARE_PERCENT: u64 = 1;
/// Fewest slow PUBLISHes / adds that count (one hiccup is not saturation).
pub const SATURATED_SLOW_MIN: u64 = 5;

/// How the final re-check of the waiting scenarios went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecheckCounts {
    /// Scenarios re-checked.
    pub probed: u64,
    /// Got their key on the re-check.
    pub succeeded: u64,
    /// Still "policy not found".
    pub not_found: u64,
    /// No answer (refused, reset, timed out).
    pub no_answer: u64,
    /// Any other answer.
    pub other: u64,
    /// Not probed: the re-check's time budget ran out first.
    pub out_of_time: u64,
    /// One of the no-answer errors.
    pub last_no_answer: Option<String>,
    /// One of the "policy not found" answers.
    pub last_not_found: Option<String>,
}

impl RecheckCounts {
    /// Re-checks that got no answer or no chance to ask.
    pub fn silent(&self) -> u64 {
        self.no_answer + self.out_of_time
    }
}

/// How hard the kit's own parts were pushed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KitLoad {
    /// Scheduler lag p99, ms.
    pub lag_p99_ms: f64,
    /// Starts later than the late threshold.
    pub late_starts: u64,
    /// Scenarios started.
    pub started: u64,
    /// Scenarios scheduled.
    pub scheduled: u64,
    /// Adds made.
    pub adds: u64,
    /// Adds slower than `recheck::SLOW_ADD`.
    pub slow_adds: u64,
    /// Slowest add, ms.
    pub add_max_ms: f64,
    /// PUBLISHes made.
    pub published: u64,
    /// PUBLISHes slower than `protocol::SLOW_PUBLISH_MS`.
    pub slow_publishes: u64,
    /// Slowest PUBLISH, ms.
    pub publish_max_ms: f64,
    /// The stop cause's account of a silent dashboard, if that is why the run stopped.
    pub dashboard_silence: Option<String>,
    /// The runner's own account of falling behind, if that is why the run stopped.
    pub behind: Option<String>,
}

/// Everything the verdict depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictFacts {
    /// Why the load stopped.
    pub cause: StopCause,
    /// Started scenarios.
    pub started: u64,
    /// Scheduled scenarios.
    pub scheduled: u64,
    /// Succeeded (the re-check's successes included).
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Still waiting when the run ended.
    pub outstanding: u64,
    /// Load start to stop, seconds.
    pub elapsed_s: f64,
    /// `--deadline`, seconds.
    pub deadline_s: f64,
    /// Latency p50 / p99 / max of the successes, ms.
    pub latency_ms: (Option<f64>, Option<f64>, Option<f64>),
    /// Up to three failure messages.
    pub failure_examples: Vec<String>,
    /// Last accepted fetch minus last add, seconds.
    pub last_fetch_after_last_add_s: Option<f64>,
    /// One waiting scenario's last answer.
    pub last_error: Option<String>,
    /// Gateways expected (`--gateways`).
    pub gateways: u64,
    /// PUBLISHes that failed.
    pub publish_errors: u64,
    /// PUBLISHes that reached fewer than `gateways` subscribers.
    pub unheard_notifications: u64,
    /// `reload` / `group` trigger calls that failed.
    pub trigger_failures: u64,
    /// Waiting scenarios whose own trigger went unheard.
    pub outstanding_unheard: u64,
    /// The final re-check.
    pub recheck: RecheckCounts,
    /// The watcher's account of a gateway that stopped answering, if it did.
    pub gateway_silence: Option<String>,
    /// The gateway's container exited, was OOM-killed or restarted (compose): what was seen.
    pub container_death: Option<String>,
    /// The kit's own load.
    pub kit: KitLoad,
    /// Successes that came before any fetch had served their policy.
    pub unserved_successes: u64,
}

/// Evidence that the kit itself was saturated, one phrase per part; empty when it kept up.
pub fn saturation(k: &KitLoad) -> Vec<String> {
    let mut seen = Vec::new();
    if let Some(behind) = &k.behind {
        seen.push(behind.clone());
    }
    if k.lag_p99_ms >= SATURATED_LAG_P99_MS {
        seen.push(format!(
            "runner scheduler lag p99 {:.0} ms ({} of {} starts late)",
            k.lag_p99_ms, k.late_starts, k.started
        ));
    }
    let heavy = |slow: u64, total: u64| {
        slow >= SATURATED_SLOW_MIN && slow * 100 >= total.max(1) * SATURATED_SLOW_SHARE_PERCENT
    };
    if heavy(k.slow_publishes, k.published) {
        seen.push(format!(
            "Redis PUBLISH took up to {:.0} ms ({} of {} slower than {} ms)",
            k.publish_max_ms,
            k.slow_publishes,
            k.published,
            crate::protocol::SLOW_PUBLISH_MS
        ));
    }
    if heavy(k.slow_adds, k.adds) {
        seen.push(format!(
            "the dashboard mock took up to {:.0} ms to answer an add ({} of {} slower than 1 s)",
            k.add_max_ms, k.slow_adds, k.adds
        ));
    }
    if seen.is_empty() {
        return seen;
    }
    if let Some(silence) = &k.dashboard_silence {
        seen.push(silence.clone());
    }
    if k.started < k.scheduled {
        seen.push(format!(
            "only {} of {} scheduled scenarios were started",
            k.started, k.scheduled
        ));
    }
    seen
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Interrupt => "Ctrl-C (SIGINT)",
        Signal::Terminate => "SIGTERM",
    }
}

/// The verdict and its one-sentence reason (see the module docs for the order).
pub fn decide_verdict(f: &VerdictFacts) -> (Verdict, String) {
    let n = f;
    match &f.cause {
        StopCause::Signal(signal) => {
            return (
                Verdict::Interrupted,
                format!(
                    "interrupted by {} after {:.1}s: {} of {} started scenarios succeeded, {} waiting",
                    signal_name(*signal),
                    f.elapsed_s,
                    n.succeeded,
                    n.started,
                    n.outstanding
                ),
            );
        }
        StopCause::Fatal(reason) => return (Verdict::InfraError, reason.clone()),
        _ => {}
    }
    let saturated = saturation(&f.kit);
    let saturation_text = saturated.join("; ");
    let waiting = n.outstanding > 0 || n.started < n.scheduled;
    if f.cause == StopCause::Completed || !waiting && n.failed == 0 {
        return finished(f, &saturation_text);
    }
    let cut_short = if n.started < n.scheduled {
        format!(
            " (the load stopped after {} of {} scheduled starts)",
            n.started, n.scheduled
        )
    } else {
        String::new()
    };
    let missing = format!(
        "{} of {} scenarios never got their key{cut_short}",
        n.outstanding, n.started
    );
    if let Some(death) = &f.container_death {
        return (
            Verdict::Unresponsive,
            format!(
                "the gateway {death}; {missing}{}",
                note("the kit was also saturated", &saturation_text)
            ),
        );
    }
    if !saturated.is_empty() {
        return (
            Verdict::InfraError,
            format!(
                "the kit itself was saturated, so this run measured the machine, not the gateway \
                 ({missing}): {saturation_text}. Lower RATE, DURATION or INITIAL_POLICIES, or run \
                 the kit where it has more free cores, and run again"
            ),
        );
    }
    if let StopCause::DashboardSilent(reason) = &f.cause {
        return (Verdict::InfraError, reason.clone());
    }
    if let Some(reason) = gateway_gone(f) {
        return (Verdict::Unresponsive, format!("{missing}: {reason}"));
    }
    if n.outstanding > 0 && f.outstanding_unheard >= n.outstanding {
        return (Verdict::InfraError, unheard_reason(f, &missing));
    }
    hang(f, &missing)
}

/// `"; {label}: {text}"`, or nothing when `text` is empty.
fn note(label: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("; {label}: {text}")
    }
}

/// Everything finished (or was finished by the re-check).
fn finished(f: &VerdictFacts, saturation_text: &str) -> (Verdict, String) {
    if f.failed > 0 {
        return (
            Verdict::InfraError,
            format!(
                "{} of {} scenarios failed: {}",
                f.failed,
                f.started,
                f.failure_examples.join(" | ")
            ),
        );
    }
    if f.unserved_successes > 0 {
        return (
            Verdict::InfraError,
            format!(
                "{} of {} scenarios got their key before any policy fetch had served their policy: \
                 the gateway accepts keys for policies it has not loaded (a gateway with no API for \
                 the policies' org does; check `app_path` in its config and the apps mount), so \
                 these latencies are not reload latencies",
                f.unserved_successes, f.succeeded
            ),
        );
    }
    let (p50, p99, max) = f.latency_ms;
    let rechecked = if f.recheck.succeeded > 0 {
        format!(
            "; {} of them only on the final re-check (the backoff's waits outlast --stall-timeout)",
            f.recheck.succeeded
        )
    } else {
        String::new()
    };
    (
        Verdict::Pass,
        format!(
            "all {} scenarios got their key{rechecked}; latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms{}",
            f.succeeded,
            p50.unwrap_or(0.0),
            p99.unwrap_or(0.0),
            max.unwrap_or(0.0),
            note(
                "but the kit fell behind, so the latencies include its own delays",
                saturation_text
            )
        ),
    )
}

/// Why the gateway counts as gone, if it does.
fn gateway_gone(f: &VerdictFacts) -> Option<String> {
    let r = &f.recheck;
    let still_failing = r.probed.saturating_sub(r.succeeded);
    let silent_recheck = still_failing > 0 && r.silent() * 2 > still_failing;
    let recheck_text = (r.probed > 0).then(|| {
        format!(
            "on the final re-check {} of {} waiting scenarios got no answer{}",
            r.silent(),
            r.probed,
            r.last_no_answer
                .as_deref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        )
    });
    let watcher = match &f.cause {
        StopCause::Unresponsive(reason) => Some(reason.clone()),
        _ => f.gateway_silence.clone(),
    };
    let unresponsive = matches!(f.cause, StopCause::Unresponsive(_)) || silent_recheck;
    if !unresponsive {
        return None;
    }
    let parts: Vec<String> = [watcher, recheck_text].into_iter().flatten().collect();
    Some(format!(
        "the gateway stopped answering ({}): a gone gateway, not the lost-trigger hang",
        parts.join("; ")
    ))
}

fn unheard_reason(f: &VerdictFacts, missing: &str) -> String {
    let mut told = Vec::new();
    if f.unheard_notifications > 0 {
        told.push(format!(
            "{} PolicyChanged notification(s) reached fewer than {} subscriber(s) of tyk.cluster.notifications",
            f.unheard_notifications, f.gateways
        ));
    }
    if f.publish_errors > 0 {
        told.push(format!(
            "{} PolicyChanged notification(s) could not be published on Redis",
            f.publish_errors
        ));
    }
    if f.trigger_failures > 0 {
        told.push(format!("{} reload call(s) failed", f.trigger_failures));
    }
    if told.is_empty() {
        told.push(
            "the dashboard mock published no notification for them (started with --notify none? \
             then run with --trigger reload)"
                .to_owned(),
        );
    }
    format!(
        "{missing}, but the reload trigger of every one of them reached no gateway ({}): the \
         gateway was never told about the newest policies, so this is not a gateway hang (check \
         that every gateway subscribes to tyk.cluster.notifications on the dashboard's Redis, and \
         Redis and the dashboard's log){}",
        told.join("; "),
        f.last_error
            .as_deref()
            .map(|e| format!("; last answer seen: {e}"))
            .unwrap_or_default()
    )
}

fn hang(f: &VerdictFacts, missing: &str) -> (Verdict, String) {
    let lost = match f.last_fetch_after_last_add_s {
        Some(gap) if gap < 0.0 => format!(
            "; the last policy fetch came {:.2}s BEFORE the last policy add (lost reload triggers)",
            -gap
        ),
        Some(gap) => format!("; the last policy fetch came {gap:.2}s after the last policy add"),
        None => String::new(),
    };
    let r = &f.recheck;
    let recheck = if r.probed > 0 {
        format!(
            "; re-checked once at the end: {} still \"policy not found\"{}",
            r.not_found,
            if r.succeeded > 0 {
                format!(", {} succeeded", r.succeeded)
            } else {
                String::new()
            }
        )
    } else {
        String::new()
    };
    let unrelated = f.publish_errors + f.unheard_notifications + f.trigger_failures;
    let unheard = if unrelated == 0 {
        String::new()
    } else if f.outstanding_unheard == 0 {
        format!(
            "; {unrelated} trigger(s) went unheard, none of them for the policies still missing"
        )
    } else {
        format!(
            "; the triggers of {} of the missing policies went unheard",
            f.outstanding_unheard
        )
    };
    let last_error = f
        .last_error
        .as_deref()
        .map(|e| format!("; last answer seen: {e}"))
        .unwrap_or_default();
    let head = match &f.cause {
        StopCause::Stall(reason) => format!("{missing}: {reason}"),
        _ => format!(
            "{} of {} scenarios still waited {:.0}s after the last scheduled start",
            f.outstanding, f.started, f.deadline_s
        ),
    };
    (
        Verdict::Hang,
        format!("{head}{lost}{recheck}{unheard}{last_error}"),
    )
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
