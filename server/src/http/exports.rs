//! Summaries (`summary.json|md|html|docx|pdf`) and adopted versions.

use super::error::ApiError;
use super::meetings::{authorize, require_moderator};
use super::TokenQuery;
use crate::auth::AuthError;
use crate::minutes::{self, MinutesError, MinutesInput, Version};
use crate::plenary::summary::{self, Summary};
use crate::room::RoomCmd;
use crate::services::Services;
use crate::store::now_rfc3339;
use crate::store::{StoreError, VersionRecord};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use plenary_protocol::{MeetingId, RoomPath};
use tokio::sync::oneshot;

/// The live summary of a meeting, from its plenary room (loaded if needed).
pub async fn live_summary(svc: &Services, meeting: &MeetingId) -> Result<Summary, ApiError> {
    let rec = svc
        .directory
        .meeting(meeting)
        .ok_or_else(|| ApiError::from(AuthError::UnknownMeeting))?;
    let (reply, rx) = oneshot::channel();
    let room = RoomPath::plenary(meeting.clone());
    if !svc.rooms.send(&room, svc, RoomCmd::Inspect { reply }).await {
        return Err(ApiError::internal("plenary room unavailable"));
    }
    let json = rx.await.map_err(|_| ApiError::internal("plenary room stopped"))?;
    Ok(summary::from_plenary(
        rec.id.as_str(),
        &rec.title,
        &json,
        now_rfc3339(),
    ))
}

/// The export files, by name.
pub const FILES: [&str; 5] = [
    "summary.json",
    "summary.md",
    "summary.html",
    "summary.docx",
    "summary.pdf",
];

/// `?notes=1` adds the groups' notes as an annex to `summary.docx` and `summary.pdf`.
#[derive(serde::Deserialize, Default)]
pub struct ExportQuery {
    notes: Option<String>,
}

impl ExportQuery {
    fn wants_notes(q: &Result<Query<ExportQuery>, QueryRejection>) -> bool {
        matches!(q, Ok(Query(ExportQuery { notes: Some(n) })) if n == "1" || n == "true")
    }
}

fn unknown_file() -> ApiError {
    ApiError::not_found(
        "not_found",
        "no such export; try summary.json, summary.md, summary.html, summary.docx or summary.pdf",
    )
}

/// Renders one export file. DOCX and PDF are built off the async workers (a long PDF takes
/// milliseconds of CPU), with the groups' notes read from the store when asked for.
async fn render(
    svc: &Services,
    summary: Summary,
    version: Option<Version>,
    vref: Option<summary::VersionRef>,
    file: &str,
    notes: bool,
) -> Result<Response, ApiError> {
    let vref = vref.as_ref();
    let (ctype, body): (&str, Vec<u8>) = match file {
        "summary.json" => (
            "application/json",
            summary::to_json_version(&summary, vref).into_bytes(),
        ),
        "summary.md" => (
            "text/markdown; charset=utf-8",
            summary::to_markdown_version(&summary, vref).into_bytes(),
        ),
        "summary.html" => (
            "text/html; charset=utf-8",
            summary::to_html_version(&summary, vref).into_bytes(),
        ),
        "summary.docx" | "summary.pdf" => {
            let pdf = file == "summary.pdf";
            let stored = if notes {
                Some(
                    minutes::stored_notes(svc.store.as_ref(), &summary)
                        .await
                        .map_err(ApiError::internal)?,
                )
            } else {
                None
            };
            let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, MinutesError> {
                let notes = stored.map(|s| minutes::notes_of(&s)).transpose()?;
                let input = MinutesInput {
                    summary,
                    version,
                    notes,
                };
                if pdf {
                    minutes::render_pdf(&input)
                } else {
                    minutes::render_docx(&input)
                }
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            let ctype = if pdf {
                "application/pdf"
            } else {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            };
            (ctype, bytes)
        }
        _ => return Err(unknown_file()),
    };
    let csp = if file == "summary.html" {
        super::EXPORT_CSP
    } else {
        super::DEFAULT_CSP
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The notes annex (`?notes=1`) is refused to the participant token when the meeting keeps
/// its group notes private.
fn refuse_private_notes(
    svc: &Services,
    meeting: &MeetingId,
    cap: &crate::auth::Capability,
    notes: bool,
) -> Result<(), ApiError> {
    if notes && matches!(cap.role, crate::auth::Role::Participant) && svc.directory.notes_private(meeting) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "notes_private",
            "the notes of the working groups are private in this meeting",
        ));
    }
    Ok(())
}

