//! The swarm loop of one node: a task on the process's shared runtime (`runtime.rs`) driving
//! the node's libp2p swarm (`behaviour.rs`), taking commands from the handle and writing
//! events into the node's hub (`hub.rs`).
//!
//! Who connects to whom is in `discovery.rs` (hello, roster, redial); requests and their
//! deadlines are in `requests.rs`. This file holds the loop itself, the commands, and the
//! swarm and gossip events.

use std::collections::HashSet;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionId, DialError, ListenError, SwarmEvent};
use libp2p::{allow_block_list, identify, ping, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, MissedTickBehavior};

use crate::behaviour::{build_behaviour, build_transport, Behaviour, BehaviourEvent};
use crate::config::{bootstrap_peer_id, Config, Role};
use crate::error::TransportError;
use crate::hub::{EmitError, EventSink};
use crate::node::{lock, Command, Event, Shared};
use crate::requests::Requests;
use crate::roster::{is_dialable, without_p2p, Roster};
use crate::stats::{self, Counters};

/// Entry point of a node's task. Reports start-up success or failure on `ready`, and its end
/// on `done` (dropped when the loop returns).
pub(crate) async fn run(
    config: Config,
    commands: UnboundedReceiver<Command>,
    sink: EventSink,
    shared: Arc<Shared>,
    ready: SyncSender<Result<(), TransportError>>,
    done: SyncSender<()>,
) {
    let mut state = match Loop::new(&config, sink, shared) {
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
    state.dial_due();
    state.run(commands).await;
    drop(done);
}

pub(crate) struct Loop {
    pub(crate) swarm: Swarm<Behaviour>,
    registry: Registry,
    sink: EventSink,
    pub(crate) shared: Arc<Shared>,
    pub(crate) local: PeerId,
    pub(crate) role: Role,
    allow_list: Option<HashSet<PeerId>>,
    topics: HashSet<String>,
    /// Requesters this node knows (discovery.rs).
    pub(crate) roster: Roster,
    /// The configured peers: redialed while disconnected, never forgotten.
    pub(crate) bootstrap: Roster,
    pub(crate) requests: Requests,
    pub(crate) announce_interval: Duration,
    /// When to say hello again to every connected peer (a requester that learned another).
    pub(crate) push_at: Option<Instant>,
    pending_listeners: HashSet<libp2p::core::transport::ListenerId>,
    ready: Option<SyncSender<Result<(), TransportError>>>,
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

impl Loop {
    fn new(config: &Config, sink: EventSink, shared: Arc<Shared>) -> Result<Self, TransportError> {
        let mut registry = Registry::default();
        let behaviour = build_behaviour(config, &mut registry)?;
        let transport = build_transport(&config.keypair, config.psk, config.handshake_timeout)?;
        let local = config.peer_id();
        let mut swarm = Swarm::new(
            transport,
            behaviour,
            local,
            libp2p::swarm::Config::with_tokio_executor()
                .with_idle_connection_timeout(config.idle_timeout)
                // propose a stream's protocol and send at once, without waiting a round trip
                // for the listener's confirmation (every request opens a stream)
                .with_substream_upgrade_protocol_override(
                    libp2p::core::upgrade::Version::V1Lazy,
                ),
        );
        let now = Instant::now().into_std();
        let mut bootstrap = Roster::new(
            local,
            config.redial_min,
            config.redial_max,
            Duration::from_secs(u64::from(u32::MAX)),
        );
        for addr in &config.bootstrap {
            let peer = bootstrap_peer_id(addr)?;
            let addr = without_p2p(addr);
            swarm.add_peer_address(peer, addr.clone());
            swarm.behaviour_mut().exempt(&peer);
            bootstrap.learn(peer, &[addr], now);
        }
        Ok(Loop {
            swarm,
            registry,
            sink,
            shared,
            local,
            role: config.role,
            allow_list: config.allow_list.clone(),
            topics: HashSet::new(),
            roster: Roster::new(
                local,
                config.redial_min,
                config.redial_max,
                config.roster_ttl,
            ),
            bootstrap,
            requests: Requests::default(),
            announce_interval: config.announce_interval,
            push_at: None,
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
        maintenance.tick().await; // the first tick is immediate; hellos follow connections
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let deadline = self.requests.next_deadline();
            let dial_at = self.next_dial();
            let push_at = self.push_at;
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.command(command),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = maintenance.tick() => self.rehello_requesters(),
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    self.expire_requests();
                }
                _ = tokio::time::sleep_until(dial_at.unwrap_or(far)), if dial_at.is_some() => {
                    self.dial_due();
                }
                _ = tokio::time::sleep_until(push_at.unwrap_or(far)), if push_at.is_some() => {
                    self.push_at = None;
                    self.hello_everyone();
                }
            }
            if self.ready.is_some() && self.pending_listeners.is_empty() {
                self.check_ready();
            }
        }
        self.fail_start(TransportError::Closed);
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub(crate) fn emit(&self, event: Event) {
        match self.sink.emit(event) {
            Ok(()) => {}
            Err(EmitError::Full) => Counters::add(&self.counters().events_dropped, 1),
            // Nobody reads events any more; the loop ends with its Shutdown command.
            Err(EmitError::Closed) => {}
        }
    }

    pub(crate) fn allowed(&self, peer: &PeerId) -> bool {
        self.allow_list
            .as_ref()
            .is_none_or(|allowed| allowed.contains(peer))
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
            Command::Respond { id, result } => self.respond(id, result),
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
                endpoint,
                ..
            } if num_established.get() == 1 => {
                lock(&self.shared.connected).insert(peer_id);
                self.emit(Event::PeerConnected(peer_id));
                self.peer_connected(peer_id, matches!(endpoint, ConnectedPoint::Dialer { .. }));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                lock(&self.shared.connected).remove(&peer_id);
                self.emit(Event::PeerDisconnected(peer_id));
                self.peer_disconnected(peer_id);
            }
            SwarmEvent::IncomingConnectionError { error, .. } => match error {
                ListenError::Denied { cause }
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some() =>
                {
                    Counters::add(&self.counters().denied_connections, 1)
                }
                ListenError::Denied { cause }
                    if cause
                        .downcast_ref::<libp2p::connection_limits::Exceeded>()
                        .is_some() =>
                {
                    Counters::add(&self.counters().refused_over_limit, 1)
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
                let addrs: Vec<Multiaddr> =
                    info.listen_addrs.into_iter().filter(is_dialable).collect();
                for addr in &addrs {
                    self.swarm.add_peer_address(peer_id, addr.clone());
                }
                if self.roster.contains(&peer_id) {
                    self.roster
                        .learn(peer_id, &addrs, Instant::now().into_std());
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
                        if self.topics.contains(topic) {
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
            gossipsub::Event::Subscribed { peer_id, topic } => {
                self.emit(Event::PeerSubscribed {
                    peer: peer_id,
                    topic: topic.into_string(),
                });
            }
            _ => {}
        }
    }
}
