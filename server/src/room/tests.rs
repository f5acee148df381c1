//! Unit tests of the room core: real rooms (actor, members, durability pipeline, vetting in an
//! in-process sandbox worker) over the in-memory store with its gate and failure injection,
//! fake members (outbox receivers read directly), and tokio's paused clock.

use super::command::{ConnId, Member, RoomCmd};
use super::context::{RoomContext, RoomSettings};
use super::outbox::Outbox;
use super::registry::RoomHandle;
use super::test_support::{join_member, node_shared, settings, store_with_m1};
use crate::auth::{Role, TokenHash};
use crate::connection::close::close_code;
use crate::plenary::merge::{Conclusion, GroupConclusions};
use crate::store::memory::MemoryStore;
use crate::store::Store;
use bytes::Bytes;
use plenary_protocol::layout::{self, conclusion as ck};
use plenary_protocol::{GroupId, Limits, MeetingId, Message, RoomPath};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, GetString, MapPrelim, Text, TextPrelim, Transact, Update};

const MEETING: &str = "m1";
const GROUP: &str = "g1";
/// Long enough that nothing in a test waits on it by accident.
const DEADLINE: Duration = Duration::from_secs(30);

fn meeting_id() -> MeetingId {
    MeetingId::parse(MEETING).unwrap()
}

fn group_path() -> RoomPath {
    RoomPath::group(meeting_id(), GroupId::parse(GROUP).unwrap())
}

fn plenary_path() -> RoomPath {
    RoomPath::plenary(meeting_id())
}

struct Harness {
    ctx: RoomContext,
    store: Arc<MemoryStore>,
    /// Inboxes of plenary rooms, when the test stands in for the plenary.
    plenary_inboxes: Option<mpsc::UnboundedReceiver<mpsc::Receiver<RoomCmd>>>,
}

/// A context over a fresh in-memory store holding meeting `m1` with group `g1`. With
/// `fake_plenary`, plenary rooms are not started: their inboxes go to the test.
async fn harness(settings: RoomSettings, fake_plenary: bool) -> Harness {
    let store = store_with_m1().await;
    let shared = node_shared(&store, crate::cluster::Cluster::solo(), settings).await;
    let (inboxes_tx, inboxes_rx) = mpsc::unbounded_channel();
    let ctx = super::context_with_launcher(shared, move |ctx, path, instance, inbox| {
        if fake_plenary && path.is_plenary() {
            let _ = inboxes_tx.send(inbox);
            return;
        }
        tokio::spawn(super::actor::run(path, instance, ctx, inbox));
    });
    Harness {
        ctx,
        store,
        plenary_inboxes: fake_plenary.then_some(inboxes_rx),
    }
}

/// A member as a test sees it: what the room queued for it, and its kick.
struct Fake {
    conn: ConnId,
    outbox: Outbox,
    rx: mpsc::Receiver<Bytes>,
    /// Writes into its socket that took something.
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fake {
    /// The next frame, decoded.
    async fn next(&mut self) -> Message {
        let frame = tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .expect("a frame within the deadline")
            .expect("the outbox is open");
        Message::decode(&frame, &Limits::default()).unwrap()
    }

    /// The next frame, which must be an update: the text `t` of a fresh document it is applied to.
    async fn next_update_text(&mut self) -> String {
        match self.next().await {
            Message::Update(diff) => {
                let doc = Doc::new();
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&diff).unwrap())
                    .unwrap();
                let t = doc.get_or_insert_text("t");
                let text = t.get_string(&doc.transact());
                text
            }
            other => panic!("expected a relayed update, got {other:?}"),
        }
    }

    /// Nothing is queued for this member now.
    fn nothing_queued(&mut self) -> bool {
        matches!(self.rx.try_recv(), Err(mpsc::error::TryRecvError::Empty))
    }

    fn kicked(&self) -> Option<u16> {
        self.outbox.kick.code()
    }
}

