//! The driver with its machine on tokio's paused clock: given trigger times and reload
//! durations, which reload fetched when, which reload served each trigger, and which triggers
//! were lost (served by a reload that had fetched before them). These fail if the v2.9.4 loop is
//! turned back into "wait for a trigger, then for a tick" or loses Go's buffered tick.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ReloadQueue, drive_reloads};
use crate::stub::ReloadMode;

const PERIOD: Duration = Duration::from_secs(1);

/// What happened in one simulated run; times in ms since the loop started.
#[derive(Debug)]
struct Outcome {
    /// Start (= policy fetch) of each reload.
    fetches: Vec<u64>,
    /// Per trigger: the reload whose callbacks included it.
    served_by: Vec<Option<usize>>,
    triggers: Vec<u64>,
}

impl Outcome {
    /// Triggers counted as served by a reload that fetched before them.
    fn lost_when_served(&self) -> Vec<usize> {
        (0..self.triggers.len())
            .filter(|&i| self.served_by[i].is_some_and(|r| self.fetches[r] < self.triggers[i]))
            .collect()
    }

    /// Triggers no fetch ever came after: their change is never loaded (the hang).
    fn never_fetched(&self) -> Vec<usize> {
        let last = self.fetches.last().copied();
        (0..self.triggers.len())
            .filter(|&i| last.is_none_or(|f| f < self.triggers[i]))
            .collect()
    }
}

/// Runs the loop from t = 0 for `until_ms` with triggers at `triggers_ms`; reload k lasts
/// `durations_ms[k]` (the last value repeats).
async fn simulate(
    mode: ReloadMode,
    triggers_ms: &[u64],
    durations_ms: &[u64],
    until_ms: u64,
) -> Outcome {
    let origin = Instant::now();
    let queue = Arc::new(ReloadQueue::<usize>::new(mode, None));
    let fetches = Arc::new(Mutex::new(Vec::new()));
    let served_by = Arc::new(Mutex::new(vec![None; triggers_ms.len()]));
    let shutdown = CancellationToken::new();

    let driver = {
        let (queue, fetches, served_by, shutdown) = (
            queue.clone(),
            fetches.clone(),
            served_by.clone(),
            shutdown.clone(),
        );
        let durations: Vec<u64> = durations_ms.to_vec();
        tokio::spawn(async move {
            let mut finished = 0;
            let work = || {
                let fetches = fetches.clone();
                let durations = durations.clone();
                async move {
                    let k = {
                        let mut f = fetches.lock().unwrap();
                        f.push(origin.elapsed().as_millis() as u64);
                        f.len() - 1
                    };
                    let d = durations[k.min(durations.len() - 1)];
                    tokio::time::sleep(Duration::from_millis(d)).await;
                }
            };
            let served = |waiters: Vec<usize>| {
                let mut by = served_by.lock().unwrap();
                for w in waiters {
                    by[w] = Some(finished);
                }
                finished += 1;
            };
            drive_reloads(&queue, PERIOD, work, served, &shutdown).await;
        })
    };
    for (i, &t) in triggers_ms.iter().enumerate() {
        tokio::time::sleep_until(origin + Duration::from_millis(t)).await;
        queue.trigger(Some(i));
    }
    tokio::time::sleep_until(origin + Duration::from_millis(until_ms)).await;
    shutdown.cancel();
    driver.await.unwrap();
    let fetches = fetches.lock().unwrap().clone();
    let served_by = served_by.lock().unwrap().clone();
    Outcome {
        fetches,
        served_by,
        triggers: triggers_ms.to_vec(),
    }
}

/// Triggers every `step` ms from `from` to `to` inclusive.
fn burst(from: u64, to: u64, step: u64) -> Vec<u64> {
    (from..=to).step_by(step as usize).collect()
}

#[tokio::test(start_paused = true)]
async fn v294_a_trigger_after_the_first_tick_starts_its_reload_at_once() {
    let run = simulate(ReloadMode::V294, &[1_500], &[300], 5_000).await;
    // "Wait for a trigger, then for a tick" would fetch at 2,000.
    assert_eq!(run.fetches, vec![1_500]);
    assert_eq!(run.served_by, vec![Some(0)]);
}

#[tokio::test(start_paused = true)]
async fn v294_a_trigger_before_the_first_tick_waits_for_it() {
    let run = simulate(ReloadMode::V294, &[300, 600], &[200], 5_000).await;
    assert_eq!(
        run.fetches,
        vec![1_000],
        "one reload at the first tick serves both"
    );
    assert_eq!(run.served_by, vec![Some(0), Some(0)]);
    assert!(run.lost_when_served().is_empty(), "it fetched after both");
}

