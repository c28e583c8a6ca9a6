//! What a [`crate::Node`] is started with.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::error::TransportError;

/// Default largest gossip or request/response payload (4 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Default bound on the connections a compute node accepts (see [`Config::max_peers`]).
pub const DEFAULT_MAX_PEERS: u32 = 32;

/// What a node is to the rest of the network; decides whom it dials (see `discovery.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An orchestrator (or a hybrid node): compute nodes connect to it; it accepts every
    /// connection and dials only the other requesters.
    Requester,
    /// A compute node: dials the requesters it knows and accepts a bounded number of
    /// connections from anyone else.
    Compute,
}

/// Everything a node needs; build one with [`Config::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node identity (see [`crate::load_or_create_keypair`]).
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and to redial while disconnected; each ends in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Requester or compute (see [`Role`]).
    pub role: Role,
    /// A compute node accepts at most this many incoming connections from peers that are not
    /// requesters it knows (its own dials to requesters are never limited); requesters accept
    /// every connection.
    pub max_peers: u32,
    /// Pre-shared key of a private network (Kubo `swarm.key`); `None` = open network.
    pub psk: Option<[u8; 32]>,
    /// If set, only these peers may connect, and only their gossip is accepted.
    pub allow_list: Option<HashSet<PeerId>>,
    /// Largest payload of a gossip message, request or response, in bytes.
    pub max_message_size: usize,
    /// Gossipsub heartbeat (mesh maintenance, gossip emission).
    pub gossip_heartbeat: Duration,
    /// How often a node says hello again to the requesters it is connected to (its role, its
    /// addresses and the requesters it knows, answered in kind): the roster refresh.
    pub announce_interval: Duration,
    /// First delay before redialing a lost requester or bootstrap peer; it doubles on every
    /// failed dial up to `redial_max`.
    pub redial_min: Duration,
    /// Longest delay between two dials of a lost requester (while it has been gone for less
    /// than `roster_ttl`; afterwards a learned requester is forgotten, a bootstrap peer is
    /// dialed every `announce_interval`).
    pub redial_max: Duration,
    /// A learned requester that has been neither connected nor reported by a peer for this
    /// long is forgotten.
    pub roster_ttl: Duration,
    /// Connections without any open stream are closed after this long.
    pub idle_timeout: Duration,
    /// Ping interval; a failed ping closes the connection (dead peer detection).
    pub ping_interval: Duration,
    /// Bound on the connection handshake (PSK nonce, Noise, yamux).
    pub handshake_timeout: Duration,
    /// Upper bound on a request's timeout (the per-request timeout is capped to it).
    pub max_request_timeout: Duration,
    /// Events buffered for the application before further ones are dropped (and counted).
    pub event_queue: usize,
    /// Sent in identify as the agent version.
    pub agent_version: String,
}

impl Config {
    /// A config with defaults: no listen address, no peers, open network, no allow-list.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            role: Role::Compute,
            max_peers: DEFAULT_MAX_PEERS,
            psk: None,
            allow_list: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            gossip_heartbeat: Duration::from_secs(1),
            announce_interval: Duration::from_secs(60),
            redial_min: Duration::from_millis(100),
            redial_max: Duration::from_secs(1),
            roster_ttl: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(3600),
            ping_interval: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_request_timeout: Duration::from_secs(300),
            event_queue: 65_536,
            agent_version: format!("bacalhau-py/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The local peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    pub(crate) fn validate(&self) -> Result<(), TransportError> {
        let bad = |m: String| Err(TransportError::Config(m));
        if self.max_message_size == 0 || self.max_message_size > u32::MAX as usize {
            return bad(format!(
                "max_message_size {} is out of range",
                self.max_message_size
            ));
        }
        for (name, d) in [
            ("gossip_heartbeat", self.gossip_heartbeat),
            ("announce_interval", self.announce_interval),
            ("redial_min", self.redial_min),
            ("redial_max", self.redial_max),
            ("roster_ttl", self.roster_ttl),
            ("idle_timeout", self.idle_timeout),
            ("ping_interval", self.ping_interval),
            ("handshake_timeout", self.handshake_timeout),
            ("max_request_timeout", self.max_request_timeout),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.redial_min > self.redial_max {
            return bad("redial_min must not exceed redial_max".into());
        }
        if self.event_queue == 0 {
            return bad("event_queue must be positive".into());
        }
        for addr in &self.bootstrap {
            bootstrap_peer_id(addr)?;
        }
        Ok(())
    }
}

/// The peer id at the end of a bootstrap address (`.../p2p/<id>`).
pub fn bootstrap_peer_id(addr: &Multiaddr) -> Result<PeerId, TransportError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(TransportError::Config(format!(
            "peer address {addr} must end with /p2p/<peer id>"
        ))),
    }
}

/// Parses a multiaddr string, naming it in the error.
pub fn parse_multiaddr(text: &str) -> Result<Multiaddr, TransportError> {
    text.parse()
        .map_err(|e| TransportError::Config(format!("invalid multiaddr {text:?}: {e}")))
}

/// Parses a peer id string.
pub fn parse_peer_id(text: &str) -> Result<PeerId, TransportError> {
    text.parse()
        .map_err(|_| TransportError::PeerId(text.to_string()))
}
