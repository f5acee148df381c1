//! How a room uses the apply sandbox (`crate::sandbox`): updates are vetted in a child process
//! on a replica at the room's generation before the room applies them; what the room reads
//! from its own document runs under `catch_unwind`, and a panic poisons only that room (its
//! members are closed with 1012 and it unloads; the next connection reloads from the store).
//! Loading and compaction go through the child too, so that only what loads is ever stored,
//! and a stored document that does not load is quarantined instead of failing its plenary.

use super::delivery::Batch;
use super::outbox::close_code;
use super::room::Room;
use super::ConnId;
use crate::sandbox::{Request, Response, SandboxError, Verdict};
use crate::services::Services;
use crate::store::StoredDoc;
use bytes::Bytes;
use plenary_protocol::message::encode_auth;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// An update waiting for the sandbox's verdict.
pub(super) struct Pending {
    pub(super) conn: ConnId,
    pub(super) update: Update,
    pub(super) raw: Vec<u8>,
    pub(super) wants_ack: bool,
}

/// Runs `f` (a read or write of the room's own document) under `catch_unwind`.
pub(super) fn contained<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Why a stored document cannot become a room.
#[derive(Debug)]
pub enum LoadError {
    /// The stored document does not load (or kills the sandbox child): it needs `plenary doctor`.
    Quarantined(String),
    /// Anything else (the store failed, no sandbox child could start): retried on next use.
    Failed(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Quarantined(why) => write!(f, "quarantined: {why}"),
            LoadError::Failed(why) => f.write_str(why),
        }
    }
}

/// Reads a stored document and has a child replay it (with every read the server does) before
/// anything here touches it.
pub async fn vetted_stored(svc: &Services, key: &str) -> Result<StoredDoc, LoadError> {
    let stored = svc
        .store
        .load_doc(key)
        .await
        .map_err(|e| LoadError::Failed(e.to_string()))?;
    let req = Request::LoadStored {
        doc: key.to_owned(),
        snapshot: stored.snapshot.clone(),
        updates: stored.updates.clone(),
    };
    match svc.sandbox.call(key, req).await {
        Ok(Response::Ok) => Ok(stored),
        Ok(Response::Refused(why)) => Err(LoadError::Quarantined(why)),
        Ok(other) => Err(LoadError::Failed(format!("unexpected sandbox answer {other:?}"))),
        Err(e) if e.is_the_requests_fault() => Err(LoadError::Quarantined(e.to_string())),
        Err(e) => Err(LoadError::Failed(e.to_string())),
    }
}

/// Loads a document for a room: vetted in a child, then replayed here.
pub async fn load_doc(svc: &Services, key: &str) -> Result<(Doc, u64), LoadError> {
    let stored = vetted_stored(svc, key).await?;
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let n = stored.updates.len() as u64;
        match contained(|| stored.to_doc()) {
            Some(Ok(doc)) => Ok((doc, n)),
            Some(Err(e)) => Err(LoadError::Quarantined(format!("{key}: {e}"))),
            None => Err(LoadError::Quarantined(format!(
                "{key}: yrs panicked replaying it"
            ))),
        }
    })
    .await
    .map_err(|e| LoadError::Failed(e.to_string()))?
}

impl Room {
    /// yrs panicked on this room's document: it is not trusted any more. Members reconnect
    /// (1012) to a fresh load from the store; the room unloads after this batch.
    pub(super) fn poison(&mut self, what: &str) {
        if self.poisoned {
            return;
        }
        tracing::error!(what, "yrs panicked on the room's document; reloading the room");
        self.close_all(close_code::SERVICE_RESTART);
        self.poisoned = true;
    }

    /// The room's document changed outside the sandbox (a plenary merge, a load): the child's
    /// replica must be re-seeded before the next write.
    pub(super) fn bump_generation(&mut self) {
        self.generation = self.svc.sandbox.next_gen();
    }

    /// The room unloads: its replica in the child is no longer needed.
    pub(super) fn forget_replica(&self) {
        let sandbox = self.svc.sandbox.clone();
        let doc = self.doc_key.clone();
        tokio::spawn(async move {
            let _ = sandbox.call(&doc.clone(), Request::Forget { doc }).await;
        });
    }

    /// Vets the batch's updates in the sandbox, in order, and applies the accepted ones.
    pub(super) async fn vet_pending(&mut self, batch: &mut Batch) {
        let mut queue: VecDeque<Pending> = std::mem::take(&mut batch.pending).into();
        let guard = self.plenary.is_some();
        // After a failure we cannot pin on one update, send them one at a time.
        let mut one_by_one = false;
        let mut just_loaded = false;
        // Updates of a connection that has left since are still applied: they arrived while it
        // was a member (a client may send its last edit and close). Those of a connection
        // refused earlier in this batch are dropped: they may depend on the refused one.
        let mut refused: Vec<ConnId> = Vec::new();
        while !queue.is_empty() && !self.poisoned {
            queue.retain(|p| !refused.contains(&p.conn));
            if queue.is_empty() {
                break;
            }
            let n = if one_by_one { 1 } else { queue.len() };
            let req = Request::Apply {
                doc: self.doc_key.clone(),
                gen: self.generation,
                guard,
                updates: queue.iter().take(n).map(|p| p.raw.clone()).collect(),
            };
            match self.svc.sandbox.call(&self.doc_key, req).await {
                Ok(Response::NeedState) if !just_loaded => {
                    just_loaded = true;
                    if let Err(e) = self.seed_sandbox().await {
                        tracing::error!(error = %e, "cannot seed the sandbox; closing the writers to retry");
                        for p in queue.drain(..) {
                            self.kick(p.conn, close_code::SERVICE_RESTART);
                        }
                    }
                }
                Ok(Response::Verdicts(vs)) if !vs.is_empty() && vs.len() <= n => {
                    just_loaded = false;
                    for v in vs {
                        let Some(p) = queue.pop_front() else { break };
                        match v {
                            Verdict::Accepted => self.apply_vetted(p, batch),
                            Verdict::Invalid(why) => {
                                refused.push(p.conn);
                                self.refuse(p.conn, &why);
                            }
                            Verdict::Denied => self.deny(p.conn),
                        }
                    }
                }
                Ok(other) => {
                    tracing::error!(answer = ?other, "unexpected sandbox answer; closing the writers to retry");
                    for p in queue.drain(..) {
                        self.kick(p.conn, close_code::SERVICE_RESTART);
                    }
                }
                Err(e) => {
                    just_loaded = false;
                    if e.is_the_requests_fault() && n == 1 {
                        if let Some(p) = queue.pop_front() {
                            refused.push(p.conn);
                            self.refuse(p.conn, &e.to_string());
                        }
                    } else if e.is_the_requests_fault() {
                        one_by_one = true;
                    } else {
                        tracing::error!(error = %e, "sandbox unavailable; closing the writers to retry");
                        for p in queue.drain(..) {
                            self.kick(p.conn, close_code::SERVICE_RESTART);
                        }
                    }
                }
            }
        }
    }

