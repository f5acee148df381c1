//! `plenary migrate --from-data-dir DIR --to URL`: copies a store (the embedded SQLite one)
//! into another (PostgreSQL), through the [`Store`] trait only.
//!
//! The target must be empty (no meeting, no document): the copy is not one transaction, so a
//! failed copy is redone into a fresh database. Stop the server of `DIR` first: the source is
//! read call by call.

use crate::store::{DocAppend, Store, StoreError};
use std::collections::BTreeSet;

/// Updates appended per transaction while copying a document's log.
const APPEND_CHUNK: usize = 1000;

/// What [`copy`] copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub meetings: usize,
    pub tokens: usize,
    pub documents: usize,
    pub snapshots: usize,
    pub updates: usize,
    pub versions: usize,
    pub revisions: usize,
    pub admin_token: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target store is not empty ({0}): migrate into a fresh database")]
    TargetNotEmpty(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Copies everything of `from` into the empty `to`: the admin token's hash, meetings with
/// their groups, closed flags and token hashes, every document (snapshot, then its log in
/// order), adopted versions and revisions.
pub async fn copy(from: &dyn Store, to: &dyn Store) -> Result<Copied, CopyError> {
    let existing = to.meetings().await?;
    if let Some((m, _)) = existing.first() {
        return Err(CopyError::TargetNotEmpty(format!("it has meeting {}", m.id)));
    }
    if let Some(doc) = to.doc_keys().await?.first() {
        return Err(CopyError::TargetNotEmpty(format!("it has document {doc}")));
    }
    let mut copied = Copied::default();
    if let Some(h) = from.admin_token_hash().await? {
        to.set_admin_token_hash(&h).await?;
        copied.admin_token = true;
    }
    let meetings = from.meetings().await?;
    let mut docs: BTreeSet<String> = from.doc_keys().await?.into_iter().collect();
    for (m, tokens) in &meetings {
        to.insert_meeting(m, tokens).await?;
        copied.meetings += 1;
        copied.tokens += tokens.len();
        for v in from.versions(&m.id).await? {
            to.insert_version(&m.id, &v).await?;
            copied.versions += 1;
        }
        // Documents that only have revisions are listed by no log: name them from the meeting.
        docs.insert(format!("{}/plenary", m.id));
        for g in &m.groups {
            docs.insert(format!("{}/{}", m.id, g.id));
        }
    }
    for doc in &docs {
        let stored = from.load_doc(doc).await?;
        let has_content = stored.snapshot.is_some() || !stored.updates.is_empty();
        if let Some(snapshot) = stored.snapshot {
            // Logged first, so that the snapshot covers a sequence number (1) of its own and
            // a node that knows the document only by its head fetches it.
            let logged = to
                .append(vec![DocAppend {
                    doc: doc.clone(),
                    updates: vec![snapshot.clone()],
                    fence: None,
                }])
                .await?;
            let covers = logged.heads.first().copied().flatten().unwrap_or(0);
            to.compact(doc, snapshot, covers).await?;
            copied.snapshots += 1;
        }
        let mut updates = stored.updates;
        while !updates.is_empty() {
            let rest = updates.split_off(updates.len().min(APPEND_CHUNK));
            copied.updates += updates.len();
            to.append(vec![DocAppend {
                doc: doc.clone(),
                updates,
                fence: None,
            }])
            .await?;
            updates = rest;
        }
        if has_content {
            copied.documents += 1;
        }
        for r in from.revisions(doc).await? {
            if let Some((rec, data)) = from.revision(doc, r.id).await? {
                to.insert_revision(doc, &rec.created_at, &rec.reason, data)
                    .await?;
                copied.revisions += 1;
            }
        }
    }
    Ok(copied)
}

/// `plenary migrate --from-data-dir DIR --to URL`.
pub async fn run(args: &crate::config::MigrateArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let db = args.from_data_dir.join("plenary.db");
    if !db.exists() {
        anyhow::bail!(
            "no embedded store in {} (no plenary.db)",
            args.from_data_dir.display()
        );
    }
    if !super::is_postgres_url(&args.to) {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://USER@HOST:PORT/DB)");
    }
    let from =
        crate::store::sqlite::SqliteStore::open_async(&args.from_data_dir, crate::store::Durability::Process)
            .await
            .with_context(|| format!("opening the store in {}", args.from_data_dir.display()))?;
    let to = super::PostgresStore::open(&args.to)
        .await
        .context("opening the PostgreSQL store (--to)")?;
    let c = copy(&from, &to).await?;
    println!(
        "copied {} meetings ({} tokens), {} documents ({} snapshots, {} updates), {} versions, {} revisions{}",
        c.meetings,
        c.tokens,
        c.documents,
        c.snapshots,
        c.updates,
        c.versions,
        c.revisions,
        if c.admin_token { ", the admin token" } else { "" }
    );
    Ok(())
}
