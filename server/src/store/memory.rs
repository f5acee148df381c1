//! An in-memory [`Store`] for tests: it keeps every promise of the trait (checked by
//! [`super::conformance`] like the SQLite store) and adds controls a test needs to prove what
//! happens *before* a write is durable.
//!
//! Controls:
//! - **Gate** ([`MemoryStore::hold_appends`] / [`MemoryStore::release_appends`]): while held,
//!   an append's future does not resolve and nothing of it is stored (a `load_doc` does not see
//!   it); on release, held appends commit one by one in the order they were called.
//!   [`MemoryStore::pending_appends`] counts appends called and not yet resolved, and
//!   [`MemoryStore::wait_pending_appends`] waits for a count, so a test can hold a batch, see
//!   that it reached the store, and assert that nobody received it.
//! - **Failure injection** ([`MemoryStore::fail_next_appends`]): the next `n` appends to
//!   commit (after the gate) fail with [`StoreError::Unavailable`] and store nothing.
//! - **Log** ([`MemoryStore::committed_appends`]): every committed append (one transaction)
//!   with its batches, in commit order, to check group commit and ordering across documents.
//! - **Reads** ([`MemoryStore::full_reads`]): how many times every meeting was read, to check
//!   that a node skips its periodic read when the directory's epoch has not moved.
//!
//! Appends always commit in call order (a FIFO lock), held or not. Every other method commits
//! at once.

use super::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

/// See the module docs.
pub struct MemoryStore {
    state: Mutex<State>,
    /// `true` while appends are held.
    holding: watch::Sender<bool>,
    /// Appends called and not yet resolved.
    pending: watch::Sender<usize>,
    /// Makes appends commit in call order (tokio's mutex queues waiters first come, first served).
    order: tokio::sync::Mutex<()>,
    fail_appends: AtomicUsize,
    /// Appends that still commit before the injected failures start.
    fail_after: AtomicUsize,
    /// Calls of [`Store::meetings`] (every meeting read whole).
    full_reads: AtomicUsize,
}

#[derive(Default)]
struct State {
    admin: Option<TokenHash>,
    meetings: HashMap<MeetingId, MeetingRecord>,
    tokens: Vec<TokenRecord>,
    docs: HashMap<String, Doc>,
    versions: HashMap<MeetingId, Vec<VersionRecord>>,
    revisions: HashMap<String, Vec<(RevisionRecord, Vec<u8>)>>,
    committed: Vec<Vec<DocAppend>>,
    /// [`Store::directory_epoch`]: one more at each committed change of the directory.
    directory_epoch: i64,
}

#[derive(Default)]
struct Doc {
    snapshot: Option<Vec<u8>>,
    /// The sequence number the snapshot covers up to.
    snapshot_seq: i64,
    /// `(seq, update)` after the snapshot, in order.
    updates: Vec<(i64, Vec<u8>)>,
    /// The last sequence number given to an update of this document.
    head: i64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            state: Mutex::new(State::default()),
            holding: watch::Sender::new(false),
            pending: watch::Sender::new(0),
            order: tokio::sync::Mutex::new(()),
            fail_appends: AtomicUsize::new(0),
            fail_after: AtomicUsize::new(0),
            full_reads: AtomicUsize::new(0),
        }
    }
}

/// A future that resolves at once.
fn ready<T: Send + 'static>(r: Result<T, StoreError>) -> StoreFuture<'static, T> {
    Box::pin(std::future::ready(r))
}

