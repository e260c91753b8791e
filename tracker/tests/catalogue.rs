//! The catalogue through the real tracker: completed downloads reported by
//! JSON peers and BEP 15 clients show up in BEP 15 scrape, and they, the
//! published torrents and the event log survive a graceful stop and a
//! `kill -9`; a damaged or newer database stops the start with a message.

mod common;

use std::path::Path;

use common::{eventually, run_to_exit, Bep15, Client, TempDir, TrackerProc};
use minitorrent_common::metainfo::{CreateOptions, InfoHash, Layout};
use minitorrent_common::tracker_proto::{FileInfo, Reply, Request};
use minitorrent_common::udp_tracker as udp;
use minitorrent_tracker::catalogue::{Catalogue, DbLocation, EventKind, SqliteStore};

fn torrent(name: &str, len: u64) -> Vec<u8> {
    let opts = CreateOptions {
        announce: Some("udp://127.0.0.1:6969".into()),
        ..CreateOptions::default()
    };
    let layout = Layout::single(name.into(), len, &opts).unwrap();
    let pieces = len.div_ceil(layout.piece_length()) as usize;
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| (i * 31) as u8).collect();
    layout.into_metainfo(hashes).unwrap().to_bytes()
}

fn start(db: &Path) -> TrackerProc {
    TrackerProc::start(&["--db", db.to_str().unwrap(), "--peer-timeout", "60"])
}

fn register(c: &Client, tid: u32, hash: InfoHash, complete: bool) {
    let r = c.ask(&Request::Register {
        tid,
        peer_id: "json-peer".into(),
        port: 7001,
        files: vec![FileInfo {
            info_hash: hash,
            name: "report.pdf".into(),
            size: 100_000,
            complete,
        }],
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
}

fn scrape(t: &TrackerProc, hashes: &[InfoHash]) -> Vec<u32> {
    let b = Bep15::connect("127.0.0.1:0", t.addr);
    match b.ask(&udp::Request::Scrape {
        connection_id: b.connection_id,
        transaction_id: 5,
        info_hashes: hashes.to_vec(),
    }) {
        udp::Response::Scrape { stats, .. } => stats.iter().map(|s| s.completed).collect(),
        other => panic!("scrape answered {other:?}"),
    }
}

/// The completed count of `h` as the database file holds it, read while
/// the tracker runs (WAL lets a reader in).
fn on_disk(db: &Path, h: &InfoHash) -> u64 {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.query_row(
        "SELECT completed FROM completions WHERE info_hash = ?1",
        [&h.0[..]],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as u64)
}

fn signal(t: &mut TrackerProc, sig: i32) -> std::process::ExitStatus {
    // SAFETY: kill(2) on the pid of a child we started and have not reaped.
    let rc = unsafe { libc::kill(t.pid() as i32, sig) };
    assert_eq!(rc, 0);
    t.wait_exit()
}

#[test]
fn completions_reach_scrape_and_survive_kill_9_and_a_graceful_restart() {
    let dir = TempDir::new("restart");
    let db = dir.0.join("tracker.db");
    let bytes = torrent("report.pdf", 100_000);
    // Published through the Rust API, as the web server will.
    let published = {
        let cat = Catalogue::open(&DbLocation::File(db.clone())).unwrap();
        let p = cat
            .publish(&bytes, "127.0.0.1:40000".parse().unwrap())
            .unwrap();
        assert!(p.new);
        p.info_hash
    };
    let h1 = published;
    let h2 = InfoHash([0xb2; 20]);

    let mut t = start(&db);
    assert_eq!(scrape(&t, &[h1, h2]), vec![0, 0]);
    // A JSON peer registers as a leecher, then as a seeder: one download.
    let c = Client::new(t.addr);
    register(&c, 1, h1, false);
    register(&c, 2, h1, true);
    // Registering complete again is no new download.
    register(&c, 3, h1, true);
    // A BEP 15 client: started, then completed.
    let b = Bep15::connect("127.0.0.1:0", t.addr);
    let id = *b"-XX0001-bep15client0";
    b.announce(1, h1, &id, 6881, 1000, udp::Event::Started, 10);
    b.announce(2, h1, &id, 6881, 0, udp::Event::Completed, 10);
    // The same `completed` again (as after a lost reply): one download.
    b.announce(4, h1, &id, 6881, 0, udp::Event::Completed, 10);
    b.announce(3, h2, &id, 6881, 0, udp::Event::Completed, 10);
    assert_eq!(scrape(&t, &[h1, h2]), vec![2, 1]);
    // Written within about a second; then the process dies without warning.
    eventually("the counts on disk", || {
        on_disk(&db, &h1) == 2 && on_disk(&db, &h2) == 1
    });
    let st = signal(&mut t, libc::SIGKILL);
    assert!(!st.success());

    let mut t = start(&db);
    assert_eq!(scrape(&t, &[h1, h2]), vec![2, 1]);
    // One more, then Ctrl-C: the stop writes it even within the second.
    let b = Bep15::connect("127.0.0.1:0", t.addr);
    b.announce(
        4,
        h2,
        b"-XX0001-second-clnt0",
        6882,
        0,
        udp::Event::Completed,
        10,
    );
    assert_eq!(scrape(&t, &[h2]), vec![2]);
    let st = signal(&mut t, libc::SIGINT);
    assert!(st.success(), "{st:?}: {:?}", t.stderr());

    let t = start(&db);
    assert_eq!(scrape(&t, &[h1, h2]), vec![2, 2]);
    drop(t);

    // The catalogue as the web server will read it.
    let cat = Catalogue::open(&DbLocation::File(db.clone())).unwrap();
    assert_eq!(cat.torrent(&h1).unwrap(), Some(bytes));
    assert_eq!((cat.completed(&h1), cat.completed(&h2)), (2, 2));
    let list = cat.torrents(0, 10).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "report.pdf");
    let kinds: Vec<EventKind> = cat
        .events(&h1, 100)
        .unwrap()
        .iter()
        .rev()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Register,
            EventKind::Completion,
            EventKind::Register,
            EventKind::Completion
        ]
    );
    let ev = cat.events(&h1, 100).unwrap();
    assert_eq!(ev[0].peer_id.as_str(), "-XX0001-bep15client0");
    assert_eq!(ev[0].addr, "127.0.0.1:6881".parse().unwrap());
    assert_eq!(ev[3].peer_id.as_str(), "json-peer");
}

