//! Container logs as evidence files that stay small, and the reload timeline read back from them.
//!
//! A log is written gzip-compressed (`<service>.log.gz`, readable with `zcat`), streamed: lines
//! go in batches to a blocking task that owns the encoder, so a 50 MB log never sits in memory.
//! Two bounds keep real v2.9.4 runs (one INFO line per policy per reload: ~80k look-alike lines
//! per reload, ~50 MB per 5 s run) to a few hundred kilobytes:
//! - a run of more than [`RUN_HEAD_LINES`] consecutive look-alike lines (same text once every
//!   token holding a digit — times, ids, counts — is blanked) keeps its first
//!   [`RUN_HEAD_LINES`] lines and its last line;
//! - past [`LOG_TEXT_CAP_BYTES`] of text written, only the lines below are kept.
//!
//! Lines the reload timeline recognises ("Reload queued", "API reload complete", …) are always
//! kept whole, also inside a run and past the cap. Every stretch left out becomes one line
//! `[reload-repro: N lines left out here]`; [`read_log_timeline`] counts those, so the timeline
//! read back from the file (line numbers included) equals the one built from the live stream.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, anyhow};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::timeline::{ReloadTimeline, TimelineBuilder, is_timeline_line};

/// Look-alike lines kept at the start of a run of them; the rest of the run is counted.
pub const RUN_HEAD_LINES: u64 = 50;
/// Text written (before compression) after which only reload-timeline lines are kept.
pub const LOG_TEXT_CAP_BYTES: u64 = 64 * 1024 * 1024;
/// Start of every line the kit adds to a log file.
pub const NOTE_PREFIX: &str = "[reload-repro: ";
/// End of the line that stands for left-out lines.
const LEFT_OUT_SUFFIX: &str = " lines left out here]";
/// Lines sent to the writer task at once (bounded channel: memory stays at a few batches).
const BATCH_BYTES: usize = 64 * 1024;
/// Batches in flight between the log stream and the encoder.
const CHANNEL_BATCHES: usize = 8;

/// What writing one log file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFileStats {
    /// Lines received from the container.
    pub lines_in: u64,
    /// Of those, lines written to the file.
    pub lines_written: u64,
    /// Lines replaced by a "left out" line (look-alike runs, and everything past the cap).
    pub lines_left_out: u64,
    /// Whether the text cap was reached (from then on only reload lines were kept).
    pub capped: bool,
    /// Size of the compressed file, bytes.
    pub file_bytes: u64,
}

/// Decides line by line what goes into the file; pure, so it is tested without I/O.
#[derive(Debug)]
pub(crate) struct Compactor {
    /// Shape hash of the current run of look-alike lines.
    shape: Option<u64>,
    /// Lines of the current run so far.
    run_len: u64,
    /// Lines left out since the last line written (the held line not included).
    dropped: u64,
    /// The latest left-out line of the current run, written if the run ends normally.
    held: Option<String>,
    text_bytes: u64,
    cap_bytes: u64,
    stats: LogFileStats,
}

impl Compactor {
    /// A compactor that stops keeping ordinary lines after `cap_bytes` of text.
    pub fn new(cap_bytes: u64) -> Self {
        Self {
            shape: None,
            run_len: 0,
            dropped: 0,
            held: None,
            text_bytes: 0,
            cap_bytes,
            stats: LogFileStats::default(),
        }
    }

    /// Takes one line (without newline); calls `out` with each line to write, in order.
    pub fn push(&mut self, line: &str, out: &mut impl FnMut(&str)) {
        self.stats.lines_in += 1;
        if is_timeline_line(line) {
            // Written now, so a held line (earlier in the log) can no longer be: count it.
            if self.held.take().is_some() {
                self.dropped += 1;
            }
            self.write(line, out);
            return;
        }
        if self.stats.capped {
            self.dropped += 1;
            return;
        }
        let shape = line_shape(line);
        if self.shape == Some(shape) {
            self.run_len += 1;
        } else {
            self.end_run(out);
            self.shape = Some(shape);
            self.run_len = 1;
        }
        if self.run_len > RUN_HEAD_LINES {
            if self.held.replace(line.to_owned()).is_some() {
                self.dropped += 1;
            }
            return;
        }
        if self.text_bytes + line.len() as u64 + 1 > self.cap_bytes {
            self.stats.capped = true;
            self.dropped += 1;
            let note = format!(
                "{NOTE_PREFIX}text cap of {} MiB reached: from here on only reload lines are kept]",
                self.cap_bytes / (1024 * 1024)
            );
            self.flush_dropped(out);
            out(&note);
            return;
        }
        self.write(line, out);
    }

    /// Ends the log: writes what is still held and counts what is left out.
    pub fn finish(mut self, out: &mut impl FnMut(&str)) -> LogFileStats {
        self.end_run(out);
        self.flush_dropped(out);
        self.stats
    }

    fn end_run(&mut self, out: &mut impl FnMut(&str)) {
        if let Some(last) = self.held.take() {
            self.write(&last, out);
        }
    }

