//! JWS compact tokens (JWT): HS256/HS384/HS512 (hmac + sha2) and EdDSA (Ed25519, ed25519-dalek).
//!
//! A [`Signer`] holds one key and its `kid`; a [`Verifier`] is a frozen key ring for exactly one
//! algorithm with one or more kids (rotation). Verification runs in this order and stops at the
//! first failure, each with its own error:
//!
//! 1. size: `token.len() > max_token_bytes` → `MalformedToken` (before any other work);
//! 2. compact form `h.p.s`, each part strict base64url (URL-safe alphabet, no padding, no
//!    non-canonical trailing bits) → `MalformedToken`;
//! 3. header is a JSON object without duplicate members; `alg`/`kid`/`typ` strings when present;
//!    a `crit` member is refused (no extensions are understood) → `MalformedToken`;
//! 4. `alg` equals the verifier's single algorithm (so `none` and any other value) →
//!    `InvalidAlgorithm`;
//! 5. `kid` names a key of the ring → `UnknownKey`. A header without `kid` is accepted only when
//!    the ring holds exactly one key;
//! 6. signature, constant time (`Mac::verify_slice` / `VerifyingKey::verify_strict`); a wrong
//!    length is `InvalidSignature` too;
//! 7. payload is a JSON object without duplicate claims; `exp`/`nbf`/`iat` are numbers,
//!    `iss`/`sub`/`jti`/`sid` strings, `aud` a string or a list of strings → `MalformedToken`;
//!    `exp` is required (`MalformedToken` when absent);
//! 8. times, PyJWT's convention: expired when `exp <= now - leeway` (`Expired`); not yet valid
//!    when `nbf > now + leeway` or `iat > now + leeway` (`Immature`). Float times are truncated
//!    to whole seconds like PyJWT's `int()`;
//! 9. `iss` equals the issuer exactly (`InvalidIssuer`, also when absent);
//! 10. `aud` (string or list) intersects the allowlist (`InvalidAudience`, also when absent);
//! 11. when a `typ` is configured, the header `typ` must equal it, compared ASCII
//!     case-insensitively with an optional `application/` prefix (RFC 7515 §4.1.9, RFC 8725
//!     §3.11) → `InvalidType` (also when absent).
//!
//! Steps 1–7 live in [`verifier`], steps 8–11 in [`claims`].

pub mod alg;
pub mod claims;
pub mod hmac;
pub mod json;
pub mod keys;
pub mod pyjson;
pub mod python;
pub mod signer;
pub mod verifier;
pub mod write;

#[cfg(test)]
mod tests;

pub use alg::Alg;
pub use hmac::MIN_HMAC_KEY_BYTES;
pub use json::{Json, Members};
pub use python::{PyTokenSigner, PyTokenVerifier};
pub use signer::{AccessClaims, Signer};
pub use verifier::{Policy, Verifier};
