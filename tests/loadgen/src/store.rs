//! plenary store benchmark. Starts `plenary serve` itself (fresh data dir) and measures:
//! - durable updates per second under concurrent writers (`ack=1`: an update counts once the
//!   server's durable state vector covers it), with the ack latency;
//! - cold-load time against history length: a room receives H one-character updates; the server is
//!   killed with SIGKILL and restarted, and the first sync of that room is timed; then the server is
//!   stopped gracefully (SIGTERM, which lets it flush/compact) and restarted, and it is timed again.
use crate::client::{self, Phase};
use crate::proto::{self, Parsed, Wire};
use crate::sys;
use crate::target::{Env, Target};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{Any, Array, Doc, In, Map, MapPrelim, Out, ReadTxn, Text, TextPrelim, Transact, Update};

#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    #[arg(long, default_value = "target/release/plenary")]
    server_bin: String,
    /// Data dir (default: a new folder under .bench/)
    #[arg(long)]
    data_dir: Option<String>,
    /// Concurrent writers for the durable-throughput test
    #[arg(long, default_value_t = 20)]
    writers: usize,
    /// Groups (rooms) the writers are spread over
    #[arg(long, default_value_t = 5)]
    groups: usize,
    /// Seconds of writing for the durable-throughput test
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unacknowledged updates each writer may have in flight
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// History lengths (updates) for the cold-load test
    #[arg(long, default_value = "10,10000,100000", value_delimiter = ',')]
    histories: Vec<u64>,
    #[arg(long)]
    json: Option<String>,
    #[arg(long, default_value = "")]
    label: String,
    #[arg(long)]
    quiet: bool,
    /// Keep the data dir afterwards
    #[arg(long)]
    keep_data: bool,
    /// Extra argument for `plenary serve` (repeatable), e.g. --server-arg=--max-messages-per-sec=100000
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// Append the server's stdout/stderr to this file
    #[arg(long)]
    server_log: Option<String>,
    /// Only the durable-throughput test (skip the history and cold-load tests)
    #[arg(long)]
    durable_only: bool,
}

struct Server {
    child: Child,
    base: String,
    started_in: f64,
}

