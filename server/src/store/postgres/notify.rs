//! NOTIFY/LISTEN as the cluster's [`Transport`]: `pg_notify` in its own short transaction
//! (callers send *after* the data they announce is committed: inside the data transaction,
//! every commit in the cluster would serialize on the notify queue's lock), and one `LISTEN`
//! session per node on every [`Channel`], re-established with a back-off and announced as
//! [`Heard::Resync`].

use crate::cluster::transport::{Channel, Heard, SendFuture, Transport, MAX_PAYLOAD};
use tokio::sync::broadcast;

/// NOTIFY/LISTEN on the cluster's database.
pub struct PgTransport {
    pool: deadpool_postgres::Pool,
    heard: broadcast::Sender<Heard>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgTransport {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgTransport {
    /// Starts listening on a connection of its own and sends through `pool`.
    pub fn start(url: &str, pool: deadpool_postgres::Pool) -> Result<Self, String> {
        let config = super::client_config(url)?;
        let (heard, _) = broadcast::channel(4096);
        let listener = tokio::spawn(listen(config, heard.clone()));
        Ok(PgTransport {
            pool,
            heard,
            listener,
        })
    }
}

async fn listen(config: tokio_postgres::Config, heard: broadcast::Sender<Heard>) {
    use futures_util::StreamExt;
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
                {
                    let sql: String = Channel::ALL
                        .iter()
                        .map(|c| format!("LISTEN {};", c.name()))
                        .collect();
                    let listen = client.batch_execute(&sql);
                    // The LISTEN completes only while the connection is polled.
                    let mut listen = std::pin::pin!(listen);
                    let mut listening = false;
                    loop {
                        tokio::select! {
                            r = &mut listen, if !listening => {
                                if let Err(e) = r {
                                    tracing::warn!(error = %e, "cluster: LISTEN failed");
                                    break;
                                }
                                listening = true;
                                backoff = std::time::Duration::from_millis(100);
                                let _ = heard.send(Heard::Resync);
                            }
                            m = messages.next() => match m {
                                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                                    match Channel::from_name(n.channel()) {
                                        Some(channel) => {
                                            let _ = heard.send(Heard::Message {
                                                channel,
                                                payload: n.payload().into(),
                                            });
                                        }
                                        None => tracing::warn!(channel = n.channel(), "cluster: message on an unknown channel"),
                                    }
                                }
                                Some(Ok(_)) => {}
                                Some(Err(e)) => {
                                    tracing::warn!(error = %e, "cluster: listening session lost");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                }
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "cluster: cannot connect to listen"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

impl Transport for PgTransport {
    fn send(&self, channel: Channel, payloads: Vec<String>) -> SendFuture<'_> {
        Box::pin(async move {
            if let Some(p) = payloads.iter().find(|p| p.len() > MAX_PAYLOAD) {
                return Err(format!("payload of {} bytes", p.len()));
            }
            let c = self.pool.get().await.map_err(|e| e.to_string())?;
            for payload in payloads {
                c.execute("SELECT pg_notify($1, $2)", &[&channel.name(), &payload])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.heard.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_from_one_node_is_heard_by_another() {
        let Some(admin) = super::super::testing::test_url() else {
            return;
        };
        let url = super::super::testing::fresh_database(&admin).await.expect("db");
        let a = PgTransport::start(&url, super::super::pool(&url).expect("pool")).expect("a");
        let b = PgTransport::start(&url, super::super::pool(&url).expect("pool")).expect("b");
        let mut heard = b.subscribe();
        let deadline = std::time::Duration::from_secs(20);
        // b's LISTEN is up once it says Resync.
        let first = tokio::time::timeout(deadline, heard.recv())
            .await
            .expect("resync in time");
        assert_eq!(first.expect("recv"), Heard::Resync);
        a.send(Channel::Awareness, vec!["hello".into()])
            .await
            .expect("send");
        let got = tokio::time::timeout(deadline, heard.recv())
            .await
            .expect("message in time");
        assert_eq!(
            got.expect("recv"),
            Heard::Message {
                channel: Channel::Awareness,
                payload: "hello".into()
            }
        );
        assert!(a
            .send(Channel::Docs, vec!["x".repeat(MAX_PAYLOAD + 1)])
            .await
            .is_err());
    }
}
