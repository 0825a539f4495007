//! The comparison: a pure function of two sides and the options (critcmp style).
//!
//! Runs are the unit. Each metric is reduced to one value per usable run (`pass`, `hang` or
//! `unresponsive`); sides are compared with Mann-Whitney U, a bootstrap CI of the median
//! difference, and hang counts with Fisher's exact test. The verdict is decided on the time to
//! usable over ALL scheduled scenarios (censored), never on the survivors' latency alone, so a
//! side that lost policies cannot look faster. The CI verdict rule is in [`decide_verdict`].

use schemars::JsonSchema;
use serde::Serialize;

use super::side::{FleetRun, Side, SideKind};
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
    /// Fleet: share of scheduled scenarios whose key was created on every gateway (primary;
    /// higher is better).
    UsableEverywhere,
    /// Fleet: median of last − first gateway over the scenarios usable everywhere.
    SpreadP50,
    /// Fleet: 99th percentile of last − first gateway.
    SpreadP99,
    /// One gateway of a fleet: scenarios whose key was created on it (higher is better).
    Succeeded,
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

    /// The fleet-level rows (runs against several gateways), after the last gateway's time to
    /// usable, which is the top-level [`Metric::UsableP50`] and [`Metric::UsableP90`].
    pub const FLEET: [Metric; 3] = [
        Metric::UsableEverywhere,
        Metric::SpreadP50,
        Metric::SpreadP99,
    ];

    /// The rows of each gateway of a fleet.
    pub const PER_GATEWAY: [Metric; 4] = [
        Metric::UsableP50,
        Metric::UsableP90,
        Metric::Succeeded,
        Metric::OutstandingShare,
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
            Metric::UsableEverywhere => "usable everywhere",
            Metric::SpreadP50 => "spread p50",
            Metric::SpreadP99 => "spread p99",
            Metric::Succeeded => "succeeded",
        }
    }

    /// Unit of the values (`ms`, `%`, or empty for counts and ratios).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::OutstandingShare | Metric::UsableEverywhere => "%",
            Metric::PolicyFetches | Metric::CoalescingRatio | Metric::Succeeded => "",
            _ => "ms",
        }
    }

    /// True for the metrics that decide the CI verdict.
    pub fn is_primary(self) -> bool {
        matches!(
            self,
            Metric::UsableP50
                | Metric::UsableP90
                | Metric::OutstandingShare
                | Metric::UsableEverywhere
        )
    }

    /// True when more is better (shares and counts of keys created); for every other metric
    /// less is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::UsableEverywhere | Metric::Succeeded)
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

    /// The value the rank test sees, higher = worse: a quantile that was not reached ranks
    /// above every one that was (fewer scenarios ever became usable), then by its bound; a
    /// metric where more is better ranks by its negation.
    fn rank_value(self, o: &Obs<'_>) -> Option<f64> {
        let x = self.value(o)?;
        Some(if self.is_bound(o.values) {
            x + UNREACHED_RANK
        } else if self.higher_is_better() {
            -x
        } else {
            x
        })
    }

    /// The metric's value in one run (or one gateway of it), in display units.
    fn value(self, o: &Obs<'_>) -> Option<f64> {
        let v = o.values;
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
            Metric::UsableEverywhere => o.fleet.map(|f| f.share_usable_everywhere * 100.0),
            Metric::SpreadP50 => o.fleet.and_then(|f| f.spread_p50_ms),
            Metric::SpreadP99 => o.fleet.and_then(|f| f.spread_p99_ms),
            Metric::Succeeded => o.succeeded.map(|n| n as f64),
        }
        .filter(|x| x.is_finite())
    }
}

/// One usable run as the rows read it: the run's values (or one gateway's), its fleet facts
/// for the fleet rows, and for a gateway the keys created on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs<'a> {
    /// The run's values, or one gateway's in a run's shape.
    pub values: &'a PerRunValues,
    /// The run's fleet facts (top-level observations of a fleet run only).
    pub fleet: Option<&'a FleetRun>,
    /// Keys created on the gateway (per-gateway observations only).
    pub succeeded: Option<u64>,
}

/// The usable runs of a side as top-level observations.
pub(crate) fn observations(side: &Side) -> Vec<Obs<'_>> {
    side.usable_runs()
        .map(|r| Obs {
            values: &r.values,
            fleet: r.fleet.as_ref(),
            succeeded: None,
        })
        .collect()
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
    /// rank above reached ones, and a metric where more is better ranks by its negation, so
    /// this, not the medians, says which side is worse.
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
    /// Fleet-level and per-gateway rows, when both sides ran against several gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetComparison>,
}

