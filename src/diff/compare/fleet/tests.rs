//! Fleet comparisons on synthetic fleets: a gateway that starts to hang, one hidden by the
//! fleet-level counts, the same fleet twice, fleets of different sizes.

use super::super::tests::{opts, run};
use super::super::*;
use crate::diff::side::{Side, SideKind};
use crate::summary::Summary;
use crate::summary::fixtures::fleet_summary;

/// One fleet run: gateway i at latency scale `gateways[i].0` with `gateways[i].1` of 300
/// scenarios left waiting; the top level is the last gateway's (the slowest, the most lost).
pub(crate) fn fleet_run(label: &str, gateways: &[(f64, u64)]) -> Summary {
    let per_gateway: Vec<Summary> = gateways.iter().map(|&(x, o)| run(label, x, o)).collect();
    let slowest = gateways.iter().map(|g| g.0).fold(0.0, f64::max);
    let fastest = gateways.iter().map(|g| g.0).fold(f64::MAX, f64::min);
    let lost = gateways.iter().map(|g| g.1).max().unwrap_or(0);
    let spread = (slowest - fastest) * 100.0 + 5.0;
    fleet_summary(
        run(label, slowest, lost),
        &per_gateway,
        (spread, spread * 4.0),
    )
}

/// `n` fleet runs, latency jittered by a few percent per run as in [`super::super::tests::side`].
pub(crate) fn fleet_side(label: &str, n: usize, gateways: &[(f64, u64)]) -> Side {
    let runs: Vec<(String, Summary)> = (0..n)
        .map(|i| {
            let jitter = 1.0 + 0.02 * (i as f64 - n as f64 / 2.0) / n as f64;
            let jittered: Vec<(f64, u64)> =
                gateways.iter().map(|&(x, o)| (x * jitter, o)).collect();
            (format!("run-{i}"), fleet_run(label, &jittered))
        })
        .collect();
    Side::from_runs(label, SideKind::LabelAllRuns, &runs)
}

const HEALTHY: [(f64, u64); 3] = [(1.0, 0), (1.1, 0), (1.2, 0)];
const THIRD_HANGS: [(f64, u64); 3] = [(1.0, 0), (1.1, 0), (1.2, 30)];

#[test]
fn gateway_3_passing_in_a_and_hanging_in_b_is_regressed_and_named() {
    let c = compare(
        &fleet_side("a", 5, &HEALTHY),
        &fleet_side("b", 5, &THIRD_HANGS),
        &opts(),
    );
    assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
    assert_eq!(c.verdict.exit_code(), 1);
    let f = c.fleet.as_ref().expect("fleet rows");
    assert_eq!(f.gateways, [3, 3]);
    let verdicts: Vec<CiVerdict> = f.per_gateway.iter().map(|g| g.verdict).collect();
    assert_eq!(
        verdicts,
        [
            CiVerdict::NoChange,
            CiVerdict::NoChange,
            CiVerdict::Regressed
        ]
    );
    let third = &f.per_gateway[2];
    assert_eq!(third.b_gateway, "http://gateway-3:8080 (repro-gateway-3)");
    assert_eq!((third.a_verdicts.pass, third.b_verdicts.hang), (5, 5));
    assert!(
        c.reason
            .contains("gateway 3 (http://gateway-3:8080 (repro-gateway-3)): hangs 0/5 → 5/5"),
        "{}",
        c.reason
    );
    assert!(!c.reason.contains("gateway 1 ("), "{}", c.reason);
    let everywhere = &f.metrics[0];
    assert_eq!(everywhere.metric, Metric::UsableEverywhere);
    assert_eq!(
        (everywhere.a_median, everywhere.b_median),
        (Some(100.0), Some(90.0))
    );
    // More is better here: B's lower share ranks worse.
    assert!(
        everywhere.b_higher && everywhere.significant,
        "{everywhere:?}"
    );
}

