//! `plenary-protocol`: the pure half of plenary.
//!
//! Everything here is free of I/O, async and global state so that it can be unit-tested and
//! fuzzed on its own:
//!
//! - [`message`]: decoding of untrusted [y-protocols] frames (sync step 1 / step 2 / update,
//!   awareness, query-awareness, auth, and plenary's saved acknowledgement) into typed messages
//!   and encoding back. Decoding never panics and checks every length against the bytes left
//!   and the configured [`Limits`] before allocating.
//! - [`validate`]: a complete structural check of untrusted v1 Yjs updates and state vectors
//!   (counts, nesting, clocks, UTF-8, content refs) that runs before any byte reaches yrs.
//! - [`ids`]: meeting, group and room identifiers, validated once at the edge.
//! - [`layout`]: the names of the Yjs root types of group and plenary documents, and the
//!   documented plenary layout for third-party clients.
//!
//! [y-protocols]: https://github.com/yjs/y-protocols/blob/master/PROTOCOL.md

pub mod error;
pub mod ids;
pub mod layout;
pub mod limits;
pub mod message;
pub mod validate;
mod varint;

pub use error::DecodeError;
pub use ids::{DocKind, GroupId, IdError, MeetingId, RoomPath};
pub use limits::Limits;
pub use message::{AwarenessEntry, AwarenessUpdate, Message};
pub use validate::{validate_state_vector, validate_update, UpdateError, UpdateLimits};
