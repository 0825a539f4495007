//! Hostile input, fuzzed and replayed: the summary parser (and everything `diff` does with a
//! summary it accepted) and the stub's notification parser never panic, and every refusal
//! names the file. Cases are bounded (proptest, 256 each) so this runs in seconds; the corpus
//! in `tests/corpus/` is replayed as ordinary tests, and a proptest failure worth keeping
//! belongs there as a new file.
//!
//! Corpus naming: `summary/ok-*` must parse, `summary/bad-*` must be refused;
//! `notification/<verdict>-*` must be judged `<verdict>` with [`CORPUS_NODE_SECRET`].

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use reload_repro::diff::load::{load_side, read_summary};
use reload_repro::diff::{CompareOptions, Side, SideKind, compare, plot, render};
use reload_repro::protocol::{Notification, RELOAD_COMMANDS};
use reload_repro::stub::subscriber::{Verdict as Judged, judge_message};
use reload_repro::summary::{Summary, render as summary_render};
use serde_json::{Value, json};

/// The node secret the notification corpus is signed with.
const CORPUS_NODE_SECRET: &str = "corpus-node-secret";

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(kind))
        .expect("corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the {kind} corpus is there: {files:?}");
    files
}

fn valid_summary_text() -> String {
    std::fs::read_to_string(corpus_dir("summary").join("ok-hang-v294.json")).expect("valid summary")
}

/// 256 cases per property (seconds); `PROPTEST_CASES=100000` for a longer local hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Everything `diff` and the run renderers do with an accepted summary; must not panic.
fn exercise_accepted(summary: &Summary) {
    let baseline: Summary = serde_json::from_str(&valid_summary_text()).expect("valid summary");
    let side = |s: &Summary, name: &str| {
        Side::from_runs(name, SideKind::Summary, &[(name.to_owned(), s.clone())])
    };
    let (a, b) = (side(&baseline, "a"), side(summary, "b"));
    let options = CompareOptions {
        alpha: 0.05,
        min_effect_pct: 10.0,
        bootstrap: 20,
        seed: 1,
        force: true,
    };
    for (x, y) in [(&a, &b), (&b, &a), (&b, &b)] {
        let comparison = compare(x, y, &options);
        let _ = render::render_terminal(&comparison);
        let _ = render::render_markdown(&comparison);
        let _ = render::render_json(&comparison);
        let _ = plot::render_latency_cdf(x, y);
    }
    let _ = summary_render::render_markdown(summary);
    let _ = summary_render::render_table(summary);
    let _ = summary_render::render_report_txt(&summary.top, &summary.top, 0);
}

/// Writes `bytes` as `summary.json` and reads it back: accepted summaries go through the diff,
/// refusals must name the file.
fn read_hostile(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("summary.json");
    std::fs::write(&path, bytes).expect("write the case");
    match read_summary(&path) {
        Ok(summary) => {
            exercise_accepted(&summary);
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            if text.contains(&path.display().to_string()) {
                Err(text)
            } else {
                panic!("the error does not name the file: {text}")
            }
        }
    }
}

/// JSON pointers of every node of `v` (the root excluded).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(map) => map.iter().map(|(k, c)| (format!("{at}/{k}"), c)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{at}/{i}"), c))
            .collect(),
        _ => Vec::new(),
    };
    for (pointer, child) in children {
        out.push(pointer.clone());
        pointers(child, pointer, out);
    }
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1.7976931348623157e308)),
        Just(json!(-1.7976931348623157e308)),
        Just(json!(5e-324)),
        Just(json!(0)),
        Just(json!(-1)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("hang")),
        Just(json!("AAAA")),
        Just(json!([])),
        Just(json!({})),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_summary_parser_and_refusals_name_the_file(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let _ = read_hostile(&bytes);
    }

    #[test]
    fn truncated_flipped_or_grown_summaries_parse_or_are_refused_naming_the_file(
        op in 0u8..3, at in any::<Index>(), byte in any::<u8>()
    ) {
        let mut bytes = valid_summary_text().into_bytes();
        let i = at.index(bytes.len());
        match op {
            0 => bytes.truncate(i),
            1 => bytes[i] = byte,
            _ => bytes.insert(i, byte),
        }
        let _ = read_hostile(&bytes);
    }

    #[test]
    fn summaries_with_hostile_field_values_never_panic_the_diff(
        edits in proptest::collection::vec((any::<Index>(), hostile_value()), 1..4)
    ) {
        let mut doc: Value = serde_json::from_str(&valid_summary_text()).unwrap();
        for (at, value) in edits {
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let pointer = &all[at.index(all.len())];
            if let Some(slot) = doc.pointer_mut(pointer) {
                *slot = value;
            }
        }
        let _ = read_hostile(doc.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_bytes_on_the_notification_channel_never_panic_and_rarely_reload(
        bytes in proptest::collection::vec(any::<u8>(), 0..512), insecure in any::<bool>()
    ) {
        let verdict = judge_message(&bytes, CORPUS_NODE_SECRET, insecure);
        if let Judged::Reload(command) = verdict {
            // Only a well-formed notification naming a reload command may reload.
            let n: Notification = serde_json::from_slice(&bytes).unwrap();
            prop_assert!(RELOAD_COMMANDS.contains(&command.as_str()) && n.command == command);
            prop_assert!(insecure || n.signature_valid(CORPUS_NODE_SECRET));
        }
    }

    #[test]
    fn a_signed_notification_reloads_exactly_when_its_command_is_a_reload_command(
        command in prop_oneof![
            proptest::sample::select(RELOAD_COMMANDS.to_vec()).prop_map(str::to_owned),
            ".{0,24}",
        ],
        payload in ".{0,64}",
        secret in ".{1,24}",
    ) {
        let body = serde_json::to_vec(&Notification::signed(&command, &payload, &secret)).unwrap();
        let expected = if RELOAD_COMMANDS.contains(&command.as_str()) {
            Judged::Reload(command.clone())
        } else {
            Judged::Ignored(command.clone())
        };
        prop_assert_eq!(judge_message(&body, &secret, false), expected);
        let other = format!("{secret}x");
        prop_assert_eq!(judge_message(&body, &other, false), Judged::InvalidSignature);
    }

    #[test]
    fn a_mutated_signed_notification_never_reloads_unless_still_validly_signed(
        op in 0u8..3, at in any::<Index>(), byte in any::<u8>()
    ) {
        let mut bytes =
            serde_json::to_vec(&Notification::signed("PolicyChanged", "", CORPUS_NODE_SECRET)).unwrap();
        let i = at.index(bytes.len());
        match op {
            0 => bytes.truncate(i),
            1 => bytes[i] = byte,
            _ => bytes.insert(i, byte),
        }
        if let Judged::Reload(_) = judge_message(&bytes, CORPUS_NODE_SECRET, false) {
            let n: Notification = serde_json::from_slice(&bytes).unwrap();
            prop_assert!(n.signature_valid(CORPUS_NODE_SECRET));
        }
    }
}

#[test]
fn every_summary_in_the_corpus_parses_or_is_refused_as_its_name_says() {
    for path in corpus("summary") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        match read_hostile(&bytes) {
            Ok(()) => assert!(name.starts_with("ok-"), "{name} was accepted"),
            Err(e) => assert!(name.starts_with("bad-"), "{name} was refused: {e}"),
        }
    }
}

