//! A connection's outbound path as its room sees it. A frame is written straight into the
//! socket from the room's task when nothing is queued before it: one `write` per delivery, no
//! task woken, no copy. What the socket does not take is queued, bounded in frames and in bytes,
//! and the connection's writer drains it when the socket is writable again. When the queue is
//! full the connection is told to close with 1013 (try again later) rather than letting the room
//! stall or memory grow. One frame is always admitted into an empty queue, so an answer larger
//! than the byte bound (a whole document) still leaves.
//!
//! An outbox may start with bytes *held* (the upgrade's `101` answer, which the HTTP layer handed
//! over unwritten): they go out in the same write as the first frame (the room's greeting), so
//! that a new connection costs one write less, or on [`Outbox::release`] if no frame came.

use crate::connection::close::{close_code, Kick};
pub use crate::wire::Frame;
use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Frames written in one vectored write when the queue is drained.
const DRAIN_BATCH: usize = 64;
/// Most frames offered together written straight away (the rest is queued and drained).
const OFFER_BATCH: usize = 16;

/// The write side of a socket, written without waiting.
pub trait RawSocket: Send + Sync + 'static {
    /// Writes what it can of `bufs` now; `WouldBlock` when it can take nothing.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
    pub kick: Kick,
}

struct Shared {
    /// The socket itself (no box in between: one pointer less to follow per delivery).
    socket: Arc<dyn RawSocket>,
    queue: Mutex<Queue>,
    /// Woken when the queue stops being empty.
    backlog: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Queue {
    /// Whole frames waiting for the socket, the first perhaps partly written.
    frames: VecDeque<Bytes>,
    bytes: usize,
    /// The first frame has been partly written: it must be finished before anything else.
    head_started: bool,
    /// Nothing more is written: the close frame is queued, or the socket failed.
    closed: bool,
    /// Written before anything else, with the first frame offered (see the module's notes).
    /// While it is held, nothing is queued.
    held: Option<Bytes>,
}

/// What became of a frame handed to an outbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Written, or queued behind what the socket has not taken yet.
    Queued,
    /// The queue was full: the connection has been told to close with 1013.
    TooSlow,
    /// The connection is gone.
    Closed,
}

/// After a drain: everything left, or the socket is full.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    Empty,
    Blocked,
}

