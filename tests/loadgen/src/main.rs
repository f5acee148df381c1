//! plenary-loadgen: a y-websocket load generator and benchmark client.
//!
//! Scenarios (see `plenary-loadgen run --help`):
//! - `typing`  R rooms × W writers typing at H Hz × F read-only followers per room
//! - `crowd`   2 rooms × 2 writers at 5 Hz × N followers per room
//! - `storm`   N clients connecting at once into R rooms pre-filled with K characters
//! - `plenary` 3 groups × 2 rapporteurs at 5 Hz, P participants following `{m}/plenary` (plenary only)
//! - `idle`    RSS per idle loaded room and per idle connection
//!
//! Latency is measured without trusting the server's framing: writers log the send time of each
//! keystroke with their resulting (client, clock) and text length; sampled followers apply what they
//! receive to their own yrs Doc and, after each apply, compare their state vector (or, on the
//! plenary document, each conclusion's text length) with those logs.
mod client;
mod cluster;
mod http;
mod lite;
mod proto;
mod store;
mod sys;
mod target;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use client::{ClientCfg, ClientOut, Counters, Phase, Progress, WriterCfg, WriterLog};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::{Env, Room, Target};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

#[derive(Parser)]
#[command(
    name = "plenary-loadgen",
    version,
    about = "y-websocket load generator for plenary and its peers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario against a running server.
    Run(RunArgs),
    /// plenary store benchmark: durable updates/s, cold-load time vs history length (starts the server itself).
    Store(store::StoreArgs),
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Typing,
    Crowd,
    Storm,
    Plenary,
    Idle,
}

#[derive(Parser, Clone)]
struct RunArgs {
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "plenary")]
    target: Target,
    /// Server base URL, http://127.0.0.1:PORT. Repeat it (or give a comma list) for the nodes of
    /// a cluster: rooms are created through the first; writers and followers are spread over all
    /// (see --writer-nodes), and latency is reported for same-node and cross-node pairs apart.
    #[arg(long, required = true, value_delimiter = ',')]
    url: Vec<String>,
    /// plenary admin token (creates a meeting per run)
    #[arg(long, env = "PLENARY_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Server PID, to read RSS and CPU time from /proc; with several --url, one per node in the
    /// same order (CPU and RSS are summed over the nodes alive at both ends of the window)
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Nodes (indices into --url) the writers connect to, round-robin; default: all nodes
    #[arg(long, value_delimiter = ',')]
    writer_nodes: Vec<usize>,
    /// Nodes the followers connect to, round-robin; default: all nodes
    #[arg(long, value_delimiter = ',')]
    follower_nodes: Vec<usize>,
    /// Clients whose connection drops reconnect to the next node and sync again (as stock
    /// providers do through a load balancer); implied by --kill-node
    #[arg(long)]
    reconnect: bool,
    /// SIGKILL the server of this node (index into --url and --server-pid) during the window
    #[arg(long)]
    kill_node: Option<usize>,
    /// Seconds into the measurement window for --kill-node (default: a third of --duration)
    #[arg(long)]
    kill_at: Option<f64>,
    /// plenary: create the meeting(s) for this scenario, write them to FILE and exit (start the
    /// other nodes afterwards when they do not learn of new meetings while running)
    #[arg(long)]
    prepare_only: Option<String>,
    /// plenary: use the meeting(s) written by --prepare-only instead of creating new ones
    #[arg(long)]
    rooms_file: Option<String>,
    /// Seconds of typing (measurement window)
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Rooms (groups on plenary)
    #[arg(long)]
    rooms: Option<usize>,
    /// Writers per room
    #[arg(long)]
    writers: Option<usize>,
    /// Keystrokes per second per writer
    #[arg(long)]
    hz: Option<f64>,
    /// Followers per room (typing, crowd), participants on the plenary doc (plenary), idle connections (idle)
    #[arg(long)]
    followers: Option<usize>,
    /// Sampled (decoding) followers per follower room
    #[arg(long)]
    sample: Option<usize>,
    /// storm: clients connecting at once (total)
    #[arg(long)]
    clients: Option<usize>,
    /// storm/idle: characters pre-filled into each room
    #[arg(long)]
    prefill: Option<u32>,
    /// Every client sends an awareness state when it joins, as stock providers do
    #[arg(long)]
    join_awareness: bool,
    /// Concurrent connection attempts while setting up followers; 0 (the default): no limit,
    /// every follower connects at once, as an independent generator does (storm never limits)
    #[arg(long, default_value_t = 0)]
    connect_concurrency: usize,
    /// Max seconds to wait after typing stops for sampled followers to catch up
    #[arg(long, default_value_t = 30.0)]
    drain: f64,
    /// Max seconds for the setup (all followers connected and synced)
    #[arg(long, default_value_t = 180.0)]
    setup_timeout: f64,
    /// Append the JSON result line to this file
    #[arg(long)]
    json: Option<String>,
    /// Free-form label copied into the JSON
    #[arg(long, default_value = "")]
    label: String,
    /// Don't print the human-readable table
    #[arg(long)]
    quiet: bool,
    /// Run the non-sampled followers on the light raw client (hand-rolled frames, no
    /// tokio-tungstenite) instead of full tokio-tungstenite clients (the default, as stock
    /// clients behave). Cheaper for the load generator; the earlier BENCHMARKS.md figures used it.
    #[arg(long)]
    lite_followers: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::FreePort => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
        Cmd::Store(a) => store::run(a).await,
        Cmd::Run(a) => {
            let v = match a.scenario {
                Scenario::Typing | Scenario::Crowd | Scenario::Plenary => fanout(&a).await?,
                Scenario::Storm => storm(&a).await?,
                Scenario::Idle => idle(&a).await?,
            };
            emit(&a.json, a.quiet, &v)
        }
    }
}

