//! What a change of the directory does to the live server, as a function of the change
//! ([`MeetingDiff`]) alone: the same code runs after a change made on this node and after one
//! heard from another node (`cluster::directory_sync`).
//!
//! - revoked tokens: their open sockets close (1008 "token revoked"; "meeting deleted" when
//!   the meeting went with them);
//! - notes made private: participants' sockets on group documents close (1008 "notes are
//!   private");
//! - a meeting deleted: its loaded rooms finish their writes and stop (groups first); a group
//!   that vanished: its room stops;
//! - a group closed or reopened: its loaded room refuses or accepts writes at once;
//! - titles, groups or closed flags changed: the meeting's plenary follows.
//!
//! Only the node that made the change takes the revision at close and loads the plenary to
//! follow it ([`Origin::Here`]); another node tells the plenary it has loaded, if any.

use crate::app::AppState;
use crate::connection::close::close_code;
use crate::directory::MeetingDiff;
use crate::room::RoomCmd;
use plenary_protocol::RoomPath;

/// Where the change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// On this node (its HTTP API, the demo seed).
    Here,
    /// On another node of the cluster: read back from the store.
    Elsewhere,
}

/// Runs what `d` asks of the sockets and rooms of this node. Call it after the directory took
/// the change (so that a connection registering meanwhile sees the new state when it checks
/// again), holding the directory's turn (so that effects run in the directory's order).
pub async fn apply(svc: &AppState, d: &MeetingDiff, origin: Origin) {
    let Some(m) = &d.meeting else { return };
    if d.is_empty() {
        return;
    }
    let revoked_code = if d.vanished {
        close_code::MEETING_DELETED
    } else {
        close_code::POLICY_VIOLATION
    };
    let private = d.notes_private == Some(true);
    let mut closed = 0;
    for entry in svc.conn.connections.iter() {
        let c = entry.value();
        if d.tokens_revoked.contains(&c.token) {
            c.kick.kick(revoked_code);
            closed += 1;
        } else if private && c.participant && &c.room.meeting == m && !c.room.is_plenary() {
            c.kick.kick(close_code::NOTES_PRIVATE);
            closed += 1;
        }
    }
    if d.vanished {
        let stopped = svc.room.rooms.stop(|p| &p.meeting == m).await;
        tracing::info!(meeting = %m, ?origin, sockets = closed, rooms = stopped, "meeting gone");
        return;
    }
    for g in &d.groups_vanished {
        let path = RoomPath::group(m.clone(), g.clone());
        svc.room.rooms.stop(|p| p == &path).await;
    }
    for (g, now_closed) in &d.closed_changed {
        if let Some(h) = svc.room.rooms.get(&RoomPath::group(m.clone(), g.clone())) {
            let _ = h.tx.send(RoomCmd::SetClosed { closed: *now_closed }).await;
        }
        tracing::info!(meeting = %m, group = %g, closed = *now_closed, ?origin, "group closed flag set");
        if *now_closed && origin == Origin::Here {
            crate::revisions::on_closed(svc, m, g);
        }
    }
    if d.plenary_follows() {
        let plenary = RoomPath::plenary(m.clone());
        match origin {
            Origin::Here => {
                svc.room.rooms.send(&plenary, RoomCmd::GroupMeta {}).await;
            }
            Origin::Elsewhere => {
                if let Some(h) = svc.room.rooms.get(&plenary) {
                    let _ = h.tx.send(RoomCmd::GroupMeta {}).await;
                }
            }
        }
    }
    if closed > 0 || !d.tokens_revoked.is_empty() {
        tracing::info!(meeting = %m, ?origin, revoked = d.tokens_revoked.len(), sockets = closed, "tokens revoked");
    }
}
