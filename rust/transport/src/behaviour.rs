//! What a node's swarm is made of: the transport stack and the behaviours.
//!
//! Stack: TCP → (optional) pnet with the swarm key → Noise (authenticated encryption with the
//! node's ed25519 key) → yamux. Behaviours: an optional allow-list (connections from other
//! peers are denied right after the Noise handshake, when the remote peer id is known),
//! connection limits (compute nodes only: a bounded number of incoming connections, the
//! requesters they know exempt), gossipsub, request/response on `/bacalhau/rpc/1`, identify
//! and ping.
//!
//! Gossipsub: every message is signed by its author (`MessageAuthenticity::Signed`) and
//! checked on receipt (`ValidationMode::Strict`): a message without a valid signature of the
//! key matching its `source` never reaches the application. The application layer then
//! validates too (`validate_messages`): messages whose author is outside the allow-list are
//! dropped (not forwarded) and counted. Message id = SHA-256 over author, sequence number,
//! topic and data (each length-prefixed): distinct publishes of the same bytes are distinct
//! messages, while a message arriving over several paths is deduplicated. Control messages
//! stay small (`MAX_IHAVE_IDS`) and large ones are accepted (`MAX_CONTROL_RECEIVE`): gossipsub
//! answers an oversized control message by silently dropping the stream it came on, which
//! cuts one direction of gossip for good. Membership does not ride on gossip any more (see
//! `discovery.rs`); the topics that remain carry a few messages per node per minute.

use std::time::Duration;

use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::core::transport::Boxed;
use libp2p::gossipsub::{self, MessageAuthenticity, MessageId};
use libp2p::identity::Keypair;
use libp2p::request_response;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, identify, noise, ping, pnet, tcp, yamux, PeerId, Transport};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use crate::codec::{RpcCodec, RPC_PROTOCOL};
use crate::config::{Config, Role};
use crate::error::TransportError;
use crate::stats::GOSSIPSUB_PREFIX;

/// Room for the gossipsub envelope (author, seqno, signature, key, topic) around the payload.
const GOSSIP_ENVELOPE: usize = 4096;
/// Most message ids in one IHAVE (or IWANT) control message this node sends. Gossipsub
/// refuses an RPC whose control part exceeds the receiver's `max_control_message_size` (16 KiB
/// by default) by dropping the whole inbound stream *silently*: the sender keeps writing into
/// a stream nobody reads, so every later message to that peer is lost while the connection
/// (and ping) stays up. Upstream's default cap (5000 ids, ~170 KiB) overshoots that limit.
/// 256 ids of 34 bytes (32-byte SHA-256 id + framing) keep an IHAVE under 9 KiB.
pub(crate) const MAX_IHAVE_IDS: usize = 256;
// 32-byte ids with 2 bytes of framing each, plus the topic, under gossipsub's default 16 KiB:
// peers with default settings accept what this node sends.
const _: () = assert!(MAX_IHAVE_IDS * 34 + 1024 <= 16 * 1024);
/// Control bytes accepted in one inbound RPC: room for other implementations' default IHAVE
/// (5000 ids of up to ~50 bytes), so no peer can wedge a stream that way either.
pub(crate) const MAX_CONTROL_RECEIVE: usize = 256 * 1024;
/// Identify protocol version string (not the identify protocol id, which stays standard).
const IDENTIFY_VERSION: &str = "/bacalhau/1.0.0";
/// Connections to one peer at most (a simultaneous dial from both ends makes two).
const MAX_PER_PEER: u32 = 2;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    pub(crate) limits: Toggle<connection_limits::Behaviour>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) rpc: request_response::Behaviour<RpcCodec>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

pub(crate) fn build_transport(
    keypair: &Keypair,
    psk: Option<[u8; 32]>,
    timeout: Duration,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, TransportError> {
    let noise =
        noise::Config::new(keypair).map_err(|e| TransportError::Start(format!("noise: {e}")))?;
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(match psk {
        Some(key) => {
            let psk = pnet::PnetConfig::new(pnet::PreSharedKey::new(key));
            tcp.and_then(move |socket, _| psk.handshake(socket))
                .upgrade(Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .timeout(timeout)
                .boxed()
        }
        None => tcp
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(timeout)
            .boxed(),
    })
}

/// Gossipsub message id: SHA-256 of author, seqno, topic and data (see the module doc).
fn message_id(message: &gossipsub::Message) -> MessageId {
    let mut hash = Sha256::new();
    let author = message.source.map(|p| p.to_bytes()).unwrap_or_default();
    hash.update((author.len() as u64).to_be_bytes());
    hash.update(&author);
    hash.update(message.sequence_number.unwrap_or(0).to_be_bytes());
    let topic = message.topic.as_str().as_bytes();
    hash.update((topic.len() as u64).to_be_bytes());
    hash.update(topic);
    hash.update(&message.data);
    MessageId::new(&hash.finalize())
}

/// Peer scoring with every penalty at zero: it changes no routing decision, but gossipsub
/// only reports invalid messages (to its metrics) while scoring is on. See `stats.rs`.
fn neutral_peer_score() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        slow_peer_weight: 0.0,
        ..Default::default()
    }
}

