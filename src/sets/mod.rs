//! `reload-repro set …`: the decisions around a series of runs, so `scripts/repro.sh` only
//! sequences compose calls. The script runs these in the kit image (no network, the results
//! directory mounted at its host path, the checkout read-only at /repo):
//!
//! 1. `set begin`  checks the knobs, picks the label, hashes the config, creates
//!    `OUT/LABEL/set-<ts>/` and prints the plan as `KEY=VALUE` lines ([`plan`]);
//! 2. `set add`    after each run: takes the run `latest` now names into the set, prints its
//!    directory and verdict; exit 3 when the run wrote no summary (the script then records one);
//! 3. `set finish` writes `set.json`, moves `latest-set`, prints the cross-run lines and exits
//!    with the set's status ([`outcome::EXIT_CODES_HELP`]).

pub mod outcome;
pub mod plan;
pub mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::shutdown::Signal;

/// Exit status of `set add` when the last run wrote no summary.
pub const NO_NEW_RUN: u8 = 3;

/// Options of `reload-repro set`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = outcome::EXIT_CODES_HELP)]
pub struct SetArgs {
    /// The step.
    #[command(subcommand)]
    pub command: SetCommand,
}

/// The steps of a set, in the order `scripts/repro.sh` calls them.
#[derive(Debug, Clone, Subcommand)]
pub enum SetCommand {
    /// Check the knobs (RATE, DURATION, … RUNS from the environment), create the set directory
    /// and print the plan as KEY=VALUE lines.
    Begin(plan::BeginArgs),
    /// Take the run OUT/LABEL/latest names into the set; exit 3 when that run wrote no summary.
    Add(SetDirArgs),
    /// Write set.json and latest-set, print the cross-run lines, exit with the set's status.
    Finish(FinishArgs),
}

/// A set directory.
#[derive(Debug, Clone, clap::Args)]
pub struct SetDirArgs {
    /// The set directory `set begin` printed (`set_dir=`).
    #[arg(long = "set", value_name = "DIR")]
    pub set_dir: PathBuf,
}

/// Options of `set finish`.
#[derive(Debug, Clone, clap::Args)]
pub struct FinishArgs {
    /// The set directory `set begin` printed (`set_dir=`).
    #[arg(long = "set", value_name = "DIR")]
    pub set_dir: PathBuf,
    /// A signal the caller caught (the set then exits 130 / 143 and keeps its `latest-set`).
    #[arg(long, value_enum)]
    pub signal: Option<CaughtSignal>,
}

/// A signal named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaughtSignal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM.
    Term,
}

/// Runs `reload-repro set …`.
pub fn main(args: SetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SetCommand::Begin(begin) => {
            let lines = plan::begin(&begin, |key| std::env::var(key).ok())?;
            print!("{lines}");
            Ok(ExitCode::SUCCESS)
        }
        SetCommand::Add(add) => match write::add(&add.set_dir)? {
            // The runner printed the run's verdict block, host path included: nothing to add.
            (write::Added::Run(_), Some(_)) => Ok(ExitCode::SUCCESS),
            _ => {
                eprintln!("no summary was written for this run");
                Ok(ExitCode::from(NO_NEW_RUN))
            }
        },
        SetCommand::Finish(finish) => {
            let caught = finish.signal.map(|s| match s {
                CaughtSignal::Int => Signal::Interrupt,
                CaughtSignal::Term => Signal::Terminate,
            });
            let done = write::finish(&finish.set_dir, caught)?;
            print!("{}", done.report);
            println!("exit status {}", done.exit_code);
            Ok(ExitCode::from(done.exit_code))
        }
    }
}
