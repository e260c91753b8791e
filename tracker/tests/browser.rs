//! The live swarm page (tracker/src/web/assets/swarm.html and swarm.js) in a
//! real browser: headless Chromium loads it from a small static server of
//! this test, which serves the asset files and a fixture for
//! `/api/swarms/<info_hash>` that changes between polls; the test then reads
//! the DOM after the page's JavaScript ran. Skips (with a message) when no
//! chromium is installed; scripts/test.sh installs Debian's.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::chromium::{attrs, count, text_of, Chromium};
use serde_json::{json, Value};

const IH: &str = "0123456789abcdef0123456789abcdef01234567";
const SEEDER: &str = "127.0.0.1:7000";
const L1: &str = "127.0.0.1:7001";
const L2: &str = "127.0.0.1:7002";
const L3: &str = "127.0.0.1:7003";
/// Virtual time each page gets: about five polls.
const BUDGET_MS: u32 = 5000;

/// What the fixture server answers to `GET /api/swarms/<IH>`.
#[derive(Clone)]
enum Api {
    /// The n-th poll gets the n-th reply (the last one from then on).
    Replies(Vec<Value>),
    /// 404 {"error": ...}, as the tracker answers for an unknown swarm.
    NotFound,
    /// The connection is closed without a reply, as a dead tracker would.
    Hangup,
    /// This reply to the first poll, then hang-ups (the tracker died).
    OnceThenHangup(Value),
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection.
struct Fixture {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    api_polls: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Fixture {
    fn start(api: Api) -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fixture server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let api_polls = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (s, p, l) = (stop.clone(), api_polls.clone(), paths.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (api, p, l) = (api.clone(), p.clone(), l.clone());
                        std::thread::spawn(move || serve(conn, &api, &p, &l));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Fixture {
            addr,
            stop,
            api_polls,
            paths,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn polls(&self) -> usize {
        self.api_polls.load(Ordering::Relaxed)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn asset(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/web/assets")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn serve(mut conn: TcpStream, api: &Api, polls: &AtomicUsize, paths: &Mutex<Vec<String>>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    paths.lock().unwrap().push(path.clone());
    let (status, ctype, body): (&str, &str, Vec<u8>) = if path == format!("/swarm/{IH}")
        || path == format!("/swarm/{}", IH.to_uppercase())
        || path == "/swarm/not-a-hash"
    {
        ("200 OK", "text/html; charset=utf-8", asset("swarm.html"))
    } else if path == "/throws" {
        // For the test of the helper: a page whose script fails.
        (
            "200 OK",
            "text/html",
            b"<p>x</p><script>setTimeout(function () { null.boom(); }, 50);</script>".to_vec(),
        )
    } else if path == "/assets/swarm.js" {
        (
            "200 OK",
            "text/javascript; charset=utf-8",
            asset("swarm.js"),
        )
    } else if path == "/assets/style.css" {
        // The shared style sheet is another asset's; the page must read
        // well without it.
        ("200 OK", "text/css", Vec::new())
    } else if path == format!("/api/swarms/{IH}") {
        let n = polls.fetch_add(1, Ordering::Relaxed);
        match api {
            Api::Replies(r) => {
                let v = &r[n.min(r.len() - 1)];
                ("200 OK", "application/json", v.to_string().into_bytes())
            }
            Api::NotFound => (
                "404 Not Found",
                "application/json",
                json!({"error": format!("no swarm with info hash {IH}")})
                    .to_string()
                    .into_bytes(),
            ),
            Api::Hangup => return,
            Api::OnceThenHangup(_) if n > 0 => return,
            Api::OnceThenHangup(v) => ("200 OK", "application/json", v.to_string().into_bytes()),
        }
    } else {
        ("404 Not Found", "text/plain", b"not found".to_vec())
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
    let _ = conn.flush();
}

fn peer(addr: &str, seeder: bool, progress: Option<f64>, down: u64, up: u64) -> Value {
    json!({
        "addr": addr,
        "peer_id": format!("-MN0100-{}", &addr[addr.len() - 4..]),
        "client": "minitorrent 0.1.0.0",
        "seeder": seeder,
        "progress": progress,
        "down_rate": down,
        "up_rate": up,
        "protocol": "json",
        "reporting": true,
    })
}

/// The swarm at the first poll: a seeder sending to two leechers.
fn first() -> Value {
    let mut avail = vec![1u32; 40];
    for a in avail.iter_mut().take(10) {
        *a = 3;
    }
    json!({
        "info_hash": IH,
        "name": "lecture-<b>07</b>.mp4",
        "size": 41943040u64,
        "seeders": 1, "leechers": 2, "completed": 0,
        "pieces": 40,
        "peers": [
            peer(L2, false, Some(0.1), 300_000, 0),
            peer(SEEDER, true, Some(1.0), 0, 600_000),
            peer(L1, false, Some(0.25), 300_000, 0),
        ],
        "edges": [
            {"from": SEEDER, "to": L1, "bytes": 3_000_000u64},
            {"from": SEEDER, "to": L2, "bytes": 3_000_000u64},
        ],
        "availability": avail,
        "window_secs": 10,
        "truncated": false,
        "magnet": format!("magnet:?xt=urn:btih:{IH}&dn=lecture-07.mp4"),
        "torrent": format!("/torrents/{IH}.torrent"),
        "events": [
            {"at_ms": 1_700_000_002_000u64, "kind": "register", "peer": L2},
            {"at_ms": 1_700_000_001_000u64, "kind": "register", "peer": L1},
        ],
    })
}

/// Later polls: the leechers also swap pieces, a third (BEP 15) leecher
/// joined, one piece is held by nobody who reports.
fn later() -> Value {
    let mut v = first();
    let mut avail: Vec<u32> = (0..40).map(|i| 1 + (i % 4)).collect();
    avail[39] = 0;
    v["availability"] = json!(avail);
    v["leechers"] = json!(3);
    v["peers"] = json!([
        peer(L2, false, Some(0.5), 900_000, 200_000),
        peer(SEEDER, true, Some(1.0), 0, 1_000_000),
        peer(L1, false, Some(0.625), 900_000, 300_000),
        {
            "addr": L3, "peer_id": "-TR3000-xyz", "client": "Transmission 3.0",
            "seeder": false, "progress": null, "down_rate": 0, "up_rate": 0,
            "protocol": "bep15", "reporting": false
        },
    ]);
    v["edges"] = json!([
        {"from": SEEDER, "to": L1, "bytes": 5_000_000u64},
        {"from": SEEDER, "to": L2, "bytes": 5_000_000u64},
        {"from": L1, "to": L2, "bytes": 2_000_000u64},
        {"from": L2, "to": L1, "bytes": 1_000_000u64},
        // An edge to nobody in the list is left out, not drawn to nowhere.
        {"from": L1, "to": "10.9.9.9:1", "bytes": 10u64},
    ]);
    v["events"] = json!([
        {"at_ms": 1_700_000_003_000u64, "kind": "completed", "peer": L1},
        {"at_ms": 1_700_000_002_500u64, "kind": "register", "peer": L3},
        {"at_ms": 1_700_000_002_000u64, "kind": "register", "peer": L2},
        {"at_ms": 1_700_000_001_000u64, "kind": "register", "peer": L1},
    ]);
    v
}

fn dump(chromium: &Chromium, fixture: &Fixture, path: &str) -> String {
    chromium
        .dump_dom(&fixture.url(path), BUDGET_MS)
        .unwrap_or_else(|e| panic!("chromium on {path}: {e}"))
}

#[test]
fn swarm_page_shows_peers_graph_pieces_and_events_and_follows_changes() {
    let Some(chromium) = Chromium::or_skip("swarm_page_shows_peers_graph_pieces_and_events") else {
        return;
    };
    let fixture = Fixture::start(Api::Replies(vec![first(), later()]));
    let dom = dump(&chromium, &fixture, &format!("/swarm/{IH}"));
    let polls = fixture.polls();
    assert!(
        polls >= 3,
        "the page polled /api/swarms/{IH} {polls} times in {BUDGET_MS} ms of virtual time; paths: {:?}",
        fixture.paths()
    );
    assert!(
        dom.contains(r#"data-state="live""#),
        "status: {:?}",
        text_of(&dom, r#"id="status""#)
    );

    // Header: the name as text (never as markup), counts, links.
    let name = text_of(&dom, r#"id="name""#).unwrap();
    assert_eq!(name, "lecture-&lt;b&gt;07&lt;/b&gt;.mp4", "{dom}");
    assert!(!dom.contains("<b>07</b>"), "the name was inserted as HTML");
    assert_eq!(text_of(&dom, r#"id="seeders""#).unwrap(), "1");
    assert_eq!(text_of(&dom, r#"id="leechers""#).unwrap(), "3");
    assert_eq!(text_of(&dom, r#"id="completed""#).unwrap(), "0");
    assert_eq!(text_of(&dom, r#"id="size""#).unwrap(), "40.0 MiB");
    assert!(dom.contains(&format!(
        r#"href="magnet:?xt=urn:btih:{IH}&amp;dn=lecture-07.mp4""#
    )));
    assert_eq!(
        attrs(&dom, r#"<a id="torrent""#, "href"),
        [format!("/torrents/{IH}.torrent")]
    );
    assert_eq!(
        attrs(&dom, r#"<a id="torrent""#, "download"),
        ["lecture-_b_07__b_.mp4.torrent"]
    );
    let tag = &dom[dom.find(r#"<a id="torrent""#).unwrap()..];
    assert!(
        !tag[..tag.find('>').unwrap()].contains(" hidden"),
        "the .torrent link is hidden"
    );
    assert!(dom.contains(&format!(r#"<code id="info-hash" class="hash">{IH}</code>"#)));

    // The peers table: the later reply's four peers, sorted by address.
    let rows: Vec<usize> = [SEEDER, L1, L2, L3]
        .iter()
        .map(|a| {
            dom.find(&format!(r#"<tr data-addr="{a}""#))
                .unwrap_or_else(|| panic!("no row for {a}"))
        })
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "rows not by address");
    assert_eq!(count(&dom, "<tr data-addr="), 4);
    assert!(dom.contains(&format!(
        r#"<tr data-addr="{L3}" data-role="leecher" data-reporting="false" data-protocol="bep15">"#
    )));
    assert!(dom.contains("BEP 15<span class=\"sub\">no STATS</span>"));
    assert!(dom.contains("Transmission 3.0") && dom.contains("-TR3000-xyz"));
    assert!(dom.contains("879 KiB/s"), "900000 B/s in KiB/s");
    assert!(dom.contains("977 KiB/s"), "1000000 B/s in KiB/s");
    assert!(dom.contains("<b>62%</b>"), "L1's progress bar");

    // The graph: one node per peer, seeders told apart, fill = progress.
    assert_eq!(
        attrs(&dom, r#"<g class="node""#, "data-addr"),
        [SEEDER, L1, L2, L3],
        "one node per peer"
    );
    assert!(dom.contains(&format!(
        r#"data-addr="{SEEDER}" data-role="seeder" data-progress="1.000""#
    )));
    assert!(dom.contains(&format!(
        r#"data-addr="{L1}" data-role="leecher" data-progress="0.625""#
    )));
    assert!(dom.contains(&format!(
        r#"data-addr="{L3}" data-role="leecher" data-progress="" data-reporting="false""#
    )));
    // One edge per (from, to) with bytes; both directions of L1-L2; the
    // edge to an unlisted address left out.
    assert_eq!(count(&dom, r#"<g class="edge-g""#), 4, "edges");
    for (from, to, bytes) in [
        (SEEDER, L1, 5_000_000),
        (SEEDER, L2, 5_000_000),
        (L1, L2, 2_000_000),
        (L2, L1, 1_000_000),
    ] {
        assert!(
            dom.contains(&format!(
                r#"data-from="{from}" data-to="{to}" data-bytes="{bytes}""#
            )),
            "no edge {from} -> {to}"
        );
    }
    assert!(!dom.contains("10.9.9.9"));
    // Thickness follows the bytes: the largest edge is the thickest.
    let width = |from: &str, to: &str| -> f64 {
        let at = dom
            .find(&format!(r#"data-from="{from}" data-to="{to}""#))
            .unwrap();
        let rest = &dom[at..];
        let w = rest.find("stroke-width=\"").unwrap() + "stroke-width=\"".len();
        rest[w..w + rest[w..].find('"').unwrap()].parse().unwrap()
    };
    assert!(width(SEEDER, L1) > width(L1, L2) && width(L1, L2) > width(L2, L1));
    assert_eq!(count(&dom, r#"<polygon class="arrow""#), 4, "arrowheads");

    // Availability: one cell per piece with its count, and the scale.
    assert_eq!(count(&dom, r#"<div class="cell a"#), 40, "cells");
    assert_eq!(count(&dom, r#"<div class="cell a0" data-count="0""#), 1);
    assert_eq!(count(&dom, r#"<div class="cell a1" data-count="1""#), 10);
    assert_eq!(count(&dom, r#"<div class="cell a4" data-count="4""#), 9);
    assert!(dom.contains("1 peer (rarest)") && dom.contains("6+ peers"));
    let note = text_of(&dom, r#"id="pieces-note""#).unwrap();
    assert!(
        note.contains("40 pieces") && note.contains("1 held by nobody"),
        "{note}"
    );

    // The timeline, newest first.
    let ev: Vec<usize> = [
        format!(r#"<li data-kind="completed" data-peer="{L1}">"#),
        format!(r#"<li data-kind="register" data-peer="{L3}">"#),
        format!(r#"<li data-kind="register" data-peer="{L1}">"#),
    ]
    .iter()
    .map(|e| {
        dom.find(e.as_str())
            .unwrap_or_else(|| panic!("no event {e}"))
    })
    .collect();
    assert!(
        ev.windows(2).all(|w| w[0] < w[1]),
        "events not newest first"
    );
    assert_eq!(count(&dom, "<li data-kind="), 4);

    assert!(fixture.paths().contains(&"/assets/swarm.js".to_string()));

    // To look at the page with this fixture (when changing its design):
    // MINITORRENT_SWARM_SCREENSHOT=/tmp/swarm.png cargo test -p minitorrent-tracker --test browser
    if let Some(png) = std::env::var_os("MINITORRENT_SWARM_SCREENSHOT") {
        let png = PathBuf::from(png);
        chromium
            .screenshot(
                &fixture.url(&format!("/swarm/{IH}")),
                &png,
                (1600, 1100),
                BUDGET_MS,
            )
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        eprintln!("saved {}", png.display());
    }
}

#[test]
fn swarm_page_says_when_the_swarm_is_unknown_and_keeps_asking() {
    let Some(chromium) = Chromium::or_skip("swarm_page_says_when_the_swarm_is_unknown") else {
        return;
    };
    let fixture = Fixture::start(Api::NotFound);
    // An upper-case hash in the address works too.
    let dom = dump(
        &chromium,
        &fixture,
        &format!("/swarm/{}", IH.to_uppercase()),
    );
    assert!(dom.contains(r#"data-state="unknown""#));
    let msg = text_of(&dom, r#"id="message""#).unwrap();
    assert!(
        msg.contains("knows no swarm with info hash") && msg.contains(IH),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("no swarm with info hash {IH}")),
        "{msg}"
    );
    assert!(fixture.polls() >= 2, "stopped polling after the 404");
    // Nothing to show yet: the empty panels are hidden.
    assert!(dom.contains(r#"<main id="live" class="dim" hidden="">"#));
    assert_eq!(count(&dom, "<tr data-addr="), 0);
}

#[test]
fn swarm_page_says_when_the_tracker_is_unreachable_and_retries() {
    let Some(chromium) = Chromium::or_skip("swarm_page_says_when_the_tracker_is_unreachable")
    else {
        return;
    };
    let fixture = Fixture::start(Api::Hangup);
    let dom = dump(&chromium, &fixture, &format!("/swarm/{IH}"));
    assert!(dom.contains(r#"data-state="unreachable""#));
    let msg = text_of(&dom, r#"id="message""#).unwrap();
    assert!(
        msg.contains("Cannot reach the tracker")
            && msg.contains("Retrying every second")
            && msg.contains("nothing to show yet"),
        "{msg}"
    );
    assert!(fixture.polls() >= 2, "stopped retrying");

    // A tracker that answered once and then died: the last data stays,
    // dimmed, under the message.
    let died = Fixture::start(Api::OnceThenHangup(first()));
    let dom = dump(&chromium, &died, &format!("/swarm/{IH}"));
    assert!(dom.contains(r#"data-state="unreachable""#));
    let msg = text_of(&dom, r#"id="message""#).unwrap();
    assert!(msg.contains("the data below is from"), "{msg}");
    assert!(dom.contains(r#"<main id="live" class="dim">"#));
    assert_eq!(count(&dom, "<tr data-addr="), 3);
    assert!(died.polls() >= 3, "stopped retrying");
    // A path with no info hash: a message, no polling at all.
    let before = fixture.polls();
    let dom = dump(&chromium, &fixture, "/swarm/not-a-hash");
    assert!(dom.contains(r#"data-state="invalid""#));
    assert!(text_of(&dom, r#"id="message""#)
        .unwrap()
        .contains("40 hexadecimal digits"));
    assert_eq!(fixture.polls(), before);

    // The helper fails a page whose script throws (so every test above
    // also says the swarm page ran without an uncaught error).
    let err = chromium
        .dump_dom(&fixture.url("/throws"), 1000)
        .expect_err("an uncaught TypeError");
    assert!(
        err.contains("Uncaught TypeError") && err.contains("boom"),
        "{err}"
    );
}

/// A big swarm: every peer a node (labels left to the table), and a file
/// of the most pieces a `STATS` bitfield carries shown in at most 2048 cells,
/// each coloured by the rarest of its pieces.
#[test]
fn swarm_page_scales_to_many_peers_and_pieces() {
    let Some(chromium) = Chromium::or_skip("swarm_page_scales_to_many_peers_and_pieces") else {
        return;
    };
    let mut v = first();
    let peers: Vec<Value> = (0..60u32)
        .map(|i| {
            let addr = format!("10.0.{}.{}:6881", i / 10, i % 10 + 1);
            peer(&addr, i % 7 == 0, Some(f64::from(i) / 60.0), 1000, 1000)
        })
        .collect();
    let edges: Vec<Value> = (1..60u32)
        .map(|i| {
            json!({
                "from": "10.0.0.1:6881",
                "to": format!("10.0.{}.{}:6881", i / 10, i % 10 + 1),
                "bytes": 1000 * u64::from(i),
            })
        })
        .collect();
    let mut avail = vec![5u32; 16384];
    avail[8 * 100 + 3] = 1; // cell 100 holds a piece only one peer has
    v["peers"] = json!(peers);
    v["edges"] = json!(edges);
    v["availability"] = json!(avail);
    v["pieces"] = json!(16384);
    v["torrent"] = Value::Null; // no .torrent published
    let fixture = Fixture::start(Api::Replies(vec![v]));
    let dom = dump(&chromium, &fixture, &format!("/swarm/{IH}"));
    assert!(dom.contains(r#"data-state="live""#));
    assert_eq!(count(&dom, "<tr data-addr="), 60);
    assert_eq!(count(&dom, r#"<g class="node""#), 60);
    assert_eq!(count(&dom, r#"<g class="edge-g""#), 59);
    assert_eq!(count(&dom, r#"class="node-label""#), 0);
    assert_eq!(count(&dom, r#"<div class="cell a"#), 2048);
    assert_eq!(count(&dom, r#"<div class="cell a1" data-count="1""#), 1);
    let note = text_of(&dom, r#"id="pieces-note""#).unwrap();
    assert!(note.contains("one cell per 8 pieces"), "{note}");
    assert!(
        dom.contains(r#"<a id="torrent" hidden="""#),
        "no .torrent link"
    );
    assert!(dom.contains(r#"<span id="no-torrent" class="note">"#));

    if let Some(png) = std::env::var_os("MINITORRENT_SWARM_SCREENSHOT_BIG") {
        let png = PathBuf::from(png);
        chromium
            .screenshot(
                &fixture.url(&format!("/swarm/{IH}")),
                &png,
                (1600, 1100),
                BUDGET_MS,
            )
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
    }
}

/// The real tracker's page of a running swarm: a tracker with `--web`, three
/// peers over the JSON protocol (a seeder and two leechers that report
/// `STATS`), and the page rendered by chromium.
///
/// It needs `--web`, the "web page on" start-up line, the route
/// /swarm/<info_hash> serving swarm.html and /assets/swarm.js serving
/// swarm.js.
#[test]
fn real_tracker_swarm_page_shows_the_swarm() {
    use common::{Client, TrackerProc};
    use minitorrent_common::metainfo::InfoHash;
    use minitorrent_common::tracker_proto::{FileInfo, Reply, Request, StatsEdge, StatsFile};

    let Some(chromium) = Chromium::or_skip("real_tracker_swarm_page_shows_the_swarm") else {
        return;
    };
    const HASH: InfoHash = InfoHash([0x6b; 20]);
    const SIZE: u64 = 8 * 16384;
    let tracker = TrackerProc::start(&["--web", "127.0.0.1:0"]);
    let web = tracker
        .web
        .clone()
        .expect("a \"web page on\" start-up line")
        .trim_end_matches('/')
        .to_string();

    let register = |tid, id: &str, port, complete| Request::Register {
        tid,
        peer_id: id.into(),
        port,
        files: vec![FileInfo {
            info_hash: HASH,
            name: "class-notes.pdf".into(),
            size: SIZE,
            complete,
        }],
    };
    let stats =
        |tid, id: &str, have: u8, rates: (u64, u64), peers: Vec<StatsEdge>| Request::Stats {
            tid,
            peer_id: id.into(),
            files: vec![StatsFile {
                info_hash: HASH,
                size: SIZE,
                done: u64::from(have.count_ones()) * 16384,
                pieces: 8,
                have: Some(vec![have]),
                down: rates.0,
                up: rates.1,
                peers,
                truncated: false,
            }],
        };
    let edge = |port: u16, sent, recv| StatsEdge {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        sent,
        recv,
    };
    let ok = |r: Reply| assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    let (seeder, l1, l2) = (
        Client::new(tracker.addr),
        Client::new(tracker.addr),
        Client::new(tracker.addr),
    );
    ok(seeder.ask(&register(1, "-MN0100-seeder000000", 7101, true)));
    ok(l1.ask(&register(2, "-MN0100-leecher10000", 7102, false)));
    ok(l2.ask(&register(3, "-MN0100-leecher20000", 7103, false)));
    ok(l1.ask(&stats(
        4,
        "-MN0100-leecher10000",
        0b1111_0000,
        (400_000, 100_000),
        vec![edge(7101, 0, 3_000_000), edge(7103, 500_000, 0)],
    )));
    ok(l2.ask(&stats(
        5,
        "-MN0100-leecher20000",
        0b0000_0011,
        (300_000, 0),
        vec![edge(7101, 0, 1_000_000), edge(7102, 0, 500_000)],
    )));

    // The catalogue writes its event log about once a second: wait until
    // the API shows the three registrations, so the page has them too.
    let api = format!("/api/swarms/{}", HASH.to_hex());
    let host = web.trim_start_matches("http://").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(&host).expect("connect to the web page");
        write!(
            c,
            "GET {api} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        let _ = c.read_to_string(&mut body);
        if body.matches("\"kind\":\"register\"").count() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no register events: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let url = format!("{web}/swarm/{}", HASH.to_hex());
    let dom = chromium
        .dump_dom(&url, 3000)
        .unwrap_or_else(|e| panic!("chromium on {url}: {e}"));
    assert!(dom.contains(r#"data-state="live""#), "{dom}");
    assert_eq!(
        text_of(&dom, r#"id="name""#).as_deref(),
        Some("class-notes.pdf")
    );
    let peers = ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"];
    assert_eq!(attrs(&dom, "<tr data-addr", "data-addr"), peers);
    assert_eq!(attrs(&dom, r#"<g class="node""#, "data-addr"), peers);
    assert_eq!(
        attrs(&dom, r#"<g class="node""#, "data-role"),
        ["seeder", "leecher", "leecher"]
    );
    let mut edges: Vec<(String, String)> = attrs(&dom, r#"<g class="edge-g""#, "data-from")
        .into_iter()
        .zip(attrs(&dom, r#"<g class="edge-g""#, "data-to"))
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            (peers[0].to_string(), peers[1].to_string()),
            (peers[0].to_string(), peers[2].to_string()),
            (peers[1].to_string(), peers[2].to_string()),
        ]
    );
    assert_eq!(
        attrs(&dom, r#"<g class="node""#, "data-progress"),
        ["1.000", "0.500", "0.250"]
    );
    // The seeder holds every piece, leecher 1 pieces 0-3, leecher 2 pieces 6-7.
    assert_eq!(
        attrs(&dom, r#"<div class="cell a"#, "data-count"),
        ["2", "2", "2", "2", "1", "1", "2", "2"],
        "one cell per piece"
    );
    assert!(count(&dom, r#"<li data-kind="register""#) >= 3, "{dom}");
}
