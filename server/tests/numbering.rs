//! Exports carry the one `G.N` numbering and an adopted version's label and time; `plenary
//! export` writes all five files; `plenary backup` copies a running server's store.

mod common;

use common::*;
use plenary_protocol::layout::{conclusion as ck, plenary as pk, CONCLUSIONS};
use serde_json::{json, Value};
use yrs::{Array, In, Map, MapPrelim, Out, TextPrelim, WriteTxn};

fn add(p: &Peer, id: &str, text: &str, status: &str) {
    p.edit(|t| {
        let arr = t.get_or_insert_array(CONCLUSIONS);
        arr.push_back(
            t,
            MapPrelim::from([
                (ck::ID, In::from(id)),
                (ck::TEXT, In::from(TextPrelim::new(text))),
                (ck::STATUS, In::from(status)),
                (ck::AUTHOR, In::from("test")),
            ]),
        );
    });
}

async fn get_json(s: &Server, path: &str, token: &str) -> Value {
    let (st, body) = s.http().get(path, Some(token)).await;
    assert_eq!(st, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// (key, number) of every numbered conclusion of an exported summary.json.
fn numbers_of(j: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in j["groups"].as_array().unwrap() {
        for c in g["conclusions"].as_array().unwrap() {
            out.push((
                format!("{}/{}", g["id"].as_str().unwrap(), c["id"].as_str().unwrap()),
                c["number"].as_str().unwrap_or("<none>").to_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_numbered_like_the_minutes_and_versions_carry_label_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path().into()).await;
    let m = s.create_meeting("m1", &["g1", "g2", "g3"]).await;
    let part = tok(&m, &["participant"]).to_owned();
    let moderator_tok = tok(&m, &["moderator"]).to_owned();
    let r1 = Peer::connect(s.addr, "m1/g1", tok(&m, &["rapporteurs", "g1"]), "")
        .await
        .unwrap();
    let r2 = Peer::connect(s.addr, "m1/g2", tok(&m, &["rapporteurs", "g2"]), "")
        .await
        .unwrap();
    add(&r1, "a", "First of g1", "final");
    add(&r1, "b", "Hidden *one*", "draft");
    add(&r1, "blank", "   ", "draft");
    add(&r1, "c", "Third <b>bold</b> **x**", "draft");
    add(&r2, "d", "Only of g2", "final");
    let moderator = Peer::connect(s.addr, "m1/plenary", &moderator_tok, "")
        .await
        .unwrap();
    wait_until("merged", || async {
        let j = moderator.json();
        j["groups"][0]["conclusions"]
            .as_array()
            .is_some_and(|a| a.len() == 4)
            && j["groups"][1]["conclusions"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    })
    .await;
    moderator.edit(|t| {
        let cur = t.get_or_insert_map(pk::CURATION);
        if let Some(Out::YMap(h)) = cur.get(t, pk::HIDDEN) {
            h.insert(t, "g1/b", true);
        }
        cur.insert(
            t,
            pk::ORDER,
            yrs::Any::from(vec![yrs::Any::from("g2"), yrs::Any::from("g3")]),
        );
    });
    wait_until("curation in the export", || async {
        let j = get_json(&s, "/api/meetings/m1/summary.json", &part).await;
        j["groups"][0]["id"] == "g2"
            && j["groups"][2]["conclusions"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    })
    .await;
    let j = get_json(&s, "/api/meetings/m1/summary.json", &part).await;
    // the numbers of summary.json are the minutes' numbering of the same summary
    let want: Vec<(String, String)> = vec![
        ("g2/d".into(), "1.1".into()),
        ("g1/a".into(), "3.1".into()),
        ("g1/c".into(), "3.2".into()),
    ];
    assert_eq!(numbers_of(&j), want, "{j}");
    let parsed: plenary_server::plenary::summary::Summary = serde_json::from_value(j.clone()).unwrap();
    assert_eq!(plenary_server::minutes::labels_by_key(&parsed), want);
    // the contract's fields stay
    assert_eq!(j["groups"][2]["conclusions"][0]["text"], "First of g1");
    assert_eq!(j["groups"][2]["conclusions"][0]["status"], "final");
    assert_eq!(j["groups"][1]["conclusions"], json!([]));
    assert!(j.get("version").is_none());

    // Markdown: numbered items, drafts marked, escaping intact
    let (_, md) = s.http().get("/api/meetings/m1/summary.md", Some(&part)).await;
    assert!(md.contains("## Group g2\n\n- 1.1 Only of g2\n"), "{md}");
    assert!(
        md.contains("- 3.1 First of g1\n- 3.2 Third &lt;b&gt;bold&lt;/b&gt; \\*\\*x\\*\\* *(draft)*\n"),
        "{md}"
    );
    assert!(!md.contains("Hidden") && !md.contains('<'), "{md}");
    // HTML: numbers and draft marks, escaped
    let (_, html) = s.http().get("/api/meetings/m1/summary.html", Some(&part)).await;
    assert!(
        html.contains("<li><span class=\"num\">1.1</span> Only of g2</li>"),
        "{html}"
    );
    assert!(
        html.contains("<li><span class=\"num\">3.2</span> Third &lt;b&gt;bold&lt;/b&gt; **x** <span class=\"draft\">(draft)</span></li>"),
        "{html}"
    );
    assert!(!html.contains("class=\"version\""));

    // an adopted version's files carry its label and adoption time
    let (st, v) = s
        .http()
        .post_json(
            "/api/meetings/m1/versions",
            Some(&moderator_tok),
            r#"{"label":"Final text"}"#,
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let at = v["created_at"].as_str().unwrap().to_owned();
    let vj = get_json(&s, "/api/meetings/m1/versions/v1/summary.json", &part).await;
    assert_eq!(
        vj["version"],
        json!({"id": "v1", "label": "Final text", "adopted_at": at})
    );
    assert_eq!(numbers_of(&vj), want);
    let human = plenary_server::minutes::human_time(&at);
    let (_, vmd) = s
        .http()
        .get("/api/meetings/m1/versions/v1/summary.md", Some(&part))
        .await;
    assert!(
        vmd.contains(&format!("*Adopted version \u{ab}Final text\u{bb}, {human}*")),
        "{vmd}"
    );
    assert!(vmd.contains("- 3.1 First of g1\n"), "{vmd}");
    let (_, vhtml) = s
        .http()
        .get("/api/meetings/m1/versions/v1/summary.html", Some(&part))
        .await;
    assert!(
        vhtml.contains(&format!(
            "<p class=\"version\">Adopted version \u{ab}Final text\u{bb}, {human}</p>"
        )),
        "{vhtml}"
    );
    // the live files say nothing of a version
    let (_, md) = s.http().get("/api/meetings/m1/summary.md", Some(&part)).await;
    assert!(!md.contains("Adopted version"), "{md}");

    // `plenary backup` while the server runs: the file opens and holds the meeting
    let backup = dir.path().join("backup.db");
    plenary_server::export::backup(&plenary_server::config::BackupArgs {
        data_dir: dir.path().into(),
        to: backup.clone(),
    })
    .unwrap();
    {
        let conn = rusqlite::Connection::open(&backup).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let title: String = conn
            .query_row("SELECT title FROM meetings WHERE id = 'm1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(title, "Meeting m1");
        let groups: i64 = conn
            .query_row("SELECT COUNT(*) FROM groups WHERE meeting_id = 'm1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(groups, 3);
        let docs: i64 = conn
            .query_row("SELECT COUNT(*) FROM doc_updates WHERE doc = 'm1/g1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(docs > 0);
    }
    s.stop().await;

    // a server started on the restored file serves the meeting as before
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, restored.path().join("plenary.db")).unwrap();
    let s2 = Server::start(restored.path().into()).await;
    let j2 = get_json(&s2, "/api/meetings/m1/summary.json", &part).await;
    assert_eq!(numbers_of(&j2), want);
    s2.stop().await;

    // `plenary export` writes the five files, for the live summary and a version
    for version in [None, Some("v1".to_owned())] {
        let out = tempfile::tempdir().unwrap();
        plenary_server::export::run(&plenary_server::config::ExportArgs {
            data_dir: dir.path().into(),
            meeting: "m1".into(),
            out: out.path().into(),
            version: version.clone(),
            notes: true,
        })
        .await
        .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "summary.docx",
                "summary.html",
                "summary.json",
                "summary.md",
                "summary.pdf"
            ]
        );
        let read = |n: &str| std::fs::read(out.path().join(n)).unwrap();
        assert!(read("summary.pdf").starts_with(b"%PDF-"));
        assert!(read("summary.docx").starts_with(b"PK"));
        let j: Value = serde_json::from_slice(&read("summary.json")).unwrap();
        assert_eq!(numbers_of(&j), want);
        assert_eq!(
            j["version"]["label"].as_str(),
            version.as_ref().map(|_| "Final text")
        );
        let md = String::from_utf8(read("summary.md")).unwrap();
        assert!(md.contains("- 1.1 Only of g2\n"), "{md}");
        assert_eq!(md.contains("Adopted version"), version.is_some(), "{md}");
    }
}
