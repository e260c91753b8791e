//! The swarm table: one [`SwarmShard`] per lock, each a hash table of swarms
//! by info hash plus an index of names; each [`Swarm`] holds its peer entries
//! ([`SwarmPeer`]) with everything a reply needs. A JSON peer's entries share
//! one [`Live`] cell (port, last heard) with its record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use minitorrent_common::metainfo::InfoHash;

use super::identity::{peer_hash, Ip16, KeyedHash};
use crate::indexed::IndexedVec;
use crate::peer_id::PeerId;

/// The swarms behind one lock.
#[derive(Default)]
pub(super) struct SwarmShard {
    pub(super) swarms: HashTable<Swarm>,
    /// Exact name → swarms of that name, for `REQUEST` by name.
    pub(super) names: HashMap<Box<str>, Vec<InfoHash>>,
}

/// One swarm: what replies say about it, and its peer entries.
pub(super) struct Swarm {
    pub(super) info_hash: InfoHash,
    pub(super) hash: u64,
    pub(super) name: Box<str>,
    pub(super) size: u64,
    pub(super) seeders: u32,
    /// Found by the keyed hash of (IP, peer_id).
    pub(super) peers: IndexedVec<SwarmPeer>,
}

/// One peer in one swarm: everything a reply lists about it.
pub(super) struct SwarmPeer {
    pub(super) ip: Ip16,
    pub(super) id: PeerId,
    /// Used while `shared` is `None` (a BEP 15 announcer).
    pub(super) port: u16,
    pub(super) last_seen: u32,
    pub(super) complete: bool,
    /// Announced over HTTP rather than BEP 15 (while `shared` is `None`;
    /// for the live view).
    pub(super) http: bool,
    /// The JSON peer's record cell, when a `REGISTER` put this entry here.
    pub(super) shared: Option<Arc<Live>>,
}

impl SwarmPeer {
    #[inline]
    pub(super) fn last_seen(&self) -> u32 {
        match &self.shared {
            Some(live) => live.last_seen.load(Ordering::Relaxed),
            None => self.last_seen,
        }
    }

    #[inline]
    pub(super) fn port(&self) -> u16 {
        match &self.shared {
            Some(live) => live.port.load(Ordering::Relaxed),
            None => self.port,
        }
    }
}

/// Port and last-heard time of a JSON peer, shared by its record and its swarm
/// entries. Written under the record's shard lock, read under swarm locks;
/// each field on its own, so relaxed ordering is enough.
pub(super) struct Live {
    pub(super) port: AtomicU16,
    pub(super) last_seen: AtomicU32,
}

impl Swarm {
    pub(super) fn new(info_hash: InfoHash, hash: u64, name: &str, size: u64) -> Swarm {
        Swarm {
            info_hash,
            hash,
            name: name.into(),
            size,
            seeders: 0,
            peers: IndexedVec::default(),
        }
    }

    #[inline]
    pub(super) fn position(&self, phash: u64, ip: &Ip16, id: &PeerId) -> Option<usize> {
        self.peers.position(phash, |p| p.ip == *ip && p.id == *id)
    }

    /// Returns the new entry's position.
    pub(super) fn insert(&mut self, hasher: &KeyedHash, phash: u64, peer: SwarmPeer) -> usize {
        if peer.complete {
            self.seeders += 1;
        }
        self.peers
            .push(phash, peer, |p| peer_hash(hasher, &p.ip, &p.id))
    }

    #[inline]
    pub(super) fn set_complete(&mut self, idx: usize, complete: bool) {
        let p = &mut self.peers.items_mut()[idx];
        if p.complete != complete {
            p.complete = complete;
            if complete {
                self.seeders += 1;
            } else {
                self.seeders -= 1;
            }
        }
    }

    pub(super) fn remove_at(&mut self, hasher: &KeyedHash, idx: usize) -> SwarmPeer {
        let p = self
            .peers
            .swap_remove(idx, |p| peer_hash(hasher, &p.ip, &p.id));
        if p.complete {
            self.seeders -= 1;
        }
        p
    }

    #[inline]
    pub(super) fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }
}

impl SwarmShard {
    #[inline]
    pub(super) fn find_mut(&mut self, hash: u64, info_hash: &InfoHash) -> Option<&mut Swarm> {
        self.swarms.find_mut(hash, |s| s.info_hash == *info_hash)
    }

    #[inline]
    pub(super) fn find(&self, hash: u64, info_hash: &InfoHash) -> Option<&Swarm> {
        self.swarms.find(hash, |s| s.info_hash == *info_hash)
    }

    /// The swarm, and whether it was created (the caller accounts for it in
    /// `Registry::swarm_count`).
    pub(super) fn get_or_create(
        &mut self,
        hash: u64,
        info_hash: &InfoHash,
        name: &str,
        size: u64,
    ) -> (&mut Swarm, bool) {
        let SwarmShard { swarms, names } = self;
        let (swarm, created) = match swarms.entry(hash, |s| s.info_hash == *info_hash, |s| s.hash) {
            hashbrown::hash_table::Entry::Occupied(e) => (e.into_mut(), false),
            hashbrown::hash_table::Entry::Vacant(v) => (
                v.insert(Swarm::new(*info_hash, hash, "", size)).into_mut(),
                true,
            ),
        };
        // A swarm first seen through BEP 15 has no name until a JSON peer names
        // it; after that the first name given wins.
        if swarm.name.is_empty() && !name.is_empty() {
            swarm.name = name.into();
            swarm.size = size;
            names.entry(name.into()).or_default().push(*info_hash);
        }
        (swarm, created)
    }

    /// Removes the swarm if it has no peers left.
    pub(super) fn drop_if_empty(&mut self, hash: u64, info_hash: &InfoHash) -> bool {
        let Ok(entry) = self.swarms.find_entry(hash, |s| s.info_hash == *info_hash) else {
            return false;
        };
        if !entry.get().peers.is_empty() {
            return false;
        }
        let (swarm, _) = entry.remove();
        self.forget_name(&swarm.name, info_hash);
        true
    }

    pub(super) fn forget_name(&mut self, name: &str, info_hash: &InfoHash) {
        if name.is_empty() {
            return;
        }
        if let Some(list) = self.names.get_mut(name) {
            list.retain(|h| h != info_hash);
            if list.is_empty() {
                self.names.remove(name);
            }
        }
    }
}

/// Whether an entry last heard at `last_seen` has timed out at `now_ms`
/// (both in milliseconds since the registry's epoch, wrapping).
#[inline]
pub(super) fn expired(last_seen: u32, now_ms: u32, timeout_ms: u32) -> bool {
    // Signed: an entry refreshed by another thread with a slightly later `now`
    // must not look 49 days old.
    (now_ms.wrapping_sub(last_seen) as i32) >= timeout_ms as i32
}
