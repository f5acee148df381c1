//! Test harness: the real server in-process on 127.0.0.1:0 with a temp data dir ([`Server`]),
//! a minimal y-websocket peer built on yrs ([`Peer`]), hyper's HTTP client ([`Http`]) and the
//! document edits the suites share ([`content`]).

#![allow(dead_code)]

pub mod content;
pub mod http;
pub mod peer;

// every suite includes this module and uses a part of it
#[allow(unused_imports)]
pub use content::*;
#[allow(unused_imports)]
pub use http::{json_or_text, Http};
#[allow(unused_imports)]
pub use peer::{check_live_peers, Peer, Received};

use plenary_server::config::Config;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const DEADLINE: Duration = Duration::from_secs(15);

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
    config: Config,
    /// The temp dir of a [`Server::fresh`] server, handed on by [`Server::restart`].
    owned_dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// A server with the test configuration on a new temp data dir that it owns.
    pub async fn fresh() -> Server {
        Self::fresh_with(|_| {}).await
    }

    /// Like [`Server::fresh`], with the test configuration changed by `f` first.
    pub async fn fresh_with(f: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path().into(), ADMIN);
        f(&mut config);
        let mut s = Self::start_with(config).await;
        s.owned_dir = Some(dir);
        s
    }

    /// A server with the test configuration on `data_dir` (which the caller keeps).
    pub async fn start(data_dir: PathBuf) -> Server {
        Self::start_with(Config::for_tests(data_dir, ADMIN)).await
    }

    pub async fn start_with(mut config: Config) -> Server {
        // In-process servers run inside the test binary: the sandbox child is the real one.
        if config.sandbox_program.is_none() {
            config.sandbox_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_plenary")));
        }
        if std::env::var_os("PLENARY_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,tower_http=warn,hyper=warn")
                .with_test_writer()
                .try_init();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = config.data_dir.clone();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(plenary_server::run(listener, config.clone(), async move {
            let _ = rx.await;
        }));
        let mut s = Server {
            addr,
            data_dir,
            config,
            owned_dir: None,
            stop: Some(stop),
            task: Some(task),
        };
        let client = s.http();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while client.get_status("/healthz").await != 200 {
            // a server that stopped on its own says why, instead of a timeout
            if s.task.as_ref().is_some_and(|t| t.is_finished()) {
                let r = s.task.take().unwrap().await;
                panic!("the server stopped while starting: {r:?}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not answer /healthz"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s
    }

    /// Graceful stop (what SIGTERM does); fails the test if the server returns an error.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await
                .expect("the server task panicked")
                .expect("the server returned an error");
        }
    }

    /// Stops gracefully and starts again on the same data dir and configuration (a new port).
    pub async fn restart(mut self) -> Server {
        self.shut_down().await;
        let mut s = Self::start_with(self.config.clone()).await;
        s.owned_dir = self.owned_dir.take();
        s
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }

    /// `POST /api/meetings` as the admin with groups titled "Group {id}"; must answer 201.
    pub async fn create_meeting(&self, id: &str, groups: &[&str]) -> serde_json::Value {
        let body = serde_json::json!({
            "id": id, "title": format!("Meeting {id}"),
            "groups": groups.iter().map(|g| serde_json::json!({"id": g, "title": format!("Group {g}")})).collect::<Vec<_>>(),
        });
        let (status, json) = self
            .http()
            .post_json("/api/meetings", Some(ADMIN), &body.to_string())
            .await;
        assert_eq!(status, 201, "{json}");
        json
    }

    /// A peer on `room` (`meeting/doc`) that must be let in.
    pub async fn peer(&self, room: &str, token: &str) -> Peer {
        self.peer_with(room, token, "").await
    }

    /// A peer with more query parameters (`"&ack=1"`) that must be let in.
    pub async fn peer_with(&self, room: &str, token: &str, extra: &str) -> Peer {
        Peer::connect(self.addr, room, token, extra)
            .await
            .unwrap_or_else(|status| panic!("upgrade to {room} refused with {status}"))
    }

    /// The value of a Prometheus counter or gauge at `/metrics` (0 if absent).
    pub async fn metric(&self, name: &str) -> u64 {
        let (st, body) = self.http().get("/metrics", None).await;
        assert_eq!(st, 200, "{body}");
        body.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // a test that panicked before `stop`: do not leave the server running in the runtime
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A token from a creation answer: `tok(&m, &["rapporteurs", "g1"])`.
pub fn tok<'a>(m: &'a serde_json::Value, path: &[&str]) -> &'a str {
    let mut v = &m["tokens"];
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("no token at {path:?} in {m}"))
}

/// Waits for `cond` within [`DEADLINE`]; fails at once if a live peer's task has failed.
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        check_live_peers();
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            check_live_peers();
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn close_code_u16(c: CloseCode) -> u16 {
    u16::from(c)
}
