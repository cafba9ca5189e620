//! Signing: a [`Signer`] holds one key, its `kid` and the two headers it writes most.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::alg::Alg;
use super::keys::{jwk_members, SignKey};
use super::write::{write_i64, write_str};
use crate::errors::CoreResult;

/// Base64url of the header `{"alg":..,"kid":..,"typ":..}` (members in PyJWT's sorted order).
fn encoded_header(alg: Alg, kid: &str, typ: &str) -> String {
    let mut json = Vec::with_capacity(48 + kid.len() + typ.len());
    json.extend_from_slice(b"{\"alg\":\"");
    json.extend_from_slice(alg.name().as_bytes());
    json.extend_from_slice(b"\",\"kid\":");
    write_str(&mut json, kid);
    json.extend_from_slice(b",\"typ\":");
    write_str(&mut json, typ);
    json.push(b'}');
    URL_SAFE_NO_PAD.encode(json)
}

/// The claims of an access token, in the order they are serialized.
#[derive(Debug, Clone, Copy)]
pub struct AccessClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    pub sid: &'a str,
    pub role: &'a str,
}

impl AccessClaims<'_> {
    /// Compact JSON: `{"iss":..,"sub":..,"aud":..,"iat":..,"exp":..,"jti":..,"sid":..,"role":..}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"iss\":");
        write_str(&mut out, self.iss);
        out.extend_from_slice(b",\"sub\":");
        write_str(&mut out, self.sub);
        out.extend_from_slice(b",\"aud\":");
        write_str(&mut out, self.aud);
        out.extend_from_slice(b",\"iat\":");
        write_i64(&mut out, self.iat);
        out.extend_from_slice(b",\"exp\":");
        write_i64(&mut out, self.exp);
        out.extend_from_slice(b",\"jti\":");
        write_str(&mut out, self.jti);
        out.extend_from_slice(b",\"sid\":");
        write_str(&mut out, self.sid);
        out.extend_from_slice(b",\"role\":");
        write_str(&mut out, self.role);
        out.push(b'}');
        out
    }
}

/// Signs tokens with one key.
pub struct Signer {
    alg: Alg,
    kid: String,
    key: SignKey,
    header_jwt: String,
    header_at: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer(alg={}, kid={:?})", self.alg.name(), self.kid)
    }
}

impl Signer {
    /// `key`: HMAC secret (≥ 32 bytes) or 32-byte Ed25519 private seed.
    pub fn new(alg: &str, kid: &str, key: &[u8]) -> CoreResult<Self> {
        let alg = Alg::parse(alg)?;
        Ok(Self {
            alg,
            kid: kid.to_owned(),
            key: SignKey::new(alg, key)?,
            header_jwt: encoded_header(alg, kid, "JWT"),
            header_at: encoded_header(alg, kid, "at+jwt"),
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id written into every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a serialized JSON payload with header `typ`.
    pub fn sign_payload(&self, payload_json: &[u8], typ: &str) -> String {
        let header: Cow<'_, str> = match typ {
            "JWT" => Cow::Borrowed(&self.header_jwt),
            "at+jwt" => Cow::Borrowed(&self.header_at),
            other => Cow::Owned(encoded_header(self.alg, &self.kid, other)),
        };
        let mut out = String::with_capacity(header.len() + payload_json.len() * 4 / 3 + 96);
        out.push_str(&header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload_json, &mut out);
        self.key.append_signature(&mut out);
        out
    }

    /// Builds the access-token claims and signs them.
    pub fn sign_access(&self, claims: &AccessClaims<'_>, typ: &str) -> String {
        self.sign_payload(&claims.to_json(), typ)
    }

    /// The public JWK members (EdDSA only), in output order.
    pub fn public_jwk(&self) -> Option<Vec<(&'static str, String)>> {
        self.key.public().map(|vk| jwk_members(&vk, &self.kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_json(token: &str) -> String {
        let h = token.split('.').next().unwrap_or_default();
        String::from_utf8(URL_SAFE_NO_PAD.decode(h).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn headers_are_sorted_escaped_and_cached_for_the_common_types() -> CoreResult<()> {
        let signer = Signer::new("HS384", "k\"1", &[3u8; 48])?;
        let at = signer.sign_payload(b"{}", "at+jwt");
        assert_eq!(
            header_json(&at),
            r#"{"alg":"HS384","kid":"k\"1","typ":"at+jwt"}"#
        );
        assert_eq!(
            header_json(&signer.sign_payload(b"{}", "JWT")),
            r#"{"alg":"HS384","kid":"k\"1","typ":"JWT"}"#
        );
        assert_eq!(
            header_json(&signer.sign_payload(b"{}", "dpop+jwt")),
            r#"{"alg":"HS384","kid":"k\"1","typ":"dpop+jwt"}"#
        );
        // HMAC is deterministic: the same input gives the same token.
        assert_eq!(at, signer.sign_payload(b"{}", "at+jwt"));
        assert_eq!(at.split('.').nth(1), Some("e30"));
        Ok(())
    }

    #[test]
    fn access_claims_serialize_in_order() {
        let claims = AccessClaims {
            iss: "i",
            sub: "s\n",
            aud: "a",
            iat: -1,
            exp: 2,
            jti: "j",
            sid: "d",
            role: "r",
        };
        assert_eq!(
            String::from_utf8_lossy(&claims.to_json()),
            r#"{"iss":"i","sub":"s\n","aud":"a","iat":-1,"exp":2,"jti":"j","sid":"d","role":"r"}"#
        );
    }
}
