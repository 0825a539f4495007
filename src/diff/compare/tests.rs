//! Tests of the comparison and the CI verdict on synthetic sets of runs.

use super::*;
use crate::diff::side::{Side, SideKind, encode_histogram};
use crate::summary::Summary;
use crate::summary::set::sample_summary;

/// A run with latency scaled by `scale` and `outstanding` of 300 scenarios left waiting.
pub(crate) fn run(label: &str, scale: f64, outstanding: u64) -> Summary {
    let mut s = sample_summary();
    s.label = label.into();
    s.verdict = if outstanding > 0 {
        Verdict::Hang
    } else {
        Verdict::Pass
    };
    s.scenarios.outstanding = outstanding;
    s.scenarios.succeeded = 300 - outstanding;
    s.latency_ms.p50 = Some(100.0 * scale);
    s.latency_ms.p90 = Some(200.0 * scale);
    s.latency_ms.p99 = Some(900.0 * scale);
    s.latency_ms.max = Some(1500.0 * scale);
    s.gateway.version = Some(if label == "pr" { "v2.9.4.4" } else { "v2.9.4" }.into());
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for ms in [100.0, 200.0, 900.0, 1500.0] {
        h.record((ms * scale * 1000.0) as u64).unwrap();
    }
    s.latency_ms.histogram_b64 = encode_histogram(&h);
    s.time_to_usable = Some(time_to_usable_of_run(scale, outstanding));
    s
}

/// 300 scheduled: of those usable, half at 100 ms × scale, 40 % at 200, the rest at 900 but
/// one at 1500; the outstanding ones censored at 30 s.
pub(crate) fn time_to_usable_of_run(scale: f64, outstanding: u64) -> crate::summary::TimeToUsable {
    let n = 300 - outstanding;
    let (half, forty) = (n / 2, n * 4 / 10);
    let usable = [
        (100.0 * scale, half),
        (200.0 * scale, forty),
        (900.0 * scale, n - half - forty - 1),
        (1500.0 * scale, 1),
    ];
    crate::summary::censored::time_to_usable(&usable, &[(30_000.0, outstanding)], 300)
}

/// A side of `n` runs whose latency scale jitters by a few percent around `scale`.
pub(crate) fn side(label: &str, n: usize, scale: f64, outstanding: u64) -> Side {
    let runs: Vec<(String, Summary)> = (0..n)
        .map(|i| {
            let jitter = 1.0 + 0.02 * (i as f64 - n as f64 / 2.0) / n as f64;
            (
                format!("run-{i}"),
                run(
                    label,
                    scale * jitter,
                    outstanding + i as u64 % 2 * outstanding.min(1),
                ),
            )
        })
        .collect();
    Side::from_runs(label, SideKind::LabelAllRuns, &runs)
}

pub(crate) fn opts() -> CompareOptions {
    CompareOptions {
        alpha: 0.05,
        min_effect_pct: 10.0,
        bootstrap: 500,
        seed: 1,
        force: false,
    }
}

#[test]
fn hang_to_pass_over_five_runs_each_is_improved_with_the_fisher_result() {
    let c = compare(&side("2.9.4", 5, 3.0, 30), &side("pr", 5, 1.0, 0), &opts());
    assert_eq!(c.verdict, CiVerdict::Improved, "{}", c.reason);
    assert_eq!((c.hangs.a_hangs, c.hangs.b_hangs), ([5, 5], [0, 5]));
    assert!((c.hangs.p_value - 2.0 / 252.0).abs() < 1e-12);
    assert!(c.reason.contains("hangs 5/5 → 0/5"), "{}", c.reason);
    assert!(c.reason.contains("time to usable p90"), "{}", c.reason);
}

#[test]
fn same_gateway_twice_is_no_change() {
    let c = compare(&side("a", 5, 1.0, 0), &side("b", 5, 1.01, 0), &opts());
    assert_eq!(c.verdict, CiVerdict::NoChange, "{}", c.reason);
    assert!(
        c.metrics
            .iter()
            .all(|m| !m.exceeds_min_effect || !m.significant)
    );
}

