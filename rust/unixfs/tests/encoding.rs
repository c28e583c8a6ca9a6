//! Byte-exact encodings (reference §C.3) and the balanced layout rule, through the public API.

use bacalhau_unixfs::{
    directory_node, encode_node, node_of_bytes, Cid, CidVersion, Codec, DataType, Entry, Link,
    Node, Profile, UnixfsData,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v0(block: &[u8]) -> String {
    Cid::of_block(CidVersion::V0, Codec::DagPb, block).to_string()
}

#[test]
fn empty_file_block() {
    let data = UnixfsData {
        filesize: Some(0),
        ..Default::default()
    }
    .encode(DataType::File);
    let block = encode_node([], Some(&data));
    assert_eq!(hex(&block), "0a0408021800");
    assert_eq!(v0(&block), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
}

#[test]
fn hello_world_leaf_block() {
    let text = b"hello world\n";
    let data = UnixfsData {
        data: Some(text),
        filesize: Some(12),
        ..Default::default()
    }
    .encode(DataType::File);
    let block = encode_node([], Some(&data));
    assert_eq!(hex(&block), "0a120802120c68656c6c6f20776f726c640a180c");
    assert_eq!(v0(&block), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
    // The file API produces the same node; its Tsize is the block length.
    let node = node_of_bytes(text, &Profile::UNIXFS_V0_2015, 1).expect("node");
    assert_eq!(node.cid.to_string(), v0(&block));
    assert_eq!(node.tsize, block.len() as u64);
}

#[test]
fn empty_directory_block() {
    let block = encode_node([], Some(&UnixfsData::default().encode(DataType::Directory)));
    assert_eq!(hex(&block), "0a020801");
    assert_eq!(v0(&block), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
}

#[test]
fn links_come_before_data_and_empty_names_are_written() {
    let child = Cid::of_block(CidVersion::V1, Codec::Raw, b"x");
    let data = [0x08, 0x01];
    let block = encode_node(
        [Link {
            cid: &child,
            name: b"",
            tsize: 1,
        }],
        Some(&data),
    );
    // 12 <len> [0a 24 <cid>] [12 00] [18 01], then 0a 02 08 01.
    let cid_hex = hex(&child.to_bytes());
    assert_eq!(hex(&block), format!("122a0a24{cid_hex}120018010a020801"));
}

#[test]
fn unixfs_fields_in_number_order_with_unpacked_blocksizes() {
    let data = UnixfsData {
        filesize: Some(262_145),
        blocksizes: &[262_144, 1],
        ..Default::default()
    }
    .encode(DataType::File);
    // Type=2, filesize=262145, blocksizes 262144 and 1, each with its own 0x20 tag.
    assert_eq!(hex(&data), "080218818010208080102001");
    let shard = UnixfsData {
        data: Some(&[0x80, 0x01]),
        hash_type: Some(0x22),
        fanout: Some(256),
        ..Default::default()
    }
    .encode(DataType::HamtShard);
    assert_eq!(hex(&shard), "0805120280012822308002");
}

/// The balanced rule written literally: runs of `max_links` become parents, level by level,
/// until one node is left (single-child parents are kept).
fn literal_balanced(data: &[u8], profile: &Profile) -> Node {
    let leaf = |chunk: &[u8]| {
        (
            node_of_bytes(chunk, profile, 1).expect("leaf"),
            chunk.len() as u64,
        )
    };
    let mut level: Vec<(Node, u64)> = data.chunks(profile.chunk_size).map(leaf).collect();
    if level.is_empty() {
        return node_of_bytes(b"", profile, 1).expect("empty");
    }
    while level.len() > 1 {
        level = level
            .chunks(profile.max_links)
            .map(|run| {
                let sizes: Vec<u64> = run.iter().map(|(_, size)| *size).collect();
                let total = sizes.iter().sum();
                let unixfs = UnixfsData {
                    filesize: Some(total),
                    blocksizes: &sizes,
                    ..Default::default()
                }
                .encode(DataType::File);
                let links = run.iter().map(|(n, _)| Link {
                    cid: &n.cid,
                    name: b"",
                    tsize: n.tsize,
                });
                let block = encode_node(links, Some(&unixfs));
                let below: u64 = run.iter().map(|(n, _)| n.tsize).sum();
                let node = Node {
                    cid: Cid::of_block(profile.cid_version, Codec::DagPb, &block),
                    tsize: block.len() as u64 + below,
                };
                (node, total)
            })
            .collect();
    }
    level[0].0
}

#[test]
fn streaming_builder_equals_the_literal_rule() {
    for base in [Profile::UNIXFS_V0_2015, Profile::CID_V1] {
        let profile = Profile {
            chunk_size: 1,
            max_links: 3,
            ..base
        };
        // 0..=40 leaves crosses 3, 9 and 27 (full trees) and every count in between.
        for n in 0..=40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let got = node_of_bytes(&data, &profile, 1).expect("node");
            assert_eq!(got, literal_balanced(&data, &profile), "{n} leaves");
            let parallel = node_of_bytes(&data, &profile, 2).expect("node");
            assert_eq!(parallel, got, "{n} leaves, 2 threads");
        }
    }
}

#[test]
fn directory_links_sorted_by_name_bytes_and_tsize_cumulative() {
    let profile = Profile::UNIXFS_V0_2015;
    let file = |text: &[u8]| node_of_bytes(text, &profile, 1).expect("file");
    let entries = vec![
        Entry {
            name: b"b".to_vec(),
            node: file(b"2"),
        },
        Entry {
            name: b"B".to_vec(),
            node: file(b"1"),
        },
        Entry {
            name: b"a".to_vec(),
            node: file(b"3"),
        },
    ];
    let got = directory_node(entries.clone(), &profile).expect("dir");
    let mut sorted = entries;
    sorted.sort_by(|x, y| x.name.cmp(&y.name)); // "B" < "a" < "b" in byte order
    let block = encode_node(
        sorted.iter().map(|e| Link {
            cid: &e.node.cid,
            name: &e.name,
            tsize: e.node.tsize,
        }),
        Some(&[0x08, 0x01]),
    );
    assert_eq!(got.cid.to_string(), v0(&block));
    let below: u64 = sorted.iter().map(|e| e.node.tsize).sum();
    assert_eq!(got.tsize, block.len() as u64 + below);
}

#[test]
fn duplicate_names_are_refused() {
    let node = node_of_bytes(b"x", &Profile::CID_V1, 1).expect("file");
    let entries = vec![
        Entry {
            name: b"same".to_vec(),
            node,
        },
        Entry {
            name: b"same".to_vec(),
            node,
        },
    ];
    let err = directory_node(entries, &Profile::CID_V1).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "duplicate entry name \"same\" in one directory"
    );
}
