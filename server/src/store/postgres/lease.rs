//! Plenary leases in PostgreSQL (`plenary_leases`, migration 2), and the fence a merge's write
//! checks in its own transaction.
//!
//! Every time is the database's (`now()`): nodes' clocks never meet. A lease is granted until
//! `now() + ttl`; a holder renews it while it has not expired (same epoch); any node takes an
//! expired (or handed back) lease, raising its epoch by one — also the former holder, whose
//! lapse may have let another node merge meanwhile. [`check_fences`] locks the rows it checks
//! (`FOR SHARE`) until the append's commit, so a takeover waits for an append that found the
//! lease valid; and such a transaction may not sit idle for longer than a TTL (a paused node's
//! open transaction is ended by the server), so a takeover waits at most that long.

use crate::cluster::leases::{LeaseFuture, LeaseStore};
use crate::store::{Fence, StoreError};
use deadpool_postgres::Pool;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a transaction holding fenced writes may sit idle before the server ends it: the
/// default lease TTL, so that a takeover never waits on a paused former holder for longer.
pub const FENCED_IDLE_LIMIT: Duration = crate::cluster::lease::LeaseTiming::DEFAULT_TTL;

fn err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("{} ({})", db.message(), db.code().code())),
        None => StoreError::Unavailable(e.to_string()),
    }
}

/// The leases of one database.
#[derive(Clone)]
pub struct PgLeases {
    pool: Pool,
}

impl PgLeases {
    pub fn new(pool: Pool) -> PgLeases {
        PgLeases { pool }
    }

    async fn take_now(
        &self,
        holder: &str,
        meetings: &[String],
        ttl: Duration,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
        let ttl_ms = ttl.as_millis() as f64;
        // Rows are written in meeting order (no deadlock between nodes asking for overlapping
        // sets). A row held by someone else and not expired is left alone: no row returned.
        let stmt = c
            .prepare_cached(
                r#"INSERT INTO plenary_leases AS l (meeting_id, holder, epoch, expires_at)
                   SELECT m, $1, 1, now() + $3 * interval '1 millisecond'
                   FROM unnest($2::text[]) AS t(m) ORDER BY m COLLATE "C"
                   ON CONFLICT (meeting_id) DO UPDATE SET
                     epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                                  THEN l.epoch ELSE l.epoch + 1 END,
                     holder = excluded.holder,
                     expires_at = excluded.expires_at
                   WHERE l.holder = excluded.holder OR l.expires_at <= now()
                   RETURNING meeting_id, epoch"#,
            )
            .await
            .map_err(err)?;
        let rows = c
            .query(&stmt, &[&holder, &meetings, &ttl_ms])
            .await
            .map_err(err)?;
        let mut out: Vec<(String, i64)> = rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        out.sort();
        Ok(out)
    }

    async fn hand_back_now(&self, holder: &str, meetings: &[String]) -> Result<(), StoreError> {
        let c = self
            .pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
        c.execute(
            "UPDATE plenary_leases SET expires_at = now()
             WHERE holder = $1 AND meeting_id = ANY($2) AND expires_at > now()",
            &[&holder, &meetings],
        )
        .await
        .map_err(err)?;
        Ok(())
    }
}

impl LeaseStore for PgLeases {
    fn take<'a>(
        &'a self,
        holder: &'a str,
        meetings: &'a [String],
        ttl: Duration,
    ) -> LeaseFuture<'a, Vec<(String, i64)>> {
        Box::pin(self.take_now(holder, meetings, ttl))
    }

    fn hand_back<'a>(&'a self, holder: &'a str, meetings: &'a [String]) -> LeaseFuture<'a, ()> {
        Box::pin(self.hand_back_now(holder, meetings))
    }
}

