//! The set summary of a `--runs N` series: merged latency and one row per run.

use chrono::Utc;

use super::super::options::RunOptions;
use super::super::output::RunDir;
use super::rfc3339;
use crate::summary::Summary;

/// Writes the set summary of a `--runs N` series.
pub fn write_set(options: &RunOptions, runs: &[(RunDir, Summary)]) -> anyhow::Result<()> {
    use crate::summary::histogram::{decode_histogram, merge_histograms};
    use crate::summary::set::{RunSet, SET_FILE, SET_SCHEMA_VERSION, per_run_values};

    let created = Utc::now();
    let label_dir = options.out.join(&options.label);
    let name = format!("set-{}", created.format("%Y%m%dT%H%M%SZ"));
    let set_dir = label_dir.join(&name);
    std::fs::create_dir_all(&set_dir)
        .map_err(|e| anyhow::anyhow!("cannot create set directory {}: {e}", set_dir.display()))?;
    let histograms: Vec<_> = runs
        .iter()
        .filter_map(|(_, s)| decode_histogram(&s.latency_ms.histogram_b64).ok())
        .collect();
    let merged = merge_histograms(histograms.iter());
    let set = RunSet {
        schema_version: SET_SCHEMA_VERSION,
        label: options.label.clone(),
        created_at: rfc3339(created),
        runs: runs
            .iter()
            .map(|(dir, _)| format!("../{}", dir.name))
            .collect(),
        merged_latency_ms: crate::summary::stats::latency_stats(&merged),
        per_run: runs
            .iter()
            .map(|(dir, s)| per_run_values(&format!("../{}", dir.name), s))
            .collect(),
    };
    super::super::output::write_atomic(&set_dir.join(SET_FILE), &serde_json::to_vec_pretty(&set)?)?;
    super::super::output::point_link(&label_dir, "latest-set", &name)?;
    eprintln!("set of {} runs: {}", runs.len(), set_dir.display());
    Ok(())
}
