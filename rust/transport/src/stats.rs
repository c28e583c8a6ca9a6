//! Counters of a node, shared between the swarm thread (writer) and callers (readers).
//!
//! Gossipsub drops messages that fail strict validation (bad signature, author not matching
//! the signing key, missing seqno) before the application sees them, and reports them only
//! through its Prometheus metrics, and only while peer scoring is active. So the node enables
//! scoring with neutral weights (`swarm::neutral_peer_score`) and reads the
//! `invalid_messages_per_topic` counter from the metrics registry when stats are asked for.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::registry::Registry;

/// Live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped_by_allow_list: AtomicU64,
    pub denied_connections: AtomicU64,
    pub rejected_by_validation: AtomicU64,
    pub invalid_signatures: AtomicU64,
    pub failed_incoming: AtomicU64,
    pub failed_dials: AtomicU64,
    pub publish_errors: AtomicU64,
    pub events_dropped: AtomicU64,
    pub refused_over_limit: AtomicU64,
    pub discovery_messages: AtomicU64,
    pub discovery_bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            messages_in: get(&self.messages_in),
            bytes_in: get(&self.bytes_in),
            messages_out: get(&self.messages_out),
            bytes_out: get(&self.bytes_out),
            dropped_by_allow_list: get(&self.dropped_by_allow_list),
            denied_connections: get(&self.denied_connections),
            rejected_by_validation: get(&self.rejected_by_validation)
                + get(&self.invalid_signatures),
            failed_incoming: get(&self.failed_incoming),
            failed_dials: get(&self.failed_dials),
            publish_errors: get(&self.publish_errors),
            events_dropped: get(&self.events_dropped),
            refused_over_limit: get(&self.refused_over_limit),
            discovery_messages: get(&self.discovery_messages),
            discovery_bytes: get(&self.discovery_bytes),
        }
    }
}

/// A snapshot of a node's counters. Messages count application payloads (gossip messages
/// delivered or published, requests and responses); bytes count their payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gossip messages and requests/responses received.
    pub messages_in: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// Gossip messages published and requests/responses sent.
    pub messages_out: u64,
    /// Their payload bytes.
    pub bytes_out: u64,
    /// Gossip messages dropped because their author is outside the allow-list.
    pub dropped_by_allow_list: u64,
    /// Connections refused because the remote peer is outside the allow-list.
    pub denied_connections: u64,
    /// Gossip messages rejected by validation (bad or missing signature, no author).
    pub rejected_by_validation: u64,
    /// Incoming connections that failed before being established (e.g. another swarm key).
    pub failed_incoming: u64,
    /// Dials that failed (unreachable, handshake failure, other swarm key, denied).
    pub failed_dials: u64,
    /// Publishes that gossipsub refused for a reason other than "no peers yet".
    pub publish_errors: u64,
    /// Events dropped because the application did not drain the queue.
    pub events_dropped: u64,
    /// Incoming connections refused by the connection limit (compute nodes).
    pub refused_over_limit: u64,
    /// Hellos sent and received (requests and replies; `discovery.rs`).
    pub discovery_messages: u64,
    /// Their bytes.
    pub discovery_bytes: u64,
}

impl Stats {
    /// `(name, value)` pairs, in a fixed order.
    pub fn fields(&self) -> [(&'static str, u64); 14] {
        [
            ("messages_in", self.messages_in),
            ("bytes_in", self.bytes_in),
            ("messages_out", self.messages_out),
            ("bytes_out", self.bytes_out),
            ("dropped_by_allow_list", self.dropped_by_allow_list),
            ("denied_connections", self.denied_connections),
            ("rejected_by_validation", self.rejected_by_validation),
            ("failed_incoming", self.failed_incoming),
            ("failed_dials", self.failed_dials),
            ("publish_errors", self.publish_errors),
            ("events_dropped", self.events_dropped),
            ("refused_over_limit", self.refused_over_limit),
            ("discovery_messages", self.discovery_messages),
            ("discovery_bytes", self.discovery_bytes),
        ]
    }
}

/// Metric-name prefix of gossipsub inside the registry.
pub(crate) const GOSSIPSUB_PREFIX: &str = "gossipsub";

/// Sum of gossipsub's invalid-message counter over all topics.
pub(crate) fn invalid_messages(registry: &Registry) -> u64 {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return 0;
    }
    let name = format!("{GOSSIPSUB_PREFIX}_invalid_messages_per_topic_total");
    text.lines()
        .filter(|line| line.starts_with(&name))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
