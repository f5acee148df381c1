//! One WebSocket connection, one task. The room writes frames straight into the socket (see
//! [`crate::room::Outbox`]); this connection's task drains only what the socket did not take,
//! sends pings, closes a silent client, and decodes what the client sends (tungstenite, over the
//! read half) and forwards it to the room. It closes with the contract's codes: 1002
//! undecodable, 1009 oversized, 1013 too slow, 1001 shutdown, 1008 token revoked.
//!
//! One task rather than a reader and a writer: an idle connection is then one task cell, not
//! two (the idle-memory budget), and the drain runs beside every wait of the reader (see
//! [`Reader::meanwhile`]), so that queued frames keep leaving while it waits for a budget or the
//! room.
//!
//! Budgets (see [`crate::limits`]): per connection, a message rate and a reply-byte bucket;
//! per token, a message rate and a byte rate of encoded replies. Over budget, the connection
//! stops reading for a while; it is never cut for it.
//!
//! After a close frame is sent, what the client still sends is read and discarded until it
//! closes (or a deadline passes), so that it sees our close code rather than a reset.

use crate::auth::{Capability, TokenHash};
use crate::limits::{DebtBucket, ReplyMeter, ReplyTicket, TokenSlot};
use crate::room::outbox::Drained;
use crate::room::{Frame, Member, Outbox, RoomCmd, RoomHandle};
use close::{close_code, close_frame, Kick};
use context::{ConnContext, OpenConn};
use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::decode_update_with;
use plenary_protocol::{Message, RoomPath};
use socket::{ReadSide, Upgraded, WriteHalf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

pub mod close;
pub mod context;
pub mod socket;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The client's side of the socket, as tungstenite reads it.
type WsRead = WebSocketStream<ReadSide>;

/// How long to keep reading after our close frame, waiting for the client's.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);
/// How long an unreadable socket is kept open after our close frame (see `drain_until_closed`).
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// How long our close frame may take to leave.
const CLOSE_SEND: Duration = Duration::from_secs(2);

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

/// The WebSocket layer's own limit sits well above ours, so that an oversized message is read
/// whole and answered with 1009 rather than breaking the stream.
fn hard_limit(settings: &context::ConnSettings) -> usize {
    settings.limits.max_message_bytes.saturating_mul(4).max(8 << 20)
}

/// Runs a connection to completion, on the TCP socket the upgrade handed over.
pub async fn serve(upgraded: Upgraded, svc: ConnContext, p: ConnectionParams) {
    svc.metrics.connections.inc();
    svc.metrics.connections_total.inc();
    let can_write = p.capability.role.can_write(&p.room.doc);
    let Upgraded { tcp, prefix, unsent } = upgraded;
    let (read, write) = tcp.into_split();
    let write = WriteHalf(Arc::new(write));
    let outbox = Outbox::with_socket(
        write.raw(),
        svc.settings.outbound_queue,
        svc.settings.outbound_queue_bytes,
    );
    // The `101` answer leaves with the room's greeting, in one write (or after the join, below,
    // or before our close frame).
    outbox.hold(unsent);
    let hard = hard_limit(&svc.settings);
    // Small read buffer: an idle connection should cost little (keystrokes are ~50 bytes;
    // larger messages grow it on demand). Nothing is buffered for writing: what tungstenite
    // writes (pongs, close answers) goes to the outbox at once.
    let config = WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard));
    let read_side = ReadSide {
        prefix,
        read,
        out: outbox.clone(),
    };
    let mut stream = Box::pin(WebSocketStream::from_raw_socket(
        read_side,
        Role::Server,
        Some(config),
    ))
    .await;
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
    let Some(room) = Box::pin(join(&svc, &p, outbox.clone(), can_write)).await else {
        svc.connections.remove(&p.conn);
        tracing::warn!(conn = %p.conn, room = %p.room, "room unavailable");
        Box::pin(close_and_drain(
            &outbox,
            &write,
            close_code::SERVICE_RESTART,
            &mut stream,
        ))
        .await;
        outbox.shut();
        svc.metrics.connections.dec();
        return;
    };
    // The greeting took the `101` answer along; if the room sent none, it leaves now.
    let _ = outbox.release();
    // Debug, not info: two lines per connection are a formatted write to stderr each, and a
    // connect storm is thousands of them (the per-connection counts are in the metrics).
    tracing::debug!(
        role = p.capability.role.name(),
        can_write,
        ack = p.wants_ack,
        "connected"
    );
    // A delivery wakes no task when the socket takes it; a message or a backlog wakes this one.
    let mut reader = Reader {
        stream: &mut stream,
        svc: &svc,
        p: &p,
        room: &room,
        kick: &kick,
        outbox: &outbox,
        socket: &write,
        last_seen: Instant::now(),
        ping_at: Instant::now() + svc.settings.keepalive.ping_every,
        replies: Arc::new(ReplyMeter::default()),
        reply_bucket: DebtBucket::new(svc.token_limits.reply_bytes_per_sec),
        resume_at: None,
    };
    let end = reader.run().await;
    let _ = Box::pin(room.tx.send(RoomCmd::Leave { conn: p.conn })).await;
    match end {
        Step::Close(code) => {
            // A code the room or shutdown gave first wins over the one this connection chose.
            let code = kick.code().unwrap_or(code);
            Box::pin(close_and_drain(&outbox, &write, code, &mut stream)).await;
        }
        Step::PeerClosed => {
            // Answer the client's close frame: tungstenite queued the reply while reading.
            Box::pin(async {
                let _ = stream.flush().await;
                let _ = tokio::time::timeout(CLOSE_SEND, flush(&outbox, &write)).await;
            })
            .await;
        }
        Step::Continue | Step::Gone => {}
    }
    outbox.shut();
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

