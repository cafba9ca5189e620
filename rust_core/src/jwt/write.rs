//! Compact JSON writing for token headers, access claims and JWKS documents.
//!
//! Output rules (matching msgspec 0.22): no whitespace; dict order preserved; strings escape
//! only `"` `\` and control characters (`\b \t \n \f \r` short, the others `\u00xx` in lower-case
//! hex); non-ASCII and DEL are written raw as UTF-8; floats use the shortest round-trip form
//! (Ryu: `1e16`, `1e-7`, `0.00001`, `1.0`), NaN and infinities become `null`; ints are exact up
//! to the 64-bit range (signed or unsigned).

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
