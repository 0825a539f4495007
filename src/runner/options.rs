//! The runner's command line and its validated form.
//!
//! Raw flags (`RunArgs`) are turned into `RunOptions` before any work starts, so a bad flag
//! fails with a message naming it and nothing is written or loaded.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::backoff::BackoffPolicy;

/// Largest number of scenarios one run may schedule (`rate × duration`).
pub const MAX_SCENARIOS: u64 = 2_000_000;
/// Largest rate accepted, scenarios per second.
pub const MAX_RATE: f64 = 100_000.0;
/// Most gateways one run measures.
pub const MAX_FLEET: usize = 64;

/// How each scenario asks the gateway to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Trigger {
    /// The dashboard mock publishes a signed `PolicyChanged` on Redis (the seed's way).
    Notify,
    /// `GET /tyk/reload` on the gateway.
    Reload,
    /// `GET /tyk/reload/group` on the gateway (it publishes `GroupReload`).
    Group,
    /// Nothing: something else triggers reloads.
    None,
}

impl Trigger {
    /// The name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Notify => "notify",
            Trigger::Reload => "reload",
            Trigger::Group => "group",
            Trigger::None => "none",
        }
    }
}

/// When a written summary should still make the exit status non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 0 whenever a summary was written (the verdict is only in the files).
    Never,
    /// Exit 1 when a run ended `hang` or `unresponsive` (the default: the same table as a set).
    Hang,
    /// Exit 1 for any verdict but `pass`.
    NotPass,
}

/// `run --help`: what a scenario is (shown above the options).
pub const RUN_LONG_ABOUT: &str = "\
Drive the load against a gateway and write a summary with a verdict.

A scenario is one policy's trip through a reload: add a policy at the dashboard mock, trigger
a reload (--trigger), then create a key bound to that policy through the gateway's control
API, retrying with --backoff until the gateway answers 200 (it knows the policy). Scenario i
starts at i / --rate on an open-loop schedule, for --duration; its time to usable is measured
from that scheduled start. Scenarios still waiting --deadline after the last start, or when
nothing progressed for --stall-timeout, are outstanding: that is a `hang`.

A fleet: give --gateway several times (gateways on the same Redis and dashboard). Each
scenario then creates its key on every gateway, each with its own retries timed from the same
scheduled start; `reload` asks every gateway, `group` the first (Redis fans it out), `notify`
reaches all subscribers. summary.json gets a result and verdict per gateway, and the spread
(first, median, last gateway); the run is `pass` only if every gateway got every policy, and a
`hang` or `unresponsive` reason names the gateways that lost policies or stopped answering.

The run always ends with a summary in --out/--label/<UTC timestamp>/ (summary.json,
summary.md, report.txt, plots) and one verdict block on the terminal.";

/// `run --help`: the exit statuses (shown below the options), as `exit_code` maps them.
pub const RUN_EXIT_STATUS: &str = "\
Exit status of `run` (the same table as a set and scripts/repro.sh):
  0    every run ended `pass`
  1    a measured failure of the gateway: a run ended `hang` or `unresponsive` (default
       --fail-on hang; --fail-on not-pass: any verdict but `pass`; --fail-on never: 0
       whenever a summary was written)
  2    infra_error (the kit could not measure), bad options, an unwritable --out
  130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM; the summary holds what was measured
scripts/repro.sh adds --expect (which verdicts count as success): see README, \"Verdicts\".";

