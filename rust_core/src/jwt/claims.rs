//! Verification steps 8–11 (see [`super`]): times with leeway, issuer, audience, header type,
//! after step 7's claim types. Pure functions of the policy, the claims and `now`.

use super::json::{Json, Members};
use super::verifier::Policy;
use crate::errors::{CoreError, CoreResult};

/// A claim time as whole seconds (floats truncated toward zero, like PyJWT's `int()`).
pub fn seconds(v: &Json<'_>, err: &'static str) -> CoreResult<i128> {
    match v {
        Json::Int(i) => Ok(i128::from(*i)),
        Json::UInt(u) => Ok(i128::from(*u)),
        Json::Float(f) => Ok(f.trunc() as i128),
        _ => Err(CoreError::MalformedToken(err)),
    }
}

/// RFC 7515 §4.1.9: ASCII case-insensitive, `application/` prefix optional on either side.
pub fn typ_matches(header: &str, configured: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &s[12..],
            _ => s,
        }
    }
    strip(header).eq_ignore_ascii_case(strip(configured))
}

/// Claim types (the rest of step 7), then steps 8–11; `typ` is the header's.
pub fn check(policy: &Policy, claims: &Members<'_>, typ: Option<&str>, now: i64) -> CoreResult<()> {
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
    let leeway = i128::from(policy.leeway);
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
    if iss != Some(policy.issuer.as_str()) {
        return Err(CoreError::InvalidIssuer);
    }
    // 10. audience
    let allowed = |a: &Json<'_>| match a {
        Json::Str(s) => policy.audiences.iter().any(|x| x == s),
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
    if let Some(want) = &policy.typ {
        if !typ.is_some_and(|t| typ_matches(t, want)) {
            return Err(CoreError::InvalidType);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::json::parse_object;

    #[test]
    fn float_times_truncate_toward_zero_and_other_types_fail() {
        assert_eq!(seconds(&Json::Float(10.9), "e"), Ok(10));
        assert_eq!(seconds(&Json::Float(-0.5), "e"), Ok(0));
        assert_eq!(
            seconds(&Json::UInt(u64::MAX), "e"),
            Ok(i128::from(u64::MAX))
        );
        assert_eq!(
            seconds(&Json::Str("1".into()), "e"),
            Err(CoreError::MalformedToken("e"))
        );
    }

    #[test]
    fn typ_comparison_follows_rfc7515() {
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(typ_matches("at+jwt", "Application/AT+jwt"));
        assert!(!typ_matches("at+jwt2", "at+jwt"));
        assert!(!typ_matches("applicationXat+jwt", "at+jwt"));
        assert!(
            !typ_matches("é", "at+jwt"),
            "non-ASCII never panics the prefix slice"
        );
    }

    #[test]
    fn a_list_audience_needs_one_allowed_member() -> CoreResult<()> {
        let policy = Policy {
            issuer: "i".into(),
            audiences: vec!["a".into()],
            typ: None,
            leeway: 0,
            max_token_bytes: 8192,
        };
        let ok = parse_object(br#"{"iss":"i","exp":10,"aud":["x","a"]}"#, "", "", "")?;
        assert_eq!(check(&policy, &ok, None, 9), Ok(()));
        let mixed = parse_object(br#"{"iss":"i","exp":10,"aud":["a",1]}"#, "", "", "")?;
        assert!(matches!(
            check(&policy, &mixed, None, 9),
            Err(CoreError::MalformedToken(_))
        ));
        Ok(())
    }
}
