//! Minutes: the curated summary as a document for the secretariat (`summary.docx`,
//! `summary.pdf`; contract, "More exports").
//!
//! Pure functions, no HTTP: the caller builds a [`MinutesInput`] from a curated
//! [`Summary`](crate::plenary::summary::Summary) (live or an adopted version), optionally the
//! adopted [`Version`] and each group's notes read with [`notes::read_notes`], and gets bytes.
//! Every renderer numbers conclusions through [`numbering::number`], the one `G.N` rule.
//! For an adopted version: `Version { label: rec.label, adopted_at: rec.created_at }` and the
//! summary parsed from `rec.summary_json`.

pub mod docx;
pub mod notes;
pub mod numbering;
pub mod pdf;

#[cfg(test)]
mod tests;

use crate::plenary::summary::Summary;
use std::collections::HashMap;

pub use docx::render_docx;
pub use notes::{read_notes, Block, Inline, ListItem, Marks};
pub use numbering::{labels_by_key, number, NumberedGroup, NumberedItem};
pub use pdf::render_pdf;

/// An adopted version of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The moderator's label, e.g. "Final".
    pub label: String,
    /// RFC 3339; shown as "22 November 2023 16:05 UTC".
    pub adopted_at: String,
}

/// What the minutes show.
#[derive(Debug, Clone)]
pub struct MinutesInput {
    /// The curated summary (hidden and blank items already left out).
    pub summary: Summary,
    /// Set for an adopted version's files.
    pub version: Option<Version>,
    /// Group id → its notes. When `Some`, an annex "Notes of the working groups" follows the
    /// closing text, one section per group of the summary (in curated order).
    pub notes: Option<HashMap<String, Vec<Block>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MinutesError {
    #[error("building the DOCX file: {0}")]
    Docx(String),
    #[error("building the PDF file: {0}")]
    Pdf(String),
    #[error("the bundled font cannot be read")]
    Font,
    #[error("reading the notes: {0}")]
    Store(String),
}

/// Each group's document as the store holds it (documents `{meeting}/{group}`), for the annex:
/// one entry per group of `summary`, by group id. Read them with [`notes_of`].
pub async fn stored_notes(
    store: &dyn crate::store::Store,
    summary: &Summary,
) -> Result<Vec<(String, crate::store::StoredDoc)>, MinutesError> {
    let mut out = Vec::with_capacity(summary.groups.len());
    for g in &summary.groups {
        let stored = store
            .load_doc(&format!("{}/{}", summary.meeting.id, g.id))
            .await
            .map_err(|e| MinutesError::Store(e.to_string()))?;
        out.push((g.id.clone(), stored));
    }
    Ok(out)
}

/// The notes of each stored group document (CPU: replays each one; run it off the async
/// workers).
pub fn notes_of(
    stored: &[(String, crate::store::StoredDoc)],
) -> Result<HashMap<String, Vec<Block>>, MinutesError> {
    use yrs::Transact;
    let mut out = HashMap::new();
    for (group, stored) in stored {
        let doc = stored.to_doc().map_err(MinutesError::Store)?;
        out.insert(group.clone(), read_notes(&doc.transact()));
    }
    Ok(out)
}

/// The title line of the document: the meeting title, or a neutral one when it is empty.
pub(crate) fn title(input: &MinutesInput) -> String {
    let t = input.summary.meeting.title.trim();
    if t.is_empty() {
        "Summary of conclusions".to_owned()
    } else {
        t.replace(['\n', '\r'], " ")
    }
}

/// "Adopted version «Final», 22 November 2023 16:05 UTC".
pub(crate) fn version_line(v: &Version) -> String {
    format!(
        "Adopted version \u{ab}{}\u{bb}, {}",
        v.label.trim(),
        human_time(&v.adopted_at)
    )
}

/// The version line, or, for the live summary, a warning that it is not an adopted text.
pub(crate) fn status_line(input: &MinutesInput) -> String {
    match &input.version {
        Some(v) => version_line(v),
        None => LIVE_MARK.to_owned(),
    }
}

pub(crate) const LIVE_MARK: &str = "Live summary, not an adopted version";

/// "Generated 22 November 2023 16:05 UTC".
pub(crate) fn generated_line(input: &MinutesInput) -> String {
    format!("Generated {}", human_time(&input.summary.generated_at))
}

/// An RFC 3339 time as "22 November 2023 16:05 UTC"; anything else is shown as given.
pub fn human_time(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(rfc3339.trim(), &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{} {} {} {:02}:{:02} UTC",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => rfc3339.trim().to_owned(),
    }
}

/// Paragraphs of a free text (intro, closing): split at blank lines; single line breaks stay.
pub(crate) fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(cur.join("\n"));
                cur.clear();
            }
        } else {
            cur.push(line.trim_end());
        }
    }
    if !cur.is_empty() {
        out.push(cur.join("\n"));
    }
    out
}

pub(crate) const ANNEX_TITLE: &str = "Annex: Notes of the working groups";
pub(crate) const NO_CONCLUSIONS: &str = "No conclusions.";
pub(crate) const NO_NOTES: &str = "No notes.";
pub(crate) const DRAFT_MARK: &str = "(draft)";
