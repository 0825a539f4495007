//! Placeholder: being written.

use std::process::ExitCode;

/// Options of this subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {}

/// Runs the subcommand.
pub fn main(_args: DiffArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
