//! The HTTP app's state: the room and connection contexts, plus what only the HTTP side
//! needs (the admin gate, the base of the links handed out, connection numbering). Cheap to
//! clone. Built once in [`crate::run`]; meeting management, revisions and the demo take it.

use crate::connection::context::ConnContext;
use crate::http::admin::AdminGate;
use crate::room::RoomContext;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Cloned for every request (axum's `State` extractor, the catch-up layer): one reference
/// count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    pub fn new(app: App) -> AppState {
        AppState(Arc::new(app))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

pub struct App {
    /// What rooms reach: store, persister, sandbox, directory, registry, metrics, tracker.
    pub room: RoomContext,
    /// What connections reach (the same room context, settings, open connections, budgets).
    pub conn: ConnContext,
    /// The admin bearer check with its server-wide budget for wrong guesses.
    pub admin_gate: Arc<AdminGate>,
    /// Numbers connections for logs.
    pub next_conn: Arc<AtomicU64>,
    /// Base of the web links handed out (`http://host:port`).
    pub public_url: String,
}
