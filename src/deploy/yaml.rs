//! A small YAML writer for the manifests that quotes every string a YAML 1.1 reader could
//! take for something else. kubectl and the API server read YAML 1.1 (`no`, `on`, `y` are
//! booleans there), while serde_yaml writes YAML 1.2 and leaves `no` bare: Redis's
//! `--protected-mode no` would arrive as `false`. Here a string is plain only when it is
//! letters, digits and `_ . / -`, starts with a letter, `_` or `/`, and is no 1.1 keyword;
//! otherwise double-quoted (JSON escapes are YAML escapes), or a literal block when it is
//! multi-line text.

use serde_json::Value;

/// Words YAML 1.1 reads as booleans or null.
const KEYWORDS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/');
    first_ok
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
}

fn quoted(s: &str) -> String {
    // A JSON string literal is a valid YAML double-quoted scalar.
    serde_json::Value::String(s.to_owned()).to_string()
}

fn scalar(s: &str) -> String {
    if plain_ok(s) { s.to_owned() } else { quoted(s) }
}

/// Multi-line text a literal block holds exactly: no tabs or CRs, no leading space.
fn block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.contains(['\t', '\r'])
        && !s.starts_with([' ', '\n'])
        && s.lines().all(|l| !l.ends_with(' '))
}

fn block(s: &str, indent: usize) -> String {
    let body = s.strip_suffix('\n');
    let (header, text) = match body {
        Some(b) if b.ends_with('\n') => ("|+", s.trim_end_matches('\n')),
        Some(b) => ("|", b),
        None => ("|-", s),
    };
    let pad = " ".repeat(indent);
    let mut out = header.to_owned();
    for line in text.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    if header == "|+" {
        // Keep every trailing newline: the last content line's plus the empty ones.
        let extra = s.len() - s.trim_end_matches('\n').len() - 1;
        out.push_str(&"\n".repeat(extra));
    }
    out
}

fn inline(v: &Value, indent: usize) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if block_ok(s) => Some(block(s, indent)),
        Value::String(s) => Some(scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn write(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                out.push_str(&pad);
                out.push_str(&scalar(k));
                out.push(':');
                match inline(val, indent + 2) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        // Sequences under a key sit at the key's indentation, as kubectl writes.
                        let child = if val.is_array() { indent } else { indent + 2 };
                        write(val, child, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match inline(item, indent + 2) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        // The item's first line goes after the dash, the rest indented under it.
                        let mut inner = String::new();
                        write(item, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(inner.trim_start());
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other, indent).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// One document (without the `---` line).
pub fn to_string(doc: &Value) -> String {
    let mut out = String::new();
    write(doc, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::to_string;

    fn round_trip(v: &Value) -> Value {
        let text = to_string(v);
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    #[test]
    fn yaml_1_1_keywords_and_numbers_stay_strings() {
        let v = json!({ "args": ["redis-server", "--protected-mode", "no", "--save", "", "on", "Y",
                                 "8080", "1e3", "0x1f", "~", "null", "a: b", "#x", "-", "*a", "&a", "!t"] });
        let text = to_string(&v);
        for word in ["\"no\"", "\"on\"", "\"Y\"", "\"8080\"", "\"\"", "\"~\""] {
            assert!(text.contains(word), "{word} not quoted:\n{text}");
        }
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn nested_documents_and_text_blocks_round_trip() {
        let v = json!({
            "apiVersion": "v1",
            "metadata": { "labels": { "app.kubernetes.io/name": "x" }, "name": "n" },
            "spec": {
                "containers": [
                    { "name": "c", "ports": [{ "containerPort": 8080, "name": "p" }], "env": [] },
                    { "name": "d", "command": ["sh", "-c", "until \"$@\"; do sleep 2; done"] },
                ],
                "replicas": 3, "on": true, "empty": {}, "none": null,
            },
            "data": {
                "tyk.conf": "{\n  \"a\": 1\n}\n",
                "no-newline": "a\nb",
                "two-newlines": "a\n\n",
                "blank-line": "a\n\nb\n",
                "tabs": "{\n\t\"x\": 1\n}\n",
            },
        });
        let text = to_string(&v);
        assert!(
            text.contains("tyk.conf: |\n    {\n      \"a\": 1\n    }\n"),
            "{text}"
        );
        assert_eq!(round_trip(&v), v);
    }
}
