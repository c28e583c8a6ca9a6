//! The one error type of the transport crate.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while configuring, starting or using a [`crate::Node`].
#[derive(Debug, Error)]
pub enum TransportError {
    /// The configuration is unusable (bad multiaddr, missing `/p2p/` in a peer address, ...).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// A swarm key file or string is not in Kubo's `swarm.key` format.
    #[error("invalid swarm key: {0}")]
    SwarmKey(String),
    /// The node identity file cannot be read, created or decoded.
    #[error("cannot use identity key file {}: {reason}", path.display())]
    Identity {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The swarm could not be built or could not listen on an address.
    #[error("cannot start libp2p node: {0}")]
    Start(String),
    /// A peer id string does not parse.
    #[error("invalid peer id {0:?}")]
    PeerId(String),
    /// A message is larger than the configured maximum.
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Size of the rejected payload.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The node has been closed (or its background thread has stopped).
    #[error("the libp2p node is closed")]
    Closed,
    /// The node was started in another process; the background thread does not survive fork.
    #[error("the libp2p node was started in process {started} and cannot be used in process {current} (after fork); start a new node")]
    Forked {
        /// The process that started the node.
        started: u32,
        /// The calling process.
        current: u32,
    },
}

impl TransportError {
    /// Wraps an I/O error with the operation and path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| TransportError::Io { op, path, source }
    }
}
