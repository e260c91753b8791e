//! The JSON tracker protocol against the real binary over UDP.

mod common;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{eventually, run_to_exit, Client, TrackerProc};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    ErrorCode, FileInfo, FileRef, PeerEntry, Reply, Request, StatsFile,
};
use minitorrent_tracker::config::Config;
use minitorrent_tracker::server::{StopHandle, Tracker};

fn hash(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(20)
}

fn register(tid: u32, peer_id: &str, port: u16, files: &[(u8, &str, bool)]) -> Request {
    Request::Register {
        tid,
        peer_id: peer_id.into(),
        port,
        files: files
            .iter()
            .map(|&(b, name, complete)| FileInfo {
                info_hash: hash(b),
                name: name.into(),
                size: 4 * 1024 * 1024,
                complete,
            })
            .collect(),
    }
}

fn request(tid: u32, file: FileRef, peer_id: Option<&str>) -> Request {
    Request::Request {
        tid,
        file,
        peer_id: peer_id.map(String::from),
    }
}

fn error_code(r: &Reply) -> Option<&ErrorCode> {
    match r {
        Reply::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[test]
fn register_request_search_heartbeat_exit() {
    let t = TrackerProc::start(&[]);
    let seeder = Client::new(t.addr);
    let leecher = Client::new(t.addr);

    let r = seeder.ask(&register(
        1,
        "-MN0100-seeder",
        7001,
        &[(0xab, "report.pdf", true)],
    ));
    assert_eq!(r, Reply::ok(1));
    let r = leecher.ask(&register(
        2,
        "-MN0100-leecher",
        7002,
        &[(0xab, "report.pdf", false)],
    ));
    // A leecher in the swarm: the tracker asks for STATS.
    assert_eq!(r, ok_asking_stats(2));

    // The leecher asks by hash: it sees the seeder, not itself.
    let r = leecher.ask(&request(
        3,
        FileRef::InfoHash(hash(0xab)),
        Some("-MN0100-leecher"),
    ));
    assert_eq!(
        r,
        Reply::Peers {
            tid: 3,
            info_hash: hash(0xab),
            name: "report.pdf".into(),
            size: 4 * 1024 * 1024,
            seeders: 1,
            leechers: 1,
            peers: vec![PeerEntry {
                addr: "127.0.0.1:7001".parse().unwrap(),
                peer_id: "-MN0100-seeder".into(),
                complete: true
            }],
        }
    );
    // By exact name, without naming itself: both peers.
    match leecher.ask(&request(4, FileRef::Name("report.pdf".into()), None)) {
        Reply::Peers { peers, .. } => assert_eq!(peers.len(), 2),
        other => panic!("{other:?}"),
    }
    let r = leecher.ask(&request(5, FileRef::Name("Report.pdf".into()), None));
    assert_eq!(error_code(&r), Some(&ErrorCode::NotFound), "{r:?}");

    // Search is a case-insensitive substring; the empty query lists all.
    match leecher.ask(&Request::Search {
        tid: 6,
        query: "REP".into(),
    }) {
        Reply::Files { tid, files } => {
            assert_eq!(tid, 6);
            assert_eq!(files.len(), 1);
            assert_eq!(
                (files[0].name.as_str(), files[0].seeders, files[0].leechers),
                ("report.pdf", 1, 1)
            );
            assert_eq!(files[0].info_hash, hash(0xab));
        }
        other => panic!("{other:?}"),
    }
    match leecher.ask(&Request::Search {
        tid: 7,
        query: "zzz".into(),
    }) {
        Reply::Files { files, .. } => assert!(files.is_empty()),
        other => panic!("{other:?}"),
    }

    // Additive REGISTER: the leecher finished and shares a second file.
    leecher.ask(&register(
        8,
        "-MN0100-leecher",
        7002,
        &[(0xab, "report.pdf", true), (0xcd, "notes.txt", true)],
    ));
    match leecher.ask(&Request::Search {
        tid: 9,
        query: String::new(),
    }) {
        Reply::Files { files, .. } => {
            let names: Vec<_> = files
                .iter()
                .map(|f| (f.name.as_str(), f.seeders, f.leechers))
                .collect();
            assert_eq!(names, [("notes.txt", 1, 0), ("report.pdf", 2, 0)]);
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(
        seeder.ask(&Request::Heartbeat {
            tid: 10,
            peer_id: "-MN0100-seeder".into()
        }),
        Reply::ok(10)
    );
    assert_eq!(
        seeder.ask(&Request::Exit {
            tid: 11,
            peer_id: "-MN0100-seeder".into()
        }),
        Reply::ok(11)
    );
    match leecher.ask(&request(12, FileRef::InfoHash(hash(0xab)), None)) {
        Reply::Peers { peers, seeders, .. } => {
            assert_eq!(seeders, 1);
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].peer_id, "-MN0100-leecher");
        }
        other => panic!("{other:?}"),
    }
    let r = seeder.ask(&Request::Heartbeat {
        tid: 13,
        peer_id: "-MN0100-seeder".into(),
    });
    assert_eq!(error_code(&r), Some(&ErrorCode::UnknownPeer), "{r:?}");

    // The last peer leaves: the swarms disappear.
    assert_eq!(
        leecher.ask(&Request::Exit {
            tid: 14,
            peer_id: "-MN0100-leecher".into()
        }),
        Reply::ok(14)
    );
    let r = leecher.ask(&request(15, FileRef::InfoHash(hash(0xab)), None));
    assert_eq!(error_code(&r), Some(&ErrorCode::NotFound), "{r:?}");
    assert_eq!(
        leecher.ask(&Request::Search {
            tid: 16,
            query: String::new()
        }),
        Reply::Files {
            tid: 16,
            files: vec![]
        }
    );

    t.wait_stderr("peer -MN0100-seeder at 127.0.0.1:7001 registered");
    t.wait_stderr("peer -MN0100-seeder at 127.0.0.1:7001 left");
}

#[test]
fn silent_peers_expire() {
    let t = TrackerProc::start(&["--peer-timeout", "1"]);
    let c = Client::new(t.addr);
    assert_eq!(
        c.ask(&register(1, "quiet", 7001, &[(1, "a.txt", true)])),
        Reply::Ok {
            tid: 1,
            interval: 1,
            timeout: 1,
            stats_every: 0,
            web: None
        }
    );
    assert!(matches!(
        c.ask(&request(2, FileRef::InfoHash(hash(1)), None)),
        Reply::Peers { .. }
    ));
    let mut tid = 3;
    eventually("the peer to expire", || {
        tid += 1;
        error_code(&c.ask(&request(tid, FileRef::InfoHash(hash(1)), None)))
            == Some(&ErrorCode::NotFound)
    });
    assert_eq!(
        c.ask(&Request::Search {
            tid: 100,
            query: String::new()
        }),
        Reply::Files {
            tid: 100,
            files: vec![]
        }
    );
    let r = c.ask(&Request::Heartbeat {
        tid: 101,
        peer_id: "quiet".into(),
    });
    assert_eq!(error_code(&r), Some(&ErrorCode::UnknownPeer));
    t.wait_stderr("peer quiet at 127.0.0.1:7001 expired");
}

#[test]
fn heartbeats_keep_a_peer_alive() {
    let t = TrackerProc::start(&["--peer-timeout", "1"]);
    let c = Client::new(t.addr);
    c.ask(&register(1, "steady", 7001, &[(1, "a.txt", true)]));
    let start = std::time::Instant::now();
    let mut tid = 1;
    // Heartbeat every 200 ms for 2.5 timeouts: the peer must stay listed.
    while start.elapsed() < Duration::from_millis(2500) {
        tid += 2;
        assert_eq!(
            c.ask(&Request::Heartbeat {
                tid,
                peer_id: "steady".into()
            }),
            Reply::Ok {
                tid,
                interval: 1,
                timeout: 1,
                stats_every: 0,
                web: None
            }
        );
        assert!(matches!(
            c.ask(&request(tid + 1, FileRef::InfoHash(hash(1)), None)),
            Reply::Peers { .. }
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn malformed_datagrams_get_bad_request_and_the_tracker_keeps_serving() {
    let t = TrackerProc::start(&[]);
    let c = Client::new(t.addr);
    c.ask(&register(1, "p", 7001, &[(1, "a.txt", true)]));
    let h = hex(1);
    let cases: Vec<(Vec<u8>, Option<u32>, &str)> = vec![
        (b"not json at all".to_vec(), None, "not JSON"),
        (b"{\"type\":\"REQUEST\",".to_vec(), None, "not JSON"),
        (b"[1,2,3]".to_vec(), None, "JSON object"),
        (b"\xff\xfe{}".to_vec(), None, "UTF-8"),
        (b"   ".to_vec(), None, "empty"),
        (br#"{"type":"REQUEST","info_hash":"x"}"#.to_vec(), None, "missing field `tid`"),
        (br#"{"type":"REQUEST","tid":"7"}"#.to_vec(), None, "`tid`"),
        (br#"{"tid":20}"#.to_vec(), Some(20), "missing field `type`"),
        (br#"{"type":"DANCE","tid":21}"#.to_vec(), Some(21), "unknown message type `DANCE`"),
        (br#"{"type":"REQUEST","tid":22,"info_hash":"abc"}"#.to_vec(), Some(22), "40 hex digits"),
        (format!(r#"{{"type":"REQUEST","tid":23,"info_hash":"{}zz"}}"#, &h[..38]).into_bytes(), Some(23), "40 hex digits"),
        (br#"{"type":"REGISTER","tid":24,"peer_id":"p","port":"x","files":[]}"#.to_vec(), Some(24), "`port`"),
        (br#"{"type":"REGISTER","tid":25,"peer_id":"p","port":0,"files":[]}"#.to_vec(), Some(25), "`port`"),
        (br#"{"type":"REGISTER","tid":26,"peer_id":"p","port":1}"#.to_vec(), Some(26), "missing field `files`"),
        (br#"{"type":"REGISTER","tid":27,"peer_id":7,"port":1,"files":[]}"#.to_vec(), Some(27), "`peer_id`"),
        (format!(r#"{{"type":"REGISTER","tid":28,"peer_id":"p","port":1,"files":[{{"info_hash":"{h}","name":"a","complete":true}}]}}"#).into_bytes(), Some(28), "files[0].size"),
        (br#"{"type":"HEARTBEAT","tid":29}"#.to_vec(), Some(29), "missing field `peer_id`"),
        (br#"{"type":"EXIT","tid":30,"peer_id":""}"#.to_vec(), Some(30), "`peer_id`"),
        (br#"{"type":"SEARCH","tid":31,"query":5}"#.to_vec(), Some(31), "`query`"),
        (br#"{"type":"REQUEST","tid":32}"#.to_vec(), Some(32), "missing field"),
        // The largest datagram IPv4 can carry; over-64-KiB is covered by the
        // decoder's unit tests because UDP cannot carry it.
        (vec![b'x'; 65_507], None, "not JSON"),
    ];
    for (i, (bytes, tid, needle)) in cases.iter().enumerate() {
        match c.ask_raw(bytes) {
            Reply::Error {
                tid: got_tid,
                code,
                message,
            } => {
                assert_eq!(code, ErrorCode::BadRequest, "case {i}");
                assert_eq!(got_tid, *tid, "case {i}: {message}");
                assert!(
                    message.contains(needle),
                    "case {i}: {message:?} lacks {needle:?}"
                );
            }
            other => panic!("case {i}: {other:?}"),
        }
        // And a valid request is still answered.
        let tid = 1000 + i as u32;
        match c.ask(&request(tid, FileRef::InfoHash(hash(1)), None)) {
            Reply::Peers { peers, .. } => assert_eq!(peers.len(), 1, "case {i}"),
            other => panic!("case {i}: {other:?}"),
        }
    }
}

#[test]
fn heartbeat_or_exit_from_another_ip_does_not_touch_the_peer() {
    let t = TrackerProc::start(&[]);
    let home = Client::new(t.addr);
    home.ask(&register(1, "victim", 7001, &[(1, "a.txt", true)]));
    // Linux routes all of 127/8 to loopback, so this is another source IP.
    let other = Client::bound("127.0.0.2:0", t.addr);
    let r = other.ask(&Request::Exit {
        tid: 2,
        peer_id: "victim".into(),
    });
    assert_eq!(error_code(&r), Some(&ErrorCode::UnknownPeer), "{r:?}");
    let r = other.ask(&Request::Heartbeat {
        tid: 3,
        peer_id: "victim".into(),
    });
    assert_eq!(error_code(&r), Some(&ErrorCode::UnknownPeer), "{r:?}");
    match home.ask(&request(4, FileRef::InfoHash(hash(1)), None)) {
        Reply::Peers { peers, .. } => {
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].addr, "127.0.0.1:7001".parse().unwrap());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        home.ask(&Request::Heartbeat {
            tid: 5,
            peer_id: "victim".into()
        }),
        Reply::ok(5)
    );
    // A REGISTER from 127.0.0.2 claiming the same id is a different peer at 127.0.0.2.
    other.ask(&register(6, "victim", 7002, &[(1, "a.txt", true)]));
    match home.ask(&request(7, FileRef::InfoHash(hash(1)), None)) {
        Reply::Peers { peers, .. } => {
            let mut addrs: Vec<String> = peers.iter().map(|p| p.addr.to_string()).collect();
            addrs.sort();
            assert_eq!(addrs, ["127.0.0.1:7001", "127.0.0.2:7002"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_peers_caps_the_list() {
    let t = TrackerProc::start(&["--max-peers", "5"]);
    let c = Client::new(t.addr);
    for i in 0..20u16 {
        c.ask(&register(
            u32::from(i),
            &format!("p{i}"),
            7000 + i,
            &[(1, "a.txt", true)],
        ));
    }
    match c.ask(&request(100, FileRef::InfoHash(hash(1)), Some("p0"))) {
        Reply::Peers { peers, seeders, .. } => {
            assert_eq!(seeders, 20);
            assert_eq!(peers.len(), 5);
            assert!(peers.iter().all(|p| p.peer_id != "p0"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn trace_prints_each_datagram_and_reply() {
    let t = TrackerProc::start(&["--trace"]);
    let c = Client::new(t.addr);
    c.ask(&register(
        1,
        "-MN0100-tracer",
        7001,
        &[(1, "report.pdf", true)],
    ));
    let line = t.wait_stderr("REGISTER report.pdf (4.0 MiB, complete) peer=-MN0100-tracer");
    assert!(line.contains(" tracker ← 127.0.0.1:"), "{line}");
    let line = t.wait_stderr("OK interval=10s");
    assert!(line.contains(" tracker → 127.0.0.1:"), "{line}");
    c.ask_raw(b"junk");
    t.wait_stderr("malformed (4 bytes)");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let (status, text) = run_to_exit(&["--bind", &addr]);
    assert!(!status.success());
    assert!(text.contains("already in use"), "{text}");
    assert!(text.contains(&addr), "{text}");
}

#[test]
fn bad_addresses_are_clear_errors() {
    let (status, text) = run_to_exit(&["--bind", "not-an-address"]);
    assert!(!status.success());
    assert!(text.contains("--bind"), "{text}");
    // TEST-NET-1: no interface here has it.
    let (status, text) = run_to_exit(&["--bind", "192.0.2.1:0"]);
    assert!(!status.success());
    assert!(text.contains("192.0.2.1"), "{text}");
    let (status, text) = run_to_exit(&["--peer-timeout", "0"]);
    assert!(!status.success());
    assert!(text.contains("--peer-timeout"), "{text}");
}

#[test]
fn help_explains_every_flag() {
    let (status, text) = run_to_exit(&["--help"]);
    assert!(status.success());
    for flag in [
        "--bind",
        "--peer-timeout",
        "--max-peers",
        "--trace",
        "listening on",
    ] {
        assert!(text.contains(flag), "{flag} missing from {text}");
    }
}

#[test]
fn ctrl_c_stops_cleanly() {
    let mut t = TrackerProc::start(&[]);
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(t.pid() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = t.wait_exit();
    assert!(status.success(), "{status:?}");
    let line = t.next_stdout().expect("a stop line");
    assert!(line.starts_with("minitorrent-tracker stopped"), "{line}");
}

/// File `i` of a big share: distinct info hashes from a 16-bit number.
fn many_files(range: std::ops::Range<u16>) -> Vec<FileInfo> {
    range
        .map(|i| {
            let mut h = [0x5au8; 20];
            h[..2].copy_from_slice(&i.to_be_bytes());
            FileInfo {
                info_hash: InfoHash(h),
                name: format!("f{i}"),
                size: 1,
                complete: true,
            }
        })
        .collect()
}

#[test]
fn a_peer_may_register_10000_files_and_no_more() {
    let t = TrackerProc::start(&[]);
    let c = Client::new(t.addr);
    let reg = |tid, files| Request::Register {
        tid,
        peer_id: "-MN0100-bigshare".into(),
        port: 7001,
        files,
    };
    // 500 files per datagram stay well under 64 KiB. A peer with that many
    // files is asked for STATS without looking at its swarms.
    for (tid, start) in (0..10_000u16).step_by(500).enumerate() {
        let tid = tid as u32 + 1;
        assert_eq!(
            c.ask(&reg(tid, many_files(start..start + 500))),
            ok_asking_stats(tid)
        );
    }
    match c.ask(&reg(100, many_files(9_990..10_001))) {
        Reply::Error {
            tid: Some(100),
            code: ErrorCode::BadRequest,
            message,
        } => assert!(message.contains("at most 10000 files"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The files registered before stay, and the refused one was not added.
    let first = many_files(0..1)[0].info_hash;
    let last = many_files(10_000..10_001)[0].info_hash;
    assert!(matches!(
        c.ask(&request(101, FileRef::InfoHash(first), None)),
        Reply::Peers { .. }
    ));
    assert_eq!(
        error_code(&c.ask(&request(102, FileRef::InfoHash(last), None))),
        Some(&ErrorCode::NotFound)
    );
    // Files it has are fine to register again, and HEARTBEAT and EXIT work.
    assert_eq!(c.ask(&reg(103, many_files(0..500))), ok_asking_stats(103));
    let hb = Request::Heartbeat {
        tid: 104,
        peer_id: "-MN0100-bigshare".into(),
    };
    assert_eq!(c.ask(&hb), ok_asking_stats(104));
    let exit = Request::Exit {
        tid: 105,
        peer_id: "-MN0100-bigshare".into(),
    };
    assert_eq!(c.ask(&exit), Reply::ok(105));
    assert_eq!(
        error_code(&c.ask(&request(106, FileRef::InfoHash(first), None))),
        Some(&ErrorCode::NotFound)
    );
}

#[test]
fn a_full_tracker_refuses_new_swarms_and_keeps_serving() {
    let t = TrackerProc::start(&["--max-swarms", "2"]);
    let c = Client::new(t.addr);
    let r = c.ask(&register(
        1,
        "-MN0100-a",
        7001,
        &[(1, "a", true), (2, "b", true)],
    ));
    assert_eq!(r, Reply::ok(1));
    match c.ask(&register(
        2,
        "-MN0100-b",
        7002,
        &[(2, "b", false), (3, "c", true)],
    )) {
        Reply::Error {
            tid: Some(2),
            code: ErrorCode::Other(code),
            message,
        } => {
            assert_eq!(code, "full");
            assert!(message.contains("limit of 2 swarms"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing of the refused REGISTER happened; existing swarms still work.
    let r = c.ask(&request(3, FileRef::InfoHash(hash(2)), None));
    match r {
        Reply::Peers { peers, .. } => assert_eq!(peers.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.ask(&register(4, "-MN0100-b", 7002, &[(2, "b", false)])),
        ok_asking_stats(4)
    );
}

/// `OK` asking for a `STATS` every second.
fn ok_asking_stats(tid: u32) -> Reply {
    match Reply::ok(tid) {
        Reply::Ok {
            tid,
            interval,
            timeout,
            ..
        } => Reply::Ok {
            tid,
            interval,
            timeout,
            stats_every: 1,
            web: None,
        },
        other => other,
    }
}

/// A tracker in this process with `web_url` set as given (the command
/// line's `--web` fills it in the binary).
struct InProcess {
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn start(web_url: Option<&str>) -> InProcess {
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            discover: false,
            peer_timeout: Duration::from_secs(3),
            web_url: web_url.map(String::from),
            ..Config::default()
        };
        let tracker = Tracker::bind(&config).expect("bind the tracker");
        let (addr, stop) = (tracker.local_addr(), tracker.stop_handle());
        let thread = std::thread::spawn(move || {
            tracker.run(&config).expect("tracker runs");
        });
        InProcess {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends `bytes` and returns the reply as plain JSON (what any tool sees).
fn ask_json(c: &Client, tracker: SocketAddr, bytes: &[u8]) -> serde_json::Value {
    let mut buf = vec![0u8; 70_000];
    for _ in 0..10 {
        c.sock.send_to(bytes, tracker).unwrap();
        if let Ok((n, _)) = c.sock.recv_from(&mut buf) {
            return serde_json::from_slice(&buf[..n]).expect("the reply is JSON");
        }
    }
    panic!("no reply from {tracker}");
}

fn web_of(r: &Reply) -> Option<&str> {
    match r {
        Reply::Ok { web, .. } => web.as_deref(),
        other => panic!("expected OK, got {other:?}"),
    }
}

#[test]
fn every_ok_names_the_web_page_when_the_tracker_has_one() {
    let url = "http://127.0.0.1:8080/";
    let t = InProcess::start(Some(url));
    let c = Client::new(t.addr);
    let seeder = Client::new(t.addr);
    // REGISTER, HEARTBEAT, STATS and EXIT: every OK carries it.
    let r = seeder.ask(&register(1, "s", 7001, &[(1, "a.txt", true)]));
    assert_eq!(web_of(&r), Some(url));
    let r = c.ask(&register(2, "l", 7002, &[(1, "a.txt", false)]));
    assert_eq!(web_of(&r), Some(url));
    // On the wire it is the plain field of the contract.
    let v = ask_json(&c, t.addr, br#"{"type":"HEARTBEAT","tid":3,"peer_id":"l"}"#);
    assert_eq!(v["type"], "OK");
    assert_eq!(v["web"], url);
    let r = c.ask(&Request::Stats {
        tid: 4,
        peer_id: "l".into(),
        files: vec![StatsFile {
            info_hash: hash(1),
            size: 4 * 1024 * 1024,
            done: 0,
            pieces: 0,
            have: None,
            down: 0,
            up: 0,
            peers: vec![],
            truncated: false,
        }],
    });
    assert_eq!(web_of(&r), Some(url));
    let r = c.ask(&Request::Exit {
        tid: 5,
        peer_id: "l".into(),
    });
    assert_eq!(web_of(&r), Some(url));
    // Other replies do not.
    let r = c.ask(&request(6, FileRef::InfoHash(hash(1)), None));
    assert!(matches!(r, Reply::Peers { .. }), "{r:?}");
}

#[test]
fn no_web_page_no_web_field() {
    let t = InProcess::start(None);
    let c = Client::new(t.addr);
    let r = c.ask(&register(1, "s", 7001, &[(1, "a.txt", true)]));
    assert_eq!(web_of(&r), None);
    let v = ask_json(&c, t.addr, br#"{"type":"HEARTBEAT","tid":2,"peer_id":"s"}"#);
    assert_eq!(v["type"], "OK");
    assert!(v.get("web").is_none(), "{v}");
}
