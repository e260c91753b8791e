//! The fast extension (BEP 6) against raw peers written here with std::net
//! and the shared wire codecs: a seeder that says HAVE ALL, lets us fetch
//! its allowed-fast pieces while it chokes us and rejects some requests;
//! a leecher that our seeder greets with HAVE ALL and ALLOWED FAST and
//! serves while choking it; and the same messages without the fast bit,
//! which close the connection as any unknown message does.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::{self, allowed_fast_set, Handshake, Message, ALLOWED_FAST_K};

const PIECE: u32 = 32 * 1024;
const BLOCK: u32 = 16 * 1024;

fn peer_id(tag: &str) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    let tag = format!("{tag}{:05}", fastrand::u32(..100_000));
    let n = tag.len().min(12);
    id[8..8 + n].copy_from_slice(&tag.as_bytes()[..n]);
    id
}

fn read_handshake(s: &mut TcpStream) -> Handshake {
    let mut buf = [0u8; wire::HANDSHAKE_LEN];
    s.read_exact(&mut buf).unwrap();
    Handshake::decode(&buf).unwrap()
}

fn send(s: &mut TcpStream, m: &Message) {
    s.write_all(&frame(m)).unwrap();
}

/// What the raw seeder saw of our leecher.
#[derive(Debug, Default)]
struct SeederLog {
    /// The leecher's first message after its extension handshake.
    first: Option<Message>,
    /// Blocks it asked for while choked: (piece, allowed fast).
    choked_requests: Vec<(u32, bool)>,
    /// Blocks rejected once, and those of them asked for again.
    rejected: Vec<(u32, u32)>,
    asked_again: Vec<(u32, u32)>,
    served: usize,
}

/// A fast seeder of `data`: HAVE ALL, ALLOWED FAST for `allowed`; it
/// chokes the leecher until it has served every block of those pieces,
/// then unchokes it and rejects the first request for every third block.
fn raw_fast_seeder(
    listener: TcpListener,
    ih: InfoHash,
    data: Vec<u8>,
    allowed: Vec<u32>,
) -> SeederLog {
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let theirs = read_handshake(&mut s);
    assert!(theirs.supports_fast(), "our peer must set the fast bit");
    assert_eq!(theirs.info_hash, ih);
    s.write_all(&Handshake::new(ih, peer_id("fastseed")).encode())
        .unwrap();
    send(&mut s, &Message::HaveAll);
    for &i in &allowed {
        send(&mut s, &Message::AllowedFast(i));
    }
    let blocks_per_piece = PIECE / BLOCK;
    let mut left_allowed = allowed.len() as u32 * blocks_per_piece;
    let mut choking = true;
    let mut log = SeederLog::default();
    let mut nth = 0u32;
    loop {
        let m = match read_msg(&mut s) {
            Ok(m) => m,
            // The leecher closes once it has everything.
            Err(_) => return log,
        };
        if log.first.is_none() && !matches!(m, Message::Extended { .. } | Message::KeepAlive) {
            log.first = Some(m.clone());
        }
        let Message::Request {
            index,
            begin,
            length,
        } = m
        else {
            continue;
        };
        let start = (index * PIECE + begin) as usize;
        let piece = Message::Piece {
            index,
            begin,
            data: data[start..start + length as usize].to_vec(),
        };
        if choking {
            let ok = allowed.contains(&index);
            log.choked_requests.push((index, ok));
            if !ok {
                send(
                    &mut s,
                    &Message::RejectRequest {
                        index,
                        begin,
                        length,
                    },
                );
                continue;
            }
            send(&mut s, &piece);
            log.served += 1;
            left_allowed -= 1;
            if left_allowed == 0 {
                choking = false;
                send(&mut s, &Message::Unchoke);
            }
            continue;
        }
        if log.rejected.contains(&(index, begin)) {
            if !log.asked_again.contains(&(index, begin)) {
                log.asked_again.push((index, begin));
            }
        } else {
            nth += 1;
            if nth.is_multiple_of(3) {
                log.rejected.push((index, begin));
                send(
                    &mut s,
                    &Message::RejectRequest {
                        index,
                        begin,
                        length,
                    },
                );
                continue;
            }
        }
        send(&mut s, &piece);
        log.served += 1;
    }
}

