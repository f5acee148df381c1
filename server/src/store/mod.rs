//! Durable storage: meetings, token hashes, per-document update logs and snapshots, adopted
//! versions, revisions.
//!
//! [`Store`] is an async, object-safe trait kept as `Arc<dyn Store>`: callers (rooms, handlers,
//! the offline commands) await its futures and never learn whether a write is a rusqlite call
//! on a blocking thread ([`sqlite::SqliteStore`]) or a network round trip (a PostgreSQL store).
//! Document writes go through [`persister::Persister`] (one group-commit task per process);
//! [`memory::MemoryStore`] is the in-memory store for tests, with controls that hold or fail
//! appends; [`conformance`] checks any implementation against the promises written here.
//!
//! Large payloads (updates, snapshots, revision data) are passed by value, so that a backend
//! can move them to a thread or a socket without copying; everything else is borrowed for the
//! life of the returned future.

pub mod conformance;
pub mod memory;
pub mod persister;
pub mod postgres;
pub mod sqlite;

use crate::auth::{Role, TokenHash};
use plenary_protocol::{GroupId, MeetingId};
use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

/// What every [`Store`] method returns: a boxed future, so that the trait stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How hard the store works to keep a commit: see the README's durability section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: a killed process loses nothing committed; a power cut may lose
    /// the last transactions.
    Process,
    /// WAL + synchronous=FULL: every commit is fsynced before it is acknowledged or relayed.
    Power,
    /// PostgreSQL only: every commit is also on a synchronous standby before it returns; the
    /// server refuses to start unless PostgreSQL has one (`synchronous_standby_names` set and a
    /// `sync` or `quorum` standby connected).
    Replicated,
}

/// Now, as the store records it (`created_at`, `updated_at`): RFC 3339, UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A backend's own error (a failed query, a constraint it reports), as text.
    #[error("store backend error: {0}")]
    Backend(String),
    /// The backend cannot be reached now (connection lost, pool exhausted, a failover): the
    /// operation did not happen and may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// A fenced write ([`DocAppend::fence`]) whose lease is no longer held as it says (another
    /// node took it, or it expired): nothing of the transaction was stored. Names the meetings.
    #[error("the plenary lease of {0:?} is not held: the merge was not stored")]
    Fenced(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: GroupId,
    pub title: String,
    pub closed: bool,
    /// The projector's headline instead of `title`, when set.
    pub short_title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRecord {
    pub id: MeetingId,
    pub title: String,
    /// RFC 3339.
    pub created_at: String,
    /// The projector's headline instead of `title`, when set.
    pub short_title: Option<String>,
    /// The groups' notes are for rapporteurs and moderators only: participants see the
    /// conclusions (the plenary document) and no group document.
    pub notes_private: bool,
    /// In meeting order.
    pub groups: Vec<GroupRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub hash: TokenHash,
    pub meeting: MeetingId,
    pub role: Role,
}

/// What is stored of one document: its last snapshot and the updates logged after it.
#[derive(Debug, Default)]
pub struct StoredDoc {
    pub snapshot: Option<Vec<u8>>,
    pub updates: Vec<Vec<u8>>,
    /// The sequence number of the last update this state holds: the last logged update's, or
    /// the snapshot's when no update follows it; 0 for an unknown document.
    pub head: i64,
}

/// What a document's log holds after a sequence number ([`Store::updates_after`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DocTail {
    /// Some when updates after the asked number were folded into the snapshot: apply it, then
    /// `updates` (Yjs updates are idempotent, so what the caller had already is harmless).
    pub snapshot: Option<Vec<u8>>,
    /// `(seq, update)` in sequence order: those after the asked number, or after the snapshot
    /// when it is given.
    pub updates: Vec<(i64, Vec<u8>)>,
    /// The document's head in the same read (0 for an unknown document).
    pub head: i64,
}

/// Updates replayed per transaction when a document is rebuilt: one transaction over a long log
/// makes yrs's commit (squashing) quadratic; short ones keep a cold load linear.
const REPLAY_CHUNK: usize = 256;

impl StoredDoc {
    /// Rebuilds the document: its snapshot, then the logged updates, in order.
    pub fn to_doc(&self) -> Result<yrs::Doc, String> {
        use yrs::updates::decoder::Decode;
        use yrs::Transact;
        let doc = yrs::Doc::new();
        let all: Vec<&Vec<u8>> = self.snapshot.iter().chain(self.updates.iter()).collect();
        for chunk in all.chunks(REPLAY_CHUNK) {
            let mut txn = doc.transact_mut();
            for bytes in chunk {
                let u = yrs::Update::decode_v1(bytes).map_err(|e| format!("stored update: {e}"))?;
                txn.apply_update(u).map_err(|e| format!("stored update: {e}"))?;
            }
        }
        Ok(doc)
    }
}

