//! Rooms: one Yjs document each, owned by one task (an actor with named parts).
//!
//! - [`command`]: what a room accepts (its commands, a joining connection).
//! - [`context`]: what a room needs from the rest of the server.
//! - [`registry`]: `RoomPath -> RoomHandle`, loads a room on first use, forgets it when it unloads.
//! - [`actor`]: the owner task's loop: it alone touches its `Doc`; it takes batches of commands,
//!   commits them and hands what durable batches released to the members.
//! - [`replication`]: the node's listener for other nodes' commits (a shared store): routes
//!   their rings to the loaded rooms only, checks the heads of loaded documents.
//! - [`replica`]: a room as one replica of its document's log: watermark, rings, log reads.
//! - [`watermark`]: how far a replica has applied the log (pure).
//! - [`members`]: who is connected, their awareness, the fan-out to bounded outboxes (1013).
//! - [`durability`]: batches, sequence numbers, what waits for them (relays, replies, acks,
//!   inspections, the plenary feed).
//! - [`holder`]: on taking a meeting's plenary lease, load its rooms and rebuild its plenary.
//! - [`kind`]: group (closed flag, feeds the plenary) or plenary (merges, guards curation).
//! - [`vetting`]: the document and its use of the apply sandbox (vetted updates, loads,
//!   compaction), and the panic containment that poisons only one room.
//! - [`replies`]: sync step 2 answers and the read-only check, built once per document state.
//! - [`awareness`]: the server-checked awareness table (pure), local and other nodes' entries.
//! - [`nodes`]: what other nodes said about a room: their counts, when last heard (pure).
//! - [`readonly`]: would an update change the document (pure), with its state cached.
//! - [`outbox`]: a connection's bounded outbound queue as the room sees it.
//!
//! Calls go down this list's dependency order only: `actor` uses the parts, the parts never use
//! `actor`, and the registry starts rooms through a launcher ([`new_context`]) instead of
//! naming the actor.

pub mod actor;
pub mod awareness;
pub mod command;
pub mod context;
pub mod durability;
pub mod holder;
pub mod kind;
pub mod members;
pub mod nodes;
pub mod outbox;
pub mod readonly;
pub mod registry;
pub mod replica;
pub mod replication;
pub mod replies;
pub mod vetting;
pub mod watermark;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use command::{ConnId, Member, RoomCmd};
pub use context::{RoomContext, RoomSettings, Shared};
pub use outbox::{Frame, Outbox};
pub use registry::{RoomHandle, Rooms};

use plenary_protocol::RoomPath;
use tokio::sync::mpsc;
use tracing::Instrument;

/// The room context, with a registry whose rooms run [`actor::run`] and load only for
/// meetings and groups the directory holds. `shared` builds the rest around that registry.
pub fn new_context(shared: impl FnOnce(Rooms) -> Shared) -> RoomContext {
    context_with_launcher(shared, |ctx, path, instance, inbox| {
        let span = tracing::info_span!("room", meeting = %path.meeting, room = %path);
        let tracker = ctx.tracker.clone();
        tracker.spawn(actor::run(path, instance, ctx, inbox).instrument(span));
    })
}

/// [`new_context`] with another way to start a room (tests stand in for some rooms).
pub(crate) fn context_with_launcher(
    shared: impl FnOnce(Rooms) -> Shared,
    launch: impl Fn(RoomContext, RoomPath, u64, mpsc::Receiver<RoomCmd>) + Send + Sync + 'static,
) -> RoomContext {
    RoomContext::new_cyclic(|weak| {
        let admit_ctx = weak.clone();
        let launch = Box::new(move |path: RoomPath, instance, inbox| {
            if let Some(ctx) = weak.upgrade() {
                launch(ctx, path, instance, inbox);
            }
        });
        let admit = Box::new(move |path: &RoomPath| {
            admit_ctx.upgrade().is_some_and(|ctx| match path.group_id() {
                Some(g) => ctx.directory.group_exists_in(&path.meeting, g),
                None => ctx.directory.meeting(&path.meeting).is_some(),
            })
        });
        shared(Rooms::new(launch, admit))
    })
}
