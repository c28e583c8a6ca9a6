//! The handle of a running node: commands in, events out, counters and peer sets readable.
//!
//! `Node::start` spawns one OS thread that owns a single-threaded tokio runtime and the libp2p
//! swarm (see `swarm.rs`). Nothing global is created: no runtime exists until a node starts,
//! and each node owns its own. The thread does not survive `fork`, so a node remembers the
//! process that started it and refuses calls from any other (start a new node in the child).
//!
//! Commands go to the thread over an unbounded channel (sending never blocks); events come back
//! over a bounded channel that the caller drains in batches with [`Node::next_events`].

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::Config;
use crate::error::TransportError;
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
    events: Mutex<Receiver<Event>>,
    shared: Arc<Shared>,
    next_request_id: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// How long `start` waits for the listeners to be bound.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Node {
    /// Starts the node's thread and swarm; returns once every listen address is bound.
    pub fn start(config: Config) -> Result<Node, TransportError> {
        config.validate()?;
        let peer_id = config.peer_id();
        let shared = Arc::new(Shared::default());
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::sync_channel(config.event_queue);
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let max_message_size = config.max_message_size;
        let max_request_timeout = config.max_request_timeout;
        let allow_list = config.allow_list.clone();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("libp2p-{}", short(&peer_id)))
            .spawn(move || swarm::run(config, cmd_rx, ev_tx, thread_shared, ready_tx))
            .map_err(|e| TransportError::Start(format!("cannot spawn the network thread: {e}")))?;
        let node = Node {
            peer_id,
            pid: std::process::id(),
            max_message_size,
            max_request_timeout,
            allow_list,
            commands: cmd_tx,
            events: Mutex::new(ev_rx),
            shared,
            next_request_id: AtomicU64::new(1),
            thread: Mutex::new(Some(thread)),
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
                    "the network thread did not start".into(),
                ))
            }
        }
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
    /// queued, at most `max` in all. Returns an empty list on timeout or once closed.
    pub fn next_events(&self, max: usize, timeout: Duration) -> Result<Vec<Event>, TransportError> {
        self.check_process()?;
        let rx = lock(&self.events);
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        match rx.recv_timeout(timeout) {
            Ok(ev) => out.push(ev),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return Ok(out),
        }
        while out.len() < max {
            match rx.try_recv() {
                Ok(ev) => out.push(ev),
                Err(_) => break,
            }
        }
        Ok(out)
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

    /// Stops the swarm (closing all connections) and joins its thread. Idempotent.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Shutdown);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            if std::process::id() == self.pid {
                let _ = thread.join();
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

fn short(peer: &PeerId) -> String {
    let s = peer.to_string();
    s.chars().skip(s.len().saturating_sub(6)).collect()
}
