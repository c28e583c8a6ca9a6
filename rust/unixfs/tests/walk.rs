//! Kubo's rules for what `ipfs add -r` includes: dot files, symlinks, special files, errors.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use bacalhau_unixfs::{
    cid_of_path, directory_node, node_of_path, symlink_node, CidError, Entry, Options, Profile,
};
use tempfile::TempDir;

fn cid(path: &Path, options: Options) -> Result<String, CidError> {
    cid_of_path(path, &options).map(|c| c.to_string())
}

fn plain(path: &Path) -> String {
    cid(path, Options::default()).expect("cid")
}

fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, data).expect("write");
}

#[test]
fn dot_files_are_skipped_unless_hidden() {
    let tmp = TempDir::new().expect("tempdir");
    let with = tmp.path().join("with");
    let without = tmp.path().join("without");
    for root in [&with, &without] {
        write(&root.join("a.txt"), b"hello world\n");
        write(&root.join("sub/b"), b"b");
    }
    write(&with.join(".env"), b"SECRET=1");
    write(&with.join("sub/.cache/x"), b"x");
    assert_eq!(plain(&with), plain(&without));
    let hidden = Options {
        hidden: true,
        ..Options::default()
    };
    assert_ne!(cid(&with, hidden).expect("cid"), plain(&without));
    // The root itself is added even when its name starts with a dot.
    let dot_root = tmp.path().join(".root");
    fs::create_dir(&dot_root).expect("mkdir");
    assert_eq!(
        plain(&dot_root),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
}

#[test]
fn symlinks_are_symlink_nodes_unless_dereferenced() {
    let tmp = TempDir::new().expect("tempdir");
    let linked = tmp.path().join("linked");
    write(&linked.join("a.txt"), b"hello world\n");
    symlink("a.txt", linked.join("b.txt")).expect("symlink");
    let copied = tmp.path().join("copied");
    write(&copied.join("a.txt"), b"hello world\n");
    write(&copied.join("b.txt"), b"hello world\n");

    let profile = Profile::UNIXFS_V0_2015;
    let link = node_of_path(&linked.join("b.txt"), &Options::default()).expect("link");
    assert_eq!(link, symlink_node(b"a.txt", &profile));
    let file = node_of_path(&linked.join("a.txt"), &Options::default()).expect("file");
    let expected = directory_node(
        vec![
            Entry {
                name: b"a.txt".to_vec(),
                node: file,
            },
            Entry {
                name: b"b.txt".to_vec(),
                node: link,
            },
        ],
        &profile,
    )
    .expect("dir");
    assert_eq!(plain(&linked), expected.cid.to_string());

    let deref = Options {
        dereference: true,
        ..Options::default()
    };
    assert_eq!(cid(&linked, deref).expect("cid"), plain(&copied));
}

#[test]
fn dereferencing_a_loop_or_a_dangling_link_fails() {
    let tmp = TempDir::new().expect("tempdir");
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    symlink("..", root.join("up")).expect("symlink");
    let deref = Options {
        dereference: true,
        ..Options::default()
    };
    assert!(plain(&root).starts_with("Qm"));
    let err = cid(&root, deref).expect_err("loop");
    assert!(matches!(err, CidError::SymlinkLoop { .. }), "{err}");

    let dangling = tmp.path().join("dangling");
    fs::create_dir(&dangling).expect("mkdir");
    symlink("missing", dangling.join("gone")).expect("symlink");
    assert!(plain(&dangling).starts_with("Qm"));
    let err = cid(&dangling, deref).expect_err("dangling");
    assert!(matches!(err, CidError::NotFound { .. }), "{err}");
}

#[test]
fn special_files_and_missing_paths_are_errors() {
    let tmp = TempDir::new().expect("tempdir");
    let fifo = tmp.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let err = cid(tmp.path(), Options::default()).expect_err("fifo");
    assert!(
        matches!(err, CidError::UnsupportedFileType { ref path } if path == &fifo),
        "{err}"
    );
    let err = cid(&tmp.path().join("nope"), Options::default()).expect_err("missing");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no such file or directory",
            tmp.path().join("nope").display()
        )
    );
}

#[test]
fn thread_counts_agree() {
    let tmp = TempDir::new().expect("tempdir");
    for i in 0..50 {
        write(
            &tmp.path().join(format!("d{}/f{i}", i % 7)),
            &vec![i as u8; i * 9000],
        );
    }
    let cids: Vec<String> = [0, 1, 2, 5]
        .into_iter()
        .map(|threads| {
            cid(
                tmp.path(),
                Options {
                    threads,
                    ..Options::default()
                },
            )
            .expect("cid")
        })
        .collect();
    assert!(cids.windows(2).all(|w| w[0] == w[1]), "{cids:?}");
}

#[test]
fn invalid_profiles_are_refused_before_any_work() {
    let options = Options {
        profile: Profile {
            raw_leaves: true,
            ..Profile::UNIXFS_V0_2015
        },
        ..Options::default()
    };
    let err = cid(Path::new("/definitely/not/there"), options).expect_err("invalid");
    assert!(matches!(err, CidError::InvalidProfile(_)), "{err}");
}
