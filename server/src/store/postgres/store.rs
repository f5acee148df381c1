//! [`PostgresStore`]: the [`Store`] trait on PostgreSQL.
//!
//! Every write is one transaction. [`Store::append`] is the group commit: the batches of every
//! room that the persister gathered go in one transaction, which raises each document's head in
//! `doc_heads` (locked in byte order of the document keys) and logs the updates under the
//! sequence numbers it took. Directory writes of one meeting lock its `meetings` row, so two
//! nodes rotating the same token (or adding groups) at once take turns.

use super::schema;
use crate::auth::TokenHash;
use crate::store::{
    role_from_columns, role_to_columns, Appended, DocAppend, DocTail, GroupRecord, MeetingRecord,
    RevisionRecord, Store, StoreError, StoreFuture, StoredDoc, TokenRecord, VersionRecord,
};
use deadpool_postgres::{Object, Pool};
use plenary_protocol::{GroupId, MeetingId};
use std::collections::BTreeMap;
use tokio_postgres::error::SqlState;
use tokio_postgres::IsolationLevel;

pub struct PostgresStore {
    pool: Pool,
}

/// Key class of the advisory lock that numbers a document's revisions (see
/// [`Store::insert_revision`]); the other key is the document's hash.
const REVISION_LOCK_CLASS: i32 = 0x7265_7631; // "rev1"

/// Maps a PostgreSQL error: a unique violation is a `Conflict`; a lost connection or a server
/// that is shutting down or starting is `Unavailable` (nothing was committed, retry later);
/// anything else is the backend's error.
fn db_err(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No SQLSTATE: the connection broke (I/O, closed, timeout).
        return StoreError::Unavailable(e.to_string());
    };
    let code = db.code();
    let text = format!("{} ({})", db.message(), code.code());
    if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict
    } else if code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_err(e),
        other => StoreError::Unavailable(format!("PostgreSQL: {other}")),
    }
}

fn token_hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("token hash".into()))?;
    Ok(TokenHash(arr))
}

fn meeting_id(s: &str) -> Result<MeetingId, StoreError> {
    MeetingId::parse(s).map_err(|e| StoreError::Corrupt(format!("meeting id {s:?}: {e}")))
}

fn group_id(s: &str) -> Result<GroupId, StoreError> {
    GroupId::parse(s).map_err(|e| StoreError::Corrupt(format!("group id {s:?}: {e}")))
}

/// Sequence numbers for the updates of `batches`, in order: per document, the numbers after its
/// old head, batch after batch. `heads` holds each document's new head (old head + its count).
/// Returns, per update in order, its sequence number, and per batch the last one (`None` for an
/// empty batch).
pub fn number_updates(
    batches: &[DocAppend],
    heads: &BTreeMap<String, i64>,
) -> Result<(Vec<i64>, Vec<Option<i64>>), StoreError> {
    let counts = counts_by_doc(batches);
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    for (doc, n) in &counts {
        let head = heads
            .get(*doc)
            .ok_or_else(|| StoreError::Backend(format!("no head returned for {doc}")))?;
        next.insert(doc, head - n + 1);
    }
    let mut seqs = Vec::new();
    let mut last = Vec::with_capacity(batches.len());
    for b in batches {
        let mut batch_last = None;
        for _ in &b.updates {
            let n = next
                .get_mut(b.doc.as_str())
                .ok_or_else(|| StoreError::Backend(format!("no head for {}", b.doc)))?;
            seqs.push(*n);
            batch_last = Some(*n);
            *n += 1;
        }
        last.push(batch_last);
    }
    Ok((seqs, last))
}

/// How many updates each document gets, by document key (the order heads are locked in).
fn counts_by_doc(batches: &[DocAppend]) -> BTreeMap<&str, i64> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for b in batches.iter().filter(|b| !b.updates.is_empty()) {
        *counts.entry(b.doc.as_str()).or_default() += b.updates.len() as i64;
    }
    counts
}

/// A read-only transaction that sees one snapshot of the database for all its reads.
async fn snapshot_tx(c: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_err)
}

