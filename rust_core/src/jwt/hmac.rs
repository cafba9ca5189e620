//! HS256/HS384/HS512: one generic implementation over the `Mac` type (hmac + sha2).
//!
//! The key is expanded once (`Hmac::new_from_slice` hashes and pads it) and the keyed state is
//! cloned for every token, so a token costs only the two compressions of the message.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use super::alg::Alg;
use crate::errors::{CoreError, CoreResult};

/// Shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash output size for HS256).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// A pre-keyed HMAC of any size, seen through what the signer and verifier need of it.
pub trait MacKey: Send + Sync {
    /// Appends `.` and the base64url tag of everything already in `out` (the signing input).
    fn append_tag(&self, out: &mut String);
    /// Constant-time check; a tag of the wrong length fails.
    fn verify(&self, msg: &[u8], tag: &[u8]) -> bool;
}

impl<M: Mac + Clone + Send + Sync> MacKey for M {
    fn append_tag(&self, out: &mut String) {
        let mut mac = self.clone();
        mac.update(out.as_bytes());
        let tag = mac.finalize().into_bytes();
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, out);
    }

    fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.clone();
        mac.update(msg);
        mac.verify_slice(tag).is_ok()
    }
}

/// The keyed HMAC for an HS* algorithm; `InvalidArgument` for a short secret or EdDSA.
pub fn mac_key(alg: Alg, secret: &[u8]) -> CoreResult<Box<dyn MacKey>> {
    if secret.len() < MIN_HMAC_KEY_BYTES {
        return Err(CoreError::InvalidArgument(format!(
            "HMAC secret must be at least {MIN_HMAC_KEY_BYTES} bytes"
        )));
    }
    match alg {
        Alg::Hs256 => keyed::<Hmac<Sha256>>(secret),
        Alg::Hs384 => keyed::<Hmac<Sha384>>(secret),
        Alg::Hs512 => keyed::<Hmac<Sha512>>(secret),
        Alg::EdDsa => Err(CoreError::InvalidArgument("EdDSA is not HMAC".to_owned())),
    }
}

fn keyed<M: Mac + KeyInit + Clone + Send + Sync + 'static>(
    secret: &[u8],
) -> CoreResult<Box<dyn MacKey>> {
    match <M as KeyInit>::new_from_slice(secret) {
        Ok(mac) => Ok(Box::new(mac)),
        Err(_) => Err(CoreError::InvalidArgument("invalid HMAC key".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 §4.7 (test case 6): a 131-byte key, hashed first because it exceeds the block.
    const KEY: [u8; 131] = [0xaa; 131];
    const DATA: &str = "Test Using Larger Than Block-Size Key - Hash Key First";

    #[test]
    fn rfc4231_vectors_for_every_size() -> CoreResult<()> {
        // The RFC's hex tags (60e43159…, 4ece0844…, 80b24263…) in base64url.
        let cases = [
            (Alg::Hs256, "YOQxWR7gtn8Niiaqy_W3f44LxiE3KMUUBUYEDw7jf1Q"),
            (Alg::Hs384, "Ts4IRIWBPpCI0sY6BBvFtE-e8QEqK1iPPNEfBQM6xMYMLvarQDD-gpYkjfFj9ElS"),
            (
                Alg::Hs512,
                "gLJCY8fBo-u3FJPB3XvotJtG0fQbSu7BEhsBN4P481JrVtA34F8lmL0P0iFdah5SleZPc_Y_CuyLkVqYXXhlmA",
            ),
        ];
        for (alg, tag) in cases {
            let key = mac_key(alg, &KEY)?;
            let mut out = DATA.to_owned();
            key.append_tag(&mut out);
            assert_eq!(out, format!("{DATA}.{tag}"));
            let raw = URL_SAFE_NO_PAD.decode(tag).unwrap_or_default();
            assert!(key.verify(DATA.as_bytes(), &raw));
            assert!(!key.verify(DATA.as_bytes(), &raw[..raw.len() - 1]));
            assert!(!key.verify(b"other message", &raw));
        }
        Ok(())
    }

    #[test]
    fn short_secrets_and_eddsa_are_refused() {
        assert!(mac_key(Alg::Hs256, &[1; 31]).is_err());
        assert!(mac_key(Alg::Hs512, &[1; 32]).is_ok());
        assert!(mac_key(Alg::EdDsa, &[1; 32]).is_err());
    }
}
