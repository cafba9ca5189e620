//! argon2id password hashing with PHC strings (RustCrypto `argon2`, pure Rust).
//!
//! A [`Hasher`] holds fixed parameters. `hash` draws a fresh salt from the OS CSPRNG;
//! `verify` uses the parameters stored in the PHC string (so older hashes still verify) and
//! compares in constant time; `needs_rehash` says whether the stored parameters differ from
//! the hasher's. Stored hashes whose memory cost exceeds [`MAX_MEMORY_KIB`] are refused as
//! malformed rather than allocated.
//!
//! Memory: each OS thread keeps its argon2 block buffer between calls (up to
//! [`MAX_RETAINED_KIB`]), so a worker thread does not `mmap`/fault-in/`munmap` 19+ MiB per hash.
//! That per-call churn serialized two hashing threads on the kernel's mm lock and TLB
//! shootdowns (2 threads were slower than 1); reusing the buffer removes it. The cost is resident
//! memory of one buffer per thread that has hashed (19 MiB at the default parameters).

use std::cell::RefCell;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::errors::{CoreError, CoreResult};

/// Longest password accepted, in UTF-8 bytes; longer ones fail before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Largest memory cost accepted in a constructor or a stored hash (1 GiB).
pub const MAX_MEMORY_KIB: u32 = 1 << 20;
/// Salt length bounds in bytes (PHC salts are at most 64 base64 characters).
pub const SALT_LEN_RANGE: std::ops::RangeInclusive<usize> = 8..=48;
/// Tag length bounds in bytes.
pub const HASH_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=64;
/// Largest per-thread block buffer kept for reuse after a call (256 MiB).
pub const MAX_RETAINED_KIB: usize = 1 << 18;

