//! Nodes on 127.0.0.1 talking to each other: gossip, request/response, discovery of the
//! requesters (bounded connections, redial after a restart, connection limits), private
//! networks (swarm key), allow-lists and signature checking.
//!
//! Nothing sleeps for a fixed time: every wait blocks on the node's event queue (or polls a
//! counter between such blocking waits) until a condition holds or a deadline passes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bacalhau_transport::{Config, Event, Keypair, Multiaddr, Node, PeerId, Role};
use libp2p::multiaddr::Protocol;

const DEADLINE: Duration = Duration::from_secs(20);
const TOPIC: &str = "test/topic/1";

fn config() -> Config {
    let mut config = Config::new(Keypair::generate_ed25519());
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.gossip_heartbeat = Duration::from_millis(100);
    config.announce_interval = Duration::from_millis(500);
    config.redial_max = Duration::from_millis(200);
    config.handshake_timeout = Duration::from_secs(2);
    config
}

fn start(config: Config) -> Node {
    Node::start(config).expect("node starts")
}

/// The node's first listen address with its peer id.
fn addr(node: &Node) -> Multiaddr {
    let mut addr = node
        .listen_addrs()
        .first()
        .cloned()
        .expect("a listen address");
    addr.push(Protocol::P2p(node.peer_id()));
    addr
}

fn joining(peers: &[&Node]) -> Config {
    let mut config = config();
    config.bootstrap = peers.iter().map(|n| addr(n)).collect();
    config
}

/// Drains `node` until an event matches `pred`, or the deadline passes.
fn wait_event(node: &Node, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        for event in node.next_events(64, Duration::from_millis(50)).unwrap() {
            if pred(&event) {
                return Some(event);
            }
        }
    }
    None
}

/// Waits until `cond` holds, blocking on `node`'s event queue between checks (events are
/// handed to `seen`).
fn wait_until(node: &Node, mut seen: impl FnMut(Event), mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        for event in node.next_events(64, Duration::from_millis(50)).unwrap() {
            seen(event);
        }
    }
    cond()
}

fn connected(a: &Node, b: &Node) -> bool {
    a.connected_peers().contains(&b.peer_id()) && b.connected_peers().contains(&a.peer_id())
}

/// Publishes `data` from `from` every 100 ms until `to` delivers it; returns the source.
fn gossip_until_received(from: &Node, to: &Node, data: &[u8]) -> Option<PeerId> {
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        from.publish(TOPIC, data.to_vec()).unwrap();
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until {
            for event in to.next_events(64, Duration::from_millis(20)).unwrap() {
                if let Event::Gossip {
                    topic,
                    source,
                    data: got,
                } = event
                {
                    if topic == TOPIC && got == data {
                        return Some(source);
                    }
                }
            }
        }
    }
    None
}

fn ask(from: &Node, to: &Node, protocol: &str, data: &[u8], timeout: Duration) -> u64 {
    from.request(to.peer_id(), protocol, data.to_vec(), timeout)
        .unwrap()
}

fn answer_one(node: &Node, reply: Result<&[u8], &str>) -> (PeerId, String, Vec<u8>) {
    let Some(Event::InboundRequest {
        id,
        peer,
        protocol,
        data,
    }) = wait_event(node, |e| matches!(e, Event::InboundRequest { .. }))
    else {
        panic!("no inbound request");
    };
    match reply {
        Ok(bytes) => node.respond(id, bytes.to_vec()).unwrap(),
        Err(msg) => node.respond_error(id, msg).unwrap(),
    }
    (peer, protocol, data)
}

fn response(node: &Node, request_id: u64) -> Result<Vec<u8>, String> {
    match wait_event(
        node,
        |e| matches!(e, Event::Response { request_id: r, .. } if *r == request_id),
    ) {
        Some(Event::Response { result, .. }) => result,
        _ => panic!("no response to request {request_id}"),
    }
}

