//! Group commit: one task per process makes every room's updates durable, batching every append
//! that arrived while the previous transaction ran into one [`Store::append`] (one transaction).
//!
//! Jobs run one at a time in the order they were sent (FIFO), so a room that sends `append` and
//! then `compact` gets a snapshot that includes everything it appended before, and a group's
//! append sent before the plenary's append derived from it is durable first (it is in the same
//! transaction or an earlier one). Rooms await the reply before they relay, which is the
//! contract's durable-before-relay promise.
//!
//! On a shared store (`Cluster::shared_store`), each committed transaction rings the other
//! nodes' doorbell ([`crate::cluster::rings`]): one ring per batch, with its sequence range and
//! bytes, sent by a separate FIFO task (the ringer) after the commit, never before it and never
//! in the way of the next commit. A ring that cannot be sent (the transport failed, or the
//! ringer's queue is full) is logged and counted, not retried: receivers catch up by their
//! periodic head check.
//!
//! A plenary merge's batch may carry a fence ([`DocAppend::fence`]): when the store refuses it
//! (`StoreError::Fenced`: the lease was lost), only the fenced batches of the lost leases fail;
//! the transaction is run again without them, so the other rooms' batches do not fail with them.

use super::{DocAppend, Fence, Store, StoreError};
use crate::cluster::rings::{self, Ring};
use crate::cluster::transport::Channel;
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most jobs folded into one transaction.
const MAX_BATCH: usize = 512;

/// Committed transactions waiting for the ringer; past this, rings are dropped (and counted).
const RING_QUEUE: usize = 4096;

/// Longest wait for one send of the ringer: a hung transport counts as a failed ring.
const RING_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest wait at shutdown for the ringer to send what is queued.
const RINGER_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

enum Job {
    Append {
        doc: String,
        updates: Vec<Vec<u8>>,
        fence: Option<Fence>,
        done: oneshot::Sender<PersistResult>,
    },
    Compact {
        doc: String,
        snapshot: Vec<u8>,
        covers: i64,
        done: oneshot::Sender<PersistResult>,
    },
}

/// Async handle to the group-commit task. Cheap to clone.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::Sender<Job>,
}

/// What a job resolves to once durable: for an append, the document's head after its batch
/// (`None` for an empty batch); for a compaction, `None`.
pub type PersistResult = Result<Option<i64>, Arc<StoreError>>;

impl Persister {
    /// Starts the group-commit task (on the current runtime), and the ringer when `cluster`
    /// shares its store; they stop when every handle is dropped, after finishing their queues.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        cluster: Arc<Cluster>,
    ) -> (Persister, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let ringer = cluster.shared_store.then(|| {
            let (ring_tx, ring_rx) = mpsc::channel(RING_QUEUE);
            let task = tokio::spawn(ringer_loop(cluster.clone(), metrics.clone(), ring_rx));
            (ring_tx, task)
        });
        let handle = tokio::spawn(async move {
            let (ring_tx, ring_task) = ringer.unzip();
            writer_loop(store, metrics, rx, ring_tx).await;
            // The ringer's sender is dropped: it sends what is queued, then ends (a transport
            // that hangs does not hold up the shutdown for long).
            if let Some(t) = ring_task {
                let _ = tokio::time::timeout(RINGER_DRAIN, t).await;
            }
        });
        (Persister { tx }, handle)
    }

    /// Appends updates of one document; resolves once they are durable, with the document's
    /// head after them.
    pub async fn append(&self, doc: String, updates: Vec<Vec<u8>>) -> oneshot::Receiver<PersistResult> {
        self.append_fenced(doc, updates, None).await
    }

    /// [`Persister::append`] of a plenary merge: stored only while `fence`'s lease is held
    /// (`StoreError::Fenced` otherwise, for this batch alone).
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

    /// Replaces the document's log up to `covers` by `snapshot` ([`Store::compact`]), after
    /// every append sent before this call.
    pub async fn compact(
        &self,
        doc: String,
        snapshot: Vec<u8>,
        covers: i64,
    ) -> oneshot::Receiver<PersistResult> {
        self.submit(|done| Job::Compact {
            doc,
            snapshot,
            covers,
            done,
        })
        .await
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

/// The rings of one committed transaction: one per non-empty batch, `first..=head`.
pub fn rings_of(batches: Vec<DocAppend>, heads: &[Option<i64>]) -> Vec<Ring> {
    batches
        .into_iter()
        .zip(heads)
        .filter_map(|(b, head)| {
            let last = (*head)?;
            let n = b.updates.len() as i64;
            (n > 0).then(|| Ring {
                doc: b.doc,
                first: last - n + 1,
                last,
                updates: Some(b.updates),
            })
        })
        .collect()
}

async fn writer_loop(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
    ringer: Option<mpsc::Sender<Vec<Ring>>>,
) {
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
                Job::Compact {
                    doc,
                    snapshot,
                    covers,
                    done,
                } => {
                    let r = store.compact(&doc, snapshot, covers).await.map_err(Arc::new);
                    if let Err(e) = &r {
                        tracing::error!(doc = %doc, error = %e, "compaction failed");
                    } else {
                        metrics.compactions.inc();
                    }
                    let _ = done.send(r.map(|()| None));
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
                    let results = group_commit(store.as_ref(), &metrics, batches, ringer.as_ref()).await;
                    for (w, r) in waiters.into_iter().zip(results) {
                        let _ = w.send(r);
                    }
                }
            }
        }
    }
}

