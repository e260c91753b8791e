//! Hexadecimal text for hashes: the one encoder (lowercase) and the one parser
//! of the 40-digit form every SHA-1 takes in this project (info hashes in
//! JSON, magnet links, `--json` output, traces).
//!
//! Callers keep their own error types; [`HexError`] says only what the digits
//! got wrong, and each caller words that for its format.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Value of each byte as a hex digit, or 0x10 when it is not one.
const VALUE: [u8; 256] = {
    let mut t = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// What is wrong with text given to [`decode_20`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// Not 40 bytes long (the length in bytes is given).
    Length(usize),
    /// The first byte that is not a hex digit, and where it stands.
    Digit { index: usize, byte: u8 },
}

/// Appends the lowercase hex of `bytes` to `buf`.
pub fn push_hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len() * 2);
    for &b in bytes {
        buf.push(DIGITS[usize::from(b >> 4)]);
        buf.push(DIGITS[usize::from(b & 15)]);
    }
}

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The value of one hex digit (either case).
pub fn digit(c: u8) -> Option<u8> {
    let v = VALUE[usize::from(c)];
    (v < 16).then_some(v)
}

/// Parses exactly 40 hex digits (either case) into 20 bytes.
pub fn decode_20(s: &str) -> Result<[u8; 20], HexError> {
    let b = s.as_bytes();
    if b.len() != 40 {
        return Err(HexError::Length(b.len()));
    }
    let mut out = [0u8; 20];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (VALUE[usize::from(pair[0])], VALUE[usize::from(pair[1])]);
        // Invalid digits map to 0x10, whose bit survives the OR below; the
        // tracker parses one of these per request, so the loop stays branch-free.
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 15);
    }
    if bad & 0x10 == 0 {
        return Ok(out);
    }
    let index = b.iter().position(|&c| digit(c).is_none()).unwrap_or(0);
    Err(HexError::Digit {
        index,
        byte: b[index],
    })
}
