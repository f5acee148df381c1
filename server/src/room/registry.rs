//! The room registry: `RoomPath -> RoomHandle`.
//!
//! A room is created through the map's entry API, so two first connections can never load two
//! copies. The registry does not know how a room runs: it is given a launcher (built in
//! [`crate::room::context`]'s caller, `room::new_context`) that spawns the owner task; the room's
//! task loads its document itself, and commands wait in its inbox meanwhile. A room that
//! unloads (idle) or stops removes itself with [`Rooms::forget`], matching on its instance
//! number so that it never removes a successor. Rooms of a meeting the directory does not hold
//! (deleted, unknown) are never loaded: the admit check says no.

use super::command::RoomCmd;
use dashmap::DashMap;
use plenary_protocol::RoomPath;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Commands queued for one room before senders wait.
const INBOX_CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct RoomHandle {
    pub tx: mpsc::Sender<RoomCmd>,
    pub instance: u64,
}

/// Starts a room's owner task on its inbox.
pub type Launch = Box<dyn Fn(RoomPath, u64, mpsc::Receiver<RoomCmd>) + Send + Sync>;
/// May a room of this path be loaded now (its meeting and group exist)?
pub type Admit = Box<dyn Fn(&RoomPath) -> bool + Send + Sync>;

pub struct Rooms {
    map: DashMap<RoomPath, RoomHandle>,
    next_instance: AtomicU64,
    launch: Launch,
    admit: Admit,
}

impl Rooms {
    pub fn new(launch: Launch, admit: Admit) -> Rooms {
        Rooms {
            map: DashMap::new(),
            next_instance: AtomicU64::new(0),
            launch,
            admit,
        }
    }

    /// The loaded room, or a new one that starts loading now; `None` if the room's meeting
    /// or group does not exist (any more).
    pub fn get_or_load(&self, path: &RoomPath) -> Option<RoomHandle> {
        if let Some(h) = self.map.get(path) {
            return Some(h.clone());
        }
        if !(self.admit)(path) {
            tracing::debug!(room = %path, "not loading a room of an unknown meeting or group");
            return None;
        }
        let handle = self
            .map
            .entry(path.clone())
            .or_insert_with(|| {
                let instance = self.next_instance.fetch_add(1, Ordering::Relaxed) + 1;
                let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
                (self.launch)(path.clone(), instance, rx);
                RoomHandle { tx, instance }
            })
            .clone();
        Some(handle)
    }

    /// Removes the room if it is still the given instance.
    pub fn forget(&self, path: &RoomPath, instance: u64) {
        self.map.remove_if(path, |_, h| h.instance == instance);
    }

    /// The loaded room only, without loading it.
    pub fn get(&self, path: &RoomPath) -> Option<RoomHandle> {
        self.map.get(path).map(|h| h.clone())
    }

    /// Sends a command, loading the room if needed; retries if the room was unloading. False
    /// if no room took it (the meeting is gone, or rooms keep stopping).
    pub async fn send(&self, path: &RoomPath, cmd: RoomCmd) -> bool {
        let mut cmd = cmd;
        for _ in 0..3 {
            let Some(h) = self.get_or_load(path) else {
                return false;
            };
            match h.tx.send(cmd).await {
                Ok(()) => return true,
                Err(mpsc::error::SendError(c)) => {
                    self.forget(path, h.instance);
                    cmd = c;
                }
            }
        }
        false
    }

    pub fn handles(&self) -> Vec<(RoomPath, RoomHandle)> {
        self.map
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    /// Stops the loaded rooms that `which` selects and waits for each to finish its writes:
    /// groups first, so that their last conclusions reach the plenary before it stops. Returns
    /// how many were stopped (a plenary loaded by a stopping group is left for the next call).
    pub async fn stop(&self, which: impl Fn(&RoomPath) -> bool) -> usize {
        let mut handles: Vec<_> = self.handles().into_iter().filter(|(p, _)| which(p)).collect();
        handles.sort_by_key(|(path, _)| path.is_plenary());
        let n = handles.len();
        for (path, handle) in handles {
            let (done, rx) = tokio::sync::oneshot::channel();
            if handle.tx.send(RoomCmd::Shutdown { done }).await.is_ok() {
                let _ = rx.await;
            }
            self.forget(&path, handle.instance);
            tracing::debug!(room = %path, "room stopped");
        }
        n
    }
}
