//! Command line and environment configuration, parsed and validated once at start-up.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "plenary",
    version,
    args_conflicts_with_subcommands = true,
    about = "Real-time collaboration server for meetings that split into working groups"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for `serve` (also accepted without a sub-command).
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve meetings over HTTP and WebSocket (the default).
    Serve(Config),
    /// Write a meeting's summary (JSON, Markdown, HTML, DOCX, PDF) from a data dir, without a
    /// running server.
    Export(ExportArgs),
    /// List the documents that do not load; with `--repair`, rebuild each from the longest
    /// prefix of its log that loads.
    Doctor(DoctorArgs),
    /// The apply sandbox's child process (started by the server; not for people).
    #[command(hide = true)]
    SandboxWorker,
    /// Copy the store of a data dir into one SQLite file (online backup: a server may be running).
    Backup(BackupArgs),
    /// Copy the embedded store of a data dir into an empty PostgreSQL database.
    Migrate(MigrateArgs),
}

/// Lives with the store; named here because `--durability` takes it.
pub use crate::store::Durability;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PLENARY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "PLENARY_DATA_DIR", default_value = "./plenary-data")]
    pub data_dir: PathBuf,
    /// Where meetings and documents live: `sqlite` (the embedded store in `--data-dir`) or a
    /// PostgreSQL URL (`postgres://USER@HOST:PORT/DB`): every node given the same URL serves
    /// the same meetings.
    #[arg(long, env = "PLENARY_STORE", default_value = "sqlite", hide_env_values = true)]
    pub store: String,
    /// Admin token for creating meetings; generated on first start when absent.
    #[arg(long, env = "PLENARY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Do not seed an empty store with the demo meeting.
    #[arg(long, env = "PLENARY_NO_DEMO")]
    pub no_demo: bool,
    /// Base URL used in links (default: http://ADDR as bound).
    #[arg(long, env = "PLENARY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest WebSocket message accepted; larger ones close the connection with 1009.
    #[arg(long, env = "PLENARY_MAX_MESSAGE_BYTES", default_value_t = 1_048_576)]
    pub max_message_bytes: usize,
    /// Messages queued for one connection before it is closed as too slow (1013).
    #[arg(long, env = "PLENARY_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Seconds a room stays loaded without connections.
    #[arg(long, env = "PLENARY_ROOM_IDLE_SECS", default_value_t = 30)]
    pub room_idle_secs: u64,
    /// Updates in a document's log before it is compacted into one snapshot.
    #[arg(long, env = "PLENARY_COMPACT_AFTER", default_value_t = 500)]
    pub compact_after: u64,
    /// `process` (default) survives a killed process; `power` also survives a power cut;
    /// `replicated` (PostgreSQL only) also survives the loss of the database's machine: the
    /// server refuses to start unless PostgreSQL has a synchronous standby.
    #[arg(long, env = "PLENARY_DURABILITY", value_enum, default_value_t = Durability::Process)]
    pub durability: Durability,
    /// Messages per second one connection may send (sustained; a message counts one more per
    /// 16 KiB); bursts of 10x are allowed. Faster senders are slowed down, never disconnected.
    #[arg(long, env = "PLENARY_MAX_MESSAGES_PER_SEC", default_value_t = 200)]
    pub max_messages_per_sec: u32,
    /// Most simultaneous WebSocket connections; further upgrades get 503.
    #[arg(long, env = "PLENARY_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,
    /// TCP connections that have not upgraded to a WebSocket (reading a request, answering one,
    /// or idle between requests); beyond it new connections wait in the accept queue, up to 1 s
    /// from when the cap was reached, then are closed at once.
    #[arg(long, env = "PLENARY_MAX_PENDING_CONNECTIONS", default_value_t = 1024)]
    pub max_pending_connections: usize,
    /// Seconds a client has to send a whole request head (line and headers); a keep-alive
    /// connection waiting for its next request is closed after it too.
    #[arg(long, env = "PLENARY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds an HTTP connection (not yet upgraded) may stay silent, in both directions, with no
    /// request in progress, before it is closed.
    #[arg(long, env = "PLENARY_HTTP_IDLE_SECS", default_value_t = 5)]
    pub http_idle_secs: u64,
    /// Failed admin-token attempts accepted per second, server-wide (bursts of twice that);
    /// beyond it every admin request gets 429 until the budget refills.
    #[arg(long, env = "PLENARY_ADMIN_FAILURES_PER_SEC", default_value_t = 10)]
    pub admin_failures_per_sec: u32,
    /// Bytes queued for one connection before it is closed as too slow (1013); one frame is
    /// always admitted into an empty queue.
    #[arg(long, env = "PLENARY_OUTBOUND_QUEUE_BYTES", default_value_t = 16 << 20)]
    pub outbound_queue_bytes: usize,
    /// Bytes per second of sync-step-2 and awareness replies one connection may cause (asking
    /// with sync step 1 or query-awareness); past it its reads are paused, never cut.
    #[arg(long, env = "PLENARY_REPLY_BYTES_PER_SEC", default_value_t = 4 << 20)]
    pub reply_bytes_per_sec: u32,
    /// Bytes per second of replies that had to be encoded (not served from a cache) that all
    /// connections of one token may cause together; past it they are paused.
    #[arg(long, env = "PLENARY_TOKEN_REPLY_BYTES_PER_SEC", default_value_t = 32 << 20)]
    pub token_reply_bytes_per_sec: u32,
    /// Simultaneous connections of one participant token (a venue shares it); 429 past it.
    #[arg(long, env = "PLENARY_PARTICIPANT_TOKEN_CONNECTIONS", default_value_t = 20_000)]
    pub participant_token_connections: usize,
    /// Simultaneous connections of one moderator token; 429 past it.
    #[arg(long, env = "PLENARY_MODERATOR_TOKEN_CONNECTIONS", default_value_t = 64)]
    pub moderator_token_connections: usize,
    /// Simultaneous connections of one rapporteur token; 429 past it.
    #[arg(long, env = "PLENARY_RAPPORTEUR_TOKEN_CONNECTIONS", default_value_t = 64)]
    pub rapporteur_token_connections: usize,
    /// Messages per second all connections of one participant token may send together
    /// (bursts of one second); faster senders are slowed, never disconnected.
    #[arg(
        long,
        env = "PLENARY_PARTICIPANT_TOKEN_MESSAGES_PER_SEC",
        default_value_t = 20_000
    )]
    pub participant_token_messages_per_sec: u32,
    /// Messages per second all connections of one moderator token may send together.
    #[arg(
        long,
        env = "PLENARY_MODERATOR_TOKEN_MESSAGES_PER_SEC",
        default_value_t = 2_000
    )]
    pub moderator_token_messages_per_sec: u32,
    /// Messages per second all connections of one rapporteur token may send together.
    #[arg(
        long,
        env = "PLENARY_RAPPORTEUR_TOKEN_MESSAGES_PER_SEC",
        default_value_t = 2_000
    )]
    pub rapporteur_token_messages_per_sec: u32,
    /// Child processes that vet updates before any room applies them (docs are sharded by key).
    #[arg(long, env = "PLENARY_SANDBOX_WORKERS", default_value_t = 2)]
    pub sandbox_workers: usize,
    /// Milliseconds a sandbox child may take on one request before it is killed and restarted.
    #[arg(long, env = "PLENARY_SANDBOX_DEADLINE_MS", default_value_t = 2000)]
    pub sandbox_deadline_ms: u64,
    /// The binary run as `plenary sandbox-worker` (default: this executable).
    #[arg(long, env = "PLENARY_SANDBOX_PROGRAM", hide = true)]
    pub sandbox_program: Option<PathBuf>,
    /// Tests only: sandbox children abort, segfault or hang on updates carrying a marker.
    #[arg(long, env = "PLENARY_SANDBOX_TEST_CRASH", hide = true)]
    pub sandbox_test_crash: bool,
    /// Tests only: compaction snapshots are truncated, so that their check must refuse them.
    #[arg(long, env = "PLENARY_TEST_CORRUPT_SNAPSHOTS", hide = true)]
    pub test_corrupt_snapshots: bool,
    /// Seconds between revision snapshots of each group document (taken only when it changed;
    /// one is also taken when a group is closed). 0 turns the periodic snapshots off.
    #[arg(long, env = "PLENARY_REVISION_INTERVAL_SECS", default_value_t = 300)]
    pub revision_interval_secs: u64,
    /// How often a connection pings its client, and how long a client may stay silent (no
    /// message, no pong) before it is closed with 1001. Not on the command line: tests shorten
    /// it.
    #[arg(skip = Keepalive::default())]
    pub keepalive: Keepalive,
}

