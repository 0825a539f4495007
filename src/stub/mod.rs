//! The stub gateway: a test double of the GATEWAY's side of the protocol (not Tyk), so the kit
//! can be exercised where no Tyk image exists. Its version string always says `stub`: its
//! numbers are never results.
//!
//! Parts: [`control`] (the control API), [`reload`] (the scheduling state machines and the task
//! that drives them), [`cost`] (what a reload costs), [`policies`] (the policy fetch),
//! [`subscriber`] (Redis notifications), [`publisher`] (group reloads), [`state`] (what they
//! share).
//!
//! A reload fetches the policy list at its START, parses it (v2.9.4 mode: one log line per
//! policy), burns CPU up to the modelled cost, swaps the new set in, then spends the API part of
//! the cost: from the fetch to the end it is the window in which v2.9.4 scheduling loses
//! triggers. docs/stub-calibration.md ties each default to a figure measured on real Tyk.

pub mod control;
pub mod cost;
pub mod policies;
pub mod publisher;
pub mod reload;
pub mod state;
pub mod subscriber;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::telemetry::{Secret, SecretUrl};

pub use cost::{ReloadCost, ReloadWork};
pub use state::{StubConfig, StubState, StubStats};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Default gateway secret and node secret (the same as the dashboard mock's default).
const DEFAULT_SECRET: &str = "352d20ee67be67f6340b4c0605b044bc";

/// Which gateway reload scheduling to emulate (protocol §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReloadMode {
    /// v2.9.4: triggers during a reload are counted as served by it and may be lost.
    #[value(name = "v2.9.4")]
    V294,
    /// The fix (v2.9.4.4, v3.1+, v5): triggers queue for the next tick; none is lost.
    #[value(name = "fixed", alias = "v2.9.4.4")]
    Fixed,
}

/// The version the stub reports on `/hello`; always marked `stub`.
pub fn version_string(mode: ReloadMode) -> &'static str {
    match mode {
        ReloadMode::V294 => "stub/v2.9.4-scheduling",
        ReloadMode::Fixed => "stub/fixed-scheduling",
    }
}

/// What `stub-gateway --help` says about the defaults (docs/stub-calibration.md has the figures).
const CALIBRATION_HELP: &str = "\
Reload model (the same in both modes; they differ only in scheduling): a reload of N policies
takes --reload-cost-ms + N x --per-policy-cost-us, fetch to done, burning CPU (--reload-work busy).
It fetches at its start, parses the body (v2.9.4 mode: one INFO log line per policy, as the real
v2.9.4 writes), swaps the new policies in after --reload-cost-ms + --swap-share of the per-policy
part, then spends the rest (the API part; the reload is still running).

Calibrated on real Tyk at the seed load (500/s for 5 s from 80,400 policies, notify, 2 cores):
  200 ms + 22 us/policy = ~2.0 s per reload (real v2.9.4 1.1-3.6 s, the fix 0.84-4.3 s);
  v2.9.4 mode: reloads back to back fetch ~0, 2 and 4 s into the load, the last ~1 s of adds is
  lost: hang, ~500 of 2,500 outstanding, 3 fetches (real: hang, 74-970, 3-4 fetches);
  fixed mode: pass, 3-4 fetches (real: pass, 3-6), latency p50 ~2.6-2.9 s (real 2.36 s);
  v2.9.4 log volume ~44 MB per run under compose (real 48-58 MB).
Reloads shorter than the 1 s tick leave idle gaps in which a burst may end and escape the hang.";

