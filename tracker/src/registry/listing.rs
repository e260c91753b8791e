//! `REQUEST`: a swarm (by info hash or name) and some of its peers, visited
//! under the shard lock or copied into a reusable [`PeerList`].

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::FileRef;

use super::identity::{ip16, peer_hash, Family};
use super::picks::{Picks, SwarmHeader};
use super::shards::Registry;
use crate::peer_id::PeerId;

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

impl Registry {
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
        let picks = Picks::new(swarm, skip, max, family, rng, self.ms(now), self.timeout_ms);
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
}
