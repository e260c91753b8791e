//! The swarm's rules, driven by scripted events and a fake clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::{Info, InfoHash};
use minitorrent_common::tracker_proto::PeerEntry;
use minitorrent_common::wire::{pex_flags, Bitfield, PexMsg, PexPeer};

use super::discovery::{LOOKUP_EMPTY, MAX_KNOWN};
use super::peers::{MAX_BANS, MAX_CONNS_PER_IP, MAX_STRIKE_ENTRIES};
use super::pex::PEX_FIRST;
use super::*;
use crate::core::geometry::Geometry;
use crate::core::msg::{ConnError, Event, Opened, PieceMark, Summary};
use crate::core::picker::{PieceState, MAX_OWNERS};
use crate::core::shared::{HaveSet, Meta};

const PIECE: u64 = 16 * 1024;
const OUR_ID: [u8; 20] = *b"-MN0100-mmmmmmmmmmmm";

fn id(n: u32) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    id[8..12].copy_from_slice(&n.to_be_bytes());
    id
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn info(pieces: usize) -> (Info, Vec<u8>) {
    let len = pieces as u64 * PIECE;
    let mut b = format!(
        "d6:lengthi{len}e4:name6:t.data12:piece lengthi{PIECE}e6:pieces{}:",
        pieces * 20
    )
    .into_bytes();
    for i in 0..pieces {
        b.extend_from_slice(&[i as u8; 20]);
    }
    b.push(b'e');
    (Info::from_bytes(&b).unwrap(), b)
}

fn cfg(download: bool) -> SwarmConfig {
    SwarmConfig {
        info_hash: InfoHash([7; 20]),
        peer_id: OUR_ID,
        max_peers: 8,
        download,
        name_hint: None,
        lookups: true,
        trace: false,
        listen_port: Some(6881),
    }
}

fn opened(pieces: usize, have: bool) -> Opened {
    let (info, info_bytes) = info(pieces);
    let geometry = Geometry::from_info(&info).unwrap();
    Opened {
        meta: Arc::new(Meta {
            have: HaveSet::new(&vec![have; pieces]),
            info,
            info_bytes,
            geometry,
        }),
        on_disk: if have { pieces as u32 } else { 0 },
        paths: Vec::new(),
    }
}

/// A leecher of a torrent of `pieces` pieces, nothing on disk.
fn leecher(pieces: usize, t0: Instant) -> Swarm {
    let mut s = Swarm::new(cfg(true), Start::Ready(opened(pieces, false)), t0);
    s.start(t0);
    s
}

fn seeder(pieces: usize, t0: Instant) -> Swarm {
    let mut s = Swarm::new(cfg(false), Start::Ready(opened(pieces, true)), t0);
    s.start(t0);
    s
}

fn connect(
    s: &mut Swarm,
    conn: ConnId,
    from: &str,
    peer: [u8; 20],
    outbound: bool,
    now: Instant,
) -> Vec<Action> {
    connect_as(s, conn, from, peer, outbound, false, now)
}

/// `hid_pieces`: the connection greeted without our BITFIELD.
fn connect_as(
    s: &mut Swarm,
    conn: ConnId,
    from: &str,
    peer: [u8; 20],
    outbound: bool,
    hid_pieces: bool,
    now: Instant,
) -> Vec<Action> {
    s.handle(
        Event::Connected {
            conn,
            addr: addr(from),
            local: addr("127.0.0.1:6881"),
            peer_id: peer,
            outbound,
            hid_pieces,
            rtt: None,
        },
        now,
    )
}

/// The pieces shown to `conn` (HAVE) in `a`.
fn shown(a: &[Action], conn: ConnId) -> Vec<u32> {
    commands(a, conn)
        .iter()
        .filter_map(|c| match c {
            Command::Have(i) => Some(*i),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_seed_shows_each_peer_its_own_pieces_until_every_piece_has_left() {
    let t0 = Instant::now();
    // 200 pieces of 16 KiB: a window of 4 pieces (64 KiB) per peer, 64
    // for the only hidden peer.
    let mut s = seeder(200, t0);
    assert!(s.hides_pieces());
    let a = connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t0);
    assert_eq!(shown(&a, 1), (0..64).collect::<Vec<_>>());
    let a = connect_as(&mut s, 2, "10.0.0.2:7000", id(2), false, true, t0);
    assert_eq!(shown(&a, 2), vec![64, 65, 66, 67]);
    // A peer greeted with our BITFIELD (before initial seeding began) is
    // shown nothing: it knows everything already.
    let a = connect_as(&mut s, 3, "10.0.0.3:7000", id(3), false, false, t0);
    assert!(shown(&a, 3).is_empty());
    // Peer 1 is no longer alone: holding 63, it is not shown more.
    let a = s.handle(Event::Have { conn: 1, index: 0 }, t0);
    assert!(shown(&a, 1).is_empty());
    // Peer 2 got piece 64: it is shown the next fresh piece, 68.
    let a = s.handle(Event::Have { conn: 2, index: 64 }, t0);
    assert_eq!(shown(&a, 2), vec![68]);
    // Peer 1 leaves without its pieces: the next peer is shown them
    // first, lowest first.
    gone(&mut s, 1, ConnError::Closed, t0);
    let a = connect_as(&mut s, 4, "10.0.0.4:7000", id(4), false, true, t0);
    assert_eq!(shown(&a, 4), vec![1, 2, 3, 4]);
}

#[test]
fn when_nothing_is_fresh_the_last_pieces_are_shown_twice_and_then_all() {
    let t0 = Instant::now();
    let mut s = seeder(10, t0);
    // Alone, peer 1 is shown all 10.
    let a = connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t0);
    assert_eq!(shown(&a, 1), (0..10).collect::<Vec<_>>());
    // Nothing is fresh: peer 2 is shown pieces shown to the fewest.
    let a = connect_as(&mut s, 2, "10.0.0.2:7000", id(2), false, true, t0);
    assert_eq!(shown(&a, 2), vec![0, 1, 2, 3]);
    // Peer 2 got piece 0: it is shown one more, never one it has or was
    // shown.
    let a = s.handle(Event::Have { conn: 2, index: 0 }, t0);
    assert_eq!(shown(&a, 2), vec![4]);
    // Peer 1 gets the rest; once every piece is had by some peer, every
    // hidden peer is shown all.
    let mut all = Vec::new();
    for i in 1..10 {
        assert!(s.hides_pieces(), "piece {i} is not had yet");
        all.extend(s.handle(Event::Have { conn: 1, index: i }, t0));
    }
    assert!(!s.hides_pieces());
    assert!(commands(&all, 2).contains(&Command::HaveAll));
    assert!(commands(&all, 1).contains(&Command::HaveAll));
    // A hidden connection that greets after the end is shown all at once.
    let a = connect_as(&mut s, 5, "10.0.0.5:7000", id(5), false, true, t0);
    assert!(commands(&a, 5).contains(&Command::HaveAll));
}

#[test]
fn a_peer_that_takes_its_pieces_fast_is_shown_more_at_once() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // 1000 pieces of 16 KiB: a window of 4.
    let mut s = seeder(1000, t0);
    // A second hidden peer, idle, so that peer 1 is not the only one.
    connect_as(&mut s, 2, "10.0.0.2:7000", id(2), false, true, t0);
    let a = connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t0);
    let mut shown_to = shown(&a, 1);
    assert_eq!(shown_to.len(), 4);
    // It gets them all within 10 ms, again and again: at least 4 pieces of
    // 16 KiB every 10 ms is 6.5 MB/s or more; 60 ms of that is 24 pieces.
    let mut t = t0;
    for _ in 0..30 {
        t += ms(10);
        let mut more = Vec::new();
        for i in shown_to.drain(..) {
            more.extend(shown(&s.handle(Event::Have { conn: 1, index: i }, t), 1));
        }
        shown_to = more;
        if !s.hides_pieces() {
            break;
        }
    }
    let window = match &s.stage {
        Stage::Live(l) => l.initial.as_ref().map(|i| i.window()),
        _ => None,
    };
    assert_eq!(window, Some(4), "the base window stays");
    let held = s.peers.get(1).map(|p| p.shown.len()).unwrap_or(0);
    assert!(held >= 24, "shown {held} at once");
    assert!(
        held <= crate::core::shared::pieces_per_peer(PIECE),
        "{held}"
    );
}

