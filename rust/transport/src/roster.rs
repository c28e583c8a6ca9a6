//! Who the requesters are: the hello message nodes exchange, and the roster of requesters a
//! node knows and dials. Pure: no I/O, the caller passes the time.
//!
//! A hello is a small request on the node's own RPC protocol under the name [`HELLO`],
//! answered by the network layer itself (it never reaches the application). Both the request
//! and the reply carry the sender's [`Hello`]: whether it is a requester, the addresses it
//! listens on, and the requesters it is connected to now. So one round trip tells a node what
//! its peer is and where every requester of the network is reachable.
//!
//! Only requesters that the sender is *connected to* are reported (plus itself): a requester
//! that went away stops being reported one connection-close later, and nodes do not keep each
//! other's stale entries alive by repeating them. A learned entry is kept (and dialed) until
//! it has been neither connected nor reported for the roster TTL.
//!
//! Wire form (UTF-8 lines, bounded in count and length):
//! ```text
//! bacalhau-hello/1
//! role requester            (or: role compute)
//! listen <multiaddr>        (repeated)
//! requester <peer id> <multiaddr>   (repeated, one line per address)
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Application protocol name under which hellos travel on the RPC protocol.
pub const HELLO: &str = "/bacalhau/hello/1";

const MAGIC: &str = "bacalhau-hello/1";
/// Most addresses kept per peer (listen addresses or roster lines of one requester).
pub const MAX_ADDRS: usize = 8;
/// Most requesters taken from one hello.
pub const MAX_REQUESTERS: usize = 256;
/// Largest hello accepted, in bytes.
pub const MAX_HELLO: usize = 64 * 1024;

/// One node's hello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// The sender is a requester (hybrid nodes are).
    pub requester: bool,
    /// Where the sender listens (dialable addresses, no `/p2p` suffix).
    pub listen: Vec<Multiaddr>,
    /// Requesters the sender is connected to (itself excluded), with their addresses.
    pub requesters: Vec<(PeerId, Vec<Multiaddr>)>,
}

/// An address another machine could dial: not an unspecified IP (`0.0.0.0`, `::`).
pub fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// The address without a trailing `/p2p/<id>`.
pub fn without_p2p(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

impl Hello {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str(MAGIC);
        out.push('\n');
        out.push_str(if self.requester {
            "role requester\n"
        } else {
            "role compute\n"
        });
        for addr in self.listen.iter().take(MAX_ADDRS) {
            out.push_str(&format!("listen {addr}\n"));
        }
        for (peer, addrs) in self.requesters.iter().take(MAX_REQUESTERS) {
            for addr in addrs.iter().take(MAX_ADDRS) {
                out.push_str(&format!("requester {peer} {addr}\n"));
            }
        }
        out.into_bytes()
    }

    /// Parses a hello; lines that do not parse (unknown keys, bad addresses) are skipped, so
    /// a later version may add lines. Err only for something that is not a hello at all.
    pub fn parse(data: &[u8]) -> Result<Hello, String> {
        if data.len() > MAX_HELLO {
            return Err(format!("hello of {} bytes is too large", data.len()));
        }
        let text = std::str::from_utf8(data).map_err(|_| "hello is not UTF-8".to_string())?;
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(MAGIC) {
            return Err("not a bacalhau hello".into());
        }
        let mut hello = Hello::default();
        let mut index: HashMap<PeerId, usize> = HashMap::new();
        for line in lines {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("role"), Some(role), None) => hello.requester = role == "requester",
                (Some("listen"), Some(addr), None) if hello.listen.len() < MAX_ADDRS => {
                    if let Ok(addr) = addr.parse::<Multiaddr>() {
                        let addr = without_p2p(&addr);
                        if is_dialable(&addr) {
                            hello.listen.push(addr);
                        }
                    }
                }
                (Some("requester"), Some(peer), Some(addr)) => {
                    let (Ok(peer), Ok(addr)) = (peer.parse::<PeerId>(), addr.parse::<Multiaddr>())
                    else {
                        continue;
                    };
                    let addr = without_p2p(&addr);
                    if !is_dialable(&addr) {
                        continue;
                    }
                    let slot = match index.get(&peer) {
                        Some(&i) => i,
                        None if hello.requesters.len() < MAX_REQUESTERS => {
                            index.insert(peer, hello.requesters.len());
                            hello.requesters.push((peer, Vec::new()));
                            hello.requesters.len() - 1
                        }
                        None => continue,
                    };
                    let addrs = &mut hello.requesters[slot].1;
                    if addrs.len() < MAX_ADDRS && !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
                _ => {}
            }
        }
        Ok(hello)
    }
}

