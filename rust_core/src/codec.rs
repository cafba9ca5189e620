//! Compact JSON writing for token headers, claims (`TokenSigner.sign` of a dict) and JWKS documents
//! (no Python API of its own:
//! the service encodes its responses with msgspec, which measured faster; benchmarks/README.md).
//!
//! Output rules (matching msgspec 0.22): no whitespace; dict order preserved; strings escape
//! only `"` `\` and control characters (`\b \t \n \f \r` short, the others `\u00xx` in lower-case
//! hex); non-ASCII and DEL are written raw as UTF-8; floats use the shortest round-trip form
//! (Ryu: `1e16`, `1e-7`, `0.00001`, `1.0`), NaN and infinities become `null`; ints are exact up
//! to the 64-bit range (signed or unsigned).

use crate::errors::{CoreError, CoreResult};

/// Maximum container nesting the encoder accepts (also stops reference cycles).
pub const MAX_DEPTH: usize = 64;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Escape byte for `b` inside a JSON string: 0 = copy as is, b'u' = `\u00xx`, other = `\<that>`.
const fn escape_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
}
static ESCAPE: [u8; 256] = escape_table();

/// Appends `s` as a quoted JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends a float in msgspec's form (`null` for NaN and infinities).
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends a signed integer.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa_buf(v.unsigned_abs());
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(buf.as_slice_mut());
}

/// Appends an unsigned integer.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa_buf(v);
    out.extend_from_slice(buf.as_slice_mut());
}

/// Small stack buffer holding the decimal digits of a `u64`.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_slice_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut v: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

// ---------------------------------------------------------------------------------------------
// Python bindings
// ---------------------------------------------------------------------------------------------
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Appends the JSON form of a Python value (str, int, float, bool, None, dict, list, tuple).
pub fn write_py(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> CoreResult<()> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        write_str(out, py_str(s)?);
    } else if let Ok(d) = obj.cast::<PyDict>() {
        write_dict(out, d, depth)?;
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if let Ok(i) = obj.cast::<PyInt>() {
        write_py_int(out, i)?;
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        write_f64(out, f.value());
    } else if let Ok(l) = obj.cast::<PyList>() {
        check_depth(depth)?;
        out.push(b'[');
        for (n, item) in l.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_py(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        check_depth(depth)?;
        out.push(b'[');
        for (n, item) in t.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_py(out, &item, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(s) = obj.cast::<PyString>() {
        write_str(out, py_str(s)?);
    } else {
        let name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        return Err(CoreError::Unsupported(format!(
            "Encoding objects of type {name} is unsupported"
        )));
    }
    Ok(())
}

fn check_depth(depth: usize) -> CoreResult<()> {
    if depth >= MAX_DEPTH {
        return Err(CoreError::Encode(format!(
            "maximum nesting depth {MAX_DEPTH} exceeded"
        )));
    }
    Ok(())
}

fn py_str<'a>(s: &'a Bound<'_, PyString>) -> CoreResult<&'a str> {
    s.to_str()
        .map_err(|_| CoreError::Encode("str is not valid UTF-8 (lone surrogate)".to_owned()))
}

fn write_py_int(out: &mut Vec<u8>, i: &Bound<'_, PyInt>) -> CoreResult<()> {
    if let Ok(v) = i.extract::<i64>() {
        write_i64(out, v);
    } else if let Ok(v) = i.extract::<u64>() {
        write_u64(out, v);
    } else {
        return Err(CoreError::Encode("Integer value out of range".to_owned()));
    }
    Ok(())
}

/// Appends a dict with string keys as a JSON object.
pub fn write_dict(out: &mut Vec<u8>, d: &Bound<'_, PyDict>, depth: usize) -> CoreResult<()> {
    check_depth(depth)?;
    out.push(b'{');
    for (n, (k, v)) in d.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let key = k
            .cast::<PyString>()
            .map_err(|_| CoreError::Unsupported("Only dicts with str keys are supported".into()))?;
        write_str(out, py_str(key)?);
        out.push(b':');
        write_py(out, &v, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn strings_escape_like_msgspec() {
        assert_eq!(s("plain"), "\"plain\"");
        assert_eq!(s("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s("\n\r\t\u{8}\u{c}"), "\"\\n\\r\\t\\b\\f\"");
        assert_eq!(s("\u{0}\u{1f}\u{b}"), "\"\\u0000\\u001f\\u000b\"");
        assert_eq!(s("é😀\u{7f}/\u{2028}"), "\"é😀\u{7f}/\u{2028}\"");
    }

    #[test]
    fn floats_use_shortest_form() {
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e16), "1e16");
        assert_eq!(f(1e15), "1000000000000000.0");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(1e-5), "0.00001");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::INFINITY), "null");
    }

    #[test]
    fn python_values_encode_like_msgspec() -> PyResult<()> {
        Python::initialize();
        Python::attach(|py| {
            let value = py.eval(
                c"{'a': [1, True, None, 1.5, 'x\\n'], 'b': {'c': (2**64 - 1, -2**63)}, 'd': float('nan')}",
                None,
                None,
            )?;
            let mut out = Vec::new();
            write_py(&mut out, &value, 0)?;
            assert_eq!(
                String::from_utf8_lossy(&out),
                r#"{"a":[1,true,null,1.5,"x\n"],"b":{"c":[18446744073709551615,-9223372036854775808]},"d":null}"#
            );
            let too_big = py.eval(c"{'n': 2**64}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &too_big, 0),
                Err(CoreError::Encode(_))
            ));
            let odd = py.eval(c"{'s': {1, 2}}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &odd, 0),
                Err(CoreError::Unsupported(_))
            ));
            let int_key = py.eval(c"{1: 2}", None, None)?;
            assert!(matches!(
                write_py(&mut Vec::new(), &int_key, 0),
                Err(CoreError::Unsupported(_))
            ));
            Ok(())
        })
    }

    #[test]
    fn integers_cover_64_bit_range() {
        let mut out = Vec::new();
        write_i64(&mut out, i64::MIN);
        out.push(b' ');
        write_i64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "-9223372036854775808 0 18446744073709551615"
        );
    }
}
