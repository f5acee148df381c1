//! What group and plenary rooms keep to run the merge off the typing path.
//!
//! A group room, a few milliseconds after a burst of edits, reads its conclusions and sends
//! them to the plenary room only if they changed ([`GroupFeed`]). The plenary room folds them
//! into its document ([`PlenaryState::merge`]); on load it rebuilds every group's section from
//! the store, so it is consistent even if the server died between a group write and its merge.
//! Pure state: the rooms that hold it (`crate::room::kind`) do the I/O and read the clock (a
//! merge is handed the time it stamps on the groups it changes).

use super::merge::{self, Conclusion, GroupConclusions, GroupMeta};
use crate::store::{MeetingRecord, Store};
use plenary_protocol::{GroupId, RoomPath};
use std::collections::HashMap;
use yrs::{Doc, Transact};

pub struct GroupFeed {
    group: GroupId,
    last: Option<Vec<Conclusion>>,
}

impl GroupFeed {
    pub fn new(group: GroupId) -> Self {
        GroupFeed { group, last: None }
    }

    /// The group's conclusions if they differ from what was last sent.
    pub fn changed(&self, doc: &Doc) -> Option<GroupConclusions> {
        let now = merge::read_conclusions(&doc.transact());
        if self.last.as_ref() == Some(&now) {
            return None;
        }
        Some(GroupConclusions {
            group: self.group.to_string(),
            conclusions: now,
        })
    }

    /// Records what the plenary room accepted.
    pub fn sent(&mut self, conclusions: Vec<Conclusion>) {
        self.last = Some(conclusions);
    }
}

pub struct PlenaryState {
    meeting_id: String,
    title: String,
    short_title: Option<String>,
    groups: Vec<GroupMeta>,
    /// Group id -> its short title, when set.
    short_titles: HashMap<String, String>,
    data: HashMap<String, Vec<Conclusion>>,
}

fn group_metas(m: &MeetingRecord) -> Vec<GroupMeta> {
    m.groups
        .iter()
        .map(|g| GroupMeta {
            id: g.id.to_string(),
            title: g.title.clone(),
            closed: g.closed,
        })
        .collect()
}

fn short_titles(m: &MeetingRecord) -> HashMap<String, String> {
    m.groups
        .iter()
        .filter_map(|g| g.short_title.clone().map(|t| (g.id.to_string(), t)))
        .collect()
}

/// Reads a group document from the store and returns its conclusions (replayed off the async
/// workers; not vetted: for the offline commands).
pub async fn stored_conclusions(store: &dyn Store, room: &RoomPath) -> Result<Vec<Conclusion>, String> {
    let stored = store
        .load_doc(&room.to_string())
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        let doc = stored.to_doc()?;
        let txn = doc.transact();
        Ok(merge::read_conclusions(&txn))
    })
    .await
    .map_err(|e| e.to_string())?
}

impl PlenaryState {
    /// Builds the merge state from the stored group documents and brings `doc` up to date.
    /// Returns the edit made, if any. A group document that does not load is skipped (its
    /// section keeps what the plenary shows) with an error log. Used offline (`plenary
    /// export`): the server's plenary room vets each group document in the sandbox first
    /// (`room::kind`).
    pub async fn build(
        store: &dyn Store,
        meeting: &MeetingRecord,
        doc: &Doc,
    ) -> Result<(Self, Option<Vec<u8>>), String> {
        let mut data = HashMap::new();
        for g in &meeting.groups {
            let room = RoomPath::group(meeting.id.clone(), g.id.clone());
            match stored_conclusions(store, &room).await {
                Ok(c) => {
                    data.insert(g.id.to_string(), c);
                }
                Err(e) => tracing::error!(doc = %room, error = %e,
                    "group document does not load; the plenary keeps its last conclusions"),
            }
        }
        Ok(Self::from_data(meeting, data, doc, &crate::store::now_rfc3339()))
    }

    /// The merge state from every group's conclusions, and the edit that brings `doc` up to date
    /// (a group section it changes is stamped as edited at `now`, RFC 3339).
    pub fn from_data(
        meeting: &MeetingRecord,
        data: HashMap<String, Vec<Conclusion>>,
        doc: &Doc,
        now: &str,
    ) -> (Self, Option<Vec<u8>>) {
        let mut state = PlenaryState {
            meeting_id: meeting.id.to_string(),
            title: meeting.title.clone(),
            short_title: meeting.short_title.clone(),
            groups: group_metas(meeting),
            short_titles: short_titles(meeting),
            data,
        };
        let diff = state.merge(doc, now);
        (state, diff)
    }