/// Sends our close frame, then reads until the client answers (if the frame left in time).
async fn close_and_drain(outbox: &Outbox, socket: &WriteHalf, code: u16, stream: &mut WsRead) {
    if close(outbox, socket, code).await {
        drain_until_closed(stream).await;
    }
}

/// Sends our close frame after a frame partly written (if any) and nothing else; false if the
/// socket would not take it in time.
async fn close(outbox: &Outbox, socket: &WriteHalf, code: u16) -> bool {
    outbox.close_with(&close_frame(code));
    matches!(
        tokio::time::timeout(CLOSE_SEND, flush(outbox, socket)).await,
        Ok(Ok(()))
    )
}

/// Writes everything queued, waiting for the socket as long as it takes.
async fn flush(outbox: &Outbox, socket: &WriteHalf) -> std::io::Result<()> {
    loop {
        if outbox.drain()? == Drained::Empty {
            return Ok(());
        }
        socket.0.writable().await?;
    }
}

/// Our close frame is on its way: discard what the client still sends until it answers with its
/// own close frame or goes away, so that it sees our code rather than a reset.
async fn drain_until_closed(stream: &mut WsRead) {
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        loop {
            match stream.next().await {
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

/// How a turn of the connection ended: go on, close with a code, stop (the peer is gone), or
/// the client sent its close frame.
enum Step {
    Continue,
    Close(u16),
    Gone,
    PeerClosed,
}

/// Waits until something is queued, then writes it as the socket becomes writable. A client
/// whose socket stays full is not waited for: the caller gives up on it when kicked (1013 from
/// its room), at shutdown, or when the client goes away.
async fn drain_backlog(outbox: &Outbox, socket: &WriteHalf) -> std::io::Result<()> {
    // `notify_one` keeps a permit: a frame queued before this waits still wakes it.
    if outbox.drain()? == Drained::Empty {
        outbox.backlog().await;
    }
    flush(outbox, socket).await
}

/// The connection's task: decodes what the client sends and forwards it to the room, within the
/// connection's and the token's budgets; drains the backlog, pings, and waits on the kick (the
/// room's 1013, shutdown's 1001, revocation's 1008).
struct Reader<'a> {
    stream: &'a mut WsRead,
    svc: &'a ConnContext,
    p: &'a ConnectionParams,
    room: &'a RoomHandle,
    kick: &'a Kick,
    outbox: &'a Outbox,
    socket: &'a WriteHalf,
    /// When the client was last heard from (any message or pong), or when the server last
    /// resumed reading after a wait that outlasted a ping: time spent not reading is not the
    /// client's silence.
    last_seen: Instant,
    /// When the next ping is due (see `keepalive`).
    ping_at: Instant,
    /// What the room charged for the replies this connection asked for.
    replies: Arc<ReplyMeter>,
    reply_bucket: DebtBucket,
    /// Reads resume then (the reply budget is in debt).
    resume_at: Option<Instant>,
}

impl Reader<'_> {
    /// Runs until the connection ends. A close code it chooses is also given to the kick, so
    /// that the room's frames stop.
    async fn run(&mut self) -> Step {
        let step = self.turns().await;
        if let Step::Close(code) = step {
            self.kick.kick(code);
        }
        step
    }

    async fn turns(&mut self) -> Step {
        let mut rate = DebtBucket::messages(self.svc.settings.max_messages_per_sec);
        let ping = tokio::time::sleep_until(self.ping_at);
        tokio::pin!(ping);
        // One timer for the reply-budget pause, re-armed when a pause starts (a fresh
        // `sleep_until` per turn is a clock read and a timer entry).
        let pause = tokio::time::sleep_until(Instant::now());
        tokio::pin!(pause);
        let mut armed: Option<Instant> = None;
        loop {
            // A wait inside a message may have pinged (see `meanwhile`).
            if ping.deadline() != self.ping_at {
                ping.as_mut().reset(self.ping_at);
            }
            if self.resume_at != armed {
                if let Some(at) = self.resume_at {
                    pause.as_mut().reset(at);
                }
                armed = self.resume_at;
            }
            let step = tokio::select! {
                biased;
                _ = self.kick.kicked() => self.kicked(),
                r = drain_backlog(self.outbox, self.socket) => match r {
                    Ok(()) => Step::Continue,
                    Err(_) => Step::Gone,
                },
                _ = &mut ping => {
                    if self.last_seen.elapsed() > self.svc.settings.keepalive.idle_timeout {
                        tracing::info!("client silent too long");
                        Step::Close(close_code::GOING_AWAY)
                    } else {
                        self.ping();
                        Step::Continue
                    }
                }
                // Paused for the reply budget: no reading (queued frames keep leaving).
                _ = &mut pause, if self.resume_at.is_some() => {
                    self.resume_at = None;
                    Step::Continue
                }
                msg = self.stream.next(), if self.resume_at.is_none() => {
                    self.last_seen = Instant::now();
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
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return Step::Continue,
            WsMessage::Text(_) => return reject(svc, self.p, close_code::PROTOCOL_ERROR, "text frame"),
        };
        svc.metrics.messages_in.inc();
        svc.metrics.bytes_in.inc_by(data.len() as u64);
        if data.len() > svc.settings.limits.max_message_bytes {
            return reject(svc, self.p, close_code::TOO_BIG, "message over the size limit");
        }
        if let Some(wait) = rate.take_message(data.len()) {
            if let Err(step) = self.meanwhile(tokio::time::sleep(wait)).await {
                return step;
            }
        }
        // Copied out of `self`, which the wait borrows mutably (it may ping).
        let p = self.p;
        let (limits, token, role) = (&svc.token_limits, &p.token, &p.capability.role);
        if let Err(step) = self.meanwhile(limits.message(token, role)).await {
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
        let room = self.room;
        let sent = match self.meanwhile(room.tx.send(cmd)).await {
            Ok(sent) => sent,
            Err(step) => return step,
        };
        if sent.is_err() {
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
        let ticket = self.meanwhile(replies.ticket()).await?;
        let (charged, encoded) = self.replies.take();
        if let Some(wait) = self.reply_bucket.take(charged) {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "reply budget spent; pausing reads"
            );
            self.resume_at = Some(Instant::now() + wait);
        }
        let (svc, p) = (self.svc, self.p);
        self.meanwhile(svc.token_limits.encoded_reply(&p.token, encoded))
            .await?;
        Ok(ticket)
    }

    /// Waits for `f` while draining the backlog, so that queued frames keep leaving, and pinging
    /// when a ping is due; gives up when the connection is kicked or its socket fails. The
    /// client is not read meanwhile, so a wait that outlasts a ping restarts its silence from
    /// the end of the wait.
    async fn meanwhile<F: std::future::Future>(&mut self, f: F) -> Result<F::Output, Step> {
        let (kick, outbox, socket) = (self.kick, self.outbox, self.socket);
        let keep_writing = async { while drain_backlog(outbox, socket).await.is_ok() {} };
        tokio::pin!(f, keep_writing);
        let mut pinged = false;
        let out = loop {
            tokio::select! {
                biased;
                _ = kick.kicked() => return Err(self.kicked()),
                out = &mut f => break out,
                _ = &mut keep_writing => return Err(Step::Gone),
                _ = tokio::time::sleep_until(self.ping_at) => {
                    self.ping();
                    pinged = true;
                }
            }
        };
        if pinged {
            self.last_seen = Instant::now();
        }
        Ok(out)
    }

    /// Queues a ping (like any frame; a client that never reads is closed by the idle timeout
    /// or by its room's 1013) and schedules the next one.
    fn ping(&mut self) {
        let _ = self.outbox.send(&Frame::ping());
        self.ping_at = Instant::now() + self.svc.settings.keepalive.ping_every;
    }

    /// The step a kick asks for: close with its code.
    fn kicked(&self) -> Step {
        Step::Close(self.kick.code().unwrap_or(close_code::GOING_AWAY))
    }
}

/// A message above the WebSocket layer's own hard limit is still "too big" (1009); a frame
/// that breaks the protocol (unmasked, reserved bits, a bad close frame) is 1002; any other read
/// error means the peer is gone.
fn read_error(svc: &ConnContext, p: &ConnectionParams, e: tungstenite::Error) -> Step {
    tracing::debug!(error = %e, "read error");
    match e {
        tungstenite::Error::Capacity(_) => {
            reject(svc, p, close_code::TOO_BIG, "message over the hard size limit")
        }
        tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
            reject(svc, p, close_code::PROTOCOL_ERROR, "broken WebSocket frame")
        }
        _ => Step::Gone,
    }
}

fn reject(svc: &ConnContext, p: &ConnectionParams, code: u16, what: &'static str) -> Step {
    svc.metrics.rejected_messages.inc();
    tracing::info!(conn = %p.conn, room = %p.room, code, what, "closing connection");
    Step::Close(code)
}
