//! `reload-repro manifests` as a user runs it: the binary renders the checkout's compose files,
//! every document parses and names its kind, object and namespace, and bad input exits 2 with a
//! message naming the variable or flag. (Schema validation: `.ci/run` runs kubernetes-validate
//! on the same renders; the addressing is tested in src/deploy/tests.rs.)

use std::process::{Command, Output};

use serde_yaml::Value;

fn manifests(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reload-repro"));
    cmd.arg("manifests")
        .args(["--compose-dir", env!("CARGO_MANIFEST_DIR")])
        .args(args)
        .env_remove("TYK_IMAGE")
        .env_remove("REPRO_SECRET")
        .env_remove("REPRO_NODE_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running reload-repro manifests")
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("a document that parses"))
        .collect()
}

fn check_every_document(docs: &[Value], namespace: &str) -> Vec<String> {
    docs.iter()
        .map(|d| {
            for field in ["apiVersion", "kind"] {
                assert!(
                    d[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{field}: {d:?}"
                );
            }
            assert_eq!(
                d["metadata"]["namespace"].as_str(),
                Some(namespace),
                "{d:?}"
            );
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_real_and_the_stub_renders_parse_document_by_document() {
    let real = manifests(
        &["--gateways", "3"],
        &[("TYK_IMAGE", "tykio/tyk-gateway:v5.3.0")],
    );
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    let docs = documents(&String::from_utf8(real.stdout).unwrap());
    let names = check_every_document(&docs, "reload-repro");
    for want in [
        "Secret/reload-repro-secrets",
        "Deployment/redis",
        "Service/redis",
        "Deployment/dashboard",
        "Service/dashboard",
        "ConfigMap/gateway-tyk-conf",
        "Service/gateway",
        "StatefulSet/gateway",
        "PersistentVolumeClaim/runner-results",
        "Job/runner",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("k8s/stub.yaml");
    let stub = manifests(
        &[
            "--stub",
            "--gateways",
            "24",
            "--shards",
            "4",
            "--namespace",
            "fleet",
            "-o",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stub.status.success(),
        "{}",
        String::from_utf8_lossy(&stub.stderr)
    );
    let docs = documents(&std::fs::read_to_string(&file).unwrap());
    check_every_document(&docs, "fleet");
    let job = docs.iter().find(|d| d["kind"] == "Job").unwrap();
    assert_eq!(job["spec"]["completions"].as_u64(), Some(4));
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap();
    let gateways = args
        .iter()
        .filter(|a| a.as_str().unwrap().starts_with("--gateway="))
        .count();
    assert_eq!(gateways, 24);
    // YAML 1.1 readers (kubectl) must see Redis's `no` as a string, not a boolean.
    let redis = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "redis")
        .unwrap();
    let redis_args = &redis["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(redis_args[2].as_str(), Some("no"));
}

#[test]
fn a_missing_tyk_image_or_a_bad_flag_exits_2_naming_it() {
    let out = manifests(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TYK_IMAGE is required") && err.contains("--set TYK_IMAGE="),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = manifests(&["--gateways", "0", "--stub"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gateways"));

    let out = manifests(&["--stub", "--set", "RATE"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--set RATE"));
}

#[test]
fn the_help_teaches_what_comes_out_and_what_was_only_validated() {
    let out = Command::new(env!("CARGO_BIN_EXE_reload-repro"))
        .args(["manifests", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "StatefulSet gateway",
        "Indexed",
        "--results-reader",
        "kubectl apply",
        "validated against the Kubernetes",
    ] {
        assert!(help.contains(want), "{want} missing:\n{help}");
    }
}
