//! HTTP and WebSocket on one port (axum).
//!
//! - [`meetings`]: create and read meetings, close and reopen groups.
//! - [`exports`]: summaries and adopted versions.
//! - [`ws`]: the WebSocket upgrade, refused before upgrading (404/401/403).
//! - [`ops`]: `/healthz`, `/metrics`.
//! - [`web`]: the embedded web client.
//! - [`error`]: `ApiError`, the contract's JSON error body.

pub mod error;
pub mod exports;
pub mod meetings;
pub mod ops;
pub mod revisions;
pub mod web;
pub mod ws;

use crate::services::Services;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Request};
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub fn router(svc: Services) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/meetings", post(meetings::create))
        .route("/api/meetings/{m}", get(meetings::get))
        .route("/api/meetings/{m}/close", post(meetings::close_all))
        .route("/api/meetings/{m}/reopen", post(meetings::reopen_all))
        .route("/api/meetings/{m}/groups/{g}/close", post(meetings::close_group))
        .route("/api/meetings/{m}/groups/{g}/reopen", post(meetings::reopen_group))
        .route("/api/meetings/{m}/groups/{g}/revisions", get(revisions::list))
        .route("/api/meetings/{m}/groups/{g}/revisions/{id}", get(revisions::one))
        .route("/api/meetings/{m}/versions", post(exports::adopt).get(exports::list_versions))
        .route("/api/meetings/{m}/versions/{v}/{file}", get(exports::version_file))
        .route("/api/meetings/{m}/{file}", get(exports::summary_file))
        .route("/ws/{m}/{g}", get(ws::upgrade))
        .fallback(web::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(
            // Method and path only: query strings carry tokens and never reach the logs.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(svc)
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed here",
    )
}

/// The token of a request: `Authorization: Bearer T`, else `?token=T`.
pub fn request_token(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(t.trim().to_owned());
        }
    }
    query_token.map(str::to_owned)
}

/// `?token=T`, read leniently: a query string that does not parse carries no token (the
/// request then gets the contract's JSON 401, not a plain-text 400).
#[derive(serde::Deserialize, Default)]
pub struct TokenQuery {
    pub token: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TokenQuery {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(
            axum::extract::Query::<TokenQuery>::from_request_parts(parts, state)
                .await
                .map(|q| q.0)
                .unwrap_or_default(),
        )
    }
}
