//! Identifiers of meetings, groups and rooms, validated once where they enter.
//!
//! Ids match `^[a-z0-9][a-z0-9-]{0,62}$` (contract); `plenary` is reserved and is not a group id.

use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("ids are 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")]
    Invalid,
    #[error("'plenary' is reserved and cannot be a group id")]
    Reserved,
    #[error("a room path is '{{meeting}}/{{group}}' or '{{meeting}}/plenary'")]
    BadRoomPath,
}

/// The name of the plenary document within a meeting.
pub const PLENARY: &str = "plenary";

fn is_valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

macro_rules! id_type {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(MeetingId, "A meeting id such as `skopje-2023`.");
id_type!(
    GroupId,
    "A working group id such as `wg-migrants`; never `plenary`."
);

impl MeetingId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_valid_id(s) {
            Ok(MeetingId(s.to_owned()))
        } else {
            Err(IdError::Invalid)
        }
    }
}

impl GroupId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if !is_valid_id(s) {
            return Err(IdError::Invalid);
        }
        if s == PLENARY {
            return Err(IdError::Reserved);
        }
        Ok(GroupId(s.to_owned()))
    }
}

/// Which document of a meeting a room holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    Group(GroupId),
    Plenary,
}

/// A room: one Yjs document, addressed as `{meeting}/{group}` or `{meeting}/plenary`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomPath {
    pub meeting: MeetingId,
    pub doc: DocKind,
}

impl RoomPath {
    pub fn group(meeting: MeetingId, group: GroupId) -> Self {
        RoomPath {
            meeting,
            doc: DocKind::Group(group),
        }
    }

    pub fn plenary(meeting: MeetingId) -> Self {
        RoomPath {
            meeting,
            doc: DocKind::Plenary,
        }
    }

    /// Parses the two path segments of `/ws/{m}/{g}`.
    pub fn from_segments(meeting: &str, doc: &str) -> Result<Self, IdError> {
        let meeting = MeetingId::parse(meeting)?;
        if doc == PLENARY {
            return Ok(RoomPath::plenary(meeting));
        }
        Ok(RoomPath::group(meeting, GroupId::parse(doc)?))
    }

    /// Parses `m/g` (the y-websocket room name and the store's document key).
    pub fn parse(path: &str) -> Result<Self, IdError> {
        let (m, g) = path.split_once('/').ok_or(IdError::BadRoomPath)?;
        Self::from_segments(m, g)
    }

    pub fn is_plenary(&self) -> bool {
        matches!(self.doc, DocKind::Plenary)
    }

    pub fn group_id(&self) -> Option<&GroupId> {
        match &self.doc {
            DocKind::Group(g) => Some(g),
            DocKind::Plenary => None,
        }
    }
}

impl fmt::Display for RoomPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.doc {
            DocKind::Group(g) => write!(f, "{}/{}", self.meeting, g),
            DocKind::Plenary => write!(f, "{}/{}", self.meeting, PLENARY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_contract_ids() {
        assert!(MeetingId::parse("skopje-2023").is_ok());
        assert!(GroupId::parse("wg-migrants").is_ok());
        assert!(MeetingId::parse("0").is_ok());
        assert!(MeetingId::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in ["", "-a", "A", "a_b", "a/b", "é", &"a".repeat(64), "a b", ".."] {
            assert_eq!(MeetingId::parse(bad), Err(IdError::Invalid), "{bad:?}");
        }
        assert_eq!(GroupId::parse("plenary"), Err(IdError::Reserved));
    }

    #[test]
    fn room_paths_round_trip() {
        let r = RoomPath::parse("skopje-2023/wg-migrants").unwrap();
        assert_eq!(r.to_string(), "skopje-2023/wg-migrants");
        assert!(RoomPath::parse("skopje-2023/plenary").unwrap().is_plenary());
        assert!(RoomPath::parse("skopje-2023").is_err());
        assert!(RoomPath::parse("a/b/c").is_err());
    }
}
