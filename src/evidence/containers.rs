//! Docker API calls behind the evidence: find a compose service's container by its labels,
//! read its image identity, and copy (compressed, bounded) or tail its log. Every call has a
//! timeout.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use futures::StreamExt;

use super::logfile::{LogFileStats, LogFileWriter};
pub use crate::summary::environment::ServiceEvidence;
use crate::telemetry::Secret;

/// Bound on one Docker API call (list, inspect, stats).
pub(crate) const DOCKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on reading one container's whole log.
pub(crate) const LOG_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Compose label naming the project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// Compose label naming the service.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// Compose label numbering a service's containers (1, 2, … with `--scale`).
pub const CONTAINER_NUMBER_LABEL: &str = "com.docker.compose.container-number";

/// Every container (running or not) of `service` in compose project `project`.
pub(crate) async fn list_service(
    docker: &Docker,
    project: &str,
    service: &str,
) -> anyhow::Result<Vec<ContainerSummary>> {
    let mut filters = HashMap::new();
    filters.insert(
        "label",
        vec![
            format!("{PROJECT_LABEL}={project}"),
            format!("{SERVICE_LABEL}={service}"),
        ],
    );
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.list_containers(Some(options)))
        .await
        .map_err(|_| anyhow!("Docker did not list containers within 10 s"))?
        .context("Docker container list failed")
}

/// The id of `service`'s container in compose project `project` (a running one preferred,
/// else the newest).
pub(crate) async fn find_container(
    docker: &Docker,
    project: &str,
    service: &str,
) -> anyhow::Result<String> {
    let mut found = list_service(docker, project, service).await?;
    found.sort_by_key(|c| {
        let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
        (running, c.created.unwrap_or(0))
    });
    found.pop().and_then(|c| c.id).ok_or_else(|| {
        anyhow!(
            "no container for service `{service}` in compose project `{project}` (labels \
             {PROJECT_LABEL}/{SERVICE_LABEL}); is the stack up under that project name?"
        )
    })
}

/// Image name, image id and repo digests of container `id` (an id or a name), and its compose
/// container number.
pub(crate) async fn inspect_service(
    docker: &Docker,
    id: &str,
) -> anyhow::Result<(ServiceEvidence, Option<u32>)> {
    let container = tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.inspect_container(id, None))
        .await
        .map_err(|_| anyhow!("Docker did not inspect container {id} within 10 s"))?
        .with_context(|| format!("Docker could not inspect container {id}"))?;
    let image_id = container.image.clone();
    let config = container.config.unwrap_or_default();
    let number = config
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTAINER_NUMBER_LABEL))
        .and_then(|n| n.parse().ok());
    let mut evidence = ServiceEvidence {
        image: config.image,
        image_id: image_id.clone(),
        container_id: Some(container.id.unwrap_or_else(|| id.to_owned())),
        ..Default::default()
    };
    if let Some(image_id) = image_id {
        let image = tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.inspect_image(&image_id))
            .await
            .map_err(|_| anyhow!("Docker did not inspect image {image_id} within 10 s"))?
            .with_context(|| format!("Docker could not inspect image {image_id}"))?;
        evidence.repo_digests = image.repo_digests.unwrap_or_default();
    }
    Ok((evidence, number))
}

/// The last `n` lines of container `id`'s stdout and stderr, redacted.
pub(crate) async fn tail_lines(
    docker: &Docker,
    id: &str,
    n: usize,
    secrets: &[Secret],
) -> anyhow::Result<Vec<String>> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut lines = LineSplitter::default();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + LOG_FETCH_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(anyhow!("Docker log fetch of {id} exceeded 60 s")),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(anyhow!("Docker log fetch of {id} failed: {e}")),
            Ok(Some(Ok(chunk))) => lines.push(chunk.as_ref(), |l| out.push(redact(l, secrets))),
        }
    }
    lines.flush(|l| out.push(redact(l, secrets)));
    let skip = out.len().saturating_sub(n);
    Ok(out.split_off(skip))
}

