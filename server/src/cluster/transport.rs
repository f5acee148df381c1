//! How nodes talk (issue 13): short messages on a few channels, heard by every node of the
//! cluster. Nothing durable travels here — the store is the only durable layer; a lost message
//! costs latency, never data (receivers recover from the store on [`Heard::Resync`] and by
//! their periodic checks).
//!
//! - [`Transport`]: the small trait a transport implements. PostgreSQL's NOTIFY/LISTEN is one
//!   (`store::postgres::notify`); Redis pub/sub could be another.
//! - [`LocalBus`]: an in-process transport: one node alone (the embedded store), or several
//!   nodes in one test process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A message's size limit, under PostgreSQL's 8000-byte NOTIFY limit with room to spare.
pub const MAX_PAYLOAD: usize = 7000;

/// What a message is about. Each channel's payload format belongs to the module that sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Documents that moved: [`super::rings`].
    Docs,
    /// Meetings, groups, closed flags and tokens that changed.
    Directory,
    /// Awareness (presence) and follower counts, relayed, never stored.
    Awareness,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Docs, Channel::Directory, Channel::Awareness];

    /// The channel's name on the wire (a PostgreSQL NOTIFY channel).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Docs => "plenary_docs",
            Channel::Directory => "plenary_directory",
            Channel::Awareness => "plenary_awareness",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What a node hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message on `channel`, from any node (this one included: payloads name their sender,
    /// and receivers drop their own).
    Message { channel: Channel, payload: Arc<str> },
    /// The listening session was (re)established: messages may have been missed meanwhile;
    /// receivers check the store for what they hold.
    Resync,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub trait Transport: Send + Sync + 'static {
    /// Sends each payload (at most [`MAX_PAYLOAD`] bytes) on `channel` to every node, in order.
    fn send(&self, channel: Channel, payloads: Vec<String>) -> SendFuture<'_>;
    /// Everything heard from now on. A receiver that lags is told so by `broadcast`'s
    /// `Lagged` error and must treat it as [`Heard::Resync`].
    fn subscribe(&self) -> broadcast::Receiver<Heard>;
}

/// Messages within one process: clones share one bus.
#[derive(Clone)]
pub struct LocalBus {
    heard: broadcast::Sender<Heard>,
}

impl Default for LocalBus {
    fn default() -> Self {
        LocalBus {
            heard: broadcast::channel(4096).0,
        }
    }
}

impl Transport for LocalBus {
    fn send(&self, channel: Channel, payloads: Vec<String>) -> SendFuture<'_> {
        for p in payloads {
            if p.len() > MAX_PAYLOAD {
                return Box::pin(async move { Err(format!("payload of {} bytes", p.len())) });
            }
            let _ = self.heard.send(Heard::Message {
                channel,
                payload: p.into(),
            });
        }
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.heard.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_bus_delivers_in_order_to_every_subscriber_and_refuses_oversized_payloads() {
        let bus = LocalBus::default();
        let mut a = bus.subscribe();
        let mut b = bus.clone().subscribe();
        bus.send(Channel::Docs, vec!["1".into(), "2".into()])
            .await
            .expect("send");
        for rx in [&mut a, &mut b] {
            for want in ["1", "2"] {
                assert_eq!(
                    rx.recv().await.expect("recv"),
                    Heard::Message {
                        channel: Channel::Docs,
                        payload: want.into()
                    }
                );
            }
        }
        assert!(bus
            .send(Channel::Directory, vec!["x".repeat(MAX_PAYLOAD + 1)])
            .await
            .is_err());
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::from_name(c.name()), Some(c));
        }
        assert_eq!(Channel::from_name("other"), None);
    }
}
