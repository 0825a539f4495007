//! The merged run's plots and `report.html` (the files `summary.md` links to), drawn by the
//! plot module from the shards' thinned records and the shared mock's fetch log.

use std::path::Path;

use crate::protocol::FetchRecord;
use crate::summary::{ScenarioRecord, Summary};

/// Writes every plot file into `dir`; a plot that cannot be drawn is logged and skipped.
pub fn write_plots(
    dir: &Path,
    summary: &Summary,
    records: &[ScenarioRecord],
    fetches: &[FetchRecord],
) {
    let origin_ms = chrono::DateTime::parse_from_rfc3339(&summary.started_at)
        .map_or(0, |t| t.timestamp_millis().max(0) as u64);
    let fetch_offsets_s: Vec<f64> = fetches
        .iter()
        .filter(|f| f.authorized && f.received_at_ms >= origin_ms)
        .map(|f| (f.received_at_ms - origin_ms) as f64 / 1000.0)
        .collect();
    let timed_out_per_s: Option<Vec<u64>> = summary.attempts.as_ref().map(|a| {
        a.timeline
            .iter()
            .map(|s| s.key_creations.timed_out + s.key_creations.connect_timed_out)
            .collect()
    });
    let input = crate::plot::RunPlotInput {
        summary,
        records,
        fetch_offsets_s: &fetch_offsets_s,
        timed_out_per_s: timed_out_per_s.as_deref(),
    };
    for (name, file) in crate::plot::run_plot_files(&input) {
        let written = file
            .and_then(|text| crate::runner::output::write_atomic(&dir.join(name), text.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("could not write {name}: {e:#}");
        }
    }
}
