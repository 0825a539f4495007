//! Reading `A` and `B` from disk: a `summary.json`, a run directory, a set, or a label directory.
//!
//! Every file is checked before it is trusted: a regular file, at most [`MAX_FILE_BYTES`], text,
//! valid JSON of a known `schema_version`. Errors name the file and, for JSON, the position.
//! A label directory means its `latest-set` (the last complete `make repro` call), and the
//! report names that set; a side whose runs tested different builds is refused without --force.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::side::{Side, SideKind};
use crate::summary::set::{RunIdentity, RunSet, SET_FILE, SET_SCHEMA_VERSION, identity_conflicts};
use crate::summary::{SCHEMA_VERSION, Summary};

/// Largest file read, bytes; real summaries are a few hundred kilobytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Most runs read per side: keeps memory bounded on a results directory grown for months.
pub const MAX_RUNS_PER_SIDE: usize = 1000;

/// File name of a run summary inside its run directory.
const SUMMARY_FILE: &str = "summary.json";

/// Symlink in a label directory to its newest set.
const LATEST_SET: &str = "latest-set";

/// Why a side could not be read; each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist or cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a regular file (a FIFO or device would block or never end).
    #[error("{0}: not a regular file")]
    NotRegular(String),
    /// Larger than the limit.
    #[error("{path}: {size} bytes is larger than the {MAX_FILE_BYTES}-byte limit; not a summary")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Zero bytes.
    #[error("{0}: the file is empty (an interrupted write?); rerun or pick another run")]
    Empty(String),
    /// Not UTF-8 text.
    #[error("{path}: binary data, not JSON text (invalid UTF-8 at byte {offset})")]
    Binary {
        /// The file.
        path: String,
        /// First invalid byte.
        offset: usize,
    },
    /// JSON that does not parse or does not fit the model.
    #[error("{path}: not a valid {what} at line {line} column {column}: {message}{hint}")]
    Parse {
        /// The file.
        path: String,
        /// `summary.json` or `set.json`.
        what: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's explanation, without its position.
        message: String,
        /// Extra advice (truncation).
        hint: &'static str,
    },
    /// Written by a newer kit.
    #[error(
        "{path}: schema_version {found} is newer than this reload-repro reads ({known}); \
         upgrade reload-repro to compare it"
    )]
    FutureVersion {
        /// The file.
        path: String,
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        known: u32,
    },
    /// A directory with nothing comparable in it.
    #[error(
        "{0}: no summary.json, set.json, latest-set or run directories here; pass a \
         summary.json, a run directory, a set directory or a label directory (OUT/LABEL)"
    )]
    NothingToCompare(String),
    /// The runs of one side tested different builds or configurations.
    #[error(
        "{path}: {conflicts}. A side must hold one build under one configuration: compare a \
         single set (pass its set directory), or pass --force (FORCE=1) to compare anyway"
    )]
    Mixed {
        /// The side as given.
        path: String,
        /// What differs, one sentence per field.
        conflicts: String,
    },
    /// More runs than [`MAX_RUNS_PER_SIDE`].
    #[error(
        "{path}: {count} runs is more than the {MAX_RUNS_PER_SIDE} a side may hold; run with \
         --runs N and pass the set directory, or move old runs away"
    )]
    TooManyRuns {
        /// The label directory or set.
        path: String,
        /// Runs found.
        count: usize,
    },
}

/// Reads one side from any of the accepted path forms.
pub fn load_side(path: &Path) -> Result<Side, LoadError> {
    let (source, kind, runs) = read_side_runs(path)?;
    Ok(Side::from_runs(&source, kind, &runs))
}

/// Reads one side and checks that its runs tested one gateway build with one configuration
/// (image id, compose file, gateway config). A mixed side is refused, or with `force` kept
/// with a warning that the report shows.
pub fn load_side_checked(path: &Path, force: bool) -> Result<Side, LoadError> {
    let (source, kind, runs) = read_side_runs(path)?;
    let identities: Vec<(String, RunIdentity)> = runs
        .iter()
        .map(|(dir, s)| (dir.clone(), RunIdentity::of(s)))
        .collect();
    let conflicts = identity_conflicts(&identities);
    if !conflicts.is_empty() && !force {
        return Err(LoadError::Mixed {
            path: source,
            conflicts: conflicts.join("; "),
        });
    }
    let mut side = Side::from_runs(&source, kind, &runs);
    side.warnings.extend(
        conflicts
            .into_iter()
            .map(|c| format!("{c} (compared anyway: --force)")),
    );
    Ok(side)
}

/// `(run directory as listed, summary)` pairs of one side, in run order.
type Runs = Vec<(String, Summary)>;