#[test]
fn a_leecher_fetches_allowed_fast_pieces_while_choked_and_survives_rejects() {
    let tmp = TempDir::new("fastget");
    let tracker = Tracker::start();
    let data_path = tmp.join("f.bin");
    let size = 24 * PIECE as usize;
    let data = write_random(&data_path, size);
    let torrent = tmp.join("f.torrent");
    create_torrent(&data_path, &torrent, &tracker, PIECE);
    let ih = metainfo_of(&torrent).info_hash;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let allowed = vec![5, 17];
    let seeder = std::thread::spawn(move || raw_fast_seeder(listener, ih, data, allowed));
    register_seeder(&tracker, ih, "-XX0000-fastseed0000", "f.bin", size, port);

    let dir = tmp.sub("l");
    let g = get_ok("leecher", &tracker, torrent.to_str().unwrap(), &dir, &[]);
    assert_same_file(&data_path, &dir.join("f.bin"));
    let log = seeder.join().unwrap();
    assert_eq!(log.first, Some(Message::HaveNone), "{log:?}");
    // While choked it asked for the allowed-fast pieces only, and got them.
    assert_eq!(log.choked_requests.len(), 4, "{log:?}");
    assert!(log.choked_requests.iter().all(|(_, ok)| *ok), "{log:?}");
    // Every rejected block was asked for again (the seeder was the only
    // source, so the file would be short otherwise).
    assert!(log.rejected.len() >= 4, "{log:?}");
    assert_eq!(log.asked_again.len(), log.rejected.len(), "{log:?}");
    assert!(!g.err.contains("protocol violation"), "{}", g.dump());
    assert!(!g.err.contains("stalled"), "{}", g.dump());
}

/// Connects to our seeder at `port` with `hs`; returns the stream and the
/// seeder's handshake.
fn dial(port: u16, hs: Handshake) -> (TcpStream, Handshake) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&hs.encode()).unwrap();
    let theirs = read_handshake(&mut s);
    (s, theirs)
}

