//! What `--trace` shows beyond the messages themselves: a line per piece
//! checked (SHA-1 ok or mismatch), and a swarm that does not churn
//! INTERESTED / NOT INTERESTED / CHOKE / UNCHOKE.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::*;
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use minitorrent_common::wire::{self, Bitfield, Handshake, Message};

const PIECE: u32 = 32 * 1024;

/// A peer that claims every piece and answers each request with garbage.
fn corrupt_peer(listener: TcpListener, ih: InfoHash, pieces: usize) {
    for s in listener.incoming() {
        let Ok(mut s) = s else { return };
        std::thread::spawn(move || {
            let mut buf = [0u8; wire::HANDSHAKE_LEN];
            if s.read_exact(&mut buf).is_err() {
                return;
            }
            let _ = s.write_all(&Handshake::new(ih, *b"-XX0000-bad000000000").encode());
            let mut out = Vec::new();
            Message::Bitfield(Bitfield::full(pieces).as_bytes().to_vec()).encode(&mut out);
            let _ = s.write_all(&out);
            loop {
                let mut p = [0u8; 4];
                if s.read_exact(&mut p).is_err() {
                    return;
                }
                let Ok(len) = wire::frame_len(p, wire::MAX_MESSAGE_LEN) else {
                    return;
                };
                let mut f = vec![0u8; len];
                if s.read_exact(&mut f).is_err() {
                    return;
                }
                let reply = match Message::decode(&f) {
                    Ok(Message::Interested) => Message::Unchoke,
                    Ok(Message::Request {
                        index,
                        begin,
                        length,
                    }) => Message::Piece {
                        index,
                        begin,
                        data: random_bytes(length as usize),
                    },
                    Ok(_) => continue,
                    Err(_) => return,
                };
                let mut out = Vec::new();
                reply.encode(&mut out);
                if s.write_all(&out).is_err() {
                    return;
                }
            }
        });
    }
}

fn register(tracker: &Tracker, ih: InfoHash, name: &str, size: usize, port: u16) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reg = serde_json::json!({"type": "REGISTER", "tid": 1, "peer_id": "-XX0000-bad000000000",
        "port": port, "files": [{"info_hash": ih.to_hex(), "name": name, "size": size,
        "complete": true}]});
    udp.send_to(reg.to_string().as_bytes(), tracker.addr)
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("OK"));
}

#[test]
fn trace_shows_the_sha1_verdict_of_every_piece() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("trace-sha1");
    let s = tmp.sub("s");
    let data = s.join("v.bin");
    let size = 2 * 1024 * 1024;
    write_random(&data, size);
    let torrent = tmp.join("v.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    let m = Metainfo::from_bytes(&std::fs::read(&torrent).unwrap()).unwrap();
    let pieces = m.info.pieces.len();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bad_port = listener.local_addr().unwrap().port();
    let ih = m.info_hash;
    std::thread::spawn(move || corrupt_peer(listener, ih, pieces));
    register(&tracker, ih, "v.bin", size, bad_port);
    let _seeder = seed_torrent(
        "seeder",
        &tracker,
        &torrent,
        &s,
        &["--max-upload-rate", "2M"],
    );

    let l = tmp.sub("l");
    let g = get_ok(
        "leecher",
        &tracker,
        torrent.to_str().unwrap(),
        &l,
        &["--trace"],
    );
    assert_same_file(&data, &l.join("v.bin"));
    let trace = g.err.text();
    // `HH:MM:SS.mmm peer OUR_ADDR  piece I SHA-1 ok (N bytes from ADDR)`
    let mut ok = HashSet::new();
    for line in trace.lines().filter(|l| l.contains(" SHA-1 ok (")) {
        assert!(line.contains(" peer 127.0.0.1:"), "{line}");
        let i: usize = line
            .split("piece ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no piece index in {line:?}"));
        assert!(i < pieces, "{line}");
        assert!(line.contains(&format!("({PIECE} bytes from 127.0.0.1:")) || i == pieces - 1);
        if !line.contains("already had") {
            assert!(ok.insert(i), "piece {i} verified twice as new\n{trace}");
        }
    }
    assert_eq!(ok.len(), pieces, "not every piece has an ok line\n{trace}");
    let bad = format!("SHA-1 MISMATCH from 127.0.0.1:{bad_port} (strike");
    for n in ["1/3)", "2/3)", "3/3: dropped)"] {
        assert!(
            trace.contains(&format!("{bad} {n}")),
            "no {bad} {n} line\n{trace}"
        );
    }
}

/// Two leechers that trade pieces near the end used to send INTERESTED,
/// UNCHOKE, NOT INTERESTED and CHOKE to each other for every HAVE.
#[test]
fn two_leechers_do_not_churn_interest_or_choke() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("trace-churn");
    let s = tmp.sub("s");
    let data = s.join("w.bin");
    write_random(&data, 2 * 1024 * 1024);
    let torrent = tmp.join("w.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    // A slow seeder: the leechers get much of the file from each other.
    let _seeder = seed_torrent(
        "seeder",
        &tracker,
        &torrent,
        &s,
        &["--max-upload-rate", "1M"],
    );
    let dirs = [tmp.sub("a"), tmp.sub("b")];
    let mut leechers: Vec<Proc> = dirs
        .iter()
        .map(|d| {
            start_get(
                "leecher",
                &tracker,
                torrent.to_str().unwrap(),
                d,
                &["--trace"],
            )
        })
        .collect();
    for (l, d) in leechers.iter_mut().zip(&dirs) {
        let st = l.wait(TIMEOUT);
        assert!(st.success(), "{}", l.dump());
        assert_same_file(&data, &d.join("w.bin"));
    }
    let mut traded = false;
    for l in &leechers {
        let trace = l.err.text();
        let lines = |what: &str| {
            trace
                .lines()
                .filter(|l| l.contains(" peer ") && l.ends_with(what))
                .count()
        };
        // Per leecher, sent and received: INTERESTED once per connection
        // and direction, NOT INTERESTED at the end, and the UNCHOKEs
        // answering them. 64 pieces used to give over a hundred.
        let interest = lines(" INTERESTED");
        let choke = lines("CHOKE");
        assert!(
            interest <= 12,
            "{interest} INTERESTED / NOT INTERESTED lines\n{trace}"
        );
        assert!(choke <= 12, "{choke} CHOKE / UNCHOKE lines\n{trace}");
        traded |= trace.contains(" HAVE ");
    }
    assert!(
        traded,
        "the leechers did not trade pieces; the test shows nothing"
    );
}
