//! The load runner: `reload-repro run`.
//!
//! Flow of one run: validate options → create the run directory (proves it writable) → wait
//! for Redis, the dashboard and the gateway → schedule scenarios open-loop while the watcher
//! decides when to stop → drain → fetch the mock's fetch log → write the summary and its
//! companions. Every path after the run directory exists ends in a written summary.
//!
//! Parts: [`options`] (flags), [`schedule`] (open loop), [`scenario`] (add → trigger → retry),
//! [`backoff`] (retry schedule), [`client`] (HTTP), [`record`] (counters, collector),
//! [`watch`] (gathers what the run looks like), [`decide`] (the stop rules, pure), [`stop`]
//! (why it stopped), [`recheck`] (the last look before a hang), [`verdict`] (the verdict,
//! pure), [`ready`] (readiness gates), [`gateway_checks`] (liveness probe, API list, canary),
//! [`finish`] (summary assembly and files), [`output`] (run directory, atomic files).

pub mod backoff;
pub mod client;
pub mod decide;
pub mod errors;
pub mod finish;
pub mod gateway_checks;
pub mod options;
pub mod output;
pub mod ready;
pub mod recheck;
pub mod record;
pub mod scenario;
pub mod schedule;
pub mod shard;
pub mod stop;
pub mod verdict;
pub mod watch;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use tokio::sync::{mpsc, watch as tokio_watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use options::{FailOn, RunArgs, RunOptions, Trigger};

use self::client::Endpoints;
use self::finish::{LoadOutcome, RunContext};
use self::output::RunDir;
use self::record::{Collector, LiveCounters, Timeline};
use self::scenario::{ScenarioContext, run_scenario};
use self::stop::{StopCause, StopSignal};
use crate::summary::{Summary, Verdict};

/// Lag above which a start counts as late.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(10);
/// How long stopped scenarios get to hand in their records (plus the re-check's budget when
/// the stop cause asks for one).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point of `reload-repro run`.
pub async fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init("info");
    let options = RunOptions::from_args(&args)?;
    let summaries = run_all(&options).await?;
    Ok(exit_code(&options, &summaries))
}

/// Runs `options.runs` repetitions (each from a fresh policy pool) and returns their summaries.
pub async fn run_all(options: &RunOptions) -> anyhow::Result<Vec<(RunDir, Summary)>> {
    let mut done = Vec::new();
    for _ in 0..options.runs {
        // Every repetition of a set starts from the initial pool size, so all share one config.
        if options.runs > 1 {
            let endpoints = Endpoints::new(options)?;
            endpoints
                .reset_pool()
                .await
                .map_err(|e| anyhow::anyhow!("cannot reset the policy pool between runs: {e}"))?;
        }
        let (dir, summary) = run_once(options).await?;
        // One block at the end; the full table is in summary.md.
        let shown = output::shown_path(&dir.path, &options.out, options.host_out.as_deref());
        eprint!("{}", output::verdict_block(&summary, &shown));
        let interrupted = summary.verdict == Verdict::Interrupted;
        done.push((dir, summary));
        if interrupted {
            break;
        }
    }
    if options.runs > 1 {
        finish::write_set(options, &done)?;
    }
    Ok(done)
}