fn doc_of_meeting(doc: &str, meeting: &MeetingId) -> bool {
    // ids hold only `[a-z0-9-]`: the `/` makes the prefix exact
    doc.strip_prefix(meeting.as_str())
        .is_some_and(|rest| rest.starts_with('/'))
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, appends wait at the gate: their futures do not resolve and nothing of them
    /// is stored until [`release_appends`](Self::release_appends).
    pub fn hold_appends(&self) {
        self.holding.send_replace(true);
    }

    /// Opens the gate: held appends commit, in the order they were called.
    pub fn release_appends(&self) {
        self.holding.send_replace(false);
    }

    /// Appends called and not yet resolved (held at the gate, or queued behind one that is).
    pub fn pending_appends(&self) -> usize {
        *self.pending.borrow()
    }

    /// Waits until at least `n` appends are pending.
    pub async fn wait_pending_appends(&self, n: usize) {
        let mut rx = self.pending.subscribe();
        let _ = rx.wait_for(|p| *p >= n).await;
    }

    /// The next `n` appends to commit fail with [`StoreError::Unavailable`], storing nothing.
    pub fn fail_next_appends(&self, n: usize) {
        self.fail_appends_after(0, n);
    }

    /// How many times every meeting was read ([`Store::meetings`]).
    pub fn full_reads(&self) -> usize {
        self.full_reads.load(Ordering::SeqCst)
    }

    /// The next `ok` appends to commit succeed, then `n` fail (as [`Self::fail_next_appends`]).
    pub fn fail_appends_after(&self, ok: usize, n: usize) {
        self.fail_after.store(ok, Ordering::SeqCst);
        self.fail_appends.store(n, Ordering::SeqCst);
    }

    /// Every committed append (one transaction each) with its batches, in commit order.
    pub fn committed_appends(&self) -> Vec<Vec<DocAppend>> {
        self.state().committed.clone()
    }

    async fn append_gated(&self, batches: Vec<DocAppend>) -> Result<Appended, StoreError> {
        self.pending.send_modify(|p| *p += 1);
        // Resolves the pending count however this future ends (dropped while held, too).
        struct Pending<'a>(&'a watch::Sender<usize>);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.send_modify(|p| *p -= 1);
            }
        }
        let _pending = Pending(&self.pending);
        let _in_order = self.order.lock().await;
        let mut open = self.holding.subscribe();
        let _ = open.wait_for(|holding| !*holding).await;
        let armed = self.fail_appends.load(Ordering::SeqCst) > 0;
        let spared = armed
            && self
                .fail_after
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let fail = !spared
            && self
                .fail_appends
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fail {
            return Err(StoreError::Unavailable("injected append failure".into()));
        }
        let mut st = self.state();
        let mut heads = Vec::with_capacity(batches.len());
        for b in &batches {
            let mut head = None;
            if b.updates.is_empty() {
                heads.push(None);
                continue;
            }
            let d = st.docs.entry(b.doc.clone()).or_default();
            for u in &b.updates {
                d.head += 1;
                head = Some(d.head);
                d.updates.push((d.head, u.clone()));
            }
            heads.push(head);
        }
        st.committed.push(batches);
        Ok(Appended { heads })
    }

    fn with_meeting<T>(
        &self,
        meeting: &MeetingId,
        f: impl FnOnce(&mut MeetingRecord) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut st = self.state();
        let r = match st.meetings.get_mut(meeting) {
            Some(m) => f(m),
            None => Err(StoreError::NotFound),
        };
        if r.is_ok() {
            st.directory_epoch += 1;
        }
        r
    }

    fn with_group(
        &self,
        meeting: &MeetingId,
        group: &GroupId,
        f: impl FnOnce(&mut GroupRecord),
    ) -> Result<(), StoreError> {
        self.with_meeting(meeting, |m| {
            let g = m
                .groups
                .iter_mut()
                .find(|g| &g.id == group)
                .ok_or(StoreError::NotFound)?;
            f(g);
            Ok(())
        })
    }
}

