//! The JSON peers' side of the registry: `REGISTER` joins swarms and creates
//! the peer's record, `HEARTBEAT` refreshes it, `EXIT` (or a late heartbeat
//! or REGISTER after expiry) removes it and its swarm entries.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::FileInfo;

use super::identity::{ip16, peer_hash, Ip16};
use super::limits::RegisterError;
use super::records::{FileList, PeerRecord};
use super::shards::Registry;
use super::swarm::{Live, SwarmPeer};
use crate::peer_id::PeerId;

/// What a `REGISTER` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// False when this (IP, peer_id) was already registered.
    pub new_peer: bool,
    /// Swarms the peer joined with this call.
    pub joined: usize,
}

/// The (IP, peer_id) is not registered (never was, expired, or left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPeer;

/// What a `REGISTER` did to one swarm, for the catalogue's log and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwarmChange {
    /// The peer joined the swarm.
    Joined,
    /// The peer was in the swarm as a leecher and now has the whole file.
    Completed,
}

impl Registry {
    /// `REGISTER`: adds `files` to the peer's swarms (creating swarms as
    /// needed), updates `complete` for files it had, and refreshes every swarm
    /// the peer is in with `port` and `now`. Costs O(`files`) whatever the
    /// peer already holds. Refused, changing nothing, when the peer would hold
    /// more than `max_files_per_peer` files or a new swarm does not fit.
    pub fn register(
        &self,
        ip: IpAddr,
        peer_id: &str,
        port: u16,
        files: &[FileInfo],
        now: Instant,
    ) -> Result<RegisterOutcome, RegisterError> {
        self.register_observed(ip, peer_id, port, files, now, |_, _| {})
    }

    /// [`register`](Self::register), calling `observe` for each swarm the
    /// peer joins or completes. `observe` runs under a swarm shard lock: it
    /// must be quick and take no registry lock.
    pub fn register_observed(
        &self,
        ip: IpAddr,
        peer_id: &str,
        port: u16,
        files: &[FileInfo],
        now: Instant,
        mut observe: impl FnMut(&InfoHash, SwarmChange),
    ) -> Result<RegisterOutcome, RegisterError> {
        let now_ms = self.ms(now);
        let ip = ip16(ip);
        let id = PeerId::new(peer_id);
        let phash = peer_hash(&self.hasher, &ip, &id);
        // Each file once, with its last mention in this REGISTER (that one wins).
        let files: Vec<(&FileInfo, u64)> = if files.len() <= 1 {
            files
                .iter()
                .map(|f| (f, self.swarm_hash(&f.info_hash)))
                .collect()
        } else {
            let mut seen = HashSet::with_capacity(files.len());
            files
                .iter()
                .rev()
                .filter(|f| seen.insert(f.info_hash))
                .map(|f| (f, self.swarm_hash(&f.info_hash)))
                .collect()
        };
        let mut shard = self.peer_shard(phash);
        let rehash = |r: &PeerRecord| peer_hash(&self.hasher, &r.ip, &r.id);
        let mut pos = shard.records.position(phash, |r| r.ip == ip && r.id == id);
        if let Some(p) = pos {
            let last_seen = shard.records.items()[p]
                .live
                .last_seen
                .load(Ordering::Relaxed);
            if self.expired(last_seen, now_ms) {
                let old = shard.records.swap_remove(p, rehash);
                self.purge(&old.ip, &old.id, phash, &old.files, &mut |_| {});
                pos = None;
            }
        }
        let (have, adding) = match pos {
            Some(p) => {
                let held = &shard.records.items()[p].files;
                let adding = files
                    .iter()
                    .filter(|(f, shash)| !held.contains(&f.info_hash, *shash))
                    .count();
                (held.len(), adding)
            }
            None => (0, files.len()),
        };
        let limit = self.limits.max_files_per_peer;
        if have + adding > limit {
            return Err(RegisterError::TooManyFiles {
                limit,
                have,
                adding,
            });
        }
        let mut reserved = self.reserve_for(&files)?;
        let new_peer = pos.is_none();
        let pos = match pos {
            Some(p) => p,
            None => {
                let record = PeerRecord {
                    ip,
                    id: id.clone(),
                    live: Arc::new(Live {
                        port: AtomicU16::new(port),
                        last_seen: AtomicU32::new(now_ms),
                    }),
                    files: FileList::Empty,
                };
                shard.records.push(phash, record, rehash)
            }
        };
        let record = &mut shard.records.items_mut()[pos];
        // Refreshes every swarm of the peer at once, through the shared cell.
        record.live.port.store(port, Ordering::Relaxed);
        record.live.last_seen.store(now_ms, Ordering::Relaxed);
        let live = &record.live;
        let mut joined = 0;
        for &(f, shash) in &files {
            record
                .files
                .insert(f.info_hash, shash, |h| self.swarm_hash(h));
            let mut sshard = self.swarm_shard(shash);
            let (swarm, created) = sshard.get_or_create(shash, &f.info_hash, &f.name, f.size);
            if created {
                if reserved > 0 {
                    reserved -= 1;
                } else {
                    // The swarm vanished after `reserve_for` looked: a race
                    // that can overshoot the cap by a few swarms at most.
                    self.swarm_count.fetch_add(1, Ordering::AcqRel);
                }
            }
            match swarm.position(phash, &ip, &id) {
                Some(i) => {
                    let p = &mut swarm.peers.items_mut()[i];
                    // An entry a BEP 15 announce took over follows the record again.
                    if !p.shared.as_ref().is_some_and(|s| Arc::ptr_eq(s, live)) {
                        p.shared = Some(live.clone());
                    }
                    let was = swarm.peers.items()[i].complete;
                    swarm.set_complete(i, f.complete);
                    if f.complete && !was {
                        observe(&f.info_hash, SwarmChange::Completed);
                    }
                }
                None => {
                    joined += 1;
                    observe(&f.info_hash, SwarmChange::Joined);
                    swarm.insert(
                        &self.hasher,
                        phash,
                        SwarmPeer {
                            ip,
                            id: id.clone(),
                            port,
                            last_seen: now_ms,
                            complete: f.complete,
                            http: false,
                            shared: Some(live.clone()),
                        },
                    );
                }
            }
        }
        self.release_swarms(reserved);
        Ok(RegisterOutcome { new_peer, joined })
    }

