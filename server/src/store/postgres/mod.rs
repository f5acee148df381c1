//! The PostgreSQL store (`--store postgres://…`): several nodes on one database (issue 13).
//!
//! - [`PostgresStore`]: the [`crate::store::Store`] trait on PostgreSQL (group commit, heads).
//! - [`import`]: `plenary migrate`, a copy of the embedded store into PostgreSQL.
//! - [`schema`]: tables and versioned migrations, applied at start under an advisory lock.
//! - [`notify`]: NOTIFY/LISTEN, the cluster's transport between nodes.
//! - [`lease`]: plenary leases on the database's clock, the merge's fence, the standby check.
//! - [`testing`]: throwaway databases for the tests (`PLENARY_TEST_PG_URL`).
//!
//! Connections come from a `deadpool-postgres` pool over `tokio-postgres` (pure Rust, no TLS:
//! the database is expected on loopback or a private network). Every connection runs with
//! `synchronous_commit = on`, so a commit that returned is in PostgreSQL's WAL on disk (and on
//! the synchronous standbys, when the server has any) before anything is relayed.

pub mod import;
pub mod lease;
pub mod notify;
pub mod schema;
mod store;
pub mod testing;

pub use store::PostgresStore;

use std::str::FromStr;
use std::time::Duration;

/// Connections per node. A node's writes are one group-commit stream plus the occasional
/// directory write; reads (room loads, exports) take the rest.
pub const POOL_SIZE: usize = 16;
/// How long an operation waits for a connection (or for one to be made) before it fails with
/// the store unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `--store` names a PostgreSQL database rather than the embedded store.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The client configuration for `url`, with what every node's connections need.
pub fn client_config(url: &str) -> Result<tokio_postgres::Config, String> {
    let mut c = tokio_postgres::Config::from_str(url).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    if c.get_application_name().is_none() {
        c.application_name("plenary");
    }
    // Durable before relayed: a commit returns once it is flushed (and replicated to the
    // synchronous standbys, if configured), whatever the server's default.
    let options = match c.get_options() {
        Some(o) => format!("{o} -c synchronous_commit=on"),
        None => "-c synchronous_commit=on".to_owned(),
    };
    c.options(&options);
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(CONNECT_TIMEOUT);
    }
    // A dead peer (a machine gone, a cut network) is noticed by TCP keepalives.
    c.keepalives(true);
    c.keepalives_idle(Duration::from_secs(10));
    Ok(c)
}

/// A pool of connections to `url`. Makes no connection yet.
pub fn pool(url: &str) -> Result<deadpool_postgres::Pool, String> {
    use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
    let config = client_config(url)?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| format!("PostgreSQL pool: {e}"))
}

/// One connection outside the pool (migrations, tests); its connection task runs on the
/// current runtime until the client is dropped.
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// Key of the advisory lock a node holds from opening the store until it has seeded it (admin
/// token, demo meeting), so that nodes starting together seed once.
const STARTUP_LOCK: i64 = 0x0070_6c65_6e61_727a;

/// A session-level advisory lock on a connection of its own; released when dropped (the
/// session ends).
pub struct StartupLock(#[allow(dead_code)] tokio_postgres::Client);

impl StartupLock {
    pub async fn acquire(url: &str) -> Result<Self, String> {
        let config = client_config(url)?;
        let c = connect(&config).await.map_err(|e| format!("PostgreSQL: {e}"))?;
        c.execute("SELECT pg_advisory_lock($1)", &[&STARTUP_LOCK])
            .await
            .map_err(|e| format!("PostgreSQL: {e}"))?;
        Ok(StartupLock(c))
    }
}
