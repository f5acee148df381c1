//! The in-memory directory of meetings and capabilities, loaded from the store at start and
//! kept in step with it: the store is written (or read) first, then the directory takes the
//! meeting's new state whole ([`Directory::replace`], [`Directory::update`]) and says what
//! changed ([`diff`]), which is what the live server acts on (`meetings::effects`), whether the
//! change was made here or on another node (`cluster::directory_sync`).

pub mod diff;

use crate::auth::{Capability, MeetingDirectory, TokenHash};
use crate::store::{MeetingRecord, Store, StoreError, TokenRecord};
use dashmap::DashMap;
pub use diff::{MeetingDiff, MeetingEntry};
use plenary_protocol::{GroupId, MeetingId};

#[derive(Default)]
pub struct Directory {
    meetings: DashMap<MeetingId, MeetingEntry>,
    tokens: DashMap<TokenHash, Capability>,
    /// One change at a time, from before its store write (or read) to after its effects.
    turn: tokio::sync::Mutex<()>,
}

fn capability(t: &TokenRecord) -> Capability {
    Capability {
        meeting: t.meeting.clone(),
        role: t.role.clone(),
    }
}

impl Directory {
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let dir = Directory::default();
        for (record, tokens) in store.meetings().await? {
            let m = record.id.clone();
            dir.replace(&m, Some(MeetingEntry { record, tokens }));
        }
        Ok(dir)
    }

    /// This node's turn to change the directory: held from before the store write (or the
    /// read of another node's change) until the directory took it and its effects ran, so that
    /// the directory applies changes in the store's order and effects in the directory's.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// The meeting with its tokens.
    pub fn entry(&self, m: &MeetingId) -> Option<MeetingEntry> {
        self.meetings.get(m).map(|e| e.clone())
    }

    /// Takes the meeting's state as the store holds it (`None`: it does not exist); returns
    /// what changed. Revoked tokens stop working before this returns; new ones work from then.
    pub fn replace(&self, m: &MeetingId, new: Option<MeetingEntry>) -> MeetingDiff {
        let old = self.entry(m);
        let d = diff::diff(old.as_ref(), new.as_ref());
        if d.is_empty() {
            return d;
        }
        for h in &d.tokens_revoked {
            self.tokens.remove(h);
        }
        for t in &d.tokens_added {
            self.tokens.insert(t.hash, capability(t));
        }
        match new {
            Some(e) => {
                self.meetings.insert(m.clone(), e);
            }
            None => {
                self.meetings.remove(m);
            }
        }
        d
    }

    /// Changes a meeting the directory holds (after the store's change); `None` if unknown.
    pub fn update(&self, m: &MeetingId, f: impl FnOnce(&mut MeetingEntry)) -> Option<MeetingDiff> {
        let mut e = self.entry(m)?;
        f(&mut e);
        Some(self.replace(m, Some(e)))
    }

    /// Takes every meeting as the store holds them; returns what changed, meeting by meeting.
    pub fn replace_all(&self, all: Vec<MeetingEntry>) -> Vec<MeetingDiff> {
        let mut gone: Vec<MeetingId> = self.meetings.iter().map(|e| e.key().clone()).collect();
        let mut diffs = Vec::new();
        for e in all {
            let m = e.record.id.clone();
            gone.retain(|x| x != &m);
            let d = self.replace(&m, Some(e));
            if !d.is_empty() {
                diffs.push(d);
            }
        }
        for m in gone {
            diffs.push(self.replace(&m, None));
        }
        diffs
    }

    /// Removes a meeting and its tokens (they stop working at once).
    pub fn remove_meeting(&self, m: &MeetingId) -> MeetingDiff {
        self.replace(m, None)
    }

    /// Every meeting, oldest first (then by id).
    pub fn all(&self) -> Vec<MeetingRecord> {
        let mut v: Vec<MeetingRecord> = self.meetings.iter().map(|e| e.value().record.clone()).collect();
        v.sort_by(|a, b| (&a.created_at, a.id.as_str()).cmp(&(&b.created_at, b.id.as_str())));
        v
    }

    /// True if the meeting exists and keeps its group notes private.
    pub fn notes_private(&self, m: &MeetingId) -> bool {
        self.meetings.get(m).is_some_and(|e| e.record.notes_private)
    }

    pub fn meeting(&self, id: &MeetingId) -> Option<MeetingRecord> {
        self.meetings.get(id).map(|e| e.record.clone())
    }

    pub fn group_exists_in(&self, m: &MeetingId, g: &GroupId) -> bool {
        self.meetings
            .get(m)
            .map(|e| e.record.groups.iter().any(|x| &x.id == g))
            .unwrap_or(false)
    }

    pub fn is_empty(&self) -> bool {
        self.meetings.is_empty()
    }

    pub fn group_closed(&self, m: &MeetingId, g: &GroupId) -> bool {
        self.meetings
            .get(m)
            .and_then(|e| e.record.groups.iter().find(|x| &x.id == g).map(|x| x.closed))
            .unwrap_or(false)
    }
}

