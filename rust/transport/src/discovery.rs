//! Who connects to whom: bounded connections instead of a full mesh.
//!
//! - A node dials its bootstrap peers (`Config::bootstrap`), keeps redialing them while they
//!   are disconnected, and says hello to every peer it dials: its role, its listen addresses
//!   and the requesters it is connected to (`roster.rs`). The dialed peer answers in kind.
//! - From hellos a node learns which peers are requesters and where they listen, and dials
//!   every requester it knows (with a backoff per requester, reset by a connection). It dials
//!   no compute node it was not told to. So a compute node holds one connection per
//!   requester (plus its bootstrap peers and at most `Config::max_peers` incoming ones),
//!   whatever the size of the network; requesters hold one per node and connect to each other.
//! - A requester that learns of another requester says hello to every peer it is connected to
//!   (a rare event: requesters come and go seldom), so compute nodes learn the newcomer at
//!   once; besides, every node says hello again to its requesters every
//!   `Config::announce_interval`.
//! - A requester that goes away is redialed by its peer id at every address learned for it
//!   (its hello, identify, the bootstrap address), first after `redial_min`, then at most every
//!   `redial_max`: a restarted requester that listens where it did before has its compute
//!   nodes back within a second.
//!
//! The application sees `RequesterUp` / `RequesterDown` events and the set of connected
//! requesters: membership (heartbeats, node info) goes to them point to point.

use std::time::Duration;

use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

use crate::codec::{RpcRequest, RpcResponse};
use crate::config::Role;
use crate::node::{lock, Event};
use crate::roster::{is_dialable, Change, Hello, HELLO};
use crate::stats::Counters;
use crate::swarm::Loop;

/// A requester that learned of another one says hello to everyone after this delay (several
/// requesters learned in a burst make one round).
const PUSH_DELAY: Duration = Duration::from_millis(200);

impl Loop {
    fn now_std(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    /// A connection to `peer` opened (its first). `dialer`: this node dialed it.
    pub(crate) fn peer_connected(&mut self, peer: PeerId, dialer: bool) {
        let now = self.now_std();
        self.bootstrap.connected(&peer, now);
        if self.roster.connected(&peer, now) {
            self.requester_up(peer);
        }
        if dialer {
            self.send_hello(peer);
        }
    }

    /// The last connection to `peer` closed.
    pub(crate) fn peer_disconnected(&mut self, peer: PeerId) {
        let now = self.now_std();
        self.bootstrap.disconnected(&peer, now);
        if self.roster.disconnected(&peer, now) {
            self.requester_down(peer);
        }
    }

    fn requester_up(&mut self, peer: PeerId) {
        lock(&self.shared.requesters).insert(peer);
        self.emit(Event::RequesterUp(peer));
    }

    fn requester_down(&mut self, peer: PeerId) {
        lock(&self.shared.requesters).remove(&peer);
        self.emit(Event::RequesterDown(peer));
    }

    /// This node's hello.
    fn own_hello(&self) -> Hello {
        let listen = lock(&self.shared.listen_addrs)
            .iter()
            .filter(|a| is_dialable(a))
            .cloned()
            .collect();
        Hello {
            requester: self.role == Role::Requester,
            listen,
            requesters: self.roster.connected_requesters(),
        }
    }

    fn count_hello(&self, bytes: usize) {
        Counters::add(&self.counters().discovery_messages, 1);
        Counters::add(&self.counters().discovery_bytes, bytes as u64);
    }

    pub(crate) fn send_hello(&mut self, peer: PeerId) {
        let data = self.own_hello().encode();
        self.count_hello(data.len());
        let rid = self.swarm.behaviour_mut().rpc.send_request(
            &peer,
            RpcRequest {
                protocol: HELLO.to_string(),
                data,
            },
        );
        self.requests.hellos.insert(rid, peer);
    }

    /// An inbound hello: learn from it, answer with this node's own.
    pub(crate) fn answer_hello(
        &mut self,
        peer: PeerId,
        data: &[u8],
        channel: libp2p::request_response::ResponseChannel<RpcResponse>,
    ) {
        self.count_hello(data.len());
        let reply = match Hello::parse(data) {
            Ok(hello) => {
                self.apply_hello(peer, hello);
                let own = self.own_hello().encode();
                self.count_hello(own.len());
                Ok(own)
            }
            Err(why) => Err(why),
        };
        // Fails only if the peer went away meanwhile.
        let _ = self.swarm.behaviour_mut().rpc.send_response(channel, reply);
    }

    /// The answer to a hello this node sent.
    pub(crate) fn hello_received(&mut self, peer: PeerId, data: &[u8]) {
        self.count_hello(data.len());
        if let Ok(hello) = Hello::parse(data) {
            self.apply_hello(peer, hello);
        }
    }

    fn apply_hello(&mut self, peer: PeerId, hello: Hello) {
        let now = self.now_std();
        if hello.requester {
            self.learn_requester(peer, &hello.listen, now);
        } else if self.roster.forget(&peer) {
            // It was a requester and says it is not any more (restarted as a compute node).
            self.requester_down(peer);
        }
        for (requester, addrs) in hello.requesters {
            if requester != self.local && self.allowed(&requester) {
                self.learn_requester(requester, &addrs, now);
            }
        }
        self.dial_due();
    }

    fn learn_requester(&mut self, peer: PeerId, addrs: &[Multiaddr], now: std::time::Instant) {
        for addr in addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        self.swarm.behaviour_mut().exempt(&peer);
        if self.roster.learn(peer, addrs, now) == Change::Learned
            && self.role == Role::Requester
            && self.push_at.is_none()
        {
            self.push_at = Some(Instant::now() + PUSH_DELAY);
        }
        if self.swarm.is_connected(&peer) && self.roster.connected(&peer, now) {
            self.requester_up(peer);
        }
    }

    /// Periodic: hello again to every connected requester (roster refresh); dial the lost.
    pub(crate) fn rehello_requesters(&mut self) {
        for peer in self.roster.connected_ids() {
            self.send_hello(peer);
        }
        self.dial_due();
    }

    /// After a requester learned another one: hello to every connected peer.
    pub(crate) fn hello_everyone(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.send_hello(peer);
        }
    }

    /// When the next redial is due.
    pub(crate) fn next_dial(&self) -> Option<Instant> {
        [self.roster.next_due(), self.bootstrap.next_due()]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::from_std)
    }

    /// Dials the requesters and bootstrap peers whose redial is due.
    pub(crate) fn dial_due(&mut self) {
        let now = self.now_std();
        let mut due = self.roster.due(now);
        due.extend(self.bootstrap.due(now));
        for (peer, addrs) in due {
            if peer == self.local || !self.allowed(&peer) || self.swarm.is_connected(&peer) {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .extend_addresses_through_behaviour()
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            // Refusals (already dialing) need no handling: the backoff retries.
            let _ = self.swarm.dial(opts);
        }
    }

    /// Addresses to reach `peer` by, as far as discovery knows them.
    pub(crate) fn known_addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.roster
            .get(peer)
            .or_else(|| self.bootstrap.get(peer))
            .map(|e| e.addrs.clone())
            .unwrap_or_default()
    }
}
