//! One WebSocket connection, two tasks: the reader decodes what the client sends and forwards
//! it to the room; the writer drains the bounded outbound queue (every queued frame, one
//! flush) and sends pings, so a delivery never polls the read path. It closes with the
//! contract's codes: 1002 undecodable, 1009 oversized, 1013 too slow, 1001
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
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::decode_update_with;
use plenary_protocol::{Message, RoomPath};

pub mod close;
pub mod context;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

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
    matches!(role, crate::auth::Role::Participant)
        && !room.is_plenary()
        && directory.notes_private(&room.meeting)
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
    // The socket's two halves run as two tasks: a delivery wakes only the writer (queued
    // frames, one flush) and never polls the read path; a message wakes only the reader.
    let (sink, stream) = socket.split();
    let last_seen = Arc::new(LastSeen::new());
    let reader_done = Kick::default();
    let writer_done = Kick::default();
    let writer = Writer {
        sink,
        metrics: svc.metrics.clone(),
        kick: kick.clone(),
        outbox,
        out_rx,
        buf: Vec::with_capacity(WRITE_BATCH),
        last_seen: last_seen.clone(),
        reader_done: reader_done.clone(),
        writer_done: writer_done.clone(),
    };
    let writer = tokio::spawn(writer.run().in_current_span());
    let mut reader = Reader {
        stream,
        svc: &svc,
        p: &p,
        room: &room,
        kick: &kick,
        writer_done: &writer_done,
        last_seen: &last_seen,
        replies: Arc::new(ReplyMeter::default()),
        reply_bucket: DebtBucket::new(svc.token_limits.reply_bytes_per_sec),
        resume_at: None,
    };
    let read_end = reader.run().await;
    reader_done.kick(1);
    let stream = reader.stream;
    let (write_end, sink) = match writer.await {
        Ok(r) => r,
        Err(_) => {
            // The writer panicked: its half of the socket is gone with it.
            let _ = room.tx.send(RoomCmd::Leave { conn: p.conn }).await;
            svc.connections.remove(&p.conn);
            svc.metrics.connections.dec();
            return;
        }
    };
    let _ = room.tx.send(RoomCmd::Leave { conn: p.conn }).await;
    let mut socket = stream.reunite(sink).expect("the halves of one socket");
    match (read_end, write_end) {
        (Step::Close(code), _) | (_, Step::Close(code)) => {
            // A code the room or shutdown gave first wins over the one this connection chose.
            kick.kick(code);
            let code = kick.code().unwrap_or(code);
            if close(&mut socket, code).await {
                drain_until_closed(&mut socket).await;
            }
        }
        (Step::PeerClosed, _) => {
            // answer the client's close frame (tungstenite queued the reply while reading)
            let _ = tokio::time::timeout(CLOSE_SEND, socket.flush()).await;
        }
        _ => {}
    }
    svc.connections.remove(&p.conn);
    svc.metrics.connections.dec();
    tracing::debug!(code = kick.code().unwrap_or(0), "disconnected");
}

async fn join(
    svc: &ConnContext,
    p: &ConnectionParams,
    outbox: Outbox,
    can_write: bool,
) -> Option<RoomHandle> {
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

/// When the client was last heard from (any message or pong): the reader sets it, the writer's
/// ping timer reads it. Milliseconds since the connection started.
struct LastSeen {
    start: Instant,
    ms: AtomicU64,
}

impl LastSeen {
    fn new() -> Self {
        LastSeen {
            start: Instant::now(),
            ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.ms.load(Ordering::Relaxed)))
    }
}

/// How a half of the connection ended: go on, close with a code, stop (the peer is gone, or the
/// other half ended first), or the client sent its close frame.
enum Step {
    Continue,
    Close(u16),
    Gone,
    PeerClosed,
}

/// The write half, its own task: drains the bounded outbound queue (every queued frame fed,
/// then one flush), sends pings and closes a silent client. It alone waits on the kick (the
/// room's 1013, shutdown's 1001, revocation's 1008; the reader's own codes come through it too).
struct Writer {
    sink: SplitSink<WebSocket, WsMessage>,
    metrics: Arc<crate::metrics::Metrics>,
    kick: Kick,
    outbox: Outbox,
    out_rx: mpsc::Receiver<Frame>,
    buf: Vec<Frame>,
    last_seen: Arc<LastSeen>,
    /// Set when the reader has ended.
    reader_done: Kick,
    /// Set here when this half ends, for the reader.
    writer_done: Kick,
}

impl Writer {
    async fn run(mut self) -> (Step, SplitSink<WebSocket, WsMessage>) {
        let step = self.turns().await;
        self.writer_done.kick(1);
        (step, self.sink)
    }

