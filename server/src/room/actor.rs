//! A room's owner task: the only code that touches its document.
//!
//! The loop takes a batch of commands from the inbox (up to [`MAX_BATCH`]), handles each, and
//! commits the batch: updates are vetted and applied (`vetting`), a plenary merges its new
//! input once (`kind`), the batch's diffs go to the store as one write, and what shows them
//! (relays, sync step 2 replies, saved acks, inspections) is queued behind that write
//! (`durability`). The loop keeps taking commands while earlier batches are being written; as
//! the store confirms them it hands what they released to the members (`members`). Nothing is
//! relayed before it is durable. No lock is held across an `.await`.
//!
//! In a cluster only the node holding the meeting's plenary lease merges (`cluster::leases`):
//! elsewhere the plenary is a replica that takes moderators' curation writes but merges
//! nothing. The merge's write is fenced with the lease's epoch; a fenced failure (the lease was
//! lost meanwhile: the merge in memory was never stored) closes the members with 1012 and
//! unloads, so that the room reloads from the store. Taking the lease (`LeaseGained`) catches
//! the plenary up with the store and rebuilds it from every group's durable conclusions.
//!
//! The room ends in one of three ways: shut down (writes finish, members get 1001), unloaded
//! (idle, a store failure, a poisoned document: writes finish, then commands that raced with
//! the unload and must not be lost go to a successor room), or quarantined at load.

use super::command::{ConnId, Member, RoomCmd};
use super::context::RoomContext;
use super::durability::{Deferred, Pipeline};
use super::kind::{self, Kind};
use super::members::{Members, Recipients};
use super::outbox::Frame;
use super::replica::Replica;
use super::replies::DocAnswers;
use super::vetting::{self, Document, LoadError, Outcome, Pending};
use crate::cluster::rings::{Next, Ring};
use crate::connection::close::close_code;
use crate::store::{Fence, StoreError};
use futures_util::FutureExt;
use plenary_protocol::message::{self, encode_auth};
use plenary_protocol::{AwarenessEntry, RoomPath};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

/// Most commands handled before their writes are committed together.
pub const MAX_BATCH: usize = 256;
/// How often follower counts are republished (when they changed) and idleness checked.
const TICK: Duration = Duration::from_secs(1);
pub const PERMISSION_DENIED: &str = "permission denied";

/// What a batch of commands produced.
#[derive(Default)]
struct Batch {
    diffs: Vec<(Option<ConnId>, Vec<u8>)>,
    acks: Vec<ConnId>,
    replies: Vec<(ConnId, Frame)>,
    inspections: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
    /// Updates waiting for the sandbox's verdict, in arrival order.
    pending: Vec<Pending>,
    /// Plenary rooms: new group input arrived; merge once before committing.
    merge_due: bool,
    /// Durable updates of other nodes changed the document.
    remote: bool,
    /// Plenary rooms: this node took the lease; catch up and rebuild before merging.
    rebuild: bool,
    /// Plenary rooms: the merge's own edit, written apart from members' writes under `fence`.
    merged: Option<Vec<u8>>,
    fence: Option<Fence>,
}

/// Why the loop ended.
enum Exit {
    /// Idle, the store failed, or the document is poisoned.
    Unload,
    Shutdown(oneshot::Sender<()>),
}

pub struct Room {
    path: RoomPath,
    ctx: RoomContext,
    instance: u64,
    doc: Document,
    answers: DocAnswers,
    members: Members,
    durability: Pipeline,
    kind: Kind,
    last_activity: Instant,
    /// Its place in the document's log, which other nodes append to as well.
    replica: Replica,
}

