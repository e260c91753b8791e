//! BEP 15 and HTTP announces over the registry: an `announce` joins,
//! refreshes or leaves one swarm as a peer entry without a record (it names
//! its swarm every time), and `scrape` reads a swarm's counts. Both
//! protocols announce the same way; the entry only remembers which one it
//! was, for the live view.

use std::net::SocketAddr;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;

use super::identity::{ip16, peer_hash, Family};
use super::limits::TrackerFull;
use super::picks::Picks;
use super::shards::Registry;
use super::swarm::SwarmPeer;
use crate::peer_id::PeerId;

/// A BEP 15 announce event, as far as the registry cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// `none`, `started` or `completed`: join or refresh.
    Update,
    /// `stopped`: leave the swarm.
    Stopped,
}

/// The tracker protocol that carried an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceProtocol {
    /// A BEP 15 datagram.
    Bep15,
    /// An HTTP `GET /announce` (BEP 3).
    Http,
}

/// Seeders, leechers and downloads-completed of one swarm (BEP 15 scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    pub seeders: u32,
    pub leechers: u32,
}

impl Registry {
    /// BEP 15 or HTTP `announce` (as `protocol` says): joins, refreshes or (on `stopped`) leaves one swarm,
    /// setting `became_complete` when the peer is now complete and was not
    /// (a new entry that is complete counts too: it cannot be told apart),
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
        protocol: AnnounceProtocol,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now: Instant,
        became_complete: &mut bool,
        visit: impl FnOnce(SwarmCounts, Picks<'_>) -> R,
    ) -> Result<R, TrackerFull> {
        *became_complete = false;
        let http = protocol == AnnounceProtocol::Http;
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
                p.http = http;
                *became_complete = complete && !p.complete;
                swarm.set_complete(i, complete);
                i
            }
            None => {
                *became_complete = complete;
                swarm.insert(
                    &self.hasher,
                    phash,
                    SwarmPeer {
                        ip,
                        id: peer_id.clone(),
                        port: addr.port(),
                        last_seen: now_ms,
                        complete,
                        http,
                        shared: None,
                    },
                )
            }
        };
        let swarm = &*swarm;
        let counts = SwarmCounts {
            seeders: swarm.seeders,
            leechers: swarm.leechers(),
        };
        Ok(visit(
            counts,
            Picks::new(swarm, Some(me), max, family, rng, now_ms, self.timeout_ms),
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
}
