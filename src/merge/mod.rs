//! `reload-repro merge --out DIR RUN_DIR...`: the run directories of every shard of one sharded
//! run (`run --shard K/N --run-id ID`) combined into one run directory.
//!
//! Flow: read every `summary.json` → refuse ([`check`]) anything but all N shards of one run id
//! with one configuration → stream each shard's `scenarios.jsonl` through the runner's own
//! collector into the merged `scenarios.jsonl` → [`combine`] → write `summary.json`,
//! `summary.md`, `report.txt`, the plots and the latest shard's `fetches.json`. The files are written into
//! a temporary sibling of DIR and moved into place at the end: a refusal or an error leaves
//! nothing at DIR. Exit status: 0 merged (whatever the merged verdict), 2 refused or error.

pub mod check;
pub mod combine;
pub mod fleet;
pub mod plots;
pub mod verdict;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use self::check::{Refusal, ShardRun, check_shards};
use self::combine::{Merged, ShardData, combine};
use crate::runner::output::write_atomic;
use crate::runner::record::Collector;
use crate::summary::ScenarioRecord;

/// Options of `reload-repro merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Directory to write the merged run into; must not exist (or be empty).
    #[arg(long, env = "REPRO_MERGE_OUT")]
    pub out: PathBuf,
    /// The run directory of every shard of the run (each holds a summary.json).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub run_dirs: Vec<PathBuf>,
}

/// Entry point of `reload-repro merge`.
pub fn main(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let summary = merge(&args.out, &args.run_dirs)?;
    eprint!(
        "merged {} shards\n{}",
        args.run_dirs.len(),
        crate::runner::output::verdict_block(&summary, &args.out)
    );
    Ok(ExitCode::SUCCESS)
}

/// Merges `run_dirs` into `out`; returns the merged summary. Nothing is left at `out` on error.
pub fn merge(out: &Path, run_dirs: &[PathBuf]) -> anyhow::Result<crate::summary::Summary> {
    let refused = |e: Refusal| anyhow::anyhow!("merge refused: {e}; nothing was written");
    check_out(out).map_err(refused)?;
    let mut runs = Vec::new();
    for dir in run_dirs {
        let summary = crate::diff::load::read_summary(&dir.join("summary.json"))
            .map_err(|e| refused(Refusal(format!("{}: {e}", dir.display()))))?;
        runs.push(ShardRun {
            dir: dir.clone(),
            summary,
        });
    }
    let runs = check_shards(runs).map_err(refused)?;
    for run in &runs {
        scenarios_path(run).map_err(refused)?;
    }
    let tmp = temp_dir(out)?;
    let written = write_merged(&tmp, runs);
    let summary = match written {
        Ok(summary) => summary,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if out.exists() {
        // check_out accepted it: an empty directory.
        let _ = fs::remove_dir(out);
    }
    if let Err(e) = fs::rename(&tmp, out) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("cannot move the merged run to {}", out.display()));
    }
    Ok(summary)
}

