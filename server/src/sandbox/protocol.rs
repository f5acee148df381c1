//! The parent/child wire format: one request, then one response, each a frame of a 4-byte
//! little-endian length and a body. Pure: no I/O beyond `std::io::{Read, Write}` on frames.
//!
//! Bodies start with a tag byte; strings and byte buffers are a u32 length and the bytes;
//! numbers are little-endian u64. The parent trusts nothing it reads from a child (it may be
//! half-dead), so decoding is total: a bad frame is an error, never a panic.

use std::io::{self, Read, Write};

/// Largest frame either side accepts: a document state and a batch of updates fit well below.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Replace the replica of `doc` by `state` (a v1 update of the whole document) at `gen`.
    Load { doc: String, gen: u64, state: Vec<u8> },
    /// Vet `updates`, in order, on the replica of `doc` at `gen`. `guard`: the writer is a
    /// moderator on a plenary document, who may change only `curation`.
    Apply {
        doc: String,
        gen: u64,
        guard: bool,
        updates: Vec<Vec<u8>>,
    },
    /// Drop the replica of `doc` (its room unloaded).
    Forget { doc: String },
    /// Apply `updates` to the replica of `doc` at `gen` without vetting them: they are durable
    /// already, vetted by the node that accepted them (another node of the cluster). Answers
    /// `Ok`, `NeedState` without that replica, or `Refused` (the replica is dropped).
    Advance {
        doc: String,
        gen: u64,
        updates: Vec<Vec<u8>>,
    },
    /// Does this stored document (snapshot + log) load, and can every read be done on it?
    LoadStored {
        doc: String,
        snapshot: Option<Vec<u8>>,
        updates: Vec<Vec<u8>>,
    },
    /// Does `snapshot` replay into a document with state vector `sv` and fingerprint
    /// `fingerprint` (see `checks::fingerprint`)?
    CheckSnapshot {
        doc: String,
        snapshot: Vec<u8>,
        sv: Vec<u8>,
        fingerprint: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The update is malformed or breaks a read: the sender is closed with 1002.
    Invalid(String),
    /// A moderator's update touches server-owned parts of the plenary.
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Done (Load, Forget, LoadStored, CheckSnapshot, Advance).
    Ok,
    /// The request could not be done, with why.
    Refused(String),
    /// Apply: the child has no replica of that document at that generation.
    NeedState,
    /// Apply: one verdict per update, in order. Shorter than the request when an update was
    /// refused: the replica is then dropped, and the rest must be sent again after a `Load`.
    Verdicts(Vec<Verdict>),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn buf(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(b);
    }
    fn bufs(&mut self, bs: &[Vec<u8>]) {
        self.u64(bs.len() as u64);
        for b in bs {
            self.buf(b);
        }
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn buf(&mut self) -> Result<Vec<u8>, FrameError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        let n = u32::from_le_bytes(a) as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Result<String, FrameError> {
        String::from_utf8(self.buf()?).map_err(|_| FrameError::Malformed("not utf-8"))
    }
    fn bufs(&mut self) -> Result<Vec<Vec<u8>>, FrameError> {
        let n = self.u64()?;
        // Each buffer costs at least its 4-byte length: bounds the count before allocating.
        if n > (self.0.len() / 4) as u64 {
            return Err(FrameError::Malformed("count"));
        }
        (0..n).map(|_| self.buf()).collect()
    }
    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("trailing bytes"))
        }
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        match self {
            Request::Load { doc, gen, state } => {
                w.u8(1);
                w.buf(doc.as_bytes());
                w.u64(*gen);
                w.buf(state);
            }
            Request::Apply {
                doc,
                gen,
                guard,
                updates,
            } => {
                w.u8(2);
                w.buf(doc.as_bytes());
                w.u64(*gen);
                w.u8(u8::from(*guard));
                w.bufs(updates);
            }
            Request::Forget { doc } => {
                w.u8(3);
                w.buf(doc.as_bytes());
            }
            Request::LoadStored {
                doc,
                snapshot,
                updates,
            } => {
                w.u8(4);
                w.buf(doc.as_bytes());
                w.u8(u8::from(snapshot.is_some()));
                w.buf(snapshot.as_deref().unwrap_or_default());
                w.bufs(updates);
            }
            Request::CheckSnapshot {
                doc,
                snapshot,
                sv,
                fingerprint,
            } => {
                w.u8(5);
                w.buf(doc.as_bytes());
                w.buf(snapshot);
                w.buf(sv);
                w.buf(fingerprint.as_bytes());
            }
            Request::Advance { doc, gen, updates } => {
                w.u8(6);
                w.buf(doc.as_bytes());
                w.u64(*gen);
                w.bufs(updates);
            }
        }
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<Request, FrameError> {
        let mut r = R(b);
        let req = match r.u8()? {
            1 => Request::Load {
                doc: r.string()?,
                gen: r.u64()?,
                state: r.buf()?,
            },
            2 => Request::Apply {
                doc: r.string()?,
                gen: r.u64()?,
                guard: r.u8()? != 0,
                updates: r.bufs()?,
            },
            3 => Request::Forget { doc: r.string()? },
            4 => {
                let doc = r.string()?;
                let has = r.u8()? != 0;
                let snap = r.buf()?;
                Request::LoadStored {
                    doc,
                    snapshot: has.then_some(snap),
                    updates: r.bufs()?,
                }
            }
            5 => Request::CheckSnapshot {
                doc: r.string()?,
                snapshot: r.buf()?,
                sv: r.buf()?,
                fingerprint: r.string()?,
            },
            6 => Request::Advance {
                doc: r.string()?,
                gen: r.u64()?,
                updates: r.bufs()?,
            },
            _ => return Err(FrameError::Malformed("request tag")),
        };
        r.end()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::new());
        match self {
            Response::Ok => w.u8(1),
            Response::Refused(why) => {
                w.u8(2);
                w.buf(why.as_bytes());
            }
            Response::NeedState => w.u8(3),
            Response::Verdicts(vs) => {
                w.u8(4);
                w.u64(vs.len() as u64);
                for v in vs {
                    match v {
                        Verdict::Accepted => w.u8(0),
                        Verdict::Invalid(why) => {
                            w.u8(1);
                            w.buf(why.as_bytes());
                        }
                        Verdict::Denied => w.u8(2),
                    }
                }
            }
        }
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<Response, FrameError> {
        let mut r = R(b);
        let resp = match r.u8()? {
            1 => Response::Ok,
            2 => Response::Refused(r.string()?),
            3 => Response::NeedState,
            4 => {
                let n = r.u64()?;
                if n > r.0.len() as u64 {
                    return Err(FrameError::Malformed("count"));
                }
                let mut vs = Vec::new();
                for _ in 0..n {
                    vs.push(match r.u8()? {
                        0 => Verdict::Accepted,
                        1 => Verdict::Invalid(r.string()?),
                        2 => Verdict::Denied,
                        _ => return Err(FrameError::Malformed("verdict tag")),
                    });
                }
                Response::Verdicts(vs)
            }
            _ => return Err(FrameError::Malformed("response tag")),
        };
        r.end()?;
        Ok(resp)
    }
}

