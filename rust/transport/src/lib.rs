//! libp2p transport of bacalhau-py: the network under `bacalhau.transport.libp2p`.
//!
//! A [`Node`] runs a libp2p swarm (TCP, optional pnet private network, Noise, yamux;
//! gossipsub, request/response, identify, ping, optional allow-list, connection limits) as a
//! task on the process's shared tokio runtime. The application talks to it with plain calls
//! ([`Node::publish`], [`Node::request`], [`Node::respond`], ...) and drains [`Event`]s in
//! batches from an [`EventHub`], which many nodes of one process may share. See
//! `behaviour.rs` for the protocol stack and gossip choices, `discovery.rs` and `roster.rs`
//! for who connects to whom (bounded connections, requester roster, redial), `swarm.rs` for
//! the loop and `node.rs` for the handle, threading and fork behaviour.
//!
//! Pure Rust, no Python: the PyO3 glue lives in `rust/native/src/transport.rs`.

mod behaviour;
mod codec;
mod config;
mod discovery;
mod error;
mod hub;
mod identity;
mod node;
mod requests;
pub mod roster;
mod runtime;
mod stats;
mod swarm;
mod swarmkey;

pub use codec::{RpcCodec, RpcRequest, RpcResponse, MAX_PROTOCOL_NAME, RPC_PROTOCOL};
pub use config::{
    bootstrap_peer_id, parse_multiaddr, parse_peer_id, Config, Role, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PEERS,
};
pub use error::TransportError;
pub use hub::{EventHub, DEFAULT_HUB_CAPACITY};
pub use identity::load_or_create_keypair;
pub use node::{Event, Node};
pub use stats::Stats;
pub use swarmkey::{format_swarm_key, generate_swarm_key, parse_swarm_key};

pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
