//! An in-process stack on loopback: a real redis-server, the dashboard mock and the stub
//! gateway served on port 0, and a helper that runs the runner against them.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use reload_repro::dashboard::{self, DashboardArgs};
use reload_repro::runner::{RunArgs, RunOptions, output::RunDir, run_all, run_once};
use reload_repro::stub::{self, StubArgs};
use reload_repro::summary::Summary;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestRedis;

#[derive(Parser)]
struct DashboardCli {
    #[command(flatten)]
    args: DashboardArgs,
}

#[derive(Parser)]
struct StubCli {
    #[command(flatten)]
    args: StubArgs,
}

#[derive(Parser)]
struct RunCli {
    #[command(flatten)]
    args: RunArgs,
}

/// A server task with its stop switch.
pub struct Served {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Served {
    /// Stops the server and waits (bounded) for it to finish.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Kills the server at once (no graceful drain), as a crash would.
    pub fn kill(&mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the dashboard mock with extra flags (`--redis` is filled in).
pub async fn start_dashboard(redis_url: &str, extra: &[&str]) -> anyhow::Result<Served> {
    let mut argv = vec!["dashboard", "--redis", redis_url];
    argv.extend_from_slice(extra);
    let args = DashboardCli::try_parse_from(argv)?.args;
    let state = dashboard::build_state(&args).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(dashboard::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Served {
        url,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Stub flags of the fleet tests: a cheap gateway whose reloads sleep 100 ms (so several stubs
/// and the runner fit on two cores).
pub const FLEET_HEALTHY_STUB: &[&str] = &[
    "--reload-mode",
    "fixed",
    "--reload-cost-ms",
    "100",
    "--per-policy-cost-us",
    "0",
    "--reload-work",
    "sleep",
];

/// A v2.9.4 stub whose 6 s reload outlasts a short burst, so it certainly loses the policies
/// added after its first fetch (see `run.rs`).
pub const FLEET_LOSING_STUB: &[&str] = &[
    "--reload-mode",
    "v2.9.4",
    "--reload-cost-ms",
    "6000",
    "--per-policy-cost-us",
    "0",
    "--reload-work",
    "sleep",
    "--no-policy-log",
];

/// Starts the stub gateway against `dashboard_url` with extra flags.
pub async fn start_stub(
    redis_url: &str,
    dashboard_url: &str,
    extra: &[&str],
) -> anyhow::Result<Served> {
    let mut argv = vec![
        "stub-gateway",
        "--redis",
        redis_url,
        "--dashboard",
        dashboard_url,
    ];
    argv.extend_from_slice(extra);
    let args = StubCli::try_parse_from(argv)?.args;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(stub::serve(listener, args, async move {
        let _ = stopped.await;
    }));
    Ok(Served {
        url,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Redis, the mock and the stub, ready for the runner.
pub struct Stack {
    /// The stub gateway.
    pub gateway: Served,
    /// The dashboard mock.
    pub dashboard: Served,
    /// The Redis server (dropped last).
    pub redis: TestRedis,
}

impl Stack {
    /// A stack with the given dashboard and stub flags.
    pub async fn start(dashboard_flags: &[&str], stub_flags: &[&str]) -> Stack {
        let redis = TestRedis::start();
        let dashboard = start_dashboard(&redis.url, dashboard_flags)
            .await
            .expect("dashboard starts");
        let gateway = start_stub(&redis.url, &dashboard.url, stub_flags)
            .await
            .expect("stub starts");
        Stack {
            gateway,
            dashboard,
            redis,
        }
    }

    /// Runner flags pointing at this stack, writing under `out`.
    pub fn run_flags(&self, out: &Path) -> Vec<String> {
        vec![
            "--gateway".into(),
            self.gateway.url.clone(),
            "--dashboard".into(),
            self.dashboard.url.clone(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
        ]
    }

    /// Runs the runner with this stack's URLs plus `extra` flags.
    pub async fn run(&self, out: &Path, extra: &[&str]) -> anyhow::Result<(RunDir, Summary)> {
        let mut argv: Vec<String> = vec!["run".into()];
        argv.extend(self.run_flags(out));
        argv.extend(extra.iter().map(|s| s.to_string()));
        run_with(&argv).await
    }
}

/// Runs `--runs N` repetitions with this stack's URLs plus `extra` flags.
pub async fn run_set(stack: &Stack, out: &Path, extra: &[&str]) -> anyhow::Result<Vec<Summary>> {
    let mut argv: Vec<String> = vec!["run".into()];
    argv.extend(stack.run_flags(out));
    argv.extend(extra.iter().map(|s| s.to_string()));
    let args = RunCli::try_parse_from(&argv)?.args;
    let options = RunOptions::from_args(&args)?;
    let runs = run_all(&options).await?;
    Ok(runs.into_iter().map(|(_, s)| s).collect())
}

/// Runs the runner with a full argv (first element ignored).
pub async fn run_with(argv: &[String]) -> anyhow::Result<(RunDir, Summary)> {
    let args = RunCli::try_parse_from(argv)?.args;
    let options = RunOptions::from_args(&args)?;
    run_once(&options).await
}

/// Reads and parses a run's `summary.json` from disk.
pub fn read_summary(dir: &Path) -> Summary {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json exists");
    serde_json::from_str(&text).expect("summary.json parses")
}
