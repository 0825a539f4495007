//! The policy fetch (protocol §2): `GET {dashboard}/system/policies`, parsed lean, with
//! v2.9.4's failure semantics (any failure keeps the old policies).

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::{HEADER_AUTHORIZATION, HEADER_NODE_ID, HEADER_NONCE};

/// The gateway's client timeout for one policy fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fetch left the known policies as they were (each logged the way Tyk words it).
#[derive(Debug, thiserror::Error)]
pub enum PolicyFetchError {
    /// Network error or timeout.
    #[error("Policy request failed: {0}")]
    Request(String),
    /// The dashboard refused the node secret (403).
    #[error("Policy request login failure (403 from {url}): check --node-secret")]
    Login {
        /// The URL fetched.
        url: String,
    },
    /// The body was not a policy list (or an `_id` was not an ObjectId).
    #[error("Failed to decode policy body (HTTP {status}): {source}")]
    Decode {
        /// HTTP status of the reply.
        status: u16,
        /// The parser's complaint.
        #[source]
        source: PolicyListError,
    },
    /// A 200 with an empty list: v2.9.4 keeps the old policies.
    #[error("Policy list was empty: keeping the policies already loaded")]
    Empty,
}

/// Why a `/system/policies` body is not a policy list.
#[derive(Debug, thiserror::Error)]
pub enum PolicyListError {
    /// Not JSON of the expected shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// One policy's `_id` is not a 24-hex ObjectId (this fails the whole list).
    #[error("policy {index}: _id {shown} is not an ObjectId")]
    ObjectId {
        /// The policy's position in the list.
        index: usize,
        /// The `_id` as it was sent.
        shown: String,
    },
}

/// A parsed policy list: the ids (deduplicated, first wins) and the nonce to echo next time.
#[derive(Debug, Default)]
pub struct PolicySet {
    /// Policy ids keys can be bound to.
    pub ids: HashSet<String>,
    /// The reply's `Nonce`.
    pub nonce: String,
}

/// Only what the stub needs from each policy: allocation per policy stays at one string.
#[derive(Deserialize)]
struct LeanReply {
    #[serde(rename = "Message", alias = "message", alias = "MESSAGE", default)]
    message: Vec<LeanPolicy>,
    #[serde(rename = "Nonce", alias = "nonce", alias = "NONCE", default)]
    nonce: String,
}

#[derive(Deserialize)]
struct LeanPolicy {
    #[serde(default, alias = "ID", alias = "Id")]
    id: String,
    #[serde(rename = "_id", default)]
    object_id: Option<serde_json::Value>,
}

/// Parses a `/system/policies` body. The id is `id` when non-empty (the kit configures
/// `allow_explicit_policy_id: true`), else the ObjectId; an `_id` that is not a 24-hex ObjectId
/// fails the whole list, as on every Tyk version.
pub fn parse_policy_list(body: &[u8]) -> Result<PolicySet, PolicyListError> {
    let reply: LeanReply = serde_json::from_slice(body)?;
    let mut ids = HashSet::with_capacity(reply.message.len());
    for (index, policy) in reply.message.into_iter().enumerate() {
        let object_id = object_id_hex(policy.object_id.as_ref())
            .map_err(|BadObjectId(shown)| PolicyListError::ObjectId { index, shown })?;
        let id = if policy.id.is_empty() {
            object_id
        } else {
            policy.id
        };
        if !id.is_empty() {
            ids.insert(id);
        }
    }
    Ok(PolicySet {
        ids,
        nonce: reply.nonce,
    })
}

/// An `_id` that is not an ObjectId, as shown in the error.
struct BadObjectId(String);

/// `_id` as hex: absent, `null` and `""` give `""`; `{"$oid": …}` is unwrapped.
fn object_id_hex(value: Option<&serde_json::Value>) -> Result<String, BadObjectId> {
    use serde_json::Value;
    let text = match value {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(map)) => match map.get("$oid") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(BadObjectId(Value::Object(map.clone()).to_string())),
        },
        Some(other) => return Err(BadObjectId(other.to_string())),
    };
    if text.is_empty() || (text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit())) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(BadObjectId(format!("{text:?}")))
    }
}

