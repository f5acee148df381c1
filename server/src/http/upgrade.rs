//! The WebSocket handshake (RFC 6455 §4.2), done here rather than by axum's `WebSocketUpgrade`
//! so that the connection gets the TCP socket itself: the room writes frames into it directly
//! (see `connection::socket`). The checks and their messages are axum's.

use super::serve::{HoldUpgrade, Tracked};
use crate::connection::socket::Upgraded;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// A request that asks to become a WebSocket.
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    /// Set when the request came through `serve` (not in every test harness).
    hold: Option<HoldUpgrade>,
}

/// Why a request cannot become a WebSocket.
#[derive(Debug)]
pub struct NotWebSocket(pub &'static str);

impl axum::response::IntoResponse for NotWebSocket {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

/// Whether a header's comma-separated tokens include `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: axum::http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// The checks of the handshake, on the request's method and headers. Pure.
pub fn check(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, NotWebSocket> {
    if method != Method::GET {
        return Err(NotWebSocket("Request method must be `GET`"));
    }
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err(NotWebSocket("Connection header did not include 'upgrade'"));
    }
    if !has_token(headers, UPGRADE, "websocket") {
        return Err(NotWebSocket("`Upgrade` header did not include 'websocket'"));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(NotWebSocket(
            "`Sec-WebSocket-Version` header did not include '13'",
        ));
    }
    headers
        .get(SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(NotWebSocket("`Sec-WebSocket-Key` header missing"))
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = NotWebSocket;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let key = check(&parts.method, &parts.headers)?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or(NotWebSocket(
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        ))?;
        let hold = parts.extensions.get::<HoldUpgrade>().cloned();
        Ok(WsUpgrade {
            key,
            on_upgrade,
            hold,
        })
    }
}

impl WsUpgrade {
    /// The 101 answer, and the socket once HTTP has answered: the TCP stream, the bytes the
    /// HTTP layer read past the request, and the answer itself, not yet sent (the connection
    /// sends it with its first frames).
    pub fn accept(self) -> (Response, impl std::future::Future<Output = Option<Upgraded>>) {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, accept)
            .body(axum::body::Body::empty())
            .expect("a valid response");
        if let Some(hold) = &self.hold {
            hold.hold();
        }
        let on_upgrade = self.on_upgrade;
        let socket = async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return None;
                }
            };
            match upgraded.downcast::<TokioIo<Tracked>>() {
                Ok(parts) => {
                    // Copied (or dropped): an empty slice would still hold HTTP's whole read
                    // buffer for the life of the connection.
                    let prefix = match parts.read_buf.is_empty() {
                        true => Bytes::new(),
                        false => Bytes::copy_from_slice(&parts.read_buf),
                    };
                    let (tcp, unsent) = parts.io.into_inner().into_tcp();
                    Some(Upgraded {
                        tcp,
                        prefix,
                        unsent: Bytes::from(unsent),
                    })
                }
                Err(_) => {
                    tracing::error!("upgraded connection is not this server's TCP stream");
                    None
                }
            }
        };
        (response, socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const GOOD: &[(&str, &str)] = &[
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_stock_handshake_passes_and_each_missing_part_is_named() {
        assert_eq!(
            check(&Method::GET, &headers(GOOD)).unwrap(),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert!(check(&Method::POST, &headers(GOOD))
            .unwrap_err()
            .0
            .contains("GET"));
        for (i, what) in ["Connection", "Upgrade", "Version", "Key"].iter().enumerate() {
            let without: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let err = check(&Method::GET, &headers(&without)).unwrap_err();
            assert!(err.0.contains(what), "{what}: {}", err.0);
        }
        let wrong_version = [GOOD[0], GOOD[1], ("sec-websocket-version", "8"), GOOD[3]];
        assert!(check(&Method::GET, &headers(&wrong_version)).is_err());
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        // RFC 6455 §1.3
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
