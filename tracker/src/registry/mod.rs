//! The swarm registry: which peer is in which swarm, and since when.
//!
//! A peer is identified by (source IP, peer_id). Its entry in a swarm holds
//! everything a reply needs (address, id, complete) plus the time it was last
//! heard from, so a reply is built from one swarm alone. Peers that registered
//! through the JSON protocol also have a *peer record* listing their swarms, so
//! that `HEARTBEAT` and `EXIT`, which name no file, can find them. Such a
//! peer's port and last-heard time live in one shared cell (`Live`) that its
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
//!
//! The files, each importing only those listed before it:
//!
//! - `limits`: the caps ([`Limits`], [`MAX_SWARMS`], …) and the errors of a
//!   refused request.
//! - `identity`: IP addresses as 16 bytes, [`Family`], and the keyed hashes
//!   that place swarms and peers in tables and shards.
//! - `swarm`: the swarm table — shards of swarms by info hash with a name
//!   index, each swarm's peer entries, the shared `Live` cell.
//! - `picks`: which peers of a swarm a reply lists ([`Picks`]).
//! - `records`: the peer table — one record per JSON peer, its swarms.
//! - `shards`: the [`Registry`] itself — both tables' shards, hash keys,
//!   epoch, swarm counter; locking, clock arithmetic, reserving under the cap,
//!   [`RegistryStats`].
//! - `json_peers`: `REGISTER`, `HEARTBEAT`, `EXIT`.
//! - `search`: swarms by exact name (`REQUEST` by name) and `SEARCH`.
//! - `listing`: `REQUEST` — a swarm and some of its peers ([`PeerList`]).
//! - `bep15`: BEP 15 and HTTP `announce`, and `scrape`.
//! - `expiry`: sweeping out peers past their timeout and empty swarms.
//! - `live`: for `STATS` and the live view, off the hot path: who sent a
//!   `STATS`, whether a peer's swarms have a leecher, a copy of one swarm.
//!
//! The small functions on the announce path (hashing, IP conversion, expiry
//! checks, shard lookups) are `#[inline]`: spread over these files they land
//! in other codegen units than their callers, and without the hint a BEP 15
//! announce cost about 10% more than when the registry was one file.

mod bep15;
mod expiry;
mod identity;
mod json_peers;
mod limits;
mod listing;
mod live;
mod picks;
mod records;
mod search;
mod shards;
mod swarm;

pub use bep15::{AnnounceEvent, AnnounceProtocol, SwarmCounts};
pub use expiry::SweepReport;
pub use identity::Family;
/// The keyed info-hash hash, also used by the catalogue's counts.
pub(crate) use identity::KeyedHash;
pub use json_peers::{RegisterOutcome, SwarmChange, UnknownPeer};
pub use limits::{
    Limits, RegisterError, TrackerFull, MAX_FILES_PER_PEER, MAX_PEER_TIMEOUT, MAX_SWARMS,
};
pub use listing::{ListedPeer, PeerList};
pub use live::{SnapshotPeer, SwarmSnapshot, MAX_SNAPSHOT_PEERS, STATS_SCAN_FILES};
pub use picks::{Picks, SwarmHeader};
pub use search::{contains_ignore_case, SearchHit, MAX_SEARCH_HITS};
pub use shards::{Registry, RegistryStats};
