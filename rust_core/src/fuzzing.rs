//! Fuzz harnesses: what each coverage-guided target in `fuzz/` runs on one input, and what the
//! regression replay below runs on every saved input. They live in the crate (not in `fuzz/`) so
//! `cargo test` replays exactly the code the fuzzer ran, on stable, without libFuzzer.
//!
//! A harness returns `Err` when a property fails (a round trip that does not hold); a panic or an
//! abort anywhere beneath it is a crash. Inputs the fuzzer can make that would only measure
//! argon2's cost (a stored hash asking for gigabytes or millions of passes) are skipped: stored
//! hashes come from our own database, and [`crate::password::MAX_MEMORY_KIB`] already bounds them.

use std::sync::OnceLock;

use argon2::password_hash::PasswordHash;
use argon2::Params;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::errors::CoreError;
use crate::jwt::json::parse_object;
use crate::jwt::{Policy, Signer, Verifier};
use crate::password::Hasher;

/// The targets, by name: the folders of `fuzz/seeds/` and `fuzz/regressions/`.
pub const TARGETS: [&str; 4] = [
    "verify_token",
    "decode_header",
    "parse_phc",
    "verify_password",
];

/// A property that failed, with what the harness saw.
pub type Outcome = Result<(), String>;

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef!";
const SEED: [u8; 32] = [7; 32];
/// Largest argon2 cost a fuzzed hash may ask for before it is skipped (KiB, passes, lanes).
const FUZZ_MAX_COST: (u32, u32, u32) = (256, 3, 4);

struct Keys {
    signers: Vec<Signer>,
    verifiers: Vec<Verifier>,
}

fn policy() -> Policy {
    Policy {
        issuer: "arcana".into(),
        audiences: vec!["api".into()],
        typ: Some("at+jwt".into()),
        leeway: 30,
        max_token_bytes: 8192,
    }
}

/// One signer and one verifier per algorithm, built once per process.
fn keys() -> Result<&'static Keys, String> {
    static KEYS: OnceLock<Result<Keys, String>> = OnceLock::new();
    let built = KEYS.get_or_init(|| {
        let mut keys = Keys {
            signers: Vec::new(),
            verifiers: Vec::new(),
        };
        for alg in ["HS256", "HS384", "HS512", "EdDSA"] {
            let private = if alg == "EdDSA" { &SEED[..] } else { SECRET };
            let signer = Signer::new(alg, "k1", private).map_err(|e| e.to_string())?;
            let public = match signer.public_jwk() {
                Some(_) => ed25519_dalek::SigningKey::from_bytes(&SEED)
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
                None => SECRET.to_vec(),
            };
            let verifier = Verifier::new(alg, vec![("k1".into(), public)], policy())
                .map_err(|e| e.to_string())?;
            keys.signers.push(signer);
            keys.verifiers.push(verifier);
        }
        Ok(keys)
    });
    built.as_ref().map_err(Clone::clone)
}

