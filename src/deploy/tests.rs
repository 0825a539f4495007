//! The rendered documents against a fake of cluster DNS built from those documents alone (the
//! rules Kubernetes applies, not the renderer's code): a headless Service gives each pod of a
//! StatefulSet whose `serviceName` names it, and whose pod labels it selects, a record
//! `<sts>-<i>.<svc>.<ns>.svc.<domain>`; a ClusterIP Service resolves as `<svc>` (and longer
//! forms) inside its namespace to the pods it selects. A URL is reachable when the name
//! resolves and the port is a Service port whose target is a port the container declares and
//! the program listens on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use super::{ManifestsArgs, documents, to_yaml};

fn args(gateways: u32, shards: u32, stub: bool) -> ManifestsArgs {
    ManifestsArgs {
        compose_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        stub,
        gateways,
        shards,
        namespace: "repro-ns".into(),
        run_id: Some("run-42".into()),
        set: Vec::new(),
        storage_class: None,
        storage_size: "1Gi".into(),
        cluster_domain: "cluster.local".into(),
        requests: Vec::new(),
        results_reader: false,
        output: None,
    }
}

fn env(var: &str) -> Option<String> {
    match var {
        "TYK_IMAGE" => Some("tykio/tyk-gateway:v5.3.0".into()),
        "REPRO_SECRET" => Some("gw-secret-123".into()),
        "REPRO_NODE_SECRET" => Some("node-secret-456".into()),
        _ => None,
    }
}

fn render(gateways: u32, shards: u32, stub: bool) -> Vec<Value> {
    documents(&args(gateways, shards, stub), &env).expect("rendering")
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], k: &str, name: &str) -> &'a Value {
    let found: Vec<_> = kind(docs, k)
        .into_iter()
        .filter(|d| d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{k}/{name}");
    found[0]
}

/// A pod a name resolved to: workload kind/name, ordinal (StatefulSet pods), its template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pod {
    workload: String,
    ordinal: Option<u32>,
}

/// The fake: DNS name → (pods, ports served there: service port → target port).
struct FakeDns<'a> {
    records: BTreeMap<String, (Vec<Pod>, BTreeMap<u64, u64>)>,
    templates: BTreeMap<String, &'a Value>,
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