pub fn emit(json_path: &Option<String>, quiet: bool, v: &Value) -> Result<()> {
    if !quiet {
        print_table(v, "");
    }
    let line = v.to_string();
    println!("JSON {line}");
    if let Some(p) = json_path {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

fn print_table(v: &Value, prefix: &str) {
    if let Value::Object(m) = v {
        for (k, val) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match val {
                Value::Object(_) => print_table(val, &key),
                Value::Array(a) if a.iter().all(|x| !x.is_object()) => println!("  {key:<40} {val}"),
                Value::Array(a) => {
                    for (i, x) in a.iter().enumerate() {
                        print_table(x, &format!("{key}[{i}]"));
                    }
                }
                Value::Number(n) => {
                    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                        println!("  {key:<40} {f:.3}");
                    } else {
                        println!("  {key:<40} {n}");
                    }
                }
                _ => println!("  {key:<40} {val}"),
            }
        }
    }
}

struct Proc {
    /// the first node's server (RSS peak, idle memory)
    pid: Option<String>,
    /// every node's server
    all: Vec<String>,
}

/// The servers' CPU at one instant: their own processes, and their live descendants (plenary's
/// sandbox workers) apart.
struct CpuSample {
    mains: Vec<(String, sys::CpuTimes)>,
    children: Vec<(String, sys::CpuTimes)>,
}

impl CpuSample {
    /// CPU of the servers alive at both samples between them (None: none was).
    fn main_delta(&self, later: &CpuSample) -> Option<sys::CpuTimes> {
        let mut d = None;
        for (pid, t1) in &later.mains {
            if let Some((_, t0)) = self.mains.iter().find(|(p, _)| p == pid) {
                d = Some(d.unwrap_or_default() + (*t1 - *t0));
            }
        }
        d
    }
}

/// Server CPU between two samples, user and system time apart; per delivery when given.
fn cpu_json(a: &CpuSample, b: &CpuSample, deliveries: Option<f64>) -> Value {
    let Some(d) = a.main_delta(b) else {
        return json!({});
    };
    let k = sys::children_delta(&a.children, &b.children);
    let per = |c: f64| deliveries.filter(|n| *n > 0.0).map(|n| round3(c * 1e6 / n));
    json!({
        "cpu_s": round3(d.user + d.sys), "cpu_user_s": round3(d.user), "cpu_sys_s": round3(d.sys),
        "children_cpu_s": round3(k.user + k.sys), "children": b.children.len(),
        "cpu_incl_children_s": round3(d.user + d.sys + k.user + k.sys),
        "cpu_us_per_delivery": per(d.user + d.sys),
        "cpu_user_us_per_delivery": per(d.user), "cpu_sys_us_per_delivery": per(d.sys),
        "cpu_incl_children_us_per_delivery": per(d.user + d.sys + k.user + k.sys),
    })
}

/// Server CPU seconds (process and children) between two samples.
fn cpu_total(a: &CpuSample, b: &CpuSample) -> Option<f64> {
    let d = a.main_delta(b)?;
    let k = sys::children_delta(&a.children, &b.children);
    Some(d.user + d.sys + k.user + k.sys)
}

impl Proc {
    fn of(a: &RunArgs) -> Proc {
        let all: Vec<String> = a.server_pid.iter().map(|p| p.to_string()).collect();
        Proc {
            pid: all.first().cloned(),
            all,
        }
    }
    fn sample(&self) -> CpuSample {
        CpuSample {
            mains: self
                .all
                .iter()
                .filter_map(|p| sys::cpu_times(p).map(|t| (p.clone(), t)))
                .collect(),
            children: self.all.iter().flat_map(|p| sys::children_cpu(p)).collect(),
        }
    }
    /// RSS summed over the live servers.
    fn rss_mb(&self) -> Option<f64> {
        let v: Vec<u64> = self
            .all
            .iter()
            .filter_map(|p| sys::rss_kib(p))
            .map(|x| x.0)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / 1024.0)
    }
    fn hwm_mb(&self) -> Option<f64> {
        let v: Vec<u64> = self
            .all
            .iter()
            .filter_map(|p| sys::rss_kib(p))
            .map(|x| x.1)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / 1024.0)
    }
}

fn env_of(a: &RunArgs) -> Env {
    Env {
        target: a.target,
        base: a.url[0].trim_end_matches('/').to_string(),
        admin_token: a.admin_token.clone(),
    }
}

