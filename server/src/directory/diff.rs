//! What changed in the directory between two states of one meeting (pure): the meeting
//! appeared or vanished, its titles or notes privacy changed, groups appeared, were retitled,
//! closed, reopened or vanished, tokens appeared or were revoked. What a change does to the
//! live server (`meetings::effects`) is a function of this, whether it was made on this node
//! or heard from another.

use crate::auth::TokenHash;
use crate::store::{MeetingRecord, TokenRecord};
use plenary_protocol::{GroupId, MeetingId};

/// One meeting as the directory holds it: its record and its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingEntry {
    pub record: MeetingRecord,
    pub tokens: Vec<TokenRecord>,
}

/// The change from one state of a meeting to the next.
///
/// A meeting that `appeared` or `vanished` lists no group changes (no room of it was loaded,
/// or all of them stop). One that was deleted and created again under the same id between two
/// reads (another `created_at`) is both: the old one's sockets close and its rooms stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingDiff {
    pub meeting: Option<MeetingId>,
    pub appeared: bool,
    pub vanished: bool,
    /// The meeting's title or short title.
    pub titles_changed: bool,
    /// The new value, when it changed.
    pub notes_private: Option<bool>,
    pub groups_added: Vec<GroupId>,
    /// A group's title or short title.
    pub groups_retitled: Vec<GroupId>,
    /// (group, closed now).
    pub closed_changed: Vec<(GroupId, bool)>,
    pub groups_vanished: Vec<GroupId>,
    pub tokens_added: Vec<TokenRecord>,
    /// Tokens that stop working (all of a vanished meeting's).
    pub tokens_revoked: Vec<TokenHash>,
}

impl MeetingDiff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        let MeetingDiff {
            meeting: _,
            appeared,
            vanished,
            titles_changed,
            notes_private,
            groups_added,
            groups_retitled,
            closed_changed,
            groups_vanished,
            tokens_added,
            tokens_revoked,
        } = self;
        !appeared
            && !vanished
            && !titles_changed
            && notes_private.is_none()
            && groups_added.is_empty()
            && groups_retitled.is_empty()
            && closed_changed.is_empty()
            && groups_vanished.is_empty()
            && tokens_added.is_empty()
            && tokens_revoked.is_empty()
    }

    /// The meeting's plenary shows something that changed (titles, groups, closed flags).
    pub fn plenary_follows(&self) -> bool {
        !self.appeared
            && !self.vanished
            && (self.titles_changed
                || !self.groups_added.is_empty()
                || !self.groups_retitled.is_empty()
                || !self.closed_changed.is_empty()
                || !self.groups_vanished.is_empty())
    }
}

