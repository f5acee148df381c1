//! plenary: a real-time collaboration server for meetings that split into working groups.
//!
//! It hosts one Yjs document per working group and keeps a live plenary summary that merges
//! every group's conclusions. Stock Yjs clients (`y-websocket`) work against it unchanged.
//!
//! # Layout
//! - [`config`]: command line and environment, validated once.
//! - [`http`]: axum router: meetings API, exports, WebSocket upgrade, health, metrics, web client.
//! - [`connection`]: one WebSocket: reader, writer, close codes.
//! - [`room`]: one owner task per document; registry; server-checked awareness.
//! - [`plenary`]: the merge of group conclusions into the plenary document, and exports.
//! - [`store`]: the async `Store` trait, the SQLite implementation, the group-commit persister.
//! - [`sandbox`]: child processes that vet every update (yrs can abort, segfault or hang on
//!   crafted input) before a room applies it; `plenary doctor`.
//! - [`auth`]: roles, capabilities, token hashing (pure decisions).
//! - [`directory`], [`meetings`]: meetings in memory, their creation, token rotation.
//! - [`limits`]: budgets per token (connections, messages, reply bytes) and per connection.
//! - [`demo`]: the Skopje demo meeting.
//! - [`metrics`]: Prometheus metrics.

pub mod auth;
pub mod config;
pub mod connection;
pub mod demo;
pub mod directory;
pub mod export;
pub mod http;
pub mod limits;
pub mod meetings;
pub mod metrics;
pub mod minutes;
pub mod plenary;
pub mod revisions;
pub mod room;
pub mod sandbox;
pub mod services;
pub mod store;

use crate::auth::{generate_token, TokenHash};
use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::room::{RoomCmd, Rooms};
use crate::services::Services;
use crate::store::persister::Persister;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use anyhow::Context;
use plenary_protocol::Limits;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for rooms and sockets before giving up on them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

async fn admin_token(config: &Config, store: &dyn Store) -> anyhow::Result<TokenHash> {
    if let Some(t) = &config.admin_token {
        if t.len() < 16 {
            tracing::warn!(
                "the admin token is shorter than 16 characters: anyone who guesses it can create meetings"
            );
        }
        let h = TokenHash::of(t);
        store.set_admin_token_hash(&h).await?;
        return Ok(h);
    }
    if let Some(h) = store.admin_token_hash().await? {
        return Ok(h);
    }
    let token = generate_token();
    let path = config.data_dir.join("admin-token");
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    let h = TokenHash::of(&token);
    store.set_admin_token_hash(&h).await?;
    println!(
        "generated admin token (shown once; also kept in {}): {token}",
        path.display()
    );
    Ok(h)
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}

