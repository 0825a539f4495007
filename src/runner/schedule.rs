//! The open-loop schedule: scenario i starts at `origin + i / rate`, an absolute instant, so a
//! slow scenario never delays the next start and waits do not drift (oha's model). The lag of
//! each start behind its instant is recorded: when it grows, the runner is the bottleneck.
//! Uses tokio's clock so tests can run it on paused time.
//!
//! In a run the schedule gets its own OS thread and current-thread runtime
//! ([`run_schedule_on_own_thread`]): it only sleeps and hands each start to the main runtime, so
//! its wake-ups never queue behind scenario tasks on busy workers, and the kernel favours a
//! thread that sleeps almost all the time when it wakes (what keeps starts on time when a
//! gateway burns both cores).

use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

/// What the scheduler did.
#[derive(Debug)]
pub struct ScheduleReport {
    /// Scenarios started.
    pub started: u64,
    /// Start lag behind schedule, microseconds.
    pub lag_us: Histogram<u64>,
    /// Starts later than the threshold.
    pub late_starts: u64,
    /// Scheduled instant of the last start.
    pub last_scheduled: Option<Instant>,
}

/// The scheduled instant of scenario `seq`.
pub fn scheduled_at(origin: Instant, rate: f64, seq: u64) -> Instant {
    origin + Duration::from_secs_f64(seq as f64 / rate)
}

/// Starts `count` scenarios at `rate` per second from `origin`, calling `start(seq, scheduled,
/// lag)` for each, until done or `cancel` fires.
pub async fn run_schedule(
    origin: Instant,
    rate: f64,
    count: u64,
    late_threshold: Duration,
    cancel: &CancellationToken,
    mut start: impl FnMut(u64, Instant, Duration),
) -> ScheduleReport {
    let mut report = ScheduleReport {
        started: 0,
        lag_us: crate::summary::histogram::new_latency_histogram(),
        late_starts: 0,
        last_scheduled: None,
    };
    for seq in 0..count {
        let at = scheduled_at(origin, rate, seq);
        if cancel.is_cancelled() {
            break;
        }
        if at > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = cancel.cancelled() => break,
            }
        }
        let lag = Instant::now().saturating_duration_since(at);
        let _ = report
            .lag_us
            .record((lag.as_micros() as u64).min(report.lag_us.high()));
        if lag > late_threshold {
            report.late_starts += 1;
        }
        start(seq, at, lag);
        report.started += 1;
        report.last_scheduled = Some(at);
        // Let spawned scenarios run between starts due at the same instant.
        if seq % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    report
}

/// [`run_schedule`] on a dedicated thread. `start` runs on that thread inside the CALLER's
/// runtime context, so what it spawns (`tokio::spawn`, a `TaskTracker`) lands on the caller's
/// runtime. `origin` and the returned instants are the caller's clock (do not use on paused
/// time: the dedicated runtime has a real clock).
pub async fn run_schedule_on_own_thread(
    origin: Instant,
    rate: f64,
    count: u64,
    late_threshold: Duration,
    cancel: CancellationToken,
    mut start: impl FnMut(u64, Instant, Duration) + Send + 'static,
) -> anyhow::Result<ScheduleReport> {
    let caller = tokio::runtime::Handle::current();
    let (report_tx, report_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("repro-schedule".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = report_tx.send(Err(anyhow::anyhow!("schedule runtime: {e}")));
                    return;
                }
            };
            let report = runtime.block_on(run_schedule(
                origin,
                rate,
                count,
                late_threshold,
                &cancel,
                |seq, at, lag| {
                    let _caller = caller.enter();
                    start(seq, at, lag);
                },
            ));
            let _ = report_tx.send(Ok(report));
        })
        .map_err(|e| anyhow::anyhow!("cannot start the schedule thread: {e}"))?;
    report_rx
        .await
        .map_err(|_| anyhow::anyhow!("the schedule thread ended without a report"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn starts_follow_absolute_instants_without_drift() {
        let origin = Instant::now();
        let cancel = CancellationToken::new();
        let mut seen = Vec::new();
        let report = run_schedule(
            origin,
            4.0,
            9,
            Duration::from_millis(5),
            &cancel,
            |seq, at, _| {
                seen.push((seq, at.duration_since(origin)));
            },
        )
        .await;
        assert_eq!(report.started, 9);
        assert_eq!(report.late_starts, 0);
        let expected: Vec<(u64, Duration)> = (0..9)
            .map(|i| (i, Duration::from_millis(250 * i)))
            .collect();
        assert_eq!(seen, expected);
        assert!(origin.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_further_starts() {
        let origin = Instant::now();
        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            canceller.cancel();
        });
        let report = run_schedule(
            origin,
            10.0,
            1000,
            Duration::from_millis(5),
            &cancel,
            |_, _, _| {},
        )
        .await;
        assert_eq!(report.started, 12, "starts at 0, 0.1 … 1.1 s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_scheduler_counts_late_starts() {
        let origin = Instant::now() - Duration::from_secs(1);
        let cancel = CancellationToken::new();
        let report = run_schedule(
            origin,
            10.0,
            20,
            Duration::from_millis(5),
            &cancel,
            |_, _, _| {},
        )
        .await;
        // The first 10 instants were already a second or less in the past.
        assert_eq!(report.late_starts, 10);
        assert!(report.lag_us.max() >= 900_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_own_thread_schedule_spawns_onto_the_callers_runtime() {
        let origin = Instant::now();
        let caller = tokio::runtime::Handle::current().id();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let report = run_schedule_on_own_thread(
            origin,
            200.0,
            20,
            Duration::from_secs(5),
            CancellationToken::new(),
            move |seq, _, _| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send((seq, tokio::runtime::Handle::current().id()));
                });
            },
        )
        .await
        .unwrap();
        assert_eq!(report.started, 20);
        let mut seen = Vec::new();
        while let Some((seq, runtime)) = rx.recv().await {
            assert_eq!(
                runtime, caller,
                "scenario {seq} ran on the caller's runtime"
            );
            seen.push(seq);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert!(
            origin.elapsed() >= Duration::from_millis(95),
            "19 gaps of 5 ms"
        );
    }
}
