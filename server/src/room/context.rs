//! What a room needs from the rest of the server, and nothing else: the store and its
//! persister, the apply sandbox, the directory (closed flags, the meeting a plenary shows), the
//! registry (to feed its plenary and hand racing commands to a successor), metrics, the task
//! tracker, and the room settings. Cheap to clone (one `Arc`).

use super::registry::Rooms;
use crate::cluster::Cluster;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::sandbox::Sandbox;
use crate::store::persister::Persister;
use crate::store::Store;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// How rooms behave: from the configuration.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// An empty room unloads after this long without a command.
    pub room_idle: Duration,
    /// Updates logged since the last snapshot before the room compacts its log.
    pub compact_after: u64,
    /// Coalescing window between a group's edits and the plenary merge.
    pub merge_delay: Duration,
    /// Tests only: corrupt compaction snapshots (their check must refuse them).
    pub test_corrupt_snapshots: bool,
}

/// The shared handles a room reaches.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub persister: Persister,
    /// Child processes that vet every update before a room applies it.
    pub sandbox: Sandbox,
    pub directory: Arc<Directory>,
    pub rooms: Rooms,
    pub metrics: Arc<Metrics>,
    pub tracker: TaskTracker,
    pub settings: RoomSettings,
    /// This node and how it hears the others (a cluster of one on the embedded store).
    pub cluster: Arc<Cluster>,
}

#[derive(Clone)]
pub struct RoomContext(Arc<Shared>);

impl std::ops::Deref for RoomContext {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A context that does not keep the rooms' shared handles alive (the registry's launcher holds
/// one, so that dropping the last context lets the store writer finish).
#[derive(Clone)]
pub struct WeakContext(Weak<Shared>);

impl WeakContext {
    pub fn upgrade(&self) -> Option<RoomContext> {
        self.0.upgrade().map(RoomContext)
    }
}

impl RoomContext {
    /// A handle that does not keep the context alive.
    pub fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.0))
    }

    /// The context, built by `shared` from a weak handle to itself (for the registry's
    /// launcher, which starts rooms with a context of their own).
    pub fn new_cyclic(shared: impl FnOnce(WeakContext) -> Shared) -> RoomContext {
        RoomContext(Arc::new_cyclic(|weak| shared(WeakContext(weak.clone()))))
    }
}
