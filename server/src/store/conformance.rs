//! The promises of [`Store`], checked against any implementation: `server/tests/store.rs` runs
//! [`run_all`] on [`super::memory::MemoryStore`] and on a real SQLite file; a new backend
//! adds one line there.
//!
//! Every check works on meetings and documents named after its own `prefix` (a fresh one per
//! run: [`run_all`] draws it), so the checks can share one store, even a database kept between
//! runs, and never assume it is empty. A failed promise panics with what differed.

use super::*;
use std::sync::Arc;

/// Runs every check on `store`, one after the other.
pub async fn run_all(store: Arc<dyn Store>) {
    let p = run_prefix();
    admin_token(&store).await;
    meetings_round_trip_in_order(&store, &p).await;
    insert_meeting_conflicts_and_stores_nothing(&store, &p).await;
    meeting_and_group_settings(&store, &p).await;
    replace_token_swaps_one_role(&store, &p).await;
    add_group_at_the_end(&store, &p).await;
    appends_keep_order_and_report_heads(&store, &p).await;
    concurrent_appends_all_land_in_order(&store, &p).await;
    compact_replaces_the_log(&store, &p).await;
    sequence_numbers_count_per_document(&store, &p).await;
    compact_covers_up_to_its_number_and_keeps_later_updates(&store, &p).await;
    updates_after_reads_the_tail_of_the_log(&store, &p).await;
    doc_keys_list_stored_documents(&store, &p).await;
    versions_round_trip(&store, &p).await;
    revisions_number_per_document(&store, &p).await;
    delete_meeting_removes_every_row(&store, &p).await;
    directory_epoch_moves_with_every_directory_change(&store, &p).await;
}

/// A prefix of ids no earlier run used: `c` and 8 random lowercase hex digits.
pub fn run_prefix() -> String {
    format!("c{:08x}", rand::random::<u32>())
}

fn mid(p: &str, name: &str) -> MeetingId {
    MeetingId::parse(&format!("{p}-{name}")).expect("test meeting id")
}

fn gid(name: &str) -> GroupId {
    GroupId::parse(name).expect("test group id")
}

fn meeting(id: &MeetingId, created_at: &str, groups: &[&str]) -> MeetingRecord {
    MeetingRecord {
        id: id.clone(),
        title: format!("Meeting {id}"),
        created_at: created_at.to_owned(),
        short_title: None,
        notes_private: false,
        groups: groups
            .iter()
            .map(|g| GroupRecord {
                id: gid(g),
                title: format!("Group {g}"),
                closed: false,
                short_title: None,
            })
            .collect(),
    }
}

fn token(m: &MeetingId, secret: &str, role: Role) -> TokenRecord {
    TokenRecord {
        hash: TokenHash::of(&format!("{m}:{secret}")),
        meeting: m.clone(),
        role,
    }
}

/// A version as the checks that only need one store it.
fn version_v1() -> VersionRecord {
    VersionRecord {
        id: "v1".into(),
        label: "V".into(),
        created_at: "2020-01-01T00:00:00Z".into(),
        summary_json: "{}".into(),
    }
}

fn sorted(mut h: Vec<TokenHash>) -> Vec<TokenHash> {
    h.sort_by_key(|h| h.0);
    h
}

/// The stored meeting `id` with its tokens (sorted by hash), if any.
async fn find(store: &Arc<dyn Store>, id: &MeetingId) -> Option<(MeetingRecord, Vec<TokenHash>)> {
    store
        .meetings()
        .await
        .expect("meetings")
        .into_iter()
        .find(|(m, _)| &m.id == id)
        .map(|(m, t)| {
            assert!(
                t.iter().all(|t| &t.meeting == id),
                "tokens of {id} name another meeting"
            );
            (m, sorted(t.into_iter().map(|t| t.hash).collect()))
        })
}

fn batch(doc: &str, updates: &[&[u8]]) -> DocAppend {
    DocAppend {
        doc: doc.to_owned(),
        updates: updates.iter().map(|u| u.to_vec()).collect(),
        fence: None,
    }
}

/// The admin token's hash: none is not an error; a set replaces the previous one.
pub async fn admin_token(store: &Arc<dyn Store>) {
    let a = TokenHash::of(&run_prefix());
    let b = TokenHash::of(&run_prefix());
    store.set_admin_token_hash(&a).await.expect("set admin");
    assert_eq!(store.admin_token_hash().await.expect("admin"), Some(a));
    store.set_admin_token_hash(&b).await.expect("set admin again");
    assert_eq!(
        store.admin_token_hash().await.expect("admin"),
        Some(b),
        "set replaces"
    );
}

