//! The watcher: decides when the load phase ends and shows progress.
//!
//! Every tick it polls the mock's counters and the live counters, then stops the run on the
//! first of: all scenarios finished; the deadline after the last scheduled start; a stall (no
//! success and no policy fetch for the stall timeout while scenarios wait); the dashboard
//! rejecting the gateway's fetches (wrong node secret) or going silent; Ctrl-C / SIGTERM.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::client::Endpoints;
use super::record::LiveCounters;
use super::stop::{StopCause, StopSignal};
use crate::protocol::MockStats;

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(250);
/// How long the dashboard may stay silent before the run stops as an infrastructure error.
const DASHBOARD_SILENCE: Duration = Duration::from_secs(10);
/// Dashboard silence after which a due stall is blamed on the dashboard: without its fetch
/// counter a stalled gateway cannot be told from a dead mock.
const STALL_EVIDENCE_SILENCE: Duration = Duration::from_secs(2);

/// What the watcher needs to know.
pub struct WatchInput {
    /// Live counters of the scenarios.
    pub counters: Arc<LiveCounters>,
    /// The mock's admin API.
    pub endpoints: Endpoints,
    /// The mock's counters when the load started.
    pub baseline: MockStats,
    /// Scheduled scenarios.
    pub scheduled: u64,
    /// Set to the last scheduled instant when the scheduler is done.
    pub schedule_done: watch::Receiver<Option<Instant>>,
    /// Grace after the last scheduled start.
    pub deadline: Duration,
    /// Stall timeout.
    pub stall_timeout: Duration,
    /// When the load started.
    pub origin: Instant,
    /// Show progress at all.
    pub progress: bool,
    /// Dashboard URL, for messages.
    pub dashboard_url: String,
}

/// Watches until the run stops; returns the mock's last counters seen.
pub async fn watch_run(mut input: WatchInput, stop: Arc<StopSignal>) -> Option<MockStats> {
    let display = Progress::new(input.scheduled, input.progress);
    let signal = crate::shutdown::next_signal();
    tokio::pin!(signal);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_stats: Option<MockStats> = None;
    let mut last_fetch_change = input.origin;
    let mut last_success_change = input.origin;
    let mut last_successes = 0;
    let mut last_dashboard_answer = Instant::now();
    let mut dashboard_error = String::new();

    loop {
        tokio::select! {
            sig = &mut signal => {
                stop.stop(StopCause::Signal(sig));
            }
            _ = ticker.tick() => {}
            _ = stop.token().cancelled() => {}
        }
        if stop.token().is_cancelled() {
            break;
        }
        let now = Instant::now();
        match tokio::time::timeout(TICK * 4, input.endpoints.mock_stats()).await {
            Ok(Ok(stats)) => {
                if last_stats
                    .as_ref()
                    .is_some_and(|s| s.fetches != stats.fetches)
                {
                    last_fetch_change = now;
                }
                last_dashboard_answer = now;
                if let Some(reason) = node_secret_mismatch(&input.baseline, &stats) {
                    stop.stop(StopCause::Fatal(reason));
                }
                last_stats = Some(stats);
            }
            Ok(Err(e)) => dashboard_error = e,
            Err(_) => {
                dashboard_error =
                    format!("dashboard {} did not answer in time", input.dashboard_url)
            }
        }
        if now.duration_since(last_dashboard_answer) > DASHBOARD_SILENCE {
            stop.stop(StopCause::Fatal(format!(
                "the dashboard mock stopped answering for {}s during the run: {dashboard_error}",
                DASHBOARD_SILENCE.as_secs()
            )));
        }
        let successes = input.counters.succeeded.load(Ordering::Relaxed);
        if successes != last_successes {
            last_successes = successes;
            last_success_change = now;
        }
        let in_flight = input.counters.in_flight();
        let last_scheduled = *input.schedule_done.borrow_and_update();
        if let Some(last) = last_scheduled {
            if in_flight == 0 {
                stop.stop(StopCause::Completed);
            } else if now >= last + input.deadline {
                stop.stop(StopCause::Deadline);
            }
        }
        let last_progress = last_fetch_change.max(last_success_change);
        let stalled = in_flight > 0 && now.duration_since(last_progress) >= input.stall_timeout;
        if stalled && now.duration_since(last_dashboard_answer) >= STALL_EVIDENCE_SILENCE {
            stop.stop(StopCause::Fatal(format!(
                "the dashboard mock stopped answering during the run (for {:.1}s) while {in_flight} scenarios waited: {dashboard_error}",
                now.duration_since(last_dashboard_answer).as_secs_f64()
            )));
        }
        if stalled {
            let fetch = if last_fetch_change == input.origin {
                "no policy fetch since the load started".to_owned()
            } else {
                format!(
                    "the last policy fetch was {:.1}s after the load started",
                    last_fetch_change.duration_since(input.origin).as_secs_f64()
                )
            };
            stop.stop(StopCause::Stall(format!(
                "stalled: no key created and no policy fetched for {}s while {in_flight} scenarios waited; {fetch}",
                input.stall_timeout.as_secs()
            )));
        }
        display.update(&input.counters, input.origin);
    }
    display.finish(&input.counters, input.origin);
    last_stats
}

