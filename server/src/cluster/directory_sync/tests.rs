//! Two nodes in one process over one in-memory store and one [`LocalBus`]: what one node does
//! to the directory, the other shows (sockets closed, rooms told, meetings found at once).

use super::*;
use crate::auth::{MeetingDirectory, Role, TokenHash};
use crate::cluster::transport::LocalBus;
use crate::cluster::{new_node_id, Cluster};
use crate::connection::close::{close_code, Kick};
use crate::connection::context::{ConnContext, ConnSettings, OpenConn};
use crate::directory::Directory;
use crate::meetings::{self, GroupSpec, MeetingSpec};
use crate::metrics::Metrics;
use crate::room::{ConnId, Member, Outbox, RoomSettings, Shared};
use crate::sandbox::Sandbox;
use crate::store::memory::MemoryStore;
use crate::store::persister::Persister;
use crate::store::Store;
use plenary_protocol::{Limits, Message, RoomPath};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DEADLINE: Duration = Duration::from_secs(10);

async fn node(store: Arc<MemoryStore>, bus: &LocalBus) -> AppState {
    let node = new_node_id();
    let cluster = Arc::new(Cluster {
        leases: Arc::new(crate::cluster::leases::Leases::solo(&node)),
        node,
        transport: Arc::new(bus.clone()),
        shared_store: true,
        presence: Default::default(),
    });
    let directory = Arc::new(Directory::load(store.as_ref()).await.unwrap());
    let metrics = Arc::new(Metrics::new());
    let (persister, _writer) = Persister::start(store.clone(), metrics.clone(), cluster.clone());
    let store: Arc<dyn Store> = store;
    let room = crate::room::new_context(|rooms| Shared {
        store,
        persister,
        sandbox: Sandbox::in_process(),
        directory,
        rooms,
        metrics: metrics.clone(),
        tracker: TaskTracker::new(),
        settings: RoomSettings {
            room_idle: Duration::from_secs(3600),
            compact_after: 10_000,
            merge_delay: Duration::from_millis(10),
            test_corrupt_snapshots: false,
        },
        cluster,
    });
    let config = crate::config::Config::for_tests(std::env::temp_dir(), "admin-token-for-tests");
    let conn = ConnContext {
        room: room.clone(),
        settings: Arc::new(ConnSettings {
            limits: Limits::default(),
            outbound_queue: 256,
            outbound_queue_bytes: 1 << 20,
            max_messages_per_sec: 1000,
            max_connections: 100,
            keepalive: Default::default(),
        }),
        connections: Default::default(),
        token_limits: Arc::new(crate::limits::TokenLimits::new(&config)),
        metrics,
        stopping: CancellationToken::new(),
    };
    AppState::new(crate::app::App {
        room,
        conn,
        admin_gate: Arc::new(crate::http::admin::AdminGate::new(TokenHash::of("admin"), 10)),
        next_conn: Default::default(),
        public_url: "http://127.0.0.1:9".into(),
    })
}

async fn two_nodes() -> (AppState, AppState) {
    two_nodes_on(Arc::new(MemoryStore::new())).await
}

async fn two_nodes_on(store: Arc<MemoryStore>) -> (AppState, AppState) {
    let bus = LocalBus::default();
    (node(store.clone(), &bus).await, node(store, &bus).await)
}

/// Meeting `id` written straight into the store of `svc`, without a word on the bus (as if
/// the message were lost).
async fn insert_unannounced(svc: &AppState, id: &str) {
    let record = meetings::validate(&spec(id), "2026-01-01T00:00:00Z".into()).unwrap();
    svc.room.store.insert_meeting(&record, &[]).await.unwrap();
}

