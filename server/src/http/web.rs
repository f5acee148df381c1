//! The web client, embedded at compile time from `web-client/dist` (committed; the test command
//! checks it is current). App routes (`/`, `/m/...`, `/organize`) get `index.html`.

use super::error::ApiError;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web-client/dist"]
struct Assets;

/// Scripts (and the service worker, `/sw.js`) only from this origin; no plugins, no `<base>`.
const CSP: &str = "script-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'";

fn asset(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, mime.as_ref().to_owned()),
                (header::CACHE_CONTROL, cache.to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::CONTENT_SECURITY_POLICY, CSP.to_owned()),
            ],
            file.data,
        )
            .into_response(),
    )
}

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path.starts_with("ws/") {
        return ApiError::not_found("not_found", "no such resource").into_response();
    }
    if let Some(r) = (!path.is_empty()).then(|| asset(path)).flatten() {
        return r;
    }
    let app_route = path.is_empty() || path == "organize" || path == "m" || path.starts_with("m/");
    if app_route {
        if let Some(r) = asset("index.html") {
            return r;
        }
    }
    (
        StatusCode::NOT_FOUND,
        ApiError::not_found("not_found", "no such page"),
    )
        .into_response()
}