/// The runs behind a path, with the path as shown in the report and its form. A label
/// directory's `latest-set` is resolved, so the report names the set it used.
fn read_side_runs(path: &Path) -> Result<(String, SideKind, Runs), LoadError> {
    let source = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_file() {
        if path.file_name().is_some_and(|n| n == SET_FILE) {
            let runs = load_set(path)?;
            return Ok((source, SideKind::Set, runs));
        }
        let summary = read_summary(path)?;
        return Ok((source.clone(), SideKind::Summary, vec![(source, summary)]));
    }
    if !meta.is_dir() {
        return Err(LoadError::NotRegular(source));
    }
    let summary_path = path.join(SUMMARY_FILE);
    if summary_path.exists() {
        let summary = read_summary(&summary_path)?;
        return Ok((source.clone(), SideKind::Run, vec![(source, summary)]));
    }
    if path.join(SET_FILE).exists() {
        let runs = load_set(&path.join(SET_FILE))?;
        return Ok((source, SideKind::Set, runs));
    }
    let latest = path.join(LATEST_SET);
    if latest.exists() {
        let runs = load_set(&latest.join(SET_FILE))?;
        // Name the set itself: "results/pr/set-20261201T101500Z (latest-set)".
        let shown = match fs::read_link(&latest) {
            Ok(target) => format!("{} ({LATEST_SET})", path.join(target).display()),
            Err(_) => format!("{}", latest.display()),
        };
        return Ok((shown, SideKind::LabelLatestSet, runs));
    }
    let dirs = run_dirs(path)?;
    check_run_count(path, dirs.len())?;
    let runs = dirs
        .into_iter()
        .map(|dir| {
            Ok((
                dir.display().to_string(),
                read_summary(&dir.join(SUMMARY_FILE))?,
            ))
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    if runs.is_empty() {
        return Err(LoadError::NothingToCompare(source));
    }
    Ok((source, SideKind::LabelAllRuns, runs))
}

/// Run directories of a label directory, oldest first (their names are UTC timestamps).
fn run_dirs(label_dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(label_dir).map_err(|e| io_error(label_dir, e))? {
        let entry = entry.map_err(|e| io_error(label_dir, e))?;
        // `latest` is a symlink to a run already listed; set directories hold no summary.
        let is_real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_real_dir && entry.path().join(SUMMARY_FILE).is_file() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Reads a set and every run it lists (runs are resolved relative to the set's directory).
fn load_set(set_path: &Path) -> Result<Runs, LoadError> {
    let set: RunSet = read_json(set_path, "set.json", SET_SCHEMA_VERSION)?;
    check_run_count(set_path, set.runs.len())?;
    let set_dir = set_path.parent().unwrap_or(Path::new("."));
    let runs = set
        .runs
        .iter()
        .map(|rel| {
            Ok((
                rel.clone(),
                read_summary(&set_dir.join(rel).join(SUMMARY_FILE))?,
            ))
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    if runs.is_empty() {
        return Err(LoadError::NothingToCompare(set_path.display().to_string()));
    }
    Ok(runs)
}

fn check_run_count(path: &Path, count: usize) -> Result<(), LoadError> {
    if count > MAX_RUNS_PER_SIDE {
        return Err(LoadError::TooManyRuns {
            path: path.display().to_string(),
            count,
        });
    }
    Ok(())
}

/// Reads and validates one `summary.json`.
pub fn read_summary(path: &Path) -> Result<Summary, LoadError> {
    read_json(path, "summary.json", SCHEMA_VERSION)
}

/// Just the version field, read first so a newer layout is reported as such, not as a typo.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: Option<u32>,
}

/// Reads a bounded text file and parses it as `T`, refusing versions above `known`.
fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    known: u32,
) -> Result<T, LoadError> {
    let shown = path.display().to_string();
    let bytes = read_bounded(path)?;
    if bytes.is_empty() {
        return Err(LoadError::Empty(shown));
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(LoadError::Binary {
            path: shown,
            offset: e.valid_up_to(),
        });
    }
    let probe: VersionProbe =
        serde_json::from_slice(&bytes).map_err(|e| parse_error(&shown, what, &e))?;
    if let Some(found) = probe.schema_version.filter(|&v| v > known) {
        return Err(LoadError::FutureVersion {
            path: shown,
            found,
            known,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| parse_error(&shown, what, &e))
}

/// Reads at most [`MAX_FILE_BYTES`] of a regular file (the size is checked before reading).
fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let shown = || path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(LoadError::NotRegular(shown()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: shown(),
            size: meta.len(),
        });
    }
    let file = fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between metadata and read: never take more than the limit.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: shown(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

fn io_error(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Splits serde_json's message from its position so the error reads the same for every cause.
fn parse_error(path: &str, what: &'static str, e: &serde_json::Error) -> LoadError {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(at) => full[..at].to_owned(),
        None => full,
    };
    LoadError::Parse {
        path: path.to_owned(),
        what,
        line: e.line(),
        column: e.column(),
        message,
        hint: if e.is_eof() {
            " (the file looks truncated)"
        } else {
            ""
        },
    }
}

#[cfg(test)]
mod tests;
