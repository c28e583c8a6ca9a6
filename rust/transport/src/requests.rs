//! Requests and replies on `/bacalhau/rpc/1`: the application's requests with their
//! deadlines, inbound requests waiting for the application's answer, and the hellos the
//! network layer sends and answers itself (`discovery.rs`).

use std::collections::HashMap;
use std::time::Duration;

use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use tokio::time::Instant;

use crate::codec::{RpcRequest, RpcResponse};
use crate::node::Event;
use crate::roster::HELLO;
use crate::stats::Counters;
use crate::swarm::Loop;

pub(crate) struct PendingRequest {
    id: u64,
    peer: PeerId,
    protocol: String,
    timeout: Duration,
    deadline: Instant,
}

/// The node's requests in flight.
#[derive(Default)]
pub(crate) struct Requests {
    outbound: HashMap<OutboundRequestId, PendingRequest>,
    inbound: HashMap<u64, (InboundRequestId, ResponseChannel<RpcResponse>)>,
    next_inbound: u64,
    /// Hellos sent, by request id, to the peer they went to.
    pub(crate) hellos: HashMap<OutboundRequestId, PeerId>,
}

impl Requests {
    /// The earliest deadline of an application request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.outbound.values().map(|p| p.deadline).min()
    }
}

impl Loop {
    pub(crate) fn send_request(
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
        if protocol == HELLO {
            self.emit(refuse(format!("{HELLO} is reserved for the network layer")));
            return;
        }
        let addrs = self.known_addrs(&peer);
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
        self.requests.outbound.insert(
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

    pub(crate) fn respond(&mut self, id: u64, result: Result<Vec<u8>, String>) {
        if let Some((_, channel)) = self.requests.inbound.remove(&id) {
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

    pub(crate) fn expire_requests(&mut self) {
        let now = Instant::now();
        let expired: Vec<OutboundRequestId> = self
            .requests
            .outbound
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(rid, _)| *rid)
            .collect();
        for rid in expired {
            if let Some(p) = self.requests.outbound.remove(&rid) {
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

    pub(crate) fn rpc_event(&mut self, event: request_response::Event<RpcRequest, RpcResponse>) {
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
                if request.protocol == HELLO {
                    self.answer_hello(peer, &request.data, channel);
                    return;
                }
                let id = self.requests.next_inbound;
                self.requests.next_inbound += 1;
                Counters::add(&self.counters().messages_in, 1);
                Counters::add(&self.counters().bytes_in, request.data.len() as u64);
                self.requests.inbound.insert(id, (request_id, channel));
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
                if self.requests.hellos.remove(&request_id).is_some() {
                    if let Ok(data) = response {
                        self.hello_received(peer, &data);
                    }
                    return;
                }
                if let Some(p) = self.requests.outbound.remove(&request_id) {
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
                if self.requests.hellos.remove(&request_id).is_some() {
                    return; // the next hello round (or reconnection) tries again
                }
                if let Some(p) = self.requests.outbound.remove(&request_id) {
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
                self.requests
                    .inbound
                    .retain(|_, (rid, _)| *rid != request_id);
            }
            E::ResponseSent { .. } => {}
        }
    }
}
