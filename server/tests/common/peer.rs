//! A minimal y-websocket peer built on yrs that records what it receives.
//!
//! Its reader runs in a spawned task. Anything that goes wrong there (a message the peer does not
//! expect, an update that does not apply, a panic) is recorded in the peer's failure slot instead
//! of dying silently: every accessor and every [`super::wait_until`] check the slots of the live
//! peers and fail the test at once with the real message.

use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::{encode_sync_step1, encode_sync_step2, encode_update};
use plenary_protocol::{Limits, Message};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// What a peer has received.
#[derive(Default)]
pub struct Received {
    pub auth_denials: Vec<String>,
    pub awareness: Vec<(u64, u32, String)>,
    pub acks: Vec<StateVector>,
    pub close: Option<u16>,
    pub close_reason: String,
    pub updates: usize,
    pub update_bytes: usize,
    /// The server's sync step 2 (the document as it has it) has arrived.
    pub synced: bool,
}

/// Where a peer's background task records why it stopped early.
#[derive(Default)]
struct FailureSlot {
    room: String,
    message: Mutex<Option<String>>,
}

impl FailureSlot {
    fn record(&self, message: String) {
        let mut m = self.message.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none() {
            *m = Some(message);
        }
    }

    fn check(&self) {
        let m = self.message.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = m.as_ref() {
            panic!("test peer on {} failed: {m}", self.room);
        }
    }
}

thread_local! {
    /// The failure slots of the peers connected from this thread (the test's own thread, which
    /// drives the test body), so that `wait_until` can check them all.
    static LIVE: RefCell<Vec<Weak<FailureSlot>>> = const { RefCell::new(Vec::new()) };
}

/// Fails the test if any live peer connected from this thread has failed.
pub fn check_live_peers() {
    let slots: Vec<Arc<FailureSlot>> = LIVE.with(|l| {
        let mut l = l.borrow_mut();
        l.retain(|w| w.strong_count() > 0);
        l.iter().filter_map(Weak::upgrade).collect()
    });
    for s in slots {
        s.check();
    }
}

pub struct Peer {
    doc: Doc,
    got: Arc<Mutex<Received>>,
    pub changed: Arc<Notify>,
    out: mpsc::UnboundedSender<WsMessage>,
    failure: Arc<FailureSlot>,
}

