//! The run directory: `OUT/LABEL/<UTC timestamp>/`, checked writable before any load, files
//! written atomically (temp + fsync + rename) and `OUT/LABEL/latest` moved only after the
//! summary is in place, so a crash never leaves a truncated `summary.json` behind `latest`.
//! Also the verdict block: the few lines a run or set ends with on the terminal.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::summary::Summary;
use crate::summary::censored::{format_quantile, time_to_usable_of};

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

/// The block a run ends with on the terminal: verdict, reason, gateway image and version, the
/// run directory as `shown_dir` (the path the user can open), the three figures that matter, and
/// the attempt notes that shape them. Everything else is in the run directory's files.
pub fn verdict_block(s: &Summary, shown_dir: &Path) -> String {
    let mut out = String::new();
    let stub = if s.gateway.is_stub {
        "  [STUB: not a Tyk result]"
    } else {
        ""
    };
    out.push_str(&format!(
        "=== {} verdict: {}{stub}\n",
        s.label,
        s.verdict.as_str().to_uppercase()
    ));
    out.push_str(&format!("reason:      {}\n", one_line(&s.reason)));
    let image = s
        .environment
        .as_ref()
        .and_then(|e| e.pointer("/gateway/image"))
        .and_then(|v| v.as_str());
    let version = s.gateway.version.as_deref().unwrap_or("unknown");
    out.push_str(&format!(
        "gateway:     {}version {version} (from {})\n",
        image.map_or(String::new(), |i| format!("{i}, ")),
        s.gateway.version_source
    ));
    let c = &s.scenarios;
    let usable = time_to_usable_of(s).map_or("—".to_owned(), |t| format_quantile(&t.p50));
    out.push_str(&format!(
        "figures:     time to usable p50 {usable} (all scenarios)  outstanding {} of {}  \
         succeeded {}\n",
        c.outstanding, c.scheduled, c.succeeded
    ));
    for (i, g) in s.gateways.iter().enumerate() {
        out.push_str(&format!(
            "gateway {:<4} {} {}{}  time to usable p50 {}  outstanding {} of {}\n",
            format!("{}:", i + 1),
            g.verdict.as_str().to_uppercase(),
            g.url,
            g.container
                .as_deref()
                .map_or(String::new(), |c| format!(" ({c})")),
            format_quantile(&g.time_to_usable.p50),
            g.scenarios.outstanding,
            g.scenarios.scheduled
        ));
    }
    for note in crate::summary::attempts::attempt_notes(s) {
        out.push_str(&format!("note:        {note}\n"));
    }
    out.push_str(&format!("run dir:     {}\n", shown_dir.display()));
    out
}

/// `dir` as the user sees it: `host_out` replaces the `out` prefix when the runner writes into a
/// mounted folder (under compose, `/results` is the user's RESULTS_DIR).
pub fn shown_path(dir: &Path, out: &Path, host_out: Option<&Path>) -> PathBuf {
    match (host_out, dir.strip_prefix(out)) {
        (Some(host), Ok(rest)) => host.join(rest),
        _ => dir.to_path_buf(),
    }
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 400 {
        let cut: String = flat.chars().take(400).collect();
        format!("{cut}… (full reason in summary.md)")
    } else {
        flat
    }
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
    fn the_verdict_block_is_a_few_lines_with_the_verdict_the_figures_and_the_host_path() {
        let s = crate::summary::set::sample_summary();
        let block = verdict_block(&s, Path::new("/home/me/results/2.9.4/x"));
        let lines: Vec<&str> = block.lines().collect();
        assert!(lines[0].contains("verdict: HANG"), "{block}");
        assert!(lines.iter().any(|l| l.starts_with("reason:")), "{block}");
        assert!(lines.iter().any(|l| l.starts_with("gateway:")), "{block}");
        let figures = lines.iter().find(|l| l.starts_with("figures:")).unwrap();
        assert!(figures.contains("time to usable p50"), "{block}");
        assert!(figures.contains("outstanding"), "{block}");
        assert_eq!(
            lines.last().copied(),
            Some("run dir:     /home/me/results/2.9.4/x")
        );
        assert!(lines.len() <= 6 + crate::summary::attempts::attempt_notes(&s).len());
        assert!(!block.contains('|'), "no Markdown table: {block}");
    }

    #[test]
    fn a_mounted_run_directory_is_shown_at_its_host_path() {
        let shown = shown_path(
            Path::new("/results/2.9.4/20260101T000000Z"),
            Path::new("/results"),
            Some(Path::new("/home/me/results")),
        );
        assert_eq!(shown, Path::new("/home/me/results/2.9.4/20260101T000000Z"));
        let native = shown_path(Path::new("/tmp/r/x"), Path::new("/tmp/r"), None);
        assert_eq!(native, Path::new("/tmp/r/x"));
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
