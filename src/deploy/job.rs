//! The runner as an Indexed Job: completions = parallelism = shards, the completion index is
//! the shard. Its arguments are the compose runner command with the single `--gateway` replaced
//! by one `--gateway=<pod URL>` per gateway pod ([`super::addressing`]), `--gateways=N`, its
//! own `--out` under the results volume, `--shard` and a shared `--run-id` when sharded, and no
//! `--compose-project` (a cluster has no Docker API). Results go to a PersistentVolumeClaim.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::addressing::{PodAddressing, pod_urls};
use super::compose::Compose;
use super::render::{self, GATEWAY, Mounts, RUNNER, container, env_list, metadata, selector};
use super::{Plan, wiring};

/// The PersistentVolumeClaim the shards write to.
pub const RESULTS_PVC: &str = "runner-results";
/// The Pod that mounts the results for `kubectl cp` (`manifests --results-reader`).
pub const READER_POD: &str = "results-reader";
/// The environment variable Kubernetes sets to the completion index (declared explicitly, so
/// `$(JOB_COMPLETION_INDEX)` in the arguments always expands).
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";
/// Runner flags this module sets itself; the compose command's own are dropped.
const REPLACED_FLAGS: &[&str] = &[
    "--gateway",
    "--gateways",
    "--gateway-replicas",
    "--out",
    "--compose-project",
    "--shard",
    "--run-id",
];
/// Runner variables that only mean something on the compose host.
const HOST_ONLY_ENV: &[&str] = &[
    "REPRO_HOST_OUT",         // the host folder behind /results: there is none
    "TERM",                   // no terminal: plain progress lines
    "REPRO_COMPOSE_PROJECT",  // no Docker API
    "REPRO_GATEWAY_REPLICAS", // compose replicas; here the pods are listed one by one
];

/// The runner's arguments and the folder its `--out` pointed at in compose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerArgs {
    /// Arguments of the Job's container.
    pub args: Vec<String>,
    /// The compose `--out` (the results volume's mount path).
    pub results_dir: String,
}

/// Splits `--flag=value` / `--flag value` into (flag, value, args consumed).
fn flag_at(args: &[String], i: usize) -> Option<(&str, &str, usize)> {
    let arg = args[i].as_str();
    let name = REPLACED_FLAGS
        .iter()
        .find(|f| arg == **f || arg.strip_prefix(**f).is_some_and(|r| r.starts_with('=')))?;
    match arg.split_once('=') {
        Some((_, v)) => Some((name, v, 1)),
        None => Some((name, args.get(i + 1).map_or("", String::as_str), 2)),
    }
}

/// The Job's arguments from the compose runner command.
pub fn runner_args(
    command: &[String],
    gateway_urls: &[String],
    gateway_port: u16,
    plan: &Plan,
    run_id: &str,
) -> anyhow::Result<RunnerArgs> {
    let mut args = Vec::new();
    let (mut gateways_at, mut results_dir) = (None, None);
    let mut i = 0;
    while i < command.len() {
        let Some((flag, value, used)) = flag_at(command, i) else {
            args.push(command[i].clone());
            i += 1;
            continue;
        };
        match flag {
            "--gateway" => {
                if gateways_at.is_some() {
                    bail!(
                        "the runner's command names --gateway twice: give one, the gateway service"
                    );
                }
                let url = url::Url::parse(value)
                    .with_context(|| format!("the runner's --gateway={value} is not a URL"))?;
                if url.host_str() != Some(GATEWAY)
                    || url.port_or_known_default() != Some(gateway_port)
                {
                    bail!(
                        "the runner's --gateway={value} is not the `{GATEWAY}` service on port \
                         {gateway_port}"
                    );
                }
                gateways_at = Some(args.len());
            }
            "--out" => results_dir = Some(value.trim_end_matches('/').to_owned()),
            _ => {}
        }
        i += used;
    }
    let at = gateways_at.context("the runner's command has no --gateway")?;
    let results_dir = results_dir
        .filter(|d| d.starts_with('/'))
        .context("the runner's command has no absolute --out: where would the results go?")?;
    let mut ours: Vec<String> = gateway_urls
        .iter()
        .map(|u| format!("--gateway={u}"))
        .collect();
    ours.push(format!("--gateways={}", gateway_urls.len()));
    args.splice(at..at, ours);
    args.push(format!("--out={results_dir}/shard-$({INDEX_VAR})"));
    if plan.shards > 1 {
        args.push(format!("--shard=$({INDEX_VAR})/{}", plan.shards));
        args.push(format!("--run-id={run_id}"));
    }
    Ok(RunnerArgs { args, results_dir })
}

