//! The file-system side of `ipfs add -r`: which entries are added and how each kind is named.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::path::Path;

use rayon::prelude::*;

use crate::dir::{directory_node, symlink_node, Entry};
use crate::error::CidError;
use crate::file::file_node;
use crate::{Node, Options};

/// Walks one tree with fixed options. `parallel` means: use the current rayon pool.
pub(crate) struct Walker<'a> {
    pub options: &'a Options,
    pub parallel: bool,
}

/// Identity of a directory, to notice a dereferenced symlink that loops back.
type DirId = (u64, u64);

impl Walker<'_> {
    /// The node of `path`: file, directory (recursively) or symlink.
    pub(crate) fn node(&self, path: &Path, ancestors: &[DirId]) -> Result<Node, CidError> {
        let mut meta =
            fs::symlink_metadata(path).map_err(CidError::io("read metadata of", path))?;
        if meta.file_type().is_symlink() {
            if !self.options.dereference {
                let target = fs::read_link(path).map_err(CidError::io("read link", path))?;
                return Ok(symlink_node(
                    &name_bytes(target.as_os_str()),
                    &self.options.profile,
                ));
            }
            meta = fs::metadata(path).map_err(CidError::io("follow link", path))?;
        }
        if meta.is_dir() {
            self.directory(path, &meta, ancestors)
        } else if meta.is_file() {
            let file = File::open(path).map_err(CidError::io("open", path))?;
            let len = file
                .metadata()
                .map_err(CidError::io("read metadata of", path))?
                .len();
            file_node(path, &file, len, &self.options.profile, self.parallel).map(|p| p.node)
        } else {
            Err(CidError::UnsupportedFileType {
                path: path.to_path_buf(),
            })
        }
    }

    fn directory(
        &self,
        path: &Path,
        meta: &Metadata,
        ancestors: &[DirId],
    ) -> Result<Node, CidError> {
        let mut lineage = ancestors.to_vec();
        if let Some(id) = dir_id(meta) {
            if ancestors.contains(&id) {
                return Err(CidError::SymlinkLoop {
                    path: path.to_path_buf(),
                });
            }
            lineage.push(id);
        }
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(CidError::io("list directory", path))? {
            let name = entry
                .map_err(CidError::io("list directory", path))?
                .file_name();
            // `ipfs add` skips dot files unless --hidden.
            if self.options.hidden || !name_bytes(&name).starts_with(b".") {
                names.push(name);
            }
        }
        // Sorted so that the first error reported is the same on every run.
        names.sort_unstable();
        let child = |name: &std::ffi::OsString| {
            self.node(&path.join(name), &lineage).map(|node| Entry {
                name: name_bytes(name),
                node,
            })
        };
        let results: Vec<Result<Entry, CidError>> = if self.parallel && names.len() > 1 {
            names.par_iter().map(child).collect()
        } else {
            names.iter().map(child).collect()
        };
        let entries = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        directory_node(entries, &self.options.profile)
    }
}

#[cfg(unix)]
fn name_bytes(name: &OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn name_bytes(name: &OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

#[cfg(unix)]
fn dir_id(meta: &Metadata) -> Option<DirId> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn dir_id(_meta: &Metadata) -> Option<DirId> {
    None
}
