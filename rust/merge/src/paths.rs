//! Path rules shared by pack and unpack: safe entry names, safe link targets, sorted walks.

use std::fs::{self, Metadata};
use std::path::{Component, Path, PathBuf};

use crate::error::MergeError;

/// Splits an archive entry name into normal components, refusing absolute names and `..`.
/// `.` components are dropped; an empty result means the archive root.
pub(crate) fn entry_components(name: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains \"..\""),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    Ok(out)
}

/// Checks a symbolic link target for a link stored at `link` (relative to the root).
///
/// Allowed: relative targets made of leading `..` components, no more of them than the link's
/// depth, followed by normal components. A `..` after a normal component is refused because
/// that component may itself be a link, which makes lexical reasoning unsound.
pub(crate) fn check_link_target(link: &Path, target: &Path) -> Result<(), &'static str> {
    if target.as_os_str().is_empty() {
        return Err("link target is empty");
    }
    let depth = link.components().count().saturating_sub(1);
    let mut ups = 0;
    let mut descended = false;
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => return Err("link target is absolute"),
            Component::CurDir => {}
            Component::ParentDir if descended => {
                return Err("link target has \"..\" after a directory name")
            }
            Component::ParentDir => {
                ups += 1;
                if ups > depth {
                    return Err("link target points outside the directory");
                }
            }
            Component::Normal(_) => descended = true,
        }
    }
    Ok(())
}

/// Every entry below `root` (not following links), depth first, each directory before its
/// contents, siblings in byte order of their names. Paths are relative to `root`.
pub(crate) fn walk(root: &Path) -> Result<Vec<(PathBuf, Metadata)>, MergeError> {
    let mut out = Vec::new();
    walk_into(root, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk_into(
    root: &Path,
    rel: &Path,
    out: &mut Vec<(PathBuf, Metadata)>,
) -> Result<(), MergeError> {
    let dir = root.join(rel);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(MergeError::io("read directory", &dir))? {
        let entry = entry.map_err(MergeError::io("read directory", &dir))?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let abs = root.join(&child);
        let meta = fs::symlink_metadata(&abs).map_err(MergeError::io("inspect", &abs))?;
        let is_dir = meta.is_dir();
        out.push((child.clone(), meta));
        if is_dir {
            walk_into(root, &child, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(
            entry_components(Path::new("./a/./b")),
            Ok(PathBuf::from("a/b"))
        );
        assert_eq!(entry_components(Path::new("./")), Ok(PathBuf::new()));
        assert!(entry_components(Path::new("/etc/passwd")).is_err());
        assert!(entry_components(Path::new("a/../../b")).is_err());
        assert!(entry_components(Path::new("..")).is_err());
    }

    #[test]
    fn link_targets() {
        let ok = |l: &str, t: &str| check_link_target(Path::new(l), Path::new(t)).is_ok();
        assert!(ok("a", "b"));
        assert!(ok("d/a", "../b"));
        assert!(ok("d/e/a", "../../b/c"));
        assert!(ok("d/a", "./b"));
        assert!(!ok("a", "../b"), "escapes from the root");
        assert!(!ok("d/a", "../../b"));
        assert!(!ok("a", "/etc/passwd"));
        assert!(!ok("a", "b/../c"), "'..' after a name may cross a link");
        assert!(!ok("a", ""));
    }
}
