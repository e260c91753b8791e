//! The peer table: a record per JSON-registered peer (IP, peer_id), listing
//! its swarms so that `HEARTBEAT` and `EXIT`, which name no file, can find
//! them. Sharded like the swarms, by the keyed hash of (IP, peer_id).

use std::sync::Arc;

use hashbrown::HashTable;
use minitorrent_common::metainfo::InfoHash;

use super::identity::Ip16;
use super::swarm::Live;
use crate::indexed::IndexedVec;
use crate::peer_id::PeerId;

/// The peer records behind one lock.
#[derive(Default)]
pub(super) struct PeerShard {
    pub(super) records: IndexedVec<PeerRecord>,
}

/// A JSON-registered peer: which swarms it joined, for HEARTBEAT and EXIT.
pub(super) struct PeerRecord {
    pub(super) ip: Ip16,
    pub(super) id: PeerId,
    pub(super) live: Arc<Live>,
    pub(super) files: FileList,
}

/// The info hashes of one peer, each once: a set, so that a `REGISTER` checks
/// its files in O(1) each; a single file (the common case) needs no heap. Only
/// grows: a file the peer left through BEP 15 `stopped` stays listed (EXIT
/// then finds nothing to remove) until the peer exits or expires.
pub(super) enum FileList {
    Empty,
    One(InfoHash),
    /// Hashed with the registry's swarm hash.
    Many(Box<HashTable<InfoHash>>),
}

impl FileList {
    pub(super) fn len(&self) -> usize {
        match self {
            FileList::Empty => 0,
            FileList::One(_) => 1,
            FileList::Many(t) => t.len(),
        }
    }

    pub(super) fn contains(&self, h: &InfoHash, shash: u64) -> bool {
        match self {
            FileList::Empty => false,
            FileList::One(x) => x == h,
            FileList::Many(t) => t.find(shash, |x| x == h).is_some(),
        }
    }

    /// Adds `h` (whose swarm hash is `shash`) unless present.
    pub(super) fn insert(&mut self, h: InfoHash, shash: u64, rehash: impl Fn(&InfoHash) -> u64) {
        match self {
            FileList::Empty => *self = FileList::One(h),
            FileList::One(x) if *x == h => {}
            FileList::One(x) => {
                let first = *x;
                let mut t = HashTable::with_capacity(2);
                t.insert_unique(rehash(&first), first, &rehash);
                t.insert_unique(shash, h, &rehash);
                *self = FileList::Many(Box::new(t));
            }
            FileList::Many(t) => {
                if t.find(shash, |x| *x == h).is_none() {
                    t.insert_unique(shash, h, rehash);
                }
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &InfoHash> {
        let (one, many) = match self {
            FileList::Empty => (None, None),
            FileList::One(h) => (Some(h), None),
            FileList::Many(t) => (None, Some(t.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}
