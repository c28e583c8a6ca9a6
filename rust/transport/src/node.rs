//! The handle of a running node: commands in, events out, counters and peer sets readable.
//!
//! `Node::start` spawns the node's swarm loop (see `swarm.rs`) as a task on the process's one
//! shared tokio runtime (`runtime.rs`): a process with a thousand nodes runs a few network
//! threads, not a thousand. The runtime does not survive `fork`, so a node remembers the
//! process that started it and refuses calls from any other (start a new node in the child).
//!
//! Commands go to the task over an unbounded channel (sending never blocks); events go to an
//! [`EventHub`]: the node's own (read it with [`Node::next_events`]) or one shared by many
//! nodes ([`Node::start_in`]), drained by one reader that routes events by [`Node::key`].

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::error::TransportError;
use crate::hub::EventHub;
use crate::runtime;
use crate::stats::{Counters, Stats};
use crate::swarm;

/// Something that happened on the network, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A gossip message on a subscribed topic. `source` is the message's author, whose
    /// signature was verified (not the peer that forwarded it).
    Gossip {
        /// Topic name.
        topic: String,
        /// Authenticated author.
        source: PeerId,
        /// Payload.
        data: Vec<u8>,
    },
    /// A peer asks something; answer with [`Node::respond`] or [`Node::respond_error`].
    InboundRequest {
        /// Local id of this request.
        id: u64,
        /// The authenticated peer asking.
        peer: PeerId,
        /// Application protocol name.
        protocol: String,
        /// Payload.
        data: Vec<u8>,
    },
    /// The outcome of a [`Node::request`]: the reply, or why there is none.
    Response {
        /// The id returned by [`Node::request`].
        request_id: u64,
        /// Reply payload, or an error message.
        result: Result<Vec<u8>, String>,
    },
    /// First connection to a peer established.
    PeerConnected(PeerId),
    /// Last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// The node listens on a new address.
    ListenAddr(Multiaddr),
    /// A peer known to be a requester is connected (first connection, or it became known as
    /// a requester while connected).
    RequesterUp(PeerId),
    /// A requester's last connection closed (it is redialed).
    RequesterDown(PeerId),
    /// A connected peer subscribed to a gossip topic.
    PeerSubscribed {
        /// The peer.
        peer: PeerId,
        /// Topic name.
        topic: String,
    },
}

/// Requests from the handle to the swarm thread.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe(String),
    Unsubscribe(String),
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    Request {
        id: u64,
        peer: PeerId,
        protocol: String,
        data: Vec<u8>,
        timeout: Duration,
    },
    Respond {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
    Dial(Multiaddr),
    RefreshStats(mpsc::SyncSender<()>),
    Shutdown,
}

/// State the swarm thread publishes for cheap reads.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub listen_addrs: Mutex<Vec<Multiaddr>>,
    pub connected: Mutex<BTreeSet<PeerId>>,
    pub requesters: Mutex<BTreeSet<PeerId>>,
    pub counters: Counters,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in the other thread must not make every later call panic too.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running libp2p node.
#[derive(Debug)]
pub struct Node {
    peer_id: PeerId,
    pid: u32,
    max_message_size: usize,
    max_request_timeout: Duration,
    allow_list: Option<HashSet<PeerId>>,
    commands: UnboundedSender<Command>,
    hub: Arc<EventHub>,
    key: u64,
    shared: Arc<Shared>,
    next_request_id: AtomicU64,
    /// Disconnects when the swarm task has ended.
    done: Mutex<Option<Receiver<()>>>,
    closed: AtomicBool,
}