/// The gossipsub configuration of a node (see the module doc and `MAX_IHAVE_IDS`).
pub(crate) fn gossip_config(config: &Config) -> Result<gossipsub::Config, TransportError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(config.max_message_size + GOSSIP_ENVELOPE)
        .heartbeat_interval(config.gossip_heartbeat)
        .max_control_messages_sent(MAX_IHAVE_IDS)
        .max_control_message_size(MAX_CONTROL_RECEIVE)
        .build()
        .map_err(|e| TransportError::Start(format!("gossipsub config: {e}")))
}

pub(crate) fn build_behaviour(
    config: &Config,
    registry: &mut Registry,
) -> Result<Behaviour, TransportError> {
    let start = |what: &str, e: String| TransportError::Start(format!("{what}: {e}"));
    let gossip_config = gossip_config(config)?;
    let mut gossip = gossipsub::Behaviour::new(
        MessageAuthenticity::Signed(config.keypair.clone()),
        gossip_config,
    )
    .map_err(|e| start("gossipsub", e.to_string()))?
    .with_metrics(
        registry.sub_registry_with_prefix(GOSSIPSUB_PREFIX),
        libp2p_gossipsub::MetricsConfig::default(),
    );
    gossip
        .with_peer_score(
            neutral_peer_score(),
            gossipsub::PeerScoreThresholds::default(),
        )
        .map_err(|e| start("gossipsub scoring", e))?;
    let rpc = request_response::Behaviour::with_codec(
        RpcCodec::new(config.max_message_size),
        [(RPC_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(config.max_request_timeout),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_VERSION.to_string(), config.keypair.public())
            .with_agent_version(config.agent_version.clone()),
    );
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(config.ping_interval)
            .with_timeout(config.ping_interval * 2),
    );
    let allow = Toggle::from(config.allow_list.as_ref().map(|peers| {
        let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
        for peer in peers {
            allow.allow_peer(*peer);
        }
        allow
    }));
    // Compute nodes accept a bounded number of connections (requesters they know are exempt:
    // `Behaviour::exempt`); requesters accept every compute node.
    let limits = Toggle::from((config.role == Role::Compute).then(|| {
        connection_limits::Behaviour::new(
            ConnectionLimits::default()
                .with_max_established_incoming(Some(config.max_peers))
                .with_max_established_per_peer(Some(MAX_PER_PEER)),
        )
    }));
    Ok(Behaviour {
        allow,
        limits,
        gossipsub: gossip,
        rpc,
        identify,
        ping,
    })
}

impl Behaviour {
    /// Exempts `peer` (a requester or bootstrap peer) from the connection limits.
    pub(crate) fn exempt(&mut self, peer: &PeerId) {
        if let Some(limits) = self.limits.as_mut() {
            limits.bypass_peer_id(peer);
        }
    }
}

