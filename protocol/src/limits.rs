//! Bounds applied while decoding untrusted input.

use crate::validate::UpdateLimits;

/// Upper bounds for decoding. Every allocation made while decoding is bounded by one of these
/// or by the length of the frame itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket message accepted (the contract's default is 1 MiB).
    pub max_message_bytes: usize,
    /// Most client entries in one awareness update.
    pub max_awareness_clients: usize,
    /// Largest JSON state of one awareness entry.
    pub max_awareness_state_bytes: usize,
    /// Bounds of Yjs updates and state vectors (see [`crate::validate`]).
    pub update: UpdateLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1_048_576,
            max_awareness_clients: 1_024,
            max_awareness_state_bytes: 64 * 1024,
            update: UpdateLimits::default(),
        }
    }
}
