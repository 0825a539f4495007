//! Snapshots and limits of the renderers.

use super::*;
use crate::diff::compare::tests::{opts, side};
use crate::diff::compare::{CompareOptions, compare};

fn improved() -> Comparison {
    compare(&side("2.9.4", 5, 3.0, 30), &side("pr", 5, 1.0, 0), &opts())
}

#[test]
fn markdown_of_an_improvement_puts_the_verdict_and_headline_table_first() {
    let md = render_markdown(&improved());
    let head = md.split("<details>").next().unwrap();
    insta::assert_snapshot!(head, @r#"
    ### reload-repro diff: `2.9.4` → `pr`: **improved**

    B is better: time to usable p50 599 ms → 99.8 ms (p = 0.008); time to usable p90 4527 ms → 200 ms (p = 0.012); outstanding share 10 % → 0 % (p = 0.007); hangs 5/5 → 0/5 (Fisher p = 0.008)

    | metric | A: 2.9.4 | B: pr | delta | p |
    |---|--:|--:|--:|--:|
    | time to usable p50 | 599 ms | 99.8 ms | -83.3 % | 0.008 |
    | time to usable p90 | 4527 ms | 200 ms | -95.6 % | 0.012 |
    | outstanding share | 10 % | 0 % | -100.0 % | 0.007 |
    | hangs (runs) | 5/5 | 0/5 | hang→pass | 0.008 |
    | gateway unresponsive (runs) | 0/5 | 0/5 | = | 1.000 |

    A: gateway v2.9.4 (from /hello)

    B: gateway v2.9.4.4 (from /hello)
    "#);
}

#[test]
fn terminal_table_lists_every_metric_and_the_verdict() {
    let text = render_terminal(&improved());
    insta::assert_snapshot!(text, @r#"
    A: 2.9.4  (v2.9.4 (from /hello); 5 run(s), 5 hang)
    B: pr  (v2.9.4.4 (from /hello); 5 run(s), 5 pass)

    metric                          A            B      delta        p  95% CI of B−A
    time to usable p50*        599 ms      99.8 ms    -83.3 %    0.008  [-504, -494] ms
    time to usable p90*       4527 ms       200 ms    -95.6 %    0.012  [-29801, -4255] ms
    latency p50                299 ms      99.8 ms    -66.7 %    0.008  [-202, -197] ms
    latency p90                599 ms       200 ms    -66.7 %    0.008  [-404, -394] ms
    latency p99               2695 ms       898 ms    -66.7 %    0.008  [-1818, -1778] ms
    latency max               4491 ms      1497 ms    -66.7 %    0.008  [-3033, -2958] ms
    outstanding share*           10 %          0 %   -100.0 %    0.007  [-10.3, -10] %
    policy fetches                 20           20          ~    1.000  [0, 0]
    coalescing ratio               15           15          ~    1.000  [0, 0]
    scheduler lag p99         1.50 ms      1.50 ms          ~    1.000  [0, 0] ms
    hangs*                        5/5          0/5  hang→pass    0.008
    unresponsive*                 0/5          0/5          =    1.000
    (* decides the verdict; ~ = not significant at alpha 0.05; > = not reached: fewer scenarios got their key than the percentile needs)

    verdict: improved — B is better: time to usable p50 599 ms → 99.8 ms (p = 0.008); time to usable p90 4527 ms → 200 ms (p = 0.012); outstanding share 10 % → 0 % (p = 0.007); hangs 5/5 → 0/5 (Fisher p = 0.008)
    "#);
}

#[test]
fn markdown_stays_under_64_kb_with_hundreds_of_runs() {
    let quick = CompareOptions {
        bootstrap: 0,
        ..opts()
    };
    let c = compare(&side("a", 250, 1.0, 0), &side("b", 250, 1.0, 0), &quick);
    let md = render_markdown(&c);
    assert!(md.len() <= MARKDOWN_LIMIT, "{} bytes", md.len());
    assert!(md.contains("more runs in `diff.json`"));
    assert!(md.starts_with("### reload-repro diff"));
}

#[test]
fn hostile_labels_cannot_break_the_table() {
    let c = compare(
        &side("a|b`\nc", 1, 1.0, 0),
        &side("x".repeat(70_000).as_str(), 1, 1.0, 0),
        &opts(),
    );
    let md = render_markdown(&c);
    assert!(md.len() <= MARKDOWN_LIMIT);
    assert!(md.contains("a\\|b' c"));
}

#[test]
fn json_round_trips_to_the_same_values() {
    let c = improved();
    let v: serde_json::Value = serde_json::from_str(&render_json(&c).unwrap()).unwrap();
    assert_eq!(v["verdict"], "improved");
    assert_eq!(v["hangs"]["a_hangs"], serde_json::json!([5, 5]));
    assert_eq!(v["metrics"].as_array().unwrap().len(), 10);
    assert_eq!(v["unresponsive"]["b_runs"], serde_json::json!([0, 5]));
}

#[test]
fn a_fleet_diff_shows_the_fleet_rows_and_names_the_gateway_that_regressed() {
    use crate::diff::compare::fleet::tests::fleet_side;
    let c = compare(
        &fleet_side("a", 5, &[(1.0, 0), (1.1, 0), (1.2, 0)]),
        &fleet_side("b", 5, &[(1.0, 0), (1.1, 0), (1.2, 30)]),
        &opts(),
    );
    let text = render_terminal(&c);
    for expected in [
        "fleet of 3 gateways",
        "last gw usable p90*",
        "usable everywhere*",
        "spread p99 ",
        "gateway 1: http://gateway-1:8080 (repro-gateway-1) — A 5 pass; B 5 pass → no change",
        "gateway 3: http://gateway-3:8080 (repro-gateway-3) — A 5 pass; B 5 hang → regressed",
        "succeeded ",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }
    let md = render_markdown(&c);
    let head = md.split("<details>").next().unwrap();
    assert!(head.contains("**Fleet of 3 gateways**"), "{head}");
    assert!(
        head.contains("| usable everywhere | 100 % | 90 % |"),
        "{head}"
    );
    let third = head
        .lines()
        .find(|l| l.starts_with("| 3 `http://gateway-3:8080"))
        .unwrap_or_else(|| panic!("no gateway 3 row in\n{head}"));
    assert!(third.contains("| 5 pass | 5 hang |") && third.contains("**regressed**: B is worse"));
    assert!(
        md.contains("| gateway 3: hangs (runs) | 0/5 | 5/5 |"),
        "{md}"
    );
}
