//! Kubo-identical UnixFS CIDs: what `ipfs add` prints for a file or a directory tree, computed
//! locally without storing any block. Byte rules and known answers: `shared/reference/unixfs.md`.
//! See README.md for the flow and vocabulary.
//!
//! ```
//! use bacalhau_unixfs::{cid_of_bytes, Profile};
//! let cid = cid_of_bytes(b"hello world", &Profile::UNIXFS_V0_2015).unwrap();
//! assert_eq!(cid.to_string(), "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD");
//! ```

mod cid;
mod dir;
mod error;
mod file;
mod murmur3;
mod pb;
mod profile;
mod walk;

use std::path::Path;

pub use cid::{Cid, CidVersion, Codec};
pub use dir::{directory_node, symlink_node, Entry};
pub use error::CidError;
pub use murmur3::murmur3_x64_128_h1;
pub use pb::{encode_node, DataType, Link, UnixfsData};
pub use profile::{Profile, ShardEstimation};

/// The root of a DAG: its CID and cumulative size (the `Tsize` a parent's link would carry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// The root's CID.
    pub cid: Cid,
    /// Encoded size of every block of the DAG, summed.
    pub tsize: u64,
}

/// How a path is added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Import settings.
    pub profile: Profile,
    /// Include dot files (`ipfs add -H`); skipped otherwise.
    pub hidden: bool,
    /// Add what symlinks point to instead of UnixFS symlink nodes.
    pub dereference: bool,
    /// Hashing threads: 0 = all cores (rayon's global pool), 1 = the calling thread only.
    pub threads: usize,
}

/// The CID `ipfs add [-r]` prints for `path` (a file, a directory or a symlink).
pub fn cid_of_path(path: &Path, options: &Options) -> Result<Cid, CidError> {
    node_of_path(path, options).map(|n| n.cid)
}

/// As [`cid_of_path`], with the cumulative size.
pub fn node_of_path(path: &Path, options: &Options) -> Result<Node, CidError> {
    options.profile.validate()?;
    with_threads(options.threads, |parallel| {
        walk::Walker { options, parallel }.node(path, &[])
    })
}

/// The CID of a file holding `data`, hashed on all cores.
pub fn cid_of_bytes(data: &[u8], profile: &Profile) -> Result<Cid, CidError> {
    node_of_bytes(data, profile, 0).map(|n| n.cid)
}

/// The root of a file holding `data`, on `threads` threads (0 = all cores).
pub fn node_of_bytes(data: &[u8], profile: &Profile, threads: usize) -> Result<Node, CidError> {
    profile.validate()?;
    with_threads(threads, |parallel| {
        Ok(file::bytes_node(data, profile, parallel).node)
    })
}

/// Runs `work` with the requested parallelism; `work` gets whether it may use rayon.
fn with_threads<T: Send>(
    threads: usize,
    work: impl FnOnce(bool) -> Result<T, CidError> + Send,
) -> Result<T, CidError> {
    match threads {
        0 => work(true),
        1 => work(false),
        n => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| CidError::ThreadPool {
                threads: n,
                reason: e.to_string(),
            })?
            .install(|| work(true)),
    }
}
