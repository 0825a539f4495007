//! `reload-repro set begin`: every decision `scripts/repro.sh` needs before the first compose
//! call, made once here: the knobs checked with the runner's own parsers (errors name the knob),
//! the label, the outer bound of a run, the config hashes, and the set directory created.
//!
//! The knobs are the Makefile's plain names (RATE, DURATION, …), read from the environment; an
//! empty value means unset (make exports unset knobs as empty). The plan is printed as
//! `KEY=VALUE` lines for the script to export, and kept as `.plan.json` in the set directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::outcome::Expect;
use crate::runner::{RunArgs, RunOptions};
use crate::summary::Verdict;

/// File in the set directory that holds the plan and the runs added so far.
pub const PLAN_FILE: &str = ".plan.json";

/// Slack on top of wait-ready + duration + deadline before a runner is stopped from outside:
/// the runner bounds itself, so this only catches one that cannot stop.
const RUN_SLACK: Duration = Duration::from_secs(120);

/// The runner knobs: (environment name, runner flag, default). The defaults are the kit's.
pub const KNOBS: &[(&str, &str, &str)] = &[
    ("RATE", "--rate", "500"),
    ("DURATION", "--duration", "5s"),
    ("TRIGGER", "--trigger", "notify"),
    ("DEADLINE", "--deadline", "120s"),
    ("WAIT_READY", "--wait-ready", "120s"),
    ("BACKOFF", "--backoff", "seed"),
    ("STALL_TIMEOUT", "--stall-timeout", "30s"),
    ("RUNS", "--runs", "1"),
];

/// Policies the dashboard serves before the load, unless INITIAL_POLICIES says otherwise.
const DEFAULT_INITIAL_POLICIES: u64 = 80_400;
/// Most gateway containers one compose stack may run (GATEWAYS): each is a full Tyk process.
pub const MAX_GATEWAYS: u32 = 64;

/// Options of `reload-repro set begin`.
#[derive(Debug, Clone, clap::Args)]
pub struct BeginArgs {
    /// Results directory (RESULTS_DIR), as the kit container sees it.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Gateway image under test (a full reference, e.g. tykio/tyk-gateway:v2.9.4).
    #[arg(long, conflicts_with = "stub", required_unless_present = "stub")]
    pub image: Option<String>,
    /// The kit's stub gateway in this mode instead of an image: `v2.9.4` or `fixed`.
    #[arg(long, value_parser = ["v2.9.4", "fixed"])]
    pub stub: Option<String>,
    /// Label (folder under the results directory); default: the image tag, or selftest-<mode>.
    #[arg(long)]
    pub label: Option<String>,
    /// Verdict(s) that count as success, comma-separated (pass, hang, infra_error, …).
    #[arg(long, default_value = "pass")]
    pub expect: String,
    /// The checkout, read-only: compose files and run/ (the gateway config) are hashed from it.
    #[arg(long, value_name = "DIR", default_value = "/repo")]
    pub repo: PathBuf,
}

/// What `begin` decided; kept in the set directory and extended by `add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The label (folder under the results directory).
    pub label: String,
    /// When the set began, RFC 3339 UTC.
    pub created_at: String,
    /// The set directory's name, `set-<UTC timestamp>`.
    pub set_name: String,
    /// Gateway image under test; null for the stub.
    pub gateway_image: Option<String>,
    /// Stub mode when the stub replaces the gateway.
    pub stub_mode: Option<String>,
    /// Verdicts that count as success.
    pub expect: Vec<Verdict>,
    /// Runs asked for (RUNS).
    pub runs_planned: u32,
    /// Run directory names added so far, in run order.
    pub runs: Vec<String>,
    /// SHA-256 of the compose file(s).
    pub compose_sha256: String,
    /// SHA-256 of `run/` (the gateway config).
    pub gateway_config_sha256: String,
    /// Gateway containers per run (GATEWAYS; compose `--scale gateway=N`). Plans written
    /// before the knob existed had one.
    #[serde(default = "one_gateway")]
    pub gateways: u32,
}

fn one_gateway() -> u32 {
    1
}

