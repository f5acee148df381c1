//! y-websocket messages: decode untrusted frames, encode outgoing ones.
//!
//! Wire format ([y-protocols]): a var-uint message type, then
//! - `0` sync: var-uint sub-type (`0` step 1 + var-uint8-array state vector, `1` step 2 +
//!   var-uint8-array update, `2` update + var-uint8-array update);
//! - `1` awareness: var-uint8-array holding var-uint count, then per client var-uint id,
//!   var-uint clock, var-string JSON state (`null` = removed);
//! - `2` auth: var-uint `0` (permission denied) + var-string reason, or `1` (granted);
//! - `3` query-awareness: nothing;
//! - `100` saved acknowledgement (plenary's extension): var-uint8-array state vector (v1).
//!
//! One WebSocket frame carries one message; trailing bytes are an error.
//!
//! [y-protocols]: https://github.com/yjs/y-protocols/blob/master/PROTOCOL.md

use crate::validate::{state_vector_entries, validate_update};
use crate::varint::{write_buf, write_var_u64, Cursor};
use crate::{DecodeError, Limits};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{StateVector, Update};

pub const MSG_SYNC: u64 = 0;
pub const MSG_AWARENESS: u64 = 1;
pub const MSG_AUTH: u64 = 2;
pub const MSG_QUERY_AWARENESS: u64 = 3;
/// plenary's saved acknowledgement (contract: "message of type 100").
pub const MSG_SAVED_ACK: u64 = 100;

pub const SYNC_STEP_1: u64 = 0;
pub const SYNC_STEP_2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

const AUTH_PERMISSION_DENIED: u64 = 0;
const AUTH_PERMISSION_GRANTED: u64 = 1;

/// One decoded y-websocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    SyncStep1(StateVector),
    /// A v1-encoded Yjs update (not yet validated: [`decode_update`] validates and decodes it).
    SyncStep2(Vec<u8>),
    Update(Vec<u8>),
    Awareness(AwarenessUpdate),
    QueryAwareness,
    /// `None` = permission granted, `Some(reason)` = permission denied.
    Auth(Option<String>),
    SavedAck(StateVector),
}

/// An awareness update, in the order the entries were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwarenessUpdate {
    pub entries: Vec<AwarenessEntry>,
}

/// One client's awareness state. `state` is the raw JSON text; `"null"` means "removed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwarenessEntry {
    pub client_id: u64,
    pub clock: u32,
    pub state: String,
}

impl AwarenessEntry {
    /// y-protocols encodes a removed state as the JSON text `null`.
    pub fn is_removal(&self) -> bool {
        self.state.trim() == "null"
    }
}

impl Message {
    /// Decodes exactly one message from a frame.
    pub fn decode(frame: &[u8], limits: &Limits) -> Result<Message, DecodeError> {
        if frame.is_empty() {
            return Err(DecodeError::Empty);
        }
        if frame.len() > limits.max_message_bytes {
            return Err(DecodeError::TooLarge {
                what: "message",
                len: frame.len() as u64,
                max: limits.max_message_bytes as u64,
            });
        }
        let mut c = Cursor::new(frame);
        let msg = match c.read_var_u64("message type")? {
            MSG_SYNC => match c.read_var_u64("sync type")? {
                SYNC_STEP_1 => Message::SyncStep1(decode_state_vector_from(&mut c, limits)?),
                SYNC_STEP_2 => Message::SyncStep2(c.read_buf("update", usize::MAX)?.to_vec()),
                SYNC_UPDATE => Message::Update(c.read_buf("update", usize::MAX)?.to_vec()),
                other => return Err(DecodeError::UnknownSyncType(other)),
            },
            MSG_AWARENESS => {
                let payload = c.read_buf("awareness update", usize::MAX)?;
                Message::Awareness(decode_awareness(payload, limits)?)
            }
            MSG_AUTH => match c.read_var_u64("auth type")? {
                AUTH_PERMISSION_DENIED => {
                    Message::Auth(Some(c.read_string("auth reason", usize::MAX)?.to_owned()))
                }
                _ => Message::Auth(None),
            },
            MSG_QUERY_AWARENESS => Message::QueryAwareness,
            MSG_SAVED_ACK => Message::SavedAck(decode_state_vector_from(&mut c, limits)?),
            other => return Err(DecodeError::UnknownMessageType(other)),
        };
        if !c.is_empty() {
            return Err(DecodeError::TrailingBytes(c.remaining()));
        }
        Ok(msg)
    }

