//! What the child checks: pure functions over `yrs` documents. They run in the sandbox child
//! only, where a panic, an abort, a segfault or an endless loop costs one child process.

use super::protocol::Verdict;
use crate::plenary::{guard, merge};
use crate::store::StoredDoc;
use plenary_protocol::layout;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Transact, Update};

/// Plenary documents are `m/plenary`; every other key is a group document.
pub fn is_plenary(doc_key: &str) -> bool {
    doc_key.ends_with("/plenary")
}

/// What the server reads from a document, as one string: a group's conclusions and notes, or
/// the plenary as JSON. Compaction compares it before and after the snapshot round trip.
pub fn fingerprint<T: ReadTxn>(txn: &T, plenary: bool) -> String {
    if plenary {
        return merge::plenary_json(txn).to_string();
    }
    let read = merge::read_conclusions(txn);
    let conclusions: Vec<[&str; 3]> = read
        .iter()
        .map(|c| [c.id.as_str(), c.text.as_str(), c.status.as_str()])
        .collect();
    let notes = txn
        .get_xml_fragment(layout::NOTES)
        .map(|f| f.get_string(txn))
        .unwrap_or_default();
    serde_json::json!({ "conclusions": conclusions, "notes": notes }).to_string()
}

/// Every read the server does on a document once it changed: the feed's conclusions (or the
/// plenary JSON), the notes, a full-state encoding that must decode and replay into a fresh
/// document (a new client's sync), and the sync step 1 answer to a peer that had the previous
/// state.
pub fn reads(doc: &Doc, previous: &StateVector, plenary: bool) -> Result<(), String> {
    let txn = doc.transact();
    let _ = fingerprint(&txn, plenary);
    let state = txn.encode_state_as_update_v1(&StateVector::default());
    let decoded =
        Update::decode_v1(&state).map_err(|e| format!("the document's state does not decode: {e}"))?;
    // What a new client does with our sync step 2: the state must replay into a fresh document
    // (the fuzz test found accepted histories whose full state makes yrs panic there).
    Doc::new()
        .transact_mut()
        .apply_update(decoded)
        .map_err(|e| format!("the document's state does not replay: {e}"))?;
    let diff = txn.encode_diff_v1(previous);
    Update::decode_v1(&diff).map_err(|e| format!("a sync answer does not decode: {e}"))?;
    let _ = txn.state_vector().encode_v1();
    Ok(())
}

/// Applies one update to `doc` in its own transaction and checks everything the room will do
/// with it. Anything but `Accepted` leaves `doc` changed: the caller drops it.
pub fn vet_update(doc: &Doc, bytes: &[u8], guard_curation: bool, plenary: bool) -> Verdict {
    let (previous, roots) = {
        let txn = doc.transact();
        (txn.state_vector(), guard::root_names(&txn))
    };
    let update = match Update::decode_v1(bytes) {
        Ok(u) => u,
        Err(e) => return Verdict::Invalid(format!("does not decode: {e}")),
    };
    let mut txn = doc.transact_mut();
    if let Err(e) = txn.apply_update(update) {
        // Part of it may be integrated: the whole update is refused.
        return Verdict::Invalid(format!("does not apply: {e}"));
    }
    if guard_curation && guard::touches_server_parts(&mut txn, &roots) {
        return Verdict::Denied;
    }
    let diff = txn.encode_update_v1();
    drop(txn);
    if let Err(e) = Update::decode_v1(&diff) {
        return Verdict::Invalid(format!("its effect does not decode: {e}"));
    }
    match reads(doc, &previous, plenary) {
        Ok(()) => Verdict::Accepted,
        Err(e) => Verdict::Invalid(e),
    }
}

/// Replays a whole document state (`Load`, `CheckSnapshot`) into a fresh document.
pub fn from_state(doc_key: &str, state: &[u8]) -> Result<Doc, String> {
    let doc = Doc::new();
    if is_plenary(doc_key) {
        guard::declare_roots(&doc);
    }
    let update = Update::decode_v1(state).map_err(|e| format!("state does not decode: {e}"))?;
    doc.transact_mut()
        .apply_update(update)
        .map_err(|e| format!("state does not apply: {e}"))?;
    Ok(doc)
}

/// Applies durable updates another node vetted (`Advance`) to a replica, in one transaction.
pub fn advance(doc: &Doc, updates: &[Vec<u8>]) -> Result<(), String> {
    let mut txn = doc.transact_mut();
    for bytes in updates {
        let u = Update::decode_v1(bytes).map_err(|e| format!("a durable update does not decode: {e}"))?;
        txn.apply_update(u)
            .map_err(|e| format!("a durable update does not apply: {e}"))?;
    }
    Ok(())
}

/// Replays a stored document (snapshot, then log) and does every read on it.
pub fn load_stored(doc_key: &str, stored: &StoredDoc) -> Result<Doc, String> {
    let doc = stored.to_doc()?;
    reads(&doc, &StateVector::default(), is_plenary(doc_key))?;
    Ok(doc)
}

/// Checks that `snapshot` replays into a document with state vector `sv` (v1) that reads as
/// `fingerprint`.
pub fn check_snapshot(doc_key: &str, snapshot: &[u8], sv: &[u8], expected: &str) -> Result<(), String> {
    let doc = from_state(doc_key, snapshot)?;
    let want = StateVector::decode_v1(sv).map_err(|e| format!("state vector: {e}"))?;
    let plenary = is_plenary(doc_key);
    reads(&doc, &StateVector::default(), plenary)?;
    let txn = doc.transact();
    if txn.state_vector() != want {
        return Err("the snapshot's state vector differs from the document's".into());
    }
    if fingerprint(&txn, plenary) != expected {
        return Err("the snapshot reads differently from the document".into());
    }
    Ok(())
}