async fn join_with(h: &Harness, path: &RoomPath, conn: u64, capacity: usize) -> (Fake, RoomHandle) {
    let handle = h.ctx.rooms.get_or_load(path).expect("the room may load");
    let (outbox, rx, writes) = Outbox::counted(capacity, 1 << 20);
    let member = Member {
        outbox: outbox.clone(),
        role: if path.is_plenary() {
            Role::Moderator
        } else {
            Role::Rapporteur(GROUP.into())
        },
        token: TokenHash::of(&format!("token-{conn}")),
        can_write: true,
        wants_ack: true,
    };
    join_member(&handle, ConnId(conn), member).await;
    let mut fake = Fake {
        conn: ConnId(conn),
        outbox,
        rx,
        writes,
    };
    // The greeting: the room's sync step 1 (awareness only when there are states).
    assert!(matches!(fake.next().await, Message::SyncStep1(_)));
    while fake.rx.try_recv().is_ok() {}
    (fake, handle)
}

async fn join(h: &Harness, conn: u64) -> (Fake, RoomHandle) {
    join_with(h, &group_path(), conn, 64).await
}

/// A client's edit: `text` appended to its text `t`, as a v1 update.
fn edit(client: &Doc, text: &str) -> Vec<u8> {
    let t = client.get_or_insert_text("t");
    let mut txn = client.transact_mut();
    let len = t.len(&txn);
    t.insert(&mut txn, len, text);
    txn.encode_update_v1()
}

/// A client's edit that adds a conclusion to a group document.
fn add_conclusion(client: &Doc, id: &str, text: &str) -> Vec<u8> {
    let arr = client.get_or_insert_array(layout::CONCLUSIONS);
    let mut txn = client.transact_mut();
    arr.push_back(
        &mut txn,
        MapPrelim::from([
            (ck::ID, yrs::In::from(id)),
            (ck::TEXT, yrs::In::from(TextPrelim::new(text))),
            (ck::STATUS, yrs::In::from("draft")),
        ]),
    );
    txn.encode_update_v1()
}

async fn send_update(handle: &RoomHandle, conn: ConnId, raw: Vec<u8>) {
    let update = Update::decode_v1(&raw).unwrap();
    handle
        .tx
        .send(RoomCmd::Update { conn, update, raw })
        .await
        .unwrap();
}

/// The text `t` of a document rebuilt from what the store holds.
async fn stored_text(store: &MemoryStore, key: &str) -> String {
    let stored = store.load_doc(key).await.unwrap();
    let doc = stored.to_doc().unwrap();
    let t = doc.get_or_insert_text("t");
    let txn = doc.transact();
    t.get_string(&txn)
}

/// Lets every task run until all wait (the paused clock moves only then).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_relayed_or_acknowledged_before_its_batch_is_durable() {
    let h = harness(settings(), false).await;
    let (mut writer, handle) = join(&h, 1).await;
    let (mut reader, _) = join(&h, 2).await;
    h.store.hold_appends();
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, edit(&client, "hello")).await;
    h.store.wait_pending_appends(1).await;
    settle().await;
    // The batch reached the store and is held there: nobody has it, nor its ack.
    assert_eq!(h.store.pending_appends(), 1);
    assert!(reader.nothing_queued(), "relayed before durable");
    assert!(writer.nothing_queued(), "acknowledged before durable");
    assert_eq!(stored_text(&h.store, &group_path().to_string()).await, "");
    h.store.release_appends();
    assert_eq!(reader.next_update_text().await, "hello");
    match writer.next().await {
        Message::SavedAck(sv) => assert_eq!(sv.get(&yrs::ClientID::new(77)), 5),
        other => panic!("expected a saved ack, got {other:?}"),
    }
    assert_eq!(stored_text(&h.store, &group_path().to_string()).await, "hello");
}

