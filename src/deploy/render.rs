//! The Kubernetes objects, built from the merged compose model: a Secret for the secret
//! variables, ConfigMaps for the files compose bind-mounts, a Deployment and a Service per
//! dependency (Redis, the dashboard mock), the gateways as a StatefulSet behind a headless
//! Service, and the runner ([`super::job`]). Every object carries `metadata.namespace`.
//!
//! Pure: files arrive as [`ConfigSource`]s, so tests render without a disk.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::compose::{Compose, Service};
use super::{Plan, wiring};

/// The compose service that becomes the StatefulSet.
pub const GATEWAY: &str = "gateway";
/// The compose service that becomes the Job.
pub const RUNNER: &str = "runner";
/// The Secret holding [`SECRET_VARS`].
pub const SECRET_NAME: &str = "reload-repro-secrets";
/// Variables whose values go into the Secret; env vars built from them use `secretKeyRef`.
pub const SECRET_VARS: &[&str] = &["REPRO_SECRET", "REPRO_NODE_SECRET"];
/// Label key naming the compose service of an object.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// Files that compose bind-mounts from the checkout (`./run/tyk.conf`, `./run/apps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The source exactly as the compose file writes it.
    pub source: String,
    /// File name → contents (one entry for a file mount).
    pub files: BTreeMap<String, Vec<u8>>,
    /// A single file mounted at the target, not a folder.
    pub single_file: bool,
}

/// Labels selecting the pods of one compose service.
pub fn selector(service: &str) -> Value {
    json!({ "app.kubernetes.io/name": "reload-repro", COMPONENT_LABEL: service })
}

/// `metadata` of an object in the plan's namespace.
pub fn metadata(plan: &Plan, name: &str, service: &str) -> Value {
    let mut labels = selector(service);
    labels["app.kubernetes.io/managed-by"] = json!("reload-repro-manifests");
    json!({ "name": name, "namespace": plan.namespace, "labels": labels })
}

/// The value of each secret variable, as the services' environments resolved it.
pub fn secrets(compose: &Compose) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, service) in &compose.services {
        for (var, env) in &service.environment {
            let Some(secret) = env.refs.iter().find(|r| SECRET_VARS.contains(&r.as_str())) else {
                continue;
            };
            match out.get(secret) {
                Some(known) if *known != env.value => bail!(
                    "service `{name}`: {var} resolves {secret} differently from another service \
                     (different defaults?): set {secret} or make the defaults agree"
                ),
                _ => {
                    out.insert(secret.clone(), env.value.clone());
                }
            }
        }
    }
    for (name, service) in &compose.services {
        for arg in service.command.iter().flatten() {
            if out
                .values()
                .any(|s| !s.is_empty() && arg.contains(s.as_str()))
            {
                bail!(
                    "service `{name}`: a command argument holds a secret, which would be readable \
                     in the pod spec: pass it through `environment`"
                );
            }
        }
    }
    Ok(out)
}

/// The container `env` list: secrets by reference, the rest by value; `drop` left out.
pub fn env_list(service: &Service, drop: &[&str]) -> Vec<Value> {
    service
        .environment
        .iter()
        .filter(|(name, _)| !drop.contains(&name.as_str()))
        .map(
            |(name, env)| match env.refs.iter().find(|r| SECRET_VARS.contains(&r.as_str())) {
                Some(secret) => json!({
                    "name": name,
                    "valueFrom": { "secretKeyRef": { "name": SECRET_NAME, "key": secret } }
                }),
                None => json!({ "name": name, "value": env.value }),
            },
        )
        .collect()
}

/// Whole seconds, rounded up, at least 1 (probe fields are integers).
fn seconds(d: std::time::Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// A readiness probe running the compose healthcheck in the container.
fn readiness(service: &Service) -> Option<Value> {
    let h = service.healthcheck.as_ref()?;
    let mut probe = json!({ "exec": { "command": h.test } });
    if let Some(i) = h.interval {
        probe["periodSeconds"] = json!(seconds(i));
    }
    if let Some(t) = h.timeout {
        probe["timeoutSeconds"] = json!(seconds(t));
    }
    if let Some(r) = h.retries {
        probe["failureThreshold"] = json!(r.max(1));
    }
    Some(probe)
}

/// Init containers waiting for each `service_healthy` dependency, by its own healthcheck.
pub fn waits(compose: &Compose, service: &Service) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (dep, condition) in &service.depends_on {
        if condition != "service_healthy" {
            continue; // service_started: the dependent copes (the runner probes the gateway)
        }
        let d = compose
            .services
            .get(dep)
            .with_context(|| format!("depends on `{dep}`, which is not a service"))?;
        let Some(check) = d
            .healthcheck
            .as_ref()
            .and_then(|h| wiring::remote_check(&h.test, dep))
        else {
            continue;
        };
        let mut command = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "until \"$@\" >/dev/null 2>&1; do echo \"waiting for $0\"; sleep 2; done".to_owned(),
            dep.clone(),
        ];
        command.extend(check);
        out.push(json!({
            "name": format!("wait-for-{dep}"),
            "image": image(dep, d)?,
            "command": command,
            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
        }));
    }
    Ok(out)
}

