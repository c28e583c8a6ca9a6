//! Directories: a plain dag-pb node with links sorted by name, or a HAMT when it is too big.

use crate::cid::{Cid, Codec};
use crate::error::CidError;
use crate::murmur3::murmur3_x64_128_h1;
use crate::pb::{self, DataType, Link, UnixfsData};
use crate::profile::{Profile, ShardEstimation};
use crate::Node;

/// UnixFS `Data` of a plain directory: `Type = Directory` and nothing else.
const DIRECTORY_DATA: [u8; 2] = [0x08, DataType::Directory as u8];
/// HAMT width: one byte of the key hash per level.
const FANOUT: usize = 256;
/// Multihash code of murmur3-x64-64, UnixFS's HAMT `hashType`.
const MURMUR3_X64_64: u64 = 0x22;

/// A named child of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name in the directory (file-system bytes).
    pub name: Vec<u8>,
    /// The child's root.
    pub node: Node,
}

impl Entry {
    fn link(&self) -> Link<'_> {
        Link {
            cid: &self.node.cid,
            name: &self.name,
            tsize: self.node.tsize,
        }
    }
}

/// The directory node of `entries` (any order): plain, or a HAMT when the profile's estimate
/// is strictly greater than its threshold.
pub fn directory_node(mut entries: Vec<Entry>, profile: &Profile) -> Result<Node, CidError> {
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(CidError::DuplicateName(
            String::from_utf8_lossy(&pair[0].name).into_owned(),
        ));
    }
    if estimate(&entries, profile) > profile.shard_threshold {
        let mut keyed: Vec<(u64, &Entry)> = entries
            .iter()
            .map(|e| (murmur3_x64_128_h1(&e.name), e))
            .collect();
        return shard(&mut keyed, 0, profile);
    }
    let block = pb::encode_node(entries.iter().map(Entry::link), Some(&DIRECTORY_DATA));
    Ok(dag_pb_node(
        &block,
        entries.iter().map(|e| e.node.tsize),
        profile,
    ))
}

/// The size the sharding decision compares with the threshold.
fn estimate(entries: &[Entry], profile: &Profile) -> u64 {
    match profile.estimation {
        ShardEstimation::Links => entries
            .iter()
            .map(|e| (e.name.len() + e.node.cid.byte_len()) as u64)
            .sum(),
        ShardEstimation::Block => {
            pb::node_len(entries.iter().map(Entry::link), Some(&DIRECTORY_DATA)) as u64
        }
    }
}

/// Slot of a key hash at `depth`: byte `depth` of the big-endian hash.
fn slot(hash: u64, depth: usize) -> usize {
    usize::from(hash.to_be_bytes()[depth])
}

/// One HAMT node over `items` (sorted here by slot). A slot with one entry links to it as
/// `%02X<name>`; a slot where names collide gets a child shard one byte deeper, linked as `%02X`.
fn shard(items: &mut [(u64, &Entry)], depth: usize, profile: &Profile) -> Result<Node, CidError> {
    items
        .sort_unstable_by(|a, b| (slot(a.0, depth), &a.1.name).cmp(&(slot(b.0, depth), &b.1.name)));
    let mut bitfield = [0u8; FANOUT / 8];
    let mut links: Vec<(Vec<u8>, Node)> = Vec::new();
    let mut rest: &mut [(u64, &Entry)] = items;
    while let Some(&(hash, first)) = rest.first() {
        let s = slot(hash, depth);
        let run = rest
            .iter()
            .take_while(|(h, _)| slot(*h, depth) == s)
            .count();
        let (group, tail) = rest.split_at_mut(run);
        let prefix = format!("{s:02X}").into_bytes();
        if let [(_, only)] = group {
            links.push(([prefix, only.name.clone()].concat(), only.node));
        } else if depth + 1 == std::mem::size_of::<u64>() {
            return Err(CidError::HashCollision {
                first: String::from_utf8_lossy(&first.name).into_owned(),
                second: String::from_utf8_lossy(&group[1].1.name).into_owned(),
            });
        } else {
            links.push((prefix, shard(group, depth + 1, profile)?));
        }
        // The bitfield is a big-endian 256-bit integer with bit `s` set per occupied slot.
        bitfield[FANOUT / 8 - 1 - s / 8] |= 1 << (s % 8);
        rest = tail;
    }
    let leading_zeros = bitfield.iter().take_while(|&&b| b == 0).count();
    let data = UnixfsData {
        data: Some(&bitfield[leading_zeros..]),
        hash_type: Some(MURMUR3_X64_64),
        fanout: Some(FANOUT as u64),
        ..Default::default()
    }
    .encode(DataType::HamtShard);
    let block = pb::encode_node(
        links.iter().map(|(name, node)| Link {
            cid: &node.cid,
            name,
            tsize: node.tsize,
        }),
        Some(&data),
    );
    Ok(dag_pb_node(
        &block,
        links.iter().map(|(_, n)| n.tsize),
        profile,
    ))
}

/// Names a dag-pb block; its cumulative size adds the children's.
fn dag_pb_node(block: &[u8], child_tsizes: impl Iterator<Item = u64>, profile: &Profile) -> Node {
    Node {
        cid: Cid::of_block(profile.cid_version, Codec::DagPb, block),
        tsize: block.len() as u64 + child_tsizes.sum::<u64>(),
    }
}

/// A UnixFS symlink node: the target bytes in `Data`, no file size.
pub fn symlink_node(target: &[u8], profile: &Profile) -> Node {
    let data = UnixfsData {
        data: Some(target),
        ..Default::default()
    }
    .encode(DataType::Symlink);
    let block = pb::encode_node([], Some(&data));
    dag_pb_node(&block, std::iter::empty(), profile)
}
