//! Meeting management (contract, "Meeting management"): the list, renames that the plenary
//! document follows at once, adding groups, deleting meetings, and every refusal.

mod common;

use common::*;
use serde_json::{json, Value};

fn err_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no JSON error body>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_rename_and_refusals() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    s.create_meeting("m2", &["h1"]).await;
    let other = s.create_meeting("m3", &["k1"]).await;
    let moderator = tok(&m, &["moderator"]).to_owned();

    // the list: admin only
    let (st, list) = s.http().call("GET", "/api/meetings", Some(ADMIN), None).await;
    assert_eq!(st, 200, "{list}");
    let ms = list["meetings"].as_array().unwrap();
    assert_eq!(ms.len(), 3);
    assert_eq!(ms[0]["id"], "m1");
    assert!(ms[0]["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(
        ms[0]["groups"],
        json!([{"id":"g1","title":"Group g1","closed":false},{"id":"g2","title":"Group g2","closed":false}])
    );
    assert!(ms[0].get("tokens").is_none(), "the list must not show tokens");
    for (t, code) in [
        (None, 401),
        (Some("wrong-token"), 401),
        (Some(moderator.as_str()), 401),
    ] {
        let (st, body) = s.http().call("GET", "/api/meetings", t, None).await;
        assert_eq!((st, err_code(&body)), (code, "invalid_token"), "{t:?}: {body}");
    }

    // a follower of the plenary sees renames at once
    let follower = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    wait_until("plenary synced", || async {
        follower.json()["meta"]["title"] == "Meeting m1"
    })
    .await;

    let (st, body) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(&moderator),
            Some(json!({"title": "  Skopje 2023  ", "short_title": "Skopje"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["title"], "Skopje 2023");
    assert_eq!(body["short_title"], "Skopje");
    assert_eq!(body["groups"].as_array().unwrap().len(), 2);
    wait_until("plenary meta follows", || async {
        let j = follower.json();
        j["meta"]["title"] == "Skopje 2023" && j["meta"]["short_title"] == "Skopje"
    })
    .await;
    // the admin may rename too; a null short title removes it
    let (st, body) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"short_title": null})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(body.get("short_title").is_none(), "{body}");
    assert_eq!(body["title"], "Skopje 2023");
    wait_until("short title removed", || async {
        follower.json()["meta"].get("short_title").is_none()
    })
    .await;

    let (st, body) = s
        .http()
        .call(
            "PATCH",
            "/api/meetings/m1/groups/g2",
            Some(&moderator),
            Some(json!({"title": "Migrants with weapons", "short_title": "Migrants"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        json!({"id":"g2","title":"Migrants with weapons","short_title":"Migrants","closed":false})
    );
    wait_until("plenary group section follows", || async {
        let g = &follower.json()["groups"][1];
        g["title"] == "Migrants with weapons" && g["short_title"] == "Migrants"
    })
    .await;
    // GET /api/meetings/{m} and the list show the new titles
    let (_, got) = s
        .http()
        .call("GET", "/api/meetings/m1", Some(&moderator), None)
        .await;
    assert_eq!(got["title"], "Skopje 2023");
    assert_eq!(got["groups"][1]["title"], "Migrants with weapons");

    // refusals, each with the JSON error body
    let rap = tok(&m, &["rapporteurs", "g1"]).to_owned();
    let part = tok(&m, &["participant"]).to_owned();
    let other_mod = tok(&other, &["moderator"]).to_owned();
    let t = Some(json!({"title": "x"}));
    for (method, path, token, body, status, code) in [
        ("PATCH", "/api/meetings/m1", None, t.clone(), 401, "invalid_token"),
        (
            "PATCH",
            "/api/meetings/m1",
            Some("nope"),
            t.clone(),
            401,
            "invalid_token",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(part.as_str()),
            t.clone(),
            403,
            "forbidden",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(rap.as_str()),
            t.clone(),
            403,
            "forbidden",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(other_mod.as_str()),
            t.clone(),
            403,
            "wrong_meeting",
        ),
        (
            "PATCH",
            "/api/meetings/zz",
            Some(ADMIN),
            t.clone(),
            404,
            "unknown_meeting",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"title": "  "})),
            400,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"title": "x".repeat(301)})),
            400,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"short_title": "x".repeat(81)})),
            400,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({})),
            400,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/meetings/m1",
            Some(ADMIN),
            Some(json!({"titel": "x"})),
            400,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/meetings/m1/groups/g9",
            Some(ADMIN),
            t.clone(),
            404,
            "unknown_group",
        ),
        (
            "PATCH",
            "/api/meetings/m1/groups/g1",
            Some(part.as_str()),
            t.clone(),
            403,
            "forbidden",
        ),
        (
            "PATCH",
            "/api/meetings/m1/groups/g1",
            None,
            t.clone(),
            401,
            "invalid_token",
        ),
        (
            "PATCH",
            "/api/meetings/m1/groups/g1",
            Some(ADMIN),
            Some(json!({"title": ""})),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            None,
            t.clone(),
            401,
            "invalid_token",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(rap.as_str()),
            t.clone(),
            403,
            "forbidden",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(other_mod.as_str()),
            t.clone(),
            403,
            "wrong_meeting",
        ),
        (
            "POST",
            "/api/meetings/zz/groups",
            Some(ADMIN),
            t.clone(),
            404,
            "unknown_meeting",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(ADMIN),
            Some(json!({"id": "g1", "title": "again"})),
            409,
            "group_exists",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(ADMIN),
            Some(json!({"id": "Bad Id", "title": "x"})),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(ADMIN),
            Some(json!({"id": "plenary", "title": "x"})),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/meetings/m1/groups",
            Some(ADMIN),
            Some(json!({"id": "g5"})),
            400,
            "bad_request",
        ),
        ("DELETE", "/api/meetings/m1", None, None, 401, "invalid_token"),
        (
            "DELETE",
            "/api/meetings/m1",
            Some(moderator.as_str()),
            None,
            401,
            "invalid_token",
        ),
        (
            "DELETE",
            "/api/meetings/zz",
            Some(ADMIN),
            None,
            404,
            "unknown_meeting",
        ),
    ] {
        let (st, got) = s.http().call(method, path, token, body.clone()).await;
        assert_eq!(
            (st, err_code(&got)),
            (status, code),
            "{method} {path} {token:?} {body:?}: {got}"
        );
    }
    // nothing changed by the refusals
    let (_, got) = s
        .http()
        .call("GET", "/api/meetings/m1", Some(&moderator), None)
        .await;
    assert_eq!(got["title"], "Skopje 2023");
    assert_eq!(got["groups"].as_array().unwrap().len(), 2);

    // GET /api/server: no token, tells the page the links are loopback ones
    let (st, info) = s.http().call("GET", "/api/server", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(info["public_url"], format!("http://{}", s.addr));
    assert_eq!(info["public_url_is_loopback"], true);

    // a restart keeps the titles
    let s = s.restart().await;
    let (_, got) = s
        .http()
        .call("GET", "/api/meetings/m1", Some(&moderator), None)
        .await;
    assert_eq!(got["title"], "Skopje 2023");
    assert_eq!(got["groups"][1]["short_title"], "Migrants");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_use_the_public_url() {
    let s = Server::fresh_with(|c| {
        c.public_url = Some("http://192.168.1.20:8080/".into());
    })
    .await;
    let m = s.create_meeting("m1", &["g1"]).await;
    assert!(
        m["links"]["moderator"]
            .as_str()
            .unwrap()
            .starts_with("http://192.168.1.20:8080/m/m1/console#token="),
        "{m}"
    );
    let (st, g) = s
        .http()
        .call(
            "POST",
            "/api/meetings/m1/groups",
            Some(ADMIN),
            Some(json!({"title": "New trends"})),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    assert_eq!(g["id"], "new-trends");
    assert_eq!(
        g["link"],
        format!(
            "http://192.168.1.20:8080/m/m1/g/new-trends#token={}",
            g["token"].as_str().unwrap()
        )
    );
    let (_, r) = s
        .http()
        .call(
            "POST",
            "/api/meetings/m1/tokens",
            Some(ADMIN),
            Some(json!({"role": "participant"})),
        )
        .await;
    assert!(
        r["link"]
            .as_str()
            .unwrap()
            .starts_with("http://192.168.1.20:8080/m/m1#token="),
        "{r}"
    );
    let (_, info) = s.http().call("GET", "/api/server", None, None).await;
    assert_eq!(info["public_url_is_loopback"], false);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_group_writes_into_the_plenary_at_once() {
    let s = Server::fresh().await;
    let m = s.create_meeting("m1", &["g1"]).await;
    let moderator = tok(&m, &["moderator"]).to_owned();
    let follower = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    wait_until("plenary synced", || async {
        follower.json()["groups"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;

    let (st, g) = s
        .http()
        .call(
            "POST",
            "/api/meetings/m1/groups",
            Some(&moderator),
            Some(json!({"id": "g2", "title": "Late group"})),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    assert_eq!(
        (g["id"].as_str(), g["title"].as_str(), g["closed"].as_bool()),
        (Some("g2"), Some("Late group"), Some(false))
    );
    let token = g["token"].as_str().unwrap().to_owned();
    assert!(g["link"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/m/m1/g/g2#token={token}")));
    wait_until("its section appears in the plenary, at the end", || async {
        let j = follower.json();
        j["groups"][1]["id"] == "g2"
            && j["groups"][1]["title"] == "Late group"
            && j["groups"][1]["conclusions"] == json!([])
    })
    .await;

    // its rapporteur writes its group, not the others
    let rap = Peer::connect(s.addr, "m1/g2", &token, "").await.unwrap();
    add_conclusion(&rap, "c1", "Late but agreed");
    wait_until("its conclusion reaches the plenary", || async {
        follower.json()["groups"][1]["conclusions"][0]["text"] == "Late but agreed"
    })
    .await;
    let elsewhere = Peer::connect(s.addr, "m1/g1", &token, "").await.unwrap();
    add_conclusion(&elsewhere, "x", "not mine");
    wait_until("denied on another group", || async {
        !elsewhere.got().auth_denials.is_empty()
    })
    .await;
    let (_, got) = s.http().call("GET", "/api/meetings/m1", Some(&token), None).await;
    assert_eq!(
        (got["role"].as_str(), got["group"].as_str()),
        (Some("rapporteur"), Some("g2")),
        "{got}"
    );
    assert_eq!(got["groups"][1]["id"], "g2");
    let (_, summary) = s.http().get("/api/meetings/m1/summary.json", Some(&token)).await;
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["groups"][1]["conclusions"][0]["text"], "Late but agreed");

    // a restart keeps the group at the end with its token
    let s = s.restart().await;
    let (st, got) = s.http().call("GET", "/api/meetings/m1", Some(&token), None).await;
    assert_eq!(st, 200);
    assert_eq!(got["groups"][1]["id"], "g2");
    s.stop().await;
}

fn rows_of(db: &std::path::Path, meeting: &str) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let prefix = format!("{meeting}/");
    let mut out = Vec::new();
    for (table, cond, arg) in [
        ("meetings", "id = ?1", meeting),
        ("groups", "meeting_id = ?1", meeting),
        ("tokens", "meeting_id = ?1", meeting),
        ("versions", "meeting_id = ?1", meeting),
        ("doc_updates", "substr(doc, 1, length(?1)) = ?1", prefix.as_str()),
        (
            "doc_snapshots",
            "substr(doc, 1, length(?1)) = ?1",
            prefix.as_str(),
        ),
        (
            "doc_revisions",
            "substr(doc, 1, length(?1)) = ?1",
            prefix.as_str(),
        ),
    ] {
        let n: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {cond}"),
                [arg],
                |r| r.get(0),
            )
            .unwrap();
        out.push((table.to_owned(), n));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_meeting_removes_its_rows_rooms_and_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plenary_server::config::Config::for_tests(dir.path().into(), ADMIN);
    config.compact_after = 3; // so that snapshots exist too
    let s = Server::start_with(config).await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let keep = s.create_meeting("m2", &["h1"]).await;
    let moderator = tok(&m, &["moderator"]).to_owned();
    let rap = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    let follower = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    let keeper = Peer::connect(s.addr, "m2/h1", tok(&keep, &["rapporteurs", "h1"]), "")
        .await
        .unwrap();
    for i in 0..5 {
        add_conclusion(&rap, &format!("c{i}"), &format!("point {i}"));
    }
    add_conclusion(&keeper, "k1", "kept");
    let rap2 = Peer::connect(s.addr, "m1/g2", tok(&m, &["rapporteurs", "g2"]), "")
        .await
        .unwrap();
    add_conclusion(&rap2, "d1", "one update, not compacted");
    wait_until("plenary merged", || async {
        let j = follower.json();
        j["groups"][0]["conclusions"]
            .as_array()
            .is_some_and(|a| a.len() == 5)
            && j["groups"][1]["conclusions"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    })
    .await;
    let (st, v) = s
        .http()
        .call(
            "POST",
            "/api/meetings/m1/versions",
            Some(&moderator),
            Some(json!({"label": "Final"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let db = dir.path().join("plenary.db");
    // closing a group keeps a revision of it (doc_revisions)
    let (st, body) = s
        .http()
        .call("POST", "/api/meetings/m1/groups/g1/close", Some(&moderator), None)
        .await;
    assert_eq!(st, 200, "{body}");
    wait_until("a revision is kept at close", || async {
        rows_of(&db, "m1")
            .iter()
            .any(|(t, n)| t == "doc_revisions" && *n > 0)
    })
    .await;
    let before = rows_of(&db, "m1");
    for (table, n) in &before {
        assert!(*n > 0, "the test needs rows in {table}: {before:?}");
    }
    let kept_before = rows_of(&db, "m2");

    let (st, body) = s
        .http()
        .call("DELETE", "/api/meetings/m1", Some(ADMIN), None)
        .await;
    assert_eq!(st, 204, "{body}");
    // open sockets close with 1008 "meeting deleted"
    for p in [&rap, &rap2, &follower] {
        wait_until("socket closed", || async { p.close_code().is_some() }).await;
        assert_eq!(p.close_code(), Some(1008));
        assert_eq!(p.got().close_reason, "meeting deleted");
    }
    // every row of it is gone; the other meeting is untouched
    let after = rows_of(&db, "m1");
    assert!(after.iter().all(|(_, n)| *n == 0), "{after:?}");
    // (its plenary may still store its merge of "kept" meanwhile: nothing of it goes)
    let kept_after = rows_of(&db, "m2");
    for ((table, before), (_, after)) in kept_before.iter().zip(&kept_after) {
        assert!(
            after >= before,
            "the other meeting lost rows of {table}: {kept_before:?} -> {kept_after:?}"
        );
    }
    assert!(keeper.close_code().is_none());
    // its rooms are stopped: only m2/h1 and m2/plenary stay loaded
    wait_until("only the other meeting's room is loaded", || async {
        let (_, metrics) = s.http().get("/metrics", None).await;
        metrics.lines().any(|l| l == "plenary_rooms_loaded 2")
    })
    .await;
    // later requests get 404, with its old tokens too
    for (path, token) in [
        ("/api/meetings/m1", moderator.as_str()),
        ("/api/meetings/m1/summary.json", tok(&m, &["participant"])),
        ("/api/meetings/m1/versions", moderator.as_str()),
    ] {
        let (st, body) = s.http().call("GET", path, Some(token), None).await;
        assert_eq!((st, err_code(&body)), (404, "unknown_meeting"), "{path}: {body}");
    }
    let (st, body) = s
        .http()
        .refused_upgrade(&format!("/ws/m1/g1?token={}", tok(&m, &["rapporteurs", "g1"])))
        .await;
    assert_eq!((st, err_code(&body)), (404, "unknown_meeting"));
    let (st, body) = s
        .http()
        .call(
            "POST",
            "/api/meetings/m1/tokens",
            Some(ADMIN),
            Some(json!({"role": "participant"})),
        )
        .await;
    assert_eq!((st, err_code(&body)), (404, "unknown_meeting"));
    let (st, body) = s
        .http()
        .call("DELETE", "/api/meetings/m1", Some(ADMIN), None)
        .await;
    assert_eq!((st, err_code(&body)), (404, "unknown_meeting"));
    let (_, list) = s.http().call("GET", "/api/meetings", Some(ADMIN), None).await;
    assert_eq!(list["meetings"].as_array().unwrap().len(), 1);
    // the id may be used again, from scratch
    let again = s.create_meeting("m1", &["g1"]).await;
    let fresh = Peer::connect(s.addr, "m1/plenary", tok(&again, &["participant"]), "")
        .await
        .unwrap();
    wait_until("fresh plenary", || async {
        fresh.json()["groups"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert_eq!(fresh.json()["groups"][0]["conclusions"], json!([]));
    let (_, versions) = s
        .http()
        .call(
            "GET",
            "/api/meetings/m1/versions",
            Some(tok(&again, &["moderator"])),
            None,
        )
        .await;
    assert_eq!(versions["versions"], json!([]));
    // and nothing comes back after a restart
    s.stop().await;
    let s = Server::start(dir.path().into()).await;
    let (st, _) = s
        .http()
        .call("GET", "/api/meetings/m1", Some(&moderator), None)
        .await;
    assert_eq!(st, 401, "the old moderator token is gone");
    s.stop().await;
}
