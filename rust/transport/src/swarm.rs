//! The swarm thread: one single-threaded tokio runtime driving one libp2p swarm.
//!
//! Stack: TCP → (optional) pnet with the swarm key → Noise (authenticated encryption with the
//! node's ed25519 key) → yamux. Behaviours: an optional allow-list (connections from other
//! peers are denied right after the Noise handshake, when the remote peer id is known),
//! gossipsub, request/response on `/bacalhau/rpc/1`, identify and ping.
//!
//! Gossipsub: every message is signed by its author (`MessageAuthenticity::Signed`) and
//! checked on receipt (`ValidationMode::Strict`): a message without a valid signature of the
//! key matching its `source` never reaches the application. The application layer then
//! validates too (`validate_messages`): messages whose author is outside the allow-list are
//! dropped (not forwarded) and counted. Message id = SHA-256 over author, sequence number,
//! topic and data (each length-prefixed): distinct publishes of the same bytes are distinct
//! messages (heartbeats may repeat byte-for-byte), while a message arriving over several
//! paths is deduplicated. Control messages stay small (`MAX_IHAVE_IDS`) and large ones are
//! accepted (`MAX_CONTROL_RECEIVE`): gossipsub answers an oversized control message by
//! silently dropping the stream it came on, which cuts one direction of gossip for good.
//!
//! Discovery: a node dials its bootstrap peers and keeps redialing them while disconnected.
//! Every node also announces its own listen addresses on the internal gossip topic
//! `DISCOVERY_TOPIC` (signed, so an announcement can only speak for its author) when a peer
//! joins that topic (at most once per `ANNOUNCE_MIN_GAP`) and every `announce_interval`;
//! receivers dial announced peers they are not connected to. Gossip relays announcements, so
//! a node that only knows one bootstrap peer learns every other node and the network becomes
//! a full mesh: simple and fast for the tens of nodes this project runs; a much larger
//! network would want Kademlia and a connection cap instead. Identify's listen addresses are recorded as well, so requests can
//! reach a peer whose connection dropped.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::core::transport::Boxed;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, identify, noise, ping, pnet, tcp, yamux, Multiaddr, PeerId, Swarm, Transport,
};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, MissedTickBehavior};

use crate::codec::{RpcCodec, RpcRequest, RpcResponse, RPC_PROTOCOL};
use crate::config::{bootstrap_peer_id, Config};
use crate::error::TransportError;
use crate::node::{lock, Command, Event, Shared};
use crate::stats::{self, Counters, GOSSIPSUB_PREFIX};

/// Internal gossip topic on which nodes announce their listen addresses.
pub const DISCOVERY_TOPIC: &str = "bacalhau/peer-addrs/1";

/// Room for the gossipsub envelope (author, seqno, signature, key, topic) around the payload.
const GOSSIP_ENVELOPE: usize = 4096;
/// At most this many addresses are taken from one announcement.
const MAX_ANNOUNCED_ADDRS: usize = 16;
/// Announcements triggered by new peers are batched over this delay.
const ANNOUNCE_DEBOUNCE: Duration = Duration::from_millis(100);
/// ...and at most one is triggered per this gap: while a network forms every node sees a new
/// subscriber every few milliseconds, and one announcement each time (relayed to every node)
/// made the discovery traffic, and so gossip's IHAVE lists, grow with the square of the
/// nodes. The periodic announcement (`announce_interval`) is not limited.
const ANNOUNCE_MIN_GAP: Duration = Duration::from_secs(1);
/// Most message ids in one IHAVE (or IWANT) control message this node sends. Gossipsub
/// refuses an RPC whose control part exceeds the receiver's `max_control_message_size` (16 KiB
/// by default) by dropping the whole inbound stream *silently*: the sender keeps writing into
/// a stream nobody reads, so every later message to that peer is lost while the connection
/// (and ping) stays up. Upstream's default cap (5000 ids, ~170 KiB) overshoots that limit, and
/// a forming network easily has a thousand discovery messages in the gossip window. 256 ids
/// of 34 bytes (32-byte SHA-256 id + framing) keep an IHAVE under 9 KiB.
const MAX_IHAVE_IDS: usize = 256;
// 32-byte ids with 2 bytes of framing each, plus the topic, under gossipsub's default 16 KiB:
// peers with default settings accept what this node sends.
const _: () = assert!(MAX_IHAVE_IDS * 34 + 1024 <= 16 * 1024);
/// Control bytes accepted in one inbound RPC: room for other implementations' default IHAVE
/// (5000 ids of up to ~50 bytes), so no peer can wedge a stream that way either.
const MAX_CONTROL_RECEIVE: usize = 256 * 1024;
/// Identify protocol version string (not the identify protocol id, which stays standard).
const IDENTIFY_VERSION: &str = "/bacalhau/1.0.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    gossipsub: gossipsub::Behaviour,
    rpc: request_response::Behaviour<RpcCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Entry point of the swarm thread. Reports start-up success or failure on `ready`.
