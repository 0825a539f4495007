//! Evidence against a real Docker daemon: containers carrying compose labels, their logs,
//! image identity and stats. `#[ignore = "needs Docker"]`: skipped by a plain `cargo nextest
//! run`, run by `.ci/run` (`--run-ignored all`), and then a missing daemon or test image
//! (`REPRO_EVIDENCE_TEST_IMAGE`, default `debian:bookworm-slim`) fails them.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::FutureExt;
use reload_repro::evidence::{Evidence, EvidenceTarget, PROJECT_LABEL, SERVICE_LABEL};

const SECRET: &str = "s3cr3t-node-value";

/// The Docker client and the test image; panics (the test fails) when either is missing.
async fn docker_test_image() -> Option<(Docker, String)> {
    let image = std::env::var("REPRO_EVIDENCE_TEST_IMAGE")
        .unwrap_or_else(|_| "debian:bookworm-slim".to_owned());
    let docker = Docker::connect_with_defaults().unwrap_or_else(|e| {
        panic!("no Docker socket ({e}): start Docker or run without --run-ignored")
    });
    let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
        .await
        .ok()
        .and_then(Result::ok)
        .expect("the Docker daemon does not answer: start it or run without --run-ignored");
    assert!(
        docker.inspect_image(&image).await.is_ok(),
        "image {image} is not present locally: make images-offline (or REPRO_EVIDENCE_TEST_IMAGE)"
    );
    Some((docker, image))
}

