//! Replication between nodes at room level: two (or three) "nodes" in one process, each a
//! real room context (actor, persister with its ringer, in-process sandbox, the node's
//! listener) over one shared in-memory store and one in-process bus, with fake members and
//! tokio's paused clock. A node that must miss rings gets its own bus, or a lossy link.

use super::command::{ConnId, Member, RoomCmd};
use super::context::{RoomContext, RoomSettings};
use super::outbox::Outbox;
use super::registry::RoomHandle;
use super::replication::HEAD_CHECK;
use super::test_support::{join_member, node_context, settings, store_with_m1};
use crate::auth::{Role, TokenHash};
use crate::cluster::transport::{Channel, Heard, LocalBus, Transport};
use crate::cluster::{new_node_id, Cluster};
use crate::limits::ReplyMeter;
use crate::store::memory::MemoryStore;
use crate::store::Store;
use bytes::Bytes;
use plenary_protocol::layout::plenary as pk;
use plenary_protocol::{GroupId, Limits, MeetingId, Message, RoomPath};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, Text, TextPrelim, Transact, Update};

const DEADLINE: Duration = Duration::from_secs(30);

fn group_path() -> RoomPath {
    RoomPath::group(MeetingId::parse("m1").unwrap(), GroupId::parse("g1").unwrap())
}

fn plenary_path() -> RoomPath {
    RoomPath::plenary(MeetingId::parse("m1").unwrap())
}

/// One node: its own persister (ringing on `bus`), directory, sandbox and, with `listen`, its
/// listener on `bus`.
async fn node(
    store: &Arc<MemoryStore>,
    bus: Arc<dyn Transport>,
    settings: RoomSettings,
    listen: bool,
) -> RoomContext {
    let node = new_node_id();
    let cluster = Arc::new(Cluster {
        leases: Arc::new(crate::cluster::leases::Leases::solo(&node)),
        node,
        transport: bus,
        shared_store: true,
        presence: Default::default(),
    });
    let ctx = node_context(store, cluster, settings).await;
    if listen {
        super::replication::spawn(&ctx);
    }
    ctx
}

/// A member as a test sees it, with a client document that takes every update it receives.
struct Fake {
    conn: ConnId,
    rx: mpsc::Receiver<Bytes>,
    room: RoomHandle,
    client: Doc,
    denied: usize,
}

impl Fake {
    async fn join(ctx: &RoomContext, path: &RoomPath, conn: u64, client: u64) -> Fake {
        let room = ctx.rooms.get_or_load(path).expect("the room may load");
        let (outbox, rx) = Outbox::new(1024, 1 << 24);
        let member = Member {
            outbox,
            role: if path.is_plenary() {
                Role::Moderator
            } else {
                Role::Rapporteur("g1".into())
            },
            token: TokenHash::of(&format!("token-{conn}")),
            can_write: true,
            wants_ack: false,
        };
        join_member(&room, ConnId(conn), member).await;
        let fake = Fake {
            conn: ConnId(conn),
            rx,
            room,
            client: Doc::with_client_id(client),
            denied: 0,
        };
        // Ask for the whole document, as a client does on connecting.
        let ticket = Arc::new(ReplyMeter::default()).ticket().await;
        fake.room
            .tx
            .send(RoomCmd::SyncStep1 {
                conn: fake.conn,
                sv: yrs::StateVector::default(),
                ticket,
            })
            .await
            .unwrap();
        fake
    }

    fn take(&mut self, frame: Bytes) {
        match Message::decode(&frame, &Limits::default()).unwrap() {
            Message::Update(u) | Message::SyncStep2(u) => {
                self.client
                    .transact_mut()
                    .apply_update(Update::decode_v1(&u).unwrap())
                    .unwrap();
            }
            Message::Auth(Some(_)) => self.denied += 1,
            _ => {}
        }
    }

    /// Takes what is queued now.
    fn drain(&mut self) {
        while let Ok(frame) = self.rx.try_recv() {
            self.take(frame);
        }
    }