impl PostgresStore {
    /// Connects to `url` and brings its schema to this binary's version. Fails when the
    /// database cannot be reached or its schema is newer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = super::pool(url).map_err(StoreError::Backend)?;
        {
            let mut conn = pool.get().await.map_err(pool_err)?;
            let applied = schema::migrate(&mut conn).await.map_err(|e| match e {
                schema::SchemaError::Db(e) => db_err(e),
                other => StoreError::Backend(other.to_string()),
            })?;
            if !applied.is_empty() {
                tracing::info!(versions = ?applied, "PostgreSQL schema migrated");
            }
        }
        Ok(PostgresStore { pool })
    }

    /// The store's connection pool (the cluster's transport sends through it).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    async fn conn(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// One round trip to the database: `Ok` while it can be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let c = self.conn().await?;
        c.simple_query("SELECT 1").await.map_err(db_err)?;
        Ok(())
    }

    /// `directory_epoch.n` (migration 3).
    async fn directory_epoch_now(&self) -> Result<Option<i64>, StoreError> {
        let c = self.conn().await?;
        let row = c
            .query_one("SELECT n FROM directory_epoch", &[])
            .await
            .map_err(db_err)?;
        Ok(Some(row.get(0)))
    }

    /// One meeting with its tokens, in one snapshot (what another node's change is read by).
    async fn meeting_now(
        &self,
        m: &MeetingId,
    ) -> Result<Option<(MeetingRecord, Vec<TokenRecord>)>, StoreError> {
        let mut c = self.conn().await?;
        let tx = snapshot_tx(&mut c).await?;
        let Some(row) = tx
            .query_opt(
                "SELECT title, created_at, short_title, notes_private FROM meetings WHERE id = $1",
                &[&m.as_str()],
            )
            .await
            .map_err(db_err)?
        else {
            tx.commit().await.map_err(db_err)?;
            return Ok(None);
        };
        let groups = tx
            .query(
                "SELECT id, title, closed, short_title FROM groups WHERE meeting_id = $1 ORDER BY position",
                &[&m.as_str()],
            )
            .await
            .map_err(db_err)?;
        let tokens = tx
            .query(
                "SELECT hash, role, group_id FROM tokens WHERE meeting_id = $1 ORDER BY hash",
                &[&m.as_str()],
            )
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let record = MeetingRecord {
            id: m.clone(),
            title: row.get(0),
            created_at: row.get(1),
            short_title: row.get(2),
            notes_private: row.get(3),
            groups: groups
                .into_iter()
                .map(|r| {
                    Ok(GroupRecord {
                        id: group_id(r.get(0))?,
                        title: r.get(1),
                        closed: r.get(2),
                        short_title: r.get(3),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        };
        let tokens = tokens
            .into_iter()
            .map(|r| {
                Ok(TokenRecord {
                    hash: token_hash(r.get(0))?,
                    meeting: m.clone(),
                    role: role_from_columns(r.get(1), r.get(2))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some((record, tokens)))
    }

    async fn meetings_now(&self) -> Result<Vec<(MeetingRecord, Vec<TokenRecord>)>, StoreError> {
        let mut c = self.conn().await?;
        // One snapshot of the directory: a meeting never shows without its groups or tokens.
        let tx = snapshot_tx(&mut c).await?;
        let meetings = tx
            .query(
                "SELECT id, title, created_at, short_title, notes_private FROM meetings ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(db_err)?;
        let groups = tx
            .query(
                "SELECT meeting_id, id, title, closed, short_title FROM groups ORDER BY meeting_id, position",
                &[],
            )
            .await
            .map_err(db_err)?;
        let tokens = tx
            .query(
                "SELECT meeting_id, hash, role, group_id FROM tokens ORDER BY meeting_id, hash",
                &[],
            )
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut groups_of: BTreeMap<String, Vec<GroupRecord>> = BTreeMap::new();
        for r in groups {
            groups_of.entry(r.get(0)).or_default().push(GroupRecord {
                id: group_id(r.get(1))?,
                title: r.get(2),
                closed: r.get(3),
                short_title: r.get(4),
            });
        }
        let mut tokens_of: BTreeMap<String, Vec<TokenRecord>> = BTreeMap::new();
        for r in tokens {
            let m: String = r.get(0);
            let rec = TokenRecord {
                hash: token_hash(r.get(1))?,
                meeting: meeting_id(&m)?,
                role: role_from_columns(r.get(2), r.get(3))?,
            };
            tokens_of.entry(m).or_default().push(rec);
        }
        meetings
            .into_iter()
            .map(|r| {
                let id: String = r.get(0);
                Ok((
                    MeetingRecord {
                        id: meeting_id(&id)?,
                        title: r.get(1),
                        created_at: r.get(2),
                        short_title: r.get(3),
                        notes_private: r.get(4),
                        groups: groups_of.remove(&id).unwrap_or_default(),
                    },
                    tokens_of.remove(&id).unwrap_or_default(),
                ))
            })
            .collect()
    }

    async fn insert_meeting_now(&self, m: &MeetingRecord, tokens: &[TokenRecord]) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        let n = tx
            .execute(
                "INSERT INTO meetings (id, title, created_at, short_title, notes_private)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                &[
                    &m.id.as_str(),
                    &m.title,
                    &m.created_at,
                    &m.short_title,
                    &m.notes_private,
                ],
            )
            .await
            .map_err(db_err)?;
        if n == 0 {
            return Err(StoreError::Conflict);
        }
        let insert_group = tx
            .prepare_cached(
                "INSERT INTO groups (meeting_id, id, title, position, closed, short_title)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(db_err)?;
        for (pos, g) in m.groups.iter().enumerate() {
            let pos = pos as i32;
            tx.execute(
                &insert_group,
                &[
                    &m.id.as_str(),
                    &g.id.as_str(),
                    &g.title,
                    &pos,
                    &g.closed,
                    &g.short_title,
                ],
            )
            .await
            .map_err(db_err)?;
        }
        for t in tokens {
            insert_token(&tx, t).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn replace_token_now(&self, t: &TokenRecord) -> Result<Vec<TokenHash>, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        lock_meeting(&tx, &t.meeting).await?;
        let (role, group) = role_to_columns(&t.role);
        let old = tx
            .query(
                "DELETE FROM tokens WHERE meeting_id = $1 AND role = $2 AND group_id IS NOT DISTINCT FROM $3
                 RETURNING hash",
                &[&t.meeting.as_str(), &role, &group],
            )
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| token_hash(r.get(0)))
            .collect::<Result<Vec<_>, _>>()?;
        insert_token(&tx, t).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(old)
    }

    async fn load_doc_now(&self, doc: &str) -> Result<StoredDoc, StoreError> {
        let mut c = self.conn().await?;
        // One snapshot of the database, so a compaction cannot slip between the two reads.
        let tx = snapshot_tx(&mut c).await?;
        let (covered, snapshot) = snapshot_of(&tx, doc).await?;
        let updates = log_after(&tx, doc, covered).await?;
        tx.commit().await.map_err(db_err)?;
        let head = updates.last().map_or(covered, |(s, _)| *s);
        Ok(StoredDoc {
            snapshot,
            updates: updates.into_iter().map(|(_, u)| u).collect(),
            head,
        })
    }

    async fn updates_after_now(&self, doc: &str, after: i64) -> Result<DocTail, StoreError> {
        let mut c = self.conn().await?;
        let tx = snapshot_tx(&mut c).await?;
        let (covered, snapshot) = snapshot_of(&tx, doc).await?;
        let snapshot = snapshot.filter(|_| after < covered);
        let from = if snapshot.is_some() { covered } else { after };
        let updates = log_after(&tx, doc, from).await?;
        let head: i64 = tx
            .query_opt("SELECT seq FROM doc_heads WHERE doc = $1", &[&doc])
            .await
            .map_err(db_err)?
            .map_or(0, |r| r.get(0));
        tx.commit().await.map_err(db_err)?;
        Ok(DocTail {
            snapshot,
            updates,
            head,
        })
    }

    async fn heads_now(&self, docs: &[String]) -> Result<Vec<i64>, StoreError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let c = self.conn().await?;
        let stmt = c
            .prepare_cached("SELECT doc, seq FROM doc_heads WHERE doc = ANY($1::text[])")
            .await
            .map_err(db_err)?;
        let found: BTreeMap<String, i64> = c
            .query(&stmt, &[&docs])
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(docs.iter().map(|d| found.get(d).copied().unwrap_or(0)).collect())
    }

    async fn doc_keys_now(&self) -> Result<Vec<String>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT doc FROM doc_snapshots UNION SELECT doc FROM doc_updates ORDER BY 1",
                &[],
            )
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    async fn append_now(&self, batches: Vec<DocAppend>) -> Result<Appended, StoreError> {
        let counts = counts_by_doc(&batches);
        if counts.is_empty() {
            return Ok(Appended {
                heads: vec![None; batches.len()],
            });
        }
        let docs: Vec<&str> = counts.keys().copied().collect();
        let ns: Vec<i64> = counts.values().copied().collect();
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        // Plenary merges: their leases are checked (and locked) before anything is written.
        let fences: Vec<&crate::store::Fence> = batches.iter().filter_map(|b| b.fence.as_ref()).collect();
        super::lease::check_fences(&tx, &fences).await?;
        // Raise every head at once, locking the rows in key order (the sort feeds the insert in
        // that order): nodes whose batches share documents queue instead of deadlocking.
        let raise = tx
            .prepare_cached(
                r#"INSERT INTO doc_heads (doc, seq)
                   SELECT d, n FROM unnest($1::text[], $2::bigint[]) AS t(d, n) ORDER BY d COLLATE "C"
                   ON CONFLICT (doc) DO UPDATE SET seq = doc_heads.seq + excluded.seq
                   RETURNING doc, seq"#,
            )
            .await
            .map_err(db_err)?;
        let heads: BTreeMap<String, i64> = tx
            .query(&raise, &[&docs, &ns])
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let (seqs, last) = number_updates(&batches, &heads)?;
        let mut doc_col: Vec<&str> = Vec::with_capacity(seqs.len());
        let mut data_col: Vec<&[u8]> = Vec::with_capacity(seqs.len());
        for b in &batches {
            for u in &b.updates {
                doc_col.push(&b.doc);
                data_col.push(u);
            }
        }
        let log = tx
            .prepare_cached(
                "INSERT INTO doc_updates (doc, seq, data)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])",
            )
            .await
            .map_err(db_err)?;
        tx.execute(&log, &[&doc_col, &seqs, &data_col])
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Appended { heads: last })
    }

    async fn compact_now(&self, doc: &str, snapshot: Vec<u8>, covers: i64) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        // The head is read, not locked: appends of other nodes go on meanwhile, and whatever
        // they commit is numbered above it, so it stays in the log.
        let head: i64 = tx
            .query_opt("SELECT seq FROM doc_heads WHERE doc = $1", &[&doc])
            .await
            .map_err(db_err)?
            .map_or(0, |r| r.get(0));
        let covers = covers.min(head).max(0);
        // Replaces only a snapshot that covers no more (two compactions at once: the one that
        // covers more wins, whichever commits first).
        let replaced = tx
            .query_opt(
                "INSERT INTO doc_snapshots (doc, seq, data, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq, data = excluded.data, updated_at = excluded.updated_at
                 WHERE doc_snapshots.seq <= excluded.seq
                 RETURNING seq",
                &[&doc, &covers, &snapshot, &crate::store::now_rfc3339()],
            )
            .await
            .map_err(db_err)?
            .is_some();
        if !replaced {
            return tx.rollback().await.map_err(db_err);
        }
        tx.execute(
            "DELETE FROM doc_updates WHERE doc = $1 AND seq <= $2",
            &[&doc, &covers],
        )
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn update_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        let c = self.conn().await?;
        let n = c.execute(sql, params).await.map_err(db_err)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn add_group_now(&self, m: &MeetingId, g: &GroupRecord, t: &TokenRecord) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        lock_meeting(&tx, m).await?;
        let taken = tx
            .query_opt(
                "SELECT 1 FROM groups WHERE meeting_id = $1 AND id = $2",
                &[&m.as_str(), &g.id.as_str()],
            )
            .await
            .map_err(db_err)?
            .is_some();
        if taken {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            "INSERT INTO groups (meeting_id, id, title, position, closed, short_title)
             SELECT $1, $2, $3, COALESCE(MAX(position) + 1, 0), $4, $5 FROM groups WHERE meeting_id = $1",
            &[&m.as_str(), &g.id.as_str(), &g.title, &g.closed, &g.short_title],
        )
        .await
        .map_err(db_err)?;
        insert_token(&tx, t).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_meeting_now(&self, m: &MeetingId) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        lock_meeting(&tx, m).await?;
        // Documents are keyed `{meeting}/{group}` and `{meeting}/plenary`; ids hold only
        // `[a-z0-9-]`, so the prefix compare is exact.
        let prefix = format!("{}/", m.as_str());
        for table in ["doc_updates", "doc_snapshots", "doc_revisions", "doc_heads"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE starts_with(doc, $1)"),
                &[&prefix],
            )
            .await
            .map_err(db_err)?;
        }
        for table in ["versions", "tokens", "groups"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE meeting_id = $1"),
                &[&m.as_str()],
            )
            .await
            .map_err(db_err)?;
        }
        tx.execute("DELETE FROM meetings WHERE id = $1", &[&m.as_str()])
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn versions_now(&self, m: &MeetingId) -> Result<Vec<VersionRecord>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT id, label, created_at, summary FROM versions WHERE meeting_id = $1 ORDER BY created_at, id",
                &[&m.as_str()],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| VersionRecord {
                id: r.get(0),
                label: r.get(1),
                created_at: r.get(2),
                summary_json: r.get(3),
            })
            .collect())
    }

    async fn insert_revision_now(
        &self,
        doc: &str,
        created_at: &str,
        reason: &str,
        data: Vec<u8>,
    ) -> Result<i64, StoreError> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db_err)?;
        // Numbering is max + 1: nodes keeping a revision of one document at once take turns.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&REVISION_LOCK_CLASS, &doc],
        )
        .await
        .map_err(db_err)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO doc_revisions (doc, id, created_at, reason, data)
                 SELECT $1, COALESCE(MAX(id), 0) + 1, $2, $3, $4 FROM doc_revisions WHERE doc = $1
                 RETURNING id",
                &[&doc, &created_at, &reason, &data],
            )
            .await
            .map_err(db_err)?
            .get(0);
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn revisions_now(&self, doc: &str) -> Result<Vec<RevisionRecord>, StoreError> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT id, created_at, reason FROM doc_revisions WHERE doc = $1 ORDER BY id",
                &[&doc],
            )
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| RevisionRecord {
                id: r.get(0),
                created_at: r.get(1),
                reason: r.get(2),
            })
            .collect())
    }

    async fn revision_now(
        &self,
        doc: &str,
        id: i64,
    ) -> Result<Option<(RevisionRecord, Vec<u8>)>, StoreError> {
        let c = self.conn().await?;
        let row = c
            .query_opt(
                "SELECT id, created_at, reason, data FROM doc_revisions WHERE doc = $1 AND id = $2",
                &[&doc, &id],
            )
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| {
            (
                RevisionRecord {
                    id: r.get(0),
                    created_at: r.get(1),
                    reason: r.get(2),
                },
                r.get(3),
            )
        }))
    }
}