#[test]
fn initial_seeding_gives_up_when_no_peer_says_have() {
    let t0 = Instant::now();
    let mut s = seeder(40, t0);
    s.tick(t0);
    // Nobody is waiting on a shown piece: no stall, however long.
    s.tick(t0 + Duration::from_secs(60));
    assert!(s.hides_pieces());
    let t1 = t0 + Duration::from_secs(61);
    connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t1);
    s.tick(t1);
    // A HAVE restarts the clock.
    s.tick(t1 + Duration::from_secs(4));
    s.handle(
        Event::Have { conn: 1, index: 0 },
        t1 + Duration::from_secs(4),
    );
    s.tick(t1 + Duration::from_secs(5));
    let a = s.tick(t1 + Duration::from_secs(9));
    assert!(s.hides_pieces(), "{a:?}");
    let a = s.tick(t1 + Duration::from_secs(10));
    assert!(!s.hides_pieces());
    assert!(commands(&a, 1).contains(&Command::HaveAll), "{a:?}");
}

#[test]
fn data_going_out_to_a_hidden_peer_is_not_a_stall() {
    let t0 = Instant::now();
    let sec = Duration::from_secs;
    let mut s = seeder(40, t0);
    connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t0);
    s.tick(t0);
    // Large pieces on a slow link: no piece done for 12 s, but its bytes
    // keep going out.
    for k in 1..=12 {
        s.served(1, t0 + sec(k));
        s.tick(t0 + sec(k));
        assert!(s.hides_pieces(), "gave up after {k} s");
    }
    // Then nothing for 5 s: a stall.
    s.tick(t0 + sec(17));
    assert!(!s.hides_pieces());
}

#[test]
fn a_leecher_tells_every_peer_of_a_new_piece_even_one_that_has_it() {
    let t0 = Instant::now();
    let mut s = leecher(2, t0);
    let a = seeding_peer(&mut s, 1, "10.0.0.1:7000", id(1), 2, t0);
    let i = fetches(&a, 1)[0];
    let a = s.handle(Event::PieceDone { conn: 1, index: i }, t0);
    assert!(commands(&a, 1).contains(&Command::Have(i)), "{a:?}");
}

#[test]
fn initial_seeding_ends_with_have_all_for_each_hidden_peer() {
    let t0 = Instant::now();
    let mut s = seeder(2, t0);
    let a = connect_as(&mut s, 1, "10.0.0.1:7000", id(1), false, true, t0);
    assert_eq!(shown(&a, 1), vec![0, 1]);
    connect_as(&mut s, 2, "10.0.0.2:7000", id(2), false, true, t0);
    s.handle(Event::Have { conn: 1, index: 0 }, t0);
    let a = s.handle(Event::Have { conn: 1, index: 1 }, t0);
    assert!(!s.hides_pieces());
    assert!(commands(&a, 2).contains(&Command::HaveAll), "{a:?}");
    // Peer 1 is a seeder now: closed, not shown anything.
    assert!(!commands(&a, 1).contains(&Command::HaveAll));
    // A downloader never hides its pieces.
    let l = leecher(2, t0);
    assert!(!l.hides_pieces());
}

fn all_bits(n: usize) -> Bitfield {
    let mut b = Bitfield::new(n);
    for i in 0..n {
        b.set(i);
    }
    b
}

/// A peer with every piece that unchoked us.
fn seeding_peer(
    s: &mut Swarm,
    conn: ConnId,
    from: &str,
    peer: [u8; 20],
    n: usize,
    now: Instant,
) -> Vec<Action> {
    let mut a = connect(s, conn, from, peer, true, now);
    a.extend(s.handle(
        Event::Bitfield {
            conn,
            bits: all_bits(n),
        },
        now,
    ));
    a.extend(s.handle(Event::Unchoked { conn }, now));
    a
}

fn commands(actions: &[Action], to: ConnId) -> Vec<Command> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(c, cmd) if *c == to => Some(cmd.clone()),
            _ => None,
        })
        .collect()
}

