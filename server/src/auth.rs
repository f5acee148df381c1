//! Capabilities: who may read and write which document, and the token checks behind them.
//!
//! Tokens are 256-bit random strings. Only their SHA-256 hashes are stored; the hash of a
//! presented token is compared in constant time. Tokens never reach logs: [`TokenHash`] prints as
//! a short fingerprint and no type here implements `Debug` over a raw token.

use base64::Engine;
use plenary_protocol::{DocKind, GroupId, MeetingId, RoomPath};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// A role within one meeting (contract, "Roles").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "group", rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Participant,
    Rapporteur(GroupIdString),
}

/// A group id as stored with a rapporteur capability.
pub type GroupIdString = String;

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Rapporteur(_) => "rapporteur",
        }
    }

    /// The contract's table: rapporteurs write their own group, moderators write everything
    /// (the plenary only for curation), participants read.
    pub fn can_write(&self, doc: &DocKind) -> bool {
        match (self, doc) {
            (Role::Moderator, _) => true,
            (Role::Rapporteur(g), DocKind::Group(doc_group)) => g == doc_group.as_str(),
            _ => false,
        }
    }
}

/// What one token grants: a role in one meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub meeting: MeetingId,
    pub role: Role,
}

/// SHA-256 of a token: the only form in which tokens are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// First bytes in hex, for logs: identifies a capability without revealing it.
    pub fn fingerprint(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", self.fingerprint())
    }
}

/// A fresh random token: 32 bytes, base64url without padding (43 characters).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a request for a document or meeting was refused, in the contract's order.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("no meeting with this id")]
    UnknownMeeting,
    #[error("this meeting has no such group")]
    UnknownGroup,
    #[error("a valid token is required")]
    InvalidToken,
    #[error("this token belongs to another meeting")]
    OtherMeeting,
}

/// What [`authorize_room`] needs to know about the meeting, without I/O.
pub trait MeetingDirectory {
    fn meeting_exists(&self, meeting: &MeetingId) -> bool;
    fn group_exists(&self, meeting: &MeetingId, group: &GroupId) -> bool;
    /// The capability a token hash grants, in any meeting.
    fn capability(&self, hash: &TokenHash) -> Option<Capability>;
}

/// The contract's refusal order: unknown meeting 404, unknown group 404, missing or invalid
/// token 401, a token of another meeting 403.
pub fn authorize_room(
    dir: &impl MeetingDirectory,
    room: &RoomPath,
    token: Option<&str>,
) -> Result<Capability, AuthError> {
    authorize_room_hashed(dir, room, token).map(|(cap, _)| cap)
}

/// [`authorize_room`], also giving back the token's hash (hashed once: the WebSocket upgrade
/// keys the token's budgets and revocation by it).
pub fn authorize_room_hashed(
    dir: &impl MeetingDirectory,
    room: &RoomPath,
    token: Option<&str>,
) -> Result<(Capability, TokenHash), AuthError> {
    if !dir.meeting_exists(&room.meeting) {
        return Err(AuthError::UnknownMeeting);
    }
    if let DocKind::Group(g) = &room.doc {
        if !dir.group_exists(&room.meeting, g) {
            return Err(AuthError::UnknownGroup);
        }
    }
    authorize_meeting_hashed(dir, &room.meeting, token)
}

/// Any token of the meeting: 401 without or with an unknown token, 403 for another meeting's.
pub fn authorize_meeting(
    dir: &impl MeetingDirectory,
    meeting: &MeetingId,
    token: Option<&str>,
) -> Result<Capability, AuthError> {
    authorize_meeting_hashed(dir, meeting, token).map(|(cap, _)| cap)
}

fn authorize_meeting_hashed(
    dir: &impl MeetingDirectory,
    meeting: &MeetingId,
    token: Option<&str>,
) -> Result<(Capability, TokenHash), AuthError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::InvalidToken)?;
    let hash = TokenHash::of(token);
    let cap = dir.capability(&hash).ok_or(AuthError::InvalidToken)?;
    if &cap.meeting != meeting {
        return Err(AuthError::OtherMeeting);
    }
    Ok((cap, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Dir {
        groups: Vec<(String, String)>,
        tokens: HashMap<TokenHash, Capability>,
    }

    impl MeetingDirectory for Dir {
        fn meeting_exists(&self, m: &MeetingId) -> bool {
            self.groups.iter().any(|(mm, _)| mm == m.as_str())
        }
        fn group_exists(&self, m: &MeetingId, g: &GroupId) -> bool {
            self.groups
                .iter()
                .any(|(mm, gg)| mm == m.as_str() && gg == g.as_str())
        }
        fn capability(&self, h: &TokenHash) -> Option<Capability> {
            self.tokens.get(h).cloned()
        }
    }

    fn dir() -> Dir {
        let m = |s: &str| MeetingId::parse(s).unwrap();
        let mut tokens = HashMap::new();
        tokens.insert(
            TokenHash::of("tok-a"),
            Capability {
                meeting: m("a"),
                role: Role::Participant,
            },
        );
        tokens.insert(
            TokenHash::of("tok-b"),
            Capability {
                meeting: m("b"),
                role: Role::Moderator,
            },
        );
        Dir {
            groups: vec![("a".into(), "g1".into()), ("b".into(), "g1".into())],
            tokens,
        }
    }

    #[test]
    fn refusals_follow_the_contract_order() {
        let d = dir();
        let room = |s: &str| RoomPath::parse(s).unwrap();
        assert_eq!(
            authorize_room(&d, &room("zz/g1"), Some("tok-b")),
            Err(AuthError::UnknownMeeting)
        );
        assert_eq!(
            authorize_room(&d, &room("a/nope"), None),
            Err(AuthError::UnknownGroup)
        );
        assert_eq!(
            authorize_room(&d, &room("a/g1"), None),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            authorize_room(&d, &room("a/g1"), Some("")),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            authorize_room(&d, &room("a/g1"), Some("wrong")),
            Err(AuthError::InvalidToken)
        );
        assert_eq!(
            authorize_room(&d, &room("a/g1"), Some("tok-b")),
            Err(AuthError::OtherMeeting)
        );
        assert_eq!(
            authorize_room(&d, &room("a/plenary"), Some("tok-a"))
                .unwrap()
                .role,
            Role::Participant
        );
    }

    #[test]
    fn write_permissions_match_the_role_table() {
        let g = |s: &str| DocKind::Group(GroupId::parse(s).unwrap());
        let rap = Role::Rapporteur("g1".into());
        assert!(rap.can_write(&g("g1")));
        assert!(!rap.can_write(&g("g2")));
        assert!(!rap.can_write(&DocKind::Plenary));
        assert!(Role::Moderator.can_write(&g("g2")));
        assert!(Role::Moderator.can_write(&DocKind::Plenary));
        assert!(!Role::Participant.can_write(&g("g1")));
        assert!(!Role::Participant.can_write(&DocKind::Plenary));
    }

    #[test]
    fn tokens_are_random_and_hash_compare_in_constant_time() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(TokenHash::of(&a).ct_eq(&TokenHash::of(&a)));
        assert!(!TokenHash::of(&a).ct_eq(&TokenHash::of(&b)));
        assert!(!format!("{:?}", TokenHash::of(&a)).contains(&a));
    }
}
