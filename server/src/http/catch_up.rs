//! Requests that name a meeting (`/api/meetings/{m}…`, `/ws/{m}/{g}`) this node does not know
//! yet, on a store that other nodes share: the meeting (or group) is read from the store once
//! before the handler answers, so that one created on another node a moment ago is found
//! (`cluster::directory_sync::catch_up`). Everything else passes untouched.

use crate::app::AppState;
use crate::cluster::directory_sync;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use plenary_protocol::{GroupId, MeetingId};

pub async fn layer(State(svc): State<AppState>, req: Request, next: Next) -> Response {
    if svc.room.cluster.shared_store {
        if let Some((m, g)) = named(req.uri().path()) {
            directory_sync::catch_up(&svc, &m, g.as_ref()).await;
        }
    }
    next.run(req).await
}

/// The meeting, and the group if any, that a path names.
pub fn named(path: &str) -> Option<(MeetingId, Option<GroupId>)> {
    let mut parts = path.trim_start_matches('/').split('/');
    let (m, g) = match (parts.next(), parts.next()) {
        (Some("ws"), Some(m)) => (m, parts.next()),
        (Some("api"), Some("meetings")) => {
            let m = parts.next()?;
            match parts.next() {
                Some("groups") => (m, parts.next()),
                _ => (m, None),
            }
        }
        _ => return None,
    };
    let m = MeetingId::parse(m).ok()?;
    // `plenary` (no group) and ids that cannot exist name no group
    Some((m, g.and_then(|g| GroupId::parse(g).ok())))
}

#[cfg(test)]
mod tests {
    use super::named;

    fn n(p: &str) -> Option<(String, Option<String>)> {
        named(p).map(|(m, g)| (m.to_string(), g.map(|g| g.to_string())))
    }

    #[test]
    fn paths_name_their_meeting_and_group() {
        let some = |m: &str, g: Option<&str>| Some((m.to_owned(), g.map(str::to_owned)));
        assert_eq!(n("/ws/m1/g1"), some("m1", Some("g1")));
        assert_eq!(n("/ws/m1/plenary"), some("m1", None));
        assert_eq!(n("/api/meetings/m1"), some("m1", None));
        assert_eq!(n("/api/meetings/m1/summary.json"), some("m1", None));
        assert_eq!(n("/api/meetings/m1/groups/g2/close"), some("m1", Some("g2")));
        assert_eq!(n("/api/meetings/m1/groups"), some("m1", None));
        assert_eq!(n("/api/meetings"), None);
        assert_eq!(n("/api/server"), None);
        assert_eq!(n("/healthz"), None);
        assert_eq!(n("/ws/BAD ID/g1"), None);
        assert_eq!(n("/m/m1/console"), None);
    }
}
