//! Completed downloads per info hash, in memory: the UDP workers add to them
//! and BEP 15 scrape reads them here, never from the database. The writer
//! takes the totals that changed ([`Counts::take_dirty`]) and stores them, so
//! a count is never lost to a full queue: it is summed here until written.
//!
//! Sharded by a keyed hash of the info hash, each shard behind its own mutex
//! (held for one map operation; never while taking another lock). At most
//! `max` info hashes are held; a completion for a new one past that is not
//! counted, and [`Counts::refused`] says how many were not.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use minitorrent_common::metainfo::InfoHash;

use crate::registry::KeyedHash;

const SHARDS: usize = 16;

/// One info hash's count.
struct Cell {
    hash: u64,
    info_hash: InfoHash,
    total: u64,
    /// Changed since the writer last took it.
    dirty: bool,
}

/// Hashed once per call with the registry's keyed hash (clients cannot aim
/// at one bucket): the high bits pick the shard, the table uses the same hash.
#[derive(Default)]
struct Shard {
    map: HashTable<Cell>,
    dirty: Vec<(u64, InfoHash)>,
}

impl Shard {
    fn find_mut(&mut self, hash: u64, h: &InfoHash) -> Option<&mut Cell> {
        self.map.find_mut(hash, |c| c.info_hash == *h)
    }
}

pub(crate) struct Counts {
    shards: Box<[Mutex<Shard>]>,
    keys: KeyedHash,
    len: AtomicUsize,
    max: usize,
    refused: AtomicU64,
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Counts {
    pub(crate) fn new(max: usize) -> Counts {
        Counts {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            keys: KeyedHash::new(),
            len: AtomicUsize::new(0),
            max,
            refused: AtomicU64::new(0),
        }
    }

    fn shard(&self, h: &InfoHash) -> (u64, MutexGuard<'_, Shard>) {
        let hash = self.keys.swarm(h);
        (hash, lock(&self.shards[((hash >> 32) as usize) % SHARDS]))
    }

    /// Sets totals read from the store (not marked for writing).
    pub(crate) fn load(&self, rows: impl IntoIterator<Item = (InfoHash, u64)>) {
        for (h, n) in rows {
            let (hash, mut s) = self.shard(&h);
            match s.find_mut(hash, &h) {
                Some(c) => c.total = n,
                None => {
                    s.map.insert_unique(
                        hash,
                        Cell {
                            hash,
                            info_hash: h,
                            total: n,
                            dirty: false,
                        },
                        |c| c.hash,
                    );
                    self.len.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// One more completed download of `h`. False when `h` is new and the map
    /// is full (not counted).
    pub(crate) fn add(&self, h: &InfoHash) -> bool {
        let (hash, mut s) = self.shard(h);
        let shard = &mut *s;
        let cell = match shard.map.find_mut(hash, |c| c.info_hash == *h) {
            Some(c) => c,
            None => {
                // Reserve a place under the cap before inserting.
                let fits = self
                    .len
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < self.max).then_some(n + 1)
                    })
                    .is_ok();
                if !fits {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                shard
                    .map
                    .insert_unique(
                        hash,
                        Cell {
                            hash,
                            info_hash: *h,
                            total: 0,
                            dirty: false,
                        },
                        |c| c.hash,
                    )
                    .into_mut()
            }
        };
        cell.total = cell.total.saturating_add(1);
        if !cell.dirty {
            cell.dirty = true;
            shard.dirty.push((hash, *h));
        }
        true
    }

    #[inline]
    pub(crate) fn get(&self, h: &InfoHash) -> u64 {
        let (hash, s) = self.shard(h);
        s.map
            .find(hash, |c| c.info_hash == *h)
            .map_or(0, |c| c.total)
    }

    /// The totals changed since the last call, each marked clean.
    pub(crate) fn take_dirty(&self, out: &mut Vec<(InfoHash, u64)>) {
        for m in self.shards.iter() {
            let mut s = lock(m);
            let shard = &mut *s;
            for (hash, h) in shard.dirty.drain(..) {
                if let Some(c) = shard.map.find_mut(hash, |c| c.info_hash == h) {
                    c.dirty = false;
                    out.push((h, c.total));
                }
            }
        }
    }

    /// Marks totals dirty again after a failed write, so the next one retries.
    pub(crate) fn mark_dirty(&self, hashes: impl IntoIterator<Item = InfoHash>) {
        for h in hashes {
            let (hash, mut s) = self.shard(&h);
            let shard = &mut *s;
            if let Some(c) = shard.find_mut(hash, &h) {
                if !c.dirty {
                    c.dirty = true;
                    shard.dirty.push((hash, h));
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn sums_marks_dirty_once_and_refuses_past_the_cap() {
        let c = Counts::new(2);
        c.load([(h(1), 5)]);
        assert!(c.add(&h(1)));
        assert!(c.add(&h(1)));
        assert!(c.add(&h(2)));
        assert!(!c.add(&h(3)), "a third hash is past the cap of 2");
        assert_eq!((c.get(&h(1)), c.get(&h(2)), c.get(&h(3))), (7, 1, 0));
        assert_eq!((c.len(), c.refused()), (2, 1));
        let mut out = Vec::new();
        c.take_dirty(&mut out);
        out.sort();
        assert_eq!(out, vec![(h(1), 7), (h(2), 1)]);
        out.clear();
        c.take_dirty(&mut out);
        assert!(out.is_empty());
        c.mark_dirty([h(2)]);
        c.take_dirty(&mut out);
        assert_eq!(out, vec![(h(2), 1)]);
    }
}