fn fetches(actions: &[Action], to: ConnId) -> Vec<u32> {
    commands(actions, to)
        .into_iter()
        .filter_map(|c| match c {
            Command::Fetch(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn closed(actions: &[Action], to: ConnId) -> Option<CloseReason> {
    commands(actions, to).into_iter().find_map(|c| match c {
        Command::Close(r) => Some(r),
        _ => None,
    })
}

fn gone(s: &mut Swarm, conn: ConnId, error: ConnError, now: Instant) -> Vec<Action> {
    s.handle(Event::Gone { conn, error }, now)
}

#[test]
fn three_bad_pieces_ban_the_peer_by_address_and_id_and_requeue_its_pieces() {
    let t0 = Instant::now();
    let mut s = leecher(4, t0);
    let bad = addr("10.0.0.5:7000");
    let a = seeding_peer(&mut s, 1, "10.0.0.5:7000", id(5), 4, t0);
    let mut held = fetches(&a, 1);
    assert!(!held.is_empty());
    for strike in 1..=MAX_STRIKES {
        let piece = held.remove(0);
        let a = s.handle(
            Event::PieceBad {
                conn: 1,
                index: piece,
            },
            t0,
        );
        if strike < MAX_STRIKES {
            assert_eq!(closed(&a, 1), None);
            held.extend(fetches(&a, 1));
        } else {
            assert_eq!(closed(&a, 1), Some(CloseReason::BadPieces));
        }
    }
    gone(&mut s, 1, ConnError::Closing(CloseReason::BadPieces), t0);
    // Its pieces are queued again: an honest peer gets all four.
    let a = seeding_peer(&mut s, 2, "10.0.0.6:7000", id(6), 4, t0);
    let mut got = fetches(&a, 2);
    got.sort();
    assert_eq!(got, vec![0, 1, 2, 3]);
    // Banned by address (another peer id at the same listen address)...
    let a = connect(&mut s, 3, "10.0.0.5:7000", id(50), true, t0);
    assert_eq!(closed(&a, 3), Some(CloseReason::Banned));
    // ...and by peer id (the same peer from elsewhere).
    let a = connect(&mut s, 4, "10.0.0.9:9999", id(5), false, t0);
    assert_eq!(closed(&a, 4), Some(CloseReason::Banned));
    // Nor is it dialled again when the tracker lists it.
    let a = s.handle(
        Event::Lookup(Ok(vec![PeerEntry {
            addr: bad,
            peer_id: String::from_utf8_lossy(&id(77)).into_owned(),
            complete: true,
        }])),
        t0,
    );
    assert!(!a
        .iter()
        .any(|x| matches!(x, Action::Dial { addr, .. } if *addr == bad)));
}

#[test]
fn a_duplicate_connection_keeps_the_one_opened_by_the_smaller_peer_id() {
    let t0 = Instant::now();
    let smaller = *b"-AA0000-000000000000";
    let larger = *b"-ZZ0000-000000000000";
    assert!(smaller < OUR_ID && OUR_ID < larger);
    // A smaller peer id than ours: its connection to us (inbound) wins.
    let mut s = seeder(4, t0);
    connect(&mut s, 1, "10.0.0.1:7000", smaller, true, t0);
    let a = connect(&mut s, 2, "10.0.0.1:50000", smaller, false, t0);
    assert_eq!(closed(&a, 1), Some(CloseReason::Duplicate));
    assert_eq!(closed(&a, 2), None);
    assert_eq!(s.peer_count(), 1);
    // A larger one: our connection to it (outbound) wins.
    let mut s = seeder(4, t0);
    connect(&mut s, 1, "10.0.0.1:7000", larger, true, t0);
    let a = connect(&mut s, 2, "10.0.0.1:50000", larger, false, t0);
    assert_eq!(closed(&a, 2), Some(CloseReason::Duplicate));
    assert_eq!(closed(&a, 1), None);
    assert_eq!(s.peer_count(), 1);
}

#[test]
fn interest_lingers_five_seconds_after_catching_up_with_a_leecher() {
    let t0 = Instant::now();
    let at = |n: u64| t0 + Duration::from_millis(n);
    let mut s = leecher(4, t0);
    // A leecher that has piece 0 only.
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    let mut bits = Bitfield::new(4);
    bits.set(0);
    let a = s.handle(Event::Bitfield { conn: 1, bits }, t0);
    assert_eq!(commands(&a, 1), vec![Command::Interested(true)]);
    let a = s.handle(Event::Unchoked { conn: 1 }, t0);
    assert_eq!(fetches(&a, 1), vec![0]);
    // Piece 0 arrives: nothing more to want from it, but we stay interested.
    let a = s.handle(Event::PieceDone { conn: 1, index: 0 }, at(1000));
    assert!(!commands(&a, 1).contains(&Command::Interested(false)));
    let a = s.tick(at(5900));
    assert!(!commands(&a, 1).contains(&Command::Interested(false)));
    let a = s.tick(at(6000));
    assert_eq!(commands(&a, 1), vec![Command::Interested(false)]);
    // A new HAVE within the linger keeps interest without a new INTERESTED.
    let mut s = leecher(4, t0);
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    let mut bits = Bitfield::new(4);
    bits.set(0);
    s.handle(Event::Bitfield { conn: 1, bits }, t0);
    s.handle(Event::Unchoked { conn: 1 }, t0);
    s.handle(Event::PieceDone { conn: 1, index: 0 }, at(1000));
    let a = s.handle(Event::Have { conn: 1, index: 1 }, at(3000));
    assert!(commands(&a, 1)
        .iter()
        .all(|c| !matches!(c, Command::Interested(_))));
    let a = s.tick(at(9000));
    assert!(!commands(&a, 1).contains(&Command::Interested(false)));
}

#[test]
fn endgame_shares_the_last_pieces_with_up_to_three_peers_and_cancels_the_rest() {
    let t0 = Instant::now();
    let mut s = leecher(1, t0);
    let mut held = Vec::new();
    for c in 1..=5u64 {
        let a = seeding_peer(&mut s, c, &format!("10.0.0.{c}:7000"), id(c as u32), 1, t0);
        held.push((c, fetches(&a, c)));
    }
    let owners: Vec<ConnId> = held
        .iter()
        .filter(|(_, f)| f == &vec![0])
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(owners.len(), MAX_OWNERS, "{held:?}");
    let first = owners[0];
    let a = s.handle(
        Event::PieceDone {
            conn: first,
            index: 0,
        },
        t0,
    );
    for o in &owners[1..] {
        assert!(commands(&a, *o).contains(&Command::Cancel(0)), "{o}");
    }
    assert!(a.iter().any(|x| matches!(x, Action::Finish)));
    let a = s.handle(Event::Finished(Ok(())), t0);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Notify(Notice::Completed(_)))));
    assert_eq!(s.phase(), Phase::Seeding);
    // The other seeders are of no use now.
    assert_eq!(closed(&a, 5), Some(CloseReason::BothSeeders));
}

fn piece_state(s: &Swarm, i: u32) -> Option<PieceState> {
    match &s.stage {
        Stage::Live(l) => l.picker.state(i),
        _ => None,
    }
}

#[test]
fn released_and_vanished_pieces_go_back_to_the_queue() {
    let t0 = Instant::now();
    let mut s = leecher(2, t0);
    let a = seeding_peer(&mut s, 1, "10.0.0.1:7000", id(1), 2, t0);
    let got = fetches(&a, 1);
    assert_eq!(got.len(), 2);
    // A choke that lasted 10 s: the connection gives a piece back, and the
    // peer (still choking us) is not handed it again.
    s.handle(Event::Choked { conn: 1 }, t0);
    let a = s.handle(
        Event::Released {
            conn: 1,
            index: got[0],
        },
        t0 + Duration::from_secs(10),
    );
    assert!(fetches(&a, 1).is_empty());
    assert_eq!(piece_state(&s, got[0]), Some(PieceState::Queued));
    assert_eq!(piece_state(&s, got[1]), Some(PieceState::InFlight));
    // A connection closed as stalled (15 s without a block): its pieces
    // are queued again, and whoever can fetch them gets them.
    gone(
        &mut s,
        1,
        ConnError::Stalled(Duration::from_secs(15)),
        t0 + Duration::from_secs(15),
    );
    assert_eq!(piece_state(&s, got[1]), Some(PieceState::Queued));
    let a = seeding_peer(&mut s, 2, "10.0.0.2:7000", id(2), 2, t0);
    let mut again = fetches(&a, 2);
    again.sort();
    assert_eq!(again, vec![0, 1]);
}

#[test]
fn conflicting_metadata_sizes_do_not_mix() {
    let t0 = Instant::now();
    let mut s = Swarm::new(cfg(true), Start::Magnet, t0);
    s.start(t0);
    let (_, bytes) = info(2);
    let ext = |conn: ConnId, size: u64| Event::Ext {
        conn,
        metadata_size: Some(size),
        ut_metadata: true,
        ut_pex: false,
        listen_port: None,
    };
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    let a = s.handle(ext(1, bytes.len() as u64 + 100), t0);
    assert_eq!(commands(&a, 1), vec![Command::MetadataRequest(0)]);
    connect(&mut s, 2, "10.0.0.2:7000", id(2), true, t0);
    s.handle(ext(2, bytes.len() as u64), t0);
    // The liar's block, of the size it claimed, does not complete anything.
    let mut fake = bytes.clone();
    fake.extend_from_slice(&[b'x'; 100]);
    let a = s.handle(
        Event::MetadataData {
            conn: 1,
            piece: 0,
            total_size: fake.len() as u64,
            data: fake,
        },
        t0,
    );
    assert!(!a.iter().any(|x| matches!(x, Action::Open { .. })));
    assert_eq!(s.phase(), Phase::Metadata);
    // The honest peer's copy is fetched and matches... only if the info
    // hash is its SHA-1: use a swarm for the real hash.
    let ih = InfoHash(minitorrent_common::hash::sha1(&bytes));
    let mut s = Swarm::new(
        SwarmConfig {
            info_hash: ih,
            ..cfg(true)
        },
        Start::Magnet,
        t0,
    );
    s.start(t0);
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    s.handle(ext(1, bytes.len() as u64 + 100), t0);
    connect(&mut s, 2, "10.0.0.2:7000", id(2), true, t0);
    let a = s.handle(ext(2, bytes.len() as u64), t0);
    let mut asked = commands(&a, 2);
    let a = s.handle(Event::MetadataReject { conn: 1, piece: 0 }, t0);
    asked.extend(commands(&a, 2));
    if asked.is_empty() {
        asked = commands(&s.tick(t0 + Duration::from_secs(1)), 2);
    }
    assert_eq!(asked, vec![Command::MetadataRequest(0)]);
    let a = s.handle(
        Event::MetadataData {
            conn: 2,
            piece: 0,
            total_size: bytes.len() as u64,
            data: bytes.clone(),
        },
        t0,
    );
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Open { info_bytes, .. } if *info_bytes == bytes)));
    assert!(matches!(s.phase(), Phase::Checking { total: 2, .. }));
}

