//! Pack/unpack/merge against real files, including hostile archives built byte by byte.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use bacalhau_merge::{merge_results, pack_dir, unpack, MergeError};
use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{Builder, EntryType, Header};
use tempfile::TempDir;

/// One raw tar entry: name bytes as stored, type, contents or link target.
struct Raw<'a> {
    name: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
    Raw {
        name,
        kind: EntryType::Regular,
        data,
        link: "",
    }
}

fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> Raw<'a> {
    Raw {
        name,
        kind,
        data: b"",
        link: target,
    }
}

/// Writes a tar.gz without any of the tar crate's path checks.
fn hostile(path: &Path, entries: &[Raw<'_>]) {
    let mut b = Builder::new(GzEncoder::new(
        fs::File::create(path).unwrap(),
        Compression::fast(),
    ));
    for e in entries {
        let mut h = Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            gnu.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn write(path: &Path, data: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// A results dir as a compute node leaves it.
fn results(dir: &Path, n: u32, extra: &[(&str, &str)]) {
    write(&dir.join("stdout"), &format!("out {n}\n"));
    write(&dir.join("stderr"), &format!("err {n}\n"));
    write(&dir.join("exitCode"), "0");
    fs::create_dir_all(dir.join("outputs")).unwrap();
    for (rel, data) in extra {
        write(&dir.join(rel), data);
    }
}

fn packed(tmp: &Path, name: &str, n: u32, extra: &[(&str, &str)]) -> PathBuf {
    let src = tmp.join(format!("src-{name}"));
    results(&src, n, extra);
    let archive = tmp.join(format!("{name}.tar.gz"));
    pack_dir(&src, &archive).unwrap();
    archive
}

fn listing(root: &Path) -> Vec<String> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                go(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out
}

fn refused(err: MergeError, entry: &str) {
    match &err {
        MergeError::UnsafeEntry { entry: e, .. } => assert_eq!(e, entry, "{err}"),
        other => panic!("expected UnsafeEntry for {entry}, got {other:?}"),
    }
    assert!(err.to_string().contains(entry), "{err}");
}

#[test]
fn roundtrip_keeps_tree_links_and_modes() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a/b/c.txt"), "hello");
    write(&src.join("top"), "x");
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::set_permissions(src.join("top"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("b/c.txt", src.join("a/link")).unwrap();
    symlink("../top", src.join("a/up")).unwrap();
    let archive = tmp.path().join("r.tar.gz");
    let size = pack_dir(&src, &archive).unwrap();
    assert_eq!(size, fs::metadata(&archive).unwrap().len());

    let dest = tmp.path().join("dest");
    unpack(&archive, &dest).unwrap();
    assert_eq!(listing(&src), listing(&dest));
    assert_eq!(read(&dest.join("a/link")), "hello");
    assert_eq!(read(&dest.join("a/up")), "x");
    assert_eq!(
        fs::read_link(dest.join("a/link")).unwrap(),
        PathBuf::from("b/c.txt")
    );
    let mode = fs::metadata(dest.join("top")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "exec bits survive");
}

#[test]
fn pack_is_deterministic() {
    let tmp = TempDir::new().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for name in ["z", "m/x", "a", "m/b"] {
        write(&a.join(name), name);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    for name in ["m/b", "a", "z", "m/x"] {
        write(&b.join(name), name);
    }
    let (ta, tb) = (tmp.path().join("a.tgz"), tmp.path().join("b.tgz"));
    pack_dir(&a, &ta).unwrap();
    pack_dir(&b, &tb).unwrap();
    assert_eq!(fs::read(&ta).unwrap(), fs::read(&tb).unwrap());
}

#[test]
fn pack_refuses_links_leaving_src() {
    for target in ["/etc/passwd", "../outside", "sub/../../x"] {
        let tmp = TempDir::new().unwrap();
        let src = tmp.path().join("src");
        write(&src.join("f"), "x");
        symlink(target, src.join("evil")).unwrap();
        let dest = tmp.path().join("out.tar.gz");
        let err = pack_dir(&src, &dest).unwrap_err();
        assert!(matches!(err, MergeError::UnsafeSource { .. }), "{err:?}");
        assert!(err.to_string().contains("evil"), "{err}");
        assert!(!dest.exists(), "partial archive removed");
    }
}

#[test]
fn pack_refuses_special_files() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let err = pack_dir(&src, &tmp.path().join("o.tar.gz")).unwrap_err();
    assert!(err.to_string().contains("sock"), "{err}");
}

#[test]
fn pack_skips_its_own_archive() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), "x");
    let archive = src.join("self.tar.gz");
    pack_dir(&src, &archive).unwrap();
    let dest = tmp.path().join("dest");
    unpack(&archive, &dest).unwrap();
    assert_eq!(listing(&dest), vec!["f"]);
}

#[test]
fn unpack_refuses_hostile_entries() {
    let cases: Vec<(&str, Vec<Raw<'_>>)> = vec![
        ("../evil", vec![file("../evil", b"x")]),
        ("a/../../evil", vec![file("a/../../evil", b"x")]),
        ("/tmp/evil-abs", vec![file("/tmp/evil-abs", b"x")]),
        ("l", vec![link("l", EntryType::Symlink, "/etc")]),
        ("l", vec![link("l", EntryType::Symlink, "../outside")]),
        (
            "d/l",
            vec![link("d/l", EntryType::Symlink, "../../outside")],
        ),
        (
            "x",
            vec![
                link("l", EntryType::Symlink, "d"),
                link("x", EntryType::Symlink, "l/.."),
            ],
        ),
        (
            "l/f",
            vec![link("l", EntryType::Symlink, "sub"), file("l/f", b"x")],
        ),
        ("h", vec![link("h", EntryType::Link, "../outside")]),
        ("h", vec![link("h", EntryType::Link, "/etc/passwd")]),
        ("dev", vec![link("dev", EntryType::Char, "")]),
        ("blk", vec![link("blk", EntryType::Block, "")]),
        ("pipe", vec![link("pipe", EntryType::Fifo, "")]),
        ("f", vec![file("f", b"1"), file("f", b"2")]),
    ];
    for (bad, entries) in cases {
        let tmp = TempDir::new().unwrap();
        let archive = tmp.path().join("h.tar.gz");
        hostile(&archive, &entries);
        let dest = tmp.path().join("box/dest");
        let err = unpack(&archive, &dest).unwrap_err();
        refused(err, bad);
        assert!(!tmp.path().join("box/evil").exists());
        assert!(!tmp.path().join("box/outside").exists());
        assert!(!Path::new("/tmp/evil-abs").exists());
    }
}

#[test]
fn unpack_accepts_inside_links() {
    let tmp = TempDir::new().unwrap();
    let archive = tmp.path().join("ok.tar.gz");
    hostile(
        &archive,
        &[
            file("./d/f", b"data"),
            link("d/s", EntryType::Symlink, "f"),
            link("d/up", EntryType::Symlink, "../h"),
            link("h", EntryType::Link, "d/f"),
        ],
    );
    let dest = tmp.path().join("dest");
    unpack(&archive, &dest).unwrap();
    assert_eq!(read(&dest.join("d/s")), "data");
    assert_eq!(read(&dest.join("h")), "data");
    assert_eq!(read(&dest.join("d/up")), "data");

    // ".." after a name is refused even when it would stay inside: the name may be a link.
    let strict = tmp.path().join("strict.tar.gz");
    hostile(
        &strict,
        &[
            file("d/f", b"x"),
            link("up", EntryType::Symlink, "d/../d/f"),
        ],
    );
    refused(
        unpack(&strict, &tmp.path().join("dest2")).unwrap_err(),
        "up",
    );
}

#[test]
fn unpack_reports_garbage() {
    let tmp = TempDir::new().unwrap();
    let archive = tmp.path().join("junk.tar.gz");
    fs::write(&archive, b"not gzip at all").unwrap();
    let err = unpack(&archive, &tmp.path().join("d")).unwrap_err();
    assert!(matches!(err, MergeError::Io { .. }), "{err:?}");
    let err = unpack(&tmp.path().join("missing.tgz"), &tmp.path().join("d")).unwrap_err();
    assert!(err.to_string().contains("missing.tgz"), "{err}");
}

#[test]
fn a_single_result_is_merged_byte_for_byte() {
    let tmp = TempDir::new().unwrap();
    let a = packed(tmp.path(), "e-1", 1, &[("outputs/a.txt", "A")]);
    let out = tmp.path().join("job-1");
    merge_results(&[a], &out, false).unwrap();
    assert_eq!(read(&out.join("exitCode")), "0");
    assert_eq!(read(&out.join("stdout")), "out 1\n");
    // a second download into the same folder appends: one exit code per line
    let b = packed(tmp.path(), "e-2", 2, &[("outputs/b.txt", "B")]);
    merge_results(&[b], &out, false).unwrap();
    assert_eq!(read(&out.join("exitCode")), "0\n0\n");
}

#[test]
fn merge_appends_logs_and_combines_outputs() {
    let tmp = TempDir::new().unwrap();
    let a = packed(tmp.path(), "e-1", 1, &[("outputs/a.txt", "A")]);
    let b = packed(
        tmp.path(),
        "e-2",
        2,
        &[("outputs/b.txt", "B"), ("extra/c", "C")],
    );
    let out = tmp.path().join("job-1");
    let written = merge_results(&[a, b], &out, false).unwrap();
    assert_eq!(
        written,
        vec![
            "exitCode",
            "extra/c",
            "outputs/a.txt",
            "outputs/b.txt",
            "stderr",
            "stdout"
        ]
    );
    assert_eq!(read(&out.join("stdout")), "out 1\nout 2\n");
    assert_eq!(read(&out.join("stderr")), "err 1\nerr 2\n");
    assert_eq!(read(&out.join("exitCode")), "0\n0\n");
    assert_eq!(read(&out.join("outputs/b.txt")), "B");
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".bacalhau-merge")
        })
        .collect();
    assert!(leftovers.is_empty(), "scratch directory removed");
}

