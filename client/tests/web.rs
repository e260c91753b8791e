//! The peer's web interface against real `minitorrent web` processes on
//! 127.0.0.1: uploads that another peer downloads byte for byte, magnet
//! links, pause / resume / remove, rate limits, bad input, the password,
//! and the pages in a real browser (headless chromium, skipped with a
//! message when none is installed; scripts/test.sh installs it).

#[path = "../../tracker/tests/common/chromium.rs"]
#[allow(dead_code)]
mod chromium;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

/// One HTTP exchange on a fresh connection: (status, head, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let given = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !given && (!body.is_empty() || matches!(method, "POST" | "PUT")) {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A refused upload may be answered before all of it is sent.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    (status, head, out[split + 4..].to_vec())
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (st, head, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(
        st,
        200,
        "{path}: {head}\n{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

fn send_json(addr: SocketAddr, method: &str, path: &str, v: &Value) -> (u16, Value) {
    let (st, _, body) = http(addr, method, path, &[], v.to_string().as_bytes());
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (st, v)
}

/// A `minitorrent web` peer and its page's address.
struct WebPeer {
    proc: Proc,
    addr: SocketAddr,
}

fn web_peer(name: &'static str, tracker: &Tracker, dir: &Path, extra: &[&str]) -> WebPeer {
    web_peer_env(name, tracker, dir, extra, &[])
}

fn web_peer_env(
    name: &'static str,
    tracker: &Tracker,
    dir: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> WebPeer {
    let t = tracker.arg();
    let mut args = vec![
        "web",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().unwrap(),
        "--tracker",
        &t,
        "--no-discover",
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn(name, &minitorrent_bin(), &args, envs, false);
    let line = proc
        .out
        .wait_match(|l| l.starts_with("web interface: "), TIMEOUT)
        .unwrap_or_else(|| panic!("no web interface\n{}", proc.dump()));
    let addr = line
        .trim_start_matches("web interface: http://")
        .trim_end_matches('/')
        .trim()
        .parse()
        .unwrap();
    WebPeer { proc, addr }
}

/// The row of `hash` in the list, if there.
fn row(w: &WebPeer, hash: &str) -> Option<Value> {
    let v = get_json(w.addr, "/api/torrents");
    v["torrents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["info_hash"] == hash)
        .cloned()
}

/// Waits for a row named `name` in state `state`; returns it.
fn wait_row(w: &WebPeer, what: impl Fn(&Value) -> bool, why: &str) -> Value {
    let deadline = Instant::now() + LONG;
    loop {
        let v = get_json(w.addr, "/api/torrents");
        if let Some(r) = v["torrents"].as_array().unwrap().iter().find(|r| what(r)) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {why}: {v}\n{}",
            w.proc.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn upload(w: &WebPeer, name: &str, data: &[u8]) -> (u16, Value) {
    let (st, _, body) = http(
        w.addr,
        "PUT",
        &format!("/api/upload?name={name}"),
        &[],
        data,
    );
    (st, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Every file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// A tracker and a `web` peer seeding a file uploaded through its page.
struct Shared {
    tmp: TempDir,
    tracker: Tracker,
    peer: WebPeer,
    data: Vec<u8>,
    /// Its row once seeding.
    row: Value,
    hash: String,
}

fn shared(tag: &str, name: &str, size: usize, extra: &[&str]) -> Shared {
    let tmp = TempDir::new(tag);
    let tracker = Tracker::start();
    let peer = web_peer("web-seed", &tracker, &tmp.sub("a"), extra);
    let data = random_bytes(size);
    let (st, v) = upload(&peer, name, &data);
    assert_eq!(st, 201, "{v}");
    let row = wait_row(
        &peer,
        |r| r["name"] == name && r["state"] == "seeding",
        "seeding",
    );
    let hash = row["info_hash"].as_str().unwrap().to_string();
    Shared {
        tmp,
        tracker,
        peer,
        data,
        row,
        hash,
    }
}

#[test]
fn uploaded_file_is_downloaded_byte_for_byte_by_another_peer() {
    let tmp = TempDir::new("web-upload");
    let tracker = Tracker::start();
    let a = web_peer("web-a", &tracker, &tmp.sub("a"), &[]);
    let data = random_bytes(3_000_000);
    let (st, v) = upload(&a, "docs/report.bin", &data);
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["name"], "docs/report.bin");
    assert_eq!(std::fs::read(tmp.join("a/docs/report.bin")).unwrap(), data);
    let r = wait_row(
        &a,
        |r| r["name"] == "report.bin" && r["state"] == "seeding",
        "seeding",
    );
    let hash = r["info_hash"].as_str().unwrap().to_string();
    assert_eq!(r["progress"], 1.0);
    assert!(r["magnet"].as_str().unwrap().contains(&hash));
    // The .torrent the page offers describes the file.
    let (st, head, torrent) = http(a.addr, "GET", r["torrent_url"].as_str().unwrap(), &[], b"");
    assert_eq!(st, 200, "{head}");
    assert!(head.contains("application/x-bittorrent"), "{head}");
    let m = minitorrent_common::metainfo::Metainfo::from_bytes(&torrent).unwrap();
    assert_eq!(m.info_hash.to_hex(), hash);

    let b = get_ok("get-b", &tracker, "report.bin", &tmp.sub("b"), &[]);
    drop(b);
    assert_same_file(&tmp.join("a/docs/report.bin"), &tmp.join("b/report.bin"));
    // The same name again is refused without overwrite=1, and nothing changes.
    let (st, v) = upload(&a, "docs/report.bin", b"other");
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("overwrite=1"), "{v}");
    assert_eq!(std::fs::read(tmp.join("a/docs/report.bin")).unwrap(), data);
    // With overwrite=1 the new version replaces it, under a new info hash.
    let newer = random_bytes(1_000_000);
    let (st, v) = upload(&a, "docs/report.bin&overwrite=1", &newer);
    assert_eq!(st, 201, "{v}");
    let r = wait_row(
        &a,
        |r| r["name"] == "report.bin" && r["state"] == "seeding" && r["info_hash"] != hash.as_str(),
        "the new version",
    );
    assert_eq!(r["size"], 1_000_000);
    std::thread::sleep(Duration::from_millis(500));
    let v = get_json(a.addr, "/api/torrents");
    assert_eq!(v["torrents"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(std::fs::read(tmp.join("a/docs/report.bin")).unwrap(), newer);
}

#[test]
fn seed_with_web_seeds_an_uploaded_file_itself() {
    let tmp = TempDir::new("web-seed-cmd");
    let tracker = Tracker::start();
    let first = tmp.sub("outside").join("first.bin");
    write_random(&first, 100_000);
    let t = tracker.arg();
    let dir = tmp.sub("d");
    let p = Proc::mt(
        "seed-web",
        &[
            "seed",
            first.to_str().unwrap(),
            "--web",
            "127.0.0.1:0",
            "--dir",
            dir.to_str().unwrap(),
            "--tracker",
            &t,
        ],
    );
    let line = p.out.wait_for("web interface: ", TIMEOUT);
    let addr: SocketAddr = line
        .trim_start_matches("web interface: http://")
        .trim_end_matches('/')
        .trim()
        .parse()
        .unwrap();
    let w = WebPeer { proc: p, addr };
    wait_row(
        &w,
        |r| r["name"] == "first.bin" && r["state"] == "seeding",
        "the seed",
    );
    let data = random_bytes(500_000);
    assert_eq!(upload(&w, "second.bin", &data).0, 201);
    wait_row(
        &w,
        |r| r["name"] == "second.bin" && r["state"] == "seeding",
        "the upload",
    );
    let l = tmp.sub("l");
    get_ok("get-second", &tracker, "second.bin", &l, &[]);
    assert_eq!(std::fs::read(l.join("second.bin")).unwrap(), data);

    // Removing with delete from the page deletes only what is in its folder.
    let r = row_named(&w, "first.bin");
    let hash = r["info_hash"].as_str().unwrap();
    let (st, v) = send_json(
        w.addr,
        "DELETE",
        &format!("/api/torrents/{hash}?delete=1"),
        &json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(
        first.exists(),
        "a file outside the page's folder was deleted"
    );
    assert_eq!(v["deleted"], json!([]));
    assert!(v["kept"][0].as_str().unwrap().contains("outside"), "{v}");
    let r = row_named(&w, "second.bin");
    let hash = r["info_hash"].as_str().unwrap();
    let (st, v) = send_json(
        w.addr,
        "DELETE",
        &format!("/api/torrents/{hash}?delete=1"),
        &json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(!dir.join("second.bin").exists());
}

fn row_named(w: &WebPeer, name: &str) -> Value {
    wait_row(w, |r| r["name"] == name, name)
}

#[test]
fn a_paused_file_of_the_shared_folder_stays_paused() {
    let tmp = TempDir::new("web-pause-share");
    let tracker = Tracker::start();
    let quick = [
        ("MINITORRENT_SHARE_RESCAN_MS", "100"),
        ("MINITORRENT_SHARE_SETTLE_MS", "100"),
    ];
    let w = web_peer_env("web-pause-share", &tracker, &tmp.sub("d"), &[], &quick);
    assert_eq!(upload(&w, "kept.bin", &random_bytes(200_000)).0, 201);
    let r = wait_row(
        &w,
        |r| r["name"] == "kept.bin" && r["state"] == "seeding",
        "seeding",
    );
    let hash = r["info_hash"].as_str().unwrap().to_string();
    let (st, _) = send_json(
        w.addr,
        "POST",
        &format!("/api/torrents/{hash}/pause"),
        &json!({}),
    );
    assert_eq!(st, 200);
    // Many rescans later it is still paused, and still one torrent.
    std::thread::sleep(Duration::from_millis(1500));
    let v = get_json(w.addr, "/api/torrents");
    let rows = v["torrents"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["state"], "paused", "{v}");
    assert_eq!(
        rows[0]["size"], 200_000,
        "a paused torrent keeps its size: {v}"
    );
    assert!(rows[0]["torrent_url"].is_string(), "{v}");
    // Removed (files kept), it is not shared again while it is unchanged.
    let (st, _) = send_json(
        w.addr,
        "DELETE",
        &format!("/api/torrents/{hash}?delete=0"),
        &json!({}),
    );
    assert_eq!(st, 200);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(row(&w, &hash).is_none());
    assert!(tmp.join("d/kept.bin").exists());
    // Once the file changes, it is the folder's to share again.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.join("d/kept.bin"))
        .unwrap();
    f.write_all(b"a new version").unwrap();
    drop(f);
    wait_row(
        &w,
        |r| r["name"] == "kept.bin" && r["state"] == "seeding" && r["info_hash"] != hash.as_str(),
        "the changed file shared again",
    );
}

#[test]
fn magnet_download_pauses_resumes_and_is_removed_with_its_files() {
    // A slow seeder, so that the download can be paused half way.
    let Shared {
        tmp,
        tracker,
        peer: a,
        data,
        row: r,
        hash,
    } = shared(
        "web-magnet",
        "movie.bin",
        6_000_000,
        &["--max-upload-rate", "1M"],
    );
    std::fs::write(tmp.join("src.bin"), &data).unwrap();
    let magnet = r["magnet"].as_str().unwrap().to_string();

    let b = web_peer("web-leech", &tracker, &tmp.sub("b"), &[]);
    let (st, v) = send_json(b.addr, "POST", "/api/add", &json!({ "source": magnet }));
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["info_hash"], hash.as_str());
    // Adding it twice is a conflict.
    let (st, _) = send_json(b.addr, "POST", "/api/add", &json!({ "source": hash }));
    assert_eq!(st, 409);
    wait_row(
        &b,
        |r| r["info_hash"] == hash.as_str() && r["downloaded"].as_u64().unwrap_or(0) > 500_000,
        "half a megabyte",
    );

    let (st, v) = send_json(
        b.addr,
        "POST",
        &format!("/api/torrents/{hash}/pause"),
        &json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "paused");
    // No more bytes leave the seeder for it.
    let sent = |w: &WebPeer| row(w, &hash).unwrap()["uploaded"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before = sent(&a);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(sent(&a), before, "bytes still sent to a paused peer");
    assert!(before < data.len() as u64, "finished before the pause");
    assert_eq!(row(&b, &hash).unwrap()["state"], "paused");
    assert!(
        !tmp.join("b/movie.bin").exists(),
        "a paused download is not complete"
    );

    let (st, v) = send_json(
        b.addr,
        "POST",
        &format!("/api/torrents/{hash}/resume"),
        &json!({}),
    );
    assert_eq!(st, 200, "{v}");
    wait_row(
        &b,
        |r| r["info_hash"] == hash.as_str() && r["state"] == "seeding",
        "the download to complete",
    );
    assert_same_file(&tmp.join("src.bin"), &tmp.join("b/movie.bin"));

    // Its page shows the file and the piece map.
    let d = get_json(b.addr, &format!("/api/torrents/{hash}"));
    assert_eq!(d["files"][0]["path"], "movie.bin");
    let pieces = d["pieces"].as_str().unwrap();
    assert!(
        !pieces.is_empty() && pieces.chars().all(|c| c == 'h'),
        "{pieces}"
    );

    let (st, v) = send_json(
        b.addr,
        "DELETE",
        &format!("/api/torrents/{hash}?delete=1"),
        &json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(!tmp.join("b/movie.bin").exists(), "the file is deleted");
    assert!(row(&b, &hash).is_none(), "the torrent left the list");
    let (st, _, _) = http(b.addr, "GET", &format!("/api/torrents/{hash}"), &[], b"");
    assert_eq!(st, 404);
}

#[test]
fn download_rate_limit_holds_within_20_percent() {
    let Shared {
        tmp,
        tracker,
        data,
        hash,
        peer: _seed,
        ..
    } = shared("web-limit", "big.bin", 8_000_000, &[]);

    let b = web_peer("web-limited", &tracker, &tmp.sub("b"), &[]);
    const LIMIT: f64 = 1_000_000.0;
    let (st, v) = send_json(b.addr, "POST", "/api/limits", &json!({"down": "1M"}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["down"], 1_000_000);
    assert_eq!(get_json(b.addr, "/api/limits")["down"], 1_000_000);
    let (st, v) = send_json(b.addr, "POST", "/api/add", &json!({ "source": hash }));
    assert_eq!(st, 201, "{v}");
    let got = || row(&b, &hash).unwrap()["downloaded"].as_u64().unwrap();
    wait_row(
        &b,
        |r| r["info_hash"] == hash.as_str() && r["downloaded"].as_u64().unwrap_or(0) > 300_000,
        "the download to start",
    );
    let (t0, d0) = (Instant::now(), got());
    std::thread::sleep(Duration::from_secs(4));
    let (t1, d1) = (Instant::now(), got());
    let rate = (d1 - d0) as f64 / (t1 - t0).as_secs_f64();
    assert!(
        (LIMIT * 0.8..=LIMIT * 1.2).contains(&rate),
        "measured {rate:.0} B/s under a limit of {LIMIT} B/s"
    );
    // Lifting the limit lets the rest come at once.
    let (st, _) = send_json(b.addr, "POST", "/api/limits", &json!({"down": 0}));
    assert_eq!(st, 200);
    wait_row(
        &b,
        |r| r["info_hash"] == hash.as_str() && r["state"] == "seeding",
        "the rest of the download",
    );
    assert_eq!(std::fs::read(tmp.join("b/big.bin")).unwrap(), data);
}

#[test]
fn bad_input_gets_4xx_and_nothing_is_written_outside_dir() {
    let tmp = TempDir::new("web-bad");
    let tracker = Tracker::start();
    let dir = tmp.sub("shared");
    let w = web_peer("web-bad", &tracker, &dir, &[]);
    let outside_before = files_below(tmp.path());
    for (name, want) in [
        ("../escape.bin", "leave the shared folder"),
        ("a/../../escape.bin", "leave the shared folder"),
        ("%2Fetc%2Fescape.bin", "absolute"),
        ("", "no name"),
        (".hidden", "hidden"),
        ("x.part", ".part"),
    ] {
        let (st, v) = upload(&w, name, b"data");
        assert_eq!(st, 400, "{name:?}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(e.contains(want), "{name:?}: {e}");
    }
    // Over the upload limit: refused on its head alone.
    let (st, _, body) = http(
        w.addr,
        "PUT",
        "/api/upload?name=huge.bin",
        &[("Content-Length", "99999999999999")],
        b"",
    );
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    // An oversized JSON body.
    let (st, _, _) = http(
        w.addr,
        "POST",
        "/api/add",
        &[("Content-Length", "20000000")],
        b"",
    );
    assert_eq!(st, 413);
    // Not a .torrent.
    let (st, _, body) = http(w.addr, "POST", "/api/add-torrent", &[], b"d4:spam4:eggse");
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("not a .torrent"));
    // A magnet link with a bad hash, and a bad info hash in a path.
    let (st, v) = send_json(
        w.addr,
        "POST",
        "/api/add",
        &json!({"source": "magnet:?xt=urn:btih:12345"}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("magnet"), "{v}");
    let (st, _, _) = http(w.addr, "POST", "/api/torrents/xyz/pause", &[], b"");
    assert_eq!(st, 400);
    let (st, _, _) = http(w.addr, "GET", "/api/nothing", &[], b"");
    assert_eq!(st, 404);
    // Another site's page may not change anything.
    let (st, _, _) = http(
        w.addr,
        "POST",
        "/api/limits",
        &[("Origin", "http://evil.example")],
        br#"{"up": 1}"#,
    );
    assert_eq!(st, 403);
    assert_eq!(get_json(w.addr, "/api/limits")["up"], 0);
    // Garbage does not stop the server.
    let mut s = TcpStream::connect(w.addr).unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400"));
    get_json(w.addr, "/api/session");

    assert_eq!(
        files_below(tmp.path()),
        outside_before,
        "something was written"
    );
}

#[test]
fn beyond_loopback_needs_a_password() {
    let tmp = TempDir::new("web-pass");
    let tracker = Tracker::start();
    let t = tracker.arg();
    let dir = tmp.sub("d");
    let mut p = Proc::mt(
        "web-open",
        &[
            "web",
            "--listen",
            "0.0.0.0:0",
            "--dir",
            dir.to_str().unwrap(),
            "--tracker",
            &t,
        ],
    );
    let st = p.wait(TIMEOUT);
    assert!(!st.success());
    assert!(p.err.text().contains("--password"), "{}", p.dump());

    let w = web_peer("web-locked", &tracker, &dir, &["--password", "s3cret"]);
    let (st, head, _) = http(w.addr, "GET", "/api/session", &[], b"");
    assert_eq!(st, 401);
    assert!(head.contains("WWW-Authenticate: Basic"), "{head}");
    // "u:wrong", then "u:s3cret".
    let (st, _, _) = http(
        w.addr,
        "GET",
        "/",
        &[("Authorization", "Basic dTp3cm9uZw==")],
        b"",
    );
    assert_eq!(st, 401);
    let (st, _, _) = http(
        w.addr,
        "GET",
        "/api/session",
        &[("Authorization", "Basic dTpzM2NyZXQ=")],
        b"",
    );
    assert_eq!(st, 200);
}

/// The attribute `attr` of the first element whose opening tag contains
/// `marker`.
fn attr_of(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    chromium::attrs(&dom[start..=end], "<", attr)
        .into_iter()
        .next()
}

#[test]
fn torrent_page_renders_progress_and_peers_in_a_browser() {
    let Some(browser) = chromium::Chromium::or_skip("torrent_page_renders_progress_and_peers")
    else {
        return;
    };
    let Shared {
        tmp,
        tracker,
        hash,
        peer: _seed,
        ..
    } = shared(
        "web-browser",
        "lecture.bin",
        20_000_000,
        &["--max-upload-rate", "300k"],
    );
    let b = web_peer("web-b-leech", &tracker, &tmp.sub("b"), &[]);
    assert_eq!(
        send_json(b.addr, "POST", "/api/add", &json!({"source": hash})).0,
        201
    );
    wait_row(
        &b,
        |r| r["info_hash"] == hash.as_str() && r["downloaded"].as_u64().unwrap_or(0) > 100_000,
        "the download to start",
    );

    let dom = browser
        .dump_dom(&format!("http://{}/torrent/{hash}", b.addr), 3000)
        .unwrap();
    let pct: f64 = attr_of(&dom, "id=\"progress\"", "data-progress")
        .unwrap_or_else(|| panic!("no progress in the page:\n{dom}"))
        .parse()
        .unwrap();
    assert!(pct > 0.0 && pct < 100.0, "progress {pct}");
    assert!(
        chromium::count(&dom, "<tr data-addr=") >= 1,
        "no peer row:\n{dom}"
    );

    let dom = browser
        .dump_dom(&format!("http://{}/", b.addr), 3000)
        .unwrap();
    assert!(
        dom.contains(&format!("data-hash=\"{hash}\"")),
        "no row for the download on the main page:\n{dom}"
    );
}
