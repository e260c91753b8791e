//! The peer against BEP 15 trackers: opentracker (a real, widely used UDP
//! tracker that speaks no JSON) and our own tracker with
//! `--tracker-protocol bep15`. A seeder and a leecher find each other through
//! the tracker named in the .torrent's `udp://` announce; the bytes must
//! arrive intact.
//!
//! opentracker comes from the Debian package `opentracker`, which
//! `scripts/test.sh` installs. Without it this test fails, unless
//! `MINITORRENT_SKIP_INTEROP=1`.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use common::*;

const PIECE: u32 = 32 * 1024;

/// opentracker on PATH, or why the test cannot run. `None`: skip.
fn opentracker() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("opentracker"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("MINITORRENT_SKIP_INTEROP").as_deref() == Ok("1") {
            eprintln!("opentracker is not installed: test skipped (MINITORRENT_SKIP_INTEROP=1)");
            return None;
        }
        panic!(
            "opentracker is not installed: run scripts/test.sh, which installs it \
             (apt-get install opentracker), or set MINITORRENT_SKIP_INTEROP=1 to skip"
        );
    }
    found
}

/// A port that was free a moment ago (both UDP and TCP, as opentracker
/// binds both).
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// opentracker on 127.0.0.1 tracking only the hashes in `whitelist` (the
/// Debian build tracks nothing else). Retries on a port collision.
fn start_opentracker(bin: &Path, whitelist: &Path) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let p = port.to_string();
        let w = whitelist.to_str().unwrap();
        let mut proc = Proc::spawn(
            "opentracker",
            bin,
            &["-i", "127.0.0.1", "-p", &p, "-P", &p, "-w", w],
            &[],
            false,
        );
        // Up when it answers a BEP 15 connect.
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        for _ in 0..25 {
            if let Ok(Some(_)) = proc.child.try_wait() {
                break;
            }
            let _ = sock.send_to(&connect, ("127.0.0.1", port));
            let mut buf = [0u8; 64];
            if let Ok((16, _)) = sock.recv_from(&mut buf) {
                return (proc, port);
            }
        }
        eprintln!(
            "opentracker on port {port} did not start; retrying\n{}",
            proc.dump()
        );
        proc.kill();
    }
    panic!("opentracker did not start on any of 5 ports");
}

fn create(data: &Path, out: &Path, announce: &str) -> String {
    let p = run_create(data, out, announce, PIECE);
    let l = p.out.wait_for("info hash: ", TIMEOUT);
    l.trim_start_matches("info hash: ").trim().to_string()
}

