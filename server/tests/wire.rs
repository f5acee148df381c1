//! The WebSocket on the wire, byte by byte, as no library client would send it: a frame sent in
//! the same write as the upgrade request (the server must read it from what HTTP had already
//! read), a frame that breaks the protocol (closed with 1002, not dropped), and pings, which a
//! library client would answer by itself: a silent client is closed, one that answers is kept,
//! and one waiting for its token's budget is still pinged.

mod common;

use common::*;
use plenary_server::wire::frame::split;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// A client's binary frame: masked, as RFC 6455 requires (`masked: false` breaks the rule).
fn client_frame(payload: &[u8], masked: bool) -> Vec<u8> {
    client_frame_op(0x82, payload, masked)
}

/// A client's frame with first byte `first` (FIN and opcode).
fn client_frame_op(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first, payload.len() as u8 | if masked { 0x80 } else { 0 }];
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A raw TCP client of a rapporteur's group document, and what it has read.
struct Raw {
    tcp: TcpStream,
    /// The upgrade request's path, token included.
    path: String,
    buf: Vec<u8>,
    /// The 101 head, once read.
    head: Option<String>,
    /// Each frame read so far: (first byte, payload).
    frames: Vec<(u8, Vec<u8>)>,
}

impl Raw {
    /// Creates meeting `m1` with group `g1` on `s` and connects (no request sent yet).
    async fn open(s: &Server) -> Raw {
        let m = s.create_meeting("m1", &["g1"]).await;
        Raw {
            tcp: TcpStream::connect(s.addr).await.unwrap(),
            path: format!("/ws/m1/g1?token={}", tok(&m, &["rapporteurs", "g1"])),
            buf: Vec::new(),
            head: None,
            frames: Vec::new(),
        }
    }

