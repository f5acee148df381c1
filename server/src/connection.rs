//! One WebSocket connection, one task: it decodes what the client sends and forwards it to the
//! room, drains the bounded outbound queue (every queued frame, one flush), sends pings, and
//! closes with the contract's codes: 1002 undecodable, 1009 oversized, 1013 too slow, 1001
//! shutdown, 1008 token revoked.
//!
//! Budgets (see [`crate::limits`]): per connection, a message rate and a reply-byte bucket;
//! per token, a message rate and a byte rate of encoded replies. Over budget, the connection
//! stops reading for a while; it is never cut for it.
//!
//! After a close frame is sent, what the client still sends is read and discarded until it
//! closes (or a deadline passes), so that it sees our close code rather than a reset.

use crate::auth::{Capability, TokenHash};
use crate::limits::{DebtBucket, ReplyMeter, ReplyTicket, TokenSlot};
use crate::room::{Frame, Member, Outbox, RoomCmd, RoomHandle};
use axum::extract::ws::{Message as WsMessage, WebSocket};
use close::{close_code, close_message, Kick};
use context::{ConnContext, OpenConn};
use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::decode_update_with;
use plenary_protocol::{Message, RoomPath};

pub mod close;
pub mod context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const PING_EVERY: Duration = Duration::from_secs(30);
/// A client silent for this long (no message, no pong) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to keep reading after our close frame, waiting for the client's.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);
/// How long an unreadable socket is kept open after our close frame (see `drain_until_closed`).
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How long our close frame may take to leave.
const CLOSE_SEND: Duration = Duration::from_secs(2);
/// Frames written per socket flush.
const WRITE_BATCH: usize = 64;

pub struct ConnectionParams {
    pub conn: crate::room::ConnId,
    pub room: RoomPath,
    pub capability: Capability,
    /// The token it was opened with: revoking it closes this connection (1008).
    pub token: TokenHash,
    /// Its token's connection slot, held until the connection ends.
    pub slot: TokenSlot,
    pub wants_ack: bool,
}

/// A participant on a group document of a meeting whose notes are private.
pub fn refused_for_private_notes(
    directory: &crate::directory::Directory,
    room: &RoomPath,
    role: &crate::auth::Role,
) -> bool {
    matches!(role, crate::auth::Role::Participant) && !room.is_plenary() && directory.notes_private(&room.meeting)
}

/// Runs a connection to completion.
pub async fn serve(mut socket: WebSocket, svc: ConnContext, p: ConnectionParams) {
    svc.metrics.connections.inc();
    svc.metrics.connections_total.inc();
    let can_write = p.capability.role.can_write(&p.room.doc);
    let (outbox, out_rx) = Outbox::new(svc.settings.outbound_queue, svc.settings.outbound_queue_bytes);
    let kick = outbox.kick.clone();
    svc.connections.insert(
        p.conn,
        OpenConn {
            token: p.token,
            kick: kick.clone(),
            room: p.room.clone(),
            participant: matches!(p.capability.role, crate::auth::Role::Participant),
        },
    );
    if svc.stopping.is_cancelled() {
        kick.kick(close_code::GOING_AWAY);
    }
    // A revocation between the upgrade's check and the insert above did not see this
    // connection: look again now that it is registered.
    if crate::auth::MeetingDirectory::capability(svc.room.directory.as_ref(), &p.token).is_none() {
        kick.kick(close_code::POLICY_VIOLATION);
    }
    // Likewise for notes made private meanwhile.
    if refused_for_private_notes(&svc.room.directory, &p.room, &p.capability.role) {
        kick.kick(close_code::NOTES_PRIVATE);
    }
    let Some(room) = join(&svc, &p, outbox.clone(), can_write).await else {
        svc.connections.remove(&p.conn);
        tracing::warn!(conn = %p.conn, room = %p.room, "room unavailable");
        let _ = close(&mut socket, close_code::SERVICE_RESTART).await;
        svc.metrics.connections.dec();
        return;
    };
    // Debug, not info: two lines per connection are a formatted write to stderr each, and a
    // connect storm is thousands of them (the per-connection counts are in the metrics).
    tracing::debug!(
        role = p.capability.role.name(),
        can_write,
        ack = p.wants_ack,
        "connected"
    );
    let mut conn = Conn {
        socket,
        svc: &svc,
        p: &p,
        room: &room,
        kick: &kick,
        outbox: &outbox,
        out_rx,
        buf: Vec::with_capacity(WRITE_BATCH),
        replies: Arc::new(ReplyMeter::default()),
        reply_bucket: DebtBucket::new(svc.token_limits.reply_bytes_per_sec),
        resume_at: None,
    };
    let code = conn.run().await;
    let _ = room.tx.send(RoomCmd::Leave { conn: p.conn }).await;
    let mut socket = conn.socket;
    if let Some(code) = code {
        // A code the room or shutdown gave first wins over the one this task chose.
        kick.kick(code);
        let code = kick.code().unwrap_or(code);
        if close(&mut socket, code).await {
            drain_until_closed(&mut socket).await;
        }
    }
    svc.connections.remove(&p.conn);
    svc.metrics.connections.dec();
    tracing::debug!(code = kick.code().unwrap_or(0), "disconnected");
}

