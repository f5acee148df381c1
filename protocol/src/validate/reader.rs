//! The byte cursor of the validator: lib0 var-ints, lengths and strings, read exactly as yrs
//! 0.28 reads them, with every error carrying the offset of the field.

use super::{Reason, UpdateError, MAX_CLIENT_ID};

/// Deepest bracket nesting of a JSON text, ignoring brackets inside strings.
pub(super) fn json_depth(s: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in s.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A bounds-checked cursor whose errors carry the offset of the field being read.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(super) fn fail<T>(&self, at: usize, reason: Reason) -> Result<T, UpdateError> {
        Err(UpdateError { at, reason })
    }

    pub(super) fn finish(&self) -> Result<(), UpdateError> {
        match self.remaining() {
            0 => Ok(()),
            n => self.fail(self.pos, Reason::TrailingBytes(n)),
        }
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, UpdateError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(self.pos, Reason::Truncated(what)),
        }
    }

    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], UpdateError> {
        let at = self.pos;
        let end = at.checked_add(n).filter(|&end| end <= self.buf.len());
        match end.and_then(|end| self.buf.get(at..end)) {
            Some(slice) => {
                self.pos = at + n;
                Ok(slice)
            }
            None => self.fail(at, Reason::Truncated(what)),
        }
    }

    /// lib0 `readVarUint` into 64 bits (at most 10 bytes; yrs reads a little more and wraps).
    pub(super) fn var_u64(&mut self, what: &'static str) -> Result<u64, UpdateError> {
        let at = self.pos;
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift >= 64 || (shift == 63 && bits > 1) {
                return self.fail(at, Reason::IntegerOverflow(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A `u32` field. yrs' `read_var::<u32>` wraps larger values silently; we refuse them.
    pub(super) fn var_u32(&mut self, what: &'static str) -> Result<u32, UpdateError> {
        let at = self.pos;
        let v = self.var_u64(what)?;
        u32::try_from(v).or_else(|_| self.fail(at, Reason::IntegerOverflow(what)))
    }

    /// lib0 `readVarInt` as yrs reads it (6 bits + sign in the first byte, then 7 per byte).
    /// Longer than 9 bytes would shift past 63 bits inside yrs; lib0 writes at most 6.
    pub(super) fn var_i64(&mut self, what: &'static str) -> Result<(), UpdateError> {
        let at = self.pos;
        let mut byte = self.u8(what)?;
        let mut used = 1;
        while byte & 0x80 != 0 {
            if used >= 9 {
                return self.fail(at, Reason::IntegerOverflow(what));
            }
            byte = self.u8(what)?;
            used += 1;
        }
        Ok(())
    }

    pub(super) fn client(&mut self, what: &'static str) -> Result<u64, UpdateError> {
        let at = self.pos;
        let id = self.var_u64(what)?;
        if id > MAX_CLIENT_ID {
            return self.fail(at, Reason::ClientIdOutOfRange(id));
        }
        Ok(id)
    }

    /// A `u32` element count whose elements take at least `min_bytes` each, bounded by `max`.
    pub(super) fn count(
        &mut self,
        what: &'static str,
        min_bytes: usize,
        max: usize,
    ) -> Result<usize, UpdateError> {
        let at = self.pos;
        let n = self.var_u32(what)?;
        let count = u64::from(n);
        let max_u64 = u64::try_from(max).unwrap_or(u64::MAX);
        if count > max_u64 {
            return self.fail(
                at,
                Reason::OverLimit {
                    what,
                    count,
                    max: max_u64,
                },
            );
        }
        self.check_fits(at, what, count, min_bytes)
    }

    /// A var-uint element count (yrs reads `Any` container lengths as `usize`).
    pub(super) fn count_u64(&mut self, what: &'static str, min_bytes: usize) -> Result<usize, UpdateError> {
        let at = self.pos;
        let count = self.var_u64(what)?;
        self.check_fits(at, what, count, min_bytes)
    }

    pub(super) fn check_fits(
        &self,
        at: usize,
        what: &'static str,
        count: u64,
        min_bytes: usize,
    ) -> Result<usize, UpdateError> {
        let remaining = self.remaining();
        let room = u64::try_from(remaining / min_bytes.max(1)).unwrap_or(u64::MAX);
        if count > room {
            return self.fail(
                at,
                Reason::CountExceedsBytes {
                    what,
                    count,
                    remaining,
                },
            );
        }
        usize::try_from(count).or_else(|_| self.fail(at, Reason::IntegerOverflow(what)))
    }

    /// lib0 `readVarUint8Array` with a `u32` length, as yrs' `read_buf`.
    pub(super) fn buf(&mut self, what: &'static str) -> Result<&'a [u8], UpdateError> {
        let at = self.pos;
        let len = self.var_u32(what)?;
        let len = usize::try_from(len).or_else(|_| self.fail(at, Reason::IntegerOverflow(what)))?;
        if len > self.remaining() {
            return self.fail(at, Reason::Truncated(what));
        }
        self.bytes(len, what)
    }

    /// lib0 `readVarString`, at most `max` bytes.
    pub(super) fn string(&mut self, what: &'static str, max: usize) -> Result<&'a str, UpdateError> {
        let at = self.pos;
        let bytes = self.buf(what)?;
        if bytes.len() > max {
            return self.fail(
                at,
                Reason::OverLimit {
                    what,
                    count: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                    max: u64::try_from(max).unwrap_or(u64::MAX),
                },
            );
        }
        std::str::from_utf8(bytes).or_else(|_| self.fail(at, Reason::InvalidUtf8(what)))
    }
}
