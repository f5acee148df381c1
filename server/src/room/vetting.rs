//! How a room uses the apply sandbox (`crate::sandbox`): updates are vetted in a child process
//! on a replica at the room's generation before the room applies them; what the room reads
//! from its own document runs under `catch_unwind`, and a panic poisons only that room (its
//! members are closed with 1012 and it unloads; the next connection reloads from the store).
//! Loading and compaction go through the child too, so that only what loads is ever stored,
//! and a stored document that does not load is quarantined instead of failing its plenary.
//!
//! [`Document`] is the room's document with what guards it (the replica's generation, the
//! poisoned flag). Its vetting returns what became of each update ([`Outcome`]); the room acts
//! on it (relays, acks, closes), so this module never reaches the room's members.

use super::command::ConnId;
use super::context::RoomContext;
use crate::sandbox::{Request, Response, SandboxError, Verdict};
use crate::store::StoredDoc;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// An update waiting for the sandbox's verdict.
pub struct Pending {
    pub conn: ConnId,
    pub update: Update,
    pub raw: Vec<u8>,
    pub wants_ack: bool,
}

/// Runs `f` (a read or write of the room's own document) under `catch_unwind`.
pub fn contained<R>(f: impl FnOnce() -> R) -> Option<R> {
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
pub async fn vetted_stored(svc: &RoomContext, key: &str) -> Result<StoredDoc, LoadError> {
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

/// Loads a document for a room: vetted in a child, then replayed here. Returns it with the
/// length of its stored log and the head it reaches.
pub async fn load_doc(svc: &RoomContext, key: &str) -> Result<(Doc, u64, i64), LoadError> {
    let stored = vetted_stored(svc, key).await?;
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let n = stored.updates.len() as u64;
        let head = stored.head;
        match contained(|| stored.to_doc()) {
            Some(Ok(doc)) => Ok((doc, n, head)),
            Some(Err(e)) => Err(LoadError::Quarantined(format!("{key}: {e}"))),
            None => Err(LoadError::Quarantined(format!(
                "{key}: yrs panicked replaying it"
            ))),
        }
    })
    .await
    .map_err(|e| LoadError::Failed(e.to_string()))?
}

/// What became of an update sent for vetting.
pub enum Outcome {
    /// Applied to the document; `diff` is what changed (none for a no-op).
    Applied {
        conn: ConnId,
        diff: Option<Vec<u8>>,
        wants_ack: bool,
    },
    /// Malformed, broke a read, or killed the child: its sender is closed with 1002.
    Refused { conn: ConnId, why: String },
    /// A moderator's plenary write outside `curation`: answered, not applied; the sender stays.
    Denied { conn: ConnId },
    /// The sandbox could not vet it: its sender is closed with 1012 to retry.
    Retry { conn: ConnId },
    /// The child accepted it but the room's document did not take it: the document diverged
    /// from what the store holds and is poisoned; its sender is closed with 1002.
    Diverged { conn: ConnId },
}

/// The room's document, the generation of its replica in the sandbox, and whether it is
/// still trusted.
pub struct Document {
    pub doc: Doc,
    pub key: String,
    generation: u64,
    poisoned: bool,
    /// Poisoned since the room last asked ([`Document::take_poisoned`]).
    fresh_poison: bool,
}

impl Document {
    pub fn new(ctx: &RoomContext, key: String, doc: Doc) -> Document {
        let mut d = Document {
            doc,
            key,
            generation: 0,
            poisoned: false,
            fresh_poison: false,
        };
        d.bump_generation(ctx);
        d
    }

    pub fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// yrs panicked on this document (or it diverged): it is not trusted any more. The room
    /// closes its members with 1012 (they reconnect to a fresh load) and unloads.
    pub fn poison(&mut self, what: &str) {
        if self.poisoned {
            return;
        }
        tracing::error!(what, "yrs panicked on the room's document; reloading the room");
        self.poisoned = true;
        self.fresh_poison = true;
    }

    /// True once after the document was poisoned.
    pub fn take_poisoned(&mut self) -> bool {
        std::mem::take(&mut self.fresh_poison)
    }

    /// Runs a read or write of the document under `catch_unwind`; a panic poisons it.
    pub fn read<R>(&mut self, what: &str, f: impl FnOnce(&Doc) -> R) -> Option<R> {
        let doc = &self.doc;
        let r = contained(|| f(doc));
        if r.is_none() {
            self.poison(what);
        }
        r
    }

    /// The document changed outside the sandbox (a plenary merge, a load): the child's
    /// replica must be re-seeded before the next write.
    pub fn bump_generation(&mut self, ctx: &RoomContext) {
        self.generation = ctx.sandbox.next_gen();
    }

    /// The room unloads: its replica in the child is no longer needed.
    pub fn forget_replica(&self, ctx: &RoomContext) {
        let sandbox = ctx.sandbox.clone();
        let doc = self.key.clone();
        tokio::spawn(async move {
            let _ = sandbox.call(&doc.clone(), Request::Forget { doc }).await;
        });
    }

