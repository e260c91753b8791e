//! The catalogue's bounds: what keeps publications, the event log and the
//! in-memory counts from growing without limit (docs/STATE.md lists them).

use std::time::Duration;

/// Largest `.torrent` accepted for publication. Real ones are kilobytes;
/// 10 MiB holds the hashes of about 500,000 pieces (half the parser's
/// limit of 2^20), e.g. 500 GB in 1 MiB pieces.
pub const MAX_TORRENT_BYTES: usize = 10 << 20;

/// Most published torrents held.
pub const MAX_TORRENTS: usize = 100_000;

/// Most bytes of published torrents held in all (2 GiB).
pub const MAX_PUBLISHED_BYTES: u64 = 2 << 30;

/// Newest log events kept per swarm (the timeline of the swarm page).
pub const EVENTS_PER_SWARM: usize = 200;

/// Most log events kept in all (about 100 bytes each on disk).
pub const MAX_EVENTS: usize = 1_000_000;

/// Most info hashes with a completed count held in memory (and on disk);
/// about 60 bytes each in memory. The same as the registry's swarm cap.
pub const MAX_COUNTED: usize = 1_000_000;

/// Log events waiting for the writer; past it, new ones are dropped (and
/// counted), never waited for.
pub const EVENT_QUEUE: usize = 65_536;

/// Most events written in one transaction.
pub const MAX_BATCH: usize = 8_192;

/// How often the writer commits what it has (events and completed counts):
/// a count reaches the disk at most this late.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Most rows one listing or timeline call returns.
pub const MAX_LISTED: usize = 10_000;

/// The catalogue's bounds; [`CatalogueLimits::default`] is the constants
/// above. Tests use small ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueLimits {
    pub max_torrent_bytes: usize,
    pub max_torrents: usize,
    pub max_published_bytes: u64,
    pub events_per_swarm: usize,
    pub max_events: usize,
    pub max_counted: usize,
    pub event_queue: usize,
    pub max_batch: usize,
    pub flush_every: Duration,
}

impl Default for CatalogueLimits {
    fn default() -> CatalogueLimits {
        CatalogueLimits {
            max_torrent_bytes: MAX_TORRENT_BYTES,
            max_torrents: MAX_TORRENTS,
            max_published_bytes: MAX_PUBLISHED_BYTES,
            events_per_swarm: EVENTS_PER_SWARM,
            max_events: MAX_EVENTS,
            max_counted: MAX_COUNTED,
            event_queue: EVENT_QUEUE,
            max_batch: MAX_BATCH,
            flush_every: FLUSH_EVERY,
        }
    }
}
