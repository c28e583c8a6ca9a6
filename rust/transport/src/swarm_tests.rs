//! Tests of the swarm loop that drive a raw gossipsub swarm against real nodes.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::time::Instant;

use crate::behaviour::{build_transport, gossip_config, MAX_CONTROL_RECEIVE, MAX_IHAVE_IDS};
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
