//! Criterion benchmarks of the dashboard mock's hot paths: serving `/system/policies` and adding
//! a policy, against a naive re-encode of the whole list per request (the seed's way).
//!
//! The naive path lives ONLY here, to measure the ratio issue 6 asks for; the mock never does it.
//! Run: `cargo bench --bench mock` (a few tens of seconds).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reload_repro::dashboard::pool::{DEFAULT_SEGMENT_POLICIES, PolicyPool, reply_chunks};
use reload_repro::protocol::PolicyListReply;

/// The policy count issue 6 names (the seed's 80,400 plus ~2,500 adds of one run).
const POLICIES: u64 = 82_905;

/// What the mock does per fetch: snapshot the pool and build the chunk list it streams.
fn serve_chunks(pool: &PolicyPool) -> (Vec<Bytes>, u64) {
    reply_chunks(&pool.snapshot(), "nonce")
}

/// The same, plus gathering the body into one buffer: an upper bound of the user-space cost
/// (hyper writes the chunks with vectored I/O and never builds this buffer).
fn serve_body(pool: &PolicyPool) -> Vec<u8> {
    let (chunks, len) = serve_chunks(pool);
    let mut body = Vec::with_capacity(len as usize);
    for c in &chunks {
        body.extend_from_slice(c);
    }
    body
}

/// The seed's way: the whole list held as values and re-encoded by serde_json per request.
fn naive_reencode(list: &PolicyListReply) -> Vec<u8> {
    serde_json::to_vec(list).unwrap_or_default()
}

fn bench_fetch(c: &mut Criterion) {
    let pool = PolicyPool::with_policies("monarch", DEFAULT_SEGMENT_POLICIES, POLICIES);
    let body = serve_body(&pool);
    let list: PolicyListReply = match serde_json::from_slice(&body) {
        Ok(list) => list,
        Err(e) => panic!("the pool's body must parse: {e}"),
    };
    let mut group = c.benchmark_group("policy_fetch_82905");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(30);
    group.bench_function("pool_chunks", |b| b.iter(|| black_box(serve_chunks(&pool))));
    group.bench_function("pool_body_bytes", |b| {
        b.iter(|| black_box(serve_body(&pool)))
    });
    group.sample_size(10);
    group.bench_function("naive_serde_reencode", |b| {
        b.iter(|| black_box(naive_reencode(&list)))
    });
    group.finish();
}

fn bench_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_add");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    // Adds cost the same at any size, but the pool only grows: start a fresh one every
    // `RESET` adds so memory stays bounded; building it is not timed.
    const RESET: u64 = 1_000_000;
    group.bench_function("add_at_82905", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(RESET);
                let pool = PolicyPool::with_policies("monarch", DEFAULT_SEGMENT_POLICIES, POLICIES);
                let start = std::time::Instant::now();
                for _ in 0..n {
                    black_box(pool.add());
                }
                elapsed += start.elapsed();
                left -= n;
            }
            elapsed
        })
    });
    group.finish();
}

fn bench_startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_startup");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("generate_80400", |b| {
        b.iter(|| {
            black_box(PolicyPool::with_policies(
                "monarch",
                DEFAULT_SEGMENT_POLICIES,
                80_400,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_fetch, bench_add, bench_startup);
criterion_main!(benches);