/// Drive the load against a gateway and write a summary with a verdict (see RUN_LONG_ABOUT).
#[derive(Clone, Args)]
pub struct RunArgs {
    /// Gateway control API base URL. Give it several times (or a comma-separated list in
    /// REPRO_GATEWAY) to measure a fleet: each scenario then creates its key on every gateway,
    /// each with its own retries, and the summary has a result per gateway.
    #[arg(
        long,
        env = "REPRO_GATEWAY",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    pub gateway: Vec<String>,
    /// Under compose (--compose-project): the gateway service runs this many containers
    /// (`make repro GATEWAYS=N`); with more than one, the runner finds them through the Docker
    /// API and addresses each directly (`http://<container name>:<port of --gateway>`).
    #[arg(long, env = "REPRO_GATEWAY_REPLICAS", default_value_t = 1)]
    pub gateway_replicas: u32,
    /// Gateway secret (`X-Tyk-Authorization`), the gateway's `secret` setting.
    #[arg(
        long,
        env = "REPRO_SECRET",
        default_value = "352d20ee67be67f6340b4c0605b044bc",
        hide_default_value = true
    )]
    pub secret: String,
    /// Dashboard mock base URL.
    #[arg(long, env = "REPRO_DASHBOARD", default_value = "http://127.0.0.1:9000")]
    pub dashboard: String,
    /// Token for the mock's /repro/* routes, if it was started with one.
    #[arg(long, env = "REPRO_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Redis URL to check before the load (optional; compose passes it).
    #[arg(long, env = "REPRO_REDIS")]
    pub redis: Option<String>,
    /// Scenario starts per second.
    #[arg(
        long,
        env = "REPRO_RATE",
        default_value_t = 500.0,
        allow_negative_numbers = true
    )]
    pub rate: f64,
    /// Length of the load phase (e.g. 5s, 1m).
    #[arg(
        long,
        env = "REPRO_DURATION",
        default_value = "5s",
        allow_hyphen_values = true
    )]
    pub duration: String,
    /// How each scenario triggers the reload.
    #[arg(long, env = "REPRO_TRIGGER", value_enum, default_value_t = Trigger::Notify)]
    pub trigger: Trigger,
    /// How long after the last scheduled start waiting scenarios get before the verdict is `hang`.
    #[arg(
        long,
        env = "REPRO_DEADLINE",
        default_value = "120s",
        allow_hyphen_values = true
    )]
    pub deadline: String,
    /// Stop the load when nothing succeeds and no policy is fetched for this long (every
    /// waiting scenario is then re-checked once before the verdict). `auto` (the default): 30s,
    /// or the backoff's longest wait (max × (1 + jitter), 90s for `seed`) when that is longer.
    /// An explicit value shorter than the backoff's longest wait is accepted: the re-check
    /// keeps it from giving a false hang.
    #[arg(
        long,
        env = "REPRO_STALL_TIMEOUT",
        default_value = "auto",
        allow_hyphen_values = true
    )]
    pub stall_timeout: String,
    /// Retry schedule: `seed` (0.5 s ×1.5 ±50 %, 60 s cap), `fine` (50 ms ×1.5 ±20 %, 1 s cap),
    /// or `initial=500ms,multiplier=1.5,jitter=0.5,max=60s`.
    #[arg(long, env = "REPRO_BACKOFF", default_value = "seed")]
    pub backoff: String,
    /// Timeout of each HTTP request.
    #[arg(long, env = "REPRO_REQUEST_TIMEOUT", default_value = "10s")]
    pub request_timeout: String,
    /// How long to wait for Redis, the dashboard and the gateway to be ready before the load.
    #[arg(long, env = "REPRO_WAIT_READY", default_value = "30s")]
    pub wait_ready: String,
    /// Gateways sharing the dashboard and Redis: readiness waits for this many notification
    /// subscribers and policy fetches from this many nodes; a notification that reached fewer
    /// counts as unheard. Default: the number of gateways measured (--gateway).
    #[arg(long, env = "REPRO_GATEWAYS")]
    pub gateways: Option<u64>,
    /// Start the load without waiting for the gateways to subscribe to the notification
    /// channel (notifications sent before they do reach nobody and are reported as unheard).
    #[arg(long, env = "REPRO_NO_WAIT_SUBSCRIBERS")]
    pub no_wait_subscribers: bool,
    /// Directory the run directories go under (`OUT/LABEL/<UTC timestamp>/`).
    #[arg(long, env = "REPRO_OUT", default_value = "results")]
    pub out: PathBuf,
    /// Label of the run, e.g. the gateway tag; names the directory under --out.
    #[arg(long, env = "REPRO_LABEL", default_value = "run")]
    pub label: String,
    /// Repetitions, each from a fresh policy pool, each in its own run directory, plus a set.
    #[arg(long, env = "REPRO_RUNS", default_value_t = 1)]
    pub runs: u32,
    /// Make the exit status 1 for these verdicts even though a summary was written.
    #[arg(long, env = "REPRO_FAIL_ON", value_enum, default_value_t = FailOn::Hang)]
    pub fail_on: FailOn,
    /// Seed of the per-scenario jitter RNGs (scenario i uses seed + i).
    #[arg(long, env = "REPRO_SEED", default_value_t = 0x5eed)]
    pub seed: u64,
    /// Compose project whose containers to collect evidence from (logs, images, stats).
    #[arg(long, env = "REPRO_COMPOSE_PROJECT")]
    pub compose_project: Option<String>,
    /// Write an `infra_error` summary with this reason and run no load (for failures found
    /// before the runner could start, e.g. a missing gateway image).
    #[arg(long, env = "REPRO_RECORD_INFRA_ERROR", hide = true)]
    pub record_infra_error: Option<String>,
    /// Show no progress bar or periodic progress lines.
    #[arg(long, env = "REPRO_QUIET")]
    pub quiet: bool,
    /// Internal (compose): the host folder mounted at --out, so printed paths are ones the user
    /// can open.
    #[arg(long, env = "REPRO_HOST_OUT", hide = true)]
    pub host_out: Option<PathBuf>,
}

