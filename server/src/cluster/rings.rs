//! The doorbell's rings (pure): after a batch commits, a node tells the others which documents
//! moved and to which sequence numbers, with the update bytes when they are small. A ring
//! carries no durable state: the store's log is the truth, a receiver fills any gap from it
//! ([`on_ring`]), and a periodic check of the heads covers lost rings.
//!
//! - [`Ring`], [`encode`], [`decode`]: the payload on [`super::transport::Channel::Docs`].
//! - [`on_ring`]: what a receiver with a watermark does with a ring.

use super::transport::MAX_PAYLOAD;
use serde::{Deserialize, Serialize};

/// Documents that moved: `doc`'s updates `first..=last` are committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    pub doc: String,
    pub first: i64,
    pub last: i64,
    /// The updates themselves, in order, when they fit; else the receiver reads the log.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_b64")]
    pub updates: Option<Vec<Vec<u8>>>,
}

/// One payload: the ringing node and its rings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rings {
    pub node: String,
    pub rings: Vec<Ring>,
    /// When the node rang (unix milliseconds), for receivers to measure the cross-node lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<u64>,
}

mod opt_b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<Vec<u8>>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(us) => s.collect_seq(us.iter().map(|u| STANDARD.encode(u))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Vec<u8>>>, D::Error> {
        let v: Option<Vec<String>> = Option::deserialize(d)?;
        v.map(|us| {
            us.iter()
                .map(|u| STANDARD.decode(u).map_err(serde::de::Error::custom))
                .collect()
        })
        .transpose()
    }
}

fn json_len(r: &Rings) -> usize {
    serde_json::to_string(r).map_or(usize::MAX, |s| s.len())
}

/// Packs `rings` of `node` into payloads of at most [`MAX_PAYLOAD`] bytes: a ring whose
/// updates do not fit travels without them.
pub fn encode(node: &str, rings: Vec<Ring>) -> Vec<String> {
    encode_at(node, None, rings)
}

/// [`encode`], every payload stamped with `sent_at_ms` (unix milliseconds).
pub fn encode_at(node: &str, sent_at_ms: Option<u64>, rings: Vec<Ring>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Rings {
        node: node.to_owned(),
        rings: Vec::new(),
        sent_at_ms,
    };
    for mut ring in rings {
        if ring.updates.is_some() {
            let alone = Rings {
                node: node.to_owned(),
                rings: vec![ring.clone()],
                sent_at_ms,
            };
            if json_len(&alone) > MAX_PAYLOAD {
                ring.updates = None;
            }
        }
        cur.rings.push(ring);
        if json_len(&cur) > MAX_PAYLOAD {
            let last = cur.rings.pop();
            if !cur.rings.is_empty() {
                out.push(serde_json::to_string(&cur).unwrap_or_default());
            }
            cur.rings = last.into_iter().collect();
        }
    }
    if !cur.rings.is_empty() {
        out.push(serde_json::to_string(&cur).unwrap_or_default());
    }
    out
}

pub fn decode(payload: &str) -> Result<Rings, String> {
    let r: Rings = serde_json::from_str(payload).map_err(|e| format!("doorbell payload: {e}"))?;
    for ring in &r.rings {
        if ring.first < 1 || ring.last < ring.first {
            return Err(format!(
                "doorbell ring {}..{} of {}",
                ring.first, ring.last, ring.doc
            ));
        }
        if let Some(us) = &ring.updates {
            if us.len() as i64 != ring.last - ring.first + 1 {
                return Err(format!(
                    "doorbell ring of {} has {} updates for {}..{}",
                    ring.doc,
                    us.len(),
                    ring.first,
                    ring.last
                ));
            }
        }
    }
    Ok(r)
}

/// What a replica whose document is applied up to `watermark` does with a ring.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing new (already applied: an echo, a duplicate).
    Stale,
    /// Apply these updates (the ring's, from the first one after the watermark).
    Apply(Vec<Vec<u8>>),
    /// Read the log after `after` up to at least `upto` (a gap, or a ring without its bytes).
    Fetch { after: i64, upto: i64 },
}

pub fn on_ring(watermark: i64, ring: &Ring) -> Next {
    if ring.last <= watermark {
        return Next::Stale;
    }
    match &ring.updates {
        Some(us) if ring.first <= watermark + 1 => {
            let skip = (watermark + 1 - ring.first) as usize;
            Next::Apply(us[skip..].to_vec())
        }
        _ => Next::Fetch {
            after: watermark,
            upto: ring.last,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(doc: &str, first: i64, updates: &[&[u8]]) -> Ring {
        Ring {
            doc: doc.into(),
            first,
            last: first + updates.len() as i64 - 1,
            updates: Some(updates.iter().map(|u| u.to_vec()).collect()),
        }
    }

    #[test]
    fn rings_round_trip_and_large_updates_travel_as_a_reference() {
        let big = vec![7u8; MAX_PAYLOAD];
        let rings = vec![ring("m/a", 1, &[b"x", b"y"]), ring("m/b", 4, &[&big])];
        let payloads = encode("n1", rings);
        assert_eq!(payloads.len(), 1);
        assert!(payloads[0].len() <= MAX_PAYLOAD);
        let got = decode(&payloads[0]).expect("decode");
        assert_eq!(got.node, "n1");
        assert_eq!(got.rings[0], ring("m/a", 1, &[b"x", b"y"]));
        assert_eq!(got.rings[1].updates, None);
        assert_eq!((got.rings[1].first, got.rings[1].last), (4, 4));
    }

    #[test]
    fn many_rings_split_into_payloads_under_the_limit() {
        let rings: Vec<Ring> = (0..400)
            .map(|i| ring(&format!("meeting-{i}/group"), i + 1, &[b"0123456789"]))
            .collect();
        let payloads = encode("n", rings.clone());
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            back.extend(decode(p).expect("decode").rings);
        }
        assert_eq!(back, rings);
    }

    #[test]
    fn a_replica_applies_what_follows_its_watermark_and_fetches_gaps() {
        let r = ring("m/g", 5, &[b"5", b"6", b"7"]);
        assert_eq!(on_ring(7, &r), Next::Stale);
        assert_eq!(on_ring(9, &r), Next::Stale);
        assert_eq!(
            on_ring(4, &r),
            Next::Apply(vec![b"5".to_vec(), b"6".to_vec(), b"7".to_vec()])
        );
        assert_eq!(on_ring(5, &r), Next::Apply(vec![b"6".to_vec(), b"7".to_vec()]));
        assert_eq!(on_ring(2, &r), Next::Fetch { after: 2, upto: 7 });
        let bare = Ring { updates: None, ..r };
        assert_eq!(on_ring(4, &bare), Next::Fetch { after: 4, upto: 7 });
    }

    #[test]
    fn malformed_rings_are_refused() {
        assert!(decode("{").is_err());
        assert!(decode(r#"{"node":"n","rings":[{"doc":"m/g","first":3,"last":2}]}"#).is_err());
        assert!(
            decode(r#"{"node":"n","rings":[{"doc":"m/g","first":1,"last":2,"updates":["eA=="]}]}"#).is_err()
        );
    }
}
