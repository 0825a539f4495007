//! Test fixtures of the plot tests: a hang-shaped and a pass-shaped run, with the gateway log
//! evidence a compose run would carry.

use crate::evidence::parse_reload_timeline;
use crate::summary::{Outcome, ScenarioRecord, SecondSample, Summary, Verdict};

/// Load start of the fixture runs.
pub(crate) const STARTED_AT: &str = "2026-11-27T10:15:00.000Z";

/// A scenario record scheduled at `seq × 20 ms`.
pub(crate) fn record(
    seq: u64,
    index: u64,
    outcome: Outcome,
    success_ms: Option<f64>,
) -> ScenarioRecord {
    ScenarioRecord {
        scheduled_ms: seq as f64 * 20.0,
        add_done_ms: Some(3.0),
        last_failure_ms: Some(500.0),
        success_ms,
        ..crate::summary::fixtures::record(seq, index, outcome)
    }
}

/// A hang-shaped run: latencies grow with the index, the last 30 never finish, the first add
/// failed (index 0).
pub(crate) fn hang_records() -> Vec<ScenarioRecord> {
    (0..300u64)
        .map(|i| match i {
            0 => record(i, 0, Outcome::Failed, None),
            270.. => record(i, 80_400 + i, Outcome::Outstanding, None),
            _ => record(
                i,
                80_400 + i,
                Outcome::Success,
                Some(800.0 + (i % 50) as f64 * 40.0),
            ),
        })
        .collect()
}

/// A pass-shaped run: every scenario got its key within 1–3 s.
pub(crate) fn pass_records() -> Vec<ScenarioRecord> {
    (0..300u64)
        .map(|i| {
            let ms = 1_000.0 + (i * 37 % 200) as f64 * 10.0;
            record(i, 80_401 + i, Outcome::Success, Some(ms))
        })
        .collect()
}

/// Twelve seconds: 60 starts a second for 5 s, then 30 left in flight.
pub(crate) fn hang_timeline() -> Vec<SecondSample> {
    (0..12u64)
        .map(|second| SecondSample {
            second,
            started: if second < 5 { 60 } else { 0 },
            succeeded: if (1..6).contains(&second) { 54 } else { 0 },
            in_flight: if second < 5 {
                60 * (second + 1) - 54 * second
            } else {
                30
            },
            attempts: 120,
            fetches: u64::from(second < 5),
        })
        .collect()
}

/// Dashboard fetch times of the hang fixture, seconds since the load started.
pub(crate) const HANG_FETCHES: [f64; 4] = [0.8, 1.9, 3.1, 4.3];

/// A gateway log as compose collects it (docker timestamps): startup, then two reloads.
const GATEWAY_LOG: &str = "\
2026-11-27T10:14:58.000000000Z time=\"Nov 27 10:14:58\" level=info msg=\"Tyk Gateway started (v2.9.4)\"
2026-11-27T10:15:00.700000000Z time=\"Nov 27 10:15:00\" level=info msg=\"Reload queued\"
2026-11-27T10:15:01.200000000Z time=\"Nov 27 10:15:01\" level=info msg=\"Reload already queued\"
2026-11-27T10:15:01.900000000Z time=\"Nov 27 10:15:01\" level=info msg=\"Policies found (80500 total):\"
2026-11-27T10:15:02.600000000Z time=\"Nov 27 10:15:02\" level=info msg=\"API reload complete\"
2026-11-27T10:15:02.900000000Z time=\"Nov 27 10:15:02\" level=info msg=\"Reload queued\"
2026-11-27T10:15:04.300000000Z time=\"Nov 27 10:15:04\" level=info msg=\"Policies found (80650 total):\"
2026-11-27T10:15:05.400000000Z time=\"Nov 27 10:15:05\" level=info msg=\"API reload complete\"
";

/// A summary of the given shape, with the gateway log's timeline in its evidence.
pub(crate) fn summary(verdict: Verdict, records: &[ScenarioRecord]) -> Summary {
    let mut s = crate::summary::set::sample_summary();
    s.verdict = verdict;
    s.reason = match verdict {
        Verdict::Pass => "all 300 scenarios got their key".into(),
        _ => "30 of 300 scenarios never got their key".into(),
    };
    s.started_at = STARTED_AT.into();
    s.finished_at = "2026-11-27T10:15:12.000Z".into();
    s.timeline = hang_timeline();
    let (succeeded, failed, outstanding) = super::outcome_counts(records);
    s.scenarios.scheduled = records.len() as u64;
    s.scenarios.started = records.len() as u64;
    s.scenarios.succeeded = succeeded as u64;
    s.scenarios.failed = failed as u64;
    s.scenarios.outstanding = outstanding as u64;
    s.environment = Some(crate::summary::Environment {
        reload_timeline: Some(parse_reload_timeline(GATEWAY_LOG)),
        logs: [("gateway".to_owned(), "gateway.log.gz".to_owned())].into(),
        ..Default::default()
    });
    s
}

/// Gateways of the fleet fixture.
pub(crate) const FLEET_GATEWAYS: usize = 3;

/// A fleet-shaped run of 300 scenarios on [`FLEET_GATEWAYS`] gateways: gateway i about
/// `i × 600 ms` slower than gateway 1, each scenario's slowest gateway varying; the last
/// gateway never gets the last 30 policies (still waiting, so the fleet waits too).
pub(crate) fn fleet_records() -> Vec<ScenarioRecord> {
    use crate::summary::fixtures::gateway_scenario;
    (0..300u64)
        .map(|seq| {
            let gateways: Vec<_> = (0..FLEET_GATEWAYS as u64)
                .map(|i| {
                    if i == FLEET_GATEWAYS as u64 - 1 && seq >= 270 {
                        gateway_scenario(Outcome::Outstanding, None)
                    } else {
                        let ms = 800.0 + i as f64 * 600.0 + ((seq * 7 + i * 13) % 50) as f64 * 30.0;
                        gateway_scenario(Outcome::Success, Some(ms))
                    }
                })
                .collect();
            let last = gateways
                .iter()
                .map(|g| g.success_ms)
                .try_fold(0.0, |hi: f64, ms| ms.map(|ms| hi.max(ms)));
            let outcome = if last.is_some() {
                Outcome::Success
            } else {
                Outcome::Outstanding
            };
            ScenarioRecord {
                gateways,
                ..record(seq, 80_400 + seq, outcome, last)
            }
        })
        .collect()
}

/// The summary of [`fleet_records`]: a hang of the fleet, gateway 3 hanging, the others passing.
pub(crate) fn fleet_run_summary(records: &[ScenarioRecord]) -> Summary {
    let top = summary(Verdict::Hang, records);
    let gateways: Vec<Summary> = (0..FLEET_GATEWAYS)
        .map(|i| {
            let lost = if i == FLEET_GATEWAYS - 1 { 30 } else { 0 };
            let mut g = summary(
                if lost > 0 {
                    Verdict::Hang
                } else {
                    Verdict::Pass
                },
                records,
            );
            g.scenarios.succeeded = 300 - lost;
            g.scenarios.outstanding = lost;
            g.time_to_usable = Some(crate::summary::censored::time_to_usable(
                &[(1_000.0, 300 - lost)],
                &[(12_000.0, lost)],
                300,
            ));
            g
        })
        .collect();
    crate::summary::fixtures::fleet_summary(top, &gateways, (1_200.0, 2_600.0))
}