impl std::fmt::Debug for RunArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunArgs")
            .field("gateway", &self.gateway)
            .field("secret", &"***")
            .field("dashboard", &self.dashboard)
            .field("rate", &self.rate)
            .field("duration", &self.duration)
            .field("trigger", &self.trigger)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Validated options: every value checked, durations parsed, URLs normalised.
#[derive(Clone)]
pub struct RunOptions {
    /// Gateway base URL without a trailing slash: the first of `fleet`.
    pub gateway: String,
    /// Every gateway measured, in the order given (one entry for a single gateway).
    pub fleet: Vec<String>,
    /// Container name of each gateway in `fleet`, when known (compose discovery).
    pub fleet_containers: Vec<Option<String>>,
    /// Containers of the compose gateway service to discover (1: no discovery).
    pub gateway_replicas: u32,
    /// Gateway secret.
    pub secret: String,
    /// Dashboard base URL without a trailing slash.
    pub dashboard: String,
    /// Admin token for /repro/*.
    pub admin_token: Option<String>,
    /// Redis URL to check before the load.
    pub redis: Option<String>,
    /// Starts per second.
    pub rate: f64,
    /// Load phase length.
    pub duration: Duration,
    /// Scenarios to schedule: ceil(rate × duration).
    pub scheduled: u64,
    /// Trigger kind.
    pub trigger: Trigger,
    /// Grace after the last scheduled start.
    pub deadline: Duration,
    /// Stall detector timeout.
    pub stall_timeout: Duration,
    /// Gateways expected to subscribe and fetch.
    pub gateways: u64,
    /// Skip the wait for notification subscribers.
    pub no_wait_subscribers: bool,
    /// Retry schedule.
    pub backoff: BackoffPolicy,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Readiness wait.
    pub wait_ready: Duration,
    /// Output root.
    pub out: PathBuf,
    /// Run label.
    pub label: String,
    /// Repetitions.
    pub runs: u32,
    /// Exit policy.
    pub fail_on: FailOn,
    /// Jitter seed base.
    pub seed: u64,
    /// Compose project for evidence.
    pub compose_project: Option<String>,
    /// Pre-recorded infrastructure failure.
    pub record_infra_error: Option<String>,
    /// No progress output.
    pub quiet: bool,
    /// The host folder mounted at `out` (compose), for printed paths.
    pub host_out: Option<PathBuf>,
}