impl<'a> FakeDns<'a> {
    fn new(docs: &'a [Value], namespace: &str, domain: &str) -> FakeDns<'a> {
        let mut records = BTreeMap::new();
        let mut templates = BTreeMap::new();
        let workloads: Vec<&Value> = docs
            .iter()
            .filter(|d| ["Deployment", "StatefulSet"].contains(&d["kind"].as_str().unwrap_or("")))
            .filter(|d| d["metadata"]["namespace"] == namespace)
            .collect();
        for w in &workloads {
            let id = format!(
                "{}/{}",
                w["kind"].as_str().unwrap(),
                w["metadata"]["name"].as_str().unwrap()
            );
            // The API server refuses a workload whose selector does not match its template.
            if labels_match(
                &w["spec"]["selector"]["matchLabels"],
                &w["spec"]["template"]["metadata"]["labels"],
            ) {
                templates.insert(id, &w["spec"]["template"]);
            }
        }
        for svc in kind(docs, "Service") {
            if svc["metadata"]["namespace"] != namespace {
                continue;
            }
            let name = svc["metadata"]["name"].as_str().unwrap();
            let ports: BTreeMap<u64, u64> = svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["port"].as_u64().unwrap(),
                        p["targetPort"].as_u64().unwrap(),
                    )
                })
                .collect();
            let selected: Vec<&&Value> = workloads
                .iter()
                .filter(|w| {
                    labels_match(
                        &svc["spec"]["selector"],
                        &w["spec"]["template"]["metadata"]["labels"],
                    )
                })
                .collect();
            let pods: Vec<Pod> = selected
                .iter()
                .map(|w| Pod {
                    workload: format!(
                        "{}/{}",
                        w["kind"].as_str().unwrap(),
                        w["metadata"]["name"].as_str().unwrap()
                    ),
                    ordinal: None,
                })
                .collect();
            let headless = svc["spec"]["clusterIP"] == "None";
            if !headless {
                for n in [
                    name.to_owned(),
                    format!("{name}.{namespace}"),
                    format!("{name}.{namespace}.svc"),
                    format!("{name}.{namespace}.svc.{domain}"),
                ] {
                    records.insert(n, (pods.clone(), ports.clone()));
                }
                continue;
            }
            for w in selected
                .iter()
                .filter(|w| w["kind"] == "StatefulSet" && w["spec"]["serviceName"] == name)
            {
                let sts = w["metadata"]["name"].as_str().unwrap();
                for i in 0..w["spec"]["replicas"].as_u64().unwrap() as u32 {
                    let pod = Pod {
                        workload: format!("StatefulSet/{sts}"),
                        ordinal: Some(i),
                    };
                    // A headless Service forwards nothing: the port is the pod's own.
                    let own: BTreeMap<u64, u64> = ports.values().map(|t| (*t, *t)).collect();
                    records.insert(
                        format!("{sts}-{i}.{name}.{namespace}.svc.{domain}"),
                        (vec![pod], own),
                    );
                }
            }
        }
        FakeDns { records, templates }
    }

    /// Resolves `host:port` to the one pod (or the pods of one workload) serving it.
    fn resolve(&self, host: &str, port: u64) -> Result<Vec<Pod>, String> {
        let (pods, ports) = self
            .records
            .get(host)
            .ok_or_else(|| format!("NXDOMAIN {host}"))?;
        if pods.is_empty() {
            return Err(format!("{host} selects no pods"));
        }
        let target = ports
            .get(&port)
            .ok_or_else(|| format!("{host} serves no port {port}"))?;
        for pod in pods {
            let template = self
                .templates
                .get(&pod.workload)
                .ok_or("bad workload selector")?;
            let c = &template["spec"]["containers"][0];
            let declared = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["containerPort"] == *target);
            if !declared {
                return Err(format!(
                    "{} declares no containerPort {target}",
                    pod.workload
                ));
            }
            let listens = listen_port(c);
            if listens.is_some_and(|l| l != *target) {
                return Err(format!(
                    "{} listens on {listens:?}, not {target}",
                    pod.workload
                ));
            }
        }
        Ok(pods.clone())
    }
}

/// The port a container's program says it listens on (`--listen=…:P`, `TYK_GW_LISTENPORT`).
fn listen_port(c: &Value) -> Option<u64> {
    let from_args = c["args"].as_array().into_iter().flatten().find_map(|a| {
        a.as_str()?
            .strip_prefix("--listen=")?
            .rsplit_once(':')?
            .1
            .parse()
            .ok()
    });
    let from_env = c["env"].as_array().into_iter().flatten().find_map(|e| {
        (e["name"] == "TYK_GW_LISTENPORT").then(|| e["value"].as_str()?.parse().ok())?
    });
    from_args.or(from_env)
}

