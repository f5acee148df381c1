//! A room's owner task: the only code that touches its document.
//!
//! Per batch of commands drained from the inbox it applies updates, hands their diffs to the
//! persister (one store transaction for everything that arrived meanwhile), and queues what must
//! wait for durability (relays, sync step 2 replies, saved acks) behind the batch's sequence
//! number. Nothing is relayed before it is durable; the room keeps applying new updates while
//! earlier batches are being written. No lock is held across an `.await`.

use super::awareness::AwarenessTable;
use super::delivery::{awareness_frame, Batch, Deferred};
use super::outbox::close_code;
use super::readonly::ReadOnlyCheck;
use super::replies::{SnapshotCache, StepTwoCache};
use super::vetting::{contained, LoadError, Pending};
use super::{ConnId, Frame, Member, RoomCmd};
use crate::plenary::live::{GroupFeed, PlenaryState};
use crate::services::Services;
use crate::store::persister::PersistResult;
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use plenary_protocol::message::{self, encode_auth};
use plenary_protocol::{AwarenessEntry, RoomPath};
use std::collections::{HashMap, VecDeque};

use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use yrs::{Doc, ReadTxn, Transact, Update};

/// Most commands handled before their writes are committed together.
const MAX_BATCH: usize = 256;
/// How often follower counts are republished (when they changed) and idleness checked.
const TICK: Duration = Duration::from_secs(1);
pub const PERMISSION_DENIED: &str = "permission denied";
/// The server's awareness state is renewed this often (y-protocols times out states after 30 s).
const SERVER_STATE_RENEW: Duration = Duration::from_secs(15);

fn unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

pub(super) struct MemberState {
    pub(super) member: Member,
    pub(super) join_epoch: u64,
}

pub struct Room {
    pub(super) path: RoomPath,
    pub(super) doc_key: String,
    pub(super) doc: Doc,
    pub(super) svc: Services,
    pub(super) instance: u64,
    pub(super) members: HashMap<ConnId, MemberState>,
    pub(super) awareness: AwarenessTable,
    pub(super) closed: bool,
    pub(super) applied_seq: u64,
    pub(super) durable_seq: u64,
    pub(super) deferred: VecDeque<(u64, Deferred)>,
    /// Updates in the store's log since the last snapshot.
    pub(super) log_len: u64,
    pub(super) published_counts: (usize, usize, bool),
    pub(super) published_at: Instant,
    pub(super) last_activity: Instant,
    /// Group rooms: feeds the meeting's plenary. Plenary rooms: the merge state.
    pub(super) group_feed: Option<GroupFeed>,
    pub(super) plenary: Option<PlenaryState>,
    /// Sync step 2 for a client that has nothing (a fresh page, a connect storm), encoded once
    /// per document state. Cleared whenever the document changes.
    pub(super) full_state: Option<Frame>,
    /// Sync step 2 for other state vectors, per document state (see `replies`).
    pub(super) step2_cache: StepTwoCache,
    /// The document state read-only updates are checked against, per document state.
    pub(super) readonly: ReadOnlyCheck,
    /// The encoded awareness snapshot, per awareness table version.
    pub(super) snapshot_cache: SnapshotCache,
    /// yrs panicked on the document: the in-memory copy is not trusted any more.
    pub(super) poisoned: bool,
    /// The sandbox replica's generation: bumped whenever the document changes other than by
    /// an update the sandbox vetted (load, plenary merge), so the child re-seeds.
    pub(super) generation: u64,
}

pub(super) type Inflight =
    FuturesOrdered<std::pin::Pin<Box<dyn std::future::Future<Output = (u64, PersistResult)> + Send>>>;

