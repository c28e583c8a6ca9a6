//! Files: fixed-size chunks -> leaves (hashed in parallel, kept in order) -> balanced tree built
//! bottom-up while streaming.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memmap2::MmapOptions;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::cid::{Cid, CidVersion, Codec};
use crate::error::CidError;
use crate::pb::{self, DataType, Link, UnixfsData};
use crate::profile::Profile;
use crate::Node;

/// Files up to this size are read into memory; larger ones are hashed from a memory map.
const READ_WHOLE_LIMIT: u64 = 4 * 1024 * 1024;
/// Bytes mapped at a time, so the address space (and resident pages) of one call stay bounded.
const WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// Mapping offsets must be page aligned; 64 KiB covers every page size in use.
const MAP_ALIGN: usize = 64 * 1024;

/// A node of a file DAG together with the file bytes under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FilePart {
    pub node: Node,
    /// File bytes covered (the parent's `blocksizes` entry).
    pub filesize: u64,
}

/// Hashes one chunk as a leaf: a raw block, or a dag-pb `File` node hashed in place.
pub(crate) fn leaf(chunk: &[u8], profile: &Profile) -> FilePart {
    let len = chunk.len() as u64;
    if profile.raw_leaves {
        return FilePart {
            node: Node {
                cid: Cid::of_block(CidVersion::V1, Codec::Raw, chunk),
                tsize: len,
            },
            filesize: len,
        };
    }
    let (prefix, suffix) = pb::file_leaf_frame(len);
    let mut hasher = Sha256::new();
    hasher.update(&prefix);
    hasher.update(chunk);
    hasher.update(&suffix);
    FilePart {
        node: Node {
            cid: Cid::new(profile.cid_version, Codec::DagPb, hasher.finalize().into()),
            tsize: (prefix.len() + chunk.len() + suffix.len()) as u64,
        },
        filesize: len,
    }
}

/// Leaves of consecutive chunks, in chunk order; hashed on the current rayon pool if `parallel`.
fn leaves(chunks: &[&[u8]], profile: &Profile, parallel: bool) -> Vec<FilePart> {
    if parallel && chunks.len() > 1 {
        chunks.par_iter().map(|c| leaf(c, profile)).collect()
    } else {
        chunks.iter().map(|c| leaf(c, profile)).collect()
    }
}

/// The balanced layout built bottom-up: `levels[0]` holds leaves not yet under a parent,
/// `levels[i]` nodes of height `i`. A run of `max_links` siblings becomes a parent at once, so
/// memory is `max_links x depth` whatever the file size.
pub(crate) struct BalancedBuilder {
    profile: Profile,
    levels: Vec<Vec<FilePart>>,
}

impl BalancedBuilder {
    pub(crate) fn new(profile: Profile) -> Self {
        BalancedBuilder {
            profile,
            levels: Vec::new(),
        }
    }

    /// Adds the next leaf (in file order).
    pub(crate) fn push(&mut self, leaf: FilePart) {
        let mut node = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::with_capacity(self.profile.max_links));
            }
            let level = &mut self.levels[height];
            level.push(node);
            if level.len() < self.profile.max_links {
                return;
            }
            node = self.parent(height);
            height += 1;
        }
    }

    /// Turns the pending run at `height` into its parent.
    fn parent(&mut self, height: usize) -> FilePart {
        let children = std::mem::take(&mut self.levels[height]);
        file_parent(&children, &self.profile)
    }

    /// The root: partial runs are closed bottom-up until one node is left. No leaf at all gives
    /// the empty file.
    pub(crate) fn finish(mut self) -> FilePart {
        let mut height = 0;
        while height < self.levels.len() {
            let top = height + 1 == self.levels.len();
            match self.levels[height].len() {
                0 => {}
                1 if top => return self.levels[height][0],
                _ => {
                    let parent = self.parent(height);
                    if top {
                        self.levels.push(Vec::with_capacity(1));
                    }
                    self.levels[height + 1].push(parent);
                }
            }
            height += 1;
        }
        leaf(&[], &self.profile)
    }
}