/// The document's snapshot with the sequence number it covers (0 and none without one).
async fn snapshot_of(
    tx: &deadpool_postgres::Transaction<'_>,
    doc: &str,
) -> Result<(i64, Option<Vec<u8>>), StoreError> {
    let snap = tx
        .query_opt("SELECT seq, data FROM doc_snapshots WHERE doc = $1", &[&doc])
        .await
        .map_err(db_err)?;
    Ok(match snap {
        Some(r) => (r.get::<_, i64>(0), Some(r.get::<_, Vec<u8>>(1))),
        None => (0, None),
    })
}

/// The logged updates of `doc` above `after`, in order.
async fn log_after(
    tx: &deadpool_postgres::Transaction<'_>,
    doc: &str,
    after: i64,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT seq, data FROM doc_updates WHERE doc = $1 AND seq > $2 ORDER BY seq")
        .await
        .map_err(db_err)?;
    Ok(tx
        .query(&stmt, &[&doc, &after])
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Locks a meeting's row for the rest of the transaction; `NotFound` if there is none.
async fn lock_meeting(tx: &deadpool_postgres::Transaction<'_>, m: &MeetingId) -> Result<(), StoreError> {
    tx.query_opt("SELECT 1 FROM meetings WHERE id = $1 FOR UPDATE", &[&m.as_str()])
        .await
        .map_err(db_err)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

async fn insert_token(tx: &deadpool_postgres::Transaction<'_>, t: &TokenRecord) -> Result<(), StoreError> {
    let (role, group) = role_to_columns(&t.role);
    let stmt = tx
        .prepare_cached("INSERT INTO tokens (hash, meeting_id, role, group_id) VALUES ($1, $2, $3, $4)")
        .await
        .map_err(db_err)?;
    tx.execute(&stmt, &[&t.hash.0.as_slice(), &t.meeting.as_str(), &role, &group])
        .await
        .map_err(db_err)?;
    Ok(())
}

impl Store for PostgresStore {
    fn admin_token_hash(&self) -> StoreFuture<'_, Option<TokenHash>> {
        Box::pin(async move {
            let c = self.conn().await?;
            let row = c
                .query_opt("SELECT value FROM settings WHERE key = 'admin_token_sha256'", &[])
                .await
                .map_err(db_err)?;
            row.map(|r| token_hash(r.get(0))).transpose()
        })
    }

    fn set_admin_token_hash<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let c = self.conn().await?;
            c.execute(
                "INSERT INTO settings (key, value) VALUES ('admin_token_sha256', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&hash.0.as_slice()],
            )
            .await
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn meetings(&self) -> StoreFuture<'_, Vec<(MeetingRecord, Vec<TokenRecord>)>> {
        Box::pin(self.meetings_now())
    }

    fn meeting<'a>(&'a self, m: &'a MeetingId) -> StoreFuture<'a, Option<(MeetingRecord, Vec<TokenRecord>)>> {
        Box::pin(self.meeting_now(m))
    }

    fn insert_meeting<'a>(
        &'a self,
        meeting: &'a MeetingRecord,
        tokens: &'a [TokenRecord],
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.insert_meeting_now(meeting, tokens))
    }

    fn set_group_closed<'a>(&'a self, m: &'a MeetingId, g: &'a GroupId, closed: bool) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.update_one(
                "UPDATE groups SET closed = $3 WHERE meeting_id = $1 AND id = $2",
                &[&m.as_str(), &g.as_str(), &closed],
            )
            .await
        })
    }

    fn replace_token<'a>(&'a self, token: &'a TokenRecord) -> StoreFuture<'a, Vec<TokenHash>> {
        Box::pin(self.replace_token_now(token))
    }

    fn load_doc<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, StoredDoc> {
        Box::pin(self.load_doc_now(doc))
    }

    fn updates_after<'a>(&'a self, doc: &'a str, after: i64) -> StoreFuture<'a, DocTail> {
        Box::pin(self.updates_after_now(doc, after))
    }

    fn heads<'a>(&'a self, docs: &'a [String]) -> StoreFuture<'a, Vec<i64>> {
        Box::pin(self.heads_now(docs))
    }

    fn doc_keys(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(self.doc_keys_now())
    }

    fn append(&self, batches: Vec<DocAppend>) -> StoreFuture<'_, Appended> {
        Box::pin(self.append_now(batches))
    }

    fn compact<'a>(&'a self, doc: &'a str, snapshot: Vec<u8>, covers: i64) -> StoreFuture<'a, ()> {
        Box::pin(self.compact_now(doc, snapshot, covers))
    }

    fn set_meeting_titles<'a>(
        &'a self,
        m: &'a MeetingId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.update_one(
                "UPDATE meetings SET title = $2, short_title = $3 WHERE id = $1",
                &[&m.as_str(), &title, &short_title],
            )
            .await
        })
    }

    fn set_notes_private<'a>(&'a self, m: &'a MeetingId, private: bool) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.update_one(
                "UPDATE meetings SET notes_private = $2 WHERE id = $1",
                &[&m.as_str(), &private],
            )
            .await
        })
    }

    fn set_group_titles<'a>(
        &'a self,
        m: &'a MeetingId,
        g: &'a GroupId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.update_one(
                "UPDATE groups SET title = $3, short_title = $4 WHERE meeting_id = $1 AND id = $2",
                &[&m.as_str(), &g.as_str(), &title, &short_title],
            )
            .await
        })
    }

    fn add_group<'a>(
        &'a self,
        m: &'a MeetingId,
        g: &'a GroupRecord,
        t: &'a TokenRecord,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.add_group_now(m, g, t))
    }

    fn delete_meeting<'a>(&'a self, m: &'a MeetingId) -> StoreFuture<'a, ()> {
        Box::pin(self.delete_meeting_now(m))
    }

    fn insert_version<'a>(&'a self, m: &'a MeetingId, v: &'a VersionRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let c = self.conn().await?;
            c.execute(
                "INSERT INTO versions (meeting_id, id, label, created_at, summary) VALUES ($1, $2, $3, $4, $5)",
                &[&m.as_str(), &v.id, &v.label, &v.created_at, &v.summary_json],
            )
            .await
            .map_err(db_err)?;
            Ok(())
        })
    }

    fn versions<'a>(&'a self, m: &'a MeetingId) -> StoreFuture<'a, Vec<VersionRecord>> {
        Box::pin(self.versions_now(m))
    }

    fn insert_revision<'a>(
        &'a self,
        doc: &'a str,
        created_at: &'a str,
        reason: &'a str,
        data: Vec<u8>,
    ) -> StoreFuture<'a, i64> {
        Box::pin(self.insert_revision_now(doc, created_at, reason, data))
    }

    fn revisions<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, Vec<RevisionRecord>> {
        Box::pin(self.revisions_now(doc))
    }

    fn revision<'a>(&'a self, doc: &'a str, id: i64) -> StoreFuture<'a, Option<(RevisionRecord, Vec<u8>)>> {
        Box::pin(self.revision_now(doc, id))
    }

    fn directory_epoch(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(self.directory_epoch_now())
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.ping())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing;
    use std::sync::Arc;

    fn batch(doc: &str, updates: &[u8]) -> DocAppend {
        DocAppend {
            doc: doc.into(),
            updates: updates.iter().map(|b| vec![*b]).collect(),
            fence: None,
        }
    }

    #[test]
    fn updates_are_numbered_after_each_documents_old_head_batch_after_batch() {
        let batches = [
            batch("m/b", &[1, 2]),
            batch("m/a", &[3]),
            batch("m/e", &[]),
            batch("m/b", &[4]),
        ];
        // m/b had head 10 and gets 3 updates; m/a had none and gets one.
        let heads = BTreeMap::from([("m/a".to_owned(), 1), ("m/b".to_owned(), 13)]);
        let (seqs, last) = number_updates(&batches, &heads).expect("numbered");
        assert_eq!(seqs, vec![11, 12, 1, 13]);
        assert_eq!(last, vec![Some(12), Some(1), None, Some(13)]);
        assert_eq!(
            counts_by_doc(&batches).into_iter().collect::<Vec<_>>(),
            vec![("m/a", 1), ("m/b", 3)]
        );
    }

    async fn two_nodes() -> Option<(Arc<PostgresStore>, Arc<PostgresStore>)> {
        let admin = testing::test_url()?;
        let url = testing::fresh_database(&admin).await.expect("test database");
        let a = PostgresStore::open(&url).await.expect("node a");
        let b = PostgresStore::open(&url).await.expect("node b");
        Some((Arc::new(a), Arc::new(b)))
    }

    /// Two nodes append to the same documents at once, each listing them in the opposite
    /// order: every append commits (no deadlock), each document's sequence numbers are 1..N
    /// without a gap, and its log replays in that order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_appending_to_shared_documents_at_once_never_deadlock_and_number_without_gaps() {
        let Some((a, b)) = two_nodes().await else { return };
        let docs: Vec<String> = (0..8).map(|i| format!("m/d{i}")).collect();
        const ROUNDS: usize = 40;
        let mut tasks = Vec::new();
        for (node, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            let mut order = docs.clone();
            if node % 2 == 1 {
                order.reverse();
            }
            tasks.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let batches = order
                        .iter()
                        .map(|d| DocAppend {
                            doc: d.clone(),
                            updates: vec![format!("{node}:{round}").into_bytes()],
                            fence: None,
                        })
                        .collect();
                    store.append(batches).await.expect("append commits");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let c = a.conn().await.expect("conn");
        for d in &docs {
            let seqs: Vec<i64> = c
                .query("SELECT seq FROM doc_updates WHERE doc = $1 ORDER BY seq", &[d])
                .await
                .expect("seqs")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(seqs, (1..=(4 * ROUNDS) as i64).collect::<Vec<_>>(), "{d}");
            let head: i64 = c
                .query_one("SELECT seq FROM doc_heads WHERE doc = $1", &[d])
                .await
                .expect("head")
                .get(0);
            assert_eq!(head, (4 * ROUNDS) as i64);
            // Each writer's own rounds stay in its order within the log.
            let log = a.load_doc(d).await.expect("load").updates;
            for node in 0..4 {
                let rounds: Vec<usize> = log
                    .iter()
                    .filter_map(|u| {
                        let s = String::from_utf8(u.clone()).expect("utf8");
                        let (n, r) = s.split_once(':').expect("tag");
                        (n == node.to_string()).then(|| r.parse().expect("round"))
                    })
                    .collect();
                assert_eq!(rounds, (0..ROUNDS).collect::<Vec<_>>());
            }
        }
    }

    /// A snapshot covers the head at its commit: appends from another node after it are
    /// loaded after the snapshot, and the heads keep growing across the compaction.
    #[tokio::test]
    async fn a_compaction_covers_its_head_and_later_appends_follow_it() {
        let Some((a, b)) = two_nodes().await else { return };
        let r = a.append(vec![batch("m/g", &[1, 2, 3])]).await.expect("append");
        assert_eq!(r.heads, vec![Some(3)]);
        a.compact("m/g", vec![9], 3).await.expect("compact");
        let r = b.append(vec![batch("m/g", &[4])]).await.expect("append");
        assert_eq!(r.heads, vec![Some(4)]);
        let d = b.load_doc("m/g").await.expect("load");
        assert_eq!(d.snapshot, Some(vec![9]));
        assert_eq!(d.updates, vec![vec![4]]);
        let c = a.conn().await.expect("conn");
        let covered: i64 = c
            .query_one("SELECT seq FROM doc_snapshots WHERE doc = 'm/g'", &[])
            .await
            .expect("snapshot")
            .get(0);
        assert_eq!(covered, 3);
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_not_a_backend_error() {
        // A port nothing listens on (bound, then dropped).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let r = PostgresStore::open(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))), "{:?}", r.err());
    }

    /// Two nodes change the same meetings' groups, titles and tokens at once, each in its own
    /// order: every change commits, and the directory epoch grows by exactly one per committed
    /// transaction. (The triggers are deferred so that the epoch row is the last lock each
    /// transaction takes; this test also passes with immediate triggers: it shows no deadlock
    /// here, it does not prove there could be none without the deferral.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_changing_the_directory_at_once_all_commit_and_each_moves_the_epoch_once() {
        use crate::auth::Role;
        let Some((a, b)) = two_nodes().await else { return };
        let ids: Vec<MeetingId> = (0..2)
            .map(|i| MeetingId::parse(&format!("m{i}")).expect("id"))
            .collect();
        let g = |s: &str| GroupId::parse(s).expect("group id");
        for m in &ids {
            let record = MeetingRecord {
                id: m.clone(),
                title: "M".into(),
                created_at: "2020-01-01T00:00:00Z".into(),
                short_title: None,
                notes_private: false,
                groups: vec![GroupRecord {
                    id: g("g1"),
                    title: "G".into(),
                    closed: false,
                    short_title: None,
                }],
            };
            a.insert_meeting(&record, &[]).await.expect("insert");
        }
        let start = a.directory_epoch().await.expect("epoch").expect("kept");
        const ROUNDS: usize = 15;
        let mut tasks = Vec::new();
        for (node, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            let mut order = ids.clone();
            if node % 2 == 1 {
                order.reverse();
            }
            let g1 = g("g1");
            tasks.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    for m in &order {
                        store
                            .set_group_closed(m, &g1, round % 2 == 0)
                            .await
                            .expect("close commits");
                        store
                            .set_meeting_titles(m, &format!("{node}:{round}"), None)
                            .await
                            .expect("titles commit");
                        store
                            .replace_token(&TokenRecord {
                                hash: TokenHash::of(&format!("{m}:{node}:{round}")),
                                meeting: m.clone(),
                                role: Role::Moderator,
                            })
                            .await
                            .expect("token commits");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let end = b.directory_epoch().await.expect("epoch").expect("kept");
        assert_eq!(end - start, (4 * ROUNDS * ids.len() * 3) as i64);
    }
}
