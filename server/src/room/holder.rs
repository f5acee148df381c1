//! What this node does on taking a meeting's plenary lease (`cluster::leases`): it loads every
//! group room of the meeting, which stays loaded while the lease is held (the actor's idle
//! check asks `Leases::pins`), so that the other nodes' group edits reach this node's plenary
//! feed; and it tells the plenary room (loading it) to catch up with the store and rebuild
//! from every group's durable conclusions.

use super::command::RoomCmd;
use super::context::{RoomContext, WeakContext};
use plenary_protocol::{MeetingId, RoomPath};

/// The callback for `cluster::leases::spawn` (a weak handle: the lease task does not keep the
/// rooms' shared handles, nor so the store writer, alive).
pub fn on_gained(ctx: &RoomContext) -> impl Fn(Vec<String>) + Send + Sync + 'static {
    let weak: WeakContext = ctx.downgrade();
    move |meetings| {
        let Some(ctx) = weak.upgrade() else { return };
        for m in meetings {
            let Ok(id) = MeetingId::parse(&m) else { continue };
            let Some(record) = ctx.directory.meeting(&id) else {
                continue;
            };
            for g in &record.groups {
                ctx.rooms.get_or_load(&RoomPath::group(id.clone(), g.id.clone()));
            }
            let ctx = ctx.clone();
            tokio::spawn(async move {
                ctx.rooms.send(&RoomPath::plenary(id), RoomCmd::LeaseGained).await;
            });
        }
    }
}
