//! The Python classes `TokenSigner` and `TokenVerifier`: thin, frozen wrappers that convert
//! arguments and results; every rule lives in the pure Rust modules next to this one.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::pyjson::{members_to_py, write_dict};
use super::signer::{AccessClaims, Signer};
use super::verifier::{Policy, Verifier};
use crate::errors::CoreError;

/// Signs tokens with one key (frozen).
#[pyclass(frozen, name = "TokenSigner", module = "py_app._rust_core")]
pub struct PyTokenSigner {
    inner: Signer,
}

#[pymethods]
impl PyTokenSigner {
    #[new]
    fn new(alg: &str, kid: &str, key: &[u8]) -> PyResult<Self> {
        Ok(Self {
            inner: Signer::new(alg, kid, key)?,
        })
    }

    #[getter]
    fn alg(&self) -> &'static str {
        self.inner.alg().name()
    }

    #[getter]
    fn kid(&self) -> &str {
        self.inner.kid()
    }

    /// Sign arbitrary JSON claims.
    #[pyo3(signature = (claims, typ="JWT"))]
    fn sign(&self, claims: &Bound<'_, PyDict>, typ: &str) -> PyResult<String> {
        let mut payload = Vec::with_capacity(256);
        write_dict(&mut payload, claims, 0)?;
        Ok(self.inner.sign_payload(&payload, typ))
    }

    /// Build and sign an access token in one call.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (*, iss, sub, aud, iat, exp, jti, sid, role, typ="at+jwt"))]
    fn sign_access(
        &self,
        iss: &str,
        sub: &str,
        aud: &str,
        iat: i64,
        exp: i64,
        jti: &str,
        sid: &str,
        role: &str,
        typ: &str,
    ) -> String {
        let claims = AccessClaims {
            iss,
            sub,
            aud,
            iat,
            exp,
            jti,
            sid,
            role,
        };
        self.inner.sign_access(&claims, typ)
    }

    /// The public JWK (EdDSA) or None (HMAC).
    fn public_jwk<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.inner.public_jwk() {
            None => Ok(None),
            Some(members) => {
                let dict = PyDict::new(py);
                for (k, v) in members {
                    dict.set_item(k, v)?;
                }
                Ok(Some(dict))
            }
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenSigner(alg={:?}, kid={:?})",
            self.inner.alg().name(),
            self.inner.kid()
        )
    }
}

/// Frozen key ring for one algorithm plus claim policy.
#[pyclass(frozen, name = "TokenVerifier", module = "py_app._rust_core")]
pub struct PyTokenVerifier {
    inner: Verifier,
}

#[pymethods]
impl PyTokenVerifier {
    #[new]
    #[pyo3(
        signature = (alg, keys, *, issuer, audiences, typ=Some("at+jwt".to_owned()), leeway=30, max_token_bytes=8192),
        text_signature = "(alg, keys, *, issuer, audiences, typ='at+jwt', leeway=30, max_token_bytes=8192)"
    )]
    fn new(
        alg: &str,
        keys: &Bound<'_, PyDict>,
        issuer: String,
        audiences: Vec<String>,
        typ: Option<String>,
        leeway: i64,
        max_token_bytes: usize,
    ) -> PyResult<Self> {
        let mut ring = Vec::with_capacity(keys.len());
        for (kid, key) in keys.iter() {
            let kid: String = kid
                .extract()
                .map_err(|_| CoreError::InvalidArgument("key ids must be str".into()))?;
            let key = key
                .cast::<PyBytes>()
                .map_err(|_| CoreError::InvalidArgument("keys must be bytes".into()))?;
            ring.push((kid, key.as_bytes().to_vec()));
        }
        let policy = Policy {
            issuer,
            audiences,
            typ,
            leeway,
            max_token_bytes,
        };
        Ok(Self {
            inner: Verifier::new(alg, ring, policy)?,
        })
    }

    /// Verify and return all claims.
    fn verify<'py>(&self, token: &Bound<'py, PyString>, now: i64) -> PyResult<Bound<'py, PyDict>> {
        let py = token.py();
        let token = self.token_str(token)?;
        self.inner
            .verify_with(token, now, |claims| Ok(members_to_py(py, claims)))?
    }

    /// Verify and return (sub, sid, role, jti, exp).
    fn verify_access(
        &self,
        token: &Bound<'_, PyString>,
        now: i64,
    ) -> PyResult<(String, String, String, String, i64)> {
        let token = self.token_str(token)?;
        Ok(self.inner.verify_access(token, now)?)
    }

    /// JWKS JSON of the public keys.
    fn jwks(&self) -> String {
        self.inner.jwks()
    }

    fn __repr__(&self) -> String {
        format!("TokenVerifier(alg={:?})", self.inner.alg().name())
    }
}

impl PyTokenVerifier {
    /// The token as UTF-8, refusing oversized ones by code-point count first (O(1)).
    fn token_str<'a>(&self, token: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
        let too_big = CoreError::MalformedToken("token exceeds the size limit");
        if token.len()? > self.inner.max_token_bytes() {
            return Err(too_big.into());
        }
        token
            .to_str()
            .map_err(|_| CoreError::MalformedToken("token is not valid UTF-8").into())
    }
}