/// Seeder and leecher of `torrent` with no --tracker: the announce decides.
fn swarm_through_announce(tmp: &TempDir, torrent: &Path, data: &Path, extra: &[&str]) {
    let sdir = data.parent().unwrap();
    let mut args = vec![
        "seed",
        torrent.to_str().unwrap(),
        "--dir",
        sdir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let seeder = Proc::mt("seeder", &args);
    if seeder
        .out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .is_none()
    {
        panic!("seeder did not start\n{}", seeder.dump());
    }
    let ldir = tmp.sub("leech");
    let mut args = vec![
        "get",
        torrent.to_str().unwrap(),
        "--no-seed",
        "--dir",
        ldir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut leecher = Proc::mt("leecher", &args);
    let st = leecher.wait(TIMEOUT);
    assert!(
        st.success(),
        "get failed: {st}\n{}\n{}",
        leecher.dump(),
        seeder.dump()
    );
    assert!(leecher.out.contains("SHA-1 verified"), "{}", leecher.dump());
    assert_same_file(data, &ldir.join(data.file_name().unwrap()));
    assert!(
        seeder.err.contains("announced") || seeder.err.contains("BEP 15"),
        "the seeder did not announce with BEP 15\n{}",
        seeder.dump()
    );
}

#[test]
fn seeder_and_leecher_through_opentracker() {
    let Some(bin) = opentracker() else { return };
    let tmp = TempDir::new("opentracker");
    let data = tmp.sub("seed").join("ot.bin");
    write_random(&data, 3 * 1024 * 1024 + 777);
    let torrent = tmp.join("ot.torrent");
    // The hash does not depend on the announce: make the torrent once with a
    // placeholder to learn it, whitelist it, then again with the real port.
    let hash = create(&data, &torrent, "udp://127.0.0.1:1");
    let whitelist = tmp.join("whitelist");
    std::fs::write(&whitelist, format!("{hash}\n")).unwrap();
    let (_ot, port) = start_opentracker(&bin, &whitelist);
    let announce = format!("udp://127.0.0.1:{port}");
    assert_eq!(create(&data, &torrent, &announce), hash);
    swarm_through_announce(&tmp, &torrent, &data, &[]);
}

#[test]
fn names_and_search_need_a_json_tracker() {
    let Some(bin) = opentracker() else { return };
    let tmp = TempDir::new("ot-names");
    let whitelist = tmp.join("whitelist");
    std::fs::write(&whitelist, "").unwrap();
    let (_ot, port) = start_opentracker(&bin, &whitelist);
    let t = format!("udp://127.0.0.1:{port}");
    let bare = format!("127.0.0.1:{port}");
    let dir = tmp.sub("d");
    let dir = dir.to_str().unwrap();
    for (args, what) in [
        (vec!["search", "x", "--tracker", &t], "SEARCH"),
        (
            vec![
                "get",
                "some-name",
                "--no-seed",
                "--dir",
                dir,
                "--tracker",
                &bare,
            ],
            "a download by name",
        ),
    ] {
        let mut p = Proc::mt("names", &args);
        assert!(!p.wait(TIMEOUT).success(), "{}", p.dump());
        let err = p.err.text();
        assert!(
            err.contains("BEP 15") && err.contains(what) && err.contains("no file names"),
            "{err}"
        );
    }
}

/// Our own tracker speaks BEP 15 too: the whole BEP 15 path of the peer,
/// forced with --tracker-protocol bep15 (runs without opentracker).
#[test]
fn forced_bep15_against_our_tracker() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("bep15-ours");
    let data = tmp.sub("seed").join("ours.bin");
    write_random(&data, 2 * 1024 * 1024 + 5);
    let torrent = tmp.join("ours.torrent");
    create(&data, &torrent, &format!("udp://{}", tracker.addr));
    swarm_through_announce(&tmp, &torrent, &data, &["--tracker-protocol", "bep15"]);
}

/// `--bind 127.0.0.2` against a BEP 15-only tracker: the announce leaves
/// from 127.0.0.2, so opentracker hands out 127.0.0.2 (the only address the
/// seeder listens on) and a second peer downloads from it. Were the
/// announce sent from 0.0.0.0, the tracker would hand out 127.0.0.1, where
/// nobody listens.
#[test]
fn bind_address_reaches_a_bep15_only_tracker() {
    let Some(bin) = opentracker() else { return };
    let tmp = TempDir::new("ot-bind");
    let data = tmp.sub("seed").join("b.bin");
    write_random(&data, 1024 * 1024 + 5);
    let torrent = tmp.join("b.torrent");
    let hash = create(&data, &torrent, "udp://127.0.0.1:1");
    let whitelist = tmp.join("whitelist");
    std::fs::write(&whitelist, format!("{hash}\n")).unwrap();
    let (_ot, port) = start_opentracker(&bin, &whitelist);
    let announce = format!("udp://127.0.0.1:{port}");
    assert_eq!(create(&data, &torrent, &announce), hash);
    let seeder = Proc::mt(
        "seeder",
        &[
            "seed",
            torrent.to_str().unwrap(),
            "--dir",
            data.parent().unwrap().to_str().unwrap(),
            "--bind",
            "127.0.0.2",
            "--no-discover",
        ],
    );
    let line = seeder.out.wait_for("listening on ", TIMEOUT);
    assert!(line.contains("127.0.0.2:"), "{line}");
    seeder.out.wait_for("seeding ", TIMEOUT);
    let ldir = tmp.sub("leech");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            torrent.to_str().unwrap(),
            "--no-seed",
            "--dir",
            ldir.to_str().unwrap(),
            "--no-discover",
            "--trace",
        ],
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}\n{}", leecher.dump(), seeder.dump());
    assert_same_file(&data, &ldir.join("b.bin"));
    assert!(
        leecher.err.contains("→ 127.0.0.2:"),
        "the leecher dialled 127.0.0.2, as the tracker listed it\n{}",
        leecher.dump()
    );
}