    /// Reads the 101 head, then frames until `done` says so of all the frames read (or the
    /// deadline passes).
    async fn read_until(&mut self, done: impl Fn(&[(u8, Vec<u8>)]) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if self.head.is_none() {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    self.head = Some(String::from_utf8_lossy(&self.buf[..end]).into_owned());
                    self.buf.drain(..end + 4);
                }
            }
            if self.head.is_some() {
                while let Some((at, end)) = split(&self.buf) {
                    self.frames.push((self.buf[0], self.buf[at..end].to_vec()));
                    self.buf.drain(..end);
                }
                if done(&self.frames) {
                    return;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("timed out; head {:?}, frames {:?}", self.head, self.frames))
                .unwrap();
            assert!(
                n > 0,
                "closed early; head {:?}, frames {:?}",
                self.head,
                self.frames
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test]
async fn a_frame_sent_with_the_upgrade_request_is_read_and_answered() {
    let s = Server::fresh().await;
    let mut c = Raw::open(&s).await;
    // The upgrade request and a sync step 1 with an empty state vector, in one write.
    let mut bytes = upgrade_request(&c.path);
    bytes.extend(client_frame(&[0, 0, 1, 0], true));
    c.tcp.write_all(&bytes).await.unwrap();
    // Its answer is a sync step 2 (message type 0, sync type 1).
    c.read_until(|f| f.iter().any(|(_, p)| p.starts_with(&[0, 1])))
        .await;
    let (head, frames) = (c.head.unwrap(), c.frames);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert_eq!(frames[0].0, 0x82, "a final binary frame, unmasked");
    assert!(
        frames[0].1.starts_with(&[0, 0]),
        "the room's own sync step 1 comes first: {frames:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_unmasked_client_frame_is_closed_with_1002() {
    let s = Server::fresh().await;
    let mut c = Raw::open(&s).await;
    c.tcp.write_all(&upgrade_request(&c.path)).await.unwrap();
    c.read_until(|f| !f.is_empty()).await;
    let head = c.head.clone().unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.tcp
        .write_all(&client_frame(&[0, 0, 1, 0], false))
        .await
        .unwrap();
    // Reads on past the greeting until the close frame (opcode 8).
    c.read_until(|f| count(f, CLOSE) > 0).await;
    assert_eq!(close_code_of(&c.frames), Some(1002));
    s.stop().await;
}

const PING: u8 = 0x89;
const CLOSE: u8 = 0x88;

/// Pings every 200 ms; a client silent for 700 ms is gone.
fn quick_pings(c: &mut plenary_server::config::Config) {
    c.keepalive = plenary_server::config::Keepalive {
        ping_every: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(700),
    };
}

fn count(frames: &[(u8, Vec<u8>)], first: u8) -> usize {
    frames.iter().filter(|f| f.0 == first).count()
}

fn close_code_of(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    let body = &frames.iter().find(|f| f.0 == CLOSE)?.1;
    Some(u16::from_be_bytes([body[0], body[1]]))
}

#[tokio::test]
async fn a_silent_client_is_pinged_then_closed_with_1001() {
    let s = Server::fresh_with(quick_pings).await;
    let mut c = Raw::open(&s).await;
    c.tcp.write_all(&upgrade_request(&c.path)).await.unwrap();
    let t0 = Instant::now();
    c.read_until(|f| count(f, CLOSE) > 0).await;
    let silent = t0.elapsed();
    assert_eq!(close_code_of(&c.frames), Some(1001), "{:?}", c.frames);
    assert!(
        count(&c.frames, PING) >= 2,
        "pinged before it was given up: {:?}",
        c.frames
    );
    assert!(
        silent >= Duration::from_millis(700),
        "closed only once silent for the idle timeout, not after {silent:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_answering_pings_is_kept() {
    let s = Server::fresh_with(quick_pings).await;
    let mut c = Raw::open(&s).await;
    c.tcp.write_all(&upgrade_request(&c.path)).await.unwrap();
    // Twelve pings, 2.4 s: over three idle timeouts, each answered by a pong.
    for answered in 0..12 {
        c.read_until(|f| count(f, PING) > answered || count(f, CLOSE) > 0)
            .await;
        assert_eq!(close_code_of(&c.frames), None, "closed after {answered} pongs");
        c.tcp.write_all(&client_frame_op(0x8A, &[], true)).await.unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_waiting_for_its_token_budget_is_still_pinged() {
    // One message a second for the token, a burst of one.
    let s = Server::fresh_with(|c| {
        quick_pings(c);
        c.rapporteur_token_messages_per_sec = 1;
    })
    .await;
    let mut c = Raw::open(&s).await;
    c.tcp.write_all(&upgrade_request(&c.path)).await.unwrap();
    c.read_until(|f| !f.is_empty()).await;
    // Three empty updates, then a sync step 1: each after the first waits a second, and the
    // step 1 is answered (a sync step 2) after the three waits. The client sends nothing else:
    // no pongs, as it would not be read meanwhile.
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend(client_frame(&[0, 2, 2, 0, 0], true));
    }
    bytes.extend(client_frame(&[0, 0, 1, 0], true));
    let before = count(&c.frames, PING);
    let t0 = Instant::now();
    c.tcp.write_all(&bytes).await.unwrap();
    let is_answer = |f: &(u8, Vec<u8>)| f.0 == 0x82 && f.1.starts_with(&[0, 1]);
    c.read_until(|f| f.iter().any(is_answer) || count(f, CLOSE) > 0)
        .await;
    let answered = Instant::now();
    assert_eq!(close_code_of(&c.frames), None, "{:?}", c.frames);
    let waited = answered - t0;
    assert!(
        waited >= Duration::from_millis(2700),
        "the budget made it wait: {waited:?}"
    );
    let pings = count(&c.frames, PING) - before;
    assert!(pings >= 5, "pinged while it waited: {pings} pings in {waited:?}");
    // The time spent not reading is not the client's silence: it is closed as silent only an
    // idle timeout after the wait ended, not at the first ping check after the wait.
    c.read_until(|f| count(f, CLOSE) > 0).await;
    assert_eq!(close_code_of(&c.frames), Some(1001));
    let after = answered.elapsed();
    assert!(
        after >= Duration::from_millis(400),
        "closed {after:?} after the wait"
    );
    s.stop().await;
}
