//! Arcana's native core. This file is the table of contents: modules and the Python exports.
use pyo3::prelude::*;

pub mod errors;
pub mod fuzzing;
pub mod jwt;
pub mod password;

/// The crate version (Cargo.toml), also the module's `__version__`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// "release" or "debug": debug assertions are what separate cargo's two profiles, and a debug
/// build is several times slower, so a service can refuse or report one (`make` builds release).
pub const BUILD_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// The crate version, so Python can check which build it loaded.
#[pyfunction]
fn version() -> &'static str {
    VERSION
}

#[pymodule]
fn _rust_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // setattr, not add: a dunder belongs on the module, not in `__all__`.
    m.setattr("__version__", VERSION)?;
    m.add("BUILD_PROFILE", BUILD_PROFILE)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("MAX_PASSWORD_BYTES", password::MAX_PASSWORD_BYTES)?;
    errors::register(m)?;
    m.add_class::<password::PyPasswordHasher>()?;
    m.add_class::<jwt::PyTokenSigner>()?;
    m.add_class::<jwt::PyTokenVerifier>()?;
    Ok(())
}