/// The keys of `b` added to the object `a`.
fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(x), Value::Object(y)) = (&mut a, b) {
        x.extend(y);
    }
    a
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn lat_json(mut v: Vec<u32>) -> Value {
    v.sort_unstable();
    let ms = |q: f64| sys::percentile(&v, q).map(|x| round3(x as f64 / 1000.0));
    json!({
        "samples": v.len(),
        "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99),
        "max": v.last().map(|x| round3(*x as f64 / 1000.0)),
    })
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Spawns a client: non-sampled followers are full tokio-tungstenite clients, or the light raw
/// client with `--lite-followers`.
fn spawn_client(
    cfg: ClientCfg,
    lite_ok: bool,
    phase: watch::Receiver<Phase>,
    sem: Option<Arc<Semaphore>>,
    counters: Arc<Counters>,
) -> JoinHandle<ClientOut> {
    if lite_ok && !cfg.reconnect && !cfg.decode && cfg.writer.is_none() && cfg.expect_len.is_none() {
        let aw = cfg.join_awareness.then_some(cfg.client_id);
        tokio::spawn(lite::run_counting(
            cfg.url,
            cfg.wire,
            aw,
            cfg.t0,
            cfg.connect_timeout,
            phase,
            sem,
            counters,
        ))
    } else {
        tokio::spawn(client::run_client(cfg, phase, sem, counters))
    }
}

struct Spawned {
    room: usize,
    sampled: bool,
    writer: bool,
    h: JoinHandle<ClientOut>,
}

async fn join_all(v: Vec<Spawned>) -> Vec<(usize, bool, bool, ClientOut)> {
    let mut out = Vec::with_capacity(v.len());
    for s in v {
        let o = match tokio::time::timeout(Duration::from_secs(30), s.h).await {
            Ok(Ok(o)) => o,
            _ => ClientOut {
                error: Some("task did not finish".into()),
                ..Default::default()
            },
        };
        out.push((s.room, s.sampled, s.writer, o));
    }
    out
}

fn summarize_errors(outs: &[(usize, bool, bool, ClientOut)]) -> Value {
    let mut m = std::collections::BTreeMap::<String, usize>::new();
    for (_, _, _, o) in outs {
        if let Some(e) = &o.error {
            let key: String = e.chars().take(60).collect();
            *m.entry(key).or_default() += 1;
        } else if o.closed_early {
            *m.entry("closed by server".into()).or_default() += 1;
        }
    }
    json!(m)
}

/// A document followed, and the writers whose keystrokes its sampled followers time.
type FollowerRoom = (Room, Vec<(Progress, Arc<WriterLog>)>);

/// typing / crowd / plenary fan-out.
async fn fanout(a: &RunArgs) -> Result<Value> {
    let env = env_of(a);
    let (def_rooms, def_w, def_hz, def_f, def_s) = match a.scenario {
        Scenario::Typing => (10, 5, 5.0, 100, 2),
        Scenario::Crowd => (2, 2, 5.0, 2500, 10),
        _ => (3, 2, 5.0, 5000, 20),
    };
    let n_rooms = a.rooms.unwrap_or(def_rooms);
    let n_w = a.writers.unwrap_or(def_w);
    let hz = a.hz.unwrap_or(def_hz);
    let n_f = a.followers.unwrap_or(def_f);
    let n_s = a.sample.unwrap_or(def_s).min(n_f);
    let plenary_doc = a.scenario == Scenario::Plenary;
    if plenary_doc && env.target != Target::Plenary {
        bail!("the plenary scenario needs --target plenary (the plenary document is plenary's own)");
    }
    let mut rng = sys::Rng::from_time();
    let tag = format!("lg-{:?}-{}", a.scenario, rng.hex(6)).to_lowercase();
    let rooms = if let Some(f) = &a.rooms_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {f}"))?;
        target::Rooms::from_json(&serde_json::from_str(&text)?)?
    } else if plenary_doc {
        env.plenary_meeting(&tag, n_rooms, true).await?
    } else {
        env.rooms(&tag, n_rooms).await?
    };
    if let Some(f) = &a.prepare_only {
        std::fs::write(f, rooms.to_json().to_string()).with_context(|| format!("write {f}"))?;
        return Ok(json!({"prepared": f, "rooms": rooms.groups.len()}));
    }
    let n_rooms = rooms.groups.len();
    // The nodes: every document's URL on each, and where each client connects.
    let ws_bases: Vec<String> = a.url.iter().map(|u| cluster::ws_base(u)).collect();
    let nodes = ws_bases.len();
    let reconnect = a.reconnect || a.kill_node.is_some();
    if let Some(k) = a.kill_node {
        if k >= nodes || k >= a.server_pid.len() {
            bail!("--kill-node {k} needs a --url and a --server-pid for node {k}");
        }
    }
    let proc_ = Proc::of(a);
    let rss_start = proc_.rss_mb();
    let peak = sys::RssPeak::start(proc_.pid.clone());

    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let counters = Arc::new(Counters::default());
    let timeout = Duration::from_secs(30);
    let t_setup = Instant::now();

    // Writers
    let mut handles = Vec::new();
    let mut logs: Vec<Vec<(u64, Arc<WriterLog>)>> = vec![Vec::new(); n_rooms];
    let mut k_writer = 0;
    for (ri, room) in rooms.groups.iter().enumerate() {
        for _ in 0..n_w {
            let cid = rng.client_id();
            let node = cluster::writer_node(k_writer, &a.writer_nodes, nodes);
            k_writer += 1;
            let log = Arc::new(WriterLog {
                node: node.into(),
                ..Default::default()
            });
            logs[ri].push((cid, log.clone()));
            let urls = cluster::urls_for(&room.write_url, &ws_bases);
            let cfg = ClientCfg {
                url: urls[node].clone(),
                urls,
                node,
                reconnect,
                wire: room.wire.clone(),
                decode: true,
                track: vec![],
                writer: Some(WriterCfg {
                    client_id: cid,
                    log,
                    hz,
                    prefill: 0,
                    seed: rng.next_u64(),
                }),
                join_awareness: a.join_awareness,
                expect_len: None,
                t0: t_setup,
                connect_timeout: timeout,
                client_id: cid,
            };
            let h = tokio::spawn(client::run_client(cfg, phase_rx.clone(), None, counters.clone()));
            handles.push(Spawned {
                room: ri,
                sampled: false,
                writer: true,
                h,
            });
        }
    }
    let n_writers = n_rooms * n_w;
    let c2 = counters.clone();
    if !wait_until(timeout, || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) >= n_writers
    })
    .await
        || counters.failed.load(Ordering::Relaxed) > 0
    {
        let _ = phase_tx.send(Phase::Close);
        let outs = join_all(handles).await;
        bail!("writers failed to connect/sync: {}", summarize_errors(&outs));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Follower rooms: each group room follows its own writers; on the plenary document every writer.
    let follower_rooms: Vec<FollowerRoom> = if plenary_doc {
        let all = logs
            .iter()
            .flatten()
            .map(|(cid, l)| (Progress::Text(client::conclusion_id(*cid)), l.clone()))
            .collect();
        vec![(rooms.plenary.clone().expect("plenary room"), all)]
    } else {
        rooms
            .groups
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    r.clone(),
                    logs[i]
                        .iter()
                        .map(|(cid, l)| (Progress::Clock(*cid), l.clone()))
                        .collect(),
                )
            })
            .collect()
    };
    let sem = (a.connect_concurrency > 0).then(|| Arc::new(Semaphore::new(a.connect_concurrency)));
    let per_room_f = n_f;
    for (fi, (room, track)) in follower_rooms.iter().enumerate() {
        // Sampled followers are spread evenly through the connection order: servers that fan out
        // in connection order would otherwise look faster than they are.
        let stride = if n_s > 0 {
            (per_room_f / n_s).max(1)
        } else {
            usize::MAX
        };
        let room_urls = cluster::urls_for(&room.read_url, &ws_bases);
        for i in 0..per_room_f {
            let sampled = n_s > 0 && i % stride == stride / 2 && i / stride < n_s;
            let node = cluster::follower_node(i, sampled.then_some(i / stride), &a.follower_nodes, nodes);
            let cfg = ClientCfg {
                url: room_urls[node].clone(),
                urls: room_urls.clone(),
                node,
                reconnect,
                wire: room.wire.clone(),
                decode: sampled,
                track: if sampled { track.clone() } else { vec![] },
                writer: None,
                join_awareness: a.join_awareness,
                expect_len: None,
                t0: t_setup,
                connect_timeout: timeout,
                client_id: rng.client_id(),
            };
            let h = spawn_client(
                cfg,
                a.lite_followers,
                phase_rx.clone(),
                sem.clone(),
                counters.clone(),
            );
            handles.push(Spawned {
                room: fi,
                sampled,
                writer: false,
                h,
            });
        }
    }
    let total = handles.len();
    let c2 = counters.clone();
    let all_in = wait_until(Duration::from_secs_f64(a.setup_timeout), || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) >= total
    })
    .await;
    let setup_s = t_setup.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = proc_.rss_mb();

    // Measurement window
    let cpu0 = proc_.sample();
    let self0 = sys::self_cpu();
    let busy0 = sys::machine_busy_seconds();
    let t_run = Instant::now();
    let _ = phase_tx.send(Phase::Run);
    // A node's death: SIGKILL its server (a process the caller started) part-way into the window.
    let killer = a.kill_node.map(|k| {
        let pid = a.server_pid[k].to_string();
        let at = a.kill_at.unwrap_or(a.duration / 3.0);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(at)).await;
            let ok = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            (Instant::now(), ok)
        })
    });
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let _ = phase_tx.send(Phase::Drain);
    let window = t_run.elapsed().as_secs_f64();
    let killed = match killer {
        Some(h) => Some(h.await?),
        None => None,
    };
    let sent_per_room: Vec<u64> = logs
        .iter()
        .map(|l| l.iter().map(|(_, w)| w.sent.load(Ordering::Relaxed)).sum())
        .collect();
    let sends_total: u64 = sent_per_room.iter().sum();
    // expected sampled deliveries
    let sampled_alive: Vec<usize> = follower_rooms.iter().map(|_| n_s).collect();
    let sends_followed: Vec<u64> = if plenary_doc {
        vec![sends_total]
    } else {
        sent_per_room.clone()
    };
    let expected: u64 = sends_followed
        .iter()
        .zip(&sampled_alive)
        .map(|(s, n)| s * *n as u64)
        .sum();
    let c2 = counters.clone();
    let t_drain = Instant::now();
    let drained = wait_until(Duration::from_secs_f64(a.drain), || {
        c2.delivered.load(Ordering::Relaxed) >= expected
            && c2.resynced.load(Ordering::Relaxed) >= c2.dropped.load(Ordering::Relaxed)
    })
    .await;
    let drain_s = t_drain.elapsed().as_secs_f64();
    let cpu1 = proc_.sample();
    let self1 = sys::self_cpu();
    let busy1 = sys::machine_busy_seconds();
    let wall_cpu = t_run.elapsed().as_secs_f64();
    let rss_end = proc_.rss_mb();
    let _ = phase_tx.send(Phase::Close);
    let outs = join_all(handles).await;
    let survivors: Vec<usize> = (0..nodes).filter(|n| Some(*n) != a.kill_node).collect();
    let cluster_v = cluster_figures(
        &outs,
        &follower_rooms,
        &ws_bases,
        &survivors,
        killed.map(|(at, ok)| (at, ok, t_setup, t_run)),
        a,
    )
    .await;

    // Aggregate
    let attempted = outs.len();
    let held = outs.iter().filter(|o| o.3.held()).count();
    let failed = attempted - held;
    let mut lats = Vec::new();
    let mut delivered_by_room = vec![0u64; follower_rooms.len()];
    let mut sampled_ok_by_room = vec![0u64; follower_rooms.len()];
    let mut held_f_by_room = vec![0u64; follower_rooms.len()];
    let (mut f_msgs, mut f_bytes) = (0u64, 0u64);
    let mut denied = 0;
    for (room, sampled, writer, o) in &outs {
        denied += o.denied;
        if *writer {
            continue;
        }
        f_msgs += o.msgs;
        f_bytes += o.bytes;
        if o.held() {
            held_f_by_room[*room] += 1;
        }
        if *sampled {
            delivered_by_room[*room] += o.latencies_us.len() as u64;
            if o.held() {
                sampled_ok_by_room[*room] += 1;
            }
            lats.extend_from_slice(&o.latencies_us);
        }
    }
    let mut deliveries = 0.0;
    for fr in 0..follower_rooms.len() {
        let s = sends_followed[fr] as f64;
        let n = sampled_alive[fr] as f64;
        let frac = if s * n > 0.0 {
            delivered_by_room[fr] as f64 / (s * n)
        } else {
            0.0
        };
        deliveries += s * frac * held_f_by_room[fr] as f64;
    }
    // Convergence: every sampled follower holds each followed writer's final text; in group rooms all
    // sampled followers and the room's writers have equal state vectors.
    let mut rooms_ok = 0;
    let mut why: Vec<String> = Vec::new();
    for (fr, (_, track)) in follower_rooms.iter().enumerate() {
        let writer_ids: Vec<String> = track
            .iter()
            .map(|(p, _)| match p {
                Progress::Clock(c) => client::conclusion_id(*c),
                Progress::Text(s) => s.clone(),
            })
            .collect();
        // each writer's own text, as the writer has it
        let writer_texts: std::collections::BTreeMap<String, String> = outs
            .iter()
            .filter(|o| o.2)
            .filter_map(|o| {
                let id = o.3.own_id.as_ref()?;
                let text = o.3.texts.as_ref()?.get(id)?;
                writer_ids.contains(id).then(|| (id.clone(), text.clone()))
            })
            .collect();
        let samples: Vec<&ClientOut> = outs
            .iter()
            .filter(|o| o.1 && o.0 == fr && !o.2)
            .map(|o| &o.3)
            .collect();
        let mut ok = !samples.is_empty() && writer_texts.len() == writer_ids.len();
        if !ok && why.len() < 5 {
            why.push(format!(
                "room {fr}: {} samples, {} of {} writer texts",
                samples.len(),
                writer_texts.len(),
                writer_ids.len()
            ));
        }
        for s in &samples {
            let Some(t) = &s.texts else {
                ok = false;
                continue;
            };
            for id in &writer_ids {
                if t.get(id) != writer_texts.get(id) {
                    if ok && why.len() < 5 {
                        why.push(format!(
                            "room {fr}: follower text of {id} differs: {:?} vs writer {:?}",
                            t.get(id).map(|x| x.len()),
                            writer_texts.get(id).map(|x| x.len())
                        ));
                    }
                    ok = false;
                }
            }
        }
        if !plenary_doc {
            // all sampled followers of the room hold the same state (writers may still have the
            // last keystrokes of the others in flight when they stop, so they are compared by text)
            let svs: Vec<&Vec<(u64, u64)>> = samples.iter().filter_map(|s| s.sv.as_ref()).collect();
            if svs.windows(2).any(|w| w[0] != w[1]) {
                if ok && why.len() < 5 {
                    why.push(format!(
                        "room {fr}: state vectors differ: {:?}",
                        svs.iter()
                            .map(|v| v.iter().map(|x| x.1).sum::<u64>())
                            .collect::<Vec<_>>()
                    ));
                }
                ok = false;
            }
        }
        if ok {
            rooms_ok += 1;
        }
    }
    let server_cpu = cpu_total(&cpu0, &cpu1);
    let cpu = cpu_json(&cpu0, &cpu1, Some(deliveries));
    let lg_cpu = self1 - self0;
    let per_delivery = |c: f64| {
        if deliveries > 0.0 {
            Some(round3(c * 1e6 / deliveries))
        } else {
            None
        }
    };
    Ok(json!({
        "scenario": format!("{:?}", a.scenario).to_lowercase(),
        "target": env.target.name(),
        "label": a.label,
        "params": {"rooms": n_rooms, "writers_per_room": n_w, "hz": hz, "followers_per_room": n_f,
                   "sampled_per_room": n_s, "duration_s": a.duration, "join_awareness": a.join_awareness,
                   "follows": if plenary_doc { "plenary document" } else { "group document" }},
        "connections": {"attempted": attempted, "held": held, "failed": failed, "all_synced": all_in,
                        "setup_s": round3(setup_s), "errors": summarize_errors(&outs), "permission_denied": denied},
        "latency_ms": lat_json(lats),
        "sends": sends_total,
        "expected_sampled_deliveries": expected,
        "undelivered_sampled": expected.saturating_sub(counters.delivered.load(Ordering::Relaxed)),
        "drained": drained, "drain_s": round3(drain_s),
        "deliveries": deliveries.round(),
        "deliveries_per_s": round3(deliveries / window),
        "follower_msgs": f_msgs, "follower_bytes": f_bytes,
        "convergence": {"ok": rooms_ok == follower_rooms.len(), "rooms_ok": rooms_ok, "rooms": follower_rooms.len(), "why": why},
        "server": merge(json!({"rss_start_mb": rss_start.map(round3), "rss_connected_mb": rss_connected.map(round3),
                   "rss_peak_mb": round3(peak.peak_kib() as f64 / 1024.0), "rss_hwm_mb": proc_.hwm_mb().map(round3),
                   "rss_end_mb": rss_end.map(round3)}), cpu),
        "loadgen": {"cpu_s": round3(lg_cpu), "cpu_us_per_delivery": per_delivery(lg_cpu)},
        "machine": other_load(busy1 - busy0, server_cpu, lg_cpu, wall_cpu),
        "nodes": nodes,
        "hop": cluster_v["hop"],
        "failover": cluster_v["failover"],
        "lost_updates": cluster_v["lost_updates"],
        "lost_check": cluster_v["lost_check"],
    }))
}

