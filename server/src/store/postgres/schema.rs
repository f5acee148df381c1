//! The PostgreSQL schema and its versioned migrations, applied at start.
//!
//! Every node runs [`migrate`] when it starts. It takes a transaction-scoped advisory lock first,
//! so two nodes starting together apply each migration once: the second waits for the first's
//! commit, then finds nothing left to do. Each applied migration is a row of
//! `schema_migrations`; a database migrated by a newer binary (a version this one does not
//! know) is refused rather than written with an older idea of the schema.
//!
//! Tables (migration 1; also in the README):
//! - `settings(key, value)`: the admin token's hash (`admin_token_sha256`).
//! - `meetings(id, title, created_at, short_title, notes_private)`,
//!   `groups(meeting_id, id, title, position, closed, short_title)` (closed flags),
//!   `tokens(hash, meeting_id, role, group_id)`: SHA-256 of each capability token, never the token.
//! - `doc_heads(doc, seq)`: per document, the sequence number of its last logged update. It is
//!   raised in the transaction that appends, so sequence numbers follow commit order; appends
//!   lock the heads they raise in one fixed order (document key, byte order), so nodes appending
//!   to overlapping documents at once wait for each other instead of deadlocking.
//! - `doc_updates(doc, seq, data)`: v1 Yjs updates, per document in sequence order.
//! - `doc_snapshots(doc, seq, data, updated_at)`: a document folded into one update covering
//!   every logged update up to `seq`; the log keeps only later ones.
//! - `versions(meeting_id, id, label, created_at, summary)`: adopted summaries, immutable.
//! - `doc_revisions(doc, id, created_at, reason, data)`: revisions of group documents.
//!
//! Migration 2:
//! - `plenary_leases(meeting_id, holder, epoch, expires_at)`: which node merges a meeting's
//!   plenary (`super::lease`). `expires_at` is on the database's clock; `epoch` grows by one
//!   each time the lease changes hands (or is retaken after it lapsed). No foreign key: a
//!   deleted meeting's row is inert.
//!
//! Migration 3:
//! - `directory_epoch(only_row, n, last_tx)`: one row; `n` grows by one in every transaction
//!   that changes `meetings`, `groups` or `tokens` (deferred constraint triggers, so the row is
//!   the last lock such a transaction takes: two of them cannot deadlock on it). A node reads `n`
//!   before its periodic read of every meeting and skips that read when `n` has not moved
//!   (`Store::directory_epoch`, `cluster::directory_sync`).
//!
//! Keys are `COLLATE "C"` (byte order): the same order as Rust's `str` and SQLite's default,
//! whatever the database's locale.

use tokio_postgres::GenericClient;

/// One step of the schema. Versions start at 1 and grow by one; a migration is never edited
/// once released (add a new one).
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: r#"
CREATE TABLE settings (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE meetings (
  id TEXT COLLATE "C" PRIMARY KEY,
  title TEXT NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  short_title TEXT,
  notes_private BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE groups (
  meeting_id TEXT COLLATE "C" NOT NULL REFERENCES meetings(id),
  id TEXT COLLATE "C" NOT NULL,
  title TEXT NOT NULL,
  position INTEGER NOT NULL,
  closed BOOLEAN NOT NULL DEFAULT FALSE,
  short_title TEXT,
  PRIMARY KEY (meeting_id, id));
CREATE TABLE tokens (
  hash BYTEA PRIMARY KEY CHECK (length(hash) = 32),
  meeting_id TEXT COLLATE "C" NOT NULL REFERENCES meetings(id),
  role TEXT NOT NULL CHECK (role IN ('moderator', 'participant', 'rapporteur')),
  group_id TEXT COLLATE "C");
CREATE INDEX tokens_by_meeting ON tokens (meeting_id);
CREATE TABLE doc_heads (
  doc TEXT COLLATE "C" PRIMARY KEY,
  seq BIGINT NOT NULL CHECK (seq >= 0));
CREATE TABLE doc_updates (
  doc TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (doc, seq));
CREATE TABLE doc_snapshots (
  doc TEXT COLLATE "C" PRIMARY KEY,
  seq BIGINT NOT NULL,
  data BYTEA NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE versions (
  meeting_id TEXT COLLATE "C" NOT NULL REFERENCES meetings(id),
  id TEXT COLLATE "C" NOT NULL,
  label TEXT NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  summary TEXT NOT NULL,
  PRIMARY KEY (meeting_id, id));
CREATE TABLE doc_revisions (
  doc TEXT COLLATE "C" NOT NULL,
  id BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  reason TEXT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (doc, id));
"#,
    },
    Migration {
        version: 2,
        name: "plenary leases",
        sql: r#"
CREATE TABLE plenary_leases (
  meeting_id TEXT COLLATE "C" PRIMARY KEY,
  holder TEXT NOT NULL,
  epoch BIGINT NOT NULL CHECK (epoch > 0),
  expires_at TIMESTAMPTZ NOT NULL);
"#,
    },
    Migration {
        version: 3,
        name: "directory epoch",
        sql: r#"
CREATE TABLE directory_epoch (
  only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
  n BIGINT NOT NULL,
  last_tx BIGINT);
INSERT INTO directory_epoch (n) VALUES (0);
CREATE FUNCTION plenary_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE directory_epoch SET n = n + 1, last_tx = txid_current()
    WHERE last_tx IS DISTINCT FROM txid_current();
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER meetings_directory_epoch AFTER INSERT OR UPDATE OR DELETE ON meetings
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plenary_directory_changed();
CREATE CONSTRAINT TRIGGER groups_directory_epoch AFTER INSERT OR UPDATE OR DELETE ON groups
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plenary_directory_changed();
CREATE CONSTRAINT TRIGGER tokens_directory_epoch AFTER INSERT OR UPDATE OR DELETE ON tokens
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plenary_directory_changed();
"#,
    },
];

/// The schema version this binary writes.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Key of the advisory lock that serializes migrations across nodes ("plenary" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6c65_6e61_7279;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("the database's schema is version {found}, newer than this binary's {known}: upgrade plenary")]
    TooNew { found: i32, known: i32 },
}

