//! The policy pool: every policy pre-encoded as JSON, in append-only frozen segments plus a tail.
//!
//! Why this shape (issue 6): the seed held one mutex while encoding the whole list on every fetch,
//! so an add waited ~68 ms behind each fetch at 83k policies. Here a policy is encoded once, when
//! it is created. Full segments are frozen into [`Bytes`] and never change again, so a fetch only
//! clones their handles (reference counts) and copies the small tail under a short lock; an add
//! takes the same lock only to append ~130 bytes.
//!
//! Why the list only grows (unlike the seed, which wrapped back to 80,400 at 100,000): wrapping
//! would serve old ids again, so a key created for a "new" policy could succeed against a policy
//! the gateway loaded long ago, and the newest policies would drop out of the list. The runner
//! measures exactly "the newest policy is loaded", so the newest must always be served.
//!
//! Encoding: policy number `i` (0-based) is written as `,{…}` for `i > 0` and `{…}` for `i == 0`,
//! so concatenating segments and tail in order always yields a valid JSON array body.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::SmallRng};

/// Policies per frozen segment: big enough that a fetch clones few handles, small enough that
/// copying the tail under the lock stays well below a millisecond.
pub const DEFAULT_SEGMENT_POLICIES: usize = 4096;

/// Start of every `/system/policies` reply, up to the first policy.
const REPLY_PREFIX: &[u8] = br#"{"Status":"OK","Message":["#;

/// The growing, pre-encoded list of policies served by `/system/policies`.
pub struct PolicyPool {
    inner: Mutex<PoolInner>,
    /// `org_id` already encoded as a JSON string (quotes included, escaped once).
    org_json: String,
    segment_policies: usize,
    /// Random per-process prefix of `_id` (12 hex chars), so ids differ across restarts.
    object_id_prefix: String,
    /// Counter forming the last 12 hex chars of `_id`, unique within the process.
    next_object_id: AtomicU64,
}

struct PoolInner {
    frozen: Vec<Bytes>,
    tail: Vec<u8>,
    tail_policies: usize,
    count: u64,
    first_id: Option<String>,
}

/// What a fetch serves: the frozen segments (shared) and a copy of the tail at one instant.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    /// Encoded policies, in order, ready to be concatenated.
    pub chunks: Vec<Bytes>,
    /// Number of policies in `chunks`.
    pub count: u64,
    /// Total bytes in `chunks`.
    pub encoded_len: usize,
}

/// A policy just added to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicy {
    /// The policy id (uuid4).
    pub id: String,
    /// Policy count after the add (1-based position of this policy; its name ends with it).
    pub index: u64,
}

impl PolicyPool {
    /// An empty pool whose policies belong to `org_id`.
    pub fn new(org_id: &str, segment_policies: usize) -> Self {
        // A plain string always serializes; the fallback only keeps this free of panics.
        let org_json = serde_json::to_string(org_id).unwrap_or_else(|_| "\"\"".to_owned());
        Self::empty(org_json, segment_policies)
    }

    fn empty(org_json: String, segment_policies: usize) -> Self {
        let mut rng = rand::rng();
        let prefix: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
        Self {
            inner: Mutex::new(PoolInner {
                frozen: Vec::new(),
                tail: Vec::new(),
                tail_policies: 0,
                count: 0,
                first_id: None,
            }),
            org_json,
            segment_policies: segment_policies.max(1),
            object_id_prefix: format!("{prefix:012x}"),
            next_object_id: AtomicU64::new(1),
        }
    }

    /// A pool already holding `count` policies (the startup list).
    pub fn with_policies(org_id: &str, segment_policies: usize, count: u64) -> Self {
        let pool = Self::new(org_id, segment_policies);
        pool.fill(count);
        pool
    }

    fn fill(&self, count: u64) {
        // One fast RNG for the bulk: 80k `Uuid::new_v4()` calls would each ask the OS.
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        for _ in 0..count {
            let id = random_uuid(&mut rng);
            self.push(id);
        }
    }