/// Loads the document and runs the room until it unloads or shuts down.
pub async fn run(path: RoomPath, instance: u64, ctx: RoomContext, mut inbox: mpsc::Receiver<RoomCmd>) {
    let key = path.to_string();
    let (doc, log_len, head) = match vetting::load_doc(&ctx, &key).await {
        Ok(v) => v,
        Err(LoadError::Quarantined(why)) => {
            tracing::error!(doc = %key, reason = %why,
                "document quarantined: it does not load; connections are refused with 1011. \
                 Stop the server and run `plenary doctor --data-dir DIR --doc {key} --repair`");
            quarantined(&ctx, &path, instance, &mut inbox).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not load document");
            ctx.rooms.forget(&path, instance);
            inbox.close();
            return;
        }
    };
    let (kind, diff) = match path.group_id() {
        Some(g) => (Kind::group(&ctx, &path.meeting, g), None),
        None => {
            ctx.cluster.leases.ask_now(path.meeting.as_str()).await;
            let right = ctx.cluster.leases.merge_right(path.meeting.as_str());
            match kind::load_plenary(&ctx, &path.meeting, &doc, right.may_merge()).await {
                Ok((state, diff)) => (Kind::Plenary(state), diff.map(|d| (d, right.fence()))),
                Err(e) => {
                    tracing::error!(error = %e, "could not build the plenary document");
                    ctx.rooms.forget(&path, instance);
                    return;
                }
            }
        }
    };
    let mut room = Room {
        doc: Document::new(&ctx, key, doc),
        members: Members::new(ctx.metrics.clone()).in_cluster(&ctx.cluster, path.to_string()),
        durability: Pipeline::new(log_len),
        answers: DocAnswers::default(),
        kind,
        path,
        ctx,
        instance,
        last_activity: Instant::now(),
        replica: Replica::new(head),
    };
    if let Some((diff, fence)) = diff {
        let batch = Batch {
            merged: Some(diff),
            fence,
            ..Batch::default()
        };
        room.commit(batch).await;
        if room.doc.poisoned() {
            room.ctx.rooms.forget(&room.path, instance);
            return;
        }
    }
    room.ctx.metrics.rooms_loaded.inc();
    tracing::debug!(log_len, "room loaded");
    match room.main_loop(&mut inbox).await {
        Exit::Shutdown(done) => room.shutdown(&mut inbox, done).await,
        Exit::Unload => room.unload(&mut inbox).await,
    }
    room.ctx.metrics.rooms_loaded.dec();
}

impl Room {
    async fn main_loop(&mut self, inbox: &mut mpsc::Receiver<RoomCmd>) -> Exit {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let feed_timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(feed_timer);
        let mut feed_armed = false;
        loop {
            tokio::select! {
                biased;
                Some(first) = self.durability.next_durable(), if !self.durability.is_idle() => {
                    let failed = self.take_answers(first);
                    // What the answers before a failure made durable still leaves.
                    self.deliver_released().await;
                    if let Some(e) = failed {
                        self.store_failed(&e);
                        return Exit::Unload;
                    }
                }
                result = self.replica.read_done(), if self.replica.is_reading() => {
                    if self.caught_up(result) && self.kind.feeds_plenary() && !feed_armed {
                        feed_armed = true;
                        feed_timer.as_mut().reset(Instant::now() + self.ctx.settings.merge_delay);
                    }
                    if self.doc.poisoned() {
                        return Exit::Unload;
                    }
                }
                cmd = inbox.recv() => {
                    let Some(cmd) = cmd else { return Exit::Unload };
                    // Other nodes' news keeps a room without members no longer.
                    if !cmd.is_replication() {
                        self.last_activity = Instant::now();
                    }
                    self.ctx.cluster.leases.touch(self.path.meeting.as_str());
                    let mut batch = Batch::default();
                    let mut stop = self.handle(cmd, &mut batch);
                    let mut n = 1;
                    while stop.is_none() && n < MAX_BATCH {
                        let Ok(cmd) = inbox.try_recv() else { break };
                        n += 1;
                        stop = self.handle(cmd, &mut batch);
                    }
                    // Updates still wait for the sandbox here: arm the feed for them too (it
                    // sends only what changed).
                    let wrote = !batch.diffs.is_empty() || !batch.pending.is_empty() || batch.remote;
                    self.commit(batch).await;
                    if let Some(done) = stop {
                        return Exit::Shutdown(done);
                    }
                    if self.doc.poisoned() {
                        // Unload; the next connection reloads the document from the store.
                        return Exit::Unload;
                    }
                    if wrote && self.kind.feeds_plenary() && !feed_armed {
                        feed_armed = true;
                        feed_timer.as_mut().reset(Instant::now() + self.ctx.settings.merge_delay);
                    }
                }
                _ = &mut feed_timer, if feed_armed => {
                    feed_armed = false;
                    self.feed_plenary().await;
                    if self.doc.poisoned() {
                        return Exit::Unload;
                    }
                }
                _ = tick.tick() => {
                    self.members.publish_counts(self.kind.closed());
                    let leases = &self.ctx.cluster.leases;
                    if !self.members.is_empty() {
                        leases.touch(self.path.meeting.as_str());
                    }
                    // The lease holder keeps the meeting's rooms: they hear the other nodes' edits.
                    if self.members.is_empty() && self.durability.is_idle() && !feed_armed
                        && self.last_activity.elapsed() >= self.ctx.settings.room_idle
                        && !leases.pins(self.path.meeting.as_str())
                    {
                        tracing::debug!("room idle; unloading");
                        return Exit::Unload;
                    }
                }
            }
        }
    }