/// Fetches the policy list body once, as one gateway reload does at its start. The status comes
/// back with it: v2.9.4 accepts a parseable list whatever the status (only 403 is special).
pub async fn fetch_policy_body(
    client: &reqwest::Client,
    dashboard: &str,
    node_secret: &str,
    node_id: &str,
    nonce: &str,
) -> Result<(u16, bytes::Bytes), PolicyFetchError> {
    // Joined blindly, like the gateway: a trailing '/' in the flag gives '//system/policies'.
    let url = format!("{dashboard}/system/policies");
    let reply = client
        .get(&url)
        .header(HEADER_AUTHORIZATION, node_secret)
        .header(HEADER_NODE_ID, node_id)
        .header(HEADER_NONCE, nonce)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            PolicyFetchError::Request(format!("{url}: {}", crate::telemetry::error_chain(&e)))
        })?;
    let status = reply.status().as_u16();
    if status == 403 {
        return Err(PolicyFetchError::Login { url });
    }
    let body = reply.bytes().await.map_err(|e| {
        PolicyFetchError::Request(format!("{url}: {}", crate::telemetry::error_chain(&e)))
    })?;
    Ok((status, body))
}

/// Parses a fetched body with v2.9.4's rules: a decode failure or an empty list keeps the old
/// policies. CPU-bound (tens of milliseconds at 80k policies): call it off the async workers.
pub fn parse_fetched(status: u16, body: &[u8]) -> Result<PolicySet, PolicyFetchError> {
    let set =
        parse_policy_list(body).map_err(|source| PolicyFetchError::Decode { status, source })?;
    if set.ids.is_empty() {
        return Err(PolicyFetchError::Empty);
    }
    Ok(set)
}

/// Fetches and parses the policy list once (the parse on a blocking thread).
pub async fn fetch_policies(
    client: &reqwest::Client,
    dashboard: &str,
    node_secret: &str,
    node_id: &str,
    nonce: &str,
) -> Result<PolicySet, PolicyFetchError> {
    let (status, body) = fetch_policy_body(client, dashboard, node_secret, node_id, nonce).await?;
    tokio::task::spawn_blocking(move || parse_fetched(status, &body))
        .await
        .map_err(|e| PolicyFetchError::Request(format!("parser task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_ids_and_nonce_and_ignores_other_fields() {
        let body = br#"{"Status":"OK","Message":[
            {"id":"a","_id":"5e0000000000000000000001","name":"n","org_id":"monarch","access_rights":{}},
            {"id":"b","name":"m"},
            {"id":"a","name":"duplicate"}
        ],"Nonce":"n1"}"#;
        let set = parse_policy_list(body).unwrap();
        assert_eq!(set.nonce, "n1");
        assert_eq!(set.ids.len(), 2);
        assert!(set.ids.contains("a") && set.ids.contains("b"));
    }

    #[test]
    fn parse_falls_back_to_the_object_id_when_id_is_empty() {
        let body = br#"{"message":[{"_id":{"$oid":"5E0000000000000000000002"}},{"_id":null,"id":"x"}],"nonce":""}"#;
        let set = parse_policy_list(body).unwrap();
        assert!(set.ids.contains("5e0000000000000000000002"));
        assert!(set.ids.contains("x"));
    }

    #[test]
    fn parse_rejects_the_whole_list_for_one_bad_object_id() {
        let body = br#"{"Message":[{"id":"a"},{"id":"b","_id":"not-an-object-id"}]}"#;
        let err = parse_policy_list(body).unwrap_err();
        assert!(err.to_string().contains("policy 1"), "{err}");
    }

    #[test]
    fn parse_rejects_malformed_json() {
        assert!(parse_policy_list(b"{\"Message\":[").is_err());
    }

    #[test]
    fn parse_handles_a_hundred_thousand_policies() {
        let mut body = String::from("{\"Status\":\"OK\",\"Message\":[");
        for i in 0..100_000 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"id\":\"{i:032x}\",\"name\":\"policy-name-{i}\",\"org_id\":\"monarch\"}}"
            ));
        }
        body.push_str("],\"Nonce\":\"nonce\"}");
        let set = parse_policy_list(body.as_bytes()).unwrap();
        assert_eq!(set.ids.len(), 100_000);
    }
}
