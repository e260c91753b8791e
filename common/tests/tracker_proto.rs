//! The tracker's JSON protocol: every message round-trips, the documented
//! examples decode, every rejection names what was wrong (and echoes the tid
//! when it was readable), replies are cut to fit one datagram, and summaries
//! stay on one line.

use std::net::SocketAddr;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    encode_files_reply, encode_peers_reply, DecodeError, DecodeErrorKind, ErrorCode, FileInfo,
    FileRef, FileSummary, FileView, PeerEntry, PeerView, Reply, Request, SwarmView,
    MAX_DATAGRAM_SIZE, MAX_REPLY_SIZE, MAX_WEB_CHARS,
};
use serde_json::Value;

fn h(byte: u8) -> InfoHash {
    InfoHash([byte; 20])
}

fn hex_of(byte: u8) -> String {
    h(byte).to_hex()
}

fn err(bytes: &[u8]) -> DecodeError {
    match Request::decode(bytes) {
        Ok(r) => panic!("expected an error, decoded {r:?}"),
        Err(e) => e,
    }
}

fn err_str(s: &str) -> DecodeError {
    err(s.as_bytes())
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Register {
            tid: 1,
            peer_id: "-MN0100-abcdefghijkl".into(),
            port: 6881,
            files: vec![
                FileInfo {
                    info_hash: h(0xab),
                    name: "report.pdf".into(),
                    size: 4 * 1024 * 1024,
                    complete: true,
                },
                FileInfo {
                    info_hash: h(0x01),
                    name: "naïve \"quoted\" \\ name\n".replace('\n', ""),
                    size: 0,
                    complete: false,
                },
            ],
        },
        Request::Register {
            tid: u32::MAX,
            peer_id: "p".into(),
            port: 65535,
            files: vec![],
        },
        Request::Request {
            tid: 2,
            file: FileRef::InfoHash(h(0xcd)),
            peer_id: Some("me".into()),
        },
        Request::Request {
            tid: 3,
            file: FileRef::Name("a.txt".into()),
            peer_id: None,
        },
        Request::Search {
            tid: 4,
            query: "".into(),
        },
        Request::Search {
            tid: 5,
            query: "Rep".into(),
        },
        Request::Heartbeat {
            tid: 6,
            peer_id: "x".repeat(64),
        },
        Request::Exit {
            tid: 0,
            peer_id: "ünïcødé".into(),
        },
    ]
}

#[test]
fn every_request_round_trips() {
    for r in all_requests() {
        let bytes = r.encode();
        assert_eq!(
            Request::decode(&bytes).unwrap(),
            r,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        // And it is plain JSON any tool can read.
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], r.type_name());
        assert_eq!(v["tid"], r.tid());
    }
}

fn all_replies() -> Vec<Reply> {
    vec![
        Reply::ok(1),
        Reply::Ok {
            tid: 9,
            interval: 5,
            timeout: 15,
            stats_every: 0,
            web: None,
        },
        Reply::Ok {
            tid: 10,
            interval: 10,
            timeout: 30,
            stats_every: 1,
            web: None,
        },
        Reply::Ok {
            tid: 11,
            interval: 10,
            timeout: 30,
            stats_every: 0,
            web: Some("http://192.168.1.10:8080/".into()),
        },
        Reply::Ok {
            tid: 12,
            interval: 10,
            timeout: 30,
            stats_every: 1,
            web: Some("http://[fe80::1]:8080/\"q\"".into()),
        },
        Reply::Peers {
            tid: 2,
            info_hash: h(0xab),
            name: "report.pdf".into(),
            size: 123,
            seeders: 1,
            leechers: 1,
            peers: vec![
                PeerEntry {
                    addr: "127.0.0.1:6881".parse().unwrap(),
                    peer_id: "a".into(),
                    complete: true,
                },
                PeerEntry {
                    addr: "[::1]:7000".parse().unwrap(),
                    peer_id: "b\"c".into(),
                    complete: false,
                },
            ],
        },
        Reply::Peers {
            tid: 2,
            info_hash: h(0),
            name: "".into(),
            size: 0,
            seeders: 0,
            leechers: 0,
            peers: vec![],
        },
        Reply::Files {
            tid: 3,
            files: vec![FileSummary {
                info_hash: h(7),
                name: "x".into(),
                size: u64::MAX,
                seeders: 3,
                leechers: 4,
            }],
        },
        Reply::Files {
            tid: 3,
            files: vec![],
        },
        Reply::error(Some(4), ErrorCode::UnknownPeer, "who?"),
        Reply::error(None, ErrorCode::BadRequest, "not JSON"),
        Reply::error(Some(5), ErrorCode::NotFound, ""),
        Reply::error(Some(6), ErrorCode::Other("busy".into()), "later"),
    ]
}

