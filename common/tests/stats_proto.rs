//! `STATS` and the `stats_every` field of `OK`: round trips, the documented
//! example, the caps (the largest STATS still fits one datagram), and every
//! malformed STATS rejected with a message naming the field.

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    DecodeErrorKind, Reply, Request, StatsEdge, StatsFile, MAX_REPLY_SIZE, MAX_STATS_EDGES,
    MAX_STATS_FILES, MAX_STATS_PIECES,
};

fn h(byte: u8) -> InfoHash {
    InfoHash([byte; 20])
}

fn file(byte: u8) -> StatsFile {
    StatsFile {
        info_hash: h(byte),
        size: 1_000_000,
        done: 262_144,
        pieces: 4,
        have: Some(vec![0b1000_0000]),
        down: 52_428,
        up: 0,
        peers: vec![
            StatsEdge {
                addr: "127.0.0.1:6881".parse().unwrap(),
                sent: 0,
                recv: 262_144,
            },
            StatsEdge {
                addr: "[::1]:7000".parse().unwrap(),
                sent: 16_384,
                recv: 0,
            },
        ],
        truncated: false,
    }
}

fn stats(files: Vec<StatsFile>) -> Request {
    Request::Stats {
        tid: 7,
        peer_id: "-MN0100-abc".into(),
        files,
    }
}

