//! Compose variable interpolation, as `docker compose` does it before reading a file:
//! `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
//! `${VAR:?message}` / `${VAR?message}` (an error naming VAR), `${VAR:+alt}` / `${VAR+alt}`,
//! and `$$` for a literal `$`. Defaults may themselves hold references (`${A:-${B}}`).
//!
//! Pure: variables come from a lookup function (the process environment overlaid with
//! `manifests --set`), so tests need no environment.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?message}` with VAR unset or empty (or `${VAR?message}` with VAR unset).
    #[error("{var} is required: {message} (set it in the environment or pass --set {var}=VALUE)")]
    Required {
        /// The variable.
        var: String,
        /// The compose file's message, or a generic one.
        message: String,
    },
    /// A `$` not followed by a name, `{`, or `$`; or an unclosed `${`.
    #[error("invalid interpolation `{text}`: write $$ for a literal $")]
    Invalid {
        /// The offending text.
        text: String,
    },
}

/// Interpolates `text` with `lookup` (None = unset). Also returns the variables it referenced,
/// in order, so a caller can tell a value that came from a secret variable.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), InterpolateError> {
    let mut refs = Vec::new();
    let out = expand(text, lookup, &mut refs)?;
    Ok((out, refs))
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    refs: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let invalid = || InterpolateError::Invalid {
            text: text.to_owned(),
        };
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let body_len = closing_brace(&after[1..]).ok_or_else(invalid)?;
                let body = &after[1..1 + body_len];
                out.push_str(&braced(body, text, lookup, refs)?);
                rest = &after[1 + body_len + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
                let name = &after[..len];
                refs.push(name.to_owned());
                out.push_str(&lookup(name).unwrap_or_default());
                rest = &after[len..];
            }
            _ => return Err(invalid()),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the text before the `}` closing a `${`, counting nested `${ … }`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${…}` body: a name, then nothing or one of `:-` `-` `:?` `?` `:+` `+` and a word.
fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    refs: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let invalid = || InterpolateError::Invalid {
        text: whole.to_owned(),
    };
    let name_len = body.find(|c| !is_name_char(c)).unwrap_or(body.len());
    let name = &body[..name_len];
    if !name.chars().next().is_some_and(is_name_start) {
        return Err(invalid());
    }
    refs.push(name.to_owned());
    let value = lookup(name);
    let op = &body[name_len..];
    if op.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, op) = match op.strip_prefix(':') {
        Some(op) => (true, op),
        None => (false, op),
    };
    let mut chars = op.chars();
    let kind = chars.next().ok_or_else(invalid)?;
    let word = chars.as_str();
    // With a colon, empty counts as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match kind {
        '-' if set => Ok(value.unwrap_or_default()),
        '-' => expand(word, lookup, refs),
        '?' if set => Ok(value.unwrap_or_default()),
        '?' => {
            let message = expand(word, lookup, refs)?;
            Err(InterpolateError::Required {
                var: name.to_owned(),
                message: if message.is_empty() {
                    format!("{name} is not set")
                } else {
                    message
                },
            })
        }
        '+' if set => expand(word, lookup, refs),
        '+' => Ok(String::new()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::{InterpolateError, interpolate};

    fn with(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn run(text: &str, pairs: &'static [(&'static str, &'static str)]) -> String {
        interpolate(text, &with(pairs)).unwrap().0
    }

    #[test]
    fn every_compose_form_expands_as_compose_does() {
        let vars: &[(&str, &str)] = &[("A", "x"), ("E", "")];
        assert_eq!(run("plain", vars), "plain");
        assert_eq!(run("$A-${A}", vars), "x-x");
        assert_eq!(run("${UNSET}|$UNSET|", vars), "||");
        assert_eq!(run("${A:-d} ${E:-d} ${U:-d}", vars), "x d d");
        assert_eq!(run("${A-d} ${E-d} ${U-d}", vars), "x  d");
        assert_eq!(run("${A:+alt} ${E:+alt} ${U:+alt}", vars), "alt  ");
        assert_eq!(run("${A+alt} ${E+alt} ${U+alt}", vars), "alt alt ");
        assert_eq!(run("$$A costs $$5", vars), "$A costs $5");
        assert_eq!(run("${U:-${A}/${U2:-z}}", vars), "x/z");
        assert_eq!(run("--rate=${RATE:-500}", vars), "--rate=500");
        assert_eq!(run("${E:-}", vars), "");
        assert_eq!(run("a_$A.b", vars), "a_x.b");
    }

    #[test]
    fn referenced_variables_are_reported_in_order() {
        let (_, refs) = interpolate("${S:-${T}} $U", &with(&[])).unwrap();
        assert_eq!(refs, ["S", "T", "U"]);
    }

    #[test]
    fn a_required_variable_is_named_with_the_files_message() {
        let err = interpolate("${TYK_IMAGE:?set TYK_IMAGE (make sets it)}", &with(&[]));
        assert_eq!(
            err,
            Err(InterpolateError::Required {
                var: "TYK_IMAGE".into(),
                message: "set TYK_IMAGE (make sets it)".into()
            })
        );
        let shown = err.unwrap_err().to_string();
        assert!(shown.contains("TYK_IMAGE is required"), "{shown}");
        assert!(shown.contains("--set TYK_IMAGE=VALUE"), "{shown}");
        // Empty counts as unset with the colon, not without it.
        assert!(interpolate("${V:?}", &with(&[("V", "")])).is_err());
        assert_eq!(run("${V?}", &[("V", "")]), "");
        let bare = interpolate("${V?}", &with(&[])).unwrap_err().to_string();
        assert!(bare.contains("V is not set"), "{bare}");
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in ["$", "a $ b", "${", "${A", "${}", "${1A}", "${A:x}", "$-"] {
            assert!(
                matches!(
                    interpolate(bad, &with(&[])),
                    Err(InterpolateError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