#[test]
fn merge_conflict_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let a = packed(
        tmp.path(),
        "e-1",
        1,
        &[("outputs/a.txt", "A"), ("outputs/same", "1")],
    );
    let b = packed(tmp.path(), "e-2", 2, &[("outputs/same", "2")]);
    let out = tmp.path().join("out");
    let err = merge_results(&[a, b], &out, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge results: outputs/same exists in more than one result. Try --raw"
    );
    assert!(
        listing(&out).is_empty(),
        "nothing moved: {:?}",
        listing(&out)
    );
}

#[test]
fn merge_conflict_with_existing_out_dir() {
    let tmp = TempDir::new().unwrap();
    let a = packed(tmp.path(), "e-1", 1, &[("outputs/a.txt", "A")]);
    let out = tmp.path().join("out");
    write(&out.join("outputs/a.txt"), "mine");
    write(&out.join("stdout"), "earlier\n");
    let err = merge_results(std::slice::from_ref(&a), &out, false).unwrap_err();
    assert!(matches!(err, MergeError::Conflict { ref path } if path == "outputs/a.txt"));
    assert_eq!(read(&out.join("outputs/a.txt")), "mine");
    assert_eq!(read(&out.join("stdout")), "earlier\n");

    // File where a result needs a folder, and vice versa.
    let out2 = tmp.path().join("out2");
    write(&out2.join("outputs"), "a file");
    let err = merge_results(std::slice::from_ref(&a), &out2, false).unwrap_err();
    assert!(matches!(err, MergeError::Conflict { ref path } if path == "outputs"));
}

