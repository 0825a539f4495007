//! Nonces the mock issued recently, so an echoed `x-tyk-nonce` can be checked without enforcing.
//!
//! The gateway echoes the last nonce it stored, but a heartbeat and a fetch may go out at once with
//! the same one (tyk-protocol §2), so a strict chain would reject valid gateways. The mock accepts
//! any request and only counts nonces it never issued (or forgot: the book is bounded).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many issued nonces are remembered; a gateway echoes one of the last few.
pub const DEFAULT_NONCE_MEMORY: usize = 4096;

/// A bounded memory of issued nonces.
pub struct NonceBook {
    inner: Mutex<Remembered>,
    capacity: usize,
    prefix: String,
    counter: AtomicU64,
}

struct Remembered {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl NonceBook {
    /// An empty book remembering at most `capacity` nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Remembered {
                set: HashSet::new(),
                order: VecDeque::new(),
            }),
            capacity: capacity.max(1),
            // A per-process prefix keeps nonces from an earlier mock run from looking valid.
            prefix: uuid::Uuid::new_v4().simple().to_string(),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh nonce, remembered as issued.
    pub fn issue(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nonce = format!("{}-{n}", self.prefix);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.order.len() >= self.capacity
            && let Some(old) = inner.order.pop_front()
        {
            inner.set.remove(&old);
        }
        inner.set.insert(nonce.clone());
        inner.order.push_back(nonce.clone());
        nonce
    }

    /// Whether an echoed nonce is acceptable: empty (first call) or recently issued.
    pub fn is_known(&self, echoed: &str) -> bool {
        echoed.is_empty()
            || self
                .inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set
                .contains(echoed)
    }
}

#[cfg(test)]
mod tests {
    use super::NonceBook;

    #[test]
    fn issued_and_empty_nonces_are_known_and_others_are_not() {
        let book = NonceBook::new(8);
        let a = book.issue();
        let b = book.issue();
        assert_ne!(a, b);
        assert!(book.is_known(&a) && book.is_known(&b) && book.is_known(""));
        assert!(!book.is_known("nonce"));
    }

    #[test]
    fn the_oldest_nonce_is_forgotten_when_the_book_is_full() {
        let book = NonceBook::new(2);
        let a = book.issue();
        let b = book.issue();
        let c = book.issue();
        assert!(!book.is_known(&a));
        assert!(book.is_known(&b) && book.is_known(&c));
    }
}
