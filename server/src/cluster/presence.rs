//! Awareness between nodes (contract: "Awareness is relayed between nodes (not stored); follower
//! counts count every node"): what a room tells the other nodes, on
//! [`super::transport::Channel::Awareness`]. Nothing here is stored; a lost message costs
//! presence for a few seconds, never data.
//!
//! - [`RoomItem`]: one room's news from one node: awareness entries its local connections
//!   changed (states are already checked and stamped with `role` by that node; `"null"` is a
//!   removal), its local follower and writer counts (also the room's heartbeat), and whether it
//!   asks the others for their entries (it just loaded the room, or its listening session was
//!   re-established).
//! - [`encode`] / [`decode`]: the payload `{"node","rooms":[{"room","entries":[{"id","clock",
//!   "state"}],"counts":[followers,writers],"query":true}]}`, packed under [`MAX_PAYLOAD`]; an
//!   entry too large for a payload of its own is left out (awareness is lossy; the caller logs).
//! - [`Publisher`]: a room's handle on the node's ordered send queue (bounded: when it is full
//!   the item is dropped and counted, so a room never waits on the network).
//! - [`Inbound`]: what the listener (`super::presence_relay`) hands a loaded room.

use super::transport::MAX_PAYLOAD;
use plenary_protocol::AwarenessEntry;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One room's news from one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomItem {
    /// The room path (`m/g` or `m/plenary`).
    pub room: String,
    pub entries: Vec<AwarenessEntry>,
    /// The node's local (followers, writers) in the room.
    pub counts: Option<(usize, usize)>,
    /// Asks every other node to send its entries and counts for the room.
    pub query: bool,
}

/// What the listener hands a loaded room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Another node's news for this room.
    Item { node: Arc<str>, item: RoomItem },
    /// Messages may have been missed: what other nodes hold must be confirmed again.
    Resync,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    id: u64,
    clock: u32,
    state: String,
}

#[derive(Deserialize)]
struct WireRoom {
    room: String,
    #[serde(default)]
    entries: Vec<WireEntry>,
    #[serde(default)]
    counts: Option<(usize, usize)>,
    #[serde(default)]
    query: bool,
}

#[derive(Deserialize)]
struct Wire {
    node: String,
    rooms: Vec<WireRoom>,
}

/// A decoded payload: the sending node and its rooms' news.
#[derive(Debug, PartialEq, Eq)]
pub struct Heard {
    pub node: String,
    pub rooms: Vec<RoomItem>,
}

