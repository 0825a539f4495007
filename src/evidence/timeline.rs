//! Reload timeline parsed from a gateway log: what the gateway itself says about triggers,
//! queued reloads and completed reloads, as a check on what the dashboard mock saw.
//!
//! Pure text in, data out; no Docker here. Recognised line formats (one log may mix them, and
//! each may carry a `docker logs --timestamps` prefix, which then wins because it is the most
//! precise clock):
//! - Tyk v2.9.x logrus text: `time="Nov 27 10:15:01" level=info msg="Reloading endpoints" …`
//!   (also `time=2020-06-05T10:15:01Z` unquoted, as logrus prints RFC 3339 values).
//! - Tyk v5 JSON: `{"level":"info","msg":"…","time":"2024-05-01T10:15:01Z"}`.
//! - The stub gateway's `tracing` output: `2026-11-27T10:15:01.123456Z  INFO Reloading endpoints`.
//!
//! Phrases counted: "Reloading endpoints" (a trigger reached the gateway), "Reload queued",
//! "Reload already queued" (a trigger absorbed by a reload in progress), "API reload complete",
//! "Policies found (N total)" and the start line "Tyk Gateway started (v…)" /
//! "stub gateway started (stub/…)", which gives the version.
//!
//! Pairing rule for `reload_durations_s`: a reload window opens at the first "Reloading
//! endpoints" or "Reload queued" after the previous "API reload complete" (or the log start) and
//! closes at the next "API reload complete"; triggers inside an open window do not move its start.
//! The duration is close − open, so it includes the wait for the gateway's 1 s reload tick.
//! A completion with no open window (the startup load) or without parseable times on both ends
//! gives no duration. Logrus times without a year are placed in one arbitrary leap year: only
//! their differences are used.

pub use crate::summary::environment::{ReloadEvent, ReloadEventKind, ReloadTimeline};
use chrono::{DateTime, NaiveDateTime};

/// At most this many events are kept in `events`; counters stay exact beyond it.
pub const MAX_EVENTS: usize = 10_000;

/// The gateway's reloads placed on another clock (e.g. the run's load start), for plots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayReloads {
    /// Reload windows `(open, close)`, seconds since the origin; pairing as for
    /// `reload_durations_s`.
    pub windows: Vec<(f64, f64)>,
    /// "Policies found (N total)" lines (the new policy set goes live), seconds since the origin.
    pub policies_found_s: Vec<f64>,
}

impl ReloadTimeline {
    /// The reloads in seconds since `origin` (RFC 3339, e.g. a summary's `started_at`). Only
    /// events with an RFC 3339 time (docker's prefix, which compose runs always have) can be
    /// placed; `None` when `origin` does not parse. Covers the first [`MAX_EVENTS`] events.
    pub fn reloads_since(&self, origin: &str) -> Option<GatewayReloads> {
        let origin = parse_rfc3339(origin)?;
        let at = |e: &ReloadEvent| {
            let t = parse_rfc3339(e.time.as_deref()?)?;
            Some(seconds_between(origin, t))
        };
        let mut out = GatewayReloads::default();
        let mut open: Option<Option<f64>> = None;
        for event in &self.events {
            match event.kind {
                ReloadEventKind::ReloadingEndpoints | ReloadEventKind::ReloadQueued => {
                    open.get_or_insert(at(event));
                }
                ReloadEventKind::ApiReloadComplete => {
                    if let (Some(Some(start)), Some(end)) = (open.take(), at(event)) {
                        out.windows.push((start, end));
                    }
                }
                ReloadEventKind::PoliciesFound => out.policies_found_s.extend(at(event)),
                ReloadEventKind::GatewayStarted => open = None,
                ReloadEventKind::ReloadAlreadyQueued => {}
            }
        }
        Some(out)
    }
}

/// Parses a whole gateway log at once; see [`TimelineBuilder`] for streaming.
pub fn parse_reload_timeline(log: &str) -> ReloadTimeline {
    let mut builder = TimelineBuilder::default();
    for line in log.lines() {
        builder.push_line(line);
    }
    builder.finish()
}

/// Builds a [`ReloadTimeline`] line by line, so a large log never has to sit in memory.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    timeline: ReloadTimeline,
    origin: Option<NaiveDateTime>,
    /// `Some(start)` while a reload window is open; the start may lack a parseable time.
    window_start: Option<Option<NaiveDateTime>>,
}

