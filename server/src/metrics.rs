//! Prometheus metrics (prometheus-client): what an operator watches.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub rooms_loaded: Gauge,
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub updates_persisted: Counter,
    pub persist_transactions: Counter,
    pub persist_seconds: Histogram,
    pub compactions: Counter,
    pub rejected_messages: Counter,
    pub slow_disconnects: Counter,
    pub upgrades_refused: Counter,
    pub awareness_refused: Counter,
    pub sandbox_restarts: Counter,
    /// Doorbell rings (one per committed batch) sent to the other nodes.
    pub cluster_rings_sent: Counter,
    /// Rings not sent: the transport failed or the ringing queue was full.
    pub cluster_ring_failures: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("plenary");
        let m = Metrics {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            rooms_loaded: Gauge::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            updates_persisted: Counter::default(),
            persist_transactions: Counter::default(),
            persist_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            compactions: Counter::default(),
            rejected_messages: Counter::default(),
            slow_disconnects: Counter::default(),
            upgrades_refused: Counter::default(),
            awareness_refused: Counter::default(),
            sandbox_restarts: Counter::default(),
            cluster_rings_sent: Counter::default(),
            cluster_ring_failures: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", m.connections.clone());
        registry.register(
            "connections_opened",
            "WebSocket connections accepted",
            m.connections_total.clone(),
        );
        registry.register(
            "rooms_loaded",
            "Documents loaded in memory",
            m.rooms_loaded.clone(),
        );
        registry.register(
            "messages_in",
            "WebSocket messages received",
            m.messages_in.clone(),
        );
        registry.register("messages_out", "WebSocket messages sent", m.messages_out.clone());
        registry.register("bytes_in", "WebSocket payload bytes received", m.bytes_in.clone());
        registry.register("bytes_out", "WebSocket payload bytes sent", m.bytes_out.clone());
        registry.register(
            "updates_persisted",
            "Document updates made durable",
            m.updates_persisted.clone(),
        );
        registry.register(
            "persist_transactions",
            "Store transactions committing updates",
            m.persist_transactions.clone(),
        );
        registry.register(
            "persist_seconds",
            "Time to commit one batch of updates",
            m.persist_seconds.clone(),
        );
        registry.register(
            "compactions",
            "Document logs folded into a snapshot",
            m.compactions.clone(),
        );
        registry.register(
            "rejected_messages",
            "Messages refused: undecodable, oversized, or writes without permission",
            m.rejected_messages.clone(),
        );
        registry.register(
            "slow_disconnects",
            "Connections closed with 1013 for not keeping up",
            m.slow_disconnects.clone(),
        );
        registry.register(
            "upgrades_refused",
            "WebSocket upgrades refused (404/401/403/503)",
            m.upgrades_refused.clone(),
        );
        registry.register(
            "awareness_refused",
            "Awareness states refused for a per-room or per-token bound",
            m.awareness_refused.clone(),
        );
        registry.register(
            "sandbox_restarts",
            "Sandbox children killed (deadline) or dead (crash) and restarted",
            m.sandbox_restarts.clone(),
        );
        registry.register(
            "cluster_rings_sent",
            "Doorbell rings (one per committed batch) sent to the other nodes",
            m.cluster_rings_sent.clone(),
        );
        registry.register(
            "cluster_ring_failures",
            "Doorbell rings not sent (transport failed or queue full); receivers catch up by their head check",
            m.cluster_ring_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
