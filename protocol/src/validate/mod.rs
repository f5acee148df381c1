//! A structural validator for untrusted v1 Yjs updates and state vectors, run before any byte
//! reaches yrs.
//!
//! yrs 0.28 decodes recursively and trusts what it reads: an `Any` value nested a few thousand
//! levels deep overflows the stack inside `Update::decode_v1` (an abort that `catch_unwind`
//! cannot catch), a 9-byte update claiming 2^28 clients reserves ~512 MB, and clocks that wrap
//! past `u32::MAX` or zero-length ranges trip its assertions when the update is applied. This
//! module walks the whole v1 encoding once, with its recursion bounded by the nesting limit and
//! no allocation proportional to a count read from the wire, and says exactly what is wrong. It reads the bytes exactly as yrs 0.28.1 does (`Update::decode`,
//! `Item` / `ItemContent::decode`, `Any::decode`, `IdSet::decode`), so that everything it
//! accepts is also what yrs will read, field for field. The format, as written by Yjs
//! (`src/utils/encoding.js`, `writeClientsStructs` / `writeDeleteSet`):
//!
//! ```text
//! update      = var(client count) client-block* delete-set
//! client-block= var(struct count) var(client) var(start clock) struct*
//! struct      = info:u8 ( GC: var(len) | Skip: var(len) | item )
//! item        = [origin id] [right-origin id]
//!               (if neither: var(parent info) (1: string root name | 0: id) [string parent_sub])
//!               content(info & 0x0f)
//! id          = var(client) var(clock)
//! delete-set  = var(client count) ( var(client) var(range count) (var(clock) var(len))* )*
//! ```
//!
//! Checks beyond the grammar, each for something that makes yrs allocate, recurse, panic or
//! loop, and none of which a stock Yjs or yrs client ever produces:
//! - every count is checked against the bytes left (each element needs at least one byte, most
//!   two or three) and against an [`UpdateLimits`] bound before anything is trusted;
//! - `Any` values and JSON strings nest at most [`UpdateLimits::max_nesting`] levels;
//! - client ids fit 53 bits (yrs' `ClientID`); lengths fit `u32`; every clock in an update,
//!   including `clock + len` of structs within a client block and of delete ranges and the
//!   clocks of origins and parents, is at most [`MAX_CLOCK`] = 2^31 - 1, because yrs computes
//!   clock offsets as `i32` when it integrates (`update.rs`, `text.rs`);
//! - GC, Skip and delete ranges are not empty; delete ranges of a client are ascending and do
//!   not overlap (Yjs always writes them sorted and merged);
//! - a client appears at most once in the struct section, in the delete set and in a state
//!   vector;
//! - an origin, right origin or parent id of the struct's own client points to an earlier clock
//!   (an item can only refer to what existed when it was created);
//! - no bytes follow the delete set.
//!
//! Rejected although the grammar has them, because yrs 0.28 reads them differently from Yjs
//! and would silently misparse the rest of the update: legacy JSON content (ref 2: yrs reads
//! `len + 1` strings, Yjs `len`), and `XmlHook` types (type ref 5: Yjs writes the hook name, yrs
//! reads none). Weak links (type ref 7, a yrs feature we do not compile), sub-document and
//! undefined type refs (9, 15) and `Move` content are not produced by any client we serve.
//!
//! What no structural check can see (an origin in another update that is not a type, an
//! `IdRange` invariant broken only after merging with the document, ...) is left to applying
//! updates in a separate process.

use crate::Limits;
use reader::{json_depth, Reader};
use std::collections::HashSet;
use thiserror::Error;

mod reader;

/// Bounds of [`validate_update`] and [`validate_state_vector`]. Defaults in [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Deepest nesting of `Any` arrays / maps and of JSON arrays / objects. yrs decodes both
    /// recursively; Tiptap / y-prosemirror content is shared types, not nested `Any`.
    pub max_nesting: usize,
    /// Most clients in the struct section, and separately in the delete set, of one update.
    pub max_clients: usize,
    /// Most structs (items, GC and Skip ranges) in one update, over all clients.
    pub max_structs: usize,
    /// Most delete ranges in one update, over all clients.
    pub max_delete_ranges: usize,
    /// Longest root type name, map key (`parent_sub`), format key, XML tag name or sub-document
    /// guid, in bytes. Text content and binary values are bounded by the message size only.
    pub max_key_bytes: usize,
    /// Most entries in one state vector.
    pub max_state_vector_entries: usize,
    /// Whether sub-documents (content `Doc`) are accepted. yrs 0.28 leaks about 10 KB per
    /// integrated sub-document (FUZZING.md); a server whose documents have none refuses them.
    pub allow_subdocs: bool,
}

