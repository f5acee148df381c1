//! The store boundary: every backend keeps the promises of `Store` (the conformance suite in
//! `plenary_server::store::conformance`), the in-memory store's test controls do what they say,
//! and the persister commits in groups, in order, durable before it answers.
//!
//! A backend is one test that builds it and calls [`suite`]. PostgreSQL joins with a case that
//! runs when `PLENARY_TEST_PG_URL` is set (and says it skipped when it is not).

use plenary_server::cluster::Cluster;
use plenary_server::metrics::Metrics;
use plenary_server::store::memory::MemoryStore;
use plenary_server::store::persister::Persister;
use plenary_server::store::sqlite::SqliteStore;
use plenary_server::store::{conformance, DocAppend, Durability, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Every promise of `Store`, checked on `store`.
async fn suite(store: Arc<dyn Store>) {
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_every_promise() {
    suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_every_promise() {
    let dir = tempfile::tempdir().unwrap();
    suite(Arc::new(
        SqliteStore::open(dir.path(), Durability::Process).unwrap(),
    ))
    .await;
    // and once more on the same file, reopened with the other durability: nothing of the
    // first run gets in the way
    suite(Arc::new(
        SqliteStore::open(dir.path(), Durability::Power).unwrap(),
    ))
    .await;
}

/// Resolves `fut` or fails the test after a generous deadline (never a timing assertion: a
/// hang shows up as a failure instead of a stuck run).
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not happen within 20 s"),
    }
}

fn batch(doc: &str, u: &[u8]) -> DocAppend {
    DocAppend {
        doc: doc.into(),
        updates: vec![u.to_vec()],
        fence: None,
    }
}

#[tokio::test]
async fn a_held_append_is_neither_resolved_nor_visible_until_released() {
    let store = Arc::new(MemoryStore::new());
    store.hold_appends();
    let s = store.clone();
    let append = tokio::spawn(async move { s.append(vec![batch("m/g", b"1")]).await });
    within("the append reaches the gate", store.wait_pending_appends(1)).await;
    assert_eq!(store.pending_appends(), 1);
    assert!(
        store.load_doc("m/g").await.unwrap().updates.is_empty(),
        "not stored while held"
    );
    tokio::task::yield_now().await;
    assert!(!append.is_finished(), "the append resolved while held");
    store.release_appends();
    let r = within("the released append", append).await.unwrap().unwrap();
    assert_eq!(r.heads, vec![Some(1)]);
    assert_eq!(store.load_doc("m/g").await.unwrap().updates, vec![b"1".to_vec()]);
    assert_eq!(store.pending_appends(), 0);
}

#[tokio::test]
async fn held_appends_commit_in_call_order_and_a_dropped_one_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    store.hold_appends();
    let mut tasks = Vec::new();
    for (n, doc) in ["m/a", "m/b", "m/c"].into_iter().enumerate() {
        let s = store.clone();
        tasks.push(tokio::spawn(
            async move { s.append(vec![batch(doc, b"x")]).await },
        ));
        within("queued", store.wait_pending_appends(n + 1)).await;
    }
    // a caller that gives up on its append (its future dropped while held) leaves nothing
    let dropped = tasks.remove(1);
    dropped.abort();
    let _ = dropped.await;
    within("the dropped append leaves", async {
        while store.pending_appends() != 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    store.release_appends();
    for t in tasks {
        within("released", t).await.unwrap().unwrap();
    }
    let order: Vec<Vec<String>> = store
        .committed_appends()
        .iter()
        .map(|tx| tx.iter().map(|b| b.doc.clone()).collect())
        .collect();
    assert_eq!(order, vec![vec!["m/a".to_string()], vec!["m/c".to_string()]]);
    assert!(store.load_doc("m/b").await.unwrap().updates.is_empty());
}

#[tokio::test]
async fn an_injected_failure_fails_the_next_append_whole_and_only_it() {
    let store = MemoryStore::new();
    store.fail_next_appends(1);
    let r = store.append(vec![batch("m/a", b"1"), batch("m/b", b"2")]).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        store.load_doc("m/a").await.unwrap().updates.is_empty(),
        "nothing of it is stored"
    );
    assert!(
        store.load_doc("m/b").await.unwrap().updates.is_empty(),
        "nothing of it is stored"
    );
    assert!(store.committed_appends().is_empty());
    store
        .append(vec![batch("m/a", b"3")])
        .await
        .expect("the next one commits");
    assert_eq!(store.load_doc("m/a").await.unwrap().updates, vec![b"3".to_vec()]);
}

/// The persister with a memory store behind it.
fn persister() -> (
    Arc<MemoryStore>,
    Arc<Metrics>,
    Persister,
    tokio::task::JoinHandle<()>,
) {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let (p, task) = Persister::start(store.clone(), metrics.clone(), Cluster::solo());
    (store, metrics, p, task)
}

fn docs_per_transaction(store: &MemoryStore) -> Vec<Vec<String>> {
    store
        .committed_appends()
        .iter()
        .map(|tx| tx.iter().map(|b| b.doc.clone()).collect())
        .collect()
}

#[tokio::test]
async fn the_persister_answers_only_once_the_append_is_durable() {
    let (store, _, p, _task) = persister();
    store.hold_appends();
    let mut done = p.append("m/g".into(), vec![b"1".to_vec()]).await;
    within("the append reaches the store", store.wait_pending_appends(1)).await;
    tokio::task::yield_now().await;
    assert!(
        matches!(
            done.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ),
        "answered before the store committed"
    );
    store.release_appends();
    within("answered", done).await.unwrap().unwrap();
    assert_eq!(store.load_doc("m/g").await.unwrap().updates, vec![b"1".to_vec()]);
}

#[tokio::test]
async fn the_persister_folds_every_append_that_arrived_meanwhile_into_one_transaction() {
    let (store, metrics, p, _task) = persister();
    store.hold_appends();
    let first = p.append("m/a".into(), vec![b"a1".to_vec()]).await;
    within("the first transaction runs", store.wait_pending_appends(1)).await;
    // arrive while the first transaction runs: one transaction after it, in arrival order
    let mut later = Vec::new();
    for (doc, u) in [("m/b", "b1"), ("m/plenary", "p1"), ("m/b", "b2")] {
        later.push(p.append(doc.into(), vec![u.as_bytes().to_vec()]).await);
    }
    store.release_appends();
    within("first", first).await.unwrap().unwrap();
    for rx in later {
        within("later", rx).await.unwrap().unwrap();
    }
    assert_eq!(
        docs_per_transaction(&store),
        vec![vec!["m/a"], vec!["m/b", "m/plenary", "m/b"]]
    );
    assert_eq!(
        store.load_doc("m/b").await.unwrap().updates,
        vec![b"b1".to_vec(), b"b2".to_vec()]
    );
    assert_eq!(metrics.persist_transactions.get(), 2);
    assert_eq!(metrics.updates_persisted.get(), 4);
}

#[tokio::test]
async fn a_compaction_runs_after_the_appends_sent_before_it_and_before_those_after() {
    let (store, metrics, p, _task) = persister();
    store.hold_appends();
    let a1 = p.append("m/a".into(), vec![b"a1".to_vec()]).await;
    within("the first transaction runs", store.wait_pending_appends(1)).await;
    let b1 = p.append("m/b".into(), vec![b"b1".to_vec()]).await;
    let snap = p.compact("m/b".into(), b"S".to_vec(), 1).await;
    let b2 = p.append("m/b".into(), vec![b"b2".to_vec()]).await;
    store.release_appends();
    for rx in [a1, b1, snap, b2] {
        within("answered", rx).await.unwrap().unwrap();
    }
    let b = store.load_doc("m/b").await.unwrap();
    assert_eq!(b.snapshot.as_deref(), Some(&b"S"[..]), "compacted");
    assert_eq!(
        b.updates,
        vec![b"b2".to_vec()],
        "b1 before the snapshot, b2 after it"
    );
    assert_eq!(
        docs_per_transaction(&store),
        vec![vec!["m/a"], vec!["m/b"], vec!["m/b"]],
        "the compaction splits the appends around it"
    );
    assert_eq!(metrics.compactions.get(), 1);
}

#[tokio::test]
async fn a_failed_transaction_fails_each_of_its_appends_and_the_next_one_commits() {
    let (store, metrics, p, _task) = persister();
    store.fail_next_appends(1);
    // sent before the persister task first runs (this runtime has one thread and nothing here
    // yields): one transaction
    let mut failed = Vec::new();
    for doc in ["m/a", "m/b", "m/c"] {
        failed.push(p.append(doc.into(), vec![b"x".to_vec()]).await);
    }
    for rx in failed {
        let r = within("answered", rx).await.unwrap();
        assert!(
            matches!(
                r.as_ref().map_err(|e| e.as_ref()),
                Err(StoreError::Unavailable(_))
            ),
            "{r:?}"
        );
    }
    let ok = p.append("m/a".into(), vec![b"y".to_vec()]).await;
    within("answered", ok).await.unwrap().unwrap();
    assert_eq!(store.load_doc("m/a").await.unwrap().updates, vec![b"y".to_vec()]);
    assert!(store.load_doc("m/b").await.unwrap().updates.is_empty());
    assert_eq!(
        metrics.persist_transactions.get(),
        1,
        "only the committed one counts"
    );
    assert_eq!(metrics.updates_persisted.get(), 1);
}

#[tokio::test]
async fn the_persister_finishes_its_queue_when_the_last_handle_is_dropped() {
    let (store, _, p, task) = persister();
    store.hold_appends();
    let a = p.append("m/a".into(), vec![b"1".to_vec()]).await;
    within("running", store.wait_pending_appends(1)).await;
    let b = p.append("m/a".into(), vec![b"2".to_vec()]).await;
    drop(p);
    store.release_appends();
    within("the task ends", task).await.unwrap();
    within("a", a).await.unwrap().unwrap();
    within("b", b).await.unwrap().unwrap();
    assert_eq!(
        store.load_doc("m/a").await.unwrap().updates,
        vec![b"1".to_vec(), b"2".to_vec()]
    );
}

/// The plenary's durability ordering rests on this: a derived append (the plenary's merge of a
/// group's conclusions) is sent after the group's append it derives from, and the persister
/// never makes a later append durable before an earlier one.
#[tokio::test]
async fn an_append_sent_after_another_is_never_durable_before_it() {
    let (store, _, p, _task) = persister();
    store.hold_appends();
    let group = p.append("m/g1".into(), vec![b"g".to_vec()]).await;
    within("the group's append runs", store.wait_pending_appends(1)).await;
    let mut plenary = p.append("m/plenary".into(), vec![b"p".to_vec()]).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        matches!(
            plenary.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ),
        "the plenary's append was answered while the group's is not durable"
    );
    assert!(store.load_doc("m/plenary").await.unwrap().updates.is_empty());
    store.release_appends();
    within("group", group).await.unwrap().unwrap();
    within("plenary", plenary).await.unwrap().unwrap();
    assert_eq!(
        docs_per_transaction(&store),
        vec![vec!["m/g1"], vec!["m/plenary"]]
    );
}