async fn join(svc: &ConnContext, p: &ConnectionParams, outbox: Outbox, can_write: bool) -> Option<RoomHandle> {
    for _ in 0..3 {
        // A room of a deleted meeting is not loaded: the connection was closed with it.
        let handle = svc.room.rooms.get_or_load(&p.room)?;
        let (joined, rx) = oneshot::channel();
        let member = Member {
            outbox: outbox.clone(),
            role: p.capability.role.clone(),
            token: p.token,
            can_write,
            wants_ack: p.wants_ack,
        };
        if handle
            .tx
            .send(RoomCmd::Join {
                conn: p.conn,
                member,
                joined,
            })
            .await
            .is_err()
        {
            svc.room.rooms.forget(&p.room, handle.instance);
            continue;
        }
        if rx.await.is_ok() {
            return Some(handle);
        }
        svc.room.rooms.forget(&p.room, handle.instance);
    }
    None
}

/// Sends our close frame; false if the socket would not take it in time.
async fn close(socket: &mut WebSocket, code: u16) -> bool {
    matches!(
        tokio::time::timeout(CLOSE_SEND, socket.send(close_message(code))).await,
        Ok(Ok(()))
    )
}

/// Our close frame is on its way: discard what the client still sends until it answers with its
/// own close frame or goes away, so that it sees our code rather than a reset.
async fn drain_until_closed(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Close(_))) => break,
                Some(Ok(_)) => {}
                // The stream cannot be read any further (a message above the WebSocket layer's
                // hard limit is left unread in the socket). Dropping the socket now would send a
                // reset that may overtake our close frame: give the client time to read it.
                Some(Err(_)) | None => {
                    tokio::time::sleep(CLOSE_LINGER).await;
                    break;
                }
            }
        }
    })
    .await;
}

/// One task per connection: it reads, writes and pings from a single `select!`, so there is no
/// second task, no lock between halves of the socket, and a queued batch of frames is written
/// with one flush.
struct Conn<'a> {
    socket: WebSocket,
    svc: &'a ConnContext,
    p: &'a ConnectionParams,
    room: &'a RoomHandle,
    kick: &'a Kick,
    outbox: &'a Outbox,
    out_rx: mpsc::Receiver<Frame>,
    buf: Vec<Frame>,
    /// What the room charged for the replies this connection asked for.
    replies: Arc<ReplyMeter>,
    reply_bucket: DebtBucket,
    /// Reads resume then (the reply budget is in debt).
    resume_at: Option<Instant>,
}

/// How a step of the connection ended: go on, close with a code, or stop (the peer is gone).
enum Step {
    Continue,
    Close(u16),
    Gone,
}

