//! The embedded store: SQLite through rusqlite (bundled), WAL mode.
//!
//! Schema (also in the README):
//! - `settings(key, value)`: the admin token's hash.
//! - `meetings(id, title, created_at, short_title, notes_private)` (`notes_private` added by
//!   [`migrate`] too),
//!   `groups(meeting_id, id, title, position, closed, short_title)` (`short_title` added by
//!   [`migrate`] to stores made before it).
//! - `tokens(hash, meeting_id, role, group_id)`: SHA-256 of each capability token, never the token.
//! - `doc_heads(doc, seq)`: per document (`m/g`), the sequence number of its last logged
//!   update, raised in the transaction that appends (numbers per document: 1, 2, 3, …).
//! - `doc_updates(doc, seq, data)`: v1 Yjs updates, per document in sequence order.
//! - `doc_snapshots(doc, data, updated_at, seq)`: a document's state folded into one v1 update
//!   covering every update up to `seq`; the log holds only later ones. Stores made before
//!   per-document numbers are renumbered by [`migrate`] (a snapshot covers 1, its log follows).
//! - `versions(meeting_id, id, label, created_at, summary)`: adopted summaries, immutable.

use super::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meetings (id TEXT PRIMARY KEY, title TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
  meeting_id TEXT NOT NULL REFERENCES meetings(id),
  id TEXT NOT NULL, title TEXT NOT NULL, position INTEGER NOT NULL,
  closed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (meeting_id, id));
CREATE TABLE IF NOT EXISTS tokens (
  hash BLOB PRIMARY KEY, meeting_id TEXT NOT NULL REFERENCES meetings(id),
  role TEXT NOT NULL, group_id TEXT);
CREATE TABLE IF NOT EXISTS doc_heads (doc TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS doc_updates (
  doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq));
CREATE TABLE IF NOT EXISTS doc_snapshots (
  doc TEXT PRIMARY KEY, data BLOB NOT NULL, updated_at TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS versions (
  meeting_id TEXT NOT NULL REFERENCES meetings(id), id TEXT NOT NULL, label TEXT NOT NULL,
  created_at TEXT NOT NULL, summary TEXT NOT NULL, PRIMARY KEY (meeting_id, id));
CREATE TABLE IF NOT EXISTS doc_revisions (
  doc TEXT NOT NULL, id INTEGER NOT NULL, created_at TEXT NOT NULL, reason TEXT NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY (doc, id));
"#;

/// The SQLite store. Every call runs on tokio's blocking pool (`spawn_blocking`), never on an
/// async worker; the connections' mutexes order concurrent calls.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
}

/// The connections and the synchronous queries on them.
struct Db {
    /// Writes (documents, meetings) go through one connection...
    writer: Mutex<Connection>,
    /// ...and reads through another, which WAL lets run beside a write.
    reader: Mutex<Connection>,
}