thread_local! {
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` with this thread's reusable block buffer.
fn run_argon2(
    argon: &Argon2<'_>,
    params: &Params,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> CoreResult<()> {
    let needed = params.block_count();
    let fail = |e: argon2::Error| CoreError::PasswordHash(e.to_string());
    let result = BLOCKS.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < needed {
                blocks.clear();
                blocks.shrink_to_fit();
                blocks.resize(needed, Block::default());
            }
            let r = argon.hash_password_into_with_memory(pwd, salt, out, &mut blocks[..needed]);
            if blocks.len() > MAX_RETAINED_KIB {
                *blocks = Vec::new();
            }
            r.map_err(fail)
        }
        // Re-entrant use on one thread cannot happen from Python; fall back to a fresh buffer.
        Err(_) => argon.hash_password_into(pwd, salt, out).map_err(fail),
    });
    match result {
        Ok(r) => r,
        // Thread-local storage already torn down (thread exiting): allocate.
        Err(_) => argon.hash_password_into(pwd, salt, out).map_err(fail),
    }
}

/// A password hasher with fixed argon2id parameters.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    params: Params,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt_len: usize,
    hash_len: usize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hasher(argon2id, m={}, t={}, p={}, salt_len={}, hash_len={})",
            self.memory_kib, self.iterations, self.parallelism, self.salt_len, self.hash_len
        )
    }
}

impl Hasher {
    /// Builds a hasher; `InvalidArgument` when a parameter is out of range.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        salt_len: usize,
        hash_len: usize,
    ) -> CoreResult<Self> {
        let bad = |m: String| Err(CoreError::InvalidArgument(m));
        if memory_kib > MAX_MEMORY_KIB {
            return bad(format!("memory_kib must be <= {MAX_MEMORY_KIB}"));
        }
        if !SALT_LEN_RANGE.contains(&salt_len) {
            return bad(format!("salt_len must be in {SALT_LEN_RANGE:?}"));
        }
        if !HASH_LEN_RANGE.contains(&hash_len) {
            return bad(format!("hash_len must be in {HASH_LEN_RANGE:?}"));
        }
        let params = Params::new(memory_kib, iterations, parallelism, Some(hash_len))
            .map_err(|e| CoreError::InvalidArgument(format!("invalid argon2 parameters: {e}")))?;
        Ok(Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()),
            params,
            memory_kib,
            iterations,
            parallelism,
            salt_len,
            hash_len,
        })
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }
    /// Time cost (passes).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
    /// Lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    /// Hashes `password` with a fresh random salt; returns the PHC string.
    pub fn hash(&self, password: &[u8]) -> CoreResult<String> {
        check_len(password)?;
        let mut salt = [0u8; 48];
        let salt = &mut salt[..self.salt_len];
        getrandom::getrandom(salt)
            .map_err(|e| CoreError::PasswordHash(format!("OS random source failed: {e}")))?;
        self.hash_with_salt(password, salt)
    }

    /// Hashes with a caller-chosen salt (tests and reference vectors only).
    pub fn hash_with_salt(&self, password: &[u8], salt: &[u8]) -> CoreResult<String> {
        check_len(password)?;
        if !(8..=48).contains(&salt.len()) {
            return Err(CoreError::InvalidArgument(
                "salt must be 8..=48 bytes".to_owned(),
            ));
        }
        let mut tag = [0u8; 64];
        let tag = &mut tag[..self.hash_len];
        run_argon2(&self.argon, &self.params, password, salt, tag)?;
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            self.memory_kib,
            self.iterations,
            self.parallelism,
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(tag)
        ))
    }

    /// `Ok(false)` for a wrong password, `PasswordHash` for a malformed or unsupported string.
    pub fn verify(&self, encoded: &str, password: &[u8]) -> CoreResult<bool> {
        check_len(password)?;
        let parsed = parse(encoded)?;
        let bad = |e: argon2::password_hash::Error| CoreError::PasswordHash(e.to_string());
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(bad)?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| CoreError::PasswordHash(e.to_string()))?,
            None => Version::V0x10,
        };
        let params = Params::try_from(&parsed).map_err(bad)?;
        let expected = parsed
            .hash
            .ok_or_else(|| CoreError::PasswordHash("hash missing".into()))?;
        let salt_b64 = parsed
            .salt
            .ok_or_else(|| CoreError::PasswordHash("salt missing".into()))?;
        let mut salt_buf = [0u8; 64];
        let salt = salt_b64.decode_b64(&mut salt_buf).map_err(bad)?;
        let mut tag = [0u8; 64];
        let tag = tag
            .get_mut(..expected.len())
            .ok_or_else(|| CoreError::PasswordHash("hash too long".into()))?;
        let argon = Argon2::new(algorithm, version, params.clone());
        run_argon2(&argon, &params, password, salt, tag)?;
        Ok(bool::from(tag.ct_eq(expected.as_bytes())))
    }

    /// True when the stored algorithm, version, m, t, p or tag length differ from this hasher's.
    pub fn needs_rehash(&self, encoded: &str) -> CoreResult<bool> {
        let parsed = parse(encoded)?;
        let params =
            Params::try_from(&parsed).map_err(|e| CoreError::PasswordHash(e.to_string()))?;
        let hash_len = parsed.hash.map(|h| h.len()).unwrap_or(0);
        Ok(parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13 as u32)
            || params.m_cost() != self.memory_kib
            || params.t_cost() != self.iterations
            || params.p_cost() != self.parallelism
            || hash_len != self.hash_len)
    }
}

fn check_len(password: &[u8]) -> CoreResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CoreError::PasswordTooLong);
    }
    Ok(())
}

/// Parses and sanity-checks a PHC string: argon2 variant, parameters, salt, tag present.
fn parse(encoded: &str) -> CoreResult<PasswordHash<'_>> {
    let err = |m: &str| CoreError::PasswordHash(m.to_owned());
    let parsed = PasswordHash::new(encoded).map_err(|e| CoreError::PasswordHash(e.to_string()))?;
    Algorithm::try_from(parsed.algorithm).map_err(|_| err("not an argon2 hash"))?;
    if ["m", "t", "p"]
        .iter()
        .any(|k| parsed.params.get(*k).is_none())
    {
        return Err(err("m, t and p parameters are required"));
    }
    let params = Params::try_from(&parsed).map_err(|e| CoreError::PasswordHash(e.to_string()))?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(err("memory cost above the accepted maximum"));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(err("salt or hash missing"));
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------
// Python bindings
// ---------------------------------------------------------------------------------------------
use pyo3::prelude::*;

/// argon2id hasher with parameters fixed at construction (frozen, thread-safe).
#[pyclass(frozen, name = "PasswordHasher", module = "py_app._rust_core")]
pub struct PyPasswordHasher {
    inner: Hasher,
}

#[pymethods]
impl PyPasswordHasher {
    #[new]
    #[pyo3(signature = (memory_kib=19456, iterations=2, parallelism=1, salt_len=16, hash_len=32))]
    fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        salt_len: usize,
        hash_len: usize,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: Hasher::new(memory_kib, iterations, parallelism, salt_len, hash_len)?,
        })
    }

    /// Hash `password`; releases the GIL while hashing.
    fn hash(&self, py: Python<'_>, password: &str) -> PyResult<String> {
        let inner = &self.inner;
        Ok(py.detach(|| inner.hash(password.as_bytes()))?)
    }

    /// Check `password` against a stored PHC string; releases the GIL while hashing.
    fn verify(&self, py: Python<'_>, encoded: &str, password: &str) -> PyResult<bool> {
        let inner = &self.inner;
        Ok(py.detach(|| inner.verify(encoded, password.as_bytes()))?)
    }

    /// True when the stored parameters differ from this hasher's.
    fn needs_rehash(&self, encoded: &str) -> PyResult<bool> {
        Ok(self.inner.needs_rehash(encoded)?)
    }

    #[getter]
    fn memory_kib(&self) -> u32 {
        self.inner.memory_kib()
    }

    #[getter]
    fn iterations(&self) -> u32 {
        self.inner.iterations()
    }

    #[getter]
    fn parallelism(&self) -> u32 {
        self.inner.parallelism()
    }

    fn __repr__(&self) -> String {
        format!(
            "PasswordHasher(memory_kib={}, iterations={}, parallelism={}, salt_len={}, hash_len={})",
            self.inner.memory_kib,
            self.inner.iterations,
            self.inner.parallelism,
            self.inner.salt_len,
            self.inner.hash_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn small() -> CoreResult<Hasher> {
        Hasher::new(64, 1, 1, 16, 32)
    }

    #[test]
    fn hash_and_verify_round_trip() -> R {
        let h = small()?;
        let enc = h.hash(b"correct horse")?;
        assert!(enc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify(&enc, b"correct horse")?);
        assert!(!h.verify(&enc, b"wrong horse")?);
        assert_ne!(enc, h.hash(b"correct horse")?, "salts must differ");
        Ok(())
    }

    #[test]
    fn reference_vectors() -> R {
        // argon2i: the example in the README of P-H-C/phc-winner-argon2 (reference CLI,
        // `echo -n password | argon2 somesalt -t 2 -m 16 -p 4 -l 24`). Verify-only: we hash argon2id.
        let argon2i = "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        // argon2id, same inputs, produced by libargon2 (argon2-cffi 25.1 low_level.hash_secret).
        let argon2id =
            "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$F1jG2CV3/Nr+yRuIsPKw0J9r4s7cJHBU";
        let h = Hasher::new(65536, 2, 4, 16, 24)?;
        assert!(h.verify(argon2i, b"password")?);
        assert!(h.verify(argon2id, b"password")?);
        assert!(!h.verify(argon2id, b"passwore")?);
        assert_eq!(h.hash_with_salt(b"password", b"somesalt")?, argon2id);
        assert!(h.needs_rehash(argon2i)?);
        assert!(!h.needs_rehash(argon2id)?);
        Ok(())
    }

    #[test]
    fn malformed_hashes_are_errors() -> R {
        let h = small()?;
        for bad in [
            "",
            "plaintext",
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ",
            "$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$bcrypt$v=19$m=64,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        ] {
            assert!(
                matches!(h.verify(bad, b"x"), Err(CoreError::PasswordHash(_))),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn long_passwords_are_refused() -> R {
        let h = small()?;
        let long = vec![b'a'; MAX_PASSWORD_BYTES + 1];
        assert_eq!(h.hash(&long), Err(CoreError::PasswordTooLong));
        assert!(h.hash(&long[..MAX_PASSWORD_BYTES]).is_ok());
        Ok(())
    }

    #[test]
    fn needs_rehash_compares_params() -> R {
        let h = small()?;
        let enc = h.hash(b"pw")?;
        assert!(!h.needs_rehash(&enc)?);
        assert!(Hasher::new(128, 1, 1, 16, 32)?.needs_rehash(&enc)?);
        assert!(Hasher::new(64, 2, 1, 16, 32)?.needs_rehash(&enc)?);
        assert!(Hasher::new(64, 1, 2, 16, 32)?.needs_rehash(&enc)?);
        assert!(Hasher::new(64, 1, 1, 16, 16)?.needs_rehash(&enc)?);
        Ok(())
    }

    #[test]
    fn invalid_params_rejected() {
        assert!(Hasher::new(7, 1, 1, 16, 32).is_err());
        assert!(Hasher::new(64, 0, 1, 16, 32).is_err());
        assert!(Hasher::new(64, 1, 0, 16, 32).is_err());
        assert!(Hasher::new(64, 1, 1, 4, 32).is_err());
        assert!(Hasher::new(64, 1, 1, 16, 8).is_err());
        assert!(Hasher::new(MAX_MEMORY_KIB + 1, 1, 1, 16, 32).is_err());
    }
}