/// The exit status a finished set of runs maps to.
pub fn exit_code(options: &RunOptions, summaries: &[(RunDir, Summary)]) -> ExitCode {
    let verdicts: Vec<Verdict> = summaries.iter().map(|(_, s)| s.verdict).collect();
    if let Some(code) = summaries
        .iter()
        .find_map(|(_, s)| finish::signal_exit_code(s))
    {
        return ExitCode::from(code);
    }
    if verdicts.contains(&Verdict::InfraError) {
        return ExitCode::from(2);
    }
    let failing = match options.fail_on {
        FailOn::Never => false,
        // A gateway that stopped answering is a result about the gateway, like a hang.
        FailOn::Hang => verdicts
            .iter()
            .any(|v| matches!(v, Verdict::Hang | Verdict::Unresponsive)),
        FailOn::NotPass => verdicts.iter().any(|v| *v != Verdict::Pass),
    };
    if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One run: always ends in a written summary once the run directory exists.
pub async fn run_once(options: &RunOptions) -> anyhow::Result<(RunDir, Summary)> {
    let started_at = Utc::now();
    let dir = RunDir::create(&options.out, &options.label, started_at)?;
    let ctx = RunContext::new(options, &dir, started_at);

    if let Some(reason) = &options.record_infra_error {
        let summary = finish::write_run(&ctx, ctx.infra_error(reason.clone()), None).await?;
        return Ok((dir, summary));
    }
    let mut evidence = ready::connect_evidence(options).await;
    // `make repro GATEWAYS=N`: the gateways are the containers of the compose service.
    let resolved = match fleet_from_compose(options, evidence.as_mut()).await {
        Ok(resolved) => resolved,
        Err(e) => {
            let reason = format!("{e:#}");
            let summary = finish::write_run(&ctx, ctx.infra_error(reason), evidence).await?;
            return Ok((dir, summary));
        }
    };
    let options = resolved.as_ref().unwrap_or(options);
    let ctx = RunContext::new(options, &dir, started_at);
    let endpoints = Endpoints::new(options)?;
    watch::phase(
        !options.quiet,
        &format!(
            "waiting for the services to be ready, then the canary key (at most {})",
            humantime::format_duration(options.wait_ready)
        ),
    );
    // Ctrl-C during the readiness wait (up to --wait-ready) must leave a summary too.
    let waited = tokio::select! {
        ready = ready::wait_ready(options, &endpoints, evidence.as_ref()) => {
            ready.map_err(|reason| (Verdict::InfraError, reason.to_string()))
        }
        signal = crate::shutdown::next_signal() => Err((
            Verdict::Interrupted,
            format!(
                "interrupted by {} while waiting for the services to be ready: no load was started",
                match signal {
                    crate::shutdown::Signal::Interrupt => "Ctrl-C (SIGINT)",
                    crate::shutdown::Signal::Terminate => "SIGTERM",
                }
            ),
        )),
    };
    if let Err((verdict, reason)) = waited {
        let mut finished = ctx.infra_error(reason);
        finished.summary.verdict = verdict;
        let summary = finish::write_run(&ctx, finished, evidence).await?;
        return Ok((dir, summary));
    }
    let counters = Arc::new(LiveCounters::default());
    let guard =
        spawn_second_signal_guard(RunContext::new(options, &dir, started_at), counters.clone());
    let outcome = drive_load(options, &endpoints, &dir, evidence.as_ref(), counters).await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            let reason = format!("the load could not start: {e:#}");
            let summary = finish::write_run(&ctx, ctx.infra_error(reason), evidence).await?;
            return Ok((dir, summary));
        }
    };
    watch::phase(
        !options.quiet,
        "collecting evidence and writing the summary",
    );
    let finished = finish::summarize(&ctx, &endpoints, outcome).await;
    let summary = finish::write_run(&ctx, finished, evidence).await;
    guard.abort();
    Ok((dir, summary?))
}

