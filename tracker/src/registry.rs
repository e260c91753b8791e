//! The swarm registry: which peer is in which swarm, and since when.
//!
//! A peer is identified by (source IP, peer_id). Its entry in a swarm holds
//! everything a reply needs (address, id, complete) plus the time it was last
//! heard from, so a reply is built from one swarm alone. Peers that registered
//! through the JSON protocol also have a *peer record* listing their swarms, so
//! that `HEARTBEAT` and `EXIT`, which name no file, can find them. Such a
//! peer's port and last-heard time live in one shared cell ([`Live`]) that its
//! record and all its swarm entries point to, so `HEARTBEAT` costs the same
//! whatever the number of files, and `REGISTER` costs in proportion to the
//! files it names, not to the files the peer already has.
//!
//! Two limits keep one client from growing the state without bound:
//! [`MAX_FILES_PER_PEER`] files per registered peer and [`MAX_SWARMS`] swarms
//! in all (see [`Limits`]).
//!
//! The registry is plain data: every operation takes `now` as an argument, so
//! expiry is tested by passing a later instant. It is shared by the worker
//! threads without a global lock: swarms are sharded by a keyed hash of the info
//! hash, peer records by a keyed hash of (IP, peer_id), each shard behind its own
//! mutex. Lock order: a peer-record shard, then swarm shards one at a time; no
//! code holds two swarm shards or two peer-record shards at once.
//!
//! Times are stored as `u32` milliseconds since the registry was created
//! (wrapping); ages are compared as signed 32-bit differences, which is exact as
//! long as the timeout is under 24 days ([`MAX_PEER_TIMEOUT`] is one day).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hashbrown::HashTable;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{FileInfo, FileRef, PeerView};

use crate::indexed::IndexedVec;
use crate::peer_id::PeerId;

/// Longest `--peer-timeout` the registry accepts.
pub const MAX_PEER_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Most files one JSON peer may have registered at once. Sharing a folder
/// registers one file per entry, so this is generous; it bounds what one
/// (IP, peer_id) can make the tracker hold and what its EXIT or expiry costs.
pub const MAX_FILES_PER_PEER: usize = 10_000;

/// Most swarms one `SEARCH` answer is built from: more than fit one reply
/// datagram (about 750 with the shortest names).
pub const MAX_SEARCH_HITS: usize = 1_000;

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

/// An IP address as 16 bytes (IPv4 as IPv4-mapped IPv6), so peer entries have
/// one fixed size whatever the family.
type Ip16 = [u8; 16];

fn ip16(ip: IpAddr) -> Ip16 {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn ip_from16(b: &Ip16) -> IpAddr {
    // The same as `Ipv6Addr::to_canonical`, but whole words at a time rather
    // than the byte shuffling that showed up in reply building.
    if is_v4(b) {
        IpAddr::V4(Ipv4Addr::from([b[12], b[13], b[14], b[15]]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*b))
    }
}

fn is_v4(b: &Ip16) -> bool {
    b[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
}

/// Which peers a listing may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    fn admits(self, ip: &Ip16) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => is_v4(ip),
            Family::V6 => !is_v4(ip),
        }
    }
}

/// One peer of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPeer {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub complete: bool,
}

/// A swarm and some of its peers: what `REQUEST` and BEP 15 `announce` answer.
/// Reused between calls so answering does not allocate.
#[derive(Debug, Clone)]
pub struct PeerList {
    pub info_hash: InfoHash,
    /// Empty while the swarm is known only from BEP 15 announces.
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
    pub peers: Vec<ListedPeer>,
}

impl Default for PeerList {
    fn default() -> PeerList {
        PeerList {
            info_hash: InfoHash([0; 20]),
            name: String::new(),
            size: 0,
            seeders: 0,
            leechers: 0,
            peers: Vec::new(),
        }
    }
}

/// One swarm in a `SEARCH` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

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

/// What one sweep removed.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    /// Registered (JSON) peers that expired: IP, peer_id, port.
    pub expired: Vec<(IpAddr, PeerId, u16)>,
    /// Swarm entries removed (a peer in three swarms counts three times).
    pub entries_removed: usize,
    pub swarms_removed: usize,
}

/// Counts for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    pub swarms: usize,
    /// Swarm entries (peer × swarm).
    pub entries: usize,
    /// Peers with a JSON registration record.
    pub registered: usize,
}

/// A BEP 15 announce event, as far as the registry cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// `none`, `started` or `completed`: join or refresh.
    Update,
    /// `stopped`: leave the swarm.
    Stopped,
}

/// Seeders, leechers and downloads-completed of one swarm (BEP 15 scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    pub seeders: u32,
    pub leechers: u32,
}

pub struct Registry {
    epoch: Instant,
    timeout_ms: u32,
    limits: Limits,
    /// Swarms held plus swarms reserved by a `REGISTER` in progress.
    swarm_count: AtomicUsize,
    hasher: KeyedHash,
    swarm_shards: Box<[Mutex<SwarmShard>]>,
    peer_shards: Box<[Mutex<PeerShard>]>,
}

#[derive(Default)]
struct SwarmShard {
    swarms: HashTable<Swarm>,
    /// Exact name → swarms of that name, for `REQUEST` by name.
    names: HashMap<Box<str>, Vec<InfoHash>>,
}

#[derive(Default)]
struct PeerShard {
    records: IndexedVec<PeerRecord>,
}

struct Swarm {
    info_hash: InfoHash,
    hash: u64,
    name: Box<str>,
    size: u64,
    seeders: u32,
    /// Found by the keyed hash of (IP, peer_id).
    peers: IndexedVec<SwarmPeer>,
}

struct SwarmPeer {
    ip: Ip16,
    id: PeerId,
    /// Used while `shared` is `None` (a BEP 15 announcer).
    port: u16,
    last_seen: u32,
    complete: bool,
    /// The JSON peer's record cell, when a `REGISTER` put this entry here.
    shared: Option<Arc<Live>>,
}

impl SwarmPeer {
    fn last_seen(&self) -> u32 {
        match &self.shared {
            Some(live) => live.last_seen.load(Ordering::Relaxed),
            None => self.last_seen,
        }
    }

    fn port(&self) -> u16 {
        match &self.shared {
            Some(live) => live.port.load(Ordering::Relaxed),
            None => self.port,
        }
    }
}

/// Port and last-heard time of a JSON peer, shared by its record and its swarm
/// entries. Written under the record's shard lock, read under swarm locks;
/// each field on its own, so relaxed ordering is enough.
struct Live {
    port: AtomicU16,
    last_seen: AtomicU32,
}

/// A JSON-registered peer: which swarms it joined, for HEARTBEAT and EXIT.
struct PeerRecord {
    ip: Ip16,
    id: PeerId,
    live: Arc<Live>,
    files: FileList,
}

/// The info hashes of one peer, each once: a set, so that a `REGISTER` checks
/// its files in O(1) each; a single file (the common case) needs no heap. Only
/// grows: a file the peer left through BEP 15 `stopped` stays listed (EXIT
/// then finds nothing to remove) until the peer exits or expires.
enum FileList {
    Empty,
    One(InfoHash),
    /// Hashed with the registry's swarm hash.
    Many(Box<HashTable<InfoHash>>),
}

impl FileList {
    fn len(&self) -> usize {
        match self {
            FileList::Empty => 0,
            FileList::One(_) => 1,
            FileList::Many(t) => t.len(),
        }
    }

