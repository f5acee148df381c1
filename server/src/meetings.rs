//! Meeting creation, group closing and token rotation: the domain operations behind the HTTP
//! API and the demo. Each takes the directory's turn, writes the store, and then [`settle`]s:
//! the directory takes the meeting's new state, [`effects`] act on what changed (the same code
//! as for a change heard from another node), and the other nodes are told.
//!
//! - [`effects`]: what a change of the directory does to sockets and rooms.

pub mod effects;

use crate::app::AppState;
use crate::auth::{generate_token, Role, TokenHash};
use crate::cluster::directory_sync;
use crate::directory::{MeetingDiff, MeetingEntry};
use crate::store::{now_rfc3339, GroupRecord, MeetingRecord, StoreError, TokenRecord};
use effects::Origin;
use plenary_protocol::{GroupId, MeetingId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

pub const MAX_GROUPS: usize = 100;
pub const MAX_TITLE_CHARS: usize = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingSpec {
    pub id: Option<String>,
    pub title: String,
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Tokens {
    pub moderator: String,
    pub participant: String,
    pub rapporteurs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct Links {
    pub moderator: String,
    pub projector: String,
    pub participant: String,
    pub rapporteurs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct GroupView {
    pub id: String,
    pub title: String,
}

/// The answer to a creation: the only time tokens are shown.
#[derive(Debug, Serialize)]
pub struct CreatedMeeting {
    pub id: String,
    pub title: String,
    pub groups: Vec<GroupView>,
    pub tokens: Tokens,
    pub links: Links,
}

#[derive(Debug, Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error("a meeting with this id already exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a creation request; returns the record to store.
pub fn validate(spec: &MeetingSpec, now: String) -> Result<MeetingRecord, CreateError> {
    let invalid = |s: String| CreateError::Invalid(s);
    let id = match &spec.id {
        Some(id) => MeetingId::parse(id).map_err(|e| invalid(format!("meeting id: {e}")))?,
        None => MeetingId::parse(&format!(
            "m-{}",
            &generate_token()[..10].to_ascii_lowercase().replace('_', "-")
        ))
        .map_err(|e| invalid(e.to_string()))?,
    };
    let title = spec.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    if spec.groups.is_empty() || spec.groups.len() > MAX_GROUPS {
        return Err(invalid(format!("a meeting has 1 to {MAX_GROUPS} groups")));
    }
    let mut groups = Vec::new();
    for g in &spec.groups {
        let gid = GroupId::parse(&g.id).map_err(|e| invalid(format!("group id {:?}: {e}", g.id)))?;
        if groups.iter().any(|x: &GroupRecord| x.id == gid) {
            return Err(invalid(format!("group id {:?} appears twice", g.id)));
        }
        let gt = g.title.trim();
        if gt.is_empty() || gt.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid(format!(
                "group {:?}: title must be 1 to {MAX_TITLE_CHARS} characters",
                g.id
            )));
        }
        groups.push(GroupRecord {
            id: gid,
            title: gt.to_owned(),
            closed: false,
            short_title: None,
        });
    }
    Ok(MeetingRecord {
        id,
        title: title.to_owned(),
        created_at: now,
        short_title: None,
        notes_private: false,
        groups,
    })
}

/// The web link of one capability (the token rides in the URL fragment).
pub fn link(base: &str, m: &MeetingId, role: &Role, token: &str) -> String {
    let base = base.trim_end_matches('/');
    match role {
        Role::Moderator => format!("{base}/m/{m}/console#token={token}"),
        Role::Participant => format!("{base}/m/{m}#token={token}"),
        Role::Rapporteur(g) => format!("{base}/m/{m}/g/{g}#token={token}"),
    }
}

/// Web links for a meeting's capabilities (the token rides in the URL fragment).
pub fn links(base: &str, m: &MeetingRecord, tokens: &Tokens) -> Links {
    let base = base.trim_end_matches('/');
    Links {
        moderator: link(base, &m.id, &Role::Moderator, &tokens.moderator),
        projector: format!("{base}/m/{}/projector#token={}", m.id, tokens.participant),
        participant: link(base, &m.id, &Role::Participant, &tokens.participant),
        rapporteurs: tokens
            .rapporteurs
            .iter()
            .map(|(g, t)| (g.clone(), link(base, &m.id, &Role::Rapporteur(g.clone()), t)))
            .collect(),
    }
}

/// After this node's store write to meeting `m` (the caller holds the directory's turn): the
/// directory takes the meeting's new state, its effects run, and the other nodes are told. On
/// a store that other nodes share the state is read back (changes this node has not heard of
/// yet come with it); otherwise, or if that read fails, it is `local` applied to this node's
/// entry.
async fn settle(
    svc: &AppState,
    m: &MeetingId,
    local: impl FnOnce(Option<MeetingEntry>) -> Option<MeetingEntry>,
) -> MeetingDiff {
    let dir = &svc.room.directory;
    let mut d = None;
    if svc.room.cluster.shared_store {
        match directory_sync::read(svc, m).await {
            Ok(stored) => d = Some(dir.replace(m, stored)),
            Err(e) => {
                tracing::warn!(meeting = %m, error = %e, "reading back a change failed; applying it as made")
            }
        }
    }
    let d = d.unwrap_or_else(|| dir.replace(m, local(dir.entry(m))));
    effects::apply(svc, &d, Origin::Here).await;
    directory_sync::publish(svc, m);
    d
}

/// Creates a meeting with fresh tokens: store first, then the in-memory directory.
pub async fn create(svc: &AppState, spec: MeetingSpec) -> Result<CreatedMeeting, CreateError> {
    let record = validate(&spec, now_rfc3339())?;
    let tokens = Tokens {
        moderator: generate_token(),
        participant: generate_token(),
        rapporteurs: record
            .groups
            .iter()
            .map(|g| (g.id.to_string(), generate_token()))
            .collect(),
    };
    let mut records = vec![
        TokenRecord {
            hash: TokenHash::of(&tokens.moderator),
            meeting: record.id.clone(),
            role: Role::Moderator,
        },
        TokenRecord {
            hash: TokenHash::of(&tokens.participant),
            meeting: record.id.clone(),
            role: Role::Participant,
        },
    ];
    for (g, t) in &tokens.rapporteurs {
        records.push(TokenRecord {
            hash: TokenHash::of(t),
            meeting: record.id.clone(),
            role: Role::Rapporteur(g.clone()),
        });
    }
    let _turn = svc.room.directory.turn().await;
    svc.room
        .store
        .insert_meeting(&record, &records)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => CreateError::Exists,
            e => CreateError::Store(e),
        })?;
    let entry = MeetingEntry {
        record: record.clone(),
        tokens: records,
    };
    settle(svc, &record.id, |_| Some(entry)).await;
    drop(_turn);
    tracing::info!(meeting = %record.id, groups = record.groups.len(), "meeting created");
    Ok(CreatedMeeting {
        id: record.id.to_string(),
        title: record.title.clone(),
        groups: record
            .groups
            .iter()
            .map(|g| GroupView {
                id: g.id.to_string(),
                title: g.title.clone(),
            })
            .collect(),
        links: links(&svc.public_url, &record, &tokens),
        tokens,
    })
}

