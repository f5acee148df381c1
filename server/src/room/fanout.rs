//! The fan-out of a large room, spread over the runtime's worker threads. A room's own task
//! writes each frame into every member's socket (see [`super::outbox`]): for a few hundred
//! members that is the cheapest path, but 5,000 followers are 5,000 writes in a row on one
//! thread while the other core waits, and everything queued behind the room (its next update,
//! the tasks it woke) waits too. Past [`LARGE_ROOM`] members a room hands its members to
//! shards: one task per worker thread, each owning a fixed part of the members, so the writes of
//! one update run on every core at once.
//!
//! Order per connection is kept: once a room has shards, everything it sends a member goes
//! through that member's shard, in one FIFO channel, and before that everything was written or
//! queued in the member's outbox synchronously. A room never goes back to writing itself.
//!
//! A shard that meets a full outbox counts the slow disconnect and forgets the member: its
//! outbox has told the connection to close with 1013, and the connection's end tells the room.

use super::command::ConnId;
use super::outbox::{Delivery, Frame, Outbox};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Members from which a room fans out through shards (on a runtime with several workers).
pub const LARGE_ROOM: usize = 1024;

enum ShardCmd {
    Join(ConnId, Outbox, Vec<Frame>),
    Leave(ConnId),
    Broadcast(Option<ConnId>, Frame),
    To(ConnId, Frame),
}

/// A room's shards. Dropping it ends their tasks once they have written what they were given.
pub struct Shards {
    shards: Vec<mpsc::UnboundedSender<ShardCmd>>,
}

impl Shards {
    /// Shards for this runtime: `None` on a runtime with one worker (nothing to spread over).
    pub fn for_runtime(metrics: &Arc<Metrics>) -> Option<Shards> {
        let workers = tokio::runtime::Handle::try_current().ok()?.metrics().num_workers();
        (workers > 1).then(|| Shards::start(workers, metrics))
    }

    pub fn start(n: usize, metrics: &Arc<Metrics>) -> Shards {
        let shards = (0..n.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run(rx, metrics.clone()));
                tx
            })
            .collect();
        Shards { shards }
    }

    fn shard(&self, conn: ConnId) -> &mpsc::UnboundedSender<ShardCmd> {
        &self.shards[(conn.0 % self.shards.len() as u64) as usize]
    }

    /// A member, and the frames it is greeted with.
    pub fn join(&self, conn: ConnId, outbox: Outbox, greeting: Vec<Frame>) {
        let _ = self.shard(conn).send(ShardCmd::Join(conn, outbox, greeting));
    }

    pub fn leave(&self, conn: ConnId) {
        let _ = self.shard(conn).send(ShardCmd::Leave(conn));
    }

    pub fn broadcast(&self, except: Option<ConnId>, frame: &Frame) {
        for shard in &self.shards {
            let _ = shard.send(ShardCmd::Broadcast(except, frame.clone()));
        }
    }

    pub fn send_to(&self, conn: ConnId, frame: Frame) {
        let _ = self.shard(conn).send(ShardCmd::To(conn, frame));
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<ShardCmd>, metrics: Arc<Metrics>) {
    let mut members: HashMap<ConnId, Outbox> = HashMap::new();
    let mut gone = Vec::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            ShardCmd::Join(conn, outbox, greeting) => {
                let frames: Vec<&Frame> = greeting.iter().collect();
                if !frames.is_empty() {
                    let _ = outbox.send_all(&frames);
                }
                members.insert(conn, outbox);
            }
            ShardCmd::Leave(conn) => {
                members.remove(&conn);
            }
            ShardCmd::Broadcast(except, frame) => {
                let mut sent = 0u64;
                for (id, outbox) in &members {
                    if Some(*id) == except {
                        continue;
                    }
                    match outbox.send(&frame) {
                        Delivery::Queued => sent += 1,
                        Delivery::TooSlow => {
                            metrics.slow_disconnects.inc();
                            tracing::info!(conn = %id, "connection too slow; closing 1013");
                            gone.push(*id);
                        }
                        Delivery::Closed => gone.push(*id),
                    }
                }
                metrics.messages_out.inc_by(sent);
                metrics.bytes_out.inc_by(sent * frame.len() as u64);
            }
            ShardCmd::To(conn, frame) => {
                if let Some(outbox) = members.get(&conn) {
                    match outbox.send(&frame) {
                        Delivery::Queued => {
                            metrics.messages_out.inc();
                            metrics.bytes_out.inc_by(frame.len() as u64);
                        }
                        Delivery::TooSlow => {
                            metrics.slow_disconnects.inc();
                            gone.push(conn);
                        }
                        Delivery::Closed => gone.push(conn),
                    }
                }
            }
        }
        for id in gone.drain(..) {
            members.remove(&id);
        }
    }
}