    fn contains(&self, h: &InfoHash, shash: u64) -> bool {
        match self {
            FileList::Empty => false,
            FileList::One(x) => x == h,
            FileList::Many(t) => t.find(shash, |x| x == h).is_some(),
        }
    }

    /// Adds `h` (whose swarm hash is `shash`) unless present.
    fn insert(&mut self, h: InfoHash, shash: u64, rehash: impl Fn(&InfoHash) -> u64) {
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

    fn iter(&self) -> impl Iterator<Item = &InfoHash> {
        let (one, many) = match self {
            FileList::Empty => (None, None),
            FileList::One(h) => (Some(h), None),
            FileList::Many(t) => (None, Some(t.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop the tracker serving everyone else; the
    // shard's data stays structurally valid between operations.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shard index from bits the hash tables do not use for bucket positions.
fn shard_of(hash: u64, n: usize) -> usize {
    ((hash >> 32) as usize) % n
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Swarm {
    fn new(info_hash: InfoHash, hash: u64, name: &str, size: u64) -> Swarm {
        Swarm {
            info_hash,
            hash,
            name: name.into(),
            size,
            seeders: 0,
            peers: IndexedVec::default(),
        }
    }

    fn position(&self, phash: u64, ip: &Ip16, id: &PeerId) -> Option<usize> {
        self.peers.position(phash, |p| p.ip == *ip && p.id == *id)
    }

    /// Returns the new entry's position.
    fn insert(&mut self, hasher: &KeyedHash, phash: u64, peer: SwarmPeer) -> usize {
        if peer.complete {
            self.seeders += 1;
        }
        self.peers
            .push(phash, peer, |p| peer_hash(hasher, &p.ip, &p.id))
    }

    fn set_complete(&mut self, idx: usize, complete: bool) {
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

    fn remove_at(&mut self, hasher: &KeyedHash, idx: usize) -> SwarmPeer {
        let p = self
            .peers
            .swap_remove(idx, |p| peer_hash(hasher, &p.ip, &p.id));
        if p.complete {
            self.seeders -= 1;
        }
        p
    }

    fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }
}

fn peer_hash(hasher: &KeyedHash, ip: &Ip16, id: &PeerId) -> u64 {
    hasher.peer(ip, id.as_bytes())
}

/// The registry's hash of info hashes and of (IP, peer_id): keyed with random
/// per-process keys, so a client cannot choose info hashes or peer ids that
/// pile up in one bucket or shard, yet far cheaper than SipHash on these
/// short fixed-size inputs (it is on every announce's path three times). It
/// is the folded multiply of wyhash and foldhash: a 64×64→128-bit product of
/// key-masked words, its halves xored. It only spreads the tables; it is not
/// a MAC (connection ids keep SipHash).
struct KeyedHash {
    k: [u64; 4],
}

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl KeyedHash {
    fn new() -> KeyedHash {
        let s = RandomState::new();
        KeyedHash {
            // Odd keys: a multiplier is never zero.
            k: [0u64, 1, 2, 3].map(|i| s.hash_one(i) | 1),
        }
    }

    fn swarm(&self, h: &InfoHash) -> u64 {
        let b = &h.0;
        let tail = u64::from(u32::from_le_bytes([b[16], b[17], b[18], b[19]]));
        let x = fold(word(b, 0) ^ self.k[0], word(b, 8) ^ self.k[1]);
        fold(x ^ tail ^ self.k[2], self.k[3])
    }

    fn peer(&self, ip: &Ip16, id: &[u8]) -> u64 {
        let mut x = fold(word(ip, 0) ^ self.k[0], word(ip, 8) ^ self.k[1]);
        // 16 bytes a round; the length goes in too, so ids that differ only
        // by trailing zero bytes differ.
        let mut chunks = id.chunks_exact(16);
        for c in &mut chunks {
            x = fold(x ^ word(c, 0) ^ self.k[2], word(c, 8) ^ self.k[3]);
        }
        let mut rest = [0u8; 16];
        let r = chunks.remainder();
        rest[..r.len()].copy_from_slice(r);
        x = fold(x ^ word(&rest, 0) ^ self.k[2], word(&rest, 8) ^ self.k[3]);
        fold(x ^ id.len() as u64 ^ self.k[0], self.k[1])
    }
}

impl SwarmShard {
    fn find_mut(&mut self, hash: u64, info_hash: &InfoHash) -> Option<&mut Swarm> {
        self.swarms.find_mut(hash, |s| s.info_hash == *info_hash)
    }

    fn find(&self, hash: u64, info_hash: &InfoHash) -> Option<&Swarm> {
        self.swarms.find(hash, |s| s.info_hash == *info_hash)
    }

    /// The swarm, and whether it was created (the caller accounts for it in
    /// `Registry::swarm_count`).
    fn get_or_create(
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
    fn drop_if_empty(&mut self, hash: u64, info_hash: &InfoHash) -> bool {
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

    fn forget_name(&mut self, name: &str, info_hash: &InfoHash) {
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

    /// Takes `n` more swarms from the cap; false (and nothing taken) if they
    /// do not fit.
    fn try_reserve_swarms(&self, n: usize) -> bool {
        let max = self.limits.max_swarms;
        self.swarm_count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                c.checked_add(n).filter(|&t| t <= max)
            })
            .is_ok()
    }

    fn release_swarms(&self, n: usize) {
        if n > 0 {
            self.swarm_count.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Reserves room for the swarms a `REGISTER` of `files` may create:
    /// all of them when that fits (the usual case, no lookups), else exactly
    /// the ones missing now. Returns the number reserved.
    fn reserve_for(&self, files: &[(&FileInfo, u64)]) -> Result<usize, TrackerFull> {
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

    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }

    fn expired(&self, last_seen: u32, now_ms: u32) -> bool {
        expired(last_seen, now_ms, self.timeout_ms)
    }

    fn swarm_hash(&self, info_hash: &InfoHash) -> u64 {
        self.hasher.swarm(info_hash)
    }

    fn swarm_shard(&self, hash: u64) -> MutexGuard<'_, SwarmShard> {
        lock(&self.swarm_shards[shard_of(hash, self.swarm_shards.len())])
    }

    fn peer_shard(&self, hash: u64) -> MutexGuard<'_, PeerShard> {
        lock(&self.peer_shards[shard_of(hash, self.peer_shards.len())])
    }

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
                self.purge(&old.ip, &old.id, phash, &old.files);
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
                    swarm.set_complete(i, f.complete);
                }
                None => {
                    joined += 1;
                    swarm.insert(
                        &self.hasher,
                        phash,
                        SwarmPeer {
                            ip,
                            id: id.clone(),
                            port,
                            last_seen: now_ms,
                            complete: f.complete,
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
            self.purge(&old.ip, &old.id, phash, &old.files);
            return Err(UnknownPeer);
        }
        live.last_seen.store(now_ms, Ordering::Relaxed);
        Ok(())
    }

    /// `EXIT`: the peer leaves every swarm now. Returns the port it had.
    pub fn exit(&self, ip: IpAddr, peer_id: &str, now: Instant) -> Result<u16, UnknownPeer> {
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
        self.purge(&old.ip, &old.id, phash, &old.files);
        if self.expired(old.live.last_seen.load(Ordering::Relaxed), now_ms) {
            return Err(UnknownPeer);
        }
        Ok(old.live.port.load(Ordering::Relaxed))
    }

    /// Removes the peer from the given swarms, dropping swarms left empty.
    /// O(files), but once per record: the REGISTERs that built it paid as much.
    fn purge(&self, ip: &Ip16, id: &PeerId, phash: u64, files: &FileList) {
        for h in files.iter() {
            let shash = self.swarm_hash(h);
            let mut sshard = self.swarm_shard(shash);
            if let Some(swarm) = sshard.find_mut(shash, h) {
                if let Some(i) = swarm.position(phash, ip, id) {
                    swarm.remove_at(&self.hasher, i);
                }
            }
            if sshard.drop_if_empty(shash, h) {
                self.release_swarms(1);
            }
        }
    }

    /// The swarm with exactly this name; when several swarms share it, the one
    /// with the most seeders, then the most peers, then the lowest info hash.
    pub fn find_by_name(&self, name: &str) -> Option<InfoHash> {
        let mut best: Option<((u32, usize), InfoHash)> = None;
        for shard in self.swarm_shards.iter() {
            let shard = lock(shard);
            let Some(hashes) = shard.names.get(name) else {
                continue;
            };
            for h in hashes {
                let Some(s) = shard.find(self.swarm_hash(h), h) else {
                    continue;
                };
                let score = (s.seeders, s.peers.len());
                let better = match &best {
                    None => true,
                    Some((bs, bh)) => score > *bs || (score == *bs && h < bh),
                };
                if better {
                    best = Some((score, *h));
                }
            }
        }
        best.map(|(_, h)| h)
    }

    /// `REQUEST`: calls `visit` with the swarm and an iterator over up to
    /// `max` of its peers, picked at random when there are more, without
    /// `asker` and without peers past their timeout. `visit` runs under the
    /// swarm's shard lock, so the tracker encodes its reply straight from the
    /// registry without copying. `None` when no swarm matches.
    #[allow(clippy::too_many_arguments)]
    pub fn visit_peers<R>(
        &self,
        file: &FileRef,
        asker: Option<(IpAddr, &str)>,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now: Instant,
        visit: impl FnOnce(SwarmHeader<'_>, Picks<'_>) -> R,
    ) -> Option<R> {
        let info_hash = match file {
            FileRef::InfoHash(h) => *h,
            FileRef::Name(n) => self.find_by_name(n)?,
        };
        let asker = asker.map(|(ip, id)| (ip16(ip), PeerId::new(id)));
        let shash = self.swarm_hash(&info_hash);
        let shard = self.swarm_shard(shash);
        let swarm = shard.find(shash, &info_hash)?;
        let header = SwarmHeader {
            info_hash: &swarm.info_hash,
            name: &swarm.name,
            size: swarm.size,
            seeders: swarm.seeders,
            leechers: swarm.leechers(),
        };
        // The asker's own entry, found once here rather than compared with
        // every peer visited.
        let skip =
            asker.and_then(|(ip, id)| swarm.position(peer_hash(&self.hasher, &ip, &id), &ip, &id));
        let picks = self.picks(swarm, skip, max, family, rng, self.ms(now));
        Some(visit(header, picks))
    }

    /// [`visit_peers`](Self::visit_peers) into an owned [`PeerList`].
    #[allow(clippy::too_many_arguments)]
    pub fn list_peers(
        &self,
        file: &FileRef,
        asker: Option<(IpAddr, &str)>,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now: Instant,
        out: &mut PeerList,
    ) -> bool {
        self.visit_peers(file, asker, max, family, rng, now, |h, picks| {
            out.info_hash = *h.info_hash;
            out.name.clear();
            out.name.push_str(h.name);
            out.size = h.size;
            out.seeders = h.seeders;
            out.leechers = h.leechers;
            out.peers.clear();
            out.peers.extend(picks.map(|p| ListedPeer {
                addr: p.addr,
                peer_id: PeerId::new(p.peer_id),
                complete: p.complete,
            }));
        })
        .is_some()
    }

    fn picks<'a>(
        &self,
        swarm: &'a Swarm,
        skip: Option<usize>,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now_ms: u32,
    ) -> Picks<'a> {
        let n = swarm.peers.len();
        // Walk the peers from a random start with a random stride coprime to
        // n: visits every peer once, in an order that differs per call, and
        // costs O(max) when few peers are filtered out.
        let (idx, step) = if n <= max || n < 2 {
            (0, 1)
        } else {
            let mut step = 1;
            for _ in 0..8 {
                let s = rng.usize(1..n);
                if gcd(s, n) == 1 {
                    step = s;
                    break;
                }
            }
            (rng.usize(0..n), step)
        };
        Picks {
            peers: swarm.peers.items(),
            idx,
            step,
            visits_left: n,
            wanted: max,
            skip: skip.unwrap_or(usize::MAX),
            family,
            now_ms,
            timeout_ms: self.timeout_ms,
        }
    }

    /// `SEARCH`: the first [`MAX_SEARCH_HITS`] swarms whose name contains
    /// `query`, ignoring case (an empty query matches all), sorted by name
    /// then info hash. Scans every swarm, but copies and sorts only about
    /// twice the hits it keeps, however many match.
    pub fn search(&self, query: &str, out: &mut Vec<SearchHit>) {
        out.clear();
        let needle = query.to_lowercase();
        let by_key =
            |a: &SearchHit, b: &SearchHit| a.name.cmp(&b.name).then(a.info_hash.cmp(&b.info_hash));
        // Once `out` has been cut to the first MAX_SEARCH_HITS, nothing at or
        // after the last one kept can make it.
        let mut bound: Option<(String, InfoHash)> = None;
        for shard in self.swarm_shards.iter() {
            let shard = lock(shard);
            for s in shard.swarms.iter() {
                if let Some((name, hash)) = &bound {
                    if (&*s.name, &s.info_hash) >= (name.as_str(), hash) {
                        continue;
                    }
                }
                if contains_ignore_case(&s.name, &needle) {
                    out.push(SearchHit {
                        info_hash: s.info_hash,
                        name: s.name.to_string(),
                        size: s.size,
                        seeders: s.seeders,
                        leechers: s.leechers(),
                    });
                    if out.len() >= 2 * MAX_SEARCH_HITS {
                        out.sort_unstable_by(by_key);
                        out.truncate(MAX_SEARCH_HITS);
                        bound = out.last().map(|h| (h.name.clone(), h.info_hash));
                    }
                }
            }
        }
        out.sort_unstable_by(by_key);
        out.truncate(MAX_SEARCH_HITS);
    }

    /// BEP 15 `announce`: joins, refreshes or (on `stopped`) leaves one swarm,
    /// then calls `visit` with the swarm's counts and up to `max` other peers
    /// of `family` (none after `stopped`), under the shard lock. A swarm first
    /// created here has no name or size until a JSON peer registers it; none
    /// is created past `max_swarms` ([`TrackerFull`]).
    #[allow(clippy::too_many_arguments)]
    pub fn announce<R>(
        &self,
        addr: SocketAddr,
        peer_id: PeerId,
        info_hash: &InfoHash,
        complete: bool,
        event: AnnounceEvent,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now: Instant,
        visit: impl FnOnce(SwarmCounts, Picks<'_>) -> R,
    ) -> Result<R, TrackerFull> {
        let now_ms = self.ms(now);
        let ip = ip16(addr.ip());
        let phash = peer_hash(&self.hasher, &ip, &peer_id);
        let shash = self.swarm_hash(info_hash);
        let mut shard = self.swarm_shard(shash);
        if event == AnnounceEvent::Stopped {
            let mut counts = SwarmCounts::default();
            if let Some(swarm) = shard.find_mut(shash, info_hash) {
                if let Some(i) = swarm.position(phash, &ip, &peer_id) {
                    swarm.remove_at(&self.hasher, i);
                }
                counts = SwarmCounts {
                    seeders: swarm.seeders,
                    leechers: swarm.leechers(),
                };
            }
            if shard.drop_if_empty(shash, info_hash) {
                self.release_swarms(1);
            }
            return Ok(visit(counts, Picks::none(self.timeout_ms)));
        }
        if shard.find(shash, info_hash).is_none() && !self.try_reserve_swarms(1) {
            return Err(TrackerFull {
                limit: self.limits.max_swarms,
            });
        }
        let (swarm, _) = shard.get_or_create(shash, info_hash, "", 0);
        let me = match swarm.position(phash, &ip, &peer_id) {
            Some(i) => {
                let p = &mut swarm.peers.items_mut()[i];
                // "Heard from" for this one swarm: a JSON peer's entry
                // announced through BEP 15 gets its own port and time.
                p.shared = None;
                p.port = addr.port();
                p.last_seen = now_ms;
                swarm.set_complete(i, complete);
                i
            }
            None => swarm.insert(
                &self.hasher,
                phash,
                SwarmPeer {
                    ip,
                    id: peer_id.clone(),
                    port: addr.port(),
                    last_seen: now_ms,
                    complete,
                    shared: None,
                },
            ),
        };
        let swarm = &*swarm;
        let counts = SwarmCounts {
            seeders: swarm.seeders,
            leechers: swarm.leechers(),
        };
        Ok(visit(
            counts,
            self.picks(swarm, Some(me), max, family, rng, now_ms),
        ))
    }

    /// BEP 15 `scrape`: counts of one swarm (zeros when unknown).
    pub fn counts(&self, info_hash: &InfoHash) -> SwarmCounts {
        let shash = self.swarm_hash(info_hash);
        let shard = self.swarm_shard(shash);
        match shard.find(shash, info_hash) {
            Some(s) => SwarmCounts {
                seeders: s.seeders,
                leechers: s.leechers(),
            },
            None => SwarmCounts::default(),
        }
    }

    /// Removes every peer past its timeout and every swarm left empty.
    pub fn sweep(&self, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        self.sweep_part(0, 1, now, &mut report);
        report
    }

    /// Sweeps the shards `i` with `i % parts == part`, so that each of `parts`
    /// worker threads can sweep its own share.
    pub fn sweep_part(&self, part: usize, parts: usize, now: Instant, report: &mut SweepReport) {
        let now_ms = self.ms(now);
        let parts = parts.max(1);
        for (i, shard) in self.peer_shards.iter().enumerate() {
            if i % parts != part {
                continue;
            }
            let mut shard = lock(shard);
            let records = &mut shard.records;
            let mut j = 0;
            while j < records.len() {
                let r = &records.items()[j];
                if self.expired(r.live.last_seen.load(Ordering::Relaxed), now_ms) {
                    report.expired.push((
                        ip_from16(&r.ip),
                        r.id.clone(),
                        r.live.port.load(Ordering::Relaxed),
                    ));
                    records.swap_remove(j, |r| peer_hash(&self.hasher, &r.ip, &r.id));
                } else {
                    j += 1;
                }
            }
        }
        let mut gone = Vec::new();
        for (i, shard) in self.swarm_shards.iter().enumerate() {
            if i % parts != part {
                continue;
            }
            let mut shard = lock(shard);
            shard.swarms.retain(|s| {
                let mut j = 0;
                while j < s.peers.len() {
                    if self.expired(s.peers.items()[j].last_seen(), now_ms) {
                        s.remove_at(&self.hasher, j);
                        report.entries_removed += 1;
                    } else {
                        j += 1;
                    }
                }
                if s.peers.is_empty() {
                    gone.push((std::mem::take(&mut s.name), s.info_hash));
                    false
                } else {
                    true
                }
            });
            report.swarms_removed += gone.len();
            self.release_swarms(gone.len());
            for (name, h) in gone.drain(..) {
                shard.forget_name(&name, &h);
            }
        }
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

fn expired(last_seen: u32, now_ms: u32, timeout_ms: u32) -> bool {
    // Signed: an entry refreshed by another thread with a slightly later `now`
    // must not look 49 days old.
    (now_ms.wrapping_sub(last_seen) as i32) >= timeout_ms as i32
}

/// The swarm fields of a listing, borrowed from the registry.
#[derive(Debug, Clone, Copy)]
pub struct SwarmHeader<'a> {
    pub info_hash: &'a InfoHash,
    /// Empty while the swarm is known only from BEP 15 announces.
    pub name: &'a str,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

/// The peers of one listing, borrowed from the registry (see
/// [`Registry::visit_peers`]).
pub struct Picks<'a> {
    peers: &'a [SwarmPeer],
    idx: usize,
    step: usize,
    visits_left: usize,
    wanted: usize,
    /// Position of the asker's own entry (never listed), or `usize::MAX`.
    skip: usize,
    family: Family,
    now_ms: u32,
    timeout_ms: u32,
}

impl Picks<'_> {
    fn none(timeout_ms: u32) -> Picks<'static> {
        Picks {
            peers: &[],
            idx: 0,
            step: 1,
            visits_left: 0,
            wanted: 0,
            skip: usize::MAX,
            family: Family::Any,
            now_ms: 0,
            timeout_ms,
        }
    }
}

impl<'a> Picks<'a> {
    /// The next peer to list.
    #[inline]
    fn next_entry(&mut self) -> Option<&'a SwarmPeer> {
        let peers = self.peers;
        while self.wanted > 0 && self.visits_left > 0 {
            let i = self.idx;
            let p = &peers[i];
            self.visits_left -= 1;
            self.idx += self.step;
            if self.idx >= peers.len() {
                self.idx -= peers.len();
            }
            if i == self.skip
                || !self.family.admits(&p.ip)
                || expired(p.last_seen(), self.now_ms, self.timeout_ms)
            {
                continue;
            }
            self.wanted -= 1;
            return Some(p);
        }
        None
    }

    /// Only the addresses of the same picks: what a BEP 15 reply lists,
    /// without building the rest of each [`PeerView`].
    pub fn addrs(mut self) -> impl Iterator<Item = SocketAddr> + 'a {
        std::iter::from_fn(move || {
            self.next_entry()
                .map(|p| SocketAddr::new(ip_from16(&p.ip), p.port()))
        })
    }
}

impl<'a> Iterator for Picks<'a> {
    type Item = PeerView<'a>;

    fn next(&mut self) -> Option<PeerView<'a>> {
        self.next_entry().map(|p| PeerView {
            addr: SocketAddr::new(ip_from16(&p.ip), p.port()),
            peer_id: p.id.as_str(),
            complete: p.complete,
        })
    }
}

fn contains_ignore_case(hay: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle_lower.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(needle_lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const T: Duration = Duration::from_secs(30);

    fn h(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    fn file(b: u8, name: &str, complete: bool) -> FileInfo {
        FileInfo {
            info_hash: h(b),
            name: name.into(),
            size: 1000 + u64::from(b),
            complete,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    struct Fixture {
        reg: Registry,
        t0: Instant,
        rng: fastrand::Rng,
        out: PeerList,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture::with_shards(4)
        }
        fn with_shards(shards: usize) -> Fixture {
            Fixture::with_limits(shards, Limits::default())
        }
        fn with_limits(shards: usize, limits: Limits) -> Fixture {
            let t0 = Instant::now();
            Fixture {
                reg: Registry::with_limits(T, shards, t0, limits),
                t0,
                rng: fastrand::Rng::with_seed(7),
                out: PeerList::default(),
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        /// A JSON REGISTER from `addr` at `ms`, which must succeed.
        fn register(
            &self,
            addr: &str,
            id: &str,
            port: u16,
            files: &[FileInfo],
            ms: u64,
        ) -> RegisterOutcome {
            self.reg
                .register(ip(addr), id, port, files, self.at(ms))
                .unwrap()
        }
        /// BEP 15 announce of swarm `b` from `addr` as `id`; `Err` when refused.
        fn announce(
            &mut self,
            addr: &str,
            id: &str,
            b: u8,
            event: AnnounceEvent,
            ms: u64,
        ) -> Result<(), TrackerFull> {
            self.announce_with(addr, id, b, true, event, Family::Any, ms, |_, _| ())
        }
        /// `announce` with the announcer's completeness, the address family
        /// wanted and what to do with the answer.
        #[allow(clippy::too_many_arguments)]
        fn announce_with<R>(
            &mut self,
            addr: &str,
            id: &str,
            b: u8,
            complete: bool,
            event: AnnounceEvent,
            family: Family,
            ms: u64,
            visit: impl FnOnce(SwarmCounts, Picks<'_>) -> R,
        ) -> Result<R, TrackerFull> {
            let now = self.at(ms);
            self.reg.announce(
                addr.parse().unwrap(),
                PeerId::new(id),
                &h(b),
                complete,
                event,
                50,
                family,
                &mut self.rng,
                now,
                visit,
            )
        }
        /// The number of swarms as counted, checked against the swarms held.
        fn swarms(&self) -> usize {
            let counted = self.reg.swarm_count.load(Ordering::Relaxed);
            assert_eq!(counted, self.reg.stats().swarms, "swarm counter drifted");
            counted
        }
        fn list(
            &mut self,
            b: u8,
            asker: Option<(&str, &str)>,
            max: usize,
            ms: u64,
        ) -> Option<PeerList> {
            let now = self.at(ms);
            let asker = asker.map(|(i, id)| (ip(i), id));
            self.reg
                .list_peers(
                    &FileRef::InfoHash(h(b)),
                    asker,
                    max,
                    Family::Any,
                    &mut self.rng,
                    now,
                    &mut self.out,
                )
                .then(|| self.out.clone())
        }
        fn ids(&mut self, b: u8, ms: u64) -> Vec<String> {
            let mut v: Vec<String> = self
                .list(b, None, 1000, ms)
                .map(|l| l.peers.iter().map(|p| p.peer_id.to_string()).collect())
                .unwrap_or_default();
            v.sort();
            v
        }
    }

    #[test]
    fn register_then_list_by_hash_and_name() {
        let mut f = Fixture::new();
        let o = f.register("10.0.0.1", "seed", 7001, &[file(1, "report.pdf", true)], 0);
        assert_eq!(
            o,
            RegisterOutcome {
                new_peer: true,
                joined: 1
            }
        );
        f.register(
            "10.0.0.2",
            "leech",
            7002,
            &[file(1, "report.pdf", false)],
            0,
        );
        let l = f.list(1, None, 50, 1).unwrap();
        assert_eq!(
            (l.seeders, l.leechers, l.size, l.name.as_str()),
            (1, 1, 1001, "report.pdf")
        );
        let mut addrs: Vec<String> = l.peers.iter().map(|p| p.addr.to_string()).collect();
        addrs.sort();
        assert_eq!(addrs, ["10.0.0.1:7001", "10.0.0.2:7002"]);
        assert_eq!(f.reg.find_by_name("report.pdf"), Some(h(1)));
        assert_eq!(f.reg.find_by_name("REPORT.PDF"), None);
        assert!(f.list(2, None, 50, 1).is_none());
        let by_name = f.reg.list_peers(
            &FileRef::Name("report.pdf".into()),
            None,
            50,
            Family::Any,
            &mut f.rng,
            f.t0,
            &mut f.out,
        );
        assert!(by_name);
        assert_eq!(f.out.info_hash, h(1));
    }

    #[test]
    fn the_asker_is_left_out_only_from_its_own_ip() {
        let mut f = Fixture::new();
        f.register("10.0.0.1", "a", 1, &[file(1, "x", true)], 0);
        f.register("10.0.0.2", "b", 2, &[file(1, "x", false)], 0);
        let l = f.list(1, Some(("10.0.0.2", "b")), 50, 0).unwrap();
        assert_eq!(l.peers.len(), 1);
        assert_eq!(l.peers[0].peer_id.as_str(), "a");
        // Counts still include the asker.
        assert_eq!((l.seeders, l.leechers), (1, 1));
        // Same peer_id from another IP is not the asker.
        let l = f.list(1, Some(("10.0.0.9", "b")), 50, 0).unwrap();
        assert_eq!(l.peers.len(), 2);
    }

    #[test]
    fn register_is_additive_and_updates_complete() {
        let mut f = Fixture::new();
        f.register("10.0.0.1", "p", 1, &[file(1, "a", false)], 0);
        let o = f.register("10.0.0.1", "p", 1, &[file(2, "b", true)], 10);
        assert_eq!(
            o,
            RegisterOutcome {
                new_peer: false,
                joined: 1
            }
        );
        assert_eq!(f.ids(1, 10), ["p"]);
        assert_eq!(f.ids(2, 10), ["p"]);
        assert_eq!(f.list(1, None, 50, 10).unwrap().leechers, 1);
        f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 20);
        let l = f.list(1, None, 50, 20).unwrap();
        assert_eq!((l.seeders, l.leechers), (1, 0));
        assert!(l.peers[0].complete);
        // A new port applies to every swarm of the peer.
        f.register("10.0.0.1", "p", 9, &[], 30);
        assert_eq!(f.list(2, None, 50, 30).unwrap().peers[0].addr.port(), 9);
        assert_eq!(
            f.reg.stats(),
            RegistryStats {
                swarms: 2,
                entries: 2,
                registered: 1
            }
        );
    }

    #[test]
    fn a_peer_is_ip_plus_peer_id() {
        let mut f = Fixture::new();
        f.register("127.0.0.1", "p", 1, &[file(1, "a", true)], 0);
        assert_eq!(
            f.reg.heartbeat(ip("127.0.0.2"), "p", f.at(1)),
            Err(UnknownPeer)
        );
        assert_eq!(f.reg.exit(ip("127.0.0.2"), "p", f.at(1)), Err(UnknownPeer));
        assert_eq!(f.ids(1, 1), ["p"]);
        // The same peer_id from another IP is another peer.
        f.register("127.0.0.2", "p", 2, &[file(1, "a", true)], 2);
        assert_eq!(f.list(1, None, 50, 2).unwrap().peers.len(), 2);
        assert_eq!(f.reg.exit(ip("127.0.0.1"), "p", f.at(3)), Ok(1));
        let l = f.list(1, None, 50, 3).unwrap();
        assert_eq!(l.peers.len(), 1);
        assert_eq!(l.peers[0].addr, "127.0.0.2:2".parse().unwrap());
    }

    #[test]
    fn exit_leaves_every_swarm_and_empty_swarms_vanish() {
        let mut f = Fixture::new();
        f.register(
            "10.0.0.1",
            "p",
            1,
            &[file(1, "a", true), file(2, "b", true)],
            0,
        );
        f.register("10.0.0.2", "q", 1, &[file(2, "b", true)], 0);
        assert_eq!(f.reg.exit(ip("10.0.0.1"), "p", f.at(1)), Ok(1));
        assert!(f.list(1, None, 50, 1).is_none());
        assert_eq!(f.ids(2, 1), ["q"]);
        let mut hits = Vec::new();
        f.reg.search("", &mut hits);
        assert_eq!(
            hits.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(f.reg.find_by_name("a"), None);
        assert_eq!(f.reg.exit(ip("10.0.0.1"), "p", f.at(2)), Err(UnknownPeer));
        assert_eq!(
            f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(2)),
            Err(UnknownPeer)
        );
    }

    #[test]
    fn peers_expire_after_the_timeout_unless_heard_from() {
        let mut f = Fixture::new();
        f.register("10.0.0.1", "quiet", 1, &[file(1, "a", true)], 0);
        f.register(
            "10.0.0.2",
            "chatty",
            2,
            &[file(1, "a", true), file(2, "b", true)],
            0,
        );
        // Just before the timeout nothing expires.
        let r = f.reg.sweep(f.at(29_999));
        assert!(r.expired.is_empty());
        assert_eq!(
            f.reg.heartbeat(ip("10.0.0.2"), "chatty", f.at(29_999)),
            Ok(())
        );
        // At the timeout the quiet one goes; a listing skips it even before the sweep.
        assert_eq!(f.ids(1, 30_000), ["chatty"]);
        let r = f.reg.sweep(f.at(30_000));
        assert_eq!(r.expired.len(), 1);
        assert_eq!(r.expired[0].1.as_str(), "quiet");
        assert_eq!(r.entries_removed, 1);
        assert_eq!(
            f.reg.heartbeat(ip("10.0.0.1"), "quiet", f.at(30_001)),
            Err(UnknownPeer)
        );
        // The heartbeat kept the other alive in both swarms until 29_999 + 30_000.
        assert_eq!(f.ids(2, 59_998), ["chatty"]);
        let r = f.reg.sweep(f.at(59_999));
        assert_eq!(
            (r.expired.len(), r.entries_removed, r.swarms_removed),
            (1, 2, 2)
        );
        let mut hits = Vec::new();
        f.reg.search("", &mut hits);
        assert!(hits.is_empty());
        assert_eq!(f.reg.stats(), RegistryStats::default());
    }

    #[test]
    fn heartbeat_after_the_timeout_is_unknown_even_before_a_sweep() {
        let f = Fixture::new();
        f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
        assert_eq!(
            f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(30_000)),
            Err(UnknownPeer)
        );
        assert_eq!(f.reg.stats(), RegistryStats::default());
        // Re-registering brings it back.
        let o = f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 30_001);
        assert!(o.new_peer);
        assert_eq!(f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(30_002)), Ok(()));
    }

    #[test]
    fn register_after_expiry_starts_afresh() {
        let mut f = Fixture::new();
        f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
        let o = f.register("10.0.0.1", "p", 1, &[file(2, "b", true)], 40_000);
        assert!(o.new_peer);
        assert!(f.list(1, None, 50, 40_000).is_none());
        assert_eq!(f.ids(2, 40_000), ["p"]);
    }

    #[test]
    fn max_peers_picks_a_random_subset() {
        let mut f = Fixture::new();
        for i in 0..100u16 {
            f.reg
                .register(
                    ip("10.0.0.1"),
                    &format!("p{i}"),
                    1000 + i,
                    &[file(1, "a", true)],
                    f.at(0),
                )
                .unwrap();
        }
        let mut seen = HashSet::new();
        let mut first_sets = HashSet::new();
        for _ in 0..200 {
            let l = f.list(1, Some(("10.0.0.1", "p0")), 10, 1).unwrap();
            assert_eq!(l.peers.len(), 10);
            let ids: HashSet<String> = l.peers.iter().map(|p| p.peer_id.to_string()).collect();
            assert_eq!(ids.len(), 10, "no duplicates");
            assert!(!ids.contains("p0"), "asker excluded");
            let mut sorted: Vec<_> = ids.iter().cloned().collect();
            sorted.sort();
            first_sets.insert(sorted);
            seen.extend(ids);
        }
        // Every other peer shows up sometimes, and the sets vary.
        assert_eq!(seen.len(), 99);
        assert!(first_sets.len() > 50, "{}", first_sets.len());
        assert_eq!(f.list(1, None, 100, 1).unwrap().peers.len(), 100);
        assert_eq!(f.list(1, None, 0, 1).unwrap().peers.len(), 0);
    }

    #[test]
    fn search_ignores_case_and_sorts() {
        let f = Fixture::new();
        f.register(
            "10.0.0.1",
            "p",
            1,
            &[
                file(1, "Report.pdf", true),
                file(2, "notes.txt", true),
                file(3, "ÉTÉ report", false),
            ],
            0,
        );
        let mut hits = Vec::new();
        f.reg.search("REP", &mut hits);
        assert_eq!(
            hits.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["Report.pdf", "ÉTÉ report"]
        );
        f.reg.search("été", &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (hits[0].seeders, hits[0].leechers, hits[0].size),
            (0, 1, 1003)
        );
        f.reg.search("", &mut hits);
        assert_eq!(hits.len(), 3);
        f.reg.search("zzz", &mut hits);
        assert!(hits.is_empty());
    }

    #[test]
    fn same_name_prefers_the_better_seeded_swarm() {
        let f = Fixture::new();
        f.register("10.0.0.1", "a", 1, &[file(1, "same", false)], 0);
        f.register("10.0.0.2", "b", 1, &[file(2, "same", true)], 0);
        assert_eq!(f.reg.find_by_name("same"), Some(h(2)));
        f.reg.exit(ip("10.0.0.2"), "b", f.at(1)).unwrap();
        assert_eq!(f.reg.find_by_name("same"), Some(h(1)));
    }

    #[test]
    fn many_peers_across_shards_stay_consistent() {
        // Exercise swap_remove bookkeeping: add, remove every third, re-find all.
        let mut f = Fixture::with_shards(3);
        for i in 0..300u16 {
            f.reg
                .register(
                    ip("10.0.0.1"),
                    &format!("p{i}"),
                    i + 1,
                    &[file((i % 5) as u8, "n", i % 2 == 0)],
                    f.at(0),
                )
                .unwrap();
        }
        for i in (0..300u16).step_by(3) {
            f.reg
                .exit(ip("10.0.0.1"), &format!("p{i}"), f.at(1))
                .unwrap();
        }
        for i in 0..300u16 {
            let r = f.reg.heartbeat(ip("10.0.0.1"), &format!("p{i}"), f.at(2));
            assert_eq!(r.is_ok(), i % 3 != 0, "p{i}");
        }
        let total: usize = (0..5).map(|b| f.ids(b, 2).len()).sum();
        assert_eq!(total, 200);
        for b in 0..5 {
            let l = f.list(b, None, 1000, 2).unwrap();
            let seeders = l.peers.iter().filter(|p| p.complete).count() as u32;
            assert_eq!(l.seeders, seeders);
            assert_eq!(l.seeders + l.leechers, l.peers.len() as u32);
        }
    }

    #[test]
    fn announce_shares_swarms_with_json_peers() {
        let mut f = Fixture::new();
        f.register("10.0.0.1", "json", 7001, &[file(1, "a", true)], 0);
        struct Out {
            seeders: u32,
            leechers: u32,
            peers: Vec<SocketAddr>,
        }
        let mut out = Out {
            seeders: 0,
            leechers: 0,
            peers: vec![],
        };
        fn collect(out: &mut Out) -> impl FnOnce(SwarmCounts, Picks<'_>) + '_ {
            move |c, picks| {
                *out = Out {
                    seeders: c.seeders,
                    leechers: c.leechers,
                    peers: picks.map(|p| p.addr).collect(),
                };
            }
        }
        f.announce_with(
            "10.0.0.2:6881",
            "-qB0001-abcdefghijkl",
            1,
            false,
            AnnounceEvent::Update,
            Family::V4,
            1,
            collect(&mut out),
        )
        .unwrap();
        assert_eq!((out.seeders, out.leechers), (1, 1));
        assert_eq!(out.peers.len(), 1);
        assert_eq!(out.peers[0], "10.0.0.1:7001".parse::<SocketAddr>().unwrap());
        assert_eq!(f.ids(1, 1), ["-qB0001-abcdefghijkl", "json"]);
        assert_eq!(
            f.reg.counts(&h(1)),
            SwarmCounts {
                seeders: 1,
                leechers: 1
            }
        );
        // IPv6 listings hold only IPv6 peers.
        f.announce_with(
            "[2001:db8::1]:6881",
            "v6",
            1,
            true,
            AnnounceEvent::Update,
            Family::V6,
            1,
            collect(&mut out),
        )
        .unwrap();
        assert!(out.peers.is_empty());
        assert_eq!(out.seeders, 2);
        // Stopped leaves; a swarm created by announce has no name until registered.
        f.announce_with(
            "10.0.0.2:6881",
            "-qB0001-abcdefghijkl",
            1,
            false,
            AnnounceEvent::Stopped,
            Family::V4,
            2,
            collect(&mut out),
        )
        .unwrap();
        assert_eq!(
            f.reg.counts(&h(1)),
            SwarmCounts {
                seeders: 2,
                leechers: 0
            }
        );
        f.announce_with(
            "10.0.0.3:1",
            "x",
            9,
            false,
            AnnounceEvent::Update,
            Family::V4,
            2,
            collect(&mut out),
        )
        .unwrap();
        assert_eq!(f.list(9, None, 50, 2).unwrap().name, "");
        f.register("10.0.0.4", "namer", 1, &[file(9, "named", true)], 3);
        assert_eq!(f.list(9, None, 50, 3).unwrap().name, "named");
        assert_eq!(f.reg.find_by_name("named"), Some(h(9)));
    }

    #[test]
    fn the_keyed_hash_depends_on_key_and_every_input_byte() {
        let (a, b) = (KeyedHash::new(), KeyedHash::new());
        assert_ne!(a.swarm(&h(1)), b.swarm(&h(1)));
        let me = ip16(ip("10.0.0.1"));
        assert_ne!(a.peer(&me, b"p"), b.peer(&me, b"p"));
        for i in 0..20 {
            let mut x = h(1);
            x.0[i] ^= 1;
            assert_ne!(a.swarm(&x), a.swarm(&h(1)), "byte {i}");
        }
        let long = [b'x'; 40];
        for n in 0..40 {
            assert_ne!(a.peer(&me, &long[..n]), a.peer(&me, &long[..n + 1]));
            let mut other = long;
            other[n] = b'y';
            assert_ne!(a.peer(&me, &long), a.peer(&me, &other), "byte {n}");
        }
        assert_ne!(a.peer(&me, b"p"), a.peer(&ip16(ip("10.0.0.2")), b"p"));
        assert_eq!(ip_from16(&me), ip("10.0.0.1"));
        assert_eq!(ip_from16(&ip16(ip("::1"))), ip("::1"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mut f = Fixture::new();
        f.register("::ffff:10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
        assert_eq!(
            f.list(1, None, 50, 0).unwrap().peers[0].addr,
            "10.0.0.1:1".parse().unwrap()
        );
        assert_eq!(f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(1)), Ok(()));
    }

    #[test]
    fn threads_share_the_registry_without_losing_entries() {
        let t0 = Instant::now();
        let reg = std::sync::Arc::new(Registry::new(T, 8, t0));
        let threads: Vec<_> = (0..4u8)
            .map(|w| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(u64::from(w));
                    let ip: IpAddr = IpAddr::from([10, 0, 0, w]);
                    for i in 0..500u32 {
                        let id = format!("p{i}");
                        let f = [
                            file((i % 7) as u8, "shared", i % 2 == 0),
                            file(100 + w, "mine", true),
                        ];
                        reg.register(ip, &id, 1, &f, t0).unwrap();
                        assert_eq!(reg.heartbeat(ip, &id, t0), Ok(()));
                        reg.announce(
                            SocketAddr::new(ip, 2),
                            PeerId::new(&format!("bt{i}")),
                            &h((i % 7) as u8),
                            false,
                            AnnounceEvent::Update,
                            10,
                            Family::V4,
                            &mut rng,
                            t0,
                            |_, picks| picks.count(),
                        )
                        .unwrap();
                        if i % 5 == 0 {
                            assert_eq!(reg.exit(ip, &id, t0), Ok(1));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Per thread: 400 JSON peers in 2 swarms each, 500 announcers.
        let st = reg.stats();
        assert_eq!(st.registered, 4 * 400);
        assert_eq!(st.entries, 4 * (400 * 2 + 500));
        assert_eq!(st.swarms, 7 + 4);
        // Everything expires together.
        let r = reg.sweep(t0 + T);
        assert_eq!(r.expired.len(), 1600);
        assert_eq!(reg.stats(), RegistryStats::default());
    }

    fn files(range: std::ops::Range<u8>) -> Vec<FileInfo> {
        range.map(|b| file(b, &format!("f{b}"), true)).collect()
    }

    #[test]
    fn the_file_cap_refuses_a_register_and_keeps_earlier_files() {
        let limits = Limits {
            max_files_per_peer: 5,
            max_swarms: 100,
        };
        let mut f = Fixture::with_limits(4, limits);
        let p = ip("10.0.0.1");
        f.reg.register(p, "p", 1, &files(0..3), f.at(0)).unwrap();
        // 3 held + 3 new (one of the four is held already) = 6 > 5.
        let e = f
            .reg
            .register(p, "p", 2, &files(2..6), f.at(1))
            .unwrap_err();
        assert_eq!(
            e,
            RegisterError::TooManyFiles {
                limit: 5,
                have: 3,
                adding: 3
            }
        );
        assert!(e.to_string().contains("at most 5 files"), "{e}");
        for b in 0..3 {
            assert_eq!(f.ids(b, 2), ["p"]);
        }
        assert!(f.list(3, None, 50, 2).is_none());
        // Refused means nothing changed, not even the port.
        assert_eq!(f.list(0, None, 50, 2).unwrap().peers[0].addr.port(), 1);
        assert_eq!(f.swarms(), 3);
        // Up to the cap is fine; a file mentioned twice counts once; files
        // already held do not count again.
        let mut up_to = files(0..5);
        up_to.push(file(4, "f4", false));
        f.reg.register(p, "p", 1, &up_to, f.at(3)).unwrap();
        assert_eq!(f.list(4, None, 50, 3).unwrap().leechers, 1);
        f.reg.register(p, "p", 1, &files(0..5), f.at(4)).unwrap();
        assert!(matches!(
            f.reg.register(p, "p", 1, &files(5..6), f.at(5)),
            Err(RegisterError::TooManyFiles { have: 5, .. })
        ));
        // The cap is per peer: another peer id may register its own files.
        f.reg.register(p, "q", 1, &files(5..10), f.at(5)).unwrap();
        // After EXIT the peer starts from nothing.
        f.reg.exit(p, "p", f.at(6)).unwrap();
        f.reg.register(p, "p", 1, &files(20..25), f.at(7)).unwrap();
        assert_eq!(f.swarms(), 10);
    }

    #[test]
    fn a_file_left_through_bep15_stopped_is_not_counted_twice() {
        let limits = Limits {
            max_files_per_peer: 2,
            max_swarms: 100,
        };
        let mut f = Fixture::with_limits(2, limits);
        let p = ip("10.0.0.1");
        f.reg.register(p, "p", 1, &files(1..3), f.at(0)).unwrap();
        f.announce("10.0.0.1:1", "p", 1, AnnounceEvent::Stopped, 1)
            .unwrap();
        assert!(f.list(1, None, 50, 1).is_none());
        f.reg.register(p, "p", 1, &files(1..3), f.at(2)).unwrap();
        assert_eq!(f.ids(1, 2), ["p"]);
        assert_eq!(f.list(1, None, 50, 2).unwrap().peers.len(), 1);
        assert_eq!(f.swarms(), 2);
    }

    #[test]
    fn a_bep15_announce_takes_over_one_swarm_entry_of_a_json_peer() {
        let mut f = Fixture::new();
        let p = ip("10.0.0.1");
        f.reg.register(p, "p", 1, &files(1..3), f.at(0)).unwrap();
        f.announce("10.0.0.1:7", "p", 1, AnnounceEvent::Update, 1_000)
            .unwrap();
        assert_eq!(f.list(1, None, 50, 1_000).unwrap().peers[0].addr.port(), 7);
        // The heartbeat refreshes the JSON entries only; the announced one
        // expires 30 s after its announce.
        f.reg.heartbeat(p, "p", f.at(20_000)).unwrap();
        assert!(f.ids(1, 31_000).is_empty());
        assert_eq!(f.ids(2, 31_000), ["p"]);
        // A REGISTER naming the file puts the entry back under the record.
        f.reg
            .register(p, "p", 9, &files(1..2), f.at(32_000))
            .unwrap();
        f.reg.heartbeat(p, "p", f.at(60_000)).unwrap();
        assert_eq!(f.list(1, None, 50, 61_000).unwrap().peers[0].addr.port(), 9);
        assert_eq!(f.list(2, None, 50, 61_000).unwrap().peers[0].addr.port(), 9);
        assert_eq!(f.reg.exit(p, "p", f.at(61_000)), Ok(9));
        assert_eq!(f.swarms(), 0);
    }

    #[test]
    fn the_swarm_cap_refuses_new_swarms_only() {
        let limits = Limits {
            max_files_per_peer: 100,
            max_swarms: 3,
        };
        let mut f = Fixture::with_limits(4, limits);
        f.reg
            .register(ip("10.0.0.1"), "p", 1, &files(1..3), f.at(0))
            .unwrap();
        // Would create swarms 3 and 4: one too many. Nothing happens at all.
        let e = f
            .reg
            .register(ip("10.0.0.2"), "q", 1, &files(2..5), f.at(1))
            .unwrap_err();
        assert_eq!(e, RegisterError::Full(TrackerFull { limit: 3 }));
        assert!(e.to_string().contains("limit of 3 swarms"), "{e}");
        assert_eq!(
            f.reg.heartbeat(ip("10.0.0.2"), "q", f.at(1)),
            Err(UnknownPeer)
        );
        assert_eq!(f.ids(2, 1), ["p"]);
        assert!(f.list(3, None, 50, 1).is_none());
        assert_eq!(f.swarms(), 2);
        // Joining existing swarms and creating one that fits work.
        f.reg
            .register(ip("10.0.0.2"), "q", 1, &files(1..4), f.at(2))
            .unwrap();
        assert_eq!(f.swarms(), 3);
        f.reg
            .register(ip("10.0.0.3"), "r", 1, &files(1..4), f.at(2))
            .unwrap();
        // BEP 15 cannot start a fourth swarm but can join the three.
        assert_eq!(
            f.announce("10.0.0.4:1", "bt", 9, AnnounceEvent::Update, 3),
            Err(TrackerFull { limit: 3 })
        );
        assert!(f.list(9, None, 50, 3).is_none());
        f.announce("10.0.0.4:1", "bt", 1, AnnounceEvent::Update, 3)
            .unwrap();
        // Swarms that go away free their place: EXIT, stopped, expiry.
        f.announce("10.0.0.4:1", "bt", 1, AnnounceEvent::Stopped, 4)
            .unwrap();
        f.reg.exit(ip("10.0.0.1"), "p", f.at(4)).unwrap();
        f.reg.exit(ip("10.0.0.2"), "q", f.at(4)).unwrap();
        assert_eq!(f.swarms(), 3);
        f.reg.exit(ip("10.0.0.3"), "r", f.at(4)).unwrap();
        assert_eq!(f.swarms(), 0);
        f.announce("10.0.0.4:1", "bt", 9, AnnounceEvent::Update, 5)
            .unwrap();
        f.reg
            .register(ip("10.0.0.1"), "p", 1, &files(1..3), f.at(5))
            .unwrap();
        assert_eq!(f.swarms(), 3);
        f.reg.sweep(f.at(5 + 30_000));
        assert_eq!(f.swarms(), 0);
        f.reg
            .register(ip("10.0.0.1"), "p", 1, &files(1..4), f.at(40_000))
            .unwrap();
        assert_eq!(f.swarms(), 3);
    }

    #[test]
    fn search_keeps_the_first_hits_by_name() {
        let f = Fixture::new();
        // 2,600 swarms in one peer's REGISTERs, named in an order unlike the hashes.
        let n = 2_600u32;
        let all: Vec<FileInfo> = (0..n)
            .map(|i| {
                let mut hash = [0u8; 20];
                hash[..4].copy_from_slice(&i.to_le_bytes());
                FileInfo {
                    info_hash: InfoHash(hash),
                    name: format!("n{:05}", (i * 7919) % n),
                    size: 1,
                    complete: true,
                }
            })
            .collect();
        for chunk in all.chunks(500) {
            f.reg
                .register(ip("10.0.0.1"), "p", 1, chunk, f.at(0))
                .unwrap();
        }
        let mut hits = Vec::new();
        f.reg.search("N0", &mut hits);
        assert_eq!(hits.len(), MAX_SEARCH_HITS);
        for (i, hit) in hits.iter().enumerate() {
            assert_eq!(hit.name, format!("n{i:05}"));
        }
        f.reg.search("n025", &mut hits);
        assert_eq!(hits.len(), 100);
    }
}
