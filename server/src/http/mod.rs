//! HTTP and WebSocket on one port (axum).
//!
//! - [`meetings`]: create and read meetings, close and reopen groups, rotate tokens.
//! - [`exports`]: summaries and adopted versions.
//! - [`ws`]: the WebSocket upgrade, refused before upgrading (404/401/403).
//! - [`ops`]: `/healthz`, `/metrics`.
//! - [`web`]: the embedded web client.
//! - [`admin`]: the admin bearer check and its budget for wrong guesses.
//! - [`error`]: `ApiError`, the contract's JSON error body.
//! - [`serve`]: the accept loop and the limits on connections that have not upgraded.
//! - [`token`]: the token a request carries (bearer header or `?token=`).
//! - [`catch_up`]: a meeting another node just created is read before the request is answered.

pub mod admin;
pub mod catch_up;
pub mod error;
pub mod exports;
pub mod meetings;
pub mod ops;
pub mod revisions;
pub mod serve;
pub mod token;
pub mod upgrade;
pub mod web;
pub mod ws;

pub use token::{request_token, TokenQuery};

use crate::app::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The web client's policy: its own scripts and styles (Tiptap sets inline styles), WebSockets
/// to any host (the app connects to the page's own host, `ws:` or `wss:`), QR codes as data URLs.
pub const APP_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/// Exported HTML: its one inline style sheet and nothing else (no script, no request out).
pub const EXPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Everything else (JSON, Markdown, metrics): nothing to run, not to be framed.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The WebSocket route (matched by the trace layer, which gives upgrades no span).
const WS_ROUTE: &str = "/ws/{m}/{g}";

/// What the accept loop serves: the routes, inside the layers every response gets.
pub type App = BoxCloneSyncService<Request<hyper::body::Incoming>, Response, std::convert::Infallible>;

/// The routes, wrapped once in the layers every request and response pass through. Layers
/// added with `Router::layer` wrap each route in a box of its own, cloned on every request (a
/// connect storm is thousands of requests); here they are one stack, cloned as a whole.
pub fn app(svc: AppState) -> App {
    let layers = ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(64 * 1024))
        // On every response, errors and the web client included; handlers that need another
        // Content-Security-Policy (the app, exported HTML) set their own first.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        ));
    BoxCloneSyncService::new(layers.service(router(svc)))
}

/// The routes, with the layers that need the matched route (tracing, the catch-up).
pub fn router(svc: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/server", get(meetings::server_info))
        .route("/api/meetings", post(meetings::create).get(meetings::list))
        .route(
            "/api/meetings/{m}",
            get(meetings::get).patch(meetings::patch).delete(meetings::delete),
        )
        .route("/api/meetings/{m}/groups", post(meetings::add_group))
        .route("/api/meetings/{m}/groups/{g}", patch(meetings::patch_group))
        .route("/api/meetings/{m}/tokens", post(meetings::rotate_token))
        .route("/api/meetings/{m}/close", post(meetings::close_all::<true>))
        .route("/api/meetings/{m}/reopen", post(meetings::close_all::<false>))
        .route(
            "/api/meetings/{m}/groups/{g}/close",
            post(meetings::close_group::<true>),
        )
        .route(
            "/api/meetings/{m}/groups/{g}/reopen",
            post(meetings::close_group::<false>),
        )
        .route("/api/meetings/{m}/groups/{g}/revisions", get(revisions::list))
        .route("/api/meetings/{m}/groups/{g}/revisions/{id}", get(revisions::one))
        .route(
            "/api/meetings/{m}/versions",
            post(exports::adopt).get(exports::list_versions),
        )
        .route(
            "/api/meetings/{m}/versions/{v}/{file}",
            get(exports::version_file),
        )
        .route("/api/meetings/{m}/{file}", get(exports::summary_file))
        .route(WS_ROUTE, get(ws::upgrade))
        .route_layer(axum::middleware::from_fn_with_state(svc.clone(), catch_up::layer))
        .fallback(web::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            // Method and route only: query strings carry tokens, and a token pasted into a
            // path (`/m/skopje/console/SECRET`) must not reach the logs either, so the span
            // names the matched route template, never the raw path.
            // WebSocket upgrades get no span: a connect storm is thousands of them, each span
            // formatted and allocated, and kept open as long as its connection's own span.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let matched = req.extensions().get::<axum::extract::MatchedPath>();
                if matched.is_some_and(|p| p.as_str() == WS_ROUTE) {
                    return tracing::Span::none();
                }
                let route = matched
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "(web client or unknown path)".to_owned());
                tracing::info_span!("http", method = %req.method(), route = %route)
            }),
        )
        .with_state(svc)
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError::method_not_allowed()
}
