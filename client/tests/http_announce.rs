//! The peer announcing to HTTP trackers (BEP 3): a swarm that runs through
//! our tracker's `http://…/announce` only, failover from one HTTP tracker to
//! the next in the middle of a download, and a magnet link whose first
//! tracker is dead. The trackers in use and their errors show in `--stats`,
//! the progress line and the tracker's scrape.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::*;

/// The tracker with its web port (where HTTP announces go) on a free port;
/// heartbeats asked every second.
fn http_tracker() -> Tracker {
    Tracker::start_with(&[
        "--bind",
        "127.0.0.1:0",
        "--web",
        "127.0.0.1:0",
        "--peer-timeout",
        "3",
    ])
}

/// `minitorrent create` of `data` naming `trackers`; returns the info hash.
fn create(data: &Path, torrent: &Path, trackers: &[&str]) -> String {
    let mut args = vec![
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--no-discover",
    ];
    for t in trackers {
        args.extend(["--tracker", t]);
    }
    let mut c = Proc::mt("create", &args);
    assert!(c.wait(TIMEOUT).success(), "{}", c.dump());
    let line = c
        .out
        .wait_match(|l| l.starts_with("info hash: "), TIMEOUT)
        .expect("an info hash");
    line["info hash: ".len()..].trim().to_string()
}

/// The seeders the tracker at `announce` (an HTTP announce URL) counts for
/// `hex`, from its BEP 48 scrape.
fn scraped_seeders(announce: &str, hex: &str) -> Option<u64> {
    let rest = announce.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    let mut q = String::new();
    for i in 0..20 {
        q.push('%');
        q.push_str(&hex[2 * i..2 * i + 2]);
    }
    let mut s = TcpStream::connect(host).ok()?;
    write!(
        s,
        "GET /scrape?info_hash={q} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    let text = String::from_utf8_lossy(&body);
    let at = text.find("8:completei")? + "8:completei".len();
    text[at..].split('e').next()?.parse().ok()
}

#[test]
fn a_swarm_runs_through_the_http_tracker_alone() {
    let t = http_tracker();
    let url = t.announce_url();
    let tmp = TempDir::new("http-swarm");
    let dir = tmp.sub("s");
    let data = dir.join("f.bin");
    write_random(&data, 3_000_000);
    let torrent = tmp.join("f.torrent");
    let hex = create(&data, &torrent, &[&url]);
    let tt = torrent.to_str().unwrap();
    // No --tracker: the torrent's HTTP tracker.
    let seeder = Proc::mt(
        "seeder",
        &["seed", tt, "--dir", dir.to_str().unwrap(), "--no-discover"],
    );
    seeder.out.wait_for("seeding ", TIMEOUT);
    assert!(
        seeder.out.contains(&format!("tracker {url}")),
        "{}",
        seeder.dump()
    );
    wait_until("the seeder in the tracker's scrape", TIMEOUT, || {
        scraped_seeders(&url, &hex) == Some(1)
    });
    let l = tmp.sub("l");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            tt,
            "--no-seed",
            "--dir",
            l.to_str().unwrap(),
            "--no-discover",
            "--trace",
        ],
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert_same_file(&data, &l.join("f.bin"));
    // The announce went over HTTP, as --trace shows it.
    assert!(
        leecher.err.contains("ANNOUNCE") && leecher.err.contains("(HTTP)"),
        "{}",
        leecher.dump()
    );
    // Names need our JSON protocol: a clear refusal, not a timeout.
    let mut search = Proc::mt("search", &["search", "--tracker", &url, "--no-discover"]);
    assert!(!search.wait(TIMEOUT).success());
    assert!(
        search.err.contains("has no file names"),
        "{}",
        search.dump()
    );
}