#[test]
fn two_nodes_gossip_and_request() {
    let a = start(config());
    let b = start(joining(&[&a]));
    a.subscribe(TOPIC).unwrap();
    b.subscribe(TOPIC).unwrap();
    assert!(wait_until(&a, drop, || connected(&a, &b)));

    assert_eq!(gossip_until_received(&a, &b, b"from a"), Some(a.peer_id()));
    assert_eq!(gossip_until_received(&b, &a, b"from b"), Some(b.peer_id()));

    let id = ask(
        &b,
        &a,
        "/bacalhau/compute/1",
        b"bid?",
        Duration::from_secs(10),
    );
    let (peer, protocol, data) = answer_one(&a, Ok(b"yes"));
    assert_eq!(
        (peer, protocol.as_str(), data.as_slice()),
        (b.peer_id(), "/bacalhau/compute/1", &b"bid?"[..])
    );
    assert_eq!(response(&b, id), Ok(b"yes".to_vec()));

    let id = ask(&b, &a, "/p", b"x", Duration::from_secs(10));
    answer_one(&a, Err("no such job"));
    let err = response(&b, id).unwrap_err();
    assert!(
        err.contains("no such job") && err.contains("failed to handle /p"),
        "{err}"
    );

    let stats = a.stats();
    assert!(
        stats.messages_in >= 3 && stats.messages_out >= 3,
        "{stats:?}"
    );
    assert!(stats.bytes_in > 0 && stats.bytes_out > 0);
}

