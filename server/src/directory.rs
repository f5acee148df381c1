//! The in-memory directory of meetings and capabilities, loaded from the store at start and
//! kept in step with it (the store is written first, then the directory).

use crate::auth::{Capability, MeetingDirectory, TokenHash};
use crate::store::{GroupRecord, MeetingRecord, Store, StoreError, TokenRecord};
use dashmap::DashMap;
use plenary_protocol::{GroupId, MeetingId};

#[derive(Default)]
pub struct Directory {
    meetings: DashMap<MeetingId, MeetingRecord>,
    tokens: DashMap<TokenHash, Capability>,
}

impl Directory {
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let dir = Directory::default();
        for (m, tokens) in store.meetings().await? {
            dir.add(m, &tokens);
        }
        Ok(dir)
    }

    pub fn add(&self, meeting: MeetingRecord, tokens: &[TokenRecord]) {
        for t in tokens {
            self.tokens.insert(
                t.hash,
                Capability {
                    meeting: t.meeting.clone(),
                    role: t.role.clone(),
                },
            );
        }
        self.meetings.insert(meeting.id.clone(), meeting);
    }

    /// A token rotation, after the store's: the old hashes stop working at once.
    pub fn replace_tokens(&self, old: &[TokenHash], new: &TokenRecord) {
        self.tokens.insert(
            new.hash,
            Capability {
                meeting: new.meeting.clone(),
                role: new.role.clone(),
            },
        );
        for h in old {
            self.tokens.remove(h);
        }
    }

    /// Every meeting, oldest first (then by id).
    pub fn all(&self) -> Vec<MeetingRecord> {
        let mut v: Vec<MeetingRecord> = self.meetings.iter().map(|e| e.value().clone()).collect();
        v.sort_by(|a, b| (&a.created_at, a.id.as_str()).cmp(&(&b.created_at, b.id.as_str())));
        v
    }

    /// After the store's: new titles of a meeting.
    pub fn set_meeting_titles(&self, m: &MeetingId, title: &str, short_title: Option<&str>) {
        if let Some(mut rec) = self.meetings.get_mut(m) {
            rec.title = title.to_owned();
            rec.short_title = short_title.map(str::to_owned);
        }
    }

    /// After the store's: whether the meeting's group notes are private.
    pub fn set_notes_private(&self, m: &MeetingId, private: bool) {
        if let Some(mut rec) = self.meetings.get_mut(m) {
            rec.notes_private = private;
        }
    }

    /// True if the meeting exists and keeps its group notes private.
    pub fn notes_private(&self, m: &MeetingId) -> bool {
        self.meetings.get(m).is_some_and(|r| r.notes_private)
    }

    /// After the store's: new titles of a group.
    pub fn set_group_titles(&self, m: &MeetingId, g: &GroupId, title: &str, short_title: Option<&str>) {
        if let Some(mut rec) = self.meetings.get_mut(m) {
            if let Some(group) = rec.groups.iter_mut().find(|x| &x.id == g) {
                group.title = title.to_owned();
                group.short_title = short_title.map(str::to_owned);
            }
        }
    }

    /// After the store's: a group added at the end, with its rapporteur token.
    pub fn add_group(&self, m: &MeetingId, group: GroupRecord, token: &TokenRecord) {
        if let Some(mut rec) = self.meetings.get_mut(m) {
            rec.groups.push(group);
        }
        self.tokens.insert(
            token.hash,
            Capability {
                meeting: token.meeting.clone(),
                role: token.role.clone(),
            },
        );
    }

    /// Removes a meeting and its tokens (they stop working at once); returns the token hashes
    /// removed, so that their open sockets can be closed.
    pub fn remove_meeting(&self, m: &MeetingId) -> Vec<TokenHash> {
        self.meetings.remove(m);
        let hashes: Vec<TokenHash> = self
            .tokens
            .iter()
            .filter(|e| &e.value().meeting == m)
            .map(|e| *e.key())
            .collect();
        for h in &hashes {
            self.tokens.remove(h);
        }
        hashes
    }

    pub fn meeting(&self, id: &MeetingId) -> Option<MeetingRecord> {
        self.meetings.get(id).map(|m| m.clone())
    }

    pub fn group_exists_in(&self, m: &MeetingId, g: &GroupId) -> bool {
        self.meetings
            .get(m)
            .map(|rec| rec.groups.iter().any(|x| &x.id == g))
            .unwrap_or(false)
    }

    pub fn is_empty(&self) -> bool {
        self.meetings.is_empty()
    }

    pub fn group_closed(&self, m: &MeetingId, g: &GroupId) -> bool {
        self.meetings
            .get(m)
            .and_then(|rec| rec.groups.iter().find(|x| &x.id == g).map(|x| x.closed))
            .unwrap_or(false)
    }

    pub fn set_group_closed(&self, m: &MeetingId, g: &GroupId, closed: bool) {
        if let Some(mut rec) = self.meetings.get_mut(m) {
            if let Some(group) = rec.groups.iter_mut().find(|x| &x.id == g) {
                group.closed = closed;
            }
        }
    }
}

impl MeetingDirectory for Directory {
    fn meeting_exists(&self, meeting: &MeetingId) -> bool {
        self.meetings.contains_key(meeting)
    }

    fn group_exists(&self, meeting: &MeetingId, group: &GroupId) -> bool {
        self.meetings
            .get(meeting)
            .map(|m| m.groups.iter().any(|g| &g.id == group))
            .unwrap_or(false)
    }

    fn capability(&self, hash: &TokenHash) -> Option<Capability> {
        // The map lookup finds the candidate; the constant-time compare confirms it.
        self.tokens
            .get(hash)
            .filter(|e| e.key().ct_eq(hash))
            .map(|e| e.value().clone())
    }
}
