//! Operations endpoints.

use crate::app::AppState;
use crate::http::error::ApiError;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// How long `/healthz` waits for the store before saying it cannot be reached.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// 200 `ok`; 503 with the JSON error body while the store cannot be reached (contract,
/// "Several nodes").
pub async fn healthz(State(svc): State<AppState>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(HEALTH_TIMEOUT, svc.room.store.health()).await {
        Ok(Ok(())) => Ok("ok"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the store cannot be reached");
            Err(unavailable())
        }
        Err(_) => {
            tracing::warn!("health check: the store did not answer in time");
            Err(unavailable())
        }
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store cannot be reached",
    )
    .with_retry_after(std::time::Duration::from_secs(1))
}

pub async fn metrics(State(svc): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        svc.room.metrics.render(),
    )
}
