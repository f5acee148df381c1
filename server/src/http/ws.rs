//! `GET /ws/{m}/{g}?token=T[&ack=1]`: capability and connection budgets checked before the
//! upgrade (503 when the server is full, 429 when the token has all the connections its role
//! may hold).

use super::error::ApiError;
use crate::app::AppState;
use crate::auth::{authorize_room_hashed, AuthError, MeetingDirectory};
use crate::connection::{self, ConnectionParams};
use crate::room::ConnId;
use axum::extract::rejection::QueryRejection;
use super::upgrade::{NotWebSocket, WsUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plenary_protocol::RoomPath;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use tracing::Instrument;

#[derive(Deserialize, Default)]
pub struct WsQuery {
    token: Option<String>,
    ack: Option<String>,
}

pub async fn upgrade(
    State(svc): State<AppState>,
    Path((m, g)): Path<(String, String)>,
    query: Result<Query<WsQuery>, QueryRejection>,
    ws: Result<WsUpgrade, NotWebSocket>,
) -> Response {
    // A query string that does not parse (a repeated `token`, bad escapes) carries no token.
    let q = query.map(|Query(q)| q).unwrap_or_default();
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
        Err(e) => {
            return refuse(ApiError::new(
                StatusCode::BAD_REQUEST,
                "not_websocket",
                e.0,
            ))
        }
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
    tokio::spawn(tracker.track_future(
        async move {
            if let Some(upgraded) = socket.await {
                connection::serve(upgraded, conn_ctx, params).await;
            }
        }
        .instrument(span),
    ));
    response
}
