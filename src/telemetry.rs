//! Logging setup shared by every subcommand: `tracing` to stderr, filtered by `RUST_LOG`.

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

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_every_secret_and_keeps_the_rest() {
        let text = "secret=352d20ee67be67f6340b4c0605b044bc node=topsecret";
        let out = super::redact(text, &["352d20ee67be67f6340b4c0605b044bc", "topsecret", ""]);
        assert_eq!(out, "secret=*** node=***");
    }
}
