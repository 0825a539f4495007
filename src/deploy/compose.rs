//! The compose file(s) read as `docker compose` reads them: YAML anchors and `<<` merge keys
//! applied, every string interpolated ([`super::interpolate`]), then an override file merged
//! over the base (scalars and lists replace, `environment` and `depends_on` merge by key,
//! `volumes` by container path).
//!
//! Only what has a Kubernetes meaning is kept. Every other service key must be on the
//! [`IGNORED_KEYS`] list (with the reason), so a setting added to the compose file later is an
//! error here, not silently missing from the manifests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_yaml::Value;

use super::interpolate::interpolate;

/// Service keys the manifests deliberately do not carry, and why.
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "init",
        "the kit's binary is PID 1 in its pod and handles SIGTERM itself",
    ),
    ("logging", "the kubelet rotates container logs"),
    ("cpu_shares", "CPU weight is the pod's cpu request"),
    (
        "group_add",
        "only for the Docker socket, which a cluster does not offer",
    ),
    ("profiles", "the runner is a Job, started by applying it"),
    (
        "deploy",
        "replicas are `manifests --gateways`; resources are `--requests`",
    ),
    ("scale", "replicas are `manifests --gateways`"),
];

/// One environment value, with the variables it was interpolated from (to tell secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    /// The interpolated value.
    pub value: String,
    /// Variables referenced by the raw value, in order.
    pub refs: Vec<String>,
}

/// A compose healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// The command, `CMD` form: program and arguments (`CMD-SHELL` becomes `sh -c …`).
    pub test: Vec<String>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retries`.
    pub retries: Option<u32>,
    /// `start_period`.
    pub start_period: Option<Duration>,
}

/// A short-syntax volume, `SOURCE:TARGET[:MODE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Host path (relative to the compose file's folder when it starts with `.`).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// `:ro`.
    pub read_only: bool,
}

/// What the manifests use of one service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// `image`.
    pub image: Option<String>,
    /// `command` (Kubernetes `args`: it replaces the image's CMD, not its ENTRYPOINT).
    pub command: Option<Vec<String>>,
    /// `environment`.
    pub environment: BTreeMap<String, EnvValue>,
    /// `healthcheck`.
    pub healthcheck: Option<Healthcheck>,
    /// `volumes`.
    pub volumes: Vec<Volume>,
    /// `depends_on`: service → condition (`service_started` for the list form).
    pub depends_on: BTreeMap<String, String>,
    /// `user` as `UID[:GID]`.
    pub user: Option<String>,
}

/// The services of a (merged) compose project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compose {
    /// By name.
    pub services: BTreeMap<String, Service>,
}

/// Reads and interpolates one compose file.
pub fn read(path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Compose> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}: run from the kit's checkout or pass --compose-dir",
            path.display()
        )
    })?;
    parse(&text, lookup).with_context(|| format!("{}", path.display()))
}

/// Parses and interpolates compose YAML.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Compose> {
    let mut doc: Value = serde_yaml::from_str(text).context("not valid YAML")?;
    doc.apply_merge().context("bad `<<` merge key")?;
    let Value::Mapping(top) = doc else {
        bail!("a compose file is a mapping with `services:`");
    };
    let mut services = BTreeMap::new();
    for (key, value) in top {
        let key = scalar(&key).context("a top-level key is not a string")?;
        match key.as_str() {
            "services" => {
                let Value::Mapping(map) = value else {
                    bail!("`services` must be a mapping");
                };
                for (name, body) in map {
                    let name = scalar(&name).context("a service name is not a string")?;
                    let service =
                        service(&body, lookup).with_context(|| format!("service `{name}`"))?;
                    services.insert(name, service);
                }
            }
            k if k.starts_with("x-") => {} // extension fields: anchors, already merged
            other => bail!(
                "top-level `{other}` has no Kubernetes mapping in `reload-repro manifests` \
                 (extend src/deploy/compose.rs)"
            ),
        }
    }
    Ok(Compose { services })
}

impl Compose {
    /// Merges an override file over this one, as `docker compose -f base -f override` does.
    pub fn merge(mut self, over: Compose) -> Compose {
        for (name, o) in over.services {
            let s = self.services.entry(name).or_default();
            if o.image.is_some() {
                s.image = o.image;
            }
            if o.command.is_some() {
                s.command = o.command;
            }
            if o.healthcheck.is_some() {
                s.healthcheck = o.healthcheck;
            }
            if o.user.is_some() {
                s.user = o.user;
            }
            s.environment.extend(o.environment);
            s.depends_on.extend(o.depends_on);
            for v in o.volumes {
                s.volumes.retain(|old| old.target != v.target);
                s.volumes.push(v);
            }
        }
        self
    }
}

