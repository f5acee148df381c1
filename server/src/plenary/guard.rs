//! Moderators write only `curation` in the plenary document (contract: the moderator "writes
//! (curation)"; `meta` and `groups` are the server's).
//!
//! The check looks at what the update did, not at JSON projections (a delete-and-reinsert of a
//! group section reads the same as JSON but replaces server-owned items). With the update
//! applied in its own transaction: it must create no root type and leave nothing pending (a
//! struct waiting for a missing parent would land later, unchecked); then the transaction is
//! committed, and every type it changed (inserted into, deleted from, set a key of) must have
//! `curation` as the root of its parent chain (yrs lists each changed type with all its
//! ancestors). It runs in the sandbox child (`crate::sandbox`), on the replica, before the room
//! touches its own document.

use plenary_protocol::layout::plenary as pk;
use std::collections::HashSet;
use yrs::branch::BranchID;
use yrs::{Doc, ReadTxn, TransactionMut};

/// Declares the plenary's root types on `doc` (a replica rebuilt from bytes has them untyped,
/// and yrs reports changes only on typed parents). Changes no content.
pub fn declare_roots(doc: &Doc) {
    doc.get_or_insert_map(pk::META);
    doc.get_or_insert_array(pk::GROUPS);
    doc.get_or_insert_map(pk::CURATION);
}

/// The names of the root types a document has.
pub fn root_names<T: ReadTxn>(txn: &T) -> HashSet<String> {
    txn.root_refs().map(|(name, _)| name.to_owned()).collect()
}

/// True if the transaction (one moderator update, just applied, on a document whose roots
/// were declared and were `roots_before`) changed anything outside `curation`. Commits `txn`.
pub fn touches_server_parts(txn: &mut TransactionMut, roots_before: &HashSet<String>) -> bool {
    if txn.has_missing_updates() {
        return true;
    }
    if root_names(txn).iter().any(|n| !roots_before.contains(n)) {
        return true;
    }
    txn.commit();
    txn.changed_parent_types()
        .iter()
        .any(|b| matches!(b.id(), BranchID::Root(name) if &*name != pk::CURATION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plenary::merge::{ensure_structure, merge, Conclusion, GroupMeta};
    use std::collections::HashMap;
    use yrs::updates::decoder::Decode;
    use yrs::{Array, Map, MapPrelim, Out, StateVector, Text, Transact, Update, WriteTxn};

    /// Applies `u` to a copy of `doc` rebuilt from bytes (as the sandbox replica is) and asks
    /// the guard.
    fn touches(doc: &Doc, u: &Update) -> bool {
        let copy = Doc::new();
        let state = doc.transact().encode_state_as_update_v1(&StateVector::default());
        copy.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        declare_roots(&copy);
        let before = root_names(&copy.transact());
        let mut txn = copy.transact_mut();
        txn.apply_update(Update::decode_v1(&yrs::updates::encoder::Encode::encode_v1(u)).unwrap())
            .unwrap();
        touches_server_parts(&mut txn, &before)
    }

    fn plenary() -> Doc {
        let doc = Doc::new();
        let mut txn = doc.transact_mut();
        ensure_structure(&mut txn, "m", "Meeting");
        let groups = vec![GroupMeta {
            id: "a".into(),
            title: "A".into(),
            closed: false,
        }];
        let data = HashMap::from([(
            "a".to_string(),
            vec![Conclusion {
                id: "1".into(),
                text: "t".into(),
                status: "draft".into(),
            }],
        )]);
        merge(&mut txn, &groups, &data);
        drop(txn);
        doc
    }

    /// A moderator's client: a replica of the plenary that makes one edit.
    fn edit(doc: &Doc, f: impl FnOnce(&mut yrs::TransactionMut)) -> Update {
        let replica = Doc::new();
        let state = doc.transact().encode_state_as_update_v1(&StateVector::default());
        replica
            .transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        let mut txn = replica.transact_mut();
        f(&mut txn);
        Update::decode_v1(&txn.encode_update_v1()).unwrap()
    }

    #[test]
    fn curation_edits_pass() {
        let doc = plenary();
        let u = edit(&doc, |t| {
            let cur = t.get_or_insert_map(pk::CURATION);
            if let Some(Out::YMap(h)) = cur.get(t, pk::HIDDEN) {
                h.insert(t, "a/1", true);
            }
            if let Some(Out::YText(intro)) = cur.get(t, pk::INTRO) {
                intro.insert(t, 0, "Welcome");
            }
            cur.insert(t, pk::PRESENTING, "a/1");
        });
        assert!(!touches(&doc, &u));
    }

    #[test]
    fn edits_to_groups_meta_or_new_roots_are_caught() {
        let doc = plenary();
        let groups = edit(&doc, |t| {
            let g = t.get_or_insert_array(pk::GROUPS);
            g.remove(t, 0);
        });
        assert!(touches(&doc, &groups));
        let meta = edit(&doc, |t| {
            t.get_or_insert_map(pk::META).insert(t, "title", "Hacked");
        });
        assert!(touches(&doc, &meta));
        let root = edit(&doc, |t| {
            t.get_or_insert_text("graffiti").insert(t, 0, "x");
        });
        assert!(touches(&doc, &root));
    }

    #[test]
    fn rewriting_server_parts_with_identical_json_is_caught() {
        let doc = plenary();
        let before = crate::plenary::merge::plenary_json(&doc.transact());
        let title = edit(&doc, |t| {
            let meta = t.get_or_insert_map(pk::META);
            let v = meta.get(t, "title").unwrap().to_string(t);
            meta.insert(t, "title", v);
        });
        assert!(touches(&doc, &title));
        let section = edit(&doc, |t| {
            let g = t.get_or_insert_array(pk::GROUPS);
            g.remove(t, 0);
            g.insert(t, 0, MapPrelim::default());
        });
        assert!(touches(&doc, &section));
        assert_eq!(before, crate::plenary::merge::plenary_json(&doc.transact()));
    }
}
