use super::*;
use yrs::{Doc, Transact};

fn group_doc(items: &[(&str, &str, &str)]) -> Doc {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let arr = txn.get_or_insert_array(layout::CONCLUSIONS);
        for (id, text, status) in items {
            arr.push_back(
                &mut txn,
                MapPrelim::from([
                    (ck::ID, yrs::In::from(*id)),
                    (ck::TEXT, yrs::In::from(TextPrelim::new(*text))),
                    (ck::STATUS, yrs::In::from(*status)),
                    (ck::AUTHOR, yrs::In::from("ana")),
                ]),
            );
        }
    }
    doc
}

fn conclusions(doc: &Doc) -> Vec<Conclusion> {
    read_conclusions(&doc.transact())
}

fn metas() -> Vec<GroupMeta> {
    vec![
        GroupMeta {
            id: "a".into(),
            title: "Group A".into(),
            closed: false,
        },
        GroupMeta {
            id: "b".into(),
            title: "Group B".into(),
            closed: false,
        },
    ]
}

/// Runs one merge; returns the size of the update it produced (0 when nothing changed).
fn run(plenary: &Doc, data: &HashMap<String, Vec<Conclusion>>) -> usize {
    let mut txn = plenary.transact_mut();
    ensure_structure(&mut txn, "m", "Meeting");
    merge(&mut txn, &metas(), data);
    if txn.insert_set().is_empty() && txn.delete_set().is_empty() {
        0
    } else {
        txn.encode_update_v1().len()
    }
}