#[test]
fn a_slower_reload_is_regressed() {
    let c = compare(
        &side("200ms", 6, 1.0, 0),
        &side("600ms", 6, 3.0, 0),
        &opts(),
    );
    assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
    let p90 = c
        .metrics
        .iter()
        .find(|m| m.metric == Metric::UsableP90)
        .unwrap();
    assert!(p90.significant && p90.delta_pct.unwrap() > 190.0, "{p90:?}");
    let [lo, hi] = p90.ci.unwrap();
    assert!(lo > 0.0 && lo <= hi);
}

#[test]
fn a_significant_change_below_the_minimum_effect_is_no_change() {
    // 5 % slower everywhere: significant with no overlap, but under --min-effect 10.
    let c = compare(&side("a", 6, 1.0, 0), &side("b", 6, 1.05, 0), &opts());
    let p90 = c
        .metrics
        .iter()
        .find(|m| m.metric == Metric::UsableP90)
        .unwrap();
    assert!(p90.significant && !p90.exceeds_min_effect, "{p90:?}");
    assert_eq!(c.verdict, CiVerdict::NoChange, "{}", c.reason);
}

#[test]
fn pass_to_hang_is_regressed_even_when_outstanding_share_was_zero() {
    let c = compare(&side("a", 5, 1.0, 0), &side("b", 5, 1.0, 30), &opts());
    assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
    let share = c
        .metrics
        .iter()
        .find(|m| m.metric == Metric::OutstandingShare)
        .unwrap();
    assert_eq!(share.delta_pct, None);
    assert!(share.exceeds_min_effect);
}

#[test]
fn one_run_sides_are_inconclusive_with_the_reason() {
    let c = compare(&side("2.9.4", 1, 3.0, 30), &side("pr", 1, 1.0, 0), &opts());
    assert_eq!(c.verdict, CiVerdict::Inconclusive);
    assert!(c.reason.contains("one run per side"), "{}", c.reason);
    assert!(c.reason.contains("hangs 1/1 → 0/1"), "{}", c.reason);
    assert_eq!(c.verdict.exit_code(), 3);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("Mann-Whitney needs at least 4"))
    );
    assert!(c.metrics.iter().all(|m| m.p_value.is_none()));
}

#[test]
fn three_runs_per_side_are_inconclusive_not_no_change() {
    let c = compare(&side("a", 3, 1.0, 0), &side("b", 3, 1.0, 0), &opts());
    assert_eq!(c.verdict, CiVerdict::Inconclusive);
    assert!(c.reason.contains("3 vs 3 usable runs"), "{}", c.reason);
}

#[test]
fn infra_error_runs_are_left_out_and_said_so() {
    let mut runs: Vec<(String, Summary)> = (0..5)
        .map(|i| (format!("r{i}"), run("a", 1.0, 0)))
        .collect();
    runs[0].1.verdict = Verdict::InfraError;
    let a = Side::from_runs("a", SideKind::LabelAllRuns, &runs);
    let c = compare(&a, &side("b", 5, 1.0, 0), &opts());
    assert_eq!(
        (c.a.runs, c.a.usable_runs, c.a.verdicts.infra_error),
        (5, 4, 1)
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("1 of 5 runs left out"))
    );
    assert_eq!(c.verdict, CiVerdict::NoChange, "{}", c.reason);
}

#[test]
fn config_differences_name_each_field() {
    let a = side("a", 1, 1.0, 0);
    let mut s = run("b", 1.0, 0);
    s.config.rate_per_s = 20.0;
    s.config.backoff.jitter = 0.0;
    let b = Side::from_runs("b", SideKind::Run, &[("b".into(), s)]);
    let d = side_config_differences(&a, &b);
    let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["config.rate_per_s", "config.backoff.jitter"]);
    assert_eq!((d[0].a.as_str(), d[0].b.as_str()), ("10", "20"));
    let forced = compare(
        &a,
        &b,
        &CompareOptions {
            force: true,
            ..opts()
        },
    );
    assert!(forced.warnings[0].contains("--force") && forced.warnings[0].contains("rate_per_s"));
}

