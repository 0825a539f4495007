//! `reload-repro manifests`: Kubernetes manifests rendered from the compose file, so the compose
//! file stays the one source of images, commands, environment, healthchecks and secrets.
//!
//! Parts: [`interpolate`] (compose's `${VAR…}` rules), [`compose`] (the files read and merged as
//! compose merges them), [`wiring`] (ports and dependency waits read from the settings),
//! [`addressing`] (the per-pod gateway URLs), [`render`] (Secret, ConfigMaps, Deployments,
//! Services, the gateways' StatefulSet) and [`job`] (the runner as an Indexed Job and its
//! results volume), written by [`yaml`]. This file holds the options and the file reading around the pure parts.

pub mod addressing;
pub mod compose;
pub mod interpolate;
pub mod job;
pub mod render;
pub mod wiring;
pub mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use render::{ConfigSource, GATEWAY, RUNNER};

/// The compose files, relative to `--compose-dir`.
const BASE_FILE: &str = "docker-compose.yml";
const STUB_FILE: &str = "docker-compose.stub.yml";

/// `manifests --help`: what comes out and how to use it.
pub const MANIFESTS_LONG_ABOUT: &str = "\
Render Kubernetes manifests for the kit from docker-compose.yml (and docker-compose.stub.yml
with --stub): the compose file stays the one source of images, commands, environment,
healthchecks and secrets. Variables are interpolated as compose does (${VAR}, ${VAR:-default},
${VAR:?message}, $$), from the environment and --set VAR=VALUE (which wins).

What you get, every object in --namespace (create the namespace yourself):
  Secret reload-repro-secrets   REPRO_SECRET, REPRO_NODE_SECRET (env vars use secretKeyRef)
  ConfigMaps gateway-*          the files compose mounts into the gateway (run/)
  Deployment+Service redis, dashboard   readiness probes from the compose healthchecks
  StatefulSet gateway (--gateways N) + headless Service gateway: pod i is reached directly at
                                http://gateway-<i>.gateway.<namespace>.svc.<cluster domain>:8080
  Job runner                    Indexed, --shards S pods; shard K writes /results/shard-K
  PersistentVolumeClaim runner-results   (ReadWriteMany when S > 1)

Typical use:
  reload-repro manifests --set TYK_IMAGE=tykio/tyk-gateway:v5.3.0 --gateways 3 -o k8s.yaml
  kubectl create namespace reload-repro && kubectl apply -f k8s.yaml
  kubectl -n reload-repro wait --for=condition=complete --timeout=30m job/runner
  reload-repro manifests --results-reader | kubectl apply -f -     (then kubectl cp)
Runner knobs (RATE, DURATION, TRIGGER, INITIAL_POLICIES, …) are the compose variables; with
--stub, STUB_MODE=v2.9.4|fixed picks the stub's mode. The README's \"Running on Kubernetes\"
section has the whole walk-through. These manifests are validated against the Kubernetes
schemas in CI; they have not been applied to a cluster by the kit's authors.";

/// Options of `reload-repro manifests`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestsArgs {
    /// Folder with docker-compose.yml, docker-compose.stub.yml and run/.
    #[arg(long, env = "REPRO_K8S_COMPOSE_DIR", default_value = ".")]
    pub compose_dir: PathBuf,
    /// The kit's stub gateway in Tyk's place (docker-compose.stub.yml; TYK_IMAGE not needed).
    #[arg(long)]
    pub stub: bool,
    /// Gateway pods (the StatefulSet's replicas); the runner addresses each one.
    #[arg(long, env = "REPRO_K8S_GATEWAYS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=crate::runner::options::MAX_FLEET as i64))]
    pub gateways: u32,
    /// Runner shards (the Indexed Job's completions and parallelism); shard K runs every
    /// S-th scenario of the same schedule (`run --shard K/S`).
    #[arg(long, env = "REPRO_K8S_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shards: u32,
    /// Namespace written on every object.
    #[arg(long, env = "REPRO_K8S_NAMESPACE", default_value = "reload-repro")]
    pub namespace: String,
    /// Run id the shards share (`run --run-id`); default: a fresh one (only used with shards).
    #[arg(long, env = "REPRO_K8S_RUN_ID")]
    pub run_id: Option<String>,
    /// A compose variable, beating the environment (repeatable): --set TYK_IMAGE=…, --set RATE=300.
    #[arg(long = "set", value_name = "VAR=VALUE")]
    pub set: Vec<String>,
    /// Storage class of the results volume (default: the cluster's default class).
    #[arg(long, env = "REPRO_K8S_STORAGE_CLASS")]
    pub storage_class: Option<String>,
    /// Size of the results volume.
    #[arg(long, env = "REPRO_K8S_STORAGE_SIZE", default_value = "1Gi")]
    pub storage_size: String,
    /// The cluster's DNS domain, in the gateway pod URLs.
    #[arg(
        long,
        env = "REPRO_K8S_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    pub cluster_domain: String,
    /// Resource requests of a service's container (repeatable), e.g. gateway=2,2Gi. Defaults:
    /// redis=100m,256Mi dashboard=500m,1Gi gateway=1,1Gi runner=1,512Mi. No limits are set:
    /// a throttled gateway or runner would measure the limit, not the gateway.
    #[arg(long = "requests", value_name = "SERVICE=CPU,MEMORY")]
    pub requests: Vec<String>,
    /// Print only a Pod that mounts the results volume (for `kubectl cp` after the Job).
    #[arg(long)]
    pub results_reader: bool,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// The choices that shape the objects (everything but the compose file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `--namespace`.
    pub namespace: String,
    /// `--gateways`.
    pub gateways: u32,
    /// `--shards`.
    pub shards: u32,
    /// `--storage-class`.
    pub storage_class: Option<String>,
    /// `--storage-size`.
    pub storage_size: String,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// `--requests`, by service.
    pub requests: BTreeMap<String, (String, String)>,
}

