//! The BitTorrent UDP tracker protocol (BEP 15) against the real binary, and
//! its swarms shared with the JSON protocol.

mod common;

use std::time::Duration;

use common::{eventually, Bep15, Client, TrackerProc};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{ErrorCode, FileInfo, FileRef, Reply, Request};
use minitorrent_common::udp_tracker::{self as udp, Event};

fn hash(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

/// A STARTED announce of swarm `b` for port 6881, built by hand so that a
/// test can spoil it before sending.
fn started_announce(connection_id: u64, tid: u32, b: u8) -> udp::Request {
    udp::Request::Announce(udp::AnnounceRequest {
        connection_id,
        transaction_id: tid,
        info_hash: hash(b),
        peer_id: *b"-qB4650-abcdefghijkl",
        downloaded: 0,
        left: 0,
        uploaded: 0,
        event: Event::Started,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: 0,
        num_want: -1,
        port: 6881,
    })
}

fn json_register(c: &Client, tid: u32, peer_id: &str, port: u16, b: u8, complete: bool) {
    let r = c.ask(&Request::Register {
        tid,
        peer_id: peer_id.into(),
        port,
        files: vec![FileInfo {
            info_hash: hash(b),
            name: format!("file-{b}.bin"),
            size: 1000,
            complete,
        }],
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
}

fn json_peers(c: &Client, tid: u32, b: u8) -> Option<Vec<(String, String, bool)>> {
    match c.ask(&Request::Request {
        tid,
        file: FileRef::InfoHash(hash(b)),
        peer_id: None,
    }) {
        Reply::Peers { peers, .. } => {
            let mut v: Vec<_> = peers
                .into_iter()
                .map(|p| (p.addr.to_string(), p.peer_id, p.complete))
                .collect();
            v.sort();
            Some(v)
        }
        Reply::Error {
            code: ErrorCode::NotFound,
            ..
        } => None,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bep15_announcer_appears_in_json_replies() {
    let t = TrackerProc::start(&[]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    let r = bt.announce(
        1,
        hash(1),
        b"-qB4650-abcdefghijkl",
        6881,
        0,
        Event::Started,
        -1,
    );
    match r {
        udp::Response::Announce {
            transaction_id,
            interval,
            seeders,
            leechers,
            peers,
        } => {
            assert_eq!((transaction_id, interval, seeders, leechers), (1, 10, 1, 0));
            assert!(peers.is_empty(), "the announcer is not listed to itself");
        }
        other => panic!("{other:?}"),
    }
    let c = Client::new(t.addr);
    assert_eq!(
        json_peers(&c, 2, 1),
        Some(vec![(
            "127.0.0.1:6881".into(),
            "-qB4650-abcdefghijkl".into(),
            true
        )])
    );
    // A binary peer id shows percent-encoded.
    let mut raw = *b"-TR3000-abcdefghijkl";
    raw[8] = 0xff;
    bt.announce(3, hash(1), &raw, 6882, 500, Event::None, -1);
    let peers = json_peers(&c, 4, 1).unwrap();
    assert!(
        peers.contains(&(
            "127.0.0.1:6882".into(),
            "-TR3000-%FFbcdefghijkl".into(),
            false
        )),
        "{peers:?}"
    );
    // The swarm has no name until a JSON peer registers it.
    match c.ask(&Request::Search {
        tid: 5,
        query: String::new(),
    }) {
        Reply::Files { files, .. } => {
            assert_eq!(files.len(), 1);
            assert_eq!(
                (files[0].name.as_str(), files[0].seeders, files[0].leechers),
                ("", 1, 1)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_json_peer_appears_in_announces_and_scrapes() {
    let t = TrackerProc::start(&[]);
    let c = Client::new(t.addr);
    json_register(&c, 1, "-MN0100-jsonpeer0001", 7001, 2, true);
    json_register(&c, 2, "-MN0100-jsonpeer0002", 7002, 2, false);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    match bt.announce(
        3,
        hash(2),
        b"-qB4650-abcdefghijkl",
        6881,
        100,
        Event::Started,
        50,
    ) {
        udp::Response::Announce {
            seeders,
            leechers,
            mut peers,
            ..
        } => {
            assert_eq!((seeders, leechers), (1, 2));
            peers.sort();
            assert_eq!(
                peers,
                [
                    "127.0.0.1:7001".parse().unwrap(),
                    "127.0.0.1:7002".parse().unwrap()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let scrape = bt.ask(&udp::Request::Scrape {
        connection_id: bt.connection_id,
        transaction_id: 4,
        info_hashes: vec![hash(2), hash(9)],
    });
    assert_eq!(
        scrape,
        udp::Response::Scrape {
            transaction_id: 4,
            stats: vec![
                udp::ScrapeStats {
                    seeders: 1,
                    completed: 0,
                    leechers: 2
                },
                udp::ScrapeStats::default()
            ]
        }
    );
}

#[test]
fn num_want_is_honoured_up_to_max_peers() {
    let t = TrackerProc::start(&["--max-peers", "7"]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    for i in 0..20u8 {
        let mut id = *b"-LD0001-000000000000";
        id[19] = b'a' + i;
        bt.announce(
            u32::from(i),
            hash(3),
            &id,
            7000 + u16::from(i),
            0,
            Event::Started,
            0,
        );
    }
    let me = b"-LD0001-me0000000000";
    for (want, expect) in [(3, 3), (-1, 7), (0, 7), (100, 7)] {
        match bt.announce(100, hash(3), me, 6000, 10, Event::None, want) {
            udp::Response::Announce { peers, seeders, .. } => {
                assert_eq!(peers.len(), expect, "num_want {want}");
                assert_eq!(seeders, 20);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn invalid_connection_ids_get_no_reply() {
    let t = TrackerProc::start(&[]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    let mut req = started_announce(bt.connection_id ^ 0x1234, 1, 4);
    assert!(bt
        .send_raw(&req.encode(), Duration::from_millis(700))
        .is_none());
    // A connection id issued to another address is refused too.
    let other = Bep15::connect("127.0.0.2:0", t.addr);
    if let udp::Request::Announce(a) = &mut req {
        a.connection_id = other.connection_id;
    }
    assert!(bt
        .send_raw(&req.encode(), Duration::from_millis(700))
        .is_none());
    let scrape = udp::Request::Scrape {
        connection_id: 0x8000_0000_0000_0001,
        transaction_id: 2,
        info_hashes: vec![hash(4)],
    };
    assert!(bt
        .send_raw(&scrape.encode(), Duration::from_millis(700))
        .is_none());
    // A connect with the wrong magic is not answered either.
    let mut connect = udp::Request::Connect { transaction_id: 3 }.encode();
    connect[7] ^= 1;
    assert!(bt.send_raw(&connect, Duration::from_millis(700)).is_none());
    // Nothing was registered, and the tracker still serves.
    let c = Client::new(t.addr);
    assert_eq!(json_peers(&c, 9, 4), None);
}

#[test]
fn port_zero_and_malformed_packets_get_error_packets() {
    let t = TrackerProc::start(&[]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    match bt.announce(
        5,
        hash(5),
        b"-qB4650-abcdefghijkl",
        0,
        0,
        Event::Started,
        -1,
    ) {
        udp::Response::Error {
            transaction_id,
            message,
        } => {
            assert_eq!(transaction_id, 5);
            assert!(message.contains("port 0"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Truncated announce with a valid connection id.
    let mut bytes = started_announce(bt.connection_id, 6, 5).encode();
    match bt.send_raw(&bytes[..60], Duration::from_secs(2)) {
        Some(udp::Response::Error {
            transaction_id: 6,
            message,
        }) => assert!(message.contains("shorter than 98"), "{message}"),
        other => panic!("{other:?}"),
    }
    // BEP 41 options after the 98 bytes are fine.
    bytes.extend_from_slice(&[2, 3, b'/', b'a', b'b', 1, 0]);
    match bt.send_raw(&bytes, Duration::from_secs(2)) {
        Some(udp::Response::Announce {
            transaction_id: 6,
            seeders: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // The JSON side is unaffected.
    let c = Client::new(t.addr);
    assert_eq!(json_peers(&c, 7, 5).map(|p| p.len()), Some(1));
}

#[test]
fn stopped_removes_the_announcer() {
    let t = TrackerProc::start(&[]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    let c = Client::new(t.addr);
    bt.announce(
        1,
        hash(6),
        b"-qB4650-abcdefghijkl",
        6881,
        0,
        Event::Started,
        -1,
    );
    json_register(&c, 2, "-MN0100-jsonpeer0001", 7001, 6, false);
    assert_eq!(json_peers(&c, 3, 6).map(|p| p.len()), Some(2));
    match bt.announce(
        4,
        hash(6),
        b"-qB4650-abcdefghijkl",
        6881,
        0,
        Event::Stopped,
        -1,
    ) {
        udp::Response::Announce {
            seeders,
            leechers,
            peers,
            ..
        } => {
            assert_eq!((seeders, leechers), (0, 1));
            assert!(peers.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        json_peers(&c, 5, 6),
        Some(vec![(
            "127.0.0.1:7001".into(),
            "-MN0100-jsonpeer0001".into(),
            false
        )])
    );
    c.ask(&Request::Exit {
        tid: 6,
        peer_id: "-MN0100-jsonpeer0001".into(),
    });
    assert_eq!(json_peers(&c, 7, 6), None);
}

#[test]
fn announcers_expire_like_json_peers() {
    let t = TrackerProc::start(&["--peer-timeout", "1"]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    match bt.announce(
        1,
        hash(7),
        b"-qB4650-abcdefghijkl",
        6881,
        0,
        Event::Started,
        -1,
    ) {
        udp::Response::Announce { interval, .. } => {
            assert_eq!(interval, 1, "announce interval = heartbeat interval")
        }
        other => panic!("{other:?}"),
    }
    let c = Client::new(t.addr);
    let mut tid = 10;
    eventually("the announcer to expire", || {
        tid += 1;
        json_peers(&c, tid, 7).is_none()
    });
}

#[test]
fn ipv6_announces_use_18_byte_peers() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        println!("skipped: this machine cannot bind [::1]");
        return;
    }
    let t = TrackerProc::start_on("[::1]:0", &[]);
    let a = Bep15::connect("[::1]:0", t.addr);
    a.announce(
        1,
        hash(8),
        b"-qB4650-aaaaaaaaaaaa",
        6881,
        0,
        Event::Started,
        -1,
    );
    let b = Bep15::connect("[::1]:0", t.addr);
    // The decoder is told IPv6, so a 6-byte entry would fail to decode.
    match b.announce(
        2,
        hash(8),
        b"-qB4650-bbbbbbbbbbbb",
        6882,
        1,
        Event::Started,
        -1,
    ) {
        udp::Response::Announce {
            peers,
            seeders,
            leechers,
            ..
        } => {
            assert_eq!((seeders, leechers), (1, 1));
            assert_eq!(peers, ["[::1]:6881".parse().unwrap()]);
        }
        other => panic!("{other:?}"),
    }
    let c = Client::bound("[::1]:0", t.addr);
    let peers = json_peers(&c, 3, 8).unwrap();
    assert_eq!(peers[0].0, "[::1]:6881");
}

#[test]
fn trace_shows_bep15_packets() {
    let t = TrackerProc::start(&["--trace"]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    bt.announce(
        1,
        hash(9),
        b"-qB4650-abcdefghijkl",
        6881,
        0,
        Event::Started,
        -1,
    );
    t.wait_stderr("CONNECT (BEP 15)");
    t.wait_stderr(
        "ANNOUNCE 090909090909… peer=-qB4650-abcdefghijkl port=6881 left=0 event=started",
    );
    t.wait_stderr("ANNOUNCE reply interval=10s 1 seeders, 0 leechers, 0 peers");
}

#[test]
fn a_full_tracker_answers_new_swarms_with_an_error_packet() {
    let t = TrackerProc::start(&["--max-swarms", "1"]);
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    let id = b"-qB4650-abcdefghijkl";
    assert!(matches!(
        bt.announce(1, hash(1), id, 6881, 0, Event::Started, -1),
        udp::Response::Announce { seeders: 1, .. }
    ));
    match bt.announce(2, hash(2), id, 6881, 0, Event::Started, -1) {
        udp::Response::Error {
            transaction_id: 2,
            message,
        } => assert!(message.contains("tracker is full"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The swarm it has keeps working.
    assert!(matches!(
        bt.announce(3, hash(1), id, 6881, 0, Event::None, -1),
        udp::Response::Announce { seeders: 1, .. }
    ));
}
