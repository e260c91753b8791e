//! Bencode (BEP 3): the value type, a strict decoder with depth and size limits,
//! a canonical encoder, and the byte span of a dictionary value (the info hash is
//! the SHA-1 of the `info` dictionary exactly as it appears in the file).

use std::collections::BTreeMap;
use std::ops::Range;

/// Nesting deeper than this is rejected: real metainfo nests about 5 levels.
pub const MAX_DEPTH: usize = 64;

/// A bencoded value. Dictionary keys are byte strings kept in sorted order, so
/// encoding is canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("bencode: unexpected end of data at byte {0}")]
    Eof(usize),
    #[error("bencode: unexpected byte {byte:#04x} at byte {pos}")]
    UnexpectedByte { byte: u8, pos: usize },
    #[error("bencode: malformed integer at byte {0}")]
    BadInt(usize),
    #[error("bencode: malformed string length at byte {0}")]
    BadLength(usize),
    #[error("bencode: string at byte {pos} claims {len} bytes but only {left} remain")]
    StringTooLong { pos: usize, len: usize, left: usize },
    #[error("bencode: nesting deeper than {MAX_DEPTH} levels at byte {0}")]
    TooDeep(usize),
    #[error("bencode: dictionary key at byte {0} is not a byte string")]
    KeyNotString(usize),
    #[error("bencode: duplicate dictionary key {key:?} at byte {pos}")]
    DuplicateKey { key: String, pos: usize },
    #[error("bencode: {0} trailing bytes after the value")]
    Trailing(usize),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// The byte string as UTF-8, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
    /// Looks up `key` when this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key.as_bytes()))
    }

    /// Canonical bencoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Builds a dictionary from `(key, value)` pairs; handy for encoders.
pub fn dict<I, K>(entries: I) -> Value
where
    I: IntoIterator<Item = (K, Value)>,
    K: Into<Vec<u8>>,
{
    Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Shorthand for a byte-string value.
pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
    Value::Bytes(b.into())
}

/// Decodes exactly one value that fills the whole buffer.
pub fn decode(buf: &[u8]) -> Result<Value, BencodeError> {
    let (v, end) = decode_prefix(buf)?;
    if end != buf.len() {
        return Err(BencodeError::Trailing(buf.len() - end));
    }
    Ok(v)
}

/// Decodes one value at the start of `buf` and returns it with the number of
/// bytes it took; whatever follows is the caller's (BEP 9 data messages carry a
/// raw block after the dictionary).
pub fn decode_prefix(buf: &[u8]) -> Result<(Value, usize), BencodeError> {
    let mut p = Parser { buf, pos: 0 };
    let v = p.value(0)?;
    Ok((v, p.pos))
}

/// The byte range, within `buf`, of the value stored under `key` in the
/// top-level dictionary of `buf`. `buf` must hold one valid dictionary.
pub fn dict_value_span(buf: &[u8], key: &[u8]) -> Result<Option<Range<usize>>, BencodeError> {
    let mut p = Parser { buf, pos: 0 };
    match p.peek()? {
        b'd' => p.pos += 1,
        byte => {
            return Err(BencodeError::UnexpectedByte { byte, pos: 0 });
        }
    }
    let mut found = None;
    loop {
        if p.peek()? == b'e' {
            p.pos += 1;
            break;
        }
        let key_pos = p.pos;
        let k = match p.value(1)? {
            Value::Bytes(k) => k,
            _ => return Err(BencodeError::KeyNotString(key_pos)),
        };
        let start = p.pos;
        p.value(1)?;
        if k == key {
            found = Some(start..p.pos);
        }
    }
    if p.pos != buf.len() {
        return Err(BencodeError::Trailing(buf.len() - p.pos));
    }
    Ok(found)
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Eof(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep(self.pos));
        }
        match self.peek()? {
            b'i' => self.int(),
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(list))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    let key_pos = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotString(key_pos));
                    }
                    let key = self.bytes()?;
                    let val = self.value(depth + 1)?;
                    if map.contains_key(&key) {
                        return Err(BencodeError::DuplicateKey {
                            key: String::from_utf8_lossy(&key).into_owned(),
                            pos: key_pos,
                        });
                    }
                    map.insert(key, val);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            byte => Err(BencodeError::UnexpectedByte {
                byte,
                pos: self.pos,
            }),
        }
    }

    fn int(&mut self) -> Result<Value, BencodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or(BencodeError::Eof(self.buf.len()))?;
        let digits = &rest[..end];
        let (neg, body) = match digits.split_first() {
            Some((b'-', body)) => (true, body),
            _ => (false, digits),
        };
        let leading_zero = body.len() > 1 && body[0] == b'0';
        let negative_zero = neg && body == b"0";
        let all_digits = !body.is_empty() && body.iter().all(u8::is_ascii_digit);
        if !all_digits || leading_zero || negative_zero {
            return Err(BencodeError::BadInt(start));
        }
        let s = std::str::from_utf8(digits).map_err(|_| BencodeError::BadInt(start))?;
        let n: i64 = s.parse().map_err(|_| BencodeError::BadInt(start))?;
        self.pos += end + 1;
        Ok(Value::Int(n))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, BencodeError> {
        let start = self.pos;
        let rest = &self.buf[self.pos..];
        let colon = rest
            .iter()
            .take(21)
            .position(|&b| b == b':')
            .ok_or(BencodeError::BadLength(start))?;
        let digits = &rest[..colon];
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits.len() > 1 && digits[0] == b'0')
        {
            return Err(BencodeError::BadLength(start));
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(BencodeError::BadLength(start))?;
        let data_start = self.pos + colon + 1;
        let left = self.buf.len() - data_start;
        if len > left {
            return Err(BencodeError::StringTooLong {
                pos: start,
                len,
                left,
            });
        }
        self.pos = data_start + len;
        Ok(self.buf[data_start..self.pos].to_vec())
    }
}