/// Compares `b` (candidate) against `a` (baseline).
pub fn compare(a: &Side, b: &Side, opts: &CompareOptions) -> Comparison {
    let config_differences = side_config_differences(a, b);
    let (oa, ob) = (observations(a), observations(b));
    let metrics = compare_metrics(&Metric::ALL, &oa, &ob, opts, 0);
    let hangs = compare_hangs(&oa, &ob, opts.alpha);
    let unresponsive = compare_unresponsive(&oa, &ob, opts.alpha);
    let (a_info, b_info) = (side_info(a), side_info(b));
    let mut warnings = collect_warnings(a, b, &a_info, &b_info);
    let (fleet, fleet_warnings) = fleet::compare_fleet(a, b, opts);
    warnings.extend(fleet_warnings);
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
    let mut signals = Signals::of(&metrics, &hangs, &unresponsive, a_info.verdicts.pass);
    if let Some(f) = &fleet {
        signals.add_fleet(f);
    }
    let (verdict, mut reason) = decide(&Tally::of(&a_info), &Tally::of(&b_info), signals, opts);
    if let Some(f) = &fleet
        && verdict == CiVerdict::NoChange
    {
        reason.push_str(&format!(
            ", nor the share usable everywhere or any of the {} gateways' own",
            f.per_gateway.len()
        ));
    }
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
        fleet,
    }
}

impl VerdictCounts {
    /// Counts the verdicts.
    pub fn of(verdicts: impl IntoIterator<Item = Verdict>) -> VerdictCounts {
        let mut counts = VerdictCounts::default();
        for v in verdicts {
            *match v {
                Verdict::Pass => &mut counts.pass,
                Verdict::Hang => &mut counts.hang,
                Verdict::Unresponsive => &mut counts.unresponsive,
                Verdict::InfraError => &mut counts.infra_error,
                Verdict::Interrupted => &mut counts.interrupted,
            } += 1;
        }
        counts
    }
}

fn side_info(side: &Side) -> SideInfo {
    let verdicts = VerdictCounts::of(side.runs.iter().map(|r| r.values.verdict));
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

/// Compares each of `metrics` over the observations of A and B; `seed_base` + the row's
/// position seeds its bootstrap, so a row's CI does not depend on the rows before it.
pub(crate) fn compare_metrics(
    metrics: &[Metric],
    a: &[Obs<'_>],
    b: &[Obs<'_>],
    opts: &CompareOptions,
    seed_base: u64,
) -> Vec<MetricComparison> {
    metrics
        .iter()
        .enumerate()
        .map(|(i, &m)| compare_metric(m, a, b, opts, seed_base + i as u64))
        .collect()
}

fn compare_metric(
    metric: Metric,
    a: &[Obs<'_>],
    b: &[Obs<'_>],
    opts: &CompareOptions,
    index: u64,
) -> MetricComparison {
    let values = |s: &[Obs<'_>], f: fn(Metric, &Obs<'_>) -> Option<f64>| -> Vec<f64> {
        s.iter().filter_map(|o| f(metric, o)).collect()
    };
    let (xa, xb) = (values(a, Metric::value), values(b, Metric::value));
    let (ra, rb) = (values(a, Metric::rank_value), values(b, Metric::rank_value));
    let bounds = |s: &[Obs<'_>]| s.iter().filter(|o| metric.is_bound(o.values)).count();
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

pub(crate) fn compare_hangs(a: &[Obs<'_>], b: &[Obs<'_>], alpha: f64) -> HangComparison {
    let count = |s: &[Obs<'_>]| {
        let hangs = s
            .iter()
            .filter(|o| o.values.verdict == Verdict::Hang)
            .count();
        [hangs as u64, s.len() as u64]
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

pub(crate) fn compare_unresponsive(
    a: &[Obs<'_>],
    b: &[Obs<'_>],
    alpha: f64,
) -> UnresponsiveComparison {
    let count = |s: &[Obs<'_>]| {
        let n = s
            .iter()
            .filter(|o| o.values.verdict == Verdict::Unresponsive)
            .count();
        [n as u64, s.len() as u64]
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

mod config;
mod decide;
pub(crate) mod fleet;
mod warnings;

pub use config::{Comparable, config_differences, run_differences, side_config_differences};
use decide::{Signals, decide};
pub use decide::{Tally, decide_verdict, fmt_p, fmt_value};
pub use fleet::{FleetComparison, GatewayComparison};
use warnings::collect_warnings;

#[cfg(test)]
pub(crate) mod tests;
