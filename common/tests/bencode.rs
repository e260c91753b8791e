//! Bencode: round trips, the strict decoder's rejections (non-canonical
//! integers, truncation, garbage, duplicate keys, depth), the span of the
//! `info` value, and decoding a prefix.

use minitorrent_common::bencode::{
    bytes, decode, decode_prefix, dict, dict_value_span, BencodeError, Value, MAX_DEPTH,
};

#[test]
fn round_trip() {
    let v = dict([
        ("a", Value::Int(-42)),
        ("b", bytes("spam")),
        (
            "c",
            Value::List(vec![Value::Int(0), bytes(""), dict::<_, &str>([])]),
        ),
    ]);
    let enc = v.encode();
    assert_eq!(enc, b"d1:ai-42e1:b4:spam1:cli0e0:deee".to_vec());
    assert_eq!(decode(&enc).unwrap(), v);
}

#[test]
fn rejects_non_canonical_ints() {
    for bad in [
        &b"i-0e"[..],
        b"i03e",
        b"ie",
        b"i-e",
        b"i1x2e",
        b"i99999999999999999999e",
    ] {
        assert!(
            matches!(decode(bad), Err(BencodeError::BadInt(0))),
            "{bad:?}"
        );
    }
    assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
}

#[test]
fn rejects_truncation_and_garbage() {
    assert_eq!(decode(b""), Err(BencodeError::Eof(0)));
    assert_eq!(decode(b"l1:a"), Err(BencodeError::Eof(4)));
    assert!(matches!(
        decode(b"5:abc"),
        Err(BencodeError::StringTooLong { .. })
    ));
    assert!(matches!(
        decode(b"x"),
        Err(BencodeError::UnexpectedByte { byte: b'x', pos: 0 })
    ));
    assert!(matches!(decode(b"01:a"), Err(BencodeError::BadLength(0))));
    assert_eq!(decode(b"i1ei2e"), Err(BencodeError::Trailing(3)));
    assert!(matches!(
        decode(b"di1ei2ee"),
        Err(BencodeError::KeyNotString(1))
    ));
    assert!(matches!(
        decode(b"d1:ai1e1:ai2ee"),
        Err(BencodeError::DuplicateKey { .. })
    ));
    assert!(matches!(
        decode(b"99999999999999999999999:a"),
        Err(BencodeError::BadLength(0))
    ));
}

#[test]
fn depth_limit() {
    let deep = [vec![b'l'; MAX_DEPTH + 2], vec![b'e'; MAX_DEPTH + 2]].concat();
    assert!(matches!(decode(&deep), Err(BencodeError::TooDeep(_))));
    let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
    assert!(decode(&ok).is_ok());
}

#[test]
fn span_of_info() {
    let buf = b"d8:announce3:abc4:infod4:name1:xee";
    let span = dict_value_span(buf, b"info").unwrap().unwrap();
    assert_eq!(&buf[span], b"d4:name1:xe");
    assert_eq!(dict_value_span(buf, b"nope").unwrap(), None);
    assert!(dict_value_span(b"li1ee", b"info").is_err());
}

#[test]
fn prefix_leaves_rest() {
    let (v, n) = decode_prefix(b"d1:ai1eeRAW").unwrap();
    assert_eq!(v.get("a").and_then(Value::as_int), Some(1));
    assert_eq!(n, 8);
}
