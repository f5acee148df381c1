//! `protocol/fuzz/run.sh apply 300`: validator-accepted updates applied to a document built from
//! a fixed seed state, under `catch_unwind`, the way a worker would. This finds yrs failures the
//! validator cannot see structurally (see FUZZING.md): a caught panic is not a finding here
//! unless `PLENARY_FUZZ_STRICT=1`, but an abort, double panic, stack overflow, segfault, hang
//! (`-timeout`) or memory blow-up (`-rss_limit_mb`) is. Not run in CI: it fails on yrs bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plenary_protocol::{validate_update, Limits};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Once, OnceLock};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

/// A small document in the plenary layout, encoded once: text, a map and an array.
fn seed() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let doc = Doc::with_client_id(1);
        let t = doc.get_or_insert_text("t");
        let m = doc.get_or_insert_map("m");
        let a = doc.get_or_insert_array("a");
        {
            use yrs::{Array, Map};
            let mut txn = doc.transact_mut();
            t.insert(&mut txn, 0, "hello world");
            t.remove_range(&mut txn, 2, 3);
            m.insert(&mut txn, "k", "v");
            a.insert_range(&mut txn, 0, [1, 2, 3]);
        }
        let out = doc.transact().encode_state_as_update_v1(&StateVector::default());
        out
    })
}

fuzz_target!(|data: &[u8]| {
    static HOOK: Once = Once::new();
    let strict = std::env::var_os("PLENARY_FUZZ_STRICT").is_some();
    if !strict {
        // libfuzzer-sys' hook aborts on any panic; here a caught panic is what a worker survives.
        HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    }
    if validate_update(data, &Limits::default()).is_err() {
        return;
    }
    let run = || {
        let doc = Doc::with_client_id(2);
        let mut txn = doc.transact_mut();
        txn.apply_update(Update::decode_v1(seed()).expect("seed decodes"))
            .expect("seed applies");
        if let Ok(update) = Update::decode_v1(data) {
            let _ = txn.apply_update(update);
        }
        drop(txn);
        // what the server does next: read the state, encode it for others (root refs are
        // taken before the read transaction: getting one needs a write transaction)
        let text = doc.get_or_insert_text("t");
        let txn = doc.transact();
        let _ = text.get_string(&txn);
        let state = txn.encode_state_as_update_v1(&StateVector::default());
        let _ = txn.encode_diff_v1(&StateVector::default());
        drop(txn);
        // and a reload of what it would persist
        let again = Doc::new();
        if let Ok(u) = Update::decode_v1(&state) {
            let _ = again.transact_mut().apply_update(u);
        }
    };
    if strict {
        run();
    } else {
        let _ = catch_unwind(AssertUnwindSafe(run));
    }
});