    /// Replaces every policy with `count` fresh ones (new ids, built outside the lock), so a
    /// new repetition of the scenario starts from a fresh pool of the initial size.
    pub fn reset(&self, count: u64) {
        let fresh = Self::empty(self.org_json.clone(), self.segment_policies);
        fresh.fill(count);
        let inner = fresh.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.lock() = inner;
    }

    /// Appends one policy; it is visible to every fetch that snapshots after this returns.
    pub fn add(&self) -> NewPolicy {
        let id = random_uuid(&mut rand::rng());
        let index = self.push(id.clone());
        NewPolicy { id, index }
    }

    /// Policies the next fetch serves.
    pub fn len(&self) -> u64 {
        self.lock().count
    }

    /// Whether the pool holds no policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id of the first policy (the seed's `/origin`).
    pub fn first_id(&self) -> Option<String> {
        self.lock().first_id.clone()
    }

    /// The current list: frozen handles cloned, tail copied, all under one short lock.
    pub fn snapshot(&self) -> PoolSnapshot {
        let inner = self.lock();
        let mut chunks = Vec::with_capacity(inner.frozen.len() + 1);
        chunks.extend(inner.frozen.iter().cloned());
        if !inner.tail.is_empty() {
            chunks.push(Bytes::copy_from_slice(&inner.tail));
        }
        let count = inner.count;
        drop(inner);
        let encoded_len = chunks.iter().map(Bytes::len).sum();
        PoolSnapshot {
            chunks,
            count,
            encoded_len,
        }
    }

    fn push(&self, id: String) -> u64 {
        let object_id = self.next_object_id();
        let mut inner = self.lock();
        let index = inner.count + 1;
        let comma = if inner.count > 0 { "," } else { "" };
        // Ids are hex/uuid and the name is ASCII digits: only org_id needed escaping (done once).
        let encoded = format!(
            r#"{comma}{{"id":"{id}","_id":"{object_id}","name":"policy-name-{index}","org_id":{}}}"#,
            self.org_json
        );
        if inner.tail.capacity() == 0 {
            // Reserve the whole segment once: growing by doubling would copy up to half a
            // megabyte under the lock, and shrinking at freeze time would copy it again.
            let room = (encoded.len() + 8) * self.segment_policies;
            inner.tail.reserve_exact(room);
        }
        inner.tail.extend_from_slice(encoded.as_bytes());
        inner.tail_policies += 1;
        inner.count = index;
        if inner.first_id.is_none() {
            inner.first_id = Some(id);
        }
        if inner.tail_policies >= self.segment_policies {
            // The slack left by the reservation above is a few percent of the segment.
            let full = std::mem::take(&mut inner.tail);
            inner.frozen.push(Bytes::from(full));
            inner.tail_policies = 0;
        }
        index
    }

