//! The WebSocket's server side on the wire, written by plenary rather than by a WebSocket
//! library: a message to many receivers is framed once ([`frame`]) and the same bytes go to every
//! socket (server frames are unmasked, so they are identical for every receiver). Reading what
//! clients send stays with tungstenite (masking, fragmentation, control frames, limits): see
//! `connection::socket`.

pub mod frame;

pub use frame::Frame;
