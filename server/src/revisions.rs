//! Revision history of group documents: snapshots taken from the *stored* document (so the room
//! code is not involved) every `--revision-interval-secs` when the document changed since its
//! last revision, and when a group is closed. Read by `GET …/groups/{g}/revisions[/{id}]`.

use crate::app::AppState;
use crate::plenary::merge;
use crate::store::{now_rfc3339, RevisionRecord, Store, StoreError, StoredDoc};
use plenary_protocol::layout;
use plenary_protocol::{GroupId, MeetingId, RoomPath};
use std::time::Duration;
use yrs::types::xml::{Xml, XmlFragment, XmlOut};
use yrs::types::Attrs;
use yrs::{Any, GetString, Out, ReadTxn, StateVector, Text, Transact, XmlFragmentRef};

pub const INTERVAL: &str = "interval";
pub const CLOSED: &str = "closed";

/// The whole stored document as one v1 update.
fn stored_state(stored: &StoredDoc) -> Result<Vec<u8>, String> {
    let d = stored.to_doc()?;
    let txn = d.transact();
    Ok(txn.encode_state_as_update_v1(&StateVector::default()))
}

/// Content fingerprint: the JSON view (conclusions in order, notes), so that re-encodings of the
/// same content never count as a change.
fn content_of(data: &[u8]) -> Result<serde_json::Value, String> {
    let (c, n) = decode(data)?;
    Ok(serde_json::json!({"c": conclusions_json(&c), "n": n}))
}

/// What the latest revision holds, to compare with.
enum Last {
    /// No revision yet: compare with the empty document.
    None,
    Data(Vec<u8>),
    /// Listed but gone: take one.
    Missing,
}

/// Takes a revision of `doc` when `force` or when its content differs from the latest revision.
/// Returns the new revision's id, if one was taken. Replaying and comparing run off the async
/// workers.
pub async fn take(store: &dyn Store, doc: &str, reason: &str, force: bool) -> Result<Option<i64>, String> {
    let stored = store.load_doc(doc).await.map_err(|e| e.to_string())?;
    let last = if force {
        Last::Missing
    } else {
        match store.revisions(doc).await.map_err(|e| e.to_string())?.pop() {
            None => Last::None,
            Some(r) => match store.revision(doc, r.id).await.map_err(|e| e.to_string())? {
                Some((_, old)) => Last::Data(old),
                None => Last::Missing,
            },
        }
    };
    let compared = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, bool), String> {
        let data = stored_state(&stored)?;
        let changed = match last {
            Last::None => content_of(&data)? != content_of(&empty_state())?,
            Last::Data(old) => content_of(&old)? != content_of(&data)?,
            Last::Missing => true,
        };
        Ok((data, changed))
    })
    .await
    .map_err(|e| e.to_string())?;
    let (data, changed) = compared?;
    if !changed {
        return Ok(None);
    }
    match store.insert_revision(doc, &now_rfc3339(), reason, data).await {
        Ok(id) => Ok(Some(id)),
        Err(StoreError::NotFound) => Ok(None), // a store without revisions
        Err(e) => Err(e.to_string()),
    }
}

fn empty_state() -> Vec<u8> {
    yrs::Doc::new()
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// One pass over every group of every meeting.
pub async fn pass(store: &dyn Store) -> Result<usize, String> {
    let mut n = 0;
    for (m, _) in store.meetings().await.map_err(|e| e.to_string())? {
        for g in &m.groups {
            let doc = RoomPath::group(m.id.clone(), g.id.clone()).to_string();
            match take(store, &doc, INTERVAL, false).await {
                Ok(Some(_)) => n += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(doc = %doc, error = %e, "revision not taken"),
            }
        }
    }
    Ok(n)
}

/// Starts the periodic task (stops with the server).
pub fn spawn(svc: &AppState, every: Duration) {
    if every.is_zero() {
        return;
    }
    let store = svc.room.store.clone();
    let stop = svc.conn.stopping.clone();
    svc.room.tracker.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate: skip it
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            match pass(store.as_ref()).await {
                Ok(n) if n > 0 => tracing::info!(revisions = n, "revisions taken"),
                Err(e) => tracing::warn!(error = %e, "revision pass failed"),
                _ => {}
            }
        }
    });
}

/// A revision when a group is closed (in the background; failures are logged).
pub fn on_closed(svc: &AppState, meeting: &MeetingId, group: &GroupId) {
    let store = svc.room.store.clone();
    let doc = RoomPath::group(meeting.clone(), group.clone()).to_string();
    svc.room.tracker.spawn(async move {
        if let Err(e) = take(store.as_ref(), &doc, CLOSED, true).await {
            tracing::warn!(doc = %doc, error = %e, "revision at close not taken");
        }
    });
}

// ---- reading a revision ----

/// A conclusion of a revision, as the route shows it.
pub fn conclusions_json(c: &[merge::Conclusion]) -> serde_json::Value {
    serde_json::Value::Array(
        c.iter()
            .map(|c| serde_json::json!({"id": c.id, "text": c.text, "status": c.status}))
            .collect(),
    )
}

