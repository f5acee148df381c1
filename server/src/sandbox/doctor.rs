//! `plenary doctor --data-dir DIR [--doc m/g] [--repair]`: finds documents that do not load
//! (the server quarantines them) and, with `--repair`, rebuilds each from the longest prefix of
//! its log that loads: snapshot + first k updates, each candidate tried in a sandbox child so
//! that a segfault kills only the child. The result is written back as the document's snapshot,
//! and its log dropped, in one transaction. Run it with the server stopped.

use super::{Request, Response, Sandbox, SandboxSettings};
use crate::config::DoctorArgs;
use crate::metrics::Metrics;
use crate::store::sqlite::SqliteStore;
use crate::store::{Durability, Store, StoredDoc};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact};

/// A repair candidate may take this long to replay in the child.
const DEADLINE: Duration = Duration::from_secs(30);

pub async fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let store = SqliteStore::open_async(&args.data_dir, Durability::Power)
        .await
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let program = std::env::current_exe().context("locating this executable")?;
    let keys = match &args.doc {
        Some(d) => vec![d.clone()],
        None => store.doc_keys().await?,
    };
    let sandbox = Sandbox::start(
        SandboxSettings {
            program,
            workers: 1,
            deadline: DEADLINE,
            test_crash: false,
        },
        Arc::new(Metrics::new()),
    );
    let mut unrepaired = 0usize;
    let mut bad = 0usize;
    for key in &keys {
        let stored = store.load_doc(key).await?;
        let Err(why) = loads(&sandbox, key, stored.snapshot.clone(), stored.updates.clone()).await else {
            continue;
        };
        bad += 1;
        println!("{key}: does not load: {why}");
        if !args.repair {
            unrepaired += 1;
            continue;
        }
        match repair(&sandbox, &store, key, &stored).await {
            Ok(kept) => println!(
                "{key}: repaired: kept {kept} of {} logged updates, dropped {}",
                stored.updates.len(),
                stored.updates.len() - kept
            ),
            Err(e) => {
                unrepaired += 1;
                println!("{key}: not repaired: {e}");
            }
        }
    }
    println!("{} documents checked, {bad} did not load", keys.len());
    if unrepaired > 0 {
        anyhow::bail!("{unrepaired} documents do not load (run with --repair to rebuild them)");
    }
    Ok(())
}

/// Does snapshot + updates load, in a child?
async fn loads(
    sandbox: &Sandbox,
    key: &str,
    snapshot: Option<Vec<u8>>,
    updates: Vec<Vec<u8>>,
) -> Result<(), String> {
    let req = Request::LoadStored {
        doc: key.to_owned(),
        snapshot,
        updates,
    };
    match sandbox.call(key, req).await {
        Ok(Response::Ok) => Ok(()),
        Ok(Response::Refused(why)) => Err(why),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Finds the longest loadable prefix (binary search: a prefix that fails to load fails at a
/// given update, so every longer prefix fails too) and writes it back. Returns how many
/// logged updates were kept.
async fn repair(
    sandbox: &Sandbox,
    store: &dyn Store,
    key: &str,
    stored: &StoredDoc,
) -> anyhow::Result<usize> {
    let n = stored.updates.len();
    if let Err(why) = loads(sandbox, key, stored.snapshot.clone(), Vec::new()).await {
        anyhow::bail!("its snapshot itself does not load ({why}); restore it from a backup");
    }
    // Invariant: prefix `lo` loads, prefix `hi` does not.
    let (mut lo, mut hi) = (0usize, n);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if loads(
            sandbox,
            key,
            stored.snapshot.clone(),
            stored.updates[..mid].to_vec(),
        )
        .await
        .is_ok()
        {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let prefix = StoredDoc {
        snapshot: stored.snapshot.clone(),
        updates: stored.updates[..lo].to_vec(),
        head: 0,
    };
    // Vetted above in a child: replaying it here is safe.
    let doc = prefix.to_doc().map_err(anyhow::Error::msg)?;
    let (snapshot, sv, fingerprint) = {
        let txn = doc.transact();
        (
            txn.encode_state_as_update_v1(&StateVector::default()),
            txn.state_vector().encode_v1(),
            super::vet::fingerprint(&txn, super::vet::is_plenary(key)),
        )
    };
    let check = Request::CheckSnapshot {
        doc: key.to_owned(),
        snapshot: snapshot.clone(),
        sv,
        fingerprint,
    };
    match sandbox.call(key, check).await {
        Ok(Response::Ok) => {}
        other => anyhow::bail!("the rebuilt snapshot does not check: {other:?}"),
    }
    // Replaces what was read, up to its head: updates logged since stay after it.
    store.compact(key, snapshot, stored.head).await?;
    Ok(lo)
}
