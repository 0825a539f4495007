//! Which scenario-configuration fields differ between (and within) the sides: runs of
//! different scenarios, or against fleets of different sizes, are not comparable.

use super::ConfigDifference;
use crate::diff::side::{Side, SideRun};
use crate::summary::ScenarioConfig;
use serde::Serialize;

/// Fields that may differ between comparable runs (dotted paths as in `summary.json`, e.g.
/// `config.trigger`). Every other field of [`Comparable`], including any added later, is
/// compared.
pub const MAY_DIFFER: &[&str] = &[];

/// What two runs must share to be compared: their scenario and the size of the fleet they
/// measured. Compared by serialized leaves, so a field added to `ScenarioConfig` or here is
/// compared without touching the comparison (and building one needs every field).
#[derive(Debug, Serialize)]
pub struct Comparable<'a> {
    /// The scenario (`config.*`).
    pub config: &'a ScenarioConfig,
    /// The fleet (`fleet.*`).
    pub fleet: FleetSize,
}

/// The size of the fleet a run measured.
#[derive(Debug, Serialize)]
pub struct FleetSize {
    /// Gateways (`fleet.gateways`; 1 for a run against one gateway, which has no `fleet`).
    pub gateways: u64,
}

impl<'a> Comparable<'a> {
    /// What `run` must share with the runs it is compared with.
    pub fn of(run: &'a SideRun) -> Self {
        Comparable {
            config: &run.config,
            fleet: FleetSize {
                gateways: run.gateways,
            },
        }
    }
}

/// Field-by-field differences of two scenario configurations, in `summary.json` order.
pub fn config_differences(a: &ScenarioConfig, b: &ScenarioConfig) -> Vec<ConfigDifference> {
    serialized_differences(a, b, "config.", MAY_DIFFER)
}

/// Field-by-field differences of what two runs must share ([`Comparable`]).
pub fn run_differences(a: &SideRun, b: &SideRun) -> Vec<ConfigDifference> {
    serialized_differences(&Comparable::of(a), &Comparable::of(b), "", MAY_DIFFER)
}

/// Differences of the serialized forms of `a` and `b` (leaves by dotted path after `prefix`,
/// in field order), except the paths in `may_differ`. A value that cannot be serialized is one
/// difference.
fn serialized_differences<T: Serialize>(
    a: &T,
    b: &T,
    prefix: &str,
    may_differ: &[&str],
) -> Vec<ConfigDifference> {
    let (x, y) = match (leaves(a), leaves(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => {
            let shown = |r: Result<Vec<(String, String)>, serde_json::Error>| match r {
                Ok(_) => "readable".to_owned(),
                Err(e) => format!("unserializable: {e}"),
            };
            return vec![ConfigDifference {
                field: prefix.trim_end_matches('.').to_owned(),
                a: shown(x),
                b: shown(y),
            }];
        }
    };
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let allowed = |path: &str| may_differ.contains(&format!("{prefix}{path}").as_str());
    for (path, va) in &x {
        seen.push(path.as_str());
        let vb = y
            .iter()
            .find(|(p, _)| p == path)
            .map_or_else(|| "absent".to_owned(), |(_, v)| v.clone());
        if *va != vb && !allowed(path) {
            out.push(ConfigDifference {
                field: format!("{prefix}{path}"),
                a: va.clone(),
                b: vb,
            });
        }
    }
    for (path, vb) in &y {
        if !seen.contains(&path.as_str()) && !allowed(path) {
            out.push(ConfigDifference {
                field: format!("{prefix}{path}"),
                a: "absent".into(),
                b: vb.clone(),
            });
        }
    }
    out
}

/// The serialized leaves of `value`, by dotted path, in the order serde writes the fields.
fn leaves<T: Serialize>(value: &T) -> Result<Vec<(String, String)>, serde_json::Error> {
    // `serde_json::Value` sorts keys; reading the text back through `Node` keeps field order.
    let node: Node = serde_json::from_str(&serde_json::to_string(value)?)?;
    let mut out = Vec::new();
    node.flatten("", &mut out);
    Ok(out)
}

/// A serialized value with object keys in their written order; leaves shown as the summary
/// table shows them (numbers as Rust prints them, strings without quotes).
enum Node {
    Leaf(String),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn flatten(self, prefix: &str, out: &mut Vec<(String, String)>) {
        match self {
            Node::Leaf(text) => out.push((prefix.to_owned(), text)),
            Node::Object(fields) => {
                for (key, node) in fields {
                    let path = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    node.flatten(&path, out);
                }
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Leaf(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf("null".into()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            items.push(item);
        }
        Ok(Node::Leaf(serde_json::Value::Array(items).to_string()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Vec::new();
        while let Some((key, node)) = map.next_entry::<String, Node>()? {
            fields.push((key, node));
        }
        Ok(Node::Object(fields))
    }
}

/// Differences between A and B, and within each side (every run must share one scenario and
/// one fleet size).
pub fn side_config_differences(a: &Side, b: &Side) -> Vec<ConfigDifference> {
    let mut out = Vec::new();
    for side in [a, b] {
        if let Some(first) = side.runs.first() {
            for run in &side.runs[1..] {
                for mut d in run_differences(first, run) {
                    d.field = format!(
                        "{} (within {}: {})",
                        d.field, side.label, run.values.run_dir
                    );
                    out.push(d);
                }
            }
        }
    }
    if let (Some(x), Some(y)) = (a.runs.first(), b.runs.first()) {
        out.extend(run_differences(x, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration as it may look once someone adds a field.
    #[derive(Serialize)]
    struct Grown {
        rate_per_s: f64,
        nested: Inner,
        added_later: u32,
    }

    #[derive(Serialize)]
    struct Inner {
        name: String,
        jitter: f64,
    }

    fn grown(added_later: u32, jitter: f64) -> Grown {
        Grown {
            rate_per_s: 10.0,
            nested: Inner {
                name: "seed".into(),
                jitter,
            },
            added_later,
        }
    }

    #[test]
    fn a_field_added_later_is_compared_without_touching_the_comparison() {
        let d = serialized_differences(&grown(1, 0.5), &grown(2, 0.0), "config.", &[]);
        let got: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|d| (d.field.as_str(), d.a.as_str(), d.b.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("config.nested.jitter", "0.5", "0"),
                ("config.added_later", "1", "2"),
            ]
        );
    }

    #[test]
    fn only_the_allow_listed_fields_may_differ() {
        let d = serialized_differences(
            &grown(1, 0.5),
            &grown(2, 0.0),
            "config.",
            &["config.added_later"],
        );
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["config.nested.jitter"]);
        assert!(serialized_differences(&grown(1, 0.5), &grown(1, 0.5), "config.", &[]).is_empty());
    }

    #[test]
    fn every_scenario_config_field_is_compared() {
        let config = crate::summary::set::sample_summary().config;
        let paths: Vec<String> = leaves(&config)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            paths,
            [
                "rate_per_s",
                "duration_s",
                "trigger",
                "deadline_s",
                "stall_timeout_s",
                "request_timeout_s",
                "backoff.name",
                "backoff.initial_ms",
                "backoff.multiplier",
                "backoff.jitter",
                "backoff.max_interval_ms",
                "initial_policies",
            ]
        );
    }
}