/// A second Ctrl-C / SIGTERM (the first one stops the load gracefully) exits at once, after
/// writing a counts-only summary so the run directory still holds a valid `summary.json`.
fn spawn_second_signal_guard(
    ctx: RunContext,
    counters: Arc<LiveCounters>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        crate::shutdown::next_signal().await;
        let second = crate::shutdown::next_signal().await;
        eprintln!("second signal: stopping at once");
        finish::write_counts_only(&ctx, &counters, second);
        std::process::exit(i32::from(second.exit_code()));
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The load phase: schedule, watch, drain, collect.
async fn drive_load(
    options: &RunOptions,
    endpoints: &Endpoints,
    dir: &RunDir,
    evidence: Option<&crate::evidence::Evidence>,
    counters: Arc<LiveCounters>,
) -> anyhow::Result<LoadOutcome> {
    let baseline = endpoints
        .stats()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (version, version_source) = endpoints.gateway_version().await;
    let sampler = evidence.map(|e| e.start_sampling(Duration::from_secs(1)));
    let container_before = match evidence {
        Some(e) => e.gateway_state().await.ok(),
        None => None,
    };
    let fleet_before = match evidence {
        Some(e) if options.fleet.len() > 1 => e
            .gateway_states()
            .await
            .into_iter()
            .map(Result::ok)
            .collect(),
        _ => Vec::new(),
    };
    let checks = gateway_checks::GatewayChecks::new(options)?;
    let tally = Arc::new(recheck::EndTally::default());

    let cancel = CancellationToken::new();
    let stop = Arc::new(StopSignal::new(cancel.clone()));
    // A little lead so the first start is not already late; shards agree on it via the mock.
    let (origin, origin_unix_ms) = shard::agree_origin(
        options.shard.as_ref(),
        &options.dashboard,
        options.admin_token.as_deref(),
        options.wait_ready,
    )
    .await?;
    let part = shard::plan(options.shard.as_ref());
    let horizon = options.duration + options.deadline + Duration::from_secs(30);
    let timeline = Arc::new(Timeline::new(origin, horizon.as_secs() as usize + 1));
    let scenario_ctx = Arc::new(ScenarioContext {
        endpoints: endpoints.clone(),
        trigger: options.trigger,
        backoff: options.backoff.clone(),
        seed: options.seed,
        counters: counters.clone(),
        timeline: timeline.clone(),
        cancel: cancel.clone(),
        stop: stop.clone(),
        origin,
        gateways: options.gateways,
        tally: tally.clone(),
        lanes: lanes(options, endpoints, origin, horizon, &timeline, &tally),
    });
    let lane_records: Vec<(Arc<Timeline>, Arc<recheck::EndTally>)> = scenario_ctx
        .lanes
        .iter()
        .map(|l| (l.timeline.clone(), l.tally.clone()))
        .collect();

    let (records_tx, mut records_rx) = mpsc::unbounded_channel();
    let end_tx = records_tx.clone();
    let writer = dir.scenarios_writer()?;
    let scheduled = options.scheduled;
    let gateways = options.fleet.len();
    let collector = tokio::task::spawn_blocking(move || {
        let mut collector = Collector::new(writer, scheduled);
        let mut fleet = record::fleet::FleetCollector::new(gateways, scheduled);
        // `None` is the end marker: scenarios that outlive the drain cannot keep this open.
        while let Some(Some(record)) = records_rx.blocking_recv() {
            if let Some(fleet) = fleet.as_mut() {
                fleet.push(&record);
            }
            collector.push(record);
        }
        (collector.finish().0, fleet.map(|f| f.finish()))
    });

    let (done_tx, done_rx) = tokio_watch::channel(None);
    let tracker = TaskTracker::new();
    let scheduler = {
        let tracker = tracker.clone();
        let cancel = cancel.clone();
        let counters = counters.clone();
        let timeline = timeline.clone();
        let (own_origin, rate) = part.schedule(origin, options.rate);
        let part = part.clone();
        tokio::spawn(async move {
            let report = schedule::run_schedule_on_own_thread(
                own_origin.into(),
                rate,
                scheduled,
                LATE_THRESHOLD,
                cancel,
                move |j, at, lag| {
                    let seq = part.seq(j);
                    let at = at.into_std();
                    counters
                        .started
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    timeline.record_start(Instant::now());
                    let ctx = scenario_ctx.clone();
                    let tx = records_tx.clone();
                    tracker.spawn(async move {
                        let record = run_scenario(ctx, seq, at, lag).await;
                        let _ = tx.send(Some(record));
                    });
                },
            )
            .await;
            let last = report.as_ref().ok().and_then(|r| r.last_scheduled);
            let _ = done_tx.send(Some(last.map_or(origin, |t| t.into_std())));
            report
        })
    };

    let watch_input = watch::WatchInput {
        counters: counters.clone(),
        endpoints: endpoints.clone(),
        checks: options
            .fleet
            .iter()
            .map(|g| checks.for_gateway(g))
            .collect(),
        baseline: baseline.clone(),
        scheduled,
        rate: part.schedule(origin, options.rate).1,
        schedule_done: done_rx,
        rules: decide::StopRules::new(options.deadline, options.stall_timeout),
        origin,
        progress: !options.quiet,
        dashboard_url: options.dashboard.clone(),
    };
    let watched = watch::watch_run(watch_input, stop.clone()).await;
    let stopped_at = Instant::now();
    let end_unix_ms = unix_ms(SystemTime::now());
    cancel.cancel();
    let schedule_report = scheduler.await??;
    tracker.close();
    let drain = if recheck::wanted(stop.cause().as_ref()) {
        watch::phase(
            !options.quiet,
            &format!(
                "re-check of the {} scenarios still waiting",
                counters.in_flight()
            ),
        );
        DRAIN_TIMEOUT + recheck::RECHECK_BUDGET
    } else {
        DRAIN_TIMEOUT
    };
    let drained = tokio::time::timeout(drain, tracker.wait()).await.is_ok();
    let _ = end_tx.send(None);
    let (collected, fleet_collected) = collector.await?;
    let container_death = match evidence {
        Some(e) => match e.gateway_state().await {
            Ok(after) => {
                crate::evidence::gateway_state::describe_death(container_before.as_ref(), &after)
            }
            Err(err) => {
                tracing::warn!("could not inspect the gateway container: {err:#}");
                None
            }
        },
        None => None,
    };
    // Per gateway under compose (discovered containers); none natively.
    let container_deaths = fleet_deaths(options, evidence, &fleet_before).await;
    Ok(LoadOutcome {
        cause: stop.cause().unwrap_or(StopCause::Completed),
        baseline,
        watch: watched,
        tally,
        container_death,
        schedule: schedule_report,
        collected,
        counters,
        timeline,
        origin,
        origin_unix_ms,
        end_unix_ms,
        elapsed: stopped_at.saturating_duration_since(origin),
        drained,
        gateway_version: version,
        gateway_version_source: version_source,
        sampler,
        fleet: fleet_collected.map(|collected| finish::FleetOutcome {
            collected,
            lanes: lane_records,
            container_deaths,
        }),
    })
}

/// How each gateway's container died or restarted during the run, in fleet order (all `None`
/// without container evidence).
async fn fleet_deaths(
    options: &RunOptions,
    evidence: Option<&crate::evidence::Evidence>,
    before: &[Option<crate::evidence::gateway_state::GatewayState>],
) -> Vec<Option<String>> {
    let mut deaths = vec![None; options.fleet.len()];
    let Some(e) = evidence.filter(|_| options.fleet.len() > 1 && !before.is_empty()) else {
        return deaths;
    };
    for (i, after) in e.gateway_states().await.into_iter().enumerate() {
        match after {
            Ok(after) => {
                if let Some(slot) = deaths.get_mut(i) {
                    let was = before.get(i).and_then(Option::as_ref);
                    *slot = crate::evidence::gateway_state::describe_death(was, &after);
                }
            }
            Err(err) => tracing::warn!("could not inspect gateway container {}: {err:#}", i + 1),
        }
    }
    deaths
}

/// Under compose with `--gateway-replicas N` > 1: finds the N containers of the gateway
/// service and returns the options with one gateway per container (`None`: nothing to find).
async fn fleet_from_compose(
    options: &RunOptions,
    evidence: Option<&mut crate::evidence::Evidence>,
) -> anyhow::Result<Option<RunOptions>> {
    if options.gateway_replicas <= 1 {
        return Ok(None);
    }
    let replicas = options.gateway_replicas;
    let Some(evidence) = evidence else {
        anyhow::bail!(
            "GATEWAYS={replicas} (--gateway-replicas) finds the gateway containers through the \
             Docker API, which this runner cannot reach: mount /var/run/docker.sock (compose does) \
             or give each gateway with --gateway"
        );
    };
    let url = url::Url::parse(&options.gateway)
        .map_err(|e| anyhow::anyhow!("--gateway {}: {e}", options.gateway))?;
    let service = url.host_str().unwrap_or("gateway").to_owned();
    let port = url.port_or_known_default().unwrap_or(8080);
    let found = evidence
        .discover_gateways(&service, replicas as usize, options.wait_ready)
        .await
        .map_err(|e| e.context(format!("GATEWAYS={replicas}")))?;
    evidence.set_gateway_containers(&found);
    let mut resolved = options.clone();
    resolved.fleet = found
        .iter()
        .map(|c| {
            let host = c.address.as_deref().unwrap_or(&c.name);
            format!("{}://{host}:{port}", url.scheme())
        })
        .collect();
    resolved.fleet_containers = found.iter().map(|c| Some(c.name.clone())).collect();
    resolved.gateway = resolved.fleet[0].clone();
    Ok(Some(resolved))
}

/// One lane per gateway: with one gateway, the run's own clients and records; with several,
/// each gateway its own clients, attempt classes and re-check.
fn lanes(
    options: &RunOptions,
    endpoints: &Endpoints,
    origin: Instant,
    horizon: Duration,
    timeline: &Arc<Timeline>,
    tally: &Arc<recheck::EndTally>,
) -> Vec<scenario::Lane> {
    if options.fleet.len() == 1 {
        return vec![scenario::Lane::single(endpoints, timeline, tally)];
    }
    options
        .fleet
        .iter()
        .map(|url| scenario::Lane {
            endpoints: endpoints.for_gateway(url),
            timeline: Arc::new(Timeline::new(origin, horizon.as_secs() as usize + 1)),
            tally: Arc::new(recheck::EndTally::default()),
        })
        .collect()
}
