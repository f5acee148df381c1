//! The update validator (`plenary_protocol::validate`): one test per rejection class, acceptance
//! of updates that yrs and JS Yjs really produce, and proptests that it never panics, never
//! lets through what yrs cannot decode, and never refuses what yrs encodes.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use plenary_protocol::message::{decode_state_vector, decode_update};
use plenary_protocol::validate::{validate_state_vector, validate_update, Reason, UpdateLimits};
use plenary_protocol::{DecodeError, Limits, Message};
use serde_json::Value;
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

fn limits() -> Limits {
    Limits::default()
}

fn var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap() | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap());
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    var(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An update of `structs` (raw struct bytes, `n` of them) by `client` from `clock`, with an
/// empty delete set.
fn update_of(client: u64, clock: u64, n: u64, structs: &[u8]) -> Vec<u8> {
    let mut u = vec![1];
    var(&mut u, n);
    var(&mut u, client);
    var(&mut u, clock);
    u.extend_from_slice(structs);
    u.push(0);
    u
}

/// A string item at the root text "t".
fn root_string(s: &[u8]) -> Vec<u8> {
    let mut v = vec![4, 1];
    string(&mut v, b"t");
    string(&mut v, s);
    v
}

/// An Any item at the root array "a" holding one value, `depth` arrays (or maps) deep.
fn nested_any(depth: usize, map: bool) -> Vec<u8> {
    let mut v = vec![8, 1];
    string(&mut v, b"a");
    v.push(1);
    for _ in 0..depth {
        if map {
            v.extend_from_slice(&[118, 1, 1, b'k']);
        } else {
            v.extend_from_slice(&[117, 1]);
        }
    }
    v.push(126);
    update_of(1, 0, 1, &v)
}

fn reason(bytes: &[u8]) -> Reason {
    match validate_update(bytes, &limits()) {
        Ok(s) => panic!("accepted {bytes:?}: {s:?}"),
        Err(e) => e.reason,
    }
}

/// If the validator accepts `bytes`, yrs must decode them without error or panic, and the
/// read-only look the server takes (`insertions`, `delete_set`) must not panic either.
fn check_consistent(bytes: &[u8]) {
    if validate_update(bytes, &limits()).is_err() {
        return;
    }
    let outcome = std::panic::catch_unwind(|| {
        let u = Update::decode_v1(bytes).map_err(|e| e.to_string())?;
        let _ = u.insertions(true);
        let _ = u.delete_set().is_empty();
        Ok::<_, String>(())
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("validator accepted what yrs refuses ({e}): {bytes:?}"),
        Err(_) => panic!("validator accepted what makes yrs panic: {bytes:?}"),
    }
}

fn yrs_text_update() -> Vec<u8> {
    let doc = Doc::with_client_id(7);
    let t = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    t.insert(&mut txn, 0, "hello wörld ✓ 😀");
    t.remove_range(&mut txn, 1, 2);
    txn.encode_update_v1()
}

// ------------------------------------------------------------------ rejection classes

#[test]
fn any_nested_7000_deep_is_rejected_fast_without_stack_overflow() {
    for map in [false, true] {
        let bytes = nested_any(7_000, map);
        let start = Instant::now();
        assert_eq!(reason(&bytes), Reason::TooDeep(64));
        assert!(matches!(
            decode_update(&bytes),
            Err(DecodeError::InvalidUpdate(_))
        ));
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

#[test]
fn nesting_limit_is_exact() {
    for map in [false, true] {
        assert!(validate_update(&nested_any(64, map), &limits()).is_ok());
        assert_eq!(reason(&nested_any(65, map)), Reason::TooDeep(64));
        // what passes, yrs decodes
        decode_update(&nested_any(64, map)).unwrap();
    }
    let tight = Limits {
        update: UpdateLimits {
            max_nesting: 3,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    assert!(validate_update(&nested_any(3, false), &tight).is_ok());
    assert!(validate_update(&nested_any(4, false), &tight).is_err());
}

#[test]
fn json_nesting_is_bounded_too() {
    let deep = format!("{}1{}", "[".repeat(65), "]".repeat(65));
    let ok = format!("{}1{}", "[".repeat(64), "]".repeat(64));
    for (json, good) in [(deep, false), (ok, true)] {
        // an embed in the root text "t"
        let mut s = vec![5, 1];
        string(&mut s, b"t");
        string(&mut s, json.as_bytes());
        let u = update_of(1, 0, 1, &s);
        assert_eq!(validate_update(&u, &limits()).is_ok(), good, "{json}");
    }
    // brackets inside strings do not count
    let mut s = vec![5, 1];
    string(&mut s, b"t");
    string(&mut s, format!("\"{}\"", "[".repeat(500)).as_bytes());
    assert!(validate_update(&update_of(1, 0, 1, &s), &limits()).is_ok());
    // and invalid JSON is refused
    let mut s = vec![6, 1];
    string(&mut s, b"t");
    string(&mut s, b"bold");
    string(&mut s, b"{\"a\":");
    assert_eq!(
        reason(&update_of(1, 0, 1, &s)),
        Reason::InvalidJson("format value")
    );
}

#[test]
fn claimed_counts_beyond_the_bytes_are_rejected_before_anything_is_reserved() {
    // 9 bytes claiming 2^28 clients
    let mut u = Vec::new();
    var(&mut u, 1 << 28);
    u.extend_from_slice(&[1, 1, 0, 0]);
    assert_eq!(u.len(), 9);
    assert!(matches!(
        reason(&u),
        Reason::OverLimit { what: "client count", count, .. } if count == 1 << 28
    ));
    // without the configured limit the bytes alone still refuse it
    let unlimited = Limits {
        update: UpdateLimits {
            max_clients: usize::MAX,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    assert!(matches!(
        validate_update(&u, &unlimited).unwrap_err().reason,
        Reason::CountExceedsBytes { what: "client count", count, .. } if count == 1 << 28
    ));
    // one client claiming 2^31 structs
    let mut u = vec![1];
    var(&mut u, 1 << 31);
    u.extend_from_slice(&[1, 0, 0]);
    assert!(matches!(
        reason(&u),
        Reason::CountExceedsBytes {
            what: "struct count",
            ..
        }
    ));
    // an Any array, an Any map and an Any content claiming millions of entries
    for body in [&[117u8, 0xff, 0xff, 0x7f][..], &[118, 0xff, 0xff, 0x7f]] {
        let mut s = vec![8, 1];
        string(&mut s, b"a");
        s.push(1);
        s.extend_from_slice(body);
        assert!(matches!(
            reason(&update_of(1, 0, 1, &s)),
            Reason::CountExceedsBytes { .. }
        ));
    }
    // a delete set claiming 2^28 ranges
    let mut u = vec![0, 1, 5];
    var(&mut u, 1 << 28);
    assert!(matches!(reason(&u), Reason::CountExceedsBytes { .. }));
    // within the bytes but over a configured limit
    let few = Limits {
        update: UpdateLimits {
            max_clients: 1,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    let two_clients = [2, 0, 1, 0, 0, 2, 0, 0];
    assert!(validate_update(&two_clients, &limits()).is_ok());
    assert!(matches!(
        validate_update(&two_clients, &few).unwrap_err().reason,
        Reason::OverLimit {
            what: "client count",
            ..
        }
    ));
}

#[test]
fn total_structs_are_bounded() {
    let l = Limits {
        update: UpdateLimits {
            max_structs: 2,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    let mut s = root_string(b"a");
    s.extend(root_string(b"b"));
    assert!(validate_update(&update_of(1, 0, 2, &s), &l).is_ok());
    s.extend(root_string(b"c"));
    assert!(matches!(
        validate_update(&update_of(1, 0, 3, &s), &l).unwrap_err().reason,
        Reason::OverLimit { .. }
    ));
}

#[test]
fn every_truncation_of_a_valid_update_is_rejected() {
    let full = yrs_text_update();
    assert!(validate_update(&full, &limits()).is_ok());
    for cut in 0..full.len() {
        let r = reason(&full[..cut]);
        assert!(
            matches!(r, Reason::Truncated(_) | Reason::CountExceedsBytes { .. }),
            "cut at {cut}: {r}"
        );
    }
    let mut longer = full.clone();
    longer.push(0);
    assert_eq!(reason(&longer), Reason::TrailingBytes(1));
}

#[test]
fn bit_flipped_updates_never_get_past_the_validator_into_a_yrs_failure() {
    for full in [yrs_text_update(), yrs_rich_update(), nested_any(10, true)] {
        for i in 0..full.len() {
            for bit in 0..8 {
                let mut bad = full.clone();
                bad[i] ^= 1 << bit;
                check_consistent(&bad);
            }
        }
    }
}

#[test]
fn invalid_utf8_is_rejected_wherever_a_string_is() {
    assert_eq!(
        reason(&update_of(1, 0, 1, &root_string(b"ab\xffc"))),
        Reason::InvalidUtf8("string content")
    );
    let mut s = vec![4, 1];
    string(&mut s, b"\xc3");
    string(&mut s, b"x");
    assert_eq!(
        reason(&update_of(1, 0, 1, &s)),
        Reason::InvalidUtf8("root type name")
    );
    // a map entry: parent_sub key
    let mut s = vec![4 | 0x20, 1];
    string(&mut s, b"m");
    string(&mut s, b"\xed\xa0\x80"); // an encoded lone surrogate
    string(&mut s, b"v");
    assert_eq!(reason(&update_of(1, 0, 1, &s)), Reason::InvalidUtf8("map key"));
}

#[test]
fn clocks_past_i32_max_are_rejected() {
    // yrs computes clock offsets as i32 while integrating, so clocks stop at 2^31 - 1
    let max = u64::from(plenary_protocol::validate::MAX_CLOCK);
    assert_eq!(max, (1 << 31) - 1);
    // five UTF-16 units starting 2 below the top
    assert_eq!(
        reason(&update_of(1, max - 2, 1, &root_string(b"hello"))),
        Reason::ClockOverflow { client: 1 }
    );
    // exactly up to the top is fine
    assert!(validate_update(&update_of(1, max - 5, 1, &root_string(b"hello")), &limits()).is_ok());
    // a start clock above it, and above u32
    assert_eq!(
        reason(&update_of(1, max + 1, 1, &root_string(b"x"))),
        Reason::ClockOverflow { client: 1 }
    );
    assert_eq!(
        reason(&update_of(1, u64::from(u32::MAX) + 1, 1, &root_string(b"x"))),
        Reason::IntegerOverflow("start clock")
    );
    // a GC range pushing the clock over, also where clock + len wraps u32
    for (start, len) in [(max - 3, 10), (max - 3, u64::from(u32::MAX))] {
        let mut s = vec![0];
        var(&mut s, len);
        assert_eq!(
            reason(&update_of(1, start, 1, &s)),
            Reason::ClockOverflow { client: 1 }
        );
    }
    // an origin of another client beyond it
    let mut s = vec![4 | 0x80, 2];
    var(&mut s, max + 1);
    string(&mut s, b"x");
    assert_eq!(
        reason(&update_of(1, 0, 1, &s)),
        Reason::ClockOverflow { client: 2 }
    );
    // a delete range whose end passes it, and one whose end wraps u32
    for (clock, len) in [(max - 1, 2), (u64::from(u32::MAX) - 1, 2)] {
        let mut u = vec![0, 1, 9, 1];
        var(&mut u, clock);
        var(&mut u, len);
        assert_eq!(reason(&u), Reason::ClockOverflow { client: 9 });
    }
}

#[test]
fn zero_length_ranges_are_rejected() {
    assert_eq!(reason(&[0, 1, 9, 1, 5, 0]), Reason::ZeroLength("delete range"));
    assert_eq!(
        reason(&update_of(1, 0, 1, &[0, 0])),
        Reason::ZeroLength("GC range")
    );
    assert_eq!(
        reason(&update_of(1, 0, 1, &[10, 0])),
        Reason::ZeroLength("Skip range")
    );
    // yrs drops a zero-length string item (old clients wrote some); so do we, without error
    let u = update_of(5, 0, 1, &root_string(b""));
    assert!(validate_update(&u, &limits()).is_ok());
    decode_update(&u).unwrap();
}

#[test]
fn delete_ranges_must_ascend_without_overlap() {
    // client 9: [5, 8) then [2, 3)
    assert_eq!(reason(&[0, 1, 9, 2, 5, 3, 2, 1]), Reason::UnsortedDeleteRanges(9));
    // overlapping: [5, 8) then [7, 9)
    assert_eq!(reason(&[0, 1, 9, 2, 5, 3, 7, 2]), Reason::UnsortedDeleteRanges(9));
    // adjacent and gapped are fine
    assert!(validate_update(&[0, 1, 9, 3, 0, 2, 2, 1, 9, 1], &limits()).is_ok());
}

#[test]
fn repeated_clients_are_rejected() {
    let mut u = vec![2];
    for _ in 0..2 {
        u.extend_from_slice(&[1, 4, 0]);
        u.extend(root_string(b"x"));
    }
    u.push(0);
    assert_eq!(
        reason(&u),
        Reason::DuplicateClient {
            what: "struct section",
            client: 4
        }
    );
    assert_eq!(
        reason(&[0, 2, 3, 1, 0, 1, 3, 1, 4, 1]),
        Reason::DuplicateClient {
            what: "delete set",
            client: 3
        }
    );
}

#[test]
fn many_clients_are_checked_in_linear_time() {
    // 60,000 one-struct client blocks, and as many delete set clients
    let mut u = Vec::new();
    var(&mut u, 60_000);
    for c in 0..60_000u64 {
        u.push(1);
        var(&mut u, c + 1);
        u.push(0);
        u.extend(root_string(b"x"));
    }
    var(&mut u, 60_000);
    for c in 0..60_000u64 {
        var(&mut u, c + 1);
        u.extend_from_slice(&[1, 0, 1]);
    }
    let start = Instant::now();
    let s = validate_update(&u, &limits()).unwrap();
    assert_eq!((s.clients, s.structs, s.delete_ranges), (60_000, 60_000, 60_000));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[test]
fn client_ids_must_fit_53_bits() {
    let u = update_of(1 << 53, 0, 1, &root_string(b"x"));
    assert_eq!(reason(&u), Reason::ClientIdOutOfRange(1 << 53));
    assert!(validate_update(&update_of((1 << 53) - 1, 0, 1, &root_string(b"x")), &limits()).is_ok());
}

#[test]
fn references_to_the_future_of_the_same_client_are_rejected() {
    // an item at (1, 3) whose origin is (1, 3): itself
    let mut s = vec![4 | 0x80, 1, 3];
    string(&mut s, b"x");
    assert!(matches!(
        reason(&update_of(1, 3, 1, &s)),
        Reason::ReferenceNotBefore { what: "origin", .. }
    ));
    // right origin later in the same block
    let mut s = vec![4 | 0x40, 1, 9];
    string(&mut s, b"x");
    assert!(matches!(
        reason(&update_of(1, 3, 1, &s)),
        Reason::ReferenceNotBefore {
            what: "right origin",
            ..
        }
    ));
    // parent id pointing at the item itself
    let mut s = vec![4, 0, 1, 0];
    string(&mut s, b"x");
    assert!(matches!(
        reason(&update_of(1, 0, 1, &s)),
        Reason::ReferenceNotBefore { what: "parent", .. }
    ));
    // an earlier clock, or another client's, is fine
    let mut s = vec![4 | 0x80, 1, 2];
    string(&mut s, b"x");
    assert!(validate_update(&update_of(1, 3, 1, &s), &limits()).is_ok());
    let mut s = vec![4 | 0x80, 2, 90];
    string(&mut s, b"x");
    assert!(validate_update(&update_of(1, 3, 1, &s), &limits()).is_ok());
}

#[test]
fn unknown_and_unsupported_refs_are_rejected() {
    // info with the reserved bit, and content refs 0 / 11..15 outside GC / Skip
    for info in [0x14u8, 0x80, 0x8a, 11, 15] {
        let mut s = vec![info, 1, 1];
        string(&mut s, b"x");
        assert_eq!(reason(&update_of(1, 0, 1, &s)), Reason::UnknownInfo(info));
    }
    // legacy JSON content: yrs reads len + 1 strings where Yjs wrote len
    let mut s = vec![2, 1];
    string(&mut s, b"a");
    s.push(1);
    string(&mut s, b"1");
    assert!(matches!(
        reason(&update_of(1, 0, 1, &s)),
        Reason::UnsupportedContent(_)
    ));
    // type refs: XmlHook (5), weak (7), sub-document type (9), undefined (15), junk
    for tr in [5u8, 7, 9, 15, 200] {
        let mut s = vec![7, 1];
        string(&mut s, b"x");
        s.push(tr);
        string(&mut s, b"hook");
        let r = reason(&update_of(1, 0, 1, &s));
        assert!(
            matches!(r, Reason::UnknownTypeRef(t) if t == tr)
                || matches!(r, Reason::UnsupportedContent(_)) && tr == 5,
            "{tr}: {r}"
        );
    }
    // an unknown Any tag
    let mut s = vec![8, 1];
    string(&mut s, b"a");
    s.extend_from_slice(&[1, 100]);
    assert_eq!(reason(&update_of(1, 0, 1, &s)), Reason::UnknownAnyTag(100));
    // parent info other than 0 / 1
    let mut s = vec![4, 2];
    string(&mut s, b"x");
    assert_eq!(reason(&update_of(1, 0, 1, &s)), Reason::InvalidParentInfo(2));
}

#[test]
fn any_integers_longer_than_yrs_can_shift_are_rejected() {
    let with_int = |bytes: &[u8]| {
        let mut s = vec![8, 1];
        string(&mut s, b"a");
        s.extend_from_slice(&[1, 125]);
        s.extend_from_slice(bytes);
        update_of(1, 0, 1, &s)
    };
    // 9 bytes (62 bits) pass and decode, 10 do not
    let nine = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    decode_update(&with_int(&nine)).unwrap();
    let ten = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(reason(&with_int(&ten)), Reason::IntegerOverflow("Any integer"));
}

#[test]
fn state_vectors_are_bounded() {
    // 2^28 entries claimed in 7 bytes; 1000 in 4
    let mut sv = Vec::new();
    var(&mut sv, 1 << 28);
    sv.extend_from_slice(&[1, 1]);
    assert!(matches!(
        validate_state_vector(&sv, &limits()).unwrap_err().reason,
        Reason::OverLimit { .. }
    ));
    assert!(decode_state_vector(&sv).is_err());
    let mut sv = Vec::new();
    var(&mut sv, 1000);
    sv.extend_from_slice(&[1, 1]);
    assert!(matches!(
        validate_state_vector(&sv, &limits()).unwrap_err().reason,
        Reason::CountExceedsBytes { .. }
    ));
    // over the configured limit
    let l = Limits {
        update: UpdateLimits {
            max_state_vector_entries: 1,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    let two = [2, 1, 5, 2, 6];
    assert!(validate_state_vector(&two, &limits()).is_ok());
    assert!(matches!(
        validate_state_vector(&two, &l).unwrap_err().reason,
        Reason::OverLimit { .. }
    ));
    // the limit applies to sync step 1 frames
    let mut frame = vec![0, 0];
    string(&mut frame, &two);
    assert!(Message::decode(&frame, &limits()).is_ok());
    assert!(matches!(
        Message::decode(&frame, &l),
        Err(DecodeError::InvalidUpdate(_))
    ));
    // client ids over 53 bits, clocks over u32
    let mut big = vec![1];
    var(&mut big, 1 << 53);
    big.push(1);
    assert_eq!(
        validate_state_vector(&big, &limits()).unwrap_err().reason,
        Reason::ClientIdOutOfRange(1 << 53)
    );
    let mut big = vec![1, 1];
    var(&mut big, 1 << 32);
    assert!(validate_state_vector(&big, &limits()).is_err());
    // a repeated client (found by fuzzing: yrs keeps the last clock, set_max kept the largest)
    let dup = [7, 15, 2, 196, 7, 189, 1, 4, 7, 35, 5, 1, 44, 196, 7, 0, 7, 1];
    assert_eq!(
        validate_state_vector(&dup, &limits()).unwrap_err().reason,
        Reason::DuplicateClient {
            what: "state vector",
            client: 964
        }
    );
    // and what passes decodes to the same state vector yrs reads
    let doc = Doc::with_client_id(42);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, "abc");
    let bytes = yrs::updates::encoder::Encode::encode_v1(&doc.transact().state_vector());
    assert_eq!(
        decode_state_vector(&bytes).unwrap(),
        StateVector::decode_v1(&bytes).unwrap()
    );
}

// ------------------------------------------------------------------ acceptance

/// A document using every content yrs clients produce: text with formats and embeds, maps
/// with nested text and Any values, arrays, XML elements with attributes, a sub-document,
/// binary values, deletes.
fn yrs_rich_update() -> Vec<u8> {
    use std::collections::HashMap;
    use std::sync::Arc;
    use yrs::types::Attrs;
    use yrs::{
        Any, Array, ArrayPrelim, Map, MapPrelim, TextPrelim, Xml, XmlElementPrelim, XmlFragment,
        XmlTextPrelim,
    };
    let doc = Doc::with_client_id(4_294_967_295);
    let text = doc.get_or_insert_text("t");
    let map = doc.get_or_insert_map("m");
    let arr = doc.get_or_insert_array("a");
    let xml = doc.get_or_insert_xml_fragment("notes");
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "Hello, world");
    let bold: Attrs = HashMap::from([(Arc::from("bold"), Any::Bool(true))]);
    text.format(&mut txn, 0, 5, bold);
    text.insert_embed(
        &mut txn,
        5,
        Any::from(HashMap::from([("image".to_owned(), Any::from("x.png"))])),
    );
    text.remove_range(&mut txn, 7, 2);
    map.insert(&mut txn, "n", 3.5);
    map.insert(&mut txn, "big", Any::Number(yrs::Number::Int(1 << 40)));
    map.insert(&mut txn, "bin", Any::Buffer(Arc::from(&b"\x00\x01"[..])));
    map.insert(
        &mut txn,
        "list",
        Any::from(vec![Any::Null, Any::Undefined, Any::from("s")]),
    );
    let inner = map.insert(&mut txn, "text", TextPrelim::new("nested"));
    inner.insert(&mut txn, 0, ">");
    let sub = map.insert(&mut txn, "map", MapPrelim::default());
    sub.insert(&mut txn, "k", "v");
    map.insert(&mut txn, "doc", Doc::new());
    map.remove(&mut txn, "n");
    arr.insert_range(&mut txn, 0, [1, 2, 3, 4]);
    arr.insert(&mut txn, 2, ArrayPrelim::default());
    arr.remove_range(&mut txn, 0, 1);
    let p = xml.insert(&mut txn, 0, XmlElementPrelim::empty("paragraph"));
    p.insert_attribute(&mut txn, "textAlign", "left");
    let t = p.insert(&mut txn, 0, XmlTextPrelim::new("Notes: "));
    t.insert(&mut txn, 7, "bold");
    xml.insert(&mut txn, 1, XmlElementPrelim::empty("heading"));
    drop(txn);
    let out = doc.transact().encode_state_as_update_v1(&StateVector::default());
    out
}

#[test]
fn updates_yrs_encodes_are_accepted_and_decode() {
    for u in [yrs_text_update(), yrs_rich_update(), vec![0, 0]] {
        let s = validate_update(&u, &limits()).unwrap_or_else(|e| panic!("{e}: {u:?}"));
        decode_update(&u).unwrap();
        assert!(s.structs > 0 || u == [0, 0]);
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn updates_js_yjs_encodes_are_accepted() {
    let all: Value = serde_json::from_str(include_str!("fixtures/y-protocols.json")).unwrap();
    let mut seen = 0;
    for (name, f) in all.as_object().unwrap() {
        let Some(hex) = f["expect"]["update_hex"].as_str() else {
            continue;
        };
        let u = unhex(hex);
        validate_update(&u, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        decode_update(&u).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} JS updates in the fixtures");
}

#[test]
fn decode_update_refuses_before_yrs_sees_the_bytes() {
    assert!(matches!(
        decode_update(&nested_any(100_000, false)),
        Err(DecodeError::InvalidUpdate(_))
    ));
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(decode_update(&yrs_text_update()).unwrap())
        .unwrap();
    assert_eq!(
        doc.get_or_insert_text("t").get_string(&doc.transact()),
        "hlo wörld ✓ 😀"
    );
}

// ------------------------------------------------------------------ proptests

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use yrs::types::Attrs;
    use yrs::{Any, Array, Map, MapPrelim, TextPrelim, Xml, XmlElementPrelim, XmlFragment, XmlTextPrelim};

    fn any_value() -> impl Strategy<Value = Any> {
        let leaf = prop_oneof![
            Just(Any::Null),
            Just(Any::Undefined),
            any::<bool>().prop_map(Any::Bool),
            any::<i64>().prop_map(|i| Any::Number(yrs::Number::Int(i))),
            any::<f64>().prop_map(Any::from),
            (-1000i32..1000).prop_map(|i| Any::from(f64::from(i))),
            ".{0,8}".prop_map(Any::from),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| Any::Buffer(Arc::from(b))),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Any::from),
                proptest::collection::hash_map(".{0,4}", inner, 0..4).prop_map(Any::from),
            ]
        })
    }

    #[derive(Debug, Clone)]
    enum Op {
        TextInsert(u32, String),
        TextDelete(u32, u32),
        TextFormat(u32, u32, Any),
        TextEmbed(u32, Any),
        MapSet(String, Any),
        MapText(String, String),
        MapMap(String),
        MapDoc(String),
        MapRemove(String),
        ArrayInsert(u32, Any),
        ArrayDelete(u32, u32),
        ArrayMove(u32, u32),
        XmlParagraph(u32, String, bool),
        XmlRemove(u32),
        Sync,
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = "[a-c]{1,2}";
        prop_oneof![
            (any::<u32>(), ".{0,12}").prop_map(|(i, s)| Op::TextInsert(i, s)),
            (any::<u32>(), 0u32..6).prop_map(|(i, n)| Op::TextDelete(i, n)),
            (any::<u32>(), 0u32..6, any_value()).prop_map(|(i, n, v)| Op::TextFormat(i, n, v)),
            (any::<u32>(), any_value()).prop_map(|(i, v)| Op::TextEmbed(i, v)),
            (key, any_value()).prop_map(|(k, v)| Op::MapSet(k, v)),
            (key, ".{0,6}").prop_map(|(k, s)| Op::MapText(k, s)),
            key.prop_map(Op::MapMap),
            key.prop_map(Op::MapDoc),
            key.prop_map(Op::MapRemove),
            (any::<u32>(), any_value()).prop_map(|(i, v)| Op::ArrayInsert(i, v)),
            (any::<u32>(), 0u32..4).prop_map(|(i, n)| Op::ArrayDelete(i, n)),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Op::ArrayMove(a, b)),
            (any::<u32>(), ".{0,8}", any::<bool>()).prop_map(|(i, s, b)| Op::XmlParagraph(i, s, b)),
            any::<u32>().prop_map(Op::XmlRemove),
            Just(Op::Sync),
        ]
    }

    fn within(i: u32, len: u32) -> u32 {
        if len == 0 {
            0
        } else {
            i % (len + 1)
        }
    }

    /// Applies `op` to `doc` in one transaction and returns that transaction's update.
    fn apply(doc: &Doc, op: &Op) -> Vec<u8> {
        let text = doc.get_or_insert_text("t");
        let map = doc.get_or_insert_map("m");
        let arr = doc.get_or_insert_array("a");
        let xml = doc.get_or_insert_xml_fragment("notes");
        let mut txn = doc.transact_mut();
        let tl = text.len(&txn);
        match op {
            Op::TextInsert(i, s) => text.insert(&mut txn, within(*i, tl), s),
            Op::TextDelete(i, n) => {
                let at = within(*i, tl);
                text.remove_range(&mut txn, at, (*n).min(tl - at))
            }
            Op::TextFormat(i, n, v) => {
                let at = within(*i, tl);
                let attrs: Attrs = HashMap::from([(Arc::from("mark"), v.clone())]);
                text.format(&mut txn, at, (*n).min(tl - at), attrs)
            }
            Op::TextEmbed(i, v) => {
                text.insert_embed(&mut txn, within(*i, tl), v.clone());
            }
            Op::MapSet(k, v) => {
                map.insert(&mut txn, k.as_str(), v.clone());
            }
            Op::MapText(k, s) => {
                let t = map.insert(&mut txn, k.as_str(), TextPrelim::new(s.as_str()));
                t.insert(&mut txn, 0, "·");
            }
            Op::MapMap(k) => {
                let m = map.insert(&mut txn, k.as_str(), MapPrelim::default());
                m.insert(&mut txn, "x", 1.0);
            }
            Op::MapDoc(k) => {
                map.insert(&mut txn, k.as_str(), Doc::new());
            }
            Op::MapRemove(k) => {
                map.remove(&mut txn, k);
            }
            Op::ArrayInsert(i, v) => {
                let al = arr.len(&txn);
                arr.insert(&mut txn, within(*i, al), v.clone());
            }
            Op::ArrayDelete(i, n) => {
                let al = arr.len(&txn);
                let at = within(*i, al);
                arr.remove_range(&mut txn, at, (*n).min(al - at));
            }
            Op::ArrayMove(a, b) => {
                // Yjs 13 has no move: a client deletes and re-inserts
                let al = arr.len(&txn);
                if al > 0 {
                    let from = a % al;
                    if let Some(v) = arr.get(&txn, from).and_then(|o| match o {
                        yrs::Out::Any(a) => Some(a),
                        _ => None,
                    }) {
                        arr.remove(&mut txn, from);
                        let to = within(*b, al - 1);
                        arr.insert(&mut txn, to, v);
                    }
                }
            }
            Op::XmlParagraph(i, s, bold) => {
                let xl = xml.len(&txn);
                let p = xml.insert(&mut txn, within(*i, xl), XmlElementPrelim::empty("paragraph"));
                p.insert_attribute(&mut txn, "textAlign", "left");
                let t = p.insert(&mut txn, 0, XmlTextPrelim::new(s.as_str()));
                if *bold {
                    let attrs: Attrs = HashMap::from([(Arc::from("bold"), Any::Bool(true))]);
                    let n = t.len(&txn);
                    t.format(&mut txn, 0, n, attrs);
                }
            }
            Op::XmlRemove(i) => {
                let xl = xml.len(&txn);
                if xl > 0 {
                    xml.remove_range(&mut txn, i % xl, 1);
                }
            }
            Op::Sync => {}
        }
        txn.encode_update_v1()
    }

    fn must_accept(bytes: &[u8], what: &str) -> Result<(), TestCaseError> {
        if let Err(e) = validate_update(bytes, &limits()) {
            return Err(TestCaseError::fail(format!("{what} rejected: {e}; {bytes:?}")));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = validate_update(&bytes, &limits());
            let _ = validate_state_vector(&bytes, &limits());
            check_consistent(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_valid_updates(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        ) {
            for base in [yrs_rich_update(), yrs_text_update()] {
                let mut bad = base.clone();
                for (i, b, kind) in &edits {
                    let at = i % (bad.len() + 1);
                    match kind {
                        0 if at < bad.len() => bad[at] = *b,
                        1 => bad.insert(at, *b),
                        _ if at < bad.len() => { bad.remove(at); }
                        _ => {}
                    }
                }
                check_consistent(&bad);
            }
        }

        #[test]
        fn every_update_yrs_encodes_is_accepted(
            ids in (1u64..=(1 << 53) - 1, prop_oneof![1u64..=u64::from(u32::MAX), 1u64..=(1 << 53) - 1]),
            ops in proptest::collection::vec((any::<bool>(), op()), 1..24),
        ) {
            // UTF-16 offsets, as Yjs counts
            let new_doc = |id: u64| Doc::with_options(yrs::Options {
                offset_kind: yrs::OffsetKind::Utf16,
                ..yrs::Options::with_client_id(yrs::block::ClientID::new(id))
            });
            let a = new_doc(ids.0);
            let b = new_doc(if ids.1 == ids.0 { ids.0 ^ 1 } else { ids.1 });
            for (on_a, op) in &ops {
                let (doc, other) = if *on_a { (&a, &b) } else { (&b, &a) };
                if let Op::Sync = op {
                    let sv = other.transact().state_vector();
                    let diff = doc.transact().encode_diff_v1(&sv);
                    must_accept(&diff, "diff")?;
                    other.transact_mut().apply_update(decode_update(&diff).unwrap()).unwrap();
                    continue;
                }
                let u = apply(doc, op);
                must_accept(&u, &format!("update of {op:?}"))?;
                check_consistent(&u);
            }
            for doc in [&a, &b] {
                let full = doc.transact().encode_state_as_update_v1(&StateVector::default());
                must_accept(&full, "full state")?;
                let sv = yrs::updates::encoder::Encode::encode_v1(&doc.transact().state_vector());
                prop_assert!(validate_state_vector(&sv, &limits()).is_ok());
            }
        }
    }
}

/// Writes the fuzz seed corpus: `PLENARY_FUZZ_CORPUS=protocol/fuzz/corpus/validate_update
/// cargo test --release -p plenary-protocol --test validate -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore]
fn write_fuzz_seed_corpus() {
    let dir =
        std::path::PathBuf::from(std::env::var("PLENARY_FUZZ_CORPUS").expect("set PLENARY_FUZZ_CORPUS"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seeds: Vec<(String, Vec<u8>)> = vec![
        ("yrs-text".into(), yrs_text_update()),
        ("yrs-rich".into(), yrs_rich_update()),
        ("yrs-empty".into(), vec![0, 0]),
        ("any-nested-8".into(), nested_any(8, false)),
        ("any-map-nested-8".into(), nested_any(8, true)),
        ("delete-set".into(), vec![0, 2, 9, 2, 0, 2, 5, 1, 3, 1, 7, 4]),
    ];
    let doc = Doc::with_client_id(3);
    doc.get_or_insert_text("t")
        .insert(&mut doc.transact_mut(), 0, "abc");
    seeds.push((
        "yrs-state-vector".into(),
        yrs::updates::encoder::Encode::encode_v1(&doc.transact().state_vector()),
    ));
    let all: Value = serde_json::from_str(include_str!("fixtures/y-protocols.json")).unwrap();
    for (name, f) in all.as_object().unwrap() {
        if let Some(hex) = f["expect"]["update_hex"].as_str() {
            seeds.push((format!("yjs-{name}"), unhex(hex)));
        }
    }
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
    }
}

#[test]
fn sub_documents_are_refused_where_they_are_not_allowed() {
    use yrs::Map;
    let doc = Doc::with_client_id(9);
    let map = doc.get_or_insert_map("m");
    let with_subdoc = {
        let mut txn = doc.transact_mut();
        map.insert(&mut txn, "doc", Doc::new());
        txn.encode_update_v1()
    };
    // accepted by default (stock clients may use them)...
    validate_update(&with_subdoc, &limits()).unwrap();
    // ...refused by a server whose documents have none (yrs leaks each one it integrates)
    let strict = Limits {
        update: UpdateLimits {
            allow_subdocs: false,
            ..UpdateLimits::default()
        },
        ..Limits::default()
    };
    let err = validate_update(&with_subdoc, &strict).unwrap_err();
    assert!(matches!(err.reason, Reason::UnsupportedContent(_)), "{err}");
    // everything else still passes under the strict limits
    validate_update(&yrs_text_update(), &strict).unwrap();
}