    /// Takes the store's answer `first` and every other answer already in, so that what they
    /// release leaves together (one write per member). Stops at a failure and returns it.
    fn take_answers(
        &mut self,
        first: Result<Option<(i64, i64)>, Arc<StoreError>>,
    ) -> Option<Arc<StoreError>> {
        let mut next = Some(first);
        while let Some(result) = next {
            match result {
                Err(e) => return Some(e),
                Ok(Some((first, last))) => self.replica.applied(first, last),
                Ok(None) => {}
            }
            next = self.durability.next_durable().now_or_never().flatten();
        }
        None
    }

    /// The store failed: nothing after it is durable, so the members resync elsewhere (the room
    /// unloads).
    fn store_failed(&mut self, e: &StoreError) {
        if matches!(e, StoreError::Fenced(_)) {
            // The merge in memory was never stored: reload (as a replica, unless this node
            // takes the lease again) and let the members resync.
            tracing::warn!(error = %e, "plenary lease lost: the merge was not stored; reloading");
            self.members.close_all(close_code::SERVICE_RESTART);
        } else {
            tracing::error!(error = %e, "store failed; closing the room so clients resync");
            self.members.close_all(close_code::INTERNAL_ERROR);
        }
    }

    /// Handles one command; returns the shutdown acknowledgement if asked to stop.
    fn handle(&mut self, cmd: RoomCmd, batch: &mut Batch) -> Option<oneshot::Sender<()>> {
        match cmd {
            RoomCmd::Join { conn, member, joined } => self.join(conn, member, joined),
            RoomCmd::Leave { conn } => self.members.leave(conn),
            RoomCmd::SyncStep1 { conn, sv, ticket } => {
                match self.answers.sync_step2_for(&self.doc.doc, &sv) {
                    Some((frame, encoded)) => {
                        ticket.charge(frame.len(), encoded);
                        batch.replies.push((conn, frame));
                    }
                    None => self.poison("answering a sync step 1"),
                }
            }
            RoomCmd::Update { conn, update, raw } => self.update(conn, update, raw, batch),
            RoomCmd::Awareness { conn, entries } => self.awareness(conn, entries),
            RoomCmd::RemotePresence(inbound) => self.members.remote(inbound),
            RoomCmd::QueryAwareness { conn, ticket } => {
                let (frame, encoded) = self.members.awareness_snapshot();
                if let Some(frame) = frame {
                    ticket.charge(frame.len(), encoded);
                    self.members.send_to(conn, frame);
                }
            }
            RoomCmd::SetClosed { closed } => {
                tracing::info!(closed, "group closed flag changed");
                self.kind.set_closed(closed);
                self.members.publish_counts(self.kind.closed());
            }
            // Plenary inputs only mark the merge as due: one merge per batch, however many
            // groups reported, so a burst from several groups becomes one update to relay.
            RoomCmd::GroupConclusions(gc) => batch.merge_due |= self.kind.take_conclusions(gc),
            RoomCmd::GroupMeta {} => {
                if let Some(rec) = self.ctx.directory.meeting(&self.path.meeting) {
                    batch.merge_due |= self.kind.take_meeting(&rec);
                }
            }
            RoomCmd::LeaseGained => batch.rebuild |= self.kind.guards_curation(),
            RoomCmd::Inspect { reply } => {
                // Answered once what it shows is durable: an adopted version must not hold
                // anything a crash could still take back.
                let json = self.doc.read("reading the plenary as JSON", |doc| {
                    crate::plenary::merge::plenary_json(&doc.transact())
                });
                match json {
                    Some(json) => batch.inspections.push((reply, json)),
                    None => self.check_poison(),
                }
            }
            RoomCmd::Remote(ring) => batch.remote |= self.remote(ring),
            RoomCmd::StoreHead { head } => {
                self.replica.store_head(head, self.durability.is_idle());
                self.start_read();
            }
            RoomCmd::Shutdown { done } => return Some(done),
        }
        None
    }

