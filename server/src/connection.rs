//! One WebSocket connection: a reader that decodes and forwards to the room, a writer that
//! drains the bounded outbound queue (several frames per socket flush) and sends pings, and the
//! close codes of the contract: 1002 undecodable, 1009 oversized, 1013 too slow, 1001 shutdown.
//!
//! After a close frame is sent, what the client still sends is read and discarded until it
//! closes (or a deadline passes), so that it sees our close code rather than a reset.

use crate::auth::Capability;
use crate::room::outbox::{close_code, Kick};
use crate::room::{ConnId, Frame, Member, Outbox, RoomCmd, RoomHandle};
use crate::services::Services;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::decode_update;
use plenary_protocol::{Message, RoomPath};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const PING_EVERY: Duration = Duration::from_secs(30);
/// A client silent for this long (no message, no pong) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to keep reading after our close frame, waiting for the client's.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);
/// Frames written per socket flush.
const WRITE_BATCH: usize = 64;

pub struct ConnectionParams {
    pub conn: ConnId,
    pub room: RoomPath,
    pub capability: Capability,
    pub wants_ack: bool,
}

/// Runs a connection to completion.
pub async fn serve(socket: WebSocket, svc: Services, p: ConnectionParams) {
    svc.metrics.connections.inc();
    svc.metrics.connections_total.inc();
    let can_write = p.capability.role.can_write(&p.room.doc);
    let (outbox, out_rx) = Outbox::new(svc.outbound_queue);
    let kick = outbox.kick.clone();
    let Some(room) = join(&svc, &p, outbox, can_write).await else {
        tracing::warn!("room unavailable");
        let mut socket = socket;
        let _ = socket.send(close_message(close_code::SERVICE_RESTART)).await;
        svc.metrics.connections.dec();
        return;
    };
    tracing::info!(role = p.capability.role.name(), can_write, ack = p.wants_ack, "connected");
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(sink, out_rx, kick.clone(), svc.clone()));
    read_loop(stream, &svc, &p, &room, &kick).await;
    let _ = room.tx.send(RoomCmd::Leave { conn: p.conn }).await;
    if kick.code().is_none() {
        kick.kick(close_code::GOING_AWAY);
    }
    let _ = writer.await;
    svc.metrics.connections.dec();
    tracing::info!(code = kick.code().unwrap_or(0), "disconnected");
}

async fn join(svc: &Services, p: &ConnectionParams, outbox: Outbox, can_write: bool) -> Option<RoomHandle> {
    for _ in 0..3 {
        let handle = svc.rooms.get_or_load(&p.room, svc);
        let (joined, rx) = oneshot::channel();
        let member = Member { outbox: outbox.clone(), role: p.capability.role.clone(), can_write, wants_ack: p.wants_ack };
        if handle.tx.send(RoomCmd::Join { conn: p.conn, member, joined }).await.is_err() {
            svc.rooms.forget(&p.room, handle.instance);
            continue;
        }
        if rx.await.is_ok() {
            return Some(handle);
        }
        svc.rooms.forget(&p.room, handle.instance);
    }
    None
}

