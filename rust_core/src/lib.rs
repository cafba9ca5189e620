//! Arcana's native core. This file is the table of contents: modules and the Python exports.
use pyo3::prelude::*;

pub mod errors;
pub mod jwt;
pub mod password;

/// The crate version, so Python can check which build it loaded.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _rust_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("MAX_PASSWORD_BYTES", password::MAX_PASSWORD_BYTES)?;
    errors::register(m)?;
    m.add_class::<password::PyPasswordHasher>()?;
    m.add_class::<jwt::PyTokenSigner>()?;
    m.add_class::<jwt::PyTokenVerifier>()?;
    Ok(())
}
