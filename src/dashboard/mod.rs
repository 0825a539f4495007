//! Placeholder: being written.

use std::process::ExitCode;

/// Options of this subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {}

/// Runs the subcommand.
pub async fn main(_args: DashboardArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
