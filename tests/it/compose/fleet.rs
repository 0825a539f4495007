//! Several gateway containers on one Redis and one mock (`make repro GATEWAYS=N`): the stub
//! stack scaled with compose (`up --scale gateway=3`), the evidence collector finding the three
//! containers in order and keeping a log, stats, timeline and identity per gateway; and
//! `scripts/repro.sh` with GATEWAYS=3 giving one result and one evidence entry per gateway.
//! A bad GATEWAYS is refused before any container starts.
//!
//! `#[ignore = "needs Docker"]` like the rest of `compose::`; run with `--run-ignored all`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reload_repro::evidence::{Evidence, EvidenceTarget};

use super::{
    ProjectCleanup, SELFTEST_ENV, assert_torn_down, docker_cli, docker_lines, docker_output,
    kit_image, require_docker, results_dir, run_script, unique_label, wait_with_deadline,
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `docker compose` when the CLI has it, else `docker-compose` (v1.29), as scripts/repro.sh.
fn compose_cli() -> Vec<String> {
    let docker = docker_cli();
    if docker_output(&["compose", "version"]).is_some() {
        vec![docker, "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// Runs compose on the stub stack of `project` with `args`; panics with its output on failure.
fn compose(project: &str, args: &[&str]) {
    let cli = compose_cli();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = Command::new(&cli[0])
        .args(&cli[1..])
        .args([
            "-p",
            project,
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.stub.yml",
        ])
        .args(args)
        .current_dir(REPO)
        .env("TYK_IMAGE", kit_image())
        .env("REPRO_IMAGE", kit_image())
        .env("INITIAL_POLICIES", "200")
        .env("STUB_MODE", "fixed")
        .env("STUB_RELOAD_COST_MS", "50")
        .env("COMPOSE_PROFILES", "runner")
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("compose starts");
    let status = wait_with_deadline(&mut child, Duration::from_secs(240));
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "compose {args:?} failed:\n{output}"
    );
}

/// Takes the project down even when an assertion failed first.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let filter = format!("label=com.docker.compose.project={}", self.0);
        for id in docker_lines(&["ps", "-aq", "--filter", &filter]) {
            let _ = docker_output(&["rm", "-f", "-v", &id]);
        }
        for id in docker_lines(&["network", "ls", "-q", "--filter", &filter]) {
            let _ = docker_output(&["network", "rm", &id]);
        }
    }
}

#[tokio::test]
#[ignore = "needs Docker"]
async fn three_scaled_gateways_are_found_in_order_and_each_keeps_its_own_evidence() {
    require_docker();
    let project = format!(
        "rr-compose-fleet-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let _down = Down(project.clone());
    let up = [
        "up",
        "-d",
        "--scale",
        "gateway=3",
        "redis",
        "dashboard",
        "gateway",
    ];
    tokio::task::spawn_blocking({
        let project = project.clone();
        move || compose(&project, &up)
    })
    .await
    .expect("compose up");

    let mut evidence = Evidence::connect(EvidenceTarget {
        project: project.clone(),
        gateway_service: "gateway".into(),
        services: vec!["gateway".into(), "dashboard".into(), "redis".into()],
        gateway_containers: Vec::new(),
    })
    .await
    .expect("daemon reachable");

    let found = evidence
        .discover_gateways("gateway", 3, Duration::from_secs(60))
        .await
        .expect("three gateway containers");
    let numbers: Vec<Option<u32>> = found.iter().map(|c| c.number).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)], "{found:?}");
    for (i, c) in found.iter().enumerate() {
        // Compose v2 `p-gateway-1`, v1.29 `p_gateway_1`.
        let n = i + 1;
        assert!(
            c.name == format!("{project}-gateway-{n}")
                || c.name == format!("{project}_gateway_{n}"),
            "{c:?}"
        );
    }
    // Asking for another count says what is there.
    let too_many = evidence
        .discover_gateways("gateway", 4, Duration::from_secs(1))
        .await
        .expect_err("only three exist");
    let text = format!("{too_many:#}");
    assert!(
        text.contains("3 of the 4") && text.contains(&found[2].name),
        "{text}"
    );
    let too_few = evidence
        .discover_gateways("gateway", 2, Duration::from_secs(30))
        .await
        .expect_err("three exist");
    assert!(format!("{too_few:#}").contains("expected 2"), "{too_few:#}");

    evidence.set_gateway_containers(&found);
    let states = evidence.gateway_states().await;
    assert_eq!(states.len(), 3);
    for (state, container) in states.iter().zip(&found) {
        let state = state.as_ref().expect("inspected");
        assert_eq!(state.name, container.name);
        assert_eq!(state.container_id, container.id);
        assert!(state.running, "{state:?}");
        assert_eq!(
            reload_repro::evidence::gateway_state::describe_death(Some(state), state),
            None
        );
    }

    // The daemon refreshes stats once a second: 3.5 s gives at least three samples each.
    let sampler = evidence.start_sampling(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = evidence.finish(Some(sampler), dir.path()).await;
    check_fleet_environment(&env, &found, dir.path());
}

