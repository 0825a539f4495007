//! The merged run's verdict, a pure rule over the shards' verdicts and the merged counts.
//!
//! The runner's decision core (`runner::verdict::decide_verdict`) needs facts a summary does
//! not keep (stop cause, re-check answers, mock counter deltas), so the merge does not rebuild
//! them. Each shard already decided on its own share with that core; the merge combines:
//!
//! 1. some shard did not pass → the most severe shard verdict (`infra_error` > `interrupted` >
//!    `unresponsive` > `hang`): a sharded run that one shard could not measure is not a
//!    measurement. The reason names that shard and its reason, and every other shard that did
//!    not pass;
//! 2. every shard passed but the merged counts fall short (fewer keys than scheduled
//!    scenarios) → `infra_error` naming the shards that fell short;
//! 3. otherwise → `pass`: every scheduled scenario of every shard got its key.

use crate::summary::{ScenarioCounts, Verdict};

/// What the rule reads from one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardOutcome {
    /// K.
    pub index: u64,
    /// N.
    pub count: u64,
    /// Its verdict.
    pub verdict: Verdict,
    /// Its reason.
    pub reason: String,
    /// Its counts.
    pub scenarios: ScenarioCounts,
}

impl ShardOutcome {
    /// The outcome of the shard `shard` names (a run without one counts as shard 0 of 1).
    pub fn of(
        shard: Option<&crate::summary::ShardInfo>,
        verdict: Verdict,
        reason: &str,
        scenarios: &ScenarioCounts,
    ) -> Self {
        let (index, count) = shard.map_or((0, 1), |s| (s.index, s.count));
        Self {
            index,
            count,
            verdict,
            reason: reason.to_owned(),
            scenarios: scenarios.clone(),
        }
    }
}

/// Higher is more severe.
fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Hang => 1,
        Verdict::Unresponsive => 2,
        Verdict::Interrupted => 3,
        Verdict::InfraError => 4,
    }
}

/// The merged verdict and its reason (see the module doc for the rule).
pub fn merged_verdict(shards: &[ShardOutcome], merged: &ScenarioCounts) -> (Verdict, String) {
    let part = |s: &ShardOutcome| format!("shard {}/{}", s.index, s.count);
    let worst = shards
        .iter()
        .filter(|s| s.verdict != Verdict::Pass)
        .max_by_key(|s| (severity(s.verdict), std::cmp::Reverse(s.index)));
    if let Some(worst) = worst {
        let others: Vec<String> = shards
            .iter()
            .filter(|s| s.verdict != Verdict::Pass && s.index != worst.index)
            .map(|s| format!("{} {}", part(s), s.verdict.as_str()))
            .collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (also not passed: {})", others.join(", "))
        };
        return (
            worst.verdict,
            format!(
                "{} ended {}: {}{also}",
                part(worst),
                worst.verdict.as_str(),
                worst.reason
            ),
        );
    }
    if merged.succeeded < merged.scheduled {
        let short: Vec<String> = shards
            .iter()
            .filter(|s| s.scenarios.succeeded < s.scenarios.scheduled)
            .map(|s| {
                format!(
                    "{} {} of {}",
                    part(s),
                    s.scenarios.succeeded,
                    s.scenarios.scheduled
                )
            })
            .collect();
        return (
            Verdict::InfraError,
            format!(
                "every shard passed but only {} of {} scheduled scenarios got their key ({})",
                merged.succeeded,
                merged.scheduled,
                if short.is_empty() {
                    "the shards' counts do not add up".to_owned()
                } else {
                    short.join(", ")
                }
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "every one of the {} scheduled scenarios of the {} shards got its key",
            merged.scheduled,
            shards.len()
        ),
    )
}
