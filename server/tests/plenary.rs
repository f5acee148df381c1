//! The live plenary summary, curation, closing groups and the offline export, end to end.

mod common;

use common::*;
use plenary_protocol::layout::{conclusion as ck, plenary as pk, CONCLUSIONS};
use yrs::{Array, In, Map, MapPrelim, Out, Text, TextPrelim, WriteTxn};

fn add_conclusion(p: &Peer, id: &str, text: &str) {
    p.edit(|t| {
        let arr = t.get_or_insert_array(CONCLUSIONS);
        arr.push_back(
            t,
            MapPrelim::from([
                (ck::ID, In::from(id)),
                (ck::TEXT, In::from(TextPrelim::new(text))),
                (ck::STATUS, In::from("draft")),
                (ck::AUTHOR, In::from("test")),
            ]),
        );
    });
}

fn conclusion_texts(p: &Peer, group: usize) -> Vec<String> {
    p.json()["groups"][group]["conclusions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plenary_follows_groups_curation_is_moderated_and_export_matches() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1", "g2"]).await;
    let r1 = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    let r2 = Peer::connect(s.addr, "m1/g2", tok(&m, &["rapporteurs", "g2"]), "")
        .await
        .unwrap();
    let follower = Peer::connect(s.addr, "m1/plenary", tok(&m, &["participant"]), "")
        .await
        .unwrap();
    add_conclusion(&r1, "c1", "Share seizure data");
    add_conclusion(&r1, "c2", "Train border guards");
    add_conclusion(&r2, "d1", "Watch blank-firing conversions");
    wait_until("plenary shows both groups", || async {
        conclusion_texts(&follower, 0) == ["Share seizure data", "Train border guards"]
            && conclusion_texts(&follower, 1) == ["Watch blank-firing conversions"]
    })
    .await;
    // a keystroke in a group arrives as a small update
    let before = follower.got.lock().unwrap().update_bytes;
    r1.edit(|t| {
        let arr = t.get_or_insert_array(CONCLUSIONS);
        if let Some(Out::YMap(c)) = arr.get(t, 0) {
            if let Some(Out::YText(text)) = c.get(t, ck::TEXT) {
                text.insert(t, 5, "!");
            }
        }
    });
    wait_until("edit reaches plenary", || async {
        conclusion_texts(&follower, 0)[0] == "Share! seizure data"
    })
    .await;
    let per_keystroke = follower.got.lock().unwrap().update_bytes - before;
    assert!(per_keystroke < 100, "a keystroke cost {per_keystroke} bytes");

    // curation: refused from a rapporteur, accepted from the moderator
    let rap_on_plenary = Peer::connect(s.addr, "m1/plenary", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    wait_until("rapporteur synced", || async {
        rap_on_plenary.json()["curation"]["hidden"].is_object()
    })
    .await;
    rap_on_plenary.edit(|t| {
        let cur = t.get_or_insert_map(pk::CURATION);
        if let Some(Out::YMap(h)) = cur.get(t, pk::HIDDEN) {
            h.insert(t, "g1/c2", true);
        }
    });
    wait_until("rapporteur refused", || async {
        !rap_on_plenary.got.lock().unwrap().auth_denials.is_empty()
    })
    .await;
    let moderator = Peer::connect(s.addr, "m1/plenary", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("moderator synced", || async {
        moderator.json()["curation"]["hidden"].is_object()
    })
    .await;
    moderator.edit(|t| {
        let cur = t.get_or_insert_map(pk::CURATION);
        if let Some(Out::YMap(h)) = cur.get(t, pk::HIDDEN) {
            h.insert(t, "g1/c2", true);
        }
        cur.insert(
            t,
            pk::ORDER,
            yrs::Any::from(vec![yrs::Any::from("g2"), yrs::Any::from("g1")]),
        );
    });
    wait_until("follower sees curation", || async {
        follower.json()["curation"]["hidden"]["g1/c2"] == true
    })
    .await;
    assert!(moderator.got.lock().unwrap().auth_denials.is_empty());
    // ...but not the server's parts of the plenary
    let other_mod = Peer::connect(s.addr, "m1/plenary", tok(&m, &["moderator"]), "")
        .await
        .unwrap();
    wait_until("second moderator synced", || async {
        other_mod.json()["groups"][0]["conclusions"].is_array()
    })
    .await;
    other_mod.edit(|t| {
        let groups = t.get_or_insert_array(pk::GROUPS);
        groups.remove(t, 0);
    });
    wait_until("tampering refused", || async {
        !other_mod.got.lock().unwrap().auth_denials.is_empty()
    })
    .await;
    assert_eq!(follower.json()["groups"].as_array().unwrap().len(), 2);
    let (st, body) = s
        .http()
        .get("/api/meetings/m1/summary.json", Some(tok(&m, &["participant"])))
        .await;
    assert_eq!(st, 200);
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["groups"][0]["id"], "g2");
    assert_eq!(summary["groups"][1]["conclusions"].as_array().unwrap().len(), 1);

    // closing a group: writes refused on the open socket, nobody disconnected
    let (st, _) = s
        .http()
        .post_json(
            "/api/meetings/m1/groups/g2/close",
            Some(tok(&m, &["moderator"])),
            "",
        )
        .await;
    assert_eq!(st, 200);
    add_conclusion(&r2, "d2", "too late");
    wait_until("closed group refuses", || async {
        !r2.got.lock().unwrap().auth_denials.is_empty()
    })
    .await;
    assert!(r2.close_code().is_none());
    wait_until("plenary shows closed", || async {
        follower.json()["groups"][1]["closed"] == true
    })
    .await;
    s.stop().await;

    // the offline export reads the same summary from the data dir
    let out = tempfile::tempdir().unwrap();
    plenary_server::export::run(&plenary_server::config::ExportArgs {
        data_dir: dir.path().into(),
        meeting: "m1".into(),
        out: out.path().into(),
        version: None,
        notes: false,
    })
    .await
    .unwrap();
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.starts_with("# Meeting m1\n"));
    assert!(md.find("## Group g2").unwrap() < md.find("## Group g1").unwrap());
    assert!(md.contains("- 2.1 Share! seizure data *(draft)*\n"), "{md}");
    assert!(!md.contains("Train border guards"), "hidden item exported:\n{md}");
    assert!(!md.contains("too late"));
    let html = std::fs::read_to_string(out.path().join("summary.html")).unwrap();
    assert!(html.contains("<h2>Group g1</h2>"));
}
