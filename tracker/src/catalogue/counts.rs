//! Completed downloads per info hash, in memory: the UDP workers add to them
//! and BEP 15 scrape reads them here, never from the database. The writer
//! takes the totals that changed ([`Counts::take_dirty`]) and stores them, so
//! a count is never lost to a full queue: it is summed here until written.
//!
//! Sharded by a keyed hash of the info hash, each shard behind its own mutex
//! (held for one map operation; never while taking another lock). At most
//! `max` info hashes are held; a completion for a new one past that is not
//! counted, and [`Counts::refused`] says how many were not.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use minitorrent_common::metainfo::InfoHash;

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    /// Total, and whether it changed since the writer last took it.
    map: HashMap<InfoHash, (u64, bool)>,
    dirty: Vec<InfoHash>,
}

pub(crate) struct Counts {
    shards: Box<[Mutex<Shard>]>,
    keys: RandomState,
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
            keys: RandomState::new(),
            len: AtomicUsize::new(0),
            max,
            refused: AtomicU64::new(0),
        }
    }

    fn shard(&self, h: &InfoHash) -> MutexGuard<'_, Shard> {
        lock(&self.shards[(self.keys.hash_one(h) as usize) % SHARDS])
    }

    /// Sets totals read from the store (not marked for writing).
    pub(crate) fn load(&self, rows: impl IntoIterator<Item = (InfoHash, u64)>) {
        for (h, n) in rows {
            let mut s = self.shard(&h);
            if s.map.insert(h, (n, false)).is_none() {
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One more completed download of `h`. False when `h` is new and the map
    /// is full (not counted).
    pub(crate) fn add(&self, h: &InfoHash) -> bool {
        let mut s = self.shard(h);
        let shard = &mut *s;
        let cell = match shard.map.get_mut(h) {
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
                shard.map.entry(*h).or_insert((0, false))
            }
        };
        cell.0 = cell.0.saturating_add(1);
        if !cell.1 {
            cell.1 = true;
            shard.dirty.push(*h);
        }
        true
    }

    pub(crate) fn get(&self, h: &InfoHash) -> u64 {
        self.shard(h).map.get(h).map_or(0, |c| c.0)
    }

    /// The totals changed since the last call, each marked clean.
    pub(crate) fn take_dirty(&self, out: &mut Vec<(InfoHash, u64)>) {
        for m in self.shards.iter() {
            let mut s = lock(m);
            let shard = &mut *s;
            for h in shard.dirty.drain(..) {
                if let Some(c) = shard.map.get_mut(&h) {
                    c.1 = false;
                    out.push((h, c.0));
                }
            }
        }
    }

    /// Marks totals dirty again after a failed write, so the next one retries.
    pub(crate) fn mark_dirty(&self, hashes: impl IntoIterator<Item = InfoHash>) {
        for h in hashes {
            let mut s = self.shard(&h);
            let shard = &mut *s;
            if let Some(c) = shard.map.get_mut(&h) {
                if !c.1 {
                    c.1 = true;
                    shard.dirty.push(h);
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
