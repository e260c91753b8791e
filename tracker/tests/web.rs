//! The web page and its API against the real tracker binary, over real
//! sockets on 127.0.0.1 (port 0, temp databases): the search page and
//! `/api/swarms` list what UDP `SEARCH` lists, magnet links name the right
//! info hash, publishing by `POST` and by the form stores the file byte for
//! byte (and refuses corrupt and oversized ones, storing nothing), the
//! swarm API shows a registered peer and its event, a burst of malformed and
//! slow HTTP clients stops neither UDP nor HTTP, a `--web` port in use is a
//! clear error, and `--web off` serves no HTTP.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{eventually, run_to_exit, Client, TempDir, TrackerProc};
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::{CreateOptions, InfoHash, Layout, Metainfo};
use minitorrent_common::tracker_proto::{FileInfo, Reply, Request};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

/// The content type `POST /api/torrents` requires.
const TORRENT: &str = "application/x-bittorrent";

/// A tracker with its catalogue in a temp file, and its web address.
fn start(tag: &str, args: &[&str]) -> (TrackerProc, SocketAddr, TempDir) {
    let dir = TempDir::new(tag);
    let db = dir.db();
    let mut a = vec!["--db", db.as_str()];
    if !args.contains(&"--web") {
        a.extend_from_slice(&["--web", "127.0.0.1:0"]);
    }
    a.extend_from_slice(args);
    let t = TrackerProc::start(&a);
    let addr = t.web_addr();
    (t, addr, dir)
}

fn torrent(name: &str, len: u64) -> Vec<u8> {
    let opts = CreateOptions {
        announce: Some("udp://127.0.0.1:6969".into()),
        ..CreateOptions::default()
    };
    let layout = Layout::single(name.into(), len, &opts).unwrap();
    let pieces = len.div_ceil(layout.piece_length()) as usize;
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| (i * 7 + 3) as u8).collect();
    layout.into_metainfo(hashes).unwrap().to_bytes()
}

struct HttpReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl HttpReply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Reads a whole response from a connection the server closes.
fn read_reply(mut s: TcpStream) -> HttpReply {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    HttpReply {
        status,
        head,
        body: raw[end + 4..].to_vec(),
    }
}

/// One request with `Connection: close`; the whole response.
fn http(addr: SocketAddr, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> HttpReply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    send(&mut s, method, path, ctype, body);
    read_reply(s)
}

