//! Several nodes on one database (issue 13; the contract's "Several nodes").
//!
//! - [`transport`]: short messages between nodes on a few channels (the [`transport::Transport`]
//!   trait; NOTIFY/LISTEN in `store::postgres::notify`; an in-process bus).
//! - [`rings`]: the doorbell's payload and what a replica does with a ring (pure).
//! - [`directory_sync`]: meetings, groups, closed flags and tokens kept current on every node.
//! - [`presence`]: awareness entries and follower counts between nodes (payload, send queue).
//! - [`presence_relay`]: the node's awareness publisher and listener tasks.
//! - [`lease`]: the plenary lease as one node sees it: wanted, held, until when (pure).
//! - [`leases`]: this node's lease table, the task renewing it, the `LeaseStore` it uses.
//!
//! [`Cluster`] is what the rest of the server sees: this node's id and its transport. A server
//! on the embedded store is a cluster of one ([`Cluster::solo`]): it hears only itself.

pub mod directory_sync;
pub mod lease;
pub mod leases;
pub mod presence;
pub mod presence_relay;
pub mod rings;
pub mod transport;

#[cfg(test)]
mod decode_tests;

use leases::Leases;
use std::sync::Arc;
use transport::{LocalBus, Transport};

pub struct Cluster {
    /// This node's id: random per process start, so that a restarted node is a new node.
    pub node: String,
    pub transport: Arc<dyn Transport>,
    /// Other nodes may share the store (PostgreSQL): rooms ring, listen and check heads.
    pub shared_store: bool,
    /// The node's awareness send queue, once [`presence_relay::start`] runs (rooms of a node
    /// without it tell nobody).
    pub presence: std::sync::OnceLock<presence::Publisher>,
    /// Which meetings' plenaries this node merges (all of them alone on the store).
    pub leases: Arc<Leases>,
}

impl Cluster {
    /// One node alone on its store.
    pub fn solo() -> Arc<Cluster> {
        let node = new_node_id();
        Arc::new(Cluster {
            leases: Arc::new(Leases::solo(&node)),
            node,
            transport: Arc::new(LocalBus::default()),
            shared_store: false,
            presence: Default::default(),
        })
    }

    /// A node of a cluster whose nodes hear each other on `transport`.
    pub fn node(transport: Arc<dyn Transport>) -> Arc<Cluster> {
        Self::node_with(
            transport,
            lease::LeaseTiming::new(
                lease::LeaseTiming::DEFAULT_TTL,
                std::time::Duration::from_secs(30),
            ),
        )
    }

    /// [`Cluster::node`] with its lease timing (TTL, interest window).
    pub fn node_with(transport: Arc<dyn Transport>, timing: lease::LeaseTiming) -> Arc<Cluster> {
        let node = new_node_id();
        Arc::new(Cluster {
            leases: Arc::new(Leases::shared(&node, timing)),
            node,
            transport,
            shared_store: true,
            presence: Default::default(),
        })
    }
}

/// 16 hex digits.
pub fn new_node_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
