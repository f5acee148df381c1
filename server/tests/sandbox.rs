//! The apply sandbox end to end: a child that aborts, segfaults or hangs costs one update and
//! one child restart, never the server; partial applies and bad snapshots are never stored;
//! a stored document that does not load is quarantined and `plenary doctor` repairs it; the
//! moderator guard looks at what an update touched; a bounded fuzz of the apply path.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use plenary_protocol::layout::{conclusion as ck, plenary as pk, CONCLUSIONS};
use plenary_protocol::message::{encode_sync_step1, encode_update};
use plenary_server::config::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{
    Array, Doc, In, Map, MapPrelim, Out, StateVector, Text, TextPrelim, Transact, Update, WriteTxn,
    XmlFragment,
};

fn db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("plenary.db")).unwrap()
}

fn logged(dir: &std::path::Path, doc: &str) -> i64 {
    db(dir)
        .query_row("SELECT COUNT(*) FROM doc_updates WHERE doc = ?1", [doc], |r| {
            r.get(0)
        })
        .unwrap()
}

fn snapshots(dir: &std::path::Path, doc: &str) -> i64 {
    db(dir)
        .query_row("SELECT COUNT(*) FROM doc_snapshots WHERE doc = ?1", [doc], |r| {
            r.get(0)
        })
        .unwrap()
}

async fn wait_closed(p: &Peer, what: &str) -> u16 {
    wait_until(what, || async { p.close_code().is_some() }).await;
    p.close_code().unwrap_or(0)
}

/// Appends to a text `t` and waits for the saved ack that covers it.
async fn saved_edit(p: &Peer, s: &str) {
    p.edit(|t| {
        let text = t.get_or_insert_text("t");
        let len = text.len(t);
        text.insert(t, len, s);
    });
    let sv = p.sv();
    wait_until("saved ack", || async {
        p.got()
            .acks
            .iter()
            .any(|a| sv.iter().all(|(c, k)| a.get(c) >= *k))
    })
    .await;
}

fn text_update(client: u64, s: &str) -> Vec<u8> {
    let d = Doc::with_client_id(client);
    let mut txn = d.transact_mut();
    txn.get_or_insert_text("t").insert(&mut txn, 0, s);
    txn.encode_update_v1()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_aborts_segfaults_or_hangs_costs_one_update_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().into(), ADMIN);
    cfg.sandbox_test_crash = true;
    cfg.sandbox_deadline_ms = 500;
    cfg.sandbox_workers = 1;
    let s = Server::start_with(cfg).await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let rap1 = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let rap2 = tok(&m, &["rapporteurs", "g2"]).to_owned();
    let other = Peer::connect(s.addr, "m1/g2", &rap2, "&ack=1").await.unwrap();
    let follower = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    // both rooms loaded (through the child) before it is crashed
    other.synced().await;
    follower.synced().await;
    let mut restarts = 0;
    for (i, marker) in ["PLENARY-TEST-ABORT", "PLENARY-TEST-SEGV", "PLENARY-TEST-LOOP"]
        .iter()
        .enumerate()
    {
        let bad = Peer::connect(s.addr, "m1/g1", &rap1, "").await.unwrap();
        let started = std::time::Instant::now();
        bad.send_raw(encode_update(&text_update(100 + i as u64, marker)));
        assert_eq!(wait_closed(&bad, "bad writer closed").await, 1002, "{marker}");
        // the deadline (500 ms) plus the child's restart, not the harness's 15 s
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{marker}: {:?}",
            started.elapsed()
        );
        wait_until("child restart counted", || async {
            s.metric("plenary_sandbox_restarts_total").await > restarts
        })
        .await;
        restarts = s.metric("plenary_sandbox_restarts_total").await;
        // the server, the same room and another room carry on
        assert_eq!(s.http().get_status("/healthz").await, 200);
        saved_edit(&other, &format!("{i};")).await;
        let good = Peer::connect(s.addr, "m1/g1", &rap1, "&ack=1").await.unwrap();
        saved_edit(&good, &format!("ok{i};")).await;
        wait_until("follower got the good edit", || async {
            follower.text("t").contains(&format!("ok{i};"))
        })
        .await;
        assert!(!follower.text("t").contains("PLENARY-TEST"));
        assert!(follower.close_code().is_none());
    }
    assert!(restarts >= 3);
    s.stop().await;
    let text: String = {
        let s = Server::start(dir.path().into()).await;
        let p = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
            .await
            .unwrap();
        wait_until("reloaded", || async { p.text("t").contains("ok2;") }).await;
        let t = p.text("t");
        s.stop().await;
        t
    };
    assert!(!text.contains("PLENARY-TEST"), "{text}");
}

