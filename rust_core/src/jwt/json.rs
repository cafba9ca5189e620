//! The strict JSON reader for headers and claims: objects keep document order, and a duplicate
//! member anywhere is an error (RFC 7515 §4 and RFC 7519 §4 let a parser reject them; we do,
//! because two parsers that pick different duplicates read different claims from one token).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::errors::{CoreError, CoreResult};

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

/// Parses a JSON object, refusing duplicates; the three messages name the part in the error.
pub fn parse_object<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_detection_scales() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":1,")).collect();
        let json = format!("{{{many}\"k7\":2}}");
        assert!(serde_json::from_slice::<Json<'_>>(json.as_bytes()).is_err());
        let json = format!("{{{many}\"z\":2}}");
        assert!(serde_json::from_slice::<Json<'_>>(json.as_bytes()).is_ok());
    }

    #[test]
    fn objects_keep_order_borrow_plain_strings_and_name_the_failure() -> CoreResult<()> {
        let members = parse_object(
            br#"{"b":"x","a":[1,-2,1.5,18446744073709551615,null,true]}"#,
            "j",
            "d",
            "o",
        )?;
        let names: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(matches!(&members[0].1, Json::Str(Cow::Borrowed("x"))));
        assert_eq!(
            members[1].1,
            Json::Arr(vec![
                Json::Int(1),
                Json::Int(-2),
                Json::Float(1.5),
                Json::UInt(u64::MAX),
                Json::Null,
                Json::Bool(true)
            ])
        );
        let fail = |bytes: &[u8]| parse_object(bytes, "j", "d", "o").err();
        assert_eq!(fail(b"{\"a\":1"), Some(CoreError::MalformedToken("j")));
        assert_eq!(
            fail(br#"{"a":{"x":1,"x":2}}"#),
            Some(CoreError::MalformedToken("d"))
        );
        assert_eq!(fail(b"[1]"), Some(CoreError::MalformedToken("o")));
        Ok(())
    }
}
