//! `NativeNode`, `next_events`, `generate_swarm_key`, `parse_swarm_key`: the libp2p node of
//! `rust/transport` behind a flat Python class. Every node of the process writes its events
//! into one process-wide hub, drained by `next_events` (one reader for all nodes; each event
//! carries its node's `key`). Every call that may block (start, close, waiting for events,
//! reading stats) runs without the GIL.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bacalhau_transport::{
    load_or_create_keypair, parse_multiaddr, parse_peer_id, Config, Event, EventHub, Node, Role,
    TransportError, DEFAULT_HUB_CAPACITY,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::Record;
use crate::NativeTransportError;

const CONFIG_KEYS: [&str; 18] = [
    "listen",
    "peers",
    "role",
    "max_peers",
    "swarm_key",
    "allow_list",
    "max_message_size",
    "gossip_heartbeat_ms",
    "announce_interval_ms",
    "redial_min_ms",
    "redial_max_ms",
    "roster_ttl_ms",
    "idle_timeout_ms",
    "ping_interval_ms",
    "handshake_timeout_ms",
    "max_request_timeout_ms",
    "event_queue",
    "agent_version",
];

/// Most events returned by one `next_events` call.
const MAX_BATCH: usize = 65_536;

/// The process's event hub (made again in a forked child, whose parent's nodes are not in it).
static HUB: Mutex<Option<(u32, Arc<EventHub>)>> = Mutex::new(None);

fn hub() -> Arc<EventHub> {
    let mut hub = HUB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pid = std::process::id();
    match hub.as_ref() {
        Some((owner, shared)) if *owner == pid => Arc::clone(shared),
        _ => {
            let shared = EventHub::new(DEFAULT_HUB_CAPACITY);
            *hub = Some((pid, Arc::clone(&shared)));
            shared
        }
    }
}

fn map_err(e: TransportError) -> PyErr {
    NativeTransportError::new_err(e.to_string())
}

fn millis(r: &Record<'_>, key: &str, into: &mut Duration) -> PyResult<()> {
    if let Some(ms) = r.get::<u64>(key, "int (milliseconds)")? {
        if ms == 0 {
            return Err(r.value_error(key, "must be positive"));
        }
        *into = Duration::from_millis(ms);
    }
    Ok(())
}

fn node_config(
    obj: &Bound<'_, PyAny>,
    key_file: &std::path::Path,
    py: Python<'_>,
) -> PyResult<Config> {
    let r = Record::new(obj, "NodeConfig", &CONFIG_KEYS)?;
    let listen: Vec<String> = r.get("listen", "list[str]")?.unwrap_or_default();
    let peers: Vec<String> = r.get("peers", "list[str]")?.unwrap_or_default();
    let swarm_key: Option<Vec<u8>> = match r.raw("swarm_key")? {
        None => None,
        Some(v) => Some(
            v.cast::<PyBytes>()
                .map_err(|_| r.type_error("swarm_key", "bytes (32) or None", &v))?
                .as_bytes()
                .to_vec(),
        ),
    };
    let allow_list: Option<Vec<String>> = r.get("allow_list", "list[str] or None")?;
    let role = match r.get::<String>("role", "str")?.as_deref() {
        None | Some("compute") => Role::Compute,
        Some("requester") => Role::Requester,
        Some(other) => {
            return Err(r.value_error(
                "role",
                &format!("must be \"requester\" or \"compute\", got {other:?}"),
            ))
        }
    };

    let path = key_file.to_path_buf();
    let keypair = py
        .detach(|| load_or_create_keypair(&path))
        .map_err(map_err)?;
    let mut config = Config::new(keypair);
    config.role = role;
    if let Some(n) = r.get::<u32>("max_peers", "int")? {
        config.max_peers = n;
    }
    config.listen = listen
        .iter()
        .map(|a| parse_multiaddr(a))
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    config.bootstrap = peers
        .iter()
        .map(|a| parse_multiaddr(a))
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    if let Some(key) = swarm_key {
        let key: [u8; 32] = key.try_into().map_err(|k: Vec<u8>| {
            r.value_error("swarm_key", &format!("must be 32 bytes, got {}", k.len()))
        })?;
        config.psk = Some(key);
    }
    if let Some(peers) = allow_list {
        let set = peers
            .iter()
            .map(|p| parse_peer_id(p))
            .collect::<Result<HashSet<_>, _>>()
            .map_err(map_err)?;
        config.allow_list = Some(set);
    }
    if let Some(size) = r.get::<usize>("max_message_size", "int")? {
        config.max_message_size = size;
    }
    millis(&r, "gossip_heartbeat_ms", &mut config.gossip_heartbeat)?;
    millis(&r, "announce_interval_ms", &mut config.announce_interval)?;
    millis(&r, "redial_min_ms", &mut config.redial_min)?;
    millis(&r, "redial_max_ms", &mut config.redial_max)?;
    millis(&r, "roster_ttl_ms", &mut config.roster_ttl)?;
    millis(&r, "idle_timeout_ms", &mut config.idle_timeout)?;
    millis(&r, "ping_interval_ms", &mut config.ping_interval)?;
    millis(&r, "handshake_timeout_ms", &mut config.handshake_timeout)?;
    millis(
        &r,
        "max_request_timeout_ms",
        &mut config.max_request_timeout,
    )?;
    if let Some(n) = r.get::<usize>("event_queue", "int")? {
        config.event_queue = n;
    }
    if let Some(agent) = r.get::<String>("agent_version", "str")? {
        config.agent_version = agent;
    }
    Ok(config)
}