impl Default for UpdateLimits {
    fn default() -> Self {
        UpdateLimits {
            max_nesting: 64,
            max_clients: 65_536,
            max_structs: 1 << 20,
            max_delete_ranges: 1 << 20,
            max_key_bytes: 16 * 1024,
            max_state_vector_entries: 65_536,
            allow_subdocs: true,
        }
    }
}

/// Why an update or state vector was rejected, and the byte offset of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason} (at byte {at})")]
pub struct UpdateError {
    pub at: usize,
    pub reason: Reason,
}

/// What was wrong with an update or state vector.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reason {
    #[error("the bytes end in the middle of {0}")]
    Truncated(&'static str),
    #[error("{0} does not fit its integer type")]
    IntegerOverflow(&'static str),
    #[error("{what} claims {count} entries but only {remaining} bytes are left")]
    CountExceedsBytes {
        what: &'static str,
        count: u64,
        remaining: usize,
    },
    #[error("{what} of {count} exceeds the limit of {max}")]
    OverLimit {
        what: &'static str,
        count: u64,
        max: u64,
    },
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("{0} is not valid JSON")]
    InvalidJson(&'static str),
    #[error("values nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("client id {0} does not fit 53 bits")]
    ClientIdOutOfRange(u64),
    #[error("clocks of client {client} pass 2^31 - 1")]
    ClockOverflow { client: u64 },
    #[error("zero-length {0}")]
    ZeroLength(&'static str),
    #[error("client {client} appears twice in the {what}")]
    DuplicateClient { what: &'static str, client: u64 },
    #[error("unknown struct info byte {0:#04x}")]
    UnknownInfo(u8),
    #[error("unsupported content: {0}")]
    UnsupportedContent(&'static str),
    #[error("unknown or unsupported shared type ref {0}")]
    UnknownTypeRef(u8),
    #[error("unknown Any tag {0}")]
    UnknownAnyTag(u8),
    #[error("parent info {0} is neither 0 (an id) nor 1 (a root type name)")]
    InvalidParentInfo(u32),
    #[error("{what} ({client}, {clock}) does not precede the struct that refers to it")]
    ReferenceNotBefore {
        what: &'static str,
        client: u64,
        clock: u32,
    },
    #[error("delete ranges of client {0} are not ascending or overlap")]
    UnsortedDeleteRanges(u64),
    #[error("{0} bytes after the end")]
    TrailingBytes(usize),
}

/// Counts of what a valid update holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// Clients with structs in this update.
    pub clients: usize,
    /// Structs (items, including zero-length ones yrs drops, GC and Skip ranges).
    pub structs: usize,
    /// Delete ranges.
    pub delete_ranges: usize,
}

/// Largest client id: yrs' `ClientID` keeps 53 bits (Yjs ids are random `u32`s).
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Largest clock in an update: yrs casts clocks to `i32` to compute offsets while integrating
/// (found by fuzzing `apply`), so anything above `i32::MAX` wraps there. A client would need
/// two billion operations under one client id to get near it.
pub const MAX_CLOCK: u32 = 0x7fff_ffff;

// Struct info byte (yrs `block.rs`, Yjs `Item.write`).
const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;
const CONTENT_DELETED: u8 = 1;
const CONTENT_JSON: u8 = 2;
const CONTENT_BINARY: u8 = 3;
const CONTENT_STRING: u8 = 4;
const CONTENT_EMBED: u8 = 5;
const CONTENT_FORMAT: u8 = 6;
const CONTENT_TYPE: u8 = 7;
const CONTENT_ANY: u8 = 8;
const CONTENT_DOC: u8 = 9;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
/// Bit 4 is part of the content ref in Yjs (`info & BITS5`) but no content ref uses it.
const RESERVED_INFO_BIT: u8 = 0b0001_0000;

// Shared type refs (yrs `types/mod.rs`, Yjs `YArrayRefID`...).
const TYPE_ARRAY: u8 = 0;
const TYPE_MAP: u8 = 1;
const TYPE_TEXT: u8 = 2;
const TYPE_XML_ELEMENT: u8 = 3;
const TYPE_XML_FRAGMENT: u8 = 4;
const TYPE_XML_HOOK: u8 = 5;
const TYPE_XML_TEXT: u8 = 6;

// lib0 `writeAny` tags (yrs `any.rs`).
const ANY_UNDEFINED: u8 = 127;
const ANY_NULL: u8 = 126;
const ANY_INTEGER: u8 = 125;
const ANY_FLOAT32: u8 = 124;
const ANY_FLOAT64: u8 = 123;
const ANY_BIGINT: u8 = 122;
const ANY_FALSE: u8 = 121;
const ANY_TRUE: u8 = 120;
const ANY_STRING: u8 = 119;
const ANY_MAP: u8 = 118;
const ANY_ARRAY: u8 = 117;
const ANY_BUFFER: u8 = 116;

/// Validates a v1 Yjs update completely. `Ok` means yrs 0.28 decodes it without error, panic,
/// unbounded allocation or deep recursion (applying it may still fail: see the module docs).
pub fn validate_update(bytes: &[u8], limits: &Limits) -> Result<UpdateSummary, UpdateError> {
    let mut v = Validator {
        r: Reader { buf: bytes, pos: 0 },
        limits: limits.update,
        structs: 0,
    };
    let summary = v.update()?;
    v.r.finish()?;
    Ok(summary)
}

/// Validates a v1 state vector: var-uint count, then (client, clock) var-uint pairs.
pub fn validate_state_vector(bytes: &[u8], limits: &Limits) -> Result<usize, UpdateError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let count = r.count("state vector length", 2, limits.update.max_state_vector_entries)?;
    // yrs keeps the last clock of a repeated client, plenary kept the largest; Yjs writes each
    // client once, so a repeat is refused rather than interpreted.
    let mut seen = HashSet::new();
    for _ in 0..count {
        let at = r.pos;
        let client = r.client("state vector client id")?;
        if !seen.insert(client) {
            return r.fail(
                at,
                Reason::DuplicateClient {
                    what: "state vector",
                    client,
                },
            );
        }
        r.var_u32("state vector clock")?;
    }
    r.finish()?;
    Ok(count)
}

/// The state vector entries of a validated state vector, in wire order.
pub(crate) fn state_vector_entries(bytes: &[u8], limits: &Limits) -> Result<Vec<(u64, u32)>, UpdateError> {
    let count = validate_state_vector(bytes, limits)?;
    let mut r = Reader { buf: bytes, pos: 0 };
    r.var_u64("state vector length")?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push((r.client("client")?, r.var_u32("clock")?));
    }
    Ok(out)
}

struct Validator<'a> {
    r: Reader<'a>,
    limits: UpdateLimits,
    structs: usize,
}

