//! The watcher: gathers what the run looks like every tick and lets [`decide_stop`] say
//! whether it ends; it also shows progress.
//!
//! Each look polls the mock's counters and probes the gateway's control API at once (both
//! bounded), reads the live counters, and turns it all into [`WatchFacts`]. Which rule wins
//! and why is in [`super::decide`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::client::Endpoints;
use super::decide::{StopRules, WatchFacts, behind_schedule, decide_stop};
use super::gateway_checks::GatewayChecks;
use super::record::LiveCounters;
use super::stop::StopSignal;
use crate::protocol::MockStats;

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(250);

/// What the watcher needs to know.
pub struct WatchInput {
    /// Live counters of the scenarios.
    pub counters: Arc<LiveCounters>,
    /// The mock's admin API.
    pub endpoints: Endpoints,
    /// The liveness probe of each gateway measured.
    pub checks: Vec<GatewayChecks>,
    /// The mock's counters when the load started.
    pub baseline: MockStats,
    /// Scheduled scenarios.
    pub scheduled: u64,
    /// Starts per second.
    pub rate: f64,
    /// Set to the last scheduled instant when the scheduler is done.
    pub schedule_done: watch::Receiver<Option<Instant>>,
    /// Thresholds of the stop rules.
    pub rules: StopRules,
    /// When the load started.
    pub origin: Instant,
    /// Show progress at all.
    pub progress: bool,
    /// Dashboard URL, for messages.
    pub dashboard_url: String,
}

/// What the watcher hands on when the run stops.
#[derive(Debug, Clone)]
pub struct WatchEnd {
    /// The mock's last counters seen.
    pub last_stats: Option<MockStats>,
    /// The facts of the last look (`gateway_silent_since`: every gateway silent).
    pub facts: WatchFacts,
    /// Per gateway: since when it has not answered the probe (None: it answered the last
    /// look), and its last error.
    pub silent: Vec<(Option<Duration>, String)>,
}

impl WatchEnd {
    /// The watcher's account of a silent gateway, if it was silent at the end (with several
    /// gateways: all of them).
    pub fn gateway_silence(&self) -> Option<String> {
        let since = self.facts.gateway_silent_since?;
        Some(format!(
            "{} since {:.1}s into the load",
            self.facts.gateway_error,
            since.as_secs_f64()
        ))
    }

    /// The same account for gateway `lane` alone.
    pub fn lane_silence(&self, lane: usize) -> Option<String> {
        let (since, error) = self.silent.get(lane)?;
        since.map(|since| format!("{error} since {:.1}s into the load", since.as_secs_f64()))
    }
}

/// Watches until the run stops; returns what it saw last.
pub async fn watch_run(mut input: WatchInput, stop: Arc<StopSignal>) -> WatchEnd {
    let display = Progress::new(input.scheduled, input.progress);
    display.phase(&format!(
        "load: {} scenarios at {}/s",
        input.scheduled, input.rate
    ));
    let signal = crate::shutdown::next_signal();
    tokio::pin!(signal);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let origin = input.origin;
    let since = |t: Instant| t.saturating_duration_since(origin);
    let mut last_stats: Option<MockStats> = None;
    let mut last_successes = 0;
    let mut last_dashboard_answer = Instant::now();
    let mut facts = WatchFacts {
        scheduled: input.scheduled,
        ..Default::default()
    };
    let mut silent: Vec<(Option<Duration>, String)> =
        vec![(None, String::new()); input.checks.len()];

    loop {
        tokio::select! {
            sig = &mut signal => {
                // Decided at once: a signal wins over whatever a fresh look would show.
                facts.signal = Some(sig);
                if let Some(cause) = decide_stop(&facts, &input.rules) {
                    stop.stop(cause);
                }
            }
            _ = ticker.tick() => {}
            _ = stop.token().cancelled() => {}
        }
        if stop.token().is_cancelled() {
            break;
        }
        let now = Instant::now();
        facts.now = since(now);
        let (stats, alive) = tokio::join!(
            tokio::time::timeout(TICK * 4, input.endpoints.stats()),
            futures::future::join_all(input.checks.iter().map(|c| c.reachable()))
        );
        match stats {
            Ok(Ok(stats)) => {
                if last_stats
                    .as_ref()
                    .is_some_and(|s| s.fetches != stats.fetches)
                {
                    facts.last_fetch = Some(facts.now);
                }
                last_dashboard_answer = now;
                facts.fatal = node_secret_mismatch(&input.baseline, &stats);
                last_stats = Some(stats);
            }
            Ok(Err(e)) => facts.dashboard_error = e.to_string(),
            Err(_) => {
                facts.dashboard_error =
                    format!("dashboard {} did not answer in time", input.dashboard_url)
            }
        }
        facts.dashboard_silent_for = now.saturating_duration_since(last_dashboard_answer);
        for ((since, error), alive) in silent.iter_mut().zip(alive) {
            match alive {
                Ok(()) => *since = None,
                Err(e) => {
                    since.get_or_insert(facts.now);
                    *error = e.to_string();
                }
            }
        }
        // The run stops for silence only when no gateway answers; one silent gateway of a
        // fleet is that gateway's verdict, while the others go on.
        facts.gateway_silent_since = silent
            .iter()
            .map(|(since, _)| *since)
            .collect::<Option<Vec<Duration>>>()
            .and_then(|all| all.into_iter().max());
        if let Some((_, error)) = silent.iter().find(|(since, _)| since.is_some()) {
            facts.gateway_error = error.clone();
        }
        let successes = input.counters.succeeded.load(Ordering::Relaxed);
        if successes != last_successes {
            last_successes = successes;
            facts.last_success = Some(facts.now);
        }
        facts.in_flight = input.counters.in_flight();
        facts.started = input.counters.started.load(Ordering::Relaxed);
        facts.last_scheduled = input.schedule_done.borrow_and_update().map(since);
        facts.behind_schedule = if facts.last_scheduled.is_some() {
            Duration::ZERO
        } else {
            behind_schedule(facts.now, input.rate, facts.started, input.scheduled)
        };
        if let Some(cause) = decide_stop(&facts, &input.rules) {
            stop.stop(cause);
            break;
        }
        display.update(&input.counters, &facts, &input.rules);
    }
    display.finish(&input.counters, &facts, &input.rules);
    WatchEnd {
        last_stats,
        facts,
        silent,
    }
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

/// Prints a phase line on stderr (`phase: …`) unless progress is off.
pub fn phase(enabled: bool, text: &str) {
    if enabled {
        eprintln!("phase: {text}");
    }
}

/// A progress bar on a terminal, a plain line every [`LINE_EVERY`] otherwise. Rates are over the
/// last interval, not averages since the start (a run whose load is over shows 0/s starts, not
/// a slowly falling average).
struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    state: std::sync::Mutex<ProgressState>,
}

