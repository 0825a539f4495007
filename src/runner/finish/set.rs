//! The set summary of a `--runs N` series: the code lives in `crate::sets::write`.

use super::super::options::RunOptions;
use super::super::output::RunDir;
use crate::summary::Summary;

/// Writes the set summary of a `--runs N` series (see `crate::sets::write`).
pub fn write_set(options: &RunOptions, runs: &[(RunDir, Summary)]) -> anyhow::Result<()> {
    crate::sets::write::write_set(options, runs)
}