/// Closes or reopens groups: store, directory, then the live rooms (writes are refused at once,
/// the plenary follows, a revision is taken at close).
pub async fn set_closed(
    svc: &AppState,
    meeting: &MeetingId,
    groups: &[GroupId],
    closed: bool,
) -> Result<(), StoreError> {
    let _turn = svc.room.directory.turn().await;
    for g in groups {
        svc.room.store.set_group_closed(meeting, g, closed).await?;
        settle(svc, meeting, |e| {
            let mut e = e?;
            if let Some(group) = e.record.groups.iter_mut().find(|x| &x.id == g) {
                group.closed = closed;
            }
            Some(e)
        })
        .await;
    }
    Ok(())
}

/// A freshly issued token (contract: `POST /api/meetings/{m}/tokens`).
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub token: String,
    pub link: String,
}

/// Issues a fresh token for `role` and revokes the one(s) it replaces at once: the store (one
/// transaction), the directory, then every open socket opened with an old one (1008, "token
/// revoked"). A connection that registers meanwhile checks its token again (see `connection`).
pub async fn rotate_token(
    svc: &AppState,
    meeting: &MeetingId,
    role: Role,
) -> Result<IssuedToken, StoreError> {
    // One change at a time, so that the directory applies them in the store's order (two
    // racing rotations of one role must not leave the first one's token alive in memory).
    let _turn = svc.room.directory.turn().await;
    let token = generate_token();
    let record = TokenRecord {
        hash: TokenHash::of(&token),
        meeting: meeting.clone(),
        role: role.clone(),
    };
    let old = svc.room.store.replace_token(&record).await?;
    settle(svc, meeting, |e| {
        let mut e = e?;
        e.tokens.retain(|t| !old.contains(&t.hash));
        e.tokens.push(record);
        Some(e)
    })
    .await;
    drop(_turn);
    tracing::info!(meeting = %meeting, role = role.name(), revoked = old.len(), "token rotated");
    let group = match &role {
        Role::Rapporteur(g) => Some(g.clone()),
        _ => None,
    };
    Ok(IssuedToken {
        role: role.name(),
        group,
        link: link(&svc.public_url, meeting, &role, &token),
        token,
    })
}

