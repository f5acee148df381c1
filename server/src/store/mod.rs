//! Durable storage: meetings, token hashes, per-document update logs and snapshots, adopted
//! versions.
//!
//! [`Store`] is synchronous and small on purpose: the embedded [`sqlite::SqliteStore`] is one
//! implementation and a PostgreSQL one can follow. Callers never use it from async code directly:
//! document writes go through [`persister::Persister`] (one writer thread, group commit) and
//! the rest through `spawn_blocking`.

pub mod persister;
pub mod postgres;
pub mod sqlite;

use crate::auth::{Role, TokenHash};
use plenary_protocol::{GroupId, MeetingId};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
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
#[derive(Debug)]
pub struct DocAppend {
    pub doc: String,
    pub updates: Vec<Vec<u8>>,
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

pub trait Store: Send + Sync + 'static {
    fn admin_token_hash(&self) -> Result<Option<TokenHash>, StoreError>;
    fn set_admin_token_hash(&self, hash: &TokenHash) -> Result<(), StoreError>;

    /// Every meeting with its tokens, for the in-memory directory.
    fn meetings(&self) -> Result<Vec<(MeetingRecord, Vec<TokenRecord>)>, StoreError>;
    /// Creates a meeting and its tokens in one transaction; `Conflict` if the id exists.
    fn insert_meeting(&self, meeting: &MeetingRecord, tokens: &[TokenRecord]) -> Result<(), StoreError>;
    fn set_group_closed(&self, meeting: &MeetingId, group: &GroupId, closed: bool) -> Result<(), StoreError>;
    /// Replaces every token of `token.meeting` with `token.role` (same group for a rapporteur)
    /// by `token`, in one transaction; returns the hashes it removed. `NotFound` if the meeting
    /// does not exist.
    fn replace_token(&self, token: &TokenRecord) -> Result<Vec<TokenHash>, StoreError>;

    fn load_doc(&self, doc: &str) -> Result<StoredDoc, StoreError>;
    /// Every document with a snapshot or logged updates (for `plenary doctor`).
    fn doc_keys(&self) -> Result<Vec<String>, StoreError>;
    /// Appends every batch in one transaction: all are durable when this returns.
    fn append(&self, batches: &[DocAppend]) -> Result<(), StoreError>;
    /// Replaces the document's snapshot and drops its logged updates, in one transaction.
    /// The caller guarantees `snapshot` contains every update appended so far, or (`plenary
    /// doctor --repair`) means to replace the document by it.
    fn compact(&self, doc: &str, snapshot: &[u8]) -> Result<(), StoreError>;

    /// Sets a meeting's title and short title. `NotFound` if the meeting does not exist.
    fn set_meeting_titles(
        &self,
        meeting: &MeetingId,
        title: &str,
        short_title: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Sets whether a meeting's group notes are private. `NotFound` if it does not exist.
    fn set_notes_private(&self, meeting: &MeetingId, private: bool) -> Result<(), StoreError>;
    /// Sets a group's title and short title. `NotFound` if the group does not exist.
    fn set_group_titles(
        &self,
        meeting: &MeetingId,
        group: &GroupId,
        title: &str,
        short_title: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Adds a group at the end of the meeting with its rapporteur token, in one transaction.
    /// `NotFound` if the meeting does not exist, `Conflict` if the group does.
    fn add_group(
        &self,
        meeting: &MeetingId,
        group: &GroupRecord,
        token: &TokenRecord,
    ) -> Result<(), StoreError>;
    /// Removes a meeting and every row of it (groups, tokens, documents' logs and snapshots,
    /// versions) in one transaction. `NotFound` if it does not exist.
    fn delete_meeting(&self, meeting: &MeetingId) -> Result<(), StoreError>;

    fn insert_version(&self, meeting: &MeetingId, version: &VersionRecord) -> Result<(), StoreError>;
    fn versions(&self, meeting: &MeetingId) -> Result<Vec<VersionRecord>, StoreError>;

    /// Keeps `data` (a v1 update holding the whole document) as a new revision of `doc`; returns
    /// its id (1, 2, … per document). Stores that keep no revisions say `NotFound`.
    fn insert_revision(
        &self,
        _doc: &str,
        _created_at: &str,
        _reason: &str,
        _data: &[u8],
    ) -> Result<i64, StoreError> {
        Err(StoreError::NotFound)
    }
    /// The revisions of `doc`, oldest first.
    fn revisions(&self, _doc: &str) -> Result<Vec<RevisionRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// One revision of `doc` with its data.
    fn revision(&self, _doc: &str, _id: i64) -> Result<Option<(RevisionRecord, Vec<u8>)>, StoreError> {
        Ok(None)
    }
}
