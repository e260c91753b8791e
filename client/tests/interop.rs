//! Interoperability with a real BitTorrent client, aria2 (`aria2c`, Debian
//! package `aria2`, installed by `scripts/test.sh`), through our tracker's
//! BEP 15 side:
//! 1. aria2c seeds, `minitorrent get` downloads;
//! 2. `minitorrent seed` seeds, aria2c downloads;
//! 3. a minitorrent seeder, an aria2c leecher and a minitorrent leecher at once.
//!
//! Every download is compared byte for byte. Without aria2c these tests
//! fail, unless `MINITORRENT_SKIP_INTEROP=1`.
//!
//! aria2 sends UDP tracker requests through its DHT socket, so DHT must be
//! on (with its own port and state file, and no entry point it stays
//! local). Every aria2c is bounded by `--seed-time` and killed on drop.

#[path = "../../tracker/tests/common/aria2.rs"]
mod aria2;
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aria2::aria2c;
use common::*;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::{Request, Response};

const PIECE: u32 = 64 * 1024;

/// aria2c on `torrent`, files in `dir`. A seeder seeds for at most two
/// minutes; a leecher exits when its download is complete.
fn aria2(bin: &Path, name: &'static str, torrent: &Path, dir: &Path, seed: bool) -> Proc {
    let dht = dir.join(".aria2-dht.dat");
    let args: Vec<String> = vec![
        "--enable-dht=true".into(),
        format!("--dht-listen-port={}", free_udp_port()),
        format!("--dht-file-path={}", dht.display()),
        "--enable-peer-exchange=false".into(),
        "--bt-enable-lpd=false".into(),
        "--disable-ipv6=true".into(),
        format!("--listen-port={}", free_tcp_port()),
        "--seed-ratio=0.0".into(),
        format!("--seed-time={}", if seed { 2 } else { 0 }),
        format!("--bt-seed-unverified={seed}"),
        "--check-integrity=true".into(),
        "--file-allocation=none".into(),
        "--allow-overwrite=true".into(),
        "--auto-file-renaming=false".into(),
        "--summary-interval=0".into(),
        "--console-log-level=warn".into(),
        "--bt-tracker-interval=2".into(),
        format!("--dir={}", dir.display()),
        torrent.to_str().unwrap().into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn(name, bin, &args, &[], false)
}

/// Seeders and leechers of `hash` at `tracker`, from a BEP 15 scrape.
fn scrape(tracker: SocketAddr, hash: InfoHash) -> Option<(u32, u32)> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    sock.connect(tracker).ok()?;
    let mut buf = [0u8; 1500];
    sock.send(&Request::Connect { transaction_id: 1 }.encode())
        .ok()?;
    let n = sock.recv(&mut buf).ok()?;
    let Ok(Response::Connect { connection_id, .. }) = Response::decode(&buf[..n], false) else {
        return None;
    };
    let req = Request::Scrape {
        connection_id,
        transaction_id: 2,
        info_hashes: vec![hash],
    };
    sock.send(&req.encode()).ok()?;
    let n = sock.recv(&mut buf).ok()?;
    match Response::decode(&buf[..n], false) {
        Ok(Response::Scrape { stats, .. }) => stats.first().map(|s| (s.seeders, s.leechers)),
        _ => None,
    }
}