    /// The merge state of a plenary replica (another node merges): the meeting, and no
    /// group's conclusions until they are fed; nothing is merged into its document.
    pub fn unmerged(meeting: &MeetingRecord) -> Self {
        PlenaryState {
            meeting_id: meeting.id.to_string(),
            title: meeting.title.clone(),
            short_title: meeting.short_title.clone(),
            groups: group_metas(meeting),
            short_titles: short_titles(meeting),
            data: HashMap::new(),
        }
    }

    pub fn set_conclusions(&mut self, gc: GroupConclusions) {
        self.data.insert(gc.group, gc.conclusions);
    }

    pub fn set_closed(&mut self, group: &str, closed: bool) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.id == group) {
            g.closed = closed;
        }
    }

    /// The meeting as the directory now holds it: titles, short titles, groups (an added one
    /// gets its section, empty until its room reports) and closed flags.
    pub fn set_meeting(&mut self, m: &MeetingRecord) {
        self.title = m.title.clone();
        self.short_title = m.short_title.clone();
        self.groups = group_metas(m);
        self.short_titles = short_titles(m);
    }

    /// Merges into `doc`; returns the v1 update of what changed, if anything did. A group whose
    /// conclusions change is stamped as edited at `now` (RFC 3339).
    pub fn merge(&mut self, doc: &Doc, now: &str) -> Option<Vec<u8>> {
        let mut txn = doc.transact_mut();
        merge::ensure_structure(&mut txn, &self.meeting_id, &self.title);
        // Groups whose conclusions the plenary does not show yet: edited now (also on load, when
        // a group wrote while this room was unloaded; the group's room loads it at once).
        let edited: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| {
                self.data
                    .get(&g.id)
                    .is_some_and(|d| merge::section_conclusions(&txn, &g.id) != *d)
            })
            .map(|g| g.id.as_str())
            .collect();
        merge::merge(&mut txn, &self.groups, &self.data);
        for g in edited {
            merge::stamp_edited(&mut txn, g, now);
        }
        merge::set_short_titles(&mut txn, self.short_title.as_deref(), &self.short_titles);
        let changed = !txn.insert_set().is_empty() || !txn.delete_set().is_empty();
        changed.then(|| txn.encode_update_v1())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GroupRecord;
    use plenary_protocol::layout::plenary as pk;
    use plenary_protocol::MeetingId;

    fn meeting() -> MeetingRecord {
        MeetingRecord {
            id: MeetingId::parse("m1").unwrap(),
            title: "M".into(),
            created_at: String::new(),
            short_title: None,
            notes_private: false,
            groups: ["a", "b"]
                .iter()
                .map(|g| GroupRecord {
                    id: GroupId::parse(g).unwrap(),
                    title: g.to_uppercase(),
                    closed: false,
                    short_title: None,
                })
                .collect(),
        }
    }

    fn one(text: &str) -> Vec<Conclusion> {
        vec![Conclusion {
            id: "c1".into(),
            text: text.into(),
            status: "draft".into(),
        }]
    }

    fn edited_at(doc: &Doc, group: usize) -> serde_json::Value {
        merge::plenary_json(&doc.transact())["groups"][group][pk::GROUP_EDITED_AT].clone()
    }

    #[test]
    fn a_change_of_a_groups_conclusions_stamps_its_edited_at() {
        let doc = Doc::new();
        // loading a plenary that lags the stored group (it wrote while the plenary was unloaded)
        let data = HashMap::from([("a".to_string(), one("x")), ("b".to_string(), vec![])]);
        let loaded = "2026-12-03T09:00:00Z";
        let (mut state, _) = PlenaryState::from_data(&meeting(), data, &doc, loaded);
        assert_eq!(
            edited_at(&doc, 0),
            loaded,
            "a's conclusions reached the plenary: stamped"
        );
        assert_eq!(
            edited_at(&doc, 1),
            serde_json::Value::Null,
            "b has none: no stamp"
        );
        // the same conclusions again (e.g. fed after a notes edit): nothing changes
        state.set_conclusions(GroupConclusions {
            group: "b".into(),
            conclusions: vec![],
        });
        assert!(state.merge(&doc, "2026-12-03T09:05:00Z").is_none());
        assert_eq!(edited_at(&doc, 1), serde_json::Value::Null);
        // b's conclusions change: b is stamped with this merge's time, a keeps its own
        state.set_conclusions(GroupConclusions {
            group: "b".into(),
            conclusions: one("y"),
        });
        let later = "2026-12-03T09:10:00Z";
        assert!(state.merge(&doc, later).is_some());
        assert_eq!(edited_at(&doc, 1), later);
        assert_eq!(edited_at(&doc, 0), loaded, "a did not change: its stamp stays");
    }
}
