//! How a connection is told to close, and with what: the close codes (the contract's, and the
//! internal ones that carry a distinct reason), the lock-free [`Kick`] the room, shutdown and
//! meeting management use to close a connection, and the close frame each code is sent as.

use crate::wire::Frame;
use futures_util::task::AtomicWaker;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// Close codes the room or server may ask a connection to close with.
pub mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const SERVICE_RESTART: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    /// Sent as 1011 with the reason "document quarantined" (a stored document that does not
    /// load); a distinct value inside the server only.
    pub const QUARANTINED: u16 = 4011;
    /// Internal: sent on the wire as 1008 with the reason "meeting deleted".
    pub const MEETING_DELETED: u16 = 4008;
    /// Internal: sent on the wire as 1008 with the reason "notes are private" (a participant's
    /// socket on a group document when the meeting's notes become private).
    pub const NOTES_PRIVATE: u16 = 4009;
}

/// The code and reason a close code is sent with: internal codes become the contract's code
/// with their own reason.
pub fn on_the_wire(code: u16) -> (u16, &'static str) {
    use close_code::*;
    match code {
        QUARANTINED => (INTERNAL_ERROR, "document quarantined"),
        MEETING_DELETED => (POLICY_VIOLATION, "meeting deleted"),
        NOTES_PRIVATE => (POLICY_VIOLATION, "notes are private"),
        PROTOCOL_ERROR => (code, "message could not be decoded"),
        TOO_BIG => (code, "message too big"),
        TRY_AGAIN_LATER => (code, "too slow to keep up; reconnect"),
        GOING_AWAY => (code, "server shutting down"),
        SERVICE_RESTART => (code, "room restarting; reconnect"),
        INTERNAL_ERROR => (code, "internal error"),
        POLICY_VIOLATION => (code, "token revoked"),
        _ => (code, ""),
    }
}

/// The close frame for a code.
pub fn close_frame(code: u16) -> Frame {
    let (code, reason) = on_the_wire(code);
    Frame::close(code, reason)
}

#[derive(Default)]
struct KickState {
    code: AtomicU16,
    waker: AtomicWaker,
}

/// Tells a connection's task to close with a code. Lock-free: the connection polls it on every
/// turn of its loop, so it must cost an atomic load, not a lock. One task waits on it.
#[derive(Clone, Default)]
pub struct Kick(Arc<KickState>);

impl Kick {
    /// The first code wins.
    pub fn kick(&self, code: u16) {
        let _ = self
            .0
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.0.waker.wake();
    }

    pub fn code(&self) -> Option<u16> {
        match self.0.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Resolves once kicked.
    pub fn kicked(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.code().is_some() {
                return std::task::Poll::Ready(());
            }
            self.0.waker.register(cx.waker());
            if self.code().is_some() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_codes_go_out_as_the_contracts_codes_with_their_reason() {
        assert_eq!(
            on_the_wire(close_code::QUARANTINED),
            (1011, "document quarantined")
        );
        assert_eq!(
            on_the_wire(close_code::MEETING_DELETED),
            (1008, "meeting deleted")
        );
        assert_eq!(
            on_the_wire(close_code::NOTES_PRIVATE),
            (1008, "notes are private")
        );
        assert_eq!(on_the_wire(close_code::POLICY_VIOLATION), (1008, "token revoked"));
        assert_eq!(on_the_wire(1013).0, 1013);
    }

    #[test]
    fn the_first_kick_wins() {
        let k = Kick::default();
        assert_eq!(k.code(), None);
        k.kick(close_code::TRY_AGAIN_LATER);
        k.kick(close_code::GOING_AWAY);
        assert_eq!(k.code(), Some(close_code::TRY_AGAIN_LATER));
    }
}
