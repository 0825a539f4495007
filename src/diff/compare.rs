//! The comparison: a pure function of two sides and the options (critcmp style).
//!
//! Runs are the unit. Each metric is reduced to one value per usable run (`pass` or `hang`);
//! sides are compared with Mann-Whitney U, a bootstrap CI of the median difference, and hang
//! counts with Fisher's exact test. The CI verdict rule is in [`decide_verdict`].

use schemars::JsonSchema;
use serde::Serialize;

use super::side::{Side, SideKind};
use super::stats::{self, MIN_RUNS_FOR_TEST, PMethod};
use crate::summary::set::PerRunValues;
use crate::summary::{ScenarioConfig, Verdict};

/// Knobs of the comparison.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompareOptions {
    /// Significance level of every test.
    pub alpha: f64,
    /// Smallest relative change of a primary metric that counts, percent.
    pub min_effect_pct: f64,
    /// Bootstrap resamples for the confidence intervals.
    pub bootstrap: u32,
    /// Seed of the bootstrap RNG (the output is deterministic).
    pub seed: u64,
    /// Compare even though the scenario configurations differ.
    pub force: bool,
}

/// The CI verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CiVerdict {
    /// B is significantly and materially better on a primary metric or on hangs; none worse.
    Improved,
    /// B is significantly and materially worse on a primary metric or on hangs.
    Regressed,
    /// Enough runs, and no primary metric moved significantly by the minimum effect.
    NoChange,
    /// Too few usable runs to tell.
    Inconclusive,
}

impl CiVerdict {
    /// The name used in reports (`no change` with a space, as users read it).
    pub fn as_str(self) -> &'static str {
        match self {
            CiVerdict::Improved => "improved",
            CiVerdict::Regressed => "regressed",
            CiVerdict::NoChange => "no change",
            CiVerdict::Inconclusive => "inconclusive",
        }
    }

    /// The process exit code documented in `--help`.
    pub fn exit_code(self) -> u8 {
        match self {
            CiVerdict::Improved | CiVerdict::NoChange => 0,
            CiVerdict::Regressed => 1,
            CiVerdict::Inconclusive => 3,
        }
    }
}

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency.
    LatencyP50,
    /// 90th percentile latency.
    LatencyP90,
    /// 99th percentile latency (primary).
    LatencyP99,
    /// Largest latency (primary).
    LatencyMax,
    /// Share of scheduled scenarios still outstanding at the end (primary).
    OutstandingShare,
    /// Policy-list fetches (reloads) answered.
    PolicyFetches,
    /// Reload triggers per fetch.
    CoalescingRatio,
    /// The runner's own start lag p99 (a health check of the measurement).
    SchedulerLagP99,
}

impl Metric {
    /// All metrics in report order.
    pub const ALL: [Metric; 8] = [
        Metric::LatencyP50,
        Metric::LatencyP90,
        Metric::LatencyP99,
        Metric::LatencyMax,
        Metric::OutstandingShare,
        Metric::PolicyFetches,
        Metric::CoalescingRatio,
        Metric::SchedulerLagP99,
    ];

    /// Human name.
    pub fn title(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "latency p50",
            Metric::LatencyP90 => "latency p90",
            Metric::LatencyP99 => "latency p99",
            Metric::LatencyMax => "latency max",
            Metric::OutstandingShare => "outstanding share",
            Metric::PolicyFetches => "policy fetches",
            Metric::CoalescingRatio => "coalescing ratio",
            Metric::SchedulerLagP99 => "scheduler lag p99",
        }
    }

    /// Unit of the values (`ms`, `%`, or empty for counts and ratios).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::OutstandingShare => "%",
            Metric::PolicyFetches | Metric::CoalescingRatio => "",
            _ => "ms",
        }
    }

    /// True for the metrics that decide the CI verdict (lower is better for all of them).
    pub fn is_primary(self) -> bool {
        matches!(
            self,
            Metric::LatencyP99 | Metric::LatencyMax | Metric::OutstandingShare
        )
    }

    /// The metric's value in one run, in display units.
    fn value(self, v: &PerRunValues) -> Option<f64> {
        match self {
            Metric::LatencyP50 => v.p50_ms,
            Metric::LatencyP90 => v.p90_ms,
            Metric::LatencyP99 => v.p99_ms,
            Metric::LatencyMax => v.max_ms,
            Metric::OutstandingShare => v.outstanding_share.map(|s| s * 100.0),
            Metric::PolicyFetches => Some(v.policy_fetches as f64),
            Metric::CoalescingRatio => v.coalescing_ratio,
            Metric::SchedulerLagP99 => Some(v.lag_p99_ms),
        }
        .filter(|x| x.is_finite())
    }
}