#[test]
fn the_comparison_is_deterministic_for_a_seed() {
    let (a, b) = (side("a", 5, 1.0, 0), side("b", 5, 1.3, 0));
    let one = serde_json::to_string(&compare(&a, &b, &opts())).unwrap();
    let two = serde_json::to_string(&compare(&a, &b, &opts())).unwrap();
    assert_eq!(one, two);
}

/// B's survivors are twice as fast, but B lost 20 % of its policies in every run.
fn lossy_but_fast_side(n: usize) -> Side {
    let runs: Vec<(String, Summary)> = (0..n)
        .map(|i| {
            let mut s = run("lossy", 0.5 * (1.0 + 0.01 * i as f64), 60);
            s.verdict = Verdict::Hang;
            (format!("run-{i}"), s)
        })
        .collect();
    Side::from_runs("lossy", SideKind::LabelAllRuns, &runs)
}

#[test]
fn a_side_that_lost_a_fifth_of_its_policies_is_never_improved_although_its_survivors_are_faster() {
    for n in [1, 4, 6] {
        let a = side("complete", n, 1.0, 0);
        let b = lossy_but_fast_side(n);
        let c = compare(&a, &b, &opts());
        assert_ne!(c.verdict, CiVerdict::Improved, "{n} runs: {}", c.reason);
        let survivors = c
            .metrics
            .iter()
            .find(|m| m.metric == Metric::LatencyP99)
            .unwrap();
        assert!(
            survivors.b_median < survivors.a_median,
            "the survivors of B really are faster: {survivors:?}"
        );
        let p90 = c
            .metrics
            .iter()
            .find(|m| m.metric == Metric::UsableP90)
            .unwrap();
        assert!(
            p90.b_higher,
            "B's p90 over all scenarios ranks worse: {p90:?}"
        );
        assert_eq!(p90.b_bounds, n, "no run of B reached its p90");
        if n >= 4 {
            assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
            assert!(c.reason.contains("time to usable p90"), "{}", c.reason);
            assert!(c.reason.contains("> 30000 ms"), "{}", c.reason);
        }
    }
}

#[test]
fn an_unreached_percentile_ranks_worse_even_when_its_bound_is_small() {
    // B's runs stopped early: their p90 bound (150 ms) is below A's reached p90 (200 ms).
    let a = side("a", 5, 1.0, 0);
    let runs: Vec<(String, Summary)> = (0..5)
        .map(|i| {
            let mut s = run("b", 1.0, 0);
            s.time_to_usable = Some(crate::summary::censored::time_to_usable(
                &[(100.0, 200 + i)],
                &[(150.0, 100 - i)],
                300,
            ));
            (format!("b-{i}"), s)
        })
        .collect();
    let b = Side::from_runs("b", SideKind::LabelAllRuns, &runs);
    let c = compare(&a, &b, &opts());
    let p90 = c
        .metrics
        .iter()
        .find(|m| m.metric == Metric::UsableP90)
        .unwrap();
    assert!(p90.b_median < p90.a_median && p90.b_higher, "{p90:?}");
    assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
}

fn with_verdict(mut side: Side, verdict: Verdict) -> Side {
    for r in &mut side.runs {
        r.values.verdict = verdict;
    }
    side
}