#[tokio::test(start_paused = true)]
async fn v294_after_a_reload_longer_than_the_tick_the_next_trigger_starts_at_once() {
    // Reload 0: 1,500 → 2,700; the tick of 2,000 waits in the channel meanwhile.
    let run = simulate(
        ReloadMode::V294,
        &[1_500, 2_000, 2_800],
        &[1_200, 300],
        6_000,
    )
    .await;
    // A loop that dropped the buffered tick, or waited for a tick after the trigger, would
    // fetch at 3,000.
    assert_eq!(run.fetches, vec![1_500, 2_800]);
    assert_eq!(run.served_by, vec![Some(0), Some(0), Some(1)]);
    assert_eq!(
        run.lost_when_served(),
        vec![1],
        "the trigger at 2,000 came after reload 0's fetch"
    );
}

#[tokio::test(start_paused = true)]
async fn v294_after_a_short_reload_triggers_wait_for_the_tick_and_are_safe() {
    // Reload 0: 1,500 → 1,700; then the loop waits for the tick of 2,000.
    let run = simulate(ReloadMode::V294, &[1_500, 1_800, 1_900], &[200], 5_000).await;
    assert_eq!(run.fetches, vec![1_500, 2_000]);
    assert_eq!(run.served_by, vec![Some(0), Some(1), Some(1)]);
    assert!(run.lost_when_served().is_empty());
}

#[tokio::test(start_paused = true)]
async fn v294_a_burst_ending_in_the_idle_gap_escapes() {
    // 300 ms reloads: 1,005 → 1,305, then idle until the tick of 2,000. A burst that ends in
    // that gap is fetched by the reload at 2,000: the lucky escape of short reloads.
    let run = simulate(ReloadMode::V294, &burst(1_005, 1_795, 10), &[300], 6_000).await;
    assert_eq!(run.fetches, vec![1_005, 2_000]);
    assert!(run.never_fetched().is_empty(), "escaped: {run:?}");
}

#[tokio::test(start_paused = true)]
async fn v294_a_burst_ending_during_a_reload_loses_its_tail() {
    let run = simulate(ReloadMode::V294, &burst(1_005, 2_205, 10), &[300], 6_000).await;
    assert_eq!(run.fetches, vec![1_005, 2_000], "no reload after the burst");
    let lost = run.never_fetched();
    let first_lost = run.triggers[lost[0]];
    assert_eq!(first_lost, 2_005, "everything after the fetch at 2,000");
    assert_eq!(lost.len(), 21);
}

#[tokio::test(start_paused = true)]
async fn v294_at_the_seed_load_with_two_second_reloads_loses_the_last_second() {
    // 500 triggers/s for 5 s from t = 10 s (odd ms: never on a tick or a reload's end);
    // every reload takes 2 s (what the stub models at 80k policies).
    let triggers = burst(10_001, 14_999, 2);
    let run = simulate(ReloadMode::V294, &triggers, &[2_000], 30_000).await;
    // Back to back: each reload ends with a tick waiting, and the next trigger (2 ms later)
    // starts the next one at once.
    assert_eq!(run.fetches, vec![10_001, 12_003, 14_005]);
    let lost = run.never_fetched();
    assert_eq!(lost.len(), 497, "triggers after 14,005: never loaded");
    assert!(
        run.served_by.iter().all(Option::is_some),
        "yet every callback ran"
    );
}

#[tokio::test(start_paused = true)]
async fn fixed_at_the_seed_load_loses_nothing() {
    let triggers = burst(10_001, 14_999, 2);
    let run = simulate(ReloadMode::Fixed, &triggers, &[2_000], 30_000).await;
    // First reload at the first tick after the first trigger; then back to back (a tick is
    // always waiting after 2 s) until the list comes up empty.
    assert_eq!(run.fetches, vec![11_000, 13_000, 15_000]);
    assert!(run.never_fetched().is_empty());
    assert!(
        run.lost_when_served().is_empty(),
        "{:?}",
        run.lost_when_served()
    );
}

#[tokio::test(start_paused = true)]
async fn fixed_a_trigger_waits_for_a_tick_even_when_the_loop_is_idle() {
    let run = simulate(ReloadMode::Fixed, &[1_500], &[300], 5_000).await;
    assert_eq!(run.fetches, vec![2_000]);
}

#[tokio::test(start_paused = true)]
async fn fixed_a_trigger_during_a_long_reload_gets_the_next_one_at_its_end() {
    // Reload 0: 1,000 → 2,200 (the tick of 2,000 waits); the trigger at 1,500 is served by
    // reload 1, which starts at 2,200 on that waiting tick.
    let run = simulate(ReloadMode::Fixed, &[300, 1_500], &[1_200, 300], 5_000).await;
    assert_eq!(run.fetches, vec![1_000, 2_200]);
    assert_eq!(run.served_by, vec![Some(0), Some(1)]);
    assert!(run.lost_when_served().is_empty());
}
