//! What the room's tests share (tests only): settings, the meeting they run in, a node's room
//! context over an in-memory store, and joining a member.

use super::context::{RoomContext, RoomSettings, Shared};
use super::registry::Rooms;
use super::{ConnId, Member, RoomCmd, RoomHandle};
use crate::cluster::Cluster;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::sandbox::Sandbox;
use crate::store::memory::MemoryStore;
use crate::store::persister::Persister;
use crate::store::{GroupRecord, MeetingRecord, Store};
use plenary_protocol::{GroupId, MeetingId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// Rooms that neither unload nor compact during a test; the plenary merges 10 ms after a
/// group's edit.
pub fn settings() -> RoomSettings {
    RoomSettings {
        room_idle: Duration::from_secs(3600),
        compact_after: 10_000,
        merge_delay: Duration::from_millis(10),
        test_corrupt_snapshots: false,
    }
}

/// Meeting `m1` ("Meeting") with one open group, `g1` ("Water").
pub fn meeting_m1() -> MeetingRecord {
    MeetingRecord {
        id: MeetingId::parse("m1").unwrap(),
        title: "Meeting".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        short_title: None,
        notes_private: false,
        groups: vec![GroupRecord {
            id: GroupId::parse("g1").unwrap(),
            title: "Water".into(),
            closed: false,
            short_title: None,
        }],
    }
}

/// A fresh in-memory store holding [`meeting_m1`].
pub async fn store_with_m1() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.insert_meeting(&meeting_m1(), &[]).await.unwrap();
    store
}

/// What a node's rooms share over `store`: its own directory (loaded now), metrics, persister
/// (in `cluster`) and in-process sandbox.
pub async fn node_shared(
    store: &Arc<MemoryStore>,
    cluster: Arc<Cluster>,
    settings: RoomSettings,
) -> impl FnOnce(Rooms) -> Shared {
    let directory = Arc::new(Directory::load(store.as_ref()).await.unwrap());
    let metrics = Arc::new(Metrics::new());
    let store: Arc<dyn Store> = store.clone();
    let (persister, _writer) = Persister::start(store.clone(), metrics.clone(), cluster.clone());
    move |rooms| Shared {
        store,
        persister,
        sandbox: Sandbox::in_process(),
        directory,
        rooms,
        metrics,
        tracker: TaskTracker::new(),
        settings,
        cluster,
    }
}

/// A node's room context ([`node_shared`]) whose rooms run the real actor.
pub async fn node_context(
    store: &Arc<MemoryStore>,
    cluster: Arc<Cluster>,
    settings: RoomSettings,
) -> RoomContext {
    let shared = node_shared(store, cluster, settings).await;
    super::context_with_launcher(shared, |ctx, path, instance, inbox| {
        tokio::spawn(super::actor::run(path, instance, ctx, inbox));
    })
}

/// Joins `member` to `handle`'s room as `conn` and waits until the room has taken it in (its
/// greeting is then in the member's outbox).
pub async fn join_member(handle: &RoomHandle, conn: ConnId, member: Member) {
    let (joined, ok) = oneshot::channel();
    handle
        .tx
        .send(RoomCmd::Join { conn, member, joined })
        .await
        .expect("the room is running");
    ok.await.expect("joined");
}