/// Appends `batches` in one transaction and rings for it; per batch, its result. When the
/// store refuses fenced batches, those of the lost leases fail alone and the others are
/// appended again without them.
async fn group_commit(
    store: &dyn Store,
    metrics: &Metrics,
    batches: Vec<DocAppend>,
    ringer: Option<&mpsc::Sender<Vec<Ring>>>,
) -> Vec<PersistResult> {
    let mut results: Vec<Option<PersistResult>> = vec![None; batches.len()];
    let mut live: Vec<(usize, DocAppend)> = batches.into_iter().enumerate().collect();
    while !live.is_empty() {
        let (idx, run): (Vec<usize>, Vec<DocAppend>) = std::mem::take(&mut live).into_iter().unzip();
        let count: usize = run.iter().map(|b| b.updates.len()).sum();
        let started = Instant::now();
        // The batches stay here for the rings, or for a second run without refused merges; the
        // store gets its own copy only then.
        let keep = ringer.is_some() || run.iter().any(|b| b.fence.is_some());
        let (sent, kept) = if keep {
            (run.clone(), Some(run))
        } else {
            (run, None)
        };
        let r = store.append(sent).await;
        metrics.persist_seconds.observe(started.elapsed().as_secs_f64());
        match (r, kept) {
            (Ok(appended), kept) => {
                metrics.updates_persisted.inc_by(count as u64);
                metrics.persist_transactions.inc();
                for (i, head) in idx.iter().zip(appended.heads.iter()) {
                    results[*i] = Some(Ok(*head));
                }
                if let (Some(ringer), Some(batches)) = (ringer, kept) {
                    let rings = rings_of(batches, &appended.heads);
                    let n = rings.len() as u64;
                    if n > 0 && ringer.try_send(rings).is_err() {
                        metrics.cluster_ring_failures.inc_by(n);
                        tracing::warn!(rings = n, "doorbell queue full; rings dropped");
                    }
                }
            }
            (Err(StoreError::Fenced(meetings)), Some(kept)) => {
                let (refused, rest): (Vec<_>, Vec<_>) = idx
                    .into_iter()
                    .zip(kept)
                    .partition(|(_, b)| b.fence.as_ref().is_some_and(|f| meetings.contains(&f.meeting)));
                tracing::warn!(meetings = ?meetings, "plenary merges refused: their lease is lost");
                if refused.is_empty() {
                    // Nothing names the refusal: fail them all rather than loop.
                    let e = Arc::new(StoreError::Fenced(meetings));
                    for (i, _) in rest {
                        results[i] = Some(Err(e.clone()));
                    }
                } else {
                    for (i, b) in refused {
                        let m = b.fence.map(|f| f.meeting).unwrap_or_default();
                        results[i] = Some(Err(Arc::new(StoreError::Fenced(vec![m]))));
                    }
                    live = rest;
                }
            }
            (Err(e), _) => {
                tracing::error!(error = %e, updates = count, "persisting updates failed");
                let e = Arc::new(e);
                for i in idx {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Arc::new(StoreError::Closed))))
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sends the rings of each committed transaction, in commit order.
async fn ringer_loop(cluster: Arc<Cluster>, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<Vec<Ring>>) {
    while let Some(rings) = rx.recv().await {
        let n = rings.len() as u64;
        let payloads = rings::encode_at(&cluster.node, Some(unix_ms()), rings);
        let sent = tokio::time::timeout(RING_SEND_TIMEOUT, cluster.transport.send(Channel::Docs, payloads))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        match sent {
            Ok(()) => {
                metrics.cluster_rings_sent.inc_by(n);
            }
            Err(e) => {
                metrics.cluster_ring_failures.inc_by(n);
                tracing::warn!(error = %e, rings = n, "ringing the other nodes failed");
            }
        }
    }
}
