//! The HTTP tracker protocol (`GET /announce`, `GET /scrape` on the web
//! port) against the real binary: bencoded replies with compact peers,
//! bencoded failures for bad queries while the tracker keeps serving,
//! scrape counts, one registry with the JSON protocol and BEP 15, and
//! aria2 seeding and downloading through it.
//!
//! The aria2 test needs `aria2c` (Debian package `aria2`, installed by
//! `scripts/test.sh`); without it the test fails, unless
//! `MINITORRENT_SKIP_INTEROP=1`, as in `client/tests/interop.rs`.

#[path = "common/aria2.rs"]
mod aria2;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aria2::aria2c;
use common::{Bep15, Client, TempDir, TrackerProc, WAIT};
use minitorrent_common::hash::sha1;
use minitorrent_common::http_tracker::{
    decode_scrape, scrape_query, AnnounceRequest, AnnounceResponse, Event, ReplyError, ScrapeFile,
};
use minitorrent_common::metainfo::{CreateOptions, InfoHash, Layout};
use minitorrent_common::tracker_proto::{ErrorCode, FileInfo, FileRef, Reply, Request};
use minitorrent_common::udp_tracker as udp;
use socket2::{Domain, Socket, Type};

/// A tracker with its web page (and so its HTTP tracker) on a free port.
fn start(args: &[&str]) -> (TrackerProc, SocketAddr) {
    let mut a = vec!["--web", "127.0.0.1:0"];
    a.extend_from_slice(args);
    let t = TrackerProc::start(&a);
    let addr = t.web_addr();
    (t, addr)
}

/// An info hash with the bytes a careless decoder spoils: NUL, 0xFF, `%`,
/// `+`, `&`, `=`, `?`, 0x80.
fn nasty(last: u8) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&[0x00, 0xff, b'%', b'+', b'&', b'=', b'?', 0x80]);
    h[8..19].copy_from_slice(b"abcdefghijk");
    h[19] = last;
    InfoHash(h)
}

fn peer_id(n: u8) -> [u8; 20] {
    let mut id = *b"-AR1360-abcdefghij00";
    id[18] = b'0' + n / 10;
    id[19] = b'0' + n % 10;
    id
}

fn announce_req(h: InfoHash, id: [u8; 20], port: u16, left: u64, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: h,
        peer_id: id,
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: None,
        compact: true,
        no_peer_id: false,
    }
}

struct HttpReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// One kept-alive HTTP/1.1 connection.
struct Http {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    fn connect(addr: SocketAddr) -> Http {
        Http::connect_from("127.0.0.1:0", addr)
    }

    /// From another loopback address (127.0.0.2: another host, as far as
    /// the tracker can tell).
    fn connect_from(local: &str, addr: SocketAddr) -> Http {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&local.parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.connect_timeout(&addr.into(), Duration::from_secs(5))
            .unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Http { s, buf: Vec::new() }
    }

    /// Sends `GET target` and reads the whole response (by its
    /// Content-Length).
    fn get(&mut self, target: &str) -> HttpReply {
        let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
        self.read_reply()
    }

