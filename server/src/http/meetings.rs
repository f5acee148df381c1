//! `POST /api/meetings`, `GET /api/meetings/{m}`, closing and reopening groups, rotating a
//! token (`POST /api/meetings/{m}/tokens`), and meeting management: the list (admin),
//! renaming meetings and groups, adding groups (admin or moderator), deleting (admin), and
//! `GET /api/server` (the public URL, for the organizer page).

use super::error::ApiError;
use super::{request_token, TokenQuery};
use crate::app::AppState;
use crate::auth::{authorize_meeting, AuthError, Capability, Role};
use crate::meetings::{self, CreateError, MeetingSpec};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use plenary_protocol::{GroupId, MeetingId};

pub async fn create(
    State(svc): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    super::admin::require_admin(&svc.admin_gate, &headers)?;
    let spec: MeetingSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid meeting JSON: {e}")))?;
    match meetings::create(&svc, spec).await {
        Ok(created) => Ok((StatusCode::CREATED, Json(created))),
        Err(CreateError::Invalid(msg)) => Err(ApiError::bad_request(msg)),
        Err(CreateError::Exists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "meeting_exists",
            "a meeting with this id already exists",
        )),
        Err(CreateError::Store(e)) => Err(ApiError::internal(e)),
    }
}

/// Resolves `{m}` and the request's token to a capability in that meeting.
pub fn authorize(
    svc: &AppState,
    m: &str,
    headers: &HeaderMap,
    q: &TokenQuery,
) -> Result<(MeetingId, Capability), ApiError> {
    let meeting = known_meeting(svc, m)?;
    let token = request_token(headers, q.token.as_deref());
    let cap = authorize_meeting(svc.room.directory.as_ref(), &meeting, token.as_deref())?;
    Ok((meeting, cap))
}

/// `{m}` as a meeting the directory holds (404 otherwise: an id that cannot exist, too).
fn known_meeting(svc: &AppState, m: &str) -> Result<MeetingId, ApiError> {
    let meeting = MeetingId::parse(m).map_err(|_| ApiError::from(AuthError::UnknownMeeting))?;
    if svc.room.directory.meeting(&meeting).is_none() {
        return Err(AuthError::UnknownMeeting.into());
    }
    Ok(meeting)
}

pub fn require_moderator(cap: &Capability) -> Result<(), ApiError> {
    if cap.role == Role::Moderator {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a moderator may do this",
        ))
    }
}

