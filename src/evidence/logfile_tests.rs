//! Tests of the stored log files: the compactor's rules, a v2.9.4-sized log end to end through
//! the gzip writer, and the timeline read back from compressed and plain files.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

fn compact(lines: &[String], cap: u64) -> (Vec<String>, LogFileStats) {
    let mut out = Vec::new();
    let mut c = Compactor::new(cap);
    for l in lines {
        c.push(l, &mut |w| out.push(w.to_owned()));
    }
    let stats = c.finish(&mut |w| out.push(w.to_owned()));
    (out, stats)
}

fn policy_line(i: u64) -> String {
    format!(
        "2026-12-01T10:15:01.{i:09}Z time=\"Dec 01 10:15:01\" level=info msg=\" - {:032x}\" prefix=main",
        u128::from(i) * 0x9e37_79b9_7f4a_7c15
    )
}

#[test]
fn a_long_run_of_look_alike_lines_keeps_its_head_and_its_last_line() {
    let mut lines = vec!["starting".to_owned()];
    lines.extend((0..1_000).map(policy_line));
    lines.push("done".to_owned());
    let (out, stats) = compact(&lines, u64::MAX);
    let head = RUN_HEAD_LINES as usize;
    assert_eq!(out[..=head], lines[..=head]);
    assert_eq!(out[head + 1], "[reload-repro: 949 lines left out here]");
    assert_eq!(out[head + 2], lines[1_000]);
    assert_eq!(out[head + 3], "done");
    assert_eq!(out.len(), head + 4);
    assert_eq!(stats.lines_in, 1_002);
    assert_eq!(stats.lines_left_out, 949);
    assert_eq!(stats.lines_written, 1_002 - 949);
}

#[test]
fn reload_lines_inside_a_run_are_kept_whole_and_in_order() {
    let mut lines: Vec<String> = (0..200).map(policy_line).collect();
    let queued =
        "2026-12-01T10:15:02.5Z time=\"Dec 01 10:15:02\" level=info msg=\"Reload already queued\"";
    lines.insert(120, queued.to_owned());
    let (out, _) = compact(&lines, u64::MAX);
    let at = out.iter().position(|l| l == queued).expect("kept");
    // 50 head lines, then the 70 left out before it, then the line itself.
    assert_eq!(out[at - 1], "[reload-repro: 70 lines left out here]");
    // The run goes on after it: the rest is cut again and ends with its last line.
    assert_eq!(out[at + 1], "[reload-repro: 79 lines left out here]");
    assert_eq!(out.last(), lines.last());
}

#[test]
fn past_the_cap_only_reload_lines_are_kept() {
    let mut lines: Vec<String> = (0..100).map(|i| format!("line {i} of something")).collect();
    lines.push("2026-12-01T10:15:02Z INFO API reload complete".to_owned());
    lines.push("after the cap".to_owned());
    // A cap of 200 bytes is reached after a few lines, well inside the run's head.
    let (out, stats) = compact(&lines, 200);
    assert!(stats.capped);
    assert!(out.iter().any(|l| l.contains("text cap of 0 MiB reached")));
    assert!(out.iter().any(|l| l.ends_with("API reload complete")));
    assert!(!out.iter().any(|l| l == "after the cap"));
    let text: u64 = out
        .iter()
        .filter(|l| !l.starts_with(NOTE_PREFIX))
        .map(|l| l.len() as u64 + 1)
        .sum();
    assert!(text < 300, "{text} bytes kept");
}

