//! What another node sends is decoded as untrusted input: the three inter-node decoders
//! (doorbell rings, awareness, directory changes) are fed many thousands of mutations of valid
//! payloads (bytes replaced, deleted, repeated, cut, JSON pieces inserted, numbers swapped for
//! extreme ones). None may panic, and what they accept must hold what the code after them
//! relies on.

use super::{directory_sync, presence, rings};
use plenary_protocol::{AwarenessEntry, MeetingId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 20_000;
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "\\",
    "\\u0000",
    "null",
    "true",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e999",
    "\"AAAA\"",
    "\"!!\"",
    "[[[[[[[[",
    "\u{1F600}",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1.5",
    "1e3",
];

/// Mutations of `seed`, valid UTF-8 (payloads arrive as text).
fn mutations<'a>(seed: &str, rng: &'a mut StdRng) -> impl Iterator<Item = String> + 'a {
    let seed = seed.as_bytes().to_vec();
    std::iter::from_fn(move || {
        let mut b = seed.clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..=b.len());
            match rng.gen_range(0..6) {
                // a number swapped for an extreme one
                5 => {
                    let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
                    if let Some(&start) = digits.get(rng.gen_range(0..digits.len().max(1))) {
                        let end = (start..b.len())
                            .find(|&i| !b[i].is_ascii_digit())
                            .unwrap_or(b.len());
                        let piece = NUMBERS[rng.gen_range(0..NUMBERS.len())];
                        b.splice(start..end, piece.bytes());
                    }
                }
                0 if at < b.len() => b[at] = rng.gen(),
                1 => {
                    let end = rng.gen_range(at..=b.len().min(at + 12));
                    b.drain(at..end);
                }
                2 => {
                    let end = rng.gen_range(at..=b.len().min(at + 40));
                    let copy = b[at..end].to_vec();
                    b.splice(at..at, copy.iter().cycle().take(copy.len() * 3).copied());
                }
                3 => b.truncate(at),
                _ => {
                    let piece = PIECES[rng.gen_range(0..PIECES.len())];
                    b.splice(at..at, piece.bytes());
                }
            }
        }
        Some(String::from_utf8_lossy(&b).into_owned())
    })
}

/// Runs `check` on every mutation of `seed` that `decode` accepts; enough must be accepted for
/// the checks to mean something (changed numbers and strings get past the parser).
fn each_accepted<T>(seed: &str, decode: impl Fn(&str) -> Option<T>, mut check: impl FnMut(&str, T)) {
    let mut rng = StdRng::seed_from_u64(0x706c_656e);
    let mut accepted = 0;
    for payload in mutations(seed, &mut rng).take(ROUNDS) {
        if let Some(got) = decode(&payload) {
            accepted += 1;
            check(&payload, got);
        }
    }
    assert!(accepted > ROUNDS / 100, "{accepted} accepted");
}

#[test]
fn rings_that_decode_are_well_formed_and_any_watermark_judges_them_without_panicking() {
    let seed = rings::encode_at(
        "node-a",
        Some(1_764_000_000_000),
        vec![
            rings::Ring {
                doc: "m1/g1".into(),
                first: 3,
                last: 5,
                updates: Some(vec![b"a".to_vec(), vec![0, 1, 2], Vec::new()]),
            },
            rings::Ring {
                doc: "m1/plenary".into(),
                first: 9,
                last: 12,
                updates: None,
            },
        ],
    );
    each_accepted(
        &seed[0],
        |p| rings::decode(p).ok(),
        |payload, got| {
            for ring in &got.rings {
                assert!(ring.first >= 1 && ring.last >= ring.first, "{payload}");
                if let Some(us) = &ring.updates {
                    assert_eq!(us.len() as i128, ring.last as i128 - ring.first as i128 + 1);
                }
                for w in [
                    -1,
                    0,
                    ring.first - 1,
                    ring.first,
                    ring.last - 1,
                    ring.last,
                    i64::MAX,
                ] {
                    match rings::on_ring(w, ring) {
                        rings::Next::Apply(us) => {
                            assert!(w < ring.last && !us.is_empty());
                            assert_eq!(
                                us.len() as i128,
                                ring.last as i128 - w.max(ring.first - 1) as i128
                            );
                        }
                        rings::Next::Fetch { after, upto } => assert!(after == w && upto == ring.last),
                        rings::Next::Stale => assert!(ring.last <= w),
                    }
                }
            }
        },
    );
}

#[test]
fn awareness_payloads_that_decode_encode_again_and_read_back_the_same() {
    let entry = |id, clock, state: &str| AwarenessEntry {
        client_id: id,
        clock,
        state: state.into(),
    };
    let (seed, _) = presence::encode(
        "node-b",
        vec![presence::RoomItem {
            room: "m1/g1".into(),
            entries: vec![entry(7, 2, r#"{"user":{"name":"Ana"}}"#), entry(8, 1, "null")],
            counts: Some((3, 1)),
            query: true,
        }],
    );
    each_accepted(
        &seed[0],
        |p| presence::decode(p).ok(),
        |_, heard| {
            let (again, dropped) = presence::encode(&heard.node, heard.rooms.clone());
            let said: Vec<_> = heard
                .rooms
                .iter()
                .filter(|r| !r.entries.is_empty() || r.counts.is_some() || r.query)
                .collect();
            let mut back = Vec::new();
            for p in &again {
                let h = presence::decode(p).expect("what we encode decodes");
                assert_eq!(h.node, heard.node);
                back.extend(h.rooms);
            }
            if dropped.is_empty() && said.len() == back.len() {
                // split into parts, a room may come back in several items: compare the entries
                let entries = |rooms: &[&presence::RoomItem]| -> Vec<AwarenessEntry> {
                    rooms.iter().flat_map(|r| r.entries.clone()).collect()
                };
                assert_eq!(entries(&said), entries(&back.iter().collect::<Vec<_>>()));
            }
        },
    );
}

#[test]
fn directory_changes_that_decode_name_a_valid_meeting() {
    let seed = directory_sync::encode("node-c", &MeetingId::parse("regional-2026").unwrap());
    each_accepted(&seed, directory_sync::decode, |_, (_, meeting)| {
        assert_eq!(MeetingId::parse(meeting.as_str()).unwrap(), meeting);
    });
}