/// The knobs checked by the runner's own parser, with the kit's defaults filled in.
pub struct Knobs {
    /// (name, value) in [`KNOBS`] order, then INITIAL_POLICIES and GATEWAYS.
    pub values: Vec<(&'static str, String)>,
    /// The validated runner options.
    pub options: RunOptions,
    /// Gateway containers per run (GATEWAYS, 1 to [`MAX_GATEWAYS`]).
    pub gateways: u32,
}

/// Reads the knobs through `lookup` (the environment in production) and validates them.
pub fn read_knobs(lookup: impl Fn(&str) -> Option<String>, label: &str) -> anyhow::Result<Knobs> {
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }
    let mut values = Vec::new();
    let mut argv = vec!["run".to_owned(), format!("--label={label}")];
    for (name, flag, default) in KNOBS {
        let value = lookup(name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| (*default).to_owned());
        if value.contains(['\n', '\r']) {
            anyhow::bail!("{name}: a value on one line, please");
        }
        argv.push(format!("{flag}={value}"));
        values.push((*name, value));
    }
    let name_knobs = |text: String| {
        KNOBS.iter().fold(text, |t, (name, flag, _)| {
            t.replace(&format!("{flag}="), &format!("{name}="))
                .replace(flag, name)
        })
    };
    let wrapper = Wrapper::try_parse_from(&argv)
        .map_err(|e| anyhow::anyhow!("{}", name_knobs(e.to_string()).trim_end()))?;
    let options = RunOptions::from_args(&wrapper.args)
        .map_err(|e| anyhow::anyhow!("{}", name_knobs(format!("{e:#}"))))?;
    let initial = lookup("INITIAL_POLICIES").filter(|v| !v.is_empty());
    let initial_policies = match initial {
        None => DEFAULT_INITIAL_POLICIES,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "INITIAL_POLICIES `{text}`: must be a whole number above 0, e.g. 80400"
                )
            })?,
    };
    values.push(("INITIAL_POLICIES", initial_policies.to_string()));
    let gateways = parse_gateways(lookup("GATEWAYS").filter(|v| !v.is_empty()).as_deref())?;
    values.push(("GATEWAYS", gateways.to_string()));
    Ok(Knobs {
        values,
        options,
        gateways,
    })
}

/// GATEWAYS: unset means 1; else a whole number from 1 to [`MAX_GATEWAYS`].
pub fn parse_gateways(text: Option<&str>) -> anyhow::Result<u32> {
    let Some(text) = text else {
        return Ok(1);
    };
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_GATEWAYS).contains(n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "GATEWAYS `{text}`: the number of gateway containers must be a whole number \
                 from 1 to {MAX_GATEWAYS}, e.g. GATEWAYS=3"
            )
        })
}

/// The outer bound of one runner container: what the runner bounds itself to, plus slack.
pub fn run_timeout(options: &RunOptions) -> Duration {
    options.wait_ready + options.duration + options.deadline + RUN_SLACK
}

/// The label a run gets when none is given: the image's tag (or name), or `selftest-<mode>`.
pub fn default_label(image: Option<&str>, stub: Option<&str>) -> String {
    if let Some(mode) = stub {
        return format!("selftest-{mode}");
    }
    let image = image.unwrap_or("run");
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.rsplit_once(':').map_or(last, |(_, tag)| tag);
    sanitize_label(tag)
}

/// Keeps a label to characters safe in a folder name (others become `-`, no leading dot).
pub fn sanitize_label(label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_owned();
    if clean.is_empty() {
        "run".into()
    } else {
        clean
    }
}