/// What the report says about a side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideInfo {
    /// The runs' label.
    pub label: String,
    /// The path given.
    pub source: String,
    /// The form of that path.
    pub kind: SideKind,
    /// Gateway version(s) of the runs.
    pub gateway: String,
    /// Runs found.
    pub runs: usize,
    /// Runs that measured something (`pass` or `hang`).
    pub usable_runs: usize,
    /// Runs per verdict.
    pub verdicts: VerdictCounts,
    /// The per-run values compared.
    pub per_run: Vec<PerRunValues>,
}

/// Runs per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VerdictCounts {
    /// Runs that passed.
    pub pass: u64,
    /// Runs that hung.
    pub hang: u64,
    /// Runs that could not measure.
    pub infra_error: u64,
    /// Runs stopped by a signal.
    pub interrupted: u64,
}

/// One metric, A against B.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MetricComparison {
    /// Which metric.
    pub metric: Metric,
    /// Its unit (`ms`, `%`, or empty).
    pub unit: String,
    /// Whether it decides the CI verdict.
    pub primary: bool,
    /// Runs of A with a value.
    pub a_n: usize,
    /// Median over A's runs.
    pub a_median: Option<f64>,
    /// Runs of B with a value.
    pub b_n: usize,
    /// Median over B's runs.
    pub b_median: Option<f64>,
    /// `(B − A) / A` in percent; null when A is 0 (see `exceeds_min_effect`) or missing.
    pub delta_pct: Option<f64>,
    /// Whether |B − A| is at least `min_effect_pct` of A (true when A is 0 and B is not).
    pub exceeds_min_effect: bool,
    /// Two-sided Mann-Whitney p-value; null below 4 runs per side.
    pub p_value: Option<f64>,
    /// How the p-value was obtained.
    pub method: Option<PMethod>,
    /// Bootstrap CI of `median(B) − median(A)` at `1 − alpha`, in the metric's unit.
    pub ci: Option<[f64; 2]>,
    /// `p_value < alpha`.
    pub significant: bool,
}

/// The hang → pass question: Fisher's exact test on hang counts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HangComparison {
    /// Usable runs of A that hung, and usable runs of A.
    pub a_hangs: [u64; 2],
    /// Usable runs of B that hung, and usable runs of B.
    pub b_hangs: [u64; 2],
    /// Two-sided Fisher exact p-value.
    pub p_value: f64,
    /// `p_value < alpha`.
    pub significant: bool,
}

/// A scenario-configuration field that differs between the sides.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ConfigDifference {
    /// Field name, as in `summary.json` (`config.rate_per_s`).
    pub field: String,
    /// A's value.
    pub a: String,
    /// B's value.
    pub b: String,
}

/// The whole result: what `--json` writes and every renderer reads.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    /// The baseline.
    pub a: SideInfo,
    /// The candidate.
    pub b: SideInfo,
    /// The options used.
    pub options: CompareOptions,
    /// Config fields that differ (non-empty only with `--force`, which the report states).
    pub config_differences: Vec<ConfigDifference>,
    /// One entry per metric, in report order.
    pub metrics: Vec<MetricComparison>,
    /// Hang counts compared.
    pub hangs: HangComparison,
    /// The CI verdict.
    pub verdict: CiVerdict,
    /// Why, in a sentence or two with the evidence.
    pub reason: String,
    /// Small samples, excluded runs, mixed labels, forced comparisons.
    pub warnings: Vec<String>,
}

/// Compares `b` (candidate) against `a` (baseline).
pub fn compare(a: &Side, b: &Side, opts: &CompareOptions) -> Comparison {
    let config_differences = side_config_differences(a, b);
    let metrics: Vec<MetricComparison> = Metric::ALL
        .iter()
        .enumerate()
        .map(|(i, &m)| compare_metric(m, a, b, opts, i as u64))
        .collect();
    let hangs = compare_hangs(a, b, opts.alpha);
    let (a_info, b_info) = (side_info(a), side_info(b));
    let mut warnings = collect_warnings(a, b, &a_info, &b_info);
    if !config_differences.is_empty() {
        let fields: Vec<&str> = config_differences
            .iter()
            .map(|d| d.field.as_str())
            .collect();
        warnings.insert(
            0,
            format!(
                "compared with --force although the scenarios differ in {}",
                fields.join(", ")
            ),
        );
    }
    let (verdict, reason) = decide_verdict(&a_info, &b_info, &metrics, &hangs, opts);
    Comparison {
        a: a_info,
        b: b_info,
        options: opts.clone(),
        config_differences,
        metrics,
        hangs,
        verdict,
        reason,
        warnings,
    }
}

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

