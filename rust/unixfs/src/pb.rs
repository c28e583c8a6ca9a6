//! Byte-exact dag-pb and UnixFS `Data` encoding (reference unixfs.md §C.3).
//!
//! Hand-written rather than generated: dag-pb puts `Links` (field 2) *before* `Data` (field 1),
//! always writes a link's `Name` (even empty) and `Tsize`, and UnixFS `blocksizes` are unpacked.
//! A generic protobuf encoder gets each of these wrong and so produces different CIDs.

use crate::cid::Cid;

/// UnixFS `Data.Type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    /// 1: a plain directory.
    Directory = 1,
    /// 2: a file (leaf or internal node).
    File = 2,
    /// 4: a symbolic link; `Data` holds the target.
    Symlink = 4,
    /// 5: one node of a HAMT-sharded directory.
    HamtShard = 5,
}

/// Appends `v` as a protobuf varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes taken by `v` as a varint.
pub fn varint_len(v: u64) -> usize {
    // One byte per started group of 7 significant bits; 0 still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends a length-delimited field: tag, length, bytes.
fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One PBLink: child CID, name (written even when empty) and cumulative size.
#[derive(Clone, Copy, Debug)]
pub struct Link<'a> {
    /// The child.
    pub cid: &'a Cid,
    /// The name in the parent (`""` for file chunks).
    pub name: &'a [u8],
    /// Cumulative size of the child's DAG.
    pub tsize: u64,
}

impl Link<'_> {
    /// Length of the PBLink message body.
    fn body_len(&self) -> usize {
        let hash = self.cid.byte_len();
        (1 + varint_len(hash as u64) + hash)
            + (1 + varint_len(self.name.len() as u64) + self.name.len())
            + (1 + varint_len(self.tsize))
    }

    /// Bytes this link takes inside a PBNode (field tag and length included).
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        1 + varint_len(body as u64) + body
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(0x12);
        put_varint(out, self.body_len() as u64);
        out.push(0x0a);
        put_varint(out, self.cid.byte_len() as u64);
        self.cid.write_bytes(out);
        put_bytes_field(out, 0x12, self.name);
        out.push(0x18);
        put_varint(out, self.tsize);
    }
}

/// Size of a PBNode with these links and data, without building it.
pub fn node_len<'a>(links: impl IntoIterator<Item = Link<'a>>, data: Option<&[u8]>) -> usize {
    let links: usize = links.into_iter().map(|l| l.encoded_len()).sum();
    links + data.map_or(0, |d| 1 + varint_len(d.len() as u64) + d.len())
}

/// Encodes a PBNode: every link (in the given order), then `Data` when present.
pub fn encode_node<'a>(links: impl IntoIterator<Item = Link<'a>>, data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for link in links {
        link.write(&mut out);
    }
    if let Some(data) = data {
        put_bytes_field(&mut out, 0x0a, data);
    }
    out
}

/// The fields of a UnixFS `Data` message that an add without mode/mtime can carry.
#[derive(Clone, Debug, Default)]
pub struct UnixfsData<'a> {
    /// Field 2, `Data`: file bytes, symlink target or HAMT bitfield; omitted when `None`.
    pub data: Option<&'a [u8]>,
    /// Field 3, `filesize`: present on every File node.
    pub filesize: Option<u64>,
    /// Field 4, `blocksizes`: file bytes under each child, unpacked.
    pub blocksizes: &'a [u64],
    /// Field 5, `hashType` (HAMT: 0x22, murmur3-x64-64).
    pub hash_type: Option<u64>,
    /// Field 6, `fanout` (HAMT: 256).
    pub fanout: Option<u64>,
}

impl UnixfsData<'_> {
    /// Encodes `Type` and the present fields in field-number order.
    pub fn encode(&self, data_type: DataType) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.data.map_or(0, |d| d.len() + 5));
        out.push(0x08);
        put_varint(&mut out, data_type as u64);
        if let Some(data) = self.data {
            put_bytes_field(&mut out, 0x12, data);
        }
        if let Some(size) = self.filesize {
            out.push(0x18);
            put_varint(&mut out, size);
        }
        for &size in self.blocksizes {
            out.push(0x20);
            put_varint(&mut out, size);
        }
        if let Some(hash_type) = self.hash_type {
            out.push(0x28);
            put_varint(&mut out, hash_type);
        }
        if let Some(fanout) = self.fanout {
            out.push(0x30);
            put_varint(&mut out, fanout);
        }
        out
    }
}

/// The bytes around a chunk in a dag-pb file leaf, so the chunk can be hashed in place:
/// `block = prefix ++ chunk ++ suffix` where the block is
/// `PBNode{Data: UnixFS{Type: File, Data: chunk, filesize: len}}`. An empty chunk has no `Data`.
pub fn file_leaf_frame(chunk_len: u64) -> (Vec<u8>, Vec<u8>) {
    let data_field = if chunk_len == 0 {
        0
    } else {
        1 + varint_len(chunk_len) + chunk_len as usize
    };
    let unixfs_len = 2 + data_field + 1 + varint_len(chunk_len);
    let mut prefix = Vec::with_capacity(16);
    prefix.push(0x0a);
    put_varint(&mut prefix, unixfs_len as u64);
    prefix.extend_from_slice(&[0x08, DataType::File as u8]);
    if chunk_len > 0 {
        prefix.push(0x12);
        put_varint(&mut prefix, chunk_len);
    }
    let mut suffix = Vec::with_capacity(11);
    suffix.push(0x18);
    put_varint(&mut suffix, chunk_len);
    (prefix, suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_encoding() {
        for v in [0u64, 1, 127, 128, 16383, 16384, 262144, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn leaf_frame_equals_full_encoding() {
        for chunk in [&b""[..], b"hello world\n", &[9u8; 300][..]] {
            let data = UnixfsData {
                data: (!chunk.is_empty()).then_some(chunk),
                filesize: Some(chunk.len() as u64),
                ..Default::default()
            }
            .encode(DataType::File);
            let whole = encode_node([], Some(&data));
            let (prefix, suffix) = file_leaf_frame(chunk.len() as u64);
            assert_eq!([prefix, chunk.to_vec(), suffix].concat(), whole);
        }
    }

    #[test]
    fn node_len_matches_encoding() {
        let cid = Cid::of_block(crate::CidVersion::V1, crate::Codec::Raw, b"x");
        let links = [
            Link {
                cid: &cid,
                name: b"",
                tsize: 1,
            },
            Link {
                cid: &cid,
                name: b"some-name",
                tsize: 1 << 40,
            },
        ];
        let data = [8u8, 1];
        assert_eq!(
            node_len(links, Some(&data)),
            encode_node(links, Some(&data)).len()
        );
    }
}
