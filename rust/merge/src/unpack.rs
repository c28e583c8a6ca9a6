//! Unpacks a `.tar.gz` into a directory, refusing anything that could escape it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tar::{Archive, EntryType};

use crate::error::MergeError;
use crate::paths::{check_link_target, entry_components};

/// Unpacks `archive` into `dest` (created if missing).
///
/// Refused, with an error naming the entry: absolute names, names with `..`, symbolic links
/// whose target could leave `dest`, hard links to anything but an already unpacked regular
/// file, devices and fifos, entries whose parent is a symbolic link, and duplicate files.
/// Entries before the refused one stay on disk; callers unpack into a scratch directory.
pub fn unpack(archive: &Path, dest: &Path) -> Result<(), MergeError> {
    let file = File::open(archive).map_err(MergeError::io("open archive", archive))?;
    fs::create_dir_all(dest).map_err(MergeError::io("create directory", dest))?;
    let mut tar = Archive::new(GzDecoder::new(BufReader::new(file)));
    let read_err = |e: io::Error| MergeError::io("read archive", archive)(e);
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let refuse = |reason: &str| MergeError::UnsafeEntry {
            entry: shown.clone(),
            reason: reason.to_string(),
        };
        let rel =
            entry_components(Path::new(std::ffi::OsStr::from_bytes(&raw_name))).map_err(refuse)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue; // "./": the destination itself
            }
            return Err(refuse("empty name"));
        }
        prepare_parents(dest, &rel).map_err(|r| refuse(&r))?;
        let target = dest.join(&rel);
        let exists = fs::symlink_metadata(&target).ok();
        match kind {
            EntryType::Directory => match exists {
                Some(m) if m.is_dir() => {}
                Some(_) => return Err(refuse("a file of that name was already unpacked")),
                None => {
                    fs::create_dir(&target).map_err(MergeError::io("create directory", &target))?
                }
            },
            EntryType::Regular | EntryType::Continuous => {
                if exists.is_some() {
                    return Err(refuse("duplicate entry"));
                }
                let mode = (entry.header().mode().unwrap_or(0o644) & 0o755) | 0o600;
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&target)
                    .map_err(MergeError::io("create file", &target))?;
                io::copy(&mut entry, &mut out).map_err(MergeError::io("write file", &target))?;
            }
            EntryType::Symlink => {
                if exists.is_some() {
                    return Err(refuse("duplicate entry"));
                }
                let link = link_target(&entry).ok_or_else(|| refuse("link without target"))?;
                check_link_target(&rel, &link).map_err(refuse)?;
                symlink(&link, &target).map_err(MergeError::io("create link", &target))?;
            }
            EntryType::Link => {
                if exists.is_some() {
                    return Err(refuse("duplicate entry"));
                }
                let link = link_target(&entry).ok_or_else(|| refuse("link without target"))?;
                let link_rel = entry_components(&link)
                    .map_err(|r| refuse(&format!("hard link target: {r}")))?;
                prepare_parents_existing(dest, &link_rel).map_err(|r| refuse(&r))?;
                let source = dest.join(&link_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if m.is_file() => {}
                    _ => return Err(refuse("hard link target is not an unpacked regular file")),
                }
                fs::hard_link(&source, &target).map_err(MergeError::io("create link", &target))?;
            }
            EntryType::Char | EntryType::Block => {
                return Err(refuse("device files are not allowed"))
            }
            EntryType::Fifo => return Err(refuse("fifos are not allowed")),
            _ => return Err(refuse("unsupported entry type")),
        }
    }
    Ok(())
}

fn link_target<R: io::Read>(entry: &tar::Entry<'_, R>) -> Option<PathBuf> {
    let bytes = entry.link_name_bytes()?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
}

/// Creates missing parent directories of `rel` below `dest`, refusing to pass through links
/// or files.
fn prepare_parents(dest: &Path, rel: &Path) -> Result<(), String> {
    let mut cur = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("a parent directory is a symbolic link".to_string())
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err("a parent directory is a file".to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|e| format!("cannot create parent directory: {e}"))?
            }
            Err(e) => return Err(format!("cannot inspect parent directory: {e}")),
        }
    }
    Ok(())
}

/// Checks that the parents of `rel` below `dest` are real directories (no links).
fn prepare_parents_existing(dest: &Path, rel: &Path) -> Result<(), String> {
    let mut cur = dest.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
            _ => return Err("hard link target is not inside an unpacked directory".to_string()),
        }
    }
    Ok(())
}