fn texts(plenary: &Doc, group: usize) -> Vec<(String, String, String)> {
    let json = plenary_json(&plenary.transact());
    json["groups"][group]["conclusions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["text"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn owned(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn inserts_every_group_in_meeting_order_even_without_conclusions() {
    let a = group_doc(&[
        ("1", "Share seizure data", "draft"),
        ("2", "Train officers", "final"),
    ]);
    let plenary = Doc::new();
    let data = HashMap::from([("a".to_string(), conclusions(&a))]);
    assert!(run(&plenary, &data) > 0);
    let json = plenary_json(&plenary.transact());
    assert_eq!(json["groups"][0]["id"], "a");
    assert_eq!(json["groups"][1]["id"], "b");
    assert_eq!(json["groups"][1]["conclusions"], serde_json::json!([]));
    assert_eq!(
        texts(&plenary, 0),
        owned(&[
            ("1", "Share seizure data", "draft"),
            ("2", "Train officers", "final")
        ])
    );
    assert_eq!(json["meta"]["title"], "Meeting");
    assert_eq!(json["curation"]["intro"], "");
}

#[test]
fn merging_twice_changes_nothing() {
    let a = group_doc(&[("1", "x", "draft")]);
    let plenary = Doc::new();
    let data = HashMap::from([("a".to_string(), conclusions(&a))]);
    run(&plenary, &data);
    assert_eq!(run(&plenary, &data), 0);
}

#[test]
fn a_one_character_edit_is_a_small_update() {
    let long = "Strengthen cross-border exchange of ballistic information. ".repeat(20);
    let mut items: Vec<(String, String, String)> = (0..10)
        .map(|i| (i.to_string(), long.clone(), "draft".to_string()))
        .collect();
    let to_data = |items: &Vec<(String, String, String)>| {
        HashMap::from([(
            "a".to_string(),
            items
                .iter()
                .map(|(id, t, s)| Conclusion {
                    id: id.clone(),
                    text: t.clone(),
                    status: s.clone(),
                })
                .collect::<Vec<_>>(),
        )])
    };
    let plenary = Doc::new();
    let full = run(&plenary, &to_data(&items));
    items[4].1.insert(100, 'Z');
    let edit = run(&plenary, &to_data(&items));
    assert!(full > 10_000, "full merge {full} bytes");
    assert!(edit > 0 && edit < 64, "one-character edit produced {edit} bytes");
    assert_eq!(texts(&plenary, 0)[4].1, items[4].1);
}

#[test]
fn edits_deletes_and_status_changes_are_reflected() {
    let plenary = Doc::new();
    let g = group_doc(&[
        ("1", "alpha", "draft"),
        ("2", "beta", "draft"),
        ("3", "gamma", "draft"),
    ]);
    run(&plenary, &HashMap::from([("a".to_string(), conclusions(&g))]));
    let g = group_doc(&[("1", "alpha!", "final"), ("3", "gamma", "draft")]);
    run(&plenary, &HashMap::from([("a".to_string(), conclusions(&g))]));
    assert_eq!(
        texts(&plenary, 0),
        owned(&[("1", "alpha!", "final"), ("3", "gamma", "draft")])
    );
}

#[test]
fn reorder_moves_only_the_moved_item() {
    let plenary = Doc::new();
    let c = |id: &str| Conclusion {
        id: id.into(),
        text: format!("text {id}"),
        status: "draft".into(),
    };
    run(
        &plenary,
        &HashMap::from([("a".to_string(), vec![c("1"), c("2"), c("3"), c("4")])]),
    );
    let before = plenary.transact().state_vector();
    run(
        &plenary,
        &HashMap::from([("a".to_string(), vec![c("4"), c("1"), c("2"), c("3")])]),
    );
    let ids: Vec<String> = texts(&plenary, 0).into_iter().map(|t| t.0).collect();
    assert_eq!(ids, vec!["4", "1", "2", "3"]);
    // only one item was re-inserted: a handful of new structs, not four
    let after = plenary.transact().state_vector();
    let client = plenary.client_id();
    assert!(after.get(&client) - before.get(&client) < 12);
}

#[test]
fn concurrent_edits_in_two_groups_both_arrive() {
    let plenary = Doc::new();
    let a = group_doc(&[("1", "from a", "draft")]);
    let b = group_doc(&[("9", "from b", "final")]);
    let mut data = HashMap::from([("a".to_string(), conclusions(&a))]);
    run(&plenary, &data);
    data.insert("b".to_string(), conclusions(&b));
    run(&plenary, &data);
    assert_eq!(texts(&plenary, 0), owned(&[("1", "from a", "draft")]));
    assert_eq!(texts(&plenary, 1), owned(&[("9", "from b", "final")]));
}

#[test]
fn unicode_edits_keep_char_boundaries() {
    let plenary = Doc::new();
    let c = |t: &str| {
        vec![Conclusion {
            id: "1".into(),
            text: t.into(),
            status: "draft".into(),
        }]
    };
    run(
        &plenary,
        &HashMap::from([("a".to_string(), c("Škopje — ćevapi"))]),
    );
    run(
        &plenary,
        &HashMap::from([("a".to_string(), c("Škopje – ćevapčići"))]),
    );
    assert_eq!(texts(&plenary, 0)[0].1, "Škopje – ćevapčići");
}

#[test]
fn reading_skips_items_without_ids_and_duplicates() {
    let g = group_doc(&[("1", "a", "draft"), ("1", "dup", "draft"), ("2", "b", "weird")]);
    let c = conclusions(&g);
    assert_eq!(c.len(), 2);
    assert_eq!(c[1].status, "draft");
}

#[test]
fn server_owned_parts_are_restored_after_tampering() {
    let plenary = Doc::new();
    let data = HashMap::from([(
        "a".to_string(),
        vec![Conclusion {
            id: "1".into(),
            text: "t".into(),
            status: "draft".into(),
        }],
    )]);
    run(&plenary, &data);
    {
        let mut txn = plenary.transact_mut();
        let groups = txn.get_or_insert_array(pk::GROUPS);
        groups.remove(&mut txn, 0);
    }
    assert!(run(&plenary, &data) > 0);
    assert_eq!(texts(&plenary, 0), owned(&[("1", "t", "draft")]));
    assert_eq!(
        plenary_json(&plenary.transact())["groups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Sets `key` to a string on the conclusion map at array index `i`.
fn set_key(doc: &Doc, i: u32, key: &str, value: &str) {
    let mut txn = doc.transact_mut();
    let arr = txn.get_or_insert_array(layout::CONCLUSIONS);
    let Some(Out::YMap(m)) = arr.get(&txn, i) else {
        panic!("no map at {i}")
    };
    m.insert(&mut txn, key, value);
}

fn ids(doc: &Doc) -> Vec<String> {
    conclusions(doc).into_iter().map(|c| c.id).collect()
}

#[test]
fn order_without_positions_is_array_order() {
    let doc = group_doc(&[
        ("c1", "one", "draft"),
        ("c2", "two", "draft"),
        ("c3", "three", "draft"),
    ]);
    assert_eq!(ids(&doc), ["c1", "c2", "c3"]);
}

#[test]
fn positions_sort_and_unpositioned_items_follow_in_array_order() {
    let doc = group_doc(&[
        ("c1", "one", "draft"),
        ("c2", "two", "draft"),
        ("c3", "three", "draft"),
        ("c4", "four", "draft"),
    ]);
    set_key(&doc, 0, ck::POSITION, "b");
    set_key(&doc, 2, ck::POSITION, "a");
    // c3 (a) < c1 (b); then c2 and c4 without a position, in array order
    assert_eq!(ids(&doc), ["c3", "c1", "c2", "c4"]);
}

#[test]
fn equal_positions_tie_break_by_array_index_and_compare_bytewise() {
    let doc = group_doc(&[
        ("c1", "one", "draft"),
        ("c2", "two", "draft"),
        ("c3", "three", "draft"),
    ]);
    set_key(&doc, 0, ck::POSITION, "a");
    set_key(&doc, 1, ck::POSITION, "a");
    // "Z" (0x5a) sorts before "a" (0x61) as bytes, unlike a case-insensitive or locale order
    set_key(&doc, 2, ck::POSITION, "Z");
    assert_eq!(ids(&doc), ["c3", "c1", "c2"]);
}

#[test]
fn trashed_items_are_left_out_and_empty_trashed_is_live() {
    let doc = group_doc(&[
        ("c1", "one", "draft"),
        ("c2", "two", "draft"),
        ("c3", "three", "draft"),
    ]);
    set_key(&doc, 1, ck::TRASHED, "2026-12-01T11:00:00Z");
    set_key(&doc, 2, ck::TRASHED, "");
    assert_eq!(ids(&doc), ["c1", "c3"]);
}

#[test]
fn a_trashed_copy_does_not_shadow_a_live_item_with_its_id() {
    let doc = group_doc(&[("c1", "old", "draft"), ("c1", "new", "final")]);
    set_key(&doc, 0, ck::TRASHED, "2026-12-01T11:00:00Z");
    let c = conclusions(&doc);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].text, "new");
}

fn edited_at(plenary: &Doc, group: usize) -> serde_json::Value {
    plenary_json(&plenary.transact())["groups"][group][pk::GROUP_EDITED_AT].clone()
}

#[test]
fn stamp_edited_writes_once_a_minute_and_only_its_group() {
    let plenary = Doc::new();
    let data = HashMap::from([(
        "a".to_string(),
        conclusions(&group_doc(&[("c1", "one", "draft")])),
    )]);
    run(&plenary, &data);
    assert_eq!(
        edited_at(&plenary, 0),
        serde_json::Value::Null,
        "no stamp before an edit"
    );

    let stamp = |at: &str| {
        let mut txn = plenary.transact_mut();
        stamp_edited(&mut txn, "b", at)
    };
    assert!(stamp("2026-12-01T11:00:05Z"));
    assert_eq!(edited_at(&plenary, 1), "2026-12-01T11:00:05Z");
    assert_eq!(
        edited_at(&plenary, 0),
        serde_json::Value::Null,
        "the other group is untouched"
    );
    // the same minute: no write at all
    assert!(!stamp("2026-12-01T11:00:59Z"));
    assert_eq!(edited_at(&plenary, 1), "2026-12-01T11:00:05Z");
    // the next minute: rewritten
    assert!(stamp("2026-12-01T11:01:00Z"));
    assert_eq!(edited_at(&plenary, 1), "2026-12-01T11:01:00Z");
    // an unknown group: nothing
    let mut txn = plenary.transact_mut();
    assert!(!stamp_edited(&mut txn, "zz", "2026-12-01T11:02:00Z"));
}

#[test]
fn section_conclusions_reads_what_the_merge_wrote() {
    let plenary = Doc::new();
    let list = conclusions(&group_doc(&[("c1", "one", "final"), ("c2", "two", "draft")]));
    assert!(section_conclusions(&plenary.transact(), "a").is_empty());
    run(&plenary, &HashMap::from([("a".to_string(), list.clone())]));
    assert_eq!(section_conclusions(&plenary.transact(), "a"), list);
    assert!(section_conclusions(&plenary.transact(), "b").is_empty());
}