impl TimelineBuilder {
    /// Feeds one log line (without its newline).
    pub fn push_line(&mut self, raw: &str) {
        self.timeline.lines_read += 1;
        let Some(kind) = classify_line(raw) else {
            return;
        };
        let line = strip_ansi(raw);
        let stamp = parse_line_time(&line);
        let at = stamp.as_ref().map(|(_, t)| *t);
        if self.origin.is_none()
            && let Some((text, t)) = &stamp
        {
            self.origin = Some(*t);
            self.timeline.origin_time = Some(text.clone());
        }
        let mut policies = None;
        let tl = &mut self.timeline;
        match kind {
            ReloadEventKind::ReloadingEndpoints | ReloadEventKind::ReloadQueued => {
                if kind == ReloadEventKind::ReloadingEndpoints {
                    tl.triggers_seen += 1;
                } else {
                    tl.reloads_queued += 1;
                }
                self.window_start.get_or_insert(at);
            }
            ReloadEventKind::ReloadAlreadyQueued => tl.already_queued += 1,
            ReloadEventKind::ApiReloadComplete => {
                tl.reloads_completed += 1;
                if let Some(Some(start)) = self.window_start.take()
                    && let Some(end) = at
                {
                    let secs = seconds_between(start, end);
                    if secs >= 0.0 && tl.reload_durations_s.len() < MAX_EVENTS {
                        tl.reload_durations_s.push(secs);
                    }
                }
            }
            ReloadEventKind::PoliciesFound => {
                policies = parse_policies_found(&line);
                if policies.is_some() {
                    tl.policies_found_last = policies;
                }
            }
            ReloadEventKind::GatewayStarted => {
                tl.version = parse_version(&line).or(tl.version.take());
                // A restart forgets any reload it had queued.
                self.window_start = None;
            }
        }
        tl.events_total += 1;
        if tl.events.len() < MAX_EVENTS {
            tl.events.push(ReloadEvent {
                line: tl.lines_read,
                kind,
                time: stamp.map(|(text, _)| text),
                t_s: at.zip(self.origin).map(|(t, o)| seconds_between(o, t)),
                policies,
            });
        }
    }

    /// Counts `n` lines that were left out of a stored log (see `read_log_timeline`), so line
    /// numbers stay those of the container's log.
    pub fn skip_lines(&mut self, n: u64) {
        self.timeline.lines_read += n;
    }

    /// The timeline so far.
    pub fn finish(self) -> ReloadTimeline {
        self.timeline
    }
}

/// Whether the timeline reads this line (such lines are always kept whole in stored logs).
pub(crate) fn is_timeline_line(line: &str) -> bool {
    classify_line(line).is_some()
}

/// Which phrase a line carries; cheap substring tests first because most lines carry none.
fn classify_line(line: &str) -> Option<ReloadEventKind> {
    if line.contains("API reload complete") {
        Some(ReloadEventKind::ApiReloadComplete)
    } else if line.contains("Reload already queued") {
        Some(ReloadEventKind::ReloadAlreadyQueued)
    } else if line.contains("Reload queued") {
        Some(ReloadEventKind::ReloadQueued)
    } else if line.contains("Reloading endpoints") {
        Some(ReloadEventKind::ReloadingEndpoints)
    } else if line.contains("Policies found (") {
        Some(ReloadEventKind::PoliciesFound)
    } else if line.contains("Tyk Gateway started (") || line.contains("stub gateway started (") {
        Some(ReloadEventKind::GatewayStarted)
    } else {
        None
    }
}

/// Seconds from `a` to `b` (negative when `b` is earlier).
fn seconds_between(a: NaiveDateTime, b: NaiveDateTime) -> f64 {
    let delta = b - a;
    delta
        .num_microseconds()
        .map_or(delta.num_seconds() as f64, |us| us as f64 / 1e6)
}

/// Removes terminal colour codes, which the stub's `tracing` output has when ANSI is on.
fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequence: ESC [ params final-byte(@..~)
            for n in chars.by_ref() {
                if ('@'..='~').contains(&n) && n != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The line's timestamp as written and as a UTC time: a leading RFC 3339 token (docker prefix or
/// `tracing`), else logrus `time=`, else JSON `"time":"…"`.
fn parse_line_time(line: &str) -> Option<(String, NaiveDateTime)> {
    let first = line.split_whitespace().next()?;
    if let Some(t) = parse_rfc3339(first) {
        return Some((first.to_owned(), t));
    }
    if let Some(value) = field_after(line, "time=") {
        return parse_logrus_time(value).map(|t| (value.to_owned(), t));
    }
    if let Some(value) = field_after(line, "\"time\":") {
        return parse_rfc3339(value).map(|t| (value.to_owned(), t));
    }
    None
}

/// The value after `key`: quoted (up to the next quote) or bare (up to whitespace or `,`/`}`).
fn field_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = line[at..].trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()
    } else {
        rest.split(|c: char| c.is_whitespace() || c == ',' || c == '}')
            .next()
    }
}

fn parse_rfc3339(text: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.naive_utc())
}

/// Logrus `TimestampFormat` values Tyk uses, plus plain RFC 3339.
fn parse_logrus_time(text: &str) -> Option<NaiveDateTime> {
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    // "Nov 27 10:15:01" has no year: 2000 is a leap year, so "Feb 29" parses too.
    NaiveDateTime::parse_from_str(&format!("2000 {text}"), "%Y %b %d %H:%M:%S%.f").ok()
}

/// N from "Policies found (N total)".
fn parse_policies_found(line: &str) -> Option<u64> {
    let at = line.find("Policies found (")? + "Policies found (".len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The text in parentheses after "… started (".
fn parse_version(line: &str) -> Option<String> {
    let at = line.find("started (")? + "started (".len();
    let version = line[at..].split(')').next()?.trim();
    (!version.is_empty()).then(|| version.to_owned())
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