#[test]
fn a_gateway_that_got_worse_is_a_regression_even_when_the_fleet_figures_did_not_move() {
    // A loses policies on gateway 1, B on gateway 2: the fleet (last gateway) looks the same.
    let a = fleet_side("a", 5, &[(1.0, 30), (1.0, 0)]);
    let b = fleet_side("b", 5, &[(1.0, 0), (1.0, 30)]);
    let c = compare(&a, &b, &opts());
    assert_eq!((c.hangs.a_hangs, c.hangs.b_hangs), ([5, 5], [5, 5]));
    assert!(c.metrics.iter().all(|m| !m.significant || !m.primary));
    assert_eq!(c.verdict, CiVerdict::Regressed, "{}", c.reason);
    assert!(
        c.reason.starts_with("B is worse: gateway 2 (")
            && c.reason.contains("though better: gateway 1 ("),
        "{}",
        c.reason
    );
    let f = c.fleet.unwrap();
    assert_eq!(f.per_gateway[0].verdict, CiVerdict::Improved);
    assert_eq!(f.per_gateway[1].verdict, CiVerdict::Regressed);
}

#[test]
fn the_same_fleet_twice_is_no_change_on_every_gateway() {
    let c = compare(
        &fleet_side("a", 5, &HEALTHY),
        &fleet_side("b", 5, &HEALTHY),
        &opts(),
    );
    assert_eq!(c.verdict, CiVerdict::NoChange, "{}", c.reason);
    assert!(
        c.reason
            .ends_with("nor the share usable everywhere or any of the 3 gateways' own")
    );
    let f = c.fleet.unwrap();
    assert_eq!(f.metrics.len(), Metric::FLEET.len());
    assert!(
        f.per_gateway
            .iter()
            .all(|g| g.verdict == CiVerdict::NoChange)
    );
    // Each gateway's own time to usable, not the fleet's: gateway 1 is faster than gateway 3.
    let p50 = |g: &GatewayComparison| g.metrics[0].a_median.unwrap();
    assert!(p50(&f.per_gateway[0]) < p50(&f.per_gateway[2]));
}

#[test]
fn fleets_of_different_sizes_are_not_comparable_unless_forced() {
    let (a, b) = (
        fleet_side("a", 4, &HEALTHY),
        fleet_side("b", 4, &HEALTHY[..2]),
    );
    let d = side_config_differences(&a, &b);
    let got: Vec<(&str, &str, &str)> = d
        .iter()
        .map(|d| (d.field.as_str(), d.a.as_str(), d.b.as_str()))
        .collect();
    assert_eq!(got, [("fleet.gateways", "3", "2")]);
    let single = super::super::tests::side("one", 4, 1.0, 0);
    let d = side_config_differences(&single, &b);
    assert_eq!(
        (d[0].field.as_str(), d[0].a.as_str()),
        ("fleet.gateways", "1")
    );
    let forced = compare(
        &a,
        &b,
        &CompareOptions {
            force: true,
            ..opts()
        },
    );
    assert!(
        forced.warnings[0].contains("fleet.gateways"),
        "{:?}",
        forced.warnings
    );
    assert!(
        forced
            .warnings
            .iter()
            .any(|w| w.contains("only the first 2 are compared")),
        "{:?}",
        forced.warnings
    );
    assert_eq!(forced.fleet.unwrap().per_gateway.len(), 2);
}

#[test]
fn a_side_mixing_fleet_sizes_is_refused_by_run() {
    let runs = vec![
        ("r0".to_owned(), fleet_run("a", &HEALTHY)),
        ("r1".to_owned(), fleet_run("a", &HEALTHY[..2])),
    ];
    let a = Side::from_runs("a", SideKind::LabelAllRuns, &runs);
    let d = side_config_differences(&a, &fleet_side("b", 1, &HEALTHY));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].field, "fleet.gateways (within a: r1)");
}

#[test]
fn a_single_gateway_comparison_has_no_fleet_part() {
    let (a, b) = (
        super::super::tests::side("a", 5, 1.0, 0),
        super::super::tests::side("b", 5, 1.0, 0),
    );
    let c = compare(&a, &b, &opts());
    assert!(c.fleet.is_none());
    let json = serde_json::to_value(&c).unwrap();
    assert!(json.get("fleet").is_none());
    // One fleet side against one single gateway side (forced): said so, no fleet rows.
    let forced = compare(
        &a,
        &fleet_side("f", 5, &HEALTHY),
        &CompareOptions {
            force: true,
            ..opts()
        },
    );
    assert!(forced.fleet.is_none());
    assert!(
        forced
            .warnings
            .iter()
            .any(|w| w.contains("only B ran against several gateways"))
    );
}
