//! Where the events of many nodes meet: one bounded queue that any number of nodes write into
//! and one reader drains in batches.
//!
//! A process that simulates a thousand nodes must not run a thousand threads waiting for
//! events: every node of the process writes `(key, event)` into one [`EventHub`], and one
//! thread (the Python event pump) drains it with [`EventHub::next_events`] and routes each
//! event to its node by key. A node started on its own ([`crate::Node::start`]) gets a private
//! hub, so its owner can still read only its events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::node::{lock, Event};

/// Default capacity of a shared hub (events buffered before further ones are dropped).
pub const DEFAULT_HUB_CAPACITY: usize = 262_144;

/// A bounded multi-producer queue of `(node key, event)`.
#[derive(Debug)]
pub struct EventHub {
    tx: SyncSender<(u64, Event)>,
    rx: Mutex<Receiver<(u64, Event)>>,
    next_key: AtomicU64,
}

/// A node's handle on its hub: writes tagged with the node's key.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    key: u64,
    tx: SyncSender<(u64, Event)>,
}

/// Why an event was not queued.
pub(crate) enum EmitError {
    /// The hub is full: the event is dropped (and counted by the caller).
    Full,
    /// Nobody reads the hub any more.
    Closed,
}

impl EventSink {
    pub(crate) fn emit(&self, event: Event) -> Result<(), EmitError> {
        match self.tx.try_send((self.key, event)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(EmitError::Full),
            Err(TrySendError::Disconnected(_)) => Err(EmitError::Closed),
        }
    }
}

impl EventHub {
    /// A hub buffering at most `capacity` events.
    pub fn new(capacity: usize) -> Arc<EventHub> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        Arc::new(EventHub {
            tx,
            rx: Mutex::new(rx),
            next_key: AtomicU64::new(1),
        })
    }

    /// A fresh key for a node writing into this hub (never 0, never reused).
    pub(crate) fn sink(&self) -> EventSink {
        EventSink {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            tx: self.tx.clone(),
        }
    }

    /// Waits up to `timeout` for a first event, then returns it with any others already
    /// queued, at most `max` in all, each with the key of the node it belongs to.
    pub fn next_events(&self, max: usize, timeout: Duration) -> Vec<(u64, Event)> {
        let rx = lock(&self.rx);
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        match rx.recv_timeout(timeout) {
            Ok(ev) => out.push(ev),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return out,
        }
        while out.len() < max {
            match rx.try_recv() {
                Ok(ev) => out.push(ev),
                Err(_) => break,
            }
        }
        out
    }
}

impl EventSink {
    pub(crate) fn key(&self) -> u64 {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_node_key_and_order() {
        let hub = EventHub::new(8);
        let (a, b) = (hub.sink(), hub.sink());
        assert_ne!(a.key(), b.key());
        let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert!(a.emit(Event::ListenAddr(addr.clone())).is_ok());
        assert!(b.emit(Event::ListenAddr(addr.clone())).is_ok());
        assert!(a.emit(Event::ListenAddr(addr.clone())).is_ok());
        let got: Vec<u64> = hub
            .next_events(10, Duration::from_millis(10))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, vec![a.key(), b.key(), a.key()]);
        assert!(hub.next_events(10, Duration::from_millis(1)).is_empty());
    }

    #[test]
    fn a_full_hub_refuses_instead_of_blocking() {
        let hub = EventHub::new(1);
        let sink = hub.sink();
        let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert!(sink.emit(Event::ListenAddr(addr.clone())).is_ok());
        assert!(matches!(
            sink.emit(Event::ListenAddr(addr)),
            Err(EmitError::Full)
        ));
    }
}