/// A meeting comes back as inserted (groups in order, every token with its role); meetings
/// are listed by `created_at`, then id.
pub async fn meetings_round_trip_in_order(store: &Arc<dyn Store>, p: &str) {
    let (m1, m2, m3) = (mid(p, "rt-b"), mid(p, "rt-a"), mid(p, "rt-c"));
    let mut rec1 = meeting(&m1, "2020-01-01T10:00:00Z", &["g2", "g1", "g3"]);
    rec1.short_title = Some("Short".into());
    rec1.notes_private = true;
    rec1.groups[1].closed = true;
    rec1.groups[2].short_title = Some("G3".into());
    let tokens1 = vec![
        token(&m1, "mod", Role::Moderator),
        token(&m1, "part", Role::Participant),
        token(&m1, "rap2", Role::Rapporteur("g2".into())),
        token(&m1, "rap1", Role::Rapporteur("g1".into())),
    ];
    // inserted out of listing order: m2 has the same created_at as m1 and a smaller id,
    // m3 an earlier created_at
    let rec2 = meeting(&m2, "2020-01-01T10:00:00Z", &[]);
    let rec3 = meeting(&m3, "2019-12-31T23:59:59Z", &["g1"]);
    store.insert_meeting(&rec1, &tokens1).await.expect("insert m1");
    store.insert_meeting(&rec2, &[]).await.expect("insert m2");
    store.insert_meeting(&rec3, &[]).await.expect("insert m3");

    let all = store.meetings().await.expect("meetings");
    let (stored, tokens) = all.iter().find(|(m, _)| m.id == m1).expect("m1 listed");
    assert_eq!(stored, &rec1, "meeting round trip");
    let mut got = tokens.clone();
    got.sort_by_key(|t| t.hash.0);
    let mut want = tokens1.clone();
    want.sort_by_key(|t| t.hash.0);
    assert_eq!(got, want, "tokens round trip with their roles");
    let order: Vec<&MeetingId> = all
        .iter()
        .map(|(m, _)| &m.id)
        .filter(|id| [&m1, &m2, &m3].contains(id))
        .collect();
    assert_eq!(order, vec![&m3, &m2, &m1], "meetings by created_at, then id");
}

/// Inserting an existing id is `Conflict` and stores nothing of the second meeting.
pub async fn insert_meeting_conflicts_and_stores_nothing(store: &Arc<dyn Store>, p: &str) {
    let m = mid(p, "conflict");
    let rec = meeting(&m, "2020-01-01T00:00:00Z", &["g1"]);
    let first = token(&m, "mod", Role::Moderator);
    store
        .insert_meeting(&rec, std::slice::from_ref(&first))
        .await
        .expect("insert");
    let mut again = meeting(&m, "2021-01-01T00:00:00Z", &["g1", "g2"]);
    again.title = "Other".into();
    let second = token(&m, "mod-2", Role::Moderator);
    let r = store.insert_meeting(&again, std::slice::from_ref(&second)).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "second insert: {r:?}");
    let (stored, tokens) = find(store, &m).await.expect("still there");
    assert_eq!(stored, rec, "the first meeting is untouched");
    assert_eq!(
        tokens,
        vec![first.hash],
        "the second insert's token is not stored"
    );
}

/// Titles, short titles, the private-notes flag and closed flags; `NotFound` for an unknown
/// meeting or group.
pub async fn meeting_and_group_settings(store: &Arc<dyn Store>, p: &str) {
    let m = mid(p, "settings");
    let mut want = meeting(&m, "2020-01-01T00:00:00Z", &["g1", "g2"]);
    store.insert_meeting(&want, &[]).await.expect("insert");
    let (g1, g2) = (gid("g1"), gid("g2"));

    store
        .set_meeting_titles(&m, "New", Some("N"))
        .await
        .expect("titles");
    want.title = "New".into();
    want.short_title = Some("N".into());
    assert_eq!(find(store, &m).await.expect("meeting").0, want);
    store
        .set_meeting_titles(&m, "Newer", None)
        .await
        .expect("clear short");
    want.title = "Newer".into();
    want.short_title = None;
    assert_eq!(find(store, &m).await.expect("meeting").0, want);

    store.set_notes_private(&m, true).await.expect("private");
    want.notes_private = true;
    assert_eq!(find(store, &m).await.expect("meeting").0, want);
    store.set_notes_private(&m, false).await.expect("public");
    want.notes_private = false;

    store.set_group_closed(&m, &g2, true).await.expect("close g2");
    want.groups[1].closed = true;
    assert_eq!(find(store, &m).await.expect("meeting").0, want, "only g2 closed");
    store.set_group_closed(&m, &g2, false).await.expect("reopen g2");
    want.groups[1].closed = false;

    store
        .set_group_titles(&m, &g1, "Renamed", Some("R"))
        .await
        .expect("group titles");
    want.groups[0].title = "Renamed".into();
    want.groups[0].short_title = Some("R".into());
    assert_eq!(find(store, &m).await.expect("meeting").0, want, "only g1 renamed");

    let nobody = mid(p, "settings-nobody");
    let g9 = gid("g9");
    let not_found = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::NotFound)), "{what}: {r:?}");
    };
    not_found(
        store.set_meeting_titles(&nobody, "x", None).await,
        "titles of an unknown meeting",
    );
    not_found(
        store.set_notes_private(&nobody, true).await,
        "notes of an unknown meeting",
    );
    not_found(
        store.set_group_closed(&nobody, &g1, true).await,
        "close in an unknown meeting",
    );
    not_found(
        store.set_group_closed(&m, &g9, true).await,
        "close an unknown group",
    );
    not_found(
        store.set_group_titles(&m, &g9, "x", None).await,
        "rename an unknown group",
    );
    not_found(
        store.set_group_titles(&nobody, &g1, "x", None).await,
        "rename in an unknown meeting",
    );
    assert_eq!(
        find(store, &m).await.expect("meeting").0,
        want,
        "failed calls change nothing"
    );
}