/// A requester this node knows.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it was last said to listen (most recent first).
    pub addrs: Vec<Multiaddr>,
    /// Last time it was connected to this node or reported by a peer.
    pub seen: Instant,
    /// Connected to this node now.
    pub connected: bool,
    /// Next dial not before this (while disconnected).
    pub next_dial: Instant,
    /// Current redial delay (doubles per failure up to the maximum).
    pub backoff: Duration,
}

/// The requesters a node knows, and when to dial each.
#[derive(Debug)]
pub struct Roster {
    local: PeerId,
    entries: HashMap<PeerId, Entry>,
    redial_min: Duration,
    redial_max: Duration,
    ttl: Duration,
}

/// What a change to the roster means for the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing new.
    None,
    /// A requester this node did not know.
    Learned,
}

impl Roster {
    /// An empty roster of the node `local`.
    pub fn new(local: PeerId, redial_min: Duration, redial_max: Duration, ttl: Duration) -> Self {
        Roster {
            local,
            entries: HashMap::new(),
            redial_min,
            redial_max,
            ttl,
        }
    }

    /// Known requesters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no requester is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `peer` is a known requester.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.entries.contains_key(peer)
    }

    /// The entry of `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.entries.get(peer)
    }

    /// Records that `peer` is a requester reachable at `addrs` (its own word, or a peer's
    /// report). New addresses go first; at most [`MAX_ADDRS`] are kept.
    pub fn learn(&mut self, peer: PeerId, addrs: &[Multiaddr], now: Instant) -> Change {
        if peer == self.local {
            return Change::None;
        }
        let redial_min = self.redial_min;
        let mut change = Change::None;
        let entry = self.entries.entry(peer).or_insert_with(|| {
            change = Change::Learned;
            Entry {
                addrs: Vec::new(),
                seen: now,
                connected: false,
                next_dial: now,
                backoff: redial_min,
            }
        });
        entry.seen = now;
        for addr in addrs.iter().rev() {
            let addr = without_p2p(addr);
            if !is_dialable(&addr) {
                continue;
            }
            entry.addrs.retain(|a| a != &addr);
            entry.addrs.insert(0, addr);
        }
        entry.addrs.truncate(MAX_ADDRS);
        change
    }

    /// `peer` (if known) is connected now: its backoff resets. True when it was not before.
    pub fn connected(&mut self, peer: &PeerId, now: Instant) -> bool {
        match self.entries.get_mut(peer) {
            Some(entry) => {
                let was = entry.connected;
                entry.connected = true;
                entry.seen = now;
                entry.backoff = self.redial_min;
                !was
            }
            None => false,
        }
    }

    /// `peer`'s last connection closed: dial it again soon. True when it was connected.
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) -> bool {
        match self.entries.get_mut(peer) {
            Some(entry) => {
                let was = entry.connected;
                entry.connected = false;
                entry.seen = now;
                entry.backoff = self.redial_min;
                entry.next_dial = now;
                was
            }
            None => false,
        }
    }

    /// Forgets `peer` (it said it is not a requester). True when it was connected.
    pub fn forget(&mut self, peer: &PeerId) -> bool {
        self.entries.remove(peer).is_some_and(|e| e.connected)
    }

    /// Requesters to dial now (disconnected, due), each with its addresses; their next dial
    /// is pushed back by their backoff, which doubles. Entries unseen for the TTL are dropped
    /// first.
    pub fn due(&mut self, now: Instant) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let ttl = self.ttl;
        self.entries
            .retain(|_, e| e.connected || now.saturating_duration_since(e.seen) < ttl);
        let max = self.redial_max;
        let mut out = Vec::new();
        for (peer, entry) in self.entries.iter_mut() {
            if entry.connected || entry.next_dial > now || entry.addrs.is_empty() {
                continue;
            }
            out.push((*peer, entry.addrs.clone()));
            entry.next_dial = now + entry.backoff;
            entry.backoff = (entry.backoff * 2).min(max);
        }
        out
    }

    /// When [`Roster::due`] has something next (None: nothing to dial).
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.connected && !e.addrs.is_empty())
            .map(|e| e.next_dial)
            .min()
    }

    /// Connected requesters with their addresses: what a hello reports.
    pub fn connected_requesters(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.connected)
            .map(|(p, e)| (*p, e.addrs.clone()))
            .collect();
        out.sort_by_key(|(p, _)| p.to_bytes());
        out
    }

    /// Connected requester ids, sorted.
    pub fn connected_ids(&self) -> Vec<PeerId> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.connected)
            .map(|(p, _)| *p)
            .collect();
        out.sort_by_key(|p| p.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn hello_round_trips() {
        let (r1, r2) = (peer(), peer());
        let hello = Hello {
            requester: true,
            listen: vec![addr(1), addr(2)],
            requesters: vec![(r1, vec![addr(3), addr(4)]), (r2, vec![addr(5)])],
        };
        assert_eq!(Hello::parse(&hello.encode()).unwrap(), hello);
    }

    #[test]
    fn hello_parsing_is_bounded_and_tolerant() {
        assert!(Hello::parse(b"GET / HTTP/1.1\n").is_err());
        assert!(Hello::parse(&[0xff, 0xfe]).is_err());
        assert!(Hello::parse(&vec![b'a'; MAX_HELLO + 1]).is_err());
        let r = peer();
        let mut text = format!("{MAGIC}\nrole compute\nfuture-key x\nlisten not-an-addr\n");
        text.push_str("listen /ip4/0.0.0.0/tcp/9\n");
        text.push_str(&format!("requester {r} /ip4/0.0.0.0/tcp/1\n"));
        text.push_str("requester bad-peer /ip4/127.0.0.1/tcp/1\n");
        for port in 0..(MAX_ADDRS as u16 + 5) {
            text.push_str(&format!(
                "requester {r} /ip4/127.0.0.1/tcp/{}\n",
                100 + port
            ));
            text.push_str(&format!(
                "listen /ip4/127.0.0.1/tcp/{}/p2p/{r}\n",
                100 + port
            ));
        }
        let hello = Hello::parse(text.as_bytes()).unwrap();
        assert!(!hello.requester);
        assert_eq!(hello.listen.len(), MAX_ADDRS);
        assert_eq!(hello.listen[0], addr(100), "the /p2p suffix is dropped");
        assert_eq!(hello.requesters.len(), 1);
        assert_eq!(hello.requesters[0].1.len(), MAX_ADDRS);
    }

    #[test]
    fn a_lost_requester_is_redialed_with_backoff_then_forgotten() {
        let local = peer();
        let r = peer();
        let min = Duration::from_millis(100);
        let mut roster = Roster::new(
            local,
            min,
            Duration::from_millis(400),
            Duration::from_secs(10),
        );
        let t0 = Instant::now();
        assert_eq!(roster.learn(local, &[addr(1)], t0), Change::None);
        assert_eq!(roster.learn(r, &[addr(1)], t0), Change::Learned);
        assert_eq!(roster.learn(r, &[addr(2)], t0), Change::None);
        assert_eq!(roster.get(&r).unwrap().addrs, vec![addr(2), addr(1)]);

        assert_eq!(roster.due(t0).len(), 1);
        assert!(roster.due(t0).is_empty(), "not again before its backoff");
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..4 {
            let next = roster.next_due().unwrap();
            gaps.push(next - at);
            at = next;
            assert_eq!(roster.due(at).len(), 1);
        }
        let ms: Vec<u128> = gaps.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![100, 200, 400, 400]);

        assert!(roster.connected(&r, at));
        assert!(!roster.connected(&r, at), "already connected");
        assert!(roster.due(at + Duration::from_secs(60)).is_empty());
        assert_eq!(roster.connected_ids(), vec![r]);
        let later = at + Duration::from_secs(60);
        assert!(roster.disconnected(&r, later));
        assert_eq!(
            roster.due(later).len(),
            1,
            "redialed at once, backoff reset"
        );
        assert_eq!(roster.next_due(), Some(later + min));
        assert!(roster.due(later + Duration::from_secs(11)).is_empty());
        assert!(roster.is_empty(), "forgotten after the TTL");
    }

    #[test]
    fn only_connected_requesters_are_reported() {
        let (a, b) = (peer(), peer());
        let t = Instant::now();
        let mut roster = Roster::new(
            peer(),
            Duration::from_millis(1),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        roster.learn(a, &[addr(1)], t);
        roster.learn(b, &[addr(2)], t);
        roster.connected(&b, t);
        assert_eq!(roster.connected_requesters(), vec![(b, vec![addr(2)])]);
    }
}
