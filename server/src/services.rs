//! The shared services every request and room reaches: store, persister, directory, rooms,
//! metrics and the settings they need. Cheap to clone (all `Arc`s).

use crate::auth::TokenHash;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::room::Rooms;
use crate::store::persister::Persister;
use crate::store::Store;
use plenary_protocol::Limits;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub persister: Persister,
    /// Child processes that vet every update before a room applies it.
    pub sandbox: crate::sandbox::Sandbox,
    /// Tests only: corrupt compaction snapshots (their check must refuse them).
    pub test_corrupt_snapshots: bool,
    pub directory: Arc<Directory>,
    pub rooms: Arc<Rooms>,
    pub metrics: Arc<Metrics>,
    pub tracker: TaskTracker,
    /// Cancelled when shutdown starts (before rooms flush).
    pub stopping: CancellationToken,
    /// Every open connection with its token, so that shutdown can close them all with 1001
    /// and a revoked token's with 1008.
    pub connections: Arc<dashmap::DashMap<crate::room::ConnId, crate::connection::OpenConn>>,
    /// Connections, messages and reply bytes per token.
    pub token_limits: Arc<crate::limits::TokenLimits>,
    /// Numbers connections for logs.
    pub next_conn: Arc<std::sync::atomic::AtomicU64>,
    pub admin: TokenHash,
    /// The admin bearer check with its server-wide budget for wrong guesses.
    pub admin_gate: Arc<crate::http::admin::AdminGate>,
    pub limits: Limits,
    pub room_idle: Duration,
    pub compact_after: u64,
    /// Coalescing window between a group's edits and the plenary merge.
    pub merge_delay: Duration,
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub max_messages_per_sec: u32,
    pub max_connections: usize,
    /// Base of the web links handed out (`http://host:port`).
    pub public_url: String,
}
