//! A room's members: who is connected, their awareness, and the fan-out to their bounded
//! outboxes. A member whose outbox is full is closed with 1013 (its outbox kicks it) and leaves;
//! its awareness removal goes to the others. Knows nothing of the document or the store: the
//! room hands it frames that may leave now.
//!
//! On a node of a cluster it also tells the other nodes (`cluster::presence`) what its
//! connections' awareness became (accepted states and removals, never what other nodes sent),
//! answers their queries, sends its local counts on change (at most once per tick) and every
//! [`HEARTBEAT`] while it has members, and applies what they send: their entries are relayed
//! to the members and shown to joiners, their counts are added to its own, and a node silent
//! for [`NODE_SILENCE`] takes its entries and counts with it.

use super::awareness::AwarenessTable;
use super::command::{ConnId, Member};
use super::nodes::{OtherNodes, HEARTBEAT, NODE_SILENCE};
use super::outbox::{Delivery, Frame};
use crate::cluster::presence::{Inbound, Publisher, RoomItem};
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use plenary_protocol::message;
use plenary_protocol::{AwarenessEntry, AwarenessUpdate};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The server's awareness state is renewed this often (y-protocols times out states after 30 s).
const SERVER_STATE_RENEW: Duration = Duration::from_secs(15);
/// Longest that changed counts wait for people to stop joining or leaving.
pub const COUNTS_HOLD: Duration = Duration::from_secs(3);

fn unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

struct MemberState {
    member: Member,
    join_epoch: u64,
}

/// Who a frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// Every member but the one given (the sender of an update).
    AllBut(Option<ConnId>),
    One(ConnId),
}

impl Recipients {
    fn includes(self, conn: ConnId) -> bool {
        match self {
            Recipients::AllBut(except) => except != Some(conn),
            Recipients::One(one) => one == conn,
        }
    }
}

/// What the room needs to know of a member to take its update.
pub struct Writer {
    pub can_write: bool,
    pub wants_ack: bool,
}

pub struct Members {
    map: HashMap<ConnId, MemberState>,
    awareness: AwarenessTable,
    metrics: Arc<Metrics>,
    published_counts: (usize, usize, bool),
    published_at: Instant,
    /// The counts at the last call of [`Members::publish_counts`] (a tick), and since when
    /// changed counts have been held back because they were still moving.
    seen_counts: (usize, usize),
    held_since: Option<Instant>,
    /// The encoded awareness snapshot and the table version it shows.
    snapshot: Option<(u64, Option<Frame>)>,
    /// How this room reaches the other nodes, on a node whose presence relay runs.
    link: Option<Link>,
    /// What the other nodes said about this room.
    nodes: OtherNodes,
    /// Since messages may have been missed: remote entries not heard again by then go.
    unconfirmed_since: Option<Instant>,
}

/// A room's link to the other nodes.
struct Link {
    publisher: Publisher,
    room: String,
    /// The local counts last sent, and when.
    sent: Option<(usize, usize)>,
    sent_at: Instant,
}

impl Link {
    fn publish(&self, entries: Vec<AwarenessEntry>, counts: Option<(usize, usize)>, query: bool) {
        self.publisher.publish(RoomItem {
            room: self.room.clone(),
            entries,
            counts,
            query,
        });
    }
}

impl Members {
    pub fn new(metrics: Arc<Metrics>) -> Members {
        Members {
            map: HashMap::new(),
            awareness: AwarenessTable::with_server_clock(unix_seconds()),
            metrics,
            published_counts: (usize::MAX, usize::MAX, false),
            published_at: Instant::now(),
            seen_counts: (0, 0),
            held_since: None,
            snapshot: None,
            link: None,
            nodes: OtherNodes::default(),
            unconfirmed_since: None,
        }
    }

    /// Links the room `room` to the other nodes of `cluster` (if its presence relay runs), and
    /// asks them for what they hold of it.
    pub fn in_cluster(mut self, cluster: &Cluster, room: String) -> Members {
        if let Some(publisher) = cluster.presence.get() {
            let link = Link {
                publisher: publisher.clone(),
                room,
                sent: None,
                sent_at: Instant::now(),
            };
            link.publish(Vec::new(), None, true);
            self.link = Some(link);
        }
        self
    }

