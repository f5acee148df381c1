//! The accept loop: HTTP/1.1 over the `TcpListener`, with the limits `axum::serve` lacks.
//!
//! Before a connection upgrades to a WebSocket it costs a socket, a task and buffers while
//! holding nothing we can account to a token, so it is bounded here, by the connection:
//! - at most `max_pending` such connections (the permit is released when the connection closes
//!   or upgrades). When they are all taken, the accept loop first waits for one to free, up to
//!   `FULL_GRACE` from the moment the cap was reached (meanwhile new connections wait in the
//!   kernel's accept queue): a connect storm, whose connections upgrade within milliseconds,
//!   is admitted in order instead of reset. Once the cap has been held that long (a slowloris
//!   flood), a new TCP connection beyond it is closed at once, until a slot frees;
//! - the whole request head within `header_read_timeout` (hyper's timer; it also bounds a
//!   keep-alive connection waiting for its next request), so a slowloris client trickling
//!   one byte at a time is cut;
//! - no bytes either way for `idle`, with no request in progress: closed (graceful, so a slow
//!   handler's response is never cut).
//!
//! Upgraded WebSockets are tracked by the connection code (the room context's `tracker`), not here.

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;

/// Limits on connections that have not upgraded.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_pending: usize,
    pub header_read_timeout: Duration,
    pub idle: Duration,
}

/// After an accept error (out of file descriptors, say), wait this long before the next accept
/// instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// How long the accept loop waits for a pending slot once they are all taken, counted from the
/// moment the cap was reached, before it closes new connections at once.
const FULL_GRACE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `stop` is cancelled; then stops accepting, asks every
/// connection that has not upgraded to finish its request and close, and waits for them.
// `u64::is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
pub async fn serve(listener: TcpListener, app: super::App, limits: HttpLimits, stop: CancellationToken) {
    let pending = Arc::new(Semaphore::new(limits.max_pending));
    let conns = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut refused: u64 = 0;
    // Since when every pending slot has been taken (none freed meanwhile).
    let mut full_since: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let permit = match pending.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let since = *full_since.get_or_insert_with(Instant::now);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    p = tokio::time::timeout_at(since + FULL_GRACE, pending.clone().acquire_owned()) => p.ok().and_then(Result::ok),
                }
            }
        };
        if permit.is_some() {
            full_since = None;
        }
        let Some(permit) = permit else {
            // Dropping the stream closes it at once; log the first refusal and then every 1,000th.
            if refused % 1000 == 0 {
                tracing::warn!(
                    max = limits.max_pending,
                    refused = refused + 1,
                    "too many connections that have not upgraded: closing new ones"
                );
            }
            refused += 1;
            drop(tcp);
            continue;
        };
        // TCP_NODELAY: a keystroke must leave now, not wait for Nagle and a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let hold = HoldUpgrade::default();
        let io = TokioIo::new(Tracked {
            inner: tcp,
            activity: activity.clone(),
            hold: hold.clone(),
            held: Vec::new(),
        });
        // Each request carries its connection's `HoldUpgrade`, for the WebSocket upgrade.
        let svc = TowerToHyperService::new(AddExtension::new(app.clone(), hold));
        let conn = builder.serve_connection(io, svc).with_upgrades();
        let stop = stop.clone();
        let idle = limits.idle;
        conns.spawn(async move {
            let _permit = permit; // released when this connection closes or upgrades
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                let quiet_until = activity.last() + idle;
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "http connection ended");
                        }
                        break;
                    }
                    _ = stop.cancelled(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = tokio::time::sleep_until(quiet_until), if !closing => {
                        if activity.last() + idle <= Instant::now() {
                            // Closes now when between requests; after the response otherwise.
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

/// When a connection last moved a byte, as milliseconds since `base`.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Set by a request that becomes a WebSocket, just before its `101` answer: from then on, what
/// HTTP writes to the connection (that answer) is kept for the WebSocket connection to send
/// with its first frames, in one write instead of two.
#[derive(Clone, Default)]
pub(crate) struct HoldUpgrade(Arc<AtomicBool>);

impl HoldUpgrade {
    pub(crate) fn hold(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn held(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A `TcpStream` that records when it last read or wrote anything.
pub(crate) struct Tracked {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
    hold: HoldUpgrade,
    /// What HTTP wrote once `hold` was set.
    held: Vec<u8>,
}

impl Tracked {
    /// The socket itself, once a WebSocket upgrade has taken it over from HTTP, and what HTTP
    /// wrote to it that has not been sent (see [`HoldUpgrade`]).
    pub(crate) fn into_tcp(self) -> (tokio::net::TcpStream, Vec<u8>) {
        (self.inner, self.held)
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.hold.held() {
            self.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.hold.held() {
            let before = self.held.len();
            for b in bufs {
                self.held.extend_from_slice(b);
            }
            return Poll::Ready(Ok(self.held.len() - before));
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: the server's side wrapped in `Tracked`, and the client's socket.
    async fn pair() -> (Tracked, HoldUpgrade, tokio::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let hold = HoldUpgrade::default();
        let tracked = Tracked {
            inner: accepted.unwrap().0,
            activity: Arc::new(Activity::new()),
            hold: hold.clone(),
            held: Vec::new(),
        };
        (tracked, hold, client.unwrap())
    }

    #[tokio::test]
    async fn once_held_what_http_writes_is_kept_for_the_connection_and_not_sent() {
        let (mut tracked, hold, mut client) = pair().await;
        tracked.write_all(b"before ").await.unwrap();
        hold.hold();
        tracked.write_all(b"HTTP/1.1 101").await.unwrap();
        let bufs = [io::IoSlice::new(b" Switching"), io::IoSlice::new(b" Protocols")];
        assert_eq!(tracked.write_vectored(&bufs).await.unwrap(), 20);
        tracked.flush().await.unwrap();
        let (mut tcp, held) = tracked.into_tcp();
        assert_eq!(held, b"HTTP/1.1 101 Switching Protocols");
        // nothing held reached the socket: the next bytes on it follow "before " directly
        tcp.write_all(b"after").await.unwrap();
        let mut got = vec![0u8; 12];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"before after");
    }
}
