//! Successes no policy fetch can explain: a key created for policy `i` before any fetch had
//! served `i` policies means the gateway accepted a policy it could not know (v3.x before its
//! startup reload, or a gateway with no API for the policies' org). The scenarios are read back
//! from the run's `scenarios.jsonl`; the comparison itself is [`unserved_successes`].

use std::io::BufRead;
use std::path::Path;

use crate::protocol::FetchRecord;
use crate::summary::{Outcome, ScenarioRecord};

/// Slack for the two clocks' millisecond rounding (the mock's arrival time, the runner's).
const SLACK_MS: f64 = 5.0;

/// Successes in `scenarios` (a `scenarios.jsonl`) that came before any fetch served their
/// policy; `None` when the file cannot be read.
pub fn count_unserved(
    scenarios: &Path,
    origin_unix_ms: u64,
    fetches: &[&FetchRecord],
) -> Option<u64> {
    let file = std::fs::File::open(scenarios).ok()?;
    let mut successes = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.ok()?;
        let Ok(record) = serde_json::from_str::<ScenarioRecord>(&line) else {
            continue;
        };
        if record.outcome == Outcome::Success
            && let Some(ms) = record.success_ms
        {
            successes.push((
                record.index,
                origin_unix_ms as f64 + record.scheduled_ms + ms,
            ));
        }
    }
    let fetches: Vec<(u64, u64)> = fetches
        .iter()
        .map(|f| (f.received_at_ms, f.served))
        .collect();
    Some(unserved_successes(&successes, &fetches))
}

/// Of `successes` (policy index, Unix ms of the 200), those with no fetch `(Unix ms, served)`
/// at or before them that served at least that index.
pub fn unserved_successes(successes: &[(u64, f64)], fetches: &[(u64, u64)]) -> u64 {
    let mut fetches = fetches.to_vec();
    fetches.sort_unstable();
    // Most policies served by any fetch up to each fetch's arrival.
    let mut served_by = Vec::with_capacity(fetches.len());
    let mut most = 0;
    for (at, served) in &fetches {
        most = most.max(*served);
        served_by.push((*at as f64, most));
    }
    successes
        .iter()
        .filter(|(index, at)| {
            let seen = served_by.partition_point(|(fetched, _)| *fetched <= at + SLACK_MS);
            let most = if seen == 0 { 0 } else { served_by[seen - 1].1 };
            *index > most
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_needs_an_earlier_fetch_that_served_its_policy() {
        let fetches = [(1_000, 100), (2_000, 150), (3_000, 120)];
        let successes = [
            (90, 1_500.0),  // served by the first fetch
            (140, 1_999.0), // 150 came 1 ms later: within the slack
            (140, 1_900.0), // before any fetch served 140
            (151, 3_500.0), // no fetch ever served 151
            (150, 3_100.0), // a later, smaller fetch does not undo the earlier one
        ];
        assert_eq!(unserved_successes(&successes, &fetches), 2);
        assert_eq!(unserved_successes(&successes, &[]), 5);
        assert_eq!(unserved_successes(&[], &fetches), 0);
    }
}
