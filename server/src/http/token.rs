//! The token a request carries: `Authorization: Bearer T`, else `?token=T`.

use axum::http::HeaderMap;

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