    fn write(&mut self, line: &str, out: &mut impl FnMut(&str)) {
        self.flush_dropped(out);
        self.text_bytes += line.len() as u64 + 1;
        self.stats.lines_written += 1;
        out(line);
    }

    fn flush_dropped(&mut self, out: &mut impl FnMut(&str)) {
        if self.dropped > 0 {
            self.stats.lines_left_out += self.dropped;
            out(&left_out_line(self.dropped));
            self.dropped = 0;
        }
    }
}

/// The line standing for `n` left-out lines.
fn left_out_line(n: u64) -> String {
    format!("{NOTE_PREFIX}{n}{LEFT_OUT_SUFFIX}")
}

/// N of a "N lines left out here" line.
fn parse_left_out(line: &str) -> Option<u64> {
    line.strip_prefix(NOTE_PREFIX)?
        .strip_suffix(LEFT_OUT_SUFFIX)?
        .parse()
        .ok()
}

/// Hash of a line with every token that holds a digit blanked: two lines that differ only in
/// times, ids or counts look alike.
fn line_shape(line: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    for token in line.split(|c: char| c.is_whitespace() || c == '"') {
        if token.is_empty() {
            continue;
        }
        if token.bytes().any(|b| b.is_ascii_digit()) {
            0u8.hash(&mut hasher);
        } else {
            token.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Streams lines into `<path>` (gzip) through a [`Compactor`], on a blocking task.
pub(crate) struct LogFileWriter {
    tx: tokio::sync::mpsc::Sender<Vec<String>>,
    task: tokio::task::JoinHandle<anyhow::Result<LogFileStats>>,
    batch: Vec<String>,
    batch_bytes: usize,
}

impl LogFileWriter {
    /// Creates the file at once, so a bad run directory fails before the log is read.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path).with_context(|| {
            format!("cannot create {}; check the run directory", path.display())
        })?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<String>>(CHANNEL_BATCHES);
        let shown = path.display().to_string();
        let task = tokio::task::spawn_blocking(move || {
            let mut encoder = GzEncoder::new(std::io::BufWriter::new(file), Compression::new(6));
            let mut compactor = Compactor::new(LOG_TEXT_CAP_BYTES);
            let mut failed: Option<std::io::Error> = None;
            let mut out = |line: &str| {
                if failed.is_none()
                    && let Err(e) = encoder
                        .write_all(line.as_bytes())
                        .and_then(|()| encoder.write_all(b"\n"))
                {
                    failed = Some(e);
                }
            };
            while let Some(batch) = rx.blocking_recv() {
                for line in &batch {
                    compactor.push(line, &mut out);
                }
            }
            let mut stats = compactor.finish(&mut out);
            if let Some(e) = failed {
                return Err(anyhow!("cannot write {shown}: {e}"));
            }
            let file = encoder
                .finish()
                .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
                .with_context(|| format!("cannot write {shown}"))?;
            stats.file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            Ok(stats)
        });
        Ok(Self {
            tx,
            task,
            batch: Vec::new(),
            batch_bytes: 0,
        })
    }

    /// Queues one line; waits when the encoder is behind (bounded memory).
    pub async fn push(&mut self, line: String) -> anyhow::Result<()> {
        self.batch_bytes += line.len();
        self.batch.push(line);
        if self.batch_bytes >= BATCH_BYTES {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if self.tx.send(batch).await.is_err() {
            // The task ended early: its error says why.
            return Err(anyhow!("the log writer stopped"));
        }
        Ok(())
    }

    /// Writes what is queued, closes the gzip stream and returns what was written.
    pub async fn finish(mut self) -> anyhow::Result<LogFileStats> {
        let sent = if self.batch.is_empty() {
            Ok(())
        } else {
            self.send().await
        };
        drop(self.tx);
        let stats = self
            .task
            .await
            .map_err(|e| anyhow!("the log writer task failed: {e}"))??;
        sent.map(|()| stats)
    }
}

/// Reads a reload timeline back from a log file the kit wrote: `<service>.log.gz` (gzip, also
/// recognised by its magic bytes) or an older plain `<service>.log`. The kit's own lines are not
/// counted as log lines; "N lines left out here" counts N.
pub fn read_log_timeline(path: &Path) -> anyhow::Result<ReloadTimeline> {
    let mut file = std::fs::File::open(path).with_context(|| {
        format!(
            "cannot open {}; is it a run directory's log?",
            path.display()
        )
    })?;
    let mut magic = [0u8; 2];
    let n = file
        .read(&mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn BufRead> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::new(file))
    };
    timeline_from_reader(reader).with_context(|| format!("cannot read {}", path.display()))
}

/// The timeline of a log read line by line (invalid UTF-8 replaced).
fn timeline_from_reader(mut reader: impl BufRead) -> std::io::Result<ReloadTimeline> {
    let mut builder = TimelineBuilder::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = String::from_utf8_lossy(bytes);
        if let Some(n) = parse_left_out(&line) {
            builder.skip_lines(n);
        } else if !line.starts_with(NOTE_PREFIX) {
            builder.push_line(&line);
        }
    }
    Ok(builder.finish())
}

#[cfg(test)]
#[path = "logfile_tests.rs"]
mod tests;