/// The gossip settings against a raw gossipsub swarm and real nodes.
#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use futures::StreamExt;
    use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
    use libp2p::identity::Keypair;
    use libp2p::multiaddr::Protocol;
    use libp2p::{Multiaddr, PeerId, Swarm};
    use tokio::time::Instant;

    use super::{build_transport, gossip_config, MAX_IHAVE_IDS};
    use crate::config::Config;
    use crate::node::{Event, Node};

    const TOPIC: &str = "test/ihave/1";
    /// Joined by the sender after the burst; the receivers publish on it.
    const PROBE: &str = "test/probe/1";
    /// The receivers take their time on purpose (slow gossip heartbeats); on a loaded machine the
    /// subscription has been seen to take 20 s to get through.
    const DEADLINE: Duration = Duration::from_secs(60);
    /// Messages published at once: 600 ids of 34 bytes make an IHAVE of ~20 KiB.
    const BURST: u32 = 600;

    fn receiver() -> Node {
        let mut config = Config::new(Keypair::generate_ed25519());
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        // Slow heartbeats: a receiver asks for few of the burst's messages (IWANT) per round.
        config.gossip_heartbeat = Duration::from_secs(10);
        let node = Node::start(config).expect("node starts");
        node.subscribe(TOPIC).unwrap();
        node
    }

    /// Drives the swarm until `n` peers are known to subscribe to `topic` (false: deadline).
    async fn subscribed(
        swarm: &mut Swarm<gossipsub::Behaviour>,
        topic: &IdentTopic,
        n: usize,
        deadline: Instant,
    ) -> bool {
        let hash = topic.hash();
        while swarm
            .behaviour()
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
            < n
        {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
        true
    }

    fn addr(node: &Node) -> Multiaddr {
        let mut addr = node.listen_addrs()[0].clone();
        addr.push(Protocol::P2p(node.peer_id()));
        addr
    }

    /// Regression (false DISCONNECTED that never recovered): a node with many messages in its
    /// gossip window sent an IHAVE larger than gossipsub's default 16 KiB control limit; the
    /// receiver dropped the whole inbound stream without telling the sender, so everything the
    /// sender sent it later (heartbeats) vanished while the connection stayed up.
    ///
    /// The sender uses this node's gossip config with a fanout of one peer (a third node, the
    /// sink) and no flood publishing, so the receivers get the burst only as IHAVE. Afterwards
    /// the sender joins a probe topic: a receiver that still reads the sender's stream learns
    /// of the subscription, so what it publishes on the probe topic reaches the sender (the
    /// other direction, which the wedge does not touch).
    #[test]
    fn a_burst_of_messages_does_not_wedge_gossip_to_a_peer() {
        let sink = receiver();
        let receivers = [receiver(), receiver()];
        let expected: HashSet<PeerId> = receivers.iter().map(Node::peer_id).collect();
        let keypair = Keypair::generate_ed25519();
        let sender = keypair.public().to_peer_id();
        let mut config = Config::new(keypair.clone());
        config.gossip_heartbeat = Duration::from_millis(100);
        let gossip = gossipsub::ConfigBuilder::from(gossip_config(&config).unwrap())
            .flood_publish(false)
            .mesh_n(1)
            .mesh_n_low(1)
            .mesh_n_high(1)
            .mesh_outbound_min(0)
            .heartbeat_initial_delay(Duration::from_millis(100))
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let announced = runtime.block_on(async {
            let behaviour: gossipsub::Behaviour =
                gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), gossip)
                    .unwrap();
            let transport = build_transport(&keypair, None, Duration::from_secs(5)).unwrap();
            let mut swarm = Swarm::new(
                transport,
                behaviour,
                keypair.public().to_peer_id(),
                libp2p::swarm::Config::with_tokio_executor()
                    .with_idle_connection_timeout(Duration::from_secs(60)),
            );
            let deadline = Instant::now() + DEADLINE;
            let topic = IdentTopic::new(TOPIC);
            // The sink first: the fanout (one peer) is chosen at the first publish.
            swarm.dial(addr(&sink)).unwrap();
            if !subscribed(&mut swarm, &topic, 1, deadline).await {
                return HashSet::new();
            }
            swarm
                .behaviour_mut()
                .publish(topic.clone(), b"seed".to_vec())
                .unwrap();
            for r in &receivers {
                swarm.dial(addr(r)).unwrap();
            }
            if !subscribed(&mut swarm, &topic, 1 + receivers.len(), deadline).await {
                return HashSet::new();
            }
            for i in 0..BURST {
                swarm
                    .behaviour_mut()
                    .publish(topic.clone(), format!("burst-{i}").into_bytes())
                    .unwrap();
            }
            // Ten gossip heartbeats: the IHAVE goes out ahead of the subscription below
            // (which gossipsub would otherwise send first, as a priority message).
            let gossiped = Instant::now() + Duration::from_secs(1);
            loop {
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    _ = tokio::time::sleep_until(gossiped) => break,
                }
            }
            swarm
                .behaviour_mut()
                .subscribe(&IdentTopic::new(PROBE))
                .unwrap();
            // Each receiver reports the subscription as soon as it reads it.
            let mut announced = HashSet::new();
            while !expected.is_subset(&announced) && Instant::now() < deadline {
                for r in &receivers {
                    for event in r.next_events(64, Duration::ZERO).unwrap() {
                        if let Event::PeerSubscribed { peer, topic } = event {
                            if topic == PROBE && peer == sender {
                                announced.insert(r.peer_id());
                            }
                        }
                    }
                }
                let poll = Instant::now() + Duration::from_millis(20);
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    _ = tokio::time::sleep_until(poll) => {}
                }
            }
            announced
        });
        let expected: HashSet<PeerId> = receivers.iter().map(Node::peer_id).collect();
        assert_eq!(
            announced, expected,
            "every receiver still reads the sender's gossip"
        );
    }

    #[test]
    fn gossip_config_caps_what_it_sends_and_accepts_more() {
        let config = gossip_config(&Config::new(Keypair::generate_ed25519())).unwrap();
        assert_eq!(config.max_control_messages_sent(), MAX_IHAVE_IDS);
        assert!(config.max_control_message_size() >= 5000 * 50);
    }
}