/// `replace_token` removes every token of that role (that group, for a rapporteur) and only
/// those, returns their hashes, and stores the new one; `NotFound` for an unknown meeting.
pub async fn replace_token_swaps_one_role(store: &Arc<dyn Store>, p: &str) {
    let m = mid(p, "rotate");
    let rec = meeting(&m, "2020-01-01T00:00:00Z", &["g1", "g2"]);
    let m_other = mid(p, "rotate-other");
    let other = token(&m_other, "part", Role::Participant);
    let tokens = [
        token(&m, "mod", Role::Moderator),
        token(&m, "part-a", Role::Participant),
        token(&m, "part-b", Role::Participant),
        token(&m, "rap1", Role::Rapporteur("g1".into())),
        token(&m, "rap2", Role::Rapporteur("g2".into())),
    ];
    store.insert_meeting(&rec, &tokens).await.expect("insert");
    store
        .insert_meeting(
            &meeting(&m_other, "2020-01-01T00:00:00Z", &[]),
            std::slice::from_ref(&other),
        )
        .await
        .expect("insert other");

    let part = token(&m, "part-new", Role::Participant);
    let old = store.replace_token(&part).await.expect("rotate participant");
    assert_eq!(sorted(old), sorted(vec![tokens[1].hash, tokens[2].hash]));
    let rap = token(&m, "rap1-new", Role::Rapporteur("g1".into()));
    let old = store.replace_token(&rap).await.expect("rotate g1's rapporteur");
    assert_eq!(old, vec![tokens[3].hash], "only g1's rapporteur");
    let (_, now) = find(store, &m).await.expect("meeting");
    assert_eq!(
        now,
        sorted(vec![tokens[0].hash, part.hash, rap.hash, tokens[4].hash]),
        "moderator and g2 untouched"
    );
    assert_eq!(
        find(store, &m_other).await.expect("other").1,
        vec![other.hash],
        "another meeting's participant untouched"
    );

    // a role without a token: nothing removed, the new one stored
    let m_bare = mid(p, "rotate-bare");
    store
        .insert_meeting(&meeting(&m_bare, "2020-01-01T00:00:00Z", &[]), &[])
        .await
        .expect("insert bare");
    let first = token(&m_bare, "mod", Role::Moderator);
    assert_eq!(store.replace_token(&first).await.expect("first"), vec![]);
    assert_eq!(find(store, &m_bare).await.expect("bare").1, vec![first.hash]);

    let nobody = token(&mid(p, "rotate-nobody"), "x", Role::Moderator);
    let r = store.replace_token(&nobody).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "unknown meeting: {r:?}");
}

/// `add_group` puts the group last with its token; `NotFound` for an unknown meeting,
/// `Conflict` for an existing group (and its token is not stored).
pub async fn add_group_at_the_end(store: &Arc<dyn Store>, p: &str) {
    let m = mid(p, "addgroup");
    let mut want = meeting(&m, "2020-01-01T00:00:00Z", &["g2", "g1"]);
    store.insert_meeting(&want, &[]).await.expect("insert");
    let g0 = GroupRecord {
        id: gid("g0"),
        title: "Zero".into(),
        closed: false,
        short_title: Some("0".into()),
    };
    let t0 = token(&m, "rap0", Role::Rapporteur("g0".into()));
    store.add_group(&m, &g0, &t0).await.expect("add g0");
    want.groups.push(g0.clone());
    let (stored, tokens) = find(store, &m).await.expect("meeting");
    assert_eq!(stored, want, "the new group comes last, whatever its id");
    assert_eq!(tokens, vec![t0.hash]);

    let dup = token(&m, "rap0-dup", Role::Rapporteur("g1".into()));
    let g1 = GroupRecord {
        title: "Again".into(),
        ..want.groups[1].clone()
    };
    let r = store.add_group(&m, &g1, &dup).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "existing group: {r:?}");
    let (stored, tokens) = find(store, &m).await.expect("meeting");
    assert_eq!(stored, want, "a refused group changes nothing");
    assert_eq!(tokens, vec![t0.hash], "a refused group's token is not stored");

    let nobody = mid(p, "addgroup-nobody");
    let r = store
        .add_group(&nobody, &g0, &token(&nobody, "x", Role::Rapporteur("g0".into())))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "unknown meeting: {r:?}");
    assert!(find(store, &nobody).await.is_none());
}