fn job_args(docs: &[Value]) -> Vec<String> {
    one(docs, "Job", "runner")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn gateway_urls(args: &[String]) -> Vec<url::Url> {
    args.iter()
        .filter_map(|a| a.strip_prefix("--gateway="))
        .map(|u| url::Url::parse(u).unwrap())
        .collect()
}

/// The Job's --gateway URLs resolve, one each, to every pod of the StatefulSet.
fn check_gateway_addressing(docs: &[Value]) -> Result<(), String> {
    let dns = FakeDns::new(docs, "repro-ns", "cluster.local");
    let sts = one(docs, "StatefulSet", "gateway");
    let replicas = sts["spec"]["replicas"].as_u64().unwrap() as u32;
    let mut reached = BTreeSet::new();
    for url in gateway_urls(&job_args(docs)) {
        let pods = dns.resolve(url.host_str().unwrap(), url.port().unwrap().into())?;
        if pods.len() != 1 {
            return Err(format!(
                "{url} reaches {} pods: a load balancer",
                pods.len()
            ));
        }
        if !reached.insert(pods[0].clone()) {
            return Err(format!("{url} reaches {:?} a second time", pods[0]));
        }
    }
    let expected: BTreeSet<Pod> = (0..replicas)
        .map(|i| Pod {
            workload: "StatefulSet/gateway".into(),
            ordinal: Some(i),
        })
        .collect();
    if reached != expected {
        return Err(format!(
            "reached {reached:?}, the StatefulSet has {replicas} pods"
        ));
    }
    Ok(())
}

#[test]
fn the_jobs_gateway_urls_are_exactly_the_statefulsets_pods() {
    for (n, s, stub) in [(1, 1, false), (3, 1, false), (24, 4, true), (3, 2, true)] {
        let docs = render(n, s, stub);
        check_gateway_addressing(&docs).unwrap_or_else(|e| panic!("N={n} S={s} stub={stub}: {e}"));
        let args = job_args(&docs);
        assert_eq!(gateway_urls(&args).len(), n as usize);
        assert!(args.contains(&format!("--gateways={n}")), "{args:?}");
        assert_eq!(args[0], "run");
    }
}

#[test]
fn the_fake_dns_catches_a_wrong_service_name_selector_port_or_count() {
    let good = render(3, 1, false);
    type Mutation = fn(&mut Vec<Value>);
    let mutations: [(&str, Mutation); 4] = [
        ("serviceName", |d| {
            sts_mut(d)["spec"]["serviceName"] = "other".into()
        }),
        ("selector", |d| {
            svc_mut(d, "gateway")["spec"]["selector"]["app.kubernetes.io/component"] = "x".into()
        }),
        ("port", |d| {
            sts_mut(d)["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
                9.into()
        }),
        ("replicas", |d| sts_mut(d)["spec"]["replicas"] = 2.into()),
    ];
    for (what, mutate) in mutations {
        let mut docs = good.clone();
        mutate(&mut docs);
        assert!(
            check_gateway_addressing(&docs).is_err(),
            "a wrong {what} went unnoticed"
        );
    }
}

fn sts_mut(docs: &mut [Value]) -> &mut Value {
    docs.iter_mut()
        .find(|d| d["kind"] == "StatefulSet")
        .unwrap()
}

fn svc_mut<'a>(docs: &'a mut [Value], name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == name)
        .unwrap()
}

#[test]
fn every_host_a_command_or_variable_names_is_a_service_serving_that_port() {
    for stub in [false, true] {
        let docs = render(3, 2, stub);
        let dns = FakeDns::new(&docs, "repro-ns", "cluster.local");
        let mut hosts = BTreeSet::new();
        for w in docs
            .iter()
            .filter(|d| ["Deployment", "StatefulSet", "Job"].contains(&d["kind"].as_str().unwrap()))
        {
            let c = &w["spec"]["template"]["spec"]["containers"][0];
            let values = c["args"].as_array().into_iter().flatten().chain(
                c["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("value")),
            );
            for v in values.filter_map(Value::as_str) {
                let text = v
                    .split_once('=')
                    .filter(|_| v.starts_with("--"))
                    .map_or(v, |(_, u)| u);
                let Ok(url) = url::Url::parse(text) else {
                    continue;
                };
                let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
                    continue;
                };
                dns.resolve(host, port.into())
                    .unwrap_or_else(|e| panic!("{v} in {}: {e}", w["metadata"]["name"]));
                hosts.insert(host.to_owned());
            }
            // Tyk's storage is host + port, not a URL.
            let envs: BTreeMap<&str, &str> = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
                .collect();
            if let (Some(h), Some(p)) = (
                envs.get("TYK_GW_STORAGE_HOST"),
                envs.get("TYK_GW_STORAGE_PORT"),
            ) {
                dns.resolve(h, p.parse().unwrap()).unwrap();
                hosts.insert((*h).to_owned());
            }
        }
        for needed in ["redis", "dashboard"] {
            assert!(hosts.contains(needed), "nothing names {needed}: {hosts:?}");
        }
    }
}

