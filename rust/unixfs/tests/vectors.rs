//! Every known-answer vector of shared/reference/unixfs.md §C.4, through the public API.

mod common;

use std::fs;
use std::path::Path;
use std::time::Instant;

use bacalhau_unixfs::{
    cid_of_bytes, cid_of_path, directory_node, node_of_bytes, Entry, Options, Profile,
};
use common::{names, r, write_r};
use tempfile::TempDir;

const V0: Profile = Profile::UNIXFS_V0_2015;
const V1: Profile = Profile::CID_V1;
const V2025: Profile = Profile::UNIXFS_V1_2025;
const CHUNK: usize = 256 * 1024;

fn bytes_cid(data: &[u8], profile: &Profile) -> String {
    cid_of_bytes(data, profile).expect("cid").to_string()
}

fn path_cid(path: &Path, profile: Profile) -> String {
    let options = Options {
        profile,
        ..Options::default()
    };
    cid_of_path(path, &options).expect("cid").to_string()
}

// --- small files -------------------------------------------------------------------------

#[test]
fn empty_file() {
    assert_eq!(
        bytes_cid(b"", &V0),
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    );
    assert_eq!(
        bytes_cid(b"", &V1),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
}

#[test]
fn hello_world_without_newline() {
    let data = b"hello world";
    assert_eq!(
        bytes_cid(data, &V0),
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    );
    assert_eq!(
        bytes_cid(data, &V1),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    let v1_dag_pb_leaves = Profile {
        raw_leaves: false,
        ..V1
    };
    assert_eq!(
        bytes_cid(data, &v1_dag_pb_leaves),
        "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"
    );
}

#[test]
fn hello_world_with_newline() {
    let data = b"hello world\n";
    assert_eq!(
        bytes_cid(data, &V0),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    assert_eq!(
        bytes_cid(data, &V1),
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    );
}

// --- chunk and link boundaries -------------------------------------------------------------

#[test]
fn one_chunk_and_one_byte_more() {
    let data = r(CHUNK + 1, "chunk-v0-seed");
    assert_eq!(
        bytes_cid(&data[..CHUNK], &V0),
        "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"
    );
    assert_eq!(
        bytes_cid(&data, &V0),
        "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"
    );
    assert_eq!(
        bytes_cid(&data, &V1),
        "bafybeibyui7o3sbw3yifnewshhrbnuntcehluzvbkwgi5vmtsdobnc2c6y"
    );
}

#[test]
fn one_full_node_of_174_links_and_one_byte_more() {
    let data = r(174 * CHUNK + 1, "v0-seed");
    assert_eq!(
        bytes_cid(&data[..174 * CHUNK], &V0),
        "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"
    );
    assert_eq!(
        bytes_cid(&data, &V0),
        "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"
    );
    assert_eq!(
        bytes_cid(&data, &V1),
        "bafybeifr472xiwfk53w5s7bayijk3lq2go6ocqqcfch6ygy5qwza5hkdl4"
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "256 MiB input: a second optimized, a minute unoptimized; runs with --release"
)]
fn max_file_links_1024() {
    let data = r(1024 * CHUNK, "hello world");
    let profile = Profile {
        max_links: 1024,
        ..V0
    };
    assert_eq!(
        bytes_cid(&data, &profile),
        "QmbBftNHWmjSWKLC49dMVrfnY8pjrJYntiAXirFJ7oJrNk"
    );
}

#[test]
fn v1_2025_one_chunk_and_one_byte_more() {
    let data = r((1 << 20) + 1, "chunk-v1-seed");
    assert_eq!(
        bytes_cid(&data[..1 << 20], &V2025),
        "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"
    );
    assert_eq!(
        bytes_cid(&data, &V2025),
        "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"
    );
}

/// Writes R(n, seed) to a file and hashes it from disk, reporting the time taken.
fn one_gib_vector(n: u64, want: &str) {
    let tmp = TempDir::new().expect("tempdir");
    let path = tmp.path().join("big.bin");
    write_r(&path, n, "v1-2025-seed");
    for threads in [1, 0] {
        let start = Instant::now();
        let options = Options {
            profile: V2025,
            threads,
            ..Options::default()
        };
        let cid = cid_of_path(&path, &options).expect("cid").to_string();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "R({n}) threads={threads}: {secs:.3} s, {:.0} MiB/s",
            n as f64 / secs / (1 << 20) as f64
        );
        assert_eq!(cid, want, "threads={threads}");
    }
}

#[test]
#[ignore = "1 GiB input; run with --release -- --ignored"]
fn v1_2025_one_gib() {
    one_gib_vector(
        1 << 30,
        "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm",
    );
}

#[test]
#[ignore = "1 GiB input; run with --release -- --ignored"]
fn v1_2025_one_gib_and_one_byte() {
    one_gib_vector(
        (1 << 30) + 1,
        "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe",
    );
}

// --- directories ---------------------------------------------------------------------------

#[test]
fn empty_directory() {
    let tmp = TempDir::new().expect("tempdir");
    assert_eq!(
        path_cid(tmp.path(), V0),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    let node = directory_node(Vec::new(), &V0).expect("dir");
    assert_eq!(
        node.cid.to_string(),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    assert_eq!(node.tsize, 4);
}

#[test]
fn wrapped_empty_file() {
    // `ipfs add -w example.jpg`: a directory holding the file.
    let tmp = TempDir::new().expect("tempdir");
    fs::write(tmp.path().join("example.jpg"), b"").expect("write");
    assert_eq!(
        path_cid(tmp.path(), V0),
        "QmaG4FuMqEBnQNn3C8XJ5bpW8kLs7zq2ZXgHptJHbKDDVx"
    );
}

#[test]
fn nested_directory_vector() {
    let tmp = TempDir::new().expect("tempdir");
    let d = tmp.path().join("d");
    fs::create_dir_all(d.join("sub")).expect("mkdir");
    fs::write(d.join("a.txt"), b"hello world\n").expect("write");
    fs::write(d.join("sub/b.bin"), r(CHUNK + 1, "chunk-v0-seed")).expect("write");
    fs::write(d.join("sub/empty"), b"").expect("write");
    assert_eq!(
        path_cid(&d, V0),
        "QmWhfZpyPxoAfpu4JgTDX6qdjMoLryCZWBPoRvaDSUNsFv"
    );
    assert_eq!(
        path_cid(&d, V1),
        "bafybeiamanpxe5y2xspajqa42hqhfhpfx4rq2oimv5wu7wxq5x63zt5a6y"
    );
}

/// A directory of files holding `x`, named as Kubo's HAMT tests name them.
fn x_files(seed: &str, lengths: Vec<usize>, profile: &Profile) -> Vec<Entry> {
    let x = node_of_bytes(b"x", profile, 1).expect("leaf");
    names(seed, lengths)
        .into_iter()
        .map(|name| Entry {
            name: name.into_bytes(),
            node: x,
        })
        .collect()
}

fn dir_cid(entries: Vec<Entry>, profile: &Profile) -> String {
    directory_node(entries, profile)
        .expect("dir")
        .cid
        .to_string()
}

#[test]
fn hamt_threshold_v0_links_estimation() {
    let seed = "hamt-unixfs-v0-2015";
    // 4096 x (30 + 34) = 262144: not above the threshold, a plain directory.
    let basic = x_files(seed, vec![30; 4096], &V0);
    assert_eq!(
        dir_cid(basic, &V0),
        "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN"
    );
    // 4033 x (31 + 34) = 262145: a HAMT.
    let sharded = x_files(seed, vec![31; 4033], &V0);
    assert_eq!(
        dir_cid(sharded, &V0),
        "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"
    );
}

#[test]
fn hamt_threshold_v1_2025_block_estimation() {
    let seed = "hamt-unixfs-v1-2025";
    let lengths = |last| {
        let mut v = vec![11; 4765];
        v.push(last);
        v
    };
    assert_eq!(
        dir_cid(x_files(seed, lengths(21), &V2025), &V2025),
        "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4"
    );
    assert_eq!(
        dir_cid(x_files(seed, lengths(22), &V2025), &V2025),
        "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"
    );
}

#[test]
fn hamt_vector_through_the_file_system() {
    let tmp = TempDir::new().expect("tempdir");
    for name in names("hamt-unixfs-v0-2015", vec![31; 4033]) {
        fs::write(tmp.path().join(name), b"x").expect("write");
    }
    assert_eq!(
        path_cid(tmp.path(), V0),
        "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"
    );
}
