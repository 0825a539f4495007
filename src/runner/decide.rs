//! The stop rules as one pure function of what the watcher saw: no I/O, no clock. Times are
//! offsets from the start of the load, so tests write them as plain durations.
//!
//! When several rules hold at the same look, the first in this order wins: a signal (the user
//! asked), a fatal answer (a configuration error), completion (nothing left to wait for), the
//! kit falling behind its own schedule (nothing else it saw can be trusted), the dashboard
//! silent (the kit lost its evidence), the gateway silent, the deadline, a stall. A stall while
//! the dashboard has been silent for a while is the dashboard's silence: without its fetch
//! counter a stalled gateway cannot be told from a dead mock.

use std::time::Duration;

use super::stop::StopCause;
use crate::shutdown::Signal;

/// The thresholds the rules compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRules {
    /// Grace after the last scheduled start (`--deadline`).
    pub deadline: Duration,
    /// No success and no fetch for this long while scenarios wait is a stall.
    pub stall_timeout: Duration,
    /// Dashboard silent this long: stop as an infrastructure error.
    pub dashboard_silence: Duration,
    /// Dashboard silent this long when a stall is due: the stall is blamed on the dashboard.
    pub stall_evidence_silence: Duration,
    /// Gateway not answering the watcher's probe for this long while scenarios wait.
    pub unresponsive_after: Duration,
    /// Starts trailing their schedule by this much: the runner itself is saturated.
    pub saturation_behind: Duration,
}

impl StopRules {
    /// The rules of a run with this deadline and stall timeout.
    pub fn new(deadline: Duration, stall_timeout: Duration) -> Self {
        Self {
            deadline,
            stall_timeout,
            dashboard_silence: Duration::from_secs(10),
            stall_evidence_silence: Duration::from_secs(2),
            unresponsive_after: Duration::from_secs(10),
            saturation_behind: Duration::from_secs(2),
        }
    }
}

/// What the watcher knows at one look; every time is an offset from the load's start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchFacts {
    /// Now.
    pub now: Duration,
    /// Ctrl-C or SIGTERM arrived.
    pub signal: Option<Signal>,
    /// A configuration error seen in the mock's counters (e.g. the node secret).
    pub fatal: Option<String>,
    /// The scheduler is done; when its last start was scheduled.
    pub last_scheduled: Option<Duration>,
    /// Scenarios started and not finished.
    pub in_flight: u64,
    /// When the mock's fetch counter last changed (None: not since the load started).
    pub last_fetch: Option<Duration>,
    /// When the success counter last changed (None: not since the load started).
    pub last_success: Option<Duration>,
    /// How long the mock's stats have not answered.
    pub dashboard_silent_for: Duration,
    /// The mock's last error, for the reason.
    pub dashboard_error: String,
    /// Since when the gateway's liveness probe has failed without a break (None: it answers).
    pub gateway_silent_since: Option<Duration>,
    /// The probe's last error.
    pub gateway_error: String,
    /// How far the starts trail their schedule.
    pub behind_schedule: Duration,
    /// Scenarios started so far and scheduled in all, for the saturation reason.
    pub started: u64,
    /// Scheduled scenarios.
    pub scheduled: u64,
}

/// The first rule that holds, if any (see the module docs for the order).
pub fn decide_stop(f: &WatchFacts, rules: &StopRules) -> Option<StopCause> {
    if let Some(signal) = f.signal {
        return Some(StopCause::Signal(signal));
    }
    if let Some(reason) = &f.fatal {
        return Some(StopCause::Fatal(reason.clone()));
    }
    if f.last_scheduled.is_some() && f.in_flight == 0 {
        return Some(StopCause::Completed);
    }
    if f.behind_schedule >= rules.saturation_behind {
        return Some(StopCause::Saturated(format!(
            "the runner's starts trailed their schedule by {:.1}s at {:.1}s into the load ({} of {} started)",
            f.behind_schedule.as_secs_f64(),
            f.now.as_secs_f64(),
            f.started,
            f.scheduled
        )));
    }
    if f.dashboard_silent_for > rules.dashboard_silence {
        return Some(StopCause::DashboardSilent(format!(
            "the dashboard mock stopped answering for {}s during the run: {}",
            rules.dashboard_silence.as_secs(),
            f.dashboard_error
        )));
    }
    if let Some(since) = f.gateway_silent_since
        && f.in_flight > 0
        && f.now.saturating_sub(since) >= rules.unresponsive_after
    {
        return Some(StopCause::Unresponsive(format!(
            "the gateway has not answered since {:.1}s into the load ({:.1}s): {}",
            since.as_secs_f64(),
            f.now.saturating_sub(since).as_secs_f64(),
            f.gateway_error
        )));
    }
    if let Some(last) = f.last_scheduled
        && f.now >= last + rules.deadline
    {
        return Some(StopCause::Deadline);
    }
    let last_progress = f.last_fetch.max(f.last_success).unwrap_or_default();
    let stalled = f.in_flight > 0 && f.now.saturating_sub(last_progress) >= rules.stall_timeout;
    if !stalled {
        return None;
    }
    if f.dashboard_silent_for >= rules.stall_evidence_silence {
        return Some(StopCause::DashboardSilent(format!(
            "the dashboard mock stopped answering during the run (for {:.1}s) while {} scenarios waited: {}",
            f.dashboard_silent_for.as_secs_f64(),
            f.in_flight,
            f.dashboard_error
        )));
    }
    let fetch = match f.last_fetch {
        None => "no policy fetch since the load started".to_owned(),
        Some(at) => format!(
            "the last policy fetch was {:.1}s after the load started",
            at.as_secs_f64()
        ),
    };
    Some(StopCause::Stall(format!(
        "stalled: no key created and no policy fetched for {}s while {} scenarios waited; {fetch}",
        rules.stall_timeout.as_secs(),
        f.in_flight
    )))
}

/// How far `started` starts trail a schedule of `rate` per second, `elapsed` into the load.
pub fn behind_schedule(elapsed: Duration, rate: f64, started: u64, scheduled: u64) -> Duration {
    let due = ((elapsed.as_secs_f64() * rate).floor() as u64 + 1).min(scheduled);
    let missing = due.saturating_sub(started);
    Duration::from_secs_f64(missing as f64 / rate)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