/// A real-v2.9.4-shaped log of at least 50 MB: startup, then reloads each listing ~84k policy
/// ids (random uuids, random order) at INFO, with "Reload already queued" lines interleaved.
fn v294_log(min_bytes: usize) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(7);
    let ids: Vec<String> = (0..84_000)
        .map(|_| {
            let v: u128 = rng.random();
            let h = format!("{v:032x}");
            format!(
                "{}-{}-4{}-a{}-{}",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..]
            )
        })
        .collect();
    let mut ns: u64 = 0;
    let mut stamp = |rng: &mut SmallRng| {
        ns += rng.random_range(2_000..30_000);
        let s = ns / 1_000_000_000;
        format!(
            "2026-12-01T10:{:02}:{:02}.{:09}Z time=\"Dec 01 10:{:02}:{:02}\"",
            15 + s / 60,
            s % 60,
            ns % 1_000_000_000,
            15 + s / 60,
            s % 60
        )
    };
    let mut log = vec![format!(
        "{} level=info msg=\"Tyk Gateway started (v2.9.4)\" prefix=main",
        stamp(&mut rng)
    )];
    let mut bytes = 0;
    let mut reload = 0;
    while bytes < min_bytes {
        reload += 1;
        let served = 80_400 + reload * 700;
        for msg in ["Reloading endpoints", "Reload queued"] {
            log.push(format!(
                "{} level=info msg=\"{msg}\" prefix=main",
                stamp(&mut rng)
            ));
        }
        log.push(format!(
            "{} level=info msg=\"Policies found ({served} total):\" prefix=main",
            stamp(&mut rng)
        ));
        for id in ids.iter().take(served) {
            let line = if rng.random_ratio(1, 160) {
                format!(
                    "{} level=info msg=\"Reload already queued\" prefix=main",
                    stamp(&mut rng)
                )
            } else {
                format!("{} level=info msg=\" - {id}\" prefix=main", stamp(&mut rng))
            };
            bytes += line.len() + 1;
            log.push(line);
        }
        log.push(format!(
            "{} level=info msg=\"API reload complete\" prefix=main",
            stamp(&mut rng)
        ));
    }
    log
}

#[tokio::test]
async fn a_50_mb_v294_log_is_stored_under_10_mb_and_gives_the_same_timeline() {
    let log = v294_log(50 * 1024 * 1024);
    let raw_bytes: usize = log.iter().map(|l| l.len() + 1).sum();
    assert!(raw_bytes >= 50 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.log.gz");
    let mut live = TimelineBuilder::default();
    let mut writer = LogFileWriter::create(&path).unwrap();
    for line in &log {
        live.push_line(line);
        writer.push(line.clone()).await.unwrap();
    }
    let stats = writer.finish().await.unwrap();
    let live = live.finish();

    let file_bytes = std::fs::metadata(&path).unwrap().len();
    assert_eq!(stats.file_bytes, file_bytes);
    assert!(
        file_bytes < 10 * 1024 * 1024,
        "{file_bytes} bytes for {raw_bytes} of log"
    );
    assert_eq!(stats.lines_in, log.len() as u64);
    assert!(!stats.capped);
    assert!(live.already_queued > 2_000, "{}", live.already_queued);
    assert_eq!(read_log_timeline(&path).unwrap(), live);
    eprintln!(
        "{raw_bytes} bytes of log, {} lines -> {file_bytes} bytes gzip, {} lines left out",
        log.len(),
        stats.lines_left_out
    );
}

#[tokio::test]
async fn the_stored_file_is_plain_gzip_that_zcat_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.log.gz");
    let mut writer = LogFileWriter::create(&path).unwrap();
    for line in [
        "first line",
        "2026-12-01T10:15:02Z INFO Reload queued",
        "last",
    ] {
        writer.push(line.to_owned()).await.unwrap();
    }
    writer.finish().await.unwrap();
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text,
        "first line\n2026-12-01T10:15:02Z INFO Reload queued\nlast\n"
    );
    match std::process::Command::new("zcat").arg(&path).output() {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout), text),
        Err(e) => eprintln!("zcat not run ({e}); the gzip stream was checked with flate2"),
    }
}

#[test]
fn an_old_plain_log_with_the_old_truncation_note_still_gives_its_timeline() {
    let log = "2026-11-27T10:15:00Z INFO stub gateway started (stub/v2.9.4)\n\
               2026-11-27T10:15:01Z INFO Reload queued\n\
               [reload-repro: log truncated here at 200 MiB; `docker logs` has the rest]\n\
               2026-11-27T10:15:02Z INFO API reload complete\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.log");
    std::fs::write(&path, log).unwrap();
    let tl = read_log_timeline(&path).unwrap();
    assert_eq!(tl.version.as_deref(), Some("stub/v2.9.4"));
    assert_eq!(tl.reload_durations_s, vec![1.0]);
    assert_eq!(tl.lines_read, 3);
}

#[test]
fn a_missing_log_is_named_in_the_error() {
    let err = read_log_timeline(Path::new("/nonexistent/gateway.log.gz")).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/gateway.log.gz"),
        "{err:#}"
    );
}