#[test]
fn merge_appends_to_existing_logs() {
    let tmp = TempDir::new().unwrap();
    let a = packed(tmp.path(), "e-1", 1, &[]);
    let out = tmp.path().join("out");
    write(&out.join("stdout"), "earlier\n");
    merge_results(&[a], &out, false).unwrap();
    assert_eq!(read(&out.join("stdout")), "earlier\nout 1\n");
}

#[test]
fn merge_refuses_hostile_archive_before_writing() {
    let tmp = TempDir::new().unwrap();
    let good = packed(tmp.path(), "e-1", 1, &[("outputs/a.txt", "A")]);
    let bad = tmp.path().join("e-2.tar.gz");
    hostile(&bad, &[file("stdout", b"x"), file("../../escape", b"x")]);
    let out = tmp.path().join("out");
    let err = merge_results(&[good, bad], &out, false).unwrap_err();
    refused(err, "../../escape");
    assert!(listing(&out).is_empty());
    assert!(!tmp.path().join("escape").exists());
}

#[test]
fn raw_keeps_one_folder_per_archive() {
    let tmp = TempDir::new().unwrap();
    let a = packed(tmp.path(), "e-1", 1, &[("outputs/same", "1")]);
    let b = packed(tmp.path(), "e-2", 2, &[("outputs/same", "2")]);
    let out = tmp.path().join("out");
    let written = merge_results(&[a.clone(), b], &out, true).unwrap();
    assert!(
        written.contains(&"raw/e-1/outputs/same".to_string()),
        "{written:?}"
    );
    assert!(written.contains(&"raw/e-2/stdout".to_string()));
    assert_eq!(written.len(), 8);
    assert_eq!(read(&out.join("raw/e-2/outputs/same")), "2");

    // Same archive twice: duplicate folder name, refused before unpacking.
    let out2 = tmp.path().join("out2");
    let err = merge_results(&[a.clone(), a.clone()], &out2, true).unwrap_err();
    assert!(matches!(err, MergeError::DuplicateArchiveName { ref name } if name == "e-1"));
    assert!(!out2.join("raw").exists());
    // Folder already there.
    let err = merge_results(&[a], &out, true).unwrap_err();
    assert!(matches!(err, MergeError::Conflict { ref path } if path == "raw/e-1"));
}