#[test]
fn exit_and_expiry_are_logged() {
    let dir = TempDir::new("log");
    let db = dir.0.join("tracker.db");
    let h = InfoHash([0xc3; 20]);
    let t = TrackerProc::start(&["--db", db.to_str().unwrap(), "--peer-timeout", "1"]);
    let c = Client::new(t.addr);
    register(&c, 1, h, true);
    let r = c.ask(&Request::Exit {
        tid: 2,
        peer_id: "json-peer".into(),
    });
    assert!(matches!(r, Reply::Ok { .. }), "{r:?}");
    register(&c, 3, h, true);
    // Silent past the 1 s timeout: swept out.
    t.wait_stderr("expired");
    let kinds = || -> Vec<String> {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut s = c
            .prepare("SELECT kind FROM events WHERE info_hash = ?1 ORDER BY id")
            .unwrap();
        s.query_map([&h.0[..]], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    eventually("the log on disk", || {
        kinds() == ["register", "exit", "register", "expiry"]
    });
}

#[test]
fn a_damaged_database_stops_the_start_with_a_message() {
    let dir = TempDir::new("damaged");
    let db = dir.0.join("tracker.db");
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
    std::fs::write(&db, &junk).unwrap();
    let (status, text) = run_to_exit(&["--bind", "127.0.0.1:0", "--db", db.to_str().unwrap()]);
    assert!(!status.success());
    assert!(text.contains(db.to_str().unwrap()), "{text}");
    assert!(text.contains("damaged or not an SQLite database"), "{text}");
    assert!(text.contains("move it aside"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), junk, "the file was changed");
}

#[test]
fn a_database_from_a_newer_tracker_stops_the_start() {
    let dir = TempDir::new("newer");
    let db = dir.0.join("tracker.db");
    drop(SqliteStore::open(&db).unwrap());
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 42).unwrap();
    }
    let (status, text) = run_to_exit(&["--bind", "127.0.0.1:0", "--db", db.to_str().unwrap()]);
    assert!(!status.success());
    assert!(text.contains(db.to_str().unwrap()), "{text}");
    assert!(text.contains("schema version 42"), "{text}");
    assert!(text.contains("newer minitorrent-tracker"), "{text}");
}

#[test]
fn db_none_reports_counts_while_running() {
    let t = TrackerProc::start(&[]);
    let h = InfoHash([0xd4; 20]);
    let b = Bep15::connect("127.0.0.1:0", t.addr);
    b.announce(
        1,
        h,
        b"-XX0001-memory-only0",
        6881,
        0,
        udp::Event::Completed,
        10,
    );
    assert_eq!(scrape(&t, &[h]), vec![1]);
}

#[test]
fn a_second_tracker_on_the_same_database_is_refused() {
    let dir = TempDir::new("in-use");
    let db = dir.0.join("tracker.db");
    let db_s = db.to_str().unwrap();
    let first = TrackerProc::start(&["--db", db_s]);
    let (status, text) = run_to_exit(&["--bind", "127.0.0.1:0", "--db", db_s]);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("in use by another minitorrent-tracker"),
        "{text}"
    );
    assert!(text.contains("--db PATH"), "{text}");
    assert!(!text.contains("listening on"), "{text}");
    // The first one still answers.
    // (connect panics without an answer)
    let _ = Bep15::connect("127.0.0.1:0", first.addr);
    drop(first);
    // Once it is gone, the file opens again.
    let again = TrackerProc::start(&["--db", db_s]);
    drop(again);
}