impl Outbox {
    /// An outbox writing into `socket`: `max_frames` and `max_bytes` bound what waits for it.
    pub fn with_socket(socket: Arc<dyn RawSocket>, max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                socket,
                queue: Mutex::default(),
                backlog: Notify::new(),
                max_frames: max_frames.max(1),
                max_bytes,
            }),
            kick: Kick::default(),
        }
    }

    /// An outbox whose socket is a channel of each frame's payload, taking `capacity` frames
    /// (then it is "full", as a socket whose reader stopped): for the room's tests.
    #[cfg(test)]
    pub fn new(capacity: usize, max_bytes: usize) -> (Outbox, tokio::sync::mpsc::Receiver<Bytes>) {
        let (outbox, rx, _) = Outbox::counted(capacity, max_bytes);
        (outbox, rx)
    }

    /// [`Outbox::new`], with the count of the writes its socket took something from.
    #[cfg(test)]
    pub fn counted(
        capacity: usize,
        max_bytes: usize,
    ) -> (
        Outbox,
        tokio::sync::mpsc::Receiver<Bytes>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let writes = Arc::<std::sync::atomic::AtomicUsize>::default();
        let socket = tests::ChannelSocket {
            tx,
            writes: writes.clone(),
        };
        (
            Outbox::with_socket(Arc::new(socket), capacity, max_bytes),
            rx,
            writes,
        )
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding it leaves the queue consistent (every change is one step).
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `frame`, or queues it behind what is waiting.
    pub fn send(&self, frame: &Frame) -> Delivery {
        self.offer(&[frame.bytes()], |_| frame.bytes().clone())
    }

    /// Writes `frames` in order, in one write when the socket takes them (a greeting).
    pub fn send_all(&self, frames: &[&Frame]) -> Delivery {
        let parts: Vec<&[u8]> = frames.iter().map(|f| &f.bytes()[..]).collect();
        self.offer(&parts, |i| frames[i].bytes().clone())
    }

    /// Writes bytes that are whole frames (tungstenite's pongs and close replies).
    pub fn send_raw(&self, bytes: &[u8]) -> Delivery {
        self.offer(&[bytes], |_| Bytes::copy_from_slice(bytes))
    }

    /// Writes `parts` (each whole frames) straight into the socket when nothing waits before
    /// them, and queues what it does not take; `owned(i)` is part `i` as the queue keeps it.
    fn offer<P: AsRef<[u8]>>(&self, parts: &[P], owned: impl Fn(usize) -> Bytes) -> Delivery {
        let q = self.lock();
        if q.closed {
            return Delivery::Closed;
        }
        self.write_or_queue(q, parts, owned)
    }

    /// Holds `bytes` to be written with the first frame offered (or on [`Outbox::release`]).
    /// Called once, before anything is offered.
    pub fn hold(&self, bytes: Bytes) {
        let mut q = self.lock();
        debug_assert!(
            q.frames.is_empty() && q.held.is_none(),
            "held after frames were offered"
        );
        if !bytes.is_empty() && !q.closed {
            q.held = Some(bytes);
        }
    }

    /// Writes the held bytes now if no frame has taken them along.
    pub fn release(&self) -> Delivery {
        let q = self.lock();
        if q.closed {
            return Delivery::Closed;
        }
        if q.held.is_none() {
            return Delivery::Queued;
        }
        self.write_or_queue::<&[u8]>(q, &[], |_| Bytes::new())
    }

    fn write_or_queue<P: AsRef<[u8]>>(
        &self,
        mut q: MutexGuard<'_, Queue>,
        parts: &[P],
        owned: impl Fn(usize) -> Bytes,
    ) -> Delivery {
        let len: usize = parts.iter().map(|p| p.as_ref().len()).sum();
        if !q.frames.is_empty() {
            if q.frames.len() + parts.len() > self.shared.max_frames
                || q.bytes.saturating_add(len) > self.shared.max_bytes
            {
                drop(q);
                self.kick.kick(close_code::TRY_AGAIN_LATER);
                return Delivery::TooSlow;
            }
            q.bytes += len;
            q.frames.extend((0..parts.len()).map(owned));
            return Delivery::Queued;
        }
        // The held bytes, if any, go first, in the same write.
        let held = q.held.take();
        let pre = usize::from(held.is_some());
        let held_len = held.as_ref().map_or(0, Bytes::len);
        // Only the slices written are filled (a delivery is one).
        let n = (pre + parts.len()).min(OFFER_BATCH + 1);
        let mut slices = [IoSlice::new(&[]); OFFER_BATCH + 1];
        if let Some(held) = &held {
            slices[0] = IoSlice::new(held);
        }
        for (slice, part) in slices[pre..n].iter_mut().zip(parts) {
            *slice = IoSlice::new(part.as_ref());
        }
        let mut written = match self.shared.socket.try_write_vectored(&slices[..n]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                q.closed = true;
                return Delivery::Closed;
            }
        };
        if written >= held_len + len {
            return Delivery::Queued;
        }
        // What the socket did not take is queued in order: the rest of the held bytes, then of
        // each part.
        if let Some(mut rest) = held {
            if written >= rest.len() {
                written -= rest.len();
            } else {
                rest.advance(written);
                // kept like a frame partly written: nothing may be written before it
                q.head_started = true;
                written = 0;
                q.bytes += rest.len();
                q.frames.push_back(rest);
            }
        }
        for (i, part) in parts.iter().enumerate() {
            let part_len = part.as_ref().len();
            if written >= part_len {
                written -= part_len;
                continue;
            }
            let mut rest = owned(i);
            rest.advance(written);
            q.head_started |= written > 0;
            written = 0;
            q.bytes += rest.len();
            q.frames.push_back(rest);
        }
        drop(q);
        self.shared.backlog.notify_one();
        Delivery::Queued
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn drain(&self) -> io::Result<Drained> {
        let mut q = self.lock();
        if let Some(held) = q.held.take() {
            q.bytes += held.len();
            q.frames.push_front(held);
            q.head_started = true;
        }
        loop {
            if q.frames.is_empty() {
                return Ok(Drained::Empty);
            }
            let slices: Vec<IoSlice<'_>> = q
                .frames
                .iter()
                .take(DRAIN_BATCH)
                .map(|b| IoSlice::new(b))
                .collect();
            let mut n = match self.shared.socket.try_write_vectored(&slices) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Blocked),
                Err(e) => {
                    q.closed = true;
                    q.frames.clear();
                    q.bytes = 0;
                    return Err(e);
                }
            };
            drop(slices);
            if n == 0 {
                return Ok(Drained::Blocked);
            }
            q.bytes -= n;
            while n > 0 {
                let head = q.frames.front_mut().expect("written bytes were queued");
                if n >= head.len() {
                    n -= head.len();
                    q.frames.pop_front();
                    q.head_started = false;
                } else {
                    head.advance(n);
                    q.head_started = true;
                    n = 0;
                }
            }
        }
    }

    /// Resolves once the queue has stopped being empty since this was called (or was not empty:
    /// check [`Outbox::queued_bytes`] before waiting).
    pub fn backlog(&self) -> Notified<'_> {
        self.shared.backlog.notified()
    }

    /// Queues `frame` (our close frame) as the last thing written: frames not yet started are
    /// dropped (a frame partly written is finished first, or the stream would be corrupt), and
    /// nothing is written after it. False if the outbox was already closed.
    pub fn close_with(&self, frame: &Frame) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        // The held bytes are not a frame of ours to drop: they come before it.
        if let Some(held) = q.held.take() {
            q.frames.push_front(held);
            q.head_started = true;
        }
        let keep = usize::from(q.head_started);
        q.frames.truncate(keep);
        q.bytes = q.frames.iter().map(Bytes::len).sum();
        q.frames.push_back(frame.bytes().clone());
        q.bytes += frame.len();
        q.closed = true;
        drop(q);
        self.shared.backlog.notify_one();
        true
    }

    /// Nothing more is written (the connection has ended).
    pub fn shut(&self) {
        let mut q = self.lock();
        q.closed = true;
        q.frames.clear();
        q.held = None;
        q.bytes = 0;
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes whole frames into a bounded channel of their payloads, and counts
    /// the writes it took something from.
    pub(super) struct ChannelSocket {
        pub tx: tokio::sync::mpsc::Sender<Bytes>,
        pub writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl RawSocket for ChannelSocket {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let written = self.take(bufs)?;
            if written > 0 {
                self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(written)
        }
    }

    impl ChannelSocket {
        fn take(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut written = 0;
            for buf in bufs {
                let (at, end) = crate::wire::frame::split(buf).expect("whole frames only");
                match self.tx.try_reserve() {
                    Ok(permit) => permit.send(Bytes::copy_from_slice(&buf[at..end])),
                    Err(tokio::sync::mpsc::error::TrySendError::Full(())) => break,
                    Err(_) => return Err(io::ErrorKind::BrokenPipe.into()),
                }
                written += buf.len();
            }
            if written == 0 && !bufs.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(written)
        }
    }

    /// A socket that takes at most `limit` bytes per write, and nothing while `full`.
    struct Trickle {
        limit: usize,
        full: std::sync::atomic::AtomicBool,
        got: Mutex<Vec<u8>>,
        /// Writes that took something.
        writes: std::sync::atomic::AtomicUsize,
    }

    impl RawSocket for Arc<Trickle> {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.full.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut got = self.got.lock().unwrap();
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.limit - n);
                got.extend_from_slice(&buf[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }
    }

    fn trickle(limit: usize) -> Arc<Trickle> {
        Arc::new(Trickle {
            limit,
            full: Default::default(),
            got: Mutex::default(),
            writes: Default::default(),
        })
    }

    /// Splits a byte stream into the payloads of its frames.
    fn payloads(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (at, end) = crate::wire::frame::split(bytes).expect("whole frames");
            out.push(bytes[at..end].to_vec());
            bytes = &bytes[end..];
        }
        out
    }

    #[test]
    fn bytes_are_bounded_but_an_empty_queue_takes_any_frame() {
        let sock = trickle(1 << 20);
        sock.full.store(true, std::sync::atomic::Ordering::SeqCst);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 100, 1000);
        // larger than the bound, into an empty queue: admitted
        assert_eq!(out.send(&Frame::binary(vec![0; 5000])), Delivery::Queued);
        assert_eq!(out.queued_bytes(), 5004);
        sock.full.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(out.drain().unwrap(), Drained::Empty);
        sock.full.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(out.send(&Frame::binary(vec![0; 600])), Delivery::Queued);
        assert_eq!(out.send(&Frame::binary(vec![0; 300])), Delivery::Queued);
        assert!(out.kick.code().is_none());
        // 908 queued: 200 more would pass 1000
        assert_eq!(out.send(&Frame::binary(vec![0; 200])), Delivery::TooSlow);
        assert_eq!(out.kick.code(), Some(close_code::TRY_AGAIN_LATER));
    }

    #[test]
    fn frames_are_capped_in_number_too() {
        let sock = trickle(1 << 20);
        sock.full.store(true, std::sync::atomic::Ordering::SeqCst);
        let out = Outbox::with_socket(Arc::new(sock), 2, 1 << 20);
        assert_eq!(out.send(&Frame::binary(b"a")), Delivery::Queued);
        assert_eq!(out.send(&Frame::binary(b"b")), Delivery::Queued);
        assert_eq!(out.send(&Frame::binary(b"c")), Delivery::TooSlow);
    }

    #[test]
    fn a_socket_that_takes_a_few_bytes_at_a_time_gets_every_frame_whole_and_in_order() {
        let sock = trickle(7);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
        let sent: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 3 + i as usize * 11]).collect();
        for p in &sent {
            assert_eq!(out.send(&Frame::binary(p)), Delivery::Queued);
        }
        while out.drain().unwrap() != Drained::Empty {}
        assert_eq!(out.queued_bytes(), 0);
        assert_eq!(payloads(&sock.got.lock().unwrap()), sent);
    }

    #[test]
    fn a_close_frame_follows_a_partly_written_frame_and_nothing_follows_it() {
        let sock = trickle(5);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
        // 5 of its 22 bytes are written at once; the second frame waits
        assert_eq!(out.send(&Frame::binary([1u8; 20])), Delivery::Queued);
        assert_eq!(out.send(&Frame::binary([2u8; 20])), Delivery::Queued);
        assert!(out.close_with(&Frame::close(1013, "slow")));
        assert_eq!(out.send(&Frame::binary([3u8; 20])), Delivery::Closed);
        assert!(!out.close_with(&Frame::close(1001, "")));
        while out.drain().unwrap() != Drained::Empty {}
        let got = sock.got.lock().unwrap();
        let mut bytes = &got[..];
        let (at, end) = crate::wire::frame::split(bytes).unwrap();
        assert_eq!(&bytes[at..end], &[1u8; 20], "the started frame is finished");
        bytes = &bytes[end..];
        assert_eq!(
            bytes,
            Frame::close(1013, "slow").bytes(),
            "then only the close frame"
        );
    }

    #[test]
    fn a_greeting_of_several_frames_cut_anywhere_arrives_whole_and_in_order() {
        for limit in [1, 3, 22, 23, 40, 1000] {
            let sock = trickle(limit);
            let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
            let (a, b, c) = (
                Frame::binary([1u8; 20]),
                Frame::binary([2u8; 30]),
                Frame::binary([3u8; 5]),
            );
            assert_eq!(out.send_all(&[&a, &b]), Delivery::Queued);
            assert_eq!(out.send(&c), Delivery::Queued);
            while out.drain().unwrap() != Drained::Empty {}
            let got = payloads(&sock.got.lock().unwrap());
            assert_eq!(
                got,
                vec![vec![1u8; 20], vec![2u8; 30], vec![3u8; 5]],
                "limit {limit}"
            );
        }
    }

    const ANSWER: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";

    #[test]
    fn held_bytes_leave_first_in_the_greeting_s_write_whole_wherever_it_is_cut() {
        for limit in [1, 5, ANSWER.len(), ANSWER.len() + 1, 30, 1000] {
            let sock = trickle(limit);
            let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
            out.hold(Bytes::from_static(ANSWER));
            assert!(sock.got.lock().unwrap().is_empty(), "held, not written");
            let (a, b) = (Frame::binary([1u8; 20]), Frame::binary([2u8; 30]));
            assert_eq!(out.send_all(&[&a, &b]), Delivery::Queued);
            assert_eq!(out.send(&Frame::binary([3u8; 5])), Delivery::Queued);
            while out.drain().unwrap() != Drained::Empty {}
            assert_eq!(out.release(), Delivery::Queued);
            let got = sock.got.lock().unwrap().clone();
            assert_eq!(&got[..ANSWER.len()], ANSWER, "limit {limit}");
            let frames = payloads(&got[ANSWER.len()..]);
            assert_eq!(
                frames,
                vec![vec![1u8; 20], vec![2u8; 30], vec![3u8; 5]],
                "limit {limit}"
            );
        }
        // a socket that takes it all: the answer and the greeting are one write
        let sock = trickle(1 << 20);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
        out.hold(Bytes::from_static(ANSWER));
        out.send_all(&[&Frame::binary(b"a"), &Frame::binary(b"b")]);
        assert_eq!(sock.writes.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(sock.got.lock().unwrap().len(), ANSWER.len() + 6);
    }

    #[test]
    fn held_bytes_are_written_on_release_once_or_by_a_drain() {
        let sock = trickle(1 << 20);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
        out.hold(Bytes::from_static(ANSWER));
        assert_eq!(out.release(), Delivery::Queued);
        assert_eq!(out.release(), Delivery::Queued);
        assert_eq!(&sock.got.lock().unwrap()[..], ANSWER, "written once");
        let sock = trickle(1 << 20);
        let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
        out.hold(Bytes::from_static(ANSWER));
        assert_eq!(out.drain().unwrap(), Drained::Empty);
        assert_eq!(&sock.got.lock().unwrap()[..], ANSWER);
    }

    #[test]
    fn held_bytes_are_not_dropped_by_a_close_and_come_before_the_close_frame() {
        // still held; released into a full socket (queued whole); 4 bytes of it written
        for (limit, full, release) in [(1 << 20, true, false), (1 << 20, true, true), (4, false, true)] {
            let sock = trickle(limit);
            sock.full.store(full, std::sync::atomic::Ordering::SeqCst);
            let out = Outbox::with_socket(Arc::new(sock.clone()), 1000, 1 << 20);
            out.hold(Bytes::from_static(ANSWER));
            if release {
                assert_eq!(out.release(), Delivery::Queued);
            }
            assert!(out.close_with(&Frame::close(1012, "restart")));
            sock.full.store(false, std::sync::atomic::Ordering::SeqCst);
            while out.drain().unwrap() != Drained::Empty {}
            let got = sock.got.lock().unwrap();
            assert_eq!(&got[..ANSWER.len()], ANSWER, "limit {limit}");
            assert_eq!(
                &got[ANSWER.len()..],
                Frame::close(1012, "restart").bytes(),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn a_failed_socket_closes_the_outbox() {
        struct Broken;
        impl RawSocket for Broken {
            fn try_write_vectored(&self, _: &[IoSlice<'_>]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        let out = Outbox::with_socket(Arc::new(Broken), 10, 1000);
        assert_eq!(out.send(&Frame::binary(b"x")), Delivery::Closed);
        assert_eq!(out.send(&Frame::binary(b"y")), Delivery::Closed);
    }
}
