//! Placeholder: being written.

use std::process::ExitCode;

/// Options of this subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct StubArgs {}

/// Runs the subcommand.
pub async fn main(_args: StubArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