impl RunOptions {
    /// Checks every flag; the error names the flag and what is allowed.
    pub fn from_args(args: &RunArgs) -> anyhow::Result<Self> {
        let rate = args.rate;
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            anyhow::bail!(
                "--rate {rate}: must be a number of scenarios per second in (0, {MAX_RATE}]"
            );
        }
        let duration = parse_positive("--duration", &args.duration)?;
        let scheduled = (rate * duration.as_secs_f64()).ceil() as u64;
        if scheduled == 0 {
            anyhow::bail!(
                "--rate {rate} × --duration {}: schedules no scenario",
                args.duration
            );
        }
        if scheduled > MAX_SCENARIOS {
            anyhow::bail!(
                "--rate {rate} × --duration {} = {scheduled} scenarios: at most {MAX_SCENARIOS} per run (lower --rate or --duration, or use --runs)",
                args.duration
            );
        }
        let deadline = parse_positive("--deadline", &args.deadline)?;
        if deadline < duration {
            anyhow::bail!(
                "--deadline {} is shorter than --duration {}: give waiting scenarios at least as long as the load lasts",
                args.deadline,
                args.duration
            );
        }
        let request_timeout = parse_positive("--request-timeout", &args.request_timeout)?;
        let wait_ready = humantime::parse_duration(&args.wait_ready)
            .map_err(|e| anyhow::anyhow!("--wait-ready `{}`: {e} (e.g. 30s)", args.wait_ready))?;
        let backoff = BackoffPolicy::parse(&args.backoff)
            .map_err(|e| anyhow::anyhow!("--backoff `{}`: {e}", args.backoff))?;
        let stall_timeout = match args.stall_timeout.trim() {
            "auto" => default_stall_timeout(&backoff),
            value => parse_positive("--stall-timeout", value)?,
        };
        let fleet = args
            .gateway
            .iter()
            .map(|g| parse_base_url("--gateway", g.trim()))
            .collect::<anyhow::Result<Vec<String>>>()?;
        if fleet.is_empty() || fleet.len() > MAX_FLEET {
            anyhow::bail!(
                "--gateway given {} times: measure between 1 and {MAX_FLEET} gateways",
                fleet.len()
            );
        }
        if let Some(dup) = fleet
            .iter()
            .enumerate()
            .find_map(|(i, g)| fleet[..i].contains(g).then_some(g))
        {
            anyhow::bail!("--gateway {dup} is given twice: list each gateway once");
        }
        if args.gateway_replicas == 0 || args.gateway_replicas as usize > MAX_FLEET {
            anyhow::bail!(
                "--gateway-replicas {}: must be between 1 and {MAX_FLEET}",
                args.gateway_replicas
            );
        }
        if args.gateway_replicas > 1 && (fleet.len() > 1 || args.compose_project.is_none()) {
            anyhow::bail!(
                "--gateway-replicas {} finds the containers of one compose service: give a single \
                 --gateway (http://<service>:<port>) and --compose-project",
                args.gateway_replicas
            );
        }
        let measured = (fleet.len() as u64).max(u64::from(args.gateway_replicas));
        let gateways = args.gateways.unwrap_or(measured);
        if gateways == 0 || gateways > 64 {
            anyhow::bail!(
                "--gateways {gateways}: must be between 1 and 64 (the gateways sharing this dashboard and Redis)"
            );
        }
        if gateways < measured {
            anyhow::bail!(
                "--gateways {gateways}: fewer than the {measured} gateways measured (every measured \
                 gateway subscribes to the notifications); leave it out or raise it"
            );
        }
        if args.label.is_empty()
            || args.label.starts_with('.')
            || !args
                .label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            anyhow::bail!(
                "--label `{}`: use letters, digits, '.', '_' or '-' (it names a directory)",
                args.label
            );
        }
        if args.runs == 0 || args.runs > 100 {
            anyhow::bail!("--runs {}: must be between 1 and 100", args.runs);
        }
        Ok(Self {
            gateway: fleet[0].clone(),
            fleet_containers: vec![None; fleet.len()],
            fleet,
            gateway_replicas: args.gateway_replicas,
            secret: args.secret.clone(),
            dashboard: parse_base_url("--dashboard", &args.dashboard)?,
            admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
            redis: args.redis.clone().filter(|r| !r.is_empty()),
            rate,
            duration,
            scheduled,
            trigger: args.trigger,
            deadline,
            stall_timeout,
            gateways,
            no_wait_subscribers: args.no_wait_subscribers,
            backoff,
            request_timeout,
            wait_ready,
            out: args.out.clone(),
            label: args.label.clone(),
            runs: args.runs,
            fail_on: args.fail_on,
            seed: args.seed,
            compose_project: args.compose_project.clone().filter(|p| !p.is_empty()),
            record_infra_error: args.record_infra_error.clone(),
            quiet: args.quiet,
            host_out: args.host_out.clone().filter(|p| !p.as_os_str().is_empty()),
        })
    }

    /// Secrets to scrub from anything the runner prints or writes: the gateway secret, the
    /// admin token, and the node secret when the environment carries it (compose passes it).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.secret.clone()];
        secrets.extend(self.admin_token.clone());
        secrets.extend(std::env::var("REPRO_NODE_SECRET").ok());
        secrets.retain(|s| !s.is_empty());
        secrets
    }
}

/// Stall timeout when none is given: 30 s, or the backoff's longest wait when that is longer,
/// so that every waiting scenario has retried at least once within one stall timeout.
pub fn default_stall_timeout(backoff: &BackoffPolicy) -> Duration {
    let longest = backoff.longest_wait();
    Duration::from_secs(30).max(Duration::from_secs(longest.as_secs_f64().ceil() as u64))
}

fn parse_positive(flag: &str, value: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        anyhow::anyhow!("{flag} `{value}`: {e} (write a positive duration such as 5s, 500ms, 2m)")
    })?;
    if d.is_zero() {
        anyhow::bail!("{flag} `{value}`: must be longer than zero");
    }
    Ok(d)
}

