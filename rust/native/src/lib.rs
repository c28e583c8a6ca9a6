//! PyO3 glue: `bacalhau._native`. Converts types, releases the GIL, maps errors. No logic here.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

mod convert;
mod merge;
mod ranking;
mod transport;
mod unixfs;

create_exception!(
    bacalhau._native,
    RankingError,
    PyException,
    "A ranking request or node update was malformed (bad constraint, bad resources)."
);
create_exception!(
    bacalhau._native,
    MergeError,
    PyException,
    "Packing, unpacking or merging results failed (unsafe entry, conflict, I/O)."
);
create_exception!(
    bacalhau._native,
    CidError,
    PyException,
    "Computing a CID failed (missing path, unknown profile, unreadable or unsupported file)."
);

create_exception!(
    bacalhau._native,
    NativeTransportError,
    PyException,
    "The libp2p transport failed (bad config or swarm key, closed node, message too large)."
);

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RankingError", py.get_type::<RankingError>())?;
    m.add("MergeError", py.get_type::<MergeError>())?;
    m.add("CidError", py.get_type::<CidError>())?;
    m.add_class::<ranking::NodeTable>()?;
    m.add_class::<ranking::Ranking>()?;
    m.add_function(wrap_pyfunction!(ranking::not_enough_nodes_message, m)?)?;
    m.add_function(wrap_pyfunction!(merge::pack_dir, m)?)?;
    m.add_function(wrap_pyfunction!(merge::unpack, m)?)?;
    m.add_function(wrap_pyfunction!(merge::merge_results, m)?)?;
    m.add_function(wrap_pyfunction!(unixfs::cid_of_path, m)?)?;
    m.add_function(wrap_pyfunction!(unixfs::cid_of_bytes, m)?)?;
    m.add(
        "NativeTransportError",
        py.get_type::<NativeTransportError>(),
    )?;
    m.add_class::<transport::NativeNode>()?;
    m.add_function(wrap_pyfunction!(transport::next_events, m)?)?;
    m.add_function(wrap_pyfunction!(transport::wake_fd, m)?)?;
    m.add_function(wrap_pyfunction!(transport::clear_wake, m)?)?;
    m.add_function(wrap_pyfunction!(transport::load_peer_id, m)?)?;
    m.add_function(wrap_pyfunction!(transport::generate_swarm_key, m)?)?;
    m.add_function(wrap_pyfunction!(transport::parse_swarm_key, m)?)?;
    Ok(())
}