fn side_info(side: &Side) -> SideInfo {
    let mut verdicts = VerdictCounts::default();
    for r in &side.runs {
        *match r.values.verdict {
            Verdict::Pass => &mut verdicts.pass,
            // Counted with hangs until the diff learns it as its own outcome (issue 14).
            Verdict::Hang | Verdict::Unresponsive => &mut verdicts.hang,
            Verdict::InfraError => &mut verdicts.infra_error,
            Verdict::Interrupted => &mut verdicts.interrupted,
        } += 1;
    }
    SideInfo {
        label: side.label.clone(),
        source: side.source.clone(),
        kind: side.kind,
        gateway: side.gateway_versions(),
        runs: side.runs.len(),
        usable_runs: side.usable_runs().count(),
        verdicts,
        per_run: side.runs.iter().map(|r| r.values.clone()).collect(),
    }
}

fn compare_metric(
    metric: Metric,
    a: &Side,
    b: &Side,
    opts: &CompareOptions,
    index: u64,
) -> MetricComparison {
    let values = |s: &Side| -> Vec<f64> {
        s.usable_runs()
            .filter_map(|r| metric.value(&r.values))
            .collect()
    };
    let (xa, xb) = (values(a), values(b));
    let (ma, mb) = (stats::median(&xa), stats::median(&xb));
    let enough = xa.len() >= MIN_RUNS_FOR_TEST && xb.len() >= MIN_RUNS_FOR_TEST;
    let test = enough.then(|| stats::mann_whitney_u(&xa, &xb)).flatten();
    // One seed per metric, so a metric's CI does not depend on which metrics come before it.
    let ci = stats::bootstrap_median_diff_ci(
        &xa,
        &xb,
        opts.bootstrap,
        1.0 - opts.alpha,
        opts.seed.wrapping_add(index),
    );
    let (delta_pct, exceeds_min_effect) = match (ma, mb) {
        (Some(x), Some(y)) if x != 0.0 => {
            let d = (y - x) / x.abs() * 100.0;
            (Some(d), d.abs() >= opts.min_effect_pct)
        }
        (Some(_), Some(y)) => (if y == 0.0 { Some(0.0) } else { None }, y != 0.0),
        _ => (None, false),
    };
    let p_value = test.map(|t| t.p_value);
    MetricComparison {
        metric,
        unit: metric.unit().into(),
        primary: metric.is_primary(),
        a_n: xa.len(),
        a_median: ma,
        b_n: xb.len(),
        b_median: mb,
        delta_pct,
        exceeds_min_effect,
        p_value,
        method: test.map(|t| t.method),
        ci: ci.map(|(lo, hi)| [lo, hi]),
        significant: p_value.is_some_and(|p| p < opts.alpha),
    }
}

fn compare_hangs(a: &Side, b: &Side, alpha: f64) -> HangComparison {
    let count = |s: &Side| {
        let usable: Vec<_> = s.usable_runs().collect();
        let hangs = usable
            .iter()
            .filter(|r| r.values.verdict == Verdict::Hang)
            .count();
        [hangs as u64, usable.len() as u64]
    };
    let (ah, bh) = (count(a), count(b));
    let p_value = stats::fisher_exact([[ah[0], ah[1] - ah[0]], [bh[0], bh[1] - bh[0]]]);
    HangComparison {
        a_hangs: ah,
        b_hangs: bh,
        p_value,
        significant: p_value < alpha,
    }
}

fn collect_warnings(a: &Side, b: &Side, ai: &SideInfo, bi: &SideInfo) -> Vec<String> {
    let mut out = Vec::new();
    for (name, side, info) in [("A", a, ai), ("B", b, bi)] {
        let excluded = info.runs - info.usable_runs;
        if excluded > 0 {
            out.push(format!(
                "{name} ({}): {excluded} of {} runs left out (infra_error or interrupted: they \
                 measured nothing comparable)",
                info.label, info.runs
            ));
        }
        if info.usable_runs < MIN_RUNS_FOR_TEST {
            out.push(format!(
                "{name} ({}): {} usable run(s); Mann-Whitney needs at least {MIN_RUNS_FOR_TEST} \
                 per side, so no metric can be significant (run with --runs 5, or RUNS=5)",
                info.label, info.usable_runs
            ));
        }
        out.extend(side.warnings.iter().map(|w| format!("{name}: {w}")));
    }
    if ai.gateway.contains("(stub)") || bi.gateway.contains("(stub)") {
        out.push("a side ran against the kit's stub gateway: not a Tyk result".into());
    }
    out
}

