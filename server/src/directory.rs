//! The in-memory directory of meetings and capabilities, loaded from the store at start and
//! kept in step with it (the store is written first, then the directory).

use crate::auth::{Capability, MeetingDirectory, TokenHash};
use crate::store::{MeetingRecord, Store, StoreError, TokenRecord};
use dashmap::DashMap;
use plenary_protocol::{GroupId, MeetingId};

#[derive(Default)]
pub struct Directory {
    meetings: DashMap<MeetingId, MeetingRecord>,
    tokens: DashMap<TokenHash, Capability>,
}

impl Directory {
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let dir = Directory::default();
        for (m, tokens) in store.meetings()? {
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

    pub fn meeting(&self, id: &MeetingId) -> Option<MeetingRecord> {
        self.meetings.get(id).map(|m| m.clone())
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
