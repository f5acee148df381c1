//! `GET /api/meetings/{m}/groups/{g}/revisions` and `…/revisions/{id}` (`?format=yjs` for the
//! v1 state): a group's revision history, for its rapporteur and the moderator.

use super::error::ApiError;
use super::meetings::authorize;
use super::TokenQuery;
use crate::auth::{AuthError, Role};
use crate::revisions;
use crate::services::Services;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use plenary_protocol::{GroupId, RoomPath};

/// The group's document name, when the token may read its history (its rapporteur, moderator).
fn doc_of(svc: &Services, m: &str, g: &str, headers: &HeaderMap, q: &TokenQuery) -> Result<String, ApiError> {
    let (meeting, cap) = authorize(svc, m, headers, q)?;
    let rec = svc
        .directory
        .meeting(&meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let gid = GroupId::parse(g)
        .ok()
        .filter(|gid| rec.groups.iter().any(|x| &x.id == gid))
        .ok_or_else(|| ApiError::from(AuthError::UnknownGroup))?;
    let allowed = match &cap.role {
        Role::Moderator => true,
        Role::Rapporteur(rg) => rg == gid.as_str(),
        Role::Participant => false,
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only this group's rapporteur or the moderator may read its history",
        ));
    }
    Ok(RoomPath::group(meeting, gid).to_string())
}

pub async fn list(
    State(svc): State<Services>,
    Path((m, g)): Path<(String, String)>,
    q: TokenQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let doc = doc_of(&svc, &m, &g, &headers, &q)?;
    let list = svc
        .store
        .revisions(&doc)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(revisions::list_json(&list)))
}

pub async fn one(
    State(svc): State<Services>,
    Path((m, g, id)): Path<(String, String, String)>,
    q: TokenQuery,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = doc_of(&svc, &m, &g, &headers, &q)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such revision");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let (rec, data) = svc
        .store
        .revision(&doc, id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(not_found)?;
    // read leniently, like the token: only `format` matters here
    let format = raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("format="))
        .unwrap_or("")
        .to_owned();
    match format.as_str() {
        "yjs" => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response()),
        "" | "json" => {
            let (c, notes) = revisions::decode(&data).map_err(ApiError::internal)?;
            Ok(Json(serde_json::json!({
                "id": rec.id,
                "created_at": rec.created_at,
                "reason": rec.reason,
                "conclusions": revisions::conclusions_json(&c),
                "notes": notes,
            }))
            .into_response())
        }
        _ => Err(ApiError::bad_request("format must be json or yjs".to_string())),
    }
}
