//! y-websocket (y-protocols) message encoding, hand-rolled so that the load generator does not
//! trust any server's framing: it only needs var-uints, var-strings and var-uint8-arrays.

pub const MSG_SYNC: u64 = 0;
pub const MSG_AWARENESS: u64 = 1;
pub const MSG_AUTH: u64 = 2;
pub const MSG_QUERY_AWARENESS: u64 = 3;
/// Hocuspocus answers sync step 1 with this type (same payload as MSG_SYNC).
pub const MSG_SYNC_REPLY: u64 = 4;
/// plenary's opt-in "saved" acknowledgement: followed by a var-uint8-array state vector.
pub const MSG_ACK: u64 = 100;

pub const SYNC_STEP1: u64 = 0;
pub const SYNC_STEP2: u64 = 1;
pub const SYNC_UPDATE: u64 = 2;

/// An empty v1 update (no structs, empty delete set).
pub const EMPTY_UPDATE: [u8; 2] = [0, 0];
/// An empty v1 state vector.
pub const EMPTY_SV: [u8; 1] = [0];

pub fn write_var_uint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn write_var_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    write_var_uint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn var_uint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift >= 64 {
                return None;
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
        }
    }
    pub fn var_bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.var_uint()? as usize;
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn var_string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.var_bytes()?).ok()
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }
}

/// Per-target framing: Hocuspocus prefixes every message (both directions) with the document name
/// as a var-string; the others send bare y-protocols messages.
#[derive(Clone, Debug)]
pub struct Wire {
    prefix: Option<Vec<u8>>,
}

impl Wire {
    pub fn plain() -> Self {
        Wire { prefix: None }
    }
    pub fn hocuspocus(doc_name: &str) -> Self {
        let mut p = Vec::new();
        write_var_bytes(&mut p, doc_name.as_bytes());
        Wire { prefix: Some(p) }
    }
    pub fn is_hocuspocus(&self) -> bool {
        self.prefix.is_some()
    }
    fn start(&self, cap: usize) -> Vec<u8> {
        let p = self.prefix.as_deref().unwrap_or(&[]);
        let mut b = Vec::with_capacity(p.len() + cap + 8);
        b.extend_from_slice(p);
        b
    }
    fn sync(&self, sub: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = self.start(payload.len() + 4);
        write_var_uint(&mut b, MSG_SYNC);
        write_var_uint(&mut b, sub);
        write_var_bytes(&mut b, payload);
        b
    }
    pub fn step1(&self, sv: &[u8]) -> Vec<u8> {
        self.sync(SYNC_STEP1, sv)
    }
    pub fn step2(&self, update: &[u8]) -> Vec<u8> {
        self.sync(SYNC_STEP2, update)
    }
    pub fn update(&self, update: &[u8]) -> Vec<u8> {
        self.sync(SYNC_UPDATE, update)
    }
    /// One awareness entry (client, clock, JSON state).
    pub fn awareness(&self, client: u64, clock: u64, json: &str) -> Vec<u8> {
        let mut inner = Vec::with_capacity(json.len() + 16);
        write_var_uint(&mut inner, 1);
        write_var_uint(&mut inner, client);
        write_var_uint(&mut inner, clock);
        write_var_bytes(&mut inner, json.as_bytes());
        let mut b = self.start(inner.len() + 4);
        write_var_uint(&mut b, MSG_AWARENESS);
        write_var_bytes(&mut b, &inner);
        b
    }
    /// Hocuspocus' first message: auth / token.
    pub fn hocus_auth(&self, token: &str) -> Vec<u8> {
        let mut b = self.start(token.len() + 4);
        write_var_uint(&mut b, MSG_AUTH);
        write_var_uint(&mut b, 0);
        write_var_bytes(&mut b, token.as_bytes());
        b
    }
    /// Strips the Hocuspocus document-name prefix.
    pub fn body<'a>(&self, msg: &'a [u8]) -> Option<&'a [u8]> {
        if self.prefix.is_some() {
            let mut r = Reader::new(msg);
            r.var_string()?;
            Some(r.rest())
        } else {
            Some(msg)
        }
    }
}

#[derive(Debug)]
pub enum Parsed<'a> {
    Step1(&'a [u8]),
    Step2(&'a [u8]),
    Update(&'a [u8]),
    Awareness,
    /// sub-type and reason; y-protocols: sub 0 = permission denied; Hocuspocus: 1 denied, 2 authenticated.
    Auth(u64, String),
    QueryAwareness,
    Ack(&'a [u8]),
    #[allow(dead_code)]
    Other(u64),
}

pub fn parse(body: &[u8]) -> Option<Parsed<'_>> {
    let mut r = Reader::new(body);
    let t = r.var_uint()?;
    Some(match t {
        MSG_SYNC | MSG_SYNC_REPLY => {
            let sub = r.var_uint()?;
            let payload = r.var_bytes()?;
            match sub {
                SYNC_STEP1 => Parsed::Step1(payload),
                SYNC_STEP2 => Parsed::Step2(payload),
                SYNC_UPDATE => Parsed::Update(payload),
                _ => Parsed::Other(t),
            }
        }
        MSG_AWARENESS => Parsed::Awareness,
        MSG_AUTH => {
            let sub = r.var_uint().unwrap_or(0);
            let reason = r.var_string().unwrap_or("").to_string();
            Parsed::Auth(sub, reason)
        }
        MSG_QUERY_AWARENESS => Parsed::QueryAwareness,
        MSG_ACK => Parsed::Ack(r.var_bytes()?),
        other => Parsed::Other(other),
    })
}

/// Cheap classification for counting followers: (type, sync sub-type) without copying.
pub fn peek_kind(body: &[u8]) -> (u64, u64) {
    let mut r = Reader::new(body);
    let t = r.var_uint().unwrap_or(u64::MAX);
    let sub = if t == MSG_SYNC || t == MSG_SYNC_REPLY {
        r.var_uint().unwrap_or(u64::MAX)
    } else {
        0
    };
    (t, sub)
}

/// Decodes a v1 state vector into (client, clock) pairs.
pub fn decode_sv(bytes: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut r = Reader::new(bytes);
    let n = r.var_uint()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push((r.var_uint()?, r.var_uint()?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        let w = Wire::hocuspocus("room-1");
        let m = w.update(&[1, 2, 3]);
        let b = w.body(&m).unwrap();
        match parse(b).unwrap() {
            Parsed::Update(u) => assert_eq!(u, &[1, 2, 3]),
            p => panic!("{p:?}"),
        }
        let mut v = Vec::new();
        write_var_uint(&mut v, 300);
        assert_eq!(Reader::new(&v).var_uint(), Some(300));
        assert_eq!(peek_kind(&Wire::plain().step1(&EMPTY_SV)), (0, 0));
    }
}