pub async fn summary_file(
    State(svc): State<Services>,
    Path((m, file)): Path<(String, String)>,
    q: TokenQuery,
    eq: Result<Query<ExportQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (meeting, cap) = authorize(&svc, &m, &headers, &q)?;
    if !FILES.contains(&file.as_str()) {
        return Err(unknown_file());
    }
    refuse_private_notes(&svc, &meeting, &cap, ExportQuery::wants_notes(&eq))?;
    let s = live_summary(&svc, &meeting).await?;
    render(&svc, s, None, None, &file, ExportQuery::wants_notes(&eq)).await
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AdoptBody {
    label: Option<String>,
}

fn version_view(v: &VersionRecord) -> serde_json::Value {
    serde_json::json!({ "id": v.id, "label": v.label, "created_at": v.created_at })
}

pub async fn adopt(
    State(svc): State<Services>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (meeting, cap) = authorize(&svc, &m, &headers, &q)?;
    require_moderator(&cap)?;
    let parsed: AdoptBody = if body.is_empty() {
        AdoptBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let label = parsed.label.unwrap_or_default().trim().to_owned();
    if label.chars().count() > 200 {
        return Err(ApiError::bad_request("label is at most 200 characters"));
    }
    let summary = live_summary(&svc, &meeting).await?;
    let adopt = async {
        let n = svc.store.versions(&meeting).await?.len() + 1;
        let label = if label.is_empty() {
            format!("Version {n}")
        } else {
            label
        };
        let v = VersionRecord {
            id: format!("v{n}"),
            label,
            created_at: summary.generated_at.clone(),
            summary_json: summary::to_json(&summary),
        };
        svc.store.insert_version(&meeting, &v).await?;
        Ok::<_, StoreError>(v)
    };
    let record = adopt.await.map_err(|e| match e {
        StoreError::Conflict => ApiError::new(
            StatusCode::CONFLICT,
            "version_exists",
            "another version was adopted at the same time; retry",
        ),
        e => ApiError::internal(e),
    })?;
    tracing::info!(meeting = %meeting, version = %record.id, "version adopted");
    Ok((StatusCode::CREATED, Json(version_view(&record))).into_response())
}

async fn versions(svc: &Services, meeting: &MeetingId) -> Result<Vec<VersionRecord>, ApiError> {
    svc.store.versions(meeting).await.map_err(ApiError::internal)
}

pub async fn list_versions(
    State(svc): State<Services>,
    Path(m): Path<String>,
    q: TokenQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (meeting, _) = authorize(&svc, &m, &headers, &q)?;
    let list = versions(&svc, &meeting).await?;
    Ok(
        Json(serde_json::json!({ "versions": list.iter().map(version_view).collect::<Vec<_>>() }))
            .into_response(),
    )
}

pub async fn version_file(
    State(svc): State<Services>,
    Path((m, v, file)): Path<(String, String, String)>,
    q: TokenQuery,
    eq: Result<Query<ExportQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (meeting, cap) = authorize(&svc, &m, &headers, &q)?;
    refuse_private_notes(&svc, &meeting, &cap, ExportQuery::wants_notes(&eq))?;
    let list = versions(&svc, &meeting).await?;
    let rec = list
        .iter()
        .find(|x| x.id == v)
        .ok_or_else(|| ApiError::not_found("unknown_version", "no version with this id"))?;
    if !FILES.contains(&file.as_str()) {
        return Err(unknown_file());
    }
    let s: Summary = serde_json::from_str(&rec.summary_json).map_err(ApiError::internal)?;
    let version = Version {
        label: rec.label.clone(),
        adopted_at: rec.created_at.clone(),
    };
    let vref = summary::VersionRef {
        id: rec.id.clone(),
        label: rec.label.clone(),
        adopted_at: rec.created_at.clone(),
    };
    render(
        &svc,
        s,
        Some(version),
        Some(vref),
        &file,
        ExportQuery::wants_notes(&eq),
    )
    .await
}