/// How long `start` waits for the listeners to be bound.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `close` waits for the swarm task to end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Starts the node with an event hub of its own (read with [`Node::next_events`]);
    /// returns once every listen address is bound.
    pub fn start(config: Config) -> Result<Node, TransportError> {
        let hub = EventHub::new(config.event_queue);
        Node::start_in(config, &hub)
    }

    /// Starts the node writing its events into `hub`, tagged with [`Node::key`]; returns
    /// once every listen address is bound.
    pub fn start_in(config: Config, hub: &Arc<EventHub>) -> Result<Node, TransportError> {
        config.validate()?;
        let handle = runtime::handle()?;
        let peer_id = config.peer_id();
        let shared = Arc::new(Shared::default());
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let sink = hub.sink();
        let key = sink.key();
        let max_message_size = config.max_message_size;
        let max_request_timeout = config.max_request_timeout;
        let allow_list = config.allow_list.clone();
        let task_shared = Arc::clone(&shared);
        handle.spawn(swarm::run(
            config,
            cmd_rx,
            sink,
            task_shared,
            ready_tx,
            done_tx,
        ));
        let node = Node {
            peer_id,
            pid: std::process::id(),
            max_message_size,
            max_request_timeout,
            allow_list,
            commands: cmd_tx,
            hub: Arc::clone(hub),
            key,
            shared,
            next_request_id: AtomicU64::new(1),
            done: Mutex::new(Some(done_rx)),
            closed: AtomicBool::new(false),
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(node),
            Ok(Err(e)) => {
                node.close();
                Err(e)
            }
            Err(_) => {
                node.close();
                Err(TransportError::Start(
                    "the network task did not start".into(),
                ))
            }
        }
    }

    /// This node's key in its event hub.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    fn check_process(&self) -> Result<(), TransportError> {
        let current = std::process::id();
        if current == self.pid {
            Ok(())
        } else {
            Err(TransportError::Forked {
                started: self.pid,
                current,
            })
        }
    }

    fn send(&self, cmd: Command) -> Result<(), TransportError> {
        self.check_process()?;
        self.commands.send(cmd).map_err(|_| TransportError::Closed)
    }

    /// The addresses the node listens on (ports resolved).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.shared.listen_addrs).clone()
    }

    /// Peers with at least one open connection, sorted.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        lock(&self.shared.connected).iter().copied().collect()
    }

    /// Connected peers known to be requesters, sorted.
    pub fn requesters(&self) -> Vec<PeerId> {
        lock(&self.shared.requesters).iter().copied().collect()
    }

    /// Receive gossip on `topic` (as [`Event::Gossip`]).
    pub fn subscribe(&self, topic: &str) -> Result<(), TransportError> {
        self.send(Command::Subscribe(topic.to_string()))
    }

    /// Stop receiving gossip on `topic`.
    pub fn unsubscribe(&self, topic: &str) -> Result<(), TransportError> {
        self.send(Command::Unsubscribe(topic.to_string()))
    }

    /// Gossip `data` on `topic`, signed by this node. Having no peer yet is not an error.
    pub fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), TransportError> {
        self.check_size(data.len())?;
        self.send(Command::Publish {
            topic: topic.to_string(),
            data,
        })
    }

    /// Dial an address now (in addition to the configured peers).
    pub fn dial(&self, addr: Multiaddr) -> Result<(), TransportError> {
        self.send(Command::Dial(addr))
    }

    /// Sends a request; the outcome arrives as [`Event::Response`] with the returned id,
    /// at the latest after `timeout` (capped to the configured maximum).
    pub fn request(
        &self,
        peer: PeerId,
        protocol: &str,
        data: Vec<u8>,
        timeout: Duration,
    ) -> Result<u64, TransportError> {
        self.check_size(data.len())?;
        if protocol.len() > crate::codec::MAX_PROTOCOL_NAME {
            return Err(TransportError::Config(format!(
                "protocol name longer than {} bytes",
                crate::codec::MAX_PROTOCOL_NAME
            )));
        }
        let id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let timeout = timeout.min(self.max_request_timeout);
        self.send(Command::Request {
            id,
            peer,
            protocol: protocol.to_string(),
            data,
            timeout,
        })?;
        Ok(id)
    }

    /// Answers inbound request `id`. Unknown or expired ids are ignored.
    pub fn respond(&self, id: u64, data: Vec<u8>) -> Result<(), TransportError> {
        self.check_size(data.len())?;
        self.send(Command::Respond {
            id,
            result: Ok(data),
        })
    }

    /// Answers inbound request `id` with an error message for the caller.
    pub fn respond_error(&self, id: u64, message: &str) -> Result<(), TransportError> {
        let mut message = message.to_string();
        if message.len() > self.max_message_size {
            let mut cut = self.max_message_size;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.send(Command::Respond {
            id,
            result: Err(message),
        })
    }

    /// Waits up to `timeout` for a first event, then returns it with any others already
    /// queued, at most `max` in all. Returns an empty list on timeout or once closed. Only
    /// for a node with a hub of its own ([`Node::start`]): on a shared hub it would take the
    /// other nodes' events too (they are dropped).
    pub fn next_events(&self, max: usize, timeout: Duration) -> Result<Vec<Event>, TransportError> {
        self.check_process()?;
        // A closed node writes nothing more: return what is queued without waiting.
        let timeout = if self.closed.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            timeout
        };
        Ok(self
            .hub
            .next_events(max, timeout)
            .into_iter()
            .filter(|(key, _)| *key == self.key)
            .map(|(_, event)| event)
            .collect())
    }

    /// Current counters (asks the swarm thread to refresh the gossipsub-side ones first).
    pub fn stats(&self) -> Stats {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.send(Command::RefreshStats(tx)).is_ok() {
            // Best effort: a closed or busy node still returns what it has.
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        self.shared.counters.snapshot()
    }

    /// Whether `peer` may talk to this node.
    pub fn is_allowed(&self, peer: &PeerId) -> bool {
        self.allow_list
            .as_ref()
            .is_none_or(|allowed| allowed.contains(peer))
    }

    /// Stops the swarm (closing all connections) and waits for its task to end. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let _ = self.commands.send(Command::Shutdown);
        let done = lock(&self.done).take();
        if let Some(done) = done {
            if std::process::id() == self.pid {
                // Err = the task ended (its sender dropped) or the wait timed out.
                let _ = done.recv_timeout(CLOSE_TIMEOUT);
            }
        }
    }

    fn check_size(&self, size: usize) -> Result<(), TransportError> {
        if size > self.max_message_size {
            Err(TransportError::MessageTooLarge {
                size,
                max: self.max_message_size,
            })
        } else {
            Ok(())
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.close();
    }
}