#[test]
fn every_notification_in_the_corpus_is_judged_as_its_name_says() {
    for path in corpus("notification") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let verdict = judge_message(&std::fs::read(&path).unwrap(), CORPUS_NODE_SECRET, false);
        let judged = match &verdict {
            Judged::Reload(_) => "reload-",
            Judged::Malformed(_) => "malformed-",
            Judged::InvalidSignature => "invalid-signature-",
            Judged::Ignored(_) => "ignored-",
        };
        assert!(name.starts_with(judged), "{name} was judged {verdict:?}");
    }
}

#[test]
fn diff_refuses_every_bad_summary_in_the_corpus_with_exit_2_naming_the_file() {
    let good = corpus_dir("summary").join("ok-hang-v294.json");
    for bad in corpus("summary") {
        let name = bad.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("bad-") {
            continue;
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_reload-repro"))
            .arg("diff")
            .args([&good, &bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("reading B: ") && stderr.contains(&name),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn a_whole_results_tree_of_corpus_runs_loads_as_a_label_directory() {
    // Each accepted corpus summary becomes one run directory: together they are one side.
    let tmp = tempfile::tempdir().unwrap();
    let label = tmp.path().join("label");
    let oks: Vec<PathBuf> = corpus("summary")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ok-"))
        .collect();
    for (i, ok) in oks.iter().enumerate() {
        let run = label.join(format!("20250101T00000{i}Z"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::copy(ok, run.join("summary.json")).unwrap();
    }
    let side = load_side(&label).expect("a label directory of valid runs loads");
    assert_eq!(side.runs.len(), oks.len());
}

#[test]
fn a_real_runs_latency_histogram_reaches_the_diff() {
    // The corpus summary was written by a real (stub) run: its histogram is V2 + DEFLATE.
    let path = corpus_dir("summary").join("ok-hang-v294.json");
    let side = load_side(&path).expect("a real summary loads");
    let merged = side
        .latency_histogram
        .as_ref()
        .unwrap_or_else(|| panic!("histogram left out: {:?}", side.warnings));
    let summary = read_summary(&path).unwrap();
    assert_eq!(merged.len(), summary.latency_ms.count);
    assert!(
        side.warnings.iter().all(|w| !w.contains("latency CDF")),
        "{:?}",
        side.warnings
    );
}

#[test]
fn schema_1_summaries_in_the_corpus_still_compare_against_a_schema_2_run() {
    let old = corpus_dir("summary").join("ok-hang-v294.json");
    let new = corpus_dir("summary").join("ok-hang-stub-schema2.json");
    assert_eq!(read_summary(&old).unwrap().schema_version, 1);
    let written = read_summary(&new).unwrap();
    assert_eq!(written.schema_version, 2);
    assert!(written.time_to_usable.is_some() && written.attempts.is_some());
    let side = load_side(&old).expect("a schema 1 summary loads");
    assert!(side.runs[0].values.usable_derived);
    assert!(
        side.runs[0].values.usable_p50.is_some(),
        "derived from its histogram"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .arg("diff")
        .args([&old, &new])
        .arg("--force")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "one run each: {stdout}");
    assert!(stdout.contains("time to usable p90*"), "{stdout}");
    assert!(
        stdout.contains("predate the time-to-usable statistics"),
        "{stdout}"
    );
}