#[test]
fn pass_to_unresponsive_is_regressed_and_counted_apart_from_hangs() {
    for n in [1, 5] {
        let a = side("a", n, 1.0, 0);
        let b = with_verdict(side("b", n, 1.0, 0), Verdict::Unresponsive);
        let c = compare(&a, &b, &opts());
        assert_eq!(c.verdict, CiVerdict::Regressed, "{n}: {}", c.reason);
        assert!(c.reason.contains("stopped answering"), "{}", c.reason);
        assert_eq!(
            (c.b.verdicts.unresponsive, c.b.verdicts.hang),
            (n as u64, 0)
        );
        assert_eq!(c.unresponsive.b_runs, [n as u64, n as u64]);
        assert_eq!(c.hangs.b_hangs, [0, n as u64], "unresponsive is not a hang");
    }
    // Unresponsive → pass needs the test: 5 runs each is significant, 1 is not.
    let back = compare(
        &with_verdict(side("a", 5, 1.0, 0), Verdict::Unresponsive),
        &side("b", 5, 1.0, 0),
        &opts(),
    );
    assert_eq!(back.verdict, CiVerdict::Improved, "{}", back.reason);
    assert!(
        back.reason.contains("unresponsive 5/5 → 0/5"),
        "{}",
        back.reason
    );
    let one = compare(
        &with_verdict(side("a", 1, 1.0, 0), Verdict::Unresponsive),
        &side("b", 1, 1.0, 0),
        &opts(),
    );
    assert_eq!(one.verdict, CiVerdict::Inconclusive, "{}", one.reason);
}

fn with_image(mut s: Summary, digest: &str) -> Summary {
    s.environment = Some(crate::summary::Environment {
        gateway: Some(crate::summary::environment::ServiceEvidence {
            image: Some("tyk-gateway:pr".into()),
            image_id: Some("sha256:local".into()),
            repo_digests: vec![digest.into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    s
}

#[test]
fn the_same_version_and_image_on_both_sides_is_warned_about_and_sources_are_shown() {
    let digest = "tykio/tyk-gateway@sha256:0123456789abcdef0123";
    let a = Side::from_runs(
        "a",
        SideKind::Run,
        &[("a".into(), with_image(run("x", 1.0, 0), digest))],
    );
    let b = Side::from_runs(
        "b",
        SideKind::Run,
        &[("b".into(), with_image(run("x", 1.0, 0), digest))],
    );
    let c = compare(&a, &b, &opts());
    assert_eq!(c.a.gateway, "v2.9.4 (from /hello)");
    assert_eq!(c.a.gateway_images, [digest]);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("same gateway version (v2.9.4) and the same image")),
        "{:?}",
        c.warnings
    );
    let other = Side::from_runs(
        "b",
        SideKind::Run,
        &[(
            "b".into(),
            with_image(run("x", 1.0, 0), "tykio/tyk-gateway@sha256:ffff"),
        )],
    );
    let c = compare(&a, &other, &opts());
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.contains("same gateway version")),
        "{:?}",
        c.warnings
    );
    // A stub run is named as such, whatever its version string looks like.
    let mut stub = run("x", 1.0, 0);
    stub.gateway.is_stub = true;
    stub.gateway.version = Some("stub/fixed-scheduling".into());
    let s = Side::from_runs("s", SideKind::Run, &[("s".into(), stub)]);
    let c = compare(&a, &s, &opts());
    assert_eq!(c.b.gateway, "stub/fixed-scheduling (from /hello, stub)");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("stub gateway: not a Tyk result"))
    );
    // Without compose evidence there is no image to compare: no warning.
    let plain = compare(&side("a", 1, 1.0, 0), &side("b", 1, 1.0, 0), &opts());
    assert!(
        !plain
            .warnings
            .iter()
            .any(|w| w.contains("same gateway version"))
    );
}

#[test]
fn runs_from_schema_1_get_a_derived_time_to_usable_and_a_warning() {
    let mut old = run("old", 1.0, 0);
    old.schema_version = 1;
    old.time_to_usable = None;
    let a = Side::from_runs("old", SideKind::Run, &[("old".into(), old)]);
    assert!(a.runs[0].values.usable_derived);
    assert!(a.runs[0].values.usable_p50.is_some());
    let c = compare(&a, &side("new", 1, 1.0, 0), &opts());
    assert_eq!(c.a.derived_usable_runs, 1);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("predate the time-to-usable")),
        "{:?}",
        c.warnings
    );
}