/// Most characters of a short (projector) title.
pub const MAX_SHORT_TITLE_CHARS: usize = 80;

#[derive(Debug, Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(String),
    #[error("a group with this id already exists")]
    Exists,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ManageError::NotFound,
            StoreError::Conflict => ManageError::Exists,
            e => ManageError::Store(e),
        }
    }
}

/// A title as given: trimmed, 1 to [`MAX_TITLE_CHARS`] characters.
pub fn check_title(what: &str, t: &str) -> Result<String, ManageError> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE_CHARS {
        return Err(ManageError::Invalid(format!(
            "{what} must be 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(t.to_owned())
}

/// A short title as given: `None` or blank clears it; at most [`MAX_SHORT_TITLE_CHARS`].
pub fn check_short_title(t: Option<&str>) -> Result<Option<String>, ManageError> {
    match t.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > MAX_SHORT_TITLE_CHARS => Err(ManageError::Invalid(format!(
            "short_title is at most {MAX_SHORT_TITLE_CHARS} characters"
        ))),
        Some(t) => Ok(Some(t.replace(['\n', '\r'], " "))),
    }
}

/// Renames a meeting: store, directory, then the plenary document (`meta.title`,
/// `meta.short_title`). `title: None` keeps it; `short_title: None` keeps it, `Some(None)`
/// clears it.
pub async fn rename_meeting(
    svc: &AppState,
    meeting: &MeetingId,
    title: Option<&str>,
    short_title: Option<Option<&str>>,
) -> Result<MeetingRecord, ManageError> {
    let _turn = svc.room.directory.turn().await;
    let rec = svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)?;
    let title = match title {
        Some(t) => check_title("title", t)?,
        None => rec.title.clone(),
    };
    let short = match short_title {
        Some(s) => check_short_title(s)?,
        None => rec.short_title.clone(),
    };
    svc.room
        .store
        .set_meeting_titles(meeting, &title, short.as_deref())
        .await?;
    settle(svc, meeting, |e| {
        let mut e = e?;
        e.record.title = title;
        e.record.short_title = short;
        Some(e)
    })
    .await;
    tracing::info!(meeting = %meeting, "meeting renamed");
    svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)
}

/// Makes a meeting's group notes private (or not): store, directory, then every participant
/// socket open on one of its group documents closes (1008, "notes are private"). A connection
/// that registers meanwhile checks again (see `connection`).
pub async fn set_notes_private(
    svc: &AppState,
    meeting: &MeetingId,
    private: bool,
) -> Result<MeetingRecord, ManageError> {
    let _turn = svc.room.directory.turn().await;
    svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)?;
    svc.room.store.set_notes_private(meeting, private).await?;
    settle(svc, meeting, |e| {
        let mut e = e?;
        e.record.notes_private = private;
        Some(e)
    })
    .await;
    tracing::info!(meeting = %meeting, private, "notes privacy set");
    svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)
}

/// Renames a group (see [`rename_meeting`]); the plenary section's `title` / `short_title`
/// follow.
pub async fn rename_group(
    svc: &AppState,
    meeting: &MeetingId,
    group: &GroupId,
    title: Option<&str>,
    short_title: Option<Option<&str>>,
) -> Result<GroupRecord, ManageError> {
    let _turn = svc.room.directory.turn().await;
    let rec = svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)?;
    let g = rec
        .groups
        .iter()
        .find(|x| &x.id == group)
        .ok_or(ManageError::NotFound)?;
    let title = match title {
        Some(t) => check_title("title", t)?,
        None => g.title.clone(),
    };
    let short = match short_title {
        Some(s) => check_short_title(s)?,
        None => g.short_title.clone(),
    };
    svc.room
        .store
        .set_group_titles(meeting, group, &title, short.as_deref())
        .await?;
    settle(svc, meeting, |e| {
        let mut e = e?;
        if let Some(g) = e.record.groups.iter_mut().find(|x| &x.id == group) {
            g.title = title;
            g.short_title = short;
        }
        Some(e)
    })
    .await;
    tracing::info!(meeting = %meeting, group = %group, "group renamed");
    svc.room
        .directory
        .meeting(meeting)
        .and_then(|m| m.groups.into_iter().find(|x| &x.id == group))
        .ok_or(ManageError::NotFound)
}

