//! Logging setup shared by every subcommand: `tracing` to stderr, filtered by `RUST_LOG`; and
//! the helpers every error text goes through: secret redaction, URL credentials hidden, an
//! error's cause chain on one line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Replaces every occurrence of each non-empty secret in `text` with `***`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    out
}

/// `redis://user:secret@host` → `redis://user:***@host`; a lone userinfo (`redis://secret@host`)
/// may be a password and is hidden whole; URLs without credentials are unchanged. Text that is
/// not a URL is shown unchanged unless it holds an `@`, then not at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return if url.contains('@') {
            "***".to_owned()
        } else {
            url.to_owned()
        };
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    } else if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    } else {
        return url.to_owned();
    }
    parsed.to_string()
}

/// `redis://user:secret@host` → `redis://***@host`: the whole userinfo hidden, for a URL whose
/// user name may itself be sensitive (the stub's Redis). Text that is not a URL is shown
/// unchanged unless it holds an `@`, then not at all.
pub fn redact_userinfo(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return if url.contains('@') {
            "***".to_owned()
        } else {
            url.to_owned()
        };
    };
    if parsed.password().is_none() && parsed.username().is_empty() {
        return url.to_owned();
    }
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("***");
    parsed.to_string()
}

/// The secret in a URL's userinfo: the password, or a lone userinfo (see [`redact_url`]); `""`
/// when there is none.
pub fn url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match parsed.password() {
            Some(password) => password.to_owned(),
            None => parsed.username().to_owned(),
        },
        Err(_) => String::new(),
    }
}

/// A secret value (gateway secret, node secret, token): `Debug` prints `<redacted>`, so a
/// struct holding one can derive `Debug` safely. Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, to send it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A URL that may carry a password in its userinfo (a Redis URL): `Debug` shows it through
/// [`redact_url`], so a struct holding one can derive `Debug` safely.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, to connect with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// An error and its causes on one line, `outer: cause: root`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{redact_url, url_password};

    #[test]
    fn passwords_in_redis_urls_are_hidden() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url("redis://u:pw@h"), "redis://u:***@h");
        assert_eq!(redact_url("redis://pw@h"), "redis://***@h");
        assert_eq!(url_password("redis://u:pw@h/0"), "pw");
        assert_eq!(url_password("redis://h/0"), "");
        assert_eq!(
            redact_url("redis://:s3cret@redis:6379"),
            "redis://:***@redis:6379"
        );
        assert_eq!(redact_url("redis://redis:6379"), "redis://redis:6379");
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_url_debugs_without_its_password() {
        let u = super::SecretUrl::from("redis://app:hunter2@redis:6379".to_owned());
        assert_eq!(format!("{u:?}"), "\"redis://app:***@redis:6379\"");
        assert_eq!(u.expose(), "redis://app:hunter2@redis:6379");
    }

    #[test]
    fn the_error_chain_names_every_cause() {
        let inner = std::io::Error::other("refused");
        let outer = std::io::Error::other(Wrapped(inner));
        assert_eq!(super::error_chain(&outer), "wrapped: refused");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn redact_hides_every_secret_and_keeps_the_rest() {
        let text = "secret=352d20ee67be67f6340b4c0605b044bc node=topsecret";
        let out = super::redact(text, &["352d20ee67be67f6340b4c0605b044bc", "topsecret", ""]);
        assert_eq!(out, "secret=*** node=***");
    }
}
