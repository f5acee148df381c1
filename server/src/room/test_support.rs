//! What the room's tests share (tests only).

use super::{ConnId, Member, RoomCmd, RoomHandle};
use tokio::sync::oneshot;

/// Joins `member` to `handle`'s room as `conn` and waits until the room has taken it in (its
/// greeting is then in the member's outbox).
pub async fn join_member(handle: &RoomHandle, conn: ConnId, member: Member) {
    let (joined, ok) = oneshot::channel();
    handle
        .tx
        .send(RoomCmd::Join { conn, member, joined })
        .await
        .expect("the room is running");
    ok.await.expect("joined");
}
