//! Magnet links: parsing real-world forms, round trips, and each error.

use minitorrent_common::magnet::{Magnet, MagnetError};
use minitorrent_common::metainfo::{InfoHash, Metainfo};

const HEX: &str = "8d2d8e53c5148b9ea4d22662f43a74a37b6c26e8";
// The same 20 bytes in RFC 4648 base32, from Python's base64.b32encode.
const B32: &str = "RUWY4U6FCSFZ5JGSEZRPIOTUUN5WYJXI";

fn hash() -> InfoHash {
    InfoHash::from_hex(HEX).unwrap()
}

#[test]
fn parses_hex_btih() {
    let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}")).unwrap();
    assert_eq!(m.info_hash, hash());
    assert_eq!(m.name, None);
    assert!(m.trackers.is_empty());
    assert!(m.peers.is_empty());
}

#[test]
fn parses_uppercase_hex_and_scheme() {
    let m = Magnet::parse(&format!("MAGNET:?xt=URN:BTIH:{}", HEX.to_uppercase())).unwrap();
    assert_eq!(m.info_hash, hash());
}

#[test]
fn parses_base32_btih() {
    let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{B32}")).unwrap();
    assert_eq!(m.info_hash, hash());
    let lower = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", B32.to_lowercase())).unwrap();
    assert_eq!(lower.info_hash, hash());
}

#[test]
fn parses_name_trackers_and_peers() {
    let uri = format!(
        "magnet:?xt=urn:btih:{HEX}&dn=Lab+3%3A%20sockets%E2%9C%93\
         &tr=udp%3A%2F%2F127.0.0.1%3A6969&tr=udp://10.0.0.2:6969/announce\
         &tr.1=http%3A%2F%2Fh%2Fa%2Bb&x.pe=10.0.0.5:6881&x.pe=%5B%3A%3A1%5D%3A6881\
         &xl=1234&ws=http%3A%2F%2Fmirror&so=0-3&&"
    );
    let m = Magnet::parse(&uri).unwrap();
    assert_eq!(m.name.as_deref(), Some("Lab 3: sockets✓"));
    assert_eq!(
        m.trackers,
        vec![
            "udp://127.0.0.1:6969",
            "udp://10.0.0.2:6969/announce",
            "http://h/a+b"
        ]
    );
    assert_eq!(m.peers, vec!["10.0.0.5:6881", "[::1]:6881"]);
}

#[test]
fn plus_is_a_space_only_in_dn() {
    let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=a+b&tr=udp://x+y:1")).unwrap();
    assert_eq!(m.name.as_deref(), Some("a b"));
    assert_eq!(m.trackers, vec!["udp://x+y:1"]);
}

#[test]
fn hybrid_link_uses_the_v1_hash() {
    let uri = format!(
        "magnet:?xt=urn:btmh:1220{}&xt=urn:btih:{HEX}&dn=x",
        "ab".repeat(32)
    );
    assert_eq!(Magnet::parse(&uri).unwrap().info_hash, hash());
    // The same hash twice (hex and base32) is not a conflict.
    let twice = format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{B32}");
    assert_eq!(Magnet::parse(&twice).unwrap().info_hash, hash());
}

#[test]
fn round_trips_through_to_uri() {
    let m = Magnet {
        info_hash: hash(),
        name: Some("my files & notes/100% é+".into()),
        trackers: vec!["udp://127.0.0.1:6969".into(), "udp://[::1]:7000".into()],
        peers: vec!["192.168.1.9:6881".into()],
    };
    let uri = m.to_uri();
    assert!(uri.starts_with(&format!("magnet:?xt=urn:btih:{HEX}&dn=")));
    assert!(uri.contains("&tr=udp%3A%2F%2F127.0.0.1%3A6969"), "{uri}");
    assert!(!uri.contains(' ') && !uri.contains('+'), "{uri}");
    assert_eq!(Magnet::parse(&uri).unwrap(), m);

    let bare = Magnet {
        info_hash: hash(),
        name: None,
        trackers: vec![],
        peers: vec![],
    };
    assert_eq!(bare.to_uri(), format!("magnet:?xt=urn:btih:{HEX}"));
    assert_eq!(Magnet::parse(&bare.to_uri()).unwrap(), bare);
}

/// Trackers of every kind keep their order, path and query (a passkey)
/// through a link and back.
#[test]
fn several_trackers_of_each_kind_round_trip() {
    let m = Magnet {
        info_hash: hash(),
        name: Some("f.bin".into()),
        trackers: vec![
            "http://10.0.0.1:8080/announce?passkey=a%20b&x=1".into(),
            "udp://10.0.0.2:6969/announce".into(),
            "10.0.0.3:7000".into(),
        ],
        peers: vec![],
    };
    let uri = m.to_uri();
    assert_eq!(uri.matches("&tr=").count(), 3, "{uri}");
    assert_eq!(Magnet::parse(&uri).unwrap(), m);
}

