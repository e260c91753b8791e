//! The catalogue: what the tracker keeps across restarts — published
//! `.torrent` files (byte for byte), completed-download counts per info hash,
//! and a bounded log of swarm events (register, exit, expiry, completion)
//! for the swarm page's timeline. See docs/CATALOGUE.md.
//!
//! Three parts, each importing only those before it:
//!
//! - `limits`: the bounds ([`CatalogueLimits`]).
//! - `store`: the storage interface ([`Store`]) and its records; `sqlite`:
//!   SQLite behind it (a file in WAL mode, or memory for `--db none`), the
//!   schema and its migrations.
//! - `counts`: completed counts in memory; `writer`: the thread that writes
//!   events and counts in batched transactions.
//!
//! Who calls what:
//!
//! - The UDP workers hold a [`Recorder`]: it never blocks and never touches
//!   the disk. Log events go into a bounded queue (dropped and counted when
//!   it is full); completed counts are summed in memory (never dropped) and
//!   BEP 15 scrape reads them from there.
//! - The HTTP side (a later web server) calls [`Catalogue`] directly:
//!   [`publish`](Catalogue::publish) is synchronous and committed before it
//!   returns; [`torrent`](Catalogue::torrent), [`torrents`](Catalogue::torrents)
//!   and [`events`](Catalogue::events) read the store; [`completed`](Catalogue::completed)
//!   and [`stats`](Catalogue::stats) read memory.

mod counts;
pub mod limits;
pub mod sqlite;
pub mod store;
mod writer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Sender, TrySendError};
use log::warn;
use minitorrent_common::metainfo::{InfoHash, Metainfo, MetainfoError};

use crate::peer_id::PeerId;
use counts::Counts;
pub use limits::CatalogueLimits;
pub use sqlite::{OpenError, SqliteStore};
pub use store::{
    Batch, EventKind, NewTorrent, Store, StoreError, Stored, SwarmEvent, TorrentEntry,
};
use writer::Msg;

/// Where the catalogue lives: `--db PATH`, or `--db none` for memory only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    Memory,
    File(PathBuf),
}

/// The default `--db`: a file in the working directory.
pub const DEFAULT_DB: &str = "minitorrent-tracker.db";

impl DbLocation {
    /// `none` is memory; anything else a file path.
    pub fn parse(s: &str) -> DbLocation {
        if s == "none" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Memory => f.write_str("memory only (--db none)"),
            DbLocation::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A torrent published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    /// False when the info hash was already published (the first `.torrent`
    /// is kept, unchanged).
    pub new: bool,
}

/// Why a publication was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the .torrent is {size} bytes; the catalogue accepts at most {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("not a valid .torrent: {0}")]
    Invalid(#[from] MetainfoError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl PublishError {
    /// True when the upload itself was at fault (an HTTP 4xx), false when
    /// the catalogue is full or failed (5xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            PublishError::TooLarge { .. } | PublishError::Invalid(_)
        )
    }
}

/// Figures for logs and `/metrics`; reading them touches no disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueStats {
    pub torrents: usize,
    /// Info hashes with a completed count in memory.
    pub counted: usize,
    /// Completions not counted because the count map was full.
    pub counts_refused: u64,
    pub events_written: u64,
    /// Log events dropped: the queue was full, or their write failed.
    pub events_dropped: u64,
    /// Log events waiting for the writer.
    pub events_queued: usize,
    pub write_errors: u64,
}

pub(crate) struct Shared {
    store: Mutex<Box<dyn Store>>,
    counts: Counts,
    limits: CatalogueLimits,
    torrents: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The catalogue: a [`Store`], the in-memory counts and the writer thread.
/// Dropping it (or [`close`](Catalogue::close)) commits what is pending.
pub struct Catalogue {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    describe: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Catalogue {
    /// Opens the database at `location` (creating or migrating it) and starts
    /// the writer.
    pub fn open(location: &DbLocation) -> Result<Catalogue, OpenError> {
        Catalogue::open_with_limits(location, CatalogueLimits::default())
    }