fn send(s: &mut TcpStream, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(c) = ctype {
        req.push_str(&format!("Content-Type: {c}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
}

fn get(addr: SocketAddr, path: &str) -> HttpReply {
    http(addr, "GET", path, None, b"")
}

/// A TCP connection from another loopback address (127.0.0.2): another
/// browser, as far as the per-address cap is concerned.
fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&local.parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    s.into()
}

fn multipart(field: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----minitorrentTestBoundary7MA4YWxk";
    let mut b = Vec::new();
    b.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/x-bittorrent\r\n\r\n").as_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

fn register(c: &Client, peer_id: &str, port: u16, files: &[(InfoHash, &str, u64, bool)]) {
    let reply = c.ask(&Request::Register {
        tid: 1,
        peer_id: peer_id.into(),
        port,
        files: files
            .iter()
            .map(|(h, n, s, complete)| FileInfo {
                info_hash: *h,
                name: n.to_string(),
                size: *s,
                complete: *complete,
            })
            .collect(),
    });
    assert!(matches!(reply, Reply::Ok { .. }), "{reply:?}");
}

/// A swarm as listed: info hash, name, size, seeders, leechers.
type Row = (String, String, u64, u32, u32);

fn udp_search(c: &Client, q: &str) -> Vec<Row> {
    match c.ask(&Request::Search {
        tid: 2,
        query: q.into(),
    }) {
        Reply::Files { files, .. } => {
            let mut v: Vec<_> = files
                .into_iter()
                .map(|f| (f.info_hash.to_hex(), f.name, f.size, f.seeders, f.leechers))
                .collect();
            v.sort();
            v
        }
        other => panic!("SEARCH got {other:?}"),
    }
}

fn api_search(web: SocketAddr, q: &str) -> (Vec<Row>, Value) {
    let r = get(web, &format!("/api/swarms?q={q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let j = r.json();
    let mut v: Vec<_> = j["swarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["info_hash"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["size"].as_u64().unwrap(),
                s["seeders"].as_u64().unwrap() as u32,
                s["leechers"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    v.sort();
    (v, j)
}

#[test]
fn the_search_page_and_api_list_what_udp_search_lists() {
    let (t, web, _dir) = start("search", &[]);
    let c = Client::new(t.addr);
    let (a, b, g) = (InfoHash([1; 20]), InfoHash([2; 20]), InfoHash([3; 20]));
    register(
        &c,
        "peer-one",
        7001,
        &[
            (a, "Alpha lecture.mp4", 1000, true),
            (g, "gamma.iso", 5, true),
        ],
    );
    register(
        &c,
        "peer-two",
        7002,
        &[
            (b, "beta LECTURE notes.pdf", 2000, false),
            (a, "Alpha lecture.mp4", 1000, false),
        ],
    );

    for q in ["lecture", "", "GAMMA", "nothing-like-this", "a%20l"] {
        let udp_q = q.replace("%20", " ");
        let (listed, j) = api_search(web, q);
        assert_eq!(listed, udp_search(&c, &udp_q), "query {q:?}");
        for s in j["swarms"].as_array().unwrap() {
            let m = Magnet::parse(s["magnet"].as_str().unwrap()).unwrap();
            assert_eq!(m.info_hash.to_hex(), s["info_hash"].as_str().unwrap());
            assert_eq!(m.name.as_deref(), s["name"].as_str());
            assert_eq!(m.trackers, vec![format!("udp://{}/announce", t.addr)]);
            assert!(s["torrent"].is_null(), "nothing published yet: {s}");
            assert_eq!(s["completed"], 0);
        }
    }
    let (all, _) = api_search(web, "");
    assert_eq!(all.len(), 3);
    assert!(all.contains(&(a.to_hex(), "Alpha lecture.mp4".into(), 1000, 1, 1)));

    // The page: its search box and table, and the script that fills them.
    let page = get(web, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    for needle in [
        "type=\"search\"",
        "id=\"swarms\"",
        "/assets/index.js",
        "Completed",
        "Magnet",
    ] {
        assert!(html.contains(needle), "{needle} missing from the page");
    }
    let js = get(web, "/assets/index.js");
    assert_eq!(js.status, 200);
    assert!(js.text().contains("/api/swarms?q="));
    assert_eq!(get(web, "/assets/style.css").status, 200);
    assert_eq!(get(web, "/swarm/").status, 404);
    assert_eq!(get(web, &format!("/swarm/{}", a.to_hex())).status, 200);
    assert_eq!(get(web, "/assets/swarm.js").status, 200);
    let missing = get(web, "/no/such/page");
    assert_eq!(missing.status, 404);
    assert!(missing
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let api_missing = get(web, "/api/nothing");
    assert_eq!(api_missing.status, 404);
    assert!(api_missing.json()["error"].is_string());

    // /metrics counts the datagrams of both sides, by type.
    let m = get(web, "/metrics").text();
    let line = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{m}"))
    };
    assert!(line("minitorrent_udp_requests_total{protocol=\"json\",type=\"SEARCH\"}") >= 5);
    assert!(line("minitorrent_udp_requests_total{protocol=\"json\",type=\"REGISTER\"}") >= 2);
    assert!(line("minitorrent_udp_replies_total{protocol=\"json\",type=\"FILES\"}") >= 5);
    assert_eq!(line("minitorrent_swarms "), 3);
    assert_eq!(line("minitorrent_registered_peers "), 2);
    let stats = get(web, "/stats.json").json();
    assert_eq!(stats["minitorrent_swarms"], 3);
}

#[test]
fn publish_by_post_and_by_form_then_download_byte_for_byte() {
    let (t, web, _dir) = start("publish", &[]);
    let one = torrent("first file.bin", 300_000);
    let two = torrent("second.bin", 40_000);
    let (h1, h2) = (
        Metainfo::from_bytes(&one).unwrap().info_hash,
        Metainfo::from_bytes(&two).unwrap().info_hash,
    );

    let r = http(web, "POST", "/api/torrents", Some(TORRENT), &one);
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert_eq!(j["info_hash"], h1.to_hex());
    assert_eq!(j["name"], "first file.bin");
    assert_eq!(j["new"], true);
    // Again: kept, not new.
    let again = http(web, "POST", "/api/torrents", Some(TORRENT), &one).json();
    assert_eq!(again["new"], false);

    let (ctype, form) = multipart("torrent", "second.torrent", &two);
    let r = http(web, "POST", "/publish", Some(&ctype), &form);
    assert_eq!(r.status, 201, "{}", r.text());
    let page = r.text();
    assert!(page.contains(&h2.to_hex()), "{page}");
    assert!(page.contains(&format!("/torrents/{}.torrent", h2.to_hex())));
    assert!(page.contains("second.bin"));

    for (h, bytes) in [(h1, &one), (h2, &two)] {
        let d = get(web, &format!("/torrents/{}.torrent", h.to_hex()));
        assert_eq!(d.status, 200);
        assert_eq!(
            d.header("content-type").as_deref(),
            Some("application/x-bittorrent")
        );
        assert_eq!(&d.body, bytes, "downloaded byte for byte");
        assert_eq!(Metainfo::from_bytes(&d.body).unwrap().info_hash, h);
    }
    let list = get(web, "/api/torrents").json();
    let listed: Vec<&str> = list["torrents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["info_hash"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![h2.to_hex(), h1.to_hex()], "newest first");
    assert_eq!(list["torrents"][0]["name"], "second.bin");
    assert!(list["torrents"][0]["from"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    // A swarm whose .torrent is published links to it from the list.
    let c = Client::new(t.addr);
    register(
        &c,
        "seeder-1",
        7100,
        &[(h1, "first file.bin", 300_000, true)],
    );
    let (_, j) = api_search(web, "first");
    assert_eq!(
        j["swarms"][0]["torrent"],
        format!("/torrents/{}.torrent", h1.to_hex())
    );

    // Corrupt: cut short, and garbage; by POST and by the form. 400 naming
    // the problem, nothing stored.
    let cut = &one[..one.len() - 7];
    let r = http(web, "POST", "/api/torrents", Some(TORRENT), cut);
    assert_eq!(r.status, 400);
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("not a valid .torrent"), "{msg}");
    let r = http(web, "POST", "/api/torrents", Some(TORRENT), b"");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("empty"));
    let mut flipped = two.clone();
    let at = flipped.windows(6).position(|w| w == b"pieces").unwrap();
    flipped[at + 6] = b'x';
    let (ctype, form) = multipart("torrent", "bad.torrent", &flipped);
    let r = http(web, "POST", "/publish", Some(&ctype), &form);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not a valid .torrent"), "{}", r.text());
    assert!(r.text().contains("Nothing was stored"));
    let r = http(web, "POST", "/publish", Some("text/plain"), b"hello");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("multipart/form-data"));
    let list = get(web, "/api/torrents").json();
    assert_eq!(
        list["torrents"].as_array().unwrap().len(),
        2,
        "nothing stored"
    );
    let m = get(web, "/metrics").text();
    assert!(m.contains("minitorrent_catalogue_torrents 2"), "{m}");

    // Over 10 MiB: 413 from the head alone, before any of the body is sent.
    for path in ["/api/torrents", "/publish"] {
        let mut s = TcpStream::connect(web).unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n",
                11 << 20
            )
            .as_bytes(),
        )
        .unwrap();
        let r = read_reply(s);
        assert_eq!(r.status, 413, "{path}: {}", r.text());
    }
    // And one sent whole, 10 MiB + 1 of it.
    let big = vec![b'd'; (10 << 20) + 1];
    let mut s = TcpStream::connect(web).unwrap();
    s.write_all(
        format!(
            "POST /api/torrents HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\n\r\n",
            big.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let _ = s.write_all(&big);
    let r = read_reply(s);
    assert_eq!(r.status, 413);
    assert!(r.json()["error"].as_str().unwrap().contains("at most"));
    assert_eq!(
        get(web, "/api/torrents").json()["torrents"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_swarm_api_shows_a_registered_peer_and_the_event_log() {
    let (t, web, _dir) = start("swarm", &[]);
    let c = Client::new(t.addr);
    let h = InfoHash([0x42; 20]);
    let unknown = get(web, &format!("/api/swarms/{}", InfoHash([9; 20]).to_hex()));
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["error"]
        .as_str()
        .unwrap()
        .contains("no swarm"));
    assert_eq!(get(web, "/api/swarms/not-a-hash").status, 404);

    register(&c, "peer-live", 7301, &[(h, "live.bin", 123_456, true)]);
    let path = format!("/api/swarms/{}", h.to_hex());
    let mut last = Value::Null;
    eventually(
        "the swarm API shows the peer and its register event",
        || {
            let r = get(web, &path);
            assert_eq!(r.status, 200, "{}", r.text());
            last = r.json();
            let peer_listed = last["peers"].as_array().unwrap().iter().any(|p| {
                p["addr"] == "127.0.0.1:7301" && p["peer_id"] == "peer-live" && p["seeder"] == true
            });
            let logged = last["events"].as_array().unwrap().iter().any(|e| {
                e["kind"] == "register"
                    && e["peer"] == "127.0.0.1:7301"
                    && e["at_ms"].as_u64().unwrap() > 0
            });
            peer_listed && logged
        },
    );
    assert_eq!(last["name"], "live.bin");
    assert_eq!(last["size"], 123_456);
    assert_eq!(last["seeders"], 1);
    assert_eq!(last["completed"], 0);
    assert!(last["torrent"].is_null());
    assert_eq!(
        Magnet::parse(last["magnet"].as_str().unwrap())
            .unwrap()
            .info_hash,
        h
    );
    for k in [
        "edges",
        "availability",
        "window_secs",
        "truncated",
        "pieces",
        "leechers",
    ] {
        assert!(last.get(k).is_some(), "{k} missing from {last}");
    }

    // It leaves: the log says so, newest first.
    let exit = c.ask(&Request::Exit {
        tid: 3,
        peer_id: "peer-live".into(),
    });
    assert!(matches!(exit, Reply::Ok { .. }));
    eventually("the exit event", || {
        let j = get(web, &path).json();
        j["events"][0]["kind"] == "exit" && j["events"][1]["kind"] == "register"
    });
}

#[test]
fn malformed_and_slow_clients_stop_neither_udp_nor_http() {
    let (t, web, _dir) = start("abuse", &[]);
    let c = Client::new(t.addr);
    let h = InfoHash([0x77; 20]);
    register(&c, "steady", 7401, &[(h, "steady.bin", 10, true)]);

    let mut held = Vec::new();
    // Half-sent requests held open: 8 from 127.0.0.1.
    for i in 0..8 {
        let mut s = TcpStream::connect(web).unwrap();
        s.write_all(format!("GET /api/swarms?q={i} HTTP/1.1\r\nHost: slow\r\n").as_bytes())
            .unwrap();
        held.push(s);
    }
    // A body promised and never sent.
    let mut s = TcpStream::connect(web).unwrap();
    s.write_all(b"POST /api/torrents HTTP/1.1\r\nContent-Type: application/x-bittorrent\r\nContent-Length: 5000\r\n\r\nd8:announce")
        .unwrap();
    held.push(s);
    // Connections that send nothing at all.
    for _ in 0..4 {
        held.push(TcpStream::connect(web).unwrap());
    }
    // (From 127.0.0.4, so that connections still closing never meet the
    // per-address cap the held ones fill.)
    // Garbage: binary, a bad request line, a wrong version. Each gets an
    // error reply and the connection closed.
    let mut rng = fastrand::Rng::with_seed(7);
    for junk in [
        (0..3000)
            .map(|_| rng.u8(..))
            .chain(*b"\r\n\r\n")
            .collect::<Vec<u8>>(),
        b"HELLO\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
    ] {
        let mut s = connect_from("127.0.0.4:0", web);
        s.write_all(&junk).unwrap();
        let r = read_reply(s);
        assert!((400..=505).contains(&r.status), "{} for {junk:?}", r.status);
    }
    // A huge header: 431 once 16 KiB are in, without waiting for the rest.
    let mut s = connect_from("127.0.0.4:0", web);
    s.write_all(b"GET / HTTP/1.1\r\nX-Huge: ").unwrap();
    let _ = s.write_all(&vec![b'a'; 200_000]);
    let r = read_reply(s);
    assert_eq!(r.status, 431);
    // Too many header lines.
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let mut s = connect_from("127.0.0.4:0", web);
    s.write_all(many.as_bytes()).unwrap();
    assert_eq!(read_reply(s).status, 431);

    // Past the per-address cap (16), this address is told to come back
    // later at once; the tracker does not wait on it.
    let mut more = Vec::new();
    while held.len() + more.len() < 16 {
        more.push(TcpStream::connect(web).unwrap());
    }
    // The slots are taken by the accept thread: give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let refused = read_reply(TcpStream::connect(web).unwrap());
    assert_eq!(refused.status, 503, "{}", refused.text());

    // Meanwhile another browser is served, and UDP is answered.
    let started = Instant::now();
    let mut s = connect_from("127.0.0.2:0", web);
    send(&mut s, "GET", "/api/swarms?q=steady", None, b"");
    let r = read_reply(s);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["swarms"][0]["name"], "steady.bin");
    let mut s = connect_from("127.0.0.2:0", web);
    send(
        &mut s,
        "GET",
        &format!("/api/swarms/{}", h.to_hex()),
        None,
        b"",
    );
    assert_eq!(read_reply(s).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "served late: {:?}",
        started.elapsed()
    );
    assert_eq!(udp_search(&c, "steady").len(), 1);

    // The stalled ones are closed after the head deadline (10 s): with a
    // 408 for those that began a request, quietly for the silent ones.
    let r = read_reply(held.remove(0));
    assert_eq!(r.status, 408, "{}", r.text());
    let r = read_reply(held.remove(7));
    assert_eq!(r.status, 408, "the unsent body: {}", r.text());
    let mut silent = held.pop().unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        silent.read(&mut buf).unwrap_or(0),
        0,
        "closed without a word"
    );
    drop(held);
    drop(more);
    // And everything is back to normal for this address too.
    eventually("127.0.0.1 is served again", || {
        get(web, "/api/swarms").status == 200
    });
    assert_eq!(udp_search(&c, "").len(), 1);
}

#[test]
fn keep_alive_head_and_expect_continue() {
    let (_t, web, _dir) = start("keepalive", &[]);
    let mut s = TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    // Two requests on one connection, the second a HEAD (no body back).
    s.write_all(b"GET /api/swarms HTTP/1.1\r\nHost: k\r\n\r\n")
        .unwrap();
    let body = b"{\"swarms\":[]}";
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(body) {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&buf).contains("Connection: keep-alive"));
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_reply(s);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "HEAD has no body");
    assert!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );

    // A client that waits for 100 Continue before its body (as curl does).
    let t = torrent("continued.bin", 1000);
    let mut s = TcpStream::connect(web).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("POST /api/torrents HTTP/1.1\r\nHost: k\r\nContent-Type: application/x-bittorrent\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", t.len()).as_bytes())
        .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(&t).unwrap();
    assert_eq!(read_reply(s).status, 201);
}

#[test]
fn a_web_port_in_use_is_a_clear_error() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let (status, text) = run_to_exit(&["--bind", "127.0.0.1:0", "--web", &addr]);
    assert!(!status.success());
    assert!(
        text.contains(&format!("TCP port {port} is already in use")),
        "{text}"
    );
    assert!(text.contains("--web HOST:OTHERPORT"), "{text}");
    assert!(text.contains("--web off"), "{text}");
    let (status, text) = run_to_exit(&["--bind", "127.0.0.1:0", "--web", "nowhere"]);
    assert!(!status.success());
    assert!(text.contains("--web"), "{text}");
}

#[test]
fn web_off_serves_no_http() {
    // A port that was free a moment ago: nothing may listen on it.
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let free = probe.local_addr().unwrap();
    drop(probe);
    let t = TrackerProc::start(&["--web", "off"]);
    assert_eq!(t.web, None);
    t.wait_stderr("web page off");
    assert!(TcpStream::connect_timeout(&free, Duration::from_millis(500)).is_err());
    // The tracker's own port has no TCP listener either.
    assert!(TcpStream::connect_timeout(&t.addr, Duration::from_millis(500)).is_err());
    // And UDP works as ever.
    let c = Client::new(t.addr);
    assert!(udp_search(&c, "").is_empty());
}

/// A POST with exactly these headers (and `Content-Length`).
fn raw_post(web: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpReply {
    let mut s = TcpStream::connect_timeout(&web, Duration::from_secs(5)).unwrap();
    let mut req = format!("POST {path} HTTP/1.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    read_reply(s)
}

fn published_count(web: SocketAddr) -> usize {
    get(web, "/api/torrents").json()["torrents"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn published_torrents_are_listed_without_a_peer() {
    let (t, web, _dir) = start("listed", &[]);
    let orphan = torrent("Orphan Lecture.bin", 50_000);
    let live = torrent("live lecture.bin", 60_000);
    let (ho, hl) = (
        Metainfo::from_bytes(&orphan).unwrap().info_hash,
        Metainfo::from_bytes(&live).unwrap().info_hash,
    );
    for bytes in [&orphan, &live] {
        let r = http(web, "POST", "/api/torrents", Some(TORRENT), bytes);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // A peer seeds one of them; nobody registered the other.
    let c = Client::new(t.addr);
    register(
        &c,
        "seeder",
        7501,
        &[(hl, "live lecture.bin", 60_000, true)],
    );

    let (all, j) = api_search(web, "");
    assert_eq!(
        all,
        vec![
            (ho.to_hex(), "Orphan Lecture.bin".into(), 50_000, 0, 0),
            (hl.to_hex(), "live lecture.bin".into(), 60_000, 1, 0),
        ],
        "both, the live one once: {j}"
    );
    for s in j["swarms"].as_array().unwrap() {
        let h = s["info_hash"].as_str().unwrap();
        assert_eq!(s["torrent"], format!("/torrents/{h}.torrent"), "{s}");
        let m = Magnet::parse(s["magnet"].as_str().unwrap()).unwrap();
        assert_eq!(m.info_hash.to_hex(), h);
    }
    // The query matches as SEARCH does: any part of the name, any case.
    let (found, _) = api_search(web, "ORPHAN");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, ho.to_hex());
    let (found, _) = api_search(web, "lecture");
    assert_eq!(found.len(), 2, "{found:?}");
    let (found, _) = api_search(web, "an%20lec");
    assert_eq!(found.len(), 1, "{found:?}");
    let (found, _) = api_search(web, "nothing-like-this");
    assert!(found.is_empty(), "{found:?}");
    // UDP SEARCH still knows only the live one (the page lists more).
    assert_eq!(udp_search(&c, "lecture").len(), 1);

    // A publication shows at once, whatever was asked a moment ago.
    let third = torrent("orphan two.bin", 1_000);
    let r = http(web, "POST", "/api/torrents", Some(TORRENT), &third);
    assert_eq!(r.status, 201);
    let (found, _) = api_search(web, "orphan");
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn posts_from_other_origins_and_untyped_publications_are_refused() {
    let (_t, web, _dir) = start("origin", &[]);
    let file = torrent("origin.bin", 5_000);
    let here = web.to_string();
    let own = format!("http://{here}");

    let r = raw_post(
        web,
        "/api/torrents",
        &[
            ("Host", &here),
            ("Origin", "http://evil.example"),
            ("Content-Type", TORRENT),
        ],
        &file,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("http://evil.example"), "{msg}");
    let (ctype, form) = multipart("torrent", "origin.torrent", &file);
    let r = raw_post(
        web,
        "/publish",
        &[
            ("Host", &here),
            ("Origin", "http://evil.example"),
            ("Content-Type", &ctype),
        ],
        &form,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("not of this server"), "{}", r.text());

    // Without the .torrent's content type (curl's --data-binary default).
    for ct in [None, Some("application/x-www-form-urlencoded")] {
        let mut h = vec![("Host", here.as_str())];
        h.extend(ct.map(|c| ("Content-Type", c)));
        let r = raw_post(web, "/api/torrents", &h, &file);
        assert_eq!(r.status, 415, "{}", r.text());
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            msg.contains("Content-Type: application/x-bittorrent"),
            "{msg}"
        );
    }
    assert_eq!(published_count(web), 0, "nothing stored");

    // From this server's own page (the form) and from a script: stored.
    let r = raw_post(
        web,
        "/publish",
        &[("Host", &here), ("Origin", &own), ("Content-Type", &ctype)],
        &form,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = raw_post(
        web,
        "/api/torrents",
        &[("Host", &here), ("Origin", &own), ("Content-Type", TORRENT)],
        &file,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["new"], false, "already there");
    assert_eq!(published_count(web), 1);
}

#[test]
fn slow_uploads_from_one_address_do_not_block_another() {
    let (_t, web, _dir) = start("slowup", &[]);
    // A .torrent over 64 KiB: it needs an upload permit.
    let opts = CreateOptions {
        piece_length: Some(16 << 10),
        ..CreateOptions::default()
    };
    let layout = Layout::single("big.bin".into(), (16 << 10) * 5000, &opts).unwrap();
    let hashes: Vec<u8> = (0..5000 * 20).map(|i| (i * 13 + 1) as u8).collect();
    let big = layout.into_metainfo(hashes).unwrap().to_bytes();
    assert!(big.len() > 64 << 10);

    // Four uploads from 127.0.0.1 that trickle 5 bytes a second: each would
    // hold an upload permit for the whole 60 s.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(web).unwrap();
                s.write_all(
                    format!(
                        "POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Type: {TORRENT}\r\nContent-Length: {}\r\n\r\n",
                        1 << 20
                    )
                    .as_bytes(),
                )
                .unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let started = Instant::now();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while started.elapsed() < Duration::from_secs(30) {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                    if got.is_empty() && s.write_all(b"d").is_err() {
                        break;
                    }
                }
                String::from_utf8_lossy(&got).into_owned()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));

    // Another address publishes at once.
    let mut s = connect_from("127.0.0.3:0", web);
    send(&mut s, "POST", "/api/torrents", Some(TORRENT), &big);
    let r = read_reply(s);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "big.bin");

    // The tricklers are let go: too slow (408), or their turn never came
    // within the wait (503).
    let replies: Vec<String> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        replies
            .iter()
            .any(|r| r.starts_with("HTTP/1.1 408") && r.contains("slower than")),
        "{replies:?}"
    );
    for r in &replies {
        assert!(
            r.starts_with("HTTP/1.1 408") || r.starts_with("HTTP/1.1 503"),
            "{replies:?}"
        );
    }
}
