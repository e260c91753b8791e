//! The BEP 15 packets through the public API: round trips, known bytes, and
//! the ways a packet can be malformed.

use std::net::{Ipv4Addr, SocketAddr};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::*;

fn announce() -> AnnounceRequest {
    AnnounceRequest {
        connection_id: 0x8123_4567_89ab_cdef,
        transaction_id: 0xdead_beef,
        info_hash: InfoHash([0xab; 20]),
        peer_id: *b"-qB4650-abcdefghijkl",
        downloaded: 1,
        left: 2,
        uploaded: 3,
        event: Event::Started,
        ip: Ipv4Addr::UNSPECIFIED,
        key: 77,
        num_want: -1,
        port: 6881,
    }
}

#[test]
fn requests_round_trip() {
    let reqs = [
        Request::Connect { transaction_id: 5 },
        Request::Announce(announce()),
        Request::Announce(AnnounceRequest {
            event: Event::Stopped,
            num_want: 200,
            ip: Ipv4Addr::new(1, 2, 3, 4),
            ..announce()
        }),
        Request::Scrape {
            connection_id: 9,
            transaction_id: 10,
            info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        },
    ];
    for r in reqs {
        let b = r.encode();
        assert_eq!(Request::decode(&b).unwrap(), r);
        assert!(!r.summary().contains('\n'));
    }
}

