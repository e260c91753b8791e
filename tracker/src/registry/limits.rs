//! The registry's size limits: what keeps one client from growing the state
//! without bound, and the errors a refused request gets.

use std::time::Duration;

/// Longest `--peer-timeout` the registry accepts.
pub const MAX_PEER_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Most files one JSON peer may have registered at once. Sharing a folder
/// registers one file per entry, so this is generous; it bounds what one
/// (IP, peer_id) can make the tracker hold and what its EXIT or expiry costs.
pub const MAX_FILES_PER_PEER: usize = 10_000;

/// Most swarms the tracker holds at once (about 200 bytes each with one peer).
pub const MAX_SWARMS: usize = 1_000_000;

/// The registry's size limits; [`Limits::default`] is [`MAX_FILES_PER_PEER`]
/// and [`MAX_SWARMS`]. Tests use small ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files_per_peer: usize,
    pub max_swarms: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_files_per_peer: MAX_FILES_PER_PEER,
            max_swarms: MAX_SWARMS,
        }
    }
}

/// A new swarm was refused: the tracker already holds `limit` swarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tracker is full: it already tracks its limit of {limit} swarms; try again later")]
pub struct TrackerFull {
    pub limit: usize,
}

/// Why a `REGISTER` was refused. A refused `REGISTER` changes nothing: the
/// files registered before stay, and it does not count as a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "too many files: a peer may register at most {limit} files; it has {have} and this REGISTER adds {adding} more"
    )]
    TooManyFiles {
        limit: usize,
        have: usize,
        adding: usize,
    },
    #[error(transparent)]
    Full(#[from] TrackerFull),
}
