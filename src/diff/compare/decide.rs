//! The CI verdict: signals (what got significantly and materially better or worse) from the
//! run-level rows, the fleet rows and every gateway's rows, then one rule over all of them.

use super::fleet::FleetComparison;
use super::{
    CiVerdict, CompareOptions, HangComparison, MetricComparison, SideInfo, UnresponsiveComparison,
    VerdictCounts,
};
use crate::diff::stats::MIN_RUNS_FOR_TEST;

/// What the verdict rule needs to know about a side (or one gateway of it) beyond the rows.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Runs that measured something (`pass`, `hang`, `unresponsive`).
    pub usable_runs: usize,
    /// Runs per verdict.
    pub verdicts: VerdictCounts,
}

impl Tally {
    /// A side's tally.
    pub fn of(side: &SideInfo) -> Tally {
        Tally {
            usable_runs: side.usable_runs,
            verdicts: side.verdicts.clone(),
        }
    }
}

/// What got better and what got worse, one sentence each with its evidence.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    /// Improvements.
    pub better: Vec<String>,
    /// Regressions.
    pub worse: Vec<String>,
}

impl Signals {
    /// The signals of one set of rows (a run's, or one gateway's); `a_passes` = A's runs that
    /// passed (B dying where A never did counts only if A passed at least once).
    pub fn of(
        metrics: &[MetricComparison],
        hangs: &HangComparison,
        unresponsive: &UnresponsiveComparison,
        a_passes: u64,
    ) -> Signals {
        let mut out = Signals::default();
        out.add_metrics(metrics);
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
                out.better.push(text)
            } else {
                out.worse.push(text)
            }
        }
        let (au, bu) = (unresponsive.a_runs, unresponsive.b_runs);
        if bu[0] > 0 && au[0] == 0 && a_passes > 0 {
            out.worse.push(format!(
                "the gateway stopped answering in {}/{} runs of B, in none of A's",
                bu[0], bu[1]
            ));
        } else if unresponsive.significant && bu[0] * au[1] < au[0] * bu[1] {
            out.better.push(format!(
                "unresponsive {}/{} → {}/{} (Fisher p = {})",
                au[0],
                au[1],
                bu[0],
                bu[1],
                fmt_p(Some(unresponsive.p_value))
            ));
        }
        out
    }

    /// Adds the primary rows that changed significantly by at least the minimum effect.
    fn add_metrics(&mut self, metrics: &[MetricComparison]) {
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
                self.better.push(text)
            } else {
                self.worse.push(text)
            }
        }
    }

    /// Adds the fleet rows' signals and every gateway's, each named `gateway i (URL)`: a
    /// gateway that got worse makes the whole comparison regressed even when the fleet's
    /// last-gateway figures did not move (another gateway may have got better meanwhile).
    pub fn add_fleet(&mut self, fleet: &FleetComparison) {
        self.add_metrics(&fleet.metrics);
        for g in &fleet.per_gateway {
            let name = format!("gateway {} ({})", g.gateway, g.b_gateway);
            let own = Signals::of(&g.metrics, &g.hangs, &g.unresponsive, g.a_verdicts.pass);
            self.better
                .extend(own.better.into_iter().map(|t| format!("{name}: {t}")));
            self.worse
                .extend(own.worse.into_iter().map(|t| format!("{name}: {t}")));
        }
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
///   Fisher's exact p < alpha. Fisher needs no separate "every run hung, every run passed"
///   rule: with 4 runs per side that pattern gives p = 0.029, and below 4 it can never reach
///   p < 0.05.
/// - Fleets (both sides against several gateways): the share of scenarios usable everywhere
///   is one more primary metric, and every gateway's own rows (its time to usable p50/p90,
///   outstanding share, hangs, unresponsive) give signals by the same rules, named by gateway:
///   gateway 3 passing in A and hanging in B is a regression of the whole comparison.
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
    let signals = Signals::of(metrics, hangs, unresponsive, a.verdicts.pass);
    decide(&Tally::of(a), &Tally::of(b), signals, opts)
}

/// The rule of [`decide_verdict`] over signals already collected.
pub(crate) fn decide(
    a: &Tally,
    b: &Tally,
    signals: Signals,
    opts: &CompareOptions,
) -> (CiVerdict, String) {
    if a.usable_runs == 0 || b.usable_runs == 0 {
        let which = if a.usable_runs == 0 { "A" } else { "B" };
        return (
            CiVerdict::Inconclusive,
            format!("{which} has no run that measured anything (only infra_error/interrupted)"),
        );
    }
    let Signals { better, worse } = signals;
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