/// Updates are logged in append order, batch after batch and call after call, each
/// document apart; one call reports one head per batch, growing per document.
pub async fn appends_keep_order_and_report_heads(store: &Arc<dyn Store>, p: &str) {
    let (a, b) = (format!("{p}-append/g1"), format!("{p}-append/plenary"));
    let unknown = store
        .load_doc(&format!("{p}-append/nothing"))
        .await
        .expect("load unknown");
    assert!(
        unknown.snapshot.is_none() && unknown.updates.is_empty(),
        "unknown doc is empty"
    );
    assert_eq!(unknown.head, 0, "an unknown doc's head is 0");

    let r1 = store
        .append(vec![
            batch(&a, &[b"a1", b"a2"]),
            batch(&b, &[b"b1"]),
            batch(&a, &[b"a3"]),
        ])
        .await
        .expect("append 1");
    assert_eq!(r1.heads.len(), 3, "one head per batch: {r1:?}");
    let r2 = store
        .append(vec![
            batch(&b, &[]),
            batch(&a, &[b"a4"]),
            batch(&b, &[b"b2", b"b3"]),
        ])
        .await
        .expect("append 2");
    assert_eq!(r2.heads.len(), 3, "one head per batch: {r2:?}");
    assert_eq!(r2.heads[0], None, "an empty batch has no head");
    // numbered per document, batch after batch: a gets 1 2 | 3 | 4, b gets 1 | 2 3
    assert_eq!(
        r1.heads,
        vec![Some(2), Some(1), Some(3)],
        "heads of the first call"
    );
    assert_eq!(r2.heads, vec![None, Some(4), Some(3)], "heads of the second call");

    let heads = |doc: &str| -> Vec<i64> {
        [(&r1, [&a, &b, &a]), (&r2, [&b, &a, &b])]
            .iter()
            .flat_map(|(r, docs)| r.heads.iter().zip(docs.iter()).filter(|(_, d)| **d == doc))
            .filter_map(|(h, _)| *h)
            .collect()
    };
    for doc in [&a, &b] {
        let h = heads(doc);
        assert!(
            h.windows(2).all(|w| w[0] < w[1]),
            "{doc}: heads grow strictly: {h:?}"
        );
    }
    let da = store.load_doc(&a).await.expect("load a");
    assert_eq!(
        da.updates,
        vec![b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec(), b"a4".to_vec()]
    );
    assert!(da.snapshot.is_none());
    assert_eq!(da.head, 4, "a's head is its last update's number");
    let db = store.load_doc(&b).await.expect("load b");
    assert_eq!(db.updates, vec![b"b1".to_vec(), b"b2".to_vec(), b"b3".to_vec()]);
    assert_eq!(db.head, 3);
}

/// Sequence numbers are per document: 1, 2, 3, … in commit order without a gap, whatever
/// other documents do in between; `heads` answers each document's, in the order asked, 0 for
/// an unknown one.
pub async fn sequence_numbers_count_per_document(store: &Arc<dyn Store>, p: &str) {
    let (a, b) = (format!("{p}-seq/g1"), format!("{p}-seq/g2"));
    let mut want_a = Vec::new();
    for i in 1..=5i64 {
        let r = store
            .append(vec![batch(&b, &[b"b"]), batch(&a, &[b"a"])])
            .await
            .expect("append");
        assert_eq!(r.heads, vec![Some(i), Some(i)], "round {i}");
        want_a.push(i);
    }
    let tail = store.updates_after(&a, 0).await.expect("tail");
    let seqs: Vec<i64> = tail.updates.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, want_a, "a's numbers have no gap");
    let unknown = format!("{p}-seq/g9");
    let asked = vec![b.clone(), unknown.clone(), a.clone(), b.clone()];
    assert_eq!(
        store.heads(&asked).await.expect("heads"),
        vec![5, 0, 5, 5],
        "heads in the order asked, 0 for an unknown document"
    );
    assert_eq!(store.heads(&[]).await.expect("no heads"), Vec::<i64>::new());
    store
        .append(vec![batch(&a, &[b"x", b"y"])])
        .await
        .expect("append");
    assert_eq!(
        store.heads(&[a.clone(), b.clone()]).await.expect("heads"),
        vec![7, 5],
        "a head moves with its own document only"
    );
}