/// The CI verdict and its reason.
///
/// - A signal is a primary metric (latency p99, latency max, outstanding share; lower is better)
///   with Mann-Whitney p < alpha AND a change of at least `--min-effect` percent of A's median,
///   or the hang count with Fisher's exact p < alpha (hang → pass is improved, pass → hang is
///   regressed). Fisher needs no separate "every run hung, every run passed" rule: with 4 runs
///   per side that pattern gives p = 0.029, and below 4 it can never reach p < 0.05.
/// - Any regression signal → `regressed` (even if something else improved: CI should look).
/// - Else any improvement signal → `improved`.
/// - Else, with at least 4 usable runs per side → `no change`; with fewer → `inconclusive`,
///   because the tests could not have detected a change (one-run sides say so explicitly).
pub fn decide_verdict(
    a: &SideInfo,
    b: &SideInfo,
    metrics: &[MetricComparison],
    hangs: &HangComparison,
    opts: &CompareOptions,
) -> (CiVerdict, String) {
    if a.usable_runs == 0 || b.usable_runs == 0 {
        let which = if a.usable_runs == 0 { "A" } else { "B" };
        return (
            CiVerdict::Inconclusive,
            format!("{which} has no run that measured anything (only infra_error/interrupted)"),
        );
    }
    let mut better = Vec::new();
    let mut worse = Vec::new();
    for m in metrics
        .iter()
        .filter(|m| m.primary && m.significant && m.exceeds_min_effect)
    {
        let (Some(x), Some(y)) = (m.a_median, m.b_median) else {
            continue;
        };
        let text = format!(
            "{} {} → {} (p = {})",
            m.metric.title(),
            fmt_value(x, &m.unit),
            fmt_value(y, &m.unit),
            fmt_p(m.p_value)
        );
        if y < x {
            better.push(text)
        } else {
            worse.push(text)
        }
    }
    if hangs.significant {
        let text = format!(
            "hangs {}/{} → {}/{} (Fisher p = {})",
            hangs.a_hangs[0],
            hangs.a_hangs[1],
            hangs.b_hangs[0],
            hangs.b_hangs[1],
            fmt_p(Some(hangs.p_value))
        );
        let share = |h: [u64; 2]| h[0] as f64 / h[1] as f64;
        if share(hangs.b_hangs) < share(hangs.a_hangs) {
            better.push(text)
        } else {
            worse.push(text)
        }
    }
    if !worse.is_empty() {
        let mut reason = format!("B is worse: {}", worse.join("; "));
        if !better.is_empty() {
            reason.push_str(&format!(" (though better: {})", better.join("; ")));
        }
        return (CiVerdict::Regressed, reason);
    }
    if !better.is_empty() {
        return (
            CiVerdict::Improved,
            format!("B is better: {}", better.join("; ")),
        );
    }
    let (na, nb) = (a.usable_runs, b.usable_runs);
    if na >= MIN_RUNS_FOR_TEST && nb >= MIN_RUNS_FOR_TEST {
        return (
            CiVerdict::NoChange,
            format!(
                "no primary metric (latency p99, latency max, outstanding share, hangs) changed \
                 significantly (alpha {}) by at least {} % over {na} vs {nb} runs",
                opts.alpha, opts.min_effect_pct
            ),
        );
    }
    let mut reason = if na == 1 && nb == 1 {
        "one run per side cannot separate a change from run-to-run noise".to_owned()
    } else {
        format!("{na} vs {nb} usable runs are too few to test")
    };
    if a.verdicts.hang != b.verdicts.hang {
        reason.push_str(&format!(
            " (hangs {}/{na} → {}/{nb}: suggestive, not significant)",
            a.verdicts.hang, b.verdicts.hang
        ));
    }
    reason.push_str(&format!(
        "; rerun with at least {MIN_RUNS_FOR_TEST} runs per side (--runs 5 or RUNS=5)"
    ));
    (CiVerdict::Inconclusive, reason)
}

/// A value with its unit, rounded for reading (`1234 ms`, `12.5 %`, `3.2`).
pub fn fmt_value(x: f64, unit: &str) -> String {
    let digits = if x.abs() >= 100.0 || x == x.trunc() {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    let num = format!("{x:.digits$}");
    match unit {
        "" => num,
        "%" => format!("{num} %"),
        u => format!("{num} {u}"),
    }
}

/// A p-value for reading: three significant digits, `<0.001` below that.
pub fn fmt_p(p: Option<f64>) -> String {
    match p {
        None => "n/a".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