fn event_tuple(py: Python<'_>, key: u64, event: Event) -> PyResult<Py<PyAny>> {
    let obj = match event {
        Event::Gossip {
            topic,
            source,
            data,
        } => (
            key,
            "gossip",
            topic,
            source.to_string(),
            PyBytes::new(py, &data),
        )
            .into_pyobject(py)?
            .into_any(),
        Event::InboundRequest {
            id,
            peer,
            protocol,
            data,
        } => (
            key,
            "request",
            id,
            peer.to_string(),
            protocol,
            PyBytes::new(py, &data),
        )
            .into_pyobject(py)?
            .into_any(),
        Event::Response {
            request_id,
            result: Ok(data),
        } => (key, "response", request_id, true, PyBytes::new(py, &data))
            .into_pyobject(py)?
            .into_any(),
        Event::Response {
            request_id,
            result: Err(message),
        } => (key, "response", request_id, false, message)
            .into_pyobject(py)?
            .into_any(),
        Event::PeerConnected(peer) => (key, "connected", peer.to_string())
            .into_pyobject(py)?
            .into_any(),
        Event::PeerDisconnected(peer) => (key, "disconnected", peer.to_string())
            .into_pyobject(py)?
            .into_any(),
        Event::ListenAddr(addr) => (key, "listen_addr", addr.to_string())
            .into_pyobject(py)?
            .into_any(),
        Event::RequesterUp(peer) => (key, "requester_up", peer.to_string())
            .into_pyobject(py)?
            .into_any(),
        Event::RequesterDown(peer) => (key, "requester_down", peer.to_string())
            .into_pyobject(py)?
            .into_any(),
        Event::PeerSubscribed { peer, topic } => (key, "subscribed", peer.to_string(), topic)
            .into_pyobject(py)?
            .into_any(),
    };
    Ok(obj.unbind())
}

/// Waits up to `timeout_ms` for an event of any node of this process, then returns up to
/// `max` queued events, each `(node key, kind, ...)`. Runs without the GIL.
#[pyfunction]
pub fn next_events(py: Python<'_>, max: usize, timeout_ms: u64) -> PyResult<Vec<Py<PyAny>>> {
    let max = max.min(MAX_BATCH);
    let hub = hub();
    let events = py.detach(|| hub.next_events(max, Duration::from_millis(timeout_ms)));
    events
        .into_iter()
        .map(|(key, e)| event_tuple(py, key, e))
        .collect()
}