/// Plain progress lines come this often.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// The bar's rates are over at least this long.
const RATE_WINDOW: Duration = Duration::from_secs(1);

struct ProgressState {
    last_line: Instant,
    /// When, and the started / succeeded counts, at the start of the current rate window.
    window: (Instant, u64, u64),
    /// The rates of the last complete window: starts/s, successes/s.
    rates: (f64, f64),
    waiting_shown: bool,
}

impl Progress {
    fn new(scheduled: u64, enabled: bool) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (enabled && terminal).then(|| {
            let bar = ProgressBar::new(scheduled);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed:>4} {prefix} [{bar:25}] {pos}/{len} started · {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix("load");
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            enabled,
            state: std::sync::Mutex::new(ProgressState {
                last_line: now,
                window: (now, 0, 0),
                rates: (0.0, 0.0),
                waiting_shown: false,
            }),
        }
    }

    fn phase(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("phase: {text}")),
            None => phase(self.enabled, text),
        }
    }

    /// `succeeded · outstanding · failed · rates · deadline in · stall verdict in`.
    fn message(
        counters: &LiveCounters,
        facts: &WatchFacts,
        rules: &StopRules,
        rates: (f64, f64),
    ) -> String {
        let mut msg = format!(
            "{} succeeded · {} outstanding · {} failed · now {:.0} starts/s, {:.0} keys/s",
            counters.succeeded.load(Ordering::Relaxed),
            counters.in_flight(),
            counters.failed.load(Ordering::Relaxed),
            rates.0,
            rates.1
        );
        match facts.last_scheduled {
            Some(last) => {
                let left = (last + rules.deadline).saturating_sub(facts.now);
                msg.push_str(&format!(" · deadline in {:.0}s", left.as_secs_f64()));
            }
            None => msg.push_str(&format!(
                " · deadline {:.0}s after the last start",
                rules.deadline.as_secs_f64()
            )),
        }
        if counters.in_flight() > 0 {
            let last_progress = facts.last_fetch.max(facts.last_success).unwrap_or_default();
            let quiet = facts.now.saturating_sub(last_progress);
            let left = rules.stall_timeout.saturating_sub(quiet);
            msg.push_str(&format!(" · stall verdict in {:.0}s", left.as_secs_f64()));
        }
        msg
    }

    fn update(&self, counters: &LiveCounters, facts: &WatchFacts, rules: &StopRules) {
        if !self.enabled {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        let started = counters.started.load(Ordering::Relaxed);
        let succeeded = counters.succeeded.load(Ordering::Relaxed);
        let (since, s0, k0) = state.window;
        let window = now.saturating_duration_since(since);
        let min_window = if self.bar.is_some() {
            RATE_WINDOW
        } else {
            LINE_EVERY
        };
        if window >= min_window {
            let secs = window.as_secs_f64();
            state.rates = (
                started.saturating_sub(s0) as f64 / secs,
                succeeded.saturating_sub(k0) as f64 / secs,
            );
            state.window = (now, started, succeeded);
        }
        if facts.last_scheduled.is_some() && !state.waiting_shown {
            state.waiting_shown = true;
            let text = format!("waiting for {} outstanding", counters.in_flight());
            match &self.bar {
                Some(bar) => {
                    bar.set_prefix("waiting");
                    bar.println(format!("phase: {text}"));
                }
                None => phase(true, &text),
            }
        }
        let msg = Self::message(counters, facts, rules, state.rates);
        if let Some(bar) = &self.bar {
            bar.set_position(started);
            bar.set_message(msg);
        } else if now.saturating_duration_since(state.last_line) >= LINE_EVERY {
            state.last_line = now;
            eprintln!(
                "progress: {:.0}s: {started} of {} started · {msg}",
                facts.now.as_secs_f64(),
                facts.scheduled
            );
        }
    }

    fn finish(&self, counters: &LiveCounters, facts: &WatchFacts, rules: &StopRules) {
        if let Some(bar) = &self.bar {
            let rates = self.state.lock().map(|s| s.rates).unwrap_or((0.0, 0.0));
            bar.set_position(counters.started.load(Ordering::Relaxed));
            bar.finish_with_message(Self::message(counters, facts, rules, rates));
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