impl Store for MemoryStore {
    fn admin_token_hash(&self) -> StoreFuture<'_, Option<TokenHash>> {
        ready(Ok(self.state().admin))
    }

    fn set_admin_token_hash<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, ()> {
        self.state().admin = Some(*hash);
        ready(Ok(()))
    }

    fn meetings(&self) -> StoreFuture<'_, Vec<(MeetingRecord, Vec<TokenRecord>)>> {
        self.full_reads.fetch_add(1, Ordering::SeqCst);
        let st = self.state();
        let mut all: Vec<_> = st
            .meetings
            .values()
            .map(|m| {
                let tokens = st.tokens.iter().filter(|t| t.meeting == m.id).cloned().collect();
                (m.clone(), tokens)
            })
            .collect();
        all.sort_by(|(a, _), (b, _)| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        ready(Ok(all))
    }

    fn insert_meeting<'a>(
        &'a self,
        meeting: &'a MeetingRecord,
        tokens: &'a [TokenRecord],
    ) -> StoreFuture<'a, ()> {
        let mut st = self.state();
        if st.meetings.contains_key(&meeting.id) {
            return ready(Err(StoreError::Conflict));
        }
        st.meetings.insert(meeting.id.clone(), meeting.clone());
        st.tokens.extend(tokens.iter().cloned());
        st.directory_epoch += 1;
        ready(Ok(()))
    }

    fn set_group_closed<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        closed: bool,
    ) -> StoreFuture<'a, ()> {
        ready(self.with_group(meeting, group, |g| g.closed = closed))
    }

    fn replace_token<'a>(&'a self, token: &'a TokenRecord) -> StoreFuture<'a, Vec<TokenHash>> {
        let mut st = self.state();
        if !st.meetings.contains_key(&token.meeting) {
            return ready(Err(StoreError::NotFound));
        }
        let mut old = Vec::new();
        st.tokens.retain(|t| {
            let same = t.meeting == token.meeting && t.role == token.role;
            if same {
                old.push(t.hash);
            }
            !same
        });
        st.tokens.push(token.clone());
        st.directory_epoch += 1;
        ready(Ok(old))
    }

    fn load_doc<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, StoredDoc> {
        let st = self.state();
        let stored = match st.docs.get(doc) {
            Some(d) => StoredDoc {
                snapshot: d.snapshot.clone(),
                updates: d.updates.iter().map(|(_, u)| u.clone()).collect(),
                head: d.head,
            },
            None => StoredDoc::default(),
        };
        ready(Ok(stored))
    }

    fn updates_after<'a>(&'a self, doc: &'a str, after: i64) -> StoreFuture<'a, DocTail> {
        let st = self.state();
        let tail = match st.docs.get(doc) {
            Some(d) => {
                let snapshot = d.snapshot.clone().filter(|_| after < d.snapshot_seq);
                let from = if snapshot.is_some() { d.snapshot_seq } else { after };
                DocTail {
                    snapshot,
                    updates: d.updates.iter().filter(|(s, _)| *s > from).cloned().collect(),
                    head: d.head,
                }
            }
            None => DocTail::default(),
        };
        ready(Ok(tail))
    }

    fn heads<'a>(&'a self, docs: &'a [String]) -> StoreFuture<'a, Vec<i64>> {
        let st = self.state();
        ready(Ok(docs
            .iter()
            .map(|d| st.docs.get(d).map_or(0, |d| d.head))
            .collect()))
    }

    fn doc_keys(&self) -> StoreFuture<'_, Vec<String>> {
        let st = self.state();
        let mut keys: Vec<String> = st
            .docs
            .iter()
            .filter(|(_, d)| d.snapshot.is_some() || !d.updates.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        ready(Ok(keys))
    }

    fn append(&self, batches: Vec<DocAppend>) -> StoreFuture<'_, Appended> {
        Box::pin(self.append_gated(batches))
    }

    fn compact<'a>(&'a self, doc: &'a str, snapshot: Vec<u8>, covers: i64) -> StoreFuture<'a, ()> {
        let mut st = self.state();
        let d = st.docs.entry(doc.to_owned()).or_default();
        let covers = covers.min(d.head);
        if d.snapshot.is_some() && covers < d.snapshot_seq {
            return ready(Ok(()));
        }
        d.snapshot = Some(snapshot);
        d.snapshot_seq = covers;
        d.updates.retain(|(s, _)| *s > covers);
        ready(Ok(()))
    }

    fn set_meeting_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        ready(self.with_meeting(meeting, |m| {
            m.title = title.to_owned();
            m.short_title = short_title.map(str::to_owned);
            Ok(())
        }))
    }

    fn set_notes_private<'a>(&'a self, meeting: &'a MeetingId, private: bool) -> StoreFuture<'a, ()> {
        ready(self.with_meeting(meeting, |m| {
            m.notes_private = private;
            Ok(())
        }))
    }

    fn set_group_titles<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupId,
        title: &'a str,
        short_title: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        ready(self.with_group(meeting, group, |g| {
            g.title = title.to_owned();
            g.short_title = short_title.map(str::to_owned);
        }))
    }

    fn add_group<'a>(
        &'a self,
        meeting: &'a MeetingId,
        group: &'a GroupRecord,
        token: &'a TokenRecord,
    ) -> StoreFuture<'a, ()> {
        let mut st = self.state();
        let Some(m) = st.meetings.get_mut(meeting) else {
            return ready(Err(StoreError::NotFound));
        };
        if m.groups.iter().any(|g| g.id == group.id) {
            return ready(Err(StoreError::Conflict));
        }
        m.groups.push(group.clone());
        st.tokens.push(TokenRecord {
            meeting: meeting.clone(),
            ..token.clone()
        });
        st.directory_epoch += 1;
        ready(Ok(()))
    }

    fn delete_meeting<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, ()> {
        let mut st = self.state();
        if st.meetings.remove(meeting).is_none() {
            return ready(Err(StoreError::NotFound));
        }
        st.tokens.retain(|t| &t.meeting != meeting);
        st.versions.remove(meeting);
        st.docs.retain(|k, _| !doc_of_meeting(k, meeting));
        st.revisions.retain(|k, _| !doc_of_meeting(k, meeting));
        st.directory_epoch += 1;
        ready(Ok(()))
    }

    fn directory_epoch(&self) -> StoreFuture<'_, Option<i64>> {
        ready(Ok(Some(self.state().directory_epoch)))
    }

    fn insert_version<'a>(
        &'a self,
        meeting: &'a MeetingId,
        version: &'a VersionRecord,
    ) -> StoreFuture<'a, ()> {
        let mut st = self.state();
        let list = st.versions.entry(meeting.clone()).or_default();
        if list.iter().any(|v| v.id == version.id) {
            return ready(Err(StoreError::Conflict));
        }
        list.push(version.clone());
        ready(Ok(()))
    }

    fn versions<'a>(&'a self, meeting: &'a MeetingId) -> StoreFuture<'a, Vec<VersionRecord>> {
        let mut list = self.state().versions.get(meeting).cloned().unwrap_or_default();
        list.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        ready(Ok(list))
    }

    fn insert_revision<'a>(
        &'a self,
        doc: &'a str,
        created_at: &'a str,
        reason: &'a str,
        data: Vec<u8>,
    ) -> StoreFuture<'a, i64> {
        let mut st = self.state();
        let list = st.revisions.entry(doc.to_owned()).or_default();
        let id = list.last().map_or(0, |(r, _)| r.id) + 1;
        let rec = RevisionRecord {
            id,
            created_at: created_at.to_owned(),
            reason: reason.to_owned(),
        };
        list.push((rec, data));
        ready(Ok(id))
    }

    fn revisions<'a>(&'a self, doc: &'a str) -> StoreFuture<'a, Vec<RevisionRecord>> {
        let st = self.state();
        let list = st
            .revisions
            .get(doc)
            .map(|l| l.iter().map(|(r, _)| r.clone()).collect())
            .unwrap_or_default();
        ready(Ok(list))
    }

    fn revision<'a>(&'a self, doc: &'a str, id: i64) -> StoreFuture<'a, Option<(RevisionRecord, Vec<u8>)>> {
        let st = self.state();
        let found = st
            .revisions
            .get(doc)
            .and_then(|l| l.iter().find(|(r, _)| r.id == id).cloned());
        ready(Ok(found))
    }
}