#[test]
fn request_errors_are_reported() {
    let a = start(config());
    let b = start(joining(&[&a]));
    assert!(wait_until(&a, drop, || connected(&a, &b)));

    // Never answered: times out after the request's own timeout.
    let started = Instant::now();
    let id = ask(&b, &a, "/slow", b"", Duration::from_millis(300));
    let err = response(&b, id).unwrap_err();
    assert!(err.contains("did not answer /slow within 0.300s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A peer nobody knows an address for.
    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let id = b
        .request(stranger, "/p", vec![], Duration::from_secs(10))
        .unwrap();
    let err = response(&b, id).unwrap_err();
    assert!(err.contains("not reachable"), "{err}");

    // Too large for the configured maximum: refused before sending.
    let big = vec![0u8; bacalhau_transport::DEFAULT_MAX_MESSAGE_SIZE + 1];
    assert!(b.publish(TOPIC, big.clone()).is_err());
    assert!(b
        .request(a.peer_id(), "/p", big, Duration::from_secs(1))
        .is_err());
}

fn requester(bootstrap: &[&Node]) -> Config {
    let mut config = joining(bootstrap);
    config.role = Role::Requester;
    config
}

fn requesters_of(node: &Node) -> HashSet<PeerId> {
    node.requesters().into_iter().collect()
}

#[test]
fn compute_nodes_find_every_requester_and_not_each_other() {
    let r1 = start(requester(&[]));
    let r2 = start(requester(&[&r1]));
    // Each compute node only knows r1; hellos tell them about r2.
    let c1 = start(joining(&[&r1]));
    let c2 = start(joining(&[&r1]));
    let both = HashSet::from([r1.peer_id(), r2.peer_id()]);
    let mut ups = HashSet::new();
    assert!(
        wait_until(
            &c1,
            |e| {
                if let Event::RequesterUp(p) = e {
                    ups.insert(p);
                }
            },
            || requesters_of(&c1) == both && requesters_of(&c2) == both
        ),
        "c1 {:?} c2 {:?}",
        c1.requesters(),
        c2.requesters()
    );
    assert_eq!(ups, both, "one RequesterUp per requester");
    assert!(connected(&r1, &r2), "requesters connect to each other");
    assert_eq!(requesters_of(&r1), HashSet::from([r2.peer_id()]));
    // No full mesh: the compute nodes never dial each other.
    assert!(!c1.connected_peers().contains(&c2.peer_id()));
    assert_eq!(c1.connected_peers().len(), 2);
    assert!(c1.stats().discovery_messages >= 2);

    // A requester reaches a compute node that connected to it, and the other way round
    // (c2 knowing r2 from the roster comes before its connection to r2 is up: wait for it).
    assert!(
        wait_until(&r2, |_| {}, || connected(&r2, &c2)),
        "c2 never connected to r2"
    );
    let id = ask(&r2, &c2, "/direct", b"hi", Duration::from_secs(10));
    answer_one(&c2, Ok(b"hello"));
    assert_eq!(response(&r2, id), Ok(b"hello".to_vec()));
}

#[test]
fn a_restarted_requester_is_redialed_at_its_address() {
    let key = Keypair::generate_ed25519();
    let mut first = requester(&[]);
    first.keypair = key.clone();
    let r = start(first);
    let listen = r.listen_addrs()[0].clone();
    let c = start(joining(&[&r]));
    assert!(wait_until(&c, drop, || c.requesters() == vec![r.peer_id()]));
    r.close();
    drop(r);
    assert!(
        wait_event(&c, |e| matches!(e, Event::RequesterDown(_))).is_some(),
        "the compute node sees the requester go"
    );
    let mut again = requester(&[]);
    again.keypair = key.clone();
    again.listen = vec![listen];
    let r = start(again);
    assert!(
        wait_event(
            &c,
            |e| matches!(e, Event::RequesterUp(p) if *p == r.peer_id())
        )
        .is_some(),
        "the compute node redials the requester where it listened"
    );
    assert_eq!(c.requesters(), vec![r.peer_id()]);
}

#[test]
fn a_compute_node_accepts_a_bounded_number_of_peers() {
    let mut limited = config();
    limited.max_peers = 1;
    let c = start(limited);
    let a = start(joining(&[&c]));
    assert!(wait_until(&a, drop, || connected(&a, &c)));
    let b = start(joining(&[&c]));
    assert!(
        wait_until(&c, drop, || c.stats().refused_over_limit >= 1),
        "{:?}",
        c.stats()
    );
    assert!(!c.connected_peers().contains(&b.peer_id()));
    // A requester is never refused: it said hello, so it is exempt.
    let r = start(requester(&[]));
    c.dial(addr(&r)).unwrap();
    assert!(wait_until(&c, drop, || c.requesters() == vec![r.peer_id()]));
}

#[test]
fn a_node_with_another_swarm_key_stays_out() {
    let key =
        bacalhau_transport::parse_swarm_key(&bacalhau_transport::generate_swarm_key()).unwrap();
    let other =
        bacalhau_transport::parse_swarm_key(&bacalhau_transport::generate_swarm_key()).unwrap();
    let private = |mut c: Config, k: [u8; 32]| {
        c.psk = Some(k);
        c
    };
    let a = start(private(config(), key));
    let b = start(private(joining(&[&a]), key));
    let intruder = start(private(joining(&[&a, &b]), other));
    let open = start(joining(&[&a]));
    for n in [&a, &b, &intruder, &open] {
        n.subscribe(TOPIC).unwrap();
    }

    assert!(wait_until(&a, drop, || connected(&a, &b)));
    let mut intruder_events = Vec::new();
    assert!(
        wait_until(
            &intruder,
            |e| intruder_events.push(e),
            || { intruder.stats().failed_dials >= 2 && a.stats().failed_incoming >= 1 }
        ),
        "the intruder's dials should fail: {:?} {:?}",
        intruder.stats(),
        a.stats()
    );
    assert!(wait_until(&open, drop, || open.stats().failed_dials >= 1));

    assert_eq!(gossip_until_received(&a, &b, b"private"), Some(a.peer_id()));
    for n in [&a, &b] {
        let peers = n.connected_peers();
        assert!(!peers.contains(&intruder.peer_id()) && !peers.contains(&open.peer_id()));
    }
    assert!(intruder.connected_peers().is_empty() && open.connected_peers().is_empty());
    intruder_events.extend(
        intruder
            .next_events(1024, Duration::from_millis(10))
            .unwrap(),
    );
    assert!(
        !intruder_events
            .iter()
            .any(|e| matches!(e, Event::Gossip { .. } | Event::PeerConnected(_))),
        "{intruder_events:?}"
    );
    let id = ask(&intruder, &a, "/p", b"", Duration::from_secs(10));
    assert!(response(&intruder, id).is_err());
}

#[test]
fn allow_list_refuses_connections_and_drops_relayed_gossip() {
    let b_key = Keypair::generate_ed25519();
    let b_id = b_key.public().to_peer_id();
    let mut a_config = config();
    a_config.allow_list = Some(HashSet::from([b_id]));
    let a = start(a_config);
    let mut b_config = joining(&[&a]);
    b_config.keypair = b_key;
    let b = start(b_config);
    // c is not allowed by a but may talk to b, which relays c's gossip to a.
    let c = start(joining(&[&a, &b]));
    for n in [&a, &b, &c] {
        n.subscribe(TOPIC).unwrap();
    }
    assert!(wait_until(&a, drop, || connected(&a, &b)));
    assert!(wait_until(&c, drop, || connected(&b, &c)));
    assert!(wait_until(&a, drop, || a.stats().denied_connections >= 1));
    assert!(!a.connected_peers().contains(&c.peer_id()));

    let mut a_got_from_c = false;
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end && a.stats().dropped_by_allow_list == 0 {
        c.publish(TOPIC, b"from c".to_vec()).unwrap();
        for e in a.next_events(64, Duration::from_millis(100)).unwrap() {
            a_got_from_c |= matches!(e, Event::Gossip { source, .. } if source == c.peer_id());
        }
    }
    assert!(a.stats().dropped_by_allow_list >= 1, "{:?}", a.stats());
    assert!(!a_got_from_c);
    assert_eq!(gossip_until_received(&c, &b, b"c to b"), Some(c.peer_id()));

    let id = ask(&a, &c, "/p", b"", Duration::from_secs(5));
    let err = response(&a, id).unwrap_err();
    assert!(err.contains("allow-list"), "{err}");
}

/// A forged gossip message: a peer publishes unsigned messages whose `source` claims to be
/// another node (gossipsub's `MessageAuthenticity::Author`; its own validation switched off).
/// The public API cannot sign with one key while claiming another source, so "unsigned but
/// claiming a source" is the forgery tested; strict validation refuses both the same way
/// (no valid signature by the claimed source's key).
#[test]
fn forged_gossip_is_rejected() {
    use futures::StreamExt;
    use libp2p::gossipsub;

    let victim = start(config());
    let a = start(config());
    a.subscribe(TOPIC).unwrap();
    let target = addr(&a);
    let claimed = victim.peer_id();
    let stop = Arc::new(AtomicBool::new(false));
    let attacker_stop = Arc::clone(&stop);
    let attacker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::None)
                .heartbeat_interval(Duration::from_millis(100))
                .build()
                .unwrap();
            let mut swarm = libp2p::SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    Default::default(),
                    libp2p::noise::Config::new,
                    libp2p::yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| {
                    gossipsub::Behaviour::<
                        gossipsub::IdentityTransform,
                        gossipsub::AllowAllSubscriptionFilter,
                    >::new(
                        gossipsub::MessageAuthenticity::Author(claimed), config
                    )
                    .unwrap()
                })
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
            swarm
                .behaviour_mut()
                .subscribe(&gossipsub::IdentTopic::new(TOPIC))
                .unwrap();
            swarm.dial(target).unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0u32;
            while !attacker_stop.load(Ordering::Relaxed) {
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    _ = tick.tick() => {
                        n += 1;
                        let _ = swarm.behaviour_mut().publish(
                            gossipsub::IdentTopic::new(TOPIC),
                            format!("I am {claimed} #{n}").into_bytes(),
                        );
                    }
                }
            }
        });
    });

    let mut delivered = Vec::new();
    let rejected = wait_until(
        &a,
        |e| {
            if let Event::Gossip { source, .. } = e {
                delivered.push(source);
            }
        },
        || a.stats().rejected_by_validation >= 1,
    );
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(
        rejected,
        "the forged messages were not counted: {:?}",
        a.stats()
    );
    assert!(
        delivered.is_empty(),
        "forged gossip delivered as from {delivered:?}"
    );
}

#[test]
fn close_is_idempotent_and_final() {
    let a = start(config());
    let peer = a.peer_id();
    a.close();
    a.close();
    assert!(a.publish(TOPIC, vec![1]).is_err());
    // Events queued before the close may still be read; then the queue reports "closed"
    // at once instead of blocking for the timeout.
    let started = Instant::now();
    while !a
        .next_events(1024, Duration::from_secs(5))
        .unwrap()
        .is_empty()
    {}
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(a.peer_id(), peer);
}

#[test]
fn listening_twice_on_one_port_fails_cleanly() {
    let a = start(config());
    let mut second = config();
    second.listen = vec![a.listen_addrs()[0].clone()];
    let err = Node::start(second).unwrap_err().to_string();
    assert!(
        err.contains("cannot listen on") && err.contains("in use"),
        "{err}"
    );
}
