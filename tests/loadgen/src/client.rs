//! One simulated y-websocket client: a counting follower (cheap: counts messages and bytes and
//! replies to sync step 1 with an empty step 2), a sampled follower (keeps a yrs Doc, applies every
//! update and timestamps arrivals by comparing its document against the writers' send logs), or a
//! writer (keeps a yrs Doc and types into its own conclusion at a set rate).
use crate::proto::{self, Parsed, Wire};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayRef, Doc, GetString, In, Map, MapPrelim, Out, ReadTxn, StateVector, Text, TextPrelim,
    TextRef, Transact, Update,
};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Run,
    Drain,
    Close,
}

/// What a writer sent, in order: (clock after the send, text length after the send, send time).
#[derive(Default)]
pub struct WriterLog {
    pub entries: Mutex<Vec<(u32, u32, Instant)>>,
    pub sent: AtomicU64,
    /// the node the writer is connected to now (it moves when its node dies)
    pub node: AtomicUsize,
}

#[derive(Clone, Debug)]
pub enum Progress {
    /// The writer's client id: compare the follower's state vector (same document).
    Clock(u64),
    /// The writer's conclusion id: compare the conclusion's text length wherever it is found
    /// (group document `conclusions`, or plenary document `groups[*].conclusions`).
    Text(String),
}

#[derive(Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub synced: AtomicUsize,
    pub failed: AtomicUsize,
    /// connections lost after sync (each one is followed by a reconnect attempt with `reconnect`)
    pub dropped: AtomicUsize,
    /// reconnected clients synced again
    pub resynced: AtomicUsize,
}

pub struct WriterCfg {
    pub client_id: u64,
    pub log: Arc<WriterLog>,
    pub hz: f64,
    /// characters typed right after sync (setup, not measured): one insert, in the same
    /// transaction (and so the same update) that creates the writer's conclusion.
    pub prefill: u32,
    pub seed: u64,
}

pub struct ClientCfg {
    pub url: String,
    pub wire: Wire,
    /// keep a yrs Doc and apply everything received
    pub decode: bool,
    pub track: Vec<(Progress, Arc<WriterLog>)>,
    pub writer: Option<WriterCfg>,
    pub join_awareness: bool,
    /// sampled storm client: the total conclusion text length expected after sync
    pub expect_len: Option<u32>,
    pub t0: Instant,
    pub connect_timeout: Duration,
    pub client_id: u64,
    /// The same document on every node (`url` is `urls[node]`); empty: `url` only.
    pub urls: Vec<String>,
    /// The node `url` is on.
    pub node: usize,
    /// On a lost connection, reconnect to the next node and sync again (as stock providers do
    /// through a load balancer) instead of ending.
    pub reconnect: bool,
}

#[derive(Default, Debug)]
pub struct ClientOut {
    pub connected: bool,
    pub synced_after: Option<Duration>,
    /// From this connection's own start (TCP connect) to its sync step 2.
    pub conn_sync: Option<Duration>,
    pub content_ok: Option<bool>,
    pub msgs: u64,
    pub bytes: u64,
    pub updates: u64,
    pub error: Option<String>,
    pub closed_early: bool,
    pub denied: u64,
    pub latencies_us: Vec<u32>,
    /// per latency sample: when its keystroke was sent (ms since `t0`)
    pub lat_sent_ms: Vec<u32>,
    /// per latency sample: the writer was on another node than this client
    pub lat_remote: Vec<bool>,
    /// connections lost after the first sync
    pub dropped: u32,
    /// when the last connection was lost, and when the client was synced again after it
    pub down_at: Option<Instant>,
    pub back_at: Option<Instant>,
    /// the node the client ended on
    pub node: usize,
    pub sv: Option<Vec<(u64, u64)>>,
    pub texts: Option<BTreeMap<String, String>>,
    pub sent: u64,
    /// writers: the id of their own conclusion
    pub own_id: Option<String>,
}

impl ClientOut {
    pub fn held(&self) -> bool {
        self.connected && self.synced_after.is_some() && !self.closed_early && self.error.is_none()
    }
}

