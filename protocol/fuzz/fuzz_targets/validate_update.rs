//! `protocol/fuzz/run.sh validate_update 60`: the update validator never panics, and whatever it
//! accepts yrs decodes without error or panic, and the read-only look the server takes at an
//! update (`insertions`, `delete_set`, `diff_with`) does not panic either. The same for state
//! vectors. These all run inside the server process on untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plenary_protocol::message::{decode_state_vector, decode_update};
use plenary_protocol::{validate_state_vector, validate_update, Limits};
use yrs::updates::decoder::Decode;
use yrs::{IdSet, StateVector, Update};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if validate_update(data, &limits).is_ok() {
        let update = match Update::decode_v1(data) {
            Ok(u) => u,
            Err(e) => panic!("validator accepted an update yrs refuses: {e}"),
        };
        // what server/src/room/readonly.rs does with it
        let sv = StateVector::default();
        for (client, ranges) in update.insertions(true).iter() {
            for r in ranges.iter() {
                let _ = r.end > sv.get(client);
            }
        }
        let mut dels = update.delete_set().clone();
        dels.diff_with(&IdSet::default());
        let _ = dels.is_empty();
        assert!(decode_update(data).is_ok());
    }
    if validate_state_vector(data, &limits).is_ok() {
        let ours = decode_state_vector(data).expect("validated state vector decodes");
        let theirs = StateVector::decode_v1(data).expect("yrs decodes a validated state vector");
        assert_eq!(ours, theirs);
    }
});