/// Updates of one document to append in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocAppend {
    pub doc: String,
    pub updates: Vec<Vec<u8>>,
    /// A plenary merge's write: stored only while this lease is held (checked in the append's
    /// own transaction by a store that other nodes share; the embedded stores ignore it).
    pub fence: Option<Fence>,
}

/// The lease a fenced write claims: `holder` (a node id) holds `meeting`'s plenary lease under
/// `epoch`, and it has not expired on the database's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub meeting: String,
    pub holder: String,
    pub epoch: i64,
}

/// What a committed [`Store::append`] reports: one entry per batch, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Per batch, the sequence number the store gave the batch's last update (`None` for a
    /// batch without updates): the document's head once this transaction committed.
    /// Sequence numbers are per document: 1, 2, 3, … in commit order without a gap, never
    /// reused (compactions do not reset them), the same in every backend. A batch of `n`
    /// updates with head `h` holds `h - n + 1 ..= h`.
    pub heads: Vec<Option<i64>>,
}

/// An adopted, immutable version of a meeting's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub id: String,
    pub label: String,
    /// RFC 3339.
    pub created_at: String,
    /// The summary as exported (`summary.json`), frozen.
    pub summary_json: String,
}

/// A stored revision of a document (without its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRecord {
    pub id: i64,
    pub created_at: String,
    /// `interval` (taken by the periodic task because the document changed) or `closed`.
    pub reason: String,
}