fn close_message(code: u16) -> WsMessage {
    let reason = match code {
        close_code::PROTOCOL_ERROR => "message could not be decoded",
        close_code::TOO_BIG => "message too big",
        close_code::TRY_AGAIN_LATER => "too slow to keep up; reconnect",
        close_code::GOING_AWAY => "server shutting down",
        close_code::SERVICE_RESTART => "room restarting; reconnect",
        close_code::INTERNAL_ERROR => "internal error",
        _ => "",
    };
    WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::Receiver<Frame>,
    kick: Kick,
    svc: Services,
) {
    let mut buf: Vec<Frame> = Vec::with_capacity(WRITE_BATCH);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = kick.kicked() => break,
            _ = svc.sockets_closing.cancelled() => {
                kick.kick(close_code::GOING_AWAY);
                break;
            }
            n = rx.recv_many(&mut buf, WRITE_BATCH) => {
                if n == 0 {
                    break;
                }
                let bytes: usize = buf.iter().map(|f| f.len()).sum();
                let write = async {
                    for frame in buf.drain(..) {
                        sink.feed(WsMessage::Binary(frame)).await?;
                    }
                    sink.flush().await
                };
                // A client whose socket stays full is not waited for: a kick (1013 from its
                // room, 1002/1009 from its reader) or shutdown abandons the write; the close
                // frame below gets a short deadline of its own.
                let written = tokio::select! {
                    r = write => r.is_ok(),
                    _ = kick.kicked() => break,
                    _ = svc.sockets_closing.cancelled() => {
                        kick.kick(close_code::GOING_AWAY);
                        break;
                    }
                };
                if !written {
                    return;
                }
                svc.metrics.messages_out.inc_by(n as u64);
                svc.metrics.bytes_out.inc_by(bytes as u64);
            }
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
    let code = kick.code().unwrap_or(close_code::GOING_AWAY);
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(close_message(code))).await;
}

/// Token bucket: slows a connection down past its message rate, never disconnects it.
struct RateLimit {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl RateLimit {
    fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec);
        RateLimit { tokens: per_sec * 10.0, capacity: per_sec * 10.0, per_sec, last: Instant::now() }
    }

    /// How long to wait before the next message may be handled.
    fn take(&mut self) -> Option<Duration> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.per_sec).min(self.capacity);
        self.last = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.per_sec))
    }
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    svc: &Services,
    p: &ConnectionParams,
    room: &RoomHandle,
    kick: &Kick,
) {
    let mut rate = RateLimit::new(svc.max_messages_per_sec);
    loop {
        let next = tokio::select! {
            biased;
            _ = kick.kicked() => break,
            r = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => r,
        };
        let msg = match next {
            Err(_) => {
                tracing::info!("client silent too long");
                kick.kick(close_code::GOING_AWAY);
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(m))) => m,
        };
        let data = match msg {
            WsMessage::Binary(b) => b,
            WsMessage::Close(_) => return,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Text(_) => {
                reject(svc, kick, close_code::PROTOCOL_ERROR, "text frame");
                break;
            }
        };
        svc.metrics.messages_in.inc();
        svc.metrics.bytes_in.inc_by(data.len() as u64);
        if data.len() > svc.limits.max_message_bytes {
            reject(svc, kick, close_code::TOO_BIG, "message over the size limit");
            break;
        }
        if let Some(wait) = rate.take() {
            tokio::time::sleep(wait).await;
        }
        let cmd = match Message::decode(&data, &svc.limits) {
            Err(e) => {
                tracing::info!(error = %e, "undecodable message");
                reject(svc, kick, close_code::PROTOCOL_ERROR, "undecodable");
                break;
            }
            Ok(Message::SyncStep1(sv)) => RoomCmd::SyncStep1 { conn: p.conn, sv },
            Ok(Message::SyncStep2(bytes) | Message::Update(bytes)) => match decode_update(&bytes) {
                Ok(update) => RoomCmd::Update { conn: p.conn, update },
                Err(e) => {
                    tracing::info!(error = %e, "malformed update");
                    reject(svc, kick, close_code::PROTOCOL_ERROR, "malformed update");
                    break;
                }
            },
            Ok(Message::Awareness(a)) => RoomCmd::Awareness { conn: p.conn, entries: a.entries },
            Ok(Message::QueryAwareness) => RoomCmd::QueryAwareness { conn: p.conn },
            Ok(Message::Auth(_) | Message::SavedAck(_)) => continue,
        };
        if room.tx.send(cmd).await.is_err() {
            kick.kick(close_code::SERVICE_RESTART);
            break;
        }
    }
    // Our close frame is on its way: discard what the client still sends until it closes.
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn reject(svc: &Services, kick: &Kick, code: u16, what: &'static str) {
    svc.metrics.rejected_messages.inc();
    tracing::info!(code, what, "closing connection");
    kick.kick(code);
}
