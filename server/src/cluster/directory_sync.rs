//! The directory kept current on every node (issue 13, design point 3; the contract's "Several
//! nodes": what one node does, every node shows within a second).
//!
//! After a change to a meeting commits, its node says so on [`Channel::Directory`]:
//! `{"node": N, "meeting": M}` ([`publish`]). Every node's listener ([`spawn`]) drops its own
//! messages, gathers what arrives within [`COALESCE`], reads those meetings from the store and
//! hands what changed to `meetings::effects`, the code a change made on this node runs too:
//! closed groups refuse writes on this node's sockets, revoked tokens' sockets close, a deleted
//! meeting's sockets close and its rooms stop, plenaries follow titles and groups. On
//! [`Heard::Resync`] and a lagging receiver it reads every meeting instead. Every
//! [`FULL_RELOAD`] it reads the store's directory epoch (`Store::directory_epoch`, one row that
//! every transaction changing meetings, groups or tokens moves) and reads every meeting only if
//! the epoch moved since its last full read: a lost message costs seconds, never a directory
//! that stays wrong, and a quiet directory costs one small query per node every 5 s, not a
//! read of every meeting and token.
//!
//! A request that names a meeting (or group) this node does not know yet reads it from the
//! store once before it is answered ([`catch_up`], at most [`MISS_READS_PER_SEC`] a second), so
//! that a meeting created on one node is usable on every other at once.
//!
//! Every read and apply happens in the directory's turn (`Directory::turn`), which this node's
//! own changes hold from their store write on: the directory never takes an older state after a
//! newer one.

use super::transport::{Channel, Heard};
use crate::app::AppState;
use crate::directory::{MeetingDiff, MeetingEntry};
use crate::meetings::effects::{self, Origin};
use crate::store::StoreError;
use plenary_protocol::{GroupId, MeetingId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Messages arriving within this window after the first are handled together.
pub const COALESCE: Duration = Duration::from_millis(50);
/// The directory epoch is read this often, and every meeting if it moved (messages lost
/// without a resync).
pub const FULL_RELOAD: Duration = Duration::from_secs(5);
/// After a failed read, the next try.
const RETRY: Duration = Duration::from_secs(1);
/// Reads of unknown meetings that requests may cause, a second (random ids must not become a
/// flood of queries).
pub const MISS_READS_PER_SEC: f64 = 20.0;

/// The payload on [`Channel::Directory`]: meeting `meeting` changed on node `node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub node: String,
    pub meeting: String,
}

pub fn encode(node: &str, meeting: &MeetingId) -> String {
    serde_json::to_string(&Changed {
        node: node.to_owned(),
        meeting: meeting.to_string(),
    })
    .unwrap_or_default()
}

/// The sender and the meeting, or `None` for a payload this version cannot read.
pub fn decode(payload: &str) -> Option<(String, MeetingId)> {
    let c: Changed = serde_json::from_str(payload).ok()?;
    let m = MeetingId::parse(&c.meeting).ok()?;
    Some((c.node, m))
}

/// Tells the other nodes that meeting `m` changed (after the change committed). In the
/// background: a message that is lost is caught by their periodic read.
pub fn publish(svc: &AppState, m: &MeetingId) {
    let cluster = svc.room.cluster.clone();
    if !cluster.shared_store {
        return;
    }
    let payload = encode(&cluster.node, m);
    tokio::spawn(async move {
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            cluster.transport.send(Channel::Directory, vec![payload]),
        )
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "telling other nodes of a directory change failed"),
            Err(_) => tracing::warn!("telling other nodes of a directory change timed out"),
        }
    });
}

/// Meeting `m` with its tokens, as the store holds it now.
pub async fn read(svc: &AppState, m: &MeetingId) -> Result<Option<MeetingEntry>, StoreError> {
    Ok(svc
        .room
        .store
        .meeting(m)
        .await?
        .map(|(record, tokens)| MeetingEntry { record, tokens }))
}

/// Reads meeting `m` from the store into the directory and runs the effects of what changed.
/// The caller holds the directory's turn.
pub async fn reload_meeting(
    svc: &AppState,
    m: &MeetingId,
    origin: Origin,
) -> Result<MeetingDiff, StoreError> {
    let stored = read(svc, m).await?;
    let d = svc.room.directory.replace(m, stored);
    effects::apply(svc, &d, origin).await;
    Ok(d)
}

/// Reads every meeting into the directory and runs the effects of what changed; returns how
/// many meetings changed. The caller holds the directory's turn.
pub async fn reload_all(svc: &AppState) -> Result<usize, StoreError> {
    let all = svc.room.store.meetings().await?;
    let diffs = svc.room.directory.replace_all(
        all.into_iter()
            .map(|(record, tokens)| MeetingEntry { record, tokens })
            .collect(),
    );
    for d in &diffs {
        effects::apply(svc, d, Origin::Elsewhere).await;
    }
    Ok(diffs.len())
}

/// A budget of store reads a second, with a burst of one second's worth.
struct Budget {
    tokens: f64,
    last: Option<std::time::Instant>,
}