/// Decodes a revision: its live conclusions in reading order, and the notes as ProseMirror-like
/// JSON (`{"type":"doc","content":[…]}`).
pub fn decode(data: &[u8]) -> Result<(Vec<merge::Conclusion>, serde_json::Value), String> {
    use yrs::updates::decoder::Decode;
    let doc = yrs::Doc::new();
    {
        let mut txn = doc.transact_mut();
        let u = yrs::Update::decode_v1(data).map_err(|e| format!("revision: {e}"))?;
        txn.apply_update(u).map_err(|e| format!("revision: {e}"))?;
    }
    let txn = doc.transact();
    let conclusions = merge::read_conclusions(&txn);
    let notes = match txn.get_xml_fragment(layout::NOTES) {
        Some(f) => fragment_json(&txn, &f),
        None => serde_json::json!({"type": "doc", "content": []}),
    };
    Ok((conclusions, notes))
}

fn fragment_json<T: ReadTxn>(txn: &T, f: &XmlFragmentRef) -> serde_json::Value {
    let content: Vec<serde_json::Value> = f.children(txn).flat_map(|c| node_json(txn, c)).collect();
    serde_json::json!({"type": "doc", "content": content})
}

fn node_json<T: ReadTxn>(txn: &T, n: XmlOut) -> Vec<serde_json::Value> {
    match n {
        XmlOut::Element(e) => {
            let mut o = serde_json::Map::new();
            o.insert("type".into(), e.tag().to_string().into());
            let attrs: serde_json::Map<String, serde_json::Value> = e
                .attributes(txn)
                .map(|(k, v)| (k.to_string(), out_json(txn, &v)))
                .collect();
            if !attrs.is_empty() {
                o.insert("attrs".into(), attrs.into());
            }
            let content: Vec<serde_json::Value> = e.children(txn).flat_map(|c| node_json(txn, c)).collect();
            if !content.is_empty() {
                o.insert("content".into(), content.into());
            }
            vec![o.into()]
        }
        XmlOut::Fragment(f) => f.children(txn).flat_map(|c| node_json(txn, c)).collect(),
        XmlOut::Text(t) => t
            .diff(txn, |_| ())
            .into_iter()
            .filter_map(|d| {
                let text = match &d.insert {
                    Out::Any(Any::String(s)) => s.to_string(),
                    _ => return None,
                };
                let mut o = serde_json::json!({"type": "text", "text": text});
                if let Some(a) = d.attributes.as_deref() {
                    let marks = marks_json(a);
                    if !marks.is_empty() {
                        o["marks"] = marks.into();
                    }
                }
                Some(o)
            })
            .collect(),
    }
}

fn marks_json(a: &Attrs) -> Vec<serde_json::Value> {
    let mut keys: Vec<_> = a.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v = merge::any_to_json(&a[k]);
            match v {
                serde_json::Value::Object(ref m) if !m.is_empty() => {
                    serde_json::json!({"type": k.to_string(), "attrs": v})
                }
                _ => serde_json::json!({"type": k.to_string()}),
            }
        })
        .collect()
}

fn out_json<T: ReadTxn>(txn: &T, v: &Out) -> serde_json::Value {
    match v {
        Out::Any(a) => merge::any_to_json(a),
        Out::YText(t) => t.get_string(txn).into(),
        _ => serde_json::Value::Null,
    }
}

/// The list as the route shows it.
pub fn list_json(r: &[RevisionRecord]) -> serde_json::Value {
    serde_json::json!({"revisions": r.iter().map(|r| serde_json::json!({"id": r.id, "created_at": r.created_at, "reason": r.reason})).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{DocAppend, Durability};
    use yrs::{Array, MapPrelim, TextPrelim, WriteTxn, XmlElementPrelim, XmlTextPrelim};

    fn update(f: impl FnOnce(&mut yrs::TransactionMut)) -> Vec<u8> {
        let doc = yrs::Doc::new();
        let mut txn = doc.transact_mut();
        f(&mut txn);
        txn.encode_update_v1()
    }

    #[tokio::test]
    async fn takes_a_revision_only_when_the_content_changed_and_decodes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), Durability::Process).unwrap();
        let doc = "m/g";
        assert_eq!(
            take(&store, doc, INTERVAL, false).await.unwrap(),
            None,
            "empty doc: nothing to keep"
        );
        let u = update(|txn| {
            let arr = txn.get_or_insert_array(layout::CONCLUSIONS);
            arr.push_back(
                txn,
                MapPrelim::from([
                    ("id", yrs::In::from("c1")),
                    ("text", yrs::In::from(TextPrelim::new("One."))),
                    ("status", yrs::In::from("final")),
                ]),
            );
            let notes = txn.get_or_insert_xml_fragment(layout::NOTES);
            let p = notes.push_back(txn, XmlElementPrelim::empty("paragraph"));
            p.push_back(txn, XmlTextPrelim::new("Hello"));
        });
        store
            .append(vec![DocAppend {
                doc: doc.into(),
                updates: vec![u],
                fence: None,
            }])
            .await
            .unwrap();
        assert_eq!(take(&store, doc, INTERVAL, false).await.unwrap(), Some(1));
        assert_eq!(
            take(&store, doc, INTERVAL, false).await.unwrap(),
            None,
            "unchanged: no new revision"
        );
        assert_eq!(
            take(&store, doc, CLOSED, true).await.unwrap(),
            Some(2),
            "closing always keeps one"
        );
        let list = store.revisions(doc).await.unwrap();
        assert_eq!(
            list.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>(),
            [INTERVAL, CLOSED]
        );
        let (_, data) = store.revision(doc, 1).await.unwrap().unwrap();
        let (c, notes) = decode(&data).unwrap();
        assert_eq!(
            conclusions_json(&c),
            serde_json::json!([{"id": "c1", "text": "One.", "status": "final"}])
        );
        assert_eq!(
            notes,
            serde_json::json!({"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hello"}]}]})
        );
    }
}