/// SHA-256 of the files concatenated in the order given.
fn sha256_of(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    for file in files {
        let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Every file under `dir`, sorted by path (byte order, like `LC_ALL=C sort`).
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The compose files of this kind of run, as compose is given them.
pub fn compose_files(stub: bool) -> &'static [&'static str] {
    if stub {
        &["docker-compose.yml", "docker-compose.stub.yml"]
    } else {
        &["docker-compose.yml"]
    }
}

/// Hashes of the compose file(s) and of `run/`, and the check that a non-root gateway can read
/// `run/` (v5 images run as a user of their own).
pub fn config_hashes(repo: &Path, stub: bool) -> anyhow::Result<(String, String)> {
    let compose: Vec<PathBuf> = compose_files(stub).iter().map(|f| repo.join(f)).collect();
    let compose_sha = sha256_of(&compose).context("hashing the compose files (--repo)")?;
    let run_dir = repo.join("run");
    let files = files_under(&run_dir).context("hashing the gateway config run/ (--repo)")?;
    #[cfg(unix)]
    for path in std::iter::once(&run_dir).chain(&files) {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o004 == 0 {
            let shown = path.strip_prefix(repo).unwrap_or(path);
            anyhow::bail!(
                "{} is not world-readable, so a non-root gateway cannot read it: chmod -R o+rX run",
                shown.display()
            );
        }
    }
    Ok((compose_sha, sha256_of(&files)?))
}

/// Creates `OUT/LABEL/set-<ts>` (suffixed `-2`, `-3`… when taken) and returns its name.
pub fn create_set_dir(label_dir: &Path, stamp: &str) -> anyhow::Result<String> {
    fs::create_dir_all(label_dir).with_context(|| {
        format!(
            "cannot create {}: check that RESULTS_DIR is writable by the runner's user",
            label_dir.display()
        )
    })?;
    for n in 1..1000 {
        let name = if n == 1 {
            format!("set-{stamp}")
        } else {
            format!("set-{stamp}-{n}")
        };
        match fs::create_dir(label_dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot create a set directory in {}", label_dir.display())
                });
            }
        }
    }
    anyhow::bail!(
        "{}: too many sets started in one second",
        label_dir.display()
    )
}

/// `set begin`: validates, hashes, creates the set directory; returns the lines to print.
pub fn begin(args: &BeginArgs, lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let expect =
        Expect::parse(&args.expect).map_err(|e| anyhow::anyhow!("EXPECT / --expect: {e}"))?;
    let image = args
        .image
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty());
    if args.stub.is_none() && image.is_none() {
        anyhow::bail!("say which gateway: --image IMAGE (TYK=, TYK_IMAGE=) or --stub v2.9.4|fixed");
    }
    let label = match args.label.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => sanitize_label(l),
        None => default_label(image, args.stub.as_deref()),
    };
    let knobs = read_knobs(&lookup, &label)?;
    let (compose_sha256, gateway_config_sha256) = config_hashes(&args.repo, args.stub.is_some())?;
    let now = Utc::now();
    let label_dir = args.out.join(&label);
    let set_name = create_set_dir(&label_dir, &now.format("%Y%m%dT%H%M%SZ").to_string())?;
    let plan = Plan {
        label: label.clone(),
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        set_name: set_name.clone(),
        gateway_image: image.map(str::to_owned),
        stub_mode: args.stub.clone(),
        expect: expect.0,
        runs_planned: knobs.options.runs,
        runs: Vec::new(),
        compose_sha256: compose_sha256.clone(),
        gateway_config_sha256: gateway_config_sha256.clone(),
        gateways: knobs.gateways,
    };
    let set_dir = label_dir.join(&set_name);
    write_plan(&set_dir, &plan)?;
    let mut lines = vec![
        format!("label={label}"),
        format!("set_dir={}", set_dir.display()),
        format!("runs={}", knobs.options.runs),
        format!("run_timeout_s={}", run_timeout(&knobs.options).as_secs()),
        format!("compose_sha256={compose_sha256}"),
        format!("gateway_config_sha256={gateway_config_sha256}"),
    ];
    lines.extend(knobs.values.iter().map(|(k, v)| format!("{k}={v}")));
    Ok(lines.join("\n") + "\n")
}

/// Writes the plan into the set directory.
pub fn write_plan(set_dir: &Path, plan: &Plan) -> anyhow::Result<()> {
    crate::runner::output::write_atomic(&set_dir.join(PLAN_FILE), &serde_json::to_vec_pretty(plan)?)
}