#[test]
fn keepalive_only_connections_make_room_for_a_real_peer() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(3);
    let mut s = seeder(4, t0);
    // Connections (from loopback, like a local attacker) that only send
    // keep-alives fill every place...
    for c in 1..=16u64 {
        let a = connect(
            &mut s,
            c,
            &format!("127.0.0.1:{}", 40000 + c),
            id(c as u32),
            false,
            t0,
        );
        assert_eq!(closed(&a, c), None);
    }
    assert_eq!(s.peer_count(), 16);
    // ...yet a leecher that says what it wants gets in, in place of the
    // longest idle of them.
    let a = connect(&mut s, 100, "127.0.0.1:50000", id(100), false, later);
    assert_eq!(closed(&a, 100), None);
    assert_eq!(closed(&a, 1), Some(CloseReason::MakingRoom));
    assert_eq!(s.peer_count(), 16);
    s.handle(
        Event::PeerInterest {
            conn: 100,
            interested: true,
        },
        later,
    );
    // A peer in a useful exchange is never the one to go.
    for c in 200..220u64 {
        let a = connect(
            &mut s,
            c,
            &format!("127.0.0.1:{}", 30000 + c),
            id(c as u32),
            false,
            later + Duration::from_secs(3),
        );
        assert_ne!(closed(&a, 100), Some(CloseReason::MakingRoom));
    }
}

#[test]
fn one_address_gets_a_bounded_share_of_the_connections() {
    let t0 = Instant::now();
    let mut s = seeder(4, t0);
    for c in 0..MAX_CONNS_PER_IP as u64 {
        let a = connect(
            &mut s,
            c,
            &format!("10.1.1.1:{}", 40000 + c),
            id(c as u32),
            false,
            t0,
        );
        s.handle(
            Event::PeerInterest {
                conn: c,
                interested: true,
            },
            t0,
        );
        assert_eq!(closed(&a, c), None);
    }
    let a = connect(&mut s, 99, "10.1.1.1:49999", id(99), false, t0);
    assert_eq!(closed(&a, 99), Some(CloseReason::TooManyFromAddress));
    // Another address still gets in.
    let a = connect(&mut s, 100, "10.1.1.2:40000", id(100), false, t0);
    assert_eq!(closed(&a, 100), None);
}

#[test]
fn every_table_stays_bounded_under_a_flood_of_short_connections() {
    let t0 = Instant::now();
    let mut s = seeder(4, t0);
    for n in 0..20_000u32 {
        let conn = 10 + n as u64;
        let port = 1024 + (n % 60000) as u16;
        let mut pid = id(n);
        pid[0] = b'x';
        connect(
            &mut s,
            conn,
            &format!("10.2.{}.{}:{port}", n / 250 % 250, n % 250),
            pid,
            false,
            t0,
        );
        // Half tell a listen port, half break the protocol.
        if n % 2 == 0 {
            s.handle(
                Event::Ext {
                    conn,
                    metadata_size: None,
                    ut_metadata: false,
                    ut_pex: false,
                    listen_port: Some(6881),
                },
                t0,
            );
        }
        let error = if n % 3 == 0 {
            ConnError::Protocol("bad bitfield".into())
        } else {
            ConnError::Closed
        };
        gone(&mut s, conn, error, t0);
        if n % 5 == 0 {
            s.handle(
                Event::Lookup(Ok(vec![PeerEntry {
                    addr: addr(&format!("10.3.{}.{}:{port}", n / 250 % 250, n % 250)),
                    peer_id: format!("p{n}"),
                    complete: true,
                }])),
                t0,
            );
        }
    }
    assert_eq!(s.peer_count(), 0);
    assert!(s.peers.bans.len() <= 2 * MAX_BANS, "{}", s.peers.bans.len());
    assert!(s.peers.strikes.len() <= MAX_STRIKE_ENTRIES);
    assert!(
        s.discovery.known_len() <= MAX_KNOWN,
        "{}",
        s.discovery.known_len()
    );
    assert!(s.discovery.connecting_len() <= s.cfg.max_peers);
}

#[test]
fn strikes_stay_bounded_and_count_per_peer_id() {
    let t0 = Instant::now();
    let mut s = leecher(2, t0);
    for n in 0..(MAX_STRIKE_ENTRIES as u64 + 500) {
        let conn = n + 1;
        let a = seeding_peer(
            &mut s,
            conn,
            &format!("10.4.{}.{}:7000", n / 250, n % 250),
            id(n as u32),
            2,
            t0,
        );
        let f = fetches(&a, conn);
        s.handle(Event::PieceBad { conn, index: f[0] }, t0);
        gone(&mut s, conn, ConnError::Closed, t0);
    }
    assert!(s.peers.strikes.len() <= MAX_STRIKE_ENTRIES);
}

#[test]
fn a_violator_is_banned_by_its_peer_id_never_by_its_ephemeral_port() {
    let t0 = Instant::now();
    let mut s = seeder(4, t0);
    // An inbound peer that never told its listen port breaks the protocol.
    connect(&mut s, 1, "10.5.0.1:50123", id(1), false, t0);
    gone(
        &mut s,
        1,
        ConnError::Protocol("bitfield of the wrong size".into()),
        t0,
    );
    // Another peer that happens to come from the same ephemeral port is
    // served...
    let a = connect(&mut s, 2, "10.5.0.1:50123", id(2), false, t0);
    assert_eq!(closed(&a, 2), None);
    // ...and so is another connection of that host with another peer id...
    let a = connect(&mut s, 3, "10.5.0.1:50999", id(3), false, t0);
    assert_eq!(closed(&a, 3), None);
    // ...but the violator's peer id is not.
    let a = connect(&mut s, 4, "10.5.0.1:51000", id(1), false, t0);
    assert_eq!(closed(&a, 4), Some(CloseReason::Banned));
    // One that told its listen port is banned there too.
    connect(&mut s, 5, "10.5.0.2:40000", id(5), false, t0);
    s.handle(
        Event::Ext {
            conn: 5,
            metadata_size: None,
            ut_metadata: false,
            ut_pex: false,
            listen_port: Some(6881),
        },
        t0,
    );
    gone(
        &mut s,
        5,
        ConnError::Protocol("undecodable message".into()),
        t0,
    );
    let a = connect(&mut s, 6, "10.5.0.2:6881", id(6), true, t0);
    assert_eq!(closed(&a, 6), Some(CloseReason::Banned));
}

#[test]
fn a_first_lookup_failure_with_nobody_known_fails_the_download() {
    let t0 = Instant::now();
    let mut s = leecher(2, t0);
    let a = s.handle(Event::Lookup(Err("tracker unreachable".into())), t0);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Notify(Notice::Failed { .. }))));
    assert!(s.is_over());
    // Once a lookup worked, a failure is only a warning.
    let mut s = leecher(2, t0);
    s.handle(Event::Lookup(Ok(Vec::new())), t0);
    let later = t0 + LOOKUP_EMPTY;
    let a = s.tick(later);
    assert!(a.iter().any(|x| matches!(x, Action::Lookup)));
    s.handle(Event::Lookup(Err("tracker unreachable".into())), later);
    assert!(!s.is_over());
}