/// The error message of decoding `json`, which must fail as `bad_request`
/// with the tid echoed.
fn refused(json: &str) -> String {
    match Request::decode(json.as_bytes()) {
        Ok(r) => panic!("decoded {r:?} from {json}"),
        Err(e) => {
            assert_eq!(e.tid, Some(7), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn stats_round_trips() {
    let mut no_bits = file(2);
    no_bits.pieces = 0;
    no_bits.have = None;
    no_bits.peers.clear();
    no_bits.truncated = true;
    for r in [stats(vec![file(1)]), stats(vec![file(1), no_bits])] {
        let bytes = r.encode();
        assert_eq!(
            Request::decode(&bytes).unwrap(),
            r,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let summary = r.summary();
        assert!(summary.starts_with("STATS "), "{summary}");
        assert!(!summary.contains('\n'));
    }
}

#[test]
fn decodes_the_documented_example() {
    let json = format!(
        r#"{{"type":"STATS","tid":7,"peer_id":"-MN0100-abc","files":[{{"info_hash":"{}","size":1000000,"done":262144,"pieces":4,"have":"80","down":52428,"up":0,"peers":[{{"addr":"127.0.0.1:6881","sent":0,"recv":262144}},{{"addr":"[::1]:7000","sent":16384,"recv":0}}]}}]}}"#,
        h(1).to_hex()
    );
    assert_eq!(
        Request::decode(json.as_bytes()).unwrap(),
        stats(vec![file(1)])
    );
}

#[test]
fn ok_says_how_often_to_send_stats() {
    let asked = Reply::Ok {
        tid: 3,
        interval: 10,
        timeout: 30,
        stats_every: 1,
        web: None,
    };
    let bytes = asked.encode();
    assert!(String::from_utf8_lossy(&bytes).contains("\"stats_every\":1"));
    assert_eq!(Reply::decode(&bytes).unwrap(), asked);
    // 0 is not written: an older peer sees the OK it always saw, and an OK
    // without the field (an older tracker) asks for none.
    let idle = Reply::ok(3).encode();
    assert!(!String::from_utf8_lossy(&idle).contains("stats_every"));
    match Reply::decode(br#"{"type":"OK","tid":3,"interval":10,"timeout":30}"#).unwrap() {
        Reply::Ok { stats_every, .. } => assert_eq!(stats_every, 0),
        other => panic!("{other:?}"),
    }
    assert!(asked.summary().contains("stats_every=1s"));
}

#[test]
fn the_largest_stats_fits_one_datagram() {
    let big = StatsFile {
        info_hash: h(9),
        size: u64::MAX,
        done: u64::MAX,
        pieces: MAX_STATS_PIECES,
        have: Some(vec![0xff; MAX_STATS_PIECES as usize / 8]),
        down: u64::MAX,
        up: u64::MAX,
        peers: vec![
            StatsEdge {
                addr: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                    .parse()
                    .unwrap(),
                sent: u64::MAX,
                recv: u64::MAX,
            };
            MAX_STATS_EDGES
        ],
        truncated: true,
    };
    let files = (0..MAX_STATS_FILES as u8)
        .map(|i| StatsFile {
            info_hash: h(i),
            ..big.clone()
        })
        .collect();
    let mut r = stats(files);
    if let Request::Stats { peer_id, .. } = &mut r {
        *peer_id = "x".repeat(64);
    }
    let bytes = r.encode();
    assert!(bytes.len() <= MAX_REPLY_SIZE, "{} bytes", bytes.len());
    assert_eq!(Request::decode(&bytes).unwrap(), r);
}

#[test]
fn over_the_caps_is_refused() {
    let files = (0..=MAX_STATS_FILES as u8).map(file).collect();
    let e = Request::decode(&stats(files).encode()).unwrap_err();
    assert!(
        matches!(&e.kind, DecodeErrorKind::BadValue { field, .. } if field == "files"),
        "{e}"
    );
    assert!(e.to_string().contains("send several STATS"), "{e}");

    let mut f = file(1);
    f.peers = vec![f.peers[0]; MAX_STATS_EDGES + 1];
    let e = Request::decode(&stats(vec![f]).encode()).unwrap_err();
    assert!(e.to_string().contains("files[0].peers"), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    let e = Request::decode(&stats(Vec::new()).encode()).unwrap_err();
    assert!(e.to_string().contains("1 to 4 files"), "{e}");
}

#[test]
fn malformed_stats_name_the_field() {
    let hash = h(1).to_hex();
    let with = |fields: &str| {
        format!(
            r#"{{"type":"STATS","tid":7,"peer_id":"p","files":[{{"info_hash":"{hash}",{fields}}}]}}"#
        )
    };
    let base = r#""size":100,"done":10,"pieces":3,"down":1,"up":2"#;
    // Sanity: the base decodes.
    assert!(Request::decode(with(base).as_bytes()).is_ok());

    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"type":"STATS","tid":7,"files":[]}"#.to_string(),
            "missing field `peer_id`",
        ),
        (
            r#"{"type":"STATS","tid":7,"peer_id":"p"}"#.to_string(),
            "missing field `files`",
        ),
        (
            with(r#""size":100,"done":10,"pieces":3,"up":2"#),
            "missing field `files[0].down`",
        ),
        (
            with(r#""size":100,"done":101,"pieces":3,"down":1,"up":2"#),
            "`files[0].done` must be at most `size` (100)",
        ),
        (
            with(&format!(r#"{base},"have":"e0e0""#)),
            "must be 2 hex digits for 3 pieces",
        ),
        (with(&format!(r#"{base},"have":"zz""#)), "hex digits only"),
        (
            with(&format!(r#"{base},"have":"f0""#)),
            "bits set past piece 2",
        ),
        (
            with(r#""size":100,"done":10,"pieces":0,"down":1,"up":2,"have":"""#),
            "allowed only for 1 to 16384 pieces",
        ),
        (
            with(&format!(
                r#"{base},"peers":[{{"addr":"nowhere","sent":1,"recv":2}}]"#
            )),
            "`files[0].peers[0].addr` must be IP:PORT",
        ),
        (
            with(&format!(
                r#"{base},"peers":[{{"addr":"1.2.3.4:5","sent":1}}]"#
            )),
            "missing field `files[0].peers[0].recv`",
        ),
        (
            with(r#""size":"big","done":10,"pieces":3,"down":1,"up":2"#),
            "`files[0].size` must be a non-negative integer",
        ),
        (
            format!(
                r#"{{"type":"STATS","tid":7,"peer_id":"p","files":[{{"info_hash":"{hash}",{base}}},{{"info_hash":"{hash}",{base}}}]}}"#
            ),
            "`files[1].info_hash` names a file already listed",
        ),
    ];
    for (json, want) in cases {
        let msg = refused(&json);
        assert!(msg.contains(want), "{json}\n  gave: {msg}\n  want: {want}");
    }
}
