//! Merges the result archives of a job's executions into one output directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::MergeError;
use crate::paths::walk;
use crate::unpack::unpack;

/// Files at the top of a result that are concatenated (in archive order) instead of clashing.
pub const APPENDED_FILES: [&str; 3] = ["stdout", "stderr", EXIT_CODE_FILE];
/// Appended one value per line (stdout and stderr are appended byte for byte).
pub const EXIT_CODE_FILE: &str = "exitCode";

/// Name of the folder that holds per-archive folders in raw mode.
pub const RAW_DIR: &str = "raw";

/// Merges `archives` (one `.tar.gz` per execution's results directory) into `out_dir`.
///
/// Default mode: every archive is unpacked into a scratch directory next to `out_dir`; then
/// the merge is planned: `stdout`, `stderr` and `exitCode` are appended in archive order
/// (also to files of that name already in `out_dir`; exit codes one per line when several
/// meet, a lone one byte for byte), directories are merged, and any other
/// path found twice, or already present in `out_dir`, fails with [`MergeError::Conflict`]
/// before anything is written to `out_dir`.
///
/// Raw mode (`raw = true`): each archive goes, whole, to `out_dir/raw/<archive stem>/`.
///
/// Returns the relative paths (with `/`) of the files and links written, sorted.
pub fn merge_results(
    archives: &[PathBuf],
    out_dir: &Path,
    raw: bool,
) -> Result<Vec<String>, MergeError> {
    fs::create_dir_all(out_dir).map_err(MergeError::io("create directory", out_dir))?;
    let scratch = scratch_dir(out_dir)?;
    if raw {
        merge_raw(archives, out_dir, scratch.path())
    } else {
        merge_combined(archives, out_dir, scratch.path())
    }
}

/// A scratch directory beside `out_dir`, on the same file system so moves are renames.
fn scratch_dir(out_dir: &Path) -> Result<tempfile::TempDir, MergeError> {
    let abs = fs::canonicalize(out_dir).map_err(MergeError::io("resolve", out_dir))?;
    let parent = abs.parent().unwrap_or(&abs);
    tempfile::Builder::new()
        .prefix(".bacalhau-merge-")
        .tempdir_in(parent)
        .map_err(MergeError::io("create scratch directory in", parent))
}

fn rel_string(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Appended,
}

fn merge_combined(
    archives: &[PathBuf],
    out_dir: &Path,
    scratch: &Path,
) -> Result<Vec<String>, MergeError> {
    let mut unpacked = Vec::with_capacity(archives.len());
    for (i, archive) in archives.iter().enumerate() {
        let dir = scratch.join(i.to_string());
        unpack(archive, &dir)?;
        unpacked.push(dir);
    }

    // Plan: nothing touches out_dir until every archive has been checked.
    let mut seen: HashMap<PathBuf, Kind> = HashMap::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut appends: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for root in &unpacked {
        for (rel, meta) in walk(root)? {
            let top_level_appended = rel.parent() == Some(Path::new(""))
                && APPENDED_FILES
                    .iter()
                    .any(|n| rel.as_os_str() == OsStr::new(n));
            let kind = if meta.is_dir() {
                Kind::Dir
            } else if top_level_appended && meta.is_file() {
                Kind::Appended
            } else {
                Kind::File
            };
            match seen.get(&rel) {
                Some(&prev) if prev == kind && kind != Kind::File => {}
                Some(_) => {
                    return Err(MergeError::Conflict {
                        path: rel_string(&rel),
                    })
                }
                None => {
                    check_out_dir(out_dir, &rel, kind)?;
                    seen.insert(rel.clone(), kind);
                }
            }
            match kind {
                Kind::Dir => dirs.push(rel),
                Kind::File => moves.push((root.join(&rel), rel)),
                Kind::Appended => appends
                    .entry(rel.clone())
                    .or_default()
                    .push(root.join(&rel)),
            }
        }
    }

    // Apply.
    for rel in &dirs {
        let target = out_dir.join(rel);
        fs::create_dir_all(&target).map_err(MergeError::io("create directory", &target))?;
    }
    let mut written: Vec<String> = Vec::with_capacity(moves.len() + appends.len());
    for (from, rel) in moves {
        let target = out_dir.join(&rel);
        fs::rename(&from, &target).map_err(MergeError::io("move result to", &target))?;
        written.push(rel_string(&rel));
    }
    for (rel, sources) in appends {
        let target = out_dir.join(&rel);
        // One exitCode per line once several results meet (or one meets an earlier download);
        // a lone result keeps its bytes, so a single result's download hashes to its CID.
        let earlier = fs::read(&target).ok();
        let one_value_per_line =
            rel == Path::new(EXIT_CODE_FILE) && (sources.len() > 1 || earlier.is_some());
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)
            .map_err(MergeError::io("open", &target))?;
        if one_value_per_line && earlier.is_some_and(|b| !b.is_empty() && !b.ends_with(b"\n")) {
            writeln!(out).map_err(MergeError::io("append to", &target))?; // a lone earlier code
        }
        for src in sources {
            if one_value_per_line {
                // exit codes are bare numbers: one per line keeps the merged file readable
                let value = fs::read_to_string(&src).map_err(MergeError::io("read", &src))?;
                writeln!(out, "{}", value.trim_end())
                    .map_err(MergeError::io("append to", &target))?;
                continue;
            }
            let mut input = fs::File::open(&src).map_err(MergeError::io("read", &src))?;
            io::copy(&mut input, &mut out).map_err(MergeError::io("append to", &target))?;
        }
        written.push(rel_string(&rel));
    }
    written.sort();
    Ok(written)
}

