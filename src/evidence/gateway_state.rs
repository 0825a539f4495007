//! The gateway container's life as Docker saw it (inspect: status, exit code, OOM kill,
//! restart count), so a gateway that died mid-run is reported as `unresponsive` with what
//! happened to it, never as the lost-trigger hang.
//!
//! [`Evidence::gateway_state`] asks Docker about the gateway service's container,
//! [`Evidence::gateway_states`] about every gateway container of a fleet (one entry each, in
//! gateway order); [`describe_death`] is the pure comparison of the state before the load with
//! the state at its end, for one container.

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use super::Evidence;
use super::containers::{DOCKER_CALL_TIMEOUT, find_container};

/// One look at the gateway container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GatewayState {
    /// Container id (full).
    pub container_id: String,
    /// Container name, without Docker's leading `/`.
    pub name: String,
    /// Docker's status word: `running`, `exited`, `restarting`, `dead`, `paused`, …
    pub status: String,
    /// Whether its main process runs.
    pub running: bool,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// Exit code of the last run (meaningful once it stopped).
    pub exit_code: Option<i64>,
    /// Restarts Docker made (restart policy).
    pub restart_count: i64,
    /// When its current (or last) run started, RFC 3339.
    pub started_at: Option<String>,
    /// When its last run ended, RFC 3339 (`0001-…` while running).
    pub finished_at: Option<String>,
    /// Docker's error text, if any.
    pub error: Option<String>,
}

impl Evidence {
    /// Inspects the gateway service's container (with a fleet: gateway 1's).
    pub async fn gateway_state(&self) -> anyhow::Result<GatewayState> {
        let id = match self.target.gateway_containers.first() {
            Some(name) => name.clone(),
            None => {
                find_container(
                    &self.docker,
                    &self.target.project,
                    &self.target.gateway_service,
                )
                .await?
            }
        };
        inspect_state(&self.docker, &id).await
    }

    /// One look per gateway container, in gateway order (`EvidenceTarget::gateway_containers`);
    /// with none named, the gateway service's container as [`Evidence::gateway_state`] finds it.
    /// An entry is an error when that container could not be inspected (e.g. it was removed).
    pub async fn gateway_states(&self) -> Vec<anyhow::Result<GatewayState>> {
        if self.target.gateway_containers.is_empty() {
            return vec![self.gateway_state().await];
        }
        let looks = self
            .target
            .gateway_containers
            .iter()
            .map(|name| inspect_state(&self.docker, name));
        futures::future::join_all(looks).await
    }
}

/// Inspects container `id` (an id or a name).
async fn inspect_state(docker: &bollard::Docker, id: &str) -> anyhow::Result<GatewayState> {
    let inspected = tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.inspect_container(id, None))
        .await
        .map_err(|_| anyhow!("Docker did not inspect container {id} within 10 s"))?
        .with_context(|| format!("Docker could not inspect container {id}"))?;
    let state = inspected.state.unwrap_or_default();
    Ok(GatewayState {
        container_id: inspected.id.unwrap_or_else(|| id.to_owned()),
        name: inspected
            .name
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        status: state
            .status
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
        running: state.running.unwrap_or(false),
        oom_killed: state.oom_killed.unwrap_or(false),
        exit_code: state.exit_code,
        restart_count: inspected.restart_count.unwrap_or(0),
        started_at: state.started_at,
        finished_at: state.finished_at,
        error: state.error.filter(|e| !e.is_empty()),
    })
}

/// What a non-zero exit code usually means.
fn exit_meaning(code: i64) -> &'static str {
    match code {
        137 => " (SIGKILL: `docker kill`, the OOM killer or a hard stop)",
        143 => " (SIGTERM)",
        139 => " (SIGSEGV: the gateway crashed)",
        134 => " (SIGABRT: the gateway aborted)",
        2 => " (a Go panic or fatal error)",
        _ => "",
    }
}

/// How the container died or came back during the run, in words for the verdict's reason;
/// `None` when it ran through (same run as before the load, still running).
pub fn describe_death(before: Option<&GatewayState>, after: &GatewayState) -> Option<String> {
    let short: String = after.container_id.chars().take(12).collect();
    let container = format!("container {short}");
    if after.oom_killed {
        return Some(format!(
            "{container} was OOM-killed (status {}, exit code {}{})",
            after.status,
            after.exit_code.unwrap_or(137),
            after
                .finished_at
                .as_deref()
                .map(|t| format!(", at {t}"))
                .unwrap_or_default()
        ));
    }
    if !after.running {
        let code = after.exit_code.unwrap_or(-1);
        return Some(format!(
            "{container} {} with exit code {code}{}{}{}",
            if after.status == "exited" {
                "exited".to_owned()
            } else {
                format!("is {}", after.status)
            },
            exit_meaning(code),
            after
                .finished_at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default(),
            after
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    let before = before?;
    let restarts = after.restart_count - before.restart_count;
    let replaced = before.container_id != after.container_id;
    if restarts > 0 || replaced || before.started_at != after.started_at {
        return Some(format!(
            "{container} restarted during the run ({}; last exit code {}, started again at {})",
            if replaced {
                "a new container replaced the one that served the load".to_owned()
            } else {
                format!(
                    "restart count {} → {}",
                    before.restart_count, after.restart_count
                )
            },
            after.exit_code.unwrap_or(0),
            after.started_at.as_deref().unwrap_or("?")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> GatewayState {
        GatewayState {
            container_id: "0123456789abcdef0123".into(),
            status: "running".into(),
            running: true,
            exit_code: Some(0),
            started_at: Some("2026-12-01T10:00:00Z".into()),
            finished_at: Some("0001-01-01T00:00:00Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_that_ran_through_is_no_death() {
        assert_eq!(describe_death(Some(&running()), &running()), None);
        assert_eq!(describe_death(None, &running()), None);
    }

    #[test]
    fn a_killed_container_names_its_exit_code_and_signal() {
        let after = GatewayState {
            status: "exited".into(),
            running: false,
            exit_code: Some(137),
            finished_at: Some("2026-12-01T10:00:12Z".into()),
            ..running()
        };
        let text = describe_death(Some(&running()), &after).unwrap();
        assert!(
            text.contains("container 0123456789ab exited with exit code 137"),
            "{text}"
        );
        assert!(
            text.contains("SIGKILL") && text.contains("10:00:12"),
            "{text}"
        );
    }

    #[test]
    fn an_oom_kill_says_so() {
        let after = GatewayState {
            status: "exited".into(),
            running: false,
            oom_killed: true,
            exit_code: Some(137),
            ..running()
        };
        let text = describe_death(Some(&running()), &after).unwrap();
        assert!(text.contains("OOM-killed"), "{text}");
    }

    #[test]
    fn a_restart_is_seen_from_the_count_or_the_start_time() {
        let after = GatewayState {
            restart_count: 1,
            exit_code: Some(2),
            started_at: Some("2026-12-01T10:00:20Z".into()),
            ..running()
        };
        let text = describe_death(Some(&running()), &after).unwrap();
        assert!(
            text.contains("restarted during the run") && text.contains("0 → 1"),
            "{text}"
        );
        let replaced = GatewayState {
            container_id: "ffff".into(),
            ..running()
        };
        assert!(
            describe_death(Some(&running()), &replaced)
                .unwrap()
                .contains("new container")
        );
    }
}
