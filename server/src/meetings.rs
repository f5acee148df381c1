//! Meeting creation, group closing and token rotation: the domain operations behind the HTTP
//! API and the demo.

use crate::auth::{generate_token, Role, TokenHash};
use crate::room::outbox::close_code;
use crate::room::RoomCmd;
use crate::services::Services;
use crate::store::{GroupRecord, MeetingRecord, StoreError, TokenRecord};
use plenary_protocol::{GroupId, MeetingId, RoomPath};
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
        });
    }
    Ok(MeetingRecord {
        id,
        title: title.to_owned(),
        created_at: now,
        groups,
    })
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

/// Creates a meeting with fresh tokens: store first, then the in-memory directory.
pub async fn create(svc: &Services, spec: MeetingSpec) -> Result<CreatedMeeting, CreateError> {
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
    let store = svc.store.clone();
    let (rec, recs) = (record.clone(), records.clone());
    tokio::task::spawn_blocking(move || store.insert_meeting(&rec, &recs))
        .await
        .map_err(|e| CreateError::Store(StoreError::Corrupt(e.to_string())))?
        .map_err(|e| match e {
            StoreError::Conflict => CreateError::Exists,
            e => CreateError::Store(e),
        })?;
    svc.directory.add(record.clone(), &records);
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

/// Closes or reopens groups: store, directory, then the live rooms (writes are refused at once).
pub async fn set_closed(
    svc: &Services,
    meeting: &MeetingId,
    groups: &[GroupId],
    closed: bool,
) -> Result<(), StoreError> {
    for g in groups {
        let store = svc.store.clone();
        let (m, gg) = (meeting.clone(), g.clone());
        tokio::task::spawn_blocking(move || store.set_group_closed(&m, &gg, closed))
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))??;
        svc.directory.set_group_closed(meeting, g, closed);
        if let Some(h) = svc.rooms.get(&RoomPath::group(meeting.clone(), g.clone())) {
            let _ = h.tx.send(RoomCmd::SetClosed { closed }).await;
        }
        let plenary = RoomPath::plenary(meeting.clone());
        svc.rooms
            .send(
                &plenary,
                svc,
                RoomCmd::GroupMeta {
                    group: g.to_string(),
                    closed,
                },
            )
            .await;
        tracing::info!(meeting = %meeting, group = %g, closed, "group closed flag set");
        if closed {
            crate::revisions::on_closed(svc, meeting, g);
        }
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
    svc: &Services,
    meeting: &MeetingId,
    role: Role,
) -> Result<IssuedToken, StoreError> {
    // One rotation at a time, so that the directory applies them in the store's order (two
    // racing rotations of one role must not leave the first one's token alive in memory).
    static ROTATION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = ROTATION.lock().await;
    let token = generate_token();
    let record = TokenRecord {
        hash: TokenHash::of(&token),
        meeting: meeting.clone(),
        role: role.clone(),
    };
    let store = svc.store.clone();
    let rec = record.clone();
    let old = tokio::task::spawn_blocking(move || store.replace_token(&rec))
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))??;
    svc.directory.replace_tokens(&old, &record);
    let mut closed = 0;
    for entry in svc.connections.iter() {
        if old.contains(&entry.value().token) {
            entry.value().kick.kick(close_code::POLICY_VIOLATION);
            closed += 1;
        }
    }
    tracing::info!(meeting = %meeting, role = role.name(), revoked = old.len(), closed, "token rotated");
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
