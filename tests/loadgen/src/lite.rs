//! A lightweight counting follower: a hand-rolled WebSocket client over a raw TcpStream that reads
//! in large chunks and parses frames in place (no allocation per message), counts messages and
//! bytes, answers sync step 1 with an empty step 2 and pings with pongs, and notes when step 2
//! arrives. Used for the thousands of followers that are not sampled, to keep the load generator
//! cheap next to the server it measures.
use crate::client::{ClientOut, Counters, Phase};
use crate::proto::{self, Wire};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

/// Client frames must be masked; an all-zero key is valid and keeps the payload as is.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

async fn handshake(url: &str, timeout: Duration) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow::anyhow!("ws:// url expected"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fut = async {
        let mut s = TcpStream::connect(hostport).await?;
        s.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                anyhow::bail!("closed during handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                if !head.starts_with("HTTP/1.1 101") {
                    anyhow::bail!("HTTP error: {}", head.lines().next().unwrap_or(""));
                }
                let leftover = buf[end + 4..].to_vec();
                return Ok((s, leftover));
            }
            if buf.len() > 16384 {
                anyhow::bail!("handshake response too long");
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("connect timeout"))?
}

pub async fn run_counting(
    url: String,
    wire: Wire,
    join_awareness: Option<u64>,
    t0: Instant,
    connect_timeout: Duration,
    mut phase: watch::Receiver<Phase>,
    sem: Option<Arc<Semaphore>>,
    counters: Arc<Counters>,
) -> ClientOut {
    let mut out = ClientOut::default();
    let mut permit = match &sem {
        Some(s) => s.clone().acquire_owned().await.ok(),
        None => None,
    };
    let started = Instant::now();
    let (mut s, mut buf) = match handshake(&url, connect_timeout).await {
        Ok(v) => v,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return out;
        }
    };
    out.connected = true;
    let mut hello = Vec::new();
    if wire.is_hocuspocus() {
        hello.extend(client_frame(2, &wire.hocus_auth("loadgen")));
    }
    hello.extend(client_frame(2, &wire.step1(&proto::EMPTY_SV)));
    if let Some(cid) = join_awareness {
        let json = format!("{{\"user\":{{\"name\":\"loadgen {cid}\",\"color\":\"#30bced\"}}}}");
        hello.extend(client_frame(2, &wire.awareness(cid, 1, &json)));
    }
    if let Err(e) = s.write_all(&hello).await {
        out.error = Some(format!("send: {e}"));
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return out;
    }
    let mut cur = *phase.borrow();
    let mut start = 0usize; // parse position in buf
    buf.reserve(8192);
    'outer: loop {
        // parse every complete frame in buf[start..]
        let mut replies: Vec<u8> = Vec::new();
        loop {
            let avail = &buf[start..];
            if avail.len() < 2 {
                break;
            }
            let opcode = avail[0] & 0x0f;
            let masked = avail[1] & 0x80 != 0;
            let mut len = (avail[1] & 0x7f) as usize;
            let mut hdr = 2;
            if len == 126 {
                if avail.len() < 4 {
                    break;
                }
                len = u16::from_be_bytes([avail[2], avail[3]]) as usize;
                hdr = 4;
            } else if len == 127 {
                if avail.len() < 10 {
                    break;
                }
                len = u64::from_be_bytes(avail[2..10].try_into().unwrap_or([0; 8])) as usize;
                hdr = 10;
            }
            if masked {
                hdr += 4; // servers don't mask; skip the key if one does (payload stays masked)
            }
            if avail.len() < hdr + len {
                break;
            }
            let payload = &avail[hdr..hdr + len];
            start += hdr + len;
            match opcode {
                0x2 | 0x0 => {
                    out.msgs += 1;
                    out.bytes += len as u64;
                    if opcode == 0x2 {
                        if let Some(body) = wire.body(payload) {
                            let (t, sub) = proto::peek_kind(body);
                            if t == proto::MSG_SYNC || t == proto::MSG_SYNC_REPLY {
                                match sub {
                                    proto::SYNC_STEP1 => {
                                        replies.extend(client_frame(2, &wire.step2(&proto::EMPTY_UPDATE)))
                                    }
                                    proto::SYNC_STEP2 => {
                                        if out.synced_after.is_none() {
                                            out.synced_after = Some(t0.elapsed());
                                            out.conn_sync = Some(started.elapsed());
                                            counters.synced.fetch_add(1, Ordering::Relaxed);
                                            permit.take();
                                        }
                                    }
                                    proto::SYNC_UPDATE => out.updates += 1,
                                    _ => {}
                                }
                            } else if t == proto::MSG_AUTH
                                && body.get(1) == Some(if wire.is_hocuspocus() { &1 } else { &0 })
                            {
                                out.denied += 1;
                            }
                        }
                    }
                }
                0x9 => replies.extend(client_frame(0xA, payload)),
                0x8 => {
                    out.closed_early = cur != Phase::Close;
                    break 'outer;
                }
                _ => {}
            }
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        if !replies.is_empty() {
            if let Err(e) = s.write_all(&replies).await {
                out.error = Some(format!("send: {e}"));
                break;
            }
        }
        if cur == Phase::Close {
            break;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        tokio::select! {
            biased;
            ch = phase.changed() => {
                if ch.is_err() { break; }
                cur = *phase.borrow();
            }
            r = s.read_buf(&mut buf) => {
                match r {
                    Ok(0) => { out.closed_early = cur != Phase::Close; break; }
                    Ok(_) => {}
                    Err(e) => { out.error = Some(format!("read: {e}")); out.closed_early = true; break; }
                }
            }
        }
    }
    drop(permit);
    if out.synced_after.is_none() && out.error.is_none() && cur != Phase::Close {
        out.error = Some("closed before sync".into());
    }
    if !out.closed_early {
        let mut close = vec![0x88, 0x82, 0, 0, 0, 0];
        close.extend_from_slice(&1000u16.to_be_bytes());
        let _ = tokio::time::timeout(Duration::from_millis(300), s.write_all(&close)).await;
    }
    out
}
