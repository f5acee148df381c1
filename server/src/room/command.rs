//! What a room accepts: its commands, and a connection as it joins (its outbox, role, token).

use crate::auth::{Role, TokenHash};
use crate::cluster::rings::Ring;
use crate::limits::ReplyTicket;
use crate::plenary::merge::GroupConclusions;
use plenary_protocol::AwarenessEntry;
use tokio::sync::oneshot;
use yrs::{StateVector, Update};

use super::outbox::Outbox;

/// Identifies one WebSocket connection for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A connection as its room knows it.
pub struct Member {
    pub outbox: Outbox,
    pub role: Role,
    /// The token the connection was opened with (awareness is bounded per token).
    pub token: TokenHash,
    /// From the capability; a closed group turns it off for everybody at once.
    pub can_write: bool,
    /// The contract's `ack=1`: wants saved acknowledgements.
    pub wants_ack: bool,
}

/// Commands a room's owner task accepts.
pub enum RoomCmd {
    Join {
        conn: ConnId,
        member: Member,
        joined: oneshot::Sender<()>,
    },
    Leave {
        conn: ConnId,
    },
    /// Answered with a sync step 2, charged to the ticket.
    SyncStep1 {
        conn: ConnId,
        sv: StateVector,
        ticket: ReplyTicket,
    },
    /// A decoded sync step 2 or update, and its bytes (for the sandbox).
    Update {
        conn: ConnId,
        update: Update,
        raw: Vec<u8>,
    },
    Awareness {
        conn: ConnId,
        entries: Vec<AwarenessEntry>,
    },
    /// Answered with the awareness snapshot, charged to the ticket.
    QueryAwareness {
        conn: ConnId,
        ticket: ReplyTicket,
    },
    /// Awareness and follower counts from other nodes (`cluster::presence_relay`).
    RemotePresence(crate::cluster::presence::Inbound),
    /// Close (true) or reopen (false) a group's document for writing.
    SetClosed {
        closed: bool,
    },
    /// Plenary rooms: a group's current conclusions.
    GroupConclusions(GroupConclusions),
    /// Plenary rooms: the meeting's title, short title, groups, their titles or closed flags
    /// changed. The room re-reads them from the directory (so commands sent by racing requests
    /// cannot apply an older state last) and merges them into the plenary document.
    GroupMeta {},
    /// Plenary rooms: this node took the meeting's plenary lease. The room catches up with the
    /// stored plenary, re-reads every group's durable conclusions (as a load does) and merges.
    LeaseGained,
    /// Plenary rooms: the document as JSON (for exports).
    Inspect {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// Another node committed updates of this document (its ring on the doorbell): the room
    /// applies and relays what follows its watermark, or reads the log to fill a gap.
    Remote(Ring),
    /// The store's head of this document (the node's periodic check): a room behind it reads
    /// the log.
    StoreHead {
        head: i64,
    },
    /// Finish in-flight writes, close connections with 1001 and stop.
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

impl RoomCmd {
    /// News from other nodes (not activity of this node's members).
    pub fn is_replication(&self) -> bool {
        matches!(self, RoomCmd::Remote(_) | RoomCmd::StoreHead { .. })
    }

    /// Commands that must reach the document even if this room instance is unloading: a
    /// successor takes them (plenary input, exports, closed flags, shutdown acks aside).
    pub fn outlives_its_room(&self) -> bool {
        matches!(
            self,
            RoomCmd::GroupConclusions(_)
                | RoomCmd::GroupMeta { .. }
                | RoomCmd::LeaseGained
                | RoomCmd::Inspect { .. }
                | RoomCmd::SetClosed { .. }
        )
    }
}