/// `compact(doc, snapshot, covers)` drops exactly the updates up to `covers`: later ones (as
/// another node may have appended) stay and load after the snapshot; numbers are never
/// reused; a stale compaction (below the snapshot's number) changes nothing; `covers` above
/// the head is taken as the head.
pub async fn compact_covers_up_to_its_number_and_keeps_later_updates(store: &Arc<dyn Store>, p: &str) {
    let a = format!("{p}-covers/g1");
    let ups: Vec<Vec<u8>> = (1..=5).map(|i| format!("u{i}").into_bytes()).collect();
    let r = store
        .append(vec![DocAppend {
            doc: a.clone(),
            updates: ups.clone(),
            fence: None,
        }])
        .await
        .expect("append");
    assert_eq!(r.heads, vec![Some(5)]);
    store.compact(&a, b"S3".to_vec(), 3).await.expect("compact to 3");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(d.snapshot.as_deref(), Some(&b"S3"[..]));
    assert_eq!(
        d.updates,
        ups[3..].to_vec(),
        "updates 4 and 5 stay after the snapshot"
    );
    assert_eq!(d.head, 5);

    // a stale compaction (covering less than the stored snapshot) changes nothing
    store
        .compact(&a, b"S1".to_vec(), 1)
        .await
        .expect("stale compaction");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(
        d.snapshot.as_deref(),
        Some(&b"S3"[..]),
        "the stale snapshot is not stored"
    );
    assert_eq!(d.updates, ups[3..].to_vec());

    // covering everything: the snapshot alone, its number is the head
    store.compact(&a, b"S5".to_vec(), 5).await.expect("compact to 5");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(
        (d.snapshot.as_deref(), d.updates.len(), d.head),
        (Some(&b"S5"[..]), 0, 5)
    );
    let r = store
        .append(vec![batch(&a, &[b"u6"])])
        .await
        .expect("append after");
    assert_eq!(r.heads, vec![Some(6)], "numbers go on after a compaction");

    // covers above the head: taken as the head, so the next append is not taken as covered
    store
        .compact(&a, b"S6".to_vec(), 100)
        .await
        .expect("compact past the head");
    store
        .append(vec![batch(&a, &[b"u7"])])
        .await
        .expect("append after");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(d.snapshot.as_deref(), Some(&b"S6"[..]));
    assert_eq!(d.updates, vec![b"u7".to_vec()], "u7 loads after the snapshot");
    assert_eq!(d.head, 7);
    let t = store.updates_after(&a, 6).await.expect("tail");
    assert_eq!(
        (t.snapshot, t.updates, t.head),
        (None, vec![(7, b"u7".to_vec())], 7),
        "the snapshot covers 6, not 100"
    );
}

/// `updates_after(doc, n)`: the logged updates above `n` with their numbers, and the snapshot
/// too when some of them were folded into it; the head in the same read.
pub async fn updates_after_reads_the_tail_of_the_log(store: &Arc<dyn Store>, p: &str) {
    let a = format!("{p}-after/g1");
    let unknown = store
        .updates_after(&format!("{p}-after/g9"), 0)
        .await
        .expect("unknown");
    assert_eq!(
        unknown,
        DocTail::default(),
        "an unknown document has an empty tail, head 0"
    );
    let ups: Vec<Vec<u8>> = (1..=4).map(|i| format!("u{i}").into_bytes()).collect();
    store
        .append(vec![DocAppend {
            doc: a.clone(),
            updates: ups.clone(),
            fence: None,
        }])
        .await
        .expect("append");
    let numbered = |from: usize| -> Vec<(i64, Vec<u8>)> {
        ups.iter()
            .enumerate()
            .skip(from)
            .map(|(i, u)| (i as i64 + 1, u.clone()))
            .collect()
    };
    let t = store.updates_after(&a, 0).await.expect("all");
    assert_eq!(
        (t.snapshot.clone(), t.updates.clone(), t.head),
        (None, numbered(0), 4)
    );
    let t = store.updates_after(&a, 2).await.expect("after 2");
    assert_eq!(
        (t.snapshot.clone(), t.updates.clone(), t.head),
        (None, numbered(2), 4)
    );
    let t = store.updates_after(&a, 4).await.expect("after the head");
    assert_eq!((t.snapshot.clone(), t.updates.len(), t.head), (None, 0, 4));

    store.compact(&a, b"S2".to_vec(), 2).await.expect("compact to 2");
    for after in [0, 1] {
        let t = store.updates_after(&a, after).await.expect("below the snapshot");
        assert_eq!(
            (t.snapshot.as_deref(), t.updates.clone(), t.head),
            (Some(&b"S2"[..]), numbered(2), 4),
            "after {after}: the snapshot and the updates after it"
        );
    }
    let t = store.updates_after(&a, 2).await.expect("at the snapshot");
    assert_eq!((t.snapshot, t.updates, t.head), (None, numbered(2), 4));
    let t = store.updates_after(&a, 3).await.expect("after 3");
    assert_eq!((t.snapshot, t.updates, t.head), (None, numbered(3), 4));
}

