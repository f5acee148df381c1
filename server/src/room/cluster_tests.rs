//! Two nodes in one process (issue 13, point 5): two room contexts over one in-memory store,
//! hearing each other on one [`LocalBus`], each running its presence relay; fake members
//! (outboxes over a channel that stands in for the socket) and tokio's paused clock for the silences.

use super::command::{ConnId, Member, RoomCmd};
use super::context::RoomContext;
use super::nodes::NODE_SILENCE;
use super::outbox::Outbox;
use super::test_support::{join_member, node_context, settings, store_with_m1};
use crate::auth::{Role, TokenHash};
use crate::cluster::transport::LocalBus;
use crate::cluster::{presence_relay, Cluster};
use crate::store::memory::MemoryStore;
use bytes::Bytes;
use plenary_protocol::{AwarenessEntry, GroupId, Limits, MeetingId, Message, RoomPath};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const DEADLINE: Duration = Duration::from_secs(60);

fn path() -> RoomPath {
    RoomPath::group(MeetingId::parse("m1").unwrap(), GroupId::parse("g1").unwrap())
}

/// A node on `store`, hearing the others on `bus`.
async fn node(store: &Arc<MemoryStore>, bus: &LocalBus) -> RoomContext {
    let ctx = node_context(store, Cluster::node(Arc::new(bus.clone())), settings()).await;
    presence_relay::start(&ctx);
    ctx
}

/// A member as the test sees it: the awareness it was sent, state by client id.
struct Fake {
    conn: ConnId,
    rx: mpsc::Receiver<Bytes>,
    /// Every awareness entry received, in order.
    heard: Vec<AwarenessEntry>,
}

