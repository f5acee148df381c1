//! The node's listener for other nodes' commits, when the store is shared (issue 13): one task
//! per node, subscribed to the cluster's transport before any room loads, so that a room
//! registered before it reads its document misses no ring (rings that arrive while it loads
//! wait in its inbox and are judged against the head it loaded).
//!
//! - A payload on [`Channel::Docs`] ([`crate::cluster::rings`]) from another node: each ring
//!   goes to its document's room if that room is loaded here ([`RoomCmd::Remote`]); rooms are
//!   never loaded for a ring (a room that loads later reads the store, which already holds
//!   what was rung).
//! - Every [`HEAD_CHECK`], and at once when the transport says messages may have been missed
//!   ([`Heard::Resync`], or a receiver that lagged): the heads of the loaded documents are
//!   read from the store in one query and each room is told its head
//!   ([`RoomCmd::StoreHead`]); a room behind it reads the log.
//!
//! A room whose inbox is full misses the ring; the next head check catches it up.

use super::command::RoomCmd;
use super::context::{RoomContext, WeakContext};
use crate::cluster::rings;
use crate::cluster::transport::{Channel, Heard};
use plenary_protocol::RoomPath;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// How often the heads of loaded documents are compared with the store.
pub const HEAD_CHECK: Duration = Duration::from_secs(2);
/// Documents per query of the head check.
const HEADS_PER_QUERY: usize = 1000;

/// Starts the listener; it stops when the context is dropped or the transport closes.
pub fn spawn(ctx: &RoomContext) -> tokio::task::JoinHandle<()> {
    let heard = ctx.cluster.transport.subscribe();
    tokio::spawn(listen(ctx.downgrade(), heard))
}

async fn listen(weak: WeakContext, mut heard: broadcast::Receiver<Heard>) {
    let mut tick = tokio::time::interval(HEAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let check = tokio::select! {
            msg = heard.recv() => match msg {
                Ok(Heard::Message { channel: Channel::Docs, payload }) => {
                    let Some(ctx) = weak.upgrade() else { return };
                    route(&ctx, &payload);
                    false
                }
                Ok(Heard::Message { .. }) => false,
                Ok(Heard::Resync) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => true,
        };
        if check {
            let Some(ctx) = weak.upgrade() else { return };
            check_heads(&ctx).await;
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Hands each ring of another node's payload to its loaded room.
fn route(ctx: &RoomContext, payload: &str) {
    let rings = match rings::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "a doorbell payload that does not decode; ignored");
            return;
        }
    };
    if rings.node == ctx.cluster.node {
        return;
    }
    if let Some(sent) = rings.sent_at_ms {
        let lag_ms = now_ms().saturating_sub(sent);
        ctx.metrics
            .cluster_ring_lag_seconds
            .observe(lag_ms as f64 / 1000.0);
    }
    for ring in rings.rings {
        let Ok(path) = RoomPath::parse(&ring.doc) else {
            tracing::debug!(doc = %ring.doc, "a ring for no room path; ignored");
            continue;
        };
        if let Some(room) = ctx.rooms.get(&path) {
            if room.tx.try_send(RoomCmd::Remote(ring)).is_err() {
                tracing::debug!(room = %path, "a ring not delivered (inbox full or closing); the head check catches up");
            }
        }
    }
}

/// Tells every loaded room its document's head in the store.
async fn check_heads(ctx: &RoomContext) {
    let rooms = ctx.rooms.handles();
    for chunk in rooms.chunks(HEADS_PER_QUERY) {
        let docs: Vec<String> = chunk.iter().map(|(path, _)| path.to_string()).collect();
        let heads = match ctx.store.heads(&docs).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "reading the heads of loaded documents failed; retried on the next check");
                return;
            }
        };
        for ((_, room), head) in chunk.iter().zip(heads) {
            if head > 0 {
                let _ = room.tx.try_send(RoomCmd::StoreHead { head });
            }
        }
    }
}
