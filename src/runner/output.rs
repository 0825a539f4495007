//! The run directory: `OUT/LABEL/<UTC timestamp>/`, checked writable before any load, files
//! written atomically (temp + fsync + rename) and `OUT/LABEL/latest` moved only after the
//! summary is in place, so a crash never leaves a truncated `summary.json` behind `latest`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

/// Bytes written and synced by the free-space probe.
const PROBE_BYTES: usize = 1 << 20;

/// One run's output directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `OUT/LABEL/<timestamp>`.
    pub path: PathBuf,
    /// `OUT/LABEL`.
    pub label_dir: PathBuf,
    /// `<timestamp>` (the directory's name).
    pub name: String,
}

impl RunDir {
    /// Creates `OUT/LABEL/<timestamp>` (suffixed `-2`, `-3`… if taken) and proves it writable
    /// with room for at least a megabyte.
    pub fn create(out: &Path, label: &str, started: DateTime<Utc>) -> anyhow::Result<Self> {
        let label_dir = out.join(label);
        fs::create_dir_all(&label_dir).with_context(|| {
            format!(
                "cannot create output directory {}: check --out / REPRO_OUT points somewhere writable",
                label_dir.display()
            )
        })?;
        let stamp = started.format("%Y%m%dT%H%M%SZ").to_string();
        let mut name = stamp.clone();
        let mut n = 1;
        let path = loop {
            let candidate = label_dir.join(&name);
            match fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    name = format!("{stamp}-{n}");
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create run directory {}", candidate.display())
                    });
                }
            }
        };
        let dir = Self {
            path,
            label_dir,
            name,
        };
        dir.probe_writable()?;
        Ok(dir)
    }

    fn probe_writable(&self) -> anyhow::Result<()> {
        let probe = self.path.join(".write-probe");
        let result = (|| -> std::io::Result<()> {
            let mut f = File::create(&probe)?;
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        })();
        let _ = fs::remove_file(&probe);
        result.with_context(|| {
            format!(
                "output directory {} is not writable or is full: free space or choose another --out",
                self.path.display()
            )
        })
    }

    /// Writes `name` atomically: a temporary file, synced, then renamed into place.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// A buffered writer for the streamed `scenarios.jsonl` (written as `.partial`, renamed by
    /// [`RunDir::seal_scenarios`]).
    pub fn scenarios_writer(&self) -> anyhow::Result<BufWriter<File>> {
        let path = self.path.join("scenarios.jsonl.partial");
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(BufWriter::with_capacity(256 * 1024, file))
    }

    /// Moves the finished `scenarios.jsonl.partial` into place.
    pub fn seal_scenarios(&self) -> anyhow::Result<()> {
        let from = self.path.join("scenarios.jsonl.partial");
        let to = self.path.join("scenarios.jsonl");
        fs::rename(&from, &to).with_context(|| format!("cannot rename {}", from.display()))
    }

    /// Points `OUT/LABEL/latest` at this run (a relative symlink, replaced atomically).
    pub fn point_latest(&self) -> anyhow::Result<()> {
        point_link(&self.label_dir, "latest", &self.name)
    }
}

/// Replaces `dir/link` with a relative symlink to `target`, atomically (symlink + rename).
pub fn point_link(dir: &Path, link: &str, target: &str) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{link}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create symlink {}", tmp.display()))?;
    #[cfg(not(unix))]
    fs::write(&tmp, target).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, dir.join(link))
        .with_context(|| format!("cannot move {} into place", dir.join(link).display()))
}

/// Writes `path` atomically: `path.tmp`, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_never_collide_and_latest_points_at_the_newest() {
        let out = tempfile::tempdir().unwrap();
        let t = Utc::now();
        let a = RunDir::create(out.path(), "2.9.4", t).unwrap();
        let b = RunDir::create(out.path(), "2.9.4", t).unwrap();
        assert_ne!(a.path, b.path);
        assert!(b.name.ends_with("-2"));
        b.write_atomic("summary.json", b"{}").unwrap();
        b.point_latest().unwrap();
        let latest = out.path().join("2.9.4/latest/summary.json");
        assert_eq!(fs::read(latest).unwrap(), b"{}");
        assert!(!b.path.join("summary.json.tmp").exists());
    }

    #[test]
    fn an_output_path_that_cannot_hold_directories_is_named_in_the_error() {
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = RunDir::create(&file, "x", Utc::now()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("not-a-dir"), "{text}");
        assert!(text.contains("--out"), "{text}");
    }
}