impl MeetingDirectory for Directory {
    fn meeting_exists(&self, meeting: &MeetingId) -> bool {
        self.meetings.contains_key(meeting)
    }

    fn group_exists(&self, meeting: &MeetingId, group: &GroupId) -> bool {
        self.group_exists_in(meeting, group)
    }

    fn capability(&self, hash: &TokenHash) -> Option<Capability> {
        // The map lookup finds the candidate; the constant-time compare confirms it.
        self.tokens
            .get(hash)
            .filter(|e| e.key().ct_eq(hash))
            .map(|e| e.value().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::GroupRecord;

    fn entry(id: &str, tokens: &[u8]) -> MeetingEntry {
        let m = MeetingId::parse(id).unwrap();
        MeetingEntry {
            record: MeetingRecord {
                id: m.clone(),
                title: "T".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                short_title: None,
                notes_private: false,
                groups: vec![GroupRecord {
                    id: GroupId::parse("g1").unwrap(),
                    title: "G".into(),
                    closed: false,
                    short_title: None,
                }],
            },
            tokens: tokens
                .iter()
                .map(|n| TokenRecord {
                    hash: TokenHash([*n; 32]),
                    meeting: m.clone(),
                    role: Role::Participant,
                })
                .collect(),
        }
    }

    #[test]
    fn replacing_keeps_the_token_index_in_step() {
        let dir = Directory::default();
        let m1 = MeetingId::parse("m1").unwrap();
        let d = dir.replace(&m1, Some(entry("m1", &[1, 2])));
        assert!(d.appeared);
        assert!(dir.capability(&TokenHash([1; 32])).is_some());
        let d = dir.replace(&m1, Some(entry("m1", &[2, 3])));
        assert_eq!(d.tokens_revoked, vec![TokenHash([1; 32])]);
        assert!(dir.capability(&TokenHash([1; 32])).is_none());
        assert!(dir.capability(&TokenHash([3; 32])).is_some());
        let d = dir
            .update(&m1, |e| e.record.groups[0].closed = true)
            .expect("known");
        assert_eq!(d.closed_changed.len(), 1);
        assert!(dir.group_closed(&m1, &GroupId::parse("g1").unwrap()));
        assert!(dir.update(&MeetingId::parse("zz").unwrap(), |_| {}).is_none());
    }

    #[test]
    fn replacing_all_reports_what_appeared_changed_and_vanished() {
        let dir = Directory::default();
        for (id, t) in [("m1", 1u8), ("m2", 2), ("m3", 3)] {
            dir.replace(&MeetingId::parse(id).unwrap(), Some(entry(id, &[t])));
        }
        let mut m2 = entry("m2", &[2]);
        m2.record.title = "renamed".into();
        let diffs = dir.replace_all(vec![entry("m1", &[1]), m2, entry("m4", &[4])]);
        let by = |id: &str| {
            diffs
                .iter()
                .find(|d| d.meeting.as_ref().map(|m| m.as_str()) == Some(id))
                .cloned()
        };
        assert_eq!(diffs.len(), 3, "{diffs:?}");
        assert!(by("m1").is_none(), "unchanged");
        assert!(by("m2").unwrap().titles_changed);
        assert!(by("m3").unwrap().vanished);
        assert!(by("m4").unwrap().appeared);
        assert!(dir.capability(&TokenHash([3; 32])).is_none());
        assert!(dir.capability(&TokenHash([4; 32])).is_some());
        assert_eq!(dir.all().len(), 3);
    }
}