/// What did not travel: entries too large for any payload, as (room, client id, bytes).
pub type Dropped = Vec<(String, u64, usize)>;

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Builds payloads of at most [`MAX_PAYLOAD`] bytes, in order. An item's parts may be split
/// over several payloads (each repeating the room); an entry that does not fit an otherwise
/// empty payload is dropped and reported.
pub fn encode(node: &str, items: Vec<RoomItem>) -> (Vec<String>, Dropped) {
    let head = format!("{{\"node\":{},\"rooms\":[", json_string(node));
    const TAIL: &str = "]}";
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    // The payload being built: its room parts, and their total length with commas.
    let mut parts: Vec<String> = Vec::new();
    let mut parts_len = 0usize;
    let flush = |parts: &mut Vec<String>, parts_len: &mut usize, out: &mut Vec<String>| {
        if parts.is_empty() {
            return;
        }
        let mut p = String::with_capacity(head.len() + *parts_len + TAIL.len());
        p.push_str(&head);
        p.push_str(&parts.join(","));
        p.push_str(TAIL);
        out.push(p);
        parts.clear();
        *parts_len = 0;
    };
    let budget = MAX_PAYLOAD.saturating_sub(head.len() + TAIL.len());
    for item in items {
        let room = json_string(&item.room);
        // `{"room":R` + `,"entries":[` … `]` + counts + query + `}`
        let mut extra = String::new();
        if let Some((f, w)) = item.counts {
            extra.push_str(&format!(",\"counts\":[{f},{w}]"));
        }
        if item.query {
            extra.push_str(",\"query\":true");
        }
        let bare = format!("{{\"room\":{room}{extra}}}");
        let open = format!("{{\"room\":{room},\"entries\":[");
        let close = format!("]{extra}}}");
        let mut entries: Vec<String> = Vec::new();
        let mut entries_len = 0usize;
        let room_part = |entries: &[String]| -> String {
            if entries.is_empty() {
                bare.clone()
            } else {
                format!("{open}{}{close}", entries.join(","))
            }
        };
        let sep = |parts: &Vec<String>| usize::from(!parts.is_empty());
        for e in item.entries {
            let wire = WireEntry {
                id: e.client_id,
                clock: e.clock,
                state: e.state,
            };
            let json = serde_json::to_string(&wire).unwrap_or_default();
            if open.len() + json.len() + close.len() > budget {
                dropped.push((item.room.clone(), wire.id, json.len()));
                continue;
            }
            let grown =
                open.len() + entries_len + usize::from(!entries.is_empty()) + json.len() + close.len();
            if parts_len + sep(&parts) + grown > budget {
                if !entries.is_empty() {
                    // The entries so far travel as a part of their own.
                    let part = room_part(&entries);
                    if parts_len + sep(&parts) + part.len() > budget {
                        flush(&mut parts, &mut parts_len, &mut out);
                    }
                    parts_len += sep(&parts) + part.len();
                    parts.push(part);
                    entries.clear();
                    entries_len = 0;
                }
                flush(&mut parts, &mut parts_len, &mut out);
            }
            entries_len += usize::from(!entries.is_empty()) + json.len();
            entries.push(json);
        }
        let part = room_part(&entries);
        if entries.is_empty() && item.counts.is_none() && !item.query {
            continue; // nothing left to say
        }
        if parts_len + sep(&parts) + part.len() > budget {
            flush(&mut parts, &mut parts_len, &mut out);
        }
        parts_len += sep(&parts) + part.len();
        parts.push(part);
    }
    flush(&mut parts, &mut parts_len, &mut out);
    (out, dropped)
}

pub fn decode(payload: &str) -> Result<Heard, String> {
    let w: Wire = serde_json::from_str(payload).map_err(|e| format!("awareness payload: {e}"))?;
    Ok(Heard {
        node: w.node,
        rooms: w
            .rooms
            .into_iter()
            .map(|r| RoomItem {
                room: r.room,
                entries: r
                    .entries
                    .into_iter()
                    .map(|e| AwarenessEntry {
                        client_id: e.id,
                        clock: e.clock,
                        state: e.state,
                    })
                    .collect(),
                counts: r.counts,
                query: r.query,
            })
            .collect(),
    })
}

/// Items queued for the node's publisher before new ones are dropped.
pub const QUEUE: usize = 4096;

/// A handle on the node's ordered, bounded send queue.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<RoomItem>,
    dropped: Arc<AtomicU64>,
}

/// The receiving end of the send queue, which the publishing task drains.
pub struct Queue {
    rx: mpsc::Receiver<RoomItem>,
    dropped: Arc<AtomicU64>,
}

impl Publisher {
    pub fn new() -> (Publisher, Queue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::<AtomicU64>::default();
        (
            Publisher {
                tx,
                dropped: dropped.clone(),
            },
            Queue { rx, dropped },
        )
    }

    /// Queues an item; never waits. A full queue drops it (counted in [`Queue::take_dropped`]).
    pub fn publish(&self, item: RoomItem) {
        if self.tx.try_send(item).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Queue {
    /// The next item; `None` once every [`Publisher`] is gone.
    pub async fn recv(&mut self) -> Option<RoomItem> {
        self.rx.recv().await
    }

    /// An item already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<RoomItem> {
        self.rx.try_recv().ok()
    }

    /// Items dropped for a full queue since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, clock: u32, state: &str) -> AwarenessEntry {
        AwarenessEntry {
            client_id: id,
            clock,
            state: state.into(),
        }
    }

