//! The command line: one binary, one subcommand per part. Every option also reads `REPRO_<OPTION>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reproduce and measure Tyk Gateway reload hangs, and compare two gateway builds.
///
/// Typical native session (each in its own terminal, Redis on 127.0.0.1:6379):
///   reload-repro dashboard
///   reload-repro stub-gateway --reload-mode v2.9.4      (or a real Tyk gateway)
///   reload-repro run --label 2.9.4
#[derive(Debug, Parser)]
#[command(
    name = "reload-repro",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Tyk Dashboard mock: /system/policies, policy adds, Redis notifications.
    Dashboard(crate::dashboard::DashboardArgs),
    /// Drive the load against a gateway and write a summary with a verdict.
    Run(Box<crate::runner::RunArgs>),
    /// Serve a stub gateway (a test double that speaks the gateway's side of the protocol).
    StubGateway(crate::stub::StubArgs),
    /// Compare two sets of runs and give a CI verdict.
    Diff(crate::diff::DiffArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Dashboard(args) => crate::dashboard::main(args).await,
            Command::Run(args) => crate::runner::main(*args).await,
            Command::StubGateway(args) => crate::stub::main(args).await,
            // The diff is pure data in, data out: it runs synchronously.
            Command::Diff(args) => crate::diff::main(args),
        }
    })
}
