//! Recording a fleet run: every finished scenario also folds into one collector per gateway
//! (its own counts, latency and censored time to usable, as a single-gateway run would have
//! them) and into the spread histograms (first, median and last gateway, last minus first).
//!
//! Only used with more than one gateway; a single-gateway run never builds one. The per-gateway
//! collectors stream nothing: the scenario's line in `scenarios.jsonl` carries every gateway.

use hdrhistogram::Histogram;

use super::{Collected, Collector};
use crate::summary::histogram::new_latency_histogram;
use crate::summary::{Outcome, ScenarioRecord};

/// The per-gateway collectors and the spread of each change over the fleet.
pub struct FleetCollector {
    lanes: Vec<Collector<std::io::Sink>>,
    spread: Spread,
}

/// What a fleet run kept once every scenario was folded in.
#[derive(Debug)]
pub struct FleetCollected {
    /// One per gateway, in the order of `--gateway`.
    pub lanes: Vec<Collected>,
    /// The spread histograms.
    pub spread: Spread,
}

/// Per scenario that got its key on every gateway: latencies of its first, median and last
/// gateway, and last minus first, microseconds.
#[derive(Debug)]
pub struct Spread {
    /// Scenarios usable on every gateway.
    pub usable_everywhere: u64,
    /// First gateway's latency.
    pub first_us: Histogram<u64>,
    /// Median gateway's latency (the lower median for an even count).
    pub median_us: Histogram<u64>,
    /// Last gateway's latency.
    pub last_us: Histogram<u64>,
    /// Last minus first.
    pub spread_us: Histogram<u64>,
}

fn us(ms: f64) -> u64 {
    (ms * 1000.0).round().max(1.0) as u64
}

fn record_into(h: &mut Histogram<u64>, value: u64) {
    let _ = h.record(value.clamp(1, h.high()));
}

impl Spread {
    fn new() -> Self {
        Self {
            usable_everywhere: 0,
            first_us: new_latency_histogram(),
            median_us: new_latency_histogram(),
            last_us: new_latency_histogram(),
            spread_us: new_latency_histogram(),
        }
    }

    /// Folds in one scenario's per-gateway success times (ms); ignored unless every gateway
    /// has one.
    pub fn push(&mut self, success_ms: &[Option<f64>]) {
        let Some(mut times) = success_ms.iter().copied().collect::<Option<Vec<f64>>>() else {
            return;
        };
        if times.is_empty() {
            return;
        }
        times.sort_by(f64::total_cmp);
        let first = times[0];
        let last = times[times.len() - 1];
        self.usable_everywhere += 1;
        record_into(&mut self.first_us, us(first));
        record_into(&mut self.median_us, us(times[(times.len() - 1) / 2]));
        record_into(&mut self.last_us, us(last));
        // A spread of 0 is recorded as the histogram's lowest value (1 µs).
        record_into(&mut self.spread_us, us(last - first));
    }
}

/// The record of one scenario as gateway `lane` saw it (the scenario's own fields when it
/// never reached the key creation, e.g. a failed add).
pub fn lane_record(record: &ScenarioRecord, lane: usize) -> ScenarioRecord {
    let mut own = ScenarioRecord {
        gateways: Vec::new(),
        ..record.clone()
    };
    if let Some(on) = record.gateways.get(lane) {
        own.attempts = on.attempts;
        own.success_ms = on.success_ms;
        own.last_failure_ms = on.last_failure_ms;
        own.last_error = on.last_error.clone();
        own.outcome = on.outcome;
    } else if own.outcome == Outcome::Success {
        // A success needs every gateway's row; without one the gateway never answered.
        own.outcome = Outcome::Outstanding;
        own.success_ms = None;
    }
    own
}

impl FleetCollector {
    /// Collectors for `gateways` gateways, sized for `scheduled` scenarios; `None` for one.
    pub fn new(gateways: usize, scheduled: u64) -> Option<Self> {
        (gateways > 1).then(|| Self {
            lanes: (0..gateways)
                .map(|_| Collector::new(std::io::sink(), scheduled))
                .collect(),
            spread: Spread::new(),
        })
    }

    /// Folds one finished scenario into every gateway's collector and the spread.
    pub fn push(&mut self, record: &ScenarioRecord) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            lane.push(lane_record(record, i));
        }
        if record.outcome == Outcome::Success {
            let times: Vec<Option<f64>> = record.gateways.iter().map(|g| g.success_ms).collect();
            self.spread.push(&times);
        }
    }

    /// What was kept.
    pub fn finish(self) -> FleetCollected {
        FleetCollected {
            lanes: self.lanes.into_iter().map(|c| c.finish().0).collect(),
            spread: self.spread,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::GatewayScenario;
    use crate::summary::fixtures::record;

    fn on(outcome: Outcome, success_ms: Option<f64>) -> GatewayScenario {
        GatewayScenario {
            attempts: 2,
            success_ms,
            outcome,
            last_failure_ms: Some(1.0),
            last_error: None,
        }
    }

    #[test]
    fn each_gateway_counts_its_own_outcome_and_the_spread_only_scenarios_usable_everywhere() {
        let mut c = FleetCollector::new(3, 10).expect("three gateways");
        let mut done = record(0, 1, Outcome::Success);
        done.gateways = vec![
            on(Outcome::Success, Some(30.0)),
            on(Outcome::Success, Some(10.0)),
            on(Outcome::Success, Some(20.0)),
        ];
        let mut partly = record(1, 2, Outcome::Outstanding);
        partly.gateways = vec![
            on(Outcome::Success, Some(5.0)),
            on(Outcome::Success, Some(6.0)),
            on(Outcome::Outstanding, None),
        ];
        c.push(&done);
        c.push(&partly);
        c.push(&record(2, 0, Outcome::Failed)); // its add failed: no per-gateway rows
        let kept = c.finish();
        let counts: Vec<(u64, u64, u64)> = kept
            .lanes
            .iter()
            .map(|l| (l.succeeded, l.outstanding, l.failed))
            .collect();
        assert_eq!(counts, vec![(2, 0, 1), (2, 0, 1), (1, 1, 1)]);
        let s = &kept.spread;
        assert_eq!(s.usable_everywhere, 1);
        assert_eq!(s.first_us.max(), s.first_us.highest_equivalent(10_000));
        assert_eq!(s.median_us.max(), s.median_us.highest_equivalent(20_000));
        assert_eq!(s.last_us.max(), s.last_us.highest_equivalent(30_000));
        assert_eq!(s.spread_us.max(), s.spread_us.highest_equivalent(20_000));
    }

    #[test]
    fn one_gateway_builds_no_fleet_collector() {
        assert!(FleetCollector::new(1, 10).is_none());
    }
}
