//! The durability pipeline of one room: batches, their sequence numbers, and what waits for
//! them.
//!
//! Each batch of document changes the room commits gets the next sequence number (`applied`)
//! and goes to the persister; the stores answer in order, and `durable` is the last batch they
//! confirmed. Everything that shows a batch's effects — the relayed update, a sync step 2 or a
//! saved acknowledgement sent after it, an inspection for an export, and the group's
//! conclusions handed to its plenary — is queued behind the batch number current when it was
//! produced ([`Pipeline::defer`]), and leaves only once `durable` reaches that number
//! ([`Pipeline::released`]). Calls go one way: the room calls the pipeline and delivers what it
//! releases; the pipeline knows nothing of members or plenaries.
//!
//! The plenary ordering follows from it: a group reads its conclusions from its document after
//! the batches that produced them were committed, defers the hand-over behind the current
//! number, and so the plenary can merge (and persist) a derived update only once the group's
//! updates it came from are durable, whatever the store and however many writers it has.

use super::command::ConnId;
use super::outbox::Frame;
use crate::plenary::merge::GroupConclusions;
use crate::store::persister::{PersistResult, Persister};
use crate::store::{Fence, StoreError};
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Something that may leave only once the batch it follows is durable.
pub enum Deferred {
    Broadcast {
        except: Option<ConnId>,
        frame: Frame,
    },
    To {
        conn: ConnId,
        frame: Frame,
    },
    Inspection {
        reply: oneshot::Sender<serde_json::Value>,
        json: serde_json::Value,
    },
    /// A group's conclusions for its plenary, read from durable state once released.
    Feed(GroupConclusions),
}

/// A write in flight: its batch number, how many updates it logs, and the store's answer.
type Write = std::pin::Pin<Box<dyn std::future::Future<Output = (u64, i64, PersistResult)> + Send>>;

#[derive(Default)]
pub struct Pipeline {
    applied: u64,
    durable: u64,
    inflight: FuturesOrdered<Write>,
    deferred: VecDeque<(u64, Deferred)>,
    /// Updates in the store's log since the last snapshot.
    log_len: u64,
    /// A write failed: nothing after it may be taken as durable (the room closes).
    failed: bool,
}

impl Pipeline {
    /// A pipeline for a document whose stored log holds `log_len` updates after its snapshot.
    /// (How far the room has applied the store's log is the replica's watermark: `replica`.)
    pub fn new(log_len: u64) -> Pipeline {
        Pipeline {
            log_len,
            ..Pipeline::default()
        }
    }

    /// The last batch sent to the store.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The last batch the store confirmed.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// No write is in flight.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Sends one batch of updates to the store under the next sequence number.
    pub async fn append(&mut self, persister: &Persister, doc: &str, updates: Vec<Vec<u8>>) -> u64 {
        self.append_fenced(persister, doc, updates, None).await
    }

    /// [`Pipeline::append`] of a plenary merge, stored only while `fence`'s lease is held.
    pub async fn append_fenced(
        &mut self,
        persister: &Persister,
        doc: &str,
        updates: Vec<Vec<u8>>,
        fence: Option<Fence>,
    ) -> u64 {
        self.applied += 1;
        let seq = self.applied;
        self.log_len += updates.len() as u64;
        let n = updates.len() as i64;
        let rx = persister.append_fenced(doc.to_owned(), updates, fence).await;
        self.inflight
            .push_back(Box::pin(async move { (seq, n, answer(rx).await) }));
        seq
    }

    /// Is the log long enough to compact? Whether or not the compaction that follows passes its
    /// check, the next try is `compact_after` updates away.
    pub fn compaction_due(&mut self, compact_after: u64) -> bool {
        if self.log_len < compact_after {
            return false;
        }
        self.log_len = 0;
        true
    }

    /// Replaces the stored log up to the store's number `covers` by `snapshot`, after every
    /// batch appended before (same batch number as the last of them: the compaction holds
    /// nothing new).
    pub async fn compact(&mut self, persister: &Persister, doc: &str, snapshot: Vec<u8>, covers: i64) {
        let seq = self.applied;
        let rx = persister.compact(doc.to_owned(), snapshot, covers).await;
        self.inflight
            .push_back(Box::pin(async move { (seq, 0, answer(rx).await) }));
    }

    /// Queues `d` behind every batch sent so far.
    pub fn defer(&mut self, d: Deferred) {
        self.deferred.push_back((self.applied, d));
    }

    /// Waits for the store's next answer. `Some(Ok)`: `durable` advanced, with the store's
    /// numbers `(first, last)` of the updates that write logged, if it logged any and the store
    /// numbers them; `Some(Err)`: the store failed (nothing after it can be trusted to be
    /// durable); `None`: nothing in flight.
    pub async fn next_durable(&mut self) -> Option<Result<Option<(i64, i64)>, Arc<StoreError>>> {
        let (seq, n, result) = self.inflight.next().await?;
        match result {
            Ok(head) if !self.failed => {
                self.durable = self.durable.max(seq);
                Some(Ok(head.filter(|_| n > 0).map(|h| (h - n + 1, h))))
            }
            Ok(_) => Some(Ok(None)),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    /// What may leave now, in the order it was deferred.
    pub fn released(&mut self) -> Vec<Deferred> {
        let mut out = Vec::new();
        while let Some((seq, _)) = self.deferred.front() {
            if *seq > self.durable {
                break;
            }
            if let Some((_, d)) = self.deferred.pop_front() {
                out.push(d);
            }
        }
        out
    }

    /// Waits for every write in flight (unloading: a successor must find them in the store).
    /// Stops at the first failure.
    pub async fn settle(&mut self) {
        while let Some(r) = self.next_durable().await {
            if r.is_err() {
                break;
            }
        }
    }
}

async fn answer(rx: oneshot::Receiver<PersistResult>) -> PersistResult {
    rx.await.unwrap_or_else(|_| Err(Arc::new(StoreError::Closed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_items_leave_in_order_once_their_batch_is_durable() {
        let mut p = Pipeline::default();
        p.defer(Deferred::To {
            conn: ConnId(1),
            frame: Frame::binary(b"before any batch"),
        });
        p.applied = 1;
        p.defer(Deferred::To {
            conn: ConnId(1),
            frame: Frame::binary(b"after 1"),
        });
        p.applied = 2;
        p.defer(Deferred::To {
            conn: ConnId(1),
            frame: Frame::binary(b"after 2"),
        });
        assert_eq!(p.released().len(), 1);
        assert!(p.released().is_empty());
        p.durable = 1;
        assert_eq!(p.released().len(), 1);
        p.durable = 2;
        assert_eq!(p.released().len(), 1);
    }
}