/// Fails when `rel` already exists in `out_dir` in a way the merge would overwrite.
fn check_out_dir(out_dir: &Path, rel: &Path, kind: Kind) -> Result<(), MergeError> {
    let target = out_dir.join(rel);
    match fs::symlink_metadata(&target) {
        Ok(m) => {
            let compatible = match kind {
                Kind::Dir => m.is_dir(),
                Kind::Appended => m.is_file(),
                Kind::File => false,
            };
            if compatible {
                Ok(())
            } else {
                Err(MergeError::Conflict {
                    path: rel_string(rel),
                })
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // e.g. "not a directory": a file in out_dir stands where the result needs a folder.
        Err(_) => Err(MergeError::Conflict {
            path: rel_string(rel),
        }),
    }
}

/// Archive file name without `.tar.gz`, `.tgz` or `.tar`.
fn archive_stem(archive: &Path) -> String {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for suffix in [".tar.gz", ".tgz", ".tar"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.is_empty() {
                return stem.to_string();
            }
        }
    }
    name
}

fn merge_raw(
    archives: &[PathBuf],
    out_dir: &Path,
    scratch: &Path,
) -> Result<Vec<String>, MergeError> {
    let raw = out_dir.join(RAW_DIR);
    let mut stems = Vec::with_capacity(archives.len());
    let mut unique = HashSet::new();
    for archive in archives {
        let stem = archive_stem(archive);
        if stem.is_empty() || stem == "." || stem == ".." {
            return Err(MergeError::UnsafeEntry {
                entry: archive.display().to_string(),
                reason: "archive name cannot name a folder".to_string(),
            });
        }
        if !unique.insert(stem.clone()) {
            return Err(MergeError::DuplicateArchiveName { name: stem });
        }
        if fs::symlink_metadata(raw.join(&stem)).is_ok() {
            return Err(MergeError::Conflict {
                path: format!("{RAW_DIR}/{stem}"),
            });
        }
        stems.push(stem);
    }
    let mut unpacked = Vec::with_capacity(archives.len());
    for (i, archive) in archives.iter().enumerate() {
        let dir = scratch.join(i.to_string());
        unpack(archive, &dir)?;
        unpacked.push(dir);
    }
    fs::create_dir_all(&raw).map_err(MergeError::io("create directory", &raw))?;
    let mut written = Vec::new();
    for (dir, stem) in unpacked.iter().zip(&stems) {
        let target = raw.join(stem);
        fs::rename(dir, &target).map_err(MergeError::io("move result to", &target))?;
        for (rel, meta) in walk(&target)? {
            if !meta.is_dir() {
                written.push(format!("{RAW_DIR}/{stem}/{}", rel_string(&rel)));
            }
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(archive_stem(Path::new("/x/e-1.tar.gz")), "e-1");
        assert_eq!(archive_stem(Path::new("e-2.tgz")), "e-2");
        assert_eq!(archive_stem(Path::new("e-3.tar")), "e-3");
        assert_eq!(archive_stem(Path::new("plain")), "plain");
        assert_eq!(archive_stem(Path::new(".tar.gz")), ".tar.gz");
    }
}
