//! Delivery: how a room commits a batch (store first), queues what must wait for durability,
//! and hands frames to its members' bounded outboxes (closing those that cannot keep up).

use super::outbox::Delivery;
use super::room::{Inflight, Room};
use super::{ConnId, Frame};
use bytes::Bytes;
use plenary_protocol::message;
use plenary_protocol::{AwarenessEntry, AwarenessUpdate};
use std::sync::Arc;
use tokio::sync::oneshot;
use yrs::{ReadTxn, Transact};

/// Something that may leave only once the batch `seq` is durable.
pub(super) enum Deferred {
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
}

/// What a batch of commands produced.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) diffs: Vec<(Option<ConnId>, Vec<u8>)>,
    pub(super) acks: Vec<ConnId>,
    pub(super) replies: Vec<(ConnId, Frame)>,
    pub(super) inspections: Vec<(oneshot::Sender<serde_json::Value>, serde_json::Value)>,
    /// Updates waiting for the sandbox's verdict, in arrival order.
    pub(super) pending: Vec<super::vetting::Pending>,
    /// Plenary rooms: new group input arrived; merge once before committing.
    pub(super) merge_due: bool,
}

impl Room {
    /// Sends a batch's writes to the store and queues what must wait for them.
    pub(super) async fn commit_batch(&mut self, mut batch: Batch, inflight: &mut Inflight) {
        if !batch.pending.is_empty() {
            self.vet_pending(&mut batch).await;
        }
        if batch.merge_due && !self.poisoned {
            let doc = &self.doc;
            let plenary = &mut self.plenary;
            match super::vetting::contained(|| plenary.as_mut().and_then(|p| p.merge(doc))) {
                Some(Some(diff)) => {
                    self.doc_changed();
                    self.bump_generation();
                    // The merged state is checked in the child (it replays, every read works)
                    // before it is stored or relayed; seeding now also spares the next
                    // moderator write a round trip.
                    match self.seed_sandbox().await {
                        Ok(()) => batch.diffs.push((None, diff)),
                        Err(e) if self.poisoned => {
                            tracing::error!(error = %e, "the merged plenary does not pass the sandbox; not stored");
                        }
                        // The child could not be reached: the merge is the server's own edit.
                        Err(e) => {
                            tracing::warn!(error = %e, "could not check the merged plenary in the sandbox");
                            batch.diffs.push((None, diff));
                        }
                    }
                }
                Some(None) => {}
                None => self.poison("merging group conclusions into the plenary"),
            }
        }
        if !batch.diffs.is_empty() {
            self.doc_changed();
            self.applied_seq += 1;
            let seq = self.applied_seq;
            let updates: Vec<Vec<u8>> = batch.diffs.iter().map(|(_, d)| d.clone()).collect();
            self.log_len += updates.len() as u64;
            let rx = self.svc.persister.append(self.doc_key.clone(), updates).await;
            inflight.push_back(Box::pin(async move {
                (
                    seq,
                    rx.await
                        .unwrap_or_else(|_| Err(Arc::new(crate::store::StoreError::Closed))),
                )
            }));
            for (from, diff) in std::mem::take(&mut batch.diffs) {
                let frame = Bytes::from(message::encode_update(&diff));
                self.deferred
                    .push_back((seq, Deferred::Broadcast { except: from, frame }));
            }
            if self.log_len >= self.svc.compact_after && !self.poisoned {
                // Whether or not it passes its check, the next try is `compact_after` away.
                self.log_len = 0;
                let Some(snapshot) = self.vetted_snapshot().await else {
                    return self.finish_batch(batch);
                };
                let rx = self.svc.persister.compact(self.doc_key.clone(), snapshot).await;
                inflight.push_back(Box::pin(async move {
                    (
                        seq,
                        rx.await
                            .unwrap_or_else(|_| Err(Arc::new(crate::store::StoreError::Closed))),
                    )
                }));
            }
        }
        self.finish_batch(batch);
    }

    /// Queues the batch's replies, inspections and acks behind its writes.
    fn finish_batch(&mut self, batch: Batch) {
        let seq = self.applied_seq;
        for (conn, frame) in batch.replies {
            self.deferred.push_back((seq, Deferred::To { conn, frame }));
        }
        for (reply, json) in batch.inspections {
            self.deferred
                .push_back((seq, Deferred::Inspection { reply, json }));
        }
        if !batch.acks.is_empty() && !self.poisoned {
            let sv = self.doc.transact().state_vector();
            let frame = Bytes::from(message::encode_saved_ack(&sv));
            for conn in batch.acks {
                self.deferred.push_back((
                    seq,
                    Deferred::To {
                        conn,
                        frame: frame.clone(),
                    },
                ));
            }
        }
        self.release_deferred();
    }

    pub(super) fn release_deferred(&mut self) {
        while let Some((seq, _)) = self.deferred.front() {
            if *seq > self.durable_seq {
                break;
            }
            let Some((_, d)) = self.deferred.pop_front() else {
                break;
            };
            match d {
                Deferred::Broadcast { except, frame } => self.broadcast(except, &frame),
                Deferred::To { conn, frame } => self.send_to(conn, frame),
                Deferred::Inspection { reply, json } => {
                    let _ = reply.send(json);
                }
            }
        }
    }

    pub(super) fn broadcast(&mut self, except: Option<ConnId>, frame: &Frame) {
        let mut gone = Vec::new();
        for (id, m) in &self.members {
            if Some(*id) == except {
                continue;
            }
            match m.member.outbox.send(frame.clone()) {
                Delivery::Queued => {}
                Delivery::TooSlow => {
                    self.svc.metrics.slow_disconnects.inc();
                    tracing::info!(conn = %id, "connection too slow; closing 1013");
                    gone.push(*id);
                }
                Delivery::Closed => gone.push(*id),
            }
        }
        for id in gone {
            self.leave(id);
        }
    }

    pub(super) fn send_to(&mut self, conn: ConnId, frame: Frame) {
        let Some(m) = self.members.get(&conn) else { return };
        match m.member.outbox.send(frame) {
            Delivery::Queued => {}
            Delivery::TooSlow => {
                self.svc.metrics.slow_disconnects.inc();
                self.leave(conn);
            }
            Delivery::Closed => self.leave(conn),
        }
    }

    pub(super) fn kick(&mut self, conn: ConnId, code: u16) {
        if let Some(m) = self.members.get(&conn) {
            m.member.outbox.kick.kick(code);
        }
        self.leave(conn);
    }

    pub(super) fn close_all(&mut self, code: u16) {
        for m in self.members.values() {
            m.member.outbox.kick.kick(code);
        }
        self.members.clear();
    }
}

pub(super) fn awareness_frame(entries: Vec<AwarenessEntry>) -> Option<Frame> {
    if entries.is_empty() {
        return None;
    }
    Some(Bytes::from(message::encode_awareness(&AwarenessUpdate {
        entries,
    })))
}