#[test]
fn checking_runs_off_the_swarm_and_bitfields_wait_for_it() {
    let t0 = Instant::now();
    let (info, info_bytes) = info(4);
    let mut s = Swarm::new(
        cfg(true),
        Start::Check {
            info,
            info_bytes: info_bytes.clone(),
        },
        t0,
    );
    let a = s.start(t0);
    assert!(a.iter().any(|x| matches!(x, Action::Open { .. })));
    assert!(matches!(s.phase(), Phase::Checking { total: 4, .. }));
    // Nobody is asked for peers before we know what we have and are
    // registered (a check that fails must leave no registration behind).
    assert!(
        !a.iter()
            .any(|x| matches!(x, Action::Lookup | Action::Track(_))),
        "{a:?}"
    );
    assert!(!s
        .tick(t0 + LOOKUP_EMPTY)
        .iter()
        .any(|x| matches!(x, Action::Lookup)));
    // Peers that come meanwhile are answered.
    connect(&mut s, 1, "10.0.0.1:7000", id(1), false, t0);
    s.handle(
        Event::Bitfield {
            conn: 1,
            bits: all_bits(4),
        },
        t0,
    );
    s.handle(Event::Unchoked { conn: 1 }, t0);
    let st = s.status(t0, 0, 0, 3);
    assert_eq!(st.phase, Phase::Checking { done: 3, total: 4 });
    let a = s.handle(Event::Opened(Ok(opened(4, false))), t0);
    assert!(commands(&a, 1).contains(&Command::MetadataReady));
    // Registered as a leecher, then asking for peers: leechers starting
    // together find each other in the tracker's first answer.
    let track = a
        .iter()
        .position(|x| matches!(x, Action::Track(t) if !t.complete));
    let lookup = a.iter().position(|x| matches!(x, Action::Lookup));
    assert!(
        matches!((track, lookup), (Some(t), Some(l)) if t < l),
        "{a:?}"
    );
    assert!(commands(&a, 1).contains(&Command::Interested(true)));
    assert_eq!(fetches(&a, 1).len(), 4);
    assert_eq!(s.phase(), Phase::Downloading);
    // A connection whose `Connected` was queued behind `Opened` (it started
    // while the storage was checked) is told too.
    let a = connect(&mut s, 2, "10.0.0.2:7000", id(2), true, t0);
    assert!(commands(&a, 2).contains(&Command::MetadataReady));
}

#[test]
fn a_torrent_found_complete_on_disk_finishes_at_once() {
    let t0 = Instant::now();
    let mut s = Swarm::new(cfg(true), Start::Ready(opened(3, true)), t0);
    let a = s.start(t0);
    assert!(a.iter().any(|x| matches!(x, Action::Finish)));
    let a = s.handle(Event::Finished(Ok(())), t0);
    let Some(Action::Notify(Notice::Completed(sum))) = a
        .iter()
        .find(|x| matches!(x, Action::Notify(Notice::Completed(_))))
    else {
        panic!("no completion: {a:?}");
    };
    assert_eq!((sum.pieces_fetched, sum.pieces_on_disk), (0, 3));
    // A failed rename fails the download instead.
    let mut s = Swarm::new(cfg(true), Start::Ready(opened(3, true)), t0);
    s.start(t0);
    let a = s.handle(Event::Finished(Err("disk full".into())), t0);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Notify(Notice::Failed { .. }))));
}

#[test]
fn idle_inbound_connections_do_not_stop_a_leecher_from_dialling() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(3);
    let mut s = leecher(4, t0);
    s.handle(Event::Lookup(Ok(Vec::new())), t0);
    // One host fills the peer count with connections that say nothing.
    for c in 1..=8u64 {
        connect(
            &mut s,
            c,
            &format!("10.6.0.1:{}", 40000 + c),
            id(c as u32),
            false,
            t0,
        );
    }
    // The tracker is still asked, and a seeder it lists is dialled.
    let a = s.tick(later + Duration::from_secs(20));
    assert!(a.iter().any(|x| matches!(x, Action::Lookup)), "{a:?}");
    let seeder = addr("10.7.0.1:6881");
    let a = s.handle(
        Event::Lookup(Ok(vec![PeerEntry {
            addr: seeder,
            peer_id: "-XX0000-seeder000000".into(),
            complete: true,
        }])),
        later + Duration::from_secs(20),
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Dial { addr, .. } if *addr == seeder)),
        "{a:?}"
    );
}

#[test]
fn a_poisoner_that_changes_its_peer_id_is_still_struck_at_its_address() {
    let t0 = Instant::now();
    let mut s = leecher(8, t0);
    let mut conn = 0;
    for strike in 1..=MAX_STRIKES {
        conn += 1;
        // Each time under a new peer id, at the same listen address.
        let a = seeding_peer(&mut s, conn, "10.8.0.1:6881", id(100 + strike), 8, t0);
        let f = fetches(&a, conn);
        let a = s.handle(Event::PieceBad { conn, index: f[0] }, t0);
        if strike == MAX_STRIKES {
            assert_eq!(closed(&a, conn), Some(CloseReason::BadPieces));
        } else {
            assert_eq!(closed(&a, conn), None);
            gone(&mut s, conn, ConnError::Closed, t0);
        }
    }
}

#[test]
fn a_peer_offering_the_metadata_is_not_dropped_to_make_room() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(5);
    let mut s = Swarm::new(cfg(true), Start::Magnet, t0);
    s.start(t0);
    connect(&mut s, 1, "127.0.0.1:7001", id(1), true, t0);
    s.handle(
        Event::Ext {
            conn: 1,
            metadata_size: Some(1000),
            ut_metadata: true,
            ut_pex: false,
            listen_port: None,
        },
        t0,
    );
    for c in 2..=16u64 {
        connect(
            &mut s,
            c,
            &format!("127.0.0.1:{}", 40000 + c),
            id(c as u32),
            false,
            t0,
        );
    }
    let a = connect(&mut s, 100, "127.0.0.1:50000", id(100), false, later);
    assert_ne!(closed(&a, 1), Some(CloseReason::MakingRoom), "{a:?}");
    assert_eq!(closed(&a, 100), None, "an idle one makes room instead");
}

#[test]
fn a_banned_peer_id_that_is_not_utf8_is_not_dialled() {
    let t0 = Instant::now();
    let mut s = seeder(4, t0);
    let mut s2 = leecher(4, t0);
    let mut raw = id(9);
    raw[10] = 0xff;
    for sw in [&mut s, &mut s2] {
        connect(sw, 1, "10.9.0.1:50000", raw, false, t0);
        gone(sw, 1, ConnError::Protocol("garbage".into()), t0);
    }
    let a = s2.handle(
        Event::Lookup(Ok(vec![PeerEntry {
            addr: addr("10.9.0.1:6881"),
            peer_id: crate::core::shared::peer_id_str(&raw),
            complete: true,
        }])),
        t0,
    );
    assert!(!a.iter().any(|x| matches!(x, Action::Dial { .. })), "{a:?}");
}

