//! Criterion benchmarks of the pure data parts: summary statistics, histogram merge and the diff.
//!
//! Inputs are synthetic but sized like real use: a 500/s × 5 s run has 2,500 scenarios, a large
//! run 200,000; a diff compares sets of up to 10 runs per side with the default 2,000 bootstrap
//! resamples. Run: `cargo bench --bench summary`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use reload_repro::diff::compare::{CompareOptions, compare};
use reload_repro::diff::side::{Side, SideKind};
use reload_repro::summary::censored::{
    time_to_usable, waits_from_scheduled_us, weighted_ms_from_us,
};
use reload_repro::summary::histogram::{encode_histogram, merge_histograms, new_latency_histogram};
use reload_repro::summary::stats::{latency_stats, top_rows};
use reload_repro::summary::{
    BackoffConfig, GatewayInfo, LatencyStats, Outcome, ReloadStats, RunFiles, ScenarioConfig,
    ScenarioCounts, ScenarioRecord, SchedulerStats, Summary, Verdict,
};

/// Latencies (µs) shaped like a fixed gateway's: tick wait 0–1 s plus a ~0.3 s reload.
fn latency_histogram(samples: u64, seed: u64) -> Histogram<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut h = new_latency_histogram();
    for _ in 0..samples {
        let us = 300_000 + rng.random_range(0..1_000_000u64);
        h.saturating_record(us);
    }
    h
}

fn records(n: u64) -> Vec<ScenarioRecord> {
    let mut rng = SmallRng::seed_from_u64(7);
    (0..n)
        .map(|seq| ScenarioRecord {
            seq,
            // Concurrent adds finish out of order: indexes are a shuffled neighbourhood of seq.
            index: 80_400 + seq + rng.random_range(0..64),
            policy_id: format!("{:032x}", rng.random::<u128>()),
            scheduled_ms: seq as f64 * 2.0,
            lag_ms: 0.05,
            add_done_ms: Some(0.4),
            attempts: 3,
            last_failure_ms: Some(700.0),
            success_ms: Some(800.0 + rng.random_range(0.0..500.0)),
            outcome: Outcome::Success,
            last_error: None,
            gateways: Vec::new(),
        })
        .collect()
}

fn summary(label: &str, scale: f64, seed: u64) -> Summary {
    let h = latency_histogram(2_500, seed);
    let mut latency = latency_stats(&h);
    latency.p50 = latency.p50.map(|v| v * scale);
    latency.p99 = latency.p99.map(|v| v * scale);
    Summary {
        schema_version: reload_repro::summary::SCHEMA_VERSION,
        label: label.into(),
        started_at: "2026-11-27T10:15:00Z".into(),
        finished_at: "2026-11-27T10:16:00Z".into(),
        kit_version: "0.1.0".into(),
        config: ScenarioConfig {
            rate_per_s: 500.0,
            duration_s: 5.0,
            trigger: "notify".into(),
            deadline_s: 120.0,
            stall_timeout_s: 30.0,
            request_timeout_s: 10.0,
            backoff: BackoffConfig {
                name: "seed".into(),
                initial_ms: 500.0,
                multiplier: 1.5,
                jitter: 0.5,
                max_interval_ms: 60_000.0,
            },
            initial_policies: 80_400,
        },
        gateway: GatewayInfo {
            url: "http://127.0.0.1:8080".into(),
            version: Some("v2.9.4".into()),
            version_source: "/hello".into(),
            is_stub: false,
        },
        verdict: Verdict::Pass,
        reason: "every scenario created its key".into(),
        scenarios: ScenarioCounts {
            scheduled: 2_500,
            started: 2_500,
            succeeded: 2_500,
            failed: 0,
            outstanding: 0,
        },
        latency_ms: LatencyStats { ..latency },
        top: vec![],
        reloads: ReloadStats {
            triggers_sent: 2_500,
            policy_fetches: 6,
            coalescing_ratio: Some(400.0),
            ..ReloadStats::default()
        },
        scheduler: SchedulerStats {
            lag_p99_ms: 0.4,
            ..SchedulerStats::default()
        },
        timeline: vec![],
        files: RunFiles::default(),
        environment: None,
        time_to_usable: None,
        attempts: None,
        gateways: Vec::new(),
        fleet: None,
    }
}

fn side(label: &str, runs: usize, scale: f64) -> Side {
    let runs: Vec<(String, Summary)> = (0..runs)
        .map(|i| {
            let s = summary(label, scale * (1.0 + i as f64 / 100.0), i as u64);
            (format!("run-{i}"), s)
        })
        .collect();
    Side::from_runs(label, SideKind::LabelAllRuns, &runs)
}

fn bench_stats(c: &mut Criterion) {
    let mut group = c.benchmark_group("summary");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    let h = latency_histogram(200_000, 1);
    group.bench_function("latency_stats_200k", |b| {
        b.iter(|| black_box(latency_stats(&h)))
    });
    let recs = records(200_000);
    group.sample_size(20);
    group.bench_function("top_rows_200k", |b| {
        b.iter(|| black_box(top_rows(&recs, 10)))
    });
    let hs: Vec<Histogram<u64>> = (0..10).map(|i| latency_histogram(2_500, i)).collect();
    group.sample_size(100);
    group.bench_function("merge_histograms_10", |b| {
        b.iter(|| black_box(merge_histograms(hs.iter())))
    });
    group.bench_function("encode_histogram", |b| {
        b.iter(|| black_box(encode_histogram(&h)))
    });
    // What the runner does once per run: 200k survivors and 20k lost scenarios, censored.
    let mut scheduled = new_latency_histogram();
    for i in 0..20_000u64 {
        scheduled.saturating_record(1 + i * 250);
    }
    group.bench_function("time_to_usable_200k", |b| {
        b.iter(|| {
            let usable = weighted_ms_from_us(&h);
            let waits = waits_from_scheduled_us(&scheduled, 65_000.0);
            black_box(time_to_usable(&usable, &waits, 220_000))
        })
    });
    group.finish();
}

fn bench_diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);
    let (a, b) = (side("2.9.4", 10, 1.0), side("pr", 10, 0.8));
    let opts = CompareOptions {
        alpha: 0.05,
        min_effect_pct: 10.0,
        bootstrap: 2_000,
        seed: 1,
        force: false,
    };
    group.bench_function("compare_10_vs_10_bootstrap_2000", |bench| {
        bench.iter(|| black_box(compare(&a, &b, &opts)))
    });
    group.bench_function("side_from_10_runs", |bench| {
        let runs: Vec<(String, Summary)> = (0..10)
            .map(|i| (format!("run-{i}"), summary("pr", 1.0, i)))
            .collect();
        bench.iter(|| black_box(Side::from_runs("pr", SideKind::LabelAllRuns, &runs)))
    });
    group.finish();
}

criterion_group!(benches, bench_stats, bench_diff);
criterion_main!(benches);