/// Options of `stub-gateway`. The secrets are [`Secret`]s and the Redis URL a [`SecretUrl`],
/// so the derived `Debug` never shows them.
#[derive(Clone, Debug, clap::Args)]
#[command(after_long_help = CALIBRATION_HELP)]
pub struct StubArgs {
    /// Address the control API listens on.
    #[arg(long, env = "REPRO_STUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Policy connection string: policies are fetched from `{dashboard}/system/policies`.
    #[arg(long, env = "REPRO_DASHBOARD", default_value = "http://127.0.0.1:9000")]
    pub dashboard: String,
    /// Redis the notifications arrive on (and group reloads are published to).
    #[arg(long, env = "REPRO_REDIS", default_value = "redis://127.0.0.1:6379")]
    pub redis: SecretUrl,
    /// Gateway secret: `X-Tyk-Authorization` must equal it on the control API.
    #[arg(long, env = "REPRO_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub secret: Secret,
    /// Node secret: sent to the dashboard and used to check notification signatures.
    #[arg(long, env = "REPRO_NODE_SECRET", default_value = DEFAULT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub node_secret: Secret,
    /// Accept notifications without checking their signature (`allow_insecure_configs`).
    #[arg(long, env = "REPRO_ALLOW_INSECURE")]
    pub allow_insecure: bool,
    /// Reload scheduling to emulate: `v2.9.4` (loses triggers) or `fixed`.
    #[arg(long, env = "REPRO_RELOAD_MODE", value_enum, default_value = "fixed")]
    pub reload_mode: ReloadMode,
    /// Reload loop tick (the gateway's is 1s), e.g. `1s`, `200ms`.
    #[arg(long, env = "REPRO_TICK", default_value = "1s", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Fixed part of one reload's cost in milliseconds, spent before the new policies are
    /// swapped in. With the per-policy default, one reload of 80,400 policies takes ~1.97 s:
    /// real v2.9.4 and the fix took 0.84–4.3 s per reload at the seed load on 2 busy cores.
    #[arg(long, env = "REPRO_RELOAD_COST_MS", default_value_t = 200)]
    pub reload_cost_ms: u64,
    /// Reload cost per policy in the fetched list, in microseconds (22 × 80,400 ≈ 1.77 s).
    /// Calibrated so that at the seed load v2.9.4 mode loses 74–970 of 2,500 policies with 3–4
    /// fetches, and the fix's newest keys take ~2 s, as on the real builds.
    #[arg(long, env = "REPRO_PER_POLICY_COST_US", default_value_t = 22)]
    pub per_policy_cost_us: u64,
    /// Share (0–1) of the per-policy cost spent before the swap; the rest is the API part of the
    /// reload (still running, new policies already visible). 0.6: keys become usable ~1.26 s
    /// into a reload at 80,400 policies.
    #[arg(long, env = "REPRO_SWAP_SHARE", default_value_t = 0.6)]
    pub swap_share: f64,
    /// How the modelled cost beyond the real work (fetch, parse, log) is spent: `busy` burns
    /// CPU like a real reload, `sleep` only waits.
    #[arg(long, env = "REPRO_RELOAD_WORK", value_enum, default_value = "busy")]
    pub reload_work: ReloadWork,
    /// v2.9.4 mode: do NOT log one INFO line per policy per reload (the real v2.9.4 does, ~10 MB
    /// per reload at 80k policies; the fix logs them at debug, as the stub's fixed mode does).
    #[arg(long, env = "REPRO_NO_POLICY_LOG")]
    pub no_policy_log: bool,
    /// After this many reloads, never reload again (triggers still accepted and logged).
    #[arg(long, env = "REPRO_STALL_AFTER_RELOADS")]
    pub stall_after_reloads: Option<u64>,
    /// Wait before resubscribing to Redis after a failure (the gateway waits 10s).
    #[arg(long, env = "REPRO_RESUBSCRIBE_DELAY", default_value = "10s", value_parser = humantime::parse_duration)]
    pub resubscribe_delay: Duration,
    /// Subscribe to notifications only this long after the control API is up (v3.x: ~10s).
    #[arg(long, env = "REPRO_SUBSCRIBE_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub subscribe_delay: Duration,
    /// Answer 200 to key creation even for unknown policies, like a gateway that loaded no API
    /// for the policies' org (for testing the runner's canary).
    #[arg(long, env = "REPRO_ACCEPT_UNKNOWN_POLICIES")]
    pub accept_unknown_policies: bool,
}