/// PostgreSQL keeps every promise too, on a fresh database of the cluster that
/// `PLENARY_TEST_PG_URL` names (`scripts/pg.sh`); skipped with a message when it is unset, a
/// failure when `PLENARY_REQUIRE_PG=1` (as `scripts/test.sh` sets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_keeps_every_promise() {
    use plenary_server::store::postgres::{testing, PostgresStore};
    let Some(admin) = testing::test_url() else { return };
    let url = testing::fresh_database(&admin).await.expect("a test database");
    suite(Arc::new(PostgresStore::open(&url).await.expect("open"))).await;
    // A second node on the same database, run after the first: nothing of it gets in the way.
    suite(Arc::new(PostgresStore::open(&url).await.expect("open again"))).await;
}

/// `plenary migrate`: everything of an embedded store is in PostgreSQL afterwards, read back
/// through the same trait; a second copy into the now non-empty database is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_an_embedded_store_into_postgres() {
    use plenary_server::store::postgres::{import, testing, PostgresStore};
    let Some(admin) = testing::test_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let from = SqliteStore::open(dir.path(), Durability::Process).unwrap();
    // Fill the source through the conformance suite's own data, plus a compacted document.
    conformance::run_all(Arc::new(
        SqliteStore::open(dir.path(), Durability::Process).unwrap(),
    ))
    .await;
    from.append(vec![batch("mig/g", b"1"), batch("mig/g", b"2")])
        .await
        .unwrap();
    from.compact("mig/g", b"snap".to_vec(), 2).await.unwrap();
    from.append(vec![batch("mig/g", b"3")]).await.unwrap();
    let url = testing::fresh_database(&admin).await.expect("a test database");
    let to = PostgresStore::open(&url).await.expect("open");
    let copied = import::copy(&from, &to).await.expect("copy");
    assert!(copied.updates >= 1 && copied.snapshots >= 1, "{copied:?}");
    assert_eq!(
        from.admin_token_hash().await.unwrap(),
        to.admin_token_hash().await.unwrap()
    );
    // Tokens in no promised order: compare them sorted.
    let sorted = |mut v: Vec<(
        plenary_server::store::MeetingRecord,
        Vec<plenary_server::store::TokenRecord>,
    )>| {
        for (_, t) in &mut v {
            t.sort_by_key(|t| t.hash.0);
        }
        v
    };
    assert_eq!(
        sorted(from.meetings().await.unwrap()),
        sorted(to.meetings().await.unwrap())
    );
    assert_eq!(from.doc_keys().await.unwrap(), to.doc_keys().await.unwrap());
    for doc in from.doc_keys().await.unwrap() {
        let (a, b) = (
            from.load_doc(&doc).await.unwrap(),
            to.load_doc(&doc).await.unwrap(),
        );
        assert_eq!((a.snapshot, a.updates), (b.snapshot, b.updates), "{doc}");
        assert_eq!(
            from.revisions(&doc).await.unwrap(),
            to.revisions(&doc).await.unwrap(),
            "{doc}"
        );
    }
    for (m, _) in from.meetings().await.unwrap() {
        assert_eq!(
            from.versions(&m.id).await.unwrap(),
            to.versions(&m.id).await.unwrap()
        );
    }
    let d = to.load_doc("mig/g").await.unwrap();
    assert_eq!(
        (d.snapshot, d.updates),
        (Some(b"snap".to_vec()), vec![b"3".to_vec()])
    );
    assert!(matches!(
        import::copy(&from, &to).await,
        Err(import::CopyError::TargetNotEmpty(_))
    ));
}

