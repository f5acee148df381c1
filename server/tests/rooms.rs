//! End-to-end behaviour of rooms over real WebSockets against the in-process server.

mod common;

use common::*;
use plenary_protocol::message::encode_update;
use yrs::{Text, WriteTxn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_converge_and_a_late_joiner_gets_everything() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]);
    let a = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    let b = Peer::connect(s.addr, "m1/g1", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    a.edit(|t| t.get_or_insert_text("t").insert(t, 0, "hello "));
    b.edit(|t| t.get_or_insert_text("t").insert(t, 0, "world "));
    wait_until("a and b converge", || async {
        a.text("t").len() == 12 && a.text("t") == b.text("t")
    })
    .await;
    let late = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    wait_until("late joiner synced", || async { late.text("t") == a.text("t") }).await;
    // rooms are isolated
    let other = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    wait_until("plenary synced", || async { other.json()["groups"].is_array() }).await;
    assert_eq!(other.text("t"), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_writes_are_refused_and_never_relayed() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let writer = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    let reader = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    let other_rap = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g2"]), "")
        .await
        .unwrap();
    reader.edit(|t| t.get_or_insert_text("t").insert(t, 0, "sneaky"));
    other_rap.edit(|t| t.get_or_insert_text("t").insert(t, 0, "also sneaky"));
    wait_until("denials", || async {
        !reader.got().auth_denials.is_empty() && !other_rap.got().auth_denials.is_empty()
    })
    .await;
    assert_eq!(reader.got().auth_denials[0], "permission denied");
    // the connection stays open and still receives
    writer.edit(|t| t.get_or_insert_text("t").insert(t, 0, "legit"));
    wait_until("reader receives legit edit", || async {
        reader.text("t").contains("legit")
    })
    .await;
    assert_eq!(writer.text("t"), "legit");
    assert!(reader.close_code().is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_with_1002_and_1009_while_others_carry_on() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]);
    let good = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    let garbage = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    garbage.send_raw(vec![0xff, 0xff, 0xff, 0xff]);
    wait_until("garbage closed", || async { garbage.close_code().is_some() }).await;
    assert_eq!(garbage.close_code(), Some(1002));
    let bad_update = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    bad_update.send_raw(encode_update(&[9, 9, 9, 9, 9]));
    wait_until("bad update closed", || async {
        bad_update.close_code().is_some()
    })
    .await;
    assert_eq!(bad_update.close_code(), Some(1002));
    let big = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    big.send_raw(encode_update(&vec![0u8; 1_100_000]));
    wait_until("oversized closed", || async { big.close_code().is_some() }).await;
    assert_eq!(big.close_code(), Some(1009));
    let texty = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    texty.send_text("hello");
    wait_until("text closed", || async { texty.close_code().is_some() }).await;
    assert_eq!(texty.close_code(), Some(1002));
    good.edit(|t| t.get_or_insert_text("t").insert(t, 0, "still fine"));
    let check = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    wait_until("others carry on", || async { check.text("t") == "still fine" }).await;
    assert!(good.close_code().is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_are_refused_in_contract_order() {
    let s = Server::fresh().await;
    let m1 = s.create_meeting("m1", &["g1"]).await;
    let m2 = s.create_meeting("m2", &["g1"]).await;
    let t1 = tok(&m1, &["participant"]);
    assert_eq!(Peer::connect(s.addr, "nope/g1", t1, "").await.err(), Some(404));
    assert_eq!(Peer::connect(s.addr, "m1/nope", t1, "").await.err(), Some(404));
    assert_eq!(Peer::connect(s.addr, "m1/g1", "wrong", "").await.err(), Some(401));
    assert_eq!(
        Peer::connect(s.addr, "m1/g1", tok(&m2, &["participant"]), "")
            .await
            .err(),
        Some(403)
    );
    let (status, body) = s.http().get("/ws/m1/g1", None).await;
    assert_eq!(status, 401);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_token");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_clients_learn_their_edits_are_durable() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let a = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "&ack=1")
        .await
        .unwrap();
    let plain = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    a.edit(|t| t.get_or_insert_text("t").insert(t, 0, "saved?"));
    plain.edit(|t| t.get_or_insert_text("t").insert(t, 0, "x"));
    let mine = a.sv();
    wait_until("ack covers own state", || async {
        a.got()
            .acks
            .iter()
            .any(|sv| mine.iter().all(|(c, clock)| sv.get(c) >= *clock))
    })
    .await;
    wait_until("plain synced", || async { plain.text("t").contains("saved?") }).await;
    assert!(plain.got().acks.is_empty(), "stock clients never get acks");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_document_meeting_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let a = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    for i in 0..50 {
        a.edit(|t| {
            let text = t.get_or_insert_text("t");
            let len = text.len(t);
            text.insert(t, len, &format!("{i},"))
        });
    }
    let watcher = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    wait_until("watcher sees all", || async {
        watcher.text("t").ends_with("49,")
    })
    .await;
    let expected = a.text("t");
    s.stop().await;
    wait_until("1001 on shutdown", || async { a.close_code().is_some() }).await;
    assert_eq!(a.close_code(), Some(1001));
    let s = Server::start(dir.path().into()).await;
    let b = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    wait_until("restored", || async { b.text("t") == expected }).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_folds_the_log_and_keeps_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = plenary_server::config::Config::for_tests(dir.path().into(), ADMIN);
    cfg.compact_after = 20;
    let s = Server::start_with(cfg).await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let a = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    let w = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    for i in 0..65 {
        a.edit(|t| {
            let text = t.get_or_insert_text("t");
            let len = text.len(t);
            text.insert(t, len, &format!("{i};"))
        });
        // one update per batch so the log grows one by one
        wait_until("relayed", || async { w.text("t").ends_with(&format!("{i};")) }).await;
    }
    s.stop().await;
    use plenary_server::store::Store;
    let store = plenary_server::store::sqlite::SqliteStore::open(
        dir.path(),
        plenary_server::store::Durability::Process,
    )
    .unwrap();
    let stored = store.load_doc("m1/g1").await.unwrap();
    assert!(stored.snapshot.is_some());
    assert!(
        stored.updates.len() < 20,
        "log has {} updates",
        stored.updates.len()
    );
    let s = Server::start(dir.path().into()).await;
    let b = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    wait_until("restored after compaction", || async {
        b.text("t") == a.text("t")
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_closed_with_1013_and_others_keep_up() {
    let s = Server::fresh_with(|c| {
        c.outbound_queue = 16;
        c.max_messages_per_sec = 100_000;
    })
    .await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    // a raw socket that never reads: the kernel buffers fill, then the outbox
    let url = format!("ws://{}/ws/m1/g1?token={}", s.addr, tok(&m, &["participant"]));
    let (_stuck, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let fast = Peer::connect(s.addr, "m1/g1", &tok(&m, &["participant"]), "")
        .await
        .unwrap();
    let a = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    let chunk = "x".repeat(128 * 1024);
    let metrics_slow = || async {
        let (_, body) = s.http().get("/metrics", None).await;
        body.lines()
            .any(|l| l.starts_with("plenary_slow_disconnects_total") && !l.ends_with(" 0"))
    };
    let mut i = 0;
    while i % 4 != 0 || !metrics_slow().await {
        a.edit(|t| {
            let text = t.get_or_insert_text("t");
            let len = text.len(t);
            text.insert(t, len, &chunk)
        });
        i += 1;
        assert!(i < 400, "slow reader never disconnected");
        // The fast reader is checked every 4 edits: with at most 4 big frames (plus a few
        // awareness frames) outstanding it stays under the 16-frame queue even when the test
        // process itself is starved of CPU; the stuck reader still overflows its queue.
        if i % 4 == 0 {
            let want = a.text("t").len();
            wait_until("fast reader keeps up", || async {
                assert_eq!(fast.close_code(), None, "the fast reader was closed");
                fast.text("t").len() == want
            })
            .await;
        }
    }
    let want = a.text("t").len();
    wait_until("fast reader has everything", || async {
        assert_eq!(fast.close_code(), None, "the fast reader was closed");
        fast.text("t").len() == want
    })
    .await;
    assert!(fast.close_code().is_none());
    s.stop().await;
}

/// A connection waiting for its token's message budget still drains what its socket did not take:
/// the connection's one task writes the backlog while it waits (`Reader::meanwhile`), so a
/// client slowed for what it sends is not also starved of what it receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_slowed_for_its_messages_keeps_receiving_its_backlog() {
    use futures_util::{SinkExt, StreamExt};
    // One message a second for the token, a burst of one: each message after the first waits
    // a whole second, inside one wait (smaller waits would let the backlog leave between them).
    const WAITS: u64 = 3;
    let s = Server::fresh_with(|c| {
        c.moderator_token_messages_per_sec = 1;
        c.outbound_queue = 4096;
        c.outbound_queue_bytes = 64 << 20;
    })
    .await;
    let m = s.create_meeting("m1", &["g1"]).await;
    // A raw client that reads nothing for now: the kernel's buffers fill, then its outbox.
    let url = format!("ws://{}/ws/m1/g1?token={}", s.addr, tok(&m, &["moderator"]));
    // The answer to its sync step 1 (the whole document) is larger than tungstenite's default
    // cap. A small receive buffer (which also turns off the kernel's autotuning, up to 32 MiB
    // here) keeps most of the backlog in the server's outbox rather than in the kernel.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let stream = socket.connect(s.addr).await.unwrap();
    let (slow, _) = tokio_tungstenite::client_async_with_config(&url, stream, Some(config))
        .await
        .unwrap();
    let (mut tx, mut rx) = slow.split();
    let a = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    let fast = Peer::connect(s.addr, "m1/g1", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    let chunk = "x".repeat(128 * 1024);
    // 12 MiB: with the slow client's small receive buffer the kernel takes about 4 MiB (the
    // server's send buffer); the rest waits in the outbox, a socket's worth per wait if nothing
    // drains it meanwhile.
    const CHUNKS: usize = 96;
    for _ in 0..CHUNKS {
        append_text(&a, "t", &chunk);
    }
    let total = CHUNKS * chunk.len();
    // Compared by state vector: cheap to poll, unlike the 12 MiB text.
    wait_until("the room has relayed every edit", || async {
        fast.sv() == a.sv()
    })
    .await;
    let t0 = std::time::Instant::now();
    // Past the token's burst: each further message waits a second; then a sync step 1, whose
    // answer (the whole document) leaves only after the waits.
    let empty = yrs::updates::encoder::Encode::encode_v1(&yrs::Update::new());
    for _ in 0..WAITS {
        tx.send(tungstenite::Message::binary(encode_update(&empty)))
            .await
            .unwrap();
    }
    let sv = yrs::StateVector::default();
    tx.send(tungstenite::Message::binary(
        plenary_protocol::message::encode_sync_step1(&sv),
    ))
    .await
    .unwrap();
    let mut relayed = 0usize;
    let mut backlog_done = None;
    let answered = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(30), rx.next())
            .await
            .expect("the slow client hears from the server")
            .expect("the socket stays open")
            .unwrap();
        let data = msg.into_data();
        match data.get(..2) {
            Some([0, 2]) => relayed += data.len(),
            Some([0, 1]) if data.len() > total => break std::time::Instant::now(),
            _ => {}
        }
        if relayed >= total && backlog_done.is_none() {
            backlog_done = Some(std::time::Instant::now());
        }
    };
    let backlog_done = backlog_done.expect("every relayed edit arrived before the answer");
    let wait = std::time::Duration::from_secs(WAITS);
    assert!(
        answered - t0 >= wait * 9 / 10,
        "the token's budget made the messages wait"
    );
    // Without the drain beside each wait, the backlog would leave only a socket's worth per
    // wait, the last of it after the last wait.
    assert!(
        backlog_done - t0 < wait / 3,
        "the backlog took {:?} to arrive (the messages waited {wait:?})",
        backlog_done - t0
    );
    assert!(s.metric("plenary_slow_disconnects_total").await == 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_api_answers_per_contract() {
    let s = Server::fresh().await;
    let h = s.http();
    let body = r#"{"id":"skopje","title":"Skopje","groups":[{"id":"wg-a","title":"A"}]}"#;
    assert_eq!(h.post_json("/api/meetings", None, body).await.0, 401);
    assert_eq!(h.post_json("/api/meetings", Some("nope"), body).await.0, 401);
    let (st, created) = h.post_json("/api/meetings", Some(ADMIN), body).await;
    assert_eq!(st, 201);
    assert!(created["links"]["rapporteurs"]["wg-a"]
        .as_str()
        .unwrap()
        .contains("#token="));
    assert_eq!(h.post_json("/api/meetings", Some(ADMIN), body).await.0, 409);
    for bad in [
        "not json",
        r#"{"title":"x","groups":[{"id":"plenary","title":"P"}]}"#,
        r#"{"id":"Bad_Id","title":"x","groups":[{"id":"a","title":"A"}]}"#,
        r#"{"title":"x","groups":[]}"#,
    ] {
        let (st, err) = h.post_json("/api/meetings", Some(ADMIN), bad).await;
        assert_eq!(st, 400, "{bad}");
        assert!(err["error"]["code"].is_string() && err["error"]["message"].is_string());
    }
    let (st, gen) = h
        .post_json(
            "/api/meetings",
            Some(ADMIN),
            r#"{"title":"No id","groups":[{"id":"a","title":"A"}]}"#,
        )
        .await;
    assert_eq!(st, 201);
    assert!(gen["id"].as_str().unwrap().len() > 3);
    let part = created["tokens"]["participant"].as_str().unwrap();
    let (st, got) = h.get("/api/meetings/skopje", Some(part)).await;
    assert_eq!(st, 200);
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["groups"][0]["id"], "wg-a");
    assert_eq!(
        h.get(&format!("/api/meetings/skopje?token={part}"), None).await.0,
        200
    );
    assert_eq!(h.get("/api/meetings/skopje", None).await.0, 401);
    let other = gen["tokens"]["participant"].as_str().unwrap();
    assert_eq!(h.get("/api/meetings/skopje", Some(other)).await.0, 403);
    assert_eq!(h.get("/api/meetings/nope", Some(part)).await.0, 404);
    let (st, metrics) = h.get("/metrics", None).await;
    assert_eq!(st, 200);
    assert!(metrics.contains("plenary_connections"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_store_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1"]).await;
    s.stop().await;
    let db = std::fs::read(dir.path().join("plenary.db")).unwrap();
    let wal = std::fs::read(dir.path().join("plenary.db-wal")).unwrap_or_default();
    for t in [
        tok(&m, &["moderator"]),
        tok(&m, &["participant"]),
        tok(&m, &["rapporteurs", "g1"]),
        ADMIN,
    ] {
        let needle = t.as_bytes();
        assert!(!db.windows(needle.len()).any(|w| w == needle));
        assert!(!wal.windows(needle.len()).any(|w| w == needle));
    }
}