impl Conn<'_> {
    /// Runs until the connection ends; returns the close code to send, if any.
    async fn run(&mut self) -> Option<u16> {
        let mut rate = DebtBucket::messages(self.svc.settings.max_messages_per_sec);
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_seen = Instant::now();
        // The branches are polled in order and the first ready one wins, so the frequent ones
        // come first. The kick (from the room, or from shutdown with 1001) is lock-free.
        let kick = self.kick.clone();
        let kicked = kick.kicked();
        tokio::pin!(kicked);
        // One timer for the reply-budget pause, re-armed when a pause starts: `select!`
        // evaluates every branch's future on every turn, and a fresh `sleep_until` per turn
        // (a clock read and a timer entry) is a cost on every delivery.
        let pause = tokio::time::sleep_until(Instant::now());
        tokio::pin!(pause);
        let mut armed: Option<Instant> = None;
        loop {
            if self.resume_at != armed {
                if let Some(at) = self.resume_at {
                    pause.as_mut().reset(at);
                }
                armed = self.resume_at;
            }
            let step = tokio::select! {
                biased;
                n = self.out_rx.recv_many(&mut self.buf, WRITE_BATCH) => {
                    if n == 0 {
                        Step::Close(close_code::GOING_AWAY)
                    } else if let Some(code) = self.kick.code() {
                        Step::Close(code)
                    } else {
                        // Boxed: the write and message futures exist only while busy, which
                        // keeps an idle connection's task small.
                        Box::pin(self.write_batch()).await
                    }
                }
                // Paused for the reply budget: no reading, but queued frames keep leaving.
                _ = &mut pause, if self.resume_at.is_some() => {
                    self.resume_at = None;
                    Step::Continue
                }
                msg = self.socket.next(), if self.resume_at.is_none() => {
                    last_seen = Instant::now();
                    match msg {
                        None => Step::Gone,
                        Some(Err(e)) => read_error(self.svc, self.p, e),
                        Some(Ok(m)) => Box::pin(self.on_message(m, &mut rate)).await,
                    }
                }
                _ = &mut kicked => Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY)),
                _ = ping.tick() => {
                    if last_seen.elapsed() > IDLE_TIMEOUT {
                        tracing::info!(conn = %self.p.conn, room = %self.p.room, "client silent too long");
                        Step::Close(close_code::GOING_AWAY)
                    } else if !matches!(
                        tokio::time::timeout(CLOSE_SEND, self.socket.send(WsMessage::Ping(Default::default()))).await,
                        Ok(Ok(()))
                    ) {
                        Step::Gone
                    } else {
                        Step::Continue
                    }
                }
            };
            match step {
                Step::Continue => {}
                Step::Close(code) => return Some(code),
                Step::Gone => return None,
            }
        }
    }

    /// Writes every queued frame and flushes once. A client whose socket stays full is not
    /// waited for: a kick (1013 from its room) or shutdown abandons the write.
    async fn write_batch(&mut self) -> Step {
        let n = self.buf.len();
        let bytes: usize = self.buf.iter().map(|f| f.len()).sum();
        let socket = &mut self.socket;
        let frames = &mut self.buf;
        let write = async {
            for frame in frames.drain(..) {
                socket.feed(WsMessage::Binary(frame)).await?;
            }
            socket.flush().await
        };
        // A kick (1013 from the room, 1001 at shutdown) abandons a write the socket does not
        // take; the close frame then gets a short deadline of its own.
        let result = tokio::select! {
            biased;
            r = write => r,
            _ = self.kick.kicked() => return Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY)),
        };
        self.buf.clear();
        self.outbox.written(bytes);
        if result.is_err() {
            return Step::Gone;
        }
        self.svc.metrics.messages_out.inc_by(n as u64);
        self.svc.metrics.bytes_out.inc_by(bytes as u64);
        Step::Continue
    }

    async fn on_message(&mut self, msg: WsMessage, rate: &mut DebtBucket) -> Step {
        let (svc, conn) = (self.svc, self.p.conn);
        let data = match msg {
            WsMessage::Binary(b) => b,
            WsMessage::Close(_) => {
                // answer the client's close frame
                let _ = tokio::time::timeout(CLOSE_SEND, self.socket.flush()).await;
                return Step::Gone;
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Step::Continue,
            WsMessage::Text(_) => return reject(svc, self.p, close_code::PROTOCOL_ERROR, "text frame"),
        };
        svc.metrics.messages_in.inc();
        svc.metrics.bytes_in.inc_by(data.len() as u64);
        if data.len() > svc.settings.limits.max_message_bytes {
            return reject(svc, self.p, close_code::TOO_BIG, "message over the size limit");
        }
        if let Some(wait) = rate.take_message(data.len()) {
            tokio::time::sleep(wait).await;
        }
        let (limits, token, role) = (&svc.token_limits, &self.p.token, &self.p.capability.role);
        if let Some(step) = unless_kicked(self.kick, limits.message(token, role)).await {
            return step;
        }
        let cmd = match Message::decode(&data, &svc.settings.limits) {
            Err(e) => {
                tracing::info!(conn = %conn, room = %self.p.room, error = %e, "undecodable message");
                return reject(svc, self.p, close_code::PROTOCOL_ERROR, "undecodable");
            }
            Ok(Message::SyncStep1(sv)) => match self.reply_ticket().await {
                Ok(ticket) => RoomCmd::SyncStep1 { conn, sv, ticket },
                Err(step) => return step,
            },
            Ok(Message::SyncStep2(bytes) | Message::Update(bytes)) => {
                match decode_update_with(&bytes, &svc.settings.limits) {
                    Ok(update) => RoomCmd::Update {
                        conn,
                        update,
                        raw: bytes,
                    },
                    Err(e) => {
                        tracing::info!(conn = %conn, room = %self.p.room, error = %e, "malformed update");
                        return reject(svc, self.p, close_code::PROTOCOL_ERROR, "malformed update");
                    }
                }
            }
            Ok(Message::Awareness(a)) => RoomCmd::Awareness {
                conn,
                entries: a.entries,
            },
            Ok(Message::QueryAwareness) => match self.reply_ticket().await {
                Ok(ticket) => RoomCmd::QueryAwareness { conn, ticket },
                Err(step) => return step,
            },
            Ok(Message::Auth(_) | Message::SavedAck(_)) => return Step::Continue,
        };
        if self.room.tx.send(cmd).await.is_err() {
            // The room stopped: for shutdown (1001) or a reload (1012, reconnect).
            let code = if svc.stopping.is_cancelled() {
                close_code::GOING_AWAY
            } else {
                close_code::SERVICE_RESTART
            };
            return Step::Close(code);
        }
        Step::Continue
    }
}

