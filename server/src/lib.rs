//! plenary: a real-time collaboration server for meetings that split into working groups.
//!
//! It hosts one Yjs document per working group and keeps a live plenary summary that merges
//! every group's conclusions. Stock Yjs clients (`y-websocket`) work against it unchanged.
//!
//! # Layout (one sentence per module; README "Architecture" draws the two flows end to end)
//! - [`app`]: the HTTP app's state: room and connection contexts, admin gate, public URL.
//! - [`auth`]: roles, capabilities, token hashing and the refusal order (pure decisions).
//! - [`config`]: command line and environment, validated once.
//! - [`connection`]: one WebSocket, one task: reads, drains the batched frames the socket did not take, pings; close codes and `Kick`.
//! - [`demo`]: the Skopje demo meeting.
//! - [`directory`]: meetings and tokens in memory, as the store holds them.
//! - [`export`]: `plenary export` and `plenary backup`, offline.
//! - [`http`]: the axum router: meetings API, exports, WebSocket upgrade, health, metrics, web client.
//! - [`limits`]: budgets per token (connections, messages, reply bytes) and per connection.
//! - [`meetings`]: creating meetings, closing groups, rotating tokens, renaming, deleting.
//! - [`metrics`]: Prometheus metrics.
//! - [`minutes`]: the curated summary as DOCX and PDF.
//! - [`plenary`]: the merge of group conclusions into the plenary document, and the summary.
//! - [`revisions`]: revisions of group documents (periodic, and when a group is closed).
//! - [`room`]: one actor per document (loop, members, durability pipeline, kind, vetting) and
//!   the registry that loads and forgets them.
//! - [`sandbox`]: child processes that vet every update (yrs can abort, segfault or hang on
//!   crafted input) before a room applies it; `plenary doctor`.
//! - [`shutdown`]: the stop sequence (flush rooms, close sockets, stop the store writer).
//! - [`store`]: the async `Store` trait, the SQLite and in-memory stores, the group-commit
//!   persister, `Durability`.

pub mod app;
pub mod auth;
pub mod cluster;
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
pub mod shutdown;
pub mod store;
pub mod wire;

use crate::app::AppState;
use crate::auth::{generate_token, TokenHash};
use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
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
    let mut cluster = cluster::Cluster::solo();
    let mut lease_store: Option<Arc<dyn cluster::leases::LeaseStore>> = None;
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
        let pg = store::postgres::PostgresStore::open(&config.store)
            .await
            .context("opening the PostgreSQL store (--store)")?;
        if config.durability == store::Durability::Replicated {
            store::postgres::lease::check_synchronous_standbys(&pg.pool())
                .await
                .map_err(anyhow::Error::msg)?;
        }
        lease_store = Some(Arc::new(store::postgres::lease::PgLeases::new(pg.pool())));
        let transport = store::postgres::notify::PgTransport::start(&config.store, pg.pool())
            .map_err(anyhow::Error::msg)?;
        cluster = cluster::Cluster::node(Arc::new(transport));
        tracing::info!(node = %cluster.node, "a node of a cluster on PostgreSQL");
        Arc::new(pg)
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
    let (persister, writer) = Persister::start(store.clone(), metrics.clone(), cluster.clone());
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
    let room_ctx = room::new_context(|rooms| room::Shared {
        store,
        persister,
        sandbox,
        directory,
        rooms,
        metrics: metrics.clone(),
        tracker: TaskTracker::new(),
        settings: room::RoomSettings {
            room_idle: config.room_idle(),
            compact_after: config.compact_after.max(1),
            merge_delay: Duration::from_millis(10),
            test_corrupt_snapshots: config.test_corrupt_snapshots,
        },
        cluster,
    });
    if room_ctx.cluster.shared_store {
        room::replication::spawn(&room_ctx);
        // Awareness and follower counts between nodes.
        cluster::presence_relay::start(&room_ctx);
    }
    let conn_ctx = connection::context::ConnContext {
        room: room_ctx.clone(),
        settings: Arc::new(connection::context::ConnSettings {
            limits: Limits {
                max_message_bytes: config.max_message_bytes,
                // plenary's documents have no sub-documents, and yrs leaks every one it integrates
                update: plenary_protocol::validate::UpdateLimits {
                    allow_subdocs: false,
                    ..Default::default()
                },
                ..Limits::default()
            },
            outbound_queue: config.outbound_queue,
            outbound_queue_bytes: config.outbound_queue_bytes,
            max_messages_per_sec: config.max_messages_per_sec,
            max_connections: config.max_connections,
            keepalive: config.keepalive,
        }),
        connections: Default::default(),
        token_limits: Arc::new(limits::TokenLimits::new(&config)),
        metrics,
        stopping: CancellationToken::new(),
    };
    let svc = AppState::new(app::App {
        room: room_ctx,
        conn: conn_ctx,
        admin_gate: Arc::new(http::admin::AdminGate::new(admin, config.admin_failures_per_sec)),
        next_conn: Default::default(),
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}")),
    });
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
    if !config.no_demo && svc.room.directory.is_empty() {
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
    if let Some(leases) = lease_store {
        // Which node merges each meeting's plenary: README "Running several nodes".
        cluster::leases::spawn(
            svc.room.cluster.leases.clone(),
            leases,
            room::holder::on_gained(&svc.room),
        );
    }
    revisions::spawn(&svc, Duration::from_secs(config.revision_interval_secs));
    cluster::directory_sync::spawn(&svc);
    let app = http::app(svc.clone());
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
    shutdown::flush_and_stop(svc, stop_accepting, server, writer).await;
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