/// The gateway's fetches are all being refused: its node secret differs from the mock's.
/// Refusals before the load count when no fetch was ever accepted: such a gateway also rejects
/// the mock's signed notifications, so it may never fetch again during the load.
fn node_secret_mismatch(baseline: &MockStats, now: &MockStats) -> Option<String> {
    let since_baseline = (
        now.rejected_fetches
            .saturating_sub(baseline.rejected_fetches),
        now.fetches.saturating_sub(baseline.fetches),
    );
    let (rejected, accepted) = if now.fetches == 0 {
        (now.rejected_fetches, 0)
    } else {
        since_baseline
    };
    (rejected > 0 && accepted == 0).then(|| {
        format!(
            "the dashboard refused {rejected} policy fetch(es) from the gateway with 403 and accepted none: \
             the gateway's node_secret differs from the dashboard's --node-secret (REPRO_NODE_SECRET); make them equal"
        )
    })
}

/// A progress bar on a terminal, periodic log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(scheduled: u64, enabled: bool) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (enabled && terminal).then(|| {
            let bar = ProgressBar::new(scheduled);
            if let Ok(style) =
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} started · {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            enabled,
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn message(counters: &LiveCounters, origin: Instant) -> String {
        let elapsed = origin.elapsed().as_secs_f64().max(0.001);
        let started = counters.started.load(Ordering::Relaxed);
        format!(
            "{} succeeded · {} outstanding · {} failed · {:.0}/s",
            counters.succeeded.load(Ordering::Relaxed),
            counters.in_flight(),
            counters.failed.load(Ordering::Relaxed),
            started as f64 / elapsed
        )
    }

    fn update(&self, counters: &LiveCounters, origin: Instant) {
        if let Some(bar) = &self.bar {
            bar.set_position(counters.started.load(Ordering::Relaxed));
            bar.set_message(Self::message(counters, origin));
        } else if self.enabled
            && let Ok(mut last) = self.last_line.lock()
            && last.elapsed() >= Duration::from_secs(5)
        {
            *last = Instant::now();
            tracing::info!(
                "{:.0}s: {} started · {}",
                origin.elapsed().as_secs_f64(),
                counters.started.load(Ordering::Relaxed),
                Self::message(counters, origin)
            );
        }
    }

    fn finish(&self, counters: &LiveCounters, origin: Instant) {
        if let Some(bar) = &self.bar {
            bar.set_position(counters.started.load(Ordering::Relaxed));
            bar.finish_with_message(Self::message(counters, origin));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_fetches_without_any_accepted_one_name_the_node_secret() {
        let base = MockStats {
            fetches: 3,
            rejected_fetches: 0,
            ..Default::default()
        };
        let now = MockStats {
            fetches: 3,
            rejected_fetches: 2,
            ..Default::default()
        };
        assert!(
            node_secret_mismatch(&base, &now)
                .unwrap()
                .contains("node_secret")
        );
        let healthy = MockStats {
            fetches: 4,
            rejected_fetches: 2,
            ..Default::default()
        };
        assert_eq!(node_secret_mismatch(&base, &healthy), None);
        // Refused at startup, then silent (notifications fail its signature check too).
        let never_served = MockStats {
            rejected_fetches: 1,
            ..Default::default()
        };
        assert!(node_secret_mismatch(&never_served, &never_served).is_some());
    }
}
