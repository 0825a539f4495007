//! Wire facts shared by the dashboard mock, the stub gateway and the runner.
//!
//! Everything here comes from `tyk-protocol.md` (§2 policy fetch, §4 triggers, §6 key creation)
//! plus the mock's own admin API (`/repro/*`). Pure data: no tokio, no HTTP client.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Redis pub/sub channel the gateway subscribes to for reload notifications (§4).
pub const NOTIFICATION_CHANNEL: &str = "tyk.cluster.notifications";
/// Signature algorithm number the gateway expects for signed notifications (§4).
pub const SIGNATURE_ALGORITHM: i64 = 5;

/// Header carrying the node secret on dashboard requests (raw value, no scheme word).
pub const HEADER_AUTHORIZATION: &str = "authorization";
/// Header carrying the gateway's node id, `solo-<uuid4>` when unregistered.
pub const HEADER_NODE_ID: &str = "x-tyk-nodeid";
/// Header echoing the last `Nonce` the gateway stored (empty on the first call).
pub const HEADER_NONCE: &str = "x-tyk-nonce";
/// Header carrying the gateway secret on control-API requests.
pub const HEADER_GATEWAY_AUTH: &str = "x-tyk-authorization";
/// Header carrying the optional admin token on the mock's `/repro/*` routes.
pub const HEADER_ADMIN_TOKEN: &str = "x-repro-token";

/// Control-API body for a missing or wrong `X-Tyk-Authorization` (403).
pub const MSG_ADMIN_FORBIDDEN: &str =
    "Attempted administrative access with invalid or missing key!";
/// Control-API body for a wrong method (405).
pub const MSG_METHOD_NOT_SUPPORTED: &str = "Method not supported";
/// Control-API body for an unparseable key-create body (500).
pub const MSG_UNMARSHALLING_FAILED: &str = "Unmarshalling failed";
/// Prefix of the 500 message for a policy the gateway has not loaded yet (§6).
pub const MSG_POLICY_NOT_FOUND_PREFIX: &str = "Failed to create key - policy not found";

/// The 500 message the gateway sends for an unknown policy id (§6).
pub fn policy_not_found_message(policy_id: &str) -> String {
    format!("{MSG_POLICY_NOT_FOUND_PREFIX}: \"{policy_id}\"")
}

/// Commands that queue a reload on a gateway (§4). Anything else is ignored.
pub const RELOAD_COMMANDS: [&str; 5] = [
    "ApiUpdated",
    "ApiRemoved",
    "ApiAdded",
    "PolicyChanged",
    "GroupReload",
];

/// A message on `tyk.cluster.notifications` (§4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened, e.g. `PolicyChanged`.
    pub command: String,
    /// Free text; signed together with the command.
    #[serde(default)]
    pub payload: String,
    /// Lowercase hex SHA-256 of `command + payload + node_secret`.
    #[serde(default)]
    pub signature: String,
    /// Signature algorithm; 5 means the SHA-256 scheme above.
    #[serde(default)]
    pub algorithm: i64,
}

impl Notification {
    /// A notification signed with the node secret, valid whether or not the gateway checks.
    pub fn signed(command: &str, payload: &str, node_secret: &str) -> Self {
        Self {
            command: command.to_owned(),
            payload: payload.to_owned(),
            signature: sign_notification(command, payload, node_secret),
            algorithm: SIGNATURE_ALGORITHM,
        }
    }

    /// Whether the signature matches the node secret (§4: algorithm 5, SHA-256).
    pub fn signature_valid(&self, node_secret: &str) -> bool {
        self.algorithm == SIGNATURE_ALGORITHM
            && self.signature == sign_notification(&self.command, &self.payload, node_secret)
    }

    /// Whether this command queues a reload.
    pub fn queues_reload(&self) -> bool {
        RELOAD_COMMANDS.contains(&self.command.as_str())
    }
}

/// `lowercase hex SHA-256(command + payload + node_secret)`.
pub fn sign_notification(command: &str, payload: &str, node_secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(command.as_bytes());
    hasher.update(payload.as_bytes());
    hasher.update(node_secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// One policy as the gateway reads it from `/system/policies` (only the fields it needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy id keys are bound to (used with `allow_explicit_policy_id: true`).
    #[serde(alias = "ID", alias = "Id")]
    pub id: String,
    /// Mongo ObjectId as 24 hex characters.
    #[serde(rename = "_id", default)]
    pub object_id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Organisation the policy belongs to.
    #[serde(default, alias = "OrgID", alias = "orgid")]
    pub org_id: String,
}

/// The dashboard's reply to `GET /system/policies` (§2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyListReply {
    /// Always `OK` from the real dashboard; never read by the gateway.
    #[serde(rename = "Status", alias = "status", default)]
    pub status: String,
    /// The full policy list.
    #[serde(rename = "Message", alias = "message", default)]
    pub message: Vec<PolicyRecord>,
    /// Nonce the gateway echoes on its next request.
    #[serde(rename = "Nonce", alias = "nonce", default)]
    pub nonce: String,
}