pub(crate) fn run(
    config: Config,
    commands: UnboundedReceiver<Command>,
    events: SyncSender<Event>,
    shared: Arc<Shared>,
    ready: SyncSender<Result<(), TransportError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(TransportError::Start(format!("tokio runtime: {e}"))));
            return;
        }
    };
    runtime.block_on(async move {
        let mut state = match Loop::new(&config, events, shared) {
            Ok(state) => state,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if let Err(e) = state.listen(&config.listen) {
            let _ = ready.send(Err(e));
            return;
        }
        state.ready = Some(ready);
        state.check_ready();
        state.dial_bootstrap();
        state.run(commands).await;
    });
}

fn build_transport(
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
fn gossip_config(config: &Config) -> Result<gossipsub::Config, TransportError> {
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

fn build_behaviour(config: &Config, registry: &mut Registry) -> Result<Behaviour, TransportError> {
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
    gossip
        .subscribe(&IdentTopic::new(DISCOVERY_TOPIC))
        .map_err(|e| start("gossipsub subscribe", e.to_string()))?;

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
    Ok(Behaviour {
        allow,
        gossipsub: gossip,
        rpc,
        identify,
        ping,
    })
}

struct PendingRequest {
    id: u64,
    peer: PeerId,
    protocol: String,
    timeout: Duration,
    deadline: Instant,
}

struct KnownPeer {
    addrs: Vec<Multiaddr>,
    seen: Instant,
}

struct Loop {
    swarm: Swarm<Behaviour>,
    registry: Registry,
    events: SyncSender<Event>,
    shared: Arc<Shared>,
    local: PeerId,
    allow_list: Option<HashSet<PeerId>>,
    topics: HashSet<String>,
    bootstrap: Vec<(PeerId, Multiaddr)>,
    known: HashMap<PeerId, KnownPeer>,
    outbound: HashMap<OutboundRequestId, PendingRequest>,
    inbound: HashMap<u64, (InboundRequestId, ResponseChannel<RpcResponse>)>,
    next_inbound: u64,
    announce_interval: Duration,
    announce_at: Option<Instant>,
    /// When the last announcement went out (for `ANNOUNCE_MIN_GAP`).
    announced_at: Option<Instant>,
    pending_listeners: HashSet<libp2p::core::transport::ListenerId>,
    ready: Option<SyncSender<Result<(), TransportError>>>,
}

fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// libp2p-tcp listens with `SO_REUSEPORT`, so a second node on a busy port would start and
/// silently share its connections with the first. Binding a plain socket first (no
/// `SO_REUSEPORT`) turns that into a clear "address in use" error at start.
fn ensure_port_free(addr: &Multiaddr) -> Result<(), TransportError> {
    let mut ip = None;
    let mut port = None;
    for proto in addr.iter() {
        match proto {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|e| TransportError::Start(format!("cannot listen on {addr}: {e}"))),
        _ => Ok(()),
    }
}

fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

impl Loop {
    fn new(
        config: &Config,
        events: SyncSender<Event>,
        shared: Arc<Shared>,
    ) -> Result<Self, TransportError> {
        let mut registry = Registry::default();
        let behaviour = build_behaviour(config, &mut registry)?;
        let transport = build_transport(&config.keypair, config.psk, config.handshake_timeout)?;
        let local = config.peer_id();
        let swarm = Swarm::new(
            transport,
            behaviour,
            local,
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(config.idle_timeout),
        );
        let bootstrap = config
            .bootstrap
            .iter()
            .map(|addr| Ok((bootstrap_peer_id(addr)?, without_p2p(addr))))
            .collect::<Result<Vec<_>, TransportError>>()?;
        Ok(Loop {
            swarm,
            registry,
            events,
            shared,
            local,
            allow_list: config.allow_list.clone(),
            topics: HashSet::new(),
            bootstrap,
            known: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            next_inbound: 1,
            announce_interval: config.announce_interval,
            announce_at: None,
            announced_at: None,
            pending_listeners: HashSet::new(),
            ready: None,
        })
    }

    fn listen(&mut self, addrs: &[Multiaddr]) -> Result<(), TransportError> {
        for addr in addrs {
            ensure_port_free(addr)?;
            let id = self
                .swarm
                .listen_on(addr.clone())
                .map_err(|e| TransportError::Start(format!("cannot listen on {addr}: {e}")))?;
            self.pending_listeners.insert(id);
        }
        Ok(())
    }

    fn check_ready(&mut self) {
        if self.pending_listeners.is_empty() {
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Ok(()));
            }
        }
    }

    fn fail_start(&mut self, error: TransportError) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(error));
        }
    }

    async fn run(&mut self, mut commands: UnboundedReceiver<Command>) {
        let mut maintenance = tokio::time::interval(self.announce_interval);
        maintenance.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let far = Duration::from_secs(86_400);
        loop {
            let deadline = self.outbound.values().map(|p| p.deadline).min();
            let announce_at = self.announce_at;
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.command(command),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = maintenance.tick() => self.maintain(),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + far)),
                    if deadline.is_some() => self.expire_requests(),
                _ = tokio::time::sleep_until(announce_at.unwrap_or_else(|| Instant::now() + far)),
                    if announce_at.is_some() => {
                    self.announce_at = None;
                    self.announce();
                }
            }
            if self.ready.is_some() && self.pending_listeners.is_empty() {
                self.check_ready();
            }
        }
        self.fail_start(TransportError::Closed);
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn emit(&self, event: Event) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => Counters::add(&self.counters().events_dropped, 1),
            // The handle is gone; the loop ends with its Shutdown command.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn allowed(&self, peer: &PeerId) -> bool {
        self.allow_list
            .as_ref()
            .is_none_or(|allowed| allowed.contains(peer))
    }

    fn is_connected(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }

    fn dial_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == self.local || !self.allowed(&peer) || self.is_connected(&peer) {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        // Refusals (already dialing, no address) need no handling: the next round retries.
        let _ = self.swarm.dial(opts);
    }

    fn dial_bootstrap(&mut self) {
        for (peer, addr) in self.bootstrap.clone() {
            self.swarm.add_peer_address(peer, addr.clone());
            self.dial_peer(peer, vec![addr]);
        }
    }

    /// Periodic: re-announce, redial bootstrap peers and recently announced peers.
    fn maintain(&mut self) {
        self.announce();
        self.dial_bootstrap();
        let fresh = self.announce_interval * 3;
        self.known.retain(|_, known| known.seen.elapsed() < fresh);
        let redial: Vec<_> = self
            .known
            .iter()
            .filter(|(peer, _)| !self.swarm.is_connected(peer))
            .map(|(peer, known)| (*peer, known.addrs.clone()))
            .collect();
        for (peer, addrs) in redial {
            self.dial_peer(peer, addrs);
        }
    }

    fn announce(&mut self) {
        let addrs: Vec<String> = lock(&self.shared.listen_addrs)
            .iter()
            .filter(|a| is_dialable(a))
            .map(ToString::to_string)
            .collect();
        if addrs.is_empty() {
            return;
        }
        self.announced_at = Some(Instant::now());
        // "No peers yet" is expected here; discovery retries on the next round.
        let _ = self.swarm.behaviour_mut().gossipsub.publish(
            IdentTopic::new(DISCOVERY_TOPIC),
            addrs.join("\n").into_bytes(),
        );
    }

    fn learn(&mut self, peer: PeerId, data: &[u8]) {
        if peer == self.local {
            return;
        }
        let addrs: Vec<Multiaddr> = String::from_utf8_lossy(data)
            .lines()
            .filter_map(|line| line.trim().parse::<Multiaddr>().ok())
            .map(|a| without_p2p(&a))
            .filter(is_dialable)
            .take(MAX_ANNOUNCED_ADDRS)
            .collect();
        if addrs.is_empty() {
            return;
        }
        for addr in &addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        self.known.insert(
            peer,
            KnownPeer {
                addrs: addrs.clone(),
                seen: Instant::now(),
            },
        );
        self.dial_peer(peer, addrs);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Subscribe(topic) => {
                // A topic name is always a valid IdentTopic; the only failure is a
                // subscription filter, which this node does not use.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&IdentTopic::new(&topic));
                self.topics.insert(topic);
            }
            Command::Unsubscribe(topic) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .unsubscribe(&IdentTopic::new(&topic));
                self.topics.remove(&topic);
            }
            Command::Publish { topic, data } => {
                let len = data.len() as u64;
                match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(topic), data)
                {
                    Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        Counters::add(&self.counters().messages_out, 1);
                        Counters::add(&self.counters().bytes_out, len);
                    }
                    Err(_) => Counters::add(&self.counters().publish_errors, 1),
                }
            }
            Command::Request {
                id,
                peer,
                protocol,
                data,
                timeout,
            } => self.send_request(id, peer, protocol, data, timeout),
            Command::Respond { id, result } => {
                if let Some((_, channel)) = self.inbound.remove(&id) {
                    let len = match &result {
                        Ok(data) => data.len(),
                        Err(msg) => msg.len(),
                    } as u64;
                    // Fails only if the asker went away; nothing to tell it then.
                    if self
                        .swarm
                        .behaviour_mut()
                        .rpc
                        .send_response(channel, result)
                        .is_ok()
                    {
                        Counters::add(&self.counters().messages_out, 1);
                        Counters::add(&self.counters().bytes_out, len);
                    }
                }
            }
            Command::Dial(addr) => {
                let _ = self.swarm.dial(addr);
            }
            Command::RefreshStats(done) => {
                let invalid = stats::invalid_messages(&self.registry);
                self.counters()
                    .invalid_signatures
                    .store(invalid, std::sync::atomic::Ordering::Relaxed);
                let _ = done.try_send(());
            }
            Command::Shutdown => {}
        }
    }

    fn send_request(
        &mut self,
        id: u64,
        peer: PeerId,
        protocol: String,
        data: Vec<u8>,
        timeout: Duration,
    ) {
        let refuse = |why: String| Event::Response {
            request_id: id,
            result: Err(format!("request {protocol} to peer {peer} failed: {why}")),
        };
        if peer == self.local {
            self.emit(refuse("a node cannot send a request to itself".into()));
            return;
        }
        if !self.allowed(&peer) {
            self.emit(refuse("the peer is not in the allow-list".into()));
            return;
        }
        let addrs = self
            .known
            .get(&peer)
            .map(|k| k.addrs.clone())
            .unwrap_or_default();
        let len = data.len() as u64;
        let request = RpcRequest {
            protocol: protocol.clone(),
            data,
        };
        let rid = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_request_with_addresses(&peer, request, addrs);
        Counters::add(&self.counters().messages_out, 1);
        Counters::add(&self.counters().bytes_out, len);
        let deadline = Instant::now() + timeout;
        self.outbound.insert(
            rid,
            PendingRequest {
                id,
                peer,
                protocol,
                timeout,
                deadline,
            },
        );
    }

    fn expire_requests(&mut self) {
        let now = Instant::now();
        let expired: Vec<OutboundRequestId> = self
            .outbound
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(rid, _)| *rid)
            .collect();
        for rid in expired {
            if let Some(p) = self.outbound.remove(&rid) {
                self.emit(Event::Response {
                    request_id: p.id,
                    result: Err(format!(
                        "peer {} did not answer {} within {:.3}s",
                        p.peer,
                        p.protocol,
                        p.timeout.as_secs_f64()
                    )),
                });
            }
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                lock(&self.shared.listen_addrs).push(address.clone());
                self.pending_listeners.remove(&listener_id);
                self.emit(Event::ListenAddr(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                lock(&self.shared.listen_addrs).retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if self.pending_listeners.remove(&listener_id) => {
                let why = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                self.fail_start(TransportError::Start(format!("listener failed: {why}")));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                lock(&self.shared.connected).insert(peer_id);
                self.emit(Event::PeerConnected(peer_id));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                lock(&self.shared.connected).remove(&peer_id);
                self.emit(Event::PeerDisconnected(peer_id));
            }
            SwarmEvent::IncomingConnectionError { error, .. } => match error {
                ListenError::Denied { cause }
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some() =>
                {
                    Counters::add(&self.counters().denied_connections, 1)
                }
                _ => Counters::add(&self.counters().failed_incoming, 1),
            },
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                if let DialError::Denied { cause } = error {
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some()
                    {
                        Counters::add(&self.counters().denied_connections, 1);
                    }
                }
                Counters::add(&self.counters().failed_dials, 1);
            }
            _ => {}
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.gossip_event(event),
            BehaviourEvent::Rpc(event) => self.rpc_event(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs.into_iter().filter(is_dialable) {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            // A peer without ping (some other libp2p implementations) is fine; one that stops
            // answering is treated as gone.
            BehaviourEvent::Ping(ping::Event {
                result: Err(ping::Failure::Timeout | ping::Failure::Other { .. }),
                connection,
                ..
            }) => self.close_connection(connection),
            _ => {}
        }
    }

    fn close_connection(&mut self, connection: ConnectionId) {
        self.swarm.close_connection(connection);
    }

    fn gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let acceptance = match message.source {
                    // Strict validation already refuses these; kept as a second line.
                    None => {
                        Counters::add(&self.counters().rejected_by_validation, 1);
                        MessageAcceptance::Reject
                    }
                    Some(author) if !self.allowed(&author) => {
                        Counters::add(&self.counters().dropped_by_allow_list, 1);
                        // Ignore, not Reject: the forwarder may be honest.
                        MessageAcceptance::Ignore
                    }
                    Some(author) => {
                        let topic = message.topic.as_str();
                        if topic == DISCOVERY_TOPIC {
                            self.learn(author, &message.data);
                        } else if self.topics.contains(topic) {
                            Counters::add(&self.counters().messages_in, 1);
                            Counters::add(&self.counters().bytes_in, message.data.len() as u64);
                            self.emit(Event::Gossip {
                                topic: topic.to_string(),
                                source: author,
                                data: message.data,
                            });
                        }
                        MessageAcceptance::Accept
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            gossipsub::Event::Subscribed { topic, .. }
                if topic.as_str() == DISCOVERY_TOPIC && self.announce_at.is_none() =>
            {
                let soon = Instant::now() + ANNOUNCE_DEBOUNCE;
                let allowed = self.announced_at.map(|t| t + ANNOUNCE_MIN_GAP);
                self.announce_at = Some(allowed.map_or(soon, |a| a.max(soon)));
            }
            _ => {}
        }
    }

    fn rpc_event(&mut self, event: request_response::Event<RpcRequest, RpcResponse>) {
        use request_response::{Event as E, Message as M};
        match event {
            E::Message {
                peer,
                message:
                    M::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => {
                let id = self.next_inbound;
                self.next_inbound += 1;
                Counters::add(&self.counters().messages_in, 1);
                Counters::add(&self.counters().bytes_in, request.data.len() as u64);
                self.inbound.insert(id, (request_id, channel));
                self.emit(Event::InboundRequest {
                    id,
                    peer,
                    protocol: request.protocol,
                    data: request.data,
                });
            }
            E::Message {
                peer,
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(p) = self.outbound.remove(&request_id) {
                    let result = match response {
                        Ok(data) => {
                            Counters::add(&self.counters().messages_in, 1);
                            Counters::add(&self.counters().bytes_in, data.len() as u64);
                            Ok(data)
                        }
                        Err(msg) => Err(format!(
                            "peer {peer} failed to handle {}: {msg}",
                            p.protocol
                        )),
                    };
                    self.emit(Event::Response {
                        request_id: p.id,
                        result,
                    });
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(p) = self.outbound.remove(&request_id) {
                    let why = match error {
                        request_response::OutboundFailure::DialFailure => {
                            "the peer is not reachable (dial failed)".to_string()
                        }
                        request_response::OutboundFailure::UnsupportedProtocols => {
                            "the peer does not speak /bacalhau/rpc/1".to_string()
                        }
                        other => other.to_string(),
                    };
                    self.emit(Event::Response {
                        request_id: p.id,
                        result: Err(format!(
                            "request {} to peer {peer} failed: {why}",
                            p.protocol
                        )),
                    });
                }
            }
            E::InboundFailure { request_id, .. } => {
                self.inbound.retain(|_, (rid, _)| *rid != request_id);
            }
            E::ResponseSent { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Node;

    const TOPIC: &str = "test/ihave/1";
    const DEADLINE: Duration = Duration::from_secs(20);
    /// Messages published at once: 600 ids of 34 bytes make an IHAVE of ~20 KiB.
    const BURST: u32 = 600;

    fn receiver() -> Node {
        let mut config = Config::new(Keypair::generate_ed25519());
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        // Slow heartbeats: a receiver asks for few of the burst's messages (IWANT) per round.
        config.gossip_heartbeat = Duration::from_secs(10);
        // No periodic announcement within the test: only one triggered by the sender's
        // subscription (which must arrive over the sender's gossip stream) counts.
        config.announce_interval = Duration::from_secs(600);
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
    /// sink) and no flood publishing, so the receivers get the burst only as IHAVE. Afterwards the sender joins
    /// the discovery topic: a receiver that still reads the sender's stream learns it and
    /// announces its addresses to it (the other direction, which the wedge does not touch).
    #[test]
    fn a_burst_of_messages_does_not_wedge_gossip_to_a_peer() {
        let sink = receiver();
        let receivers = [receiver(), receiver()];
        let expected: HashSet<PeerId> = receivers.iter().map(Node::peer_id).collect();
        let keypair = Keypair::generate_ed25519();
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
                .subscribe(&IdentTopic::new(DISCOVERY_TOPIC))
                .unwrap();
            let mut announced = HashSet::new();
            while !expected.is_subset(&announced) {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) =
                            event
                        {
                            if message.topic == IdentTopic::new(DISCOVERY_TOPIC).hash() {
                                announced.extend(message.source);
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => break,
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