impl Server {
    fn start(bin: &str, dir: &str, admin: &str, extra: &[String], log: &Option<String>) -> Result<Server> {
        let t = Instant::now();
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--data-dir",
                dir,
                "--admin-token",
                admin,
                "--no-demo",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(p) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
                None => Stdio::null(),
            })
            .spawn()
            .with_context(|| format!("spawn {bin}"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(i) = line.find("listening on http://") {
                        let url = line[i + "listening on ".len()..].trim().to_string();
                        let _ = tx.send(url);
                        sent = true;
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Ok(Server {
                child,
                base,
                started_in: t.elapsed().as_secs_f64(),
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("plenary did not print `listening on` within 60 s")
            }
        }
    }
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    fn term(mut self) -> Result<f64> {
        let t = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        while t.elapsed() < Duration::from_secs(60) {
            if self.child.try_wait()?.is_some() {
                return Ok(t.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("plenary did not exit within 60 s of SIGTERM")
    }
}

#[derive(Default)]
struct AckOut {
    sent: u64,
    acked: u64,
    lat_us: Vec<u32>,
    last_ack: Option<Instant>,
    error: Option<String>,
}

/// One writer with `ack=1`: keeps up to `window` updates in flight, sends `count` one-character
/// updates or until `until`, and waits for all to be acknowledged as durable.
async fn ack_writer(
    url: String,
    count: Option<u64>,
    until: Option<Instant>,
    window: usize,
    cid: u64,
) -> AckOut {
    let mut out = AckOut::default();
    if let Err(e) = ack_writer_inner(&url, count, until, window, cid, &mut out).await {
        out.error = Some(e.to_string());
    }
    out
}

async fn ack_writer_inner(
    url: &str,
    count: Option<u64>,
    until: Option<Instant>,
    window: usize,
    cid: u64,
    out: &mut AckOut,
) -> Result<()> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let wire = Wire::plain();
    let mut ws = client::open(&format!("{url}{sep}ack=1"), &wire, Duration::from_secs(30)).await?;
    ws.send(Message::binary(wire.step1(&proto::EMPTY_SV))).await?;
    // wait for step 2
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .map_err(|_| anyhow!("no sync step 2"))?;
        let Some(Ok(Message::Binary(b))) = m else {
            if matches!(m, Some(Ok(_))) {
                continue;
            }
            bail!("closed before sync");
        };
        match proto::parse(&b) {
            Some(Parsed::Step1(_)) => ws.send(Message::binary(wire.step2(&proto::EMPTY_UPDATE))).await?,
            Some(Parsed::Step2(_)) => break,
            _ => {}
        }
    }
    let doc = Doc::with_client_id(cid);
    let arr = doc.get_or_insert_array("conclusions");
    let text = {
        let mut txn = doc.transact_mut();
        let m = arr.push_back(
            &mut txn,
            MapPrelim::from([
                ("id", In::Any(Any::from(client::conclusion_id(cid)))),
                ("text", In::from(TextPrelim::new(""))),
                ("status", In::Any(Any::from("draft"))),
                ("author", In::Any(Any::from("store bench"))),
            ]),
        );
        ws.send(Message::binary(wire.update(&txn.encode_update_v1())))
            .await?;
        match m.get(&txn, "text") {
            Some(Out::YText(t)) => t,
            _ => bail!("no text"),
        }
    };
    let mut inflight: VecDeque<(u32, Instant)> = VecDeque::new();
    let mut done_sending = false;
    let mut last_progress = Instant::now();
    loop {
        if !done_sending {
            let mut fed = false;
            while inflight.len() < window {
                if count.is_some_and(|c| out.sent >= c) || until.is_some_and(|u| Instant::now() >= u) {
                    done_sending = true;
                    break;
                }
                let (u, clock) = {
                    let mut txn = doc.transact_mut();
                    let l = text.len(&txn);
                    text.insert(&mut txn, l, "x");
                    let u = txn.encode_update_v1();
                    drop(txn);
                    (
                        u,
                        doc.transact().state_vector().get(&yrs::block::ClientID::new(cid)),
                    )
                };
                inflight.push_back((clock, Instant::now()));
                ws.feed(Message::binary(wire.update(&u))).await?;
                out.sent += 1;
                fed = true;
            }
            if fed {
                ws.flush().await?;
            }
        }
        if done_sending && inflight.is_empty() {
            return Ok(());
        }
        let m = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(m) => m,
            Err(_) => {
                if last_progress.elapsed() > Duration::from_secs(20) {
                    bail!(
                        "no durable acknowledgement for 20 s ({} in flight)",
                        inflight.len()
                    );
                }
                continue;
            }
        };
        let b = match m {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("read: {e}"),
            None => bail!("closed"),
        };
        match proto::parse(&b) {
            Some(Parsed::Ack(sv)) => {
                let acked = proto::decode_sv(sv)
                    .and_then(|v| v.into_iter().find(|(c, _)| *c == cid))
                    .map(|x| x.1);
                if let Some(c) = acked {
                    let now = Instant::now();
                    while let Some(&(clock, at)) = inflight.front() {
                        if clock as u64 > c {
                            break;
                        }
                        inflight.pop_front();
                        out.acked += 1;
                        out.lat_us
                            .push(now.duration_since(at).as_micros().min(u32::MAX as u128) as u32);
                        out.last_ack = Some(now);
                        last_progress = now;
                    }
                }
            }
            Some(Parsed::Step1(_)) => ws.send(Message::binary(wire.step2(&proto::EMPTY_UPDATE))).await?,
            Some(Parsed::Auth(_, reason)) => bail!("refused: {reason}"),
            _ => {}
        }
    }
}

/// Connect, sync step 1 → step 2 received and applied; returns (ms, total conclusion text length).
async fn timed_sync(url: &str) -> Result<(f64, u64)> {
    let wire = Wire::plain();
    let t = Instant::now();
    let mut ws = client::open(url, &wire, Duration::from_secs(60)).await?;
    ws.send(Message::binary(wire.step1(&proto::EMPTY_SV))).await?;
    let doc = Doc::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(120), ws.next())
            .await
            .map_err(|_| anyhow!("no step 2"))?;
        let Some(Ok(Message::Binary(b))) = m else {
            if matches!(m, Some(Ok(_))) {
                continue;
            }
            bail!("closed before sync");
        };
        if let Some(Parsed::Step2(u)) = proto::parse(&b) {
            doc.transact_mut().apply_update(Update::decode_v1(u)?)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let len: u64 = client::conclusion_texts(&doc.transact(), false)
                .values()
                .map(|v| v.0 as u64)
                .sum();
            let _ = tokio::time::timeout(Duration::from_millis(300), ws.close(None)).await;
            return Ok((ms, len));
        }
    }
}