/// Writes one frame (length, body) and flushes.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of input.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::Malformed("frame too large"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let reqs = [
            Request::Load {
                doc: "m/g".into(),
                gen: 7,
                state: vec![1, 2, 3],
            },
            Request::Apply {
                doc: "m/plenary".into(),
                gen: 9,
                guard: true,
                updates: vec![vec![], vec![0, 0]],
            },
            Request::Forget { doc: "m/g".into() },
            Request::LoadStored {
                doc: "m/g".into(),
                snapshot: None,
                updates: vec![vec![5]],
            },
            Request::LoadStored {
                doc: "m/g".into(),
                snapshot: Some(vec![]),
                updates: vec![],
            },
            Request::CheckSnapshot {
                doc: "m/g".into(),
                snapshot: vec![1],
                sv: vec![0],
                fingerprint: "{}".into(),
            },
            Request::Advance {
                doc: "m/g".into(),
                gen: 3,
                updates: vec![vec![1], vec![]],
            },
        ];
        for r in reqs {
            assert_eq!(Request::decode(&r.encode()).ok(), Some(r));
        }
        let resps = [
            Response::Ok,
            Response::Refused("no".into()),
            Response::NeedState,
            Response::Verdicts(vec![
                Verdict::Accepted,
                Verdict::Invalid("x".into()),
                Verdict::Denied,
            ]),
        ];
        for r in resps {
            assert_eq!(Response::decode(&r.encode()).ok(), Some(r));
        }
    }

    #[test]
    fn truncated_or_trailing_bodies_are_errors() {
        let body = Request::Forget { doc: "m/g".into() }.encode();
        for n in 0..body.len() {
            assert!(Request::decode(&body[..n]).is_err());
        }
        let mut long = body.clone();
        long.push(0);
        assert!(Request::decode(&long).is_err());
        assert!(Response::decode(&[4, 255, 255, 255, 255, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut out = Vec::new();
        write_frame(&mut out, b"abc").unwrap();
        let mut r = &out[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
