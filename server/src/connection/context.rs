//! What a connection needs: its room's context (to join), the connection settings, the table
//! of open connections (shutdown and revocation close them), the token budgets and the
//! shutdown signal. Cheap to clone.

use crate::auth::TokenHash;
use crate::config::Keepalive;
use crate::limits::TokenLimits;
use crate::metrics::Metrics;
use crate::room::{ConnId, RoomContext};
use dashmap::DashMap;
use plenary_protocol::{Limits, RoomPath};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::close::Kick;

/// How connections behave: from the configuration.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// Message size and update validation limits.
    pub limits: Limits,
    /// Frames and bytes a connection's outbox holds before it is closed with 1013.
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub max_messages_per_sec: u32,
    /// Open connections the server accepts (503 past it).
    pub max_connections: usize,
    /// Pings, and when a silent client is closed.
    pub keepalive: Keepalive,
}

/// An open connection as the server knows it: enough to close it (shutdown, revocation).
pub struct OpenConn {
    pub token: TokenHash,
    pub kick: Kick,
    pub room: RoomPath,
    /// Opened with the participant token (closed when the meeting's notes become private).
    pub participant: bool,
}

/// Every open connection with its token, so that shutdown can close them all with 1001 and a
/// revoked token's with 1008.
pub type OpenConns = Arc<DashMap<ConnId, OpenConn>>;

#[derive(Clone)]
pub struct ConnContext {
    pub room: RoomContext,
    pub settings: Arc<ConnSettings>,
    pub connections: OpenConns,
    /// Connections, messages and reply bytes per token.
    pub token_limits: Arc<TokenLimits>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when shutdown starts (before rooms flush).
    pub stopping: CancellationToken,
}
