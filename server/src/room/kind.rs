//! What kind of document a room holds, and what that kind adds to the room.
//!
//! - A group's notes ([`Kind::Group`]): may be closed for writing; a few milliseconds after a
//!   burst of edits the room reads the conclusions and, if they changed, hands them to the
//!   meeting's plenary, once the batches they were read from are durable (`durability`).
//! - The plenary ([`Kind::Plenary`]): merges the groups' conclusions and the meeting's titles
//!   into its document (one merge per batch), and has the sandbox guard moderators' writes
//!   (only `curation`).

use super::context::RoomContext;
use crate::plenary::live::{GroupFeed, PlenaryState};
use crate::plenary::merge::{self, Conclusion, GroupConclusions};
use crate::store::MeetingRecord;
use plenary_protocol::{GroupId, MeetingId, RoomPath};
use std::collections::HashMap;
use yrs::{Doc, Transact};

pub enum Kind {
    Group { feed: GroupFeed, closed: bool },
    Plenary(PlenaryState),
}

impl Kind {
    /// A group room's kind, closed as the directory says.
    pub fn group(ctx: &RoomContext, meeting: &MeetingId, group: &GroupId) -> Kind {
        Kind::Group {
            feed: GroupFeed::new(group.clone()),
            closed: ctx.directory.group_closed(meeting, group),
        }
    }

    /// Closed for writing (a plenary never is: its writers are guarded instead).
    pub fn closed(&self) -> bool {
        matches!(self, Kind::Group { closed: true, .. })
    }

    pub fn set_closed(&mut self, now: bool) {
        if let Kind::Group { closed, .. } = self {
            *closed = now;
        }
    }

    /// Moderators may write only `curation` (the sandbox checks it).
    pub fn guards_curation(&self) -> bool {
        matches!(self, Kind::Plenary(_))
    }

    /// Its edits feed the plenary.
    pub fn feeds_plenary(&self) -> bool {
        matches!(self, Kind::Group { .. })
    }

    /// Plenary: a group's conclusions arrived; true if a merge is now due.
    pub fn take_conclusions(&mut self, gc: GroupConclusions) -> bool {
        match self {
            Kind::Plenary(p) => {
                p.set_conclusions(gc);
                true
            }
            Kind::Group { .. } => false,
        }
    }

    /// Plenary: the meeting's titles, groups or closed flags changed; true if a merge is due.
    pub fn take_meeting(&mut self, record: &MeetingRecord) -> bool {
        match self {
            Kind::Plenary(p) => {
                p.set_meeting(record);
                true
            }
            Kind::Group { .. } => false,
        }
    }

    /// Plenary: merges into `doc` (a group it changes is stamped as edited at `now`); the v1
    /// update of what changed, if anything did.
    pub fn merge(&mut self, doc: &yrs::Doc, now: &str) -> Option<Vec<u8>> {
        match self {
            Kind::Plenary(p) => p.merge(doc, now),
            Kind::Group { .. } => None,
        }
    }

    /// Group: the conclusions in `doc` if they differ from what the plenary last took.
    pub fn changed_conclusions(&self, doc: &yrs::Doc) -> Option<GroupConclusions> {
        match self {
            Kind::Group { feed, .. } => feed.changed(doc),
            Kind::Plenary(_) => None,
        }
    }

    /// Group: the plenary took these conclusions.
    pub fn handed_over(&mut self, conclusions: Vec<Conclusion>) {
        if let Kind::Group { feed, .. } = self {
            feed.sent(conclusions);
        }
    }
}

/// Builds the merge state for a plenary room: each group document is replayed in the
/// sandbox before it is read here; a quarantined group is skipped with an error log (its
/// section keeps what the plenary shows) instead of failing the whole plenary. Without `merge`
/// (a replica: another node holds the meeting's plenary lease) nothing is read or merged.
pub async fn load_plenary(
    ctx: &RoomContext,
    meeting: &MeetingId,
    doc: &Doc,
    merge: bool,
) -> Result<(PlenaryState, Option<Vec<u8>>), String> {
    let record = ctx.directory.meeting(meeting).ok_or("meeting vanished")?;
    if !merge {
        return Ok((PlenaryState::unmerged(&record), None));
    }
    let mut data = HashMap::new();
    for g in &record.groups {
        let room = RoomPath::group(record.id.clone(), g.id.clone());
        let key = room.to_string();
        let stored = match super::vetting::vetted_stored(ctx, &key).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(doc = %key, error = %e,
                    "group document does not load; the plenary keeps its last conclusions. Run `plenary doctor`");
                continue;
            }
        };
        let read = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(move || stored.to_doc().map(|d| merge::read_conclusions(&d.transact())))
        })
        .await;
        match read {
            Ok(Ok(Ok(c))) => {
                data.insert(g.id.to_string(), c);
            }
            _ => {
                tracing::error!(doc = %key, "group document does not read; the plenary keeps its last conclusions")
            }
        }
    }
    let doc = doc.clone();
    let now = crate::store::now_rfc3339();
    tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            PlenaryState::from_data(&record, data, &doc, &now)
        }))
        .map_err(|_| "yrs panicked merging the plenary".to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
