//! Placeholder until the evidence helper's version lands.
/// Placeholder.
pub struct EvidenceTarget {
    pub project: String,
    pub gateway_service: String,
    pub services: Vec<String>,
}
/// Placeholder.
pub struct Evidence;
/// Placeholder.
pub struct StatsSampler;
impl Evidence {
    /// Placeholder.
    pub async fn connect(_t: EvidenceTarget) -> Option<Evidence> {
        None
    }
    /// Placeholder.
    pub async fn last_log_lines(&self, _s: &str, _n: usize) -> anyhow::Result<Vec<String>> {
        Ok(vec![])
    }
    /// Placeholder.
    pub fn start_sampling(&self, _e: std::time::Duration) -> StatsSampler {
        StatsSampler
    }
    /// Placeholder.
    pub async fn finish(self, _s: Option<StatsSampler>, _d: &std::path::Path) -> serde_json::Value {
        serde_json::Value::Null
    }
}
