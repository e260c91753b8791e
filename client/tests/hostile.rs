//! Hostile and broken peers: each such connection is closed and logged, and
//! everyone else carries on. The hostile peers are written here with
//! std::net and the shared wire codecs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::{self, Handshake, Message};

const PIECE: u32 = 32 * 1024;

fn peer_id(tag: &str) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    id[8..8 + tag.len()].copy_from_slice(tag.as_bytes());
    id
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Handshakes with a fresh peer id (a repeated one would be refused as a
/// duplicate connection while the previous one is still being torn down).
fn shake(s: &mut TcpStream, ih: InfoHash) -> Handshake {
    let tag = format!("t{:04}", fastrand::u16(..10000));
    s.write_all(&Handshake::new(ih, peer_id(&tag)).encode())
        .unwrap();
    let mut buf = [0u8; wire::HANDSHAKE_LEN];
    s.read_exact(&mut buf).unwrap();
    let hs = Handshake::decode(&buf).unwrap();
    assert_eq!(hs.info_hash, ih);
    hs
}

fn send(s: &mut TcpStream, m: &Message) {
    s.write_all(&frame(m)).unwrap();
}

/// Reads until the peer closes; panics if it does not within the timeout.
fn expect_closed(s: &mut TcpStream, what: &str) {
    assert!(
        closed_within(s, Duration::from_secs(10)),
        "{what}: connection still open"
    );
}

#[test]
fn hostile_connections_are_closed_and_the_seeder_keeps_serving() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("hostile");
    let s = tmp.sub("s");
    let data = s.join("h.bin");
    write_random(&data, 2 * 1024 * 1024);
    let torrent = tmp.join("h.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    let ih = metainfo_of(&torrent).info_hash;
    let seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    let port = seeder.port();

    // Garbage instead of a handshake. Anything but a plain handshake may
    // be an encrypted (MSE) one, given up on once no sync marker came
    // within 628 bytes: more garbage than that is closed at once.
    let mut c = connect(port);
    c.write_all(&[0x42; 700]).unwrap();
    expect_closed(&mut c, "garbage handshake");

    // A well-formed handshake for a torrent the seeder does not have.
    let mut c = connect(port);
    c.write_all(&Handshake::new(InfoHash([9; 20]), peer_id("wrong")).encode())
        .unwrap();
    expect_closed(&mut c, "wrong info hash");

    // A length prefix beyond the largest legal message.
    let mut c = connect(port);
    shake(&mut c, ih);
    c.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
    expect_closed(&mut c, "oversize length prefix");

    // A bitfield of the wrong size.
    let mut c = connect(port);
    shake(&mut c, ih);
    send(&mut c, &Message::Bitfield(vec![0xff; 3]));
    expect_closed(&mut c, "wrong bitfield size");

    // A request outside the torrent, once unchoked.
    let mut c = connect(port);
    shake(&mut c, ih);
    send(&mut c, &Message::Interested);
    loop {
        match read_msg(&mut c).expect("reading until UNCHOKE") {
            Message::Unchoke => break,
            _ => continue,
        }
    }
    send(
        &mut c,
        &Message::Request {
            index: 1_000_000,
            begin: 0,
            length: 16384,
        },
    );
    expect_closed(&mut c, "request outside the torrent");

    // A block nobody asked for.
    let mut c = connect(port);
    shake(&mut c, ih);
    send(
        &mut c,
        &Message::Piece {
            index: 0,
            begin: 0,
            data: vec![0; 16384],
        },
    );
    expect_closed(&mut c, "unsolicited block");

    // The seeder still serves everyone else.
    let l = tmp.sub("l");
    get_ok("leecher", &tracker, torrent.to_str().unwrap(), &l, &[]);
    assert_same_file(&data, &l.join("h.bin"));
    wait_until("four protocol violations logged", TIMEOUT, || {
        seeder.err.text().matches("protocol violation").count() >= 4
    });
}

#[test]
fn a_peer_sending_bad_pieces_is_dropped_and_the_download_is_still_correct() {
    let size = 3 * 1024 * 1024;
    // The corrupt peer, registered with the tracker as a seeder; the honest
    // seeder is slow, so the corrupt one gets plenty of requests.
    let (sw, (bad_port, accepted)) = swarm_after(
        "corrupt",
        "c.bin",
        size,
        PIECE,
        &["--max-upload-rate", "2M"],
        |tracker, torrent| start_corrupt_seeder(tracker, torrent, "c.bin", size),
    );
    let (tracker, tmp, data, torrent) = (&sw.tracker, &sw.tmp, &sw.data, &sw.torrent);
    let l = tmp.sub("l");
    let g = get_ok("leecher", tracker, torrent.to_str().unwrap(), &l, &[]);
    assert_same_file(data, &l.join("c.bin"));
    assert!(
        g.err
            .contains(&format!("dropping 127.0.0.1:{bad_port} after 3 bad pieces")),
        "{}",
        g.dump()
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the dropped peer was dialled again"
    );
}
