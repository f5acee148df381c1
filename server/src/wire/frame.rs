//! Server-to-client WebSocket frames (RFC 6455 §5.2), built once and shared. Pure: no I/O.
//!
//! A server's frames are never masked, so a frame's bytes do not depend on who receives it: the
//! room builds each message's frame once and every connection writes the same bytes.

use bytes::Bytes;

const FIN: u8 = 0x80;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// One whole WebSocket frame: header and payload, ready for the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    /// Where the payload starts (the header's length: 2, 4 or 10).
    payload_at: u8,
}

impl Frame {
    /// A final binary frame carrying `payload` (a y-protocol message).
    pub fn binary(payload: impl AsRef<[u8]>) -> Frame {
        Frame::with_opcode(OP_BINARY, payload.as_ref())
    }

    /// A close frame with `code` and `reason` (cut to the 123 bytes a control frame has room for).
    pub fn close(code: u16, reason: &str) -> Frame {
        let mut body = code.to_be_bytes().to_vec();
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        body.extend_from_slice(&reason.as_bytes()[..end]);
        Frame::with_opcode(OP_CLOSE, &body)
    }

    /// A ping with an empty payload.
    pub fn ping() -> Frame {
        Frame::with_opcode(OP_PING, &[])
    }

    fn with_opcode(opcode: u8, payload: &[u8]) -> Frame {
        let mut out = Vec::with_capacity(header_len(payload.len()) + payload.len());
        out.push(FIN | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n @ 126..=0xFFFF => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let payload_at = out.len() as u8;
        out.extend_from_slice(payload);
        Frame {
            bytes: Bytes::from(out),
            payload_at,
        }
    }

    /// The frame's bytes, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The message it carries.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload_at as usize..]
    }

    /// Its length on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The header's length for a payload of `n` bytes.
pub fn header_len(n: usize) -> usize {
    match n {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Where the payload of the whole frame at the start of `bytes` begins and ends, or `None` if
/// `bytes` does not start with a whole unmasked frame.
pub fn split(bytes: &[u8]) -> Option<(usize, usize)> {
    let b1 = *bytes.get(1)?;
    if b1 & 0x80 != 0 {
        return None;
    }
    let (at, len) = match b1 & 0x7F {
        126 => (4, u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize),
        127 => (
            10,
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2usize, n as usize),
    };
    let end = at.checked_add(len)?;
    (end <= bytes.len()).then_some((at, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::FrameHeader;

    /// Reads `bytes` back with tungstenite's own frame parser, as a client would.
    fn parse(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().expect("a whole header");
        let at = cursor.position() as usize;
        assert_eq!(at + len as usize, bytes.len(), "exactly one frame");
        (header, bytes[at..].to_vec())
    }

    #[test]
    fn every_length_class_reads_back_as_one_unmasked_final_binary_frame() {
        for n in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 200_000] {
            let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let frame = Frame::binary(&payload);
            let (header, body) = parse(frame.bytes());
            assert!(header.is_final, "{n}");
            assert_eq!(header.opcode, OpCode::Data(Data::Binary), "{n}");
            assert!(header.mask.is_none(), "{n}: server frames are unmasked");
            assert_eq!(body, payload, "{n}");
            assert_eq!(frame.payload(), &payload[..], "{n}");
            assert_eq!(frame.len(), header_len(n) + n, "{n}");
            assert_eq!(split(frame.bytes()), Some((header_len(n), frame.len())), "{n}");
        }
    }

    #[test]
    fn close_and_ping_frames_are_what_tungstenite_expects() {
        let (header, body) = parse(Frame::close(1013, "too slow").bytes());
        assert_eq!(
            header.opcode,
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Close)
        );
        assert_eq!(&body[..2], 1013u16.to_be_bytes());
        assert_eq!(&body[2..], b"too slow");
        let long = "é".repeat(100);
        let (_, body) = parse(Frame::close(1000, &long).bytes());
        assert!(body.len() <= 125, "a control frame's payload fits in 125 bytes");
        assert!(
            std::str::from_utf8(&body[2..]).is_ok(),
            "cut on a character boundary"
        );
        let (header, body) = parse(Frame::ping().bytes());
        assert_eq!(
            header.opcode,
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Ping)
        );
        assert!(body.is_empty());
    }

    #[test]
    fn split_refuses_what_is_not_a_whole_frame() {
        let frame = Frame::binary(vec![7u8; 300]);
        assert_eq!(
            split(&frame.bytes()[..frame.len() - 1]),
            None,
            "truncated payload"
        );
        assert_eq!(split(&frame.bytes()[..3]), None, "truncated header");
        assert_eq!(split(&[0x82, 0x81, 0, 0, 0, 0, 1]), None, "masked");
    }
}
