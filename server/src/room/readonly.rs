//! Would an update change a document? Read-only connections may send no-op updates (a stock
//! client's handshake sync step 2 usually is one); anything else is refused.
//!
//! [`ReadOnlyCheck`] answers it cheaply: an empty update (no structs, no deletions) is a no-op
//! without looking at the document, and the document's state vector and delete set are built
//! once per document state, not once per message.

use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// The document state a read-only update is compared with, kept until the document changes.
#[derive(Default)]
pub struct ReadOnlyCheck {
    state: Option<(StateVector, yrs::IdSet)>,
}

impl ReadOnlyCheck {
    /// The document changed: the cached state is stale.
    pub fn invalidate(&mut self) {
        self.state = None;
    }

    /// True if applying `update` to `doc` would change it.
    pub fn would_change(&mut self, doc: &Doc, update: &Update) -> bool {
        if update.is_empty() {
            return false;
        }
        let (sv, ds) = self.state.get_or_insert_with(|| doc_state(&doc.transact()));
        would_change(update, sv, ds)
    }

    pub fn is_cached(&self) -> bool {
        self.state.is_some()
    }
}

/// True if applying `update` to a document whose state is `sv` with delete set `deleted`
/// would add or delete anything (or leave pending structs behind).
pub fn would_change(update: &Update, sv: &StateVector, deleted: &yrs::IdSet) -> bool {
    for (client, ranges) in update.insertions(true).iter() {
        let known = sv.get(client);
        for r in ranges.iter() {
            if r.end > known {
                return true;
            }
        }
    }
    let mut dels = update.delete_set().clone();
    dels.diff_with(deleted);
    !dels.is_empty()
}

/// Reads a document's state vector and delete set for [`would_change`].
pub fn doc_state(txn: &impl ReadTxn) -> (StateVector, yrs::IdSet) {
    let snap = txn.snapshot();
    (snap.state_map, snap.delete_set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, Text, Transact};

    fn check(doc: &Doc, update: &[u8]) -> bool {
        let txn = doc.transact();
        let (sv, ds) = doc_state(&txn);
        would_change(&Update::decode_v1(update).unwrap(), &sv, &ds)
    }

    #[test]
    fn the_check_caches_the_document_state_until_invalidated_and_skips_empty_updates() {
        let doc = Doc::with_client_id(1);
        let t = doc.get_or_insert_text("t");
        let mut check = ReadOnlyCheck::default();
        // an empty update is a no-op without building the document state
        assert!(!check.would_change(&doc, &Update::new()));
        assert!(!check.is_cached());
        let edit = |doc: &Doc, s: &str| {
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 0, s);
            txn.encode_update_v1()
        };
        let first = Update::decode_v1(&edit(&doc, "a")).unwrap();
        assert!(!check.would_change(&doc, &first));
        assert!(check.is_cached());
        // the cached state is used as it is: an update the document already holds but the
        // cache does not looks like a change until the room invalidates it
        let second = Update::decode_v1(&edit(&doc, "b")).unwrap();
        assert!(check.would_change(&doc, &second));
        check.invalidate();
        assert!(!check.would_change(&doc, &second));
    }

    #[test]
    fn detects_new_content_deletions_and_no_ops() {
        let server = Doc::with_client_id(1);
        let t = server.get_or_insert_text("t");
        t.insert(&mut server.transact_mut(), 0, "hello");
        let client = Doc::with_client_id(2);
        let state = server
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        client
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        // the handshake diff of an up-to-date client is a no-op
        let sv = server.transact().state_vector();
        let diff = client.transact().encode_diff_v1(&sv);
        assert!(!check(&server, &diff));
        // re-sending everything the server has is a no-op too
        assert!(!check(&server, &state));
        // an insertion changes the doc
        let ct = client.get_or_insert_text("t");
        let ins = {
            let mut txn = client.transact_mut();
            ct.insert(&mut txn, 0, "x");
            txn.encode_update_v1()
        };
        assert!(check(&server, &ins));
        // a deletion of server content changes the doc
        let del = {
            let mut txn = client.transact_mut();
            ct.remove_range(&mut txn, 1, 2);
            txn.encode_update_v1()
        };
        assert!(check(&server, &del));
    }
}
