//! One announce or scrape, whatever carried it: a BEP 15 datagram (the UDP
//! workers' [`Handler`](crate::handler::Handler)) or an HTTP `GET
//! /announce` and `GET /scrape` (the web server's threads). Both go to the
//! registry the same way and tell the catalogue the same events, so a peer
//! of either protocol appears in the replies of the other and of the JSON
//! protocol, and is the same peer (source IP and peer id) in all three.

use std::net::SocketAddr;
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::Event;

use crate::catalogue::{EventKind, Recorder};
use crate::peer_id::peer_id_from_bytes;
use crate::registry::{
    AnnounceEvent, AnnounceProtocol, Family, Picks, Registry, SwarmCounts, TrackerFull,
};

/// What one announce says, decoded by its protocol.
#[derive(Debug, Clone, Copy)]
pub struct Announce<'a> {
    /// The request's source IP with the port announced (never the address
    /// the client claims).
    pub addr: SocketAddr,
    pub peer_id: &'a [u8; 20],
    pub info_hash: InfoHash,
    /// 0: a seeder.
    pub left: u64,
    pub event: Event,
    /// Peers to list at most: the protocol's default applied and capped at
    /// `--max-peers` by the caller.
    pub want: usize,
    pub protocol: AnnounceProtocol,
}

/// Joins, refreshes or (on `stopped`) leaves the swarm, and calls `visit`
/// with its counts and up to `want` other peers of `family`, under the
/// swarm's shard lock; then tells the catalogue, if there is one: `started`
/// is a join, `stopped` a leave, `completed` one download (a resent
/// `completed`, whose reply was lost, is not counted again).
#[inline]
pub fn announce<R>(
    registry: &Registry,
    recorder: Option<&Recorder>,
    a: &Announce<'_>,
    family: Family,
    rng: &mut fastrand::Rng,
    now: Instant,
    visit: impl FnOnce(SwarmCounts, Picks<'_>) -> R,
) -> Result<R, TrackerFull> {
    let event = if a.event == Event::Stopped {
        AnnounceEvent::Stopped
    } else {
        AnnounceEvent::Update
    };
    // Only the events the catalogue logs cost a peer id copy.
    let logged = match (recorder, a.event) {
        (None, _) | (_, Event::None) => None,
        (Some(r), ev) => Some((r, ev, peer_id_from_bytes(a.peer_id))),
    };
    let mut became_complete = false;
    let r = registry.announce(
        a.addr,
        peer_id_from_bytes(a.peer_id),
        &a.info_hash,
        a.left == 0,
        event,
        a.protocol,
        a.want,
        family,
        rng,
        now,
        &mut became_complete,
        visit,
    )?;
    if let Some((rec, ev, id)) = logged {
        match ev {
            Event::Completed if became_complete => rec.completed(a.info_hash, a.addr, id),
            Event::Completed | Event::None => {}
            Event::Started => rec.event(EventKind::Register, a.info_hash, a.addr, id),
            Event::Stopped => rec.event(EventKind::Exit, a.info_hash, a.addr, id),
        }
    }
    Ok(r)
}

/// A scrape of one swarm: seeders and leechers from the registry (0 when
/// unknown), and the downloads completed from the catalogue's counts in
/// memory (0 without a catalogue).
#[inline]
pub fn scrape(
    registry: &Registry,
    recorder: Option<&Recorder>,
    info_hash: &InfoHash,
) -> (SwarmCounts, u64) {
    let completed = recorder.map_or(0, |r| r.completed_count(info_hash));
    (registry.counts(info_hash), completed)
}