fn lat(v: &mut [u32]) -> Value {
    v.sort_unstable();
    let ms = |q| sys::percentile(v, q).map(|x| (x as f64 / 10.0).round() / 100.0);
    json!({"samples": v.len(), "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": v.last().map(|x| *x as f64 / 1000.0)})
}

/// (`plenary_persist_transactions_total`, `plenary_updates_persisted_total`) from `/metrics`.
async fn persist_counters(base: &str) -> Option<(u64, u64)> {
    let r = crate::http::request(base, "GET", "/metrics", None, None)
        .await
        .ok()?;
    Some((
        metric(&r.body, "plenary_persist_transactions_total")?,
        metric(&r.body, "plenary_updates_persisted_total")?,
    ))
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_counter_is_read_from_prometheus_text() {
        let t = "# HELP plenary_persist_transactions Store transactions\n\
                 plenary_persist_transactions_total 12\n\
                 plenary_persist_transactions_total_other 5\n\
                 plenary_updates_persisted_total 340\n";
        assert_eq!(super::metric(t, "plenary_persist_transactions_total"), Some(12));
        assert_eq!(super::metric(t, "plenary_updates_persisted_total"), Some(340));
        assert_eq!(super::metric(t, "plenary_missing_total"), None);
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub async fn run(a: StoreArgs) -> Result<()> {
    let mut rng = sys::Rng::from_time();
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| format!(".bench/store-{}", rng.hex(8)));
    std::fs::create_dir_all(&dir)?;
    let admin = format!("bench-{}", rng.hex(16));
    let srv = Server::start(&a.server_bin, &dir, &admin, &a.server_arg, &a.server_log)?;
    let first_start = srv.started_in;
    let env = Env {
        target: Target::Plenary,
        base: srv.base.clone(),
        admin_token: Some(admin.clone()),
    };

    // 1. Durable updates/s under concurrent writers.
    let rooms = env
        .plenary_meeting(&format!("store-tp-{}", rng.hex(6)), a.groups.max(1), false)
        .await?;
    let m0 = persist_counters(&srv.base).await;
    let cpu0 = sys::cpu_seconds(&srv.pid());
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs_f64(a.duration);
    let mut hs = Vec::new();
    for i in 0..a.writers {
        let url = rooms.groups[i % rooms.groups.len()].write_url.clone();
        hs.push(tokio::spawn(ack_writer(
            url,
            None,
            Some(until),
            a.window,
            rng.client_id(),
        )));
    }
    let mut acked = 0;
    let mut sent = 0;
    let mut lats = Vec::new();
    let mut last = t0;
    let mut errors = Vec::new();
    for h in hs {
        let o = h.await?;
        acked += o.acked;
        sent += o.sent;
        lats.extend(o.lat_us);
        if let Some(l) = o.last_ack {
            last = last.max(l);
        }
        if let Some(e) = o.error {
            errors.push(e);
        }
    }
    let cpu1 = sys::cpu_seconds(&srv.pid());
    let m1 = persist_counters(&srv.base).await;
    // group commit: store transactions and updates persisted in the window, from /metrics
    let commits = match (m0, m1) {
        (Some((t0, u0)), Some((t1, u1))) if t1 > t0 => json!({
            "transactions": t1 - t0, "updates": u1 - u0,
            "updates_per_transaction": ((u1 - u0) as f64 / (t1 - t0) as f64 * 10.0).round() / 10.0,
        }),
        _ => Value::Null,
    };
    let elapsed = last.duration_since(t0).as_secs_f64().max(1e-9);
    // single writer, one update at a time: the durable round trip
    let single = ack_writer(
        rooms.groups[0].write_url.clone(),
        Some(200),
        None,
        1,
        rng.client_id(),
    )
    .await;
    let mut single_lat = single.lat_us.clone();
    let throughput = json!({
        "writers": a.writers, "rooms": rooms.groups.len(), "window": a.window, "duration_s": a.duration,
        "sent": sent, "acked": acked,
        "durable_updates_per_s": (acked as f64 / elapsed).round(),
        "ack_latency_ms": lat(&mut lats),
        "group_commit": commits,
        "server_cpu_s": match (cpu0, cpu1) { (Some(x), Some(y)) => Some(((y - x) * 1000.0).round() / 1000.0), _ => None },
        "errors": errors,
        "single_writer_window1_ack_ms": lat(&mut single_lat),
        "single_writer_error": single.error,
    });
    if !a.quiet {
        eprintln!("durable throughput: {throughput}");
    }

    if a.durable_only {
        let v = json!({
            "scenario": "store", "target": "plenary", "label": a.label,
            "first_startup_s": first_start, "server_args": a.server_arg, "durable": throughput,
        });
        let _ = srv.term();
        if !a.keep_data && a.data_dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return crate::emit(&a.json, a.quiet, &v);
    }
    // 2. Cold load vs history length.
    let hrooms = env
        .plenary_meeting(&format!("store-cold-{}", rng.hex(6)), a.histories.len(), false)
        .await?;
    let mut hist = Vec::new();
    for (i, &h) in a.histories.iter().enumerate() {
        let t = Instant::now();
        let o = ack_writer(
            hrooms.groups[i].write_url.clone(),
            Some(h),
            None,
            256,
            rng.client_id(),
        )
        .await;
        let write_s = t.elapsed().as_secs_f64();
        if let Some(e) = &o.error {
            bail!("writing history {h}: {e} ({} of {} acked)", o.acked, o.sent);
        }
        let (warm_ms, len) = timed_sync(&hrooms.groups[i].read_url).await?;
        hist.push(json!({"updates": h, "write_s": (write_s * 1000.0).round() / 1000.0,
                         "write_updates_per_s": (h as f64 / write_s).round(), "warm_sync_ms": warm_ms, "len": len}));
        if !a.quiet {
            eprintln!("history {h}: written in {write_s:.2}s, warm sync {warm_ms:.1} ms, len {len}");
        }
    }
    let data_bytes_before = dir_size(std::path::Path::new(&dir));
    srv.kill9();
    let mut cold = Vec::new();
    for mode in ["after SIGKILL", "after SIGTERM restart"] {
        let s = Server::start(&a.server_bin, &dir, &admin, &a.server_arg, &a.server_log)?;
        let base_ws = s.base.replacen("http://", "ws://", 1);
        let rss_start = sys::rss_kib(&s.pid()).map(|x| x.0);
        let mut per = Vec::new();
        for (i, &h) in a.histories.iter().enumerate() {
            // same meeting/group, rebuilt URL against the new port
            let url = hrooms.groups[i].read_url.clone();
            let path = url.splitn(4, '/').nth(3).unwrap_or("");
            let u = format!("{base_ws}/{path}");
            let (ms, len) = timed_sync(&u).await?;
            let (ms2, _) = timed_sync(&u).await?;
            per.push(
                json!({"updates": h, "first_sync_ms": (ms * 100.0).round() / 100.0,
                            "second_sync_ms": (ms2 * 100.0).round() / 100.0, "len_ok": len == h, "len": len}),
            );
        }
        let rss_loaded = sys::rss_kib(&s.pid()).map(|x| x.0);
        let startup = s.started_in;
        let stop_s = s.term()?;
        cold.push(
            json!({"mode": mode, "startup_s": (startup * 1000.0).round() / 1000.0,
                         "rss_start_mb": rss_start.map(|k| k as f64 / 1024.0),
                         "rss_all_loaded_mb": rss_loaded.map(|k| k as f64 / 1024.0),
                         "rooms": per, "sigterm_exit_s": (stop_s * 1000.0).round() / 1000.0,
                         "data_dir_bytes_after": dir_size(std::path::Path::new(&dir))}),
        );
        if !a.quiet {
            eprintln!(
                "cold load {mode}: {}",
                cold.last().map(|v| v.to_string()).unwrap_or_default()
            );
        }
    }
    let v = json!({
        "scenario": "store", "target": "plenary", "label": a.label,
        "first_startup_s": first_start,
        "server_args": a.server_arg,
        "durable": throughput,
        "history": hist,
        "data_dir_bytes_before_restart": data_bytes_before,
        "cold_load": cold,
    });
    if !a.keep_data && a.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = Phase::Setup;
    crate::emit(&a.json, a.quiet, &v)
}
