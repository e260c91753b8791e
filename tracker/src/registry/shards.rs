//! The [`Registry`] itself: its sharded swarm and peer tables, the hash keys,
//! the epoch its times count from, and the swarm counter the cap is checked
//! against; locking a shard, the clock arithmetic, and reserving room under
//! the swarm cap. The operations live beside it, one file per kind of request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::FileInfo;

use super::identity::KeyedHash;
use super::limits::{Limits, TrackerFull, MAX_PEER_TIMEOUT};
use super::records::PeerShard;
use super::swarm::{expired, SwarmShard};

/// Counts for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    pub swarms: usize,
    /// Swarm entries (peer × swarm).
    pub entries: usize,
    /// Peers with a JSON registration record.
    pub registered: usize,
}

/// Which peer is in which swarm, and since when (see [`crate::registry`]).
/// Shared by the worker threads; every method takes `&self`.
pub struct Registry {
    pub(super) epoch: Instant,
    pub(super) timeout_ms: u32,
    pub(super) limits: Limits,
    /// Swarms held plus swarms reserved by a `REGISTER` in progress.
    pub(super) swarm_count: AtomicUsize,
    pub(super) hasher: KeyedHash,
    pub(super) swarm_shards: Box<[Mutex<SwarmShard>]>,
    pub(super) peer_shards: Box<[Mutex<PeerShard>]>,
}

#[inline]
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop the tracker serving everyone else; the
    // shard's data stays structurally valid between operations.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shard index from bits the hash tables do not use for bucket positions.
#[inline]
fn shard_of(hash: u64, n: usize) -> usize {
    ((hash >> 32) as usize) % n
}

impl Registry {
    /// `shards` is rounded up to at least 1; a few per worker thread keeps lock
    /// contention low. Default [`Limits`].
    pub fn new(peer_timeout: Duration, shards: usize, epoch: Instant) -> Registry {
        Registry::with_limits(peer_timeout, shards, epoch, Limits::default())
    }

    pub fn with_limits(
        peer_timeout: Duration,
        shards: usize,
        epoch: Instant,
        limits: Limits,
    ) -> Registry {
        let shards = shards.max(1);
        let timeout = peer_timeout
            .min(MAX_PEER_TIMEOUT)
            .max(Duration::from_millis(1));
        Registry {
            epoch,
            timeout_ms: timeout.as_millis() as u32,
            limits,
            swarm_count: AtomicUsize::new(0),
            hasher: KeyedHash::new(),
            swarm_shards: (0..shards).map(|_| Mutex::default()).collect(),
            peer_shards: (0..shards).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn peer_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    pub fn shard_count(&self) -> usize {
        self.swarm_shards.len()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The swarms counted against `max_swarms`: those held plus those a
    /// `REGISTER` in progress has reserved. O(1), unlike [`stats`](Self::stats).
    pub fn swarm_count(&self) -> usize {
        self.swarm_count.load(Ordering::Relaxed)
    }

    /// Takes `n` more swarms from the cap; false (and nothing taken) if they
    /// do not fit.
    pub(super) fn try_reserve_swarms(&self, n: usize) -> bool {
        let max = self.limits.max_swarms;
        self.swarm_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                c.checked_add(n).filter(|&t| t <= max)
            })
            .is_ok()
    }

    pub(super) fn release_swarms(&self, n: usize) {
        if n > 0 {
            self.swarm_count.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Reserves room for the swarms a `REGISTER` of `files` may create:
    /// all of them when that fits (the usual case, no lookups), else exactly
    /// the ones missing now. Returns the number reserved.
    pub(super) fn reserve_for(&self, files: &[(&FileInfo, u64)]) -> Result<usize, TrackerFull> {
        if self.try_reserve_swarms(files.len()) {
            return Ok(files.len());
        }
        let missing = files
            .iter()
            .filter(|(f, shash)| {
                self.swarm_shard(*shash)
                    .find(*shash, &f.info_hash)
                    .is_none()
            })
            .count();
        if missing == 0 || self.try_reserve_swarms(missing) {
            Ok(missing)
        } else {
            Err(TrackerFull {
                limit: self.limits.max_swarms,
            })
        }
    }

    #[inline]
    pub(super) fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }

    #[inline]
    pub(super) fn expired(&self, last_seen: u32, now_ms: u32) -> bool {
        expired(last_seen, now_ms, self.timeout_ms)
    }

    #[inline]
    pub(super) fn swarm_hash(&self, info_hash: &InfoHash) -> u64 {
        self.hasher.swarm(info_hash)
    }

    #[inline]
    pub(super) fn swarm_shard(&self, hash: u64) -> MutexGuard<'_, SwarmShard> {
        lock(&self.swarm_shards[shard_of(hash, self.swarm_shards.len())])
    }

    #[inline]
    pub(super) fn peer_shard(&self, hash: u64) -> MutexGuard<'_, PeerShard> {
        lock(&self.peer_shards[shard_of(hash, self.peer_shards.len())])
    }

    pub fn stats(&self) -> RegistryStats {
        let mut st = RegistryStats::default();
        for shard in self.swarm_shards.iter() {
            let shard = lock(shard);
            st.swarms += shard.swarms.len();
            st.entries += shard.swarms.iter().map(|s| s.peers.len()).sum::<usize>();
        }
        for shard in self.peer_shards.iter() {
            st.registered += lock(shard).records.len();
        }
        st
    }
}
