//! Where the events of many nodes meet: one bounded queue that any number of nodes write into
//! and one reader drains in batches.
//!
//! A process that simulates a thousand nodes must not run a thousand threads waiting for
//! events: every node of the process writes `(key, event)` into one [`EventHub`], and one
//! thread (the Python event pump) drains it with [`EventHub::next_events`] and routes each
//! event to its node by key. A node started on its own ([`crate::Node::start`]) gets a private
//! hub, so its owner can still read only its events.
//!
//! A reader that runs an event loop need not wait in a thread of its own: the hub's wake-up
//! socket ([`EventHub::wake_fd`]) becomes readable when an event arrives for a reader that
//! has armed it ([`EventHub::clear_wake`]: clear, arm, then drain with a zero timeout), so
//! the loop itself drains the hub when it has something to do, with no thread between.

use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    wake: Option<Arc<Wake>>,
}

/// The wake-up socket pair: one byte is written when an event arrives while armed.
#[derive(Debug)]
struct Wake {
    writer: UnixStream,
    reader: UnixStream,
    armed: AtomicBool,
}

impl Wake {
    fn new() -> Option<Wake> {
        let (reader, writer) = UnixStream::pair().ok()?;
        reader.set_nonblocking(true).ok()?;
        writer.set_nonblocking(true).ok()?;
        Some(Wake {
            writer,
            reader,
            armed: AtomicBool::new(true),
        })
    }

    fn signal(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            // a full socket already holds a wake-up: nothing is lost by not writing
            let _ = (&self.writer).write(&[1]);
        }
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.reader).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
        self.armed.store(true, Ordering::SeqCst);
    }
}

/// A node's handle on its hub: writes tagged with the node's key.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    key: u64,
    tx: SyncSender<(u64, Event)>,
    wake: Option<Arc<Wake>>,
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
            Ok(()) => {
                if let Some(wake) = &self.wake {
                    wake.signal();
                }
                Ok(())
            }
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
            wake: Wake::new().map(Arc::new),
        })
    }

    /// The socket that becomes readable when an event arrives after [`Self::clear_wake`]
    /// (None where the socket pair could not be made: then only blocking reads work).
    pub fn wake_fd(&self) -> Option<RawFd> {
        self.wake.as_ref().map(|w| w.reader.as_raw_fd())
    }

    /// Empty the wake-up socket and arm it again; drain the hub after this call (events
    /// queued before it are not signalled again).
    pub fn clear_wake(&self) {
        if let Some(wake) = &self.wake {
            wake.clear();
        }
    }

    /// A fresh key for a node writing into this hub (never 0, never reused).
    pub(crate) fn sink(&self) -> EventSink {
        EventSink {
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            tx: self.tx.clone(),
            wake: self.wake.clone(),
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
    fn an_armed_wake_socket_signals_the_first_event_once() {
        let hub = EventHub::new(8);
        let sink = hub.sink();
        assert!(hub.wake_fd().is_some());
        let wake = Arc::clone(hub.wake.as_ref().expect("a socket pair"));
        let pending = || {
            let mut buf = [0u8; 8];
            (&wake.reader).read(&mut buf).unwrap_or(0)
        };
        assert_eq!(pending(), 0, "nothing signalled before an event");
        let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert!(sink.emit(Event::ListenAddr(addr.clone())).is_ok());
        assert!(sink.emit(Event::ListenAddr(addr.clone())).is_ok());
        assert_eq!(pending(), 1, "one byte for both events: not armed again yet");
        hub.clear_wake();
        assert_eq!(hub.next_events(10, Duration::ZERO).len(), 2);
        assert!(sink.emit(Event::ListenAddr(addr)).is_ok());
        assert_eq!(pending(), 1, "armed again: the next event signals");
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