fn image<'a>(name: &str, service: &'a Service) -> anyhow::Result<&'a str> {
    service
        .image
        .as_deref()
        .filter(|i| !i.is_empty())
        .with_context(|| format!("service `{name}` has no image"))
}

/// The pod security context from compose's `user: UID[:GID]` (the group also owns volumes).
pub fn security_context(service: &Service) -> anyhow::Result<Option<Value>> {
    let Some(user) = service.user.as_deref() else {
        return Ok(None);
    };
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    let uid: u64 = uid
        .parse()
        .with_context(|| format!("user `{user}`: only numeric UID[:GID] is supported"))?;
    let mut ctx = json!({ "runAsUser": uid });
    if !gid.is_empty() {
        let gid: u64 = gid
            .parse()
            .with_context(|| format!("user `{user}`: only numeric UID[:GID] is supported"))?;
        ctx["runAsGroup"] = json!(gid);
        ctx["fsGroup"] = json!(gid);
    }
    Ok(Some(ctx))
}

/// One container for a compose service: image, args, env, port, probe, requests.
pub fn container(
    plan: &Plan,
    name: &str,
    service: &Service,
    port: Option<u16>,
    args: Option<Vec<String>>,
    env: Vec<Value>,
) -> anyhow::Result<Value> {
    let (cpu, memory) = plan.requests_for(name);
    let mut c = json!({
        "name": name,
        "image": image(name, service)?,
        "resources": { "requests": { "cpu": cpu, "memory": memory } },
    });
    if let Some(args) = args.or_else(|| service.command.clone()) {
        c["args"] = json!(args);
    }
    if !env.is_empty() {
        c["env"] = json!(env);
    }
    if let Some(port) = port {
        c["ports"] = json!([{ "name": port_name(name), "containerPort": port }]);
    }
    if let Some(probe) = readiness(service) {
        c["readinessProbe"] = probe;
    }
    Ok(c)
}

/// A port name (at most 15 characters): the service name, cut.
fn port_name(service: &str) -> String {
    service
        .chars()
        .take(15)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// ConfigMap name for a bind-mount source: `<service>-<file or folder name>`.
pub fn config_map_name(service: &str, source: &str) -> String {
    let base = source
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(source);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{service}-{}", clean.trim_matches('-'))
}

/// ConfigMaps, volumes and mounts for a service's bind mounts of checkout files.
pub struct Mounts {
    /// The ConfigMap documents.
    pub config_maps: Vec<Value>,
    /// Pod `volumes`.
    pub volumes: Vec<Value>,
    /// Container `volumeMounts`.
    pub mounts: Vec<Value>,
}

/// The largest ConfigMap the API server stores.
const CONFIG_MAP_LIMIT: usize = 1024 * 1024;

/// Turns a service's `./…` bind mounts into ConfigMaps.
pub fn config_mounts(
    plan: &Plan,
    name: &str,
    service: &Service,
    sources: &[ConfigSource],
) -> anyhow::Result<Mounts> {
    let mut m = Mounts {
        config_maps: Vec::new(),
        volumes: Vec::new(),
        mounts: Vec::new(),
    };
    for v in &service.volumes {
        if !v.source.starts_with('.') {
            bail!(
                "service `{name}`: volume `{}:{}` is a host path, which a cluster does not have",
                v.source,
                v.target
            );
        }
        let src = sources
            .iter()
            .find(|s| s.source == v.source)
            .with_context(|| format!("service `{name}`: {} was not read", v.source))?;
        let cm = config_map_name(name, &v.source);
        let size: usize = src.files.iter().map(|(k, b)| k.len() + b.len()).sum();
        if size > CONFIG_MAP_LIMIT {
            bail!(
                "{} holds {size} bytes, more than a ConfigMap's 1 MiB",
                v.source
            );
        }
        let (mut data, mut binary) = (serde_json::Map::new(), serde_json::Map::new());
        for (file, bytes) in &src.files {
            match std::str::from_utf8(bytes) {
                Ok(text) => data.insert(file.clone(), json!(text)),
                Err(_) => {
                    use base64::Engine as _;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                    binary.insert(file.clone(), json!(b64))
                }
            };
        }
        let mut doc = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(plan, &cm, name),
            "data": data,
        });
        if !binary.is_empty() {
            doc["binaryData"] = Value::Object(binary);
        }
        m.config_maps.push(doc);
        m.volumes
            .push(json!({ "name": cm, "configMap": { "name": cm } }));
        let mut mount = json!({ "name": cm, "mountPath": v.target, "readOnly": true });
        if src.single_file
            && let Some(file) = src.files.keys().next()
        {
            mount["subPath"] = json!(file);
        }
        m.mounts.push(mount);
    }
    Ok(m)
}