/// An internal file node: one unnamed link per child, `filesize` and unpacked `blocksizes`.
fn file_parent(children: &[FilePart], profile: &Profile) -> FilePart {
    let blocksizes: Vec<u64> = children.iter().map(|c| c.filesize).collect();
    let filesize = blocksizes.iter().sum();
    let data = UnixfsData {
        filesize: Some(filesize),
        blocksizes: &blocksizes,
        ..Default::default()
    }
    .encode(DataType::File);
    let links = children.iter().map(|c| Link {
        cid: &c.node.cid,
        name: b"",
        tsize: c.node.tsize,
    });
    let block = pb::encode_node(links, Some(&data));
    let below: u64 = children.iter().map(|c| c.node.tsize).sum();
    FilePart {
        node: Node {
            cid: Cid::of_block(profile.cid_version, Codec::DagPb, &block),
            tsize: block.len() as u64 + below,
        },
        filesize,
    }
}

/// The file DAG of bytes already in memory.
pub(crate) fn bytes_node(data: &[u8], profile: &Profile, parallel: bool) -> FilePart {
    let mut builder = BalancedBuilder::new(*profile);
    push_chunks(&mut builder, data, profile, parallel);
    builder.finish()
}

fn push_chunks(builder: &mut BalancedBuilder, data: &[u8], profile: &Profile, parallel: bool) {
    let chunks: Vec<&[u8]> = data.chunks(profile.chunk_size).collect();
    for part in leaves(&chunks, profile, parallel) {
        builder.push(part);
    }
}

/// The file DAG of a regular file of `len` bytes (its length when opened).
///
/// Large files are mapped a window at a time and hashed in place (no copy), so memory stays
/// bounded for any file size. A file truncated by another process while mapped can fault
/// (SIGBUS), as with every mmap-based hasher; the length is checked again after hashing and a
/// file that changed size is refused.
pub(crate) fn file_node(
    path: &Path,
    file: &File,
    len: u64,
    profile: &Profile,
    parallel: bool,
) -> Result<FilePart, CidError> {
    let part = if len <= READ_WHOLE_LIMIT {
        let mut data = Vec::with_capacity(len as usize);
        // Read one byte past the expected end to notice a file that grew.
        file.take(len + 1)
            .read_to_end(&mut data)
            .map_err(CidError::io("read", path))?;
        if data.len() as u64 != len {
            return Err(CidError::FileChanged {
                path: path.to_path_buf(),
            });
        }
        bytes_node(&data, profile, parallel)
    } else if profile.chunk_size % MAP_ALIGN == 0 {
        mapped_file_node(path, file, len, profile, parallel, WINDOW_BYTES)?
    } else {
        read_file_node(path, file, len, profile, parallel, WINDOW_BYTES)?
    };
    let now = file
        .metadata()
        .map_err(CidError::io("read metadata of", path))?
        .len();
    if now != len {
        return Err(CidError::FileChanged {
            path: path.to_path_buf(),
        });
    }
    Ok(part)
}

fn mapped_file_node(
    path: &Path,
    file: &File,
    len: u64,
    profile: &Profile,
    parallel: bool,
    window_bytes: usize,
) -> Result<FilePart, CidError> {
    // Whole chunks per window keep every chunk inside one mapping; chunk sizes of the profiles
    // are multiples of the page size, so window offsets are page aligned.
    let window = (window_bytes / profile.chunk_size).max(1) * profile.chunk_size;
    let mut builder = BalancedBuilder::new(*profile);
    let mut offset = 0u64;
    while offset < len {
        let size = (len - offset).min(window as u64) as usize;
        if file
            .metadata()
            .map_err(CidError::io("read metadata of", path))?
            .len()
            < offset + size as u64
        {
            return Err(CidError::FileChanged {
                path: path.to_path_buf(),
            });
        }
        // SAFETY: the mapping is read-only and dropped before returning; the file's length was
        // checked just above. A concurrent truncation can still fault, as documented above.
        let map = unsafe { MmapOptions::new().offset(offset).len(size).map(file) }
            .map_err(CidError::io("map", path))?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        push_chunks(&mut builder, &map, profile, parallel);
        offset += size as u64;
    }
    Ok(builder.finish())
}

