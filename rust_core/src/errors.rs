//! One error type for the whole crate and its mapping onto Python exceptions.
//!
//! Every failure is a [`CoreError`] variant; the Python bindings turn it into one exception class
//! of the hierarchy below (all of them subclass `ValueError`, except `Unsupported`, which is a
//! `TypeError` like the one `json`/`msgspec` raise for an object they cannot encode).
//!
//! ```text
//! ValueError
//! └── CoreError
//!     ├── PasswordHashError, PasswordTooLongError
//!     └── TokenError
//!         ├── MalformedTokenError, InvalidAlgorithmError, UnknownKeyError, InvalidSignatureError
//!         ├── ExpiredTokenError, ImmatureTokenError
//!         └── InvalidIssuerError, InvalidAudienceError, InvalidTypeError
//! ```
use std::fmt;

/// Every error the core can report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A constructor argument is out of range (Python: plain `ValueError`).
    InvalidArgument(String),
    /// A value of a type the JSON encoder does not support (Python: `TypeError`).
    Unsupported(String),
    /// A supported type whose value cannot be encoded, e.g. an int beyond 64 bits (`CoreError`).
    Encode(String),
    /// A stored password hash that is not a supported argon2 PHC string.
    PasswordHash(String),
    /// A password longer than `MAX_PASSWORD_BYTES` (UTF-8 bytes).
    PasswordTooLong,
    /// Bad compact form, base64, JSON, duplicate/wrong-type claim, oversized token.
    MalformedToken(&'static str),
    /// The header `alg` is not the verifier's single algorithm.
    InvalidAlgorithm,
    /// The header `kid` is missing (with several keys) or not in the key ring.
    UnknownKey,
    /// The signature does not match (or has the wrong length).
    InvalidSignature,
    /// `exp` is in the past beyond the leeway.
    Expired,
    /// `nbf` or `iat` is in the future beyond the leeway.
    Immature(&'static str),
    /// `iss` is missing or not the configured issuer.
    InvalidIssuer,
    /// `aud` is missing or does not intersect the allowlist.
    InvalidAudience,
    /// Header `typ` is missing or not the configured type.
    InvalidType,
}

/// The crate-wide result type.
pub type CoreResult<T> = Result<T, CoreError>;

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArgument(m) | Self::Unsupported(m) | Self::Encode(m) => f.write_str(m),
            Self::PasswordHash(m) => write!(f, "invalid password hash: {m}"),
            Self::PasswordTooLong => write!(
                f,
                "password longer than {} bytes",
                crate::password::MAX_PASSWORD_BYTES
            ),
            Self::MalformedToken(m) => write!(f, "malformed token: {m}"),
            Self::InvalidAlgorithm => f.write_str("token algorithm not allowed"),
            Self::UnknownKey => f.write_str("unknown signing key id"),
            Self::InvalidSignature => f.write_str("invalid token signature"),
            Self::Expired => f.write_str("token has expired"),
            Self::Immature(claim) => write!(f, "token is not yet valid ({claim})"),
            Self::InvalidIssuer => f.write_str("invalid token issuer"),
            Self::InvalidAudience => f.write_str("invalid token audience"),
            Self::InvalidType => f.write_str("invalid token type"),
        }
    }
}

impl std::error::Error for CoreError {}

// ---------------------------------------------------------------------------------------------
// Python bindings
// ---------------------------------------------------------------------------------------------
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The Python exception classes (a module of their own so `CoreError` can keep its name).
pub mod exc {
    use pyo3::exceptions::PyValueError;

    pyo3::create_exception!(
        py_app._rust_core,
        CoreError,
        PyValueError,
        "Base class of every error raised by the Rust core."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        PasswordHashError,
        CoreError,
        "A stored hash is not a well-formed, supported argon2 PHC string."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        PasswordTooLongError,
        CoreError,
        "The password is longer than MAX_PASSWORD_BYTES UTF-8 bytes."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        TokenError,
        CoreError,
        "Base class of every token verification failure."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        MalformedTokenError,
        TokenError,
        "Bad compact form, base64, JSON, duplicate or wrong-type claim, or oversized token."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        InvalidAlgorithmError,
        TokenError,
        "The header alg is not the verifier's single allowed algorithm."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        UnknownKeyError,
        TokenError,
        "The header kid is missing or not in the key ring."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        InvalidSignatureError,
        TokenError,
        "The signature does not verify."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        ExpiredTokenError,
        TokenError,
        "exp is in the past beyond the leeway."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        ImmatureTokenError,
        TokenError,
        "nbf or iat is in the future beyond the leeway."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        InvalidIssuerError,
        TokenError,
        "iss is missing or differs from the configured issuer."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        InvalidAudienceError,
        TokenError,
        "aud is missing or does not intersect the audience allowlist."
    );
    pyo3::create_exception!(
        py_app._rust_core,
        InvalidTypeError,
        TokenError,
        "The header typ is missing or differs from the configured type."
    );
}
use exc::*;

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        let msg = err.to_string();
        match err {
            CoreError::InvalidArgument(_) => PyValueError::new_err(msg),
            CoreError::Unsupported(_) => PyTypeError::new_err(msg),
            CoreError::Encode(_) => exc::CoreError::new_err(msg),
            CoreError::PasswordHash(_) => PasswordHashError::new_err(msg),
            CoreError::PasswordTooLong => PasswordTooLongError::new_err(msg),
            CoreError::MalformedToken(_) => MalformedTokenError::new_err(msg),
            CoreError::InvalidAlgorithm => InvalidAlgorithmError::new_err(msg),
            CoreError::UnknownKey => UnknownKeyError::new_err(msg),
            CoreError::InvalidSignature => InvalidSignatureError::new_err(msg),
            CoreError::Expired => ExpiredTokenError::new_err(msg),
            CoreError::Immature(_) => ImmatureTokenError::new_err(msg),
            CoreError::InvalidIssuer => InvalidIssuerError::new_err(msg),
            CoreError::InvalidAudience => InvalidAudienceError::new_err(msg),
            CoreError::InvalidType => InvalidTypeError::new_err(msg),
        }
    }
}

