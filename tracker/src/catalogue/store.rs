//! The storage interface: everything the catalogue keeps on disk goes
//! through [`Store`], so a server database (Redis, PostgreSQL) could replace
//! SQLite ([`super::sqlite::SqliteStore`]) without touching the rest of the
//! tracker. The in-memory counts, the queue and the writer thread
//! ([`super::Catalogue`]) sit above it and do not know which store they use.

use std::fmt;
use std::net::SocketAddr;

use minitorrent_common::metainfo::InfoHash;

use super::limits::CatalogueLimits;
use crate::peer_id::PeerId;

/// What happened to a peer in a swarm, for the swarm's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A JSON `REGISTER` joined the swarm, or a BEP 15 `started`.
    Register,
    /// A JSON `EXIT`, or a BEP 15 `stopped`.
    Exit,
    /// Silent past the peer timeout: swept out.
    Expiry,
    /// The peer's file turned complete (a JSON peer's `complete` went from
    /// false to true, or a BEP 15 `completed`).
    Completion,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Register => "register",
            EventKind::Exit => "exit",
            EventKind::Expiry => "expiry",
            EventKind::Completion => "completion",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "register" => EventKind::Register,
            "exit" => EventKind::Exit,
            "expiry" => EventKind::Expiry,
            "completion" => EventKind::Completion,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a swarm's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmEvent {
    /// Milliseconds since the Unix epoch (UTC).
    pub at_ms: u64,
    pub info_hash: InfoHash,
    pub kind: EventKind,
    /// The peer's IP and the port it serves on.
    pub addr: SocketAddr,
    pub peer_id: PeerId,
}

/// A `.torrent` to store: checked by the caller, kept byte for byte.
#[derive(Debug, Clone, Copy)]
pub struct NewTorrent<'a> {
    pub info_hash: InfoHash,
    pub name: &'a str,
    pub size: u64,
    pub published_at_ms: u64,
    pub published_from: SocketAddr,
    pub bytes: &'a [u8],
}

/// A published torrent as listed (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentEntry {
    pub info_hash: InfoHash,
    pub name: String,
    /// Total length of the torrent's files in bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch (UTC).
    pub published_at_ms: u64,
    /// Who published it: the HTTP client's address, as `IP:PORT`.
    pub published_from: String,
    /// Length of the `.torrent` file.
    pub torrent_bytes: u64,
}

/// What one writer transaction carries.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<SwarmEvent>,
    /// Completed downloads per info hash: the running totals (not deltas),
    /// so writing the same batch twice is harmless.
    pub completed: Vec<(InfoHash, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.completed.is_empty()
    }
}

/// Whether a publication added a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// The info hash was already published; the first `.torrent` is kept.
    AlreadyThere,
}

/// A store operation failed (disk full, I/O error, corruption found late).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the catalogue holds its limit of {limit} torrents; none can be added")]
    TooManyTorrents { limit: usize },
    #[error(
        "the catalogue holds {held} bytes of torrents; this one ({adding} bytes) would pass its limit of {limit}"
    )]
    TooManyBytes { held: u64, adding: u64, limit: u64 },
    #[error("catalogue {db}: {message}")]
    Failed { db: String, message: String },
}

/// Persistent storage behind the catalogue. One instance is used behind a
/// mutex (the writer thread and the HTTP threads take turns), so methods
/// take `&mut self`; none is ever called from the UDP loop.
pub trait Store: Send {
    /// Where the data lives, for messages (a file name, or "memory").
    fn describe(&self) -> String;

    /// Stores a torrent in one committed (durable) transaction unless its
    /// info hash is already there. Refused past `limits`.
    fn publish(
        &mut self,
        t: &NewTorrent<'_>,
        limits: &CatalogueLimits,
    ) -> Result<Stored, StoreError>;

    /// The `.torrent` bytes exactly as published.
    fn torrent(&mut self, h: &InfoHash) -> Result<Option<Vec<u8>>, StoreError>;

    /// Published torrents, newest first.
    fn torrents(&mut self, offset: usize, limit: usize) -> Result<Vec<TorrentEntry>, StoreError>;

    fn torrent_count(&mut self) -> Result<usize, StoreError>;

    /// For each hash, whether its `.torrent` is held (the web page's
    /// download links). The default reads each file; stores override it.
    fn has_torrents(&mut self, hashes: &[InfoHash]) -> Result<Vec<bool>, StoreError> {
        hashes
            .iter()
            .map(|h| self.torrent(h).map(|t| t.is_some()))
            .collect()
    }

    /// Every completed count, at most `max` of them (the largest first).
    fn load_completed(&mut self, max: usize) -> Result<Vec<(InfoHash, u64)>, StoreError>;

    /// Writes the batch in one transaction, then trims the event log to
    /// `events_per_swarm` per swarm and `max_events` in all.
    fn write(&mut self, batch: &Batch, limits: &CatalogueLimits) -> Result<(), StoreError>;

    /// A swarm's newest events, newest first.
    fn events(&mut self, h: &InfoHash, limit: usize) -> Result<Vec<SwarmEvent>, StoreError>;
}
