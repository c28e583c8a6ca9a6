//! `pack_dir`, `unpack`, `merge_results`: paths in, the GIL released while files move.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::MergeError;

fn map_err(e: bacalhau_merge::MergeError) -> PyErr {
    MergeError::new_err(e.to_string())
}

/// Packs a directory into a deterministic `.tar.gz`; returns its size in bytes.
#[pyfunction]
pub fn pack_dir(py: Python<'_>, src_dir: PathBuf, dest_tar_gz: PathBuf) -> PyResult<u64> {
    py.detach(|| bacalhau_merge::pack_dir(&src_dir, &dest_tar_gz))
        .map_err(map_err)
}

/// Unpacks a `.tar.gz`, refusing entries that could escape `dest_dir`.
#[pyfunction]
pub fn unpack(py: Python<'_>, tar_gz: PathBuf, dest_dir: PathBuf) -> PyResult<()> {
    py.detach(|| bacalhau_merge::unpack(&tar_gz, &dest_dir))
        .map_err(map_err)
}

/// Merges result archives into `out_dir`; returns the relative paths written.
#[pyfunction]
#[pyo3(signature = (archives, out_dir, raw = false))]
pub fn merge_results(
    py: Python<'_>,
    archives: Vec<PathBuf>,
    out_dir: PathBuf,
    raw: bool,
) -> PyResult<Vec<String>> {
    py.detach(|| bacalhau_merge::merge_results(&archives, &out_dir, raw))
        .map_err(map_err)
}