    /// Tells the other nodes what this node's connections' awareness became.
    fn tell_nodes(&self, entries: &[AwarenessEntry]) {
        if let Some(link) = &self.link {
            if !entries.is_empty() {
                link.publish(entries.to_vec(), None, false);
            }
        }
    }

    /// This node's (followers, writers) in the room.
    fn local_counts(&self) -> (usize, usize) {
        let writers = self.map.values().filter(|m| m.member.can_write).count();
        (self.map.len() - writers, writers)
    }

    fn note_refused(&mut self) {
        let refused = self.awareness.take_refused();
        if refused > 0 {
            self.metrics.awareness_refused.inc_by(refused);
            let (states, bytes) = self.awareness.size();
            tracing::debug!(refused, states, bytes, "awareness past a bound refused");
        }
    }

    fn relay_to_all(&mut self, entries: Vec<AwarenessEntry>) {
        if let Some(frame) = awareness_frame(entries) {
            self.broadcast(None, &frame);
        }
    }

    /// What the presence relay heard from other nodes about this room.
    pub fn remote(&mut self, inbound: Inbound) {
        let now = Instant::now();
        match inbound {
            Inbound::Item { node, item } => {
                self.nodes.heard(&node, item.counts, now);
                if !item.entries.is_empty() {
                    let relay = self.awareness.apply_remote(&node, item.entries);
                    self.note_refused();
                    self.relay_to_all(relay);
                }
                if item.query && !self.map.is_empty() {
                    let counts = self.local_counts();
                    if let Some(link) = &mut self.link {
                        link.publish(self.awareness.local_entries(), Some(counts), false);
                        link.sent = Some(counts);
                        link.sent_at = now;
                    }
                }
            }
            Inbound::Resync => {
                self.awareness.unconfirm_remote();
                self.unconfirmed_since = Some(now);
                if let Some(link) = &self.link {
                    link.publish(Vec::new(), None, true);
                }
            }
        }
    }

