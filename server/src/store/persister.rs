//! Group commit: one task per process makes every room's updates durable, batching every append
//! that arrived while the previous transaction ran into one [`Store::append`] (one transaction).
//!
//! Jobs run one at a time in the order they were sent (FIFO), so a room that sends `append` and
//! then `compact` gets a snapshot that includes everything it appended before, and a group's
//! append sent before the plenary's append derived from it is durable first (it is in the same
//! transaction or an earlier one). Rooms await the reply before they relay, which is the
//! contract's durable-before-relay promise.
//!
//! A plenary merge's batch may carry a fence (`DocAppend::fence`): when the store refuses it
//! (the lease was lost), only the fenced batches of the lost leases fail; the transaction is
//! run again without them, so that the other rooms' batches are not failed with them.

use super::{DocAppend, Fence, Store, StoreError};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 512;

enum Job {
    Append {
        doc: String,
        updates: Vec<Vec<u8>>,
        fence: Option<Fence>,
        done: oneshot::Sender<Result<(), Arc<StoreError>>>,
    },
    Compact {
        doc: String,
        snapshot: Vec<u8>,
        done: oneshot::Sender<Result<(), Arc<StoreError>>>,
    },
}

/// Async handle to the group-commit task. Cheap to clone.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::Sender<Job>,
}

pub type PersistResult = Result<(), Arc<StoreError>>;

impl Persister {
    /// Starts the group-commit task (on the current runtime); it stops when every handle is
    /// dropped, after finishing its queue.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> (Persister, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let handle = tokio::spawn(writer_loop(store, metrics, rx));
        (Persister { tx }, handle)
    }

    /// Appends updates of one document; resolves once they are durable.
    pub async fn append(&self, doc: String, updates: Vec<Vec<u8>>) -> oneshot::Receiver<PersistResult> {
        self.append_fenced(doc, updates, None).await
    }

    /// [`Persister::append`], stored only while `fence`'s lease is held (`StoreError::Fenced`
    /// otherwise, for this batch alone).
    pub async fn append_fenced(
        &self,
        doc: String,
        updates: Vec<Vec<u8>>,
        fence: Option<Fence>,
    ) -> oneshot::Receiver<PersistResult> {
        self.submit(|done| Job::Append {
            doc,
            updates,
            fence,
            done,
        })
        .await
    }

    /// Replaces the document's log by `snapshot`, after every append sent before this call.
    pub async fn compact(&self, doc: String, snapshot: Vec<u8>) -> oneshot::Receiver<PersistResult> {
        self.submit(|done| Job::Compact { doc, snapshot, done }).await
    }

    async fn submit(
        &self,
        job: impl FnOnce(oneshot::Sender<PersistResult>) -> Job,
    ) -> oneshot::Receiver<PersistResult> {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Job::Append { done, .. } | Job::Compact { done, .. })) =
            self.tx.send(job(done)).await
        {
            let _ = done.send(Err(Arc::new(StoreError::Closed)));
        }
        rx
    }
}

async fn writer_loop(store: Arc<dyn Store>, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut pending = std::mem::take(&mut jobs).into_iter().peekable();
        while let Some(job) = pending.next() {
            match job {
                Job::Compact { doc, snapshot, done } => {
                    let r = store.compact(&doc, snapshot).await.map_err(Arc::new);
                    if let Err(e) = &r {
                        tracing::error!(doc = %doc, error = %e, "compaction failed");
                    } else {
                        metrics.compactions.inc();
                    }
                    let _ = done.send(r);
                }
                Job::Append {
                    doc,
                    updates,
                    fence,
                    done,
                } => {
                    // Fold this and every following append into one transaction.
                    let mut batches = vec![DocAppend { doc, updates, fence }];
                    let mut waiters = vec![done];
                    while let Some(Job::Append { .. }) = pending.peek() {
                        if let Some(Job::Append {
                            doc,
                            updates,
                            fence,
                            done,
                        }) = pending.next()
                        {
                            batches.push(DocAppend { doc, updates, fence });
                            waiters.push(done);
                        }
                    }
                    let results = append_unfenced_apart(store.as_ref(), &metrics, batches).await;
                    for (w, r) in waiters.into_iter().zip(results) {
                        let _ = w.send(r);
                    }
                }
            }
        }
    }
}

/// Appends `batches` in one transaction; per batch, its result. When the store refuses fenced
/// batches (`Fenced`), those of the lost leases fail alone and the rest is appended again.
async fn append_unfenced_apart(store: &dyn Store, metrics: &Metrics, batches: Vec<DocAppend>) -> Vec<PersistResult> {
    let mut results: Vec<Option<PersistResult>> = vec![None; batches.len()];
    let mut live: Vec<(usize, DocAppend)> = batches.into_iter().enumerate().collect();
    while !live.is_empty() {
        // A copy for a second run only when a batch could be refused.
        let fenced = live.iter().any(|(_, b)| b.fence.is_some());
        let again = fenced.then(|| live.clone());
        let count: usize = live.iter().map(|(_, b)| b.updates.len()).sum();
        let started = Instant::now();
        let (idx, run): (Vec<usize>, Vec<DocAppend>) = live.into_iter().unzip();
        let r = store.append(run).await.map(|_| ()).map_err(Arc::new);
        metrics.persist_seconds.observe(started.elapsed().as_secs_f64());
        let lost = match (&r, again) {
            (Err(e), Some(again)) => match e.as_ref() {
                StoreError::Fenced(meetings) => Some((meetings.clone(), again)),
                _ => None,
            },
            _ => None,
        };
        if let Some((meetings, again)) = lost {
            let (refused, rest): (Vec<_>, Vec<_>) = again.into_iter().partition(|(_, b)| {
                b.fence.as_ref().is_some_and(|f| meetings.contains(&f.meeting))
            });
            if !refused.is_empty() {
                tracing::warn!(meetings = ?meetings, "plenary merges refused: the lease is lost");
                for (i, b) in refused {
                    let meeting = b.fence.map(|f| f.meeting).unwrap_or_default();
                    results[i] = Some(Err(Arc::new(StoreError::Fenced(vec![meeting]))));
                }
                live = rest;
                continue;
            }
        }
        match &r {
            Ok(()) => {
                metrics.updates_persisted.inc_by(count as u64);
                metrics.persist_transactions.inc();
            }
            Err(e) => tracing::error!(error = %e, updates = count, "persisting updates failed"),
        }
        for i in idx {
            results[i] = Some(r.clone());
        }
        break;
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Arc::new(StoreError::Closed))))
        .collect()
}