/// Brings the schema to [`latest_version`] in one transaction; returns the versions it
/// applied (empty when the database was current). On any error nothing is applied.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, SchemaError> {
    let tx = client.transaction().await?;
    let applied = apply(&tx, MIGRATIONS).await?;
    tx.commit().await?;
    Ok(applied)
}

async fn apply<C: GenericClient>(tx: &C, migrations: &[Migration]) -> Result<Vec<i32>, SchemaError> {
    // Waits for any other node migrating now; released at commit or rollback.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
           version INTEGER PRIMARY KEY,
           name TEXT NOT NULL,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .await?;
    let current: i32 = row.get(0);
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(SchemaError::TooNew {
            found: current,
            known,
        });
    }
    let mut applied = Vec::new();
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{client_config, connect, testing};

    async fn fresh() -> Option<tokio_postgres::Config> {
        let admin = testing::test_url()?;
        let url = testing::fresh_database(&admin)
            .await
            .expect("create a test database");
        Some(client_config(&url).expect("test URL"))
    }

    async fn tables(c: &tokio_postgres::Client) -> Vec<String> {
        c.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    #[tokio::test]
    async fn migrations_apply_once_and_make_every_table() {
        let Some(config) = fresh().await else { return };
        let mut c = connect(&config).await.expect("connect");
        assert_eq!(migrate(&mut c).await.expect("first migration"), vec![1, 2, 3]);
        assert_eq!(migrate(&mut c).await.expect("second run"), Vec::<i32>::new());
        assert_eq!(
            tables(&c).await,
            [
                "directory_epoch",
                "doc_heads",
                "doc_revisions",
                "doc_snapshots",
                "doc_updates",
                "groups",
                "meetings",
                "plenary_leases",
                "schema_migrations",
                "settings",
                "tokens",
                "versions"
            ]
        );
        let sc: String = c
            .query_one("SHOW synchronous_commit", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(sc, "on");
    }

    #[tokio::test]
    async fn nodes_migrating_at_once_apply_each_migration_once() {
        let Some(config) = fresh().await else { return };
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(connect(&config).await.expect("connect"));
        }
        let results = futures_util::future::join_all(clients.iter_mut().map(migrate)).await;
        let mut applied: Vec<Vec<i32>> = results
            .into_iter()
            .map(|r| r.expect("every node starts"))
            .collect();
        applied.sort();
        assert_eq!(applied, vec![vec![], vec![], vec![], vec![1, 2, 3]]);
    }

    #[tokio::test]
    async fn a_schema_newer_than_the_binary_is_refused_and_left_alone() {
        let Some(config) = fresh().await else { return };
        let mut c = connect(&config).await.expect("connect");
        migrate(&mut c).await.expect("migrate");
        c.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
            &[],
        )
        .await
        .expect("insert");
        let e = migrate(&mut c).await.expect_err("refused");
        assert!(matches!(e, SchemaError::TooNew { found: 99, known: 3 }), "{e}");
        let n: i64 = c
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 4);
    }

    #[tokio::test]
    async fn a_failing_migration_applies_nothing() {
        let Some(config) = fresh().await else { return };
        let mut c = connect(&config).await.expect("connect");
        let broken = [
            Migration {
                version: 1,
                name: "ok",
                sql: "CREATE TABLE a (x INT)",
            },
            Migration {
                version: 2,
                name: "broken",
                sql: "CREATE TABLE b (x NO_SUCH_TYPE)",
            },
        ];
        let tx = c.transaction().await.expect("begin");
        assert!(apply(&tx, &broken).await.is_err());
        drop(tx);
        assert!(tables(&c).await.is_empty());
    }
}