#[test]
fn shards_are_indexed_job_completions_sharing_one_run_id_and_volume() {
    let docs = render(24, 4, true);
    let job = one(&docs, "Job", "runner");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    assert_eq!(job["spec"]["parallelism"], 4);
    let args = job_args(&docs);
    for want in [
        "--shard=$(JOB_COMPLETION_INDEX)/4",
        "--run-id=run-42",
        "--out=/results/shard-$(JOB_COMPLETION_INDEX)",
    ] {
        assert!(args.iter().any(|a| a == want), "{want} missing: {args:?}");
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--compose-project")),
        "{args:?}"
    );
    assert_eq!(args.iter().filter(|a| a.starts_with("--out")).count(), 1);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let index = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "JOB_COMPLETION_INDEX")
        .unwrap();
    assert!(
        index["valueFrom"]["fieldRef"]["fieldPath"]
            .as_str()
            .unwrap()
            .contains("job-completion-index")
    );
    assert!(
        !c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "REPRO_HOST_OUT" || e["name"] == "TERM")
    );
    let pvc = one(&docs, "PersistentVolumeClaim", "runner-results");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/results");
    assert_eq!(
        job["spec"]["template"]["spec"]["securityContext"]["fsGroup"],
        10001
    );

    let single = render(3, 1, false);
    let args = job_args(&single);
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--shard") || a.starts_with("--run-id")),
        "{args:?}"
    );
    assert_eq!(
        one(&single, "PersistentVolumeClaim", "runner-results")["spec"]["accessModes"][0],
        "ReadWriteOnce"
    );
}

#[test]
fn secrets_are_referenced_never_written_into_a_pod_spec() {
    for stub in [false, true] {
        let docs = render(2, 1, stub);
        let secret = one(&docs, "Secret", "reload-repro-secrets");
        assert_eq!(secret["stringData"]["REPRO_SECRET"], "gw-secret-123");
        assert_eq!(secret["stringData"]["REPRO_NODE_SECRET"], "node-secret-456");
        let mut refs = 0;
        for d in docs.iter().filter(|d| d["kind"] != "Secret") {
            let text = serde_json::to_string(d).unwrap();
            assert!(
                !text.contains("gw-secret-123") && !text.contains("node-secret-456"),
                "{text}"
            );
            let containers = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for e in containers
                .iter()
                .flat_map(|c| c["env"].as_array().cloned().unwrap_or_default())
            {
                if let Some(key) = e["valueFrom"]["secretKeyRef"]["key"].as_str() {
                    assert!(secret["stringData"].get(key).is_some(), "{key}");
                    refs += 1;
                }
            }
        }
        // dashboard 2, gateway 2, runner 2.
        assert!(refs >= 6, "{refs} secret references");
    }
}

#[test]
fn every_object_is_in_the_namespace_and_names_come_from_the_compose_services() {
    let docs = render(3, 1, false);
    for d in &docs {
        assert_eq!(d["metadata"]["namespace"], "repro-ns", "{d}");
    }
    for (k, n) in [
        ("Deployment", "redis"),
        ("Deployment", "dashboard"),
        ("Service", "redis"),
        ("Service", "dashboard"),
    ] {
        one(&docs, k, n);
    }
    assert_eq!(
        one(&docs, "Service", "gateway")["spec"]["clusterIP"],
        "None"
    );
    assert!(kind(&docs, "Namespace").is_empty());
}

