//! `cid_of_path`, `cid_of_bytes`: Kubo-identical CIDs, hashed with the GIL released.

use std::path::PathBuf;

use bacalhau_unixfs::{Options, Profile};
use pyo3::prelude::*;

use crate::CidError;

fn map_err(e: bacalhau_unixfs::CidError) -> PyErr {
    CidError::new_err(e.to_string())
}

/// The CID `ipfs add [-r]` prints for a file, directory or symlink.
#[pyfunction]
#[pyo3(signature = (path, profile = "unixfs-v0-2015", hidden = false, threads = 0, dereference = false))]
pub fn cid_of_path(
    py: Python<'_>,
    path: PathBuf,
    profile: &str,
    hidden: bool,
    threads: usize,
    dereference: bool,
) -> PyResult<String> {
    let options = Options {
        profile: Profile::by_name(profile).map_err(map_err)?,
        hidden,
        dereference,
        threads,
    };
    py.detach(|| bacalhau_unixfs::cid_of_path(&path, &options))
        .map(|cid| cid.to_string())
        .map_err(map_err)
}

/// The CID of a file holding `data`.
#[pyfunction]
#[pyo3(signature = (data, profile = "unixfs-v0-2015"))]
pub fn cid_of_bytes(py: Python<'_>, data: &[u8], profile: &str) -> PyResult<String> {
    let profile = Profile::by_name(profile).map_err(map_err)?;
    py.detach(|| bacalhau_unixfs::cid_of_bytes(data, &profile))
        .map(|cid| cid.to_string())
        .map_err(map_err)
}
