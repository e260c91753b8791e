//! No reflection through the JSON protocol: a request from an address that
//! never proved it receives the tracker's datagrams (no valid token for
//! it) gets a reply at most 3 times its size, however large the catalogue
//! and the swarm. A forged source address is played by a socket on another
//! loopback IP that sends without a token of its own: what it receives is
//! what a victim of a forged request would.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Client, TrackerProc};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    ErrorCode, FileInfo, FileRef, Reply, Request, Token, AMPLIFICATION_FACTOR,
};

const SWARM: usize = 1000;
const FILES: usize = 400;

fn hash(i: usize) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&(i as u64).to_be_bytes());
    h[19] = 0x5a;
    InfoHash(h)
}

/// A tracker with `FILES` files of long names (one seeder registers them)
/// and one swarm (file 0) of `SWARM` peers, listing up to 1000 in `PEERS`.
fn loaded_tracker() -> TrackerProc {
    let t = TrackerProc::start(&["--max-peers", "1000"]);
    let seeder = Client::new(t.addr);
    let long = "lecture-recording-".repeat(8);
    for chunk in (0..FILES).collect::<Vec<_>>().chunks(100) {
        let files = chunk
            .iter()
            .map(|&i| FileInfo {
                info_hash: hash(i),
                name: format!("{long}{i:04}.mp4"),
                size: 1 << 30,
                complete: true,
            })
            .collect();
        let r = seeder.ask(&Request::Register {
            tid: 1,
            peer_id: "-MT0100-seeder".into(),
            port: 6000,
            files,
        });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    let peers = Client::new(t.addr);
    for i in 1..SWARM {
        let r = peers.ask(&Request::Register {
            tid: i as u32,
            peer_id: format!("-MT0100-{i:012}"),
            port: 10_000 + i as u16,
            files: vec![FileInfo {
                info_hash: hash(0),
                name: format!("{long}0000.mp4"),
                size: 1 << 30,
                complete: false,
            }],
        });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    t
}

/// Sends `bytes` from `sock` and returns the raw reply (retrying on loss),
/// or `None` when nothing comes.
fn exchange(sock: &UdpSocket, tracker: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for _ in 0..5 {
        sock.send_to(bytes, tracker).unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                assert_eq!(from, tracker);
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

fn search(tid: u32, query: &str) -> Request {
    Request::Search {
        tid,
        query: query.into(),
    }
}

fn request(tid: u32, file: FileRef) -> Request {
    Request::Request {
        tid,
        file,
        peer_id: None,
    }
}

/// The reply to `bytes` from `sock`, checked against the bound: at most
/// 3× the request, a `token` ERROR for `tid`, handing out a token.
fn small_token_reply(sock: &UdpSocket, tracker: SocketAddr, bytes: &[u8], tid: u32) -> Token {
    let reply = exchange(sock, tracker, bytes).expect("a reply");
    assert!(
        reply.len() <= AMPLIFICATION_FACTOR * bytes.len(),
        "{} bytes in reply to {} bytes: {}",
        reply.len(),
        bytes.len(),
        String::from_utf8_lossy(&reply)
    );
    match Reply::decode_with_token(&reply).unwrap() {
        (
            Reply::Error {
                tid: Some(t),
                code: ErrorCode::Token,
                ..
            },
            Some(token),
        ) if t == tid => token,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_address_without_a_token_gets_at_most_three_times_its_request() {
    let t = loaded_tracker();
    // The victim's address: it only ever receives what is sent in its name.
    let victim = UdpSocket::bind("127.0.0.3:0").unwrap();

    // The 36-byte SEARCH with an empty query.
    let s = search(7, "").encode();
    assert_eq!(s.len(), 36, "{}", String::from_utf8_lossy(&s));
    small_token_reply(&victim, t.addr, &s, 7);
    // REQUEST of the 1000-peer swarm, by info hash and by name.
    let r = request(8, FileRef::InfoHash(hash(0))).encode();
    small_token_reply(&victim, t.addr, &r, 8);
    let name = format!("{}0000.mp4", "lecture-recording-".repeat(8));
    let r = request(9, FileRef::Name(name.clone())).encode();
    small_token_reply(&victim, t.addr, &r, 9);

    // A token minted for another address (the attacker's own, 127.0.0.1)
    // is worth nothing from the victim's.
    let attacker = Client::new(t.addr);
    let mine = attacker.ask(&search(10, "")).clone();
    assert!(matches!(mine, Reply::Files { .. }), "{mine:?}");
    let foreign = attacker.token().expect("the tracker handed a token out");
    for (tid, req) in [
        (11, search(11, "")),
        (12, request(12, FileRef::InfoHash(hash(0)))),
    ] {
        let bytes = req.encode_with_token(Some(foreign));
        small_token_reply(&victim, t.addr, &bytes, tid);
    }
    // Nor is a made-up one.
    let bytes = search(13, "").encode_with_token(Some(Token(foreign.0 ^ 0xff)));
    small_token_reply(&victim, t.addr, &bytes, 13);

    // The replies that were held back are large: with its own token, an
    // address gets them whole (so the bound above is what kept them small).
    let own = small_token_reply(&victim, t.addr, &search(14, "").encode(), 14);
    let s = search(15, "").encode_with_token(Some(own));
    let full = exchange(&victim, t.addr, &s).unwrap();
    assert!(full.len() > 60_000, "{}", full.len());
    match Reply::decode(&full).unwrap() {
        Reply::Files { files, .. } => assert!(files.len() > 200, "{}", files.len()),
        other => panic!("{other:?}"),
    }
    let r = request(16, FileRef::InfoHash(hash(0))).encode_with_token(Some(own));
    let full = exchange(&victim, t.addr, &r).unwrap();
    match Reply::decode(&full).unwrap() {
        // As many as one datagram holds (the --max-peers 1000 list is cut).
        Reply::Peers { peers, .. } => assert!(peers.len() > 800, "{}", peers.len()),
        other => panic!("{other:?}"),
    }
    assert!(
        full.len() > 60_000 && full.len() > 100 * r.len(),
        "{} bytes for {}",
        full.len(),
        r.len()
    );
}

#[test]
fn small_replies_need_no_token_and_hand_one_out() {
    let t = TrackerProc::start(&[]);
    let c = Client::new(t.addr);
    // A small catalogue: the FILES reply is within 3× the SEARCH.
    let s = search(1, "nothing matches this").encode();
    let reply = exchange(&c.sock, t.addr, &s).unwrap();
    assert!(matches!(
        Reply::decode(&reply).unwrap(),
        Reply::Files { .. }
    ));
    // Every OK carries a token for the sender's address, valid at once.
    let (r, token) = c.ask_with_token(
        &Request::Register {
            tid: 2,
            peer_id: "p".into(),
            port: 7001,
            files: vec![FileInfo {
                info_hash: hash(1),
                name: "a.txt".into(),
                size: 1,
                complete: true,
            }],
        },
        None,
    );
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let token = token.expect("OK carries a token");
    let (r, _) = c.ask_with_token(&search(3, "a"), Some(token));
    assert!(matches!(r, Reply::Files { .. }), "{r:?}");
}

#[test]
fn an_old_peer_is_told_to_upgrade() {
    let t = loaded_tracker();
    let old = UdpSocket::bind("127.0.0.1:0").unwrap();
    // What a peer without tokens sends: no `token` field, a large tid.
    let s = search(123_456_789, "").encode();
    let reply = exchange(&old, t.addr, &s).unwrap();
    assert!(reply.len() <= AMPLIFICATION_FACTOR * s.len());
    match Reply::decode(&reply).unwrap() {
        Reply::Error { code, message, .. } => {
            assert_eq!(code.as_str(), "token");
            assert!(message.contains("upgrade"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let r = Request::Request {
        tid: 123_456_790,
        file: FileRef::InfoHash(hash(0)),
        peer_id: Some("-MT0090-oldpeer12345".into()),
    }
    .encode();
    match Reply::decode(&exchange(&old, t.addr, &r).unwrap()).unwrap() {
        Reply::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::Token);
            assert!(message.contains("upgrade"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
