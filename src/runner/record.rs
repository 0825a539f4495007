//! Recording: live counters the watcher reads, the per-second timeline, and the collector that
//! streams every finished scenario to `scenarios.jsonl` while keeping only compact state.
//!
//! Memory stays bounded for large runs: the collector keeps a histogram, the 10 highest
//! indexes, at most `MAX_UNFINISHED_ROWS` unfinished rows and a thinned set of plot points.
//! Attempt outcomes by class live in [`attempts`]; `report.txt` is rendered by [`report`].

mod attempts;
pub mod fleet;
mod report;

pub use attempts::{AttemptKind, AttemptRecorder, NEAR_RELOAD_WINDOW, fill_derived};
pub use report::{report_from_scenarios, report_txt};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::summary::{Outcome, ScenarioRecord, TopRow};

/// Unfinished (failed/outstanding) rows kept for `report.txt`; the rest are only counted.
pub const MAX_UNFINISHED_ROWS: usize = 1000;
/// Plot points kept; larger runs are thinned evenly by schedule position.
pub const MAX_PLOT_POINTS: u64 = 20_000;

/// Counters updated by scenario tasks and read by the watcher and the progress display.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Scenarios started.
    pub started: AtomicU64,
    /// Scenarios whose key was created.
    pub succeeded: AtomicU64,
    /// Scenarios that failed for good.
    pub failed: AtomicU64,
    /// Key-creation attempts.
    pub attempts: AtomicU64,
    /// Policy adds that succeeded.
    pub adds: AtomicU64,
    /// Reload calls the runner made (trigger `reload`/`group`).
    pub triggers: AtomicU64,
}

impl LiveCounters {
    /// Started but not finished.
    pub fn in_flight(&self) -> u64 {
        let started = self.started.load(Ordering::Relaxed);
        let done = self.succeeded.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        started.saturating_sub(done)
    }
}

/// Per-second event counts from the start of the load (the last slot absorbs overflow).
#[derive(Debug)]
pub struct Timeline {
    origin: Instant,
    started: Vec<AtomicU64>,
    succeeded: Vec<AtomicU64>,
    finished: Vec<AtomicU64>,
    attempts: Vec<AtomicU64>,
    /// Attempt outcomes by class, per second.
    pub outcomes: AttemptRecorder,
}

impl Timeline {
    /// A timeline of `seconds` slots starting at `origin`.
    pub fn new(origin: Instant, seconds: usize) -> Self {
        let slots = || (0..seconds.max(1)).map(|_| AtomicU64::new(0)).collect();
        Self {
            origin,
            started: slots(),
            succeeded: slots(),
            finished: slots(),
            attempts: slots(),
            outcomes: AttemptRecorder::new(origin, seconds),
        }
    }

    fn slot(&self, at: Instant) -> usize {
        let second = at.saturating_duration_since(self.origin).as_secs() as usize;
        second.min(self.started.len() - 1)
    }

    /// A scenario started at `at`.
    pub fn record_start(&self, at: Instant) {
        self.started[self.slot(at)].fetch_add(1, Ordering::Relaxed);
    }

    /// A key-creation attempt at `at`.
    pub fn record_attempt(&self, at: Instant) {
        self.attempts[self.slot(at)].fetch_add(1, Ordering::Relaxed);
    }

