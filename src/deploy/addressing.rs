//! How the runner addresses each gateway pod on a cluster: a StatefulSet's pods get stable
//! names `<sts>-0 … <sts>-(N-1)`, and a headless Service (`clusterIP: None`) named in the
//! StatefulSet's `serviceName` gives each one a DNS record
//! `<sts>-<i>.<service>.<namespace>.svc.<cluster domain>` pointing at that pod alone, so each
//! gateway is reached directly, never through a load balancer.
//!
//! Pure functions; `super::tests` checks them against a fake of cluster DNS built from the
//! rendered documents.

/// Where the gateway pods are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAddressing<'a> {
    /// The StatefulSet's name (pod `i` is `<statefulset>-<i>`).
    pub statefulset: &'a str,
    /// The headless Service named in the StatefulSet's `serviceName`.
    pub headless_service: &'a str,
    /// Namespace of both.
    pub namespace: &'a str,
    /// The cluster's DNS domain (`cluster.local` unless the cluster was set up otherwise).
    pub cluster_domain: &'a str,
    /// The gateway's port.
    pub port: u16,
    /// The StatefulSet's replicas.
    pub replicas: u32,
}

/// DNS name of pod `index`.
pub fn pod_host(a: &PodAddressing<'_>, index: u32) -> String {
    format!(
        "{}-{index}.{}.{}.svc.{}",
        a.statefulset, a.headless_service, a.namespace, a.cluster_domain
    )
}

/// One base URL per pod, pod 0 first (so "gateway 1" in the runner's messages is pod 0).
pub fn pod_urls(a: &PodAddressing<'_>) -> Vec<String> {
    (0..a.replicas)
        .map(|i| format!("http://{}:{}", pod_host(a, i), a.port))
        .collect()
}

/// Checks an RFC 1123 DNS label (namespaces, Service and StatefulSet names): lowercase
/// letters, digits and `-`, starting and ending with a letter or digit, at most `max` bytes.
pub fn check_dns_label(what: &str, name: &str, max: usize) -> anyhow::Result<()> {
    let ok_edges = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, b)| a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok_edges && ok_chars && name.len() <= max {
        Ok(())
    } else {
        anyhow::bail!(
            "{what} `{name}` is not a DNS label: use lowercase letters, digits and `-`, \
             starting and ending with a letter or digit, at most {max} characters"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{PodAddressing, check_dns_label, pod_urls};

    #[test]
    fn each_pod_gets_its_own_name_under_the_headless_service() {
        let a = PodAddressing {
            statefulset: "gateway",
            headless_service: "gateway-pods",
            namespace: "ns",
            cluster_domain: "cluster.local",
            port: 8080,
            replicas: 3,
        };
        assert_eq!(
            pod_urls(&a),
            [
                "http://gateway-0.gateway-pods.ns.svc.cluster.local:8080",
                "http://gateway-1.gateway-pods.ns.svc.cluster.local:8080",
                "http://gateway-2.gateway-pods.ns.svc.cluster.local:8080",
            ]
        );
        assert!(pod_urls(&PodAddressing { replicas: 0, ..a }).is_empty());
    }

    #[test]
    fn names_that_are_not_dns_labels_are_refused() {
        assert!(check_dns_label("--namespace", "reload-repro", 63).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            let err = check_dns_label("--namespace", bad, 63)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--namespace `"), "{err}");
        }
    }
}