/// Appends from many tasks at once all land; each task's updates stay in its order.
pub async fn concurrent_appends_all_land_in_order(store: &Arc<dyn Store>, p: &str) {
    const TASKS: usize = 8;
    const EACH: usize = 16;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let doc = format!("{p}-concurrent/g{t}");
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .append(vec![batch(&doc, &[format!("{t}:{i}").as_bytes()])])
                    .await
                    .expect("concurrent append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("append task");
    }
    for t in 0..TASKS {
        let got = store
            .load_doc(&format!("{p}-concurrent/g{t}"))
            .await
            .expect("load");
        let want: Vec<Vec<u8>> = (0..EACH).map(|i| format!("{t}:{i}").into_bytes()).collect();
        assert_eq!(got.updates, want, "task {t}'s updates in order");
    }
}

/// `compact` replaces the snapshot and drops the log of that document only; later appends
/// follow the snapshot and keep growing heads.
pub async fn compact_replaces_the_log(store: &Arc<dyn Store>, p: &str) {
    let (a, b) = (format!("{p}-compact/g1"), format!("{p}-compact/g2"));
    let before = store
        .append(vec![batch(&a, &[b"1", b"2"]), batch(&b, &[b"x"])])
        .await
        .expect("append");
    store.compact(&a, b"S1".to_vec(), 2).await.expect("compact");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(d.snapshot.as_deref(), Some(&b"S1"[..]));
    assert!(d.updates.is_empty(), "the log is dropped: {:?}", d.updates);
    assert_eq!(
        store.load_doc(&b).await.expect("load b").updates,
        vec![b"x".to_vec()],
        "other doc kept"
    );

    let after = store
        .append(vec![batch(&a, &[b"3"])])
        .await
        .expect("append after");
    assert!(
        after.heads[0] > before.heads[0],
        "heads keep growing across a compaction: {before:?} then {after:?}"
    );
    store
        .compact(&a, b"S2".to_vec(), after.heads[0].expect("head"))
        .await
        .expect("compact again");
    store
        .append(vec![batch(&a, &[b"4"])])
        .await
        .expect("append after again");
    let d = store.load_doc(&a).await.expect("load");
    assert_eq!(
        d.snapshot.as_deref(),
        Some(&b"S2"[..]),
        "the snapshot is replaced"
    );
    assert_eq!(d.updates, vec![b"4".to_vec()]);

    // a compaction alone makes a document
    let c = format!("{p}-compact/g3");
    store.compact(&c, b"only".to_vec(), 0).await.expect("compact new");
    let d = store.load_doc(&c).await.expect("load");
    assert_eq!((d.snapshot.as_deref(), d.updates.len()), (Some(&b"only"[..]), 0));
}

/// `doc_keys` lists, sorted, every document with a snapshot or logged updates.
pub async fn doc_keys_list_stored_documents(store: &Arc<dyn Store>, p: &str) {
    let logged = format!("{p}-keys/g2");
    let snap = format!("{p}-keys/g1");
    let both = format!("{p}-keys/plenary");
    store
        .append(vec![
            batch(&logged, &[b"u"]),
            batch(&both, &[b"u"]),
            batch(&format!("{p}-keys/g9"), &[]),
        ])
        .await
        .expect("append");
    store.compact(&snap, b"s".to_vec(), 0).await.expect("compact");
    store.compact(&both, b"s".to_vec(), 1).await.expect("compact");
    store.append(vec![batch(&both, &[b"v"])]).await.expect("append");
    let keys = store.doc_keys().await.expect("doc keys");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    let ours: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{p}-keys/")))
        .collect();
    assert_eq!(
        ours,
        vec![&snap, &logged, &both],
        "an empty batch makes no document"
    );
}

