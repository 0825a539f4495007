//! Which scenario-configuration fields differ between (and within) the sides: runs of
//! different scenarios are not comparable.

use super::ConfigDifference;
use crate::diff::side::Side;
use crate::summary::ScenarioConfig;

/// Field-by-field differences of two scenario configurations.
pub fn config_differences(a: &ScenarioConfig, b: &ScenarioConfig) -> Vec<ConfigDifference> {
    let mut out = Vec::new();
    let mut check = |field: &str, x: String, y: String| {
        if x != y {
            out.push(ConfigDifference {
                field: format!("config.{field}"),
                a: x,
                b: y,
            });
        }
    };
    check(
        "rate_per_s",
        a.rate_per_s.to_string(),
        b.rate_per_s.to_string(),
    );
    check(
        "duration_s",
        a.duration_s.to_string(),
        b.duration_s.to_string(),
    );
    check("trigger", a.trigger.clone(), b.trigger.clone());
    check(
        "deadline_s",
        a.deadline_s.to_string(),
        b.deadline_s.to_string(),
    );
    check(
        "stall_timeout_s",
        a.stall_timeout_s.to_string(),
        b.stall_timeout_s.to_string(),
    );
    check(
        "request_timeout_s",
        a.request_timeout_s.to_string(),
        b.request_timeout_s.to_string(),
    );
    let (x, y) = (&a.backoff, &b.backoff);
    check("backoff.name", x.name.clone(), y.name.clone());
    check(
        "backoff.initial_ms",
        x.initial_ms.to_string(),
        y.initial_ms.to_string(),
    );
    check(
        "backoff.multiplier",
        x.multiplier.to_string(),
        y.multiplier.to_string(),
    );
    check("backoff.jitter", x.jitter.to_string(), y.jitter.to_string());
    check(
        "backoff.max_interval_ms",
        x.max_interval_ms.to_string(),
        y.max_interval_ms.to_string(),
    );
    check(
        "initial_policies",
        a.initial_policies.to_string(),
        b.initial_policies.to_string(),
    );
    out
}

/// Differences between A and B, and within each side (every run must share one scenario).
pub fn side_config_differences(a: &Side, b: &Side) -> Vec<ConfigDifference> {
    let mut out = Vec::new();
    for side in [a, b] {
        if let Some(first) = side.runs.first() {
            for run in &side.runs[1..] {
                for mut d in config_differences(&first.config, &run.config) {
                    d.field = format!(
                        "{} (within {}: {})",
                        d.field, side.label, run.values.run_dir
                    );
                    out.push(d);
                }
            }
        }
    }
    if let (Some(x), Some(y)) = (a.runs.first(), b.runs.first()) {
        out.extend(config_differences(&x.config, &y.config));
    }
    out
}
