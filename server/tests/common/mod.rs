//! Test harness: the real server in-process on 127.0.0.1:0 with a temp data dir, and a minimal
//! y-websocket peer built on yrs that records what it receives.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use plenary_protocol::message::{encode_sync_step1, encode_sync_step2, encode_update};
use plenary_protocol::{Limits, Message};
use plenary_server::config::Config;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const DEADLINE: Duration = Duration::from_secs(15);

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub async fn start(data_dir: PathBuf) -> Server {
        Self::start_with(Config::for_tests(data_dir, ADMIN)).await
    }

    pub async fn start_with(mut config: Config) -> Server {
        // In-process servers run inside the test binary: the sandbox child is the real one.
        if config.sandbox_program.is_none() {
            config.sandbox_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_plenary")));
        }
        if std::env::var_os("PLENARY_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,tower_http=warn,hyper=warn")
                .with_test_writer()
                .try_init();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = config.data_dir.clone();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(plenary_server::run(listener, config, async move {
            let _ = rx.await;
        }));
        // wait until it answers
        let client = reqwest_like::Client::new(addr);
        wait_until("server healthy", || async {
            client.get_status("/healthz").await == 200
        })
        .await;
        Server {
            addr,
            data_dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop (what SIGTERM does).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn http(&self) -> reqwest_like::Client {
        reqwest_like::Client::new(self.addr)
    }

    pub async fn create_meeting(&self, id: &str, groups: &[&str]) -> serde_json::Value {
        let body = serde_json::json!({
            "id": id, "title": format!("Meeting {id}"),
            "groups": groups.iter().map(|g| serde_json::json!({"id": g, "title": format!("Group {g}")})).collect::<Vec<_>>(),
        });
        let (status, json) = self
            .http()
            .post_json("/api/meetings", Some(ADMIN), &body.to_string())
            .await;
        assert_eq!(status, 201, "{json}");
        json
    }
}

/// A token from a creation answer: `tok(&m, &["rapporteurs", "g1"])`.
pub fn tok<'a>(m: &'a serde_json::Value, path: &[&str]) -> &'a str {
    let mut v = &m["tokens"];
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap()
}

pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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
}

pub struct Peer {
    pub doc: Doc,
    pub got: Arc<Mutex<Received>>,
    pub changed: Arc<Notify>,
    out: mpsc::UnboundedSender<WsMessage>,
}

impl Peer {
    /// Connects and runs the y-websocket handshake in the background.
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
            let (doc, got, changed, out) = (doc.clone(), got.clone(), changed.clone(), out.clone());
            tokio::spawn(async move {
                while let Some(m) = stream.next().await {
                    match m {
                        Ok(WsMessage::Binary(b)) => handle(&doc, &got, &out, &b),
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
        })
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
        let update = {
            let mut txn = self.doc.transact_mut();
            f(&mut txn);
            txn.encode_update_v1()
        };
        self.send_raw(encode_update(&update));
    }

    pub fn json(&self) -> serde_json::Value {
        plenary_server::plenary::merge::plenary_json(&self.doc.transact())
    }

    pub fn text(&self, name: &str) -> String {
        use yrs::GetString;
        let txn = self.doc.transact();
        txn.get_text(name).map(|t| t.get_string(&txn)).unwrap_or_default()
    }

    pub fn sv(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    pub fn close_code(&self) -> Option<u16> {
        self.got.lock().unwrap().close
    }
}

fn handle(doc: &Doc, got: &Arc<Mutex<Received>>, out: &mpsc::UnboundedSender<WsMessage>, bytes: &[u8]) {
    match Message::decode(
        bytes,
        &Limits {
            max_message_bytes: usize::MAX,
            ..Limits::default()
        },
    ) {
        Ok(Message::SyncStep1(sv)) => {
            let diff = doc.transact().encode_diff_v1(&sv);
            let _ = out.send(WsMessage::Binary(encode_sync_step2(&diff).into()));
        }
        Ok(Message::SyncStep2(u) | Message::Update(u)) => {
            let mut g = got.lock().unwrap();
            g.updates += 1;
            g.update_bytes += u.len();
            drop(g);
            doc.transact_mut()
                .apply_update(Update::decode_v1(&u).unwrap())
                .unwrap();
        }
        Ok(Message::Awareness(a)) => {
            let mut g = got.lock().unwrap();
            for e in a.entries {
                g.awareness.push((e.client_id, e.clock, e.state));
            }
        }
        Ok(Message::Auth(Some(reason))) => got.lock().unwrap().auth_denials.push(reason),
        Ok(Message::SavedAck(sv)) => got.lock().unwrap().acks.push(sv),
        other => panic!("peer got unexpected {other:?}"),
    }
}

pub fn close_code_u16(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A tiny HTTP/1.1 client over TCP (keeps the test dependencies to what the server uses).
pub mod reqwest_like {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client {
        addr: std::net::SocketAddr,
    }

    impl Client {
        pub fn new(addr: std::net::SocketAddr) -> Self {
            Client { addr }
        }

        pub async fn request(
            &self,
            method: &str,
            path: &str,
            token: Option<&str>,
            body: Option<&str>,
        ) -> (u16, String) {
            let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let mut req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
                self.addr
            );
            if let Some(t) = token {
                req.push_str(&format!("Authorization: Bearer {t}\r\n"));
            }
            let body = body.unwrap_or("");
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = Vec::new();
            s.read_to_end(&mut resp).await.unwrap();
            let resp = String::from_utf8_lossy(&resp).to_string();
            let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = resp
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default();
            // de-chunk if needed
            let body = if resp.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                dechunk(&body)
            } else {
                body
            };
            (status, body)
        }

        /// A WebSocket upgrade request by hand, to read the refusal's status and JSON body.
        pub async fn upgrade(&self, path: &str) -> (u16, serde_json::Value) {
            let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                self.addr
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut resp = Vec::new();
            let mut buf = [0u8; 4096];
            // A refusal closes the connection; an accepted upgrade would stay open, so stop at
            // the end of the headers when the status is 101.
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                resp.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&resp);
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                if head.starts_with("HTTP/1.1 101") {
                    break;
                }
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok());
                if len.is_some_and(|len| body.len() >= len) || body.ends_with("0\r\n\r\n") {
                    break;
                }
            }
            let resp = String::from_utf8_lossy(&resp).to_string();
            let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = resp
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default();
            let body = if resp.to_ascii_lowercase().contains("transfer-encoding: chunked") {
                dechunk(&body)
            } else {
                body
            };
            (
                status,
                serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
            )
        }

        pub async fn get_status(&self, path: &str) -> u16 {
            match tokio::net::TcpStream::connect(self.addr).await {
                Ok(_) => self.request("GET", path, None, None).await.0,
                Err(_) => 0,
            }
        }

        pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
            self.request("GET", path, token, None).await
        }

        pub async fn post_json(
            &self,
            path: &str,
            token: Option<&str>,
            body: &str,
        ) -> (u16, serde_json::Value) {
            let (s, b) = self.request("POST", path, token, Some(body)).await;
            (
                s,
                serde_json::from_str(&b).unwrap_or(serde_json::Value::String(b)),
            )
        }
    }

    fn dechunk(body: &str) -> String {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    }
}