    /// Gives the child this room's document at the current generation.
    pub(super) async fn seed_sandbox(&mut self) -> Result<(), String> {
        let doc = &self.doc;
        let Some(state) = contained(|| doc.transact().encode_state_as_update_v1(&StateVector::default()))
        else {
            self.poison("encoding the state for the sandbox");
            return Err("yrs panicked".into());
        };
        let req = Request::Load {
            doc: self.doc_key.clone(),
            gen: self.generation,
            state,
        };
        match self.svc.sandbox.call(&self.doc_key, req).await {
            Ok(Response::Ok) => Ok(()),
            Ok(Response::Refused(why)) => {
                // What the room holds does not load: it cannot be trusted; reload from the store.
                self.poison("the room's document does not load in the sandbox");
                Err(why)
            }
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Applies an update the sandbox accepted on an identical state.
    fn apply_vetted(&mut self, p: Pending, batch: &mut Batch) {
        let doc = &self.doc;
        let update = p.update;
        let applied = contained(|| {
            let mut txn = doc.transact_mut();
            let result = txn.apply_update(update);
            let changed = !txn.insert_set().is_empty() || !txn.delete_set().is_empty();
            (result, changed.then(|| txn.encode_update_v1()))
        });
        match applied {
            Some((Ok(()), diff)) => {
                if let Some(diff) = diff {
                    self.doc_changed();
                    batch.diffs.push((Some(p.conn), diff));
                }
                if p.wants_ack {
                    batch.acks.push(p.conn);
                }
            }
            // The child accepted it on the same state: the room's document diverged from what
            // the store holds. Nothing of it is stored; reload.
            Some((Err(_), _)) | None => {
                self.svc.metrics.rejected_messages.inc();
                self.kick(p.conn, close_code::PROTOCOL_ERROR);
                self.poison("applying an update the sandbox accepted");
            }
        }
    }

    /// A malformed update (or one that broke a read, or killed the child): close its sender.
    fn refuse(&mut self, conn: ConnId, why: &str) {
        self.svc.metrics.rejected_messages.inc();
        tracing::warn!(conn = %conn, reason = why, "update refused by the sandbox; closing 1002");
        self.kick(conn, close_code::PROTOCOL_ERROR);
    }

    /// A moderator's update outside `curation`: answered, not applied; the sender stays.
    fn deny(&mut self, conn: ConnId) {
        self.svc.metrics.rejected_messages.inc();
        tracing::info!(conn = %conn, "plenary write outside curation refused");
        self.send_to(
            conn,
            Bytes::from(encode_auth(Some(super::room::PERMISSION_DENIED))),
        );
    }

    /// The compaction snapshot, checked in the child (decodes, replays to the same state
    /// vector and the same reads) before the log may be dropped. `None`: skip compaction.
    pub(super) async fn vetted_snapshot(&mut self) -> Option<Vec<u8>> {
        let doc = &self.doc;
        let plenary = self.plenary.is_some();
        let Some((mut snapshot, sv, fingerprint)) = contained(|| {
            let txn = doc.transact();
            (
                txn.encode_state_as_update_v1(&StateVector::default()),
                txn.state_vector().encode_v1(),
                crate::sandbox::vet::fingerprint(&txn, plenary),
            )
        }) else {
            self.poison("encoding a compaction snapshot");
            return None;
        };
        if self.svc.test_corrupt_snapshots {
            snapshot.truncate(snapshot.len() / 2);
        }
        let req = Request::CheckSnapshot {
            doc: self.doc_key.clone(),
            snapshot: snapshot.clone(),
            sv,
            fingerprint,
        };
        match self.svc.sandbox.call(&self.doc_key, req).await {
            Ok(Response::Ok) => Some(snapshot),
            Ok(Response::Refused(why)) => {
                tracing::error!(doc = %self.doc_key, reason = why, "compaction skipped: the snapshot does not round-trip; the log is kept");
                None
            }
            Ok(other) => {
                tracing::error!(doc = %self.doc_key, answer = ?other, "compaction skipped");
                None
            }
            Err(e @ SandboxError::Unavailable(_))
            | Err(e @ SandboxError::Crashed(_))
            | Err(e @ SandboxError::Timeout) => {
                tracing::error!(doc = %self.doc_key, error = %e, "compaction skipped: the snapshot could not be checked; the log is kept");
                None
            }
        }
    }
}