#[tokio::test(start_paused = true)]
async fn updates_made_durable_together_reach_a_follower_in_one_write() {
    let h = harness(settings(), false).await;
    let (mut writer, handle) = join(&h, 1).await;
    let (mut reader, _) = join(&h, 2).await;
    let greeted = reader.writes.load(std::sync::atomic::Ordering::SeqCst);
    h.store.hold_appends();
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, edit(&client, "a")).await;
    h.store.wait_pending_appends(1).await;
    // Two more batches, each its own append, wait behind the held one; the persister commits
    // them together once the gate opens, so their answers arrive together. Each carries the
    // writer's saved ack, between the relays.
    for text in ["b", "c"] {
        send_update(&handle, writer.conn, edit(&client, text)).await;
        settle().await;
    }
    assert!(reader.nothing_queued());
    h.store.release_appends();
    let doc = Doc::new();
    for _ in 0..3 {
        match reader.next().await {
            Message::Update(diff) => doc
                .transact_mut()
                .apply_update(Update::decode_v1(&diff).unwrap())
                .unwrap(),
            other => panic!("expected a relayed update, got {other:?}"),
        }
    }
    assert_eq!(doc.get_or_insert_text("t").get_string(&doc.transact()), "abc");
    let writes = reader.writes.load(std::sync::atomic::Ordering::SeqCst) - greeted;
    // "a" may leave alone (its answer can come first); "b" and "c" leave in one write.
    assert!(writes <= 2, "{writes} writes for three updates");
    for _ in 0..3 {
        assert!(matches!(writer.next().await, Message::SavedAck(_)));
    }
    assert!(
        writer.nothing_queued(),
        "the writer gets its acks, not its own updates"
    );
}

#[tokio::test(start_paused = true)]
async fn what_was_durable_before_a_failed_write_still_reaches_the_members() {
    let h = harness(settings(), false).await;
    let (writer, handle) = join(&h, 1).await;
    let (mut reader, _) = join(&h, 2).await;
    h.store.hold_appends();
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, edit(&client, "kept")).await;
    h.store.wait_pending_appends(1).await;
    send_update(&handle, writer.conn, edit(&client, "lost")).await;
    settle().await;
    // "kept" commits, "lost" (the next transaction) fails: both answers arrive together.
    h.store.fail_appends_after(1, 1);
    h.store.release_appends();
    assert_eq!(reader.next_update_text().await, "kept");
    let closed = async {
        while reader.kicked().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, closed)
        .await
        .expect("the room closes its members");
    assert_eq!(reader.kicked(), Some(close_code::INTERNAL_ERROR));
    while let Ok(frame) = reader.rx.try_recv() {
        let msg = Message::decode(&frame, &Limits::default()).unwrap();
        assert!(!matches!(msg, Message::Update(_)), "the failed write was relayed");
    }
    assert_eq!(stored_text(&h.store, &group_path().to_string()).await, "kept");
}

#[tokio::test(start_paused = true)]
async fn a_store_failure_closes_the_room_so_clients_resync() {
    let h = harness(settings(), false).await;
    let (writer, handle) = join(&h, 1).await;
    let (mut reader, _) = join(&h, 2).await;
    h.store.fail_next_appends(1);
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, edit(&client, "lost")).await;
    let unloaded = async {
        while h
            .ctx
            .rooms
            .get(&group_path())
            .is_some_and(|r| r.instance == handle.instance)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(DEADLINE, unloaded)
        .await
        .expect("the room unloads");
    assert_eq!(writer.kicked(), Some(close_code::INTERNAL_ERROR));
    assert_eq!(reader.kicked(), Some(close_code::INTERNAL_ERROR));
    // What failed was never relayed.
    while let Ok(frame) = reader.rx.try_recv() {
        let msg = Message::decode(&frame, &Limits::default()).unwrap();
        assert!(!matches!(msg, Message::Update(_)), "a failed write was relayed");
    }
    // A reconnecting client finds a fresh room, loaded from the store, without the lost edit.
    let (_again, successor) = join(&h, 3).await;
    assert_ne!(successor.instance, handle.instance);
    assert_eq!(stored_text(&h.store, &group_path().to_string()).await, "");
}

