//! What the live view and `STATS` need from the registry, off the hot path:
//! who sent a `STATS` (the registered port of an (IP, peer_id) and which of
//! the named files it registered), whether a peer's swarms have a transfer
//! going (so `OK` asks it for `STATS`), and a copy of one swarm for display
//! ([`SwarmSnapshot`]). Nothing here changes the registry.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;

use super::identity::{ip16, ip_from16, peer_hash};
use super::json_peers::UnknownPeer;
use super::records::FileList;
use super::shards::Registry;
use crate::peer_id::PeerId;

/// A peer registered with more files than this is asked for `STATS` without
/// looking at its swarms (it sends them only while something moves).
pub const STATS_SCAN_FILES: usize = 64;
/// A [`SwarmSnapshot`] lists at most this many peers (the live view cannot
/// show more); `truncated` says when there were more.
pub const MAX_SNAPSHOT_PEERS: usize = 1000;

/// One peer of a [`SwarmSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPeer {
    /// Where it accepts connections: the source IP of its datagrams and its
    /// registered (or announced) port.
    pub addr: SocketAddr,
    pub peer_id: String,
    pub complete: bool,
    /// Registered through the JSON protocol (`REGISTER`); false for a BEP 15
    /// or HTTP announcer.
    pub json: bool,
    /// Announced over HTTP (false for JSON peers and BEP 15 announcers).
    pub http: bool,
}

/// A copy of one swarm, taken under its shard lock (held only to copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSnapshot {
    pub info_hash: InfoHash,
    /// Empty while the swarm is known only from BEP 15 announces.
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
    /// Live peers (not past their timeout), at most [`MAX_SNAPSHOT_PEERS`].
    pub peers: Vec<SnapshotPeer>,
    /// True when the swarm had more peers than `peers` lists.
    pub truncated: bool,
}

impl Registry {
    /// The registered port of the JSON peer (`ip`, `peer_id`), for a `STATS`;
    /// `registered[i]` is set to whether it registered `files[i]`. Refreshes
    /// nothing: `STATS` is for display and keeps no peer alive.
    pub fn stats_sender(
        &self,
        ip: IpAddr,
        peer_id: &str,
        files: &[InfoHash],
        now: Instant,
        registered: &mut Vec<bool>,
    ) -> Result<u16, UnknownPeer> {
        let now_ms = self.ms(now);
        let ip = ip16(ip);
        let id = PeerId::new(peer_id);
        let phash = peer_hash(&self.hasher, &ip, &id);
        let shard = self.peer_shard(phash);
        let Some(pos) = shard.records.position(phash, |r| r.ip == ip && r.id == id) else {
            return Err(UnknownPeer);
        };
        let record = &shard.records.items()[pos];
        if self.expired(record.live.last_seen.load(Ordering::Relaxed), now_ms) {
            return Err(UnknownPeer);
        }
        registered.clear();
        registered.extend(
            files
                .iter()
                .map(|h| record.files.contains(h, self.swarm_hash(h))),
        );
        Ok(record.live.port.load(Ordering::Relaxed))
    }

    /// Whether the tracker should ask the JSON peer (`ip`, `peer_id`) for
    /// `STATS`: one of its swarms has a leecher (a transfer may be going).
    /// Looks at up to [`STATS_SCAN_FILES`] swarms, one shard lock at a time
    /// after the record's (the registry's lock order); a peer with more
    /// files is simply asked. False for a peer not registered.
    pub fn wants_stats(&self, ip: IpAddr, peer_id: &str) -> bool {
        let ip = ip16(ip);
        let id = PeerId::new(peer_id);
        let phash = peer_hash(&self.hasher, &ip, &id);
        let shard = self.peer_shard(phash);
        let Some(pos) = shard.records.position(phash, |r| r.ip == ip && r.id == id) else {
            return false;
        };
        let files = &shard.records.items()[pos].files;
        if files.len() > STATS_SCAN_FILES {
            return true;
        }
        self.any_leecher(files)
    }

    fn any_leecher(&self, files: &FileList) -> bool {
        files.iter().any(|h| {
            let shash = self.swarm_hash(h);
            self.swarm_shard(shash)
                .find(shash, h)
                .is_some_and(|s| s.leechers() > 0)
        })
    }

    /// A copy of the swarm `info_hash` for display: its header and up to
    /// [`MAX_SNAPSHOT_PEERS`] live peers. `None` when no peer is in it.
    pub fn snapshot(&self, info_hash: &InfoHash, now: Instant) -> Option<SwarmSnapshot> {
        let now_ms = self.ms(now);
        let shash = self.swarm_hash(info_hash);
        let shard = self.swarm_shard(shash);
        let swarm = shard.find(shash, info_hash)?;
        let mut peers = Vec::with_capacity(swarm.peers.len().min(MAX_SNAPSHOT_PEERS));
        let mut truncated = false;
        for p in swarm.peers.items() {
            if self.expired(p.last_seen(), now_ms) {
                continue;
            }
            if peers.len() == MAX_SNAPSHOT_PEERS {
                truncated = true;
                break;
            }
            peers.push(SnapshotPeer {
                addr: SocketAddr::new(ip_from16(&p.ip), p.port()),
                peer_id: p.id.as_str().to_string(),
                complete: p.complete,
                json: p.shared.is_some(),
                http: p.shared.is_none() && p.http,
            });
        }
        Some(SwarmSnapshot {
            info_hash: swarm.info_hash,
            name: swarm.name.to_string(),
            size: swarm.size,
            seeders: swarm.seeders,
            leechers: swarm.leechers(),
            peers,
            truncated,
        })
    }
}
