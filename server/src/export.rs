//! `plenary export`: the summary files of a meeting, straight from a data dir.

use crate::config::{BackupArgs, ExportArgs};
use crate::directory::Directory;
use crate::plenary::live::PlenaryState;
use crate::plenary::merge::plenary_json;
use crate::plenary::summary::{self, Summary};
use crate::store::now_rfc3339;
use crate::store::sqlite::SqliteStore;
use crate::store::{Durability, Store};
use anyhow::{bail, Context};
use plenary_protocol::{MeetingId, RoomPath};
use yrs::Transact;

/// Builds the meeting's live summary from the store, as a running server would serve it.
pub async fn summary_from_store(store: &dyn Store, meeting: &MeetingId) -> anyhow::Result<Summary> {
    let dir = Directory::load(store).await?;
    let rec = dir
        .meeting(meeting)
        .with_context(|| format!("no meeting {meeting} in this data dir"))?;
    let stored = store
        .load_doc(&RoomPath::plenary(meeting.clone()).to_string())
        .await?;
    let doc = stored.to_doc().map_err(anyhow::Error::msg)?;
    PlenaryState::build(store, &rec, &doc)
        .await
        .map_err(anyhow::Error::msg)?;
    let json = plenary_json(&doc.transact());
    Ok(summary::from_plenary(
        rec.id.as_str(),
        &rec.title,
        &json,
        now_rfc3339(),
    ))
}

pub async fn run(args: &ExportArgs) -> anyhow::Result<()> {
    if !args.data_dir.join("plenary.db").exists() {
        bail!("no plenary store in {}", args.data_dir.display());
    }
    let store = SqliteStore::open_async(&args.data_dir, Durability::Process).await?;
    export(args, &store).await
}

async fn export(args: &ExportArgs, store: &dyn Store) -> anyhow::Result<()> {
    let meeting = MeetingId::parse(&args.meeting).map_err(|e| anyhow::anyhow!("meeting id: {e}"))?;
    let (summary, version) = match &args.version {
        None => (summary_from_store(store, &meeting).await?, None),
        Some(v) => {
            let versions = store.versions(&meeting).await?;
            let rec = versions
                .iter()
                .find(|x| &x.id == v)
                .with_context(|| format!("no version {v}"))?;
            let vref = summary::VersionRef {
                id: rec.id.clone(),
                label: rec.label.clone(),
                adopted_at: rec.created_at.clone(),
            };
            (serde_json::from_str(&rec.summary_json)?, Some(vref))
        }
    };
    let input = crate::minutes::MinutesInput {
        notes: if args.notes {
            let stored = crate::minutes::stored_notes(store, &summary).await?;
            Some(crate::minutes::notes_of(&stored)?)
        } else {
            None
        },
        version: version.as_ref().map(|v| crate::minutes::Version {
            label: v.label.clone(),
            adopted_at: v.adopted_at.clone(),
        }),
        summary: summary.clone(),
    };
    std::fs::create_dir_all(&args.out)?;
    let v = version.as_ref();
    for (name, body) in [
        ("summary.json", summary::to_json_version(&summary, v).into_bytes()),
        (
            "summary.md",
            summary::to_markdown_version(&summary, v).into_bytes(),
        ),
        ("summary.html", summary::to_html_version(&summary, v).into_bytes()),
        ("summary.docx", crate::minutes::render_docx(&input)?),
        ("summary.pdf", crate::minutes::render_pdf(&input)?),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `plenary backup`: the store as one SQLite file, through SQLite's online backup API.
pub fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    if !args.data_dir.join("plenary.db").exists() {
        bail!("no plenary store in {}", args.data_dir.display());
    }
    crate::store::sqlite::backup(&args.data_dir, &args.to)
        .with_context(|| format!("backing up into {}", args.to.display()))?;
    println!("wrote {}", args.to.display());
    Ok(())
}
