//! The web client, embedded at compile time from `web-client/dist` (committed; the test command
//! checks it is current). App routes (`/`, `/m/...`, `/organize`) get `index.html`; only GET
//! and HEAD make sense there (405 otherwise).

use super::error::ApiError;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web-client/dist"]
struct Assets;

/// Scripts (and the service worker, `/sw.js`) only from this origin; no plugins, no `<base>`.

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
                (header::CONTENT_SECURITY_POLICY, super::APP_CSP.to_owned()),
            ],
            file.data,
        )
            .into_response(),
    )
}

pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path.starts_with("ws/") {
        return ApiError::not_found("not_found", "no such resource").into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = ApiError::method_not_allowed().into_response();
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
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