/// One `gateways` entry per container, in order, each with its log file, stats, timeline and
/// identity; the one-gateway fields left to the entries.
fn check_fleet_environment(
    env: &reload_repro::summary::Environment,
    found: &[reload_repro::evidence::GatewayContainer],
    dir: &Path,
) {
    assert!(env.errors.is_empty(), "{:?}", env.errors);
    assert_eq!(env.gateways.len(), 3, "{env:#?}");
    assert!(env.gateway_stats.is_none() && env.reload_timeline.is_none());
    assert!(!dir.join("gateway.log.gz").exists());
    for (i, (g, container)) in env.gateways.iter().zip(found).enumerate() {
        let n = i + 1;
        assert_eq!(g.gateway as usize, n);
        assert_eq!(g.container, container.name);
        assert_eq!(g.container_number, container.number);
        let file = format!("gateway-{n}.log.gz");
        assert_eq!(g.log.as_deref(), Some(file.as_str()));
        assert_eq!(env.logs.get(&format!("gateway-{n}")), Some(&file));
        let size = std::fs::metadata(dir.join(&file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 0, "{file} is missing or empty");
        let stats = g.stats.as_ref().expect("stats");
        assert!(stats.samples.len() >= 3, "gateway {n}: {:?}", stats.samples);
        assert!(stats.mem_bytes_max.unwrap_or(0) > 0);
        let identity = g.identity.as_ref().expect("identity");
        assert_eq!(identity.image.as_deref(), Some(kit_image().as_str()));
        assert_eq!(
            identity.container_id.as_deref(),
            Some(container.id.as_str())
        );
        let timeline = g.reload_timeline.as_ref().expect("timeline");
        // The stub logs no Tyk start line, so its version comes from /hello, not the log; the
        // identity carries whatever this container's own log said.
        assert_eq!(identity.version_from_log, timeline.version);
        assert!(
            timeline.policies_found_last.is_some(),
            "gateway {n}: {timeline:?}"
        );
    }
    // The top-level gateway is gateway 1's identity, for readers that know one gateway.
    assert_eq!(env.gateway, env.gateways[0].identity);
    for service in ["dashboard", "redis"] {
        assert!(env.service(service).is_some(), "{service}");
        assert!(dir.join(format!("{service}.log.gz")).exists());
    }
}

#[test]
#[ignore = "needs Docker"]
fn gateways_3_through_repro_sh_gives_a_result_and_evidence_per_gateway() {
    require_docker();
    let results = results_dir();
    let cleanup = ProjectCleanup {
        results: results.path().to_owned(),
    };
    let label = unique_label("fleet");
    let mut env = SELFTEST_ENV.to_vec();
    env.extend([
        ("GATEWAYS", "3"),
        ("STUB_RELOAD_COST_MS", "300"),
        ("DURATION", "2s"),
    ]);
    let run = run_script(
        results.path(),
        &label,
        &["--stub", "fixed", "--expect", "pass"],
        &env,
    );
    assert!(run.status.success(), "repro.sh failed:\n{}", run.output);
    let json = run.summary_json();
    let gateways = json["gateways"].as_array().map(Vec::len);
    assert_eq!(gateways, Some(3), "summary.gateways: {}", json["reason"]);
    for g in json["gateways"].as_array().into_iter().flatten() {
        // Each gateway is measured at its own container (named in the result), and passes.
        let container = g["container"].as_str().unwrap_or_default();
        assert!(container.contains("gateway"), "{g}");
        assert_eq!(g["verdict"], "pass", "{g}");
    }
    let summary = run.summary();
    let env = summary.environment.expect("environment");
    assert_eq!(env.gateways.len(), 3, "{:?}", env.errors);
    for (i, g) in env.gateways.iter().enumerate() {
        let file = format!("gateway-{}.log.gz", i + 1);
        assert_eq!(g.log.as_deref(), Some(file.as_str()));
        assert!(run.latest.join(&file).exists(), "{file}");
        assert!(g.stats.as_ref().is_some_and(|s| !s.samples.is_empty()));
        assert!(g.reload_timeline.is_some());
    }
    assert!(!run.latest.join("gateway.log.gz").exists());
    assert_torn_down(&cleanup);
}

#[test]
#[ignore = "needs Docker"]
fn a_bad_gateways_value_is_refused_by_name_before_any_container_starts() {
    require_docker();
    let results = results_dir();
    let label = unique_label("badgw");
    let mut env = SELFTEST_ENV.to_vec();
    env.push(("GATEWAYS", "65"));
    let run = run_script(results.path(), &label, &["--stub", "fixed"], &env);
    assert_eq!(run.status.code(), Some(2), "repro.sh:\n{}", run.output);
    assert!(
        run.output.contains("GATEWAYS `65`") && run.output.contains("1 to 64"),
        "{}",
        run.output
    );
    assert!(
        !results.path().join(".last-project").exists(),
        "no stack may start:\n{}",
        run.output
    );
}
