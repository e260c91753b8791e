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