impl<'a> Validator<'a> {
    fn update(&mut self) -> Result<UpdateSummary, UpdateError> {
        // A client block takes at least 3 bytes (struct count, client, clock).
        let clients = self.r.count("client count", 3, self.limits.max_clients)?;
        let mut seen = HashSet::new();
        for _ in 0..clients {
            self.client_block(&mut seen)?;
        }
        let delete_ranges = self.delete_set()?;
        Ok(UpdateSummary {
            clients,
            structs: self.structs,
            delete_ranges,
        })
    }

    fn client_block(&mut self, seen: &mut HashSet<u64>) -> Result<(), UpdateError> {
        // Every struct takes at least 2 bytes (info + length, or info + parent / origin).
        let count_at = self.r.pos;
        let count = self.r.count("struct count", 2, usize::MAX)?;
        let total = self.structs.saturating_add(count);
        if total > self.limits.max_structs {
            return Err(UpdateError {
                at: count_at,
                reason: Reason::OverLimit {
                    what: "structs in the update",
                    count: u64::try_from(total).unwrap_or(u64::MAX),
                    max: u64::try_from(self.limits.max_structs).unwrap_or(u64::MAX),
                },
            });
        }
        self.structs = total;
        let client_at = self.r.pos;
        let client = self.r.client("client id")?;
        // yrs appends the structs of a repeated client to the same list, with a new start
        // clock: the list would no longer be ordered.
        if !seen.insert(client) {
            return Err(UpdateError {
                at: client_at,
                reason: Reason::DuplicateClient {
                    what: "struct section",
                    client,
                },
            });
        }
        let start_at = self.r.pos;
        let mut clock = self.r.var_u32("start clock")?;
        if clock > MAX_CLOCK {
            return Err(UpdateError {
                at: start_at,
                reason: Reason::ClockOverflow { client },
            });
        }
        for _ in 0..count {
            let at = self.r.pos;
            let len = self.structure(client, clock)?;
            clock = clock
                .checked_add(len)
                .filter(|&end| end <= MAX_CLOCK)
                .ok_or(UpdateError {
                    at,
                    reason: Reason::ClockOverflow { client },
                })?;
        }
        Ok(())
    }

