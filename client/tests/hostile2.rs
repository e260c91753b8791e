//! Hostile peers that try to exhaust a seeder's memory or threads, or to
//! derail a magnet download: the seeder stays small and keeps serving, and
//! downloads complete. The hostile peers are written here with std::net and
//! the shared wire codecs.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use minitorrent_common::wire::{self, ExtHandshake, Handshake, Message, MetadataMsg};

fn info_hash_of(torrent: &std::path::Path) -> InfoHash {
    Metainfo::from_bytes(&std::fs::read(torrent).unwrap())
        .unwrap()
        .info_hash
}

fn peer_id(tag: &str) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    let tag = format!("{tag}{:05}", fastrand::u32(..100_000));
    id[8..8 + tag.len().min(12)].copy_from_slice(&tag.as_bytes()[..tag.len().min(12)]);
    id
}

fn frame(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

/// A field of /proc/PID/status, e.g. `VmRSS` (kB) or `Threads`.
fn proc_status(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Whether the other side closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A seeder of a fresh random file; returns (tracker, dir, data, torrent,
/// info hash, seeder).
struct Swarm {
    tracker: Tracker,
    tmp: TempDir,
    data: std::path::PathBuf,
    torrent: std::path::PathBuf,
    magnet: String,
    ih: InfoHash,
    seeder: Proc,
}

fn swarm(tag: &str, size: usize, piece: u32) -> Swarm {
    let tracker = Tracker::start();
    let tmp = TempDir::new(tag);
    let s = tmp.sub("s");
    let data = s.join("f.bin");
    write_random(&data, size);
    let torrent = tmp.join("f.torrent");
    let magnet = create_torrent(&data, &torrent, &tracker, piece);
    let ih = info_hash_of(&torrent);
    let seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    Swarm {
        tracker,
        tmp,
        data,
        torrent,
        magnet,
        ih,
        seeder,
    }
}

impl Swarm {
    fn leech_ok(&self, name: &'static str, source: &str) {
        let dir = self.tmp.sub(name);
        get_ok(name, &self.tracker, source, &dir, &[]);
        assert_same_file(&self.data, &dir.join("f.bin"));
    }
}

#[test]
fn a_peer_flooding_metadata_requests_without_reading_costs_bounded_memory() {
    // 4 MiB in 16 KiB pieces: a 5 KB info dictionary, so each 30-byte
    // request asks for 170 times its size.
    let sw = swarm("mdrss", 4 << 20, 16 * 1024);
    let port = sw.seeder.port();
    let pid = sw.seeder.child.id();
    let rss_before = proc_status(pid, "VmRSS");

    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&Handshake::new(sw.ih, peer_id("flood")).encode())
        .unwrap();
    let mut ext = ExtHandshake::default();
    ext.m.insert("ut_metadata".into(), 3);
    c.write_all(&frame(&Message::Extended {
        id: 0,
        payload: ext.encode(),
    }))
    .unwrap();
    let req = frame(&Message::Extended {
        id: wire::UT_METADATA_ID,
        payload: MetadataMsg::Request { piece: 0 }.encode(),
    });
    let burst: Vec<u8> = req.iter().copied().cycle().take(req.len() * 2000).collect();
    // Writes requests for a few seconds and never reads.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    c.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let flooder = std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0usize;
        while !stop2.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(4) {
            match c.write(&burst) {
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        sent
    });
    let mut peak = 0;
    while !flooder.is_finished() {
        let rss = proc_status(pid, "VmRSS");
        peak = peak.max(rss);
        if rss > rss_before + 64 * 1024 {
            stop.store(true, Ordering::SeqCst);
            let _ = flooder.join();
            panic!("seeder VmRSS {rss} kB (was {rss_before} kB) under a metadata flood");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = flooder.join().unwrap();
    let rss = proc_status(pid, "VmRSS");
    assert!(
        rss < rss_before + 64 * 1024,
        "seeder VmRSS {rss} kB (was {rss_before} kB) after {sent} bytes of requests"
    );
    eprintln!("flood: {sent} bytes of requests sent; seeder VmRSS {rss_before} -> peak {peak} kB");
    // The seeder still serves a normal leecher, magnet and all.
    sw.leech_ok("l", &sw.magnet);
}

#[test]
fn a_handshake_sent_one_byte_every_two_seconds_is_cut_off() {
    let sw = swarm("loris", 100_000, 16 * 1024);
    let port = sw.seeder.port();
    let hs = Handshake::new(sw.ih, peer_id("loris")).encode();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    for b in hs.iter().take(hs.len() - 1) {
        if c.write_all(&[*b]).is_err() || closed_within(&mut c, Duration::from_secs(2)) {
            let took = started.elapsed();
            assert!(took < Duration::from_secs(13), "closed only after {took:?}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still open after 15 s of a trickling handshake"
        );
    }
    panic!("the seeder waited for the whole trickling handshake");
}

#[test]
fn a_flood_of_silent_connections_costs_no_thread_each_and_locks_nobody_out() {
    let sw = swarm("silent", 1 << 20, 16 * 1024);
    let port = sw.seeder.port();
    let pid = sw.seeder.child.id();
    let threads_before = proc_status(pid, "Threads");
    let mut silent: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // All but the last few are closed at once (refused, or evicted by the
    // next one), long before any handshake timeout.
    let mut closed = 0;
    for s in silent.iter_mut().take(250) {
        if closed_within(s, Duration::from_secs(5)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 250, "silent connections kept open");
    let threads = proc_status(pid, "Threads");
    assert!(
        threads < threads_before + 40,
        "{threads} threads (were {threads_before}) with 300 silent connections"
    );
    // Someone keeps opening silent connections while a real leecher comes.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let opener = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                silent.push(s);
            }
            if silent.len() > 400 {
                silent.drain(..100);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    sw.leech_ok("l", sw.torrent.to_str().unwrap());
    stop.store(true, Ordering::SeqCst);
    opener.join().unwrap();
}