    /// Encodes this message as one frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::SyncStep1(sv) => encode_sync_step1(sv),
            Message::SyncStep2(update) => encode_sync(SYNC_STEP_2, update),
            Message::Update(update) => encode_sync(SYNC_UPDATE, update),
            Message::Awareness(update) => encode_awareness(update),
            Message::QueryAwareness => vec![MSG_QUERY_AWARENESS as u8],
            Message::Auth(reason) => encode_auth(reason.as_deref()),
            Message::SavedAck(sv) => encode_saved_ack(sv),
        }
    }
}

fn decode_state_vector_from(c: &mut Cursor<'_>, limits: &Limits) -> Result<StateVector, DecodeError> {
    let payload = c.read_buf("state vector", usize::MAX)?;
    decode_state_vector_with(payload, limits)
}

/// Decodes a v1 state vector (var-uint count, then (client, clock) var-uint pairs) within the
/// default [`Limits`].
pub fn decode_state_vector(payload: &[u8]) -> Result<StateVector, DecodeError> {
    decode_state_vector_with(payload, &Limits::default())
}

/// Decodes a v1 state vector after [`crate::validate::validate_state_vector`]: the count is bounded by the payload
/// and `limits.update.max_state_vector_entries`, client ids fit 53 bits, clocks fit `u32`.
/// Built entry by entry, so yrs' `StateVector::decode_v1` never sees untrusted bytes.
pub fn decode_state_vector_with(payload: &[u8], limits: &Limits) -> Result<StateVector, DecodeError> {
    let mut sv = StateVector::default();
    for (client, clock) in state_vector_entries(payload, limits)? {
        sv.set_max(yrs::block::ClientID::new(client), clock);
    }
    Ok(sv)
}

