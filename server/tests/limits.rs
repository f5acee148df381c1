//! Budgets and containment against the in-process server: token rotation (1008, 401), the
//! per-token connection budget (429), and awareness bounded per token and per room.

mod common;

use common::*;
use plenary_protocol::message::{encode_awareness, encode_update};
use plenary_protocol::{AwarenessEntry, AwarenessUpdate};
use yrs::{Text, WriteTxn};

fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_token_closes_its_sockets_with_1008_and_the_old_token_gets_401() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let old_part = tok(&m, &["participant"]).to_owned();
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let follower = Peer::connect(s.addr, "m1/g1", &old_part, "").await.unwrap();
    let on_plenary = Peer::connect(s.addr, "m1/plenary", &old_part, "").await.unwrap();
    let writer = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    writer.edit(|t| t.get_or_insert_text("t").insert(t, 0, "hello"));
    wait_until("follower synced", || async { follower.text("t") == "hello" }).await;

    let http = s.http();
    let (status, body) = http
        .post_json(
            "/api/meetings/m1/tokens",
            Some(ADMIN),
            r#"{"role":"participant"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "participant");
    assert!(body.get("group").is_none(), "{body}");
    let new_part = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_part, old_part);
    let link = body["link"].as_str().unwrap();
    assert!(link.ends_with(&format!("/m/m1#token={new_part}")), "{link}");

    // every socket of the old token closes with 1008 "token revoked"; others stay
    for p in [&follower, &on_plenary] {
        wait_until("revoked socket closed", || async { p.close_code().is_some() }).await;
        assert_eq!(p.close_code(), Some(1008));
        assert_eq!(p.got().close_reason, "token revoked");
    }
    writer.edit(|t| t.get_or_insert_text("t").insert(t, 5, " world"));
    let fresh = Peer::connect(s.addr, "m1/g1", &new_part, "").await.unwrap();
    wait_until("new token syncs", || async { fresh.text("t") == "hello world" }).await;
    assert!(writer.close_code().is_none());

    // the old token is refused everywhere; the new one works
    assert_eq!(
        Peer::connect(s.addr, "m1/g1", &old_part, "").await.err(),
        Some(401)
    );
    assert_eq!(http.get("/api/meetings/m1", Some(&old_part)).await.0, 401);
    assert_eq!(http.get("/api/meetings/m1", Some(&new_part)).await.0, 200);

    // a rapporteur rotation replaces only that group's token
    let (status, body) = http
        .post_json(
            "/api/meetings/m1/tokens",
            Some(ADMIN),
            r#"{"role":"rapporteur","group":"g1"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["group"], "g1");
    assert!(body["link"].as_str().unwrap().contains("/m/m1/g/g1#token="));
    wait_until("rapporteur socket closed", || async {
        writer.close_code().is_some()
    })
    .await;
    assert_eq!(writer.close_code(), Some(1008));
    assert!(fresh.close_code().is_none());
    assert_eq!(http.get("/api/meetings/m1", Some(&rap)).await.0, 401);
    let g2 = tok(&m, &["rapporteurs", "g2"]);
    assert_eq!(http.get("/api/meetings/m1", Some(g2)).await.0, 200);

    // the rotation survives a restart
    let s = s.restart().await;
    let http = s.http();
    assert_eq!(http.get("/api/meetings/m1", Some(&old_part)).await.0, 401);
    assert_eq!(http.get("/api/meetings/m1", Some(&new_part)).await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_route_refuses_every_bad_request_with_the_json_error_body() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let http = s.http();
    let moderator = tok(&m, &["moderator"]);
    let cases: &[(&str, Option<&str>, &str, u16, &str)] = &[
        ("m1", None, r#"{"role":"participant"}"#, 401, "invalid_token"),
        (
            "m1",
            Some("wrong"),
            r#"{"role":"participant"}"#,
            401,
            "invalid_token",
        ),
        (
            "m1",
            Some(moderator),
            r#"{"role":"participant"}"#,
            401,
            "invalid_token",
        ),
        (
            "nope",
            Some(ADMIN),
            r#"{"role":"participant"}"#,
            404,
            "unknown_meeting",
        ),
        ("m1", Some(ADMIN), "not json", 400, "bad_request"),
        ("m1", Some(ADMIN), r#"{"role":"king"}"#, 400, "bad_request"),
        ("m1", Some(ADMIN), r#"{"role":"rapporteur"}"#, 400, "bad_request"),
        (
            "m1",
            Some(ADMIN),
            r#"{"role":"moderator","group":"g1"}"#,
            400,
            "bad_request",
        ),
        (
            "m1",
            Some(ADMIN),
            r#"{"role":"rapporteur","group":"g9"}"#,
            404,
            "unknown_group",
        ),
    ];
    for (meeting, token, body, status, code) in cases {
        let (got, json) = http
            .post_json(&format!("/api/meetings/{meeting}/tokens"), *token, body)
            .await;
        assert_eq!((got, error_code(&json)), (*status, *code), "{body}: {json}");
        assert!(json["error"]["message"].is_string(), "{json}");
    }
    // nothing was rotated
    assert_eq!(http.get("/api/meetings/m1", Some(moderator)).await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_connection_budget_gets_429_while_other_tokens_connect() {
    let s = Server::fresh_with(|c| {
        c.participant_token_connections = 3;
    })
    .await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let part = tok(&m, &["participant"]);
    let mut held = Vec::new();
    for room in ["m1/g1", "m1/g1", "m1/plenary"] {
        held.push(Peer::connect(s.addr, room, part, "").await.unwrap());
    }
    let (status, body) = s.http().refused_upgrade(&format!("/ws/m1/g1?token={part}")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body), "too_many_connections_for_token");
    // another token of the same meeting is not held back
    let moderator = Peer::connect(s.addr, "m1/g1", tok(&m, &["moderator"]), "").await;
    assert!(moderator.is_ok());
    // a slot given back can be taken again
    held.pop().unwrap().close();
    let again = std::sync::Mutex::new(None);
    wait_until("a freed slot is usable", || async {
        match Peer::connect(s.addr, "m1/g1", part, "").await {
            Ok(p) => {
                *again.lock().unwrap() = Some(p);
                true
            }
            Err(code) => {
                assert_eq!(code, 429);
                false
            }
        }
    })
    .await;
    assert_eq!(Peer::connect(s.addr, "m1/g1", part, "").await.err(), Some(429));
    s.stop().await;
}

fn awareness(entries: Vec<(u64, u32, String)>) -> Vec<u8> {
    encode_awareness(&AwarenessUpdate {
        entries: entries
            .into_iter()
            .map(|(client_id, clock, state)| AwarenessEntry {
                client_id,
                clock,
                state,
            })
            .collect(),
    })
}

/// Latest state per client id a peer was sent, without the server's (id 0) and removals.
fn present_states(p: &Peer) -> Vec<(u64, String)> {
    let mut latest = std::collections::BTreeMap::new();
    for (id, _clock, state) in &p.got().awareness {
        latest.insert(*id, state.clone());
    }
    latest
        .into_iter()
        .filter(|(id, st)| *id != 0 && st != "null")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awareness_from_one_token_stays_within_its_bounds_and_newcomers_still_join() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let rap = tok(&m, &["rapporteurs", "g1"]);
    let writer = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    writer.edit(|t| t.get_or_insert_text("t").insert(t, 0, "notes"));
    // one token, 12 connections, 8 ids each with 40 KB states: 3.8 MB asked for
    let filler = "x".repeat(40_000);
    let mut flooders = Vec::new();
    for c in 0..12u64 {
        let p = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
        let entries = (0..8)
            .map(|i| (1000 + c * 8 + i, 1, format!(r#"{{"pad":"{filler}"}}"#)))
            .collect();
        p.send_raw(awareness(entries));
        flooders.push(p);
    }
    // a small state from another token still fits
    let moderator = Peer::connect(s.addr, "m1/g1", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    moderator.send_raw(awareness(vec![(7, 1, r#"{"user":"mod"}"#.into())]));
    let watcher = Peer::connect(s.addr, "m1/g1", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("moderator's state relayed", || async {
        present_states(&watcher).iter().any(|(id, _)| *id == 7)
    })
    .await;
    // every flooder's message was handled before the moderator's: each is behind a round trip
    for p in &flooders {
        let seen = p.got().updates;
        p.send_raw(plenary_protocol::message::encode_sync_step1(
            &yrs::StateVector::default(),
        ));
        wait_until("flooder round trip", || async { p.got().updates > seen }).await;
    }
    // a newcomer (the rapporteur's own reconnect) joins, syncs, and is greeted within bounds
    let newcomer = Peer::connect(s.addr, "m1/g1", rap, "").await.unwrap();
    wait_until("newcomer synced", || async { newcomer.text("t") == "notes" }).await;
    wait_until("newcomer greeted", || async {
        present_states(&newcomer).iter().any(|(id, _)| *id == 7)
    })
    .await;
    let states = present_states(&newcomer);
    let bytes: usize = states.iter().map(|(_, s)| s.len()).sum();
    let from_token = states.iter().filter(|(id, _)| *id >= 1000).count();
    assert!(from_token > 0, "some of the token's states are kept");
    assert!(from_token <= 32, "{from_token} ids for one token");
    assert!(bytes <= 1 << 20, "{bytes} bytes of awareness in the greeting");
    assert!(newcomer.close_code().is_none());
    let (_, metrics) = s.http().get("/metrics", None).await;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plenary_awareness_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused >= 96 - 32, "{refused} refused");
    s.stop().await;
}

/// Sends `n` empty updates (no-ops) and waits for a round trip behind them.
async fn no_op_burst(p: &Peer, n: usize) -> std::time::Duration {
    // The handshake's sync step 2 first: counted after the burst, it would end the wait early.
    wait_until("handshake answered", || async { p.got().updates >= 1 }).await;
    let t0 = std::time::Instant::now();
    let empty = yrs::Update::new();
    let bytes = yrs::updates::encoder::Encode::encode_v1(&empty);
    for _ in 0..n {
        p.send_raw(encode_update(&bytes));
    }
    let seen = p.got().updates;
    p.send_raw(plenary_protocol::message::encode_sync_step1(&p.sv()));
    wait_until("round trip", || async { p.got().updates > seen }).await;
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sending_past_its_message_rate_is_slowed_over_all_its_connections_not_cut() {
    let s = Server::fresh_with(|c| {
        c.moderator_token_messages_per_sec = 50;
    })
    .await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let moderator = tok(&m, &["moderator"]);
    let a1 = Peer::connect(s.addr, "m1/g1", moderator, "").await.unwrap();
    let a2 = Peer::connect(s.addr, "m1/g1", moderator, "").await.unwrap();
    let rap = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    // each connection alone stays within its own rate (200/s, bursts of 2000); together the
    // moderator token sends 200 messages at 50/s after a burst of 50, the rapporteur 200 at once
    let (slowed, _) = tokio::join!(no_op_burst(&a1, 100), no_op_burst(&a2, 100));
    let free = no_op_burst(&rap, 200).await;
    assert!(
        slowed > free * 5,
        "the rate-limited token took {slowed:?}, the other {free:?}"
    );
    for p in [&a1, &a2, &rap] {
        assert!(p.close_code().is_none());
    }
    s.stop().await;
}