#[test]
fn from_metainfo_collects_trackers() {
    let mut t = Metainfo::from_bytes(include_bytes!("fixtures/single.torrent")).unwrap();
    t.announce_list = vec![
        vec!["udp://127.0.0.1:6969".into(), "udp://b:1".into()],
        vec!["udp://c:2".into()],
    ];
    let m = Magnet::from_metainfo(&t);
    assert_eq!(m.info_hash, hash());
    assert_eq!(m.name.as_deref(), Some("pattern.bin"));
    assert_eq!(
        m.trackers,
        vec!["udp://127.0.0.1:6969", "udp://b:1", "udp://c:2"]
    );
    assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
}

#[test]
fn rejects_non_magnet() {
    for s in [
        "",
        "http://example.com/?xt=urn:btih:x",
        "magnet:",
        "magnet:xt=1",
    ] {
        assert!(
            matches!(Magnet::parse(s), Err(MagnetError::NotMagnet(_))),
            "{s:?}"
        );
    }
    let e = Magnet::parse("http://x").unwrap_err().to_string();
    assert!(e.starts_with("not a magnet URI"), "{e}");
}

#[test]
fn rejects_missing_xt() {
    assert_eq!(
        Magnet::parse("magnet:?dn=x&tr=udp://a:1"),
        Err(MagnetError::MissingXt)
    );
    assert_eq!(Magnet::parse("magnet:?"), Err(MagnetError::MissingXt));
}

#[test]
fn rejects_unsupported_xt() {
    let btmh = format!("urn:btmh:1220{}", "ab".repeat(32));
    let e = Magnet::parse(&format!("magnet:?xt={btmh}&dn=x")).unwrap_err();
    assert_eq!(e, MagnetError::UnsupportedXt(btmh));
    assert!(e.to_string().contains("only urn:btih"), "{e}");
    assert!(matches!(
        Magnet::parse("magnet:?xt=urn:sha1:ABC"),
        Err(MagnetError::UnsupportedXt(_))
    ));
}

#[test]
fn rejects_conflicting_btih() {
    let other = "00".repeat(20);
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}")),
        Err(MagnetError::ConflictingXt)
    );
}

#[test]
fn rejects_bad_hash_length() {
    for h in ["", "abc", &HEX[1..], &format!("{HEX}0"), &B32[1..]] {
        let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{h}")).unwrap_err();
        assert_eq!(e, MagnetError::BadHashLength(h.to_string()));
    }
    let e = Magnet::parse("magnet:?xt=urn:btih:abc").unwrap_err();
    assert_eq!(
        e.to_string(),
        "btih info hash 'abc' has 3 characters; expected 40 hex or 32 base32"
    );
}

#[test]
fn rejects_bad_hex_character() {
    let bad = format!("{}g", &HEX[..39]);
    let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")).unwrap_err();
    assert_eq!(e, MagnetError::BadHex { hash: bad, ch: 'g' });
    assert!(e.to_string().contains("not a hex digit"));
}

#[test]
fn rejects_bad_base32_character() {
    // '1', '8', '0' and '=' are outside the RFC 4648 alphabet.
    for ch in ['1', '8', '0', '='] {
        let bad = format!("{}{ch}", &B32[..31]);
        let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{bad}")).unwrap_err();
        assert_eq!(e, MagnetError::BadBase32 { hash: bad, ch });
    }
}

#[test]
fn rejects_bad_percent_encoding() {
    for dn in ["%", "%4", "%zz", "a%g1"] {
        let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn={dn}")).unwrap_err();
        assert_eq!(e, MagnetError::BadPercent { param: "dn".into() }, "{dn}");
    }
    let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&tr=udp%3")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad percent-encoding in magnet parameter 'tr': '%' must be followed by two hex digits"
    );
    assert!(matches!(
        Magnet::parse("magnet:?xt=urn%3xbtih"),
        Err(MagnetError::BadPercent { .. })
    ));
}

#[test]
fn rejects_non_utf8_after_decoding() {
    let e = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%FF%FE")).unwrap_err();
    assert_eq!(e, MagnetError::NotUtf8 { param: "dn".into() });
}

#[test]
fn never_panics_on_odd_input() {
    for s in [
        "magnet:?xt",
        "magnet:?=",
        "magnet:?xt=",
        "magnet:?xt=urn:btih:",
        "magnet:?&&&=&=",
        "magnet:?xt=urn:btih:é",
        "magnet:?xt=urn:btihé",
        "magnét:?",
        "magnet:?xt=urn:btih:ééééééééééééééééééééé",
    ] {
        let _ = Magnet::parse(s);
    }
}