/// A connection's pings: one every `ping_every`; a client silent for `idle_timeout` is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub ping_every: Duration,
    pub idle_timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            ping_every: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

impl Config {
    pub fn room_idle(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }

    /// Rejects settings that cannot work, with a sentence for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes < 1024 {
            return Err("--max-message-bytes must be at least 1024".into());
        }
        if self.outbound_queue < 8 {
            return Err("--outbound-queue must be at least 8".into());
        }
        if self.max_messages_per_sec == 0 {
            return Err("--max-messages-per-sec must be positive".into());
        }
        if self.max_pending_connections == 0 {
            return Err("--max-pending-connections must be positive".into());
        }
        if self.header_read_timeout_secs == 0 || self.http_idle_secs == 0 {
            return Err("--header-read-timeout-secs and --http-idle-secs must be positive".into());
        }
        if self.admin_failures_per_sec == 0 {
            return Err("--admin-failures-per-sec must be positive".into());
        }
        if self.outbound_queue_bytes < 64 * 1024 {
            return Err("--outbound-queue-bytes must be at least 65536".into());
        }
        if self.reply_bytes_per_sec < 64 * 1024 || self.token_reply_bytes_per_sec < 64 * 1024 {
            return Err(
                "--reply-bytes-per-sec and --token-reply-bytes-per-sec must be at least 65536".into(),
            );
        }
        if [
            self.participant_token_connections,
            self.moderator_token_connections,
            self.rapporteur_token_connections,
        ]
        .contains(&0)
        {
            return Err("the --*-token-connections budgets must be positive".into());
        }
        if [
            self.participant_token_messages_per_sec,
            self.moderator_token_messages_per_sec,
            self.rapporteur_token_messages_per_sec,
        ]
        .contains(&0)
        {
            return Err("the --*-token-messages-per-sec budgets must be positive".into());
        }
        if self.sandbox_workers == 0 || self.sandbox_workers > 64 {
            return Err("--sandbox-workers must be between 1 and 64".into());
        }
        if self.sandbox_deadline_ms < 10 {
            return Err("--sandbox-deadline-ms must be at least 10".into());
        }
        if self.store != "sqlite" && !crate::store::postgres::is_postgres_url(&self.store) {
            return Err("--store must be `sqlite` or a PostgreSQL URL (postgres://USER@HOST:PORT/DB)".into());
        }
        if self.durability == Durability::Replicated && self.store == "sqlite" {
            return Err(
                "--durability replicated needs a PostgreSQL store with a synchronous standby \
                 (--store postgres://…): the embedded store has no replica"
                    .into(),
            );
        }
        if self.admin_token.as_deref().is_some_and(str::is_empty) {
            return Err("--admin-token must not be empty".into());
        }
        Ok(())
    }

    /// A configuration for tests: port 0, the given data dir, no demo.
    pub fn for_tests(data_dir: PathBuf, admin_token: &str) -> Self {
        Config {
            addr: ([127, 0, 0, 1], 0).into(),
            data_dir,
            store: "sqlite".into(),
            admin_token: Some(admin_token.to_owned()),
            no_demo: true,
            public_url: None,
            max_message_bytes: 1_048_576,
            outbound_queue: 1024,
            room_idle_secs: 30,
            compact_after: 500,
            durability: Durability::Process,
            max_messages_per_sec: 200,
            max_connections: 50_000,
            max_pending_connections: 1024,
            header_read_timeout_secs: 10,
            http_idle_secs: 5,
            admin_failures_per_sec: 10,
            outbound_queue_bytes: 16 << 20,
            reply_bytes_per_sec: 4 << 20,
            token_reply_bytes_per_sec: 32 << 20,
            participant_token_connections: 20_000,
            moderator_token_connections: 64,
            rapporteur_token_connections: 64,
            participant_token_messages_per_sec: 20_000,
            moderator_token_messages_per_sec: 2_000,
            rapporteur_token_messages_per_sec: 2_000,
            sandbox_workers: 2,
            sandbox_deadline_ms: 2000,
            sandbox_program: None,
            sandbox_test_crash: false,
            test_corrupt_snapshots: false,
            revision_interval_secs: 300,
            keepalive: Keepalive::default(),
        }
    }

    pub fn sandbox_deadline(&self) -> Duration {
        Duration::from_millis(self.sandbox_deadline_ms)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "PLENARY_DATA_DIR", default_value = "./plenary-data")]
    pub data_dir: PathBuf,
    /// Meeting id.
    #[arg(long)]
    pub meeting: String,
    /// Folder to write summary.json, summary.md, summary.html, summary.docx and summary.pdf into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Export an adopted version instead of the live summary.
    #[arg(long)]
    pub version: Option<String>,
    /// Add the groups' notes as an annex to summary.docx and summary.pdf.
    #[arg(long)]
    pub notes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "PLENARY_DATA_DIR", default_value = "./plenary-data")]
    pub data_dir: PathBuf,
    /// The backup file to write (replaced if it exists); it is a complete plenary.db.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "PLENARY_DATA_DIR", default_value = "./plenary-data")]
    pub data_dir: PathBuf,
    /// Check only this document (`meeting/group` or `meeting/plenary`).
    #[arg(long)]
    pub doc: Option<String>,
    /// Rebuild each document that does not load from the longest prefix of its log that does.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Folder of the embedded SQLite store to copy (stop its server first).
    #[arg(long)]
    pub from_data_dir: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://USER@HOST:PORT/DB`); it must hold no
    /// meeting or document yet.
    #[arg(long)]
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_durability_is_refused_with_the_embedded_store() {
        let mut c = Config::for_tests(PathBuf::from("/nonexistent"), "admin-token-for-tests");
        assert!(c.validate().is_ok());
        c.durability = Durability::Replicated;
        let e = c.validate().expect_err("no replica");
        assert!(e.contains("--durability replicated"), "{e}");
        c.store = "postgres://u@127.0.0.1:1/db".into();
        assert!(c.validate().is_ok(), "checked against the server at start");
    }
}
