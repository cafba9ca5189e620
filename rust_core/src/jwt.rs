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

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Sha256, Sha384, Sha512};

use crate::codec::{write_i64, write_str};
use crate::errors::{CoreError, CoreResult};

/// Shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash output size for HS256).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// A supported JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    EdDsa,
}

impl Alg {
    /// Parses the JWS `alg` name; `InvalidArgument` for anything unsupported (including `none`).
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "HS256" => Ok(Self::Hs256),
            "HS384" => Ok(Self::Hs384),
            "HS512" => Ok(Self::Hs512),
            "EdDSA" => Ok(Self::EdDsa),
            _ => Err(CoreError::InvalidArgument(format!(
                "unsupported algorithm {name:?}: expected HS256, HS384, HS512 or EdDSA"
            ))),
        }
    }

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// A pre-keyed HMAC, cloned for every token.
#[derive(Clone)]
enum HmacKey {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

impl HmacKey {
    fn new(alg: Alg, secret: &[u8]) -> CoreResult<Self> {
        if secret.len() < MIN_HMAC_KEY_BYTES {
            return Err(CoreError::InvalidArgument(format!(
                "HMAC secret must be at least {MIN_HMAC_KEY_BYTES} bytes"
            )));
        }
        let bad = |_| CoreError::InvalidArgument("invalid HMAC key".to_owned());
        Ok(match alg {
            Alg::Hs256 => Self::S256(Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::Hs384 => Self::S384(Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::Hs512 => Self::S512(Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::EdDsa => return Err(CoreError::InvalidArgument("EdDSA is not HMAC".to_owned())),
        })
    }

    /// Appends the base64url tag of `msg` to `out`.
    fn sign_into(&self, msg: &[u8], out: &mut String) {
        match self {
            Self::S256(m) => {
                let mut m = m.clone();
                m.update(msg);
                URL_SAFE_NO_PAD.encode_string(m.finalize().into_bytes(), out);
            }
            Self::S384(m) => {
                let mut m = m.clone();
                m.update(msg);
                URL_SAFE_NO_PAD.encode_string(m.finalize().into_bytes(), out);
            }
            Self::S512(m) => {
                let mut m = m.clone();
                m.update(msg);
                URL_SAFE_NO_PAD.encode_string(m.finalize().into_bytes(), out);
            }
        }
    }

    /// Constant-time check; a tag of the wrong length fails.
    fn verify(&self, msg: &[u8], tag: &[u8]) -> bool {
        match self {
            Self::S256(m) => {
                let mut m = m.clone();
                m.update(msg);
                m.verify_slice(tag).is_ok()
            }
            Self::S384(m) => {
                let mut m = m.clone();
                m.update(msg);
                m.verify_slice(tag).is_ok()
            }
            Self::S512(m) => {
                let mut m = m.clone();
                m.update(msg);
                m.verify_slice(tag).is_ok()
            }
        }
    }
}

enum SignKey {
    Hmac(HmacKey),
    Ed(SigningKey),
}

enum VerifyKey {
    Hmac(HmacKey),
    Ed(VerifyingKey),
}

impl VerifyKey {
    fn new(alg: Alg, key: &[u8]) -> CoreResult<Self> {
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
            _ => Ok(Self::Hmac(HmacKey::new(alg, key)?)),
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Hmac(k) => k.verify(msg, sig),
            Self::Ed(vk) => match Signature::from_slice(sig) {
                Ok(sig) => vk.verify_strict(msg, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

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
        let key = match alg {
            Alg::EdDsa => {
                let seed: &[u8; 32] = key.try_into().map_err(|_| {
                    CoreError::InvalidArgument("Ed25519 private seed must be 32 bytes".to_owned())
                })?;
                SignKey::Ed(SigningKey::from_bytes(seed))
            }
            _ => SignKey::Hmac(HmacKey::new(alg, key)?),
        };
        Ok(Self {
            alg,
            kid: kid.to_owned(),
            key,
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
        match &self.key {
            SignKey::Hmac(k) => {
                let msg_len = out.len();
                let mut tag = String::with_capacity(88);
                k.sign_into(&out.as_bytes()[..msg_len], &mut tag);
                out.push('.');
                out.push_str(&tag);
            }
            SignKey::Ed(sk) => {
                let sig = sk.sign(out.as_bytes());
                out.push('.');
                URL_SAFE_NO_PAD.encode_string(sig.to_bytes(), &mut out);
            }
        }
        out
    }

    /// Builds the access-token claims and signs them.
    pub fn sign_access(&self, claims: &AccessClaims<'_>, typ: &str) -> String {
        self.sign_payload(&claims.to_json(), typ)
    }

    /// The public JWK members (EdDSA only), in output order.
    pub fn public_jwk(&self) -> Option<Vec<(&'static str, String)>> {
        match &self.key {
            SignKey::Ed(sk) => Some(jwk_members(&sk.verifying_key(), &self.kid)),
            SignKey::Hmac(_) => None,
        }
    }
}

fn jwk_members(vk: &VerifyingKey, kid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("kty", "OKP".to_owned()),
        ("crv", "Ed25519".to_owned()),
        ("x", URL_SAFE_NO_PAD.encode(vk.as_bytes())),
        ("kid", kid.to_owned()),
        ("alg", "EdDSA".to_owned()),
        ("use", "sig".to_owned()),
    ]
}

/// A parsed JSON value; strings borrow from the decoded input when they have no escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// A JSON object's members in document order.
pub type Members<'a> = [(Cow<'a, str>, Json<'a>)];

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Json::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Json::UInt(v), Json::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Json::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json<'de>>()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<Json<'de>>()?;
            members.push((key, value));
        }
        if has_duplicates(&members) {
            return Err(de::Error::custom("duplicate member"));
        }
        Ok(Json::Obj(members))
    }
}

fn has_duplicates(members: &Members<'_>) -> bool {
    if members.len() <= 16 {
        members
            .iter()
            .enumerate()
            .any(|(i, (k, _))| members[..i].iter().any(|(j, _)| j == k))
    } else {
        let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// An object key that borrows when it can.
struct Key<'a>(Cow<'a, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// Parses a JSON object, refusing duplicates; `what` names the part in the error.
fn parse_object<'a>(
    bytes: &'a [u8],
    not_json: &'static str,
    duplicate: &'static str,
    not_object: &'static str,
) -> CoreResult<Vec<(Cow<'a, str>, Json<'a>)>> {
    match serde_json::from_slice::<Json<'a>>(bytes) {
        Ok(Json::Obj(members)) => Ok(members),
        Ok(_) => Err(CoreError::MalformedToken(not_object)),
        Err(e) if e.is_data() => Err(CoreError::MalformedToken(duplicate)),
        Err(_) => Err(CoreError::MalformedToken(not_json)),
    }
}

fn b64(part: &str) -> CoreResult<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| CoreError::MalformedToken("invalid base64url (padding or alphabet)"))
}

/// A claim time as whole seconds (floats truncated toward zero, like PyJWT's `int()`).
fn seconds(v: &Json<'_>, err: &'static str) -> CoreResult<i128> {
    match v {
        Json::Int(i) => Ok(i128::from(*i)),
        Json::UInt(u) => Ok(i128::from(*u)),
        Json::Float(f) => Ok(f.trunc() as i128),
        _ => Err(CoreError::MalformedToken(err)),
    }
}

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

fn typ_matches(header: &str, configured: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &s[12..],
            _ => s,
        }
    }
    strip(header).eq_ignore_ascii_case(strip(configured))
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
            if let VerifyKey::Ed(pk) = &vk {
                public.push((kid.clone(), *pk));
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

    /// Verifies `token` at time `now` (Unix seconds) and hands the claims to `f`.
    pub fn verify_with<R>(
        &self,
        token: &str,
        now: i64,
        f: impl FnOnce(&Members<'_>) -> CoreResult<R>,
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
        // 7. payload and claim types
        let claims = parse_object(
            &payload_bytes,
            "payload is not valid JSON",
            "duplicate claim",
            "payload is not a JSON object",
        )?;
        self.check_claims(&claims, typ, now)?;
        f(&claims)
    }

    fn check_claims(&self, claims: &Members<'_>, typ: Option<&str>, now: i64) -> CoreResult<()> {
        let (mut exp, mut nbf, mut iat, mut iss, mut aud) = (None, None, None, None, None);
        for (name, value) in claims {
            match name.as_ref() {
                "exp" => exp = Some(seconds(value, "exp must be a number")?),
                "nbf" => nbf = Some(seconds(value, "nbf must be a number")?),
                "iat" => iat = Some(seconds(value, "iat must be a number")?),
                "iss" | "sub" | "jti" | "sid" => match value {
                    Json::Str(s) => {
                        if name == "iss" {
                            iss = Some(s.as_ref());
                        }
                    }
                    _ => return Err(CoreError::MalformedToken("iss/sub/jti/sid must be strings")),
                },
                "aud" => match value {
                    Json::Str(_) => aud = Some(value),
                    Json::Arr(items) if items.iter().all(|i| matches!(i, Json::Str(_))) => {
                        aud = Some(value)
                    }
                    _ => {
                        return Err(CoreError::MalformedToken(
                            "aud must be a string or a list of strings",
                        ))
                    }
                },
                _ => {}
            }
        }
        // 8. times
        let exp = exp.ok_or(CoreError::MalformedToken("exp claim is required"))?;
        let now = i128::from(now);
        let leeway = i128::from(self.policy.leeway);
        if exp <= now - leeway {
            return Err(CoreError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(CoreError::Immature("nbf"));
        }
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(CoreError::Immature("iat"));
        }
        // 9. issuer
        if iss != Some(self.policy.issuer.as_str()) {
            return Err(CoreError::InvalidIssuer);
        }
        // 10. audience
        let allowed = |a: &Json<'_>| match a {
            Json::Str(s) => self.policy.audiences.iter().any(|x| x == s),
            _ => false,
        };
        let aud_ok = match aud {
            Some(Json::Arr(items)) => items.iter().any(allowed),
            Some(single) => allowed(single),
            None => false,
        };
        if !aud_ok {
            return Err(CoreError::InvalidAudience);
        }
        // 11. type
        if let Some(want) = &self.policy.typ {
            if !typ.is_some_and(|t| typ_matches(t, want)) {
                return Err(CoreError::InvalidType);
            }
        }
        Ok(())
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

// ---------------------------------------------------------------------------------------------
// Python bindings
// ---------------------------------------------------------------------------------------------
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString};

/// Converts parsed claims to Python objects.
fn json_to_py<'py>(py: Python<'py>, v: &Json<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Int(i) => i.into_pyobject(py)?.into_any(),
        Json::UInt(u) => u.into_pyobject(py)?.into_any(),
        Json::Float(f) => f.into_pyobject(py)?.into_any(),
        Json::Str(s) => PyString::new(py, s).into_any(),
        Json::Arr(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Json::Obj(members) => members_to_py(py, members)?.into_any(),
    })
}