/// A group added to a meeting, with the only copy of its rapporteur token.
#[derive(Debug, Serialize)]
pub struct AddedGroup {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_title: Option<String>,
    pub closed: bool,
    pub role: &'static str,
    pub token: String,
    pub link: String,
}

/// A group id from a title: lower-case ASCII letters and digits, dashes between words.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Adds a group at the end of a meeting: store (group and rapporteur token in one
/// transaction), directory, then the plenary gets its section. `id: None` derives one from the
/// title (or a random one).
pub async fn add_group(
    svc: &AppState,
    meeting: &MeetingId,
    id: Option<&str>,
    title: &str,
) -> Result<AddedGroup, ManageError> {
    let _turn = svc.room.directory.turn().await;
    let rec = svc.room.directory.meeting(meeting).ok_or(ManageError::NotFound)?;
    let title = check_title("title", title)?;
    if rec.groups.len() >= MAX_GROUPS {
        return Err(ManageError::Invalid(format!(
            "a meeting has at most {MAX_GROUPS} groups"
        )));
    }
    let taken = |g: &GroupId| rec.groups.iter().any(|x| &x.id == g);
    let gid = match id {
        Some(id) => {
            let g = GroupId::parse(id).map_err(|e| ManageError::Invalid(format!("group id {id:?}: {e}")))?;
            if taken(&g) {
                return Err(ManageError::Exists);
            }
            g
        }
        None => match GroupId::parse(&slug(&title)).ok().filter(|g| !taken(g)) {
            Some(g) => g,
            None => GroupId::parse(&format!(
                "g-{}",
                &generate_token()[..10].to_ascii_lowercase().replace('_', "-")
            ))
            .map_err(|e| ManageError::Invalid(e.to_string()))?,
        },
    };
    let group = GroupRecord {
        id: gid.clone(),
        title: title.clone(),
        closed: false,
        short_title: None,
    };
    let token = generate_token();
    let role = Role::Rapporteur(gid.to_string());
    let trec = TokenRecord {
        hash: TokenHash::of(&token),
        meeting: meeting.clone(),
        role: role.clone(),
    };
    svc.room.store.add_group(meeting, &group, &trec).await?;
    settle(svc, meeting, |e| {
        let mut e = e?;
        e.record.groups.push(group);
        e.tokens.push(trec);
        Some(e)
    })
    .await;
    tracing::info!(meeting = %meeting, group = %gid, "group added");
    Ok(AddedGroup {
        id: gid.to_string(),
        title,
        short_title: None,
        closed: false,
        role: "rapporteur",
        link: link(&svc.public_url, meeting, &role, &token),
        token,
    })
}

/// Deletes a meeting: it leaves the directory first (new requests and upgrades get 404, its
/// tokens stop working), its open sockets close with 1008 "meeting deleted", its loaded rooms
/// finish their writes and stop (groups before the plenary), and then every row of it leaves
/// the store in one transaction. A room that started meanwhile is stopped and the rows are
/// removed again.
pub async fn delete_meeting(svc: &AppState, meeting: &MeetingId) -> Result<(), ManageError> {
    let _turn = svc.room.directory.turn().await;
    if svc.room.directory.meeting(meeting).is_none() {
        return Err(ManageError::NotFound);
    }
    // the sockets close and the rooms stop (effects of the meeting leaving the directory)
    let d = svc.room.directory.remove_meeting(meeting);
    effects::apply(svc, &d, Origin::Here).await;
    loop {
        match svc.room.store.delete_meeting(meeting).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => {
                directory_sync::publish(svc, meeting);
                return Err(ManageError::Store(e));
            }
        }
        if svc.room.rooms.stop(|p| &p.meeting == meeting).await == 0 {
            break;
        }
    }
    directory_sync::publish(svc, meeting);
    tracing::info!(meeting = %meeting, tokens = d.tokens_revoked.len(), "meeting deleted");
    Ok(())
}

/// Is this base URL's host a loopback address (127.0.0.0/8, ::1, localhost)? Phones on the
/// venue's network cannot open such links.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod manage_tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        for u in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:8080/",
            "http://LOCALHOST",
            "http://[::1]:8080",
            "https://a.localhost/x",
        ] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in [
            "http://192.168.1.20:8080",
            "http://0.0.0.0:8080",
            "https://plenary.example.org",
            "http://[fe80::1]:80",
            "http://localhost.example.org",
        ] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }

    #[test]
    fn slugs_are_group_ids() {
        assert_eq!(slug("New trends & threats!"), "new-trends-threats");
        assert_eq!(slug("  Été 2023 "), "t-2023");
        assert_eq!(slug("***"), "");
    }
}