/// The durable store. Every method's future resolves once the operation is committed (or
/// failed, with nothing of it stored). Futures are independent: the caller orders writes that
/// depend on each other by awaiting the first (the persister does this for document writes).
pub trait Store: Send + Sync + 'static {
    fn admin_token_hash(&self) -> StoreFuture<'_, Option<TokenHash>>;
    fn set_admin_token_hash<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()>;

    /// Every meeting with its tokens, for the in-memory directory: meetings by `created_at`
    /// then id, groups in meeting order.
    fn meetings(&self) -> StoreFuture<'_, Vec<(MeetingRecord, Vec<TokenRecord>)>>;
    /// One meeting with its tokens, read consistently (as [`Store::meetings`] shows it);
    /// `None` if it does not exist. A node reads it when another node changed the meeting.
    /// The default reads every meeting; a store shared by nodes reads just the one.
    fn meeting<'a>(
        &'a self,
        id: &'a MeetingId,
    ) -> StoreFuture<'a, Option<(MeetingRecord, Vec<TokenRecord>)>> {
        Box::pin(async move { Ok(self.meetings().await?.into_iter().find(|(m, _)| &m.id == id)) })
    }
    /// Creates a meeting and its tokens in one transaction; `Conflict` if the id exists.
    fn insert_meeting<'a>(
        &'a self,
        meeting: &'a MeetingRecord,
        tokens: &'a [TokenRecord],
    ) -> StoreFuture<'a, ()>;
    /// `NotFound` if the group does not exist.
    fn set_group_closed<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        closed: bool,
    ) -> StoreFuture<'a, ()>;
    /// Replaces every token of `token.meeting` with `token.role` (same group for a rapporteur)
    /// by `token`, in one transaction; returns the hashes it removed. `NotFound` if the meeting
    /// does not exist.
    fn replace_token<'a>(&'a self, token: &'a TokenRecord) -> StoreFuture<'a, Vec<TokenHash>>;

    /// The document's snapshot and the updates logged after it, in append order, with the
    /// head they reach, read consistently (a compaction or an append never shows half done).
    /// Empty with head 0 for an unknown document.
    fn load_doc<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, StoredDoc>;
    /// The logged updates with a sequence number above `after`, in order, read consistently.
    /// When some of them were folded into the snapshot (`after` is below the snapshot's
    /// number), the tail holds the snapshot and the updates logged after it.
    fn updates_after<'a>(&'a self, doc: &'a str, after: i64) -> StoreFuture<'a, DocTail>;
    /// The current head of each document, in the order given (0 for an unknown one), in one
    /// query.
    fn heads<'a>(&'a self, docs: &'a [String]) -> StoreFuture<'a, Vec<i64>>;
    /// Every document with a snapshot or logged updates, sorted (for `plenary doctor`).
    fn doc_keys(&self) -> StoreFuture<'_, Vec<String>>;
    /// Appends every batch, the batches of all rooms, in one transaction (group commit): all
    /// are durable when the future resolves `Ok`, none is stored when it fails. Updates of one
    /// document are logged in the order given, batch after batch.
    fn append(&self, batches: Vec<DocAppend>) -> StoreFuture<'_, Appended>;
    /// Replaces the document's snapshot by `snapshot`, which holds every update with a
    /// sequence number up to `covers`, and drops exactly those updates from the log, in one
    /// transaction; later ones (another node may have appended them) stay and load after the
    /// snapshot, whose number becomes `covers`. Never drops an update above `covers`.
    /// `covers` above the head is taken as the head (nothing later can be in the snapshot); a
    /// compaction whose `covers` is below the stored snapshot's number is stale and changes
    /// nothing. `plenary doctor --repair` passes the head it read, replacing what it read.
    fn compact<'a>(&'a self, doc: &'a str, snapshot: Vec<u8>, covers: i64) -> StoreFuture<'a, ()>;

    /// Sets a meeting's title and short title. `NotFound` if the meeting does not exist.
    fn set_meeting_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()>;
    /// Sets whether a meeting's group notes are private. `NotFound` if it does not exist.
    fn set_notes_private<'a>(&'a self, meeting: &'a MeetingId, private: bool) -> StoreFuture<'a, ()>;
    /// Sets a group's title and short title. `NotFound` if the group does not exist.
    fn set_group_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()>;
    /// Adds a group at the end of the meeting with its rapporteur token, in one transaction.
    /// `NotFound` if the meeting does not exist, `Conflict` if the group does.
    fn add_group<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupRecord,
        token: &'a TokenRecord,
    ) -> StoreFuture<'a, ()>;
    /// Removes a meeting and every row of it (groups, tokens, documents' logs, snapshots and
    /// revisions, versions) in one transaction. `NotFound` if it does not exist.
    fn delete_meeting<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, ()>;

    /// Keeps an adopted version; `Conflict` if the meeting already has one with this id.
    fn insert_version<'a>(
        &'a self,
        meeting: &'a MeetingId,
        version: &'a VersionRecord,
    ) -> StoreFuture<'a, ()>;
    /// The meeting's versions by `created_at` then id.
    fn versions<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, Vec<VersionRecord>>;

    /// Keeps `data` (a v1 update holding the whole document) as a new revision of `doc`; returns
    /// its id (1, 2, … per document). A store that keeps no revisions says `NotFound`.
    fn insert_revision<'a>(
        &'a self,
        doc: &'a str,
        created_at: &'a str,
        reason: &'a str,
        data: Vec<u8>,
    ) -> StoreFuture<'a, i64>;
    /// The revisions of `doc`, oldest first (empty for a store without revisions).
    fn revisions<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, Vec<RevisionRecord>>;
    /// One revision of `doc` with its data.
    fn revision<'a>(&'a self, doc: &'a str, id: i64) -> StoreFuture<'a, Option<(RevisionRecord, Vec<u8>)>>;

    /// A number that changes whenever a change to meetings, groups or tokens commits, whichever
    /// node made it: when it reads the same before a [`Store::meetings`] as before an earlier
    /// one, nothing of the directory changed in between, and a node's periodic read of every
    /// meeting can be skipped (`cluster::directory_sync`). `None`: this store keeps no such
    /// number (every read is made). An embedded store is not shared and keeps none.
    fn directory_epoch(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async { Ok(None) })
    }

    /// `Ok` while the store can be reached (`/healthz`). An embedded store always can.
    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// A role as the stores keep it: a role name and, for a rapporteur, the group's id.
pub(crate) fn role_to_columns(role: &Role) -> (&'static str, Option<&str>) {
    match role {
        Role::Moderator => ("moderator", None),
        Role::Participant => ("participant", None),
        Role::Rapporteur(g) => ("rapporteur", Some(g.as_str())),
    }
}

/// The role of stored `role_to_columns` columns; `Corrupt` for a name no version wrote.
pub(crate) fn role_from_columns(role: &str, group: Option<String>) -> Result<Role, StoreError> {
    match (role, group) {
        ("moderator", _) => Ok(Role::Moderator),
        ("participant", _) => Ok(Role::Participant),
        ("rapporteur", Some(g)) => Ok(Role::Rapporteur(g)),
        (other, _) => Err(StoreError::Corrupt(format!("unknown role {other}"))),
    }
}
