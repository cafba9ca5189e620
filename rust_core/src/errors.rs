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
//!
//! The enum, its messages, the exception classes, `From<CoreError> for PyErr` and [`register`]
//! are all generated from the one `core_errors!` table below: adding an error is one row there
//! (and, for a new class, one class in `py_app/_rust_core.pyi`).
use std::fmt;

use pyo3::prelude::*;

/// Generates everything error-related from one table.
///
/// - `bases`: abstract Python classes no variant maps to directly: `Name(Parent) "docstring";`
/// - `variants`: `Variant(binding: Type) => Class(Parent, "docstring"): "message", args;`, or
///   `=> Class:` (without the parenthesised part) to map onto a class that already exists.
macro_rules! core_errors {
    (
        bases { $( $base:ident($base_parent:ident) $base_doc:literal; )* }
        variants { $(
            $(#[$meta:meta])*
            $variant:ident $(($field:ident: $ty:ty))?
                => $class:ident $(($parent:ident, $doc:literal))?: $fmt:literal $(, $arg:expr)*;
        )* }
    ) => {
        /// Every error the core can report.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum CoreError {
            $( $(#[$meta])* $variant $(($ty))?, )*
        }

        impl fmt::Display for CoreError {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( Self::$variant $(($field))? => write!(f, $fmt $(, $arg)*), )*
                }
            }
        }

        /// The Python exception classes (a module of their own so `CoreError` can keep its name).
        pub mod exc {
            /// Built-in classes some variants map onto.
            pub use pyo3::exceptions::{PyTypeError, PyValueError};

            $( pyo3::create_exception!(py_app._rust_core, $base, $base_parent, $base_doc); )*
            $( $( pyo3::create_exception!(py_app._rust_core, $class, $parent, $doc); )? )*
        }

        impl From<CoreError> for PyErr {
            fn from(err: CoreError) -> PyErr {
                let msg = err.to_string();
                match err {
                    $( CoreError::$variant { .. } => exc::$class::new_err(msg), )*
                }
            }
        }

        /// The Python names of the classes [`register`] adds, bases first.
        pub const PYTHON_CLASSES: &[&str] = &[
            $( stringify!($base), )*
            $( $( core_errors!(@name $class $parent), )? )*
        ];

        /// Adds the exception classes to the module under their Python names.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            let py = m.py();
            $( m.add(stringify!($base), py.get_type::<exc::$base>())?; )*
            $( $( core_errors!(@add m, py, $class, $parent); )? )*
            Ok(())
        }
    };
    // Helpers that mention `$parent` only so the optional group can repeat over it.
    (@name $class:ident $parent:ident) => { stringify!($class) };
    (@add $m:ident, $py:ident, $class:ident, $parent:ident) => {
        $m.add(stringify!($class), $py.get_type::<exc::$class>())?
    };
}

core_errors! {
    bases {
        CoreError(PyValueError) "Base class of every error raised by the Rust core.";
        TokenError(CoreError) "Base class of every token verification failure.";
    }
    variants {
        /// A constructor argument is out of range (Python: plain `ValueError`).
        InvalidArgument(m: String) => PyValueError: "{}", m;
        /// A value of a type the JSON encoder does not support (Python: `TypeError`).
        Unsupported(m: String) => PyTypeError: "{}", m;
        /// A supported type whose value cannot be encoded, e.g. an int beyond 64 bits (`CoreError`).
        Encode(m: String) => CoreError: "{}", m;
        /// A stored password hash that is not a supported argon2 PHC string.
        PasswordHash(m: String) => PasswordHashError(CoreError,
            "A stored hash is not a well-formed, supported argon2 PHC string."):
            "invalid password hash: {}", m;
        /// A password longer than `MAX_PASSWORD_BYTES` (UTF-8 bytes).
        PasswordTooLong => PasswordTooLongError(CoreError,
            "The password is longer than MAX_PASSWORD_BYTES UTF-8 bytes."):
            "password longer than {} bytes", crate::password::MAX_PASSWORD_BYTES;
        /// Bad compact form, base64, JSON, duplicate/wrong-type claim, oversized token.
        MalformedToken(m: &'static str) => MalformedTokenError(TokenError,
            "Bad compact form, base64, JSON, duplicate or wrong-type claim, or oversized token."):
            "malformed token: {}", m;
        /// The header `alg` is not the verifier's single algorithm.
        InvalidAlgorithm => InvalidAlgorithmError(TokenError,
            "The header alg is not the verifier's single allowed algorithm."):
            "token algorithm not allowed";
        /// The header `kid` is missing (with several keys) or not in the key ring.
        UnknownKey => UnknownKeyError(TokenError,
            "The header kid is missing or not in the key ring."):
            "unknown signing key id";
        /// The signature does not match (or has the wrong length).
        InvalidSignature => InvalidSignatureError(TokenError,
            "The signature does not verify."):
            "invalid token signature";
        /// `exp` is in the past beyond the leeway.
        Expired => ExpiredTokenError(TokenError,
            "exp is in the past beyond the leeway."):
            "token has expired";
        /// `nbf` or `iat` is in the future beyond the leeway.
        Immature(claim: &'static str) => ImmatureTokenError(TokenError,
            "nbf or iat is in the future beyond the leeway."):
            "token is not yet valid ({})", claim;
        /// `iss` is missing or not the configured issuer.
        InvalidIssuer => InvalidIssuerError(TokenError,
            "iss is missing or differs from the configured issuer."):
            "invalid token issuer";
        /// `aud` is missing or does not intersect the allowlist.
        InvalidAudience => InvalidAudienceError(TokenError,
            "aud is missing or does not intersect the audience allowlist."):
            "invalid token audience";
        /// Header `typ` is missing or not the configured type.
        InvalidType => InvalidTypeError(TokenError,
            "The header typ is missing or differs from the configured type."):
            "invalid token type";
    }
}

/// The crate-wide result type.
pub type CoreResult<T> = Result<T, CoreError>;

impl std::error::Error for CoreError {}

#[cfg(test)]
mod tests {
    use super::exc::*;
    use super::{exc, register, CoreError, PYTHON_CLASSES};
    use pyo3::prelude::*;

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

    #[test]
    fn register_adds_every_class_of_the_table_under_its_own_name() -> PyResult<()> {
        Python::initialize();
        Python::attach(|py| {
            let m = PyModule::new(py, "errors_under_test")?;
            register(&m)?;
            assert_eq!(PYTHON_CLASSES.len(), 13);
            for name in PYTHON_CLASSES {
                let class = m.getattr(*name)?;
                assert_eq!(class.getattr("__name__")?.extract::<String>()?, *name);
                assert_eq!(
                    class.getattr("__module__")?.extract::<String>()?,
                    "py_app._rust_core"
                );
                let base = py.get_type::<exc::CoreError>();
                assert!(
                    class.is(&base) || class.cast::<pyo3::types::PyType>()?.is_subclass(&base)?
                );
            }
            Ok(())
        })
    }
}