/// What a run over several nodes adds: latency of same-node and cross-node pairs (the hop's
/// added latency), the node's death (when one was killed), and updates lost: every writer's
/// text against fresh probes of each followed document on every surviving node.
async fn cluster_figures(
    outs: &[(usize, bool, bool, ClientOut)],
    follower_rooms: &[FollowerRoom],
    ws_bases: &[String],
    survivors: &[usize],
    killed: Option<(Instant, bool, Instant, Instant)>,
    a: &RunArgs,
) -> Value {
    let samples: Vec<cluster::Sample> = outs
        .iter()
        .filter(|o| o.1 && !o.2)
        .flat_map(|o| {
            let c = &o.3;
            c.latencies_us
                .iter()
                .zip(&c.lat_sent_ms)
                .zip(&c.lat_remote)
                .map(|((l, s), r)| cluster::Sample {
                    lat_us: *l,
                    sent_ms: *s,
                    remote: *r,
                })
        })
        .collect();
    let (mut local, mut remote) = cluster::split_hop(&samples);
    local.sort_unstable();
    remote.sort_unstable();
    let hop = json!({
        "local_ms": lat_json(local.clone()), "remote_ms": lat_json(remote.clone()),
        "added_ms": {"p50": cluster::added_ms(&local, &remote, 0.5), "p99": cluster::added_ms(&local, &remote, 0.99)},
    });
    let failover = killed.map(|(at, ok, t0, t_run)| {
        let dropped: Vec<&ClientOut> = outs.iter().map(|o| &o.3).filter(|c| c.dropped > 0).collect();
        let back: Vec<&&ClientOut> = dropped.iter().filter(|c| c.back_at.is_some() && c.held()).collect();
        let mut back_ms: Vec<u32> = back
            .iter()
            .filter_map(|c| c.back_at)
            .map(|b| b.saturating_duration_since(at).as_millis().min(u32::MAX as u128) as u32)
            .collect();
        back_ms.sort_unstable();
        let all_back_ms = back_ms.last().copied();
        let kill_ms = at.saturating_duration_since(t0).as_millis() as u32;
        // the storm: from the kill until every client is back (at least one second)
        let storm_end = kill_ms + all_back_ms.unwrap_or(0).max(1000);
        json!({
            "node": a.kill_node, "signal_sent": ok,
            "kill_at_s": round3(at.saturating_duration_since(t_run).as_secs_f64()),
            "clients_dropped": dropped.len(), "connections_dropped": dropped.iter().map(|c| c.dropped as u64).sum::<u64>(),
            "clients_back": back.len(), "all_back": back.len() == dropped.len(),
            "back_ms": {"p50": sys::percentile(&back_ms, 0.5), "p99": sys::percentile(&back_ms, 0.99), "all": all_back_ms},
            "latency_before_ms": lat_json(cluster::sent_between(&samples, 0, kill_ms)),
            "latency_storm_ms": lat_json(cluster::sent_between(&samples, kill_ms, storm_end)),
            "latency_after_ms": lat_json(cluster::sent_between(&samples, storm_end, u32::MAX)),
        })
    });
    // Writers' own texts (characters typed), then a fresh probe per followed document and node.
    let writers: std::collections::BTreeMap<String, u32> = outs
        .iter()
        .filter(|o| o.2)
        .filter_map(|o| {
            let id = o.3.own_id.as_ref()?;
            let t = o.3.texts.as_ref()?.get(id)?;
            Some((id.clone(), t.chars().count() as u32))
        })
        .collect();
    let mut probes = Vec::new();
    let mut probe_errors = Vec::new();
    for (room, _) in follower_rooms {
        let urls = cluster::urls_for(&room.read_url, ws_bases);
        for &n in survivors {
            match probe_texts(&urls[n], &room.wire).await {
                Ok(t) => probes.push(t),
                Err(e) => probe_errors.push(format!("node {n} {}: {e}", room.name)),
            }
        }
    }
    // In group rooms a probe sees only its room's writers: compare each writer with the probes
    // of its own room only.
    let mut lost = 0u64;
    let per_room = survivors.len();
    for (fi, (_, track)) in follower_rooms.iter().enumerate() {
        let ids: Vec<String> = track
            .iter()
            .map(|(p, _)| match p {
                Progress::Clock(c) => client::conclusion_id(*c),
                Progress::Text(s) => s.clone(),
            })
            .collect();
        let w: std::collections::BTreeMap<String, u32> = writers
            .iter()
            .filter(|(k, _)| ids.contains(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let room_probes: Vec<_> = probes
            .iter()
            .skip(fi * per_room)
            .take(per_room)
            .cloned()
            .collect();
        lost += cluster::lost_updates(&w, &room_probes);
    }
    let checked = probe_errors.is_empty() && writers.len() == outs.iter().filter(|o| o.2).count();
    json!({
        "hop": hop,
        "failover": failover,
        "lost_updates": if checked { Some(lost) } else { None },
        "lost_check": {"writers": writers.len(), "probes": probes.len(), "nodes_probed": survivors, "errors": probe_errors,
                       "characters_typed": writers.values().map(|v| *v as u64).sum::<u64>()},
    })
}

/// CPU used on the machine by processes other than the server and the load generator during the
/// window: a noisy neighbour shows up here.
fn other_load(busy: f64, server: Option<f64>, lg: f64, wall: f64) -> Value {
    let other = busy - server.unwrap_or(0.0) - lg;
    json!({"busy_cpu_s": round3(busy), "other_cpu_s": round3(other.max(0.0)),
           "other_cores": round3((other / wall.max(1e-9)).max(0.0)), "window_s": round3(wall)})
}

/// Connects one decoding client, syncs, returns the total conclusion text length.
async fn probe_len(room: &Room) -> Result<u32> {
    Ok(probe_texts(&room.read_url, &room.wire).await?.values().sum())
}

/// Connects one decoding client to `url`, syncs, returns every conclusion's text length (chars).
async fn probe_texts(url: &str, wire: &proto::Wire) -> Result<std::collections::BTreeMap<String, u32>> {
    let (tx, rx) = watch::channel(Phase::Setup);
    let counters = Arc::new(Counters::default());
    let cfg = ClientCfg {
        url: url.to_string(),
        wire: wire.clone(),
        decode: true,
        track: vec![],
        writer: None,
        join_awareness: false,
        expect_len: None,
        t0: Instant::now(),
        connect_timeout: Duration::from_secs(10),
        client_id: sys::Rng::from_time().client_id(),
        urls: vec![],
        node: 0,
        reconnect: false,
    };
    let h = tokio::spawn(client::run_client(cfg, rx, None, counters.clone()));
    let c2 = counters.clone();
    wait_until(Duration::from_secs(10), || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tx.send(Phase::Close);
    let o = h.await?;
    if let Some(e) = o.error {
        bail!("probe: {e}");
    }
    if o.synced_after.is_none() {
        bail!("probe did not sync");
    }
    Ok(o.texts
        .unwrap_or_default()
        .into_iter()
        .map(|(k, s)| (k, s.chars().count() as u32))
        .collect())
}

/// Pre-fills every room with one writer typing `k` characters; the writers stay connected (idle).
async fn prefill_rooms(
    rooms: &[Room],
    k: u32,
    phase_rx: &watch::Receiver<Phase>,
    rng: &mut sys::Rng,
) -> Result<Vec<JoinHandle<ClientOut>>> {
    let counters = Arc::new(Counters::default());
    let sem = Arc::new(Semaphore::new(64));
    let mut hs = Vec::new();
    for room in rooms {
        let cid = rng.client_id();
        let cfg = ClientCfg {
            url: room.write_url.clone(),
            wire: room.wire.clone(),
            decode: true,
            track: vec![],
            writer: Some(WriterCfg {
                client_id: cid,
                log: Arc::new(WriterLog::default()),
                hz: 0.0,
                prefill: k,
                seed: cid,
            }),
            join_awareness: false,
            expect_len: None,
            t0: Instant::now(),
            connect_timeout: Duration::from_secs(30),
            client_id: cid,
            urls: vec![],
            node: 0,
            reconnect: false,
        };
        hs.push(tokio::spawn(client::run_client(
            cfg,
            phase_rx.clone(),
            Some(sem.clone()),
            counters.clone(),
        )));
    }
    let n = rooms.len();
    let c2 = counters.clone();
    wait_until(Duration::from_secs(120), || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) >= n
    })
    .await;
    if counters.failed.load(Ordering::Relaxed) > 0 {
        bail!(
            "{} pre-fill writers failed to connect",
            counters.failed.load(Ordering::Relaxed)
        );
    }
    // Wait until the server holds the content (checked on a sample of rooms with a fresh client).
    let step = (rooms.len() / 10).max(1);
    for room in rooms.iter().step_by(step) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let len = probe_len(room).await.unwrap_or(0);
            if len >= k {
                break;
            }
            if Instant::now() > end {
                bail!(
                    "room {} holds {len} of {k} pre-filled characters after 60 s",
                    room.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(hs)
}

async fn storm(a: &RunArgs) -> Result<Value> {
    let env = env_of(a);
    let n_rooms = a.rooms.unwrap_or(10);
    let n = a.clients.or(a.followers).unwrap_or(5000);
    let k = a.prefill.unwrap_or(5000);
    let n_s = a.sample.unwrap_or(5);
    let mut rng = sys::Rng::from_time();
    let tag = format!("lg-storm-{}", rng.hex(6));
    let rooms = env.rooms(&tag, n_rooms).await?.groups;
    let proc_ = Proc::of(a);
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let t_prefill = Instant::now();
    let prefill = prefill_rooms(&rooms, k, &phase_rx, &mut rng).await?;
    let prefill_s = t_prefill.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = proc_.rss_mb();
    let peak = sys::RssPeak::start(proc_.pid.clone());
    let counters = Arc::new(Counters::default());
    let cpu0 = proc_.sample();
    let self0 = sys::self_cpu();
    let busy0 = sys::machine_busy_seconds();
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let ri = i % n_rooms;
        let per_room = n / n_rooms;
        let stride = if n_s > 0 {
            (per_room / n_s).max(1)
        } else {
            usize::MAX
        };
        let j = i / n_rooms;
        let sampled = n_s > 0 && j % stride == stride / 2 && j / stride < n_s;
        let room = &rooms[ri];
        let cfg = ClientCfg {
            url: room.read_url.clone(),
            wire: room.wire.clone(),
            decode: sampled,
            track: vec![],
            writer: None,
            join_awareness: a.join_awareness,
            expect_len: if sampled { Some(k) } else { None },
            t0,
            connect_timeout: Duration::from_secs_f64(a.setup_timeout.min(120.0)),
            client_id: rng.client_id(),
            urls: vec![],
            node: 0,
            reconnect: false,
        };
        let h = spawn_client(cfg, a.lite_followers, phase_rx.clone(), None, counters.clone());
        handles.push(Spawned {
            room: ri,
            sampled,
            writer: false,
            h,
        });
    }
    let c2 = counters.clone();
    let all = wait_until(Duration::from_secs_f64(a.setup_timeout.min(150.0)), || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) >= n
    })
    .await;
    let wall = t0.elapsed().as_secs_f64();
    // A little longer so the server's CPU for the storm (and awareness fan-out) is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu1 = proc_.sample();
    let self1 = sys::self_cpu();
    let busy1 = sys::machine_busy_seconds();
    let wall_cpu = t0.elapsed().as_secs_f64();
    let rss_after = proc_.rss_mb();
    let _ = phase_tx.send(Phase::Close);
    let outs = join_all(handles).await;
    for h in prefill {
        let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
    }
    let mut sync_us: Vec<u32> = outs
        .iter()
        .filter_map(|o| o.3.synced_after)
        .map(|d| d.as_micros().min(u32::MAX as u128) as u32)
        .collect();
    sync_us.sort_unstable();
    let conn_sync_us: Vec<u32> = outs
        .iter()
        .filter_map(|o| o.3.conn_sync)
        .map(|d| d.as_micros().min(u32::MAX as u128) as u32)
        .collect();
    let held = outs.iter().filter(|o| o.3.held()).count();
    let synced = sync_us.len();
    let content_checked = outs.iter().filter(|o| o.3.content_ok.is_some()).count();
    let content_ok = outs.iter().filter(|o| o.3.content_ok == Some(true)).count();
    let all_synced_s = if synced == n {
        sync_us.last().map(|x| round3(*x as f64 / 1e6))
    } else {
        None
    };
    Ok(json!({
        "scenario": "storm",
        "target": env.target.name(),
        "label": a.label,
        "params": {"rooms": n_rooms, "clients": n, "prefill_chars": k, "sampled_per_room": n_s, "join_awareness": a.join_awareness},
        "prefill_s": round3(prefill_s),
        "connections": {"attempted": n, "synced": synced, "held": held, "failed": n - synced, "errors": summarize_errors(&outs)},
        "all_synced": all,
        "all_synced_s": all_synced_s,
        "wall_s": round3(wall),
        "sync_ms": lat_json(sync_us),
        "conn_sync_ms": lat_json(conn_sync_us),
        "content": {"checked": content_checked, "ok": content_ok},
        "server": merge(json!({"rss_before_mb": rss_before.map(round3), "rss_after_mb": rss_after.map(round3),
                   "rss_peak_mb": round3(peak.peak_kib() as f64 / 1024.0)}),
                   cpu_json(&cpu0, &cpu1, None)),
        "loadgen": {"cpu_s": round3(self1 - self0)},
        "machine": other_load(busy1 - busy0, cpu_total(&cpu0, &cpu1), self1 - self0, wall_cpu),
    }))
}