    fn item(room: &str, entries: Vec<AwarenessEntry>) -> RoomItem {
        RoomItem {
            room: room.into(),
            entries,
            ..RoomItem::default()
        }
    }

    /// Everything decoded from `payloads`, merged per room in order.
    fn back(node: &str, payloads: &[String]) -> Vec<RoomItem> {
        let mut out: Vec<RoomItem> = Vec::new();
        for p in payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{} bytes", p.len());
            let h = decode(p).expect("decode");
            assert_eq!(h.node, node);
            for r in h.rooms {
                match out.last_mut() {
                    Some(last) if last.room == r.room => {
                        last.entries.extend(r.entries);
                        last.counts = last.counts.or(r.counts);
                        last.query |= r.query;
                    }
                    _ => out.push(r),
                }
            }
        }
        out
    }

    #[test]
    fn items_round_trip_in_one_payload() {
        let items = vec![
            RoomItem {
                counts: Some((3, 1)),
                query: true,
                ..item(
                    "m/g",
                    vec![
                        entry(7, 2, r#"{"user":{"name":"Ana \"A\""},"role":"rapporteur"}"#),
                        entry(8, 4, "null"),
                    ],
                )
            },
            RoomItem {
                counts: Some((0, 0)),
                ..item("m/plenary", vec![])
            },
        ];
        let (payloads, dropped) = encode("n1", items.clone());
        assert!(dropped.is_empty());
        assert_eq!(payloads.len(), 1);
        assert_eq!(back("n1", &payloads), items);
    }

    #[test]
    fn many_entries_split_into_payloads_under_the_limit_in_order() {
        let state = format!(r#"{{"user":{{"name":"{}"}}}}"#, "x".repeat(300));
        let entries: Vec<_> = (1..=200).map(|i| entry(i, i as u32, &state)).collect();
        let items = vec![
            RoomItem {
                counts: Some((5, 2)),
                ..item("m/a", entries.clone())
            },
            item("m/b", entries[..3].to_vec()),
        ];
        let (payloads, dropped) = encode("n", items.clone());
        assert!(dropped.is_empty());
        assert!(payloads.len() > 5, "{}", payloads.len());
        assert_eq!(back("n", &payloads), items);
    }

    #[test]
    fn an_entry_too_large_for_any_payload_is_dropped_and_reported_the_rest_travels() {
        let big = format!(r#"{{"blob":"{}"}}"#, "b".repeat(MAX_PAYLOAD));
        let items = vec![RoomItem {
            counts: Some((1, 1)),
            ..item(
                "m/g",
                vec![entry(1, 1, "{}"), entry(2, 1, &big), entry(3, 1, "{}")],
            )
        }];
        let (payloads, dropped) = encode("n", items);
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].0.as_str(), dropped[0].1), ("m/g", 2));
        let got = back("n", &payloads);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].entries, vec![entry(1, 1, "{}"), entry(3, 1, "{}")]);
        assert_eq!(got[0].counts, Some((1, 1)));
    }

    #[test]
    fn an_item_with_nothing_to_say_sends_nothing() {
        let (payloads, _) = encode("n", vec![item("m/g", vec![])]);
        assert!(payloads.is_empty());
    }

    #[test]
    fn malformed_payloads_are_refused() {
        assert!(decode("{").is_err());
        assert!(decode(r#"{"node":"n"}"#).is_err());
        assert!(decode(
            r#"{"node":"n","rooms":[{"room":"m/g","entries":[{"id":-1,"clock":1,"state":"{}"}]}]}"#
        )
        .is_err());
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (p, mut q) = Publisher::new();
        for _ in 0..QUEUE + 3 {
            p.publish(item("m/g", vec![]));
        }
        assert_eq!(q.take_dropped(), 3);
        assert_eq!(q.take_dropped(), 0);
        assert!(q.try_recv().is_some());
        drop(p);
        let mut n = 1;
        while q.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(
            n, QUEUE,
            "every queued item is still delivered after the handles are gone"
        );
    }
}