/// The first byte picks the algorithm, the rest is the token (lossy UTF-8, as Python hands over a
/// `str`). Also: the rest signed as a payload must verify, or fail on its claims, never on the
/// signature, algorithm or key, and a verified payload is the one that was signed.
pub fn verify_token(data: &[u8]) -> Outcome {
    let keys = keys()?;
    let (pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let n = usize::from(*pick) % keys.verifiers.len();
    let (Some(verifier), Some(signer)) = (keys.verifiers.get(n), keys.signers.get(n)) else {
        return Err("no key for the pick".into());
    };
    let token = String::from_utf8_lossy(rest);
    let _ = verifier.verify_access(&token, NOW);
    let _ = verifier.verify_raw(&token, NOW, |payload, claims| {
        Ok((payload.len(), claims.len()))
    });
    let signed = signer.sign_payload(rest, "at+jwt");
    match verifier.verify_raw(&signed, NOW, |payload, _| Ok(payload.to_vec())) {
        Ok(payload) if payload == rest => Ok(()),
        Ok(_) => Err("a verified payload differs from the signed one".into()),
        Err(CoreError::InvalidSignature | CoreError::InvalidAlgorithm | CoreError::UnknownKey)
            if signed.len() <= verifier.max_token_bytes() =>
        {
            Err(format!("our own token was refused: {signed}"))
        }
        Err(_) => Ok(()),
    }
}

/// The input as a token header: parsed as JSON directly, and as the first part of a token signed
/// by nobody (every header check runs before the signature's).
pub fn decode_header(data: &[u8]) -> Outcome {
    let keys = keys()?;
    let _ = parse_object(data, "json", "duplicate", "object");
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(data),
        URL_SAFE_NO_PAD.encode(br#"{"exp":1}"#),
        URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    for verifier in &keys.verifiers {
        if let Ok(()) = verifier.verify_raw(&token, NOW, |_, _| Ok(())) {
            return Err("a token with a zero signature verified".into());
        }
    }
    Ok(())
}

fn hasher() -> Result<&'static Hasher, String> {
    static HASHER: OnceLock<Result<Hasher, String>> = OnceLock::new();
    HASHER
        .get_or_init(|| Hasher::new(8, 1, 1, 16, 32).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// The input as a stored PHC string: the parser behind `verify` and `needs_rehash`.
pub fn parse_phc(data: &[u8]) -> Outcome {
    let encoded = String::from_utf8_lossy(data);
    let _ = hasher()?.needs_rehash(&encoded);
    Ok(())
}

/// Bytes up to the first NUL are a stored hash, the rest the password: verified when the hash's
/// cost is small. Then the password hashed (salt from the input) must verify, and a changed one not.
pub fn verify_password(data: &[u8]) -> Outcome {
    let hasher = hasher()?;
    let (encoded, password) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], data.get(at + 1..).unwrap_or_default()),
        None => (data, &b""[..]),
    };
    let encoded = String::from_utf8_lossy(encoded);
    if cheap(&encoded) {
        let _ = hasher.verify(&encoded, password);
    }
    let mut salt = [0u8; 16];
    for (slot, byte) in salt
        .iter_mut()
        .zip(password.iter().chain(encoded.as_bytes()))
    {
        *slot = *byte;
    }
    let Ok(stored) = hasher.hash_with_salt(password, &salt) else {
        return Ok(()); // too long: refused before hashing, and `verify` refuses it the same way
    };
    let mut other = password.to_vec();
    other.push(b'x');
    match (
        hasher.verify(&stored, password),
        hasher.verify(&stored, &other),
    ) {
        (Ok(true), Ok(false) | Err(CoreError::PasswordTooLong)) => Ok(()),
        outcome => Err(format!("{stored}: {outcome:?}")),
    }
}

/// True when the hash's parameters (if it has any) cost no more than [`FUZZ_MAX_COST`].
fn cheap(encoded: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(encoded) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let (m, t, p) = FUZZ_MAX_COST;
    params.m_cost() <= m && params.t_cost() <= t && params.p_cost() <= p
}

/// Runs the named target on one input.
pub fn run(target: &str, data: &[u8]) -> Outcome {
    match target {
        "verify_token" => verify_token(data),
        "decode_header" => decode_header(data),
        "parse_phc" => parse_phc(data),
        "verify_password" => verify_password(data),
        other => Err(format!("no fuzz target {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    /// Every seed and every saved crash of every target still runs clean (`make fuzz` saves crashes
    /// into `fuzz/regressions/<target>/`).
    #[test]
    fn fuzz_seeds_and_regressions_replay_clean() -> R {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0;
        for target in TARGETS {
            for folder in ["seeds", "regressions"] {
                let dir = root.join(folder).join(target);
                if !dir.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(&dir)? {
                    let path = entry?.path();
                    if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
                        let data = std::fs::read(&path)?;
                        run(target, &data).map_err(|e| format!("{}: {e}", path.display()))?;
                        replayed += 1;
                    }
                }
            }
        }
        assert!(replayed >= TARGETS.len(), "only {replayed} inputs replayed");
        Ok(())
    }

    #[test]
    fn harnesses_report_failed_properties() {
        assert!(run("nope", b"").is_err());
        assert!(verify_token(b"\x00").is_ok());
        assert!(verify_password(b"\x00password").is_ok());
        assert!(cheap(
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        assert!(!cheap(
            "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
    }
}