/// Two HTTP trackers, one tier each: the first is killed in the middle of a
/// download. The download completes; both peers move to the second tracker
/// (its scrape counts them), and `--stats` names the tracker in use and the
/// first one's error.
#[test]
fn peers_fail_over_from_one_http_tracker_to_the_next() {
    let mut t1 = http_tracker();
    let t2 = http_tracker();
    let (u1, u2) = (t1.announce_url(), t2.announce_url());
    let tmp = TempDir::new("http-failover");
    let dir = tmp.sub("s");
    let data = dir.join("f.bin");
    write_random(&data, 12_000_000);
    let torrent = tmp.join("f.torrent");
    let hex = create(&data, &torrent, &[&u1, &u2]);
    let tt = torrent.to_str().unwrap();
    let seeder = Proc::mt(
        "seeder",
        &["seed", tt, "--dir", dir.to_str().unwrap(), "--no-discover"],
    );
    seeder.out.wait_for("seeding ", TIMEOUT);
    wait_until("the seeder listed by the first tracker", TIMEOUT, || {
        scraped_seeders(&u1, &hex) == Some(1)
    });
    assert_eq!(scraped_seeders(&u2, &hex), Some(0), "not at the second yet");
    let l = tmp.sub("l");
    let stats = tmp.join("stats.json");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            tt,
            "--no-seed",
            "--dir",
            l.to_str().unwrap(),
            "--no-discover",
            "--max-download-rate",
            "1M",
            "--stats",
            stats.to_str().unwrap(),
        ],
    );
    wait_until("the first pieces", TIMEOUT, || {
        allocated(&l.join("f.bin.part")) > 0
    });
    t1.proc.kill();
    wait_until("the seeder listed by the second tracker", TIMEOUT, || {
        scraped_seeders(&u2, &hex) == Some(1)
    });
    assert!(
        seeder.err.contains("trying the next tracker"),
        "{}",
        seeder.dump()
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert_same_file(&data, &l.join("f.bin"));
    // The progress line names the tracker in use.
    assert!(
        leecher.err.contains("; tracker http://"),
        "{}",
        leecher.dump()
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let trackers = v["trackers"].as_array().expect("trackers in --stats");
    // The two HTTP trackers, then the one found on the LAN (here the
    // default: discovery is off) as the last resort of an http-only torrent.
    assert_eq!(trackers.len(), 3, "{v}");
    assert_eq!(trackers[2]["protocol"], "bep15", "{v}");
    let of = |u: &str| {
        trackers
            .iter()
            .find(|t| t["url"] == u)
            .unwrap_or_else(|| panic!("{u} in {v}"))
            .clone()
    };
    let (s1, s2) = (of(&u1), of(&u2));
    assert_eq!(s2["in_use"], true, "{v}");
    assert_eq!(s2["protocol"], "http", "{v}");
    assert_eq!(s1["in_use"], false, "{v}");
    assert!(
        s1["last_error"].as_str().is_some_and(|e| e.contains(&u1)),
        "the first tracker's error names it: {v}"
    );
}

/// `get` with a magnet link whose first two trackers are dead (a silent
/// `udp://` one, an `http://` one that refuses connections) and whose third
/// is our HTTP tracker: the peer fails over, fetches the metadata from the
/// seeder and completes.
#[test]
fn a_magnet_link_uses_every_tracker_it_names() {
    let t = http_tracker();
    let url = t.announce_url();
    let tmp = TempDir::new("magnet-trackers");
    let dir = tmp.sub("s");
    let data = dir.join("f.bin");
    write_random(&data, 1_000_000);
    let torrent = tmp.join("f.torrent");
    let hex = create(&data, &torrent, &[&url]);
    let seeder = Proc::mt(
        "seeder",
        &[
            "seed",
            torrent.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--no-discover",
        ],
    );
    seeder.out.wait_for("seeding ", TIMEOUT);
    // Ports nobody listens on: a UDP tracker that never answers, an HTTP
    // one that refuses connections.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/announce", dead.local_addr().unwrap());
    drop(dead);
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_udp = format!("udp://{}", dead.local_addr().unwrap());
    drop(dead);
    let enc = |u: &str| u.replace(':', "%3A").replace('/', "%2F");
    let magnet = format!(
        "magnet:?xt=urn:btih:{hex}&dn=f.bin&tr={}&tr={}&tr={}",
        enc(&dead_udp),
        enc(&dead_url),
        enc(&url)
    );
    let l = tmp.sub("l");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            &magnet,
            "--no-seed",
            "--dir",
            l.to_str().unwrap(),
            "--no-discover",
        ],
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert_same_file(&data, &l.join("f.bin"));
    assert!(
        leecher.err.contains("trying the next tracker"),
        "{}",
        leecher.dump()
    );
}