    fn read_reply(&mut self) -> HttpReply {
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = self.s.read(&mut chunk).expect("a response");
            assert!(n > 0, "closed before a response head");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        while self.buf.len() < len {
            let n = self.s.read(&mut chunk).expect("a response body");
            assert!(n > 0, "closed mid-body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf.drain(..len).collect();
        HttpReply { status, head, body }
    }

    fn announce(&mut self, a: &AnnounceRequest) -> Result<AnnounceResponse, ReplyError> {
        let r = self.get(&format!("/announce?{}", a.to_query()));
        assert_eq!(r.status, 200, "{}", r.head);
        AnnounceResponse::decode(&r.body)
    }

    /// A query that must be refused: its `failure reason`.
    fn refused(&mut self, target: &str) -> String {
        let r = self.get(target);
        assert_eq!(r.status, 200, "{target}: {}", r.head);
        assert!(r.head.contains("text/plain"), "{}", r.head);
        match AnnounceResponse::decode(&r.body) {
            Err(ReplyError::Failure(why)) => why,
            other => panic!(
                "{target}: not a failure: {other:?} {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }

    fn scrape(&mut self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeFile)> {
        let r = self.get(&format!("/scrape?{}", scrape_query(hashes)));
        assert_eq!(r.status, 200, "{}", r.head);
        decode_scrape(&r.body).unwrap()
    }
}

fn addrs(r: &AnnounceResponse) -> Vec<String> {
    let mut v: Vec<String> = r.peers.iter().map(|p| p.addr.to_string()).collect();
    v.sort();
    v
}

#[test]
fn http_announces_get_compact_peers_and_see_each_other() {
    let (_t, web) = start(&["--max-peers", "3"]);
    let mut c = Http::connect(web);
    let h = nasty(1);
    let first = c
        .announce(&announce_req(h, peer_id(1), 7001, 100, Event::Started))
        .unwrap();
    assert_eq!(
        (
            first.interval,
            first.min_interval,
            first.complete,
            first.incomplete
        ),
        (10, Some(10), 0, 1)
    );
    assert!(
        first.peers.is_empty(),
        "the announcer is not listed to itself"
    );

    // The second sees the first, as 6 compact bytes.
    let a2 = announce_req(h, peer_id(2), 7002, 0, Event::Started);
    let raw = c.get(&format!("/announce?{}", a2.to_query()));
    assert!(
        raw.body
            .windows(15)
            .any(|w| w == b"5:peers6:\x7f\x00\x00\x01\x1b\x59"),
        "{}",
        String::from_utf8_lossy(&raw.body)
    );
    let second = AnnounceResponse::decode(&raw.body).unwrap();
    assert_eq!((second.complete, second.incomplete), (1, 1));
    assert_eq!(addrs(&second), ["127.0.0.1:7001"]);

    // compact=0: dictionaries with the peer ids as sent, unless no_peer_id.
    let mut a3 = announce_req(h, peer_id(3), 7003, 50, Event::Started);
    a3.compact = false;
    let third = c.announce(&a3).unwrap();
    let mut ids: Vec<Vec<u8>> = third
        .peers
        .iter()
        .filter_map(|p| p.peer_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, [peer_id(1).to_vec(), peer_id(2).to_vec()]);
    a3.no_peer_id = true;
    assert!(c
        .announce(&a3)
        .unwrap()
        .peers
        .iter()
        .all(|p| p.peer_id.is_none()));

    // numwant is honoured up to --max-peers (3).
    for n in 4..=6 {
        c.announce(&announce_req(
            h,
            peer_id(n),
            7000 + u16::from(n),
            1,
            Event::Started,
        ))
        .unwrap();
    }
    let mut a = announce_req(h, peer_id(9), 7009, 1, Event::None);
    for (want, got) in [(None, 3), (Some(0), 0), (Some(2), 2), (Some(50), 3)] {
        a.numwant = want;
        assert_eq!(c.announce(&a).unwrap().peers.len(), got, "numwant {want:?}");
    }

    let m = c.get("/metrics");
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("minitorrent_http_tracker_requests_total{type=\"announce\"} 11"),
        "{text}"
    );
}

#[test]
fn bad_queries_get_a_bencoded_failure_and_the_tracker_keeps_serving() {
    let (t, web) = start(&[]);
    let mut c = Http::connect(web);
    let good = announce_req(nasty(2), peer_id(1), 6881, 0, Event::Started).to_query();
    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        format!("/announce?{}", good.replacen(from, to, 1))
    };
    let hash = "info_hash=%00%FF%25%2B%26%3D%3F%80abcdefghijk%02";
    for (target, says) in [
        (with(hash, "info_hash=%00%FF"), "info_hash must be 20 bytes"),
        (
            with(hash, &format!("{hash}%02")),
            "info_hash must be 20 bytes",
        ),
        (with(hash, "info_hash=%zz"), "bad percent escape"),
        (with(hash, "x=1"), "missing parameter info_hash"),
        (
            with("peer_id=-AR1360-", "peer_id=-AR"),
            "peer_id must be 20 bytes",
        ),
        (with("&port=6881", ""), "missing parameter port"),
        (with("port=6881", "port=0"), "port 0 is not a port"),
        (with("port=6881", "port=65536"), "port must be 1 to 65535"),
        (
            with("port=6881", "port=http"),
            "port must be a whole number",
        ),
        (with("left=0", "left=lots"), "left must be a whole number"),
        (
            with("uploaded=0", "uploaded=-5"),
            "uploaded must be a whole number",
        ),
        (with("event=started", "event=finished"), "unknown event"),
        (format!("/announce?{good}&numwant=many"), "numwant must be"),
        (
            format!("/announce?{good}&pad={}", "x".repeat(5000)),
            "more than the 4096",
        ),
        ("/announce".to_string(), "missing parameter port"),
        ("/scrape".to_string(), "names no info_hash"),
        (
            "/scrape?info_hash=short".to_string(),
            "info_hash must be 20 bytes",
        ),
        (
            format!("/scrape?{}", scrape_query(&[InfoHash([7; 20]); 51])),
            "more than the 50 allowed",
        ),
    ] {
        let why = c.refused(&target);
        assert!(why.contains(says), "{target}: {why:?} lacks {says:?}");
    }
    // Nothing was registered, and the same connection still serves.
    let ok = c
        .announce(&announce_req(nasty(2), peer_id(1), 6881, 0, Event::Started))
        .unwrap();
    assert_eq!((ok.complete, ok.incomplete), (1, 0));

    // Past the web server's own head limit (16 KiB) the answer is its 431
    // (the head is not read, so not known to be an announce); then it goes
    // on serving HTTP and UDP.
    let mut big = Http::connect(web);
    let r = big.get(&format!("/announce?{good}&pad={}", "x".repeat(17 << 10)));
    assert_eq!(r.status, 431);
    assert!(Http::connect(web)
        .announce(&announce_req(nasty(3), peer_id(1), 6881, 0, Event::None))
        .is_ok());
    let u = Client::new(t.addr);
    assert!(matches!(
        u.ask(&Request::Search {
            tid: 1,
            query: String::new()
        }),
        Reply::Files { .. }
    ));
    // Not GET: 405.
    c.s.write_all(b"POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_reply().status, 405);
}

#[test]
fn http_scrape_counts_seeders_leechers_and_completed_downloads() {
    let (t, web) = start(&[]);
    let mut c = Http::connect(web);
    let (a, b, unknown) = (nasty(4), nasty(5), nasty(6));
    c.announce(&announce_req(a, peer_id(1), 7001, 0, Event::Started))
        .unwrap();
    c.announce(&announce_req(a, peer_id(2), 7002, 10, Event::Started))
        .unwrap();
    c.announce(&announce_req(b, peer_id(3), 7003, 10, Event::Started))
        .unwrap();
    // Peer 3 completes (its completed is resent: one download, not two).
    for _ in 0..2 {
        c.announce(&announce_req(b, peer_id(3), 7003, 0, Event::Completed))
            .unwrap();
    }
    let file = |complete, downloaded, incomplete| ScrapeFile {
        complete,
        downloaded,
        incomplete,
    };
    let got = c.scrape(&[b, unknown, a, a]);
    let mut want = vec![
        (a, file(1, 0, 1)),
        (b, file(1, 1, 0)),
        (unknown, file(0, 0, 0)),
    ];
    want.sort_by_key(|(h, _)| h.0);
    assert_eq!(got, want);
    // BEP 15 scrape reads the same counts.
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    match bt.ask(&udp::Request::Scrape {
        connection_id: bt.connection_id,
        transaction_id: 9,
        info_hashes: vec![b],
    }) {
        udp::Response::Scrape { stats, .. } => assert_eq!(
            stats,
            vec![udp::ScrapeStats {
                seeders: 1,
                completed: 1,
                leechers: 0
            }]
        ),
        other => panic!("{other:?}"),
    }
}

fn json_peers(c: &Client, tid: u32, h: InfoHash) -> Vec<(String, String)> {
    match c.ask(&Request::Request {
        tid,
        file: FileRef::InfoHash(h),
        peer_id: None,
    }) {
        Reply::Peers { peers, .. } => {
            let mut v: Vec<_> = peers
                .into_iter()
                .map(|p| (p.addr.to_string(), p.peer_id))
                .collect();
            v.sort();
            v
        }
        Reply::Error {
            code: ErrorCode::NotFound,
            ..
        } => Vec::new(),
        other => panic!("{other:?}"),
    }
}

fn bep15_peers(
    bt: &Bep15,
    tid: u32,
    h: InfoHash,
    id: &[u8; 20],
    port: u16,
    ev: udp::Event,
) -> Vec<String> {
    match bt.announce(tid, h, id, port, 5, ev, -1) {
        udp::Response::Announce { peers, .. } => {
            let mut v: Vec<String> = peers.iter().map(ToString::to_string).collect();
            v.sort();
            v
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_peer_of_any_protocol_appears_in_the_replies_of_the_others() {
    let (t, web) = start(&[]);
    let mut c = Http::connect(web);
    let h = nasty(7);
    // A binary peer id, as aria2 sends.
    let id = *b"A2-1-36-0-\x00\xff\x10abcdefg";
    c.announce(&announce_req(h, id, 6881, 0, Event::Started))
        .unwrap();

    // In a JSON REQUEST reply, its id percent-encoded as BEP 15 ids are.
    let json = Client::new(t.addr);
    assert_eq!(
        json_peers(&json, 1, h),
        [(
            "127.0.0.1:6881".to_string(),
            "A2-1-36-0-%00%FF%10abcdefg".to_string()
        )]
    );
    // In a BEP 15 announce reply.
    let bt = Bep15::connect("127.0.0.1:0", t.addr);
    let bep_id = *b"-qB4650-abcdefghijkl";
    assert_eq!(
        bep15_peers(&bt, 2, h, &bep_id, 6882, udp::Event::Started),
        ["127.0.0.1:6881"]
    );
    // And the other way: a JSON peer and the BEP 15 one in an HTTP reply.
    let r = json.ask(&Request::Register {
        tid: 3,
        peer_id: "-MN0100-jsonpeer0001".into(),
        port: 6883,
        files: vec![FileInfo {
            info_hash: h,
            name: "shared.bin".into(),
            size: 1000,
            complete: false,
        }],
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let seen = c
        .announce(&announce_req(h, id, 6881, 0, Event::None))
        .unwrap();
    assert_eq!(addrs(&seen), ["127.0.0.1:6882", "127.0.0.1:6883"]);
    assert_eq!((seen.complete, seen.incomplete), (1, 2));

    // The live view says how each came.
    let live = c.get(&format!("/api/swarms/{}", h.to_hex()));
    let v: serde_json::Value = serde_json::from_slice(&live.body).unwrap();
    let mut protocols: Vec<(String, String)> = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["addr"].as_str().unwrap().to_string(),
                p["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    protocols.sort();
    assert_eq!(
        protocols,
        [
            ("127.0.0.1:6881".to_string(), "http".to_string()),
            ("127.0.0.1:6882".to_string(), "bep15".to_string()),
            ("127.0.0.1:6883".to_string(), "json".to_string()),
        ]
    );

    // One peer is (source IP, peer id) whatever the protocol: the same id
    // over BEP 15 moves the HTTP peer's entry, it adds none.
    bep15_peers(&bt, 4, h, &id, 6891, udp::Event::None);
    let mut moved = json_peers(&json, 5, h);
    moved.retain(|(_, pid)| pid.starts_with("A2-"));
    assert_eq!(
        moved,
        [(
            "127.0.0.1:6891".to_string(),
            "A2-1-36-0-%00%FF%10abcdefg".to_string()
        )]
    );
    c.announce(&announce_req(h, id, 6881, 0, Event::None))
        .unwrap();

    // stopped removes it from every protocol's replies.
    let gone = c
        .announce(&announce_req(h, id, 6881, 0, Event::Stopped))
        .unwrap();
    assert!(gone.peers.is_empty());
    assert_eq!(
        json_peers(&json, 6, h),
        [
            (
                "127.0.0.1:6882".to_string(),
                "-qB4650-abcdefghijkl".to_string()
            ),
            (
                "127.0.0.1:6883".to_string(),
                "-MN0100-jsonpeer0001".to_string()
            )
        ]
    );
    assert_eq!(
        bep15_peers(&bt, 7, h, &bep_id, 6882, udp::Event::None),
        ["127.0.0.1:6883"]
    );
    // Another host cannot stop a peer: identity includes the source IP, so
    // a stop with the BEP 15 peer's id from 127.0.0.2 leaves it alone.
    Http::connect_from("127.0.0.2:0", web)
        .announce(&announce_req(h, bep_id, 6882, 0, Event::Stopped))
        .unwrap();
    assert_eq!(json_peers(&json, 8, h).len(), 2);
}

// ---- aria2 -----------------------------------------------------------------

/// An aria2c process, its output in files, killed on drop.
struct Aria2 {
    child: Child,
    log: PathBuf,
}

impl Aria2 {
    /// aria2c on `torrent`, files in `dir`: a seeder seeds for at most two
    /// minutes, a leecher exits once its download is complete. No DHT, no
    /// PEX, no local discovery: the tracker is the only way to the others.
    fn spawn(bin: &Path, torrent: &Path, dir: &Path, seed: bool) -> Aria2 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(".aria2.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args([
                "--enable-dht=false",
                "--enable-peer-exchange=false",
                "--bt-enable-lpd=false",
                "--disable-ipv6=true",
                &format!("--listen-port={port}"),
                "--seed-ratio=0.0",
                &format!("--seed-time={}", if seed { 2 } else { 0 }),
                &format!("--bt-seed-unverified={seed}"),
                "--check-integrity=true",
                "--file-allocation=none",
                "--allow-overwrite=true",
                "--auto-file-renaming=false",
                "--summary-interval=0",
                "--console-log-level=warn",
                "--bt-tracker-interval=2",
                &format!("--dir={}", dir.display()),
                torrent.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start aria2c");
        Aria2 { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Aria2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of `len` pseudo-random bytes in `dir`, and its .torrent (announce:
/// `announce`, pieces of 64 KiB) in `torrent_dir`.
fn make_torrent(
    dir: &Path,
    torrent_dir: &Path,
    name: &str,
    len: usize,
    announce: &str,
) -> (PathBuf, InfoHash) {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    std::fs::write(dir.join(name), &data).unwrap();
    let opts = CreateOptions {
        announce: Some(announce.into()),
        piece_length: Some(64 << 10),
        ..CreateOptions::default()
    };
    let layout = Layout::single(name.into(), len as u64, &opts).unwrap();
    let pieces: Vec<u8> = data
        .chunks(layout.piece_length() as usize)
        .flat_map(sha1)
        .collect();
    let m = layout.into_metainfo(pieces).unwrap();
    let path = torrent_dir.join(format!("{name}.torrent"));
    std::fs::write(&path, m.to_bytes()).unwrap();
    (path, m.info_hash)
}

#[test]
fn aria2_seeds_and_downloads_through_the_http_tracker() {
    let Some(bin) = aria2c() else { return };
    // Traced, so a failure shows what aria2 announced.
    let (t, web) = start(&["--trace"]);
    let trace = || t.stderr().join("\n");
    let tmp = TempDir::new("http-aria2");
    let (sdir, ldir) = (tmp.0.join("seeder"), tmp.0.join("leecher"));
    std::fs::create_dir_all(&sdir).unwrap();
    std::fs::create_dir_all(&ldir).unwrap();
    let announce = format!("http://{web}/announce");
    let (torrent, h) = make_torrent(
        &sdir,
        &tmp.0,
        "over-http.bin",
        3 * 1024 * 1024 + 7,
        &announce,
    );

    let seeder = Aria2::spawn(&bin, &torrent, &sdir, true);
    let mut c = Http::connect(web);
    let deadline = Instant::now() + WAIT * 3;
    while c.scrape(&[h])[0].1.complete == 0 {
        assert!(
            Instant::now() < deadline,
            "aria2c never announced itself as a seeder over HTTP\n{}\ntracker:\n{}",
            seeder.output(),
            trace()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut leecher = Aria2::spawn(&bin, &torrent, &ldir, false);
    let deadline = Instant::now() + WAIT * 6;
    let status = loop {
        if let Some(st) = leecher.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "aria2c did not finish downloading\nleecher:\n{}\nseeder:\n{}\ntracker:\n{}",
            leecher.output(),
            seeder.output(),
            trace()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "aria2c failed: {status}\n{}",
        leecher.output()
    );
    let (a, b) = (
        std::fs::read(sdir.join("over-http.bin")).unwrap(),
        std::fs::read(ldir.join("over-http.bin")).unwrap(),
    );
    assert!(a == b, "the downloaded file differs from the seeded one");
    // DHT, PEX and local discovery are off: the leecher found the seeder
    // through our tracker alone. (Whether it also said `completed` depends
    // on timing: an aria2c that finishes within its announce interval says
    // only `stopped`, so the count is not checked here.)
}
