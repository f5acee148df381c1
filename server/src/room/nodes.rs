//! What the other nodes of a cluster said about one room (pure; time is passed in): each
//! node's latest follower and writer counts, and when it was last heard. A node that has not
//! been heard for [`NODE_SILENCE`] is gone from the room (it died, or its room unloaded): its
//! counts stop counting and the room drops its awareness entries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a node with members in a room tells the others its counts (also its heartbeat).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node not heard for this long is gone from the room (several heartbeats).
pub const NODE_SILENCE: Duration = Duration::from_secs(8);

#[derive(Debug)]
struct Node {
    counts: (usize, usize),
    heard: Instant,
}

#[derive(Debug, Default)]
pub struct OtherNodes {
    nodes: HashMap<Arc<str>, Node>,
}

impl OtherNodes {
    /// `node` spoke about the room at `now`, with its counts if it sent them.
    pub fn heard(&mut self, node: &Arc<str>, counts: Option<(usize, usize)>, now: Instant) {
        let n = self.nodes.entry(node.clone()).or_insert(Node {
            counts: (0, 0),
            heard: now,
        });
        n.heard = now;
        if let Some(c) = counts {
            n.counts = c;
        }
    }

    /// The other nodes' (followers, writers), summed.
    pub fn sum(&self) -> (usize, usize) {
        self.nodes
            .values()
            .fold((0, 0), |(f, w), n| (f + n.counts.0, w + n.counts.1))
    }

    /// Forgets the nodes silent for [`NODE_SILENCE`] at `now`, and returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<str>> {
        let gone: Vec<Arc<str>> = self
            .nodes
            .iter()
            .filter(|(_, n)| now.saturating_duration_since(n.heard) >= NODE_SILENCE)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.nodes.remove(id);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_over_nodes_latest_first_and_silent_nodes_stop_counting() {
        let t0 = Instant::now();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut nodes = OtherNodes::default();
        nodes.heard(&a, Some((3, 1)), t0);
        nodes.heard(&b, Some((2, 2)), t0);
        assert_eq!(nodes.sum(), (5, 3));
        nodes.heard(&a, Some((1, 0)), t0 + HEARTBEAT);
        assert_eq!(nodes.sum(), (3, 2));
        // a message without counts keeps the node alive and its counts as they were
        nodes.heard(&a, None, t0 + NODE_SILENCE);
        assert!(nodes
            .expire(t0 + NODE_SILENCE - Duration::from_millis(1))
            .is_empty());
        assert_eq!(nodes.expire(t0 + NODE_SILENCE), vec![b.clone()]);
        assert_eq!(nodes.sum(), (1, 0));
        assert_eq!(nodes.expire(t0 + NODE_SILENCE * 2), vec![a]);
        assert_eq!(nodes.sum(), (0, 0));
    }
}
