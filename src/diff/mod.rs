//! `reload-repro diff A B`: compare two sets of runs and give a CI verdict.
//!
//! Pure data in, data out (no async runtime): [`load`] reads the sides, [`compare::compare`]
//! is a pure function of them, [`render`] and [`plot`] turn the result into text and SVG.

pub mod compare;
pub mod load;
pub mod plot;
pub mod render;
pub mod side;
pub mod stats;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

pub use compare::{CiVerdict, CompareOptions, Comparison, compare};
pub use side::{Side, SideKind};

/// Shown after the options in `diff --help`: how the verdict is reached and what exits mean.
const VERDICT_HELP: &str = "\
Paths: A and B may each be a summary.json, a run directory, a set directory (set.json), or a
label directory (OUT/LABEL: its latest-set if there is one, else all its runs).

Verdict: runs are the unit. A primary metric (time to usable p50 and p90 over ALL scheduled
scenarios, the lost ones censored at their wait; outstanding share) must differ with
Mann-Whitney p < alpha AND by at least --min-effect percent of A, or the share of hanging runs
must differ with Fisher's exact p < alpha (hang -> pass counts as improved). A percentile that
fewer scenarios reached than it needs (shown as `> X`) ranks above every reached one, so a side that
lost policies never looks faster. B's gateway stopping to answer (unresponsive) where A's never
did is a regression. Fleets (runs against several gateways; both sides must have as many):
the share of scenarios usable on every gateway is one more primary metric, and gateway i of A
is compared with gateway i of B by the same rules, so one gateway going from pass to hang is a
regression even when the fleet's figures (its last gateway's) did not move. Any regression wins over improvements. Without either: `no change` when
each side has at least 4 usable (pass/hang/unresponsive) runs, else `inconclusive` (fewer runs
cannot reach p < 0.05). The survivors' latency percentiles are shown, not decided on.

Exit codes:
  0  improved, or no change
  1  regressed
  2  error: unreadable input, bad option, or scenario configs differ (without --force)
  3  inconclusive: too few runs (e.g. one per side), or a side measured nothing";

/// Options of `reload-repro diff A B`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = VERDICT_HELP)]
pub struct DiffArgs {
    /// Baseline: summary.json, run directory, set directory, or label directory.
    pub a: PathBuf,
    /// Candidate: summary.json, run directory, set directory, or label directory.
    pub b: PathBuf,
    /// Compare even if the scenario configurations differ (the report says so).
    #[arg(long, env = "REPRO_FORCE")]
    pub force: bool,
    /// Smallest change of a primary metric that counts as improved/regressed, percent.
    #[arg(
        long,
        env = "REPRO_MIN_EFFECT",
        default_value_t = 10.0,
        value_name = "PCT"
    )]
    pub min_effect: f64,
    /// Significance level of the tests.
    #[arg(long, env = "REPRO_ALPHA", default_value_t = 0.05)]
    pub alpha: f64,
    /// Bootstrap resamples for the confidence intervals (0 turns them off).
    #[arg(
        long,
        env = "REPRO_BOOTSTRAP",
        default_value_t = 2000,
        value_name = "N"
    )]
    pub bootstrap: u32,
    /// Seed of the bootstrap RNG; the same seed gives the same report.
    #[arg(long, env = "REPRO_DIFF_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Write the GitHub-flavoured Markdown report to this file.
    #[arg(long, env = "REPRO_MARKDOWN", value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the comparison as JSON to this file.
    #[arg(long, env = "REPRO_JSON", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write diff.md, diff.json, latency-cdf.svg and report.html into this directory (created if
    /// needed).
    #[arg(long, env = "REPRO_DIFF_OUT", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Largest bootstrap accepted: beyond it the CI does not get better, only slower.
const MAX_BOOTSTRAP: u32 = 1_000_000;

/// Runs the subcommand; the exit code is the verdict's (errors are returned and exit 2).
pub fn main(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let opts = validate(&args)?;
    if let Some(dir) = &args.out {
        // Fail on a bad output path before any work.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    }
    let a = load::load_side_checked(&args.a, opts.force).context("reading A")?;
    let b = load::load_side_checked(&args.b, opts.force).context("reading B")?;
    let differences = compare::side_config_differences(&a, &b);
    if !differences.is_empty() && !opts.force {
        let list: Vec<String> = differences
            .iter()
            .map(|d| format!("  {}: A = {}, B = {}", d.field, d.a, d.b))
            .collect();
        let fleet = if differences.iter().any(|d| d.field.starts_with("fleet.")) {
            " (and the same number of gateways: --gateway / GATEWAYS)"
        } else {
            ""
        };
        anyhow::bail!(
            "the scenario configurations differ, so the runs are not comparable:\n{}\n\
             rerun with the same options{fleet}, or pass --force to compare anyway",
            list.join("\n")
        );
    }
    let comparison = compare(&a, &b, &opts);
    write_outputs(&args, &comparison, &a, &b)?;
    print!("{}", render::render_terminal(&comparison));
    Ok(ExitCode::from(comparison.verdict.exit_code()))
}

/// Turns the flags into options, refusing values that make no sense.
fn validate(args: &DiffArgs) -> anyhow::Result<CompareOptions> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        anyhow::bail!(
            "--alpha {}: must be between 0 and 1 (e.g. 0.05)",
            args.alpha
        );
    }
    if !(args.min_effect.is_finite() && args.min_effect >= 0.0) {
        anyhow::bail!(
            "--min-effect {}: must be a percentage ≥ 0 (e.g. 10)",
            args.min_effect
        );
    }
    if args.bootstrap > MAX_BOOTSTRAP {
        anyhow::bail!("--bootstrap {}: at most {MAX_BOOTSTRAP}", args.bootstrap);
    }
    Ok(CompareOptions {
        alpha: args.alpha,
        min_effect_pct: args.min_effect,
        bootstrap: args.bootstrap,
        seed: args.seed,
        force: args.force,
    })
}

/// Writes every requested file, and the Markdown to `$GITHUB_STEP_SUMMARY` when set.
fn write_outputs(args: &DiffArgs, c: &Comparison, a: &Side, b: &Side) -> anyhow::Result<()> {
    let markdown = render::render_markdown(c);
    let json = render::render_json(c).context("serializing the comparison")?;
    if let Some(path) = &args.markdown {
        write_file(path, &markdown, "--markdown")?;
    }
    if let Some(path) = &args.json {
        write_file(path, &json, "--json")?;
    }
    if let Some(dir) = &args.out {
        write_file(&dir.join("diff.md"), &markdown, "--out")?;
        write_file(&dir.join("diff.json"), &json, "--out")?;
        let svg = plot::render_latency_cdf(a, b).context("drawing latency-cdf.svg")?;
        write_file(&dir.join("latency-cdf.svg"), &svg, "--out")?;
        write_file(
            &dir.join("report.html"),
            &plot::render_report_html(c, &svg),
            "--out",
        )?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append_file(Path::new(&path), &markdown)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, flag: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("{flag}: cannot write {}", path.display()))
}

fn append_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("GITHUB_STEP_SUMMARY: cannot open {}", path.display()))?;
    writeln!(file, "{text}")
        .with_context(|| format!("GITHUB_STEP_SUMMARY: cannot append to {}", path.display()))
}

#[cfg(test)]
mod tests;