#[tokio::test(start_paused = true)]
async fn an_idle_room_unloads_and_reloads_from_the_store() {
    let h = harness(
        RoomSettings {
            room_idle: Duration::from_secs(5),
            ..settings()
        },
        false,
    )
    .await;
    let (mut writer, handle) = join(&h, 1).await;
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, edit(&client, "kept")).await;
    assert!(matches!(writer.next().await, Message::SavedAck(_)));
    handle
        .tx
        .send(RoomCmd::Leave { conn: writer.conn })
        .await
        .unwrap();
    settle().await;
    assert!(
        h.ctx.rooms.get(&group_path()).is_some(),
        "unloaded while not idle yet"
    );
    // The group and the plenary it fed.
    assert_eq!(h.ctx.metrics.rooms_loaded.get(), 2);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        h.ctx.rooms.get(&group_path()).is_none(),
        "an idle room stays loaded"
    );
    assert_eq!(h.ctx.metrics.rooms_loaded.get(), 0);
    // The next connection loads a new room from the store: its greeting knows the edit.
    let handle2 = h.ctx.rooms.get_or_load(&group_path()).unwrap();
    assert_ne!(handle2.instance, handle.instance);
    let (outbox, mut rx) = Outbox::new(8, 1 << 20);
    let member = Member {
        outbox,
        role: Role::Rapporteur(GROUP.into()),
        token: TokenHash::of("t"),
        can_write: true,
        wants_ack: false,
    };
    join_member(&handle2, ConnId(9), member).await;
    let greeting = rx.recv().await.unwrap();
    match Message::decode(&greeting, &Limits::default()).unwrap() {
        Message::SyncStep1(sv) => assert_eq!(sv.get(&yrs::ClientID::new(77)), 4),
        other => panic!("expected sync step 1, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn commands_racing_an_unload_reach_the_successor() {
    let h = harness(settings(), false).await;
    let plenary = h.ctx.rooms.get_or_load(&plenary_path()).unwrap();
    // Loaded (its structure stored) before the store is held.
    let (reply, loaded) = oneshot::channel();
    plenary.tx.send(RoomCmd::Inspect { reply }).await.unwrap();
    loaded.await.unwrap();
    let conclusions = |text: &str| {
        RoomCmd::GroupConclusions(GroupConclusions {
            group: GROUP.into(),
            conclusions: vec![Conclusion {
                id: "c1".into(),
                text: text.into(),
                status: "draft".into(),
            }],
        })
    };
    // The plenary's next write is held, then fails: the room will unload.
    h.store.hold_appends();
    h.store.fail_next_appends(1);
    plenary.tx.send(conclusions("first")).await.unwrap();
    h.store.wait_pending_appends(1).await;
    settle().await;
    // These reach the inbox while the failure is on its way: the room sees the failure
    // first (durability before commands), unloads, and must hand them to its successor.
    h.store.release_appends();
    plenary.tx.try_send(conclusions("second")).ok().unwrap();
    let (reply, json) = oneshot::channel();
    plenary.tx.try_send(RoomCmd::Inspect { reply }).ok().unwrap();
    let json = tokio::time::timeout(DEADLINE, json)
        .await
        .expect("answered within the deadline")
        .expect("the inspection was handed to a successor, not dropped");
    // Not the unloading room's answer: that one held "first" (merged, never stored).
    assert!(
        !json.to_string().contains("first"),
        "answered by the failed room: {json}"
    );
    let successor = h.ctx.rooms.get(&plenary_path()).expect("a successor is loaded");
    assert_ne!(successor.instance, plenary.instance);
    // The racing input reached the successor too (an inspection in the same batch reads the
    // document before the batch's merge, so ask again).
    let (reply, json) = oneshot::channel();
    assert!(
        h.ctx
            .rooms
            .send(&plenary_path(), RoomCmd::Inspect { reply })
            .await
    );
    let shown = json.await.unwrap().to_string();
    assert!(
        shown.contains("second"),
        "the successor merged the racing input: {shown}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_log_is_compacted_after_compact_after_updates() {
    let h = harness(
        RoomSettings {
            compact_after: 3,
            ..settings()
        },
        false,
    )
    .await;
    let (mut writer, handle) = join(&h, 1).await;
    let client = Doc::with_client_id(77);
    let key = group_path().to_string();
    for (i, word) in ["a", "b"].iter().enumerate() {
        send_update(&handle, writer.conn, edit(&client, word)).await;
        assert!(matches!(writer.next().await, Message::SavedAck(_)));
        let stored = h.store.load_doc(&key).await.unwrap();
        assert_eq!(stored.updates.len(), i + 1, "compacted too early");
        assert!(stored.snapshot.is_none());
    }
    send_update(&handle, writer.conn, edit(&client, "c")).await;
    assert!(matches!(writer.next().await, Message::SavedAck(_)));
    settle().await;
    let stored = h.store.load_doc(&key).await.unwrap();
    assert!(
        stored.snapshot.is_some(),
        "no snapshot after compact_after updates"
    );
    // Alone on its store, a room's snapshot covers everything it appended (the persister is
    // FIFO: the batch still in flight is committed before the compaction); on a shared store it
    // covers the room's watermark (`replication_tests`).
    assert!(stored.updates.is_empty(), "the log is kept after compaction");
    assert_eq!(stored.head, 3);
    assert_eq!(stored_text(&h.store, &key).await, "abc");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_cannot_keep_up_is_closed_with_1013_and_the_others_go_on() {
    let h = harness(settings(), false).await;
    let (mut writer, handle) = join(&h, 1).await;
    // Room for one frame in its socket and one in its queue; this member never reads.
    let (slow, _) = join_with(&h, &group_path(), 2, 1).await;
    let client = Doc::with_client_id(77);
    for word in ["a", "b", "c", "d"] {
        send_update(&handle, writer.conn, edit(&client, word)).await;
        assert!(matches!(writer.next().await, Message::SavedAck(_)));
    }
    assert_eq!(slow.kicked(), Some(close_code::TRY_AGAIN_LATER));
    assert_eq!(h.ctx.metrics.slow_disconnects.get(), 1);
    assert_eq!(writer.kicked(), None);
    // It left the room: later relays no longer try it.
    send_update(&handle, writer.conn, edit(&client, "e")).await;
    assert!(matches!(writer.next().await, Message::SavedAck(_)));
    assert_eq!(h.ctx.metrics.slow_disconnects.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_group_feeds_its_plenary_only_what_is_durable() {
    let mut h = harness(settings(), true).await;
    let (writer, handle) = join(&h, 1).await;
    h.store.hold_appends();
    let client = Doc::with_client_id(77);
    send_update(&handle, writer.conn, add_conclusion(&client, "c1", "Water first")).await;
    h.store.wait_pending_appends(1).await;
    // Well past the merge delay: the group has read its conclusions, but its batch is held.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let inboxes = h.plenary_inboxes.as_mut().unwrap();
    // The plenary room may have been started (loading is not the hand-over) ...
    let mut plenary = inboxes.try_recv().ok();
    if let Some(inbox) = plenary.as_mut() {
        assert!(
            inbox.try_recv().is_err(),
            "the plenary got conclusions that are not durable"
        );
    }
    h.store.release_appends();
    let mut inbox = match plenary {
        Some(inbox) => inbox,
        None => tokio::time::timeout(DEADLINE, inboxes.recv())
            .await
            .unwrap()
            .unwrap(),
    };
    match tokio::time::timeout(DEADLINE, inbox.recv()).await.unwrap() {
        Some(RoomCmd::GroupConclusions(gc)) => {
            assert_eq!(gc.group, GROUP);
            assert_eq!(gc.conclusions[0].text, "Water first");
        }
        _ => panic!("expected the group's conclusions"),
    }
    // And by then the group's update is in the store.
    let stored = h.store.load_doc(&group_path().to_string()).await.unwrap();
    assert_eq!(stored.updates.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rooms_of_an_unknown_meeting_are_not_loaded() {
    let h = harness(settings(), false).await;
    let unknown = RoomPath::plenary(MeetingId::parse("gone").unwrap());
    assert!(h.ctx.rooms.get_or_load(&unknown).is_none());
    assert!(!h.ctx.rooms.send(&unknown, RoomCmd::GroupMeta {}).await);
    h.ctx.directory.remove_meeting(&meeting_id());
    assert!(h.ctx.rooms.get_or_load(&plenary_path()).is_none());
    assert!(h.ctx.rooms.get_or_load(&group_path()).is_none());
}