pub fn ws_config() -> WebSocketConfig {
    // Small buffers: thousands of mostly idle followers live in this process.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(16 << 20)
}

pub async fn open(url: &str, wire: &Wire, timeout: Duration) -> anyhow::Result<Ws> {
    let (mut ws, _resp) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connect timeout"))??;
    if wire.is_hocuspocus() {
        ws.send(Message::binary(wire.hocus_auth("loadgen"))).await?;
    }
    Ok(ws)
}

/// After a lost connection: opens the document on the next node (then the others in turn,
/// backing off 100 ms × 2^attempt up to 1.6 s, for at most 60 s or until the run closes) and sends
/// sync step 1 with `sv` (and the awareness state). Returns the socket and its node.
async fn reconnect(
    cfg: &ClientCfg,
    wire: &Wire,
    from: usize,
    sv: &[u8],
    cid: u64,
    phase: &watch::Receiver<Phase>,
) -> Option<(Ws, usize)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let nodes = cfg.urls.len().max(1);
    for attempt in 0usize.. {
        if *phase.borrow() == Phase::Close || Instant::now() >= deadline {
            return None;
        }
        let node = crate::cluster::next_node(from, attempt, nodes);
        let url = cfg.urls.get(node).unwrap_or(&cfg.url);
        if let Ok(mut ws) = open(url, wire, Duration::from_secs(5)).await {
            let mut ok = ws.send(Message::binary(wire.step1(sv))).await.is_ok();
            if ok && cfg.join_awareness {
                let json = format!("{{\"user\":{{\"name\":\"loadgen {cid}\",\"color\":\"#30bced\"}}}}");
                ok = ws
                    .send(Message::binary(wire.awareness(cid, 1, &json)))
                    .await
                    .is_ok();
            }
            if ok {
                return Some((ws, node));
            }
        }
        let backoff = 100u64 << attempt.min(4);
        tokio::time::sleep(Duration::from_millis(backoff)).await;
    }
    None
}

const TYPING: &[u8] = b"the quick brown fox jumps over the lazy dog and the plenary agrees ";

pub fn conclusions_array<T: ReadTxn>(txn: &T) -> Option<ArrayRef> {
    txn.get_array("conclusions")
}

/// Every conclusion's (id, text) found in a group document or a plenary document.
pub fn conclusion_texts<T: ReadTxn>(txn: &T, want_text: bool) -> BTreeMap<String, (u32, String)> {
    let mut out = BTreeMap::new();
    let scan = |arr: &ArrayRef, out: &mut BTreeMap<String, (u32, String)>| {
        for v in arr.iter(txn) {
            if let Out::YMap(m) = v {
                let id = match m.get(txn, "id") {
                    Some(Out::Any(Any::String(s))) => s.to_string(),
                    _ => continue,
                };
                if let Some(Out::YText(t)) = m.get(txn, "text") {
                    let s = if want_text {
                        t.get_string(txn)
                    } else {
                        String::new()
                    };
                    out.insert(id, (t.len(txn), s));
                }
            }
        }
    };
    if let Some(a) = conclusions_array(txn) {
        scan(&a, &mut out);
    }
    if let Some(groups) = txn.get_array("groups") {
        for g in groups.iter(txn) {
            if let Out::YMap(gm) = g {
                if let Some(Out::YArray(a)) = gm.get(txn, "conclusions") {
                    scan(&a, &mut out);
                }
            }
        }
    }
    out
}

pub fn conclusion_id(client_id: u64) -> String {
    format!("c{client_id}")
}

struct Tracked {
    progress: Progress,
    log: Arc<WriterLog>,
    last: u32,
    cursor: usize,
}