/// Versions come back per meeting by `created_at`, then id; a repeated id is `Conflict`.
pub async fn versions_round_trip(store: &Arc<dyn Store>, p: &str) {
    let (m, other) = (mid(p, "versions"), mid(p, "versions-other"));
    for id in [&m, &other] {
        store
            .insert_meeting(&meeting(id, "2020-01-01T00:00:00Z", &[]), &[])
            .await
            .expect("insert");
    }
    let v = |id: &str, at: &str| VersionRecord {
        id: id.into(),
        label: format!("Version {id}"),
        created_at: at.into(),
        summary_json: format!("{{\"v\":\"{id}\"}}"),
    };
    let (v2, v1, v3) = (
        v("v2", "2020-01-01T12:00:00Z"),
        v("v1", "2020-01-01T11:00:00Z"),
        v("v3", "2020-01-01T12:00:00Z"),
    );
    assert_eq!(store.versions(&m).await.expect("none yet"), vec![]);
    for x in [&v3, &v2, &v1] {
        store.insert_version(&m, x).await.expect("insert version");
    }
    store
        .insert_version(&other, &v1)
        .await
        .expect("same id, other meeting");
    let again = VersionRecord {
        label: "Other".into(),
        ..v2.clone()
    };
    let r = store.insert_version(&m, &again).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "repeated id: {r:?}");
    assert_eq!(
        store.versions(&m).await.expect("versions"),
        vec![v1.clone(), v2, v3]
    );
    assert_eq!(store.versions(&other).await.expect("other's"), vec![v1]);
}

/// Revisions are numbered 1, 2, … per document, listed oldest first, read back with their
/// data; an unknown id is `None`.
pub async fn revisions_number_per_document(store: &Arc<dyn Store>, p: &str) {
    let (a, b) = (format!("{p}-revisions/g1"), format!("{p}-revisions/g2"));
    assert_eq!(store.revisions(&a).await.expect("none yet"), vec![]);
    let id1 = store
        .insert_revision(&a, "2020-01-01T00:00:00Z", "interval", b"one".to_vec())
        .await
        .expect("revision 1");
    let idb = store
        .insert_revision(&b, "2020-01-01T00:00:01Z", "closed", b"bee".to_vec())
        .await
        .expect("revision of b");
    let id2 = store
        .insert_revision(&a, "2020-01-01T00:00:02Z", "closed", b"two".to_vec())
        .await
        .expect("revision 2");
    assert_eq!((id1, id2, idb), (1, 2, 1), "numbered per document");
    let rec = |id, at: &str, reason: &str| RevisionRecord {
        id,
        created_at: at.into(),
        reason: reason.into(),
    };
    assert_eq!(
        store.revisions(&a).await.expect("list"),
        vec![
            rec(1, "2020-01-01T00:00:00Z", "interval"),
            rec(2, "2020-01-01T00:00:02Z", "closed")
        ]
    );
    assert_eq!(
        store.revision(&a, 2).await.expect("read"),
        Some((rec(2, "2020-01-01T00:00:02Z", "closed"), b"two".to_vec()))
    );
    assert_eq!(
        store.revision(&b, 1).await.expect("read b").map(|(_, d)| d),
        Some(b"bee".to_vec())
    );
    assert_eq!(store.revision(&a, 3).await.expect("read unknown"), None);
}

/// `delete_meeting` removes the meeting, its tokens, versions, every document's log, snapshot
/// and revisions, and nothing of another meeting (not even one whose id starts with its id);
/// deleting it again is `NotFound`.
pub async fn delete_meeting_removes_every_row(store: &Arc<dyn Store>, p: &str) {
    let (m, near) = (mid(p, "del"), mid(p, "del-2"));
    let mut docs = Vec::new();
    for id in [&m, &near] {
        store
            .insert_meeting(
                &meeting(id, "2020-01-01T00:00:00Z", &["g1"]),
                &[
                    token(id, "mod", Role::Moderator),
                    token(id, "rap", Role::Rapporteur("g1".into())),
                ],
            )
            .await
            .expect("insert");
        let (g, pl) = (format!("{id}/g1"), format!("{id}/plenary"));
        store
            .append(vec![batch(&g, &[b"u1"]), batch(&pl, &[b"p1"])])
            .await
            .expect("append");
        store.compact(&pl, b"snap".to_vec(), 1).await.expect("compact");
        store
            .append(vec![batch(&pl, &[b"p2"])])
            .await
            .expect("append after");
        store
            .insert_revision(&g, "2020-01-01T00:00:00Z", "closed", b"r".to_vec())
            .await
            .expect("revision");
        store.insert_version(id, &version_v1()).await.expect("version");
        docs.push((g, pl));
    }
    store.delete_meeting(&m).await.expect("delete");
    assert_eq!(
        store
            .heads(&[docs[0].0.clone(), docs[0].1.clone(), docs[1].1.clone()])
            .await
            .expect("heads"),
        vec![0, 0, 2],
        "a deleted meeting's documents have no head; the other's stay"
    );

    assert!(find(store, &m).await.is_none(), "the meeting is gone");
    for doc in [&docs[0].0, &docs[0].1] {
        let d = store.load_doc(doc).await.expect("load");
        assert!(d.snapshot.is_none() && d.updates.is_empty(), "{doc} is gone");
        assert_eq!(
            store.revisions(doc).await.expect("revisions"),
            vec![],
            "{doc}'s revisions"
        );
    }
    assert!(
        !store
            .doc_keys()
            .await
            .expect("keys")
            .iter()
            .any(|k| k.starts_with(&format!("{m}/"))),
        "no document of the meeting is listed"
    );
    assert_eq!(
        store.versions(&m).await.expect("versions"),
        vec![],
        "versions are gone"
    );

    let (kept, tokens) = find(store, &near).await.expect("the other meeting stays");
    assert_eq!(kept.groups.len(), 1);
    assert_eq!(tokens.len(), 2, "its tokens stay");
    assert_eq!(
        store.load_doc(&docs[1].0).await.expect("load").updates,
        vec![b"u1".to_vec()]
    );
    let pl = store.load_doc(&docs[1].1).await.expect("load");
    assert_eq!(
        (pl.snapshot.as_deref(), pl.updates.len()),
        (Some(&b"snap"[..]), 1)
    );
    assert_eq!(store.revisions(&docs[1].0).await.expect("revisions").len(), 1);
    assert_eq!(store.versions(&near).await.expect("versions").len(), 1);

    // the meeting can be made again, from nothing
    store
        .insert_meeting(&meeting(&m, "2020-01-01T00:00:00Z", &[]), &[])
        .await
        .expect("insert again after delete");
    assert_eq!(
        find(store, &m).await.expect("again").1,
        vec![],
        "no old token comes back"
    );
    store.delete_meeting(&m).await.expect("delete again");
    let r = store.delete_meeting(&m).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "deleting twice: {r:?}");
}

