//! The room registry: `RoomPath -> RoomHandle`.
//!
//! A room is created through the map's entry API, so two first connections can never load two
//! copies. The room's task loads its document itself; commands wait in its inbox meanwhile. A
//! room that unloads (idle) or stops removes itself with [`Rooms::forget`], matching on its
//! instance number so that it never removes a successor.

use super::room::Room;
use super::RoomCmd;
use crate::services::Services;
use dashmap::DashMap;
use plenary_protocol::RoomPath;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Commands queued for one room before senders wait.
const INBOX_CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct RoomHandle {
    pub tx: mpsc::Sender<RoomCmd>,
    pub instance: u64,
}

#[derive(Default)]
pub struct Rooms {
    map: DashMap<RoomPath, RoomHandle>,
    next_instance: AtomicU64,
}

impl Rooms {
    /// The loaded room, or a new one that starts loading now.
    pub fn get_or_load(&self, path: &RoomPath, svc: &Services) -> RoomHandle {
        if let Some(h) = self.map.get(path) {
            return h.clone();
        }
        self.map
            .entry(path.clone())
            .or_insert_with(|| {
                let instance = self.next_instance.fetch_add(1, Ordering::Relaxed) + 1;
                let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
                let span = tracing::info_span!("room", meeting = %path.meeting, room = %path);
                svc.tracker
                    .spawn(Room::run(path.clone(), instance, svc.clone(), rx).instrument(span));
                RoomHandle { tx, instance }
            })
            .clone()
    }

    /// Removes the room if it is still the given instance.
    pub fn forget(&self, path: &RoomPath, instance: u64) {
        self.map.remove_if(path, |_, h| h.instance == instance);
    }

    /// The loaded room only, without loading it.
    pub fn get(&self, path: &RoomPath) -> Option<RoomHandle> {
        self.map.get(path).map(|h| h.clone())
    }

    /// Sends a command, loading the room if needed; retries once if the room was unloading.
    pub async fn send(&self, path: &RoomPath, svc: &Services, cmd: RoomCmd) -> bool {
        let mut cmd = cmd;
        for _ in 0..3 {
            let h = self.get_or_load(path, svc);
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
}
