//! Byte fixtures produced by the JavaScript `y-protocols` package (`tests/fixtures/generate.mjs`
//! at the repository root regenerates them): every one decodes to what JS meant, re-encodes to
//! the same bytes, and every malformed one is a typed error.

use plenary_protocol::{Limits, Message};
use serde_json::Value;
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, Transact, Update};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixtures() -> serde_json::Map<String, Value> {
    let text = include_str!("fixtures/y-protocols.json");
    serde_json::from_str::<Value>(text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn sv_json(sv: &yrs::StateVector) -> Value {
    let mut m = serde_json::Map::new();
    for (c, clock) in sv.iter() {
        m.insert(c.get().to_string(), Value::from(*clock));
    }
    Value::Object(m)
}

#[test]
fn javascript_fixtures_decode_and_round_trip() {
    let all = fixtures();
    assert!(all.len() >= 20, "fixture file looks truncated");
    for (name, f) in all {
        let bytes = unhex(f["hex"].as_str().unwrap());
        let expect = &f["expect"];
        let decoded = Message::decode(&bytes, &Limits::default());
        if expect["error"] == Value::Bool(true) {
            assert!(decoded.is_err(), "{name}: expected an error, got {decoded:?}");
            continue;
        }
        let msg = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        match (expect["type"].as_str().unwrap(), &msg) {
            ("sync_step1", Message::SyncStep1(sv)) | ("saved_ack", Message::SavedAck(sv)) => {
                assert_eq!(sv_json(sv), expect["state_vector"], "{name}");
            }
            ("sync_step2", Message::SyncStep2(u)) | ("sync_update", Message::Update(u)) => {
                assert_eq!(u, &unhex(expect["update_hex"].as_str().unwrap()), "{name}");
                let update = Update::decode_v1(u).unwrap_or_else(|e| panic!("{name}: {e}"));
                if let Some(t) = expect["doc"].get("t").and_then(Value::as_str) {
                    let doc = yrs::Doc::new();
                    let mut txn = doc.transact_mut();
                    if let Some(base) = expect["base"].as_str() {
                        let base_hex = fixtures()[base]["expect"]["update_hex"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        txn.apply_update(Update::decode_v1(&unhex(&base_hex)).unwrap())
                            .unwrap();
                    }
                    txn.apply_update(update).unwrap();
                    let text = txn.get_text("t").unwrap();
                    assert_eq!(text.get_string(&txn), t, "{name}");
                }
            }
            ("awareness", Message::Awareness(a)) => {
                let clients = expect["clients"].as_array().unwrap();
                assert_eq!(a.entries.len(), clients.len(), "{name}");
                for (e, c) in a.entries.iter().zip(clients) {
                    assert_eq!(e.client_id, c["client_id"].as_u64().unwrap(), "{name}");
                    assert_eq!(u64::from(e.clock), c["clock"].as_u64().unwrap(), "{name}");
                    assert_eq!(e.state, c["state_json"].as_str().unwrap(), "{name}");
                }
            }
            ("query_awareness", Message::QueryAwareness) => {}
            ("auth_permission_denied", Message::Auth(Some(reason))) => {
                assert_eq!(reason, expect["reason"].as_str().unwrap(), "{name}");
            }
            (t, m) => panic!("{name}: expected {t}, decoded {m:?}"),
        }
        assert_eq!(
            msg.encode(),
            bytes,
            "{name}: re-encoding differs from the JS bytes"
        );
    }
}
