//! Test fixtures shared by the unit tests of the summary, the runner's records and the plots:
//! one [`record`] builder; each test overrides the fields it cares about with `..record(..)`.

use crate::summary::{Outcome, ScenarioRecord};

/// A scenario record for policy `p{index}`, scheduled at `seq × 2 ms`, two attempts, not
/// (yet) succeeded and without error text.
pub(crate) fn record(seq: u64, index: u64, outcome: Outcome) -> ScenarioRecord {
    ScenarioRecord {
        seq,
        index,
        policy_id: format!("p{index}"),
        scheduled_ms: seq as f64 * 2.0,
        lag_ms: 0.1,
        add_done_ms: Some(1.0),
        attempts: 2,
        last_failure_ms: Some(5.0),
        success_ms: None,
        outcome,
        last_error: None,
        gateways: Vec::new(),
    }
}