fn open(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        // `Replicated` is refused with the embedded store (`Config::validate`).
        Durability::Power | Durability::Replicated => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn lock(m: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) `plenary.db` in `data_dir`. Blocking (file I/O, schema
    /// migration): async callers run it with `spawn_blocking`.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("plenary.db");
        let writer = open(&path, durability)?;
        writer.execute_batch(SCHEMA)?;
        migrate(&writer)?;
        let reader = open(&path, durability)?;
        Ok(SqliteStore {
            db: Arc::new(Db {
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// [`SqliteStore::open`] on the blocking pool, for async callers.
    pub async fn open_async(data_dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        let dir = data_dir.to_owned();
        tokio::task::spawn_blocking(move || Self::open(&dir, durability))
            .await
            .map_err(|e| StoreError::Backend(format!("opening the store failed: {e}")))?
    }

    /// Runs `f` on the blocking pool.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&db))
                .await
                .map_err(|e| StoreError::Backend(format!("sqlite call failed: {e}")))?
        })
    }
}

/// The log of stores made before per-document sequence numbers (one AUTOINCREMENT number for
/// every document), rebuilt in one transaction: each document's updates numbered 1, 2, … in
/// their old order (after 1 for the snapshot when it has one), and `doc_heads` filled.
const RENUMBER_LOG: &str = r#"
BEGIN IMMEDIATE;
CREATE TABLE doc_updates_by_doc_seq (
  doc TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq));
INSERT INTO doc_updates_by_doc_seq (doc, seq, data)
  SELECT u.doc,
         ROW_NUMBER() OVER (PARTITION BY u.doc ORDER BY u.seq)
           + (CASE WHEN s.doc IS NULL THEN 0 ELSE 1 END),
         u.data
  FROM doc_updates u LEFT JOIN doc_snapshots s ON s.doc = u.doc;
UPDATE doc_snapshots SET seq = 1;
DROP TABLE doc_updates;
ALTER TABLE doc_updates_by_doc_seq RENAME TO doc_updates;
DELETE FROM doc_heads;
INSERT INTO doc_heads (doc, seq)
  SELECT doc, MAX(seq) FROM (SELECT doc, seq FROM doc_updates UNION ALL SELECT doc, seq FROM doc_snapshots)
  GROUP BY doc;
COMMIT;
"#;

/// Columns added after the first schema: `short_title` of meetings and groups, `notes_private`
/// of meetings, `seq` of snapshots; and the log renumbered per document ([`RENUMBER_LOG`]).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    for table in ["meetings", "groups"] {
        let has: bool = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = 'short_title'"
            ))?
            .exists([])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN short_title TEXT"))?;
        }
    }
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('meetings') WHERE name = 'notes_private'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE meetings ADD COLUMN notes_private INTEGER NOT NULL DEFAULT 0")?;
    }
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('doc_snapshots') WHERE name = 'seq'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE doc_snapshots ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")?;
    }
    // The old log's key is `seq` alone; the per-document one is `(doc, seq)`.
    let per_doc: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('doc_updates') WHERE name = 'doc' AND pk > 0")?
        .exists([])?;
    if !per_doc {
        if let Err(e) = conn.execute_batch(RENUMBER_LOG) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
    }
    Ok(())
}

/// Copies the store in `data_dir` into `to` with SQLite's online backup API: a consistent
/// snapshot, taken while a server may be writing (pages are copied in steps; a write meanwhile
/// restarts the copy of what changed). `to` is replaced.
pub fn backup(data_dir: &Path, to: &Path) -> Result<(), StoreError> {
    let src_path = data_dir.join("plenary.db");
    if !src_path.exists() {
        return Err(StoreError::NotFound);
    }
    let src = Connection::open_with_flags(&src_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    if to.exists() {
        std::fs::remove_file(to)?;
    }
    let mut dst = Connection::open(to)?;
    {
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        b.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
    }
    dst.execute_batch("PRAGMA journal_mode = DELETE")?;
    Ok(())
}

/// The document's snapshot with the sequence number it covers (0 and none without one).
fn snapshot_of(conn: &Connection, doc: &str) -> Result<(i64, Option<Vec<u8>>), StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT seq, data FROM doc_snapshots WHERE doc = ?1", [doc], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(match row {
        Some((seq, data)) => (seq, Some(data)),
        None => (0, None),
    })
}

