//! Which peers of one swarm a reply lists: a random walk over the swarm's
//! entries that leaves out the asker, peers of the other address family and
//! peers past their timeout, borrowed from the registry while the swarm's
//! shard is locked ([`Picks`], [`SwarmHeader`]).

use std::net::SocketAddr;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::PeerView;

use super::identity::{ip_from16, Family};
use super::swarm::{expired, Swarm, SwarmPeer};

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
/// [`Registry::visit_peers`](crate::registry::Registry::visit_peers)).
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
    /// No peers: what a BEP 15 `stopped` gets.
    pub(super) fn none(timeout_ms: u32) -> Picks<'static> {
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
    /// Up to `max` peers of `swarm`, not the one at `skip`, only of `family`
    /// and none past `timeout_ms` at `now_ms`.
    #[inline]
    pub(super) fn new(
        swarm: &'a Swarm,
        skip: Option<usize>,
        max: usize,
        family: Family,
        rng: &mut fastrand::Rng,
        now_ms: u32,
        timeout_ms: u32,
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
            timeout_ms,
        }
    }

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

#[inline]
fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