/// Reads messages until `f` picks one out; panics on a closed connection.
fn until<T>(s: &mut TcpStream, what: &str, mut f: impl FnMut(&Message) -> Option<T>) -> T {
    loop {
        match read_msg(s) {
            Ok(m) => {
                if let Some(t) = f(&m) {
                    return t;
                }
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

#[test]
fn our_seeder_says_have_all_and_serves_allowed_fast_pieces_while_choking() {
    // 64 pieces of 16 KiB: more than the 10 of an allowed-fast set.
    let sw = swarm("fastseed", 64 * 16 * 1024, 16 * 1024);
    // Until every piece has reached a peer, a new seed hides its pieces
    // (initial seeding): a first download ends that.
    sw.leech_ok("first", &sw.magnet);
    let n = 64u32;
    let port = sw.seeder.port();
    let content = std::fs::read(&sw.data).unwrap();
    let (mut s, theirs) = dial(port, Handshake::new(sw.ih, peer_id("fastl")));
    assert!(theirs.supports_fast());
    s.write_all(&frame(&Message::HaveNone)).unwrap();
    // HAVE ALL, not a BITFIELD, comes first.
    let first = until(&mut s, "the seeder's first message", |m| match m {
        Message::Extended { .. } | Message::KeepAlive => None,
        m => Some(m.clone()),
    });
    assert_eq!(first, Message::HaveAll);
    let expected = allowed_fast_set(Ipv4Addr::LOCALHOST.into(), &sw.ih, n, ALLOWED_FAST_K);
    assert_eq!(expected.len(), ALLOWED_FAST_K);
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.push(until(&mut s, "ALLOWED FAST", |m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        }));
    }
    assert_eq!(got, expected);
    // Never INTERESTED, so choked: an allowed-fast piece is served all the
    // same, any other request rejected.
    let fast = expected[0];
    let other = (0..n).find(|i| !expected.contains(i)).unwrap();
    for (index, begin) in [(fast, 0), (other, 0)] {
        send(
            &mut s,
            &Message::Request {
                index,
                begin,
                length: 16 * 1024,
            },
        );
    }
    let answers: Vec<Message> = (0..2)
        .map(|_| {
            until(&mut s, "an answer", |m| match m {
                Message::Piece { .. } | Message::RejectRequest { .. } => Some(m.clone()),
                Message::Unchoke => panic!("never interested, yet unchoked"),
                _ => None,
            })
        })
        .collect();
    let start = fast as usize * 16 * 1024;
    assert!(answers.contains(&Message::Piece {
        index: fast,
        begin: 0,
        data: content[start..start + 16 * 1024].to_vec(),
    }));
    assert!(answers.contains(&Message::RejectRequest {
        index: other,
        begin: 0,
        length: 16 * 1024,
    }));
    // A later HAVE ALL replaces the HAVE NONE (as a later BITFIELD
    // would): two seeds have nothing to say to each other.
    send(&mut s, &Message::HaveAll);
    assert!(closed_within(&mut s, Duration::from_secs(10)));
    assert!(
        !sw.seeder.err.contains("protocol violation"),
        "{}",
        sw.seeder.dump()
    );
}

#[test]
fn without_the_fast_bit_the_fast_messages_are_violations() {
    let sw = swarm("fastoff", 16 * 16 * 1024, 16 * 1024);
    let port = sw.seeder.port();
    let cases = [
        (Message::HaveNone, "HAVE NONE"),
        (Message::HaveAll, "HAVE ALL"),
        (Message::SuggestPiece(1), "SUGGEST PIECE 1"),
        (Message::AllowedFast(2), "ALLOWED FAST 2"),
        (
            Message::RejectRequest {
                index: 0,
                begin: 0,
                length: 16384,
            },
            "REJECT REQUEST piece 0 offset 0 length 16384",
        ),
    ];
    for (i, (msg, name)) in cases.into_iter().enumerate() {
        let hs = Handshake::new(sw.ih, peer_id(&format!("off{i}"))).without_fast();
        let (mut s, theirs) = dial(port, hs);
        assert!(theirs.supports_fast(), "we still announce it");
        // A plain peer gets no HAVE ALL / HAVE NONE: HAVEs while the new
        // seed is in initial seeding, a BITFIELD after.
        let first = until(&mut s, "the seeder's first message", |m| match m {
            Message::Extended { .. } | Message::KeepAlive => None,
            m => Some(m.clone()),
        });
        assert!(
            matches!(first, Message::Have(_) | Message::Bitfield(_)),
            "{first:?}"
        );
        send(&mut s, &msg);
        assert!(closed_within(&mut s, Duration::from_secs(10)), "{name}");
        sw.seeder.err.wait_for(
            &format!("protocol violation: {name} without the fast extension negotiated"),
            TIMEOUT,
        );
    }
    // With the bit, the same HAVE NONE is welcome.
    let (mut s, _) = dial(port, Handshake::new(sw.ih, peer_id("on")));
    send(&mut s, &Message::HaveNone);
    send(&mut s, &Message::Interested);
    until(&mut s, "UNCHOKE", |m| {
        matches!(m, Message::Unchoke).then_some(())
    });
}

#[test]
fn requests_refused_to_a_peer_that_never_reads_close_the_connection() {
    let sw = swarm("fastflood", 64 * 16 * 1024, 16 * 1024);
    sw.leech_ok("first", &sw.magnet);
    let port = sw.seeder.port();
    let (mut s, _) = dial(port, Handshake::new(sw.ih, peer_id("flood")));
    let allowed = allowed_fast_set(Ipv4Addr::LOCALHOST.into(), &sw.ih, 64, ALLOWED_FAST_K);
    let other = (0..64).find(|i| !allowed.contains(i)).unwrap();
    // Never INTERESTED, never reading: every request earns a REJECT that
    // waits unsent.
    let req = frame(&Message::Request {
        index: other,
        begin: 0,
        length: 16 * 1024,
    });
    let burst: Vec<u8> = req.iter().copied().cycle().take(req.len() * 4096).collect();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut closed = false;
    while std::time::Instant::now() < deadline {
        match s.write(&burst) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if sw.seeder.err.contains("wait unread") {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after 20 s\n{}", sw.seeder.dump());
    sw.seeder
        .err
        .wait_for("protocol violation: requests while", TIMEOUT);
}
