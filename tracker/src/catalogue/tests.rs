//! The catalogue's own tests: publication, counts, the event log and its
//! bounds, the queue when the writer stalls, opening damaged, foreign and
//! newer databases, and migrations.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use minitorrent_common::metainfo::{CreateOptions, InfoHash, Layout};

use super::*;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "mt-cat-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn db(&self) -> PathBuf {
        self.0.join("catalogue.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn torrent(name: &str, len: u64) -> Vec<u8> {
    let opts = CreateOptions {
        announce: Some("udp://127.0.0.1:6969".into()),
        comment: Some("catalogue test".into()),
        ..CreateOptions::default()
    };
    let layout = Layout::single(name.into(), len, &opts).unwrap();
    let pieces = len.div_ceil(layout.piece_length()) as usize;
    let hashes: Vec<u8> = (0..pieces * 20).map(|i| i as u8).collect();
    layout.into_metainfo(hashes).unwrap().to_bytes()
}

fn from() -> SocketAddr {
    "192.0.2.5:50123".parse().unwrap()
}

fn h(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

fn peer(i: u16) -> (SocketAddr, PeerId) {
    (
        SocketAddr::from(([10, 0, 0, 1], 6000 + i)),
        PeerId::new(&format!("peer-{i}")),
    )
}

#[test]
fn publish_then_fetch_byte_for_byte_and_list() {
    for file in [false, true] {
        let dir = TempDir::new("publish");
        let loc = if file {
            DbLocation::File(dir.db())
        } else {
            DbLocation::Memory
        };
        let cat = Catalogue::open(&loc).unwrap();
        let bytes = torrent("notes.pdf", 100_000);
        let p = cat.publish(&bytes, from()).unwrap();
        assert!(p.new);
        assert_eq!((p.name.as_str(), p.size), ("notes.pdf", 100_000));
        assert_eq!(p.info_hash, Metainfo::from_bytes(&bytes).unwrap().info_hash);
        assert_eq!(cat.torrent(&p.info_hash).unwrap(), Some(bytes.clone()));
        assert_eq!(cat.torrent(&h(9)).unwrap(), None);
        // Again: nothing added, the first file kept.
        assert!(!cat.publish(&bytes, from()).unwrap().new);
        let other = torrent("b.bin", 20_000);
        cat.publish(&other, from()).unwrap();
        let list = cat.torrents(0, 10).unwrap();
        assert_eq!(list.len(), 2);
        let e = list.iter().find(|e| e.info_hash == p.info_hash).unwrap();
        assert_eq!(e.name, "notes.pdf");
        assert_eq!(e.size, 100_000);
        assert_eq!(e.published_from, "192.0.2.5:50123");
        assert_eq!(e.torrent_bytes, bytes.len() as u64);
        assert!(e.published_at_ms > 1_700_000_000_000);
        assert_eq!(cat.stats().torrents, 2);
        drop(cat);
        if file {
            // Published means committed: a new process finds it.
            let cat = Catalogue::open(&loc).unwrap();
            assert_eq!(cat.torrent(&p.info_hash).unwrap(), Some(bytes));
            assert_eq!(cat.stats().torrents, 2);
        }
    }
}

#[test]
fn a_bad_or_oversized_torrent_is_refused_and_nothing_stored() {
    let cat = Catalogue::open_with_limits(
        &DbLocation::Memory,
        CatalogueLimits {
            max_torrent_bytes: 1000,
            ..CatalogueLimits::default()
        },
    )
    .unwrap();
    let good = torrent("a.txt", 5000);
    let mut bad = good.clone();
    bad.truncate(good.len() - 3);
    let e = cat.publish(&bad, from()).unwrap_err();
    assert!(e.is_bad_input());
    assert!(e.to_string().starts_with("not a valid .torrent: "), "{e}");
    let e = cat.publish(b"d4:infoi3ee", from()).unwrap_err();
    assert!(matches!(e, PublishError::Invalid(_)), "{e}");
    let big = vec![b'x'; 1001];
    let e = cat.publish(&big, from()).unwrap_err();
    assert!(
        matches!(
            e,
            PublishError::TooLarge {
                size: 1001,
                limit: 1000
            }
        ),
        "{e}"
    );
    assert_eq!(cat.torrents(0, 10).unwrap(), vec![]);
    assert_eq!(cat.stats().torrents, 0);
}

#[test]
fn the_torrent_caps_refuse_more() {
    let cat = Catalogue::open_with_limits(
        &DbLocation::Memory,
        CatalogueLimits {
            max_torrents: 1,
            ..CatalogueLimits::default()
        },
    )
    .unwrap();
    cat.publish(&torrent("a", 5000), from()).unwrap();
    let e = cat.publish(&torrent("b", 5000), from()).unwrap_err();
    assert!(matches!(
        e,
        PublishError::Store(StoreError::TooManyTorrents { limit: 1 })
    ));
    assert!(!e.is_bad_input());
    let t = torrent("c", 5000);
    let cat = Catalogue::open_with_limits(
        &DbLocation::Memory,
        CatalogueLimits {
            max_published_bytes: t.len() as u64 + 10,
            ..CatalogueLimits::default()
        },
    )
    .unwrap();
    cat.publish(&t, from()).unwrap();
    let e = cat.publish(&torrent("d", 5000), from()).unwrap_err();
    assert!(
        matches!(e, PublishError::Store(StoreError::TooManyBytes { .. })),
        "{e}"
    );
}

#[test]
fn counts_and_events_survive_a_reopen_and_the_log_is_trimmed() {
    let dir = TempDir::new("counts");
    let loc = DbLocation::File(dir.db());
    let limits = CatalogueLimits {
        events_per_swarm: 3,
        max_events: 5,
        ..CatalogueLimits::default()
    };
    {
        let cat = Catalogue::open_with_limits(&loc, limits).unwrap();
        let r = cat.recorder();
        for i in 0..4 {
            let (a, id) = peer(i);
            r.event(EventKind::Register, h(1), a, id.clone());
            r.completed(h(1), a, id);
        }
        let (a, id) = peer(9);
        r.completed(h(2), a, id.clone());
        r.event(EventKind::Exit, h(2), a, id);
        assert_eq!((r.completed_count(&h(1)), cat.completed(&h(2))), (4, 1));
        cat.flush().unwrap();
        let ev = cat.events(&h(1), 100).unwrap();
        // Newest first, three kept for this swarm.
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert_eq!(ev[0].kind, EventKind::Completion);
        assert_eq!(ev[0].peer_id.as_str(), "peer-3");
        assert_eq!(ev[0].addr, peer(3).0);
        assert_eq!(ev[1].kind, EventKind::Register);
        let ev2 = cat.events(&h(2), 100).unwrap();
        assert_eq!(
            ev2.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![EventKind::Exit, EventKind::Completion]
        );
        assert_eq!(cat.stats().events_written, 10);
        assert_eq!(cat.stats().events_dropped, 0);
        // Five in all: two more push out the oldest of swarm 1.
        let (a, id) = peer(5);
        r.event(EventKind::Expiry, h(3), a, id.clone());
        r.event(EventKind::Expiry, h(3), a, id);
        cat.flush().unwrap();
        assert_eq!(cat.events(&h(1), 100).unwrap().len(), 1);
        assert_eq!(cat.events(&h(3), 100).unwrap().len(), 2);
        // More completions after the last flush reach the disk on close.
        r.completed(h(2), a, PeerId::new("late"));
    }
    let cat = Catalogue::open_with_limits(&loc, limits).unwrap();
    assert_eq!((cat.completed(&h(1)), cat.completed(&h(2))), (4, 2));
    assert_eq!(cat.completed(&h(7)), 0);
    assert_eq!(cat.stats().counted, 2);
    // The late completion's event was written at close, pushing out the
    // oldest event overall (swarm 1's last).
    assert_eq!(cat.events(&h(2), 100).unwrap().len(), 3);
    assert_eq!(cat.events(&h(1), 100).unwrap().len(), 0);
}

/// Each write: its number of events and the counts it carried.
type Writes = Arc<Mutex<Vec<(usize, Vec<(InfoHash, u64)>)>>>;

/// A store whose writes wait until the test lets them go.
struct Stalled {
    inner: SqliteStore,
    entered: Sender<()>,
    release: Receiver<()>,
    written: Writes,
}

impl Store for Stalled {
    fn describe(&self) -> String {
        "stalled".into()
    }
    fn publish(&mut self, t: &NewTorrent<'_>, l: &CatalogueLimits) -> Result<Stored, StoreError> {
        self.inner.publish(t, l)
    }
    fn torrent(&mut self, h: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.torrent(h)
    }
    fn torrents(&mut self, o: usize, l: usize) -> Result<Vec<TorrentEntry>, StoreError> {
        self.inner.torrents(o, l)
    }
    fn torrent_count(&mut self) -> Result<usize, StoreError> {
        self.inner.torrent_count()
    }
    fn load_completed(&mut self, max: usize) -> Result<Vec<(InfoHash, u64)>, StoreError> {
        self.inner.load_completed(max)
    }
    fn write(&mut self, b: &Batch, l: &CatalogueLimits) -> Result<(), StoreError> {
        let _ = self.entered.send(());
        let _ = self.release.recv_timeout(Duration::from_secs(10));
        self.written
            .lock()
            .unwrap()
            .push((b.events.len(), b.completed.clone()));
        self.inner.write(b, l)
    }
    fn events(&mut self, h: &InfoHash, l: usize) -> Result<Vec<SwarmEvent>, StoreError> {
        self.inner.events(h, l)
    }
}

#[test]
fn a_stalled_writer_drops_events_and_counts_them_but_never_counts() {
    let (entered_tx, entered) = bounded(16);
    let (release, release_rx) = bounded(16);
    let written = Arc::new(Mutex::new(Vec::new()));
    let store = Stalled {
        inner: SqliteStore::in_memory().unwrap(),
        entered: entered_tx,
        release: release_rx,
        written: written.clone(),
    };
    let limits = CatalogueLimits {
        event_queue: 4,
        max_batch: 1,
        flush_every: Duration::from_secs(3600),
        ..CatalogueLimits::default()
    };
    let cat = Catalogue::start(Box::new(store), limits).unwrap();
    let r = cat.recorder();
    let (a, id) = peer(1);
    // The first event fills a batch of one: the writer takes it and stalls.
    r.event(EventKind::Register, h(1), a, id.clone());
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    // Four fit in the queue; the next ten do not.
    for _ in 0..14 {
        r.event(EventKind::Register, h(1), a, id.clone());
    }
    assert_eq!(r.dropped(), 10);
    assert_eq!(cat.stats().events_dropped, 10);
    assert_eq!(cat.stats().events_queued, 4);
    // Completions while stalled: their events are dropped, the counts not.
    for _ in 0..5 {
        r.completed(h(2), a, id.clone());
    }
    assert_eq!(r.dropped(), 15);
    assert_eq!(r.completed_count(&h(2)), 5);
    // Let it go: every write from now on passes at once.
    for _ in 0..16 {
        release.send(()).unwrap();
    }
    cat.close();
    let written = written.lock().unwrap();
    let events: usize = written.iter().map(|(n, _)| n).sum();
    assert_eq!(events, 5, "the first event and the four queued");
    let last_count = written
        .iter()
        .flat_map(|(_, c)| c.iter())
        .filter(|(x, _)| *x == h(2))
        .map(|(_, n)| *n)
        .max();
    assert_eq!(last_count, Some(5));
    assert_eq!(cat.stats().events_written, 5);
}

#[test]
fn a_damaged_file_is_refused_and_left_alone() {
    let dir = TempDir::new("corrupt");
    let path = dir.db();
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    let e = Catalogue::open(&DbLocation::File(path.clone()))
        .err()
        .unwrap();
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("move it aside"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

#[test]
fn a_foreign_or_newer_database_is_refused() {
    let dir = TempDir::new("foreign");
    let path = dir.db();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE recipes (name TEXT)").unwrap();
    }
    let e = SqliteStore::open(&path).err().unwrap();
    assert!(matches!(e, OpenError::Foreign { .. }), "{e}");

    let path = dir.0.join("newer.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = SqliteStore::open(&path).err().unwrap();
    match &e {
        OpenError::Newer { found, known, .. } => {
            assert_eq!((*found, *known), (99, sqlite::schema_version()))
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("newer minitorrent-tracker"), "{e}");
}

#[test]
fn a_version_1_database_is_migrated_in_order_keeping_its_data() {
    let dir = TempDir::new("migrate");
    let path = dir.db();
    let bytes = torrent("old.iso", 300_000);
    let hash = Metainfo::from_bytes(&bytes).unwrap().info_hash;
    {
        // A file as version 1 of the schema left it.
        let mut v1 = SqliteStore::open_with(&path, &sqlite::MIGRATIONS[..1]).unwrap();
        assert_eq!(v1.version().unwrap(), 1);
        v1.publish(
            &NewTorrent {
                info_hash: hash,
                name: "old.iso",
                size: 300_000,
                published_at_ms: 1,
                published_from: from(),
                bytes: &bytes,
            },
            &CatalogueLimits::default(),
        )
        .unwrap();
        let batch = Batch {
            events: vec![],
            completed: vec![(hash, 7)],
        };
        v1.write(&batch, &CatalogueLimits::default()).unwrap();
    }
    // The current list opens it as it is.
    {
        let cat = Catalogue::open(&DbLocation::File(path.clone())).unwrap();
        assert_eq!(cat.torrent(&hash).unwrap(), Some(bytes.clone()));
        assert_eq!(cat.completed(&hash), 7);
    }
    // A next version that adds a column and a table runs on top, once.
    let now = sqlite::schema_version();
    let mut next = sqlite::MIGRATIONS.to_vec();
    next.push(
        "ALTER TABLE torrents ADD COLUMN note TEXT NOT NULL DEFAULT '';
         CREATE TABLE extra (x INTEGER);",
    );
    let v2 = next.as_slice();
    let mut s = SqliteStore::open_with(&path, v2).unwrap();
    assert_eq!(s.version().unwrap(), now + 1);
    assert_eq!(s.torrent(&hash).unwrap(), Some(bytes.clone()));
    assert_eq!(s.load_completed(10).unwrap(), vec![(hash, 7)]);
    let note: String = s
        .connection()
        .query_row("SELECT note FROM torrents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "");
    drop(s);
    let s = SqliteStore::open_with(&path, v2).unwrap();
    assert_eq!(s.version().unwrap(), now + 1);
    drop(s);
    // And this build, which does not know that version, refuses the file.
    match SqliteStore::open(&path) {
        Err(OpenError::Newer { found, known, .. }) => assert_eq!((found, known), (now + 1, now)),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer file opened"),
    }
}
