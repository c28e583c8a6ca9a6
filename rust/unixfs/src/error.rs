//! The one error type of the unixfs crate.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while computing a CID.
#[derive(Debug, Error)]
pub enum CidError {
    /// The profile name is not one of [`crate::Profile::NAMES`].
    #[error("unknown CID profile {name:?}; valid profiles: {valid}")]
    UnknownProfile {
        /// The name that was asked for.
        name: String,
        /// The valid names, comma separated.
        valid: String,
    },
    /// A hand-built [`crate::Profile`] breaks a rule (CIDv0 with raw leaves, zero chunk size...).
    #[error("invalid CID profile: {0}")]
    InvalidProfile(&'static str),
    /// The path to add does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// Reading the file system failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "list directory", ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Only regular files, directories and symlinks can be added (as with `ipfs add`).
    #[error("{}: unsupported file type (only files, directories and symlinks can be added)", path.display())]
    UnsupportedFileType {
        /// The socket, fifo or device.
        path: PathBuf,
    },
    /// The file's length changed while it was being hashed; the CID would describe no real state.
    #[error("{}: file changed size while it was being hashed", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// Following symlinks (`dereference`) led back into a directory being added.
    #[error("{}: symlink loop while dereferencing", path.display())]
    SymlinkLoop {
        /// The link that closes the loop.
        path: PathBuf,
    },
    /// A directory built from entries holds the same name twice.
    #[error("duplicate entry name {0:?} in one directory")]
    DuplicateName(String),
    /// Two names agree in all 64 bits of the HAMT key hash, so no shard level can split them.
    #[error("HAMT cannot separate entries {first:?} and {second:?}: their key hashes are equal")]
    HashCollision {
        /// One name.
        first: String,
        /// The other.
        second: String,
    },
    /// The worker thread pool could not be started.
    #[error("cannot start {threads} hashing threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// Why rayon refused.
        reason: String,
    },
}

impl CidError {
    /// Wraps an I/O error with the operation and path; a missing path becomes [`CidError::NotFound`].
    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| {
            if source.kind() == io::ErrorKind::NotFound {
                CidError::NotFound { path }
            } else {
                CidError::Io { op, path, source }
            }
        }
    }
}