/// The logged updates of `doc` above `after`, in order.
fn log_after(conn: &Connection, doc: &str, after: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, data FROM doc_updates WHERE doc = ?1 AND seq > ?2 ORDER BY seq")?;
    let rows = stmt.query_map(params![doc, after], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The document's head (0 for an unknown one).
fn head_of(conn: &Connection, doc: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row("SELECT seq FROM doc_heads WHERE doc = ?1", [doc], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn parse_meeting_id(s: &str) -> Result<MeetingId, StoreError> {
    MeetingId::parse(s).map_err(|e| StoreError::Corrupt(format!("meeting id {s:?}: {e}")))
}

impl Db {
    fn admin_token_hash(&self) -> Result<Option<TokenHash>, StoreError> {
        let conn = lock(&self.reader);
        let v: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'admin_token_sha256'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match v {
            None => Ok(None),
            Some(bytes) => {
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("admin token hash".into()))?;
                Ok(Some(TokenHash(arr)))
            }
        }
    }

    fn set_admin_token_hash(&self, hash: &TokenHash) -> Result<(), StoreError> {
        lock(&self.writer).execute(
            "INSERT INTO settings (key, value) VALUES ('admin_token_sha256', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![hash.0.to_vec()],
        )?;
        Ok(())
    }

    fn meetings(&self) -> Result<Vec<(MeetingRecord, Vec<TokenRecord>)>, StoreError> {
        let conn = lock(&self.reader);
        let mut out = Vec::new();
        let mut stmt = conn.prepare(
            "SELECT id, title, created_at, short_title, notes_private FROM meetings ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let meetings: Vec<(String, String, String, Option<String>, bool)> = rows.collect::<Result<_, _>>()?;
        let mut gstmt = conn.prepare(
            "SELECT id, title, closed, short_title FROM groups WHERE meeting_id = ?1 ORDER BY position",
        )?;
        let mut tstmt = conn.prepare("SELECT hash, role, group_id FROM tokens WHERE meeting_id = ?1")?;
        for (id, title, created_at, short_title, notes_private) in meetings {
            let mid = parse_meeting_id(&id)?;
            let groups = gstmt
                .query_map([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|(g, t, closed, short_title)| {
                    Ok(GroupRecord {
                        id: GroupId::parse(&g)
                            .map_err(|e| StoreError::Corrupt(format!("group id {g:?}: {e}")))?,
                        title: t,
                        closed,
                        short_title,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let tokens = tstmt
                .query_map([&id], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|(h, role, g)| {
                    let arr: [u8; 32] = h
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("token hash".into()))?;
                    Ok(TokenRecord {
                        hash: TokenHash(arr),
                        meeting: mid.clone(),
                        role: role_from_columns(&role, g)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push((
                MeetingRecord {
                    id: mid,
                    title,
                    created_at,
                    short_title,
                    notes_private,
                    groups,
                },
                tokens,
            ));
        }
        Ok(out)
    }

    fn insert_meeting(&self, m: &MeetingRecord, tokens: &[TokenRecord]) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM meetings WHERE id = ?1", [m.id.as_str()], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            "INSERT INTO meetings (id, title, created_at, short_title, notes_private) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.id.as_str(), m.title, m.created_at, m.short_title, m.notes_private],
        )?;
        for (pos, g) in m.groups.iter().enumerate() {
            tx.execute(
                "INSERT INTO groups (meeting_id, id, title, position, closed, short_title) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.id.as_str(), g.id.as_str(), g.title, pos as i64, g.closed, g.short_title],
            )?;
        }
        for t in tokens {
            let (role, group) = role_to_columns(&t.role);
            tx.execute(
                "INSERT INTO tokens (hash, meeting_id, role, group_id) VALUES (?1, ?2, ?3, ?4)",
                params![t.hash.0.to_vec(), t.meeting.as_str(), role, group],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn set_group_closed(&self, m: &MeetingId, g: &GroupId, closed: bool) -> Result<(), StoreError> {
        let n = lock(&self.writer).execute(
            "UPDATE groups SET closed = ?3 WHERE meeting_id = ?1 AND id = ?2",
            params![m.as_str(), g.as_str(), closed],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn replace_token(&self, t: &TokenRecord) -> Result<Vec<TokenHash>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM meetings WHERE id = ?1",
                [t.meeting.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        let (role, group) = role_to_columns(&t.role);
        // `IS` matches a NULL group (moderator, participant) as well as a group id.
        let old = {
            let mut stmt =
                tx.prepare("SELECT hash FROM tokens WHERE meeting_id = ?1 AND role = ?2 AND group_id IS ?3")?;
            let rows = stmt.query_map(params![t.meeting.as_str(), role, group], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|h| {
                    h.try_into()
                        .map(TokenHash)
                        .map_err(|_| StoreError::Corrupt("token hash".into()))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.execute(
            "DELETE FROM tokens WHERE meeting_id = ?1 AND role = ?2 AND group_id IS ?3",
            params![t.meeting.as_str(), role, group],
        )?;
        tx.execute(
            "INSERT INTO tokens (hash, meeting_id, role, group_id) VALUES (?1, ?2, ?3, ?4)",
            params![t.hash.0.to_vec(), t.meeting.as_str(), role, group],
        )?;
        tx.commit()?;
        Ok(old)
    }

    fn load_doc(&self, doc: &str) -> Result<StoredDoc, StoreError> {
        let mut conn = lock(&self.reader);
        // One read transaction, so a compaction cannot slip between the two reads.
        let tx = conn.transaction()?;
        let (covered, snapshot) = snapshot_of(&tx, doc)?;
        let updates = log_after(&tx, doc, covered)?;
        tx.commit()?;
        let head = updates.last().map_or(covered, |(s, _)| *s);
        Ok(StoredDoc {
            snapshot,
            updates: updates.into_iter().map(|(_, u)| u).collect(),
            head,
        })
    }

    fn updates_after(&self, doc: &str, after: i64) -> Result<DocTail, StoreError> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction()?;
        let (covered, snapshot) = snapshot_of(&tx, doc)?;
        let snapshot = snapshot.filter(|_| after < covered);
        let from = if snapshot.is_some() { covered } else { after };
        let updates = log_after(&tx, doc, from)?;
        let head = head_of(&tx, doc)?;
        tx.commit()?;
        Ok(DocTail {
            snapshot,
            updates,
            head,
        })
    }

    fn heads(&self, docs: &[String]) -> Result<Vec<i64>, StoreError> {
        let conn = lock(&self.reader);
        let list = serde_json::to_string(docs).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT h.doc, h.seq FROM doc_heads h WHERE h.doc IN (SELECT value FROM json_each(?1))",
        )?;
        let found: std::collections::HashMap<String, i64> = stmt
            .query_map([list], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(docs.iter().map(|d| found.get(d).copied().unwrap_or(0)).collect())
    }

    fn doc_keys(&self) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn
            .prepare("SELECT doc FROM doc_snapshots UNION SELECT DISTINCT doc FROM doc_updates ORDER BY 1")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn append(&self, batches: &[DocAppend]) -> Result<Appended, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut heads = Vec::with_capacity(batches.len());
        {
            let mut log =
                tx.prepare_cached("INSERT INTO doc_updates (doc, seq, data) VALUES (?1, ?2, ?3)")?;
            let mut raise = tx.prepare_cached(
                "INSERT INTO doc_heads (doc, seq) VALUES (?1, ?2)
                 ON CONFLICT(doc) DO UPDATE SET seq = excluded.seq",
            )?;
            for b in batches {
                if b.updates.is_empty() {
                    heads.push(None);
                    continue;
                }
                let mut seq = head_of(&tx, &b.doc)?;
                for u in &b.updates {
                    seq += 1;
                    log.execute(params![b.doc, seq, u])?;
                }
                raise.execute(params![b.doc, seq])?;
                heads.push(Some(seq));
            }
        }
        tx.commit()?;
        Ok(Appended { heads })
    }

    fn compact(&self, doc: &str, snapshot: &[u8], covers: i64) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let covers = covers.min(head_of(&tx, doc)?).max(0);
        let current: Option<i64> = tx
            .query_row("SELECT seq FROM doc_snapshots WHERE doc = ?1", [doc], |r| {
                r.get(0)
            })
            .optional()?;
        if current.is_some_and(|c| covers < c) {
            return Ok(()); // stale: the stored snapshot covers more
        }
        tx.execute(
            "INSERT INTO doc_snapshots (doc, data, updated_at, seq) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(doc) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,
               seq = excluded.seq",
            params![doc, snapshot, now_rfc3339(), covers],
        )?;
        tx.execute(
            "DELETE FROM doc_updates WHERE doc = ?1 AND seq <= ?2",
            params![doc, covers],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_meeting_titles(
        &self,
        m: &MeetingId,
        title: &str,
        short_title: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = lock(&self.writer).execute(
            "UPDATE meetings SET title = ?2, short_title = ?3 WHERE id = ?1",
            params![m.as_str(), title, short_title],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn set_notes_private(&self, m: &MeetingId, private: bool) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        let n = conn.execute(
            "UPDATE meetings SET notes_private = ?2 WHERE id = ?1",
            params![m.as_str(), private],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn set_group_titles(
        &self,
        m: &MeetingId,
        g: &GroupId,
        title: &str,
        short_title: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = lock(&self.writer).execute(
            "UPDATE groups SET title = ?3, short_title = ?4 WHERE meeting_id = ?1 AND id = ?2",
            params![m.as_str(), g.as_str(), title, short_title],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn add_group(&self, m: &MeetingId, g: &GroupRecord, t: &TokenRecord) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM meetings WHERE id = ?1", [m.as_str()], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        let taken = tx
            .query_row(
                "SELECT 1 FROM groups WHERE meeting_id = ?1 AND id = ?2",
                [m.as_str(), g.id.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if taken {
            return Err(StoreError::Conflict);
        }
        let pos: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM groups WHERE meeting_id = ?1",
            [m.as_str()],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO groups (meeting_id, id, title, position, closed, short_title) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![m.as_str(), g.id.as_str(), g.title, pos, g.closed, g.short_title],
        )?;
        let (role, group) = role_to_columns(&t.role);
        tx.execute(
            "INSERT INTO tokens (hash, meeting_id, role, group_id) VALUES (?1, ?2, ?3, ?4)",
            params![t.hash.0.to_vec(), m.as_str(), role, group],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn delete_meeting(&self, m: &MeetingId) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Documents are keyed `{meeting}/{group}` and `{meeting}/plenary`; ids hold only
        // `[a-z0-9-]`, so the prefix compare is exact.
        let prefix = format!("{}/", m.as_str());
        let doc_of_meeting = "substr(doc, 1, length(?1)) = ?1";
        for table in ["doc_updates", "doc_snapshots", "doc_revisions", "doc_heads"] {
            tx.execute(&format!("DELETE FROM {table} WHERE {doc_of_meeting}"), [&prefix])?;
        }
        for table in ["versions", "tokens", "groups"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE meeting_id = ?1"),
                [m.as_str()],
            )?;
        }
        let n = tx.execute("DELETE FROM meetings WHERE id = ?1", [m.as_str()])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_version(&self, m: &MeetingId, v: &VersionRecord) -> Result<(), StoreError> {
        let r = lock(&self.writer).execute(
            "INSERT INTO versions (meeting_id, id, label, created_at, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.as_str(), v.id, v.label, v.created_at, v.summary_json],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn versions(&self, m: &MeetingId) -> Result<Vec<VersionRecord>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare(
            "SELECT id, label, created_at, summary FROM versions WHERE meeting_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([m.as_str()], |r| {
            Ok(VersionRecord {
                id: r.get(0)?,
                label: r.get(1)?,
                created_at: r.get(2)?,
                summary_json: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn insert_revision(
        &self,
        doc: &str,
        created_at: &str,
        reason: &str,
        data: &[u8],
    ) -> Result<i64, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction()?;
        let id: i64 = tx.query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM doc_revisions WHERE doc = ?1",
            [doc],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO doc_revisions (doc, id, created_at, reason, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![doc, id, created_at, reason, data],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn revisions(&self, doc: &str) -> Result<Vec<RevisionRecord>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt =
            conn.prepare("SELECT id, created_at, reason FROM doc_revisions WHERE doc = ?1 ORDER BY id")?;
        let rows = stmt.query_map([doc], |r| {
            Ok(RevisionRecord {
                id: r.get(0)?,
                created_at: r.get(1)?,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn revision(&self, doc: &str, id: i64) -> Result<Option<(RevisionRecord, Vec<u8>)>, StoreError> {
        let conn = lock(&self.reader);
        let r = conn.query_row(
            "SELECT id, created_at, reason, data FROM doc_revisions WHERE doc = ?1 AND id = ?2",
            params![doc, id],
            |r| {
                Ok((
                    RevisionRecord {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        reason: r.get(2)?,
                    },
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        );
        match r {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Store for SqliteStore {
    fn admin_token_hash(&self) -> StoreFuture<'_, Option<TokenHash>> {
        self.run(|db| db.admin_token_hash())
    }
    fn set_admin_token_hash<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()> {
        let hash = *hash;
        self.run(move |db| db.set_admin_token_hash(&hash))
    }
    fn meetings(&self) -> StoreFuture<'_, Vec<(MeetingRecord, Vec<TokenRecord>)>> {
        self.run(|db| db.meetings())
    }
    fn insert_meeting<'a>(
        &'a self,
        meeting: &'a MeetingRecord,
        tokens: &'a [TokenRecord],
    ) -> StoreFuture<'a, ()> {
        let (meeting, tokens) = (meeting.clone(), tokens.to_vec());
        self.run(move |db| db.insert_meeting(&meeting, &tokens))
    }
    fn set_group_closed<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        closed: bool,
    ) -> StoreFuture<'a, ()> {
        let (meeting, group) = (meeting.clone(), group.clone());
        self.run(move |db| db.set_group_closed(&meeting, &group, closed))
    }
    fn replace_token<'a>(&'a self, token: &'a TokenRecord) -> StoreFuture<'a, Vec<TokenHash>> {
        let token = token.clone();
        self.run(move |db| db.replace_token(&token))
    }
    fn load_doc<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, StoredDoc> {
        let doc = doc.to_owned();
        self.run(move |db| db.load_doc(&doc))
    }
    fn updates_after<'a>(&'a self, doc: &'a str, after: i64) -> StoreFuture<'a, DocTail> {
        let doc = doc.to_owned();
        self.run(move |db| db.updates_after(&doc, after))
    }
    fn heads<'a>(&'a self, docs: &'a [String]) -> StoreFuture<'a, Vec<i64>> {
        let docs = docs.to_vec();
        self.run(move |db| db.heads(&docs))
    }
    fn doc_keys(&self) -> StoreFuture<'_, Vec<String>> {
        self.run(|db| db.doc_keys())
    }
    fn append(&self, batches: Vec<DocAppend>) -> StoreFuture<'_, Appended> {
        self.run(move |db| db.append(&batches))
    }
    fn compact<'a>(&'a self, doc: &'a str, snapshot: Vec<u8>, covers: i64) -> StoreFuture<'a, ()> {
        let doc = doc.to_owned();
        self.run(move |db| db.compact(&doc, &snapshot, covers))
    }
    fn set_meeting_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        let (meeting, title, short) = (meeting.clone(), title.to_owned(), short_title.map(str::to_owned));
        self.run(move |db| db.set_meeting_titles(&meeting, &title, short.as_deref()))
    }
    fn set_notes_private<'a>(&'a self, meeting: &'a MeetingId, private: bool) -> StoreFuture<'a, ()> {
        let meeting = meeting.clone();
        self.run(move |db| db.set_notes_private(&meeting, private))
    }
    fn set_group_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        let (meeting, group) = (meeting.clone(), group.clone());
        let (title, short) = (title.to_owned(), short_title.map(str::to_owned));
        self.run(move |db| db.set_group_titles(&meeting, &group, &title, short.as_deref()))
    }
    fn add_group<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupRecord,
        token: &'a TokenRecord,
    ) -> StoreFuture<'a, ()> {
        let (meeting, group, token) = (meeting.clone(), group.clone(), token.clone());
        self.run(move |db| db.add_group(&meeting, &group, &token))
    }
    fn delete_meeting<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, ()> {
        let meeting = meeting.clone();
        self.run(move |db| db.delete_meeting(&meeting))
    }
    fn insert_version<'a>(
        &'a self,
        meeting: &'a MeetingId,
        version: &'a VersionRecord,
    ) -> StoreFuture<'a, ()> {
        let (meeting, version) = (meeting.clone(), version.clone());
        self.run(move |db| db.insert_version(&meeting, &version))
    }
    fn versions<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, Vec<VersionRecord>> {
        let meeting = meeting.clone();
        self.run(move |db| db.versions(&meeting))
    }
    fn insert_revision<'a>(
        &'a self,
        doc: &'a str,
        created_at: &'a str,
        reason: &'a str,
        data: Vec<u8>,
    ) -> StoreFuture<'a, i64> {
        let (doc, created_at, reason) = (doc.to_owned(), created_at.to_owned(), reason.to_owned());
        self.run(move |db| db.insert_revision(&doc, &created_at, &reason, &data))
    }
    fn revisions<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, Vec<RevisionRecord>> {
        let doc = doc.to_owned();
        self.run(move |db| db.revisions(&doc))
    }
    fn revision<'a>(&'a self, doc: &'a str, id: i64) -> StoreFuture<'a, Option<(RevisionRecord, Vec<u8>)>> {
        let doc = doc.to_owned();
        self.run(move |db| db.revision(&doc, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), Durability::Process).unwrap();
        (dir, s)
    }

    fn meeting(id: &str) -> MeetingRecord {
        MeetingRecord {
            id: MeetingId::parse(id).unwrap(),
            title: "T".into(),
            created_at: now_rfc3339(),
            short_title: None,
            notes_private: false,
            groups: vec![GroupRecord {
                id: GroupId::parse("g1").unwrap(),
                title: "G".into(),
                closed: false,
                short_title: None,
            }],
        }
    }

    #[tokio::test]
    async fn meetings_and_tokens_round_trip_and_conflict() {
        let (_d, s) = store();
        let m = meeting("m1");
        let t = TokenRecord {
            hash: TokenHash::of("x"),
            meeting: m.id.clone(),
            role: Role::Rapporteur("g1".into()),
        };
        s.insert_meeting(&m, std::slice::from_ref(&t)).await.unwrap();
        assert!(matches!(
            s.insert_meeting(&m, &[]).await,
            Err(StoreError::Conflict)
        ));
        let all = s.meetings().await.unwrap();
        assert_eq!(all, vec![(m.clone(), vec![t])]);
        s.set_group_closed(&m.id, &GroupId::parse("g1").unwrap(), true)
            .await
            .unwrap();
        assert!(s.meetings().await.unwrap()[0].0.groups[0].closed);
    }

    #[tokio::test]
    async fn replacing_a_token_removes_only_that_role_and_survives_a_reopen() {
        let (d, s) = store();
        let m = meeting("m1");
        let rec = |t: &str, role: Role| TokenRecord {
            hash: TokenHash::of(t),
            meeting: m.id.clone(),
            role,
        };
        s.insert_meeting(
            &m,
            &[
                rec("mod", Role::Moderator),
                rec("part", Role::Participant),
                rec("rap", Role::Rapporteur("g1".into())),
            ],
        )
        .await
        .unwrap();
        let old = s.replace_token(&rec("part2", Role::Participant)).await.unwrap();
        assert_eq!(old, vec![TokenHash::of("part")]);
        let old = s
            .replace_token(&rec("rap2", Role::Rapporteur("g1".into())))
            .await
            .unwrap();
        assert_eq!(old, vec![TokenHash::of("rap")]);
        drop(s);
        let s = SqliteStore::open(d.path(), Durability::Process).unwrap();
        let mut hashes: Vec<_> = s.meetings().await.unwrap()[0].1.iter().map(|t| t.hash).collect();
        hashes.sort_by_key(|h| h.0);
        let mut want = vec![
            TokenHash::of("mod"),
            TokenHash::of("part2"),
            TokenHash::of("rap2"),
        ];
        want.sort_by_key(|h| h.0);
        assert_eq!(hashes, want);
        let other = TokenRecord {
            hash: TokenHash::of("x"),
            meeting: MeetingId::parse("nope").unwrap(),
            role: Role::Moderator,
        };
        assert!(matches!(s.replace_token(&other).await, Err(StoreError::NotFound)));
    }

    /// A store made before per-document numbers (one AUTOINCREMENT number over every
    /// document, snapshots without a number) is renumbered when opened: each document's log
    /// in its old order from 1 (from 2 after a snapshot, which covers 1), heads to match, and
    /// appends go on from there.
    #[tokio::test]
    async fn a_store_with_the_old_log_is_renumbered_per_document() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("plenary.db")).unwrap();
            c.execute_batch(
                "CREATE TABLE doc_updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL, data BLOB NOT NULL);
                 CREATE INDEX doc_updates_by_doc ON doc_updates(doc, seq);
                 CREATE TABLE doc_snapshots (doc TEXT PRIMARY KEY, data BLOB NOT NULL, updated_at TEXT NOT NULL);
                 INSERT INTO doc_updates (doc, data) VALUES
                   ('m/a', x'01'), ('m/b', x'11'), ('m/a', x'02'), ('m/b', x'12'), ('m/a', x'03');
                 DELETE FROM doc_updates WHERE seq = 1;
                 INSERT INTO doc_snapshots VALUES ('m/a', x'aa', '2020-01-01T00:00:00Z'),
                                                  ('m/c', x'cc', '2020-01-01T00:00:00Z');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(dir.path(), Durability::Process).unwrap();
        let a = s.load_doc("m/a").await.unwrap();
        assert_eq!(
            (a.snapshot.clone(), a.updates.clone(), a.head),
            (Some(vec![0xaa]), vec![vec![2], vec![3]], 3)
        );
        let t = s.updates_after("m/a", 0).await.unwrap();
        assert_eq!(t.updates, vec![(2, vec![2]), (3, vec![3])]);
        assert_eq!(t.snapshot, Some(vec![0xaa]), "the snapshot covers 1");
        let b = s.updates_after("m/b", 0).await.unwrap();
        assert_eq!(
            (b.snapshot, b.updates, b.head),
            (None, vec![(1, vec![0x11]), (2, vec![0x12])], 2)
        );
        let c = s.load_doc("m/c").await.unwrap();
        assert_eq!((c.snapshot, c.updates.len(), c.head), (Some(vec![0xcc]), 0, 1));
        let names: Vec<String> = ["m/a", "m/b", "m/c", "m/d"].map(String::from).to_vec();
        assert_eq!(s.heads(&names).await.unwrap(), vec![3, 2, 1, 0]);
        let r = s
            .append(vec![DocAppend {
                doc: "m/b".into(),
                updates: vec![vec![0x13]],
                fence: None,
            }])
            .await
            .unwrap();
        assert_eq!(r.heads, vec![Some(3)], "numbering goes on after the old log");
        drop(s);
        // opening again changes nothing
        let s = SqliteStore::open(dir.path(), Durability::Process).unwrap();
        assert_eq!(s.heads(&names).await.unwrap(), vec![3, 3, 1, 0]);
        assert_eq!(s.load_doc("m/b").await.unwrap().updates.len(), 3);
    }

    #[tokio::test]
    async fn updates_append_in_order_and_compaction_replaces_the_log() {
        let (_d, s) = store();
        s.append(vec![DocAppend {
            doc: "m/g".into(),
            updates: vec![vec![1], vec![2]],
            fence: None,
        }])
        .await
        .unwrap();
        s.append(vec![
            DocAppend {
                doc: "m/h".into(),
                updates: vec![vec![9]],
                fence: None,
            },
            DocAppend {
                doc: "m/g".into(),
                updates: vec![vec![3]],
                fence: None,
            },
        ])
        .await
        .unwrap();
        let d = s.load_doc("m/g").await.unwrap();
        assert_eq!(d.updates, vec![vec![1], vec![2], vec![3]]);
        assert!(d.snapshot.is_none());
        s.compact("m/g", vec![7, 7], 3).await.unwrap();
        let d = s.load_doc("m/g").await.unwrap();
        assert_eq!(d.snapshot, Some(vec![7, 7]));
        assert!(d.updates.is_empty());
        assert_eq!(s.load_doc("m/h").await.unwrap().updates, vec![vec![9]]);
    }
}