/// The pod spec shared by every workload.
pub fn pod_spec(
    compose: &Compose,
    service: &Service,
    mut container: Value,
    mounts: &Mounts,
) -> anyhow::Result<Value> {
    if !mounts.mounts.is_empty() {
        container["volumeMounts"] = json!(mounts.mounts);
    }
    let mut spec = json!({ "containers": [container] });
    let waits = waits(compose, service)?;
    if !waits.is_empty() {
        spec["initContainers"] = json!(waits);
    }
    if !mounts.volumes.is_empty() {
        spec["volumes"] = json!(mounts.volumes);
    }
    if let Some(ctx) = security_context(service)? {
        spec["securityContext"] = ctx;
    }
    Ok(spec)
}

/// A Service in front of one compose service's pods; headless when `headless`.
pub fn service_doc(plan: &Plan, name: &str, port: u16, headless: bool) -> Value {
    let mut spec = json!({
        "selector": selector(name),
        "ports": [{ "name": port_name(name), "port": port, "targetPort": port }],
    });
    if headless {
        spec["clusterIP"] = json!("None");
        // Records exist as soon as a pod runs: the runner does its own readiness checks.
        spec["publishNotReadyAddresses"] = json!(true);
    }
    json!({ "apiVersion": "v1", "kind": "Service", "metadata": metadata(plan, name, name), "spec": spec })
}

/// Deployment + Service (+ ConfigMaps) for a dependency such as Redis or the dashboard.
pub fn dependency(
    plan: &Plan,
    compose: &Compose,
    name: &str,
    sources: &[ConfigSource],
) -> anyhow::Result<Vec<Value>> {
    let service = &compose.services[name];
    let port = wiring::port_of(compose, name).with_context(|| format!("service `{name}`"))?;
    let mounts = config_mounts(plan, name, service, sources)?;
    let c = container(
        plan,
        name,
        service,
        Some(port),
        None,
        env_list(service, &[]),
    )?;
    let pod = pod_spec(compose, service, c, &mounts)?;
    let mut docs = mounts.config_maps.clone();
    docs.push(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(plan, name, name),
        "spec": {
            "replicas": 1,
            // One instance holds the state (Redis data, the mock's policy list): never two.
            "strategy": { "type": "Recreate" },
            "selector": { "matchLabels": selector(name) },
            "template": { "metadata": { "labels": selector(name) }, "spec": pod },
        },
    }));
    docs.push(service_doc(plan, name, port, false));
    Ok(docs)
}

/// The gateways: headless Service + StatefulSet (+ ConfigMaps for run/).
pub fn gateways(
    plan: &Plan,
    compose: &Compose,
    sources: &[ConfigSource],
) -> anyhow::Result<Vec<Value>> {
    let service = &compose.services[GATEWAY];
    let port = wiring::port_of(compose, GATEWAY).context("service `gateway`")?;
    let mounts = config_mounts(plan, GATEWAY, service, sources)?;
    let c = container(
        plan,
        GATEWAY,
        service,
        Some(port),
        None,
        env_list(service, &[]),
    )?;
    let pod = pod_spec(compose, service, c, &mounts)?;
    let mut docs = mounts.config_maps.clone();
    docs.push(service_doc(plan, GATEWAY, port, true));
    docs.push(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(plan, GATEWAY, GATEWAY),
        "spec": {
            "serviceName": GATEWAY,
            "replicas": plan.gateways,
            // All gateways start at once, as compose starts its replicas.
            "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": selector(GATEWAY) },
            "template": { "metadata": { "labels": selector(GATEWAY) }, "spec": pod },
        },
    }));
    Ok(docs)
}

/// The Secret with the secret variables' values.
pub fn secret_doc(plan: &Plan, secrets: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(plan, SECRET_NAME, "secrets"),
        "type": "Opaque",
        "stringData": secrets,
    })
}
