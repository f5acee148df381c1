//! The node's awareness relay (issue 13, point 5): two tasks, started once per node by
//! [`start`].
//!
//! - The publisher drains the rooms' send queue ([`super::presence::Publisher`]) in order,
//!   packs what it holds into payloads ([`super::presence::encode`]) and sends them on
//!   [`Channel::Awareness`]; entries too large to travel and items dropped for a full queue are
//!   logged. One task, so a node's messages are heard in the order its rooms queued them.
//! - The listener hears the channel, drops its own node's messages, and hands each room's news
//!   to that room if it is loaded here (a room is never loaded for awareness: a room nobody
//!   follows on this node has nobody to show it to, and asks the others when it loads). When
//!   messages may have been missed (a re-established listening session, a lagging receiver)
//!   every loaded room is told, and asks again. A full room inbox drops the news: awareness
//!   never makes the listener wait.

use super::presence::{self, Inbound, Publisher, Queue};
use super::transport::{Channel, Heard, Transport};
use crate::room::{RoomCmd, RoomContext};
use plenary_protocol::RoomPath;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Items packed into one round of sends.
const MAX_ROUND: usize = 512;

/// Starts the publisher and the listener for the node of `ctx` (once; later calls do nothing).
pub fn start(ctx: &RoomContext) {
    let cluster = ctx.cluster.clone();
    let (publisher, queue) = Publisher::new();
    if cluster.presence.set(publisher).is_err() {
        return;
    }
    // Subscribed before anything is published, so nothing said from now on is missed.
    let heard = cluster.transport.subscribe();
    tokio::spawn(publish(cluster.node.clone(), cluster.transport.clone(), queue));
    tokio::spawn(listen(cluster.node.clone(), heard, ctx.downgrade()));
}

async fn publish(node: String, transport: Arc<dyn Transport>, mut queue: Queue) {
    // The queue's senders live in the cluster handle and in rooms: the task ends with them.
    while let Some(first) = queue.recv().await {
        let mut items = vec![first];
        while items.len() < MAX_ROUND {
            match queue.try_recv() {
                Some(item) => items.push(item),
                None => break,
            }
        }
        let (payloads, too_large) = presence::encode(&node, items);
        for (room, id, bytes) in too_large {
            tracing::info!(room = %room, client_id = id, bytes,
                "an awareness state too large to send to other nodes was left out");
        }
        let dropped = queue.take_dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "awareness for other nodes dropped: the send queue was full"
            );
        }
        if payloads.is_empty() {
            continue;
        }
        if let Err(e) = transport.send(Channel::Awareness, payloads).await {
            tracing::warn!(error = %e, "could not send awareness to the other nodes");
        }
    }
}

async fn listen(node: String, mut heard: broadcast::Receiver<Heard>, ctx: crate::room::context::WeakContext) {
    loop {
        let news = match heard.recv().await {
            Ok(Heard::Message {
                channel: Channel::Awareness,
                payload,
            }) => Some(payload),
            Ok(Heard::Message { .. }) => continue,
            Ok(Heard::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(ctx) = ctx.upgrade() else { return };
        let Some(payload) = news else {
            for (_, handle) in ctx.rooms.handles() {
                let _ = handle.tx.try_send(RoomCmd::RemotePresence(Inbound::Resync));
            }
            continue;
        };
        let heard = match presence::decode(&payload) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "an awareness message from another node does not decode");
                continue;
            }
        };
        if heard.node == node {
            continue;
        }
        let from: Arc<str> = heard.node.into();
        for item in heard.rooms {
            let Ok(path) = RoomPath::parse(&item.room) else {
                tracing::debug!(room = %item.room, "awareness for a room path that does not parse");
                continue;
            };
            let Some(handle) = ctx.rooms.get(&path) else {
                continue; // not loaded here: nobody to show it to
            };
            let cmd = RoomCmd::RemotePresence(Inbound::Item {
                node: from.clone(),
                item,
            });
            if handle.tx.try_send(cmd).is_err() {
                tracing::debug!(room = %path, "room inbox full; awareness from another node dropped");
            }
        }
    }
}
