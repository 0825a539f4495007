//! `report.txt` from the run's `scenarios.jsonl`: the ten highest indexes among the SUCCESSES
//! (what the seed printed), then the unfinished scenarios by index, capped, with the exact
//! count of what the cap left out. Streams the file, keeping only what it prints.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;

use crate::summary::render::{REPORT_MAX_UNFINISHED_LINES, render_report_txt};
use crate::summary::stats::top_row_from;
use crate::summary::{Outcome, ScenarioRecord, Summary, TopRow};

/// SUCCESS lines, as the seed printed them.
pub const REPORT_SUCCESS_LINES: usize = 10;

/// The `limit` records with the highest `(index, seq)` seen so far.
struct Highest {
    limit: usize,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    records: Vec<Option<ScenarioRecord>>,
    seen: u64,
}

impl Highest {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: BinaryHeap::new(),
            records: Vec::new(),
            seen: 0,
        }
    }

    fn push(&mut self, r: ScenarioRecord) {
        self.seen += 1;
        let key = (r.index, r.seq);
        if self.heap.len() < self.limit {
            self.records.push(Some(r));
            self.heap
                .push(Reverse((key.0, key.1, self.records.len() - 1)));
        } else if let Some(Reverse(lowest)) = self.heap.peek().copied()
            && key > (lowest.0, lowest.1)
        {
            self.heap.pop();
            self.records[lowest.2] = Some(r);
            self.heap.push(Reverse((key.0, key.1, lowest.2)));
        }
    }

    /// Kept records, highest index first, and how many were seen but not kept.
    fn into_sorted(self) -> (Vec<ScenarioRecord>, u64) {
        let mut kept: Vec<ScenarioRecord> = self.records.into_iter().flatten().collect();
        kept.sort_by(|a, b| b.index.cmp(&a.index).then(b.seq.cmp(&a.seq)));
        let more = self.seen - kept.len() as u64;
        (kept, more)
    }
}

/// `report.txt` for a run: from `scenarios` when it can be read, else (a failed write) from
/// what the summary kept: its top successes and the collector's `unfinished` rows.
pub fn report_txt(scenarios: &Path, summary: &Summary, unfinished: &[TopRow]) -> String {
    match report_from_scenarios(scenarios) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!("report.txt from the summary only: {e:#}");
            let successes: Vec<TopRow> = summary
                .top
                .iter()
                .filter(|r| r.outcome == Outcome::Success.as_str())
                .cloned()
                .collect();
            let more = summary
                .scenarios
                .outstanding
                .saturating_add(summary.scenarios.failed)
                .saturating_sub(unfinished.len() as u64);
            render_report_txt(&successes, unfinished, more)
        }
    }
}

/// Renders `report.txt` from the records in `scenarios` (JSON lines).
pub fn report_from_scenarios(scenarios: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(scenarios)
        .with_context(|| format!("cannot read {}", scenarios.display()))?;
    let mut successes = Highest::new(REPORT_SUCCESS_LINES);
    let mut unfinished = Highest::new(REPORT_MAX_UNFINISHED_LINES);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", scenarios.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ScenarioRecord = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a scenario record",
                scenarios.display(),
                n + 1
            )
        })?;
        match record.outcome {
            Outcome::Success => successes.push(record),
            Outcome::Failed | Outcome::Outstanding => unfinished.push(record),
        }
    }
    let (successes, _) = successes.into_sorted();
    let (unfinished, more) = unfinished.into_sorted();
    let rows = |v: Vec<ScenarioRecord>| v.iter().map(top_row_from).collect::<Vec<_>>();
    Ok(render_report_txt(&rows(successes), &rows(unfinished), more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, index: u64, outcome: Outcome) -> ScenarioRecord {
        ScenarioRecord {
            scheduled_ms: seq as f64,
            lag_ms: 0.0,
            attempts: 3,
            last_failure_ms: Some(1_500.0),
            success_ms: (outcome == Outcome::Success).then_some(21_805.158857),
            last_error: Some("policy not found".into()),
            ..crate::summary::fixtures::record(seq, index, outcome)
        }
    }

    #[test]
    fn a_hang_run_reports_its_highest_successes_although_newer_policies_are_outstanding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenarios.jsonl");
        // 20 successes (indexes 1..=20), then 1,003 outstanding with higher indexes.
        let mut lines = Vec::new();
        for seq in 0..1_023u64 {
            let outcome = if seq < 20 {
                Outcome::Success
            } else {
                Outcome::Outstanding
            };
            lines.push(serde_json::to_string(&record(seq, seq + 1, outcome)).unwrap());
        }
        lines.reverse(); // arrival order does not matter
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let report = report_from_scenarios(&path).unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "SUCCESS 20 ==>21.805158857s");
        assert_eq!(lines[9], "SUCCESS 11 ==>21.805158857s");
        assert_eq!(lines[10], "OUTSTANDING 1023 ==>waited 1.5s");
        assert_eq!(lines.len(), 10 + 1_000 + 1);
        assert_eq!(lines.last(), Some(&"… 3 more"));
        assert_eq!(
            lines[1_009], "OUTSTANDING 24 ==>waited 1.5s",
            "the highest 1000 are kept"
        );
    }

    #[test]
    fn an_unreadable_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenarios.jsonl");
        std::fs::write(&path, "{}\n").unwrap();
        let err = format!("{:#}", report_from_scenarios(&path).unwrap_err());
        assert!(err.contains("line 1"), "{err}");
    }
}