    /// Takes frames until the client's text `t` is `want`; false if it is not within `within`.
    async fn until_text(&mut self, want: &str, within: Duration) -> bool {
        let wait = async {
            loop {
                self.drain();
                if self.text() == want {
                    return;
                }
                match self.rx.recv().await {
                    Some(frame) => self.take(frame),
                    None => std::future::pending().await,
                }
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    fn text(&self) -> String {
        let t = self.client.get_or_insert_text("t");
        let txn = self.client.transact();
        t.get_string(&txn)
    }

    /// Appends `text` to the client's text `t` and sends the update.
    async fn write(&mut self, text: &str) {
        let raw = {
            let t = self.client.get_or_insert_text("t");
            let mut txn = self.client.transact_mut();
            let len = t.len(&txn);
            t.insert(&mut txn, len, text);
            txn.encode_update_v1()
        };
        self.send(raw).await;
    }

    async fn send(&self, raw: Vec<u8>) {
        let update = Update::decode_v1(&raw).unwrap();
        self.room
            .tx
            .send(RoomCmd::Update {
                conn: self.conn,
                update,
                raw,
            })
            .await
            .unwrap();
    }
}

/// Lets every task run until all wait.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The text `t` of the document as the store holds it.
async fn stored_text(store: &MemoryStore, key: &str) -> String {
    let doc = store.load_doc(key).await.unwrap().to_doc().unwrap();
    let t = doc.get_or_insert_text("t");
    let txn = doc.transact();
    t.get_string(&txn)
}

/// Waits until the store's text is `want`.
async fn until_stored(store: &MemoryStore, key: &str, want: &str) {
    let wait = async {
        while stored_text(store, key).await != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("the store never held {want:?}"));
}

/// Forwards the shared bus to a node's own bus, dropping the Docs messages `drop` picks (by
/// their index among Docs messages).
fn lossy_link(from: &LocalBus, drop: impl Fn(usize) -> bool + Send + 'static) -> Arc<LocalBus> {
    let to = Arc::new(LocalBus::default());
    let mut rx = from.subscribe();
    let out = to.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok(heard) = rx.recv().await {
            if let Heard::Message {
                channel: Channel::Docs,
                payload,
            } = heard
            {
                n += 1;
                if drop(n - 1) {
                    continue;
                }
                let _ = out.send(Channel::Docs, vec![payload.to_string()]).await;
            }
        }
    });
    to
}

#[tokio::test(start_paused = true)]
async fn writers_on_two_nodes_converge_and_each_relays_the_others_writes() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let b = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    settle().await;
    on_a.write("a").await;
    assert!(
        on_b.until_text("a", Duration::from_secs(1)).await,
        "b got {:?}",
        on_b.text()
    );
    on_b.write("b").await;
    assert!(
        on_a.until_text("ab", Duration::from_secs(1)).await,
        "a got {:?}",
        on_a.text()
    );
    // Concurrent writes on both nodes.
    for i in 0..5 {
        on_a.write(&format!("{i}")).await;
        on_b.write(&format!("{i}")).await;
    }
    settle().await;
    on_a.drain();
    on_b.drain();
    let want = stored_text(&store, &group_path().to_string()).await;
    assert_eq!(want.len(), 12, "every write is stored: {want:?}");
    assert!(
        on_a.until_text(&want, Duration::from_secs(1)).await,
        "a: {:?} vs {want:?}",
        on_a.text()
    );
    assert!(
        on_b.until_text(&want, Duration::from_secs(1)).await,
        "b: {:?} vs {want:?}",
        on_b.text()
    );
    // Within a second, on rings alone: no read of the log was needed.
    assert_eq!(b.metrics.cluster_gaps.get(), 0);
    assert!(b.metrics.cluster_remote_updates.get() >= 6);
    // A third node joining late has everything.
    let c = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let mut on_c = Fake::join(&c, &group_path(), 3, 103).await;
    assert!(
        on_c.until_text(&want, Duration::from_secs(1)).await,
        "c: {:?}",
        on_c.text()
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_ring_is_caught_up_by_the_head_check() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    // b hears nothing from a: every ring is lost.
    let b = node(&store, Arc::new(LocalBus::default()), settings(), true).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    settle().await;
    on_a.write("lost ring").await;
    until_stored(&store, &group_path().to_string(), "lost ring").await;
    settle().await;
    on_b.drain();
    assert_eq!(on_b.text(), "", "b heard a ring on a bus nobody rang");
    assert!(
        on_b.until_text("lost ring", HEAD_CHECK * 3).await,
        "the head check did not catch b up: {:?}",
        on_b.text()
    );
    assert!(b.metrics.cluster_gaps.get() >= 1);
    drop(on_a);
}

#[tokio::test(start_paused = true)]
async fn a_gap_is_filled_from_the_log_before_the_head_check() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    // b misses a's first ring only.
    let b_bus = lossy_link(&bus, |n| n == 0);
    let b = node(&store, b_bus, settings(), true).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    // Past the head check's first tick, well before its next.
    tokio::time::sleep(HEAD_CHECK / 4).await;
    on_a.write("x").await;
    until_stored(&store, &group_path().to_string(), "x").await;
    settle().await;
    on_b.drain();
    assert_eq!(on_b.text(), "", "the dropped ring arrived");
    on_a.write("y").await;
    // The second ring follows a gap: b reads the log at once, long before the next check.
    assert!(
        on_b.until_text("xy", HEAD_CHECK / 4).await,
        "the gap was not filled from the log: {:?}",
        on_b.text()
    );
    assert_eq!(b.metrics.cluster_gaps.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_room_loading_while_others_write_misses_nothing() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    for w in ["one ", "two "] {
        on_a.write(w).await;
    }
    until_stored(&store, &group_path().to_string(), "one two ").await;
    // b's room registers (subscribed through b's listener) and loads while a keeps writing:
    // rings that reach its inbox before it has read the store are judged against the head it
    // loads, so nothing is lost or applied twice.
    let b = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let _loading = b.rooms.get_or_load(&group_path()).unwrap();
    on_a.write("three ").await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    on_a.write("four").await;
    assert!(
        on_b.until_text("one two three four", Duration::from_secs(1))
            .await,
        "b: {:?}",
        on_b.text()
    );
    assert_eq!(b.metrics.cluster_gaps.get(), 0, "rings alone kept b current");
}

#[tokio::test(start_paused = true)]
async fn a_compaction_claims_only_what_its_node_applied() {
    let store = store_with_m1().await;
    let key = group_path().to_string();
    // a never hears b (no listener, own bus): its watermark stays below b's update.
    let a = node(
        &store,
        Arc::new(LocalBus::default()),
        RoomSettings {
            compact_after: 3,
            ..settings()
        },
        false,
    )
    .await;
    let b = node(&store, Arc::new(LocalBus::default()), settings(), false).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    settle().await;
    on_a.write("a").await;
    until_stored(&store, &key, "a").await;
    // b's update (number 2) is never applied on a.
    on_b.write("X").await;
    settle().await;
    // a's next two updates sit above that gap; the third update since load compacts.
    on_a.write("b").await;
    on_a.write("c").await;
    let compacted = async {
        while store.load_doc(&key).await.unwrap().snapshot.is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, compacted)
        .await
        .expect("a compacted");
    settle().await;
    let text = stored_text(&store, &key).await;
    assert!(text.contains('X'), "a's compaction dropped b's update: {text:?}");
    assert_eq!(text.len(), 4, "{text:?}");
    // And a late loader sees all of it.
    let c = node(&store, Arc::new(LocalBus::default()), settings(), false).await;
    let mut on_c = Fake::join(&c, &group_path(), 3, 103).await;
    assert!(on_c.until_text(&text, Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn nothing_reaches_another_node_before_it_is_durable() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let b = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let mut on_a = Fake::join(&a, &group_path(), 1, 101).await;
    let mut on_b = Fake::join(&b, &group_path(), 2, 102).await;
    settle().await;
    store.hold_appends();
    on_a.write("held").await;
    store.wait_pending_appends(1).await;
    // Past several head checks: the write is held in the store, nobody has it.
    tokio::time::sleep(HEAD_CHECK * 3).await;
    on_b.drain();
    assert_eq!(on_b.text(), "", "relayed on another node before durable");
    store.release_appends();
    assert!(on_b.until_text("held", Duration::from_secs(1)).await);
    drop(on_a);
}

/// A moderator curation note, as a Y.Text under `curation`.
fn curation_note(client: &Doc, text: &str) -> Vec<u8> {
    let curation = client.get_or_insert_map(pk::CURATION);
    let mut txn = client.transact_mut();
    curation.insert(&mut txn, "note", TextPrelim::new(text));
    txn.encode_update_v1()
}

/// Appends to the curation note the client already has.
fn append_to_note(client: &Doc, text: &str) -> Vec<u8> {
    let curation = client.get_or_insert_map(pk::CURATION);
    let mut txn = client.transact_mut();
    let note = curation
        .get(&txn, "note")
        .and_then(|v| v.cast::<yrs::TextRef>().ok())
        .expect("the note reached this client");
    let len = note.len(&txn);
    note.insert(&mut txn, len, text);
    txn.encode_update_v1()
}

fn note_text(doc: &Doc) -> Option<String> {
    let curation = doc.get_or_insert_map(pk::CURATION);
    let txn = doc.transact();
    curation
        .get(&txn, "note")
        .and_then(|v| v.cast::<yrs::TextRef>().ok())
        .map(|t| t.get_string(&txn))
}

#[tokio::test(start_paused = true)]
async fn the_sandbox_replica_hears_other_nodes_updates_before_it_vets() {
    let store = store_with_m1().await;
    let bus = LocalBus::default();
    let a = node(&store, Arc::new(bus.clone()), settings(), true).await;
    let b = node(&store, Arc::new(bus.clone()), settings(), true).await;
    // a's plenary is built first; b's loads it (so b's merge adds nothing of its own).
    let mut mod_a = Fake::join(&a, &plenary_path(), 1, 201).await;
    settle().await;
    let mut mod_b = Fake::join(&b, &plenary_path(), 2, 202).await;
    settle().await;
    mod_a.drain();
    mod_b.drain();
    // b's replica in the sandbox is seeded by a first curation write on b.
    mod_b.send(curation_note(&mod_b.client, "b's")).await;
    settle().await;
    // a's moderator writes a note that reaches b through a's ring.
    mod_a.drain();
    mod_a.send(curation_note(&mod_a.client, "from a")).await;
    let reached = async {
        loop {
            mod_b.drain();
            if note_text(&mod_b.client).is_some_and(|t| t.contains("from a")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(1), reached)
        .await
        .expect("a's note reached b");
    // b's moderator edits a's note: the sandbox must know a's update to vet it (else it sees
    // a missing dependency, and the guard denies the write).
    mod_b.send(append_to_note(&mod_b.client, "+b")).await;
    settle().await;
    mod_b.drain();
    assert_eq!(
        mod_b.denied, 0,
        "b's sandbox vetted on a replica without a's update"
    );
    let merged = async {
        loop {
            mod_a.drain();
            if note_text(&mod_a.client).is_some_and(|t| t.ends_with("+b")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(1), merged)
        .await
        .expect("b's edit of a's note reached a");
}