fn wait_for_seeder(tracker: &Tracker, hash: InfoHash, who: &Proc) {
    let deadline = Instant::now() + TIMEOUT;
    while scrape(tracker.addr, hash).is_none_or(|(s, _)| s == 0) {
        assert!(
            Instant::now() < deadline,
            "the tracker never listed a seeder\n{}",
            who.dump()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A data file in `dir` and its .torrent (announce: the tracker's `udp://`).
fn make_torrent(
    tmp: &TempDir,
    dir: &Path,
    name: &str,
    size: usize,
    tracker: &Tracker,
) -> (PathBuf, InfoHash) {
    let data = dir.join(name);
    write_random(&data, size);
    let torrent = tmp.join(&format!("{name}.torrent"));
    let p = run_create(&data, &torrent, &format!("udp://{}", tracker.addr), PIECE);
    let l = p.out.wait_for("info hash: ", TIMEOUT);
    let hash = InfoHash::from_hex(l.trim_start_matches("info hash: ").trim()).unwrap();
    (torrent, hash)
}

/// Our peer found nothing wrong in what aria2 sent.
fn no_violations(p: &Proc) {
    assert!(
        !p.err.contains("protocol violation") && !p.err.contains("closing: handshake"),
        "{}",
        p.dump()
    );
}

fn wait_aria2_done(p: &mut Proc) {
    let st = p.wait(TIMEOUT * 2);
    assert!(st.success(), "aria2c failed: {st}\n{}", p.dump());
}

#[test]
fn aria2_seeds_minitorrent_downloads() {
    let Some(bin) = aria2c() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("aria2-seeds");
    let sdir = tmp.sub("aria2");
    let (torrent, hash) = make_torrent(
        &tmp,
        &sdir,
        "from-aria2.bin",
        3 * 1024 * 1024 + 99,
        &tracker,
    );
    let seeder = aria2(&bin, "aria2c seeder", &torrent, &sdir, true);
    wait_for_seeder(&tracker, hash, &seeder);
    let ldir = tmp.sub("mt");
    // No --tracker: the .torrent's udp:// announce is probed and found JSON.
    let mut mt = Proc::mt(
        "minitorrent get",
        &[
            "get",
            torrent.to_str().unwrap(),
            "--no-seed",
            "--dir",
            ldir.to_str().unwrap(),
        ],
    );
    let st = mt.wait(TIMEOUT);
    assert!(
        st.success(),
        "get failed: {st}\n{}\n{}",
        mt.dump(),
        seeder.dump()
    );
    assert!(mt.out.contains("SHA-1 verified"), "{}", mt.dump());
    assert_same_file(&sdir.join("from-aria2.bin"), &ldir.join("from-aria2.bin"));
    no_violations(&mt);
}

#[test]
fn minitorrent_seeds_aria2_downloads() {
    let Some(bin) = aria2c() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("mt-seeds");
    let sdir = tmp.sub("mt");
    let (torrent, _) = make_torrent(&tmp, &sdir, "to-aria2.bin", 3 * 1024 * 1024 + 7, &tracker);
    let seeder = seed_torrent("minitorrent seeder", &tracker, &torrent, &sdir, &[]);
    let adir = tmp.sub("aria2");
    let mut leecher = aria2(&bin, "aria2c leecher", &torrent, &adir, false);
    wait_aria2_done(&mut leecher);
    assert_same_file(&sdir.join("to-aria2.bin"), &adir.join("to-aria2.bin"));
    no_violations(&seeder);
}

#[test]
fn mixed_swarm_minitorrent_seeder_aria2_and_minitorrent_leechers() {
    let Some(bin) = aria2c() else { return };
    let tracker = Tracker::start();
    let tmp = TempDir::new("mixed");
    let sdir = tmp.sub("seed");
    let (torrent, _) = make_torrent(&tmp, &sdir, "mixed.bin", 4 * 1024 * 1024 + 3, &tracker);
    // A slow seeder keeps both leechers busy at once, so they also trade.
    let seeder = seed_torrent(
        "minitorrent seeder",
        &tracker,
        &torrent,
        &sdir,
        &["--max-upload-rate", "2M"],
    );
    let adir = tmp.sub("aria2");
    let mdir = tmp.sub("mt");
    let mut a = aria2(&bin, "aria2c leecher", &torrent, &adir, false);
    let mut m = start_get(
        "minitorrent leecher",
        &tracker,
        torrent.to_str().unwrap(),
        &mdir,
        &[],
    );
    let st = m.wait(TIMEOUT * 2);
    assert!(st.success(), "get failed: {st}\n{}\n{}", m.dump(), a.dump());
    wait_aria2_done(&mut a);
    let data = sdir.join("mixed.bin");
    assert_same_file(&data, &adir.join("mixed.bin"));
    assert_same_file(&data, &mdir.join("mixed.bin"));
    no_violations(&seeder);
    no_violations(&m);
}