    /// One struct at `(client, clock)`; returns its length in clock ticks.
    fn structure(&mut self, client: u64, clock: u32) -> Result<u32, UpdateError> {
        let info_at = self.r.pos;
        let info = self.r.u8("struct info")?;
        match info {
            BLOCK_GC | BLOCK_SKIP => {
                let what = if info == BLOCK_GC {
                    "GC range"
                } else {
                    "Skip range"
                };
                let at = self.r.pos;
                let len = self.r.var_u32(what)?;
                if len == 0 {
                    return Err(UpdateError {
                        at,
                        reason: Reason::ZeroLength(what),
                    });
                }
                return Ok(len);
            }
            _ => {}
        }
        if info & RESERVED_INFO_BIT != 0 || !(CONTENT_DELETED..=CONTENT_DOC).contains(&(info & 0b1111)) {
            return Err(UpdateError {
                at: info_at,
                reason: Reason::UnknownInfo(info),
            });
        }
        if info & HAS_ORIGIN != 0 {
            self.reference("origin", client, clock)?;
        }
        if info & HAS_RIGHT_ORIGIN != 0 {
            self.reference("right origin", client, clock)?;
        }
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            let at = self.r.pos;
            match self.r.var_u32("parent info")? {
                1 => {
                    self.r.string("root type name", self.limits.max_key_bytes)?;
                }
                0 => self.reference("parent", client, clock)?,
                other => {
                    return Err(UpdateError {
                        at,
                        reason: Reason::InvalidParentInfo(other),
                    })
                }
            }
            if info & HAS_PARENT_SUB != 0 {
                self.r.string("map key", self.limits.max_key_bytes)?;
            }
        }
        self.content(info_at, info)
    }

    /// An id that a struct of `(client, clock)` refers to.
    fn reference(&mut self, what: &'static str, client: u64, clock: u32) -> Result<(), UpdateError> {
        let at = self.r.pos;
        let ref_client = self.r.client(what)?;
        let ref_clock = self.r.var_u32(what)?;
        if ref_clock > MAX_CLOCK {
            return Err(UpdateError {
                at,
                reason: Reason::ClockOverflow { client: ref_client },
            });
        }
        if ref_client == client && ref_clock >= clock {
            return Err(UpdateError {
                at,
                reason: Reason::ReferenceNotBefore {
                    what,
                    client,
                    clock: ref_clock,
                },
            });
        }
        Ok(())
    }

    /// Item content; returns its length as yrs counts it (0: yrs drops the item).
    fn content(&mut self, info_at: usize, info: u8) -> Result<u32, UpdateError> {
        match info & 0b1111 {
            CONTENT_DELETED => self.r.var_u32("deleted length"),
            CONTENT_JSON => Err(UpdateError {
                at: info_at,
                reason: Reason::UnsupportedContent("legacy JSON content (yrs 0.28 misreads it)"),
            }),
            CONTENT_BINARY => {
                self.r.buf("binary content")?;
                Ok(1)
            }
            CONTENT_STRING => {
                let s = self.r.string("string content", usize::MAX)?;
                let units: usize = s.chars().map(char::len_utf16).sum();
                u32::try_from(units).map_err(|_| UpdateError {
                    at: info_at,
                    reason: Reason::IntegerOverflow("string length"),
                })
            }
            CONTENT_EMBED => {
                self.json("embed")?;
                Ok(1)
            }
            CONTENT_FORMAT => {
                self.r.string("format key", self.limits.max_key_bytes)?;
                self.json("format value")?;
                Ok(1)
            }
            CONTENT_TYPE => {
                let at = self.r.pos;
                match self.r.u8("type ref")? {
                    TYPE_ARRAY | TYPE_MAP | TYPE_TEXT | TYPE_XML_FRAGMENT | TYPE_XML_TEXT => {}
                    TYPE_XML_ELEMENT => {
                        self.r.string("XML element name", self.limits.max_key_bytes)?;
                    }
                    TYPE_XML_HOOK => {
                        return Err(UpdateError {
                            at,
                            reason: Reason::UnsupportedContent(
                                "XmlHook type (yrs 0.28 does not read its name)",
                            ),
                        })
                    }
                    other => {
                        return Err(UpdateError {
                            at,
                            reason: Reason::UnknownTypeRef(other),
                        })
                    }
                }
                Ok(1)
            }
            CONTENT_ANY => {
                let count = self.r.count("Any content length", 1, usize::MAX)?;
                for _ in 0..count {
                    self.any(0)?;
                }
                u32::try_from(count).map_err(|_| UpdateError {
                    at: info_at,
                    reason: Reason::IntegerOverflow("Any content length"),
                })
            }
            CONTENT_DOC => {
                if !self.limits.allow_subdocs {
                    return Err(UpdateError {
                        at: info_at,
                        reason: Reason::UnsupportedContent("sub-document (not accepted here)"),
                    });
                }
                self.r.string("sub-document guid", self.limits.max_key_bytes)?;
                self.any(0)?;
                Ok(1)
            }
            _ => Err(UpdateError {
                at: info_at,
                reason: Reason::UnknownInfo(info),
            }),
        }
    }

    /// One lib0 `Any` value at nesting `depth` (containers around it).
    fn any(&mut self, depth: usize) -> Result<(), UpdateError> {
        let at = self.r.pos;
        match self.r.u8("Any tag")? {
            ANY_UNDEFINED | ANY_NULL | ANY_FALSE | ANY_TRUE => Ok(()),
            ANY_INTEGER => self.r.var_i64("Any integer").map(drop),
            ANY_FLOAT32 => self.r.bytes(4, "Any float32").map(drop),
            ANY_FLOAT64 | ANY_BIGINT => self.r.bytes(8, "Any float64 / bigint").map(drop),
            ANY_STRING => self.r.string("Any string", usize::MAX).map(drop),
            ANY_BUFFER => self.r.buf("Any buffer").map(drop),
            tag @ (ANY_MAP | ANY_ARRAY) => {
                if depth >= self.limits.max_nesting {
                    return Err(UpdateError {
                        at,
                        reason: Reason::TooDeep(self.limits.max_nesting),
                    });
                }
                if tag == ANY_MAP {
                    // key (at least 1 byte) + value (at least 1 byte)
                    let n = self.r.count_u64("Any map length", 2)?;
                    for _ in 0..n {
                        self.r.string("Any map key", usize::MAX)?;
                        self.any(depth + 1)?;
                    }
                } else {
                    let n = self.r.count_u64("Any array length", 1)?;
                    for _ in 0..n {
                        self.any(depth + 1)?;
                    }
                }
                Ok(())
            }
            other => Err(UpdateError {
                at,
                reason: Reason::UnknownAnyTag(other),
            }),
        }
    }

    /// A JSON string (embed, format value) as yrs parses it (`Any::from_json`).
    fn json(&mut self, what: &'static str) -> Result<(), UpdateError> {
        let at = self.r.pos;
        let s = self.r.string(what, usize::MAX)?;
        let err = |reason| UpdateError { at, reason };
        // serde_json stops at 128 levels; ours is lower, and checked before parsing.
        if json_depth(s) > self.limits.max_nesting {
            return Err(err(Reason::TooDeep(self.limits.max_nesting)));
        }
        yrs::Any::from_json(s).map_err(|_| err(Reason::InvalidJson(what)))?;
        Ok(())
    }

    fn delete_set(&mut self) -> Result<usize, UpdateError> {
        // A delete set entry takes at least 2 bytes (client, range count).
        let clients = self
            .r
            .count("delete set client count", 2, self.limits.max_clients)?;
        let mut seen = HashSet::new();
        let mut ranges_total: usize = 0;
        for _ in 0..clients {
            let client_at = self.r.pos;
            let client = self.r.client("delete set client id")?;
            if !seen.insert(client) {
                return Err(UpdateError {
                    at: client_at,
                    reason: Reason::DuplicateClient {
                        what: "delete set",
                        client,
                    },
                });
            }
            let count_at = self.r.pos;
            // A range takes at least 2 bytes (clock, len).
            let ranges = self.r.count("delete range count", 2, usize::MAX)?;
            ranges_total = ranges_total.saturating_add(ranges);
            if ranges_total > self.limits.max_delete_ranges {
                return Err(UpdateError {
                    at: count_at,
                    reason: Reason::OverLimit {
                        what: "delete ranges in the update",
                        count: u64::try_from(ranges_total).unwrap_or(u64::MAX),
                        max: u64::try_from(self.limits.max_delete_ranges).unwrap_or(u64::MAX),
                    },
                });
            }
            let mut prev_end: u32 = 0;
            for _ in 0..ranges {
                let at = self.r.pos;
                let clock = self.r.var_u32("delete range clock")?;
                let len = self.r.var_u32("delete range length")?;
                if len == 0 {
                    return Err(UpdateError {
                        at,
                        reason: Reason::ZeroLength("delete range"),
                    });
                }
                let end = clock
                    .checked_add(len)
                    .filter(|&end| end <= MAX_CLOCK)
                    .ok_or(UpdateError {
                        at,
                        reason: Reason::ClockOverflow { client },
                    })?;
                if clock < prev_end {
                    return Err(UpdateError {
                        at,
                        reason: Reason::UnsortedDeleteRanges(client),
                    });
                }
                prev_end = end;
            }
        }
        Ok(ranges_total)
    }
}
