//! `run --shard K/N`: one runner drives every N-th scenario of the single-runner schedule.
//!
//! Scenario `s` of the full schedule (`origin + s / rate`) is driven by shard `s mod N`, at the
//! instant the single runner would start it, so N shards at `--rate R` together generate one
//! runner's load at R. Shard K's j-th start is scenario `K + j·N` at
//! `origin + K/R + j·N/R`: the ordinary open-loop schedule with origin `origin + K/R` and rate
//! `R/N`, its sequence numbers mapped back ([`Shard::seq`]), so the schedule code is untouched
//! and every record keeps the full schedule's `seq`, `scheduled_ms` and jitter seed.
//!
//! The shards agree on `origin` through the dashboard mock (`POST /repro/start`, see
//! `src/dashboard/start.rs`): each checks in after its readiness wait, and all get the same
//! start instant (Unix ms) once the last one did. Each turns it into its own monotonic origin.
//! The shards' clocks must agree (one machine, or NTP-synchronised nodes).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::protocol::HEADER_ADMIN_TOKEN;
use crate::summary::ShardInfo;

/// Most shards one run may have.
pub const MAX_SHARDS: u64 = 64;
/// Longest `--run-id`.
pub const MAX_RUN_ID_CHARS: usize = 64;
/// Lead of an unsharded run's origin, so the first start is not already late.
pub const LOCAL_LEAD: Duration = Duration::from_millis(20);

/// This runner's part of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// K: this runner drives the scenarios with `seq mod count == index`.
    pub index: u64,
    /// N: how many runners share the schedule.
    pub count: u64,
    /// Names the sharded run; the same for every shard of it.
    pub run_id: String,
}

impl Shard {
    /// Parses `--shard K/N` and `--run-id` (required when N > 1). `None` when neither asks for
    /// sharding (`--shard` absent, or `0/1` without a run id).
    pub fn from_flags(shard: Option<&str>, run_id: Option<&str>) -> anyhow::Result<Option<Self>> {
        let run_id = run_id.map(str::trim).filter(|r| !r.is_empty());
        let Some(text) = shard.map(str::trim).filter(|s| !s.is_empty()) else {
            if let Some(id) = run_id {
                anyhow::bail!(
                    "--run-id `{id}` without --shard: give each runner its part, e.g. --shard 0/2"
                );
            }
            return Ok(None);
        };
        let (index, count) = parse_fraction(text)?;
        let Some(run_id) = run_id else {
            if count > 1 {
                anyhow::bail!(
                    "--shard {text}: --run-id is required with more than one shard (the same \
                     value for every shard of the run, e.g. --run-id nightly-42)"
                );
            }
            return Ok(None);
        };
        check_run_id(run_id)?;
        Ok(Some(Self {
            index,
            count,
            run_id: run_id.to_owned(),
        }))
    }

    /// Scenarios of a `total`-scenario schedule this shard drives.
    pub fn share(&self, total: u64) -> u64 {
        if self.index >= total {
            0
        } else {
            (total - self.index - 1) / self.count + 1
        }
    }

    /// The full schedule's sequence number of this shard's `j`-th start.
    pub fn seq(&self, j: u64) -> u64 {
        self.index + j * self.count
    }

    /// Origin and rate of this shard's own open-loop schedule (see the module doc).
    pub fn schedule<T: std::ops::Add<Duration, Output = T>>(
        &self,
        origin: T,
        rate: f64,
    ) -> (T, f64) {
        (
            origin + Duration::from_secs_f64(self.index as f64 / rate),
            rate / self.count as f64,
        )
    }

    /// What `summary.json` records.
    pub fn info(&self) -> ShardInfo {
        ShardInfo {
            index: self.index,
            count: self.count,
            run_id: self.run_id.clone(),
        }
    }
}

/// The scenarios this runner schedules out of `total`: its share when sharded. Refuses a
/// shard with nothing to drive and `--runs` above 1 (each repetition would need its own start
/// barrier and its own pool reset, which one shard cannot do for the others).
pub fn checked_share(shard: Option<&Shard>, total: u64, runs: u32) -> anyhow::Result<u64> {
    let Some(shard) = shard else {
        return Ok(total);
    };
    if runs > 1 {
        anyhow::bail!(
            "--shard {}/{} with --runs {runs}: a sharded run is one repetition; start the \
             shards again with a new --run-id for another",
            shard.index,
            shard.count
        );
    }
    match shard.share(total) {
        0 => anyhow::bail!(
            "--shard {}/{}: the run schedules only {total} scenario(s), none for this shard \
             (use fewer shards or a longer --duration)",
            shard.index,
            shard.count
        ),
        share => Ok(share),
    }
}

/// The schedule of an optional shard: the whole schedule without one.
pub fn plan(shard: Option<&Shard>) -> Shard {
    shard.cloned().unwrap_or(Shard {
        index: 0,
        count: 1,
        run_id: String::new(),
    })
}

fn parse_fraction(text: &str) -> anyhow::Result<(u64, u64)> {
    let usage = || {
        anyhow::anyhow!(
            "--shard `{text}`: write K/N with 0 ≤ K < N ≤ {MAX_SHARDS}, e.g. --shard 0/2 and \
             --shard 1/2 for two runners"
        )
    };
    let (k, n) = text.split_once('/').ok_or_else(usage)?;
    let k: u64 = k.trim().parse().map_err(|_| usage())?;
    let n: u64 = n.trim().parse().map_err(|_| usage())?;
    if n == 0 || n > MAX_SHARDS || k >= n {
        return Err(usage());
    }
    Ok((k, n))
}

