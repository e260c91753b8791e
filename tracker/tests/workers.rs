//! Several worker threads (one socket each on the same port) behave as one
//! tracker: whichever worker gets a datagram, the answer is the same.

mod common;

use common::{run_to_exit, Bep15, Client, TrackerProc};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{ErrorCode, FileInfo, FileRef, Reply, Request};
use minitorrent_common::udp_tracker::{self as udp, Event};

fn hash(i: u32) -> InfoHash {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

#[test]
fn four_workers_share_one_registry() {
    let t = TrackerProc::start(&["--workers", "4"]);
    t.wait_stderr("4 workers");
    // Many sockets: the kernel spreads their source ports over the workers.
    let clients: Vec<Client> = (0..32).map(|_| Client::new(t.addr)).collect();
    for (i, c) in clients.iter().enumerate() {
        let i = i as u32;
        let r = c.ask(&Request::Register {
            tid: i,
            peer_id: format!("peer-{i}"),
            port: 7000 + i as u16,
            files: vec![FileInfo {
                info_hash: hash(i % 8),
                name: format!("file-{}", i % 8),
                size: 1,
                complete: i & 1 == 0,
            }],
        });
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    // Every client sees the whole picture, and heartbeats for a peer work
    // from any socket of its IP (they may land on another worker).
    for (i, c) in clients.iter().enumerate() {
        let i = i as u32;
        match c.ask(&Request::Search {
            tid: 100 + i,
            query: "file".into(),
        }) {
            Reply::Files { files, .. } => {
                assert_eq!(files.len(), 8);
                assert!(
                    files.iter().all(|f| f.seeders + f.leechers == 4),
                    "{files:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        match c.ask(&Request::Request {
            tid: 200 + i,
            file: FileRef::Name(format!("file-{}", i % 8)),
            peer_id: Some(format!("peer-{i}")),
        }) {
            Reply::Peers {
                peers,
                seeders,
                leechers,
                ..
            } => {
                assert_eq!(peers.len(), 3);
                assert_eq!(seeders + leechers, 4);
            }
            other => panic!("{other:?}"),
        }
        let other = &clients[(i as usize + 7) % clients.len()];
        assert!(matches!(
            other.ask(&Request::Heartbeat {
                tid: 300 + i,
                peer_id: format!("peer-{i}")
            }),
            Reply::Ok { .. }
        ));
    }
    // Exits from other sockets of the same IP remove the peers everywhere.
    for i in 0..32u32 {
        let c = &clients[(i as usize + 13) % clients.len()];
        assert!(matches!(
            c.ask(&Request::Exit {
                tid: 400 + i,
                peer_id: format!("peer-{i}")
            }),
            Reply::Ok { .. }
        ));
    }
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(
            c.ask(&Request::Search {
                tid: 500 + i as u32,
                query: String::new()
            }),
            Reply::Files {
                tid: 500 + i as u32,
                files: vec![]
            }
        );
    }
    // A BEP 15 connection id from one socket is good on another one.
    let a = Bep15::connect("127.0.0.1:0", t.addr);
    for k in 0..8u32 {
        let mut b = Bep15::connect("127.0.0.1:0", t.addr);
        b.connection_id = a.connection_id;
        let mut id = *b"-qB4650-000000000000";
        id[19] = b'a' + k as u8;
        match b.announce(k, hash(99), &id, 6000 + k as u16, 0, Event::Started, -1) {
            udp::Response::Announce { seeders, .. } => assert_eq!(seeders, k + 1),
            other => panic!("{other:?}"),
        }
    }
    let c = &clients[0];
    match c.ask(&Request::Request {
        tid: 600,
        file: FileRef::InfoHash(hash(99)),
        peer_id: None,
    }) {
        Reply::Peers { peers, .. } => assert_eq!(peers.len(), 8),
        other => panic!("{other:?}"),
    }
    let r = c.ask(&Request::Heartbeat {
        tid: 601,
        peer_id: "peer-0".into(),
    });
    assert!(
        matches!(
            r,
            Reply::Error {
                code: ErrorCode::UnknownPeer,
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn a_second_tracker_cannot_share_the_port() {
    let t = TrackerProc::start(&["--workers", "2"]);
    let addr = t.addr.to_string();
    let (status, text) = run_to_exit(&["--bind", &addr, "--workers", "2"]);
    assert!(!status.success());
    assert!(text.contains("already in use"), "{text}");
}
