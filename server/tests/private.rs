//! Private group notes (`notes_private` on the meeting): participants are kept to the plenary
//! document (every group's conclusions); rapporteurs and moderators are unaffected.

mod common;

use common::*;
use serde_json::json;
use yrs::{Text, WriteTxn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_notes_keep_participants_to_the_plenary() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let part = tok(&m, &["participant"]).to_owned();
    let moder = tok(&m, &["moderator"]).to_owned();
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();

    // off by default, shown by GET and the list
    let (st, v) = s.http().call("GET", "/api/meetings/m1", Some(&part), None).await;
    assert_eq!((st, &v["notes_private"]), (200, &json!(false)), "{v}");

    // a participant on a group document before the change
    let follower = Peer::connect(s.addr, "m1/g1", &part, "").await.unwrap();
    let on_plenary = Peer::connect(s.addr, "m1/plenary", &part, "").await.unwrap();
    let writer = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    writer.edit(|t| t.get_or_insert_text("t").insert(t, 0, "hello"));
    wait_until("follower synced", || async { follower.text("t") == "hello" }).await;

    // the participant may not change it; the moderator may
    let (st, _) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(&part),
            Some(json!({"notes_private": true})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(&moder),
            Some(json!({"notes_private": true})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["notes_private"], true, "{v}");
    let (_, v) = s.http().call("GET", "/api/meetings/m1", Some(&part), None).await;
    assert_eq!(v["notes_private"], true, "{v}");
    let (_, list) = s.http().call("GET", "/api/meetings", Some(ADMIN), None).await;
    assert_eq!(list["meetings"][0]["notes_private"], true, "{list}");

    // the open participant group socket closes with 1008; the plenary and the rapporteur stay
    wait_until("participant group socket closed", || async {
        follower.close_code().is_some()
    })
    .await;
    assert_eq!(follower.close_code(), Some(1008));
    assert_eq!(follower.got().close_reason, "notes are private");
    assert!(on_plenary.close_code().is_none());
    assert!(writer.close_code().is_none());

    // a participant upgrade to a group is refused before the upgrade; the plenary is open
    for g in ["g1", "g2"] {
        let (st, body) = s
            .http()
            .refused_upgrade(&format!("/ws/m1/{g}?token={part}"))
            .await;
        assert_eq!(st, 403, "{body}");
        assert_eq!(body["error"]["code"], "notes_private", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 5, "{body}");
    }
    let p2 = Peer::connect(s.addr, "m1/plenary", &part, "").await.unwrap();
    wait_until("plenary synced", || async {
        p2.json()["meta"]["title"] == "Meeting m1"
    })
    .await;
    // rapporteur and moderator still connect to group documents
    let r2 = Peer::connect(s.addr, "m1/g1", &rap, "").await.unwrap();
    wait_until("rapporteur synced", || async { r2.text("t") == "hello" }).await;
    let m2 = Peer::connect(s.addr, "m1/g2", &moder, "").await.unwrap();
    wait_until("moderator joined", || async { m2.close_code().is_none() }).await;

    // the notes annex: refused to participants, not to the moderator
    let (st, body) = s
        .http()
        .call("GET", "/api/meetings/m1/summary.docx?notes=1", Some(&part), None)
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (403, Some("notes_private")),
        "{body}"
    );
    let (st, body) = s
        .http()
        .call("GET", "/api/meetings/m1/summary.pdf?notes=1", Some(&part), None)
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (403, Some("notes_private")),
        "{body}"
    );
    assert_eq!(
        s.http().get("/api/meetings/m1/summary.docx", Some(&part)).await.0,
        200
    );
    assert_eq!(
        s.http()
            .get("/api/meetings/m1/summary.docx?notes=1", Some(&moder))
            .await
            .0,
        200
    );

    // it survives a restart (store column)
    drop((p2, r2, m2, writer, on_plenary, follower));
    let s = s.restart().await;
    let (_, v) = s.http().call("GET", "/api/meetings/m1", Some(&moder), None).await;
    assert_eq!(v["notes_private"], true, "{v}");

    // turning it off lets participants in again
    let (st, v) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"notes_private": false})),
        )
        .await;
    assert_eq!((st, &v["notes_private"]), (200, &json!(false)), "{v}");
    let back = Peer::connect(s.addr, "m1/g1", &part, "").await.unwrap();
    wait_until("participant back on the group", || async {
        back.text("t") == "hello"
    })
    .await;
    assert_eq!(
        s.http()
            .get("/api/meetings/m1/summary.docx?notes=1", Some(&part))
            .await
            .0,
        200
    );
    let (st, _) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(&moder),
            Some(json!({"notes_private": "yes"})),
        )
        .await;
    assert_eq!(st, 400);
    s.stop().await;
}