impl Plan {
    /// A plan with the defaults of the command line.
    pub fn new(namespace: &str, gateways: u32, shards: u32) -> Plan {
        Plan {
            namespace: namespace.to_owned(),
            gateways,
            shards,
            storage_class: None,
            storage_size: "1Gi".into(),
            cluster_domain: "cluster.local".into(),
            requests: BTreeMap::new(),
        }
    }

    /// CPU and memory requests of a service's container.
    pub fn requests_for(&self, service: &str) -> (String, String) {
        if let Some(r) = self.requests.get(service) {
            return r.clone();
        }
        let (cpu, mem) = match service {
            "redis" => ("100m", "256Mi"),
            // 1M policies are ~120 MB of JSON, pre-encoded once.
            "dashboard" => ("500m", "1Gi"),
            GATEWAY => ("1", "1Gi"),
            RUNNER => ("1", "512Mi"),
            _ => ("100m", "128Mi"),
        };
        (cpu.into(), mem.into())
    }
}

/// Checks a Kubernetes quantity such as `500m`, `1`, `1.5`, `256Mi`, `2G`.
fn check_quantity(what: &str, q: &str) -> anyhow::Result<()> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let number_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.');
    let suffixes = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"];
    if number_ok && suffixes.contains(&suffix) {
        Ok(())
    } else {
        bail!("{what}: `{q}` is not a Kubernetes quantity (e.g. 500m, 2, 256Mi, 1Gi)")
    }
}

/// Everything the command line decides, checked.
fn plan_of(args: &ManifestsArgs) -> anyhow::Result<Plan> {
    addressing::check_dns_label("--namespace", &args.namespace, 63)?;
    for label in args.cluster_domain.split('.') {
        addressing::check_dns_label("--cluster-domain part", label, 63)?;
    }
    check_quantity("--storage-size", &args.storage_size)?;
    if let Some(class) = &args.storage_class {
        addressing::check_dns_label("--storage-class", class, 253)?;
    }
    let mut plan = Plan::new(&args.namespace, args.gateways, args.shards);
    plan.storage_class = args.storage_class.clone();
    plan.storage_size = args.storage_size.clone();
    plan.cluster_domain = args.cluster_domain.clone();
    for r in &args.requests {
        let parsed = r
            .split_once('=')
            .and_then(|(s, v)| v.split_once(',').map(|(c, m)| (s, c, m)));
        let Some((service, cpu, mem)) = parsed else {
            bail!("--requests {r}: expected SERVICE=CPU,MEMORY, e.g. gateway=2,2Gi");
        };
        check_quantity(&format!("--requests {r}"), cpu)?;
        check_quantity(&format!("--requests {r}"), mem)?;
        plan.requests
            .insert(service.to_owned(), (cpu.to_owned(), mem.to_owned()));
    }
    Ok(plan)
}

/// `--set VAR=VALUE` pairs.
fn overrides(set: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in set {
        let Some((var, value)) = pair.split_once('=') else {
            bail!(
                "--set {pair}: expected VAR=VALUE, e.g. --set TYK_IMAGE=tykio/tyk-gateway:v5.3.0"
            );
        };
        if var.is_empty() || !var.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
            bail!("--set {pair}: `{var}` is not a variable name");
        }
        out.insert(var.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// The run id the shards share: `--run-id`, or a fresh `k8s-<12 hex>`.
fn run_id(given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !ok {
                bail!("--run-id `{id}`: use at most 64 letters, digits, `.`, `_` or `-`");
            }
            Ok(id.to_owned())
        }
        None => Ok(format!(
            "k8s-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )),
    }
}

/// Reads the files a service bind-mounts from the checkout (`./…` sources).
fn read_sources(dir: &Path, compose: &compose::Compose) -> anyhow::Result<Vec<ConfigSource>> {
    let mut out: Vec<ConfigSource> = Vec::new();
    for (name, service) in &compose.services {
        if name == RUNNER {
            continue; // its ./results is the results volume
        }
        for v in service.volumes.iter().filter(|v| v.source.starts_with('.')) {
            if out.iter().any(|s| s.source == v.source) {
                continue;
            }
            let path = dir.join(&v.source);
            let meta = fs::metadata(&path).with_context(|| {
                format!(
                    "service `{name}` mounts {}, which cannot be read",
                    path.display()
                )
            })?;
            let mut files = BTreeMap::new();
            if meta.is_file() {
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.insert(
                    file,
                    fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                );
            } else {
                for entry in
                    fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))?
                {
                    let entry = entry?;
                    let p = entry.path();
                    if p.is_dir() {
                        bail!(
                            "{} is a folder inside a mounted folder: a ConfigMap holds one flat folder",
                            p.display()
                        );
                    }
                    let file = entry.file_name().to_string_lossy().into_owned();
                    files.insert(
                        file,
                        fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                    );
                }
            }
            out.push(ConfigSource {
                source: v.source.clone(),
                files,
                single_file: meta.is_file(),
            });
        }
    }
    Ok(out)
}

