//! A bounded ring of `/system/policies` requests (`GET /repro/fetches`).
//!
//! Bounded because a mock left running for hours under a reload loop would otherwise grow without
//! limit; the runner reads the log right after a run, long before old records fall out.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::protocol::FetchRecord;

/// The most recent fetch records, oldest first.
pub struct FetchLog {
    records: Mutex<VecDeque<FetchRecord>>,
    capacity: usize,
}

impl FetchLog {
    /// An empty log keeping at most `capacity` records (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
        }
    }

    /// Appends a record, dropping the oldest when full.
    pub fn record(&self, record: FetchRecord) {
        if self.capacity == 0 {
            return;
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// Records received at or after `since_ms` (all when `None`), oldest first.
    pub fn since(&self, since_ms: Option<u64>) -> Vec<FetchRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let floor = since_ms.unwrap_or(0);
        records
            .iter()
            .filter(|r| r.received_at_ms >= floor)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> FetchRecord {
        FetchRecord {
            received_at_ms: ms,
            served: 1,
            bytes: 2,
            duration_us: 3,
            node_id: "solo-x".into(),
            nonce_ok: true,
            authorized: true,
        }
    }

    #[test]
    fn the_log_keeps_only_the_newest_records() {
        let log = FetchLog::new(2);
        for ms in [1, 2, 3] {
            log.record(at(ms));
        }
        let kept: Vec<u64> = log.since(None).iter().map(|r| r.received_at_ms).collect();
        assert_eq!(kept, vec![2, 3]);
    }

    #[test]
    fn since_filters_on_arrival_time_inclusively() {
        let log = FetchLog::new(10);
        for ms in [10, 20, 30] {
            log.record(at(ms));
        }
        let kept: Vec<u64> = log
            .since(Some(20))
            .iter()
            .map(|r| r.received_at_ms)
            .collect();
        assert_eq!(kept, vec![20, 30]);
    }
}