    /// Once a tick: other nodes that went silent leave the room, remote entries not confirmed
    /// after missed messages go, and the local counts go out on change and as a heartbeat.
    fn cluster_upkeep(&mut self) {
        let now = Instant::now();
        for node in self.nodes.expire(now) {
            tracing::debug!(node = %node, "a node went silent in this room; its awareness goes");
            let removed = self.awareness.drop_node(&node);
            self.relay_to_all(removed);
        }
        if self
            .unconfirmed_since
            .is_some_and(|t| now.saturating_duration_since(t) >= NODE_SILENCE)
        {
            self.unconfirmed_since = None;
            let removed = self.awareness.drop_unconfirmed();
            self.relay_to_all(removed);
        }
        let counts = self.local_counts();
        if let Some(link) = &mut self.link {
            let changed = link.sent != Some(counts);
            let heartbeat = counts != (0, 0) && now.saturating_duration_since(link.sent_at) >= HEARTBEAT;
            if changed || heartbeat {
                link.publish(Vec::new(), Some(counts), false);
                link.sent = Some(counts);
                link.sent_at = now;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn writer(&self, conn: ConnId) -> Option<Writer> {
        self.map.get(&conn).map(|m| Writer {
            can_write: m.member.can_write,
            wants_ack: m.member.wants_ack,
        })
    }

    /// Adds a member and greets it, as the reference server does: the room's sync step 1
    /// (`step1`), then the awareness states.
    pub fn join(&mut self, conn: ConnId, member: Member, step1: Frame) {
        let join_epoch = self.awareness.join();
        // One write for both when the socket takes them.
        let _ = match self.awareness_snapshot() {
            (Some(frame), _) => member.outbox.send_all(&[&step1, &frame]),
            (None, _) => member.outbox.send(&step1),
        };
        tracing::debug!(conn = %conn, role = member.role.name(), can_write = member.can_write, "joined");
        self.map.insert(conn, MemberState { member, join_epoch });
    }

    /// Removes a member; the others learn that its awareness states are gone.
    pub fn leave(&mut self, conn: ConnId) {
        if self.map.remove(&conn).is_none() {
            return;
        }
        let removed = self.awareness.leave(conn);
        self.tell_nodes(&removed);
        if let Some(frame) = awareness_frame(removed) {
            self.broadcast(None, &frame);
        }
    }

    /// Queues `frame` for every member but `except`; those that cannot take it leave.
    pub fn broadcast(&mut self, except: Option<ConnId>, frame: &Frame) {
        let mut gone = Vec::new();
        let mut sent = 0u64;
        for (id, m) in &self.map {
            if Some(*id) == except {
                continue;
            }
            if taken(&self.metrics, *id, m.member.outbox.send(frame), &mut gone) {
                sent += 1;
            }
        }
        self.count_sent(sent, frame);
        for id in gone {
            self.leave(id);
        }
    }

    /// Queues frames released together, in order, each for its recipients: every member gets
    /// the ones meant for it in one write when its socket takes them, rather than one write per
    /// frame. Those that cannot take them leave.
    pub fn deliver(&mut self, frames: &[(Recipients, Frame)]) {
        match frames {
            [] => {}
            [(Recipients::AllBut(except), frame)] => self.broadcast(*except, frame),
            [(Recipients::One(conn), frame)] => self.send_to(*conn, frame.clone()),
            _ if frames.iter().all(|(to, _)| matches!(to, Recipients::One(_))) => {
                for (to, frame) in frames {
                    if let Recipients::One(conn) = to {
                        self.send_to(*conn, frame.clone());
                    }
                }
            }
            _ => self.deliver_together(frames),
        }
    }

    fn deliver_together(&mut self, frames: &[(Recipients, Frame)]) {
        let mut gone = Vec::new();
        let (mut sent, mut bytes) = (0u64, 0u64);
        let mut mine: Vec<&Frame> = Vec::with_capacity(frames.len());
        for (id, m) in &self.map {
            mine.clear();
            mine.extend(frames.iter().filter(|(to, _)| to.includes(*id)).map(|(_, f)| f));
            if mine.is_empty() {
                continue;
            }
            if taken(&self.metrics, *id, m.member.outbox.send_all(&mine), &mut gone) {
                sent += mine.len() as u64;
                bytes += mine.iter().map(|f| f.len() as u64).sum::<u64>();
            }
        }
        if sent > 0 {
            self.metrics.messages_out.inc_by(sent);
            self.metrics.bytes_out.inc_by(bytes);
        }
        for id in gone {
            self.leave(id);
        }
    }

    /// Counts frames handed to sockets, once per broadcast rather than once per delivery.
    fn count_sent(&self, n: u64, frame: &Frame) {
        if n > 0 {
            self.metrics.messages_out.inc_by(n);
            self.metrics.bytes_out.inc_by(n * frame.len() as u64);
        }
    }

    /// Queues `frame` for one member; it leaves if it cannot take it.
    pub fn send_to(&mut self, conn: ConnId, frame: Frame) {
        let Some(m) = self.map.get(&conn) else { return };
        match m.member.outbox.send(&frame) {
            Delivery::Queued => self.count_sent(1, &frame),
            Delivery::TooSlow => {
                self.metrics.slow_disconnects.inc();
                self.leave(conn);
            }
            Delivery::Closed => self.leave(conn),
        }
    }

    /// Closes one member's connection with `code`.
    pub fn kick(&mut self, conn: ConnId, code: u16) {
        if let Some(m) = self.map.get(&conn) {
            m.member.outbox.kick.kick(code);
        }
        self.leave(conn);
    }

    /// Closes every member's connection with `code`.
    pub fn close_all(&mut self, code: u16) {
        for m in self.map.values() {
            m.member.outbox.kick.kick(code);
        }
        self.map.clear();
    }

    /// A member's awareness message: checked, stamped and relayed to the others.
    pub fn awareness_update(&mut self, conn: ConnId, entries: Vec<AwarenessEntry>) {
        let Some(m) = self.map.get(&conn) else { return };
        // Awareness of connections that cannot write is not relayed (contract).
        if !m.member.can_write {
            return;
        }
        let relay = self
            .awareness
            .apply(conn, m.member.token, m.join_epoch, m.member.role.name(), entries);
        self.note_refused();
        self.tell_nodes(&relay);
        if let Some(frame) = awareness_frame(relay) {
            // Not back to the sender: the relayed clock may be above its own (after a
            // reconnect), and a stock client would adopt it, echo it, and loop.
            self.broadcast(Some(conn), &frame);
        }
    }

    /// The awareness snapshot as one frame (`None` when empty), and whether it had to be
    /// encoded now (it is re-encoded only when the table changed).
    pub fn awareness_snapshot(&mut self) -> (Option<Frame>, bool) {
        let version = self.awareness.version();
        if let Some((v, frame)) = &self.snapshot {
            if *v == version {
                return (frame.clone(), false);
            }
        }
        let frame = awareness_frame(self.awareness.snapshot());
        self.snapshot = Some((version, frame.clone()));
        (frame, true)
    }

    /// Publishes `{"server":{"followers","writers","closed"}}` under client id 0 when it changed:
    /// the counts of every node (this one's and the latest the others sent). Called every tick,
    /// and at once when the closed flag changes (published then without delay). Counts that
    /// still moved since the last tick (people are joining or leaving) wait for the next one,
    /// for up to [`COUNTS_HOLD`]: a join wave of hundreds is one update to every member, not one
    /// per second while it lasts.
    pub fn publish_counts(&mut self, closed: bool) {
        self.cluster_upkeep();
        let (followers, writers) = self.local_counts();
        let (other_followers, other_writers) = self.nodes.sum();
        let (followers, writers) = (followers + other_followers, writers + other_writers);
        let now = (followers, writers, closed);
        let moving = (followers, writers) != self.seen_counts;
        self.seen_counts = (followers, writers);
        if now == self.published_counts {
            self.held_since = None;
            // Stock awareness drops a remote state not renewed within 30 s: renew every 15 s.
            if self.published_at.elapsed() < SERVER_STATE_RENEW {
                return;
            }
        } else if moving && closed == self.published_counts.2 {
            let since = *self.held_since.get_or_insert_with(Instant::now);
            if since.elapsed() < COUNTS_HOLD {
                return;
            }
        }
        if self.map.is_empty() {
            return;
        }
        self.held_since = None;
        self.published_counts = now;
        self.published_at = Instant::now();
        let state =
            serde_json::json!({ "server": { "followers": followers, "writers": writers, "closed": closed } });
        let entry = self.awareness.set_server_state(state.to_string());
        if let Some(frame) = awareness_frame(vec![entry]) {
            self.broadcast(None, &frame);
        }
    }
}

/// True if the member's outbox took the frames; else the member goes into `gone` (a slow one
/// is counted and logged: its outbox closes it with 1013).
fn taken(metrics: &Metrics, id: ConnId, delivery: Delivery, gone: &mut Vec<ConnId>) -> bool {
    match delivery {
        Delivery::Queued => return true,
        Delivery::TooSlow => {
            metrics.slow_disconnects.inc();
            tracing::info!(conn = %id, "connection too slow; closing 1013");
        }
        Delivery::Closed => {}
    }
    gone.push(id);
    false
}

fn awareness_frame(entries: Vec<AwarenessEntry>) -> Option<Frame> {
    if entries.is_empty() {
        return None;
    }
    Some(Frame::binary(message::encode_awareness(&AwarenessUpdate {
        entries,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::connection::close::close_code;
    use crate::room::outbox::Outbox;
    use bytes::Bytes;

    fn member(capacity: usize) -> (Member, Outbox, tokio::sync::mpsc::Receiver<Bytes>) {
        let (outbox, rx) = Outbox::new(capacity, 1 << 20);
        let m = Member {
            outbox: outbox.clone(),
            role: Role::Rapporteur("g1".into()),
            token: crate::auth::TokenHash::of("t"),
            can_write: true,
            wants_ack: false,
        };
        (m, outbox, rx)
    }

    /// Members 1 (fast) and 2 (its socket takes the greeting, then nothing; its queue holds one
    /// frame), joined: the metrics, the members, the fast one's outbox and frames, the slow
    /// one's outbox and its frames (kept: a dropped receiver is a closed socket, not a full one).
    fn fast_and_slow() -> (
        Arc<Metrics>,
        Members,
        Outbox,
        tokio::sync::mpsc::Receiver<Bytes>,
        (Outbox, tokio::sync::mpsc::Receiver<Bytes>),
    ) {
        let metrics = Arc::new(Metrics::new());
        let mut members = Members::new(metrics.clone());
        let (fast, fast_box, fast_rx) = member(64);
        let (slow, slow_box, slow_rx) = member(1);
        members.join(ConnId(1), fast, Frame::binary(b"step1"));
        members.join(ConnId(2), slow, Frame::binary(b"step1"));
        (metrics, members, fast_box, fast_rx, (slow_box, slow_rx))
    }

    #[test]
    fn a_member_whose_outbox_is_full_is_closed_with_1013_and_leaves() {
        let (metrics, mut members, fast_box, mut fast_rx, (slow_box, _slow_rx)) = fast_and_slow();
        // the greeting filled the slow member's socket; "one" waits in its queue of one
        members.broadcast(None, &Frame::binary(b"one"));
        assert_eq!(slow_box.kick.code(), None);
        members.broadcast(None, &Frame::binary(b"two"));
        assert_eq!(slow_box.kick.code(), Some(close_code::TRY_AGAIN_LATER));
        assert_eq!(metrics.slow_disconnects.get(), 1);
        assert_eq!(members.len(), 1, "the slow member left");
        members.broadcast(None, &Frame::binary(b"three"));
        assert_eq!(metrics.slow_disconnects.get(), 1);
        assert_eq!(fast_box.kick.code(), None);
        let mut got = Vec::new();
        while let Ok(f) = fast_rx.try_recv() {
            got.push(f);
        }
        assert_eq!(got.len(), 4, "greeting and three frames: {got:?}");
    }

    #[test]
    fn a_broadcast_skips_its_sender() {
        let mut members = Members::new(Arc::new(Metrics::new()));
        let (a, _a_box, mut a_rx) = member(8);
        let (b, _b_box, mut b_rx) = member(8);
        members.join(ConnId(1), a, Frame::binary(b"step1"));
        members.join(ConnId(2), b, Frame::binary(b"step1"));
        members.broadcast(Some(ConnId(1)), &Frame::binary(b"edit"));
        assert_eq!(a_rx.try_recv().unwrap(), Bytes::from_static(b"step1"));
        assert!(a_rx.try_recv().is_err());
        assert_eq!(b_rx.try_recv().unwrap(), Bytes::from_static(b"step1"));
        assert_eq!(b_rx.try_recv().unwrap(), Bytes::from_static(b"edit"));
    }

    #[test]
    fn frames_delivered_together_leave_in_one_write_per_member_each_with_its_own() {
        use std::sync::atomic::Ordering::SeqCst;
        let mut members = Members::new(Arc::new(Metrics::new()));
        let mut boxes = Vec::new();
        for id in 1..=3 {
            let (outbox, rx, writes) = Outbox::counted(64, 1 << 20);
            let m = Member {
                outbox,
                role: Role::Rapporteur("g1".into()),
                token: crate::auth::TokenHash::of("t"),
                can_write: true,
                wants_ack: false,
            };
            members.join(ConnId(id), m, Frame::binary(b"step1"));
            boxes.push((rx, writes));
        }
        members.deliver(&[
            (Recipients::AllBut(Some(ConnId(1))), Frame::binary(b"from 1")),
            (Recipients::One(ConnId(1)), Frame::binary(b"ack 1")),
            (Recipients::AllBut(Some(ConnId(2))), Frame::binary(b"from 2")),
            (Recipients::AllBut(None), Frame::binary(b"merged")),
            (Recipients::One(ConnId(3)), Frame::binary(b"to 3")),
        ]);
        let want: [&[&[u8]]; 3] = [
            &[b"ack 1", b"from 2", b"merged"],
            &[b"from 1", b"merged"],
            &[b"from 1", b"from 2", b"merged", b"to 3"],
        ];
        for ((rx, writes), want) in boxes.iter_mut().zip(want) {
            let mut got = Vec::new();
            while let Ok(f) = rx.try_recv() {
                got.push(f);
            }
            assert_eq!(got[0], Bytes::from_static(b"step1"));
            assert_eq!(&got[1..], want, "in order, only its own");
            assert_eq!(writes.load(SeqCst), 2, "the greeting, then one write for all");
        }
        // a member for which none of them is meant gets no write at all
        members.deliver(&[
            (Recipients::AllBut(Some(ConnId(1))), Frame::binary(b"x")),
            (Recipients::One(ConnId(2)), Frame::binary(b"y")),
        ]);
        assert_eq!(boxes[0].1.load(SeqCst), 2);
        assert!(boxes[0].0.try_recv().is_err());
        assert_eq!(boxes[1].1.load(SeqCst), 3);
    }

    #[test]
    fn a_member_that_cannot_take_frames_delivered_together_is_closed_with_1013_and_leaves() {
        let (metrics, mut members, _, mut fast_rx, (slow_box, _slow_rx)) = fast_and_slow();
        let three = [
            (Recipients::AllBut(None), Frame::binary(b"a")),
            (Recipients::One(ConnId(2)), Frame::binary(b"b")),
            (Recipients::AllBut(None), Frame::binary(b"c")),
        ];
        // into its empty queue: taken whole (as one frame would be)
        members.deliver(&three);
        assert_eq!(slow_box.kick.code(), None);
        // behind them, past its bound of one frame
        members.deliver(&three);
        assert_eq!(slow_box.kick.code(), Some(close_code::TRY_AGAIN_LATER));
        assert_eq!(metrics.slow_disconnects.get(), 1);
        assert_eq!(members.len(), 1, "the slow member left");
        let got: Vec<_> = std::iter::from_fn(|| fast_rx.try_recv().ok()).collect();
        let want: Vec<&[u8]> = vec![b"step1", b"a", b"c", b"a", b"c"];
        assert_eq!(got, want);
    }

    /// The server state (client id 0) in the awareness frames queued for a member, if any.
    fn server_states(rx: &mut tokio::sync::mpsc::Receiver<Bytes>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(frame) = rx.try_recv() {
            if let Ok(plenary_protocol::Message::Awareness(u)) =
                plenary_protocol::Message::decode(&frame, &plenary_protocol::Limits::default())
            {
                for e in u.entries.iter().filter(|e| e.client_id == 0) {
                    out.push(serde_json::from_str(&e.state).unwrap());
                }
            }
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn counts_still_moving_wait_for_a_quiet_tick_or_counts_hold_and_closing_is_told_at_once() {
        let mut members = Members::new(Arc::new(Metrics::new()));
        let (w, _w_box, mut w_rx) = member(64);
        members.join(ConnId(1), w, Frame::binary(b"step1"));
        let _ = w_rx.try_recv();
        let tick = Duration::from_secs(1);
        members.publish_counts(false);
        assert!(
            server_states(&mut w_rx).is_empty(),
            "the writer just joined: held"
        );
        tokio::time::advance(tick).await;
        members.publish_counts(false);
        assert_eq!(
            server_states(&mut w_rx),
            vec![serde_json::json!({"server": {"followers": 0, "writers": 1, "closed": false}})]
        );
        // a join wave: a follower every tick; the counts go out once COUNTS_HOLD has passed
        let mut ticks = 0;
        let mut heard = Vec::new();
        while heard.is_empty() {
            let (f, _, _) = member(64);
            members.join(
                ConnId(10 + ticks),
                Member {
                    can_write: false,
                    ..f
                },
                Frame::binary(b"step1"),
            );
            tokio::time::advance(tick).await;
            members.publish_counts(false);
            ticks += 1;
            heard = server_states(&mut w_rx);
            assert!(ticks <= COUNTS_HOLD.as_secs() + 1, "held past COUNTS_HOLD");
        }
        assert_eq!(ticks, COUNTS_HOLD.as_secs() + 1, "held while moving");
        assert_eq!(heard[0]["server"]["followers"], ticks);
        // closing is told at once, even while the counts move
        let (f, _, _) = member(64);
        members.join(
            ConnId(99),
            Member {
                can_write: false,
                ..f
            },
            Frame::binary(b"step1"),
        );
        members.publish_counts(true);
        assert_eq!(server_states(&mut w_rx)[0]["server"]["closed"], true);
    }
}