/// Runs the server on `listener` until `shutdown` resolves, then flushes and closes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let addr = listener.local_addr()?;
    // On PostgreSQL, nodes starting together take turns until each has seeded (admin token,
    // demo meeting): the first seeds, the others find it done.
    let mut startup_lock = None;
    let store: Arc<dyn Store> = if store::postgres::is_postgres_url(&config.store) {
        // The admin token and demo links are still written to the data dir.
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        startup_lock = Some(
            store::postgres::StartupLock::acquire(&config.store)
                .await
                .map_err(anyhow::Error::msg)
                .context("connecting to PostgreSQL (--store)")?,
        );
        Arc::new(
            store::postgres::PostgresStore::open(&config.store)
                .await
                .context("opening the PostgreSQL store (--store)")?,
        )
    } else {
        Arc::new(
            SqliteStore::open_async(&config.data_dir, config.durability)
                .await
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
        )
    };
    let admin = admin_token(&config, store.as_ref()).await?;
    let directory = Arc::new(Directory::load(store.as_ref()).await?);
    let metrics = Arc::new(Metrics::new());
    let (persister, writer) = Persister::start(store.clone(), metrics.clone());
    let sandbox_program = match &config.sandbox_program {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating this executable for the sandbox")?,
    };
    let sandbox = sandbox::Sandbox::start(
        sandbox::SandboxSettings {
            program: sandbox_program,
            workers: config.sandbox_workers,
            deadline: config.sandbox_deadline(),
            test_crash: config.sandbox_test_crash,
        },
        metrics.clone(),
    );
    let svc = Services {
        store,
        persister,
        sandbox,
        test_corrupt_snapshots: config.test_corrupt_snapshots,
        directory,
        rooms: Arc::new(Rooms::default()),
        metrics,
        tracker: TaskTracker::new(),
        stopping: CancellationToken::new(),
        connections: Default::default(),
        token_limits: Arc::new(limits::TokenLimits::new(&config)),
        next_conn: Default::default(),
        admin_gate: Arc::new(http::admin::AdminGate::new(admin, config.admin_failures_per_sec)),
        admin,
        limits: Limits {
            max_message_bytes: config.max_message_bytes,
            // plenary's documents have no sub-documents, and yrs leaks every one it integrates
            update: plenary_protocol::validate::UpdateLimits {
                allow_subdocs: false,
                ..Default::default()
            },
            ..Limits::default()
        },
        room_idle: config.room_idle(),
        compact_after: config.compact_after.max(1),
        merge_delay: Duration::from_millis(10),
        outbound_queue: config.outbound_queue,
        outbound_queue_bytes: config.outbound_queue_bytes,
        max_messages_per_sec: config.max_messages_per_sec,
        max_connections: config.max_connections,
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    };
    if svc.public_url.contains("://0.0.0.0") || svc.public_url.contains("://[::]") {
        tracing::warn!(
            public_url = %svc.public_url,
            "links name the wildcard address, which no phone can open: add --public-url http://LAN-IP:PORT \
             (LAN-IP: this computer's address on the venue network)"
        );
    }
    if meetings::is_loopback_url(&svc.public_url) {
        tracing::warn!(
            public_url = %svc.public_url,
            "links name a loopback address: phones and other computers cannot open them. \
             To serve the venue's network, start with --addr 0.0.0.0:8080 --public-url http://LAN-IP:8080 \
             (LAN-IP: this computer's address on that network)"
        );
    }
    if !config.no_demo && svc.directory.is_empty() {
        let created = demo::seed(&svc).await.context("seeding the demo meeting")?;
        let mut out = format!("demo meeting {} ({}):\n", created.id, created.title);
        out.push_str(&format!("  moderator console: {}\n", created.links.moderator));
        out.push_str(&format!("  projector:         {}\n", created.links.projector));
        out.push_str(&format!("  participants:      {}\n", created.links.participant));
        for (g, link) in &created.links.rapporteurs {
            out.push_str(&format!("  rapporteur {g}: {link}\n"));
        }
        let path = config.data_dir.join("demo-links.txt");
        write_private(&path, &out)?;
        print!("{out}");
        println!("  (kept in {})", path.display());
    } else if !config.no_demo {
        let path = config.data_dir.join("demo-links.txt");
        if path.exists() {
            println!("demo meeting links: see {}", path.display());
        }
    }

    drop(startup_lock);
    revisions::spawn(&svc, Duration::from_secs(config.revision_interval_secs));
    let app = http::router(svc.clone());
    let stop_accepting = CancellationToken::new();
    let http_limits = http::serve::HttpLimits {
        max_pending: config.max_pending_connections,
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
        idle: Duration::from_secs(config.http_idle_secs),
    };
    let server = tokio::spawn(http::serve::serve(
        listener,
        app,
        http_limits,
        stop_accepting.clone(),
    ));
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, "listening");

    shutdown.await;
    tracing::info!("shutting down: flushing rooms");
    svc.stopping.cancel();
    stop_accepting.cancel();
    let flush = async {
        // Groups first, so their last conclusions reach the plenary before it stops; rooms
        // loaded meanwhile (a group feeding an unloaded plenary) are picked up by the next pass.
        loop {
            let mut handles = svc.rooms.handles();
            if handles.is_empty() {
                break;
            }
            handles.sort_by_key(|(path, _)| path.is_plenary());
            for (path, handle) in handles {
                let (done, rx) = tokio::sync::oneshot::channel();
                if handle.tx.send(RoomCmd::Shutdown { done }).await.is_ok() {
                    let _ = rx.await;
                }
                svc.rooms.forget(&path, handle.instance);
                tracing::debug!(room = %path, "room flushed");
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_DEADLINE, flush).await.is_err() {
        tracing::warn!("some rooms did not flush before the deadline");
    }
    // Rooms closed their members with 1001; anything left (still joining, or a room that
    // missed the deadline) is closed here.
    for entry in svc.connections.iter() {
        entry.value().kick.kick(room::outbox::close_code::GOING_AWAY);
    }
    svc.tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, svc.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close before the deadline");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    drop(svc);
    // The group-commit task exits once every persister handle is gone and its queue is written.
    if tokio::time::timeout(SHUTDOWN_DEADLINE, writer).await.is_err() {
        tracing::warn!("the store writer did not finish before the deadline");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (each connection is one descriptor; the
/// usual soft limit of 1,024 would stop accepting long before `--max-connections`). Returns
/// the limit in force afterwards.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
    }
    Ok(rlimit::Resource::NOFILE.get()?.0)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