fn members_to_py<'py>(py: Python<'py>, members: &Members<'_>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in members {
        dict.set_item(PyString::new(py, k), json_to_py(py, v)?)?;
    }
    Ok(dict)
}

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
        crate::codec::write_dict(&mut payload, claims, 0)?;
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
        if token.len()? > self.inner.policy.max_token_bytes {
            return Err(too_big.into());
        }
        token
            .to_str()
            .map_err(|_| CoreError::MalformedToken("token is not valid UTF-8").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    fn policy(typ: Option<&str>) -> Policy {
        Policy {
            issuer: "arcana".into(),
            audiences: vec!["api".into(), "admin".into()],
            typ: typ.map(str::to_owned),
            leeway: 30,
            max_token_bytes: 8192,
        }
    }

    fn access(signer: &Signer, exp: i64) -> String {
        signer.sign_access(
            &AccessClaims {
                iss: "arcana",
                sub: "u1",
                aud: "api",
                iat: NOW,
                exp,
                jti: "j1",
                sid: "s1",
                role: "user",
            },
            "at+jwt",
        )
    }

    fn hs_pair(alg: &str) -> CoreResult<(Signer, Verifier)> {
        let signer = Signer::new(alg, "k1", SECRET)?;
        let verifier = Verifier::new(
            alg,
            vec![("k1".into(), SECRET.to_vec())],
            policy(Some("at+jwt")),
        )?;
        Ok((signer, verifier))
    }

    #[test]
    fn round_trip_every_algorithm() -> R {
        for alg in ["HS256", "HS384", "HS512"] {
            let (signer, verifier) = hs_pair(alg)?;
            let token = access(&signer, NOW + 600);
            let got = verifier.verify_access(&token, NOW)?;
            assert_eq!(
                got,
                (
                    "u1".into(),
                    "s1".into(),
                    "user".into(),
                    "j1".into(),
                    NOW + 600
                )
            );
        }
        let seed = [7u8; 32];
        let signer = Signer::new("EdDSA", "ed1", &seed)?;
        let public = SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec();
        let verifier = Verifier::new(
            "EdDSA",
            vec![("ed1".into(), public)],
            policy(Some("at+jwt")),
        )?;
        let token = access(&signer, NOW + 600);
        assert_eq!(verifier.verify_access(&token, NOW)?.0, "u1");
        assert!(verifier.jwks().contains("\"kid\":\"ed1\""));
        Ok(())
    }

    #[test]
    fn failures_are_distinct_and_ordered() -> R {
        let (signer, verifier) = hs_pair("HS256")?;
        let ok = access(&signer, NOW + 600);
        assert_eq!(
            verifier.verify_access(&access(&signer, NOW - 31), NOW),
            Err(CoreError::Expired)
        );
        assert!(verifier
            .verify_access(&access(&signer, NOW - 29), NOW)
            .is_ok());
        assert_eq!(
            verifier.verify_access(&access(&signer, NOW - 30), NOW),
            Err(CoreError::Expired)
        );
        let mut bad_sig = ok.clone();
        bad_sig.push('A');
        assert!(verifier.verify_access(&bad_sig, NOW).is_err());
        let other = Signer::new("HS256", "k1", b"another-secret-another-secret-xx")?;
        assert_eq!(
            verifier.verify_access(&access(&other, NOW + 600), NOW),
            Err(CoreError::InvalidSignature)
        );
        let unknown = Signer::new("HS256", "k2", SECRET)?;
        assert_eq!(
            verifier.verify_access(&access(&unknown, NOW + 600), NOW),
            Err(CoreError::UnknownKey)
        );
        let hs384 = Signer::new("HS384", "k1", SECRET)?;
        assert_eq!(
            verifier.verify_access(&access(&hs384, NOW + 600), NOW),
            Err(CoreError::InvalidAlgorithm)
        );
        let jwt_typ =
            signer.sign_payload(br#"{"iss":"arcana","aud":"api","exp":2000000000}"#, "JWT");
        assert_eq!(
            verifier.verify_with(&jwt_typ, NOW, |_| Ok(())),
            Err(CoreError::InvalidType)
        );
        let wrong_iss =
            signer.sign_payload(br#"{"iss":"x","aud":"api","exp":2000000000}"#, "at+jwt");
        assert_eq!(
            verifier.verify_with(&wrong_iss, NOW, |_| Ok(())),
            Err(CoreError::InvalidIssuer)
        );
        let wrong_aud = signer.sign_payload(
            br#"{"iss":"arcana","aud":["x","y"],"exp":2000000000}"#,
            "at+jwt",
        );
        assert_eq!(
            verifier.verify_with(&wrong_aud, NOW, |_| Ok(())),
            Err(CoreError::InvalidAudience)
        );
        let nbf = signer.sign_payload(
            br#"{"iss":"arcana","aud":"api","exp":2000000000,"nbf":1700000031}"#,
            "at+jwt",
        );
        assert_eq!(
            verifier.verify_with(&nbf, NOW, |_| Ok(())),
            Err(CoreError::Immature("nbf"))
        );
        let iat = signer.sign_payload(
            br#"{"iss":"arcana","aud":"api","exp":2000000000,"iat":1700000031}"#,
            "application/AT+JWT",
        );
        assert_eq!(
            verifier.verify_with(&iat, NOW, |_| Ok(())),
            Err(CoreError::Immature("iat"))
        );
        assert!(
            verifier.verify_with(&iat, NOW + 1, |_| Ok(())).is_ok(),
            "typ is case-insensitive"
        );
        Ok(())
    }

    #[test]
    fn malformed_inputs() -> R {
        let (signer, verifier) = hs_pair("HS256")?;
        let malformed = |t: &str| {
            matches!(
                verifier.verify_with(t, NOW, |_| Ok(())),
                Err(CoreError::MalformedToken(_))
            )
        };
        assert!(malformed(""));
        assert!(malformed("a.b"));
        assert!(malformed("a.b.c.d"));
        assert!(malformed(&"a".repeat(9000)));
        let ok = access(&signer, NOW + 600);
        assert!(malformed(&format!("{ok}=")));
        let dup = signer.sign_payload(
            br#"{"iss":"arcana","aud":"api","exp":2000000000,"exp":1}"#,
            "at+jwt",
        );
        assert!(malformed(&dup));
        let wrong_type = signer.sign_payload(
            br#"{"iss":"arcana","aud":"api","exp":"2000000000"}"#,
            "at+jwt",
        );
        assert!(malformed(&wrong_type));
        let not_object = signer.sign_payload(b"[1,2]", "at+jwt");
        assert!(malformed(&not_object));
        let no_exp = signer.sign_payload(br#"{"iss":"arcana","aud":"api"}"#, "at+jwt");
        assert!(malformed(&no_exp));
        Ok(())
    }

    #[test]
    fn rfc7515_a1_hs256_vector() -> R {
        let key = URL_SAFE_NO_PAD.decode(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        )?;
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let mut pol = policy(Some("JWT"));
        pol.issuer = "joe".into();
        pol.audiences = vec!["joe".into()];
        let verifier = Verifier::new("HS256", vec![("any".into(), key)], pol)?;
        // Signature, exp and iss pass; the vector has no aud, so the audience step is reached.
        assert_eq!(
            verifier.verify_with(token, 1_300_819_000, |_| Ok(())),
            Err(CoreError::InvalidAudience)
        );
        let tampered = token.replace("dBjft", "dBjfu");
        assert_eq!(
            verifier.verify_with(&tampered, 1_300_819_000, |_| Ok(())),
            Err(CoreError::InvalidSignature)
        );
        Ok(())
    }

    #[test]
    fn rfc8037_a4_ed25519_vector() -> R {
        let d = URL_SAFE_NO_PAD.decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")?;
        let seed: [u8; 32] = d.as_slice().try_into()?;
        let sk = SigningKey::from_bytes(&seed);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes()),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let sig = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sk.sign(input.as_bytes()).to_bytes()),
            sig
        );
        let verifier = Verifier::new(
            "EdDSA",
            vec![("k".into(), sk.verifying_key().to_bytes().to_vec())],
            policy(None),
        )?;
        // The signature verifies; the payload is text, not a JSON object.
        assert_eq!(
            verifier.verify_with(&format!("{input}.{sig}"), NOW, |_| Ok(())),
            Err(CoreError::MalformedToken("payload is not valid JSON"))
        );
        Ok(())
    }

    #[test]
    fn constructor_validation() {
        assert!(Signer::new("none", "k", SECRET).is_err());
        assert!(Signer::new("HS256", "k", b"short").is_err());
        assert!(Signer::new("EdDSA", "k", &[1u8; 31]).is_err());
        assert!(Verifier::new("HS256", vec![], policy(None)).is_err());
        assert!(Verifier::new("EdDSA", vec![("k".into(), vec![0u8; 32])], policy(None)).is_err());
        assert!(Signer::new("HS256", "k", SECRET).is_ok_and(|s| s.public_jwk().is_none()));
    }

    #[test]
    fn duplicate_detection_scales() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        let json = format!("{{{many}\"k7\":2}}");
        assert!(serde_json::from_slice::<Json<'_>>(json.as_bytes()).is_err());
        let json = format!("{{{many}\"z\":2}}");
        assert!(serde_json::from_slice::<Json<'_>>(json.as_bytes()).is_ok());
    }
}
