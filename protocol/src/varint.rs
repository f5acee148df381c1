//! A bounds-checked cursor over lib0 encodings (var-uint, var-uint8-array, var-string).
//! See <https://github.com/dmonad/lib0/blob/main/decoding.js>.

use crate::DecodeError;

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn read_u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// lib0 `readVarUint`: 7 bits per byte, little-endian, high bit = continue.
    /// Values above `u64::MAX` (more than 10 bytes) are rejected.
    pub(crate) fn read_var_u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.read_u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift >= 64 || (shift == 63 && bits > 1) {
                return Err(DecodeError::VarIntOverflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    pub(crate) fn read_var_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.read_var_u64(what)?;
        u32::try_from(v).map_err(|_| DecodeError::VarIntOverflow)
    }

    /// A length read from the wire, checked against the bytes left and a maximum.
    pub(crate) fn read_len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.read_var_u64(what)?;
        let max_u64 = u64::try_from(max).unwrap_or(u64::MAX);
        if len > max_u64 {
            return Err(DecodeError::TooLarge {
                what,
                len,
                max: max_u64,
            });
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::VarIntOverflow)?;
        if len > self.remaining() {
            return Err(DecodeError::Truncated(what));
        }
        Ok(len)
    }

    /// lib0 `readVarUint8Array`.
    pub(crate) fn read_buf(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.read_len(what, max)?;
        let start = self.pos;
        let end = start + len; // len <= remaining, so no overflow
        let slice = self.buf.get(start..end).ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    /// lib0 `readVarString`: a var-uint8-array of UTF-8.
    pub(crate) fn read_string(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.read_buf(what, max)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }
}

pub(crate) fn write_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn write_buf(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_uint_round_trips_edge_values() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_var_u64(&mut out, v);
            let mut c = Cursor::new(&out);
            assert_eq!(c.read_var_u64("n").unwrap(), v);
            assert!(c.is_empty());
        }
    }

    #[test]
    fn var_uint_overflow_is_an_error() {
        let bytes = [0xffu8; 11];
        assert_eq!(
            Cursor::new(&bytes).read_var_u64("n"),
            Err(DecodeError::VarIntOverflow)
        );
    }

    #[test]
    fn length_beyond_buffer_is_truncated_not_allocated() {
        let mut out = Vec::new();
        write_var_u64(&mut out, 1 << 40);
        let mut c = Cursor::new(&out);
        assert!(matches!(
            c.read_buf("payload", usize::MAX),
            Err(DecodeError::Truncated(_))
        ));
    }
}