    async fn turns(&mut self) -> Step {
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let kick = self.kick.clone();
        let kicked = kick.kicked();
        tokio::pin!(kicked);
        let reader_done = self.reader_done.clone();
        let reader_ended = reader_done.kicked();
        tokio::pin!(reader_ended);
        loop {
            let step = tokio::select! {
                biased;
                n = self.out_rx.recv_many(&mut self.buf, WRITE_BATCH) => {
                    if n == 0 {
                        Step::Close(close_code::GOING_AWAY)
                    } else if let Some(code) = self.kick.code() {
                        Step::Close(code)
                    } else {
                        self.write_batch().await
                    }
                }
                _ = &mut kicked => Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY)),
                _ = &mut reader_ended => Step::Gone,
                _ = ping.tick() => {
                    if self.last_seen.silent_for() > IDLE_TIMEOUT {
                        tracing::info!("client silent too long");
                        Step::Close(close_code::GOING_AWAY)
                    } else if !matches!(
                        tokio::time::timeout(CLOSE_SEND, self.sink.send(WsMessage::Ping(Default::default()))).await,
                        Ok(Ok(()))
                    ) {
                        Step::Gone
                    } else {
                        Step::Continue
                    }
                }
            };
            if !matches!(step, Step::Continue) {
                return step;
            }
        }
    }

    /// Feeds every queued frame and flushes once (one write to the socket per batch). A client
    /// whose socket stays full is not waited for: a kick (1013 from its room) or shutdown
    /// abandons the write, and so does the reader ending (the peer is gone).
    async fn write_batch(&mut self) -> Step {
        let n = self.buf.len();
        let bytes: usize = self.buf.iter().map(|f| f.len()).sum();
        let sink = &mut self.sink;
        let frames = &mut self.buf;
        let write = async {
            for frame in frames.drain(..) {
                sink.feed(WsMessage::Binary(frame)).await?;
            }
            sink.flush().await
        };
        let result = tokio::select! {
            biased;
            r = write => r,
            _ = self.kick.kicked() => return Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY)),
            _ = self.reader_done.kicked() => return Step::Gone,
        };
        self.buf.clear();
        self.outbox.written(bytes);
        if result.is_err() {
            return Step::Gone;
        }
        self.metrics.messages_out.inc_by(n as u64);
        self.metrics.bytes_out.inc_by(bytes as u64);
        Step::Continue
    }
}

/// The read half, on the connection's own task: decodes what the client sends and forwards it
/// to the room, within the connection's and the token's budgets.
struct Reader<'a> {
    stream: SplitStream<WebSocket>,
    svc: &'a ConnContext,
    p: &'a ConnectionParams,
    room: &'a RoomHandle,
    kick: &'a Kick,
    /// Set when the writer has ended (which it does when kicked): the reader stops too.
    writer_done: &'a Kick,
    last_seen: &'a LastSeen,
    /// What the room charged for the replies this connection asked for.
    replies: Arc<ReplyMeter>,
    reply_bucket: DebtBucket,
    /// Reads resume then (the reply budget is in debt).
    resume_at: Option<Instant>,
}

impl Reader<'_> {
    /// Runs until the connection ends. A close code it chooses is also given to the kick, so
    /// that the writer stops.
    async fn run(&mut self) -> Step {
        let step = self.turns().await;
        if let Step::Close(code) = step {
            self.kick.kick(code);
        }
        step
    }

    async fn turns(&mut self) -> Step {
        let mut rate = DebtBucket::messages(self.svc.settings.max_messages_per_sec);
        let writer_done = self.writer_done.clone();
        let writer_ended = writer_done.kicked();
        tokio::pin!(writer_ended);
        // One timer for the reply-budget pause, re-armed when a pause starts (a fresh
        // `sleep_until` per turn is a clock read and a timer entry).
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
                _ = &mut writer_ended => Step::Gone,
                // Paused for the reply budget: no reading (queued frames keep leaving).
                _ = &mut pause, if self.resume_at.is_some() => {
                    self.resume_at = None;
                    Step::Continue
                }
                msg = self.stream.next(), if self.resume_at.is_none() => {
                    self.last_seen.touch();
                    match msg {
                        None => Step::Gone,
                        Some(Err(e)) => read_error(self.svc, self.p, e),
                        // Boxed: the message future exists only while busy, which keeps an
                        // idle connection's task small.
                        Some(Ok(m)) => Box::pin(self.on_message(m, &mut rate)).await,
                    }
                }
            };
            if !matches!(step, Step::Continue) {
                return step;
            }
        }
    }

    async fn on_message(&mut self, msg: WsMessage, rate: &mut DebtBucket) -> Step {
        let (svc, conn) = (self.svc, self.p.conn);
        let data = match msg {
            WsMessage::Binary(b) => b,
            WsMessage::Close(_) => return Step::PeerClosed,
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Step::Continue,
            WsMessage::Text(_) => return reject(svc, self.p, close_code::PROTOCOL_ERROR, "text frame"),
        };
        svc.metrics.messages_in.inc();
        svc.metrics.bytes_in.inc_by(data.len() as u64);
        if data.len() > svc.settings.limits.max_message_bytes {
            return reject(svc, self.p, close_code::TOO_BIG, "message over the size limit");
        }
        if let Some(wait) = rate.take_message(data.len()) {
            if let Some(step) = unless_stopped(self.writer_done, tokio::time::sleep(wait)).await {
                return step;
            }
        }
        let (limits, token, role) = (&svc.token_limits, &self.p.token, &self.p.capability.role);
        if let Some(step) = unless_stopped(self.writer_done, limits.message(token, role)).await {
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

impl Reader<'_> {
    /// Before asking for another reply: waits until the previous one was answered, then pays
    /// for what the answers cost: the token's budget for answers that had to be encoded (waited
    /// for here), and the connection's bucket, whose debt pauses reads after this request
    /// while queued frames keep leaving.
    async fn reply_ticket(&mut self) -> Result<ReplyTicket, Step> {
        let replies = self.replies.clone();
        let ticket = tokio::select! {
            biased;
            _ = self.writer_done.kicked() => return Err(Step::Gone),
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
        if let Some(step) =
            unless_stopped(self.writer_done, limits.encoded_reply(&self.p.token, encoded)).await
        {
            return Err(step);
        }
        Ok(ticket)
    }
}

/// Waits for `f`, unless the writer ends first (it does when the connection is kicked; the
/// close code is then the kick's).
async fn unless_stopped<F: std::future::Future>(writer_done: &Kick, f: F) -> Option<Step> {
    tokio::select! {
        biased;
        _ = writer_done.kicked() => Some(Step::Gone),
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