impl StubArgs {
    /// Checks the options and turns them into the running configuration.
    pub fn to_config(&self) -> anyhow::Result<StubConfig> {
        if self.tick.is_zero() {
            anyhow::bail!("--tick must be greater than zero (e.g. 1s)");
        }
        if !self.dashboard.starts_with("http://") && !self.dashboard.starts_with("https://") {
            anyhow::bail!(
                "--dashboard {:?} must be an http:// URL such as http://127.0.0.1:9000",
                self.dashboard
            );
        }
        if !(0.0..=1.0).contains(&self.swap_share) {
            anyhow::bail!(
                "--swap-share {} must be between 0 and 1 (e.g. 0.6)",
                self.swap_share
            );
        }
        Ok(StubConfig {
            mode: self.reload_mode,
            secret: self.secret.clone(),
            node_secret: self.node_secret.clone(),
            allow_insecure: self.allow_insecure,
            dashboard: self.dashboard.clone(),
            cost: ReloadCost {
                base: Duration::from_millis(self.reload_cost_ms),
                per_policy: Duration::from_micros(self.per_policy_cost_us),
                swap_share: self.swap_share,
                work: self.reload_work,
            },
            log_policies: self.reload_mode == ReloadMode::V294 && !self.no_policy_log,
            stall_after_reloads: self.stall_after_reloads,
        })
    }
}

/// Runs `stub-gateway` until SIGINT/SIGTERM; exits 130/143 after a clean stop.
pub async fn main(args: StubArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init("info");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} ({e}): choose another --listen / REPRO_STUB_LISTEN",
                args.listen
            )
        })?;
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let signal = crate::shutdown::next_signal().await;
        tracing::info!(?signal, "Stopping stub gateway");
        let _ = signal_tx.send(signal);
    };
    serve(listener, args, shutdown).await?;
    Ok(match signal_rx.await {
        Ok(signal) => ExitCode::from(signal.exit_code()),
        Err(_) => ExitCode::SUCCESS,
    })
}

/// Connects Redis (an error names the URL), loads policies once, then runs the subscriber, the
/// reload loop and the control API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    args: StubArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = args.to_config()?;
    let publisher = publisher::Publisher::new(args.redis.expose())?;
    publisher.connect().await?;
    let token = CancellationToken::new();
    let state = Arc::new(StubState::new(config, publisher, token.clone())?);
    tracing::info!(
        version = version_string(args.reload_mode),
        address = %listener.local_addr()?,
        reload_cost = %state.config.cost.describe(80_400),
        "Stub gateway starting (a test double, not Tyk)"
    );
    let trip = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => trip.cancel(),
            _ = trip.cancelled() => {}
        }
    });
    // Like the gateway, the reload loop (and its ticker) runs from process start: by the time a
    // load begins it has taken its first tick, so the first trigger starts a reload at once.
    let tracker = TaskTracker::new();
    tracker.spawn(reload::run_reload_loop(
        state.clone(),
        args.tick,
        token.clone(),
    ));
    // The startup load is outside the queue and costs only its real work (fetch, parse, log):
    // real gateways take ~0.3 s for it when idle. With the dashboard down the stub starts empty.
    // The stub answers only once the loop has taken that first tick (~1 s after start, as a
    // real gateway's slower startup gives): a load started the moment it answers then meets the
    // loop in the same state whatever the timing, which keeps the v2.9.4 signature certain.
    tokio::select! {
        _ = async {
            state.load_policies_at_startup().await;
            state.reloads.first_tick_taken().await;
        } => {}
        _ = token.cancelled() => return Ok(()),
    }
    tracker.spawn(subscriber::run_subscriber_after(
        args.subscribe_delay,
        state.clone(),
        args.resubscribe_delay,
        token.clone(),
    ));
    tracker.close();

    let misbehave = control::ControlOptions {
        accept_unknown_policies: args.accept_unknown_policies,
    };
    let server = axum::serve(listener, control::app_with(state, misbehave))
        .with_graceful_shutdown(token.clone().cancelled_owned());
    let mut served = tokio::spawn(async move { server.await });
    // The server only ends on its own if it failed; either way everything else stops too.
    let ended_early = tokio::select! {
        result = &mut served => Some(result),
        _ = token.cancelled() => None,
    };
    token.cancel();
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        let result = match ended_early {
            Some(result) => result,
            None => served.await,
        };
        tracker.wait().await;
        result
    })
    .await;
    match drained {
        Ok(Ok(result)) => result.map_err(|e| anyhow::anyhow!("control API server failed: {e}")),
        Ok(Err(e)) => anyhow::bail!("control API server task failed: {e}"),
        Err(_) => {
            tracing::warn!(
                "In-flight requests still open after {DRAIN_DEADLINE:?}; stopping anyway"
            );
            Ok(())
        }
    }
}
