//! report.html opened in a real headless browser with networking disabled. Ignored by default
//! (needs Chromium: `apt-get install -y chromium`); CI runs it with `--run-ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fixtures::{HANG_FETCHES, hang_records, summary};
use super::frame::WAITING;
use super::raster_tests::{Region, count_colour};
use super::*;
use crate::summary::Verdict;

/// The browser: `$CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("no chromium on PATH: install it (`apt-get install -y chromium`) or set CHROMIUM");
}

/// Runs the browser headless on `url` with `args`, without network: in a new network namespace
/// when `unshare --net` works (root), and always with every host resolving nowhere.
fn run_browser(profile: &Path, args: &[String], url: &str) -> Vec<u8> {
    let isolated = Command::new("unshare")
        .args(["--net", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut command = if isolated {
        let mut c = Command::new("unshare");
        c.arg("--net").arg(chromium());
        c
    } else {
        Command::new(chromium())
    };
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let child = command.spawn().expect("start chromium");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let started = Instant::now();
    let output = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!(
                "chromium did not finish within 120 s ({:?})",
                started.elapsed()
            )
        })
        .expect("chromium output");
    assert!(
        output.status.success(),
        "chromium failed: {:?}",
        output.status
    );
    output.stdout
}

#[test]
#[ignore = "needs chromium"]
fn report_html_renders_in_a_headless_browser_without_network() {
    let records = hang_records();
    let s = summary(Verdict::Hang, &records);
    let input = RunPlotInput {
        summary: &s,
        records: &records,
        fetch_offsets_s: &HANG_FETCHES,
        timed_out_per_s: None,
    };
    let (_, html) = run_plot_files(&input)
        .into_iter()
        .find(|(name, _)| *name == REPORT_HTML)
        .expect("report.html");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(REPORT_HTML);
    std::fs::write(&page, html.unwrap()).unwrap();
    let url = format!("file://{}", page.display());
    let profile = dir.path().join("profile");

    let dom =
        String::from_utf8_lossy(&run_browser(&profile, &["--dump-dom".into()], &url)).into_owned();
    assert_eq!(
        dom.matches("<svg").count(),
        3,
        "the browser's DOM: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(dom.contains("30 still waiting"));

    let shot = dir.path().join("shot.png");
    run_browser(
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,2400".into(),
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    if let Some(keep) = std::env::var_os("REPRO_PLOT_DIR") {
        let _ = std::fs::write(Path::new(&keep).join("report-html-screenshot.png"), &png);
    }
    let p = resvg::tiny_skia::Pixmap::decode_png(&png).expect("a PNG screenshot");
    let all = Region {
        x0: 0,
        y0: 0,
        x1: p.width(),
        y1: p.height(),
    };
    let red = count_colour(&p, all, (WAITING.0, WAITING.1, WAITING.2), 30);
    assert!(red > 500, "{red} red pixels: the plots did not render");
}