fn scalar(v: &Value) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("expected a string, found {other:?}"),
    }
}

fn text(v: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    Ok(interpolate(&scalar(v)?, lookup)?.0)
}

fn list(
    v: &Value,
    what: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let Value::Sequence(items) = v else {
        bail!("`{what}` must be a list (the string form is not supported: write it as a list)");
    };
    items.iter().map(|i| text(i, lookup)).collect()
}

fn service(body: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Service> {
    let Value::Mapping(map) = body else {
        bail!("must be a mapping");
    };
    let mut s = Service::default();
    for (key, value) in map {
        let key = scalar(key)?;
        let field = || format!("`{key}`");
        match key.as_str() {
            "image" => s.image = Some(text(value, lookup).with_context(field)?),
            "command" => s.command = Some(list(value, "command", lookup).with_context(field)?),
            "environment" => s.environment = environment(value, lookup).with_context(field)?,
            "healthcheck" => s.healthcheck = healthcheck(value, lookup).with_context(field)?,
            "volumes" => {
                s.volumes = list(value, "volumes", lookup)
                    .and_then(|l| l.iter().map(|v| volume(v)).collect())
                    .with_context(field)?;
            }
            "depends_on" => s.depends_on = depends_on(value).with_context(field)?,
            "user" => s.user = Some(text(value, lookup).with_context(field)?),
            k if IGNORED_KEYS.iter().any(|(i, _)| *i == k) => {}
            other => bail!(
                "`{other}` has no Kubernetes mapping in `reload-repro manifests` \
                 (map it or add it to IGNORED_KEYS in src/deploy/compose.rs)"
            ),
        }
    }
    Ok(s)
}

fn environment(
    v: &Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, EnvValue>> {
    let mut out = BTreeMap::new();
    let mut put = |name: String, raw: String| -> anyhow::Result<()> {
        let (value, refs) = interpolate(&raw, lookup).with_context(|| name.clone())?;
        out.insert(name, EnvValue { value, refs });
        Ok(())
    };
    match v {
        Value::Mapping(map) => {
            for (k, v) in map {
                let raw = if v.is_null() {
                    String::new()
                } else {
                    scalar(v)?
                };
                put(scalar(k)?, raw)?;
            }
        }
        Value::Sequence(items) => {
            for item in items {
                let item = scalar(item)?;
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                put(k.to_owned(), v.to_owned())?;
            }
        }
        _ => bail!("must be a mapping or a list of NAME=VALUE"),
    }
    Ok(out)
}

fn duration(
    v: &Value,
    what: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Duration> {
    let t = text(v, lookup)?;
    humantime::parse_duration(&t).with_context(|| format!("`{what}: {t}` is not a duration"))
}

fn healthcheck(
    v: &Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Healthcheck>> {
    let Value::Mapping(map) = v else {
        bail!("must be a mapping");
    };
    let mut h = Healthcheck::default();
    for (key, value) in map {
        let key = scalar(key)?;
        match key.as_str() {
            "test" => {
                h.test = match value {
                    Value::Sequence(_) => list(value, "test", lookup)?,
                    _ => vec!["CMD-SHELL".into(), text(value, lookup)?],
                };
            }
            "interval" => h.interval = Some(duration(value, "interval", lookup)?),
            "timeout" => h.timeout = Some(duration(value, "timeout", lookup)?),
            "start_period" => h.start_period = Some(duration(value, "start_period", lookup)?),
            "retries" => {
                let t = text(value, lookup)?;
                h.retries = Some(t.parse().with_context(|| format!("`retries: {t}`"))?);
            }
            "disable" if matches!(value, Value::Bool(true)) => return Ok(None),
            other => bail!("healthcheck `{other}` is not supported"),
        }
    }
    match h.test.first().map(String::as_str) {
        Some("NONE") => Ok(None),
        Some("CMD") => {
            h.test.remove(0);
            Ok(Some(h))
        }
        Some("CMD-SHELL") if h.test.len() == 2 => {
            h.test = vec!["sh".into(), "-c".into(), h.test[1].clone()];
            Ok(Some(h))
        }
        _ => bail!("`test` must start with CMD, CMD-SHELL or NONE"),
    }
}

fn volume(v: &str) -> anyhow::Result<Volume> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => bail!(
            "volume `{v}`: expected SOURCE:TARGET[:MODE] (named or anonymous volumes are not supported)"
        ),
    };
    Ok(Volume {
        source: source.to_owned(),
        target: target.to_owned(),
        read_only: mode.split(',').any(|m| m == "ro"),
    })
}

fn depends_on(v: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Sequence(items) => {
            for i in items {
                out.insert(scalar(i)?, "service_started".to_owned());
            }
        }
        Value::Mapping(map) => {
            for (k, body) in map {
                let condition = body
                    .get("condition")
                    .map(scalar)
                    .transpose()?
                    .unwrap_or_else(|| "service_started".to_owned());
                out.insert(scalar(k)?, condition);
            }
        }
        _ => bail!("must be a list or a mapping"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    const BASE: &str = r#"
x-env: &env
  A: ${A:-a}
  SECRET: ${REPRO_SECRET:-s}
services:
  svc:
    image: img:${TAG:-1}
    init: true
    command: ["run", "--x=${X:-1}"]
    environment:
      <<: *env
      B: 2
    volumes:
      - ./run/f:/etc/f:ro
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "curl", "-f", "http://127.0.0.1:1/health"]
      interval: 2s
      retries: 3
  db:
    image: db
    healthcheck:
      test: redis-cli ping
"#;

    #[test]
    fn anchors_merge_keys_and_interpolation_are_applied() {
        let c = parse(BASE, &none).unwrap();
        let svc = &c.services["svc"];
        assert_eq!(svc.image.as_deref(), Some("img:1"));
        assert_eq!(
            svc.command.as_deref(),
            Some(&["run".to_owned(), "--x=1".to_owned()][..])
        );
        assert_eq!(svc.environment["A"].value, "a");
        assert_eq!(svc.environment["B"].value, "2");
        assert_eq!(svc.environment["SECRET"].refs, ["REPRO_SECRET"]);
        assert_eq!(svc.depends_on["db"], "service_healthy");
        let h = svc.healthcheck.as_ref().unwrap();
        assert_eq!(h.test, ["curl", "-f", "http://127.0.0.1:1/health"]);
        assert_eq!(h.interval, Some(Duration::from_secs(2)));
        assert_eq!(h.retries, Some(3));
        assert!(svc.volumes[0].read_only);
        assert_eq!(
            c.services["db"].healthcheck.as_ref().unwrap().test,
            ["sh", "-c", "redis-cli ping"]
        );
    }

    #[test]
    fn an_override_replaces_scalars_and_merges_maps_by_key() {
        let base = parse(BASE, &none).unwrap();
        let over = parse(
            "services:\n  svc:\n    command: [stub]\n    environment: [B=3, C=4]\n    volumes: ['./g:/etc/f']\n",
            &none,
        )
        .unwrap();
        let merged = base.merge(over);
        let svc = &merged.services["svc"];
        assert_eq!(svc.image.as_deref(), Some("img:1"));
        assert_eq!(svc.command.as_deref(), Some(&["stub".to_owned()][..]));
        assert_eq!(svc.environment["A"].value, "a");
        assert_eq!(svc.environment["B"].value, "3");
        assert_eq!(svc.environment["C"].value, "4");
        assert_eq!(svc.volumes.len(), 1);
        assert_eq!(svc.volumes[0].source, "./g");
    }

    #[test]
    fn a_setting_without_a_kubernetes_mapping_is_an_error_naming_it() {
        let err = parse("services:\n  s:\n    ports: ['80:80']\n", &none).unwrap_err();
        let shown = format!("{err:#}");
        assert!(
            shown.contains("service `s`") && shown.contains("`ports`"),
            "{shown}"
        );
        let err = parse("services: {}\nnetworks: {}\n", &none).unwrap_err();
        assert!(format!("{err:#}").contains("`networks`"));
    }

    #[test]
    fn a_missing_required_variable_names_the_variable_and_the_field() {
        let err = parse("services:\n  g:\n    image: ${TYK_IMAGE:?set it}\n", &none).unwrap_err();
        let shown = format!("{err:#}");
        assert!(
            shown.contains("`image`") && shown.contains("TYK_IMAGE is required: set it"),
            "{shown}"
        );
    }
}