/// The `--trace` lines the swarm emitted.
fn traces(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Trace { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

fn completed(actions: &[Action]) -> Option<Summary> {
    actions.iter().find_map(|a| match a {
        Action::Notify(Notice::Completed(sum)) => Some(sum.clone()),
        _ => None,
    })
}

/// A corrupt peer dropped at its third bad piece: the pieces it had
/// already sent (bad too) arrive before its connection closes.
fn drop_corrupt_peer(s: &mut Swarm, conn: ConnId, from: &str, peer: [u8; 20], now: Instant) {
    let n = s.stage_pieces();
    let a = seeding_peer(s, conn, from, peer, n, now);
    for index in fetches(&a, conn).into_iter().take(MAX_STRIKES as usize) {
        s.handle(Event::PieceBad { conn, index }, now);
    }
    gone(s, conn, ConnError::Closing(CloseReason::BadPieces), now);
}

impl Swarm {
    fn stage_pieces(&self) -> usize {
        match &self.stage {
            Stage::Live(l) => l.picker.num_pieces() as usize,
            _ => 0,
        }
    }
}

#[test]
fn bad_pieces_still_in_flight_after_the_drop_count_no_further_strike() {
    let t0 = Instant::now();
    let mut c = cfg(true);
    c.trace = true;
    let mut s = Swarm::new(c, Start::Ready(opened(8, false)), t0);
    s.start(t0);
    let a = seeding_peer(&mut s, 1, "10.0.0.5:7000", id(5), 8, t0);
    let held = fetches(&a, 1);
    assert!(held.len() > MAX_STRIKES as usize + 2, "{held:?}");
    let mut lines = Vec::new();
    let mut closes = 0;
    let mut refetched = Vec::new();
    // Every piece it holds arrives bad, the later ones after the drop.
    for &index in &held {
        let a = s.handle(Event::PieceBad { conn: 1, index }, t0);
        lines.extend(traces(&a));
        closes += usize::from(closed(&a, 1) == Some(CloseReason::BadPieces));
        refetched.extend(fetches(&a, 1));
    }
    assert_eq!(
        lines,
        vec![
            format!(
                "piece {} SHA-1 MISMATCH from 10.0.0.5:7000 (strike 1/3)",
                held[0]
            ),
            format!(
                "piece {} SHA-1 MISMATCH from 10.0.0.5:7000 (strike 2/3)",
                held[1]
            ),
            format!(
                "piece {} SHA-1 MISMATCH from 10.0.0.5:7000 (strike 3/3: dropped)",
                held[2]
            ),
        ]
    );
    assert_eq!(closes, 1, "dropped once");
    // Nothing new goes to the peer being dropped; every piece is queued.
    let after_drop: Vec<u32> = refetched
        .iter()
        .copied()
        .filter(|i| held[3..].contains(i))
        .collect();
    assert!(after_drop.is_empty(), "{after_drop:?}");
    gone(&mut s, 1, ConnError::Closing(CloseReason::BadPieces), t0);
    for i in 0..8 {
        assert_eq!(piece_state(&s, i), Some(PieceState::Queued), "piece {i}");
    }
    // Back under a new peer id at the same address: refused, not struck.
    let a = connect(&mut s, 2, "10.0.0.5:7000", id(55), true, t0);
    assert_eq!(closed(&a, 2), Some(CloseReason::Banned));
}

#[test]
fn a_leecher_whose_only_peers_sent_corrupt_data_says_so() {
    let t0 = Instant::now();
    let sec = Duration::from_secs;
    let mut s = leecher(8, t0);
    s.handle(Event::Lookup(Ok(Vec::new())), t0);
    assert_eq!(s.status(t0, 0, 0, 0).problem, None);
    drop_corrupt_peer(&mut s, 1, "10.0.0.5:7000", id(5), t0);
    // A peer that is just connecting may still bring the pieces: not yet.
    s.tick(t0 + sec(1));
    assert_eq!(s.status(t0 + sec(1), 0, 0, 0).problem, None);
    s.tick(t0 + CORRUPT_NOTICE + sec(1));
    let problem = s.status(t0 + sec(4), 0, 0, 0).problem.unwrap_or_default();
    assert!(
        problem.contains("every peer that has this file sent corrupt data")
            && problem.contains("its seeder's copy no longer matches the torrent")
            && problem.contains("(1 peer dropped after 3 bad pieces each)"),
        "{problem}"
    );
    // Long after, it is still the reason (not "no peer yet").
    s.tick(t0 + sec(60));
    assert!(s.status(t0 + sec(60), 0, 0, 0).problem.is_some());
    // Another leecher with nothing we lack changes nothing...
    let a = connect(&mut s, 2, "10.0.0.6:7000", id(6), true, t0 + sec(61));
    assert_eq!(closed(&a, 2), None);
    s.handle(
        Event::Bitfield {
            conn: 2,
            bits: Bitfield::new(8),
        },
        t0 + sec(61),
    );
    s.tick(t0 + sec(62));
    assert!(s.status(t0 + sec(62), 0, 0, 0).problem.is_some());
    // ...a second corrupt seeder is counted...
    drop_corrupt_peer(&mut s, 3, "10.0.0.7:7000", id(7), t0 + sec(63));
    s.tick(t0 + sec(63));
    s.tick(t0 + sec(70));
    let problem = s.status(t0 + sec(70), 0, 0, 0).problem.unwrap_or_default();
    assert!(problem.contains("(2 peers dropped"), "{problem}");
    // ...and an honest seeder ends it.
    seeding_peer(&mut s, 4, "10.0.0.8:7000", id(8), 8, t0 + sec(71));
    s.tick(t0 + sec(72));
    assert_eq!(s.status(t0 + sec(72), 0, 0, 0).problem, None);
}

#[test]
fn a_corrupt_peer_next_to_an_honest_seeder_is_no_problem_for_the_user() {
    let t0 = Instant::now();
    let mut s = leecher(8, t0);
    seeding_peer(&mut s, 1, "10.0.0.8:7000", id(8), 8, t0);
    drop_corrupt_peer(&mut s, 2, "10.0.0.5:7000", id(5), t0);
    s.tick(t0 + Duration::from_secs(10));
    assert_eq!(
        s.status(t0 + Duration::from_secs(10), 0, 0, 0).problem,
        None
    );
}

#[test]
fn a_resumed_download_reports_the_rate_of_the_bytes_it_fetched() {
    let t0 = Instant::now();
    let sec = Duration::from_secs;
    // Half the pieces on disk, found by a check that took 5 s.
    let started = t0 + sec(5);
    let (info, info_bytes) = info(8);
    let mut s = Swarm::new(cfg(true), Start::Check { info, info_bytes }, t0);
    s.start(t0);
    s.handle(Event::Opened(Ok(opened_half())), started);
    let a = seeding_peer(&mut s, 1, "10.0.0.8:7000", id(8), 8, started);
    let got = fetches(&a, 1);
    assert_eq!(got.len(), 4);
    let done = started + sec(2);
    let mut last = Vec::new();
    for index in got {
        last = s.handle(Event::PieceDone { conn: 1, index }, done);
    }
    assert!(last.iter().any(|x| matches!(x, Action::Finish)));
    let a = s.handle(Event::Finished(Ok(())), done);
    let sum = completed(&a).expect("completed");
    assert_eq!(sum.bytes_fetched(), 4 * PIECE);
    assert_eq!((sum.elapsed, sum.fetch_elapsed), (sec(7), sec(2)));
    assert_eq!(sum.rate(), (4 * PIECE) as f64 / 2.0);
    assert_eq!((sum.pieces_fetched, sum.pieces_on_disk), (4, 4));
    let line = sum.line();
    assert!(
        line.contains(
            "64.0 KiB fetched at 32.0 KiB/s from 1 peer, 4 pieces fetched, 4 already on disk"
        ),
        "{line}"
    );
    assert_eq!(sum.to_json()["bytes_fetched"], 4 * PIECE);
}

fn opened_half() -> Opened {
    let mut o = opened(8, false);
    let have: Vec<bool> = (0..8).map(|i| i < 4).collect();
    if let Some(m) = Arc::get_mut(&mut o.meta) {
        m.have = HaveSet::new(&have);
    }
    o.on_disk = 4;
    o
}

#[test]
fn the_status_while_fetching_metadata_knows_no_size() {
    let t0 = Instant::now();
    let mut s = Swarm::new(cfg(true), Start::Magnet, t0);
    s.start(t0);
    connect(&mut s, 1, "10.0.0.8:7000", id(8), true, t0);
    let st = s.status(t0, 0, 0, 0);
    assert_eq!((st.phase, st.size, st.peers), (Phase::Metadata, None, 1));
}

#[test]
fn an_unlisted_torrent_is_said_in_the_status_until_a_peer_connects() {
    let t0 = Instant::now();
    let mut s = leecher(2, t0);
    // Listed once (a lookup answered), then the tracker no longer lists it.
    s.handle(
        Event::Lookup(Ok(vec![PeerEntry {
            addr: addr("127.0.0.9:7000"),
            peer_id: "-MN0100-000000000009".into(),
            complete: true,
        }])),
        t0,
    );
    s.handle(Event::Unlisted, t0 + Duration::from_secs(1));
    let why = s.status(t0 + Duration::from_secs(1), 0, 0, 0).problem;
    let why = why.expect("the status says why nothing comes");
    assert!(
        why.starts_with("no peer shares this file any more"),
        "{why}"
    );
    assert!(why.contains("minitorrent search"), "{why}");
    // A peer with the pieces connects: the problem is over.
    let t1 = t0 + Duration::from_secs(2);
    seeding_peer(&mut s, 1, "127.0.0.9:7000", id(9), 2, t1);
    s.tick(t1);
    assert_eq!(s.status(t1, 0, 0, 0).problem, None);
}

#[test]
fn a_corrupt_peer_dropped_before_good_data_arrived_is_not_blamed_later() {
    let t0 = Instant::now();
    let sec = Duration::from_secs;
    let mut s = leecher(8, t0);
    s.handle(Event::Lookup(Ok(Vec::new())), t0);
    // A corrupt peer is dropped first...
    drop_corrupt_peer(&mut s, 1, "10.0.0.5:7000", id(5), t0);
    // ...then an honest seeder delivers a piece and leaves.
    let a = seeding_peer(&mut s, 2, "10.0.0.8:7000", id(8), 8, t0 + sec(1));
    let index = fetches(&a, 2)[0];
    s.handle(Event::PieceDone { conn: 2, index }, t0 + sec(1));
    gone(&mut s, 2, ConnError::Closed, t0 + sec(2));
    // Nobody is left, but nothing says the file itself is corrupt.
    s.tick(t0 + sec(3));
    s.tick(t0 + CORRUPT_NOTICE + sec(10));
    let problem = s.status(t0 + sec(20), 0, 0, 0).problem;
    assert!(
        !problem.unwrap_or_default().contains("corrupt"),
        "a peer that left is not a sign that the file is corrupt"
    );
}

#[test]
fn a_stopped_torrent_keeps_showing_its_size_and_pieces() {
    let t0 = Instant::now();
    let mut s = leecher(4, t0);
    let live = s.status(t0, 0, 0, 0);
    assert_eq!((live.pieces_total, live.size.is_some()), (4, true));
    s.stop();
    let st = s.status(t0 + Duration::from_secs(1), 0, 0, 0);
    assert_eq!(st.phase, Phase::Stopped);
    assert_eq!((st.size, st.pieces_total), (live.size, 4));
}

#[test]
fn detail_lists_peers_pieces_files_and_the_trackers_answer() {
    let t0 = Instant::now();
    let mut s = leecher(4, t0);
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    let mut half = Bitfield::new(4);
    half.set(0);
    half.set(1);
    s.handle(
        Event::Bitfield {
            conn: 1,
            bits: half,
        },
        t0,
    );
    s.handle(Event::Unchoked { conn: 1 }, t0);
    s.handle(Event::Lookup(Ok(Vec::new())), t0);
    let status = s.status(t0 + Duration::from_secs(2), 0, 0, 0);
    let d = s.detail(status, t0 + Duration::from_secs(3), |c| ConnFigures {
        am_choking: c == 1,
        downloaded: 10,
        uploaded: 20,
        down_rate: 1.0,
        up_rate: 2.0,
    });
    assert_eq!(d.peers.len(), 1);
    let p = &d.peers[0];
    assert_eq!(p.addr, "10.0.0.1:7000".parse().unwrap());
    assert_eq!(p.progress, Some(0.5));
    assert!(p.outbound && p.am_choking && p.am_interested && !p.peer_choking);
    assert_eq!((p.downloaded, p.uploaded), (10, 20));
    assert_eq!(p.client, "unknown (-XX0000-)");
    // Pieces 0 and 1 are being fetched from it; 2 and 3 nobody has.
    assert_eq!(d.pieces.len(), 4);
    assert!(d.pieces[..2].iter().all(|m| *m == PieceMark::InFlight));
    assert!(d.pieces[2..].iter().all(|m| *m == PieceMark::Missing));
    assert_eq!(d.files.len(), 1);
    assert_eq!(d.files[0].progress, 0.0);
    let note = d.tracker.unwrap();
    assert_eq!(note.answer, Ok("0 peers".to_string()));
    assert!((note.ago - 3.0).abs() < 1e-6);
    assert_eq!(d.history.len(), 1, "one rate measured, at 2 s");
}

// ---------------------------------------------------------------- ut_pex

/// The peer on `conn` said in its extension handshake that it speaks
/// `ut_pex`, and listens on `listen_port`.
fn pex_ext(s: &mut Swarm, conn: ConnId, listen_port: Option<u16>, now: Instant) -> Vec<Action> {
    s.handle(
        Event::Ext {
            conn,
            metadata_size: None,
            ut_metadata: false,
            ut_pex: true,
            listen_port,
        },
        now,
    )
}

/// The `ut_pex` message sent to `conn` in `a`.
fn pex_to(a: &[Action], conn: ConnId) -> Option<PexMsg> {
    commands(a, conn).into_iter().find_map(|c| match c {
        Command::Pex(m) => Some(m),
        _ => None,
    })
}

fn pex_peer(s: &str, flags: u8) -> PexPeer {
    PexPeer {
        addr: addr(s),
        flags,
    }
}

/// The dials in `a`, by address.
fn dials(a: &[Action]) -> Vec<(ConnId, SocketAddr)> {
    let mut v: Vec<(ConnId, SocketAddr)> = a
        .iter()
        .filter_map(|x| match x {
            Action::Dial { conn, addr } => Some((*conn, *addr)),
            _ => None,
        })
        .collect();
    v.sort_by_key(|(_, a)| *a);
    v
}

fn dialled(a: &[Action]) -> Vec<SocketAddr> {
    dials(a).into_iter().map(|(_, a)| a).collect()
}

/// A `ut_pex` message adding `addrs` from the peer on `conn`.
fn pex_from(s: &mut Swarm, conn: ConnId, addrs: &[&str], now: Instant) -> Vec<Action> {
    let msg = PexMsg {
        added: addrs.iter().map(|a| pex_peer(a, 0)).collect(),
        ..PexMsg::default()
    };
    s.handle(Event::Pex { conn, msg }, now)
}

#[test]
fn peers_that_speak_ut_pex_hear_of_the_others_by_listen_address_once_a_minute() {
    let t0 = Instant::now();
    let secs = |n| t0 + Duration::from_secs(n);
    let mut s = leecher(4, t0);
    // 1: dialled, speaks ut_pex. 2: inbound from an ephemeral port,
    // listens on 7002, speaks ut_pex. 3: inbound, its listen port unknown.
    // 4: a seeder we dialled, no ut_pex.
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    pex_ext(&mut s, 1, None, t0);
    connect(&mut s, 2, "10.0.0.2:50000", id(2), false, t0);
    pex_ext(&mut s, 2, Some(7002), t0);
    connect(&mut s, 3, "10.0.0.3:50001", id(3), false, t0);
    seeding_peer(&mut s, 4, "10.0.0.4:7000", id(4), 4, t0);
    let a = s.tick(secs(2));
    assert_eq!((pex_to(&a, 1), pex_to(&a, 2)), (None, None), "not yet");
    let a = s.tick(secs(3));
    // Never the peer itself, never an ephemeral port, never a peer whose
    // listen address is unknown; a seeder and a peer we dialled say so.
    let seed = pex_flags::SEED | pex_flags::REACHABLE;
    let m = pex_to(&a, 1).unwrap();
    assert_eq!(
        m.added,
        [
            pex_peer("10.0.0.2:7002", 0),
            pex_peer("10.0.0.4:7000", seed)
        ]
    );
    assert!(m.dropped.is_empty());
    let m = pex_to(&a, 2).unwrap();
    assert_eq!(
        m.added,
        [
            pex_peer("10.0.0.1:7000", pex_flags::REACHABLE),
            pex_peer("10.0.0.4:7000", seed)
        ]
    );
    assert!(commands(&a, 3).is_empty() && pex_to(&a, 4).is_none());
    // Peer 4 leaves, 5 comes: said a minute after the first message.
    gone(&mut s, 4, ConnError::Closed, secs(10));
    connect(&mut s, 5, "10.0.0.5:7000", id(5), true, secs(20));
    assert_eq!(pex_to(&s.tick(secs(62)), 1), None);
    let a = s.tick(secs(63));
    let m = pex_to(&a, 1).unwrap();
    assert_eq!(m.added, [pex_peer("10.0.0.5:7000", pex_flags::REACHABLE)]);
    assert_eq!(m.dropped, [addr("10.0.0.4:7000")]);
    // Nothing changed: nothing is sent.
    assert_eq!(pex_to(&s.tick(secs(123)), 1), None);
}

#[test]
fn loopback_addresses_are_named_only_to_peers_on_loopback() {
    let t0 = Instant::now();
    let mut s = leecher(4, t0);
    connect(&mut s, 1, "127.0.0.1:7001", id(1), true, t0);
    pex_ext(&mut s, 1, None, t0);
    connect(&mut s, 2, "10.0.0.2:7002", id(2), true, t0);
    pex_ext(&mut s, 2, None, t0);
    connect(&mut s, 3, "127.0.0.1:7003", id(3), true, t0);
    connect(&mut s, 4, "10.0.0.4:7004", id(4), true, t0);
    let a = s.tick(t0 + PEX_FIRST);
    let named = |m: PexMsg| m.added.iter().map(|p| p.addr).collect::<Vec<_>>();
    assert_eq!(
        named(pex_to(&a, 1).unwrap()),
        [
            addr("10.0.0.2:7002"),
            addr("10.0.0.4:7004"),
            addr("127.0.0.1:7003")
        ]
    );
    assert_eq!(named(pex_to(&a, 2).unwrap()), [addr("10.0.0.4:7004")]);
}

#[test]
fn peers_learnt_through_pex_are_dialled_but_never_ourselves() {
    let t0 = Instant::now();
    let mut s = leecher(4, t0);
    connect(&mut s, 1, "127.0.0.1:7001", id(1), true, t0);
    pex_ext(&mut s, 1, None, t0);
    connect(&mut s, 2, "127.0.0.1:50000", id(2), false, t0);
    pex_ext(&mut s, 2, Some(7002), t0);
    let a = pex_from(
        &mut s,
        1,
        &[
            "127.0.0.1:6881", // ours: our listen port, our end's IP
            "127.0.0.1:7001", // the sender itself, connected
            "127.0.0.1:7002", // peer 2's listen address, connected
            "127.0.0.1:7009", // new
            "10.0.0.9:7000",  // new
            "0.0.0.0:7000",   // not an address
            "10.0.0.8:0",     // no port
            "239.1.1.1:7000", // multicast
        ],
        t0,
    );
    assert_eq!(dialled(&a), [addr("10.0.0.9:7000"), addr("127.0.0.1:7009")]);
    // From a peer elsewhere, loopback addresses are its own machine's.
    connect(&mut s, 3, "10.0.0.3:7003", id(3), true, t0);
    let a = pex_from(&mut s, 3, &["127.0.0.1:7777", "10.0.0.7:7000"], t0);
    assert_eq!(dialled(&a), [addr("10.0.0.7:7000")]);
    // An address already known keeps its back-off: a peer's word does not
    // make us dial a dead address again and again.
    let a = s.handle(
        Event::ConnectFailed {
            conn: dials(&a)[0].0,
            addr: addr("10.0.0.7:7000"),
            error: ConnError::Closed,
        },
        t0,
    );
    assert!(dialled(&a).is_empty());
    let a = pex_from(&mut s, 1, &["10.0.0.7:7000"], t0 + Duration::from_secs(1));
    assert!(dialled(&a).is_empty(), "{a:?}");
}

#[test]
fn a_peer_sending_pex_too_often_is_ignored_and_a_flood_closed() {
    let t0 = Instant::now();
    let secs = |n| t0 + Duration::from_secs(n);
    let mut s = leecher(4, t0);
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    pex_ext(&mut s, 1, None, t0);
    // A small burst is fine...
    for i in 0..=pex::PEX_BURST {
        let a = pex_from(&mut s, 1, &[&format!("10.0.1.{i}:7000")], t0);
        assert_eq!(dialled(&a).len(), 1);
    }
    // ...more within the minute is ignored, without closing...
    let a = pex_from(&mut s, 1, &["10.0.2.1:7000"], secs(30));
    assert!(dialled(&a).is_empty() && closed(&a, 1).is_none());
    // ...and a minute later one is taken again.
    let a = pex_from(&mut s, 1, &["10.0.2.2:7000"], secs(60));
    assert_eq!(dialled(&a), [addr("10.0.2.2:7000")]);
    // A flood is closed, not banned.
    let mut last = Vec::new();
    for i in 0..=pex::PEX_ABUSE {
        last = pex_from(&mut s, 1, &[&format!("10.0.3.{i}:7000")], secs(61));
        assert!(dialled(&last).is_empty());
    }
    assert_eq!(closed(&last, 1), Some(CloseReason::PexFlood));
    gone(
        &mut s,
        1,
        ConnError::Closing(CloseReason::PexFlood),
        secs(61),
    );
    assert_eq!(s.peers.bans.len(), 0);
}

#[test]
fn a_private_torrent_exchanges_no_peers() {
    let t0 = Instant::now();
    let (_, plain) = info(4);
    let mut b = plain[..plain.len() - 1].to_vec();
    b.extend_from_slice(b"7:privatei1ee");
    let info = Info::from_bytes(&b).unwrap();
    assert!(info.private);
    let geometry = Geometry::from_info(&info).unwrap();
    let o = Opened {
        meta: Arc::new(Meta {
            have: HaveSet::new(&[false; 4]),
            info,
            info_bytes: b,
            geometry,
        }),
        on_disk: 0,
        paths: Vec::new(),
    };
    let mut s = Swarm::new(cfg(true), Start::Ready(o), t0);
    s.start(t0);
    connect(&mut s, 1, "10.0.0.1:7000", id(1), true, t0);
    pex_ext(&mut s, 1, None, t0);
    connect(&mut s, 2, "10.0.0.2:7000", id(2), true, t0);
    assert_eq!(pex_to(&s.tick(t0 + PEX_FIRST), 1), None);
    let a = pex_from(&mut s, 1, &["10.0.0.9:7000"], t0);
    assert!(dialled(&a).is_empty());
}
