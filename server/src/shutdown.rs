//! The server's stop sequence, once the shutdown signal came: stop accepting, flush every room
//! (groups before their plenary, so that the last conclusions reach it), hand the plenary
//! leases back (another node merges at once), close what is left with 1001, wait for
//! connections, then let the store writer finish its queue.

use crate::app::AppState;
use crate::connection::close::close_code;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for rooms and sockets before giving up on them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

/// Runs the stop sequence; `server` is the accept loop, `writer` the store's group-commit task.
pub async fn flush_and_stop(
    svc: AppState,
    stop_accepting: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
) {
    tracing::info!("shutting down: flushing rooms");
    svc.conn.stopping.cancel();
    stop_accepting.cancel();
    // Rooms loaded meanwhile (a group feeding an unloaded plenary) are picked up by the next
    // pass.
    let flush = async { while svc.room.rooms.stop(|_| true).await > 0 {} };
    if tokio::time::timeout(SHUTDOWN_DEADLINE, flush).await.is_err() {
        tracing::warn!("some rooms did not flush before the deadline");
    }
    svc.room.cluster.leases.hand_back().await;
    // Rooms closed their members with 1001; anything left (still joining, or a room that
    // missed the deadline) is closed here.
    for entry in svc.conn.connections.iter() {
        entry.value().kick.kick(close_code::GOING_AWAY);
    }
    let tracker = svc.room.tracker.clone();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close before the deadline");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    drop(svc);
    // The group-commit task exits once every persister handle is gone and its queue is written.
    if tokio::time::timeout(SHUTDOWN_DEADLINE, writer).await.is_err() {
        tracing::warn!("the group-commit task did not finish before the deadline");
    }
    tracing::info!("stopped");
}