async fn idle(a: &RunArgs) -> Result<Value> {
    let env = env_of(a);
    let n_rooms = a.rooms.unwrap_or(200);
    let k = a.prefill.unwrap_or(200);
    let n_conn = a.followers.or(a.clients).unwrap_or(2000);
    let mut rng = sys::Rng::from_time();
    let tag = format!("lg-idle-{}", rng.hex(6));
    let proc_ = Proc::of(a);
    if proc_.pid.is_none() {
        bail!("idle needs --server-pid");
    }
    let rss0 = proc_.rss_mb().unwrap_or(0.0);
    let rooms = env.rooms(&tag, n_rooms).await?.groups;
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let prefill = prefill_rooms(&rooms, k, &phase_rx, &mut rng).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss1 = proc_.rss_mb().unwrap_or(0.0);
    let counters = Arc::new(Counters::default());
    let sem = (a.connect_concurrency > 0).then(|| Arc::new(Semaphore::new(a.connect_concurrency)));
    let spread = n_rooms.min(10);
    let mut hs = Vec::new();
    for i in 0..n_conn {
        let room = &rooms[i % spread];
        let cfg = ClientCfg {
            url: room.read_url.clone(),
            wire: room.wire.clone(),
            decode: false,
            track: vec![],
            writer: None,
            join_awareness: a.join_awareness,
            expect_len: None,
            t0: Instant::now(),
            connect_timeout: Duration::from_secs(30),
            client_id: rng.client_id(),
            urls: vec![],
            node: 0,
            reconnect: false,
        };
        hs.push(Spawned {
            room: 0,
            sampled: false,
            writer: false,
            h: spawn_client(
                cfg,
                a.lite_followers,
                phase_rx.clone(),
                sem.clone(),
                counters.clone(),
            ),
        });
    }
    let c2 = counters.clone();
    wait_until(Duration::from_secs_f64(a.setup_timeout), || {
        c2.synced.load(Ordering::Relaxed) + c2.failed.load(Ordering::Relaxed) >= n_conn
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss2 = proc_.rss_mb().unwrap_or(0.0);
    let _ = phase_tx.send(Phase::Close);
    let outs = join_all(hs).await;
    for h in prefill {
        let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
    }
    let held = outs.iter().filter(|o| o.3.held()).count();
    Ok(json!({
        "scenario": "idle",
        "target": env.target.name(),
        "label": a.label,
        "params": {"rooms": n_rooms, "prefill_chars": k, "idle_connections": n_conn, "join_awareness": a.join_awareness},
        "connections": {"attempted": n_conn, "held": held, "failed": n_conn - held, "errors": summarize_errors(&outs)},
        "server": {"rss_start_mb": round3(rss0), "rss_rooms_loaded_mb": round3(rss1), "rss_connections_mb": round3(rss2)},
        "kib_per_idle_room": round3((rss1 - rss0) * 1024.0 / n_rooms as f64),
        "kib_per_idle_connection": if held > 0 { Some(round3((rss2 - rss1) * 1024.0 / held as f64)) } else { None },
    }))
}