    /// `HEARTBEAT`: refreshes every swarm of the peer, in O(1) (the swarm
    /// entries share the record's cell).
    pub fn heartbeat(&self, ip: IpAddr, peer_id: &str, now: Instant) -> Result<(), UnknownPeer> {
        let now_ms = self.ms(now);
        let ip = ip16(ip);
        let id = PeerId::new(peer_id);
        let phash = peer_hash(&self.hasher, &ip, &id);
        let mut shard = self.peer_shard(phash);
        let Some(pos) = shard.records.position(phash, |r| r.ip == ip && r.id == id) else {
            return Err(UnknownPeer);
        };
        let live = &shard.records.items()[pos].live;
        if self.expired(live.last_seen.load(Ordering::Relaxed), now_ms) {
            // Expired but not swept yet: same answer as after the sweep.
            let old = shard
                .records
                .swap_remove(pos, |r| peer_hash(&self.hasher, &r.ip, &r.id));
            self.purge(&old.ip, &old.id, phash, &old.files, &mut |_| {});
            return Err(UnknownPeer);
        }
        live.last_seen.store(now_ms, Ordering::Relaxed);
        Ok(())
    }

    /// `EXIT`: the peer leaves every swarm now. Returns the port it had.
    pub fn exit(&self, ip: IpAddr, peer_id: &str, now: Instant) -> Result<u16, UnknownPeer> {
        self.exit_observed(ip, peer_id, now, |_| {})
    }

    /// [`exit`](Self::exit), calling `left` for each swarm the peer leaves
    /// (under a swarm shard lock: quick, no registry lock).
    pub fn exit_observed(
        &self,
        ip: IpAddr,
        peer_id: &str,
        now: Instant,
        mut left: impl FnMut(&InfoHash),
    ) -> Result<u16, UnknownPeer> {
        let now_ms = self.ms(now);
        let ip = ip16(ip);
        let id = PeerId::new(peer_id);
        let phash = peer_hash(&self.hasher, &ip, &id);
        let mut shard = self.peer_shard(phash);
        let Some(pos) = shard.records.position(phash, |r| r.ip == ip && r.id == id) else {
            return Err(UnknownPeer);
        };
        let old = shard
            .records
            .swap_remove(pos, |r| peer_hash(&self.hasher, &r.ip, &r.id));
        let expired = self.expired(old.live.last_seen.load(Ordering::Relaxed), now_ms);
        // An entry that had already timed out is not reported as leaving.
        let mut noop = |_: &InfoHash| {};
        let report: &mut dyn FnMut(&InfoHash) = if expired { &mut noop } else { &mut left };
        self.purge(&old.ip, &old.id, phash, &old.files, report);
        if self.expired(old.live.last_seen.load(Ordering::Relaxed), now_ms) {
            return Err(UnknownPeer);
        }
        Ok(old.live.port.load(Ordering::Relaxed))
    }

    /// Removes the peer from the given swarms, dropping swarms left empty.
    /// O(files), but once per record: the REGISTERs that built it paid as much.
    fn purge(
        &self,
        ip: &Ip16,
        id: &PeerId,
        phash: u64,
        files: &FileList,
        left: &mut dyn FnMut(&InfoHash),
    ) {
        for h in files.iter() {
            let shash = self.swarm_hash(h);
            let mut sshard = self.swarm_shard(shash);
            if let Some(swarm) = sshard.find_mut(shash, h) {
                if let Some(i) = swarm.position(phash, ip, id) {
                    swarm.remove_at(&self.hasher, i);
                    left(h);
                }
            }
            if sshard.drop_if_empty(shash, h) {
                self.release_swarms(1);
            }
        }
    }
}