#[test]
fn known_bytes_of_a_connect_request() {
    let b = Request::Connect {
        transaction_id: 0x0102_0304,
    }
    .encode();
    assert_eq!(
        b,
        [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
    );
    assert_eq!(
        Request::encode(&Request::Announce(announce())).len(),
        ANNOUNCE_LEN
    );
}

#[test]
fn responses_round_trip() {
    let v4 = vec![
        Response::Connect {
            transaction_id: 1,
            connection_id: u64::MAX,
        },
        Response::Announce {
            transaction_id: 2,
            interval: 10,
            leechers: 3,
            seeders: 4,
            peers: vec![
                "1.2.3.4:5".parse().unwrap(),
                "10.0.0.1:6881".parse().unwrap(),
            ],
        },
        Response::Announce {
            transaction_id: 2,
            interval: 10,
            leechers: 0,
            seeders: 0,
            peers: vec![],
        },
        Response::Scrape {
            transaction_id: 3,
            stats: vec![
                ScrapeStats {
                    seeders: 1,
                    completed: 2,
                    leechers: 3,
                },
                ScrapeStats::default(),
            ],
        },
        Response::Error {
            transaction_id: 4,
            message: "port 0".into(),
        },
    ];
    for r in v4 {
        let b = r.encode(false);
        assert_eq!(Response::decode(&b, false).unwrap(), r);
        assert!(!r.summary().contains('\n'));
    }
    let v6 = Response::Announce {
        transaction_id: 2,
        interval: 10,
        leechers: 3,
        seeders: 4,
        peers: vec![
            "[::1]:5".parse().unwrap(),
            "[2001:db8::7]:6881".parse().unwrap(),
        ],
    };
    let b = v6.encode(true);
    assert_eq!(b.len(), 20 + 2 * PEER_V6_LEN);
    assert_eq!(Response::decode(&b, true).unwrap(), v6);
}

#[test]
fn known_bytes_of_a_scrape_response() {
    let stats = [
        ScrapeStats {
            seeders: 1,
            completed: 2,
            leechers: 0x0304_0506,
        },
        ScrapeStats::default(),
    ];
    let mut b = vec![0xee];
    encode_scrape_response(&mut b, 0x0a0b_0c0d, stats);
    assert_eq!(
        b,
        [
            0xee, 0, 0, 0, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 1, 0, 0, 0, 2, 3, 4, 5, 6, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    let r = Response::Scrape {
        transaction_id: 0x0a0b_0c0d,
        stats: stats.to_vec(),
    };
    assert_eq!(r.encode(false), b[1..]);
}

#[test]
fn announce_response_skips_the_other_family() {
    let mut b = Vec::new();
    let peers: Vec<SocketAddr> = vec!["1.2.3.4:5".parse().unwrap(), "[::1]:6".parse().unwrap()];
    encode_announce_response(&mut b, 1, 10, 0, 0, peers.iter().copied(), false);
    assert_eq!(b.len(), 20 + PEER_V4_LEN);
    b.clear();
    encode_announce_response(&mut b, 1, 10, 0, 0, peers.iter().copied(), true);
    assert_eq!(b.len(), 20 + PEER_V6_LEN);
}

#[test]
fn bep41_options_after_an_announce_are_ignored() {
    let mut b = Request::Announce(announce()).encode();
    b.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o', 0x01, 0x00]);
    assert_eq!(Request::decode(&b).unwrap(), Request::Announce(announce()));
}

#[test]
fn truncated_requests_are_rejected() {
    let full = Request::Announce(announce()).encode();
    for len in [0, 1, 8, 15] {
        assert!(
            matches!(
                Request::decode(&full[..len]),
                Err(UdpError::TooShort { need: 16, .. })
            ),
            "{len}"
        );
    }
    for len in [16, 50, 97] {
        assert_eq!(
            Request::decode(&full[..len]),
            Err(UdpError::TooShort {
                what: "announce request",
                len,
                need: ANNOUNCE_LEN
            })
        );
    }
    let scrape = Request::Scrape {
        connection_id: 1,
        transaction_id: 2,
        info_hashes: vec![InfoHash([1; 20])],
    }
    .encode();
    assert_eq!(Request::decode(&scrape[..16]), Err(UdpError::NoInfoHash));
    assert!(matches!(
        Request::decode(&scrape[..30]),
        Err(UdpError::Ragged { extra: 14, .. })
    ));
}

#[test]
fn malformed_requests_are_rejected() {
    let mut c = Request::Connect { transaction_id: 1 }.encode();
    c[0] = 1;
    assert!(matches!(
        Request::decode(&c),
        Err(UdpError::BadProtocolId(_))
    ));
    let mut a = Request::Announce(announce()).encode();
    a[83] = 9;
    assert_eq!(Request::decode(&a), Err(UdpError::BadEvent(9)));
    let mut x = Request::Connect { transaction_id: 1 }.encode();
    x[11] = 7;
    assert_eq!(Request::decode(&x), Err(UdpError::UnknownAction(7)));
    x[11] = 3;
    assert!(matches!(
        Request::decode(&x),
        Err(UdpError::WrongDirection(..))
    ));
    let mut s = vec![0u8; 16 + 75 * 20];
    s[11] = 2;
    assert_eq!(Request::decode(&s), Err(UdpError::TooManyInfoHashes(75)));
}

#[test]
fn malformed_responses_are_rejected() {
    assert!(matches!(
        Response::decode(&[0, 0, 0], false),
        Err(UdpError::TooShort { .. })
    ));
    let connect = Response::Connect {
        transaction_id: 1,
        connection_id: 2,
    }
    .encode(false);
    assert!(matches!(
        Response::decode(&connect[..12], false),
        Err(UdpError::TooShort { .. })
    ));
    let ann = Response::Announce {
        transaction_id: 2,
        interval: 10,
        leechers: 3,
        seeders: 4,
        peers: vec!["1.2.3.4:5".parse().unwrap()],
    }
    .encode(false);
    assert!(matches!(
        Response::decode(&ann[..19], false),
        Err(UdpError::TooShort { .. })
    ));
    assert!(matches!(
        Response::decode(&ann[..23], false),
        Err(UdpError::Ragged { .. })
    ));
    // 6 bytes of peers is not a whole IPv6 entry.
    assert!(matches!(
        Response::decode(&ann, true),
        Err(UdpError::Ragged { .. })
    ));
    let mut bad = ann.clone();
    bad[3] = 9;
    assert_eq!(
        Response::decode(&bad, false),
        Err(UdpError::UnknownAction(9))
    );
    let scrape = [0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0];
    assert!(matches!(
        Response::decode(&scrape, false),
        Err(UdpError::Ragged { .. })
    ));
    // Error text need not be UTF-8.
    let e = Response::decode(&[0, 0, 0, 3, 0, 0, 0, 1, b'o', 0xff], false).unwrap();
    assert_eq!(
        e,
        Response::Error {
            transaction_id: 1,
            message: "o\u{fffd}".into()
        }
    );
}

#[test]
fn peer_ids_as_text() {
    assert_eq!(
        peer_id_text(b"-qB4650-abcdefghijkl"),
        "-qB4650-abcdefghijkl"
    );
    let mut raw = *b"-TR3000-abcdefghijkl";
    raw[8] = 0;
    raw[9] = 0xff;
    raw[10] = b'%';
    assert_eq!(peer_id_text(&raw), "-TR3000-%00%FF%25defghijkl");
    assert_eq!(peer_id_text(&[0xab; 20]).len(), 60);
}

/// BEP 41: a tracker URL's path and query ride after the announce as
/// URLData options of at most 255 bytes, which a tracker reading the
/// announce skips.
#[test]
fn url_data_options_carry_the_path_in_chunks() {
    use minitorrent_common::udp_tracker::{url_data_options, OPTION_URL_DATA};
    assert!(url_data_options(b"").is_empty());
    assert_eq!(
        url_data_options(b"/announce?passkey=abc"),
        [&[OPTION_URL_DATA, 21][..], b"/announce?passkey=abc"].concat()
    );
    let long = vec![b'x'; 300];
    let o = url_data_options(&long);
    assert_eq!(o.len(), 2 + 255 + 2 + 45);
    assert_eq!((o[0], o[1]), (OPTION_URL_DATA, 255));
    assert_eq!((o[257], o[258]), (OPTION_URL_DATA, 45));
}