/// Two updates from the same client id that disagree about what clock 0 is: the second's
/// map entry names a string item as its parent, which yrs refuses part-way.
fn conflicting_pair() -> (Vec<u8>, Vec<u8>) {
    let a = Doc::with_client_id(7);
    let first = {
        let mut txn = a.transact_mut();
        txn.get_or_insert_array("arr").insert(&mut txn, 0, "a string");
        txn.encode_update_v1()
    };
    let b = Doc::with_client_id(7);
    let second = {
        let mut txn = b.transact_mut();
        let map = txn
            .get_or_insert_array("arr")
            .insert(&mut txn, 0, MapPrelim::default());
        map.insert(&mut txn, "k", "v");
        txn.encode_update_v1()
    };
    // and a valid half from another client in the same update
    let c = Doc::with_client_id(8);
    let valid = {
        let mut txn = c.transact_mut();
        txn.get_or_insert_text("t").insert(&mut txn, 0, "half");
        txn.encode_update_v1()
    };
    let merged = yrs::merge_updates_v1([valid.as_slice(), second.as_slice()]).unwrap();
    (first, merged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_apply_is_rejected_whole_and_nothing_of_it_is_stored() {
    let (first, bad) = conflicting_pair();
    // precondition: yrs really fails this one part-way
    let d = Doc::new();
    d.transact_mut()
        .apply_update(Update::decode_v1(&first).unwrap())
        .unwrap();
    assert!(d
        .transact_mut()
        .apply_update(Update::decode_v1(&bad).unwrap())
        .is_err());

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let w = Peer::connect(s.addr, "m1/g1", &rap, "&ack=1").await.unwrap();
    w.send_raw(encode_update(&first));
    wait_until("first saved", || async { !w.got().acks.is_empty() }).await;
    let before = logged(dir.path(), "m1/g1");
    assert_eq!(before, 1);
    let follower = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    w.send_raw(encode_update(&bad));
    assert_eq!(wait_closed(&w, "partial writer closed").await, 1002);
    // a later good write goes through, and the bad one's valid half never appears
    let w2 = Peer::connect(s.addr, "m1/g1", &rap, "&ack=1").await.unwrap();
    w2.send_raw(encode_update(&text_update(9, "after")));
    wait_until("follower has the good write", || async {
        follower.text("t") == "after"
    })
    .await;
    assert_eq!(logged(dir.path(), "m1/g1"), before + 1);
    s.stop().await;
    let s = Server::start(dir.path().into()).await;
    let p = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    wait_until("reloaded", || async { p.text("t") == "after" }).await;
    assert!(p.close_code().is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_does_not_round_trip_is_refused_and_the_log_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().into(), ADMIN);
    cfg.compact_after = 5;
    cfg.test_corrupt_snapshots = true;
    let s = Server::start_with(cfg).await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let w = Peer::connect(s.addr, "m1/g1", &rap, "&ack=1").await.unwrap();
    for i in 0..8 {
        saved_edit(&w, &format!("{i};")).await;
    }
    s.stop().await;
    assert_eq!(snapshots(dir.path(), "m1/g1"), 0);
    assert_eq!(logged(dir.path(), "m1/g1"), 8);
    // an honest snapshot is taken (the check does not refuse everything)
    let mut cfg = Config::for_tests(dir.path().into(), ADMIN);
    cfg.compact_after = 5;
    let s = Server::start_with(cfg).await;
    let w = Peer::connect(s.addr, "m1/g1", &rap, "&ack=1").await.unwrap();
    wait_until("synced", || async { w.text("t") == "0;1;2;3;4;5;6;7;" }).await;
    for i in 8..14 {
        saved_edit(&w, &format!("{i};")).await;
    }
    s.stop().await;
    assert_eq!(snapshots(dir.path(), "m1/g1"), 1);
    assert!(logged(dir.path(), "m1/g1") < 5);
}

/// Opens a raw socket and returns the close frame's code and reason.
async fn close_of(addr: std::net::SocketAddr, room: &str, token: &str) -> (u16, String) {
    let url = format!("ws://{addr}/ws/{room}?token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(WsMessage::Binary(
        encode_sync_step1(&StateVector::default()).into(),
    ))
    .await
    .unwrap();
    let r = tokio::time::timeout(DEADLINE, async {
        while let Some(m) = ws.next().await {
            if let Ok(WsMessage::Close(Some(f))) = m {
                return (close_code_u16(f.code), f.reason.to_string());
            }
        }
        (1006, String::new())
    })
    .await;
    r.expect("a close frame")
}

fn doctor(dir: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plenary"))
        .arg("doctor")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_does_not_load_is_quarantined_and_doctor_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let rap1 = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let part = tok(&m, &["participant"]).to_owned();
    let w1 = Peer::connect(s.addr, "m1/g1", &rap1, "&ack=1").await.unwrap();
    saved_edit(&w1, "one;").await;
    saved_edit(&w1, "two;").await;
    let w2 = Peer::connect(s.addr, "m1/g2", tok(&m, &["rapporteurs", "g2"]), "")
        .await
        .unwrap();
    add_conclusion(&w2, "c1", "from g2");
    let pl = Peer::connect(s.addr, "m1/plenary", &part, "").await.unwrap();
    wait_until("plenary shows g2", || async {
        pl.json()["groups"][1]["conclusions"][0]["text"] == "from g2"
    })
    .await;
    s.stop().await;
    // an undecodable update, then one more valid-looking one, straight into the log
    let later = text_update(55, "lost;");
    // (numbered after the document's head, as the store numbers its updates)
    let conn = db(dir.path());
    for (n, data) in [(1, vec![0xffu8, 0xff, 0xff, 0xff, 0x0f]), (2, later)] {
        conn.execute(
            "INSERT INTO doc_updates (doc, seq, data)
             SELECT 'm1/g1', seq + ?1, ?2 FROM doc_heads WHERE doc = 'm1/g1'",
            rusqlite::params![n, data],
        )
        .unwrap();
    }
    conn.execute("UPDATE doc_heads SET seq = seq + 2 WHERE doc = 'm1/g1'", [])
        .unwrap();
    let s = Server::start(dir.path().into()).await;
    assert_eq!(
        close_of(s.addr, "m1/g1", &rap1).await,
        (1011, "document quarantined".to_string())
    );
    let pl = Peer::connect(s.addr, "m1/plenary", &part, "").await.unwrap();
    wait_until("plenary still loads and shows g2", || async {
        pl.json()["groups"][1]["conclusions"][0]["text"] == "from g2"
    })
    .await;
    // another group's room is not affected
    let w2 = Peer::connect(s.addr, "m1/g2", &part, "").await.unwrap();
    wait_until("g2 loads", || async { w2.got().updates > 0 }).await;
    assert!(w2.close_code().is_none());
    s.stop().await;

    let (ok, out) = doctor(dir.path(), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("m1/g1: does not load"), "{out}");
    assert!(!out.contains("m1/g2: does not load"), "{out}");
    let (ok, out) = doctor(dir.path(), &["--doc", "m1/g1", "--repair"]);
    assert!(ok, "{out}");
    assert!(out.contains("kept 2 of 4 logged updates, dropped 2"), "{out}");
    let (ok, out) = doctor(dir.path(), &[]);
    assert!(ok, "{out}");
    assert_eq!(logged(dir.path(), "m1/g1"), 0);
    assert_eq!(snapshots(dir.path(), "m1/g1"), 1);

    let s = Server::start(dir.path().into()).await;
    let p = Peer::connect(s.addr, "m1/g1", &rap1, "").await.unwrap();
    wait_until("repaired group loads with its edits", || async {
        p.text("t") == "one;two;"
    })
    .await;
    assert!(p.close_code().is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_rewrites_of_server_parts_that_look_identical_and_passes_curation() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let w = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    add_conclusion(&w, "c1", "text");
    let follower = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    let moderator = Peer::connect(s.addr, "m1/plenary", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("moderator synced", || async {
        moderator.json()["groups"][0]["conclusions"][0]["text"] == "text"
    })
    .await;
    let before = follower.json();
    // a group section deleted and reinserted with the same JSON
    moderator.edit(|t| {
        let groups = t.get_or_insert_array(pk::GROUPS);
        let Some(Out::YMap(section)) = groups.get(t, 0) else {
            panic!("no section")
        };
        let json = section.to_json(t);
        groups.remove(t, 0);
        let yrs::Any::Map(fields) = json else {
            panic!("not a map")
        };
        let copy = groups.insert(t, 0, MapPrelim::default());
        for (k, v) in fields.iter() {
            copy.insert(t, k.as_str(), v.clone());
        }
    });
    wait_until("section rewrite refused", || async {
        moderator.got().auth_denials.len() == 1
    })
    .await;
    // the meta title set again to the same value
    let m2 = Peer::connect(s.addr, "m1/plenary", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("m2 synced", || async { m2.json()["meta"]["title"].is_string() }).await;
    m2.edit(|t| {
        let meta = t.get_or_insert_map(pk::META);
        let title = m2_title(t, &meta);
        meta.insert(t, "title", title);
    });
    wait_until("title rewrite refused", || async {
        m2.got().auth_denials.len() == 1
    })
    .await;
    // curation passes, and the follower never saw the refused edits
    let m3 = Peer::connect(s.addr, "m1/plenary", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("m3 synced", || async {
        m3.json()["curation"]["hidden"].is_object()
    })
    .await;
    m3.edit(|t| {
        let cur = t.get_or_insert_map(pk::CURATION);
        if let Some(Out::YMap(h)) = cur.get(t, pk::HIDDEN) {
            h.insert(t, "g1/c1", true);
        }
        if let Some(Out::YText(intro)) = cur.get(t, pk::INTRO) {
            intro.insert(t, 0, "Welcome");
        }
    });
    wait_until("curation relayed", || async {
        follower.json()["curation"]["hidden"]["g1/c1"] == true
    })
    .await;
    assert!(m3.got().auth_denials.is_empty());
    let after = follower.json();
    assert_eq!(before["groups"], after["groups"]);
    assert_eq!(before["meta"], after["meta"]);
    s.stop().await;
}

fn m2_title(t: &yrs::TransactionMut, meta: &yrs::MapRef) -> String {
    match meta.get(t, "title") {
        Some(Out::Any(yrs::Any::String(s))) => s.to_string(),
        _ => String::new(),
    }
}

/// Valid updates of every kind a client makes, built with yrs from a seeded RNG.
fn valid_updates(rng: &mut impl rand::Rng, n: usize) -> Vec<Vec<u8>> {
    // Every history uses the same client id: two histories then disagree about what each
    // clock is (the class of input behind yrs's aborts and dangling pointers).
    let d = Doc::with_client_id(1000);
    let mut out = Vec::new();
    for i in 0..n {
        let mut txn = d.transact_mut();
        match rng.gen_range(0..5) {
            0 => {
                let t = txn.get_or_insert_text("t");
                let len = t.len(&txn);
                t.insert(&mut txn, rng.gen_range(0..=len), "abc");
            }
            1 => {
                let t = txn.get_or_insert_text("t");
                let len = t.len(&txn);
                if len > 2 {
                    t.remove_range(&mut txn, rng.gen_range(0..len - 1), 1);
                }
            }
            2 => {
                let arr = txn.get_or_insert_array(CONCLUSIONS);
                arr.push_back(
                    &mut txn,
                    MapPrelim::from([
                        (ck::ID, In::from(format!("c{i}"))),
                        (ck::TEXT, In::from(TextPrelim::new("x"))),
                        (ck::STATUS, In::from("draft")),
                    ]),
                );
            }
            3 => {
                let arr = txn.get_or_insert_array(CONCLUSIONS);
                if let Some(Out::YMap(c)) = arr.get(&txn, 0) {
                    if let Some(Out::YText(t)) = c.get(&txn, ck::TEXT) {
                        t.insert(&mut txn, 0, "y");
                    }
                    c.insert(&mut txn, ck::STATUS, "final");
                }
            }
            _ => {
                let x = txn.get_or_insert_xml_fragment("notes");
                let len = x.len(&txn);
                x.insert(&mut txn, len, yrs::XmlTextPrelim::new("note"));
            }
        }
        out.push(txn.encode_update_v1());
    }
    out
}

fn mutate(rng: &mut impl rand::Rng, pool: &[Vec<u8>], rival: &[Vec<u8>]) -> Vec<u8> {
    let mut u = pool[rng.gen_range(0..pool.len())].clone();
    match rng.gen_range(0..6) {
        // a rival history's update, intact or merged with ours: decodes, conflicts
        4 => return rival[rng.gen_range(0..rival.len())].clone(),
        5 => {
            let r = &rival[rng.gen_range(0..rival.len())];
            return yrs::merge_updates_v1([u.as_slice(), r.as_slice()]).unwrap_or(u);
        }
        0 => {
            for _ in 0..rng.gen_range(1..4) {
                if !u.is_empty() {
                    let i = rng.gen_range(0..u.len());
                    u[i] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        1 => {
            let n = rng.gen_range(0..=u.len());
            u.truncate(n);
        }
        2 => {
            let other = &pool[rng.gen_range(0..pool.len())];
            let a = rng.gen_range(0..=u.len());
            let b = rng.gen_range(0..=other.len());
            u.truncate(a);
            u.extend_from_slice(&other[b..]);
        }
        _ => {
            if !u.is_empty() {
                let i = rng.gen_range(0..u.len());
                u[i] = rng.gen();
            }
        }
    }
    u
}

/// A raw writer: sends one update, then a sync step 1, and waits for the step 2 (the update
/// was vetted and handled) or a close (it was refused).
struct RawWriter {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl RawWriter {
    async fn open(addr: std::net::SocketAddr, room: &str, token: &str) -> RawWriter {
        let url = format!("ws://{addr}/ws/{room}?token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        RawWriter { ws }
    }

    /// `Some(code)` if the server closed the connection.
    async fn send(&mut self, update: &[u8]) -> Option<u16> {
        let sv = StateVector::default();
        let _ = self
            .ws
            .send(WsMessage::Binary(encode_update(update).into()))
            .await;
        let _ = self
            .ws
            .send(WsMessage::Binary(encode_sync_step1(&sv).into()))
            .await;
        let r = tokio::time::timeout(DEADLINE, async {
            while let Some(m) = self.ws.next().await {
                match m {
                    Ok(WsMessage::Binary(b)) if b.len() >= 2 && b[0] == 0 && b[1] == 1 => return None,
                    Ok(WsMessage::Close(f)) => {
                        return Some(f.map(|f| close_code_u16(f.code)).unwrap_or(1005))
                    }
                    Ok(_) => {}
                    Err(_) => return Some(1006),
                }
            }
            Some(1006)
        })
        .await;
        r.expect("an answer or a close")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_updates_never_take_the_server_down_and_every_document_still_loads() {
    use rand::SeedableRng;
    let inputs: usize = std::env::var("PLENARY_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::for_tests(dir.path().into(), ADMIN);
    cfg.max_messages_per_sec = 1_000_000;
    cfg.compact_after = 200;
    let s = Server::start_with(cfg).await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let rap1 = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let other = Peer::connect(s.addr, "m1/g2", tok(&m, &["rapporteurs", "g2"]), "&ack=1")
        .await
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
    let pool = valid_updates(&mut rng, 200);
    let rival = valid_updates(&mut rng, 200);
    let mut w = RawWriter::open(s.addr, "m1/g1", &rap1).await;
    let (mut refused, mut handled, mut undecodable) = (0usize, 0usize, 0usize);
    for i in 0..inputs {
        let u = mutate(&mut rng, &pool, &rival);
        if plenary_protocol::message::decode_update(&u).is_err() {
            undecodable += 1;
        }
        match w.send(&u).await {
            None => handled += 1,
            Some(code) => {
                assert!(code == 1002 || code == 1012, "input {i}: closed {code}");
                refused += 1;
                w = RawWriter::open(s.addr, "m1/g1", &rap1).await;
            }
        }
        if i % 250 == 0 {
            assert_eq!(s.http().get_status("/healthz").await, 200);
            saved_edit(&other, &format!("{i};")).await;
        }
    }
    let restarts = s.metric("plenary_sandbox_restarts_total").await;
    let rejected = s.metric("plenary_rejected_messages_total").await;
    println!(
        "fuzz: {inputs} inputs, {handled} handled, {refused} refused (closed): {undecodable} by the decoder, \
         {} by the sandbox; {rejected} rejected_messages, {restarts} sandbox restarts",
        refused - undecodable
    );
    assert!(refused > 0 && handled > 0);
    assert_eq!(s.http().get_status("/healthz").await, 200);
    saved_edit(&other, "end;").await;
    s.stop().await;
    let (ok, out) = doctor(dir.path(), &[]);
    assert!(ok, "{out}");
    let s = Server::start(dir.path().into()).await;
    for room in ["m1/g1", "m1/g2", "m1/plenary"] {
        println!("fuzz: loading {room}");
        let p = Peer::connect(s.addr, room, tok(&m, &["participant"]), "")
            .await
            .unwrap();
        wait_until("room loads", || async { p.got().updates > 0 }).await;
        assert!(p.close_code().is_none(), "{room}");
    }
    s.stop().await;
}
