//! `cargo +nightly fuzz run decode` from `protocol/`: decoding untrusted frames never panics,
//! and whatever decodes re-encodes to something that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plenary_protocol::{message::decode_update, Limits, Message};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = Message::decode(data, &limits) {
        let again = Message::decode(&msg.encode(), &limits).expect("re-encoded message decodes");
        assert_eq!(again, msg);
        if let Message::Update(u) | Message::SyncStep2(u) = &msg {
            let _ = decode_update(u);
        }
    }
});