/// Adds the exception classes to the module under their Python names.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CoreError", py.get_type::<exc::CoreError>())?;
    m.add("PasswordHashError", py.get_type::<PasswordHashError>())?;
    m.add(
        "PasswordTooLongError",
        py.get_type::<PasswordTooLongError>(),
    )?;
    m.add("TokenError", py.get_type::<TokenError>())?;
    m.add("MalformedTokenError", py.get_type::<MalformedTokenError>())?;
    m.add(
        "InvalidAlgorithmError",
        py.get_type::<InvalidAlgorithmError>(),
    )?;
    m.add("UnknownKeyError", py.get_type::<UnknownKeyError>())?;
    m.add(
        "InvalidSignatureError",
        py.get_type::<InvalidSignatureError>(),
    )?;
    m.add("ExpiredTokenError", py.get_type::<ExpiredTokenError>())?;
    m.add("ImmatureTokenError", py.get_type::<ImmatureTokenError>())?;
    m.add("InvalidIssuerError", py.get_type::<InvalidIssuerError>())?;
    m.add(
        "InvalidAudienceError",
        py.get_type::<InvalidAudienceError>(),
    )?;
    m.add("InvalidTypeError", py.get_type::<InvalidTypeError>())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_messages_are_informative() {
        assert_eq!(CoreError::Expired.to_string(), "token has expired");
        assert_eq!(
            CoreError::MalformedToken("bad base64").to_string(),
            "malformed token: bad base64"
        );
        assert_eq!(
            CoreError::Immature("nbf").to_string(),
            "token is not yet valid (nbf)"
        );
        assert!(CoreError::PasswordTooLong.to_string().contains("1024"));
    }

    #[test]
    fn maps_to_distinct_python_exceptions() {
        Python::initialize();
        Python::attach(|py| {
            let cases: Vec<(CoreError, Bound<'_, pyo3::types::PyType>)> = vec![
                (CoreError::Expired, py.get_type::<ExpiredTokenError>()),
                (
                    CoreError::Immature("iat"),
                    py.get_type::<ImmatureTokenError>(),
                ),
                (
                    CoreError::InvalidSignature,
                    py.get_type::<InvalidSignatureError>(),
                ),
                (
                    CoreError::MalformedToken("x"),
                    py.get_type::<MalformedTokenError>(),
                ),
                (
                    CoreError::InvalidAlgorithm,
                    py.get_type::<InvalidAlgorithmError>(),
                ),
                (CoreError::UnknownKey, py.get_type::<UnknownKeyError>()),
                (
                    CoreError::InvalidIssuer,
                    py.get_type::<InvalidIssuerError>(),
                ),
                (
                    CoreError::InvalidAudience,
                    py.get_type::<InvalidAudienceError>(),
                ),
                (CoreError::InvalidType, py.get_type::<InvalidTypeError>()),
                (
                    CoreError::PasswordTooLong,
                    py.get_type::<PasswordTooLongError>(),
                ),
                (
                    CoreError::PasswordHash("x".into()),
                    py.get_type::<PasswordHashError>(),
                ),
                (
                    CoreError::Encode("x".into()),
                    py.get_type::<exc::CoreError>(),
                ),
                (
                    CoreError::InvalidArgument("x".into()),
                    py.get_type::<PyValueError>(),
                ),
                (
                    CoreError::Unsupported("x".into()),
                    py.get_type::<PyTypeError>(),
                ),
            ];
            for (err, ty) in cases {
                let py_err: PyErr = err.into();
                assert!(py_err.get_type(py).is(&ty));
                assert!(
                    py_err.is_instance_of::<PyValueError>(py)
                        || ty.is(py.get_type::<PyTypeError>())
                );
            }
            let token: PyErr = CoreError::Expired.into();
            assert!(token.is_instance_of::<TokenError>(py));
            assert!(token.is_instance_of::<exc::CoreError>(py));
            let hash: PyErr = CoreError::PasswordTooLong.into();
            assert!(!hash.is_instance_of::<TokenError>(py));
            assert!(hash.is_instance_of::<exc::CoreError>(py));
        });
    }
}
