//! `--bind IP`: the peer listens on that address only, and the address the
//! tracker hands out for it (the source of its REGISTER datagrams) is the same
//! one, so other peers can reach it.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn the_tracker_hands_out_the_address_the_peer_is_bound_to() {
    let tmp = TempDir::new("bind");
    let tracker = Tracker::start();
    let data = tmp.sub("seed").join("bound.bin");
    let original = write_random(&data, 300_000);
    let torrent = tmp.join("bound.torrent");
    create_torrent(&data, &torrent, &tracker, 32 * 1024);
    let info_hash = metainfo_of(&torrent).info_hash.to_hex();

    // 127.0.0.2 is a loopback address on Linux; the tracker is on 127.0.0.1,
    // so the system would send from 127.0.0.1 unless told otherwise.
    let seeder = seed_torrent(
        "seeder",
        &tracker,
        &torrent,
        &tmp.sub("seed"),
        &["--bind", "127.0.0.2"],
    );
    let port = seeder.port();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    // The tracker's address token, once it asks for one (a PEERS over 3
    // times the REQUEST needs it).
    let mut token = Value::Null;
    let peers = loop {
        assert!(
            Instant::now() < deadline,
            "the seeder never registered\n{}",
            seeder.dump()
        );
        let mut req = json!({"type": "REQUEST", "tid": 7, "info_hash": info_hash});
        if token.is_string() {
            req["token"] = token.clone();
        }
        sock.send_to(req.to_string().as_bytes(), tracker.addr)
            .unwrap();
        let mut buf = [0u8; 65536];
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let reply: Value = serde_json::from_slice(&buf[..n]).unwrap();
        if reply["type"] == "PEERS" {
            break reply["peers"].as_array().unwrap().clone();
        }
        if reply["code"] == "token" {
            token = reply["token"].clone();
            continue;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let addrs: Vec<&str> = peers.iter().filter_map(|p| p["addr"].as_str()).collect();
    assert_eq!(addrs, vec![format!("127.0.0.2:{port}")], "{peers:?}");

    let dl = tmp.sub("dl");
    get_ok("leecher", &tracker, "bound.bin", &dl, &[]);
    assert_eq!(std::fs::read(dl.join("bound.bin")).unwrap(), original);
}