fn check_run_id(id: &str) -> anyhow::Result<()> {
    if id.chars().count() > MAX_RUN_ID_CHARS
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        anyhow::bail!(
            "--run-id `{id}`: use at most {MAX_RUN_ID_CHARS} letters, digits, '.', '_' or '-'"
        );
    }
    Ok(())
}

/// `POST /repro/start` request: this shard checks in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartRequest {
    /// The sharded run.
    pub run_id: String,
    /// This shard's index K.
    pub shard: u64,
    /// N.
    pub shards: u64,
    /// How long to wait for the other shards, milliseconds.
    pub wait_ms: u64,
}

/// `POST /repro/start` answer once every shard checked in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartAnswer {
    /// The sharded run.
    pub run_id: String,
    /// N.
    pub shards: u64,
    /// The load's start instant, Unix milliseconds (shared by every shard).
    pub start_unix_ms: u64,
}

/// The load's origin as a monotonic instant and in Unix ms. Unsharded: a moment from now.
/// Sharded: the instant every shard agreed on through the mock (waiting at most `wait`).
pub async fn agree_origin(
    shard: Option<&Shard>,
    dashboard: &str,
    admin_token: Option<&str>,
    wait: Duration,
) -> anyhow::Result<(Instant, u64)> {
    let Some(shard) = shard else {
        return Ok((Instant::now() + LOCAL_LEAD, unix_ms(SystemTime::now()) + 20));
    };
    let answer = check_in(shard, dashboard, admin_token, wait).await?;
    Ok((local_instant(answer.start_unix_ms), answer.start_unix_ms))
}

/// The monotonic instant at `unix_ms` on this machine's clock (now, if it already passed).
pub fn local_instant(unix_ms_at: u64) -> Instant {
    let (now, now_ms) = (Instant::now(), unix_ms(SystemTime::now()));
    now + Duration::from_millis(unix_ms_at.saturating_sub(now_ms))
}

async fn check_in(
    shard: &Shard,
    dashboard: &str,
    admin_token: Option<&str>,
    wait: Duration,
) -> anyhow::Result<StartAnswer> {
    let url = format!("{dashboard}/repro/start");
    let http = reqwest::Client::builder()
        .timeout(wait + Duration::from_secs(10))
        .build()?;
    let body = StartRequest {
        run_id: shard.run_id.clone(),
        shard: shard.index,
        shards: shard.count,
        wait_ms: wait.as_millis() as u64,
    };
    let mut request = http.post(&url).json(&body);
    if let Some(token) = admin_token {
        request = request.header(HEADER_ADMIN_TOKEN, token);
    }
    let who = format!(
        "shard {}/{} of run `{}`",
        shard.index, shard.count, shard.run_id
    );
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!(
            "{who}: the dashboard mock at {url} did not answer the start check-in: {}",
            crate::runner::client::describe(&e)
        )
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("{who}: no common start ({status}): {message}");
    }
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{who}: unreadable answer from {url}: {e}"))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u64, count: u64) -> Shard {
        Shard {
            index,
            count,
            run_id: "r".into(),
        }
    }

    #[test]
    fn every_scenario_belongs_to_exactly_one_shard_at_its_single_runner_instant() {
        let (rate, total) = (7.0, 100u64);
        let origin = Duration::ZERO;
        for n in 1..=5u64 {
            let mut seen = Vec::new();
            for k in 0..n {
                let s = shard(k, n);
                let (o, r) = s.schedule(origin, rate);
                for j in 0..s.share(total) {
                    let seq = s.seq(j);
                    assert_eq!(seq % n, k, "shard {k}/{n} drives only its residue");
                    let at = o + Duration::from_secs_f64(j as f64 / r);
                    let single = Duration::from_secs_f64(seq as f64 / rate);
                    let apart = at.abs_diff(single);
                    assert!(
                        apart < Duration::from_micros(1),
                        "{seq}: {at:?} vs {single:?}"
                    );
                    seen.push(seq);
                }
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..total).collect::<Vec<_>>(), "N = {n}");
        }
    }

    #[test]
    fn shares_add_up_to_the_schedule_even_when_it_does_not_divide() {
        for total in [1u64, 2, 3, 10, 2500, 2501] {
            for n in 1..=8u64 {
                let sum: u64 = (0..n).map(|k| shard(k, n).share(total)).sum();
                assert_eq!(sum, total, "{total} over {n}");
            }
        }
        assert_eq!(shard(3, 4).share(3), 0);
    }

    #[test]
    fn bad_shard_flags_are_refused_naming_the_flag() {
        let err = |s: Option<&str>, r: Option<&str>| {
            Shard::from_flags(s, r)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        for bad in ["2/2", "1", "a/b", "0/0", "0/65", "-1/2", "1/2/3"] {
            assert!(err(Some(bad), Some("x")).contains("--shard"), "{bad}");
        }
        assert!(err(Some("0/2"), None).contains("--run-id is required"));
        assert!(err(Some("0/2"), Some("a b")).contains("--run-id"));
        assert!(err(None, Some("x")).contains("without --shard"));
        assert_eq!(Shard::from_flags(Some("0/1"), None).unwrap(), None);
        assert_eq!(Shard::from_flags(None, None).unwrap(), None);
        let s = Shard::from_flags(Some("1/3"), Some("nightly-1"))
            .unwrap()
            .unwrap();
        assert_eq!((s.index, s.count, s.run_id.as_str()), (1, 3, "nightly-1"));
    }
}
