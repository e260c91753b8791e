//! `STATS` over real UDP into a tracker running in this process, read back
//! through the live view's data API (`Tracker::stats_view`): what a
//! registered peer reports shows up (rates, edges, availability); the same
//! `STATS` from another IP, or a malformed one, gets `ERROR` and changes
//! nothing; `OK` asks for `STATS` only while the swarm has a leecher; the
//! tables stay within their bounds.

mod common;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Instant;

use common::{Bep15, Client, TrackerProc};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    ErrorCode, FileInfo, Reply, Request, StatsEdge, StatsFile,
};
use minitorrent_common::udp_tracker as udp;
use minitorrent_tracker::config::Config;
use minitorrent_tracker::server::{StopHandle, Tracker};
use minitorrent_tracker::stats::{PeerProtocol, StatsView, SwarmLive, MAX_EDGES, MAX_REPORTERS};

struct InProcess {
    addr: SocketAddr,
    view: StatsView,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn start() -> InProcess {
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            discover: false,
            ..Config::default()
        };
        let tracker = Tracker::bind(&config).expect("bind the tracker");
        let (addr, view, stop) = (
            tracker.local_addr(),
            tracker.stats_view(),
            tracker.stop_handle(),
        );
        let thread = std::thread::spawn(move || {
            tracker.run(&config).expect("tracker runs");
        });
        InProcess {
            addr,
            view,
            stop,
            thread: Some(thread),
        }
    }

    fn swarm(&self, h: InfoHash) -> SwarmLive {
        self.view
            .swarm(&h, Instant::now())
            .expect("the swarm is in the registry")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const HASH: InfoHash = InfoHash([0x5a; 20]);
const SIZE: u64 = 4 * 16384;

fn register(tid: u32, id: &str, port: u16, complete: bool) -> Request {
    Request::Register {
        tid,
        peer_id: id.into(),
        port,
        files: vec![FileInfo {
            info_hash: HASH,
            name: "class.bin".into(),
            size: SIZE,
            complete,
        }],
    }
}

fn stats(
    tid: u32,
    id: &str,
    have: u8,
    done: u64,
    rates: (u64, u64),
    peers: Vec<StatsEdge>,
) -> Request {
    Request::Stats {
        tid,
        peer_id: id.into(),
        files: vec![StatsFile {
            info_hash: HASH,
            size: SIZE,
            done,
            pieces: 4,
            have: Some(vec![have]),
            down: rates.0,
            up: rates.1,
            peers,
            truncated: false,
        }],
    }
}

fn edge(addr: &str, sent: u64, recv: u64) -> StatsEdge {
    StatsEdge {
        addr: addr.parse().unwrap(),
        sent,
        recv,
    }
}

fn stats_every(r: &Reply) -> u32 {
    match r {
        Reply::Ok { stats_every, .. } => *stats_every,
        other => panic!("expected OK, got {other:?}"),
    }
}

fn code(r: &Reply) -> ErrorCode {
    match r {
        Reply::Error { code, .. } => code.clone(),
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[test]
fn stats_from_registered_peers_show_up_in_the_live_view() {
    let t = InProcess::start();
    let seeder = Client::new(t.addr);
    let leecher = Client::new(t.addr);
    // A lone seeder: nothing moves, no STATS wanted.
    assert_eq!(
        stats_every(&seeder.ask(&register(1, "-MN0100-seeder00000", 7001, true))),
        0
    );
    // A leecher joins: it is asked at once, the seeder at its next heartbeat.
    assert_eq!(
        stats_every(&leecher.ask(&register(2, "-MN0100-leecher0000", 7002, false))),
        1
    );
    let hb = Request::Heartbeat {
        tid: 3,
        peer_id: "-MN0100-seeder00000".into(),
    };
    assert_eq!(stats_every(&seeder.ask(&hb)), 1);
    // A BEP 15 peer in the same swarm: listed, but it sends no STATS.
    let bep = Bep15::connect("127.0.0.1:0", t.addr);
    bep.announce(
        4,
        HASH,
        b"-qB4650-bep15peer000",
        7003,
        SIZE,
        udp::Event::Started,
        10,
    );

    // Pieces 0 and 1 from the seeder: the leecher says it received them,
    // the seeder says it sent them (the view shows one edge, not both sums).
    let r = leecher.ask(&stats(
        5,
        "-MN0100-leecher0000",
        0b1100_0000,
        2 * 16384,
        (30_000, 0),
        vec![edge("127.0.0.1:7001", 0, 32_768)],
    ));
    assert_eq!(stats_every(&r), 1);
    let r = seeder.ask(&stats(
        6,
        "-MN0100-seeder00000",
        0b1111_0000,
        SIZE,
        (0, 31_000),
        vec![edge("127.0.0.1:7002", 32_768, 0)],
    ));
    assert_eq!(stats_every(&r), 1);

    let live = t.swarm(HASH);
    assert_eq!(live.info_hash, HASH.to_hex());
    assert_eq!((live.name.as_str(), live.size), ("class.bin", SIZE));
    assert_eq!((live.seeders, live.leechers), (1, 2));
    assert_eq!(live.pieces, 4);
    let peer = |port: u16| {
        live.peers
            .iter()
            .find(|p| p.addr.port() == port)
            .unwrap_or_else(|| panic!("no peer on port {port}: {:?}", live.peers))
    };
    let s = peer(7001);
    assert!(s.seeder && s.reporting);
    assert_eq!(
        (s.protocol, s.up_rate, s.progress),
        (PeerProtocol::Json, 31_000, Some(1.0))
    );
    assert_eq!(s.client, "minitorrent 0.1.0.0");
    let l = peer(7002);
    assert!(!l.seeder && l.reporting);
    assert_eq!((l.down_rate, l.progress), (30_000, Some(0.5)));
    let b = peer(7003);
    assert_eq!((b.protocol, b.reporting), (PeerProtocol::Bep15, false));
    assert_eq!(b.client, "qBittorrent 4.6.5.0");
    assert_eq!(live.edges.len(), 1, "{:?}", live.edges);
    let e = &live.edges[0];
    assert_eq!((e.from.port(), e.to.port(), e.bytes), (7001, 7002, 32_768));
    // The seeder has all 4 pieces, the leecher the first 2.
    assert_eq!(live.availability, vec![2, 2, 1, 1]);
    // And it serializes for the web page.
    let json = serde_json::to_value(&live).unwrap();
    assert_eq!(json["edges"][0]["from"], "127.0.0.1:7001");
    assert_eq!(json["peers"][2]["protocol"], "bep15");

    // The leecher completes: no leecher left but the BEP 15 one, which
    // leaves too; then nobody is asked for STATS.
    bep.announce(
        7,
        HASH,
        b"-qB4650-bep15peer000",
        7003,
        0,
        udp::Event::Stopped,
        10,
    );
    assert_eq!(
        stats_every(&leecher.ask(&register(8, "-MN0100-leecher0000", 7002, true))),
        0
    );
    let hb = Request::Heartbeat {
        tid: 9,
        peer_id: "-MN0100-seeder00000".into(),
    };
    assert_eq!(stats_every(&seeder.ask(&hb)), 0);
}

#[test]
fn stats_from_another_ip_or_malformed_change_nothing() {
    let t = InProcess::start();
    let leecher = Client::new(t.addr);
    stats_every(&leecher.ask(&register(1, "-MN0100-leecher0000", 7002, false)));
    let before = t.swarm(HASH);

    // The same peer id from 127.0.0.2: not that peer.
    let elsewhere = Client::bound("127.0.0.2:0", t.addr);
    let forged = stats(
        2,
        "-MN0100-leecher0000",
        0b1111_0000,
        SIZE,
        (999, 999),
        vec![edge("127.0.0.1:9999", 1 << 20, 1 << 20)],
    );
    let r = elsewhere.ask(&forged);
    assert_eq!(code(&r), ErrorCode::UnknownPeer, "{r:?}");
    // A peer id never registered, from the right IP.
    let r = leecher.ask(&stats(3, "-MN0100-nobody00000", 0, 0, (1, 1), Vec::new()));
    assert_eq!(code(&r), ErrorCode::UnknownPeer, "{r:?}");
    // Malformed: a bitfield of the wrong length, a missing field.
    let hash = HASH.to_hex();
    let bad = format!(
        r#"{{"type":"STATS","tid":4,"peer_id":"-MN0100-leecher0000","files":[{{"info_hash":"{hash}","size":65536,"done":0,"pieces":4,"have":"ffff","down":0,"up":0}}]}}"#
    );
    match leecher.ask_raw(bad.as_bytes()) {
        Reply::Error {
            tid: Some(4),
            code: ErrorCode::BadRequest,
            message,
        } => assert!(message.contains("files[0].have"), "{message}"),
        other => panic!("{other:?}"),
    }
    let r = leecher.ask_raw(br#"{"type":"STATS","tid":5,"peer_id":"-MN0100-leecher0000"}"#);
    assert_eq!(code(&r), ErrorCode::BadRequest);
    // A file the peer never registered is ignored (the STATS is answered).
    let mut other = stats(
        6,
        "-MN0100-leecher0000",
        0b1111_0000,
        SIZE,
        (5, 5),
        Vec::new(),
    );
    if let Request::Stats { files, .. } = &mut other {
        files[0].info_hash = InfoHash([0x11; 20]);
    }
    assert!(matches!(leecher.ask(&other), Reply::Ok { .. }));
    assert!(t
        .view
        .swarm(&InfoHash([0x11; 20]), Instant::now())
        .is_none());

    assert_eq!(t.swarm(HASH), before);
    let l = &before.peers[0];
    assert!(!l.reporting && l.progress.is_none() && l.down_rate == 0);
    assert!(before.edges.is_empty() && before.availability.is_empty());
}

#[test]
fn the_window_keeps_its_bounds() {
    let t = InProcess::start();
    let c = Client::new(t.addr);
    let n = MAX_REPORTERS + 8;
    for i in 0..n {
        let id = format!("-MN0100-p{i:011}");
        let port = 10_000 + i as u16;
        stats_every(&c.ask(&register(i as u32, &id, port, false)));
        // 64 remote peers each, all sending and receiving: far more edges
        // than the cap.
        let edges = (0..64)
            .map(|j| edge(&format!("10.0.{}.{}:1", i % 250, j + 1), 100, 100))
            .collect();
        let r = c.ask(&stats(
            1000 + i as u32,
            &id,
            0b1000_0000,
            16384,
            (1, 1),
            edges,
        ));
        assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    }
    let live = t.swarm(HASH);
    let reporting = live.peers.iter().filter(|p| p.reporting).count();
    assert_eq!(reporting, MAX_REPORTERS);
    assert!(live.edges.len() <= MAX_EDGES, "{}", live.edges.len());
    assert!(live.edges.len() > MAX_EDGES / 2, "{}", live.edges.len());
    assert_eq!(live.availability, vec![MAX_REPORTERS as u32, 0, 0, 0]);
    assert!(t.view.stats.dropped_edges() > 0);
}

#[test]
fn trace_shows_a_stats_and_its_answer_on_one_line() {
    let t = TrackerProc::start(&["--trace"]);
    let c = Client::new(t.addr);
    stats_every(&c.ask(&register(1, "-MN0100-leecher0000", 7002, false)));
    let r = c.ask(&stats(
        2,
        "-MN0100-leecher0000",
        0b1000_0000,
        16384,
        (1, 0),
        vec![edge("127.0.0.1:7001", 0, 16384)],
    ));
    assert_eq!(stats_every(&r), 1);
    let line = t.wait_stderr("STATS 1 file");
    assert!(
        line.contains("← ")
            && line.contains("1 peer: 0 B sent, 16.0 KiB received (25% done)")
            && line.contains("⇒ OK interval=10s timeout=30s stats_every=1s tid=2"),
        "{line}"
    );
    // No separate `→ … OK` line for it.
    assert!(!t
        .stderr()
        .iter()
        .any(|l| l.contains("→ ") && l.ends_with(" tid=2")));
}
