//! A seeder publishes the `.torrent` of each file it seeds on the tracker's
//! web page: a tracker running in this process with `web_url` set (what
//! `--web` fills in) names the page in its `OK`s, and a small HTTP server in
//! this test stands for the page and records every `POST`. The body is the
//! seeder's `.torrent` byte for byte, sent once (not at every heartbeat); a
//! page that answers 500, or that nobody serves, is one warning and the
//! seeder keeps seeding; a page on another host is never posted to. The
//! last test checks the same against the real `minitorrent-tracker --web`:
//! the `.torrent` is in the catalogue.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::metainfo::{InfoHash, Metainfo};

const PIECE: u32 = 16 * 1024;

/// One request the fake page received.
#[derive(Debug, Clone)]
struct Posted {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A tiny HTTP server: records each request and answers every one with
/// `status` and a JSON body.
struct FakePage {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Posted>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakePage {
    fn start(bind: &str, status: u16, reply: &'static str) -> FakePage {
        let listener = TcpListener::bind(bind).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, quit) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !quit.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if let Some(p) = serve(s, status, reply) {
                            log.lock().unwrap().push(p);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FakePage {
            addr,
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn posts(&self) -> Vec<Posted> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for FakePage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head, then `Content-Length` bytes of body) and
/// answers it.
fn serve(s: TcpStream, status: u16, reply: &str) -> Option<Posted> {
    s.set_nonblocking(false).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut len, mut content_type) = (0usize, None);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "content-type" => content_type = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let mut s = s;
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = s.flush();
    Some(Posted {
        method,
        path,
        content_type,
        body,
    })
}

/// `create` a torrent of a fresh random file; returns (data dir, data
/// file, torrent, info hash).
fn make_torrent(
    tmp: &TempDir,
    name: &str,
    tracker: &str,
) -> (std::path::PathBuf, std::path::PathBuf, InfoHash) {
    let src = tmp.sub("seed");
    let data = src.join(name);
    write_random(&data, 256 * 1024);
    let torrent = tmp.join(&format!("{name}.torrent"));
    run_create(&data, &torrent, tracker, PIECE);
    let h = metainfo_of(&torrent).info_hash;
    (src, torrent, h)
}

fn seed(
    name: &'static str,
    torrent: &std::path::Path,
    dir: &std::path::Path,
    tracker: &str,
) -> Proc {
    let p = Proc::mt(
        name,
        &[
            "seed",
            torrent.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--tracker",
            tracker,
            "--trace",
        ],
    );
    if p.out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .is_none()
    {
        panic!("{name} did not start\n{}", p.dump());
    }
    p
}

/// Waits until the page got `n` requests; returns them.
fn wait_posts(page: &FakePage, n: usize, p: &Proc) -> Vec<Posted> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = page.posts();
        if got.len() >= n {
            return got;
        }
        if Instant::now() > deadline {
            panic!("the page got {} requests, not {n}\n{}", got.len(), p.dump());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A leecher downloads `torrent` from the swarm: the seeder still seeds.
fn still_seeds(tmp: &TempDir, tracker: &str, torrent: &std::path::Path, data: &std::path::Path) {
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
            tracker,
        ],
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "get failed\n{}", leecher.dump());
    assert_same_file(data, &dest.join(data.file_name().unwrap()));
}

#[test]
fn a_seeder_publishes_its_torrent_once() {
    let page = FakePage::start(
        "127.0.0.1:0",
        201,
        r#"{"info_hash":"x","name":"class.bin","new":true}"#,
    );
    let t = InProcessTracker::start(Some(&page.url()));
    let tmp = TempDir::new("publish-once");

    // A .torrent made by `create`, seeded: the page gets that file.
    let (src, torrent, h) = make_torrent(&tmp, "class.bin", &t.addr);
    let seeder = seed("seeder", &torrent, &src, &t.addr);
    let posts = wait_posts(&page, 1, &seeder);
    let p = &posts[0];
    assert_eq!(
        (p.method.as_str(), p.path.as_str()),
        ("POST", "/api/torrents")
    );
    assert_eq!(p.content_type.as_deref(), Some("application/x-bittorrent"));
    assert_eq!(
        p.body,
        std::fs::read(&torrent).unwrap(),
        "not the seeder's .torrent"
    );
    assert_eq!(Metainfo::from_bytes(&p.body).unwrap().info_hash, h);
    // `--trace` shows it as one line, and the log says it went through.
    let line = seeder.err.wait_for(" POST class.bin ", TIMEOUT);
    assert!(
        line.contains(&format!("web → {}api/torrents", page.url()))
            && line.contains("→ published (new)"),
        "{line}"
    );
    seeder
        .err
        .wait_for("published the .torrent of class.bin", TIMEOUT);

    // A file the seeder hashes itself: the .torrent it built (its info hash
    // is the one it prints).
    let own = tmp.sub("own").join("notes.bin");
    write_random(&own, 100 * 1024);
    let hasher = Proc::mt(
        "hasher",
        &["seed", own.to_str().unwrap(), "--tracker", &t.addr],
    );
    let own_hash = seeding_hash(&hasher, "notes.bin");
    let posts = wait_posts(&page, 2, &hasher);
    let m = Metainfo::from_bytes(&posts[1].body).expect("a valid .torrent");
    assert_eq!(m.info_hash, own_hash);
    assert_eq!(m.info.name, "notes.bin");
    assert_eq!(m.announce, Some(format!("udp://{}", t.addr)));

    // Several heartbeats later (one a second), still one POST each.
    std::thread::sleep(Duration::from_millis(3500));
    let posts = page.posts();
    assert_eq!(
        posts.len(),
        2,
        "posted again: {:?}\n{}\n{}",
        posts.iter().map(|p| p.body.len()).collect::<Vec<_>>(),
        seeder.dump(),
        hasher.dump()
    );
}

#[test]
fn a_refusing_page_is_one_warning_and_seeding_goes_on() {
    let page = FakePage::start("127.0.0.1:0", 500, r#"{"error":"the catalogue is broken"}"#);
    let t = InProcessTracker::start(Some(&page.url()));
    let tmp = TempDir::new("publish-500");
    let (src, torrent, _) = make_torrent(&tmp, "class.bin", &t.addr);
    let seeder = seed("seeder", &torrent, &src, &t.addr);
    wait_posts(&page, 1, &seeder);
    let w = seeder
        .err
        .wait_for("could not publish the .torrent of class.bin", TIMEOUT);
    assert!(w.contains("HTTP 500: the catalogue is broken"), "{w}");
    // Not retried at the next heartbeats (one a second).
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(page.posts().len(), 1);
    // (The leecher, once complete, publishes too: a peer that has the whole
    // file seeds it.)
    still_seeds(&tmp, &t.addr, &torrent, &src.join("class.bin"));
    // Warned about once.
    let warnings = seeder
        .err
        .text()
        .matches("could not publish the .torrent")
        .count();
    assert_eq!(warnings, 1, "{}", seeder.dump());
}

#[test]
fn an_unreachable_page_is_one_warning_and_seeding_goes_on() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let t = InProcessTracker::start(Some(&url));
    let tmp = TempDir::new("publish-unreachable");
    let (src, torrent, _) = make_torrent(&tmp, "class.bin", &t.addr);
    let seeder = seed("seeder", &torrent, &src, &t.addr);
    let w = seeder
        .err
        .wait_for("could not publish the .torrent of class.bin", TIMEOUT);
    assert!(w.contains(&url), "{w}");
    still_seeds(&tmp, &t.addr, &torrent, &src.join("class.bin"));
    let warnings = seeder
        .err
        .text()
        .matches("could not publish the .torrent")
        .count();
    assert_eq!(warnings, 1, "{}", seeder.dump());
}

#[test]
fn a_page_on_another_host_is_never_posted_to() {
    // The tracker is on 127.0.0.1; it names a page on 127.0.0.2.
    let page = FakePage::start("127.0.0.2:0", 201, "{}");
    let t = InProcessTracker::start(Some(&page.url()));
    let tmp = TempDir::new("publish-elsewhere");
    let (src, torrent, _) = make_torrent(&tmp, "class.bin", &t.addr);
    let seeder = seed("seeder", &torrent, &src, &t.addr);
    let w = seeder
        .err
        .wait_for("not publishing .torrents there", TIMEOUT);
    assert!(w.contains("not the tracker's own IP 127.0.0.1"), "{w}");
    // Heartbeats come and go: no POST, and the warning once.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(page.posts().is_empty(), "{:?}", page.posts());
    let warnings = seeder
        .err
        .text()
        .matches("not publishing .torrents there")
        .count();
    assert_eq!(warnings, 1, "{}", seeder.dump());
}

#[test]
fn a_download_by_info_hash_publishes_the_info_it_fetched() {
    let page = FakePage::start("127.0.0.1:0", 201, r#"{"new":false}"#);
    let t = InProcessTracker::start(Some(&page.url()));
    let tmp = TempDir::new("publish-magnet");
    let (src, torrent, h) = make_torrent(&tmp, "class.bin", &t.addr);
    let seeder = seed("seeder", &torrent, &src, &t.addr);
    wait_posts(&page, 1, &seeder);

    // A leecher with only the info hash: the metadata comes from the
    // seeder; once complete it seeds, and publishes a .torrent made of the
    // info dictionary it fetched and the tracker as announce.
    let dest = tmp.sub("leech");
    let leecher = Proc::mt(
        "leecher",
        &[
            "get",
            &h.to_hex(),
            "--dir",
            dest.to_str().unwrap(),
            "--tracker",
            &t.addr,
        ],
    );
    let posts = wait_posts(&page, 2, &leecher);
    assert_same_file(&src.join("class.bin"), &dest.join("class.bin"));
    let original = metainfo_of(&torrent);
    let m = Metainfo::from_bytes(&posts[1].body).expect("a valid .torrent");
    assert_eq!(m.info_hash, h);
    assert_eq!(m.info_bytes, original.info_bytes);
    assert_eq!(m.announce, Some(format!("udp://{}", t.addr)));
    leecher
        .err
        .wait_for("published the .torrent of class.bin", TIMEOUT);
}

/// The real thing, once the tracker serves its web page (`--web`): a seeder
/// against it, and its `.torrent` is in the catalogue, byte for byte.
#[test]
fn a_seeder_s_torrent_appears_in_the_tracker_s_catalogue() {
    let t = Tracker::start_with(&["--bind", "127.0.0.1:0", "--web", "127.0.0.1:0"]);
    let line = t.proc.out.wait_for("web page on ", TIMEOUT);
    let web = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    let tmp = TempDir::new("publish-catalogue");
    let (src, torrent, h) = make_torrent(&tmp, "class.bin", &t.arg());
    let seeder = seed("seeder", &torrent, &src, &t.arg());
    seeder
        .err
        .wait_for("published the .torrent of class.bin", TIMEOUT);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let list: serde_json::Value = serde_json::from_str(
        &agent
            .get(format!("{web}/api/torrents"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert!(
        list["torrents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["info_hash"] == h.to_hex())),
        "{list}"
    );
    let stored = agent
        .get(format!("{web}/torrents/{}.torrent", h.to_hex()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    assert_eq!(stored, std::fs::read(&torrent).unwrap());
}
