//! The Tyk Dashboard mock: serves `/system/policies` to the gateway, adds policies on request and
//! publishes `PolicyChanged` on Redis so the gateway reloads (issue 2 §1).
//!
//! Parts: [`pool`] (the pre-encoded, growing policy list), [`routes`] (handlers), [`notify`]
//! (Redis publisher), [`nonces`], [`fetch_log`] and [`state`]. This file holds the options,
//! startup (Redis check, then the startup list) and the server with its graceful shutdown.

pub mod fetch_log;
pub mod nonces;
pub mod notify;
pub mod pool;
pub mod routes;
pub mod start;
pub mod state;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{Secret, SecretUrl};

pub use routes::app;
pub use state::DashboardState;

use fetch_log::FetchLog;
use nonces::{DEFAULT_NONCE_MEMORY, NonceBook};
use notify::{Publisher, RedisPublisher};
use pool::{DEFAULT_SEGMENT_POLICIES, PolicyPool};
use state::StateParts;

/// How long Redis may take to answer the startup PING.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open connections may take to finish after a shutdown signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How policy adds are announced to gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NotifyMode {
    /// Publish a signed `PolicyChanged` on `tyk.cluster.notifications` after each add.
    Redis,
    /// Announce nothing (the runner triggers reloads through the gateway's control API).
    None,
}

/// Options of `reload-repro dashboard`. The secrets are [`Secret`]s and the Redis URL a
/// [`SecretUrl`], so the derived `Debug` never shows them.
#[derive(Clone, Debug, clap::Args)]
pub struct DashboardArgs {
    /// Address to listen on (compose passes 0.0.0.0:9000).
    #[arg(long, env = "REPRO_DASHBOARD_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Redis to publish notifications on: the gateway's `storage` Redis.
    #[arg(long, env = "REPRO_REDIS", default_value = "redis://127.0.0.1:6379")]
    pub redis: SecretUrl,

    /// Node secret the gateway sends as `authorization`; also signs notifications. Never printed.
    #[arg(
        long,
        env = "REPRO_NODE_SECRET",
        default_value = "352d20ee67be67f6340b4c0605b044bc",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub node_secret: Secret,

    /// Policies served at startup (the seed's 80,400); the list then grows with every add.
    #[arg(long, env = "REPRO_INITIAL_POLICIES", default_value_t = 80_400)]
    pub initial_policies: u64,

    /// `org_id` of every policy; the gateway's test API must belong to the same organisation.
    #[arg(long, env = "REPRO_ORG_ID", default_value = "monarch")]
    pub org_id: String,

    /// How adds are announced: `redis` publishes PolicyChanged, `none` stays silent.
    #[arg(long, env = "REPRO_NOTIFY", value_enum, default_value_t = NotifyMode::Redis)]
    pub notify: NotifyMode,

    /// When set, `/repro/*` requests must carry it in the `x-repro-token` header. Never printed.
    #[arg(long, env = "REPRO_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Policy fetches remembered for `GET /repro/fetches` (oldest dropped first).
    #[arg(long, env = "REPRO_MAX_FETCH_LOG", default_value_t = 100_000)]
    pub max_fetch_log: usize,
}

/// Runs the mock until SIGINT or SIGTERM, then drains connections and exits 0.
pub async fn main(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init("info");
    tracing::info!(?args, "starting the dashboard mock");
    let state = build_state(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (pass another --listen / REPRO_DASHBOARD_LISTEN, or stop what uses it)",
                args.listen
            )
        })?;
    tracing::info!(addr = %args.listen, policies = args.initial_policies, "dashboard mock listening");
    let shutdown = async {
        let signal = crate::shutdown::next_signal().await;
        tracing::info!(?signal, "shutting down the dashboard mock");
    };
    serve(listener, state, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Checks Redis (with `--notify redis`) and generates the startup list, before anything is served.
pub async fn build_state(args: &DashboardArgs) -> anyhow::Result<DashboardState> {
    let publisher = match args.notify {
        NotifyMode::Redis => {
            let redis = RedisPublisher::connect(
                args.redis.expose(),
                args.node_secret.expose(),
                REDIS_CONNECT_TIMEOUT,
            )
            .await?;
            tracing::info!(
                redis = redis.url(),
                "Redis answers; adds will publish PolicyChanged"
            );
            Publisher::Redis(redis)
        }
        NotifyMode::None => Publisher::Disabled,
    };
    let started = Instant::now();
    let (org_id, count) = (args.org_id.clone(), args.initial_policies);
    // CPU-bound for a few hundred milliseconds: keep it off the async workers.
    let pool = tokio::task::spawn_blocking(move || {
        PolicyPool::with_policies(&org_id, DEFAULT_SEGMENT_POLICIES, count)
    })
    .await
    .context("generating the startup policies")?;
    tracing::info!(
        policies = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "startup policies generated"
    );
    Ok(DashboardState::new(StateParts {
        pool,
        nonces: NonceBook::new(DEFAULT_NONCE_MEMORY),
        fetch_log: FetchLog::new(args.max_fetch_log),
        publisher,
        node_secret: args.node_secret.expose().to_owned(),
        admin_token: args.admin_token.as_ref().map(|t| t.expose().to_owned()),
    }))
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then drains for at most
/// [`DRAIN_DEADLINE`] (a gateway's keep-alive connection must not hold the exit forever).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: DashboardState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stopping = CancellationToken::new();
    let trigger = stopping.clone();
    // No Nagle: the policy body goes out in one write per segment (routes::yielding_body), and
    // Nagle would hold each write's last partial packet until the gateway's delayed ACK (40 ms on
    // Linux), which gave ~10 % of fetches a 40–48 ms time on loopback. Go's net package, the real
    // dashboard's, sets TCP_NODELAY on every connection too.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set on a dashboard connection: {err}");
        }
    });
    let server = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            trigger.cancel();
        })
        .into_future();
    tokio::select! {
        result = server => result.context("the dashboard mock's HTTP server failed"),
        () = async {
            stopping.cancelled().await;
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } => {
            tracing::warn!("connections still open {DRAIN_DEADLINE:?} after shutdown; closing them");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