    /// Another node's ring: its updates are applied and relayed at once when they follow the
    /// watermark (they are durable, and were vetted by the node that took them), else the log
    /// is read. True if the document changed.
    fn remote(&mut self, ring: Ring) -> bool {
        match self.replica.judge(&ring) {
            Next::Stale => false,
            Next::Apply(updates) => {
                let changed = self.apply_durable(&updates);
                if !self.doc.poisoned() {
                    self.replica.applied(ring.first, ring.last);
                }
                changed
            }
            Next::Fetch { .. } => {
                self.start_read();
                false
            }
        }
    }

    /// Starts a read of the log if the replica wants one.
    fn start_read(&mut self) {
        if self.replica.start_read(&self.ctx.store, &self.doc.key) {
            self.ctx.metrics.cluster_gaps.inc();
        }
    }

    /// A read of the log answered: what is new is applied and relayed. True if the document
    /// changed.
    fn caught_up(&mut self, result: Result<crate::store::DocTail, crate::store::StoreError>) -> bool {
        let tail = match result {
            Ok(tail) => tail,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log of other nodes' updates failed; retried on the next check");
                return false;
            }
        };
        let fresh = self.replica.fresh(&tail);
        let changed = self.apply_durable(&fresh);
        if !self.doc.poisoned() && self.replica.read_applied(tail.head) {
            self.start_read();
        }
        changed
    }

    /// Applies durable updates of other nodes and relays what changed to every member now
    /// (nothing of it waits for a write of this node). True if the document changed.
    fn apply_durable(&mut self, updates: &[Vec<u8>]) -> bool {
        if updates.is_empty() {
            return false;
        }
        self.ctx
            .metrics
            .cluster_remote_updates
            .inc_by(updates.len() as u64);
        let Some(diffs) = self.doc.apply_durable(&self.ctx, updates) else {
            self.check_poison();
            return false;
        };
        if diffs.is_empty() {
            return false;
        }
        self.answers.doc_changed();
        let frames: Vec<_> = diffs
            .iter()
            .map(|diff| {
                (
                    Recipients::AllBut(None),
                    Frame::binary(message::encode_update(diff)),
                )
            })
            .collect();
        self.members.deliver(&frames);
        true
    }

    fn join(&mut self, conn: ConnId, member: Member, joined: oneshot::Sender<()>) {
        let sv = self.doc.doc.transact().state_vector();
        let step1 = Frame::binary(message::encode_sync_step1(&sv));
        self.members.join(conn, member, step1);
        let _ = joined.send(());
    }

    fn awareness(&mut self, conn: ConnId, entries: Vec<AwarenessEntry>) {
        self.members.awareness_update(conn, entries);
    }

    /// Checks the writer's permission, then queues the update for the sandbox: the room applies
    /// it only once a child accepted it (`vetting`), so nothing unvetted reaches the document.
    fn update(&mut self, conn: ConnId, update: Update, raw: Vec<u8>, batch: &mut Batch) {
        let Some(writer) = self.members.writer(conn) else {
            return;
        };
        if !writer.can_write || self.kind.closed() {
            if self.answers.readonly.would_change(&self.doc.doc, &update) {
                self.ctx.metrics.rejected_messages.inc();
                tracing::debug!(conn = %conn, "write refused: permission denied");
                self.members
                    .send_to(conn, Frame::binary(encode_auth(Some(PERMISSION_DENIED))));
            }
            return;
        }
        batch.pending.push(Pending {
            conn,
            update,
            raw,
            wants_ack: writer.wants_ack,
        });
    }

    /// Commits a batch: vets and applies its updates, merges (plenary), sends its diffs to the
    /// store as one write, and queues what must wait for it.
    async fn commit(&mut self, mut batch: Batch) {
        if !batch.pending.is_empty() {
            let pending = std::mem::take(&mut batch.pending);
            let outcomes = self
                .doc
                .vet(&self.ctx, pending, self.kind.guards_curation())
                .await;
            for outcome in outcomes {
                self.settle_update(outcome, &mut batch);
            }
            self.check_poison();
        }
        if (batch.merge_due || batch.rebuild) && !self.doc.poisoned() {
            // Only the lease holder merges (alone on its store, a node always does).
            let right = self.ctx.cluster.leases.merge_right(self.path.meeting.as_str());
            if right.may_merge() {
                if batch.rebuild {
                    self.rebuild(&mut batch).await;
                } else {
                    self.merge(&mut batch).await;
                }
                batch.fence = right.fence();
            }
        }
        if !batch.diffs.is_empty() {
            self.answers.doc_changed();
            let updates: Vec<Vec<u8>> = batch.diffs.iter().map(|(_, d)| d.clone()).collect();
            self.durability
                .append(&self.ctx.persister, &self.doc.key, updates)
                .await;
            for (except, diff) in std::mem::take(&mut batch.diffs) {
                let frame = Frame::binary(message::encode_update(&diff));
                self.durability.defer(Deferred::Broadcast { except, frame });
            }
        }
        if let Some(merged) = batch.merged.take() {
            // Its own write: a fenced failure takes only the merge, not the members' writes.
            self.answers.doc_changed();
            self.durability
                .append_fenced(
                    &self.ctx.persister,
                    &self.doc.key,
                    vec![merged.clone()],
                    batch.fence.take(),
                )
                .await;
            let frame = Frame::binary(message::encode_update(&merged));
            self.durability.defer(Deferred::Broadcast { except: None, frame });
        }
        {
            if !self.doc.poisoned() && self.durability.compaction_due(self.ctx.settings.compact_after) {
                let plenary = self.kind.guards_curation();
                if let Some(snapshot) = self.doc.vetted_snapshot(&self.ctx, plenary).await {
                    // It claims only what it has applied of every node's updates; alone on its
                    // store, everything this room appended so far (in flight too: the persister
                    // writes it before the snapshot).
                    let covers = if self.ctx.cluster.shared_store {
                        self.replica.watermark()
                    } else {
                        i64::MAX
                    };
                    self.durability
                        .compact(&self.ctx.persister, &self.doc.key, snapshot, covers)
                        .await;
                }
                self.check_poison();
            }
        }
        for (conn, frame) in batch.replies {
            self.durability.defer(Deferred::To { conn, frame });
        }
        for (reply, json) in batch.inspections {
            self.durability.defer(Deferred::Inspection { reply, json });
        }
        if !batch.acks.is_empty() && !self.doc.poisoned() {
            let sv = self.doc.doc.transact().state_vector();
            let frame = Frame::binary(message::encode_saved_ack(&sv));
            for conn in batch.acks {
                self.durability.defer(Deferred::To {
                    conn,
                    frame: frame.clone(),
                });
            }
        }
        self.deliver_released().await;
    }

    /// Acts on what the sandbox said of one update.
    fn settle_update(&mut self, outcome: Outcome, batch: &mut Batch) {
        let metrics = &self.ctx.metrics;
        match outcome {
            Outcome::Applied {
                conn,
                diff,
                wants_ack,
            } => {
                if let Some(diff) = diff {
                    self.answers.doc_changed();
                    batch.diffs.push((Some(conn), diff));
                }
                if wants_ack {
                    batch.acks.push(conn);
                }
            }
            Outcome::Refused { conn, why } => {
                metrics.rejected_messages.inc();
                tracing::warn!(conn = %conn, reason = why, "update refused by the sandbox; closing 1002");
                self.members.kick(conn, close_code::PROTOCOL_ERROR);
            }
            Outcome::Denied { conn } => {
                metrics.rejected_messages.inc();
                tracing::info!(conn = %conn, "plenary write outside curation refused");
                self.members
                    .send_to(conn, Frame::binary(encode_auth(Some(PERMISSION_DENIED))));
            }
            Outcome::Retry { conn } => self.members.kick(conn, close_code::SERVICE_RESTART),
            Outcome::Diverged { conn } => {
                metrics.rejected_messages.inc();
                self.members.kick(conn, close_code::PROTOCOL_ERROR);
            }
        }
    }

    /// Plenary rooms: merges the new input into the document. The merged state is checked in
    /// the child (it replays, every read works) before it is stored or relayed; seeding now
    /// also spares the next moderator write a round trip.
    async fn merge(&mut self, batch: &mut Batch) {
        let kind = &mut self.kind;
        let now = crate::store::now_rfc3339();
        let merged = self
            .doc
            .read("merging group conclusions into the plenary", |doc| {
                kind.merge(doc, &now)
            });
        if let Some(Some(diff)) = merged {
            self.take_merged(diff, batch).await;
        }
        self.check_poison();
    }

    /// A merge's edit: checked in the sandbox, then written on its own (`commit`).
    async fn take_merged(&mut self, diff: Vec<u8>, batch: &mut Batch) {
        self.answers.doc_changed();
        self.doc.bump_generation(&self.ctx);
        match self.doc.seed(&self.ctx).await {
            Ok(()) => batch.merged = Some(diff),
            Err(e) if self.doc.poisoned() => {
                tracing::error!(error = %e, "the merged plenary does not pass the sandbox; not stored");
            }
            // The child could not be reached: the merge is the server's own edit.
            Err(e) => {
                tracing::warn!(error = %e, "could not check the merged plenary in the sandbox");
                batch.merged = Some(diff);
            }
        }
    }

    /// Plenary rooms, on taking the lease: first everything stored of the plenary (the former
    /// holder's merges — its fence keeps any later one out — and every node's curation), then
    /// the merge state rebuilt from every group's durable conclusions, as a load does. So the
    /// merge is computed against the stored plenary and adds nothing it already holds.
    async fn rebuild(&mut self, batch: &mut Batch) {
        let stored = match vetting::vetted_stored(&self.ctx, &self.doc.key).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read the stored plenary; not merging");
                return;
            }
        };
        let sv = self.doc.doc.transact().state_vector();
        let missing = tokio::task::spawn_blocking(move || {
            vetting::contained(move || {
                stored
                    .to_doc()
                    .map(|d| d.transact().encode_state_as_update_v1(&sv))
            })
        })
        .await;
        let Ok(Some(Ok(missing))) = missing else {
            tracing::error!("could not replay the stored plenary; not merging");
            return;
        };
        let caught_up = self.doc.read("catching up with the stored plenary", |doc| {
            let before = doc.transact().state_vector();
            let update = Update::decode_v1(&missing).map_err(|e| e.to_string())?;
            doc.transact_mut()
                .apply_update(update)
                .map_err(|e| e.to_string())?;
            Ok::<bool, String>(doc.transact().state_vector() != before)
        });
        match caught_up {
            Some(Ok(true)) => {
                // Durable already: shown at once, and not written again.
                self.answers.doc_changed();
                self.doc.bump_generation(&self.ctx);
                self.members
                    .broadcast(None, &Frame::binary(message::encode_update(&missing)));
            }
            Some(Ok(false)) => {}
            Some(Err(e)) => {
                tracing::error!(error = %e, "the stored plenary does not apply; not merging");
                return;
            }
            None => {
                self.check_poison();
                return;
            }
        }
        match kind::load_plenary(&self.ctx, &self.path.meeting, &self.doc.doc, true).await {
            Ok((state, diff)) => {
                self.kind = Kind::Plenary(state);
                if let Some(diff) = diff {
                    self.take_merged(diff, batch).await;
                } else if self.doc.poisoned() {
                    self.check_poison();
                } else {
                    // caught up without a merge: the sandbox's copy follows the document
                    let _ = self.doc.seed(&self.ctx).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "could not rebuild the plenary"),
        }
        self.check_poison();
    }

    /// Hands what durable batches released to the members (and, for a group, to its plenary).
    /// The frames released together leave together: one write per member for all of them.
    async fn deliver_released(&mut self) {
        let mut frames = Vec::new();
        let mut feeds = Vec::new();
        for d in self.durability.released() {
            match d {
                Deferred::Broadcast { except, frame } => frames.push((Recipients::AllBut(except), frame)),
                Deferred::To { conn, frame } => frames.push((Recipients::One(conn), frame)),
                Deferred::Inspection { reply, json } => {
                    let _ = reply.send(json);
                }
                Deferred::Feed(gc) => feeds.push(gc),
            }
        }
        self.members.deliver(&frames);
        for gc in feeds {
            let plenary = RoomPath::plenary(self.path.meeting.clone());
            let sent = gc.conclusions.clone();
            // Remembered only once delivered, so a failed hand-over is retried next time.
            if self.ctx.rooms.send(&plenary, RoomCmd::GroupConclusions(gc)).await {
                self.kind.handed_over(sent);
            }
        }
    }

    /// Group rooms: reads the conclusions and, if they changed, hands them to the meeting's
    /// plenary once every batch they were read from is durable.
    async fn feed_plenary(&mut self) {
        if !self.kind.feeds_plenary() {
            return;
        }
        let kind = &self.kind;
        let changed = self.doc.read("reading the conclusions for the plenary", |doc| {
            kind.changed_conclusions(doc)
        });
        match changed {
            Some(Some(gc)) => {
                self.durability.defer(Deferred::Feed(gc));
                self.deliver_released().await;
            }
            Some(None) => {}
            None => self.check_poison(),
        }
    }

    /// yrs panicked on the document: members reconnect (1012) to a fresh load.
    fn poison(&mut self, what: &str) {
        self.doc.poison(what);
        self.check_poison();
    }

    fn check_poison(&mut self) {
        if self.doc.take_poisoned() {
            self.members.close_all(close_code::SERVICE_RESTART);
        }
    }

    async fn shutdown(&mut self, inbox: &mut mpsc::Receiver<RoomCmd>, done: oneshot::Sender<()>) {
        inbox.close();
        while let Some(r) = self.durability.next_durable().await {
            if r.is_ok() {
                self.deliver_released().await;
            }
        }
        self.feed_plenary().await;
        self.members.close_all(close_code::GOING_AWAY);
        self.ctx.rooms.forget(&self.path, self.instance);
        let _ = done.send(());
    }

    /// Leaving (idle, store failure, poisoned): in-flight writes finish first, so that no
    /// successor can load the document without them.
    async fn unload(&mut self, inbox: &mut mpsc::Receiver<RoomCmd>) {
        self.durability.settle().await;
        self.ctx.rooms.forget(&self.path, self.instance);
        self.doc.forget_replica(&self.ctx);
        inbox.close();
        // Commands that raced with the unload: a joiner sees its `joined` reply vanish and
        // retries on a fresh room; plenary input, exports and closed flags are handed to that
        // successor; member traffic (the sender was not a member: the room was empty) is dropped.
        while let Ok(cmd) = inbox.try_recv() {
            match cmd {
                RoomCmd::Shutdown { done } => {
                    let _ = done.send(());
                }
                cmd if cmd.outlives_its_room() => {
                    self.ctx.rooms.send(&self.path, cmd).await;
                }
                _ => {}
            }
        }
    }
}

/// A quarantined document's room: it stays registered (so that connections do not reload it
/// over and over) and closes every joiner with 1011 "document quarantined", until idle.
async fn quarantined(ctx: &RoomContext, path: &RoomPath, instance: u64, inbox: &mut mpsc::Receiver<RoomCmd>) {
    let idle = ctx.settings.room_idle.max(Duration::from_secs(1));
    loop {
        let cmd = match tokio::time::timeout(idle, inbox.recv()).await {
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
    ctx.rooms.forget(path, instance);
    inbox.close();
}