fn check_out(out: &Path) -> Result<(), Refusal> {
    match fs::read_dir(out) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Refusal(format!(
                "--out {} exists and is not empty: choose a new directory",
                out.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => Err(Refusal(format!(
            "--out {} exists and is not a readable directory: choose a new directory",
            out.display()
        ))),
    }
}

/// A hidden sibling of `out` the files are written into first.
fn temp_dir(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {} for --out", parent.display()))?;
    let tmp = parent.join(format!(".{name}.merging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

/// The shard's scenarios file: a plain name inside its run directory that exists.
fn scenarios_path(run: &ShardRun) -> Result<PathBuf, Refusal> {
    let name = &run.summary.files.scenarios;
    let plain = Path::new(name).components().count() == 1
        && matches!(
            Path::new(name).components().next(),
            Some(std::path::Component::Normal(_))
        );
    let path = run.dir.join(name);
    if !plain || !path.is_file() {
        return Err(Refusal(format!(
            "{}: its scenarios file `{name}` is missing or not a file in the run directory",
            run.name()
        )));
    }
    Ok(path)
}

fn write_merged(tmp: &Path, runs: Vec<ShardRun>) -> anyhow::Result<crate::summary::Summary> {
    let merged_path = tmp.join("scenarios.jsonl");
    let file = File::create(&merged_path)
        .with_context(|| format!("cannot create {}", merged_path.display()))?;
    let mut writer = BufWriter::with_capacity(256 * 1024, file);
    let mut shards = Vec::new();
    for run in runs {
        let (collected, lag_us, fleet) = fold_records(&run, &mut writer)?;
        shards.push(ShardData {
            run,
            collected,
            lag_us,
            fleet,
        });
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", merged_path.display()))?;
    drop(writer);
    let latest = &shards[self::combine::latest_shard(&shards)].run;
    let fetch_log =
        fs::read(latest.dir.join(&latest.summary.files.fetches)).unwrap_or_else(|_| b"[]".to_vec());
    let fetches: Vec<crate::protocol::FetchRecord> =
        serde_json::from_slice(&fetch_log).unwrap_or_default();
    let Merged {
        summary,
        unfinished,
    } = combine(&shards, &fetches);
    write_atomic(&tmp.join("fetches.json"), &fetch_log)?;
    let plot_points: Vec<ScenarioRecord> = shards
        .iter()
        .flat_map(|s| s.collected.plot_points.iter().cloned())
        .collect();
    self::plots::write_plots(tmp, &summary, &plot_points, &fetches);
    let report = crate::runner::record::report_txt(&merged_path, &summary, &unfinished);
    write_atomic(&tmp.join("report.txt"), report.as_bytes())?;
    let markdown = crate::summary::render::render_markdown(&summary);
    write_atomic(&tmp.join("summary.md"), markdown.as_bytes())?;
    write_atomic(
        &tmp.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

/// Streams one shard's records into `writer` through the runner's collector; refuses records
/// that are not this shard's (seq mod N ≠ K).
fn fold_records(
    run: &ShardRun,
    writer: &mut BufWriter<File>,
) -> anyhow::Result<(
    crate::runner::record::Collected,
    hdrhistogram::Histogram<u64>,
    Option<crate::runner::record::fleet::FleetCollected>,
)> {
    let path = scenarios_path(run).map_err(|e| anyhow::anyhow!("merge refused: {e}"))?;
    let info = run.info();
    let file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut collector = Collector::new(&mut *writer, run.summary.scenarios.scheduled);
    let mut lag_us = crate::summary::histogram::new_latency_histogram();
    let mut fleet = crate::runner::record::fleet::FleetCollector::new(
        run.summary.gateways.len(),
        run.summary.scenarios.scheduled,
    );
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ScenarioRecord = serde_json::from_str(&line).with_context(|| {
            format!(
                "merge refused: {} line {}: not a scenario record",
                path.display(),
                n + 1
            )
        })?;
        if record.seq % info.count != info.index {
            anyhow::bail!(
                "merge refused: {} line {}: scenario {} is not shard {}/{}'s (seq mod {} = {}); \
                 nothing was written",
                path.display(),
                n + 1,
                record.seq,
                info.index,
                info.count,
                info.count,
                record.seq % info.count
            );
        }
        let us = (record.lag_ms.max(0.0) * 1000.0).round() as u64;
        lag_us.saturating_record(us.clamp(1, lag_us.high()));
        if let Some(fleet) = fleet.as_mut() {
            fleet.push(&record);
        }
        collector.push(record);
    }
    let (collected, _) = collector.finish();
    if let Some(e) = &collected.write_error {
        anyhow::bail!("cannot write the merged scenarios.jsonl: {e}");
    }
    Ok((collected, lag_us, fleet.map(|f| f.finish())))
}

#[cfg(test)]
mod tests;