impl Room {
    /// Loads the document and runs the room until it unloads or shuts down.
    pub async fn run(path: RoomPath, instance: u64, svc: Services, mut inbox: mpsc::Receiver<RoomCmd>) {
        let doc_key = path.to_string();
        let loaded = super::vetting::load_doc(&svc, &doc_key).await;
        let (doc, log_len) = match loaded {
            Ok(v) => v,
            Err(LoadError::Quarantined(why)) => {
                tracing::error!(doc = %doc_key, reason = %why,
                    "document quarantined: it does not load; connections are refused with 1011. \
                     Stop the server and run `plenary doctor --data-dir DIR --doc {doc_key} --repair`");
                quarantined(&svc, &path, instance, &mut inbox).await;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not load document");
                svc.rooms.forget(&path, instance);
                inbox.close();
                return;
            }
        };
        let closed = path
            .group_id()
            .map(|g| svc.directory.group_closed(&path.meeting, g))
            .unwrap_or(false);
        let mut room = Room {
            group_feed: path.group_id().map(|g| GroupFeed::new(g.clone())),
            plenary: None,
            path,
            doc_key,
            doc,
            svc,
            instance,
            members: HashMap::new(),
            awareness: AwarenessTable::with_server_clock(unix_seconds()),
            closed,
            applied_seq: 0,
            durable_seq: 0,
            deferred: VecDeque::new(),
            log_len,
            published_counts: (usize::MAX, usize::MAX, false),
            published_at: Instant::now(),
            last_activity: Instant::now(),
            full_state: None,
            step2_cache: StepTwoCache::default(),
            readonly: ReadOnlyCheck::default(),
            snapshot_cache: SnapshotCache::default(),
            poisoned: false,
            generation: 0,
        };
        room.bump_generation();
        let mut inflight: Inflight = FuturesOrdered::new();
        if room.path.is_plenary() {
            match PlenaryState::load(&room.svc, &room.path.meeting, &room.doc).await {
                Ok((state, diff)) => {
                    room.plenary = Some(state);
                    if let Some(diff) = diff {
                        let batch = Batch {
                            diffs: vec![(None, diff)],
                            ..Batch::default()
                        };
                        room.commit_batch(batch, &mut inflight).await;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not build the plenary document");
                    room.svc.rooms.forget(&room.path, instance);
                    return;
                }
            }
            if room.poisoned {
                room.svc.rooms.forget(&room.path, instance);
                return;
            }
        }
        room.svc.metrics.rooms_loaded.inc();
        tracing::debug!(log_len, "room loaded");
        room.main_loop(&mut inbox, &mut inflight).await;
        room.svc.metrics.rooms_loaded.dec();
    }

    async fn main_loop(&mut self, inbox: &mut mpsc::Receiver<RoomCmd>, inflight: &mut Inflight) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let feed_timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(feed_timer);
        let mut feed_armed = false;
        loop {
            tokio::select! {
                biased;
                Some((seq, result)) = inflight.next(), if !inflight.is_empty() => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "store failed; closing the room so clients resync");
                        self.close_all(close_code::INTERNAL_ERROR);
                        break;
                    }
                    self.durable_seq = seq;
                    self.release_deferred();
                }
                cmd = inbox.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.last_activity = Instant::now();
                    let mut batch = Batch::default();
                    if let Some(done) = self.handle(cmd, &mut batch) {
                        self.shutdown(inbox, inflight, done).await;
                        return;
                    }
                    let mut n = 1;
                    while n < MAX_BATCH {
                        let Ok(cmd) = inbox.try_recv() else { break };
                        n += 1;
                        if let Some(done) = self.handle(cmd, &mut batch) {
                            self.commit_batch(batch, inflight).await;
                            self.shutdown(inbox, inflight, done).await;
                            return;
                        }
                    }
                    // Updates still wait for the sandbox here: arm the feed for them too (it
                    // sends only what changed).
                    let wrote = !batch.diffs.is_empty() || !batch.pending.is_empty();
                    self.commit_batch(batch, inflight).await;
                    if self.poisoned {
                        // Unload; the next connection reloads the document from the store.
                        break;
                    }
                    if wrote && self.group_feed.is_some() && !feed_armed {
                        feed_armed = true;
                        feed_timer.as_mut().reset(tokio::time::Instant::now() + self.svc.merge_delay);
                    }
                }
                _ = &mut feed_timer, if feed_armed => {
                    feed_armed = false;
                    self.feed_plenary().await;
                    if self.poisoned {
                        break;
                    }
                }
                _ = tick.tick() => {
                    self.publish_counts();
                    if self.members.is_empty() && inflight.is_empty() && !feed_armed
                        && self.last_activity.elapsed() >= self.svc.room_idle
                    {
                        tracing::debug!("room idle; unloading");
                        break;
                    }
                }
            }
        }
        // Leaving (idle, store failure, poisoned): in-flight writes finish first, so that no
        // successor can load the document without them.
        while let Some((_, r)) = inflight.next().await {
            if r.is_err() {
                break;
            }
        }
        self.svc.rooms.forget(&self.path, self.instance);
        self.forget_replica();
        inbox.close();
        // Commands that raced with the unload: a joiner sees its `joined` reply vanish and
        // retries on a fresh room; plenary input and exports are handed to that successor.
        while let Ok(cmd) = inbox.try_recv() {
            match cmd {
                RoomCmd::Join { .. } | RoomCmd::Leave { .. } => {}
                RoomCmd::Shutdown { done } => {
                    let _ = done.send(());
                }
                cmd @ (RoomCmd::GroupConclusions(_)
                | RoomCmd::GroupMeta { .. }
                | RoomCmd::Inspect { .. }
                | RoomCmd::SetClosed { .. }) => {
                    self.svc.rooms.send(&self.path, &self.svc, cmd).await;
                }
                // Member traffic: the sender was not a member (the room was empty); drop it.
                _ => {}
            }
        }
    }

    /// Handles one command; returns the shutdown acknowledgement if asked to stop.
    fn handle(&mut self, cmd: RoomCmd, batch: &mut Batch) -> Option<oneshot::Sender<()>> {
        // Every change of the document produces a diff to store: that is when the answers
        // built from the document (cached sync step 2s, the read-only check's state) go stale.
        let diffs = batch.diffs.len();
        let done = self.handle_cmd(cmd, batch);
        if batch.diffs.len() != diffs {
            self.doc_changed();
        }
        done
    }

    fn handle_cmd(&mut self, cmd: RoomCmd, batch: &mut Batch) -> Option<oneshot::Sender<()>> {
        match cmd {
            RoomCmd::Join { conn, member, joined } => self.join(conn, member, joined),
            RoomCmd::Leave { conn } => self.leave(conn),
            RoomCmd::SyncStep1 { conn, sv, ticket } => match self.sync_step2_for(&sv) {
                Some((frame, encoded)) => {
                    ticket.charge(frame.len(), encoded);
                    batch.replies.push((conn, frame));
                }
                None => self.poison("answering a sync step 1"),
            },
            RoomCmd::Update { conn, update, raw } => self.update(conn, update, raw, batch),
            RoomCmd::Awareness { conn, entries } => self.awareness_update(conn, entries),
            RoomCmd::QueryAwareness { conn, ticket } => {
                let (frame, encoded) = self.awareness_snapshot();
                if let Some(frame) = frame {
                    ticket.charge(frame.len(), encoded);
                    self.send_to(conn, frame);
                }
            }
            RoomCmd::SetClosed { closed } => {
                tracing::info!(closed, "group closed flag changed");
                self.closed = closed;
                self.publish_counts();
            }
            // Plenary inputs only mark the merge as due: one merge per batch, however many
            // groups reported, so a burst from several groups becomes one update to relay.
            RoomCmd::GroupConclusions(gc) => {
                if let Some(p) = &mut self.plenary {
                    p.set_conclusions(gc);
                    batch.merge_due = true;
                }
            }
            RoomCmd::GroupMeta {} => {
                if let Some(p) = &mut self.plenary {
                    if let Some(rec) = self.svc.directory.meeting(&self.path.meeting) {
                        p.set_meeting(&rec);
                        batch.merge_due = true;
                    }
                }
            }
            RoomCmd::Inspect { reply } => {
                // Answered once what it shows is durable: an adopted version must not hold
                // anything a crash could still take back.
                let doc = &self.doc;
                match contained(|| crate::plenary::merge::plenary_json(&doc.transact())) {
                    Some(json) => batch.inspections.push((reply, json)),
                    None => self.poison("reading the plenary as JSON"),
                }
            }
            RoomCmd::Shutdown { done } => return Some(done),
        }
        None
    }

    fn join(&mut self, conn: ConnId, member: Member, joined: oneshot::Sender<()>) {
        let join_epoch = self.awareness.join();
        // Greeting, as the reference server: our sync step 1, then the awareness states.
        let sv = self.doc.transact().state_vector();
        let _ = member.outbox.send(Bytes::from(message::encode_sync_step1(&sv)));
        if let (Some(frame), _) = self.awareness_snapshot() {
            let _ = member.outbox.send(frame);
        }
        tracing::debug!(conn = %conn, role = member.role.name(), can_write = member.can_write, "joined");
        self.members.insert(conn, MemberState { member, join_epoch });
        let _ = joined.send(());
    }

    pub(super) fn leave(&mut self, conn: ConnId) {
        if self.members.remove(&conn).is_none() {
            return;
        }
        let removed = self.awareness.leave(conn);
        if let Some(frame) = awareness_frame(removed) {
            self.broadcast(None, &frame);
        }
    }

    /// Checks the writer's permission, then queues the update for the sandbox: the room applies
    /// it only once a child accepted it (`vetting`), so nothing unvetted reaches `self.doc`.
    fn update(&mut self, conn: ConnId, update: Update, raw: Vec<u8>, batch: &mut Batch) {
        let Some(m) = self.members.get(&conn) else { return };
        let may_write = m.member.can_write && !self.closed;
        if !may_write {
            if self.readonly.would_change(&self.doc, &update) {
                self.svc.metrics.rejected_messages.inc();
                tracing::debug!(conn = %conn, "write refused: permission denied");
                self.send_to(conn, Bytes::from(encode_auth(Some(PERMISSION_DENIED))));
            }
            return;
        }
        batch.pending.push(Pending {
            conn,
            update,
            raw,
            wants_ack: m.member.wants_ack,
        });
    }

    fn awareness_update(&mut self, conn: ConnId, entries: Vec<AwarenessEntry>) {
        let Some(m) = self.members.get(&conn) else { return };
        // Awareness of connections that cannot write is not relayed (contract).
        if !m.member.can_write {
            return;
        }
        let relay = self
            .awareness
            .apply(conn, m.member.token, m.join_epoch, m.member.role.name(), entries);
        let refused = self.awareness.take_refused();
        if refused > 0 {
            self.svc.metrics.awareness_refused.inc_by(refused);
            let (states, bytes) = self.awareness.size();
            tracing::debug!(conn = %conn, refused, states, bytes, "awareness past a bound refused");
        }
        if let Some(frame) = awareness_frame(relay) {
            // Not back to the sender: the relayed clock may be above its own (after a
            // reconnect), and a stock client would adopt it, echo it, and loop.
            self.broadcast(Some(conn), &frame);
        }
    }

    /// Publishes `{"server":{"followers","writers","closed"}}` under client id 0 when it changed.
    fn publish_counts(&mut self) {
        let writers = self.members.values().filter(|m| m.member.can_write).count();
        let followers = self.members.len() - writers;
        let now = (followers, writers, self.closed);
        // Stock awareness drops a remote state not renewed within 30 s: renew every 15 s.
        if now == self.published_counts && self.published_at.elapsed() < SERVER_STATE_RENEW {
            return;
        }
        if self.members.is_empty() {
            return;
        }
        self.published_counts = now;
        self.published_at = Instant::now();
        let state = serde_json::json!({ "server": { "followers": followers, "writers": writers, "closed": self.closed } });
        let entry = self.awareness.set_server_state(state.to_string());
        if let Some(frame) = awareness_frame(vec![entry]) {
            self.broadcast(None, &frame);
        }
    }

    /// Group rooms: hand the current conclusions to the meeting's plenary room.
    async fn feed_plenary(&mut self) {
        let Some(feed) = &mut self.group_feed else { return };
        let doc = &self.doc;
        let Some(changed) = contained(|| feed.changed(doc)) else {
            self.poison("reading the conclusions for the plenary");
            return;
        };
        if let Some(gc) = changed {
            let plenary = RoomPath::plenary(self.path.meeting.clone());
            let sent_list = gc.conclusions.clone();
            // Remembered only once delivered, so a failed hand-over is retried next time.
            if self
                .svc
                .rooms
                .send(&plenary, &self.svc, RoomCmd::GroupConclusions(gc))
                .await
            {
                feed.sent(sent_list);
            }
        }
    }

    async fn shutdown(
        &mut self,
        inbox: &mut mpsc::Receiver<RoomCmd>,
        inflight: &mut Inflight,
        done: oneshot::Sender<()>,
    ) {
        inbox.close();
        while let Some((seq, r)) = inflight.next().await {
            if r.is_ok() {
                self.durable_seq = seq;
                self.release_deferred();
            }
        }
        self.feed_plenary().await;
        self.close_all(close_code::GOING_AWAY);
        self.svc.rooms.forget(&self.path, self.instance);
        let _ = done.send(());
    }
}

/// A quarantined document's room: it stays registered (so that connections do not reload it
/// over and over) and closes every joiner with 1011 "document quarantined", until idle.
async fn quarantined(svc: &Services, path: &RoomPath, instance: u64, inbox: &mut mpsc::Receiver<RoomCmd>) {
    loop {
        let cmd = match tokio::time::timeout(svc.room_idle.max(Duration::from_secs(1)), inbox.recv()).await {
            Ok(Some(cmd)) => cmd,
            Ok(None) | Err(_) => break,
        };
        match cmd {
            RoomCmd::Join { member, joined, .. } => {
                member.outbox.kick.kick(close_code::QUARANTINED);
                let _ = joined.send(());
            }
            RoomCmd::Shutdown { done } => {
                let _ = done.send(());
                break;
            }
            _ => {}
        }
    }
    svc.rooms.forget(path, instance);
    inbox.close();
}
