//! Command line and environment configuration, parsed and validated once at start-up.

use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// Write a meeting's summary (JSON, Markdown, HTML) from a data dir, without a running server.
    Export(ExportArgs),
}

/// How hard SQLite works to keep a commit: see the README's durability section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: a killed process loses nothing committed; a power cut may lose
    /// the last transactions.
    Process,
    /// WAL + synchronous=FULL: every commit is fsynced before it is acknowledged or relayed.
    Power,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "PLENARY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder of the embedded SQLite store.
    #[arg(long, env = "PLENARY_DATA_DIR", default_value = "./plenary-data")]
    pub data_dir: PathBuf,
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
    /// `process` (default) survives a killed process; `power` also survives a power cut.
    #[arg(long, env = "PLENARY_DURABILITY", value_enum, default_value_t = Durability::Process)]
    pub durability: Durability,
    /// Messages per second one connection may send (sustained; a message counts one more per
    /// 16 KiB); bursts of 10x are allowed. Faster senders are slowed down, never disconnected.
    /// Faster senders are slowed down, never disconnected.
    #[arg(long, env = "PLENARY_MAX_MESSAGES_PER_SEC", default_value_t = 200)]
    pub max_messages_per_sec: u32,
    /// Most simultaneous WebSocket connections; further upgrades get 503.
    #[arg(long, env = "PLENARY_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,
    /// Seconds between revision snapshots of each group document (taken only when it changed;
    /// one is also taken when a group is closed). 0 turns the periodic snapshots off.
    #[arg(long, env = "PLENARY_REVISION_INTERVAL_SECS", default_value_t = 300)]
    pub revision_interval_secs: u64,
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
            revision_interval_secs: 300,
        }
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
    /// Folder to write summary.json, summary.md and summary.html into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Export an adopted version instead of the live summary.
    #[arg(long)]
    pub version: Option<String>,
}
