//! What the sandbox costs: µs per keystroke-sized update through a child process vs applied
//! in-process, on an empty, a 50 KB and a 500 KB document, one update per request and in
//! batches; and what seeding a replica costs. Run with
//! `cargo test --release -p plenary-server --test sandbox_bench -- --ignored --nocapture`.

use plenary_server::metrics::Metrics;
use plenary_server::sandbox::{Request, Response, Sandbox, SandboxSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update, WriteTxn};

/// A group document whose notes text holds about `bytes` bytes, typed in 100-byte edits.
fn document(bytes: usize) -> Doc {
    let d = Doc::with_client_id(1);
    let chunk =
        "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut l\n";
    for _ in 0..bytes / chunk.len() {
        let mut txn = d.transact_mut();
        let t = txn.get_or_insert_text("t");
        let len = t.len(&txn);
        t.insert(&mut txn, len, chunk);
    }
    d
}

/// `n` one-character edits by a second client, appended at the end, as a typist makes them.
fn keystrokes(base: &Doc, n: usize) -> Vec<Vec<u8>> {
    let typist = Doc::with_client_id(2);
    let state = base.transact().encode_state_as_update_v1(&StateVector::default());
    typist
        .transact_mut()
        .apply_update(Update::decode_v1(&state).unwrap())
        .unwrap();
    (0..n)
        .map(|_| {
            let mut txn = typist.transact_mut();
            let t = txn.get_or_insert_text("t");
            let len = t.len(&txn);
            t.insert(&mut txn, len, "k");
            txn.encode_update_v1()
        })
        .collect()
}

fn in_process(base: &Doc, updates: &[Vec<u8>]) -> f64 {
    let d = Doc::new();
    let state = base.transact().encode_state_as_update_v1(&StateVector::default());
    d.transact_mut()
        .apply_update(Update::decode_v1(&state).unwrap())
        .unwrap();
    let started = Instant::now();
    for u in updates {
        let mut txn = d.transact_mut();
        txn.apply_update(Update::decode_v1(u).unwrap()).unwrap();
        let _ = txn.encode_update_v1();
    }
    started.elapsed().as_secs_f64() * 1e6 / updates.len() as f64
}

async fn through_child(sb: &Sandbox, key: &str, base: &Doc, updates: &[Vec<u8>], batch: usize) -> (f64, f64) {
    let state = base.transact().encode_state_as_update_v1(&StateVector::default());
    let gen = sb.next_gen();
    let started = Instant::now();
    let r = sb
        .call(
            key,
            Request::Load {
                doc: key.into(),
                gen,
                state,
            },
        )
        .await
        .unwrap();
    assert_eq!(r, Response::Ok);
    let seed = started.elapsed().as_secs_f64() * 1e6;
    let started = Instant::now();
    for chunk in updates.chunks(batch) {
        let r = sb
            .call(
                key,
                Request::Apply {
                    doc: key.into(),
                    gen,
                    guard: false,
                    updates: chunk.to_vec(),
                },
            )
            .await
            .unwrap();
        match r {
            Response::Verdicts(v) => assert_eq!(v.len(), chunk.len()),
            other => panic!("{other:?}"),
        }
    }
    (started.elapsed().as_secs_f64() * 1e6 / updates.len() as f64, seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sandbox_cost() {
    let sb = Sandbox::start(
        SandboxSettings {
            program: env!("CARGO_BIN_EXE_plenary").into(),
            workers: 1,
            deadline: Duration::from_secs(30),
            test_crash: false,
        },
        Arc::new(Metrics::new()),
    );
    println!("| document | in-process µs/update | child µs/update (1 per request) | child µs/update (batches of 50) | seeding the replica µs |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, size) in [("empty", 0usize), ("50 KB", 50_000), ("500 KB", 500_000)] {
        let base = document(size);
        let len = base
            .transact()
            .get_text("t")
            .map(|t| t.get_string(&base.transact()).len())
            .unwrap_or(0);
        let n = if size >= 500_000 { 100 } else { 400 };
        let ups = keystrokes(&base, n);
        let local = in_process(&base, &ups);
        let key = format!("bench/{name}");
        let (one, seed) = through_child(&sb, &key, &base, &ups, 1).await;
        let (fifty, _) = through_child(&sb, &key, &base, &ups, 50).await;
        println!("| {name} ({len} chars) | {local:.1} | {one:.1} | {fifty:.1} | {seed:.0} |");
    }
}