    fn next_object_id(&self) -> String {
        let n = self.next_object_id.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff;
        format!("{}{n:012x}", self.object_id_prefix)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolInner> {
        // A panic while holding the lock cannot leave the byte list half-written in a way that
        // matters more than stopping the mock would: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn random_uuid(rng: &mut impl Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// The full reply body for a snapshot and nonce, as chunks to stream, and its total length.
pub fn reply_chunks(snapshot: &PoolSnapshot, nonce: &str) -> (Vec<Bytes>, u64) {
    let suffix = Bytes::from(format!(
        r#"],"Nonce":{}}}"#,
        serde_json::to_string(nonce).unwrap_or_else(|_| "\"\"".to_owned())
    ));
    let mut chunks = Vec::with_capacity(snapshot.chunks.len() + 2);
    chunks.push(Bytes::from_static(REPLY_PREFIX));
    chunks.extend(snapshot.chunks.iter().cloned());
    chunks.push(suffix);
    let len = chunks.iter().map(|c| c.len() as u64).sum();
    (chunks, len)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::protocol::PolicyListReply;

    fn parse(pool: &PolicyPool, nonce: &str) -> PolicyListReply {
        let (chunks, len) = reply_chunks(&pool.snapshot(), nonce);
        let body: Vec<u8> = chunks.concat();
        assert_eq!(body.len() as u64, len);
        serde_json::from_slice(&body).unwrap()
    }

    fn assert_valid(reply: &PolicyListReply, expected: usize, org: &str) {
        assert_eq!(reply.status, "OK");
        assert_eq!(reply.message.len(), expected);
        let ids: HashSet<_> = reply.message.iter().map(|p| p.id.clone()).collect();
        let oids: HashSet<_> = reply.message.iter().map(|p| p.object_id.clone()).collect();
        assert_eq!(ids.len(), expected, "ids must be unique");
        assert_eq!(oids.len(), expected, "_ids must be unique");
        for (i, p) in reply.message.iter().enumerate() {
            assert_eq!(p.object_id.len(), 24);
            assert!(
                p.object_id
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            );
            assert_eq!(uuid::Uuid::parse_str(&p.id).unwrap().get_version_num(), 4);
            assert_eq!(p.name, format!("policy-name-{}", i + 1));
            assert_eq!(p.org_id, org);
        }
    }

    #[test]
    fn reset_serves_a_fresh_pool_of_the_initial_size_and_adds_continue_from_it() {
        let pool = PolicyPool::with_policies("monarch", 4, 6);
        let before: HashSet<_> = parse(&pool, "a")
            .message
            .into_iter()
            .map(|p| p.id)
            .collect();
        pool.add();
        pool.reset(6);
        let reply = parse(&pool, "b");
        assert_valid(&reply, 6, "monarch");
        assert!(
            reply.message.iter().all(|p| !before.contains(&p.id)),
            "all ids are new"
        );
        assert_eq!(pool.add().index, 7);
        assert_valid(&parse(&pool, "c"), 7, "monarch");
    }

    #[test]
    fn an_empty_pool_encodes_an_empty_list() {
        let pool = PolicyPool::new("monarch", 4);
        let reply = parse(&pool, "n1");
        assert_valid(&reply, 0, "monarch");
        assert_eq!(reply.nonce, "n1");
        assert_eq!(pool.first_id(), None);
    }

    #[test]
    fn exactly_one_segment_leaves_an_empty_tail() {
        let pool = PolicyPool::with_policies("monarch", 4, 4);
        let snap = pool.snapshot();
        assert_eq!(snap.chunks.len(), 1);
        assert_valid(&parse(&pool, "n"), 4, "monarch");
    }

    #[test]
    fn one_past_a_segment_starts_the_tail_with_a_comma() {
        let pool = PolicyPool::with_policies("monarch", 4, 4);
        let added = pool.add();
        assert_eq!(added.index, 5);
        let snap = pool.snapshot();
        assert_eq!(snap.chunks.len(), 2);
        assert_eq!(snap.chunks[1][0], b',');
        let reply = parse(&pool, "n");
        assert_valid(&reply, 5, "monarch");
        assert_eq!(reply.message[4].id, added.id);
    }

    #[test]
    fn many_segments_and_a_tail_parse_with_unique_ids() {
        let pool = PolicyPool::with_policies("org \"quoted\"", 7, 50);
        assert_eq!(pool.len(), 50);
        assert_eq!(pool.snapshot().chunks.len(), 8);
        let reply = parse(&pool, "weird \"nonce\"");
        assert_valid(&reply, 50, "org \"quoted\"");
        assert_eq!(pool.first_id().unwrap(), reply.message[0].id);
    }

    #[test]
    fn a_snapshot_does_not_see_later_adds() {
        let pool = PolicyPool::with_policies("monarch", 4, 6);
        let before = pool.snapshot();
        pool.add();
        assert_eq!(before.count, 6);
        assert_eq!(pool.snapshot().count, 7);
    }

    #[test]
    fn the_startup_list_is_generated_fast_and_compact() {
        let start = std::time::Instant::now();
        let pool = PolicyPool::with_policies("monarch", DEFAULT_SEGMENT_POLICIES, 80_400);
        // Debug builds are slower than release; 1 s is the release target, allow headroom.
        assert!(start.elapsed() < std::time::Duration::from_secs(3));
        let snap = pool.snapshot();
        let per_policy = snap.encoded_len as u64 / snap.count;
        assert!(per_policy < 140, "{per_policy} bytes per policy");
    }
}