/// Outcome of copying one container log to a file.
#[derive(Debug, Default)]
pub(crate) struct LogCopy {
    /// What was written (lines kept and left out, compressed size).
    pub stats: LogFileStats,
    /// Why the copy ended early or the file is incomplete, if so (the timeline saw every line
    /// that arrived).
    pub error: Option<String>,
}

/// Streams container `id`'s whole log, with docker's receive timestamps, redacted, into `path`
/// (gzip, bounded: see [`LogFileWriter`]), calling `on_line` for every line, also those the file
/// leaves out.
pub(crate) async fn copy_log(
    docker: &Docker,
    id: &str,
    path: &Path,
    secrets: &[Secret],
    mut on_line: impl FnMut(&str),
) -> anyhow::Result<LogCopy> {
    let mut writer = Some(LogFileWriter::create(path)?);
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut copy = LogCopy::default();
    let mut splitter = LineSplitter::default();
    let mut pending: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + LOG_FETCH_TIMEOUT;
    let mut writer_failed = false;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                copy.error = Some(format!(
                    "log fetch exceeded 60 s; {} is incomplete",
                    path.display()
                ));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                copy.error = Some(format!(
                    "log fetch failed: {e}; {} is incomplete",
                    path.display()
                ));
                break;
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        splitter.push(chunk.as_ref(), |l| pending.push(redact(l, secrets)));
        write_lines(&mut writer, &mut pending, &mut writer_failed, &mut on_line).await;
    }
    splitter.flush(|l| pending.push(redact(l, secrets)));
    write_lines(&mut writer, &mut pending, &mut writer_failed, &mut on_line).await;
    if let Some(writer) = writer {
        match writer.finish().await {
            Ok(stats) => copy.stats = stats,
            // The writer's own error names the file; it wins over a fetch error.
            Err(e) => copy.error = Some(format!("{e:#}")),
        }
    }
    Ok(copy)
}

/// Hands lines to the timeline and to the file; after a write error only to the timeline.
async fn write_lines(
    writer: &mut Option<LogFileWriter>,
    lines: &mut Vec<String>,
    failed: &mut bool,
    on_line: &mut impl FnMut(&str),
) {
    for line in lines.drain(..) {
        on_line(&line);
        if *failed {
            continue;
        }
        if let Some(w) = writer.as_mut()
            && w.push(line).await.is_err()
        {
            // finish() reports the cause.
            *failed = true;
        }
    }
}

fn redact(line: &str, secrets: &[Secret]) -> String {
    let refs: Vec<&str> = secrets.iter().map(Secret::expose).collect();
    crate::telemetry::redact(line, &refs)
}

/// Joins log chunks into whole lines: Docker frames usually hold one line, but long lines are
/// split across frames and a frame may hold several.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes, calling `emit` for every line they complete (without `\n` or `\r`).
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..at]);
            emit_line(&self.partial, &mut emit);
            self.partial.clear();
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Emits a last line that had no newline.
    pub fn flush(&mut self, mut emit: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            emit_line(&self.partial, &mut emit);
            self.partial.clear();
        }
    }
}

fn emit_line(bytes: &[u8], emit: &mut impl FnMut(&str)) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    emit(&String::from_utf8_lossy(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitter_joins_split_lines_and_splits_joined_ones() {
        let mut lines = Vec::new();
        let mut s = LineSplitter::default();
        s.push(b"one\ntw", |l| lines.push(l.to_owned()));
        s.push(b"o\r\nthree\nfour", |l| lines.push(l.to_owned()));
        s.flush(|l| lines.push(l.to_owned()));
        assert_eq!(lines, ["one", "two", "three", "four"]);
    }

    #[test]
    fn redact_hides_configured_secrets_in_log_lines() {
        let out = redact("secret=abc123 ok", &[Secret::new("abc123")]);
        assert_eq!(out, "secret=*** ok");
    }
}