/// Inside an append's transaction, before anything is written: every fence's lease is still
/// its holder's under its epoch and not expired on the database's clock; locks those rows until
/// the commit. `Err(Fenced(meetings))` names every fence that fails (the caller rolls back).
pub async fn check_fences(tx: &tokio_postgres::Transaction<'_>, fences: &[&Fence]) -> Result<(), StoreError> {
    if fences.is_empty() {
        return Ok(());
    }
    // One claim per meeting (a group commit may carry several batches of one plenary).
    let mut claims: BTreeMap<&str, &Fence> = BTreeMap::new();
    let mut conflicting = Vec::new();
    for f in fences {
        if let Some(other) = claims.insert(f.meeting.as_str(), f) {
            if other != *f {
                conflicting.push(f.meeting.clone());
            }
        }
    }
    let limit = format!(
        "SET LOCAL idle_in_transaction_session_timeout = {}",
        FENCED_IDLE_LIMIT.as_millis()
    );
    tx.batch_execute(&limit).await.map_err(err)?;
    let meetings: Vec<&str> = claims.keys().copied().collect();
    let holders: Vec<&str> = claims.values().map(|f| f.holder.as_str()).collect();
    let epochs: Vec<i64> = claims.values().map(|f| f.epoch).collect();
    let rows = tx
        .query(
            r#"SELECT l.meeting_id FROM plenary_leases l
               JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS f(m, h, e)
                 ON l.meeting_id = f.m AND l.holder = f.h AND l.epoch = f.e
               WHERE l.expires_at > now()
               ORDER BY l.meeting_id COLLATE "C"
               FOR SHARE OF l"#,
            &[&meetings, &holders, &epochs],
        )
        .await
        .map_err(err)?;
    let valid: Vec<String> = rows.into_iter().map(|r| r.get(0)).collect();
    let mut failed: Vec<String> = meetings
        .iter()
        .filter(|m| !valid.iter().any(|v| v == *m))
        .map(|m| m.to_string())
        .collect();
    failed.extend(conflicting);
    failed.sort();
    failed.dedup();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Fenced(failed))
    }
}