pub async fn get(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let (meeting, cap) = authorize(&svc, &m, &headers, &q)?;
    let rec = svc
        .room
        .directory
        .meeting(&meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let mut body = serde_json::json!({
        "id": rec.id.as_str(),
        "title": rec.title,
        "groups": rec.groups.iter().map(group_view).collect::<Vec<_>>(),
        "role": cap.role.name(),
    });
    if let Some(st) = &rec.short_title {
        body["short_title"] = serde_json::Value::String(st.clone());
    }
    body["notes_private"] = serde_json::Value::Bool(rec.notes_private);
    if let Role::Rapporteur(g) = &cap.role {
        body["group"] = serde_json::Value::String(g.clone());
    }
    Ok(Json(body))
}

async fn set_closed(
    svc: AppState,
    m: String,
    g: Option<String>,
    closed: bool,
    headers: HeaderMap,
    q: TokenQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (meeting, cap) = authorize(&svc, &m, &headers, &q)?;
    require_moderator(&cap)?;
    let rec = svc
        .room
        .directory
        .meeting(&meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let one = g.is_some();
    let groups: Vec<GroupId> = match g {
        Some(g) => {
            let gid = GroupId::parse(&g)
                .ok()
                .filter(|gid| rec.groups.iter().any(|x| &x.id == gid));
            vec![gid.ok_or_else(|| ApiError::from(AuthError::UnknownGroup))?]
        }
        None => rec.groups.iter().map(|g| g.id.clone()).collect(),
    };
    meetings::set_closed(&svc, &meeting, &groups, closed)
        .await
        .map_err(ApiError::internal)?;
    let rec = svc
        .room
        .directory
        .meeting(&meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let view = group_view;
    Ok(Json(match one {
        // one group: that group
        true => rec
            .groups
            .iter()
            .find(|g| g.id == groups[0])
            .map(view)
            .unwrap_or_default(),
        false => {
            serde_json::json!({ "id": rec.id.as_str(), "title": rec.title, "groups": rec.groups.iter().map(view).collect::<Vec<_>>() })
        }
    }))
}

/// `POST /api/meetings/{m}/groups/{g}/close` (`CLOSED`) and `.../reopen`.
pub async fn close_group<const CLOSED: bool>(
    State(svc): State<AppState>,
    Path((m, g)): Path<(String, String)>,
    q: TokenQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    set_closed(svc, m, Some(g), CLOSED, headers, q).await
}

/// `POST /api/meetings/{m}/close` (`CLOSED`) and `.../reopen`: every group.
pub async fn close_all<const CLOSED: bool>(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    set_closed(svc, m, None, CLOSED, headers, q).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    role: String,
    group: Option<String>,
}

/// `POST /api/meetings/{m}/tokens` (admin): a fresh token for a role; the old one is revoked.
pub async fn rotate_token(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    super::admin::require_admin(&svc.admin_gate, &headers)?;
    let meeting = MeetingId::parse(&m).map_err(|_| ApiError::from(AuthError::UnknownMeeting))?;
    let rec = svc
        .room
        .directory
        .meeting(&meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let req: TokenRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid token request JSON: {e}")))?;
    let role = match (req.role.as_str(), req.group) {
        ("moderator", None) => Role::Moderator,
        ("participant", None) => Role::Participant,
        ("rapporteur", Some(g)) => {
            let known = GroupId::parse(&g)
                .ok()
                .filter(|gid| rec.groups.iter().any(|x| &x.id == gid));
            let gid = known.ok_or_else(|| ApiError::from(AuthError::UnknownGroup))?;
            Role::Rapporteur(gid.to_string())
        }
        ("rapporteur", None) => return Err(ApiError::bad_request("a rapporteur token needs \"group\"")),
        ("moderator" | "participant", Some(_)) => {
            return Err(ApiError::bad_request("\"group\" is only for the rapporteur role"))
        }
        _ => {
            return Err(ApiError::bad_request(
                "\"role\" must be \"moderator\", \"participant\" or \"rapporteur\"",
            ))
        }
    };
    match meetings::rotate_token(&svc, &meeting, role).await {
        Ok(issued) => Ok(Json(issued)),
        // deleted meanwhile
        Err(crate::store::StoreError::NotFound) => Err(AuthError::UnknownMeeting.into()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A meeting as the management routes show it (no tokens).
pub fn meeting_view(rec: &crate::store::MeetingRecord) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": rec.id.as_str(),
        "title": rec.title,
        "created_at": rec.created_at,
        "groups": rec.groups.iter().map(group_view).collect::<Vec<_>>(),
    });
    if let Some(s) = &rec.short_title {
        v["short_title"] = serde_json::Value::String(s.clone());
    }
    v["notes_private"] = serde_json::Value::Bool(rec.notes_private);
    v
}

pub fn group_view(g: &crate::store::GroupRecord) -> serde_json::Value {
    let mut v = serde_json::json!({"id": g.id.as_str(), "title": g.title, "closed": g.closed});
    if let Some(s) = &g.short_title {
        v["short_title"] = serde_json::Value::String(s.clone());
    }
    v
}

/// `GET /api/meetings` (admin bearer): every meeting with its groups, oldest first.
pub async fn list(State(svc): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    super::admin::require_admin(&svc.admin_gate, &headers)?;
    let meetings: Vec<_> = svc.room.directory.all().iter().map(meeting_view).collect();
    Ok(Json(serde_json::json!({ "meetings": meetings })))
}

/// The meeting's moderator token (bearer or `?token=`), or the admin bearer. Order: unknown
/// meeting 404; a token of this meeting that is not the moderator's 403; a token of another
/// meeting 403; anything else is checked as the admin token (401 or 429, through the gate that
/// bounds guesses).
pub fn require_admin_or_moderator(
    svc: &AppState,
    m: &str,
    headers: &HeaderMap,
    q: &TokenQuery,
) -> Result<MeetingId, ApiError> {
    let meeting = known_meeting(svc, m)?;
    let token = request_token(headers, q.token.as_deref());
    match authorize_meeting(svc.room.directory.as_ref(), &meeting, token.as_deref()) {
        Ok(cap) => {
            require_moderator(&cap)?;
            Ok(meeting)
        }
        Err(AuthError::OtherMeeting) => Err(AuthError::OtherMeeting.into()),
        Err(_) => {
            super::admin::require_admin(&svc.admin_gate, headers)?;
            Ok(meeting)
        }
    }
}

fn manage_error(e: meetings::ManageError, not_found: AuthError) -> ApiError {
    use meetings::ManageError as E;
    match e {
        E::Invalid(msg) => ApiError::bad_request(msg),
        E::Exists => ApiError::new(
            StatusCode::CONFLICT,
            "group_exists",
            "a group with this id already exists in this meeting",
        ),
        E::NotFound => not_found.into(),
        E::Store(e) => ApiError::internal(e),
    }
}

/// Absent stays `None`; `null` becomes `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    use serde::Deserialize;
    Option::<String>::deserialize(d).map(Some)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TitlesPatch {
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    short_title: Option<Option<String>>,
}

fn parse_titles(body: &Bytes) -> Result<TitlesPatch, ApiError> {
    let p: TitlesPatch =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    if p.title.is_none() && p.short_title.is_none() {
        return Err(ApiError::bad_request("give \"title\", \"short_title\" or both"));
    }
    Ok(p)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MeetingPatch {
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    short_title: Option<Option<String>>,
    notes_private: Option<bool>,
}

/// `PATCH /api/meetings/{m}` (admin or moderator): `{"title"?, "short_title"?,
/// "notes_private"?}` (a blank or null `short_title` removes it; `notes_private: true` keeps
/// the groups' notes to rapporteurs and moderators); 200 with the meeting.
pub async fn patch(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let meeting = require_admin_or_moderator(&svc, &m, &headers, &q)?;
    let p: MeetingPatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    if p.title.is_none() && p.short_title.is_none() && p.notes_private.is_none() {
        return Err(ApiError::bad_request(
            "give \"title\", \"short_title\" or \"notes_private\"",
        ));
    }
    let mut rec = None;
    if p.title.is_some() || p.short_title.is_some() {
        let short = p.short_title.as_ref().map(|s| s.as_deref());
        rec = Some(
            meetings::rename_meeting(&svc, &meeting, p.title.as_deref(), short)
                .await
                .map_err(|e| manage_error(e, AuthError::UnknownMeeting))?,
        );
    }
    if let Some(private) = p.notes_private {
        rec = Some(
            meetings::set_notes_private(&svc, &meeting, private)
                .await
                .map_err(|e| manage_error(e, AuthError::UnknownMeeting))?,
        );
    }
    let rec = rec.ok_or_else(|| ApiError::internal("no change"))?;
    Ok(Json(meeting_view(&rec)))
}

/// `PATCH /api/meetings/{m}/groups/{g}` (admin or moderator): `{"title"?, "short_title"?}`.
pub async fn patch_group(
    State(svc): State<AppState>,
    Path((m, g)): Path<(String, String)>,
    q: TokenQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let meeting = require_admin_or_moderator(&svc, &m, &headers, &q)?;
    let group = GroupId::parse(&g)
        .ok()
        .filter(|gid| svc.room.directory.group_exists_in(&meeting, gid))
        .ok_or_else(|| ApiError::from(AuthError::UnknownGroup))?;
    let p = parse_titles(&body)?;
    let short = p.short_title.as_ref().map(|s| s.as_deref());
    let rec = meetings::rename_group(&svc, &meeting, &group, p.title.as_deref(), short)
        .await
        .map_err(|e| manage_error(e, AuthError::UnknownGroup))?;
    Ok(Json(group_view(&rec)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    id: Option<String>,
    title: String,
}

/// `POST /api/meetings/{m}/groups` (admin or moderator): `{"id"?, "title"}`; 201 with the
/// group, its rapporteur token and link.
pub async fn add_group(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let meeting = require_admin_or_moderator(&svc, &m, &headers, &q)?;
    let g: NewGroup = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid group JSON: {e}")))?;
    let added = meetings::add_group(&svc, &meeting, g.id.as_deref(), &g.title)
        .await
        .map_err(|e| manage_error(e, AuthError::UnknownMeeting))?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// `DELETE /api/meetings/{m}` (admin): 204; everything of the meeting is gone.
pub async fn delete(
    State(svc): State<AppState>,
    Path(m): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    super::admin::require_admin(&svc.admin_gate, &headers)?;
    let meeting = MeetingId::parse(&m).map_err(|_| ApiError::from(AuthError::UnknownMeeting))?;
    meetings::delete_meeting(&svc, &meeting)
        .await
        .map_err(|e| manage_error(e, AuthError::UnknownMeeting))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/server` (no token): what the organizer page needs to warn about links.
pub async fn server_info(State(svc): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "public_url": svc.public_url,
        "public_url_is_loopback": meetings::is_loopback_url(&svc.public_url),
    }))
}
