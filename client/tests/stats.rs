//! `STATS` end to end: a real seeder and a real leecher (the `minitorrent`
//! binary) download through a tracker running in this process, whose live
//! view (`Tracker::stats_view`, what the web page reads) shows the data
//! moving from the seeder to the leecher, and how many peers hold each
//! piece, while it happens.

mod common;

use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_tracker::stats::{PeerProtocol, SwarmLive};

const PIECE: u32 = 32 * 1024;

#[test]
fn the_live_view_shows_the_seeder_sending_to_the_leecher() {
    let t = InProcessTracker::start(None);
    let tmp = TempDir::new("stats-e2e");
    let size = 2 * 1024 * 1024;
    let src = tmp.sub("seed");
    let data = src.join("class.bin");
    write_random(&data, size);
    let torrent = tmp.join("class.torrent");
    let p = run_create(&data, &torrent, &t.addr, PIECE);
    let hex = p
        .out
        .text()
        .split_whitespace()
        .find(|w| w.len() == 40 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no info hash in\n{}", p.dump()));
    let info_hash = InfoHash(minitorrent_common::hex::decode_20(&hex).unwrap());
    let pieces = size / PIECE as usize;

    // Slow enough (about 4 s) for several STATS rounds during the transfer.
    let seeder = Proc::mt(
        "seeder",
        &[
            "seed",
            torrent.to_str().unwrap(),
            "--dir",
            src.to_str().unwrap(),
            "--tracker",
            &t.addr,
            "--max-upload-rate",
            "512K",
        ],
    );
    if seeder
        .out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .is_none()
    {
        panic!("seeder did not start\n{}", seeder.dump());
    }
    let dest = tmp.sub("leech");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            torrent.to_str().unwrap(),
            "--no-seed",
            "--dir",
            dest.to_str().unwrap(),
            "--tracker",
            &t.addr,
            "--trace",
        ],
    );

    // Watch the view while the download runs; keep what it showed.
    let mut edge_seen: Option<(SwarmLive, u64)> = None;
    let mut shared_pieces_seen = false;
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some(live) = t.view.swarm(&info_hash, Instant::now()) {
            let seeder = live.peers.iter().find(|p| p.seeder);
            let leecher = live
                .peers
                .iter()
                .find(|p| !p.seeder && p.protocol == PeerProtocol::Json);
            if let (Some(s), Some(l)) = (seeder, leecher) {
                if let Some(e) = live
                    .edges
                    .iter()
                    .find(|e| e.from == s.addr && e.to == l.addr && e.bytes > 0)
                {
                    let bytes = e.bytes;
                    edge_seen = Some((live.clone(), bytes));
                }
                if live.availability.len() == pieces && live.availability.contains(&2) {
                    // The seeder holds every piece; the leecher some.
                    assert!(live.availability.iter().all(|&n| n == 1 || n == 2));
                    assert!(l.reporting && l.progress.is_some_and(|p| p > 0.0 && p < 1.0));
                    shared_pieces_seen = true;
                }
            }
        }
        if edge_seen.is_some() && shared_pieces_seen {
            break;
        }
        if let Ok(Some(_)) = leecher.child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "get failed\n{}", leecher.dump());
    assert_same_file(&data, &dest.join("class.bin"));
    let (live, bytes) = edge_seen.unwrap_or_else(|| {
        panic!(
            "the live view never showed seeder → leecher; last view: {:?}\n{}\n{}",
            t.view.swarm(&info_hash, Instant::now()),
            seeder.dump(),
            leecher.dump()
        )
    });
    assert!(bytes > 0 && bytes <= size as u64, "{bytes}");
    assert_eq!(live.pieces as usize, pieces, "{live:?}");
    assert!(
        shared_pieces_seen,
        "availability never showed a piece on both peers: {live:?}"
    );
    // STATS lead to no decision: both were always listed by the registry.
    assert_eq!(live.seeders, 1);

    // `--trace` shows each STATS as one line, and not the OK answering it.
    let trace = leecher.err.text();
    let stats: Vec<&str> = trace.lines().filter(|l| l.contains("  STATS ")).collect();
    assert!(!stats.is_empty(), "no STATS in the trace\n{trace}");
    for line in &stats {
        assert!(
            line.contains(" tracker ") && line.contains(" peer=-MN"),
            "{line}"
        );
        let tid = line.rsplit("tid=").next().unwrap();
        assert!(
            !trace
                .lines()
                .any(|l| l.contains("  OK interval=") && l.ends_with(&format!(" tid={tid}"))),
            "the OK answering {line:?} is traced"
        );
    }
}