/// The compose model for these options: base file, plus the stub override with `--stub`.
pub fn load_compose(
    dir: &Path,
    stub: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<compose::Compose> {
    if !stub {
        return compose::read(&dir.join(BASE_FILE), lookup);
    }
    let over = compose::read(&dir.join(STUB_FILE), lookup)?;
    // As scripts/repro.sh does for a stub run: the gateway image is the stub's (the kit's).
    let stub_image = over.services.get(GATEWAY).and_then(|g| g.image.clone());
    let base_lookup = |var: &str| match (var, lookup(var)) {
        ("TYK_IMAGE", None) => stub_image.clone(),
        ("TYK_IMAGE", Some(v)) if v.is_empty() => stub_image.clone(),
        (_, v) => v,
    };
    Ok(compose::read(&dir.join(BASE_FILE), &base_lookup)?.merge(over))
}

/// Renders the documents (pure apart from reading the compose folder).
pub fn documents(
    args: &ManifestsArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Value>> {
    let plan = plan_of(args)?;
    let set = overrides(&args.set)?;
    let lookup = |var: &str| set.get(var).cloned().or_else(|| env(var));
    let compose = load_compose(&args.compose_dir, args.stub, &lookup)?;
    for needed in [GATEWAY, RUNNER] {
        if !compose.services.contains_key(needed) {
            bail!("the compose file has no `{needed}` service");
        }
    }
    for service in plan.requests.keys() {
        if !compose.services.contains_key(service) {
            bail!("--requests {service}=…: the compose file has no service `{service}`");
        }
    }
    let sources = read_sources(&args.compose_dir, &compose)?;
    if args.results_reader {
        return Ok(vec![job::reader(&plan, &compose)?]);
    }
    let (compose_sha, config_sha) = crate::sets::plan::config_hashes(&args.compose_dir, args.stub)?;
    let hashes = [
        ("REPRO_COMPOSE_SHA256", compose_sha),
        ("REPRO_GATEWAY_CONFIG_SHA256", config_sha),
    ];
    let run_id = run_id(args.run_id.as_deref())?;
    render_all(&plan, &compose, &sources, &hashes, &run_id)
}

/// Every object, in apply order: Secret, dependencies, gateways, results volume and Job.
pub fn render_all(
    plan: &Plan,
    compose: &compose::Compose,
    sources: &[ConfigSource],
    hashes: &[(&str, String)],
    run_id: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    let secrets = render::secrets(compose)?;
    if !secrets.is_empty() {
        docs.push(render::secret_doc(plan, &secrets));
    }
    for name in compose.services.keys() {
        if name != GATEWAY && name != RUNNER {
            docs.extend(render::dependency(plan, compose, name, sources)?);
        }
    }
    docs.extend(render::gateways(plan, compose, sources)?);
    docs.extend(job::runner(plan, compose, hashes, run_id)?);
    Ok(docs)
}

/// Multi-document YAML with a header saying where it came from.
pub fn to_yaml(args: &ManifestsArgs, docs: &[Value]) -> anyhow::Result<String> {
    let files = if args.stub {
        format!("{BASE_FILE} + {STUB_FILE}")
    } else {
        BASE_FILE.to_owned()
    };
    let mut out = format!(
        "# reload-repro on Kubernetes, rendered by `reload-repro manifests` from {files}\n\
         # (namespace {}, {} gateway pod(s), {} runner shard(s)). Re-render rather than edit:\n\
         # the compose file is the source. Validated against the Kubernetes schemas only; see the\n\
         # README, \"Running on Kubernetes\". Apply: kubectl create namespace {0}; kubectl apply -f FILE\n",
        args.namespace, args.gateways, args.shards
    );
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&yaml::to_string(doc));
    }
    Ok(out)
}

/// Entry point of `reload-repro manifests`.
pub fn main(args: ManifestsArgs) -> anyhow::Result<ExitCode> {
    let docs = documents(&args, &|var| std::env::var(var).ok())?;
    let yaml = to_yaml(&args, &docs)?;
    match &args.output {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .with_context(|| format!("--output: cannot create {}", parent.display()))?;
            }
            fs::write(path, yaml)
                .with_context(|| format!("--output: cannot write {}", path.display()))?;
            eprintln!("wrote {} objects to {}", docs.len(), path.display());
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}