/// The buffered-read path for chunk sizes that cannot give page-aligned map offsets.
fn read_file_node(
    path: &Path,
    mut file: &File,
    len: u64,
    profile: &Profile,
    parallel: bool,
    window_bytes: usize,
) -> Result<FilePart, CidError> {
    let window = (window_bytes / profile.chunk_size).max(1) * profile.chunk_size;
    let mut buf = vec![0u8; window.min(len as usize)];
    let mut builder = BalancedBuilder::new(*profile);
    let mut offset = 0u64;
    while offset < len {
        let size = (len - offset).min(window as u64) as usize;
        file.read_exact(&mut buf[..size]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                CidError::FileChanged {
                    path: path.to_path_buf(),
                }
            } else {
                CidError::io("read", path)(e)
            }
        })?;
        push_chunks(&mut builder, &buf[..size], profile, parallel);
        offset += size as u64;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Cheap deterministic bytes (the contents do not matter, only that chunks differ).
    fn pattern(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn temp_file(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().expect("temp file");
        tmp.write_all(data).expect("write");
        let file = File::open(tmp.path()).expect("open");
        (tmp, file)
    }

    #[test]
    fn mapped_windows_give_the_same_root_as_memory() {
        // 64 KiB chunks, 3 links: 2-chunk windows put window edges inside the tree's runs.
        let profile = Profile {
            chunk_size: 64 * 1024,
            max_links: 3,
            ..Profile::CID_V1
        };
        let data = pattern(11 * 64 * 1024 + 5);
        let (tmp, file) = temp_file(&data);
        let want = bytes_node(&data, &profile, false);
        for parallel in [false, true] {
            let got = mapped_file_node(
                tmp.path(),
                &file,
                data.len() as u64,
                &profile,
                parallel,
                2 * 64 * 1024,
            )
            .expect("mapped");
            assert_eq!(got, want);
        }
    }

    #[test]
    fn read_windows_give_the_same_root_as_memory() {
        let profile = Profile {
            chunk_size: 1000,
            max_links: 4,
            ..Profile::UNIXFS_V0_2015
        };
        let data = pattern(37 * 1000 + 17);
        let (tmp, file) = temp_file(&data);
        let got = read_file_node(tmp.path(), &file, data.len() as u64, &profile, true, 3000)
            .expect("read");
        assert_eq!(got, bytes_node(&data, &profile, true));
    }

    #[test]
    fn a_file_shorter_than_announced_is_refused() {
        let data = pattern(10_000);
        let (tmp, file) = temp_file(&data);
        let profile = Profile {
            chunk_size: 1000,
            ..Profile::CID_V1
        };
        let err = read_file_node(tmp.path(), &file, 20_000, &profile, false, 4000)
            .expect_err("short file");
        assert!(matches!(err, CidError::FileChanged { .. }), "{err}");
        let err = file_node(tmp.path(), &file, 5_000, &profile, false).expect_err("grown file");
        assert!(matches!(err, CidError::FileChanged { .. }), "{err}");
    }

    #[test]
    fn parallel_and_sequential_leaves_agree() {
        let data = pattern(300 * 1024);
        let profile = Profile {
            chunk_size: 1024,
            max_links: 7,
            ..Profile::UNIXFS_V0_2015
        };
        assert_eq!(
            bytes_node(&data, &profile, true),
            bytes_node(&data, &profile, false)
        );
    }
}
