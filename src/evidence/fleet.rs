//! Several containers of one compose service (`up --scale gateway=N`, `make repro GATEWAYS=N`):
//! finding them in a stable order, and the names their evidence goes under.
//!
//! Order: compose's `com.docker.compose.container-number` label (1, 2, …), then the name, so
//! "gateway 2" is the same container for the runner's URLs, the log files and the summary.
//! Log names: `gateway` alone keeps `gateway.log.gz`; with several, `gateway-1.log.gz`, … by
//! position in that order.

use std::time::Duration;

use anyhow::bail;
use bollard::models::ContainerSummary;

use super::Evidence;
use super::containers::{CONTAINER_NUMBER_LABEL, PROJECT_LABEL, SERVICE_LABEL, list_service};

/// Pause between two looks while waiting for the containers to exist.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// One container of a scaled compose service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayContainer {
    /// Container name without Docker's leading `/`, e.g. `proj-gateway-2` (Compose v2) or
    /// `proj_gateway_2` (v1.29); resolvable as a host name on the project's network.
    pub name: String,
    /// Full container id.
    pub id: String,
    /// Compose's container number (label `com.docker.compose.container-number`), when set.
    pub number: Option<u32>,
    /// Its IP address on the compose project's network (preferred) or its first network, when
    /// it has one: the address to measure it at. Names are not enough: a long project name
    /// makes a container name longer than a DNS label may be (63 characters).
    pub address: Option<String>,
}

impl GatewayContainer {
    /// The container a `docker ps` row describes; `None` without an id or a name.
    pub(crate) fn from_summary(c: &ContainerSummary) -> Option<Self> {
        let name = c
            .names
            .as_ref()?
            .first()?
            .trim_start_matches('/')
            .to_owned();
        let number = c
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTAINER_NUMBER_LABEL))
            .and_then(|n| n.trim().parse().ok());
        let project = c.labels.as_ref().and_then(|l| l.get(PROJECT_LABEL));
        let networks: Vec<(&String, String)> = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|n| {
                n.iter()
                    .filter_map(|(name, net)| {
                        let ip = net.ip_address.as_deref().filter(|ip| !ip.is_empty())?;
                        Some((name, ip.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let address = networks
            .iter()
            .find(|(name, _)| project.is_some_and(|p| name.starts_with(p.as_str())))
            .or(networks.first())
            .map(|(_, ip)| ip.clone());
        Some(GatewayContainer {
            name,
            id: c.id.clone()?,
            number,
            address,
        })
    }
}

/// Sorts by container number (numbered ones first), then by name.
pub fn order_containers(mut containers: Vec<GatewayContainer>) -> Vec<GatewayContainer> {
    containers.sort_by(|a, b| {
        (a.number.is_none(), a.number, &a.name).cmp(&(b.number.is_none(), b.number, &b.name))
    });
    containers
}

/// The log name (and file stem) of gateway `position` (1-based) of `count`: the service name
/// alone with one container, `<service>-<position>` with several.
pub fn log_name(service: &str, position: usize, count: usize) -> String {
    if count <= 1 {
        service.to_owned()
    } else {
        format!("{service}-{position}")
    }
}

/// "gateway 2 (container `proj-gateway-2`)", for errors and reasons.
pub fn shown_gateway(position: usize, container: &str) -> String {
    format!("gateway {position} (container `{container}`)")
}

impl Evidence {
    /// The `expected` containers of compose service `service` in the target's project, in
    /// gateway order (container number, then name). Waits up to `wait` for that many to exist
    /// (running or not: a gateway that died at start is still one to address and report);
    /// more than `expected` is an error at once, fewer after `wait`, naming those found.
    pub async fn discover_gateways(
        &self,
        service: &str,
        expected: usize,
        wait: Duration,
    ) -> anyhow::Result<Vec<GatewayContainer>> {
        let project = &self.target.project;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let listed = list_service(&self.docker, project, service).await?;
            let found = order_containers(
                listed
                    .iter()
                    .filter_map(GatewayContainer::from_summary)
                    .collect(),
            );
            if found.len() == expected {
                return Ok(found);
            }
            let names = || {
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            if found.len() > expected {
                bail!(
                    "{} containers of service `{service}` in compose project `{project}` ({}), \
                     expected {expected}: GATEWAYS (--gateway-replicas) must match the \
                     `--scale {service}=N` the stack was started with",
                    found.len(),
                    names()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} of the {expected} containers of service `{service}` in compose project \
                     `{project}` exist after {:.0} s (labels {PROJECT_LABEL}/{SERVICE_LABEL}; \
                     found: {}): was the stack started with `up --scale {service}={expected}`?",
                    found.len(),
                    wait.as_secs_f64(),
                    names()
                );
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    /// Evidence is collected per container from now on: `containers` in gateway order (as
    /// [`Evidence::discover_gateways`] returns them). With one or none, a run's evidence keeps
    /// the one-gateway layout (`gateway.log.gz`, top-level `gateway_stats`).
    pub fn set_gateway_containers(&mut self, containers: &[GatewayContainer]) {
        self.target.gateway_containers = containers.iter().map(|c| c.name.clone()).collect();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn row(name: &str, number: Option<&str>) -> ContainerSummary {
        ContainerSummary {
            id: Some(format!("id-{name}")),
            names: Some(vec![format!("/{name}")]),
            labels: number
                .map(|n| HashMap::from([(CONTAINER_NUMBER_LABEL.to_owned(), n.to_owned())])),
            ..Default::default()
        }
    }

    #[test]
    fn containers_are_ordered_by_their_compose_number_not_by_name() {
        // Plain name order would put 10 before 2.
        let rows = [
            row("p-gateway-10", Some("10")),
            row("p-gateway-2", Some("2")),
            row("stray", None),
            row("p-gateway-1", Some("1")),
        ];
        let ordered = order_containers(
            rows.iter()
                .filter_map(GatewayContainer::from_summary)
                .collect(),
        );
        let names: Vec<&str> = ordered.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["p-gateway-1", "p-gateway-2", "p-gateway-10", "stray"]
        );
        assert_eq!(ordered[0].id, "id-p-gateway-1");
        assert_eq!(ordered[2].number, Some(10));
        assert_eq!(ordered[3].number, None);
    }

    #[test]
    fn a_row_without_a_name_or_with_a_bad_number_is_handled() {
        let nameless = ContainerSummary {
            id: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(GatewayContainer::from_summary(&nameless), None);
        let odd = GatewayContainer::from_summary(&row("p_gateway_1", Some("one")));
        assert_eq!(
            odd.map(|c| (c.name, c.number)),
            Some(("p_gateway_1".into(), None))
        );
    }

    #[test]
    fn compose_v1_container_names_with_underscores_make_valid_gateway_urls() {
        // The runner addresses each gateway as http://<container name>:<port>.
        for name in ["p_gateway_1", "p-gateway-12"] {
            let url = url::Url::parse(&format!("http://{name}:8080/tyk/keys")).expect("url");
            assert_eq!(url.host_str(), Some(name));
        }
    }

    #[test]
    fn one_gateway_keeps_its_log_name_and_several_are_numbered_from_one() {
        assert_eq!(log_name("gateway", 1, 1), "gateway");
        assert_eq!(log_name("gateway", 1, 0), "gateway");
        assert_eq!(log_name("gateway", 1, 3), "gateway-1");
        assert_eq!(log_name("gateway", 3, 3), "gateway-3");
        assert_eq!(
            shown_gateway(2, "p-gateway-2"),
            "gateway 2 (container `p-gateway-2`)"
        );
    }
}
