//! Bad input: each gets a clear message and a non-zero exit, never a panic.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

fn fails(name: &'static str, args: &[&str], expect: &str) -> Proc {
    let mut p = Proc::mt(name, args);
    let st = p.wait(TIMEOUT);
    assert!(!st.success(), "{name} should fail\n{}", p.dump());
    assert!(
        p.err.contains(expect),
        "{name}: expected {expect:?} in stderr\n{}",
        p.dump()
    );
    assert!(!p.err.contains("panicked"), "{}", p.dump());
    p
}

/// A UDP port with nobody behind it.
fn dead_udp_port() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

#[test]
fn bad_inputs_fail_clearly() {
    let tmp = TempDir::new("errors");
    let dead = dead_udp_port();
    let dir = tmp.path().to_str().unwrap();
    fails(
        "missing file",
        &["seed", "/nonexistent/missing.bin", "--tracker", &dead],
        "/nonexistent/missing.bin",
    );
    fails(
        "missing torrent",
        &["get", "/nonexistent/x.torrent", "--tracker", &dead],
        "/nonexistent/x.torrent",
    );
    let bad = tmp.join("bad.torrent");
    std::fs::write(&bad, b"d4:infoi3ee").unwrap();
    let bad = bad.to_str().unwrap();
    fails(
        "corrupt get",
        &["get", bad, "--dir", dir, "--tracker", &dead],
        "not a valid .torrent",
    );
    fails("corrupt info", &["info", bad], "not a valid .torrent");
    fails(
        "corrupt seed",
        &["seed", bad, "--tracker", &dead],
        "not a valid .torrent",
    );
    fails(
        "bad magnet",
        &["get", "magnet:?xt=urn:btih:nothex", "--tracker", &dead],
        "bad magnet link",
    );
    fails(
        "bad rate",
        &["seed", "x", "--max-upload-rate", "fast"],
        "fast",
    );
}

#[test]
fn unknown_name_and_unreachable_tracker() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("errors2");
    let dir = tmp.path().to_str().unwrap();
    fails(
        "unknown name",
        &[
            "get",
            "no-such-file.bin",
            "--dir",
            dir,
            "--tracker",
            &tracker.arg(),
        ],
        "knows no file called",
    );

    let data = tmp.join("u.bin");
    write_random(&data, 100_000);
    let torrent = tmp.join("u.torrent");
    create_torrent(&data, &torrent, &tracker, 32768);
    let dead = dead_udp_port();
    let ldir = tmp.sub("l");
    let t0 = Instant::now();
    fails(
        "unreachable tracker",
        &[
            "get",
            torrent.to_str().unwrap(),
            "--dir",
            ldir.to_str().unwrap(),
            "--tracker",
            &dead,
        ],
        "unreachable",
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
    fails(
        "unreachable search",
        &["search", "--tracker", &dead],
        "unreachable",
    );
    fails(
        "unreachable seed",
        &["seed", data.to_str().unwrap(), "--tracker", &dead],
        "unreachable",
    );
}

#[test]
fn port_in_use() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = TempDir::new("port");
    let data = tmp.join("p.bin");
    write_random(&data, 1000);
    fails(
        "port in use",
        &[
            "seed",
            data.to_str().unwrap(),
            "--port",
            &port,
            "--tracker",
            &dead_udp_port(),
        ],
        "in use",
    );
}

/// A tmpfs of 1 MiB mounted for the test (needs root; skipped otherwise).
struct TinyFs(std::path::PathBuf);

impl TinyFs {
    fn mount(at: std::path::PathBuf) -> Option<TinyFs> {
        std::fs::create_dir_all(&at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&at)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(TinyFs(at))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_stops_the_download_with_the_path_and_os_error() {
    let tmp = TempDir::new("fulldisk");
    let Some(tiny) = TinyFs::mount(tmp.join("tiny")) else {
        eprintln!("skipped: cannot mount a small tmpfs here (not root?)");
        return;
    };
    let tracker = Tracker::start();
    let s = tmp.sub("s");
    let data = s.join("big.bin");
    write_random(&data, 3 * 1024 * 1024);
    let torrent = tmp.join("big.torrent");
    create_torrent(&data, &torrent, &tracker, 32768);
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    let dir = tiny.0.to_str().unwrap().to_string();
    let p = fails(
        "full disk",
        &[
            "get",
            torrent.to_str().unwrap(),
            "--no-seed",
            "--dir",
            &dir,
            "--tracker",
            &tracker.arg(),
        ],
        "No space left on device",
    );
    assert!(p.err.contains("big.bin.part"), "{}", p.dump());
    assert!(
        !tiny.0.join("big.bin").exists(),
        "an incomplete file got the final name"
    );
}

/// When every known peer fails the same way, the warning says how, once,
/// instead of "no peer to download from yet": a peer that closes every
/// connection before its handshake (as one accepting only encrypted
/// connections does), and an address where nothing listens. No tracker
/// answers; the peers come from the magnet links' `x.pe`.
#[test]
fn every_peer_failing_alike_is_said_plainly() {
    let tmp = TempDir::new("failing-alike");
    let dead = dead_udp_port();
    let hash = "0123456789abcdef0123456789abcdef01234567";
    // Accepts and closes at once, over and over.
    let closer = TcpListener::bind("127.0.0.1:0").unwrap();
    let closer_addr = closer.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in closer.incoming() {
            drop(s);
        }
    });
    let nobody = TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody_addr = nobody.local_addr().unwrap();
    drop(nobody);
    let start = |name: &'static str, peer: std::net::SocketAddr| {
        let d = tmp.sub(name);
        let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=x.bin&x.pe={peer}");
        Proc::mt(
            name,
            &[
                "get",
                &magnet,
                "--no-seed",
                "--dir",
                d.to_str().unwrap(),
                "--tracker",
                &dead,
                "--no-discover",
            ],
        )
    };
    let mut closed = start("closed", closer_addr);
    let mut refused = start("refused", nobody_addr);
    let line = closed
        .err
        .wait_match(|l| l.contains("the only known peer"), TIMEOUT)
        .unwrap_or_else(|| panic!("no plain warning\n{}", closed.dump()));
    assert!(
        line.contains("closed the connection during the handshake") && line.contains("encrypted"),
        "{line}"
    );
    let line = refused
        .err
        .wait_match(|l| l.contains("the only known peer"), TIMEOUT)
        .unwrap_or_else(|| panic!("no plain warning\n{}", refused.dump()));
    assert!(line.contains("refused the connection"), "{line}");
    for p in [&closed, &refused] {
        assert!(
            !p.err.contains("no peer to download from yet"),
            "{}",
            p.dump()
        );
    }
    closed.kill();
    refused.kill();
}
