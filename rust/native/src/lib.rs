//! PyO3 glue: `bacalhau._native`. Converts types, releases the GIL, maps errors. No logic here.
use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