impl Budget {
    fn take(&mut self, per_sec: f64, now: std::time::Instant) -> bool {
        let elapsed = self
            .last
            .map_or(per_sec, |l| now.duration_since(l).as_secs_f64() * per_sec);
        self.tokens = (self.tokens + elapsed).min(per_sec);
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

static MISS_BUDGET: std::sync::Mutex<Budget> = std::sync::Mutex::new(Budget {
    tokens: 0.0,
    last: None,
});

/// Before a request about meeting `m` (and group `g`) is answered: if this node does not know
/// it, it is read from the store once (another node may have just created it). True if the
/// directory holds it afterwards.
pub async fn catch_up(svc: &AppState, m: &MeetingId, g: Option<&GroupId>) -> bool {
    let dir = &svc.room.directory;
    let known = || match g {
        Some(g) => dir.group_exists_in(m, g),
        None => dir.meeting(m).is_some(),
    };
    if known() || !svc.room.cluster.shared_store {
        return known();
    }
    let allowed = MISS_BUDGET
        .lock()
        .map(|mut b| b.take(MISS_READS_PER_SEC, std::time::Instant::now()))
        .unwrap_or(false);
    if !allowed {
        return false;
    }
    let _turn = dir.turn().await;
    // another request may have read it meanwhile
    if known() {
        return true;
    }
    if let Err(e) = reload_meeting(svc, m, Origin::Elsewhere).await {
        tracing::warn!(meeting = %m, error = %e, "reading an unknown meeting from the store failed");
    }
    known()
}

/// Starts the listener (on a store that other nodes share); it stops when shutdown starts.
pub fn spawn(svc: &AppState) {
    if !svc.room.cluster.shared_store {
        return;
    }
    let heard = svc.room.cluster.transport.subscribe();
    let svc = svc.clone();
    let tracker = svc.room.tracker.clone();
    tracker.spawn(async move {
        let stop = svc.conn.stopping.clone();
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = listen(&svc, heard) => {}
        }
    });
}

/// What the listener has to read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub meetings: BTreeSet<MeetingId>,
    /// Every meeting, whatever the epoch says (a resync, a lagging receiver).
    pub everything: bool,
    /// Every meeting if the directory epoch moved since the last full read (the periodic read).
    pub periodic: bool,
    /// When to read it.
    pub due: Option<Instant>,
}

impl Pending {
    /// What was heard, from the node `own` is (pure).
    pub fn hear(&mut self, heard: Result<Heard, RecvError>, own: &str, now: Instant) -> bool {
        match heard {
            Ok(Heard::Message {
                channel: Channel::Directory,
                payload,
            }) => match decode(&payload) {
                Some((node, m)) if node != own => {
                    self.meetings.insert(m);
                }
                _ => return true,
            },
            Ok(Heard::Message { .. }) => return true,
            Ok(Heard::Resync) | Err(RecvError::Lagged(_)) => self.everything = true,
            Err(RecvError::Closed) => return false,
        }
        self.due.get_or_insert(now + COALESCE);
        true
    }

    /// Whether every meeting must be read, given the store's directory epoch now and the one
    /// the last full read saw (pure). A store without an epoch is always read.
    pub fn needs_full_read(&self, epoch: Option<i64>, seen: Option<i64>) -> bool {
        self.everything || (self.periodic && (epoch.is_none() || epoch != seen))
    }
}

async fn listen(svc: &AppState, mut heard: tokio::sync::broadcast::Receiver<Heard>) {
    let own = svc.room.cluster.node.clone();
    let mut pending = Pending::default();
    // The epoch the last full read saw (none yet: the first periodic read reads everything).
    let mut seen = None;
    let mut full = tokio::time::interval(FULL_RELOAD);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    full.tick().await; // the first tick is immediate: the directory was just loaded
    loop {
        let due = pending.due;
        tokio::select! {
            h = heard.recv() => {
                if !pending.hear(h, &own, Instant::now()) {
                    return;
                }
            }
            _ = full.tick() => {
                pending.periodic = true;
                pending.due.get_or_insert(Instant::now());
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let work = std::mem::take(&mut pending);
                if let Err(retry) = read_pending(svc, work, &mut seen).await {
                    pending.meetings.extend(retry.meetings);
                    pending.everything |= retry.everything;
                    pending.periodic |= retry.periodic;
                    pending.due = Some(Instant::now() + RETRY);
                }
            }
        }
    }
}

/// Reads what is pending; gives back what failed. `seen`: the directory epoch of the last
/// full read, updated by a full read.
async fn read_pending(svc: &AppState, work: Pending, seen: &mut Option<i64>) -> Result<(), Pending> {
    let _turn = svc.room.directory.turn().await;
    if work.everything || work.periodic {
        // Read before every meeting: a change committed after this read moves it again, so the
        // next periodic read does not miss it.
        let epoch = match svc.room.store.directory_epoch().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "reading the directory epoch failed; retrying");
                return Err(work);
            }
        };
        if work.needs_full_read(epoch, *seen) {
            return match reload_all(svc).await {
                Ok(n) => {
                    *seen = epoch;
                    if n > 0 {
                        tracing::info!(meetings = n, "directory changed on other nodes (full read)");
                    }
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the directory failed; retrying");
                    Err(work)
                }
            };
        }
    }
    read_meetings(svc, work.meetings).await
}

/// Reads each of `meetings`; gives back those that failed.
async fn read_meetings(svc: &AppState, meetings: BTreeSet<MeetingId>) -> Result<(), Pending> {
    let mut failed = Pending::default();
    for m in meetings {
        match reload_meeting(svc, &m, Origin::Elsewhere).await {
            Ok(d) if !d.is_empty() => tracing::debug!(meeting = %m, "meeting changed on another node"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(meeting = %m, error = %e, "reading a changed meeting failed; retrying");
                failed.meetings.insert(m);
            }
        }
    }
    if failed.meetings.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

#[cfg(test)]
mod tests;
