//! The one error type of the merge crate.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while packing, unpacking or merging results.
#[derive(Debug, Error)]
pub enum MergeError {
    /// A file system or archive read/write failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("read archive", "create directory", ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An archive entry would write outside the destination or is of a forbidden kind.
    #[error("refusing archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's name as stored in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A file in the directory being packed cannot be packed safely.
    #[error("refusing to pack {}: {reason}", path.display())]
    UnsafeSource {
        /// The offending file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// Two results (or a result and the output directory) hold the same path.
    #[error("cannot merge results: {path} exists in more than one result. Try --raw")]
    Conflict {
        /// Relative path of the colliding file.
        path: String,
    },
    /// Raw mode needs one folder per archive, named after the archive file.
    #[error("cannot keep raw results: two archives are named {name:?}")]
    DuplicateArchiveName {
        /// The shared archive stem.
        name: String,
    },
}

impl MergeError {
    /// Wraps an I/O error with the operation and path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| MergeError::Io { op, path, source }
    }
}
