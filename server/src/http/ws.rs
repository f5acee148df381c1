//! `GET /ws/{m}/{g}?token=T[&ack=1]`: capability and connection budgets checked before the
//! upgrade (503 when the server is full, 429 when the token has all the connections its role
//! may hold).

use super::error::ApiError;
use super::upgrade::{NotWebSocket, WsUpgrade};
use crate::app::AppState;
use crate::auth::{authorize_room_hashed, AuthError, MeetingDirectory};
use crate::connection::{self, ConnectionParams};
use crate::room::ConnId;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use plenary_protocol::RoomPath;
use std::sync::atomic::Ordering;
use tracing::Instrument;

/// `?token=T&ack=1`.
#[derive(Default, Debug, PartialEq)]
pub struct WsQuery {
    token: Option<String>,
    ack: Option<String>,
}

impl WsQuery {
    /// Read as axum's `Query` would (form-urlencoded, unknown keys ignored), but without its
    /// generic deserializer, on every upgrade of a storm. A query that names `token` or `ack`
    /// twice does not parse, and a query that does not parse carries no token.
    pub fn parse(raw: Option<&str>) -> WsQuery {
        let mut q = WsQuery::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let slot = match &*k {
                "token" => &mut q.token,
                "ack" => &mut q.ack,
                _ => continue,
            };
            if slot.is_some() {
                return WsQuery::default();
            }
            *slot = Some(v.into_owned());
        }
        q
    }
}

pub async fn upgrade(
    State(svc): State<AppState>,
    Path((m, g)): Path<(String, String)>,
    uri: Uri,
    ws: Result<WsUpgrade, NotWebSocket>,
) -> Response {
    let q = WsQuery::parse(uri.query());
    let refuse = |e: ApiError| {
        svc.room.metrics.upgrades_refused.inc();
        e.into_response()
    };
    // An id that cannot exist is an unknown meeting or group, in the contract's order.
    // (A lookup, not `meeting()`: that clones the whole record, on every upgrade of a storm.)
    let meeting_known = plenary_protocol::MeetingId::parse(&m)
        .map(|id| MeetingDirectory::meeting_exists(svc.room.directory.as_ref(), &id))
        .unwrap_or(false);
    if !meeting_known {
        return refuse(AuthError::UnknownMeeting.into());
    }
    let Ok(room) = RoomPath::from_segments(&m, &g) else {
        return refuse(AuthError::UnknownGroup.into());
    };
    // The token is hashed once, here: its budgets and its revocation are keyed by the hash.
    let (cap, token) = match authorize_room_hashed(svc.room.directory.as_ref(), &room, q.token.as_deref()) {
        Ok(c) => c,
        Err(e) => return refuse(e.into()),
    };
    if connection::refused_for_private_notes(&svc.room.directory, &room, &cap.role) {
        return refuse(ApiError::new(
            StatusCode::FORBIDDEN,
            "notes_private",
            "the notes of the working groups are private in this meeting; follow the plenary",
        ));
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return refuse(ApiError::new(StatusCode::BAD_REQUEST, "not_websocket", e.0)),
    };
    if svc.room.metrics.connections.get() as usize >= svc.conn.settings.max_connections {
        return refuse(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "the server is full; try again shortly",
        ));
    }
    let Some(slot) = svc.conn.token_limits.open(token, &cap.role) else {
        tracing::info!(
            role = cap.role.name(),
            "token holds all its connections; refusing 429"
        );
        return refuse(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections_for_token",
            "this link has as many open connections as it may hold; close one or try again later",
        ));
    };
    let conn = ConnId(svc.next_conn.fetch_add(1, Ordering::Relaxed) + 1);
    let wants_ack = matches!(q.ack.as_deref(), Some("1") | Some("true"));
    // A debug span: at the default level a connection has none (a span is formatted when it
    // opens and entered and left on every poll of the task, i.e. on every delivery). The few
    // events a connection logs at info or above name their connection and room themselves.
    let span = tracing::debug_span!("conn", meeting = %room.meeting, room = %room, conn = %conn);
    let params = ConnectionParams {
        conn,
        room,
        capability: cap,
        token,
        slot,
        wants_ack,
    };
    let tracker = svc.room.tracker.clone();
    let (response, socket) = ws.accept();
    let conn_ctx = svc.conn.clone();
    tokio::spawn(
        tracker.track_future(
            async move {
                if let Some(upgraded) = socket.await {
                    connection::serve(upgraded, conn_ctx, params).await;
                }
            }
            .instrument(span),
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::WsQuery;

    fn q(token: Option<&str>, ack: Option<&str>) -> WsQuery {
        WsQuery {
            token: token.map(str::to_owned),
            ack: ack.map(str::to_owned),
        }
    }

    #[test]
    fn the_query_reads_as_axum_s_query_did() {
        assert_eq!(WsQuery::parse(None), q(None, None));
        assert_eq!(WsQuery::parse(Some("token=abc&ack=1")), q(Some("abc"), Some("1")));
        assert_eq!(
            WsQuery::parse(Some("x=1&token=a%2Bb+c&y")),
            q(Some("a+b c"), None)
        );
        assert_eq!(WsQuery::parse(Some("token=")), q(Some(""), None));
        // a key given twice: the query does not parse, and carries no token
        assert_eq!(WsQuery::parse(Some("token=a&token=b")), q(None, None));
        assert_eq!(WsQuery::parse(Some("token=a&ack=1&ack=1")), q(None, None));
        // the same answers as serde_urlencoded, which axum's `Query` uses
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Axum {
            token: Option<String>,
            ack: Option<String>,
        }
        for raw in [
            "token=abc&ack=true",
            "token=%E2%9C%93&z=%ZZ",
            "ack&token=t",
            "token=a&token=b",
            "&&token=%20",
        ] {
            let want =
                axum::extract::Query::<Axum>::try_from_uri(&format!("http://h/?{raw}").parse().unwrap())
                    .map(|axum::extract::Query(a)| q(a.token.as_deref(), a.ack.as_deref()))
                    .unwrap_or_default();
            assert_eq!(WsQuery::parse(Some(raw)), want, "{raw}");
        }
    }
}
