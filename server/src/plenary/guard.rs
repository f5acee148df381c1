//! Moderators write only `curation` in the plenary document (contract: the moderator "writes
//! (curation)"; `meta` and `groups` are the server's). Pure: it tries the update on a scratch
//! copy of the document and compares everything but `curation`.

use super::merge::any_to_json;
use plenary_protocol::layout::plenary as pk;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// Everything in the document except `curation`, as JSON, with the names of its root types.
fn server_owned(doc: &Doc) -> serde_json::Value {
    let txn = doc.transact();
    let mut out = serde_json::Map::new();
    for (name, value) in txn.root_refs() {
        if name != pk::CURATION {
            out.insert(name.to_owned(), any_to_json(&value.to_json(&txn)));
        }
    }
    serde_json::Value::Object(out)
}

/// True if `update` would change anything outside `curation`. The check costs one copy of the
/// plenary document (a few kilobytes), paid only for moderators' writes to the plenary.
pub fn touches_server_parts(doc: &Doc, update: &Update) -> bool {
    let state = doc.transact().encode_state_as_update_v1(&StateVector::default());
    let scratch = Doc::new();
    // Root types read as JSON only once their type is declared.
    scratch.get_or_insert_map(pk::META);
    scratch.get_or_insert_array(pk::GROUPS);
    scratch.get_or_insert_map(pk::CURATION);
    let Ok(base) = Update::decode_v1(&state) else {
        return true;
    };
    if scratch.transact_mut().apply_update(base).is_err() {
        return true;
    }
    let before = server_owned(&scratch);
    let Ok(candidate) = Update::decode_v1(&update.encode_v1()) else {
        return true;
    };
    if scratch.transact_mut().apply_update(candidate).is_err() {
        return true;
    }
    server_owned(&scratch) != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plenary::merge::{ensure_structure, merge, Conclusion, GroupMeta};
    use std::collections::HashMap;
    use yrs::{Array, Map, Out, Text, WriteTxn};

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
        assert!(!touches_server_parts(&doc, &u));
    }

    #[test]
    fn edits_to_groups_meta_or_new_roots_are_caught() {
        let doc = plenary();
        let groups = edit(&doc, |t| {
            let g = t.get_or_insert_array(pk::GROUPS);
            g.remove(t, 0);
        });
        assert!(touches_server_parts(&doc, &groups));
        let meta = edit(&doc, |t| {
            t.get_or_insert_map(pk::META).insert(t, "title", "Hacked");
        });
        assert!(touches_server_parts(&doc, &meta));
        let root = edit(&doc, |t| {
            t.get_or_insert_text("graffiti").insert(t, 0, "x");
        });
        assert!(touches_server_parts(&doc, &root));
    }
}
