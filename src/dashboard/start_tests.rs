//! The start barrier on paused time: release, timeouts, refusals, bounded memory.

use std::sync::Arc;
use std::time::Duration;

use super::*;

fn req(run: &str, shard: u64, shards: u64, wait_s: u64) -> StartRequest {
    StartRequest {
        run_id: run.into(),
        shard,
        shards,
        wait_ms: wait_s * 1000,
    }
}

#[tokio::test(start_paused = true)]
async fn every_shard_gets_the_same_instant_once_the_last_checks_in() {
    let b = Arc::new(Barriers::default());
    let mut waiting = Vec::new();
    for k in 0..2 {
        let b = b.clone();
        waiting.push(tokio::spawn(async move {
            b.check_in(&req("r1", k, 3, 60)).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        waiting.iter().all(|t| !t.is_finished()),
        "held until shard 2"
    );
    let last = b.check_in(&req("r1", 2, 3, 60)).await.unwrap();
    for t in waiting {
        assert_eq!(t.await.unwrap().unwrap(), last);
    }
    assert_eq!(last.shards, 3);
    assert!(last.start_unix_ms > unix_ms(), "the start lies ahead");
}

#[tokio::test(start_paused = true)]
async fn a_missing_shard_fails_the_run_for_every_waiting_shard_naming_it() {
    let b = Arc::new(Barriers::default());
    let other = {
        let b = b.clone();
        tokio::spawn(async move { b.check_in(&req("r2", 0, 3, 600)).await })
    };
    tokio::task::yield_now().await;
    let err = b.check_in(&req("r2", 2, 3, 30)).await.unwrap_err();
    let Refusal::Timeout(text) = &err else {
        panic!("{err:?}")
    };
    assert!(text.contains("shard(s) 1/3"), "{text}");
    assert!(!text.contains("shard(s) 0/3"), "{text}");
    // The shard with the longer wait is released with the same failure, not left hanging.
    assert_eq!(other.await.unwrap().unwrap_err(), err);
    // A latecomer learns the run failed.
    let late = b.check_in(&req("r2", 1, 3, 30)).await.unwrap_err();
    assert!(
        matches!(late, Refusal::Conflict(ref m) if m.contains("failed")),
        "{late:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn disagreeing_counts_duplicates_and_restarts_are_refused() {
    let b = Arc::new(Barriers::default());
    let first = {
        let b = b.clone();
        tokio::spawn(async move { b.check_in(&req("r3", 0, 2, 60)).await })
    };
    tokio::task::yield_now().await;
    let n = b.check_in(&req("r3", 1, 3, 60)).await.unwrap_err();
    assert!(
        matches!(n, Refusal::Conflict(ref m) if m.contains("said 2 shards")),
        "{n:?}"
    );
    let dup = b.check_in(&req("r3", 0, 2, 60)).await.unwrap_err();
    assert!(
        matches!(dup, Refusal::Conflict(ref m) if m.contains("already checked in")),
        "{dup:?}"
    );
    b.check_in(&req("r3", 1, 2, 60)).await.unwrap();
    first.await.unwrap().unwrap();
    let again = b.check_in(&req("r3", 0, 2, 60)).await.unwrap_err();
    assert!(
        matches!(again, Refusal::Conflict(ref m) if m.contains("already started")),
        "{again:?}"
    );
    let bad = b.check_in(&req("r4", 2, 2, 60)).await.unwrap_err();
    assert!(matches!(bad, Refusal::BadRequest(_)), "{bad:?}");
}

#[tokio::test(start_paused = true)]
async fn old_run_ids_are_forgotten_beyond_the_bound() {
    let b = Barriers::default();
    for i in 0..(MAX_RUNS + 50) {
        b.check_in(&req(&format!("run-{i}"), 0, 1, 1))
            .await
            .unwrap();
    }
    assert_eq!(b.remembered(), MAX_RUNS);
    // The newest is still remembered (a restart is refused), the oldest is not.
    let newest = format!("run-{}", MAX_RUNS + 49);
    assert!(b.check_in(&req(&newest, 0, 1, 1)).await.is_err());
    assert!(b.check_in(&req("run-0", 0, 1, 1)).await.is_ok());
}