#[test]
fn the_gateway_gets_run_as_compose_mounts_it_and_probes_come_from_healthchecks() {
    let docs = render(1, 1, false);
    let tyk_conf =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/run/tyk.conf")).unwrap();
    assert_eq!(
        one(&docs, "ConfigMap", "gateway-tyk-conf")["data"]["tyk.conf"],
        tyk_conf.as_str()
    );
    assert!(
        one(&docs, "ConfigMap", "gateway-apps")["data"]
            .get("httpbin.json")
            .is_some()
    );
    let pod = &one(&docs, "StatefulSet", "gateway")["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let conf = mounts
        .iter()
        .find(|m| m["mountPath"] == "/opt/tyk-gateway/tyk.conf")
        .unwrap();
    assert_eq!(conf["subPath"], "tyk.conf");
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/opt/tyk-gateway/templates")
    );
    assert_eq!(pod["containers"][0]["image"], "tykio/tyk-gateway:v5.3.0");
    // depends_on dashboard: service_healthy → wait on the dashboard's own check, remotely.
    let waits: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(waits, ["wait-for-dashboard", "wait-for-redis"]);
    let wait = &pod["initContainers"][0]["command"];
    assert!(
        wait.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "http://dashboard:9000/health"),
        "{wait}"
    );
    let dash = &one(&docs, "Deployment", "dashboard")["spec"]["template"]["spec"]["containers"][0];
    let probe = &dash["readinessProbe"];
    assert_eq!(probe["exec"]["command"][0], "curl");
    assert_eq!(probe["periodSeconds"], 2);
    assert_eq!(probe["failureThreshold"], 60);
    let redis = &one(&docs, "Deployment", "redis")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        redis["readinessProbe"]["exec"]["command"],
        serde_json::json!(["redis-cli", "ping"])
    );

    let stub = render(1, 1, true);
    let c = &one(&stub, "StatefulSet", "gateway")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "stub-gateway");
    assert_eq!(c["image"], "reload-repro:local");
}

#[test]
fn the_yaml_has_one_document_per_object_and_parses_back() {
    let a = args(3, 1, false);
    let docs = documents(&a, &env).unwrap();
    let yaml = to_yaml(&a, &docs).unwrap();
    assert!(yaml.starts_with("# reload-repro on Kubernetes"));
    let back: Vec<Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(back, docs);
}

#[test]
fn bad_input_is_an_error_naming_the_variable_or_flag() {
    let none = |_: &str| None;
    let err = format!("{:#}", documents(&args(1, 1, false), &none).unwrap_err());
    assert!(
        err.contains("TYK_IMAGE is required") && err.contains("--set TYK_IMAGE="),
        "{err}"
    );
    // The stub needs no Tyk image: the gateway is the kit's.
    assert!(documents(&args(1, 1, true), &none).is_ok());
    let mut a = args(1, 1, false);
    a.set = vec!["TYK_IMAGE=x:1".into()];
    assert!(documents(&a, &none).is_ok());
    for (flag, mutate) in [
        (
            "--namespace",
            (|a: &mut ManifestsArgs| a.namespace = "Bad_NS".into()) as fn(&mut ManifestsArgs),
        ),
        ("--set", |a| a.set = vec!["NOEQUALS".into()]),
        ("--requests", |a| {
            a.requests = vec!["gateway=lots,1Gi".into()]
        }),
        ("--requests", |a| a.requests = vec!["nosuch=1,1Gi".into()]),
        ("--run-id", |a| a.run_id = Some("a/b".into())),
        ("--storage-size", |a| a.storage_size = "big".into()),
    ] {
        let mut a = args(1, 1, false);
        mutate(&mut a);
        let err = format!("{:#}", documents(&a, &env).unwrap_err());
        assert!(err.contains(flag), "{flag}: {err}");
    }
}

#[test]
fn requests_and_storage_are_configurable() {
    let mut a = args(2, 2, false);
    a.requests = vec!["gateway=2,2Gi".into()];
    a.storage_class = Some("nfs".into());
    let docs = documents(&a, &env).unwrap();
    let c = &one(&docs, "StatefulSet", "gateway")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"]["cpu"], "2");
    assert_eq!(c["resources"]["requests"]["memory"], "2Gi");
    assert!(c["resources"].get("limits").is_none());
    assert_eq!(
        one(&docs, "PersistentVolumeClaim", "runner-results")["spec"]["storageClassName"],
        "nfs"
    );
}

#[test]
fn the_results_reader_mounts_the_runners_volume_read_only() {
    let mut a = args(1, 1, false);
    a.results_reader = true;
    let docs = documents(&a, &env).unwrap();
    assert_eq!(docs.len(), 1);
    let pod = &docs[0];
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "runner-results"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/results"
    );
}