fn spec(id: &str) -> MeetingSpec {
    MeetingSpec {
        id: Some(id.into()),
        title: "Meeting".into(),
        groups: ["g1", "g2"]
            .iter()
            .map(|g| GroupSpec {
                id: (*g).into(),
                title: format!("Group {g}"),
            })
            .collect(),
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An open socket as node `svc` knows it (what meeting management closes).
fn open_conn(svc: &AppState, id: u64, token: &str, room: &RoomPath, participant: bool) -> Kick {
    let kick = Kick::default();
    svc.conn.connections.insert(
        ConnId(id),
        OpenConn {
            token: TokenHash::of(token),
            kick: kick.clone(),
            room: room.clone(),
            participant,
        },
    );
    kick
}

#[test]
fn payloads_round_trip_and_strangers_are_ignored() {
    let m = MeetingId::parse("m1").unwrap();
    assert_eq!(decode(&encode("n1", &m)), Some(("n1".to_owned(), m)));
    assert_eq!(decode("not json"), None);
    assert_eq!(decode(r#"{"node":"n1","meeting":"BAD ID"}"#), None);
}

#[test]
fn the_listener_hears_other_nodes_only_and_resyncs_on_loss() {
    let now = Instant::now();
    let m = MeetingId::parse("m1").unwrap();
    let msg = |node: &str| {
        Ok(Heard::Message {
            channel: Channel::Directory,
            payload: encode(node, &m).into(),
        })
    };
    let mut p = Pending::default();
    assert!(p.hear(msg("me"), "me", now));
    assert_eq!(p, Pending::default(), "its own message");
    assert!(p.hear(
        Ok(Heard::Message {
            channel: Channel::Docs,
            payload: encode("other", &m).into()
        }),
        "me",
        now
    ));
    assert_eq!(p, Pending::default(), "another channel");
    assert!(p.hear(msg("other"), "me", now));
    assert_eq!(p.meetings.iter().collect::<Vec<_>>(), vec![&m]);
    assert_eq!(p.due, Some(now + COALESCE));
    // a second message within the window does not push the read back
    assert!(p.hear(msg("third"), "me", now + Duration::from_millis(30)));
    assert_eq!(p.due, Some(now + COALESCE));
    assert!(!p.everything);
    assert!(p.hear(Err(RecvError::Lagged(3)), "me", now));
    assert!(p.everything);
    let mut q = Pending::default();
    assert!(q.hear(Ok(Heard::Resync), "me", now));
    assert!(q.everything && q.due.is_some());
    assert!(!q.hear(Err(RecvError::Closed), "me", now));
}

#[tokio::test]
async fn a_meeting_created_on_one_node_is_found_on_another_at_once() {
    let (a, b) = two_nodes().await;
    // no listener on b: only the read before answering
    let created = meetings::create(&a, spec("m1")).await.unwrap();
    let m = MeetingId::parse("m1").unwrap();
    assert!(b.room.directory.meeting(&m).is_none());
    assert!(catch_up(&b, &m, None).await);
    let cap = b
        .room
        .directory
        .capability(&TokenHash::of(&created.tokens.moderator))
        .expect("its tokens came with it");
    assert_eq!(cap.role, Role::Moderator);
    // a group added on a: found by a request naming it
    let added = meetings::add_group(&a, &m, Some("g3"), "Three").await.unwrap();
    let g3 = GroupId::parse("g3").unwrap();
    assert!(!b.room.directory.group_exists_in(&m, &g3));
    assert!(catch_up(&b, &m, Some(&g3)).await);
    assert!(b
        .room
        .directory
        .capability(&TokenHash::of(&added.token))
        .is_some());
    // an unknown meeting stays unknown
    assert!(!catch_up(&b, &MeetingId::parse("nowhere").unwrap(), None).await);
}

#[tokio::test]
async fn what_one_node_changes_the_other_applies() {
    let (a, b) = two_nodes().await;
    spawn(&b);
    let created = meetings::create(&a, spec("m1")).await.unwrap();
    let m = MeetingId::parse("m1").unwrap();
    let g1 = GroupId::parse("g1").unwrap();
    wait_until("b to hear of the meeting", || {
        b.room.directory.meeting(&m).is_some()
    })
    .await;

    // a member of b's room g1, and b's open sockets
    let path = RoomPath::group(m.clone(), g1.clone());
    let room = b.room.rooms.get_or_load(&path).expect("the room loads");
    let (outbox, mut frames) = Outbox::new(256, 1 << 20);
    let rapporteur = &created.tokens.rapporteurs["g1"];
    let member = Member {
        outbox: outbox.clone(),
        role: Role::Rapporteur("g1".into()),
        token: TokenHash::of(rapporteur),
        can_write: true,
        wants_ack: false,
    };
    crate::room::test_support::join_member(&room, ConnId(1), member).await;
    let writer = open_conn(&b, 1, rapporteur, &path, false);
    let participant = open_conn(&b, 2, &created.tokens.participant, &path, true);

    // closed on a: b's room says so to its members at once
    meetings::set_closed(&a, &m, &[g1.clone()], true).await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let frame = tokio::time::timeout_at(deadline, frames.recv())
            .await
            .expect("b's room to publish closed")
            .expect("outbox open");
        if let Ok(Message::Awareness(u)) = Message::decode(&frame, &Limits::default()) {
            if u.entries
                .iter()
                .any(|e| e.client_id == 0 && e.state.contains("\"closed\":true"))
            {
                break;
            }
        }
    }
    assert!(b.room.directory.group_closed(&m, &g1));

    // the participant token rotated on a: b closes its socket, the old token stops
    let issued = meetings::rotate_token(&a, &m, Role::Participant).await.unwrap();
    wait_until("b to close the revoked token's socket", || {
        participant.code().is_some()
    })
    .await;
    assert_eq!(participant.code(), Some(close_code::POLICY_VIOLATION));
    assert!(b
        .room
        .directory
        .capability(&TokenHash::of(&created.tokens.participant))
        .is_none());
    assert!(b
        .room
        .directory
        .capability(&TokenHash::of(&issued.token))
        .is_some());
    assert_eq!(writer.code(), None, "another token's socket stays");

    // renamed and notes made private on a
    meetings::rename_meeting(&a, &m, Some("Renamed"), None)
        .await
        .unwrap();
    let follower = open_conn(&b, 3, &issued.token, &path, true);
    meetings::set_notes_private(&a, &m, true).await.unwrap();
    wait_until("b to close the participant's group socket", || {
        follower.code().is_some()
    })
    .await;
    assert_eq!(follower.code(), Some(close_code::NOTES_PRIVATE));
    assert_eq!(b.room.directory.meeting(&m).unwrap().title, "Renamed");

    // deleted on a: b closes the meeting's sockets and stops its rooms
    meetings::delete_meeting(&a, &m).await.unwrap();
    wait_until("b to close the deleted meeting's sockets", || {
        writer.code().is_some()
    })
    .await;
    assert_eq!(writer.code(), Some(close_code::MEETING_DELETED));
    wait_until("b's rooms to stop", || b.room.rooms.get(&path).is_none()).await;
    assert!(b.room.directory.meeting(&m).is_none());
    assert!(b.room.rooms.get_or_load(&path).is_none(), "and never load again");
}

#[tokio::test(start_paused = true)]
async fn lost_messages_are_caught_by_a_full_read() {
    let (a, b) = two_nodes().await;
    spawn(&b);
    tokio::task::yield_now().await;
    let (m1, m2) = (MeetingId::parse("m1").unwrap(), MeetingId::parse("m2").unwrap());
    insert_unannounced(&a, "m1").await;
    tokio::time::sleep(COALESCE * 3).await;
    assert!(b.room.directory.meeting(&m1).is_none(), "nothing was said");
    // b's receiver lags behind a flood: it reads everything
    let start = Instant::now();
    for _ in 0..5000 {
        a.room
            .cluster
            .transport
            .send(Channel::Docs, vec!["x".into()])
            .await
            .unwrap();
    }
    wait_until("b to read every meeting", || {
        b.room.directory.meeting(&m1).is_some()
    })
    .await;
    // the paused clock: the coalescing window, far from the periodic read
    assert!(
        start.elapsed() < COALESCE * 4,
        "the lag, not the periodic read: {:?}",
        start.elapsed()
    );
    // and what no message says, the periodic read finds
    insert_unannounced(&a, "m2").await;
    tokio::time::sleep(FULL_RELOAD + Duration::from_secs(1)).await;
    assert!(b.room.directory.meeting(&m2).is_some());
}

#[test]
fn the_periodic_read_reads_everything_only_when_the_epoch_moved() {
    let periodic = Pending {
        periodic: true,
        ..Pending::default()
    };
    assert!(!periodic.needs_full_read(Some(7), Some(7)), "unchanged");
    assert!(periodic.needs_full_read(Some(8), Some(7)), "moved");
    assert!(periodic.needs_full_read(Some(7), None), "no full read seen yet");
    assert!(periodic.needs_full_read(None, None), "a store without an epoch");
    let resync = Pending {
        everything: true,
        ..Pending::default()
    };
    assert!(
        resync.needs_full_read(Some(7), Some(7)),
        "a resync reads everything"
    );
    assert!(
        !Pending::default().needs_full_read(Some(8), Some(7)),
        "only the meetings heard of"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_directory_is_not_read_whole_again() {
    let store = Arc::new(MemoryStore::new());
    let (a, b) = two_nodes_on(store.clone()).await;
    spawn(&b);
    tokio::task::yield_now().await;
    let before = store.full_reads();
    // the first periodic read reads everything (it has seen no epoch yet), the next three only
    // the epoch
    tokio::time::sleep(FULL_RELOAD * 4 + Duration::from_secs(1)).await;
    assert_eq!(store.full_reads(), before + 1, "one full read in four periods");
    // what no message says moves the epoch: the next periodic read reads everything
    insert_unannounced(&a, "m1").await;
    tokio::time::sleep(FULL_RELOAD).await;
    let m1 = MeetingId::parse("m1").unwrap();
    assert!(
        b.room.directory.meeting(&m1).is_some(),
        "found by the periodic read"
    );
    assert_eq!(store.full_reads(), before + 2);
}

#[tokio::test(start_paused = true)]
async fn a_change_is_heard_at_once_not_found_by_the_periodic_read() {
    let (a, b) = two_nodes().await;
    spawn(&b);
    tokio::task::yield_now().await;
    let (m, g1) = (MeetingId::parse("m1").unwrap(), GroupId::parse("g1").unwrap());
    let start = Instant::now();
    meetings::create(&a, spec("m1")).await.unwrap();
    wait_until("b to hear of the meeting", || {
        b.room.directory.meeting(&m).is_some()
    })
    .await;
    // the paused clock: this is the listener's coalescing window, not the machine's speed
    assert!(start.elapsed() < FULL_RELOAD, "{:?}", start.elapsed());
    let start = Instant::now();
    meetings::set_closed(&a, &m, &[g1.clone()], true).await.unwrap();
    wait_until("b to hear of the closing", || {
        b.room.directory.group_closed(&m, &g1)
    })
    .await;
    assert!(start.elapsed() < FULL_RELOAD, "{:?}", start.elapsed());
}
