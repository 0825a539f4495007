//! The comparison: a pure function of two sides and the options (critcmp style).
//!
//! Runs are the unit. Each metric is reduced to one value per usable run (`pass`, `hang` or
//! `unresponsive`); sides are compared with Mann-Whitney U, a bootstrap CI of the median
//! difference, and hang counts with Fisher's exact test. The verdict is decided on the time to
//! usable over ALL scheduled scenarios (censored), never on the survivors' latency alone, so a
//! side that lost policies cannot look faster. The CI verdict rule is in [`decide_verdict`].

use schemars::JsonSchema;
use serde::Serialize;

use super::side::{Side, SideKind};
use super::stats::{self, MIN_RUNS_FOR_TEST, PMethod};
use crate::summary::Verdict;
use crate::summary::set::PerRunValues;

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
    /// Median time to usable over all scheduled scenarios, lost ones censored (primary).
    UsableP50,
    /// 90th percentile time to usable over all scheduled scenarios (primary).
    UsableP90,
    /// Median latency of the scenarios that got their key.
    LatencyP50,
    /// 90th percentile latency.
    LatencyP90,
    /// 99th percentile latency of the scenarios that got their key.
    LatencyP99,
    /// Largest latency of the scenarios that got their key.
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
    pub const ALL: [Metric; 10] = [
        Metric::UsableP50,
        Metric::UsableP90,
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
            Metric::UsableP50 => "time to usable p50",
            Metric::UsableP90 => "time to usable p90",
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
            Metric::UsableP50 | Metric::UsableP90 | Metric::OutstandingShare
        )
    }

    /// For the censored metrics: whether the run's value is only a lower bound ("> X").
    fn is_bound(self, v: &PerRunValues) -> bool {
        let q = match self {
            Metric::UsableP50 => &v.usable_p50,
            Metric::UsableP90 => &v.usable_p90,
            _ => return false,
        };
        q.as_ref().is_some_and(|q| !q.reached)
    }

    /// The value the rank test sees: a quantile that was not reached ranks above every one
    /// that was (fewer scenarios ever became usable), then by its bound.
    fn rank_value(self, v: &PerRunValues) -> Option<f64> {
        let x = self.value(v)?;
        Some(if self.is_bound(v) {
            x + UNREACHED_RANK
        } else {
            x
        })
    }

    /// The metric's value in one run, in display units.
    fn value(self, v: &PerRunValues) -> Option<f64> {
        match self {
            Metric::UsableP50 => v.usable_p50.as_ref().and_then(|q| q.ms),
            Metric::UsableP90 => v.usable_p90.as_ref().and_then(|q| q.ms),
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

/// Added to an unreached quantile's bound for ranking: larger than any time a run measures.
const UNREACHED_RANK: f64 = 1e15;

/// What the report says about a side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideInfo {
    /// The runs' label.
    pub label: String,
    /// The path given.
    pub source: String,
    /// The form of that path.
    pub kind: SideKind,
    /// Gateway version(s) of the runs, each with where it came from (`/hello`, log, image tag).
    pub gateway: String,
    /// Gateway image identities of the runs (registry digest, else image id), when recorded.
    pub gateway_images: Vec<String>,
    /// Runs whose time to usable was derived from an older summary (schema 1).
    pub derived_usable_runs: usize,
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
    /// Runs whose gateway stopped answering.
    pub unresponsive: u64,
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
    /// A's runs whose value is only a lower bound (a censored quantile not reached).
    pub a_bounds: usize,
    /// Runs of B with a value.
    pub b_n: usize,
    /// Median over B's runs.
    pub b_median: Option<f64>,
    /// B's runs whose value is only a lower bound.
    pub b_bounds: usize,
    /// B ranks higher (worse) than A: median of B's rank values above A's. Unreached quantiles
    /// rank above reached ones, so this, not the medians, says which side is worse.
    pub b_higher: bool,
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

/// Runs whose gateway stopped answering, A against B. `unresponsive` is its own outcome: a
/// gateway that dies is not a gateway that hangs, and B dying where A never did is a
/// regression whatever the count.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UnresponsiveComparison {
    /// Usable runs of A whose gateway stopped answering, and usable runs of A.
    pub a_runs: [u64; 2],
    /// The same for B.
    pub b_runs: [u64; 2],
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
    /// Unresponsive-gateway counts compared.
    pub unresponsive: UnresponsiveComparison,
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
    let unresponsive = compare_unresponsive(a, b, opts.alpha);
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
    let (verdict, reason) = decide_verdict(&a_info, &b_info, &metrics, &hangs, &unresponsive, opts);
    Comparison {
        a: a_info,
        b: b_info,
        options: opts.clone(),
        config_differences,
        metrics,
        hangs,
        unresponsive,
        verdict,
        reason,
        warnings,
    }
}

fn side_info(side: &Side) -> SideInfo {
    let mut verdicts = VerdictCounts::default();
    for r in &side.runs {
        *match r.values.verdict {
            Verdict::Pass => &mut verdicts.pass,
            Verdict::Hang => &mut verdicts.hang,
            Verdict::Unresponsive => &mut verdicts.unresponsive,
            Verdict::InfraError => &mut verdicts.infra_error,
            Verdict::Interrupted => &mut verdicts.interrupted,
        } += 1;
    }
    SideInfo {
        label: side.label.clone(),
        source: side.source.clone(),
        kind: side.kind,
        gateway: side.gateway_versions_with_source(),
        gateway_images: side.gateway_images(),
        derived_usable_runs: side.runs.iter().filter(|r| r.values.usable_derived).count(),
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
    let values = |s: &Side, f: fn(Metric, &PerRunValues) -> Option<f64>| -> Vec<f64> {
        s.usable_runs()
            .filter_map(|r| f(metric, &r.values))
            .collect()
    };
    let (xa, xb) = (values(a, Metric::value), values(b, Metric::value));
    let (ra, rb) = (values(a, Metric::rank_value), values(b, Metric::rank_value));
    let bounds = |s: &Side| {
        s.usable_runs()
            .filter(|r| metric.is_bound(&r.values))
            .count()
    };
    let (ba, bb) = (bounds(a), bounds(b));
    let (ma, mb) = (stats::median(&xa), stats::median(&xb));
    let enough = xa.len() >= MIN_RUNS_FOR_TEST && xb.len() >= MIN_RUNS_FOR_TEST;
    let test = enough.then(|| stats::mann_whitney_u(&ra, &rb)).flatten();
    // One seed per metric, so a metric's CI does not depend on which metrics come before it.
    let ci = stats::bootstrap_median_diff_ci(
        &xa,
        &xb,
        opts.bootstrap,
        1.0 - opts.alpha,
        opts.seed.wrapping_add(index),
    );
    let (delta_pct, mut exceeds_min_effect) = match (ma, mb) {
        (Some(x), Some(y)) if x != 0.0 => {
            let d = (y - x) / x.abs() * 100.0;
            (Some(d), d.abs() >= opts.min_effect_pct)
        }
        (Some(_), Some(y)) => (if y == 0.0 { Some(0.0) } else { None }, y != 0.0),
        _ => (None, false),
    };
    // A median that is only a bound on one side and reached on the other is a material change.
    let bounded = |n: usize, of: usize| of > 0 && n * 2 >= of;
    if bounded(ba, xa.len()) != bounded(bb, xb.len()) {
        exceeds_min_effect = true;
    }
    let b_higher = match (stats::median(&ra), stats::median(&rb)) {
        (Some(x), Some(y)) => y > x,
        _ => false,
    };
    let p_value = test.map(|t| t.p_value);
    MetricComparison {
        metric,
        unit: metric.unit().into(),
        primary: metric.is_primary(),
        a_n: xa.len(),
        a_median: ma,
        a_bounds: ba,
        b_n: xb.len(),
        b_median: mb,
        b_bounds: bb,
        b_higher,
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

fn compare_unresponsive(a: &Side, b: &Side, alpha: f64) -> UnresponsiveComparison {
    let count = |s: &Side| {
        let usable: Vec<_> = s.usable_runs().collect();
        let n = usable
            .iter()
            .filter(|r| r.values.verdict == Verdict::Unresponsive)
            .count();
        [n as u64, usable.len() as u64]
    };
    let (au, bu) = (count(a), count(b));
    let p_value = stats::fisher_exact([[au[0], au[1] - au[0]], [bu[0], bu[1] - bu[0]]]);
    UnresponsiveComparison {
        a_runs: au,
        b_runs: bu,
        p_value,
        significant: p_value < alpha,
    }
}

/// The CI verdict and its reason.
///
/// - A signal is a primary metric (time to usable p50 and p90 over all scheduled scenarios,
///   censored; outstanding share; lower is better) with Mann-Whitney p < alpha AND a change of
///   at least `--min-effect` percent of A's median (or a median that is a bound on one side
///   only), or the hang count with Fisher's exact p < alpha (hang → pass is improved, pass →
///   hang is regressed). Which side is worse comes from the ranks, where a quantile that was
///   not reached ranks above every reached one: a side that lost policies never looks faster.
/// - B's gateway stopping to answer (`unresponsive`) in any run where A's never did, with A
///   passing at least once, is a regression signal whatever the count; the reverse needs
///   Fisher's exact p < alpha. Fisher needs no separate "every run hung, every run passed" rule: with 4 runs
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
    unresponsive: &UnresponsiveComparison,
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
        let shown = |v: f64, bounds: usize, n: usize| {
            let v = fmt_value(v, &m.unit);
            if n > 0 && bounds * 2 >= n {
                format!("> {v}")
            } else {
                v
            }
        };
        let text = format!(
            "{} {} → {} (p = {})",
            m.metric.title(),
            shown(x, m.a_bounds, m.a_n),
            shown(y, m.b_bounds, m.b_n),
            fmt_p(m.p_value)
        );
        if !m.b_higher {
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
    let (au, bu) = (unresponsive.a_runs, unresponsive.b_runs);
    if bu[0] > 0 && au[0] == 0 && a.verdicts.pass > 0 {
        worse.push(format!(
            "the gateway stopped answering in {}/{} runs of B, in none of A's",
            bu[0], bu[1]
        ));
    } else if unresponsive.significant && bu[0] * au[1] < au[0] * bu[1] {
        better.push(format!(
            "unresponsive {}/{} → {}/{} (Fisher p = {})",
            au[0],
            au[1],
            bu[0],
            bu[1],
            fmt_p(Some(unresponsive.p_value))
        ));
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
                "no primary metric (time to usable p50 and p90, outstanding share, hangs) changed \
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

mod config;
mod warnings;

pub use config::{config_differences, side_config_differences};
use warnings::collect_warnings;

#[cfg(test)]
pub(crate) mod tests;
