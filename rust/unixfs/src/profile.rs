//! Import settings: the named profiles of Kubo's `ipfs add` (IPIP-499) as plain data.

use crate::cid::CidVersion;
use crate::error::CidError;

/// How a directory's size is estimated to decide whether it becomes a HAMT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardEstimation {
    /// Sum over entries of name length + child CID byte length (Kubo's legacy "links").
    Links,
    /// The serialized size of the plain directory block ("block").
    Block,
}

/// Everything that decides the CID of a given input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// CID version of every node.
    pub cid_version: CidVersion,
    /// File chunks as raw blocks (`bafkrei...`) instead of dag-pb `File` leaves.
    pub raw_leaves: bool,
    /// Fixed chunker size in bytes.
    pub chunk_size: usize,
    /// Most children of one internal file node (balanced layout).
    pub max_links: usize,
    /// How a directory is sized against `shard_threshold`.
    pub estimation: ShardEstimation,
    /// A directory whose estimate is strictly greater than this becomes a HAMT.
    pub shard_threshold: u64,
}

impl Profile {
    /// `unixfs-v0-2015`, the default of `ipfs add`: CIDv0, dag-pb leaves, 256 KiB, 174 links.
    pub const UNIXFS_V0_2015: Profile = Profile {
        cid_version: CidVersion::V0,
        raw_leaves: false,
        chunk_size: 256 * 1024,
        max_links: 174,
        estimation: ShardEstimation::Links,
        shard_threshold: 256 * 1024,
    };

    /// `ipfs add --cid-version=1`: CIDv1 with raw leaves, otherwise as `unixfs-v0-2015`.
    pub const CID_V1: Profile = Profile {
        cid_version: CidVersion::V1,
        raw_leaves: true,
        ..Profile::UNIXFS_V0_2015
    };

    /// `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links, "block" estimation.
    pub const UNIXFS_V1_2025: Profile = Profile {
        cid_version: CidVersion::V1,
        raw_leaves: true,
        chunk_size: 1024 * 1024,
        max_links: 1024,
        estimation: ShardEstimation::Block,
        shard_threshold: 256 * 1024,
    };

    /// The profile names accepted by [`Profile::by_name`]; the first is the default.
    pub const NAMES: [&'static str; 3] = ["unixfs-v0-2015", "cid-v1", "unixfs-v1-2025"];

    /// Looks a profile up by name.
    pub fn by_name(name: &str) -> Result<Profile, CidError> {
        match name {
            "unixfs-v0-2015" => Ok(Profile::UNIXFS_V0_2015),
            "cid-v1" => Ok(Profile::CID_V1),
            "unixfs-v1-2025" => Ok(Profile::UNIXFS_V1_2025),
            _ => Err(CidError::UnknownProfile {
                name: name.to_owned(),
                valid: Profile::NAMES.join(", "),
            }),
        }
    }

    /// Checks a hand-built profile.
    pub fn validate(&self) -> Result<(), CidError> {
        if self.cid_version == CidVersion::V0 && self.raw_leaves {
            return Err(CidError::InvalidProfile("raw leaves need CIDv1"));
        }
        if self.chunk_size == 0 {
            return Err(CidError::InvalidProfile("chunk size must be positive"));
        }
        if self.max_links < 2 {
            return Err(CidError::InvalidProfile(
                "a file node needs room for 2 links",
            ));
        }
        Ok(())
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::UNIXFS_V0_2015
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_and_validates() {
        for name in Profile::NAMES {
            assert!(
                Profile::by_name(name).and_then(|p| p.validate()).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = Profile::by_name("v2").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown CID profile \"v2\"; valid profiles: unixfs-v0-2015, cid-v1, unixfs-v1-2025"
        );
    }

    #[test]
    fn v0_with_raw_leaves_is_refused() {
        let p = Profile {
            raw_leaves: true,
            ..Profile::UNIXFS_V0_2015
        };
        assert!(matches!(p.validate(), Err(CidError::InvalidProfile(_))));
    }
}
