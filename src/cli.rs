//! The command line: one binary, one subcommand per part. Every option also reads a `REPRO_*`
//! variable; each name has one meaning (`REPRO_DASHBOARD_LISTEN` / `REPRO_STUB_LISTEN`,
//! `REPRO_DIFF_OUT` / `REPRO_DIFF_SEED` where subcommands used to share one).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Reproduce and measure Tyk Gateway reload hangs, and compare two gateway builds.
///
/// Typical native session (each in its own terminal, Redis on 127.0.0.1:6379):
///   reload-repro dashboard
///   reload-repro stub-gateway --reload-mode v2.9.4      (or a real Tyk gateway)
///   reload-repro run --label 2.9.4
///
/// Under Docker Compose (the usual way): make repro TYK=2.9.4, or scripts/repro.sh, which
/// calls `reload-repro set` in the kit image for every decision around the runs.
#[derive(Debug, Parser)]
#[command(
    name = "reload-repro",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit-status table shown under `--help`.
const EXIT_CODES: &str = concat!(
    "Exit status of a run or a set (run, set finish, scripts/repro.sh):\n",
    "  0 every run ended as expected (default: pass)   1 a measured failure of the gateway\n",
    "  (hang, unresponsive)   2 the kit could not measure (infra_error, bad options, no image)\n",
    "  130 / 143 interrupted (SIGINT / SIGTERM)\n",
    "Exit status of diff: 0 improved or no change, 1 regressed, 3 inconclusive, 2 error.\n",
    "Exit status of merge: 0 merged, 2 refused or error.\n",
    "GNU make turns every failure into 2: call scripts/repro.sh and scripts/diff.sh for these."
);

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Tyk Dashboard mock: /system/policies, policy adds, Redis notifications.
    Dashboard(crate::dashboard::DashboardArgs),
    /// Drive the load against a gateway and write a summary with a verdict.
    #[command(
        long_about = crate::runner::options::RUN_LONG_ABOUT,
        after_help = crate::runner::options::RUN_EXIT_STATUS
    )]
    Run(Box<crate::runner::RunArgs>),
    /// Serve a stub gateway (a test double that speaks the gateway's side of the protocol).
    StubGateway(crate::stub::StubArgs),
    /// Compare two sets of runs and give a CI verdict.
    Diff(crate::diff::DiffArgs),
    /// The steps of a set of runs (begin, add, finish), as scripts/repro.sh calls them.
    Set(crate::sets::SetArgs),
    /// Merge the run directories of the shards of one `run --shard K/N` run into one.
    #[command(after_help = MERGE_EXIT_CODES)]
    Merge(crate::merge::MergeArgs),
    /// Render Kubernetes manifests (YAML) for the kit from the compose file.
    #[command(long_about = crate::deploy::MANIFESTS_LONG_ABOUT)]
    Manifests(crate::deploy::ManifestsArgs),
}

/// `merge --help`: its exit statuses.
const MERGE_EXIT_CODES: &str = concat!(
    "Exit status of merge: 0 merged (whatever the merged verdict: read it in\n",
    "DIR/summary.json); 2 refused (not every shard of one run id, different configurations,\n",
    "a non-shard run, a non-empty --out) or error, and nothing is written."
);

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
            Command::Set(args) => crate::sets::main(args),
            Command::Merge(args) => crate::merge::main(args),
            Command::Manifests(args) => crate::deploy::main(args),
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    fn long_help(sub: &str) -> String {
        let mut cmd = Cli::command();
        let sub = cmd.find_subcommand_mut(sub).expect("subcommand");
        sub.render_long_help().to_string()
    }

    #[test]
    fn run_help_teaches_the_scenario_and_the_exit_statuses_and_hides_internal_flags() {
        let help = long_help("run");
        assert!(help.contains("A scenario is one policy's trip"), "{help}");
        assert!(help.contains("Exit status of `run`"), "{help}");
        assert!(help.contains("--fail-on hang"), "{help}");
        assert!(help.contains("130"), "{help}");
        assert!(!help.contains("--record-infra-error"), "{help}");
        assert!(!help.contains("--host-out"), "{help}");
    }

    #[test]
    fn every_repro_variable_has_one_meaning_across_subcommands() {
        use std::collections::HashMap;
        let cmd = Cli::command();
        // Variables that mean the same thing wherever they appear (a URL, a secret, a token).
        let shared = [
            "REPRO_REDIS",
            "REPRO_DASHBOARD",
            "REPRO_SECRET",
            "REPRO_NODE_SECRET",
            "REPRO_ADMIN_TOKEN",
            "REPRO_INITIAL_POLICIES",
        ];
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(env) = arg.get_env() {
                    let env = env.to_string_lossy().into_owned();
                    seen.entry(env).or_default().push(format!(
                        "{} --{}",
                        sub.get_name(),
                        arg.get_id()
                    ));
                }
            }
        }
        for (env, users) in &seen {
            if users.len() > 1 && !shared.contains(&env.as_str()) {
                panic!("{env} is read by {users:?}: give each meaning its own name");
            }
        }
    }
}