/// Accepts `http://host:port[/path]`; names the flag when the scheme or host is missing.
pub fn parse_base_url(flag: &str, value: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(value).map_err(|e| {
        anyhow::anyhow!(
            "{flag} `{value}`: not a URL ({e}); write it with a scheme, e.g. http://127.0.0.1:8080"
        )
    })?;
    if url.scheme() == "https" {
        // reqwest is built without TLS: the kit only talks to loopback and its own containers.
        anyhow::bail!(
            "{flag} `{value}`: https is not supported (the kit is built without TLS and only \
             talks to loopback or its own containers); use http://, e.g. http://127.0.0.1:8080"
        );
    }
    if url.scheme() != "http" {
        anyhow::bail!("{flag} `{value}`: scheme must be http, e.g. http://127.0.0.1:8080");
    }
    if url.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("{flag} `{value}`: no host; write e.g. http://127.0.0.1:8080");
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }

    fn options(extra: &[&str]) -> anyhow::Result<RunOptions> {
        let mut argv = vec!["run"];
        argv.extend_from_slice(extra);
        RunOptions::from_args(&Wrapper::try_parse_from(argv)?.args)
    }

    #[test]
    fn a_fleet_is_several_gateways_or_a_comma_list_and_subscribers_default_to_its_size() {
        let o = options(&["--gateway", "http://a:1/", "--gateway", "http://b:2"]).unwrap();
        assert_eq!(o.fleet, vec!["http://a:1", "http://b:2"]);
        assert_eq!((o.gateway.as_str(), o.gateways), ("http://a:1", 2));
        let o = options(&["--gateway", "http://a:1,http://b:2,http://c:3"]).unwrap();
        assert_eq!(o.fleet.len(), 3);
        assert_eq!(o.fleet_containers, vec![None, None, None]);
        assert_eq!(options(&[]).unwrap().fleet, vec!["http://127.0.0.1:8080"]);
        assert_eq!(options(&["--gateways", "3"]).unwrap().gateways, 3);
    }

    #[test]
    fn fleet_mistakes_name_the_flag() {
        let err = |extra: &[&str]| {
            options(extra)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&["--gateway", "http://a:1,http://a:1/"]).contains("given twice"));
        assert!(err(&["--gateway", "http://a:1,b:2"]).contains("--gateway"));
        let fewer = err(&["--gateway", "http://a:1,http://b:2", "--gateways", "1"]);
        assert!(
            fewer.contains("--gateways 1") && fewer.contains("2 gateways measured"),
            "{fewer}"
        );
        let replicas = err(&["--gateway-replicas", "3"]);
        assert!(replicas.contains("--compose-project"), "{replicas}");
        assert!(err(&["--gateway-replicas", "0"]).contains("--gateway-replicas 0"));
    }

    #[test]
    fn defaults_are_the_seed_scenario() {
        let o = options(&[]).unwrap();
        assert_eq!(o.scheduled, 2500);
        assert_eq!(o.backoff, BackoffPolicy::seed());
        assert_eq!(o.trigger, Trigger::Notify);
        assert_eq!(o.deadline, Duration::from_secs(120));
    }

    #[test]
    fn absurd_options_are_refused_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--rate", "0"], "--rate"),
            (&["--rate", "-5"], "--rate"),
            (&["--duration", "0s"], "--duration"),
            (&["--duration", "-1s"], "--duration"),
            (&["--rate", "100000", "--duration", "100s"], "at most"),
            (&["--deadline", "1s", "--duration", "5s"], "--deadline"),
            (&["--gateway", "127.0.0.1:8080"], "--gateway"),
            (&["--dashboard", "localhost"], "--dashboard"),
            (&["--label", "../x"], "--label"),
            (&["--backoff", "jitter=3"], "--backoff"),
        ];
        for (argv, needle) in cases {
            let err = options(argv)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(
                err.contains(needle),
                "{argv:?} gave `{err}`, expected `{needle}`"
            );
        }
    }

    #[test]
    fn the_default_stall_timeout_outlasts_the_longest_backoff_wait() {
        assert_eq!(
            options(&[]).unwrap().stall_timeout,
            Duration::from_secs(90),
            "seed: 60 s cap × (1 + 0.5)"
        );
        let fine = options(&["--backoff", "fine"]).unwrap();
        assert_eq!(fine.stall_timeout, Duration::from_secs(30));
        let twelve = options(&["--backoff", "initial=12s,multiplier=1,jitter=0,max=12s"]).unwrap();
        assert_eq!(twelve.stall_timeout, Duration::from_secs(30));
        let explicit = options(&["--stall-timeout", "5s"]).unwrap();
        assert_eq!(explicit.stall_timeout, Duration::from_secs(5));
        assert!(options(&["--stall-timeout", "soon"]).is_err());
        assert!(options(&["--gateways", "0"]).is_err());
    }

    #[test]
    fn trailing_slashes_are_dropped_from_base_urls() {
        let o = options(&["--gateway", "http://gw:8080/"]).unwrap();
        assert_eq!(o.gateway, "http://gw:8080");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let w = Wrapper::try_parse_from(["run", "--secret", "hunter2hunter2"]).unwrap();
        assert!(!format!("{:?}", w.args).contains("hunter2"));
    }
}