/// The file descriptor an event loop watches: readable once an event arrives after
/// `clear_wake()` (then drain with `next_events(max, 0)`); None where it could not be made.
#[pyfunction]
pub fn wake_fd() -> Option<i32> {
    hub().wake_fd()
}

/// Empty the wake-up descriptor and arm it for the next event; drain the events after it.
#[pyfunction]
pub fn clear_wake() {
    hub().clear_wake();
}

/// A running libp2p node (gossipsub + request/response), a task on the process's runtime.
#[pyclass(frozen, module = "bacalhau._native")]
pub struct NativeNode {
    node: Node,
    peer_id: String,
}

#[pymethods]
impl NativeNode {
    #[new]
    fn new(py: Python<'_>, config: &Bound<'_, PyAny>, key_file: PathBuf) -> PyResult<Self> {
        let config = node_config(config, &key_file, py)?;
        let hub = hub();
        let node = py
            .detach(|| Node::start_in(config, &hub))
            .map_err(map_err)?;
        let peer_id = node.peer_id().to_string();
        Ok(NativeNode { node, peer_id })
    }

    #[getter]
    fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The node's key in the process's event hub (the first item of its events).
    #[getter]
    fn key(&self) -> u64 {
        self.node.key()
    }

    fn requesters(&self) -> Vec<String> {
        self.node
            .requesters()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn listen_addrs(&self) -> Vec<String> {
        self.node
            .listen_addrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn connected_peers(&self) -> Vec<String> {
        self.node
            .connected_peers()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn subscribe(&self, topic: &str) -> PyResult<()> {
        self.node.subscribe(topic).map_err(map_err)
    }

    fn unsubscribe(&self, topic: &str) -> PyResult<()> {
        self.node.unsubscribe(topic).map_err(map_err)
    }

    fn publish(&self, topic: &str, data: &[u8]) -> PyResult<()> {
        self.node.publish(topic, data.to_vec()).map_err(map_err)
    }

    fn dial(&self, addr: &str) -> PyResult<()> {
        let addr = parse_multiaddr(addr).map_err(map_err)?;
        self.node.dial(addr).map_err(map_err)
    }

    fn request(&self, peer: &str, protocol: &str, data: &[u8], timeout_s: f64) -> PyResult<u64> {
        let timeout = Duration::try_from_secs_f64(timeout_s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "timeout_s must be a positive number, got {timeout_s}"
                ))
            })?;
        let peer = parse_peer_id(peer).map_err(map_err)?;
        self.node
            .request(peer, protocol, data.to_vec(), timeout)
            .map_err(map_err)
    }

    fn respond(&self, inbound_id: u64, data: &[u8]) -> PyResult<()> {
        self.node
            .respond(inbound_id, data.to_vec())
            .map_err(map_err)
    }

    fn respond_error(&self, inbound_id: u64, message: &str) -> PyResult<()> {
        self.node
            .respond_error(inbound_id, message)
            .map_err(map_err)
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = py.detach(|| self.node.stats());
        let dict = PyDict::new(py);
        for (name, value) in stats.fields() {
            dict.set_item(name, value)?;
        }
        Ok(dict)
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.node.close());
    }
}

/// The peer id of the identity in `key_file`, creating the key (mode 0600) if absent.
#[pyfunction]
pub fn load_peer_id(py: Python<'_>, key_file: PathBuf) -> PyResult<String> {
    let keypair = py
        .detach(|| load_or_create_keypair(&key_file))
        .map_err(map_err)?;
    Ok(keypair.public().to_peer_id().to_string())
}

/// A fresh swarm key in Kubo's `swarm.key` format.
#[pyfunction]
pub fn generate_swarm_key() -> String {
    bacalhau_transport::generate_swarm_key()
}

/// The 32-byte key of a Kubo `swarm.key` text.
#[pyfunction]
pub fn parse_swarm_key<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyBytes>> {
    let key = bacalhau_transport::parse_swarm_key(text).map_err(map_err)?;
    Ok(PyBytes::new(py, &key))
}
