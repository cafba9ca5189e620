//! End-to-end tests of the pure Rust API: tokens made by [`Signer`] and checked by [`Verifier`]
//! (every failure, in order), and the RFC 7515 / RFC 8037 vectors. Unit tests sit next to the
//! code they test in the sibling files.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};

use super::*;
use crate::errors::{CoreError, CoreResult};

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
    let jwt_typ = signer.sign_payload(br#"{"iss":"arcana","aud":"api","exp":2000000000}"#, "JWT");
    assert_eq!(
        verifier.verify_with(&jwt_typ, NOW, |_| Ok(())),
        Err(CoreError::InvalidType)
    );
    let wrong_iss = signer.sign_payload(br#"{"iss":"x","aud":"api","exp":2000000000}"#, "at+jwt");
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
    let sig =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
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