impl Peer {
    /// Connects and runs the y-websocket handshake in the background. `Err(status)` when the
    /// upgrade is refused.
    pub async fn connect(
        addr: std::net::SocketAddr,
        room: &str,
        token: &str,
        extra: &str,
    ) -> Result<Peer, u16> {
        let url = format!("ws://{addr}/ws/{room}?token={token}{extra}");
        let (ws, _) = match tokio_tungstenite::connect_async(&url).await {
            Ok(v) => v,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => return Err(resp.status().as_u16()),
            Err(e) => panic!("connect {url}: {e}"),
        };
        let doc = Doc::new();
        let got = Arc::new(Mutex::new(Received::default()));
        let changed = Arc::new(Notify::new());
        let failure = Arc::new(FailureSlot {
            room: room.to_owned(),
            ..FailureSlot::default()
        });
        LIVE.with(|l| l.borrow_mut().push(Arc::downgrade(&failure)));
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (mut sink, mut stream) = ws.split();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let sv = doc.transact().state_vector();
        out.send(WsMessage::Binary(encode_sync_step1(&sv).into()))
            .unwrap();
        {
            let (doc, got, changed, out, failure) = (
                doc.clone(),
                got.clone(),
                changed.clone(),
                out.clone(),
                failure.clone(),
            );
            tokio::spawn(async move {
                while let Some(m) = stream.next().await {
                    match m {
                        Ok(WsMessage::Binary(b)) => {
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                handle(&doc, &got, &out, &b)
                            }));
                            let err = match r {
                                Ok(Ok(())) => None,
                                Ok(Err(e)) => Some(e),
                                Err(p) => Some(panic_message(&p)),
                            };
                            if let Some(e) = err {
                                failure.record(e);
                                changed.notify_waiters();
                                break;
                            }
                        }
                        Ok(WsMessage::Close(f)) => {
                            // answer the close handshake, as browsers and `ws` do
                            let _ = out.send(WsMessage::Close(None));
                            let mut g = got.lock().unwrap();
                            g.close_reason = f.as_ref().map(|f| f.reason.to_string()).unwrap_or_default();
                            g.close = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                            drop(g);
                            changed.notify_waiters();
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => {
                            let mut g = got.lock().unwrap();
                            if g.close.is_none() {
                                g.close = Some(1006);
                            }
                            drop(g);
                            changed.notify_waiters();
                            break;
                        }
                    }
                    changed.notify_waiters();
                }
            });
        }
        Ok(Peer {
            doc,
            got,
            changed,
            out,
            failure,
        })
    }

    /// Fails the test if this peer's background task has failed.
    pub fn check(&self) {
        self.failure.check();
    }

    /// What the peer has received so far.
    pub fn got(&self) -> MutexGuard<'_, Received> {
        self.check();
        self.got.lock().unwrap()
    }

    /// The peer's local document.
    pub fn doc(&self) -> &Doc {
        self.check();
        &self.doc
    }

    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    /// Starts the close handshake from the client side.
    pub fn close(&self) {
        let _ = self.out.send(WsMessage::Close(None));
    }

    pub fn send_text(&self, s: &str) {
        let _ = self.out.send(WsMessage::Text(s.into()));
    }

    /// Applies a local change and sends it as a sync update.
    pub fn edit(&self, f: impl FnOnce(&mut yrs::TransactionMut)) {
        self.check();
        let update = {
            let mut txn = self.doc.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        self.send_raw(encode_update(&update));
    }

    pub fn json(&self) -> serde_json::Value {
        plenary_server::plenary::merge::plenary_json(&self.doc().transact())
    }

    pub fn text(&self, name: &str) -> String {
        use yrs::GetString;
        let txn = self.doc().transact();
        txn.get_text(name).map(|t| t.get_string(&txn)).unwrap_or_default()
    }

    pub fn sv(&self) -> StateVector {
        self.doc().transact().state_vector()
    }

    pub fn close_code(&self) -> Option<u16> {
        self.got().close
    }

    /// Waits for the server's sync step 2: the room has loaded and this peer has its document.
    pub async fn synced(&self) {
        super::wait_until("peer synced", || async { self.got().synced }).await;
    }

    /// Whether the server has acknowledged everything this peer wrote as durable.
    pub fn acked_all_mine(&self) -> bool {
        let mine = self.sv();
        self.got()
            .acks
            .iter()
            .any(|sv| mine.iter().all(|(c, clock)| sv.get(c) >= *clock))
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn handle(
    doc: &Doc,
    got: &Arc<Mutex<Received>>,
    out: &mpsc::UnboundedSender<WsMessage>,
    bytes: &[u8],
) -> Result<(), String> {
    let limits = Limits {
        max_message_bytes: usize::MAX,
        ..Limits::default()
    };
    let message = Message::decode(bytes, &limits);
    let is_step2 = matches!(message, Ok(Message::SyncStep2(_)));
    match message {
        Ok(Message::SyncStep1(sv)) => {
            let diff = doc.transact().encode_diff_v1(&sv);
            let _ = out.send(WsMessage::Binary(encode_sync_step2(&diff).into()));
        }
        Ok(Message::SyncStep2(u) | Message::Update(u)) => {
            let mut g = got.lock().unwrap();
            g.synced |= is_step2;
            g.updates += 1;
            g.update_bytes += u.len();
            drop(g);
            let update = Update::decode_v1(&u).map_err(|e| format!("an update that does not decode: {e}"))?;
            doc.transact_mut()
                .apply_update(update)
                .map_err(|e| format!("an update that does not apply: {e}"))?;
        }
        Ok(Message::Awareness(a)) => {
            let mut g = got.lock().unwrap();
            for e in a.entries {
                g.awareness.push((e.client_id, e.clock, e.state));
            }
        }
        Ok(Message::Auth(Some(reason))) => got.lock().unwrap().auth_denials.push(reason),
        Ok(Message::SavedAck(sv)) => got.lock().unwrap().acks.push(sv),
        other => return Err(format!("unexpected message {other:?}")),
    }
    Ok(())
}
