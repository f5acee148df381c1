//! The `plenary` binary: parse the configuration, start tracing, run.

use anyhow::Context;
use clap::Parser;
use plenary_server::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::SandboxWorker) = cli.command {
        // The child speaks frames on stdout: no tracing, no runtime, nothing else there.
        std::process::exit(plenary_server::sandbox::worker::run());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match cli.command {
        Some(Command::Export(args)) => return offline(plenary_server::export::run(&args)),
        Some(Command::Doctor(args)) => return offline(plenary_server::sandbox::doctor::run(&args)),
        Some(Command::SandboxWorker) => unreachable!("dispatched above"),
        Some(Command::Backup(args)) => return plenary_server::export::backup(&args),
        Some(Command::Migrate(args)) => return offline(plenary_server::store::postgres::import::run(&args)),
        Some(Command::Serve(c)) => c,
        None => cli.serve,
    };
    config.validate().map_err(anyhow::Error::msg)?;
    match plenary_server::raise_fd_limit() {
        Ok(n) => tracing::info!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = bind(config.addr).with_context(|| format!("binding {}", config.addr))?;
        plenary_server::run(listener, config, plenary_server::shutdown_signal()).await
    })
}

/// Runs an offline command (`export`, `doctor`) on a small runtime of its own.
fn offline(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// Binds with a deep accept backlog: at the start of a session thousands of phones connect at
/// once, and a full backlog costs each overflowing client a one-second SYN retry.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}
