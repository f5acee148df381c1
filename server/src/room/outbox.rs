//! A connection's outbound queue as its room sees it: bounded in frames and in bytes, never
//! blocking the room. When it is full the connection is told to close with 1013 (try again
//! later) rather than letting the room stall or memory grow. One frame is always admitted into
//! an empty queue, so an answer larger than the byte bound (a whole document) still leaves.

use crate::connection::close::{close_code, Kick};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames the room sends, each encoded once and shared by every receiver.
pub type Frame = bytes::Bytes;

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    pub kick: Kick,
    /// Bytes queued and not yet written; shared with the connection, which gives them back.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
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
    pub fn new(capacity: usize, max_bytes: usize) -> (Outbox, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Outbox {
                tx,
                kick: Kick::default(),
                queued: Arc::default(),
                max_bytes,
            },
            rx,
        )
    }

    pub fn send(&self, frame: Frame) -> Delivery {
        let len = frame.len();
        // Only the room adds, so a load then an add cannot admit two frames past the bound.
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(len) > self.max_bytes {
            self.kick.kick(close_code::TRY_AGAIN_LATER);
            return Delivery::TooSlow;
        }
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.queued.fetch_add(len, Ordering::AcqRel);
                Delivery::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick.kick(close_code::TRY_AGAIN_LATER);
                Delivery::TooSlow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    /// The connection wrote `bytes` of what was queued.
    pub fn written(&self, bytes: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(bytes))
            });
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn bytes_are_bounded_but_an_empty_queue_takes_any_frame() {
        let (out, _rx) = Outbox::new(100, 1000);
        // larger than the bound, into an empty queue: admitted
        assert_eq!(out.send(Bytes::from(vec![0; 5000])), Delivery::Queued);
        assert_eq!(out.queued_bytes(), 5000);
        out.written(5000);
        assert_eq!(out.send(Bytes::from(vec![0; 600])), Delivery::Queued);
        assert_eq!(out.send(Bytes::from(vec![0; 300])), Delivery::Queued);
        assert!(out.kick.code().is_none());
        // 900 queued: 200 more would pass 1000
        assert_eq!(out.send(Bytes::from(vec![0; 200])), Delivery::TooSlow);
        assert_eq!(out.kick.code(), Some(close_code::TRY_AGAIN_LATER));
    }
}