    /// A scenario finished at `at` (success or failure).
    pub fn record_finish(&self, at: Instant, success: bool) {
        let slot = self.slot(at);
        self.finished[slot].fetch_add(1, Ordering::Relaxed);
        if success {
            self.succeeded[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The series up to `seconds` (inclusive of a partial last second), with fetches per second.
    pub fn samples(&self, seconds: usize, fetches: &[u64]) -> Vec<crate::summary::SecondSample> {
        let n = seconds.clamp(1, self.started.len());
        let mut in_flight = 0u64;
        (0..n)
            .map(|i| {
                let started = self.started[i].load(Ordering::Relaxed);
                let finished = self.finished[i].load(Ordering::Relaxed);
                in_flight = (in_flight + started).saturating_sub(finished);
                crate::summary::SecondSample {
                    second: i as u64,
                    started,
                    succeeded: self.succeeded[i].load(Ordering::Relaxed),
                    in_flight,
                    attempts: self.attempts[i].load(Ordering::Relaxed),
                    fetches: fetches.get(i).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

/// What the collector keeps after every record was streamed out.
#[derive(Debug)]
pub struct Collected {
    /// Latencies of successes, microseconds.
    pub latency_us: Histogram<u64>,
    /// Scheduled starts (µs since the load started) of the scenarios that did not succeed:
    /// censored at their wait in the time-to-usable statistics.
    pub censored_scheduled_us: Histogram<u64>,
    /// Count per outcome.
    pub succeeded: u64,
    /// Failed scenarios.
    pub failed: u64,
    /// Outstanding scenarios.
    pub outstanding: u64,
    /// The highest indexes, best first.
    pub top: Vec<ScenarioRecord>,
    /// Unfinished rows for the report (capped).
    pub unfinished: Vec<TopRow>,
    /// Unfinished scenarios beyond the cap.
    pub unfinished_dropped: u64,
    /// Latest add completion, ms since the load started.
    pub last_add_ms: Option<f64>,
    /// Most frequent failure message and its count.
    pub failure_examples: Vec<String>,
    /// Thinned records for plots.
    pub plot_points: Vec<ScenarioRecord>,
    /// Error writing scenarios.jsonl, if any (the run still ends with a summary).
    pub write_error: Option<String>,
}

/// Receives finished scenarios and folds them into [`Collected`], streaming each as a line.
pub struct Collector<W: Write> {
    out: W,
    plot_stride: u64,
    state: Collected,
    top_heap: BinaryHeap<Reverse<(u64, u64)>>,
    top_records: std::collections::HashMap<u64, ScenarioRecord>,
}

impl<W: Write> Collector<W> {
    /// A collector writing JSON lines to `out`, sized for `scheduled` scenarios.
    pub fn new(out: W, scheduled: u64) -> Self {
        Self {
            out,
            plot_stride: scheduled.div_ceil(MAX_PLOT_POINTS).max(1),
            state: Collected {
                latency_us: crate::summary::histogram::new_latency_histogram(),
                censored_scheduled_us: crate::summary::histogram::new_latency_histogram(),
                succeeded: 0,
                failed: 0,
                outstanding: 0,
                top: Vec::new(),
                unfinished: Vec::new(),
                unfinished_dropped: 0,
                last_add_ms: None,
                failure_examples: Vec::new(),
                plot_points: Vec::new(),
                write_error: None,
            },
            top_heap: BinaryHeap::new(),
            top_records: std::collections::HashMap::new(),
        }
    }

    /// Folds one finished scenario in.
    pub fn push(&mut self, record: ScenarioRecord) {
        if self.state.write_error.is_none() {
            let line = serde_json::to_string(&record).map_err(|e| e.to_string());
            let written = line.and_then(|l| writeln!(self.out, "{l}").map_err(|e| e.to_string()));
            if let Err(e) = written {
                self.state.write_error = Some(e);
            }
        }
        if let Some(add) = record.add_done_ms {
            let at = record.scheduled_ms + add;
            self.state.last_add_ms = Some(self.state.last_add_ms.map_or(at, |m: f64| m.max(at)));
        }
        match record.outcome {
            Outcome::Success => {
                self.state.succeeded += 1;
                let us = (record.success_ms.unwrap_or(0.0) * 1000.0).round().max(1.0) as u64;
                let _ = self
                    .state
                    .latency_us
                    .record(us.min(self.state.latency_us.high()));
            }
            Outcome::Failed | Outcome::Outstanding => {
                let h = &mut self.state.censored_scheduled_us;
                let us = (record.scheduled_ms * 1000.0).round().max(1.0) as u64;
                let _ = h.record(us.min(h.high()));
                if record.outcome == Outcome::Failed {
                    self.state.failed += 1;
                    if let Some(e) = &record.last_error
                        && self.state.failure_examples.len() < 3
                        && !self.state.failure_examples.contains(e)
                    {
                        self.state.failure_examples.push(e.clone());
                    }
                } else {
                    self.state.outstanding += 1;
                }
                if self.state.unfinished.len() < MAX_UNFINISHED_ROWS {
                    self.state.unfinished.push(top_row(&record));
                } else {
                    self.state.unfinished_dropped += 1;
                }
            }
        }
        if record.seq.is_multiple_of(self.plot_stride) {
            self.state.plot_points.push(record.clone());
        }
        self.keep_if_top(record);
    }

    fn keep_if_top(&mut self, record: ScenarioRecord) {
        const TOP: usize = 10;
        if record.index == 0 {
            return;
        }
        let key = (record.index, record.seq);
        if self.top_heap.len() < TOP {
            self.top_heap.push(Reverse(key));
            self.top_records.insert(record.seq, record);
        } else if let Some(Reverse(lowest)) = self.top_heap.peek().copied()
            && key > lowest
        {
            self.top_heap.pop();
            self.top_records.remove(&lowest.1);
            self.top_heap.push(Reverse(key));
            self.top_records.insert(record.seq, record);
        }
    }

    /// Flushes the stream and returns what was kept.
    pub fn finish(mut self) -> (Collected, W) {
        if let Err(e) = self.out.flush()
            && self.state.write_error.is_none()
        {
            self.state.write_error = Some(e.to_string());
        }
        let mut top: Vec<ScenarioRecord> = self.top_records.into_values().collect();
        top.sort_by(|a, b| b.index.cmp(&a.index).then(a.seq.cmp(&b.seq)));
        self.state.top = top;
        self.state
            .unfinished
            .sort_by_key(|r| std::cmp::Reverse(r.index));
        (self.state, self.out)
    }
}

/// The report/summary row of a scenario (one definition, in the summary module).
pub use crate::summary::stats::top_row_from as top_row;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, index: u64, outcome: Outcome, success_ms: Option<f64>) -> ScenarioRecord {
        ScenarioRecord {
            success_ms,
            ..crate::summary::fixtures::record(seq, index, outcome)
        }
    }

    #[test]
    fn collector_counts_outcomes_keeps_the_ten_highest_indexes_and_streams_every_line() {
        let mut c = Collector::new(Vec::new(), 30);
        for seq in 0..30 {
            let outcome = if seq % 10 == 9 {
                Outcome::Outstanding
            } else {
                Outcome::Success
            };
            let ms = (outcome == Outcome::Success).then_some(100.0 + seq as f64);
            // indexes arrive out of order, as they do from concurrent tasks
            c.push(record(seq, 1000 + (seq * 7) % 30, outcome, ms));
        }
        let (kept, out) = c.finish();
        assert_eq!(kept.succeeded, 27);
        assert_eq!(kept.outstanding, 3);
        assert_eq!(kept.latency_us.len(), 27);
        let indexes: Vec<u64> = kept.top.iter().map(|r| r.index).collect();
        assert_eq!(indexes, (1020..1030).rev().collect::<Vec<_>>());
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 30);
        assert_eq!(kept.last_add_ms, Some(29.0 * 2.0 + 1.0));
    }

    #[test]
    fn timeline_in_flight_is_started_minus_finished_carried_over_seconds() {
        let origin = Instant::now();
        let t = Timeline::new(origin, 4);
        let s = std::time::Duration::from_secs(1);
        t.record_start(origin);
        t.record_start(origin);
        t.record_start(origin + s);
        t.record_finish(origin + s, true);
        t.record_finish(origin + s * 2, false);
        t.record_start(origin + s * 100); // clamps into the last slot
        let samples = t.samples(4, &[3, 0, 1]);
        let in_flight: Vec<u64> = samples.iter().map(|s| s.in_flight).collect();
        assert_eq!(in_flight, vec![2, 2, 1, 2]);
        assert_eq!(samples[0].fetches, 3);
        assert_eq!(samples[1].succeeded, 1);
    }
}
