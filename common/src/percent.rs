//! Percent-encoding of bytes (RFC 3986): the one encoder and the one strict
//! decoder of magnet links, HTTP tracker queries and BEP 15 peer ids shown
//! as text.
//!
//! The encoder keeps the unreserved characters (ASCII letters, digits and
//! `-._~`) and writes every other byte as `%XX` in upper-case hex, so it is
//! reversible and the usual `-XX1234-…` peer ids read as themselves. The
//! decoder refuses a `%` not followed by two hex digits rather than guess.

use crate::hex;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A `%` not followed by two hex digits, at this byte of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape(pub usize);

/// ASCII letters, digits and `-._~`: what stands for itself.
#[inline]
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` percent-encoded to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// `bytes` percent-encoded.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    encode_into(bytes, &mut s);
    s
}

/// Decodes `raw`: `%XX` is the byte XX (either case); with `plus_is_space`
/// (form encoding) `+` is a space; every other byte stands for itself.
pub fn decode(raw: &[u8], plus_is_space: bool) -> Result<Vec<u8>, BadEscape> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                let byte = raw
                    .get(i + 1)
                    .and_then(|&h| hex::digit(h))
                    .zip(raw.get(i + 2).and_then(|&l| hex::digit(l)))
                    .map(|(h, l)| h << 4 | l)
                    .ok_or(BadEscape(i))?;
                out.push(byte);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(text.bytes().all(|b| is_unreserved(b) || b == b'%'));
        assert_eq!(decode(text.as_bytes(), false).unwrap(), all);
        assert_eq!(encode(b"-qB4650-a b%"), "-qB4650-a%20b%25");
    }

    #[test]
    fn decoding_is_strict_about_escapes() {
        assert_eq!(decode(b"a%2fB%2F", false).unwrap(), b"a/B/");
        assert_eq!(decode(b"a+b", true).unwrap(), b"a b");
        assert_eq!(decode(b"a+b", false).unwrap(), b"a+b");
        assert_eq!(decode(b"ab%", false), Err(BadEscape(2)));
        assert_eq!(decode(b"%4", false), Err(BadEscape(0)));
        assert_eq!(decode(b"x%zz", false), Err(BadEscape(1)));
    }
}
