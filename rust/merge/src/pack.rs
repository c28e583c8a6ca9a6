//! Packs a directory into a deterministic `.tar.gz`.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::{Builder, EntryType, Header};

use crate::error::MergeError;
use crate::gzip::GzWriter;
use crate::paths::{check_link_target, walk};

/// Modification time written for every entry, so equal trees give equal archives.
pub const DETERMINISTIC_MTIME: u64 = 1_153_704_088;

/// Packs `src` into `dest` (gzip-compressed tar) and returns the archive size in bytes.
///
/// Entries are sorted by path and carry no owner or time information, so the same tree
/// always yields the same bytes. Symbolic links are stored as links and must stay inside
/// `src` (relative, see the crate README); devices, fifos and sockets are refused. If `dest`
/// lies inside `src` it is skipped. On error the partial archive is removed.
pub fn pack_dir(src: &Path, dest: &Path) -> Result<u64, MergeError> {
    let meta = fs::metadata(src).map_err(MergeError::io("read directory", src))?;
    if !meta.is_dir() {
        return Err(MergeError::UnsafeSource {
            path: src.to_path_buf(),
            reason: "not a directory".to_string(),
        });
    }
    let file = File::create(dest).map_err(MergeError::io("create archive", dest))?;
    let result = file
        .metadata()
        .map_err(MergeError::io("inspect", dest))
        .and_then(|own| write_archive(src, dest, (own.dev(), own.ino()), file));
    match result {
        Ok(()) => fs::metadata(dest)
            .map(|m| m.len())
            .map_err(MergeError::io("inspect", dest)),
        Err(e) => {
            // Best effort: the error about the source matters more than a failed cleanup.
            let _ = fs::remove_file(dest);
            Err(e)
        }
    }
}

fn write_archive(src: &Path, dest: &Path, skip: (u64, u64), file: File) -> Result<(), MergeError> {
    let gz = GzWriter::new(BufWriter::new(file));
    let mut tar = Builder::new(gz);
    tar.follow_symlinks(false);
    let write_err = MergeError::io("write archive", dest);
    for (rel, meta) in walk(src)? {
        let abs = src.join(&rel);
        if (meta.dev(), meta.ino()) == skip {
            continue;
        }
        let mut header = Header::new_gnu();
        header.set_mtime(DETERMINISTIC_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        let ft = meta.file_type();
        let res = if ft.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, std::io::empty())
        } else if ft.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_mode((meta.mode() & 0o755) | 0o644);
            header.set_size(meta.len());
            let f = File::open(&abs).map_err(MergeError::io("read", &abs))?;
            // `take` keeps the entry consistent with its header if the file grows meanwhile.
            tar.append_data(&mut header, &rel, f.take(meta.len()))
        } else if ft.is_symlink() {
            let target = fs::read_link(&abs).map_err(MergeError::io("read link", &abs))?;
            check_link_target(&rel, &target).map_err(|reason| MergeError::UnsafeSource {
                path: abs.clone(),
                reason: format!("{reason} ({})", target.display()),
            })?;
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, &rel, &target)
        } else {
            return Err(MergeError::UnsafeSource {
                path: abs,
                reason: "not a regular file, directory or symbolic link".to_string(),
            });
        };
        res.map_err(MergeError::io("add to archive", &abs))?;
    }
    let gz = tar
        .into_inner()
        .map_err(MergeError::io("write archive", dest))?;
    let mut buf = gz.finish().map_err(MergeError::io("write archive", dest))?;
    buf.flush().map_err(write_err)?;
    Ok(())
}
