//! Hex: round trips in either case, and what `decode_20` says is wrong.

use minitorrent_common::hex::{decode_20, digit, encode, push_hex, HexError};

#[test]
fn round_trips_and_accepts_either_case() {
    let hx = "00ff10a0b1c2d3e4f5061728394a5b6c7d8e9fAB";
    let parsed = decode_20(hx).unwrap();
    assert_eq!(encode(&parsed), hx.to_lowercase());
    let mut buf = b"x".to_vec();
    push_hex(&mut buf, &parsed);
    assert_eq!(buf, format!("x{}", hx.to_lowercase()).as_bytes());
    assert_eq!(encode(&[]), "");
    let all: Vec<u8> = (0..=255).collect();
    let text = encode(&all);
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        assert_eq!(pair, format!("{i:02x}").as_bytes());
    }
}

#[test]
fn names_what_is_wrong() {
    let hx = "00ff10a0b1c2d3e4f5061728394a5b6c7d8e9fab";
    assert_eq!(decode_20(&hx[1..]), Err(HexError::Length(39)));
    assert_eq!(decode_20(""), Err(HexError::Length(0)));
    // 20 two-byte characters are 40 bytes, none of them a digit.
    assert_eq!(
        decode_20("é".repeat(20).as_str()),
        Err(HexError::Digit {
            index: 0,
            byte: 0xc3
        })
    );
    let not_hex = format!("{}zz", &hx[..38]);
    assert_eq!(
        decode_20(&not_hex),
        Err(HexError::Digit {
            index: 38,
            byte: b'z'
        })
    );
    for c in 0..=255u8 {
        assert_eq!(digit(c).is_some(), c.is_ascii_hexdigit(), "{c}");
    }
}