/// Creates and starts a container labelled as compose `service` of `project` running `script`.
async fn start_service(
    docker: &Docker,
    image: &str,
    project: &str,
    service: &str,
    script: &str,
) -> String {
    let labels = HashMap::from([
        (PROJECT_LABEL.to_owned(), project.to_owned()),
        (SERVICE_LABEL.to_owned(), service.to_owned()),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        labels: Some(labels),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new()
        .name(&format!("{project}-{service}"))
        .build();
    let created = docker
        .create_container(Some(options), body)
        .await
        .expect("create container");
    docker
        .start_container(&created.id, None)
        .await
        .expect("start container");
    created.id
}

async fn remove_project(docker: &Docker, ids: &[String]) {
    let force = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    for id in ids {
        let _ = tokio::time::timeout(
            Duration::from_secs(20),
            docker.remove_container(id, Some(force.clone())),
        )
        .await;
    }
}

fn target(project: &str) -> EvidenceTarget {
    EvidenceTarget {
        project: project.to_owned(),
        gateway_service: "gateway".to_owned(),
        services: vec!["gateway".into(), "dashboard".into(), "redis".into()],
        gateway_containers: Vec::new(),
    }
}

// stdout and stderr reach the daemon through separate pipes, so the stderr line goes first
// with a pause after it to keep the order the assertions expect.
const GATEWAY_SCRIPT: &str = "echo 'written to stderr' >&2; sleep 1; \
     echo '2026-11-27T10:15:00.000000Z  INFO stub gateway started (stub/test)'; \
     echo '2026-11-27T10:15:01.000000Z  INFO Reloading endpoints'; \
     echo '2026-11-27T10:15:01.100000Z  INFO Reload queued'; \
     echo '2026-11-27T10:15:01.500000Z  INFO Policies found (42 total)'; \
     echo 'node secret is s3cr3t-node-value'; \
     echo '2026-11-27T10:15:02.000000Z  INFO API reload complete'; \
     exec sleep 300";

#[tokio::test]
#[ignore = "needs Docker"]
async fn evidence_collects_logs_images_stats_and_timeline_from_labelled_containers() {
    let Some((docker, image)) = docker_test_image().await else {
        return;
    };
    let project = format!("rr-evidence-{}", uuid::Uuid::new_v4().simple());
    let gateway = start_service(&docker, &image, &project, "gateway", GATEWAY_SCRIPT).await;
    let redis = start_service(
        &docker,
        &image,
        &project,
        "redis",
        "echo 'Ready to accept connections'; exec sleep 300",
    )
    .await;
    let outcome = AssertUnwindSafe(check_evidence(&project, &image))
        .catch_unwind()
        .await;
    remove_project(&docker, &[gateway, redis]).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check_evidence(project: &str, image: &str) {
    let evidence = Evidence::connect(target(project))
        .await
        .expect("daemon reachable")
        .with_secrets(vec![SECRET.into()]);
    // The script writes its lines at once; give the daemon a moment to have them all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let tail = loop {
        let tail = evidence.last_log_lines("gateway", 2).await.expect("tail");
        if tail
            .last()
            .is_some_and(|l| l.contains("API reload complete"))
            || tokio::time::Instant::now() > deadline
        {
            break tail;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        tail,
        [
            "node secret is ***",
            "2026-11-27T10:15:02.000000Z  INFO API reload complete"
        ]
    );

    // The daemon refreshes stats once a second: 3.5 s gives at least three samples.
    let sampler = evidence.start_sampling(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let json =
        serde_json::to_value(evidence.finish(Some(sampler), dir.path()).await).expect("json");

    assert_eq!(json["gateway"]["image"], image);
    assert!(
        json["gateway"]["image_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("sha256:")),
        "{json:#}"
    );
    assert_eq!(json["gateway"]["version_from_log"], "stub/test");
    assert_eq!(json["redis"]["image"], image);
    assert!(json.get("dashboard").is_none());
    let errors = json["errors"].as_array().expect("errors array");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains("`dashboard`"))),
        "{errors:?}"
    );
    assert_eq!(json["kit_version"], env!("CARGO_PKG_VERSION"));

    let timeline = &json["reload_timeline"];
    assert_eq!(timeline["triggers_seen"], 1);
    assert_eq!(timeline["reloads_completed"], 1);
    assert_eq!(timeline["policies_found_last"], 42);
    // Durations come from docker's receive timestamps, which win over the stub's own.
    assert_eq!(
        timeline["reload_durations_s"].as_array().map(Vec::len),
        Some(1)
    );

    let samples = json["gateway_stats"]["samples"]
        .as_array()
        .expect("samples");
    assert!(
        samples.len() >= 3,
        "expected a sample a second for 3.5 s: {samples:?}"
    );
    assert!(
        json["gateway_stats"]["mem_bytes_max"]
            .as_u64()
            .is_some_and(|m| m > 0)
    );
    assert!(json["gateway_stats"]["cpu_percent_max"].as_f64().is_some());

    assert_eq!(json["logs"]["gateway"], "gateway.log.gz");
    let gateway_log = read_gzip(&dir.path().join("gateway.log.gz"));
    assert!(gateway_log.contains("INFO Reloading endpoints"));
    assert!(gateway_log.contains("node secret is ***"));
    assert!(gateway_log.contains("written to stderr"));
    assert!(!gateway_log.contains(SECRET));
    let redis_log = read_gzip(&dir.path().join("redis.log.gz"));
    assert!(redis_log.contains("Ready to accept connections"));
    assert!(!dir.path().join("dashboard.log.gz").exists());
    // The stored file gives back the timeline built from the live stream.
    let from_file = reload_repro::evidence::read_log_timeline(&dir.path().join("gateway.log.gz"))
        .expect("timeline from gateway.log.gz");
    assert_eq!(serde_json::to_value(&from_file).expect("json"), *timeline);
}

/// The text of a gzip log file the evidence wrote.
fn read_gzip(path: &std::path::Path) -> String {
    use std::io::Read as _;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{} is not gzip: {e}", path.display()));
    text
}

#[tokio::test]
#[ignore = "needs Docker"]
async fn finish_reports_missing_containers_as_errors_instead_of_failing() {
    let Some(_) = docker_test_image().await else {
        return;
    };
    let project = format!("rr-evidence-absent-{}", uuid::Uuid::new_v4().simple());
    let evidence = Evidence::connect(target(&project))
        .await
        .expect("daemon reachable");
    assert!(evidence.last_log_lines("gateway", 5).await.is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let json = serde_json::to_value(evidence.finish(None, dir.path()).await).expect("json");
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(3), "{json:#}");
    assert!(json["gateway_stats"].is_null());
    assert!(json["reload_timeline"].is_null());
    assert_eq!(json["logs"], serde_json::json!({}));
}

// A gateway that logs like real v2.9.4 at the seed load: five reloads, each listing ~81k policy
// ids at INFO with "Reload already queued" lines among them (~50 MB through Docker's log).
const V294_LOG_SCRIPT: &str = r#"perl -e '
srand(7);
my @ids = map { sprintf("%08x-%04x-4%03x-a%03x-%012x", int(rand(2**32)), int(rand(2**16)),
    int(rand(2**12)), int(rand(2**12)), int(rand(2**48))) } 1..84000;
sub line { print qq{time="Dec 01 10:15:0$_[0]" level=info msg="$_[1]" prefix=main\n} }
line(0, "Tyk Gateway started (v2.9.4)");
for my $r (1..5) {
  my $n = 80400 + $r * 700;
  line($r, "Reload queued");
  line($r, "Policies found ($n total):");
  for my $i (0 .. $n - 1) {
    line($r, " - $ids[$i]");
    line($r, "Reload already queued") if $i % 160 == 0;
  }
  line($r, "API reload complete");
}
print "generator done\n";
'; exec sleep 300"#;

#[tokio::test]
#[ignore = "needs Docker"]
async fn a_v294_sized_gateway_log_is_stored_under_10_mb_with_its_whole_timeline() {
    let Some((docker, image)) = docker_test_image().await else {
        return;
    };
    let project = format!("rr-evidence-v294-{}", uuid::Uuid::new_v4().simple());
    let gateway = start_service(&docker, &image, &project, "gateway", V294_LOG_SCRIPT).await;
    let outcome = AssertUnwindSafe(check_v294_log(&project))
        .catch_unwind()
        .await;
    remove_project(&docker, &[gateway]).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check_v294_log(project: &str) {
    let evidence = Evidence::connect(EvidenceTarget {
        services: vec!["gateway".into()],
        ..target(project)
    })
    .await
    .expect("daemon reachable");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let tail = evidence.last_log_lines("gateway", 1).await.expect("tail");
        if tail.last().is_some_and(|l| l == "generator done") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the generator did not finish in 120 s: {tail:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let json = serde_json::to_value(evidence.finish(None, dir.path()).await).expect("json");
    let timeline = &json["reload_timeline"];
    assert_eq!(timeline["reloads_completed"], 5, "{timeline:#}");
    assert_eq!(timeline["policies_found_last"], 83_900);
    assert!(
        timeline["already_queued"]
            .as_u64()
            .is_some_and(|n| n > 2_500)
    );
    let lines_read = timeline["lines_read"].as_u64().expect("lines_read");
    assert!(lines_read > 400_000, "{lines_read} lines");
    let left_out = json["logs_lines_left_out"]["gateway"].as_u64().unwrap_or(0);
    assert!(left_out > 400_000, "{left_out} lines left out: {json:#}");

    let path = dir.path().join("gateway.log.gz");
    let size = std::fs::metadata(&path).expect("gateway.log.gz").len();
    assert!(size < 10 * 1024 * 1024, "gateway.log.gz is {size} bytes");
    let text = read_gzip(&path);
    assert_eq!(text.matches("API reload complete").count(), 5);
    assert_eq!(
        text.matches("Reload already queued").count() as u64,
        timeline["already_queued"].as_u64().unwrap()
    );
    let from_file = reload_repro::evidence::read_log_timeline(&path).expect("timeline from file");
    assert_eq!(serde_json::to_value(&from_file).expect("json"), *timeline);
    eprintln!("{lines_read} log lines ({left_out} left out) stored in {size} bytes");
}
