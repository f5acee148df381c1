//! Answers that cost the room in proportion to the document or the awareness table, built once
//! per state and shared by every asker (each queued frame is the same `Bytes`):
//!
//! - sync step 2 for a state vector: the vector is first reduced to what matters for this
//!   document (its clients only, clocks capped at the document's), so that vectors naming
//!   unknown clients (a random one, a client from another document) are all the empty vector,
//!   whose answer (the whole document) is kept apart; other answers are kept in a small cache
//!   keyed by the reduced vector, cleared when the document changes ([`DocAnswers`]).
//!
//! The awareness snapshot (greeting and query-awareness) is cached the same way, by the
//! members (`members`).

use super::outbox::Frame;
use super::readonly::ReadOnlyCheck;
use super::vetting::contained;

use plenary_protocol::message;
use std::collections::VecDeque;
use yrs::{ClientID, Doc, ReadTxn, StateVector, Transact};

/// Sync step 2 answers kept per document state.
const MAX_CACHED: usize = 16;
/// Bytes of answers kept per document state (the whole document is kept apart).
const MAX_CACHED_BYTES: usize = 8 << 20;

/// A state vector reduced to the document's clients, sorted: equal keys have equal diffs.
pub type SvKey = Vec<(ClientID, u32)>;

/// Reduces `sv` to what `encode_diff_v1` looks at: for each client of the document, the
/// smaller of the two clocks, left out when zero.
pub fn reduce(sv: &StateVector, doc_sv: &StateVector) -> SvKey {
    let mut key: SvKey = doc_sv
        .iter()
        .map(|(client, &local)| (*client, sv.get(client).min(local)))
        .filter(|(_, clock)| *clock > 0)
        .collect();
    key.sort_unstable();
    key
}

#[derive(Default)]
pub struct StepTwoCache {
    entries: VecDeque<(SvKey, Frame)>,
    bytes: usize,
}

impl StepTwoCache {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    pub fn get(&self, key: &SvKey) -> Option<Frame> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }

    pub fn insert(&mut self, key: SvKey, frame: Frame) {
        if frame.len() > MAX_CACHED_BYTES {
            return;
        }
        while self.entries.len() >= MAX_CACHED || self.bytes + frame.len() > MAX_CACHED_BYTES {
            let Some((_, old)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
        self.bytes += frame.len();
        self.entries.push_back((key, frame));
    }
}

/// What the room keeps per document state: the sync step 2 answers and the read-only check's
/// state. Cleared whenever the document changes.
#[derive(Default)]
pub struct DocAnswers {
    /// Sync step 2 for a client that has nothing (a fresh page, a connect storm).
    full_state: Option<Frame>,
    /// Sync step 2 for other state vectors.
    step2: StepTwoCache,
    /// The document state read-only updates are checked against.
    pub readonly: ReadOnlyCheck,
}

impl DocAnswers {
    /// The document changed: every answer built from it is stale.
    pub fn doc_changed(&mut self) {
        self.full_state = None;
        self.step2.clear();
        self.readonly.invalidate();
    }

    /// The sync step 2 answering `sv`, and whether it had to be encoded now; `None` if yrs
    /// panicked while encoding it (the caller poisons the room).
    pub fn sync_step2_for(&mut self, doc: &Doc, sv: &StateVector) -> Option<(Frame, bool)> {
        let key = contained(|| {
            let txn = doc.transact();
            reduce(sv, &txn.state_vector())
        })?;
        let cached = if key.is_empty() {
            self.full_state.clone()
        } else {
            self.step2.get(&key)
        };
        if let Some(frame) = cached {
            return Some((frame, false));
        }
        let reduced = StateVector::from_iter(key.iter().copied());
        let frame = contained(|| {
            Frame::binary(message::encode_sync_step2(
                &doc.transact().encode_diff_v1(&reduced),
            ))
        })?;
        if key.is_empty() {
            self.full_state = Some(frame.clone());
        } else {
            self.step2.insert(key, frame.clone());
        }
        Some((frame, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, Text};

    #[test]
    fn reduced_vectors_give_the_same_diff_and_unknown_clients_reduce_to_nothing() {
        let doc = Doc::with_client_id(7);
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, "hello world");
        let doc_sv = doc.transact().state_vector();
        // a random vector: unknown clients, huge clocks
        let c = ClientID::new;
        let random = StateVector::from_iter([(c(123_456), 99u32), (c(9), 1_000_000)]);
        assert!(reduce(&random, &doc_sv).is_empty());
        // a partial vector of the document's own client, plus noise
        let partial = StateVector::from_iter([(c(7), 5u32), (c(424_242), 3)]);
        let key = reduce(&partial, &doc_sv);
        assert_eq!(key, vec![(c(7), 5)]);
        let txn = doc.transact();
        assert_eq!(
            txn.encode_diff_v1(&partial),
            txn.encode_diff_v1(&StateVector::from_iter(key))
        );
        assert_eq!(
            txn.encode_diff_v1(&random),
            txn.encode_diff_v1(&StateVector::default())
        );
        // a clock above the document's is capped at it
        let ahead = StateVector::from_iter([(c(7), 500u32)]);
        assert_eq!(reduce(&ahead, &doc_sv), vec![(c(7), 11)]);
    }

    #[test]
    fn the_cache_is_bounded_in_entries() {
        let mut c = StepTwoCache::default();
        let id = ClientID::new;
        for i in 0..(MAX_CACHED as u64 + 4) {
            c.insert(vec![(id(i), 1)], Frame::binary(vec![0u8; 10]));
        }
        assert!(c.get(&vec![(id(0), 1)]).is_none());
        assert!(c.get(&vec![(id(MAX_CACHED as u64 + 3), 1)]).is_some());
        assert_eq!(c.entries.len(), MAX_CACHED);
    }
}