/// Decodes the payload of an awareness message.
pub fn decode_awareness(payload: &[u8], limits: &Limits) -> Result<AwarenessUpdate, DecodeError> {
    let mut c = Cursor::new(payload);
    let count = c.read_var_u64("awareness client count")?;
    if count > limits.max_awareness_clients as u64 {
        return Err(DecodeError::TooLarge {
            what: "awareness client count",
            len: count,
            max: limits.max_awareness_clients as u64,
        });
    }
    // Each entry takes at least three bytes.
    if count > (c.remaining() / 3) as u64 {
        return Err(DecodeError::Truncated("awareness update"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let client_id = c.read_var_u64("awareness client id")?;
        let clock = c.read_var_u32("awareness clock")?;
        let state = c
            .read_string("awareness state", limits.max_awareness_state_bytes)?
            .to_owned();
        entries.push(AwarenessEntry {
            client_id,
            clock,
            state,
        });
    }
    if !c.is_empty() {
        return Err(DecodeError::TrailingBytes(c.remaining()));
    }
    Ok(AwarenessUpdate { entries })
}

/// Validates an untrusted v1 Yjs update with [`validate_update`] (default [`Limits`]), then
/// decodes it with yrs.
pub fn decode_update(bytes: &[u8]) -> Result<Update, DecodeError> {
    decode_update_with(bytes, &Limits::default())
}

/// [`decode_update`] with explicit limits.
///
/// Only bytes that passed the validator reach `Update::decode_v1`. The decode still runs under
/// `catch_unwind` as a second line: should yrs panic on something the validator let through,
/// untrusted bytes yield an error rather than unwind into the caller. (A stack overflow could
/// not be caught; the validator's nesting bound is what prevents one.)
pub fn decode_update_with(bytes: &[u8], limits: &Limits) -> Result<Update, DecodeError> {
    validate_update(bytes, limits)?;
    match std::panic::catch_unwind(|| Update::decode_v1(bytes)) {
        Ok(r) => r.map_err(|e| DecodeError::MalformedUpdate(e.to_string())),
        Err(_) => Err(DecodeError::MalformedUpdate(
            "the update decoder rejected these bytes".into(),
        )),
    }
}

fn encode_sync(kind: u64, update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(update.len() + 8);
    write_var_u64(&mut out, MSG_SYNC);
    write_var_u64(&mut out, kind);
    write_buf(&mut out, update);
    out
}

/// `sync update` frame around a v1 update.
pub fn encode_update(update: &[u8]) -> Vec<u8> {
    encode_sync(SYNC_UPDATE, update)
}

/// `sync step 2` frame around a v1 update.
pub fn encode_sync_step2(update: &[u8]) -> Vec<u8> {
    encode_sync(SYNC_STEP_2, update)
}

pub fn encode_sync_step1(sv: &StateVector) -> Vec<u8> {
    encode_sync(SYNC_STEP_1, &sv.encode_v1())
}

pub fn encode_awareness(update: &AwarenessUpdate) -> Vec<u8> {
    let mut payload = Vec::new();
    write_var_u64(&mut payload, update.entries.len() as u64);
    for e in &update.entries {
        write_var_u64(&mut payload, e.client_id);
        write_var_u64(&mut payload, u64::from(e.clock));
        write_buf(&mut payload, e.state.as_bytes());
    }
    let mut out = Vec::with_capacity(payload.len() + 4);
    write_var_u64(&mut out, MSG_AWARENESS);
    write_buf(&mut out, &payload);
    out
}

/// `auth` frame: `Some(reason)` is permission denied, `None` permission granted.
pub fn encode_auth(reason: Option<&str>) -> Vec<u8> {
    let mut out = vec![MSG_AUTH as u8];
    match reason {
        Some(reason) => {
            write_var_u64(&mut out, AUTH_PERMISSION_DENIED);
            write_buf(&mut out, reason.as_bytes());
        }
        None => write_var_u64(&mut out, AUTH_PERMISSION_GRANTED),
    }
    out
}

/// The contract's saved acknowledgement: type 100 + var-uint8-array of a v1 state vector.
pub fn encode_saved_ack(sv: &StateVector) -> Vec<u8> {
    let mut out = Vec::new();
    write_var_u64(&mut out, MSG_SAVED_ACK);
    write_buf(&mut out, &sv.encode_v1());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{Doc, GetString, Text, Transact};

    fn limits() -> Limits {
        Limits::default()
    }

    fn sample_update() -> Vec<u8> {
        let doc = Doc::with_client_id(7);
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "hello");
        txn.encode_update_v1()
    }

    #[test]
    fn every_message_round_trips() {
        let mut sv = StateVector::default();
        sv.set_max(yrs::block::ClientID::new(7), 5);
        let msgs = vec![
            Message::SyncStep1(sv.clone()),
            Message::SyncStep2(sample_update()),
            Message::Update(sample_update()),
            Message::Awareness(AwarenessUpdate {
                entries: vec![AwarenessEntry {
                    client_id: 42,
                    clock: 3,
                    state: "{\"a\":1}".into(),
                }],
            }),
            Message::QueryAwareness,
            Message::Auth(Some("permission denied".into())),
            Message::Auth(None),
            Message::SavedAck(sv),
        ];
        for m in msgs {
            assert_eq!(Message::decode(&m.encode(), &limits()).unwrap(), m);
        }
    }

    #[test]
    fn empty_frame_is_rejected() {
        assert_eq!(Message::decode(&[], &limits()), Err(DecodeError::Empty));
    }

    #[test]
    fn oversized_frame_is_rejected_before_parsing() {
        let l = Limits {
            max_message_bytes: 4,
            ..Limits::default()
        };
        assert!(matches!(
            Message::decode(&[0, 0, 0, 0, 0], &l),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_types_are_errors() {
        assert_eq!(
            Message::decode(&[9], &limits()),
            Err(DecodeError::UnknownMessageType(9))
        );
        assert_eq!(
            Message::decode(&[0, 7, 0], &limits()),
            Err(DecodeError::UnknownSyncType(7))
        );
    }

    #[test]
    fn trailing_bytes_are_errors() {
        let mut f = Message::QueryAwareness.encode();
        f.push(1);
        assert_eq!(Message::decode(&f, &limits()), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn awareness_count_is_bounded_by_limit_and_payload() {
        // claims 1000 entries with a 3-byte payload
        let mut payload = Vec::new();
        write_var_u64(&mut payload, 1000);
        let mut frame = vec![1];
        write_buf(&mut frame, &payload);
        assert!(Message::decode(&frame, &limits()).is_err());
        let mut payload = Vec::new();
        write_var_u64(&mut payload, 5000);
        let mut frame = vec![1];
        write_buf(&mut frame, &payload);
        assert!(matches!(
            Message::decode(&frame, &limits()),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn removal_is_recognised() {
        let e = AwarenessEntry {
            client_id: 1,
            clock: 2,
            state: "null".into(),
        };
        assert!(e.is_removal());
    }

    #[test]
    fn garbage_update_payload_is_a_typed_error() {
        assert!(decode_update(&[0xff, 0xff, 0xff]).is_err());
        let u = decode_update(&sample_update()).unwrap();
        let doc = Doc::new();
        doc.transact_mut().apply_update(u).unwrap();
        assert_eq!(doc.get_or_insert_text("t").get_string(&doc.transact()), "hello");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes, &Limits::default());
        }

        #[test]
        fn update_validation_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_update(&bytes);
        }

        #[test]
        fn awareness_round_trips(id in any::<u64>(), clock in any::<u32>(), s in "[ -~]{0,40}") {
            let m = Message::Awareness(AwarenessUpdate { entries: vec![AwarenessEntry { client_id: id, clock, state: s }] });
            prop_assert_eq!(Message::decode(&m.encode(), &Limits::default()).unwrap(), m);
        }
    }
}
