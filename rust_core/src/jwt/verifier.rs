//! Verification: a [`Verifier`] is a frozen key ring for one algorithm plus the claim policy.
//! This file runs steps 1–7 of [`super`]'s list; [`super::claims`] runs the rest.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;

use super::alg::Alg;
use super::claims::{self, seconds};
use super::json::{parse_object, Json, Members};
use super::keys::{jwk_members, VerifyKey};
use super::write::write_str;
use crate::errors::{CoreError, CoreResult};

/// Verification policy of a [`Verifier`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub typ: Option<String>,
    pub leeway: i64,
    pub max_token_bytes: usize,
}

/// A frozen key ring for one algorithm plus the claim policy.
pub struct Verifier {
    alg: Alg,
    keys: Vec<(String, VerifyKey)>,
    public: Vec<(String, VerifyingKey)>,
    policy: Policy,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        write!(
            f,
            "Verifier(alg={}, kids={kids:?}, {:?})",
            self.alg.name(),
            self.policy
        )
    }
}

fn b64(part: &str) -> CoreResult<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| CoreError::MalformedToken("invalid base64url (padding or alphabet)"))
}

impl Verifier {
    /// `keys`: (kid, HMAC secret or 32-byte Ed25519 public key); at least one.
    pub fn new(alg: &str, keys: Vec<(String, Vec<u8>)>, policy: Policy) -> CoreResult<Self> {
        let alg = Alg::parse(alg)?;
        if keys.is_empty() {
            return Err(CoreError::InvalidArgument(
                "at least one key is required".into(),
            ));
        }
        if policy.audiences.is_empty() {
            return Err(CoreError::InvalidArgument(
                "at least one audience is required".into(),
            ));
        }
        if policy.leeway < 0 {
            return Err(CoreError::InvalidArgument("leeway must be >= 0".into()));
        }
        let mut ring = Vec::with_capacity(keys.len());
        let mut public = Vec::new();
        for (kid, key) in keys {
            let vk = VerifyKey::new(alg, &key)?;
            if let Some(pk) = vk.public() {
                public.push((kid.clone(), pk));
            }
            ring.push((kid, vk));
        }
        ring.sort_by(|a, b| a.0.cmp(&b.0));
        public.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            alg,
            keys: ring,
            public,
            policy,
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The longest token accepted, in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.policy.max_token_bytes
    }

    /// Verifies `token` at time `now` (Unix seconds) and hands the claims to `f`.
    pub fn verify_with<R>(
        &self,
        token: &str,
        now: i64,
        f: impl FnOnce(&Members<'_>) -> CoreResult<R>,
    ) -> CoreResult<R> {
        self.verify_raw(token, now, |_, claims| f(claims))
    }

    /// Verifies `token` at time `now` and hands `f` the payload bytes and the claims parsed
    /// from them: every step runs before `f` sees either.
    pub fn verify_raw<R>(
        &self,
        token: &str,
        now: i64,
        f: impl FnOnce(&[u8], &Members<'_>) -> CoreResult<R>,
    ) -> CoreResult<R> {
        // 1. size before anything else
        if token.len() > self.policy.max_token_bytes {
            return Err(CoreError::MalformedToken("token exceeds the size limit"));
        }
        // 2. compact form and strict base64url
        let (h, rest) = token.split_once('.').ok_or(CoreError::MalformedToken(
            "not a compact JWS (header.payload.signature)",
        ))?;
        let (p, s) = rest.split_once('.').ok_or(CoreError::MalformedToken(
            "not a compact JWS (header.payload.signature)",
        ))?;
        if s.contains('.') {
            return Err(CoreError::MalformedToken(
                "not a compact JWS (too many parts)",
            ));
        }
        let header_bytes = b64(h)?;
        let payload_bytes = b64(p)?;
        let sig = b64(s)?;
        // 3. header
        let header = parse_object(
            &header_bytes,
            "header is not valid JSON",
            "duplicate header member",
            "header is not a JSON object",
        )?;
        let (mut alg, mut kid, mut typ) = (None, None, None);
        for (name, value) in &header {
            let slot = match name.as_ref() {
                "alg" => &mut alg,
                "kid" => &mut kid,
                "typ" => &mut typ,
                "crit" => return Err(CoreError::MalformedToken("crit header is not supported")),
                _ => continue,
            };
            match value {
                Json::Str(v) => *slot = Some(v.as_ref()),
                _ => return Err(CoreError::MalformedToken("alg/kid/typ must be strings")),
            }
        }
        // 4. algorithm
        if alg != Some(self.alg.name()) {
            return Err(CoreError::InvalidAlgorithm);
        }
        // 5. key
        let key = match kid {
            Some(kid) => self
                .keys
                .binary_search_by(|(k, _)| k.as_str().cmp(kid))
                .ok()
                .and_then(|i| self.keys.get(i)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        };
        let (_, key) = key.ok_or(CoreError::UnknownKey)?;
        // 6. signature over "header.payload", constant time
        let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !key.verify(signing_input, &sig) {
            return Err(CoreError::InvalidSignature);
        }
        // 7. payload and claim types (8–11 follow in `claims::check`)
        let claims = parse_object(
            &payload_bytes,
            "payload is not valid JSON",
            "duplicate claim",
            "payload is not a JSON object",
        )?;
        claims::check(&self.policy, &claims, typ, now)?;
        f(&payload_bytes, &claims)
    }

    /// Fast path: `(sub, sid, role, jti, exp)`; each claim required with the right type.
    pub fn verify_access(
        &self,
        token: &str,
        now: i64,
    ) -> CoreResult<(String, String, String, String, i64)> {
        self.verify_with(token, now, |claims| {
            let get = |name: &str| claims.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let string = |name: &str| match get(name) {
                Some(Json::Str(s)) => Ok(s.to_string()),
                _ => Err(CoreError::MalformedToken(
                    "sub, sid, role and jti must be strings",
                )),
            };
            let exp = match get("exp") {
                Some(v) => i64::try_from(seconds(v, "exp must be a number")?)
                    .map_err(|_| CoreError::MalformedToken("exp out of range"))?,
                None => return Err(CoreError::MalformedToken("exp claim is required")),
            };
            Ok((
                string("sub")?,
                string("sid")?,
                string("role")?,
                string("jti")?,
                exp,
            ))
        })
    }

    /// RFC 7517 JWKS document of the public keys (empty for HMAC).
    pub fn jwks(&self) -> String {
        let mut out = Vec::with_capacity(32 + 160 * self.public.len());
        out.extend_from_slice(b"{\"keys\":[");
        for (n, (kid, vk)) in self.public.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (m, (name, value)) in jwk_members(vk, kid).iter().enumerate() {
                if m > 0 {
                    out.push(b',');
                }
                write_str(&mut out, name);
                out.push(b':');
                write_str(&mut out, value);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        String::from_utf8_lossy(&out).into_owned()
    }
}
