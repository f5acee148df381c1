//! A connection's outbound queue as its room sees it: bounded, never blocking the room.
//! When it is full the connection is told to close with 1013 (try again later) rather than
//! letting the room stall or memory grow.

use super::Frame;
use futures_util::task::AtomicWaker;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Close codes the room or server may ask a connection to close with.
pub mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const SERVICE_RESTART: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const TOO_BIG: u16 = 1009;
    /// Sent as 1011 with the reason "document quarantined" (a stored document that does not
    /// load); a distinct value inside the server only.
    pub const QUARANTINED: u16 = 4011;
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

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    pub kick: Kick,
}

/// What became of a frame handed to an outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The queue was full: the connection has been told to close with 1013.
    TooSlow,
    /// The connection is gone.
    Closed,
}

impl Outbox {
    pub fn new(capacity: usize) -> (Outbox, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Outbox {
                tx,
                kick: Kick::default(),
            },
            rx,
        )
    }

    pub fn send(&self, frame: Frame) -> Delivery {
        match self.tx.try_send(frame) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.kick(close_code::TRY_AGAIN_LATER);
                Delivery::TooSlow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }
}