/// The PVC, ReadWriteMany when several shards (on several nodes) write to it.
fn claim(plan: &Plan) -> Value {
    let mode = if plan.shards > 1 {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    let mut spec = json!({
        "accessModes": [mode],
        "resources": { "requests": { "storage": plan.storage_size } },
    });
    if let Some(class) = &plan.storage_class {
        spec["storageClassName"] = json!(class);
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(plan, RESULTS_PVC, RUNNER),
        "spec": spec,
    })
}

/// The runner's volumes: the one at its --out becomes the PVC; the Docker socket is dropped.
fn results_mount(compose: &Compose, results_dir: &str) -> anyhow::Result<Mounts> {
    let mut found = false;
    for v in &compose.services[RUNNER].volumes {
        if v.target.trim_end_matches('/') == results_dir {
            found = true;
        } else if !v.source.ends_with("docker.sock") {
            bail!(
                "service `{RUNNER}`: volume `{}:{}` has no Kubernetes mapping (only the results \
                 folder and the Docker socket are known)",
                v.source,
                v.target
            );
        }
    }
    if !found {
        bail!("service `{RUNNER}` mounts nothing at its --out {results_dir}");
    }
    Ok(Mounts {
        config_maps: Vec::new(),
        volumes: vec![
            json!({ "name": "results", "persistentVolumeClaim": { "claimName": RESULTS_PVC } }),
        ],
        mounts: vec![json!({ "name": "results", "mountPath": results_dir })],
    })
}

/// The PVC and the Indexed Job.
pub fn runner(
    plan: &Plan,
    compose: &Compose,
    hashes: &[(&str, String)],
    run_id: &str,
) -> anyhow::Result<Vec<Value>> {
    let service = &compose.services[RUNNER];
    let port = wiring::port_of(compose, GATEWAY).context("service `gateway`")?;
    let urls = pod_urls(&PodAddressing {
        statefulset: GATEWAY,
        headless_service: GATEWAY,
        namespace: &plan.namespace,
        cluster_domain: &plan.cluster_domain,
        port,
        replicas: plan.gateways,
    });
    let command = service
        .command
        .as_deref()
        .context("service `runner` has no command")?;
    let ra = runner_args(command, &urls, port, plan, run_id)?;
    let mut env = env_list(service, HOST_ONLY_ENV);
    // Evidence compose gets from scripts/repro.sh: hashes of the files the manifests came from.
    for (var, hash) in hashes {
        match env.iter_mut().find(|e| e["name"] == *var) {
            Some(e) if e["value"] == "" => e["value"] = json!(hash),
            Some(_) => {}
            None => env.push(json!({ "name": var, "value": hash })),
        }
    }
    env.push(json!({
        "name": INDEX_VAR,
        "valueFrom": { "fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        } }
    }));
    let c = container(plan, RUNNER, service, None, Some(ra.args), env)?;
    let mounts = results_mount(compose, &ra.results_dir)?;
    let mut pod = render::pod_spec(compose, service, c, &mounts)?;
    pod["restartPolicy"] = json!("Never");
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(plan, RUNNER, RUNNER),
        "spec": {
            "completionMode": "Indexed",
            "completions": plan.shards,
            "parallelism": plan.shards,
            // A shard is never retried (a second try would be another run), and a shard that
            // measured a hang (exit 1) fails its own index only: the others keep running.
            "backoffLimitPerIndex": 0,
            "template": { "metadata": { "labels": selector(RUNNER) }, "spec": pod },
        },
    });
    Ok(vec![claim(plan), job])
}

/// A Pod that mounts the results read-only and sleeps, for `kubectl cp`.
pub fn reader(plan: &Plan, compose: &Compose) -> anyhow::Result<Value> {
    let service = &compose.services[RUNNER];
    let results_dir = {
        let command = service.command.as_deref().unwrap_or_default();
        runner_args(command, &[], wiring::port_of(compose, GATEWAY)?, plan, "")?.results_dir
    };
    let image = service
        .image
        .as_deref()
        .context("service `runner` has no image")?;
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": READER_POD,
            "image": image,
            "command": ["sleep", "infinity"],
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
            "volumeMounts": [{ "name": "results", "mountPath": results_dir, "readOnly": true }],
        }],
        "volumes": [{ "name": "results", "persistentVolumeClaim": { "claimName": RESULTS_PVC, "readOnly": true } }],
    });
    if let Some(ctx) = render::security_context(service)? {
        spec["securityContext"] = ctx;
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(plan, READER_POD, RUNNER),
        "spec": spec,
    }))
}