pub async fn run_client(
    cfg: ClientCfg,
    mut phase: watch::Receiver<Phase>,
    sem: Option<Arc<Semaphore>>,
    counters: Arc<Counters>,
) -> ClientOut {
    let mut out = ClientOut {
        own_id: cfg.writer.as_ref().map(|w| conclusion_id(w.client_id)),
        ..Default::default()
    };
    let permit = match &sem {
        Some(s) => s.clone().acquire_owned().await.ok(),
        None => None,
    };
    let started = Instant::now();
    let mut ws = match open(&cfg.url, &cfg.wire, cfg.connect_timeout).await {
        Ok(ws) => ws,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return out;
        }
    };
    out.connected = true;
    out.node = cfg.node;
    let mut node = cfg.node;
    // a lost connection to recover from (with `reconnect`), and whether the next sync step 2 is
    // a resync after one
    let mut broken = false;
    let mut resyncing = false;
    let wire = cfg.wire.clone();
    let cid = cfg.writer.as_ref().map(|w| w.client_id).unwrap_or(cfg.client_id);
    let doc = if cfg.decode || cfg.writer.is_some() {
        Some(Doc::with_client_id(cid))
    } else {
        None
    };
    let own_text: Option<TextRef> = None;
    let mut own_text = own_text;
    let mut tracked: Vec<Tracked> = cfg
        .track
        .iter()
        .map(|(p, l)| Tracked {
            progress: p.clone(),
            log: l.clone(),
            last: 0,
            cursor: 0,
        })
        .collect();
    let need_sv = tracked.iter().any(|t| matches!(t.progress, Progress::Clock(_)));
    let need_text = tracked.iter().any(|t| matches!(t.progress, Progress::Text(_)));
    let mut permit = permit;

    let sv = match &doc {
        Some(d) => {
            use yrs::updates::encoder::Encode;
            d.transact().state_vector().encode_v1()
        }
        None => proto::EMPTY_SV.to_vec(),
    };
    let mut res = ws.send(Message::binary(wire.step1(&sv))).await;
    if res.is_ok() && cfg.join_awareness {
        let json = format!("{{\"user\":{{\"name\":\"loadgen {cid}\",\"color\":\"#30bced\"}}}}");
        res = ws.send(Message::binary(wire.awareness(cid, 1, &json))).await;
    }
    if let Err(e) = res {
        out.error = Some(format!("send: {e}"));
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return out;
    }

    let mut rng = crate::sys::Rng::new(cfg.writer.as_ref().map(|w| w.seed).unwrap_or(cid));
    let mut tick: Option<tokio::time::Interval> = None;
    let mut typed: usize = 0;
    let mut cur = *phase.borrow();
    loop {
        if cur == Phase::Close {
            break;
        }
        if broken {
            broken = false;
            out.dropped += 1;
            out.down_at = Some(Instant::now());
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            let sv = match &doc {
                Some(d) => {
                    use yrs::updates::encoder::Encode;
                    d.transact().state_vector().encode_v1()
                }
                None => proto::EMPTY_SV.to_vec(),
            };
            match reconnect(&cfg, &wire, node, &sv, cid, &phase).await {
                Some((w, n)) => {
                    ws = w;
                    node = n;
                    out.node = n;
                    if let Some(w) = &cfg.writer {
                        w.log.node.store(n, Ordering::Relaxed);
                    }
                    out.closed_early = false;
                    out.error = None;
                    resyncing = true;
                    cur = *phase.borrow();
                    continue;
                }
                None => {
                    if *phase.borrow() != Phase::Close {
                        out.error = Some("reconnect failed".into());
                        out.closed_early = true;
                    }
                    break;
                }
            }
        }
        let tick_fut = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            ch = phase.changed() => {
                if ch.is_err() { break; }
                cur = *phase.borrow();
                match cur {
                    Phase::Run => {
                        if let Some(w) = &cfg.writer {
                            if w.hz > 0.0 {
                                let period = Duration::from_secs_f64(1.0 / w.hz);
                                let offset = Duration::from_micros(rng.below(period.as_micros() as u64) as u64);
                                let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                                iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                                tick = Some(iv);
                            }
                        }
                    }
                    Phase::Drain | Phase::Close => tick = None,
                    Phase::Setup => {}
                }
            }
            _ = tick_fut => {
                if cur != Phase::Run { tick = None; continue; }
                let (Some(d), Some(t), Some(w)) = (&doc, &own_text, &cfg.writer) else { continue };
                let ch = TYPING[typed % TYPING.len()] as char;
                typed += 1;
                let (update, clock, len) = {
                    let mut txn = d.transact_mut();
                    let l = t.len(&txn);
                    t.insert(&mut txn, l, &ch.to_string());
                    let u = txn.encode_update_v1();
                    drop(txn);
                    let r = d.transact();
                    (u, r.state_vector().get(&yrs::block::ClientID::new(w.client_id)), t.len(&r))
                };
                w.log.entries.lock().expect("log").push((clock, len, Instant::now()));
                w.log.sent.fetch_add(1, Ordering::Relaxed);
                out.sent += 1;
                if let Err(e) = ws.send(Message::binary(wire.update(&update))).await {
                    // the keystroke is in the writer's document: a resync sends it again
                    if cfg.reconnect && out.synced_after.is_some() { broken = true; continue; }
                    out.error = Some(format!("send: {e}"));
                    break;
                }
            }
            m = ws.next() => {
                let data = match m {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None if cfg.reconnect && out.synced_after.is_some() && cur != Phase::Close => { broken = true; continue; }
                    Some(Err(_)) if cfg.reconnect && out.synced_after.is_some() && cur != Phase::Close => { broken = true; continue; }
                    Some(Ok(Message::Close(_))) | None => { out.closed_early = cur != Phase::Close; break; }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => { out.error = Some(format!("read: {e}")); out.closed_early = true; break; }
                };
                out.msgs += 1;
                out.bytes += data.len() as u64;
                let Some(body) = wire.body(&data) else { continue };
                let mut reply: Vec<Vec<u8>> = Vec::new();
                let mut got_step2 = false;
                match &doc {
                    None => {
                        let (t, sub) = proto::peek_kind(body);
                        if t == proto::MSG_SYNC || t == proto::MSG_SYNC_REPLY {
                            match sub {
                                proto::SYNC_STEP1 => reply.push(wire.step2(&proto::EMPTY_UPDATE)),
                                proto::SYNC_STEP2 => got_step2 = true,
                                proto::SYNC_UPDATE => out.updates += 1,
                                _ => {}
                            }
                        } else if t == proto::MSG_AUTH {
                            if let Some(Parsed::Auth(sub, _)) = proto::parse(body) {
                                if (sub == 0 && !wire.is_hocuspocus()) || (sub == 1 && wire.is_hocuspocus()) { out.denied += 1; }
                            }
                        }
                    }
                    Some(d) => {
                        let mut applied = false;
                        match proto::parse(body) {
                            Some(Parsed::Step1(sv)) => {
                                let sv = StateVector::decode_v1(sv).unwrap_or_default();
                                let diff = d.transact().encode_diff_v1(&sv);
                                reply.push(wire.step2(&diff));
                            }
                            Some(Parsed::Step2(u)) | Some(Parsed::Update(u)) => {
                                if matches!(proto::parse(body), Some(Parsed::Step2(_))) { got_step2 = true; } else { out.updates += 1; }
                                match Update::decode_v1(u) {
                                    Ok(upd) => {
                                        if let Err(e) = d.transact_mut().apply_update(upd) {
                                            out.error.get_or_insert(format!("apply: {e}"));
                                        }
                                        applied = true;
                                    }
                                    Err(e) => { out.error.get_or_insert(format!("decode: {e}")); }
                                }
                            }
                            Some(Parsed::Auth(sub, _)) => {
                                if (sub == 0 && !wire.is_hocuspocus()) || (sub == 1 && wire.is_hocuspocus()) { out.denied += 1; }
                            }
                            _ => {}
                        }
                        if applied && !tracked.is_empty() {
                            let now = Instant::now();
                            let txn = d.transact();
                            let sv = if need_sv { Some(txn.state_vector()) } else { None };
                            let lens = if need_text { Some(conclusion_texts(&txn, false)) } else { None };
                            drop(txn);
                            for t in tracked.iter_mut() {
                                let p = match &t.progress {
                                    Progress::Clock(c) => sv.as_ref().map(|s| s.get(&yrs::block::ClientID::new(*c))).unwrap_or(0),
                                    Progress::Text(id) => lens.as_ref().and_then(|l| l.get(id)).map(|x| x.0).unwrap_or(0),
                                };
                                if p > t.last {
                                    t.last = p;
                                    let e = t.log.entries.lock().expect("log");
                                    while t.cursor < e.len() {
                                        let (clock, len, at) = e[t.cursor];
                                        let reached = match t.progress { Progress::Clock(_) => clock <= p, Progress::Text(_) => len <= p };
                                        if !reached { break; }
                                        out.latencies_us.push(now.saturating_duration_since(at).as_micros().min(u32::MAX as u128) as u32);
                                        out.lat_sent_ms.push(at.saturating_duration_since(cfg.t0).as_millis().min(u32::MAX as u128) as u32);
                                        out.lat_remote.push(t.log.node.load(Ordering::Relaxed) != node);
                                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                                        t.cursor += 1;
                                    }
                                }
                            }
                        }
                    }
                }
                let mut send_failed = None;
                for r in reply {
                    if let Err(e) = ws.send(Message::binary(r)).await {
                        send_failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = send_failed {
                    if cfg.reconnect && out.synced_after.is_some() { broken = true; continue; }
                    out.error = Some(format!("send: {e}"));
                    break;
                }
                if got_step2 && resyncing {
                    resyncing = false;
                    out.back_at = Some(Instant::now());
                    counters.resynced.fetch_add(1, Ordering::Relaxed);
                }
                if got_step2 && out.synced_after.is_none() {
                    if let Some(exp) = cfg.expect_len {
                        if let Some(d) = &doc {
                            let txn = d.transact();
                            let total: u32 = conclusion_texts(&txn, false).values().map(|v| v.0).sum();
                            out.content_ok = Some(total >= exp);
                        }
                    }
                    out.synced_after = Some(cfg.t0.elapsed());
                    out.conn_sync = Some(started.elapsed());
                    counters.synced.fetch_add(1, Ordering::Relaxed);
                    permit.take();
                    if let (Some(d), Some(w)) = (&doc, &cfg.writer) {
                        // Create this writer's conclusion with the prefill as its text (not
                        // measured): one insert, one transaction, one update.
                        let arr = d.get_or_insert_array("conclusions");
                        let mut msgs = Vec::new();
                        {
                            let prefill: String = (0..w.prefill as usize).map(|i| TYPING[i % TYPING.len()] as char).collect();
                            typed += w.prefill as usize;
                            let mut txn = d.transact_mut();
                            let prelim = MapPrelim::from([
                                ("id", In::Any(Any::from(conclusion_id(w.client_id)))),
                                ("text", In::from(TextPrelim::new(prefill))),
                                ("status", In::Any(Any::from("draft"))),
                                ("author", In::Any(Any::from(format!("loadgen {}", w.client_id)))),
                            ]);
                            let m = arr.push_back(&mut txn, prelim);
                            if let Some(Out::YText(t)) = m.get(&txn, "text") { own_text = Some(t); }
                            msgs.push(wire.update(&txn.encode_update_v1()));
                        }
                        for m in msgs {
                            if let Err(e) = ws.send(Message::binary(m)).await {
                                out.error = Some(format!("send: {e}"));
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    drop(permit);
    if out.synced_after.is_none() && out.error.is_none() && cur != Phase::Close {
        out.error = Some("closed before sync".into());
    }
    if let Some(d) = &doc {
        let txn = d.transact();
        let mut sv: Vec<(u64, u64)> = txn
            .state_vector()
            .iter()
            .map(|(c, k)| (c.get(), *k as u64))
            .collect();
        sv.sort();
        out.sv = Some(sv);
        out.texts = Some(
            conclusion_texts(&txn, true)
                .into_iter()
                .map(|(k, v)| (k, v.1))
                .collect(),
        );
    }
    if !out.closed_early {
        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
    }
    out
}