impl Conn<'_> {
    /// Before asking for another reply: waits until the previous one was answered, then pays
    /// for what the answers cost: the token's budget for answers that had to be encoded (waited
    /// for here), and the connection's bucket, whose debt pauses reads after this request
    /// while queued frames keep leaving.
    async fn reply_ticket(&mut self) -> Result<ReplyTicket, Step> {
        let replies = self.replies.clone();
        let ticket = tokio::select! {
            biased;
            _ = self.kick.kicked() => return Err(Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY))),
            t = replies.ticket() => t,
        };
        let (charged, encoded) = self.replies.take();
        if let Some(wait) = self.reply_bucket.take(charged) {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "reply budget spent; pausing reads"
            );
            self.resume_at = Some(Instant::now() + wait);
        }
        let limits = &self.svc.token_limits;
        if let Some(step) = unless_kicked(self.kick, limits.encoded_reply(&self.p.token, encoded)).await {
            return Err(step);
        }
        Ok(ticket)
    }
}

/// Waits for `f`, unless the connection is told to close first.
async fn unless_kicked<F: std::future::Future>(kick: &Kick, f: F) -> Option<Step> {
    tokio::select! {
        biased;
        _ = kick.kicked() => Some(Step::Close(kick.code().unwrap_or(close_code::GOING_AWAY))),
        _ = f => None,
    }
}

/// A message above the WebSocket layer's own hard limit is still "too big" (1009); any other
/// read error means the peer is gone.
fn read_error(svc: &ConnContext, p: &ConnectionParams, e: axum::Error) -> Step {
    let inner = e.into_inner();
    tracing::debug!(error = %inner, "read error");
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            reject(svc, p, close_code::TOO_BIG, "message over the hard size limit")
        }
        _ => Step::Gone,
    }
}

fn reject(svc: &ConnContext, p: &ConnectionParams, code: u16, what: &'static str) -> Step {
    svc.metrics.rejected_messages.inc();
    tracing::info!(conn = %p.conn, room = %p.room, code, what, "closing connection");
    Step::Close(code)
}