/// Reads the plan of a set begun with `set begin`.
pub fn read_plan(set_dir: &Path) -> anyhow::Result<Plan> {
    let path = set_dir.join(PLAN_FILE);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: not a set begun with `reload-repro set begin`",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a valid plan", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn unset_and_empty_knobs_take_the_kits_defaults() {
        let knobs = read_knobs(env(&[("RATE", "")]), "x").unwrap();
        assert_eq!(knobs.values[0], ("RATE", "500".to_owned()));
        assert_eq!(knobs.options.runs, 1);
        // 120 s wait-ready + 5 s load + 120 s deadline + 120 s slack.
        assert_eq!(run_timeout(&knobs.options), Duration::from_secs(365));
    }

    #[test]
    fn every_duration_form_of_the_runner_is_accepted() {
        let knobs = read_knobs(env(&[("DURATION", "1m 30s"), ("DEADLINE", "2min")]), "x").unwrap();
        assert_eq!(knobs.options.duration, Duration::from_secs(90));
        assert_eq!(knobs.options.deadline, Duration::from_secs(120));
    }

    #[test]
    fn a_bad_knob_is_named_by_its_make_name() {
        for (key, value) in [
            ("DURATION", "five"),
            ("RUNS", "0"),
            ("RUNS", "two"),
            ("RATE", "-3"),
            ("TRIGGER", "sometimes"),
            ("INITIAL_POLICIES", "many"),
            ("GATEWAYS", "0"),
            ("GATEWAYS", "65"),
            ("GATEWAYS", "three"),
            ("GATEWAYS", "-1"),
        ] {
            let err = read_knobs(env(&[(key, value)]), "x")
                .err()
                .map(|e| format!("{e:#}"));
            let err = err.unwrap_or_default();
            assert!(err.contains(key), "{key}={value} gave: {err}");
        }
    }

    #[test]
    fn gateways_default_to_one_and_are_kept_in_the_plan_lines() {
        let one = read_knobs(env(&[("GATEWAYS", "")]), "x").unwrap();
        assert_eq!(one.gateways, 1);
        assert_eq!(one.values.last(), Some(&("GATEWAYS", "1".to_owned())));
        let three = read_knobs(env(&[("GATEWAYS", " 3 ")]), "x").unwrap();
        assert_eq!(three.gateways, 3);
        assert_eq!(
            read_knobs(env(&[("GATEWAYS", "64")]), "x")
                .unwrap()
                .gateways,
            64
        );
        let err = parse_gateways(Some("0")).unwrap_err().to_string();
        assert!(
            err.contains("GATEWAYS `0`") && err.contains("1 to 64"),
            "{err}"
        );
    }

    #[test]
    fn a_plan_written_before_gateways_existed_reads_as_one_gateway() {
        let old = serde_json::json!({
            "label": "l", "created_at": "t", "set_name": "set-x", "gateway_image": null,
            "stub_mode": "fixed", "expect": ["pass"], "runs_planned": 1, "runs": [],
            "compose_sha256": "c", "gateway_config_sha256": "g"
        });
        let plan: Plan = serde_json::from_value(old).unwrap();
        assert_eq!(plan.gateways, 1);
    }

    #[test]
    fn the_default_label_is_the_image_tag() {
        assert_eq!(
            default_label(Some("tykio/tyk-gateway:v2.9.4"), None),
            "v2.9.4"
        );
        assert_eq!(default_label(Some("ghcr.io/you/tyk:pr-12"), None), "pr-12");
        assert_eq!(default_label(Some("localhost:5000/tyk"), None), "tyk");
        assert_eq!(default_label(None, Some("fixed")), "selftest-fixed");
        assert_eq!(sanitize_label("../a b"), "-a-b");
    }

    #[test]
    fn begin_creates_a_set_directory_and_prints_the_plan() {
        let repo = tempfile::tempdir().unwrap();
        fs::write(repo.path().join("docker-compose.yml"), "a").unwrap();
        fs::create_dir_all(repo.path().join("run/apps")).unwrap();
        fs::write(repo.path().join("run/tyk.conf"), "{}").unwrap();
        let out = tempfile::tempdir().unwrap();
        let args = BeginArgs {
            out: out.path().to_owned(),
            image: Some("tykio/tyk-gateway:v2.9.4".into()),
            stub: None,
            label: Some("2.9.4".into()),
            expect: "hang".into(),
            repo: repo.path().to_owned(),
        };
        let text = begin(&args, env(&[("RUNS", "2"), ("GATEWAYS", "3")])).unwrap();
        assert!(text.contains("label=2.9.4\n"), "{text}");
        assert!(text.contains("GATEWAYS=3\n"), "{text}");
        assert!(text.contains("runs=2\n"), "{text}");
        // sha256("a")
        assert!(text.contains(
            "compose_sha256=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        ));
        let set_dir = text
            .lines()
            .find_map(|l| l.strip_prefix("set_dir="))
            .unwrap();
        let plan = read_plan(Path::new(set_dir)).unwrap();
        assert_eq!(plan.expect, vec![Verdict::Hang]);
        assert_eq!(plan.gateways, 3);
        assert!(plan.set_name.starts_with("set-"));
    }
}