    pub fn open_with_limits(
        location: &DbLocation,
        limits: CatalogueLimits,
    ) -> Result<Catalogue, OpenError> {
        let (store, path) = match location {
            DbLocation::Memory => (SqliteStore::in_memory()?, Path::new(":memory:")),
            DbLocation::File(p) => (SqliteStore::open(p)?, p.as_path()),
        };
        Catalogue::start(Box::new(store), limits).map_err(|e| OpenError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Starts a catalogue over any store: loads the counts, spawns the writer.
    pub fn start(
        mut store: Box<dyn Store>,
        limits: CatalogueLimits,
    ) -> Result<Catalogue, StoreError> {
        let counts = Counts::new(limits.max_counted);
        counts.load(store.load_completed(limits.max_counted)?);
        let torrents = store.torrent_count()?;
        let describe = store.describe();
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            counts,
            limits,
            torrents: AtomicUsize::new(torrents),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        });
        let (tx, rx) = bounded(limits.event_queue.max(1));
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("catalogue-writer".into())
            .spawn(move || writer::run(s, rx))
            .map_err(|e| StoreError::Failed {
                db: describe.clone(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Catalogue {
            shared,
            tx,
            writer: Mutex::new(Some(writer)),
            describe,
        })
    }

    /// Where the data lives (a file name, or "memory").
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The UDP workers' handle.
    pub fn recorder(&self) -> Recorder {
        Recorder {
            shared: self.shared.clone(),
            tx: self.tx.clone(),
        }
    }

    pub fn limits(&self) -> CatalogueLimits {
        self.shared.limits
    }

    /// Checks `bytes` strictly as a `.torrent` and stores them byte for byte,
    /// committed to disk before this returns `Ok`. Publishing an info hash
    /// again keeps the first file (`new: false`). Blocks on the store (call
    /// it from an HTTP thread, never from the UDP loop).
    pub fn publish(&self, bytes: &[u8], from: SocketAddr) -> Result<Publication, PublishError> {
        let limit = self.shared.limits.max_torrent_bytes;
        if bytes.len() > limit {
            return Err(PublishError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let meta = Metainfo::from_bytes(bytes)?;
        let size = meta.info.total_length();
        let stored = self.shared.store().publish(
            &NewTorrent {
                info_hash: meta.info_hash,
                name: &meta.info.name,
                size,
                published_at_ms: now_ms(),
                published_from: from,
                bytes,
            },
            &self.shared.limits,
        )?;
        let new = stored == Stored::New;
        if new {
            self.shared.torrents.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Publication {
            info_hash: meta.info_hash,
            name: meta.info.name,
            size,
            new,
        })
    }

    /// The `.torrent` exactly as published.
    pub fn torrent(&self, h: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared.store().torrent(h)
    }

    /// For each hash, whether the catalogue holds its `.torrent` (one
    /// store call for all of them).
    pub fn published(&self, hashes: &[InfoHash]) -> Result<Vec<bool>, StoreError> {
        self.shared.store().has_torrents(hashes)
    }

    /// Published torrents, newest first (at most [`limits::MAX_LISTED`]).
    pub fn torrents(&self, offset: usize, limit: usize) -> Result<Vec<TorrentEntry>, StoreError> {
        self.shared
            .store()
            .torrents(offset, limit.min(limits::MAX_LISTED))
    }

    /// Completed downloads of `h` (from memory).
    pub fn completed(&self, h: &InfoHash) -> u64 {
        self.shared.counts.get(h)
    }

    /// The newest events of a swarm, newest first; those still queued are
    /// not there yet (at most `flush_every` late).
    pub fn events(&self, h: &InfoHash, limit: usize) -> Result<Vec<SwarmEvent>, StoreError> {
        let limit = limit.min(self.shared.limits.events_per_swarm);
        self.shared.store().events(h, limit)
    }

    pub fn stats(&self) -> CatalogueStats {
        let s = &self.shared;
        CatalogueStats {
            torrents: s.torrents.load(Ordering::Relaxed),
            counted: s.counts.len(),
            counts_refused: s.counts.refused(),
            events_written: s.written.load(Ordering::Relaxed),
            events_dropped: s.dropped.load(Ordering::Relaxed),
            events_queued: self.tx.len(),
            write_errors: s.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Commits the queued events and changed counts now.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = bounded(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            if let Ok(r) = rx.recv() {
                return r;
            }
        }
        // No writer (stopped or gone): write the counts here.
        writer::commit(&self.shared, &mut Batch::default())
    }

    /// Stops the writer after it committed everything queued. Idempotent.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = self.tx.send(Msg::Stop);
            if h.join().is_err() {
                warn!("the catalogue writer panicked; writing the counts from here");
            }
            // Anything recorded after the stop, and the counts either way.
            let _ = writer::commit(&self.shared, &mut Batch::default());
        }
    }
}

impl Drop for Catalogue {
    fn drop(&mut self) {
        self.close();
    }
}

/// The UDP workers' side of the catalogue: never blocks, never touches the
/// disk. Cheap to clone (one per worker).
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
}

impl Recorder {
    /// Queues a log event; dropped (and counted) when the queue is full.
    pub fn event(&self, kind: EventKind, info_hash: InfoHash, addr: SocketAddr, peer_id: PeerId) {
        let e = SwarmEvent {
            at_ms: now_ms(),
            info_hash,
            kind,
            addr,
            peer_id,
        };
        match self.tx.try_send(Msg::Event(e)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A completed download: counted in memory (written within
    /// `flush_every`), and logged.
    pub fn completed(&self, info_hash: InfoHash, addr: SocketAddr, peer_id: PeerId) {
        self.shared.counts.add(&info_hash);
        self.event(EventKind::Completion, info_hash, addr, peer_id);
    }

    /// Completed downloads of `h`, from memory (BEP 15 scrape).
    #[inline]
    pub fn completed_count(&self, h: &InfoHash) -> u64 {
        self.shared.counts.get(h)
    }

    /// Log events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
