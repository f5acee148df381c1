//! Two nodes in one process on one store, their plenary leases kept by an in-memory keeper on
//! the paused clock: only the holder merges, and a new holder (whose replica lagged) catches up
//! with the stored plenary and merges nothing twice.

use super::command::{ConnId, Member, RoomCmd};
use super::context::RoomContext;
use super::outbox::Outbox;
use super::registry::RoomHandle;
use super::test_support::{join_member, node_context, settings, store_with_m1};
use crate::auth::{Role, TokenHash};
use crate::cluster::lease::LeaseTiming;
use crate::cluster::leases::{self, MemoryLeases};
use crate::cluster::transport::LocalBus;
use crate::cluster::Cluster;
use crate::plenary::merge::{self, Conclusion, GroupConclusions};
use crate::store::memory::MemoryStore;
use crate::store::Store;
use bytes::Bytes;
use plenary_protocol::layout::{self, conclusion as ck};
use plenary_protocol::{GroupId, Limits, MeetingId, Message, RoomPath};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use yrs::updates::decoder::Decode;
use yrs::{Array, Doc, MapPrelim, TextPrelim, Transact, Update};

const MEETING: &str = "m1";
const GROUP: &str = "g1";
const PLENARY_DOC: &str = "m1/plenary";

fn group_path() -> RoomPath {
    RoomPath::group(MeetingId::parse(MEETING).unwrap(), GroupId::parse(GROUP).unwrap())
}

fn plenary_path() -> RoomPath {
    RoomPath::plenary(MeetingId::parse(MEETING).unwrap())
}

/// A node: its own rooms, persister, sandbox and directory over the shared store.
async fn node(store: &Arc<MemoryStore>, bus: &LocalBus) -> RoomContext {
    let timing = LeaseTiming::new(Duration::from_secs(3), Duration::from_secs(30));
    node_context(
        store,
        Cluster::node_with(Arc::new(bus.clone()), timing),
        settings(),
    )
    .await
}

fn start_leases(ctx: &RoomContext, keeper: &Arc<MemoryLeases>) -> tokio::task::JoinHandle<()> {
    leases::spawn(
        ctx.cluster.leases.clone(),
        keeper.clone(),
        super::holder::on_gained(ctx),
    )
}

struct Fake {
    rx: mpsc::Receiver<Bytes>,
    conn: ConnId,
}

impl Fake {
    /// The plenary as this member was sent it: every update frame applied to `doc`, until the
    /// queue is empty.
    fn drain_into(&mut self, doc: &Doc) {
        while let Ok(frame) = self.rx.try_recv() {
            if let Ok(Message::Update(u)) = Message::decode(&frame, &Limits::default()) {
                doc.transact_mut()
                    .apply_update(Update::decode_v1(&u).unwrap())
                    .unwrap();
            }
        }
    }
}

async fn join(ctx: &RoomContext, path: &RoomPath, conn: u64) -> (Fake, RoomHandle) {
    let handle = ctx.rooms.get_or_load(path).expect("the room may load");
    let (outbox, rx) = Outbox::new(256, 1 << 20);
    let member = Member {
        outbox,
        role: if path.is_plenary() {
            Role::Moderator
        } else {
            Role::Rapporteur(GROUP.into())
        },
        token: TokenHash::of(&format!("token-{conn}")),
        can_write: true,
        wants_ack: false,
    };
    join_member(&handle, ConnId(conn), member).await;
    (
        Fake {
            rx,
            conn: ConnId(conn),
        },
        handle,
    )
}

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

/// How often `text` shows in the plenary as the store holds it, and how many updates it logs.
async fn stored_plenary(store: &MemoryStore, text: &str) -> (usize, usize) {
    let stored = store.load_doc(PLENARY_DOC).await.unwrap();
    let n = stored.updates.len();
    let doc = stored.to_doc().unwrap();
    let json = merge::plenary_json(&doc.transact()).to_string();
    (json.matches(text).count(), n)
}

fn shown(doc: &Doc, text: &str) -> usize {
    merge::plenary_json(&doc.transact())
        .to_string()
        .matches(text)
        .count()
}

/// Lets the paused clock run in steps until `f` holds (bounded).
async fn until<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    for _ in 0..2000 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached");
}

fn conclusions(text: &str) -> GroupConclusions {
    GroupConclusions {
        group: GROUP.into(),
        conclusions: vec![Conclusion {
            id: "x".into(),
            text: text.into(),
            status: "draft".into(),
        }],
    }
}

#[tokio::test(start_paused = true)]
async fn only_the_holder_merges_and_a_new_holder_merges_nothing_twice() {
    let store = store_with_m1().await;
    let keeper = Arc::new(MemoryLeases::default());
    let bus = LocalBus::default();
    let a = node(&store, &bus).await;
    let b = node(&store, &bus).await;
    // B's moderator has the plenary open from the start: B's copy will lag A's merges (these
    // nodes do not relay to each other), as a replica may when the holder dies.
    let (mut b_mod, b_plenary) = join(&b, &plenary_path(), 1).await;
    let a_leases = start_leases(&a, &keeper);
    let (_a_mod, _) = join(&a, &plenary_path(), 2).await;
    until(|| async { a.cluster.leases.pins(MEETING) }).await;
    // A's rapporteur writes a conclusion: A's plenary merges it
    let (rapporteur, a_group) = join(&a, &group_path(), 3).await;
    let client = Doc::with_client_id(7);
    send_update(
        &a_group,
        rapporteur.conn,
        add_conclusion(&client, "c1", "first finding"),
    )
    .await;
    until(|| async { stored_plenary(&store, "first finding").await.0 == 1 }).await;
    // B, a replica, is fed the same conclusions and more: it merges nothing
    let (_, logged) = stored_plenary(&store, "first finding").await;
    b_plenary
        .tx
        .send(RoomCmd::GroupConclusions(conclusions("fed to a replica")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_plenary(&store, "fed to a replica").await, (0, logged));
    assert!(!b.cluster.leases.pins(MEETING));
    // A stops renewing (dies); B's lease task starts asking and takes the lease once it expired
    a_leases.abort();
    let _b_leases = start_leases(&b, &keeper);
    until(|| async { b.cluster.leases.pins(MEETING) }).await;
    assert!(
        !a.cluster.leases.pins(MEETING),
        "A gave it up here before B could take it"
    );
    // B caught up with the stored plenary (its moderator sees A's merge) and merged nothing
    // again: nothing was logged twice
    let seen = Doc::new();
    until(|| {
        b_mod.drain_into(&seen);
        let n = shown(&seen, "first finding");
        async move { n == 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (n, logged_after) = stored_plenary(&store, "first finding").await;
    assert_eq!(n, 1);
    assert_eq!(logged_after, logged, "the new holder merged nothing twice");
    // ... and B's group room was loaded for it
    assert!(
        b.rooms.get(&group_path()).is_some(),
        "the holder keeps the group rooms loaded"
    );
    // B merges now; A (lapsed) merges nothing
    let a_plenary = a.rooms.get(&plenary_path()).expect("still loaded on A");
    a_plenary
        .tx
        .send(RoomCmd::GroupConclusions(conclusions("fed to the former holder")))
        .await
        .unwrap();
    b_plenary
        .tx
        .send(RoomCmd::GroupConclusions(conclusions("merged by the new holder")))
        .await
        .unwrap();
    until(|| async { stored_plenary(&store, "merged by the new holder").await.0 == 1 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_plenary(&store, "fed to the former holder").await.0, 0);
    b_mod.drain_into(&seen);
    assert_eq!(shown(&seen, "merged by the new holder"), 1);
}