#[test]
fn every_reply_round_trips() {
    for r in all_replies() {
        let bytes = r.encode();
        assert_eq!(
            Reply::decode(&bytes).unwrap(),
            r,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
    }
}

#[test]
fn decodes_the_documented_examples() {
    let reg = format!(
        r#"{{"type":"REGISTER","tid":1,"peer_id":"-MN0100-abc","port":6881,"files":[{{"info_hash":"{}","name":"a.txt","size":123,"complete":true}}]}}"#,
        hex_of(0xab).to_uppercase()
    );
    let r = Request::decode(reg.as_bytes()).unwrap();
    assert_eq!(
        r,
        Request::Register {
            tid: 1,
            peer_id: "-MN0100-abc".into(),
            port: 6881,
            files: vec![FileInfo {
                info_hash: h(0xab),
                name: "a.txt".into(),
                size: 123,
                complete: true
            }]
        }
    );
    let ok = Reply::decode(br#"{"type":"OK","tid":1,"interval":10,"timeout":30}"#).unwrap();
    assert_eq!(ok, Reply::ok(1));
    // Unknown fields and surrounding whitespace are tolerated.
    let s =
        Request::decode(b" {\"type\":\"SEARCH\",\"tid\":3,\"query\":\"rep\",\"extra\":[1,2]}\n")
            .unwrap();
    assert_eq!(
        s,
        Request::Search {
            tid: 3,
            query: "rep".into()
        }
    );
    // Escaped strings decode too.
    let e = Request::decode(br#"{"type":"EXIT","tid":5,"peer_id":"a\u0062c"}"#).unwrap();
    assert_eq!(
        e,
        Request::Exit {
            tid: 5,
            peer_id: "abc".into()
        }
    );
}

#[test]
fn too_large_is_rejected_before_parsing() {
    let big = vec![b' '; MAX_DATAGRAM_SIZE + 1];
    let e = err(&big);
    assert_eq!(e.kind, DecodeErrorKind::TooLarge(MAX_DATAGRAM_SIZE + 1));
    assert_eq!(e.tid, None);
    assert!(e.to_string().contains("65537 bytes"), "{e}");
}

#[test]
fn empty_and_whitespace_are_rejected() {
    assert_eq!(err(b"").kind, DecodeErrorKind::Empty);
    assert_eq!(err(b" \n").kind, DecodeErrorKind::Empty);
}

#[test]
fn not_utf8_is_rejected() {
    let e = err(b"{\"type\":\"SEARCH\",\"tid\":1,\"query\":\"\xff\"}");
    assert_eq!(e.kind, DecodeErrorKind::NotUtf8(34));
}

#[test]
fn not_json_is_rejected() {
    for bad in [
        "hello",
        "{",
        "{\"tid\":1,}",
        "{\"tid\":1} trailing",
        "{'tid':1}",
    ] {
        let e = err_str(bad);
        assert!(
            matches!(e.kind, DecodeErrorKind::NotJson(_)),
            "{bad}: {e:?}"
        );
        assert_eq!(e.tid, None);
        assert!(e.to_string().starts_with("not JSON: "), "{e}");
    }
}

#[test]
fn non_objects_are_rejected() {
    assert_eq!(
        err_str("[1,2]").kind,
        DecodeErrorKind::NotObject("an array")
    );
    assert_eq!(err_str("42").kind, DecodeErrorKind::NotObject("a number"));
    assert_eq!(
        err_str("\"REGISTER\"").kind,
        DecodeErrorKind::NotObject("a string")
    );
    assert_eq!(err_str("null").kind, DecodeErrorKind::NotObject("null"));
}

#[test]
fn missing_tid_or_type() {
    let e = err_str(r#"{"type":"SEARCH","query":""}"#);
    assert_eq!(e.kind, DecodeErrorKind::MissingField("tid".into()));
    assert_eq!(e.tid, None);
    let e = err_str(r#"{"type":"SEARCH","tid":null,"query":""}"#);
    assert_eq!(e.kind, DecodeErrorKind::MissingField("tid".into()));
    let e = err_str(r#"{"tid":7,"query":""}"#);
    assert_eq!(e.kind, DecodeErrorKind::MissingField("type".into()));
    assert_eq!(e.tid, Some(7));
}

#[test]
fn wrong_tid_types_are_named_and_not_echoed() {
    for bad in [r#""7""#, "-1", "1.5", "4294967296", "true", "[7]"] {
        let e = err_str(&format!(r#"{{"type":"SEARCH","tid":{bad},"query":""}}"#));
        assert_eq!(e.tid, None, "{bad}");
        match &e.kind {
            DecodeErrorKind::WrongType { field, .. } => assert_eq!(field, "tid"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn wrong_field_types_are_named_and_tid_echoed() {
    let hx = hex_of(1);
    let cases = [
        (r#"{"type":5,"tid":3}"#.to_string(), "type"),
        (
            r#"{"type":"HEARTBEAT","tid":3,"peer_id":42}"#.to_string(),
            "peer_id",
        ),
        (
            r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":"6881","files":[]}"#.to_string(),
            "port",
        ),
        (
            r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":70000,"files":[]}"#.to_string(),
            "port",
        ),
        (
            r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":-1,"files":[]}"#.to_string(),
            "port",
        ),
        (
            r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":{}}"#.to_string(),
            "files",
        ),
        (
            r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[7]}"#.to_string(),
            "files[0]",
        ),
        (
            format!(
                r#"{{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1,"complete":true}},{{"info_hash":"{hx}","name":"b","size":-5,"complete":true}}]}}"#
            ),
            "files[1].size",
        ),
        (
            format!(
                r#"{{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1,"complete":"yes"}}]}}"#
            ),
            "files[0].complete",
        ),
        (
            r#"{"type":"SEARCH","tid":3,"query":["a"]}"#.to_string(),
            "query",
        ),
        (
            r#"{"type":"REQUEST","tid":3,"info_hash":1}"#.to_string(),
            "info_hash",
        ),
    ];
    for (text, field_name) in cases {
        let e = err_str(&text);
        assert_eq!(e.tid, Some(3), "{text}");
        match &e.kind {
            DecodeErrorKind::WrongType { field, .. } => assert_eq!(field, field_name, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert!(e.to_string().contains(field_name), "{e}");
    }
}

#[test]
fn unknown_type_is_rejected() {
    let e = err_str(r#"{"type":"HELLO","tid":8}"#);
    assert_eq!(e.tid, Some(8));
    assert!(matches!(e.kind, DecodeErrorKind::UnknownType { ref found, .. } if found == "HELLO"));
    // Types are case-sensitive.
    let e = err_str(r#"{"type":"register","tid":8}"#);
    assert!(matches!(e.kind, DecodeErrorKind::UnknownType { .. }));
}

#[test]
fn bad_hex_is_rejected() {
    let too_short = "ab".repeat(19);
    let not_hex = format!("{}zz", "ab".repeat(19));
    for bad in [too_short.as_str(), not_hex.as_str(), "", "0x12"] {
        let e = err_str(&format!(
            r#"{{"type":"REQUEST","tid":2,"info_hash":"{bad}"}}"#
        ));
        assert_eq!(e.tid, Some(2));
        assert!(
            matches!(e.kind, DecodeErrorKind::BadValue { ref field, .. } if field == "info_hash"),
            "{bad}: {e:?}"
        );
        let e = err_str(&format!(
            r#"{{"type":"REGISTER","tid":2,"peer_id":"p","port":1,"files":[{{"info_hash":"{bad}","name":"a","size":1,"complete":true}}]}}"#
        ));
        assert!(
            matches!(e.kind, DecodeErrorKind::BadValue { ref field, .. } if field == "files[0].info_hash"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn missing_fields_are_named() {
    let hx = hex_of(1);
    let cases = [
        (
            r#"{"type":"REGISTER","tid":1,"port":1,"files":[]}"#.to_string(),
            "peer_id",
        ),
        (
            r#"{"type":"REGISTER","tid":1,"peer_id":"p","files":[]}"#.to_string(),
            "port",
        ),
        (
            r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":1}"#.to_string(),
            "files",
        ),
        (
            r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{"name":"a","size":1,"complete":true}]}"#.to_string(),
            "files[0].info_hash",
        ),
        (
            format!(
                r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","size":1,"complete":true}}]}}"#
            ),
            "files[0].name",
        ),
        (
            format!(
                r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","complete":true}}]}}"#
            ),
            "files[0].size",
        ),
        (
            format!(
                r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1}}]}}"#
            ),
            "files[0].complete",
        ),
        (
            r#"{"type":"REQUEST","tid":1}"#.to_string(),
            "info_hash` or `name",
        ),
        (r#"{"type":"SEARCH","tid":1}"#.to_string(), "query"),
        (r#"{"type":"HEARTBEAT","tid":1}"#.to_string(), "peer_id"),
        (
            r#"{"type":"EXIT","tid":1,"peer_id":null}"#.to_string(),
            "peer_id",
        ),
    ];
    for (text, field) in cases {
        let e = err_str(&text);
        assert_eq!(e.tid, Some(1), "{text}");
        assert_eq!(
            e.kind,
            DecodeErrorKind::MissingField(field.into()),
            "{text}"
        );
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}

#[test]
fn bad_values_are_rejected() {
    let long_id = "x".repeat(65);
    let long_name = "n".repeat(256);
    let long_query = "q".repeat(256);
    let hx = hex_of(1);
    let cases = [
        r#"{"type":"HEARTBEAT","tid":1,"peer_id":""}"#.to_string(),
        format!(r#"{{"type":"HEARTBEAT","tid":1,"peer_id":"{long_id}"}}"#),
        r#"{"type":"EXIT","tid":1,"peer_id":"a\u0000b"}"#.to_string(),
        r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":0,"files":[]}"#.to_string(),
        format!(
            r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"","size":1,"complete":true}}]}}"#
        ),
        format!(
            r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"{long_name}","size":1,"complete":true}}]}}"#
        ),
        r#"{"type":"REQUEST","tid":1,"name":""}"#.to_string(),
        r#"{"type":"REQUEST","tid":1,"name":"a","peer_id":""}"#.to_string(),
        format!(r#"{{"type":"SEARCH","tid":1,"query":"{long_query}"}}"#),
    ];
    for text in cases {
        let e = err_str(&text);
        assert_eq!(e.tid, Some(1), "{text}");
        assert!(
            matches!(e.kind, DecodeErrorKind::BadValue { .. }),
            "{text}: {e:?}"
        );
    }
    // 64 multi-byte characters are fine: the limit counts characters.
    let id = "é".repeat(64);
    assert!(
        Request::decode(format!(r#"{{"type":"EXIT","tid":1,"peer_id":"{id}"}}"#).as_bytes())
            .is_ok()
    );
}

#[test]
fn request_with_both_hash_and_name_is_rejected() {
    let e = err_str(&format!(
        r#"{{"type":"REQUEST","tid":4,"info_hash":"{}","name":"a"}}"#,
        hex_of(1)
    ));
    assert_eq!(e.tid, Some(4));
    assert!(e.to_string().contains("not both"), "{e}");
}

#[test]
fn duplicate_fields_are_rejected() {
    let e = err_str(r#"{"type":"SEARCH","tid":4,"query":"a","query":"b"}"#);
    assert_eq!(e.tid, Some(4));
    assert!(e.to_string().contains("duplicate field"), "{e}");
}

#[test]
fn bad_request_reply_echoes_tid_and_message() {
    let e = err_str(r#"{"type":"NOPE","tid":11}"#);
    let reply = Reply::bad_request(&e);
    let v: Value = serde_json::from_slice(&reply.encode()).unwrap();
    assert_eq!(v["type"], "ERROR");
    assert_eq!(v["tid"], 11);
    assert_eq!(v["code"], "bad_request");
    assert!(v["message"].as_str().unwrap().contains("NOPE"));
    let e = err_str("not json");
    let v: Value = serde_json::from_slice(&Reply::bad_request(&e).encode()).unwrap();
    assert!(v["tid"].is_null());
}

#[test]
fn malformed_replies_are_rejected() {
    let cases = [
        r#"{"type":"OK","tid":1}"#,
        r#"{"type":"OK","interval":1,"timeout":1}"#,
        r#"{"type":"PEERS","tid":1,"info_hash":"zz","name":"a","size":1,"seeders":0,"leechers":0,"peers":[]}"#,
        r#"{"type":"FILES","tid":1}"#,
        r#"{"type":"ERROR","tid":1}"#,
        r#"{"type":"WHAT","tid":1}"#,
        r#"{"tid":1}"#,
        r#"[]"#,
    ];
    for c in cases {
        assert!(Reply::decode(c.as_bytes()).is_err(), "{c}");
    }
    let bad_addr = format!(
        r#"{{"type":"PEERS","tid":1,"info_hash":"{}","name":"a","size":1,"seeders":0,"leechers":0,"peers":[{{"addr":"nowhere","peer_id":"p","complete":true}}]}}"#,
        hex_of(1)
    );
    let e = Reply::decode(bad_addr.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("peers[0].addr"), "{e}");
    let e = Reply::decode(br#"{"type":"OK","tid":1,"interval":"10","timeout":30}"#).unwrap_err();
    assert!(e.to_string().contains("interval"), "{e}");
}

#[test]
fn files_reply_is_cut_to_fit() {
    let files: Vec<FileSummary> = (0..2000)
        .map(|i| FileSummary {
            info_hash: h((i % 256) as u8),
            name: format!("file number {i} with a longish name.dat"),
            size: i,
            seeders: 1,
            leechers: 2,
        })
        .collect();
    let mut buf = Vec::new();
    let n = encode_files_reply(
        &mut buf,
        9,
        files.iter().map(|f| FileView {
            info_hash: &f.info_hash,
            name: &f.name,
            size: f.size,
            seeders: f.seeders,
            leechers: f.leechers,
        }),
        MAX_REPLY_SIZE,
    );
    assert!(n > 100 && n < 2000, "{n}");
    assert!(buf.len() <= MAX_REPLY_SIZE);
    match Reply::decode(&buf).unwrap() {
        Reply::Files { tid, files: got } => {
            assert_eq!(tid, 9);
            assert_eq!(got.len(), n);
            assert_eq!(got[..], files[..n]);
        }
        other => panic!("{other:?}"),
    }
    // A tiny limit still produces valid JSON with no files.
    let mut buf = Vec::new();
    let n = encode_files_reply(
        &mut buf,
        1,
        files.iter().map(|f| FileView {
            info_hash: &f.info_hash,
            name: &f.name,
            size: f.size,
            seeders: f.seeders,
            leechers: f.leechers,
        }),
        40,
    );
    assert_eq!(n, 0);
    assert_eq!(
        Reply::decode(&buf).unwrap(),
        Reply::Files {
            tid: 1,
            files: vec![]
        }
    );
}

#[test]
fn summaries_are_one_readable_line() {
    let reqs = all_requests();
    let s = reqs[0].summary();
    assert!(
        s.starts_with("REGISTER 2 files: report.pdf (4.0 MiB, complete)"),
        "{s}"
    );
    assert!(s.contains("peer=-MN0100-abcdefghijkl"), "{s}");
    let single = Request::Register {
        tid: 1,
        peer_id: "-MN0100-x".into(),
        port: 7001,
        files: vec![FileInfo {
            info_hash: h(1),
            name: "report.pdf".into(),
            size: 4 * 1024 * 1024,
            complete: true,
        }],
    };
    assert_eq!(
        single.summary(),
        "REGISTER report.pdf (4.0 MiB, complete) peer=-MN0100-x port=7001 tid=1"
    );
    for r in reqs {
        assert!(!r.summary().contains('\n'));
    }
    for r in all_replies() {
        let s = r.summary();
        assert!(s.starts_with(r.type_name()), "{s}");
        assert!(!s.contains('\n'));
    }
}

#[test]
fn peers_reply_is_cut_to_fit() {
    let peers: Vec<PeerEntry> = (0..2000u32)
        .map(|i| PeerEntry {
            addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881)),
            peer_id: format!("-MN0100-{i:012}"),
            complete: i % 2 == 0,
        })
        .collect();
    let swarm = SwarmView {
        info_hash: &InfoHash([1; 20]),
        name: "x",
        size: 1,
        seeders: 1000,
        leechers: 1000,
    };
    let mut buf = Vec::new();
    let views = peers.iter().map(|p| PeerView {
        addr: p.addr,
        peer_id: &p.peer_id,
        complete: p.complete,
    });
    let n = encode_peers_reply(&mut buf, 5, &swarm, views, MAX_REPLY_SIZE);
    assert!(n > 500 && n < 2000, "{n}");
    assert!(buf.len() <= MAX_REPLY_SIZE);
    match Reply::decode(&buf).unwrap() {
        Reply::Peers { peers: got, .. } => assert_eq!(got[..], peers[..n]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ok_names_the_web_page_only_when_there_is_one() {
    let with = Reply::Ok {
        tid: 7,
        interval: 10,
        timeout: 30,
        stats_every: 0,
        web: Some("http://127.0.0.1:8080/".into()),
    };
    let bytes = with.encode();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["web"], "http://127.0.0.1:8080/");
    assert_eq!(Reply::decode(&bytes).unwrap(), with);
    assert!(
        with.summary().contains("web=http://127.0.0.1:8080/"),
        "{}",
        with.summary()
    );

    // No web page: no field, so an older peer sees the OK it always saw.
    let without = Reply::ok(7).encode();
    assert!(!String::from_utf8_lossy(&without).contains("web"));
    assert!(!Reply::ok(7).summary().contains("web"));

    // The documented example, and null read as absent.
    let doc =
        br#"{"type":"OK","tid":1,"interval":10,"timeout":30,"web":"http://192.168.1.10:8080/"}"#;
    match Reply::decode(doc).unwrap() {
        Reply::Ok { web, .. } => assert_eq!(web.as_deref(), Some("http://192.168.1.10:8080/")),
        other => panic!("{other:?}"),
    }
    let null = br#"{"type":"OK","tid":1,"interval":10,"timeout":30,"web":null}"#;
    assert_eq!(Reply::decode(null).unwrap(), Reply::ok(1));
}

#[test]
fn a_bad_web_field_is_named() {
    let ok =
        |web: &str| format!(r#"{{"type":"OK","tid":4,"interval":10,"timeout":30,"web":{web}}}"#);
    // Not a string.
    let reply_err = |s: &str| match Reply::decode(s.as_bytes()) {
        Ok(r) => panic!("expected an error, decoded {r:?}"),
        Err(e) => e,
    };
    let e = reply_err(&ok("8080"));
    assert_eq!(e.tid, Some(4));
    assert!(e.to_string().contains("`web`"), "{e}");
    // Empty, too long, control characters.
    for bad in [
        "\"\"".to_string(),
        format!("\"http://127.0.0.1/{}\"", "a".repeat(MAX_WEB_CHARS)),
        "\"http://127.0.0.1:8080/\\n\"".to_string(),
    ] {
        let e = reply_err(&ok(&bad));
        assert_eq!(e.tid, Some(4), "{bad}");
        assert!(
            matches!(&e.kind, DecodeErrorKind::BadValue { field, .. } if field == "web"),
            "{bad}: {e}"
        );
    }
}