/// Body of `POST /tyk/keys/create` (§6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCreateRequest {
    /// Policy ids to bind to the new key.
    #[serde(default)]
    pub apply_policies: Vec<String>,
}

/// Status/message replies of the control API (`{"status":…,"message":…}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlReply {
    /// `ok` or `error`.
    pub status: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
}

/// The mock's answer to `POST /repro/policies`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddedPolicy {
    /// Id of the new policy.
    pub id: String,
    /// Policy count after the add (the seed's "index").
    pub index: u64,
    /// Policies the next fetch will serve.
    pub served: u64,
    /// Subscribers the `PolicyChanged` for this add reached (PUBLISH's answer); null when the
    /// mock does not notify or the publish failed.
    #[serde(default)]
    pub receivers: Option<u64>,
}

/// One `/system/policies` request as the mock recorded it (`GET /repro/fetches`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FetchRecord {
    /// When the request arrived, Unix epoch milliseconds.
    pub received_at_ms: u64,
    /// Policies in the reply (0 when rejected).
    pub served: u64,
    /// Body size in bytes (0 when rejected).
    pub bytes: u64,
    /// Time from arrival until the body was handed to the connection, microseconds.
    pub duration_us: u64,
    /// `x-tyk-nodeid` as sent.
    pub node_id: String,
    /// Whether `x-tyk-nonce` was empty or one the mock issued.
    pub nonce_ok: bool,
    /// Whether the node secret was right (false: answered 403).
    pub authorized: bool,
}

/// The mock's counters (`GET /repro/stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MockStats {
    /// Policies the next fetch serves.
    pub policies_served: u64,
    /// Policy fetches answered 200.
    pub fetches: u64,
    /// Policies added since start.
    pub adds: u64,
    /// Fetches refused with 403 (wrong or missing node secret).
    pub rejected_fetches: u64,
    /// Fetches whose nonce the mock never issued (logged, not rejected).
    pub nonce_mismatches: u64,
    /// Notifications published on Redis.
    pub published: u64,
    /// Notifications that failed to publish.
    pub publish_errors: u64,
    /// Policies served at start (`--initial-policies`).
    pub initial_policies: u64,
    /// `publish_receivers[i]`: PUBLISHes that reached exactly `i` subscribers (the last slot
    /// counts that many or more). Empty when the mock does not notify.
    #[serde(default)]
    pub publish_receivers: Vec<u64>,
    /// Subscribers of `tyk.cluster.notifications` at the mock's last look (`PUBSUB NUMSUB`,
    /// refreshed every 200 ms); null when the mock does not notify or Redis did not answer.
    #[serde(default)]
    pub subscribers: Option<u64>,
    /// Slowest PUBLISH so far, microseconds (a failed one counts with its time until failure).
    #[serde(default)]
    pub publish_max_us: u64,
    /// PUBLISHes that took longer than [`SLOW_PUBLISH_MS`].
    #[serde(default)]
    pub slow_publishes: u64,
}

/// A PUBLISH slower than this is a sign Redis or the machine is saturated.
pub const SLOW_PUBLISH_MS: u64 = 500;

impl MockStats {
    /// PUBLISHes that reached fewer than `gateways` subscribers.
    pub fn publishes_reaching_fewer_than(&self, gateways: u64) -> u64 {
        self.publish_receivers
            .iter()
            .enumerate()
            .filter(|(receivers, _)| (*receivers as u64) < gateways)
            .map(|(_, count)| count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha256_of_command_payload_secret() {
        // sha256("PolicyChanged" + "" + "secret"), computed independently with sha256sum.
        let n = Notification::signed("PolicyChanged", "", "secret");
        assert_eq!(n.algorithm, 5);
        assert_eq!(
            n.signature,
            "5530f05825f3bf2bc47f0e2e0415213d0da56eb7fda54d3947909ab9f79f724d"
        );
        assert!(n.signature_valid("secret"));
        assert!(!n.signature_valid("other"));
    }

    #[test]
    fn unknown_commands_do_not_queue_reloads() {
        let n = Notification::signed("NoticeGatewayDRLNotification", "{}", "s");
        assert!(!n.queues_reload());
        assert!(Notification::signed("GroupReload", "", "s").queues_reload());
    }

    #[test]
    fn policy_list_reads_field_names_case_insensitively_enough() {
        let body = r#"{"status":"OK","message":[{"id":"a","_id":"5e0000000000000000000001","name":"n","org_id":"monarch"}],"nonce":"x"}"#;
        let reply: PolicyListReply = serde_json::from_str(body).unwrap();
        assert_eq!(reply.message.len(), 1);
        assert_eq!(reply.nonce, "x");
    }
}
