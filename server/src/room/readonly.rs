//! Would an update change a document? Read-only connections may send no-op updates (a stock
//! client's handshake sync step 2 usually is one); anything else is refused.

use yrs::{ReadTxn, StateVector, Update};

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
