//! A WebSocket connection's TCP socket, split in two. The write half is shared: the room writes
//! each frame into it straight from its own task (see [`crate::room::Outbox`]), and the
//! connection's writer drains what the socket did not take. The read half feeds tungstenite,
//! which decodes the client's frames (masks, fragments, control frames, size limits); the few
//! frames tungstenite writes itself (pongs, the answer to a client's close) go into the same
//! outbox, so they never cut into a frame being written.

use crate::room::outbox::{Outbox, RawSocket};
use bytes::{Buf, Bytes};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A connection HTTP has handed over.
pub struct Upgraded {
    pub tcp: tokio::net::TcpStream,
    /// What HTTP read past the upgrade request (the client's first frames, if it sent them at
    /// once).
    pub prefix: Bytes,
    /// What HTTP wrote and did not send: the `101` answer (see `http::serve::HoldUpgrade`).
    pub unsent: Bytes,
}

/// The shared write half.
#[derive(Clone)]
pub struct WriteHalf(pub Arc<OwnedWriteHalf>);

impl WriteHalf {
    /// The socket as the outbox writes it.
    pub fn raw(&self) -> Arc<dyn RawSocket> {
        self.0.clone()
    }
}

impl RawSocket for OwnedWriteHalf {
    /// One buffer (a delivery) is a `send`; several (a queue drained) one `writev`. `send` skips
    /// the file layer `writev` goes through (the iovec copy, file notifications).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs {
            [one] => self.try_write(one),
            _ => OwnedWriteHalf::try_write_vectored(self, bufs),
        }
    }
}

/// What tungstenite reads from and writes to: the bytes the HTTP layer read past the upgrade
/// request, then the socket; its writes go to the outbox.
pub struct ReadSide {
    pub prefix: Bytes,
    pub read: OwnedReadHalf,
    pub out: Outbox,
}

impl AsyncRead for ReadSide {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadSide {
    /// tungstenite writes whole frames from its buffer; the outbox takes them all (or, once our
    /// close frame is queued, drops them), so a write never waits.
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let _ = self.out.send_raw(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