    /// Vets updates in the sandbox, in order, and applies the accepted ones. `guard`: the
    /// document is a plenary, whose moderators may write only `curation`.
    pub async fn vet(&mut self, ctx: &RoomContext, pending: Vec<Pending>, guard: bool) -> Vec<Outcome> {
        let mut out = Vec::new();
        let mut queue: VecDeque<Pending> = pending.into();
        // After a failure we cannot pin on one update, send them one at a time.
        let mut one_by_one = false;
        let mut just_loaded = false;
        // Updates of a connection that has left since are still applied: they arrived while it
        // was a member (a client may send its last edit and close). Those of a connection
        // refused earlier in this batch are dropped: they may depend on the refused one.
        let mut refused: Vec<ConnId> = Vec::new();
        let retry_all = |queue: &mut VecDeque<Pending>, out: &mut Vec<Outcome>| {
            out.extend(queue.drain(..).map(|p| Outcome::Retry { conn: p.conn }));
        };
        while !queue.is_empty() && !self.poisoned {
            queue.retain(|p| !refused.contains(&p.conn));
            if queue.is_empty() {
                break;
            }
            let n = if one_by_one { 1 } else { queue.len() };
            let req = Request::Apply {
                doc: self.key.clone(),
                gen: self.generation,
                guard,
                updates: queue.iter().take(n).map(|p| p.raw.clone()).collect(),
            };
            match ctx.sandbox.call(&self.key, req).await {
                Ok(Response::NeedState) if !just_loaded => {
                    just_loaded = true;
                    if let Err(e) = self.seed(ctx).await {
                        tracing::error!(error = %e, "cannot seed the sandbox; closing the writers to retry");
                        retry_all(&mut queue, &mut out);
                    }
                }
                Ok(Response::Verdicts(vs)) if !vs.is_empty() && vs.len() <= n => {
                    just_loaded = false;
                    for v in vs {
                        let Some(p) = queue.pop_front() else { break };
                        match v {
                            Verdict::Accepted => out.push(self.apply_vetted(p)),
                            Verdict::Invalid(why) => {
                                refused.push(p.conn);
                                out.push(Outcome::Refused { conn: p.conn, why });
                            }
                            Verdict::Denied => out.push(Outcome::Denied { conn: p.conn }),
                        }
                    }
                }
                Ok(other) => {
                    tracing::error!(answer = ?other, "unexpected sandbox answer; closing the writers to retry");
                    retry_all(&mut queue, &mut out);
                }
                Err(e) => {
                    just_loaded = false;
                    if e.is_the_requests_fault() && n == 1 {
                        if let Some(p) = queue.pop_front() {
                            refused.push(p.conn);
                            out.push(Outcome::Refused {
                                conn: p.conn,
                                why: e.to_string(),
                            });
                        }
                    } else if e.is_the_requests_fault() {
                        one_by_one = true;
                    } else {
                        tracing::error!(error = %e, "sandbox unavailable; closing the writers to retry");
                        retry_all(&mut queue, &mut out);
                    }
                }
            }
        }
        out
    }

    /// Gives the child this document at the current generation.
    pub async fn seed(&mut self, ctx: &RoomContext) -> Result<(), String> {
        let Some(state) = self.read("encoding the state for the sandbox", |doc| {
            doc.transact().encode_state_as_update_v1(&StateVector::default())
        }) else {
            return Err("yrs panicked".into());
        };
        let req = Request::Load {
            doc: self.key.clone(),
            gen: self.generation,
            state,
        };
        match ctx.sandbox.call(&self.key, req).await {
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
    fn apply_vetted(&mut self, p: Pending) -> Outcome {
        let update = p.update;
        let applied = self.read("applying an update the sandbox accepted", |doc| {
            let mut txn = doc.transact_mut();
            let result = txn.apply_update(update);
            let changed = !txn.insert_set().is_empty() || !txn.delete_set().is_empty();
            (result, changed.then(|| txn.encode_update_v1()))
        });
        match applied {
            Some((Ok(()), diff)) => Outcome::Applied {
                conn: p.conn,
                diff,
                wants_ack: p.wants_ack,
            },
            // The child accepted it on the same state: the room's document diverged from what
            // the store holds. Nothing of it is stored; reload.
            Some((Err(_), _)) | None => {
                self.poison("applying an update the sandbox accepted");
                Outcome::Diverged { conn: p.conn }
            }
        }
    }

    /// The compaction snapshot, checked in the child (decodes, replays to the same state
    /// vector and the same reads) before the log may be dropped. `None`: skip compaction.
    pub async fn vetted_snapshot(&mut self, ctx: &RoomContext, plenary: bool) -> Option<Vec<u8>> {
        let (mut snapshot, sv, fingerprint) = self.read("encoding a compaction snapshot", |doc| {
            let txn = doc.transact();
            (
                txn.encode_state_as_update_v1(&StateVector::default()),
                txn.state_vector().encode_v1(),
                crate::sandbox::vet::fingerprint(&txn, plenary),
            )
        })?;
        if ctx.settings.test_corrupt_snapshots {
            snapshot.truncate(snapshot.len() / 2);
        }
        let req = Request::CheckSnapshot {
            doc: self.key.clone(),
            snapshot: snapshot.clone(),
            sv,
            fingerprint,
        };
        match ctx.sandbox.call(&self.key, req).await {
            Ok(Response::Ok) => Some(snapshot),
            Ok(Response::Refused(why)) => {
                tracing::error!(doc = %self.key, reason = why, "compaction skipped: the snapshot does not round-trip; the log is kept");
                None
            }
            Ok(other) => {
                tracing::error!(doc = %self.key, answer = ?other, "compaction skipped");
                None
            }
            Err(e @ SandboxError::Unavailable(_))
            | Err(e @ SandboxError::Crashed(_))
            | Err(e @ SandboxError::Timeout) => {
                tracing::error!(doc = %self.key, error = %e, "compaction skipped: the snapshot could not be checked; the log is kept");
                None
            }
        }
    }
}