mod rings {
    //! On a shared store the persister rings the other nodes after each commit: one ring per
    //! batch with its range and bytes, never for a transaction that did not commit, never in
    //! the way of the next commit.

    use super::*;
    use plenary_server::cluster::rings::{decode, Ring, Rings};
    use plenary_server::cluster::transport::{Channel, Heard, LocalBus, SendFuture, Transport};
    use tokio::sync::broadcast;

    /// A node on a shared store whose transport is `bus`, with a memory store behind it.
    fn node(transport: Arc<dyn Transport>) -> (Arc<MemoryStore>, Arc<Metrics>, Arc<Cluster>, Persister) {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(Metrics::new());
        let cluster = Cluster::node(transport);
        let (p, _task) = Persister::start(store.clone(), metrics.clone(), cluster.clone());
        (store, metrics, cluster, p)
    }

    async fn next_rings(rx: &mut broadcast::Receiver<Heard>) -> Rings {
        match within("a ring", rx.recv()).await.expect("heard") {
            Heard::Message {
                channel: Channel::Docs,
                payload,
            } => decode(&payload).expect("a ring payload"),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn ring(doc: &str, first: i64, updates: &[&[u8]]) -> Ring {
        Ring {
            doc: doc.into(),
            first,
            last: first + updates.len() as i64 - 1,
            updates: Some(updates.iter().map(|u| u.to_vec()).collect()),
        }
    }

    #[tokio::test]
    async fn each_committed_transaction_rings_its_batches_after_the_commit() {
        let bus = LocalBus::default();
        let mut heard = bus.subscribe();
        let (store, metrics, cluster, p) = node(Arc::new(bus));
        store.hold_appends();
        let first = p.append("m/a".into(), vec![b"a1".to_vec()]).await;
        within("the first transaction runs", store.wait_pending_appends(1)).await;
        let mut later = Vec::new();
        for (doc, u) in [("m/b", &b"b1"[..]), ("m/a", b"a2"), ("m/a", b"a3")] {
            later.push(p.append(doc.into(), vec![u.to_vec()]).await);
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(heard.try_recv().is_err(), "rung before the commit");
        store.release_appends();
        assert_eq!(within("first", first).await.unwrap().unwrap(), Some(1));
        let heads: Vec<Option<i64>> = futures_util::future::join_all(later)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert_eq!(heads, vec![Some(1), Some(2), Some(3)], "each append's head");
        let r = next_rings(&mut heard).await;
        assert_eq!(r.node, cluster.node);
        assert!(r.sent_at_ms.is_some_and(|t| t > 0), "stamped: {r:?}");
        assert_eq!(r.rings, vec![ring("m/a", 1, &[b"a1"])]);
        let r = next_rings(&mut heard).await;
        assert_eq!(
            r.rings,
            vec![
                ring("m/b", 1, &[b"b1"]),
                ring("m/a", 2, &[b"a2"]),
                ring("m/a", 3, &[b"a3"])
            ],
            "one ring per batch of the second transaction, in order"
        );
        // a batch of several updates rings its whole range
        let rx = p.append("m/b".into(), vec![b"b2".to_vec(), b"b3".to_vec()]).await;
        assert_eq!(within("append", rx).await.unwrap().unwrap(), Some(3));
        assert_eq!(
            next_rings(&mut heard).await.rings,
            vec![ring("m/b", 2, &[b"b2", b"b3"])]
        );
        assert_eq!(metrics.cluster_rings_sent.get(), 5);
        assert_eq!(metrics.cluster_ring_failures.get(), 0);
    }

    #[tokio::test]
    async fn a_failed_transaction_rings_nothing() {
        let bus = LocalBus::default();
        let mut heard = bus.subscribe();
        let (store, metrics, _cluster, p) = node(Arc::new(bus));
        store.fail_next_appends(1);
        let failed = p.append("m/a".into(), vec![b"lost".to_vec()]).await;
        assert!(within("failed", failed).await.unwrap().is_err());
        let ok = p.append("m/a".into(), vec![b"kept".to_vec()]).await;
        assert_eq!(within("ok", ok).await.unwrap().unwrap(), Some(1));
        // the first thing heard is the committed one's ring
        assert_eq!(
            next_rings(&mut heard).await.rings,
            vec![ring("m/a", 1, &[b"kept"])]
        );
        assert!(heard.try_recv().is_err(), "nothing else rung");
        assert_eq!(metrics.cluster_rings_sent.get(), 1);
    }

    /// A transport whose sends fail, or never finish (counting those given up).
    struct Broken {
        hang: bool,
        bus: LocalBus,
        given_up: Arc<std::sync::atomic::AtomicUsize>,
    }

    /// Counts a hung send dropped before it finished.
    struct GivenUp(Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for GivenUp {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Transport for Broken {
        fn send(&self, _: Channel, _: Vec<String>) -> SendFuture<'_> {
            if self.hang {
                let guard = GivenUp(self.given_up.clone());
                Box::pin(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                    Ok(())
                })
            } else {
                Box::pin(async { Err("the transport is down".into()) })
            }
        }
        fn subscribe(&self) -> broadcast::Receiver<Heard> {
            self.bus.subscribe()
        }
    }

    #[tokio::test]
    async fn a_failing_transport_is_counted_and_never_holds_up_a_commit() {
        let (store, metrics, _c, p) = node(Arc::new(Broken {
            hang: false,
            bus: LocalBus::default(),
            given_up: Default::default(),
        }));
        for i in 1..=3 {
            let rx = p.append("m/a".into(), vec![vec![i as u8]]).await;
            assert_eq!(within("commit", rx).await.unwrap().unwrap(), Some(i));
        }
        within("the failures are counted", async {
            while metrics.cluster_ring_failures.get() < 3 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert_eq!(metrics.cluster_rings_sent.get(), 0);
        assert_eq!(store.load_doc("m/a").await.unwrap().updates.len(), 3);
    }

    #[tokio::test]
    async fn a_hung_transport_never_holds_up_a_commit() {
        let given_up = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (store, _metrics, _c, p) = node(Arc::new(Broken {
            hang: true,
            bus: LocalBus::default(),
            given_up: given_up.clone(),
        }));
        for i in 1..=8 {
            let rx = p.append("m/a".into(), vec![vec![i as u8]]).await;
            assert_eq!(within("commit", rx).await.unwrap().unwrap(), Some(i));
        }
        assert_eq!(store.load_doc("m/a").await.unwrap().updates.len(), 8);
        assert_eq!(
            given_up.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "every commit was answered while the first ring was still being sent"
        );
    }

    #[tokio::test]
    async fn a_node_alone_on_its_store_rings_nothing() {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(Metrics::new());
        let cluster = Cluster::solo();
        let mut heard = cluster.transport.subscribe();
        let (p, _task) = Persister::start(store.clone(), metrics.clone(), cluster.clone());
        let rx = p.append("m/a".into(), vec![b"1".to_vec()]).await;
        assert_eq!(within("commit", rx).await.unwrap().unwrap(), Some(1));
        // A later ring on the same bus arrives first: nothing was queued before it.
        cluster
            .transport
            .send(Channel::Docs, vec!["marker".into()])
            .await
            .unwrap();
        match within("the marker", heard.recv()).await.unwrap() {
            Heard::Message { payload, .. } => assert_eq!(&*payload, "marker"),
            other => panic!("{other:?}"),
        }
        assert_eq!(metrics.cluster_rings_sent.get(), 0);
    }
}
