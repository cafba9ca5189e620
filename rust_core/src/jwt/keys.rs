//! Signing and verification keys: an HMAC secret or an Ed25519 key pair, behind one interface.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::alg::Alg;
use super::hmac::{mac_key, MacKey};
use crate::errors::{CoreError, CoreResult};

/// The key a [`super::Signer`] holds (the Ed25519 key is boxed: it is 224 bytes with its
/// precomputed public half, and the enum is built once per signer).
pub enum SignKey {
    Hmac(Box<dyn MacKey>),
    Ed(Box<SigningKey>),
}

impl SignKey {
    /// `key`: HMAC secret (≥ 32 bytes) or 32-byte Ed25519 private seed.
    pub fn new(alg: Alg, key: &[u8]) -> CoreResult<Self> {
        match alg {
            Alg::EdDsa => {
                let seed: &[u8; 32] = key.try_into().map_err(|_| {
                    CoreError::InvalidArgument("Ed25519 private seed must be 32 bytes".to_owned())
                })?;
                Ok(Self::Ed(Box::new(SigningKey::from_bytes(seed))))
            }
            _ => Ok(Self::Hmac(mac_key(alg, key)?)),
        }
    }

    /// Appends `.` and the base64url signature of everything already in `out`.
    pub fn append_signature(&self, out: &mut String) {
        match self {
            Self::Hmac(k) => k.append_tag(out),
            Self::Ed(sk) => {
                let sig = sk.sign(out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.to_bytes(), out);
            }
        }
    }

    /// The public half (EdDSA only).
    pub fn public(&self) -> Option<VerifyingKey> {
        match self {
            Self::Ed(sk) => Some(sk.verifying_key()),
            Self::Hmac(_) => None,
        }
    }
}

/// One key of a [`super::Verifier`]'s ring.
pub enum VerifyKey {
    Hmac(Box<dyn MacKey>),
    Ed(VerifyingKey),
}

impl VerifyKey {
    /// `key`: HMAC secret (≥ 32 bytes) or 32-byte Ed25519 public key (small-order keys refused).
    pub fn new(alg: Alg, key: &[u8]) -> CoreResult<Self> {
        match alg {
            Alg::EdDsa => {
                let bytes: &[u8; 32] = key.try_into().map_err(|_| {
                    CoreError::InvalidArgument("Ed25519 public key must be 32 bytes".to_owned())
                })?;
                let vk = VerifyingKey::from_bytes(bytes).map_err(|_| {
                    CoreError::InvalidArgument("invalid Ed25519 public key".to_owned())
                })?;
                if vk.is_weak() {
                    return Err(CoreError::InvalidArgument(
                        "weak (small-order) Ed25519 public key".to_owned(),
                    ));
                }
                Ok(Self::Ed(vk))
            }
            _ => Ok(Self::Hmac(mac_key(alg, key)?)),
        }
    }

    /// Constant time for HMAC; `verify_strict` for Ed25519. A wrong length is `false`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Hmac(k) => k.verify(msg, sig),
            Self::Ed(vk) => match Signature::from_slice(sig) {
                Ok(sig) => vk.verify_strict(msg, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }

    /// The public key (EdDSA only), for the JWKS document.
    pub fn public(&self) -> Option<VerifyingKey> {
        match self {
            Self::Ed(vk) => Some(*vk),
            Self::Hmac(_) => None,
        }
    }
}

/// The RFC 7517/8037 JWK members of an Ed25519 public key, in output order.
pub fn jwk_members(vk: &VerifyingKey, kid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("kty", "OKP".to_owned()),
        ("crv", "Ed25519".to_owned()),
        ("x", URL_SAFE_NO_PAD.encode(vk.as_bytes())),
        ("kid", kid.to_owned()),
        ("alg", "EdDSA".to_owned()),
        ("use", "sig".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_sign_and_verify_and_bad_keys_are_refused() -> CoreResult<()> {
        let seed = [7u8; 32];
        let sk = SignKey::new(Alg::EdDsa, &seed)?;
        let public = sk.public().map(|vk| vk.to_bytes()).unwrap_or_default();
        let vk = VerifyKey::new(Alg::EdDsa, &public)?;
        let mut out = "header.payload".to_owned();
        sk.append_signature(&mut out);
        let (input, sig) = out.rsplit_once('.').unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        assert!(vk.verify(input.as_bytes(), &sig));
        assert!(!vk.verify(b"header.other", &sig));
        assert!(!vk.verify(input.as_bytes(), &sig[..63]));
        assert!(
            VerifyKey::new(Alg::EdDsa, &[0u8; 32]).is_err(),
            "small order"
        );
        assert!(VerifyKey::new(Alg::EdDsa, &public[..31]).is_err());
        assert!(SignKey::new(Alg::EdDsa, &[1u8; 33]).is_err());
        Ok(())
    }
}
