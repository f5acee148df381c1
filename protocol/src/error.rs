//! The one error type of decoding: what was wrong with the bytes a client sent.

use crate::validate::UpdateError;
use thiserror::Error;

/// Why a frame could not be decoded. Every variant means "close the connection with 1002".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame is empty")]
    Empty,
    #[error("frame ends in the middle of a {0}")]
    Truncated(&'static str),
    #[error("variable-length integer is too long")]
    VarIntOverflow,
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    #[error("unknown sync message type {0}")]
    UnknownSyncType(u64),
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge { what: &'static str, len: u64, max: u64 },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The update or state vector failed [`crate::validate`]; nothing reached yrs.
    #[error("invalid Yjs update: {0}")]
    InvalidUpdate(#[from] UpdateError),
    /// yrs itself refused an update that passed validation.
    #[error("malformed Yjs update: {0}")]
    MalformedUpdate(String),
}