/// [`Store::directory_epoch`], where a store keeps one: every committed change of a meeting, its
/// groups or its tokens moves it; a refused change, document writes, versions, revisions and the
/// admin token leave it.
pub async fn directory_epoch_moves_with_every_directory_change(store: &Arc<dyn Store>, p: &str) {
    async fn epoch(store: &Arc<dyn Store>) -> Option<i64> {
        store.directory_epoch().await.expect("directory epoch")
    }
    let Some(mut last) = epoch(store).await else {
        return;
    };
    let mut check = |now: Option<i64>, what: &str, moves: bool| {
        let now = now.unwrap_or_else(|| panic!("after {what}, the store keeps no epoch"));
        if moves {
            assert_ne!(now, last, "{what} must move the directory epoch");
        } else {
            assert_eq!(now, last, "{what} must leave the directory epoch");
        }
        last = now;
    };
    let m = mid(p, "epoch");
    let (g1, g2) = (gid("g1"), gid("g2"));
    let record = meeting(&m, "2020-01-01T00:00:00Z", &["g1"]);
    store
        .insert_meeting(&record, &[token(&m, "mod", Role::Moderator)])
        .await
        .expect("insert");
    check(epoch(store).await, "a new meeting", true);
    let r = store.insert_meeting(&record, &[]).await;
    assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
    check(epoch(store).await, "a refused meeting", false);

    store.set_meeting_titles(&m, "T", None).await.expect("titles");
    check(epoch(store).await, "new titles", true);
    store.set_notes_private(&m, true).await.expect("private");
    check(epoch(store).await, "private notes", true);
    store.set_group_closed(&m, &g1, true).await.expect("close");
    check(epoch(store).await, "a closed group", true);
    store
        .set_group_titles(&m, &g1, "G", Some("g"))
        .await
        .expect("group titles");
    check(epoch(store).await, "a renamed group", true);
    store
        .replace_token(&token(&m, "mod2", Role::Moderator))
        .await
        .expect("replace token");
    check(epoch(store).await, "a replaced token", true);
    let g2_record = GroupRecord {
        id: g2.clone(),
        title: "Two".into(),
        closed: false,
        short_title: None,
    };
    store
        .add_group(&m, &g2_record, &token(&m, "rap2", Role::Rapporteur("g2".into())))
        .await
        .expect("add group");
    check(epoch(store).await, "a new group", true);

    let doc = format!("{m}/g1");
    store.append(vec![batch(&doc, &[b"u"])]).await.expect("append");
    store.compact(&doc, b"snap".to_vec(), 1).await.expect("compact");
    store
        .insert_revision(&doc, "2020-01-01T00:00:00Z", "closed", b"r".to_vec())
        .await
        .expect("revision");
    store.insert_version(&m, &version_v1()).await.expect("version");
    store
        .set_admin_token_hash(&TokenHash::of(&run_prefix()))
        .await
        .expect("admin");
    check(
        epoch(store).await,
        "documents, versions and the admin token",
        false,
    );

    store.delete_meeting(&m).await.expect("delete");
    check(epoch(store).await, "a deleted meeting", true);
}