impl Fake {
    /// Reads frames until `cond` holds of what this member heard.
    async fn until(&mut self, what: &str, cond: impl Fn(&[AwarenessEntry]) -> bool) {
        let wait = async {
            while !cond(&self.heard) {
                let frame = self.rx.recv().await.expect("the outbox is open");
                if let Ok(Message::Awareness(u)) = Message::decode(&frame, &Limits::default()) {
                    self.heard.extend(u.entries);
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; heard {:?}", self.heard));
    }

    /// The latest state heard for `id` (`None`: never heard, or removed).
    fn state(&self, id: u64) -> Option<serde_json::Value> {
        let e = self.heard.iter().rev().find(|e| e.client_id == id)?;
        let v: serde_json::Value = serde_json::from_str(&e.state).ok()?;
        (!v.is_null()).then_some(v)
    }

    fn removals_of(&self, id: u64) -> usize {
        self.heard
            .iter()
            .filter(|e| e.client_id == id && e.is_removal())
            .count()
    }
}

async fn join(ctx: &RoomContext, conn: u64, can_write: bool) -> Fake {
    let handle = ctx.rooms.get_or_load(&path()).expect("the room may load");
    let (outbox, rx) = Outbox::new(1024, 1 << 22);
    let member = Member {
        outbox,
        role: if can_write {
            Role::Rapporteur("g1".into())
        } else {
            Role::Participant
        },
        token: TokenHash::of(&format!("token-{conn}")),
        can_write,
        wants_ack: false,
    };
    join_member(&handle, ConnId(conn), member).await;
    Fake {
        conn: ConnId(conn),
        rx,
        heard: Vec::new(),
    }
}

async fn say(ctx: &RoomContext, who: &Fake, id: u64, clock: u32, state: &str) {
    let handle = ctx.rooms.get(&path()).expect("loaded");
    let entries = vec![AwarenessEntry {
        client_id: id,
        clock,
        state: state.into(),
    }];
    handle
        .tx
        .send(RoomCmd::Awareness {
            conn: who.conn,
            entries,
        })
        .await
        .unwrap();
}

async fn leave(ctx: &RoomContext, who: &Fake) {
    let handle = ctx.rooms.get(&path()).expect("loaded");
    handle.tx.send(RoomCmd::Leave { conn: who.conn }).await.unwrap();
}

fn counts(heard: &[AwarenessEntry]) -> Option<(u64, u64)> {
    let e = heard.iter().rev().find(|e| e.client_id == 0)?;
    let v: serde_json::Value = serde_json::from_str(&e.state).ok()?;
    Some((
        v["server"]["followers"].as_u64()?,
        v["server"]["writers"].as_u64()?,
    ))
}

#[tokio::test(start_paused = true)]
async fn presence_and_counts_travel_between_nodes_and_leave_with_their_client() {
    let (store, bus) = (store_with_m1().await, LocalBus::default());
    let (a, b) = (node(&store, &bus).await, node(&store, &bus).await);
    let mut on_b = join(&b, 1, true).await;
    let mut ana = join(&a, 2, true).await;
    let _follower_a = join(&a, 3, false).await;
    say(&a, &ana, 42, 1, r#"{"user":{"name":"Ana"},"role":"moderator"}"#).await;
    on_b.until("Ana at node B", |h| {
        h.iter().any(|e| e.client_id == 42 && e.state.contains("Ana"))
    })
    .await;
    assert_eq!(on_b.state(42).unwrap()["role"], "rapporteur", "stamped by node A");
    // B's member's state reaches A
    say(&b, &on_b, 7, 1, r#"{"user":{"name":"Bo"}}"#).await;
    ana.until("Bo at node A", |h| h.iter().any(|e| e.client_id == 7))
        .await;
    // counts of both nodes: A has a writer and a follower, B a writer
    on_b.until("counts 1/2 at B", |h| counts(h) == Some((1, 2))).await;
    ana.until("counts 1/2 at A", |h| counts(h) == Some((1, 2))).await;
    // a joiner on B gets Ana in its greeting
    let mut late = join(&b, 4, false).await;
    late.until("Ana in the greeting", |h| h.iter().any(|e| e.client_id == 42))
        .await;
    // Ana leaves A: she is removed at B, once
    leave(&a, &ana).await;
    on_b.until("Ana removed at B", |h| {
        h.iter().any(|e| e.client_id == 42 && e.is_removal())
    })
    .await;
    late.until("Ana removed for the joiner", |h| {
        h.iter().any(|e| e.client_id == 42 && e.is_removal())
    })
    .await;
    on_b.until("counts 2/1 at B", |h| counts(h) == Some((2, 1))).await;
}

#[tokio::test(start_paused = true)]
async fn a_client_whose_node_went_silent_moves_without_a_flicker_and_the_silent_nodes_rest_goes() {
    let (store, bus) = (store_with_m1().await, LocalBus::default());
    let (a, b) = (node(&store, &bus).await, node(&store, &bus).await);
    let mut watcher = join(&b, 1, true).await;
    let cat = join(&a, 2, true).await;
    let dog = join(&a, 3, true).await;
    say(&a, &cat, 42, 5, r#"{"user":{"name":"Cat"}}"#).await;
    say(&a, &dog, 43, 1, r#"{"user":{"name":"Dog"}}"#).await;
    watcher
        .until("Cat and Dog at B", |h| {
            h.iter().any(|e| e.client_id == 42) && h.iter().any(|e| e.client_id == 43)
        })
        .await;
    watcher
        .until("counts 0/3 at B", |h| counts(h) == Some((0, 3)))
        .await;
    // node A stops without a goodbye (its members are closed, no removal is sent)
    let (done, stopped) = oneshot::channel();
    let handle = a.rooms.get(&path()).unwrap();
    handle.tx.send(RoomCmd::Shutdown { done }).await.unwrap();
    stopped.await.unwrap();
    // the watcher echoes Cat's state as it was relayed: that claims nothing
    let relayed = watcher.state(42).unwrap().to_string();
    say(&b, &watcher, 42, 5, &relayed).await;
    // Cat reconnects to B with her own (unstamped) state and clock
    let cat_b = join(&b, 4, true).await;
    say(&b, &cat_b, 42, 5, r#"{"user":{"name":"Cat"}}"#).await;
    // A's silence takes Dog, and A's counts; Cat stays, without a removal
    watcher
        .until("Dog removed after A's silence", |h| {
            h.iter().any(|e| e.client_id == 43 && e.is_removal())
        })
        .await;
    watcher
        .until("counts 0/2 at B", |h| counts(h) == Some((0, 2)))
        .await;
    tokio::time::sleep(NODE_SILENCE * 2).await;
    watcher
        .until("the latest counts", |h| counts(h) == Some((0, 2)))
        .await;
    assert_eq!(watcher.removals_of(42), 0, "Cat flickered: {:?}", watcher.heard);
    assert_eq!(watcher.state(42).unwrap()["user"]["name"], "Cat");
    // and Cat is B's now: leaving B removes her
    leave(&b, &cat_b).await;
    watcher
        .until("Cat removed", |h| {
            h.iter().any(|e| e.client_id == 42 && e.is_removal())
        })
        .await;
}