/// What changed from `old` to `new` (`None`: the meeting does not exist).
pub fn diff(old: Option<&MeetingEntry>, new: Option<&MeetingEntry>) -> MeetingDiff {
    let meeting = new.or(old).map(|e| e.record.id.clone());
    let old_tokens = old.map(|e| e.tokens.as_slice()).unwrap_or(&[]);
    let new_tokens = new.map(|e| e.tokens.as_slice()).unwrap_or(&[]);
    let mut d = MeetingDiff {
        meeting,
        tokens_added: new_tokens
            .iter()
            .filter(|t| !old_tokens.contains(t))
            .cloned()
            .collect(),
        tokens_revoked: old_tokens
            .iter()
            .filter(|t| !new_tokens.contains(t))
            .map(|t| t.hash)
            .collect(),
        ..MeetingDiff::default()
    };
    let (old, new) = match (old, new) {
        (None, None) => return d,
        (None, Some(_)) => {
            d.appeared = true;
            return d;
        }
        (Some(_), None) => {
            d.vanished = true;
            return d;
        }
        (Some(o), Some(n)) if o.record.created_at != n.record.created_at => {
            // deleted and created again: every old token went with the old meeting
            d.appeared = true;
            d.vanished = true;
            d.tokens_revoked = old_tokens.iter().map(|t| t.hash).collect();
            d.tokens_added = new_tokens.to_vec();
            return d;
        }
        (Some(o), Some(n)) => (&o.record, &n.record),
    };
    d.titles_changed = old.title != new.title || old.short_title != new.short_title;
    if old.notes_private != new.notes_private {
        d.notes_private = Some(new.notes_private);
    }
    for g in &new.groups {
        match old.groups.iter().find(|x| x.id == g.id) {
            None => d.groups_added.push(g.id.clone()),
            Some(was) => {
                if was.title != g.title || was.short_title != g.short_title {
                    d.groups_retitled.push(g.id.clone());
                }
                if was.closed != g.closed {
                    d.closed_changed.push((g.id.clone(), g.closed));
                }
            }
        }
    }
    d.groups_vanished = old
        .groups
        .iter()
        .filter(|g| !new.groups.iter().any(|x| x.id == g.id))
        .map(|g| g.id.clone())
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::GroupRecord;

    fn gid(s: &str) -> GroupId {
        GroupId::parse(s).unwrap()
    }

    fn token(n: u8, role: Role) -> TokenRecord {
        TokenRecord {
            hash: TokenHash([n; 32]),
            meeting: MeetingId::parse("m1").unwrap(),
            role,
        }
    }

    fn group(id: &str) -> GroupRecord {
        GroupRecord {
            id: gid(id),
            title: format!("Group {id}"),
            closed: false,
            short_title: None,
        }
    }

    fn entry() -> MeetingEntry {
        MeetingEntry {
            record: MeetingRecord {
                id: MeetingId::parse("m1").unwrap(),
                title: "Meeting".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                short_title: None,
                notes_private: false,
                groups: vec![group("g1"), group("g2")],
            },
            tokens: vec![
                token(1, Role::Moderator),
                token(2, Role::Participant),
                token(3, Role::Rapporteur("g1".into())),
                token(4, Role::Rapporteur("g2".into())),
            ],
        }
    }

    #[test]
    fn the_same_state_is_no_change() {
        let e = entry();
        let d = diff(Some(&e), Some(&e));
        assert!(d.is_empty(), "{d:?}");
        assert!(!d.plenary_follows());
        assert_eq!(d.meeting, Some(e.record.id.clone()));
        assert!(diff(None, None).is_empty());
    }

    #[test]
    fn a_meeting_that_appears_brings_its_tokens_and_nothing_for_rooms() {
        let e = entry();
        let d = diff(None, Some(&e));
        assert!(d.appeared && !d.vanished);
        assert_eq!(d.tokens_added, e.tokens);
        assert!(d.tokens_revoked.is_empty());
        assert!(d.groups_added.is_empty() && d.closed_changed.is_empty());
        assert!(!d.plenary_follows());
        assert!(!d.is_empty());
    }

    #[test]
    fn a_meeting_that_vanishes_revokes_every_token() {
        let e = entry();
        let d = diff(Some(&e), None);
        assert!(d.vanished && !d.appeared);
        assert_eq!(
            d.tokens_revoked,
            e.tokens.iter().map(|t| t.hash).collect::<Vec<_>>()
        );
        assert!(d.tokens_added.is_empty());
        assert!(!d.plenary_follows());
        assert_eq!(d.meeting, Some(e.record.id));
    }

    #[test]
    fn a_meeting_deleted_and_created_again_is_both() {
        let old = entry();
        let mut new = entry();
        new.record.created_at = "2026-01-02T00:00:00Z".into();
        new.tokens = vec![token(9, Role::Moderator), token(2, Role::Participant)];
        let d = diff(Some(&old), Some(&new));
        assert!(d.appeared && d.vanished);
        // even a hash that both hold: the old meeting's sockets close
        assert_eq!(
            d.tokens_revoked,
            old.tokens.iter().map(|t| t.hash).collect::<Vec<_>>()
        );
        assert_eq!(d.tokens_added, new.tokens);
        assert!(!d.plenary_follows());
    }

    #[test]
    fn closing_and_reopening_groups() {
        let old = entry();
        let mut new = entry();
        new.record.groups[1].closed = true;
        let d = diff(Some(&old), Some(&new));
        assert_eq!(d.closed_changed, vec![(gid("g2"), true)]);
        assert!(d.plenary_follows());
        assert_eq!(
            d,
            MeetingDiff {
                meeting: d.meeting.clone(),
                closed_changed: vec![(gid("g2"), true)],
                ..Default::default()
            }
        );
        let back = diff(Some(&new), Some(&old));
        assert_eq!(back.closed_changed, vec![(gid("g2"), false)]);
    }

    #[test]
    fn a_rotated_token_is_one_revoked_and_one_added() {
        let old = entry();
        let mut new = entry();
        new.tokens[2] = token(7, Role::Rapporteur("g1".into()));
        let d = diff(Some(&old), Some(&new));
        assert_eq!(d.tokens_revoked, vec![TokenHash([3; 32])]);
        assert_eq!(d.tokens_added, vec![new.tokens[2].clone()]);
        assert!(!d.plenary_follows(), "tokens are not in the plenary");
        assert!(!d.appeared && !d.vanished);
    }

    #[test]
    fn titles_notes_privacy_and_groups() {
        let old = entry();
        let mut new = entry();
        new.record.short_title = Some("M".into());
        new.record.notes_private = true;
        new.record.groups[0].title = "Water".into();
        new.record.groups.push(group("g3"));
        new.tokens.push(token(5, Role::Rapporteur("g3".into())));
        let d = diff(Some(&old), Some(&new));
        assert!(d.titles_changed);
        assert_eq!(d.notes_private, Some(true));
        assert_eq!(d.groups_retitled, vec![gid("g1")]);
        assert_eq!(d.groups_added, vec![gid("g3")]);
        assert_eq!(d.tokens_added, vec![new.tokens[4].clone()]);
        assert!(d.closed_changed.is_empty() && d.groups_vanished.is_empty());
        assert!(d.plenary_follows());
        let back = diff(Some(&new), Some(&old));
        assert_eq!(back.notes_private, Some(false));
        assert_eq!(back.groups_vanished, vec![gid("g3")]);
        assert_eq!(back.tokens_revoked, vec![TokenHash([5; 32])]);
        assert!(back.groups_added.is_empty());
        // a short title only
        let mut short = entry();
        short.record.groups[1].short_title = Some("B".into());
        assert_eq!(diff(Some(&old), Some(&short)).groups_retitled, vec![gid("g2")]);
    }
}
