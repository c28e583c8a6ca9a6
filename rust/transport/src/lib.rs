//! libp2p transport of bacalhau-py: the network under `bacalhau.transport.libp2p`.
//!
//! A [`Node`] runs a libp2p swarm (TCP, optional pnet private network, Noise, yamux;
//! gossipsub, request/response, identify, ping, optional allow-list) on its own background
//! thread and tokio runtime. The application talks to it with plain calls ([`Node::publish`],
//! [`Node::request`], [`Node::respond`], ...) and drains [`Event`]s in batches with
//! [`Node::next_events`]. See `swarm.rs` for the protocol choices (message signing and ids,
//! discovery) and `node.rs` for threading and fork behaviour.
//!
//! Pure Rust, no Python: the PyO3 glue lives in `rust/native/src/transport.rs`.

mod codec;
mod config;
mod error;
mod identity;
mod node;
mod stats;
mod swarm;
mod swarmkey;

pub use codec::{RpcCodec, RpcRequest, RpcResponse, MAX_PROTOCOL_NAME, RPC_PROTOCOL};
pub use config::{
    bootstrap_peer_id, parse_multiaddr, parse_peer_id, Config, DEFAULT_MAX_MESSAGE_SIZE,
};
pub use error::TransportError;
pub use identity::load_or_create_keypair;
pub use node::{Event, Node};
pub use stats::Stats;
pub use swarm::DISCOVERY_TOPIC;
pub use swarmkey::{format_swarm_key, generate_swarm_key, parse_swarm_key};

pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