/// `--durability replicated`: the server must have synchronous standbys (named in
/// `synchronous_standby_names`, and at least one connected as `sync` or `quorum`), so that a
/// commit is on another machine before it returns. The reason it is refused otherwise.
pub async fn check_synchronous_standbys(pool: &Pool) -> Result<(), String> {
    let c = pool.get().await.map_err(|e| format!("PostgreSQL: {e}"))?;
    let names: String = c
        .query_one("SHOW synchronous_standby_names", &[])
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?
        .get(0);
    if names.trim().is_empty() {
        return Err(
            "--durability replicated: the PostgreSQL server has no synchronous standby \
             (synchronous_standby_names is empty); configure one, or use --durability process"
                .into(),
        );
    }
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')",
            &[],
        )
        .await
        .map_err(|e| format!("PostgreSQL: {e}"))?
        .get(0);
    if n == 0 {
        return Err(format!(
            "--durability replicated: synchronous_standby_names is {names:?} but no synchronous \
             standby is connected (pg_stat_replication has no `sync` or `quorum` row)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{testing, PostgresStore};
    use crate::store::{DocAppend, Store};

    const TTL: Duration = Duration::from_secs(3);

    async fn fresh() -> Option<(String, PostgresStore)> {
        let admin = testing::test_url()?;
        let url = testing::fresh_database(&admin).await.expect("a test database");
        let store = PostgresStore::open(&url).await.expect("open");
        Some((url, store))
    }

    fn ms(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Moves a lease's expiry on the database's clock (a holder paused past its lease).
    async fn expire(store: &PostgresStore, meeting: &str) {
        let c = store.pool().get().await.expect("conn");
        c.execute(
            "UPDATE plenary_leases SET expires_at = now() - interval '1 second' WHERE meeting_id = $1",
            &[&meeting],
        )
        .await
        .expect("expire");
    }

    fn fenced(doc: &str, u: &[u8], meeting: &str, holder: &str, epoch: i64) -> DocAppend {
        DocAppend {
            doc: doc.into(),
            updates: vec![u.to_vec()],
            fence: Some(Fence {
                meeting: meeting.into(),
                holder: holder.into(),
                epoch,
            }),
        }
    }

    fn plain(doc: &str, u: &[u8]) -> DocAppend {
        DocAppend {
            doc: doc.into(),
            updates: vec![u.to_vec()],
            fence: None,
        }
    }

    #[tokio::test]
    async fn a_lease_is_held_by_one_node_renewed_under_its_epoch_and_taken_with_a_higher_one_once_expired() {
        let Some((url, store)) = fresh().await else { return };
        // two nodes: two stores (two pools) on one database
        let other = PostgresStore::open(&url).await.expect("second node");
        let a = PgLeases::new(store.pool());
        let b = PgLeases::new(other.pool());
        let m = ms(&["m1", "m2"]);
        assert_eq!(
            a.take("a", &m, TTL).await.unwrap(),
            vec![("m1".into(), 1), ("m2".into(), 1)]
        );
        assert_eq!(b.take("b", &m, TTL).await.unwrap(), vec![], "held by a");
        assert_eq!(
            a.take("a", &m, TTL).await.unwrap(),
            vec![("m1".into(), 1), ("m2".into(), 1)],
            "renewed, same epoch"
        );
        expire(&store, "m1").await;
        assert_eq!(
            b.take("b", &m, TTL).await.unwrap(),
            vec![("m1".into(), 2)],
            "expired: taken, epoch raised"
        );
        assert_eq!(
            a.take("a", &m, TTL).await.unwrap(),
            vec![("m2".into(), 1)],
            "a lost m1"
        );
        // handed back: the next taker need not wait for the TTL
        a.hand_back("a", &ms(&["m2"])).await.unwrap();
        assert_eq!(
            b.take("b", &ms(&["m2"]), TTL).await.unwrap(),
            vec![("m2".into(), 2)]
        );
        // a holder whose own lease lapsed retakes it under a new epoch
        expire(&store, "m2").await;
        assert_eq!(
            b.take("b", &ms(&["m2"]), TTL).await.unwrap(),
            vec![("m2".into(), 3)]
        );
        // a hand-back by a node that does not hold it changes nothing
        a.hand_back("a", &ms(&["m2"])).await.unwrap();
        assert_eq!(a.take("a", &ms(&["m2"]), TTL).await.unwrap(), vec![]);
        // the expiry is the database's now() + ttl
        let c = store.pool().get().await.unwrap();
        let left: f64 = c
            .query_one(
                "SELECT EXTRACT(EPOCH FROM expires_at - now())::float8 FROM plenary_leases WHERE meeting_id = 'm2'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(left > 2.0 && left <= 3.0, "{left}");
    }

    #[tokio::test]
    async fn a_fenced_append_lands_only_while_its_lease_is_held_as_it_says() {
        let Some((url, store)) = fresh().await else { return };
        let other = PostgresStore::open(&url).await.expect("second node");
        let a = PgLeases::new(store.pool());
        let b = PgLeases::new(other.pool());
        let m = ms(&["m"]);
        assert_eq!(a.take("a", &m, TTL).await.unwrap(), vec![("m".into(), 1)]);
        store
            .append(vec![fenced("m/plenary", b"a1", "m", "a", 1)])
            .await
            .expect("the holder's merge lands");
        // b claims a's lease: refused
        let e = other
            .append(vec![fenced("m/plenary", b"b?", "m", "b", 1)])
            .await
            .expect_err("not b's");
        assert!(matches!(&e, StoreError::Fenced(v) if v == &ms(&["m"])), "{e}");
        // a is paused past its lease; b takes it
        expire(&store, "m").await;
        let e = store
            .append(vec![fenced("m/plenary", b"a2", "m", "a", 1)])
            .await
            .expect_err("expired");
        assert!(matches!(e, StoreError::Fenced(_)), "{e}");
        assert_eq!(b.take("b", &m, TTL).await.unwrap(), vec![("m".into(), 2)]);
        // a wakes up: its old epoch cannot write, even mixed with other rooms' batches
        let e = store
            .append(vec![plain("m/g1", b"g"), fenced("m/plenary", b"a3", "m", "a", 1)])
            .await
            .expect_err("a's epoch is old");
        assert!(matches!(&e, StoreError::Fenced(v) if v == &ms(&["m"])), "{e}");
        other
            .append(vec![fenced("m/plenary", b"b1", "m", "b", 2)])
            .await
            .expect("the new holder's merge lands");
        let doc = store.load_doc("m/plenary").await.unwrap();
        assert_eq!(doc.updates, vec![b"a1".to_vec(), b"b1".to_vec()]);
        assert!(
            store.load_doc("m/g1").await.unwrap().updates.is_empty(),
            "nothing of a fenced transaction is stored"
        );
    }

    #[tokio::test]
    async fn a_takeover_waits_for_an_append_in_flight_and_a_paused_one_is_ended_by_the_server() {
        let Some((_url, store)) = fresh().await else {
            return;
        };
        let a = PgLeases::new(store.pool());
        assert_eq!(
            a.take("a", &ms(&["m"]), TTL).await.unwrap(),
            vec![("m".into(), 1)]
        );
        // a's append checked its fence and has not committed yet
        let mut c = store.pool().get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        let f = Fence {
            meeting: "m".into(),
            holder: "a".into(),
            epoch: 1,
        };
        check_fences(&tx, &[&f]).await.expect("valid");
        let b = PgLeases::new(store.pool());
        let m = ms(&["m"]);
        let take = b.take("b", &m, TTL);
        tokio::pin!(take);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut take)
                .await
                .is_err(),
            "b waits for a's transaction"
        );
        // a is paused with its transaction open: the server ends it, and b goes on
        let got = tokio::time::timeout(Duration::from_secs(30), &mut take)
            .await
            .expect("the server ends a's idle transaction")
            .expect("b's request");
        assert!(got.is_empty() || got == vec![("m".to_string(), 2)], "{got:?}");
        assert!(
            tx.commit().await.is_err(),
            "a's transaction was ended: nothing of it commits"
        );
    }

    #[tokio::test]
    async fn a_refused_merge_fails_alone_in_its_group_commit() {
        let Some((_url, store)) = fresh().await else {
            return;
        };
        let store = std::sync::Arc::new(store);
        let leases = PgLeases::new(store.pool());
        assert_eq!(leases.take("a", &ms(&["m", "n"]), TTL).await.unwrap().len(), 2);
        expire(&store, "m").await;
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        let (persister, _writer) = crate::store::persister::Persister::start(
            store.clone(),
            metrics,
            crate::cluster::Cluster::solo(),
        );
        // Hold the writer inside a first transaction (its document's head is locked elsewhere),
        // so that the next three jobs queue up and go in one group commit.
        let mut c = store.pool().get().await.unwrap();
        let lock = c.transaction().await.unwrap();
        lock.execute("INSERT INTO doc_heads (doc, seq) VALUES ('z/g', 0)", &[])
            .await
            .unwrap();
        let first = persister.append("z/g".into(), vec![b"z".to_vec()]).await;
        let wait_for_lock = async {
            let c = store.pool().get().await.unwrap();
            loop {
                let n: i64 = c
                    .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait_for_lock)
            .await
            .expect("the writer waits");
        let fence = |meeting: &str| {
            Some(Fence {
                meeting: meeting.into(),
                holder: "a".into(),
                epoch: 1,
            })
        };
        let lost = persister
            .append_fenced("m/plenary".into(), vec![b"lost".to_vec()], fence("m"))
            .await;
        let group = persister.append("m/g1".into(), vec![b"group".to_vec()]).await;
        let held = persister
            .append_fenced("n/plenary".into(), vec![b"held".to_vec()], fence("n"))
            .await;
        lock.commit().await.unwrap();
        first.await.unwrap().expect("first");
        let e = lost.await.unwrap().expect_err("m's lease expired");
        assert!(
            matches!(e.as_ref(), StoreError::Fenced(v) if v == &ms(&["m"])),
            "{e}"
        );
        group.await.unwrap().expect("the other rooms' batches land");
        held.await.unwrap().expect("a merge whose lease is held lands");
        assert!(store.load_doc("m/plenary").await.unwrap().updates.is_empty());
        assert_eq!(
            store.load_doc("m/g1").await.unwrap().updates,
            vec![b"group".to_vec()]
        );
        assert_eq!(
            store.load_doc("n/plenary").await.unwrap().updates,
            vec![b"held".to_vec()]
        );
    }

    #[tokio::test]
    async fn a_server_with_replicated_durability_refuses_to_start_without_a_synchronous_standby() {
        let Some((url, _store)) = fresh().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::for_tests(dir.path().to_path_buf(), "admin-token-for-tests");
        config.store = url;
        config.durability = crate::store::Durability::Replicated;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = crate::run(listener, config, std::future::pending());
        let e = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("refused at start, not served")
            .expect_err("refused");
        assert!(format!("{e:#}").contains("no synchronous standby"), "{e:#}");
    }

    #[tokio::test]
    async fn replicated_durability_needs_a_synchronous_standby() {
        let Some((_url, store)) = fresh().await else {
            return;
        };
        let e = check_synchronous_standbys(&store.pool())
            .await
            .expect_err("the test cluster has none");
        assert!(e.contains("no synchronous standby"), "{e}");
    }
}
