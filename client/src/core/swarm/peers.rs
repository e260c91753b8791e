//! The peers of one torrent: who is connected and what we know of each
//! ([`Peer`]), who may join (bans, the duplicate rule, the per-address and
//! total limits, making room by dropping the least useful peer), and who
//! misbehaved ([`Bans`], [`Strikes`]), all in one [`PeerTable`]. Every
//! table here is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use minitorrent_common::wire::{pex_flags, Bitfield, PexPeer};

use super::pex::{PexIn, PexOut};
use crate::core::msg::CloseReason;
use crate::core::peer_state::MAX_ALLOWED_FAST;
use crate::core::picker::ConnId;

/// Banned addresses and banned peer ids remembered at most (each); the
/// oldest ban is forgotten first.
pub const MAX_BANS: usize = 1024;
/// Peers whose bad pieces are counted at most; the oldest count is
/// forgotten first (a forgotten peer starts again from zero strikes).
pub const MAX_STRIKE_ENTRIES: usize = 1024;
/// Connections of one torrent from one IP address at once. Loopback
/// addresses are exempt: a classroom demo runs every peer on 127.0.0.1.
pub const MAX_CONNS_PER_IP: usize = 8;
/// A peer connected for less than this is never dropped to make room: it
/// may not have said what it wants yet.
pub const DISPLACE_GRACE: Duration = Duration::from_secs(2);

/// A peer's stable key for the picker's "sent this piece bad" memory: a
/// hash of its peer id (never of an address, whose port may be ephemeral).
pub fn peer_key(peer_id: &[u8; 20]) -> u64 {
    // FNV-1a: stable across runs, so tests are deterministic.
    peer_id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the swarm knows of one connected peer.
#[derive(Debug)]
pub struct Peer {
    /// The connection's remote address.
    pub addr: SocketAddr,
    /// Our end of the connection (for `--trace`).
    pub local: SocketAddr,
    /// Where the peer accepts connections: the address we dialled, or for
    /// an inbound peer its IP with the port from its extension handshake.
    pub listen: Option<SocketAddr>,
    pub peer_id: [u8; 20],
    pub key: u64,
    pub outbound: bool,
    pub bits: Option<Bitfield>,
    /// Pieces this peer has that we lack.
    pub missing: u32,
    pub am_interested: bool,
    /// Since when `am_interested` is no longer true of this peer's pieces.
    pub interest_lost_at: Option<Instant>,
    pub peer_interested: bool,
    pub unchoked_us: bool,
    pub assigned: HashSet<u32>,
    pub ut_metadata: bool,
    pub metadata_size: Option<u64>,
    pub connected_at: Instant,
    /// The last time it told us anything beyond keep-alives.
    pub last_active: Instant,
    /// Verified pieces it sent us.
    pub pieces_from: u32,
    /// Dropped for sending corrupt data: its connection is closing, and
    /// what it still sends is only cleaned up (no new piece, no strike).
    pub dropped: bool,
    /// How fast its pieces arrive (on a seed in initial seeding: how fast
    /// it gets the pieces it is shown) and how far it is: size how many we
    /// ask of it (show it) at once.
    pub rate: RateMeter,
    pub rtt: Option<Duration>,
    /// Its connection greeted it without our BITFIELD (initial seeding):
    /// it knows only the pieces in `shown`, until it is shown everything.
    pub hidden: bool,
    /// Pieces shown to it (HAVE) that it does not have yet; at most the
    /// initial seeding's window.
    pub shown: Vec<u32>,
    /// It speaks `ut_pex`: what it was told of the other peers, and when
    /// it hears next.
    pub pex_out: Option<PexOut>,
    /// How many `ut_pex` messages of its own we still take.
    pub pex_in: PexIn,
    /// Pieces it lets us fetch while it chokes us (BEP 6 ALLOWED FAST), at
    /// most [`MAX_ALLOWED_FAST`].
    pub allowed_fast: Vec<u32>,
    /// Pieces it rejected a request for (BEP 6) since it last unchoked
    /// us: not assigned to it again until then, or until it holds no
    /// other piece (at most [`MAX_REJECTED`], the oldest forgotten).
    pub rejected: Vec<u32>,
}

/// Rejected pieces remembered per peer at most.
pub const MAX_REJECTED: usize = 64;

/// The rate at which a peer's pieces arrive, measured over windows of at
/// least [`RateMeter::WINDOW`] (or [`RateMeter::FAST_WINDOW`] once
/// [`RateMeter::FAST_BYTES`] arrived in it: a fast peer is measured
/// before it has moved much of the file) and smoothed; `None` until a
/// window is measured.
#[derive(Debug, Clone, Copy)]
pub struct RateMeter {
    start: Option<Instant>,
    bytes: u64,
    est: Option<f64>,
}

impl RateMeter {
    pub const WINDOW: Duration = Duration::from_millis(200);
    pub const FAST_WINDOW: Duration = Duration::from_millis(20);
    pub const FAST_BYTES: u64 = 4 << 20;

    pub fn new() -> RateMeter {
        RateMeter {
            start: None,
            bytes: 0,
            est: None,
        }
    }

    /// Some piece data is wanted from the peer and may be on its way: the
    /// window starts now, unless it is already running.
    pub fn arm(&mut self, now: Instant) {
        self.start.get_or_insert(now);
    }

    /// `bytes` of piece data arrived at `now`.
    pub fn add(&mut self, bytes: u64, now: Instant) {
        let start = *self.start.get_or_insert(now);
        self.bytes += bytes;
        let dt = now.saturating_duration_since(start);
        if dt >= Self::WINDOW || (dt >= Self::FAST_WINDOW && self.bytes >= Self::FAST_BYTES) {
            let sample = self.bytes as f64 / dt.as_secs_f64();
            // Half the old estimate, half the new window: a peer that
            // speeds up is followed within a few windows.
            self.est = Some(self.est.map_or(sample, |e| (e + sample) / 2.0));
            self.start = Some(now);
            self.bytes = 0;
        }
    }

    /// Nothing is wanted from the peer any more: a pause is not slowness.
    pub fn idle(&mut self) {
        self.start = None;
        self.bytes = 0;
    }

    /// Whether piece data is wanted from the peer now: [`RateMeter::arm`]
    /// or [`RateMeter::idle`].
    pub fn waiting(&mut self, yes: bool, now: Instant) {
        if yes {
            self.arm(now);
        } else {
            self.idle();
        }
    }

    /// Bytes per second, once measured.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.est
    }
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter::new()
    }
}

impl Peer {
    pub fn new(
        addr: SocketAddr,
        local: SocketAddr,
        peer_id: [u8; 20],
        outbound: bool,
        now: Instant,
    ) -> Peer {
        Peer {
            addr,
            local,
            listen: outbound.then_some(addr),
            peer_id,
            key: peer_key(&peer_id),
            outbound,
            bits: None,
            missing: 0,
            am_interested: false,
            interest_lost_at: None,
            peer_interested: false,
            unchoked_us: false,
            assigned: HashSet::new(),
            ut_metadata: false,
            metadata_size: None,
            connected_at: now,
            last_active: now,
            pieces_from: 0,
            dropped: false,
            rate: RateMeter::new(),
            rtt: None,
            hidden: false,
            shown: Vec::new(),
            pex_out: None,
            pex_in: PexIn::new(now),
            allowed_fast: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// ALLOWED FAST from the peer: kept when new, up to
    /// [`MAX_ALLOWED_FAST`].
    pub fn allow_fast(&mut self, index: u32) {
        if self.allowed_fast.len() < MAX_ALLOWED_FAST && !self.allowed_fast.contains(&index) {
            self.allowed_fast.push(index);
        }
    }

    /// The peer rejected our request for piece `index`.
    pub fn rejected(&mut self, index: u32) {
        self.assigned.remove(&index);
        if !self.unchoked_us {
            // Allowed fast, then refused: not asked for again while choked.
            self.allowed_fast.retain(|&i| i != index);
        }
        if !self.rejected.contains(&index) {
            if self.rejected.len() >= MAX_REJECTED {
                self.rejected.remove(0);
            }
            self.rejected.push(index);
        }
    }

    /// Whether piece `index` may be assigned to the peer now: it has it,
    /// has not just rejected it, and either unchoked us or allows it fast.
    pub fn may_fetch(&self, index: usize) -> bool {
        self.has(index)
            && !self.rejected.contains(&(index as u32))
            && (self.unchoked_us || self.allowed_fast.contains(&(index as u32)))
    }

    pub fn has(&self, i: usize) -> bool {
        self.bits.as_ref().is_some_and(|b| b.get(i))
    }

    pub fn is_seeder(&self) -> bool {
        self.bits.as_ref().is_some_and(|b| b.all())
    }

    /// How the peer is named in logs and summaries: its listen address when
    /// known, else the connection's remote address.
    pub fn name(&self) -> String {
        self.listen.unwrap_or(self.addr).to_string()
    }

    /// Interest follows what the peer has that we lack (`downloading`: we
    /// still need pieces). It starts at once, and ends at once when we need
    /// nothing more; when it ends because we caught up with a leecher, only
    /// after `INTEREST_LINGER` without a new piece from it (see
    /// [`PeerTable::expire_interest`]). Returns what to tell the peer.
    pub fn update_interest(&mut self, downloading: bool, now: Instant) -> Option<bool> {
        if downloading && self.missing > 0 {
            self.interest_lost_at = None;
            if !self.am_interested {
                self.am_interested = true;
                return Some(true);
            }
        } else if self.am_interested {
            if downloading {
                self.interest_lost_at.get_or_insert(now);
            } else {
                self.am_interested = false;
                self.interest_lost_at = None;
                return Some(false);
            }
        }
        None
    }

    /// Nothing flows either way and nothing is about to: the peer we drop
    /// first when room is needed, or whose place a dial may take. Before
    /// the torrent is live (`live` false), a peer that offers the metadata
    /// or told us its pieces may be the one we need, and counts as useful.
    pub fn is_idle(&self, live: bool, now: Instant) -> bool {
        self.pieces_from == 0
            && !self.am_interested
            && !self.peer_interested
            && self.assigned.is_empty()
            && (live || (!self.ut_metadata && self.bits.is_none()))
            && now.saturating_duration_since(self.connected_at) >= DISPLACE_GRACE
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn the_rate_is_measured_over_a_window_and_smoothed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = RateMeter::new();
        r.arm(t0);
        r.add(100_000, t0 + ms(100));
        assert_eq!(r.bytes_per_sec(), None, "less than a window");
        r.add(100_000, t0 + ms(200));
        assert_eq!(r.bytes_per_sec(), Some(1e6));
        // The next window at 3 MB/s: the estimate moves half way.
        r.add(600_000, t0 + ms(400));
        assert_eq!(r.bytes_per_sec(), Some(2e6));
        // A pause with nothing asked is not slowness.
        r.idle();
        r.arm(t0 + ms(10_000));
        r.add(400_000, t0 + ms(10_200));
        assert_eq!(r.bytes_per_sec(), Some(2e6));
        // A fast peer is measured after 20 ms once 4 MiB arrived.
        let mut f = RateMeter::new();
        f.arm(t0);
        f.add(8 << 20, t0 + ms(10));
        assert_eq!(f.bytes_per_sec(), None);
        f.add(8 << 20, t0 + ms(20));
        assert_eq!(f.bytes_per_sec(), Some((16 << 20) as f64 / 0.02));
    }
}

/// A set that keeps at most `cap` entries, forgetting the oldest first.
#[derive(Debug)]
pub struct BoundedSet<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
    cap: usize,
}

impl<T: Hash + Eq + Clone> BoundedSet<T> {
    pub fn new(cap: usize) -> BoundedSet<T> {
        BoundedSet {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }
    pub fn insert(&mut self, v: T) {
        if !self.set.insert(v.clone()) {
            return;
        }
        self.order.push_back(v);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
    pub fn contains(&self, v: &T) -> bool {
        self.set.contains(v)
    }
    pub fn len(&self) -> usize {
        self.set.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Banned peers, by every name that identifies them: their listen address
/// (never an ephemeral source port) and their peer id. A peer that changes
/// one of the two is still refused by the other; a peer that changes both
/// is a new peer (an IP ban would lock out every other peer on the same
/// host: all of a localhost demo, a whole NATed classroom).
#[derive(Debug)]
pub struct Bans {
    addrs: BoundedSet<SocketAddr>,
    ids: BoundedSet<[u8; 20]>,
    /// The same ids as the tracker writes them (lossy text for ids that are
    /// not UTF-8), to check the peers it lists.
    id_texts: BoundedSet<String>,
}

impl Default for Bans {
    fn default() -> Bans {
        Bans {
            addrs: BoundedSet::new(MAX_BANS),
            ids: BoundedSet::new(MAX_BANS),
            id_texts: BoundedSet::new(MAX_BANS),
        }
    }
}

impl Bans {
    pub fn ban(&mut self, listen: Option<SocketAddr>, peer_id: &[u8; 20]) {
        if let Some(a) = listen {
            self.addrs.insert(a);
        }
        self.ids.insert(*peer_id);
        self.id_texts
            .insert(crate::core::shared::peer_id_str(peer_id));
    }
    pub fn is_banned(&self, listen: Option<SocketAddr>, peer_id: Option<&[u8; 20]>) -> bool {
        listen.is_some_and(|a| self.addrs.contains(&a))
            || peer_id.is_some_and(|p| self.ids.contains(p))
    }
    /// A peer the tracker lists: its address, and its id as text.
    pub fn is_listed_banned(&self, addr: SocketAddr, peer_id: Option<&str>) -> bool {
        self.addrs.contains(&addr)
            || peer_id.is_some_and(|id| self.id_texts.contains(&id.to_string()))
    }
    /// Entries held (addresses + ids), for tests of the bound.
    pub fn len(&self) -> usize {
        self.addrs.len() + self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who a strike counts against: the peer id, and the listen address when
/// known (a peer that comes back under another id at the same address is
/// the same peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StrikeKey {
    Id([u8; 20]),
    Addr(SocketAddr),
}

/// Bad pieces per peer id and per listen address, at most
/// [`MAX_STRIKE_ENTRIES`] keys.
#[derive(Debug, Default)]
pub struct Strikes {
    count: HashMap<StrikeKey, u32>,
    order: VecDeque<StrikeKey>,
}

impl Strikes {
    /// Counts one more bad piece from the peer; returns the larger of its
    /// counts (by id, by listen address).
    pub fn add(&mut self, peer_id: &[u8; 20], listen: Option<SocketAddr>) -> u32 {
        let keys = [Some(StrikeKey::Id(*peer_id)), listen.map(StrikeKey::Addr)];
        keys.into_iter()
            .flatten()
            .map(|k| self.bump(k))
            .max()
            .unwrap_or(0)
    }

    fn bump(&mut self, k: StrikeKey) -> u32 {
        if !self.count.contains_key(&k) {
            self.order.push_back(k);
            while self.order.len() > MAX_STRIKE_ENTRIES {
                if let Some(old) = self.order.pop_front() {
                    self.count.remove(&old);
                }
            }
        }
        let n = self.count.entry(k).or_default();
        *n += 1;
        *n
    }
    pub fn len(&self) -> usize {
        self.count.len()
    }
    pub fn is_empty(&self) -> bool {
        self.count.is_empty()
    }
}

/// Whether a new connection may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It joins; `replace` is a connection to close first (a duplicate of
    /// the same peer, or the idlest peer making room).
    Join {
        replace: Option<(ConnId, CloseReason)>,
    },
    Refuse(CloseReason),
}

/// The connected peers of one torrent, with the bans and strikes that
/// decide who may join.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: HashMap<ConnId, Peer>,
    pub bans: Bans,
    pub strikes: Strikes,
    /// Peers dropped for sending corrupt data (bad pieces) since the last
    /// piece that passed its SHA-1 check, for what the user is told when no
    /// other peer has the file.
    pub dropped_corrupt: u32,
}

impl PeerTable {
    pub fn len(&self) -> usize {
        self.peers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
    pub fn get(&self, c: ConnId) -> Option<&Peer> {
        self.peers.get(&c)
    }
    pub fn get_mut(&mut self, c: ConnId) -> Option<&mut Peer> {
        self.peers.get_mut(&c)
    }
    pub fn contains(&self, c: ConnId) -> bool {
        self.peers.contains_key(&c)
    }
    pub fn insert(&mut self, c: ConnId, p: Peer) {
        self.peers.insert(c, p);
    }
    pub fn remove(&mut self, c: ConnId) -> Option<Peer> {
        self.peers.remove(&c)
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.peers.values_mut()
    }
    /// Every connection, in order (so that scripted tests see one order).
    pub fn conns(&self) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self.peers.keys().copied().collect();
        v.sort_unstable();
        v
    }
    /// Peers worth their place (not idle): what the dial room and the
    /// lookups count, so that idle connections cannot starve a download.
    pub fn useful(&self, live: bool, now: Instant) -> usize {
        self.peers
            .values()
            .filter(|p| !p.is_idle(live, now))
            .count()
    }

    /// Whether a connected peer that is not being dropped has a piece we
    /// lack.
    pub fn any_source(&self) -> bool {
        self.peers.values().any(|p| !p.dropped && p.missing > 0)
    }

    /// The listen addresses of the peers connected (those known).
    pub fn listens(&self) -> HashSet<SocketAddr> {
        self.peers.values().filter_map(|p| p.listen).collect()
    }

    /// The peers connected, as `ut_pex` names them: by listen address
    /// (never an inbound peer's source port; a peer whose listen address
    /// is unknown is not named), without the peers being dropped, in
    /// address order; and the connection of each.
    pub fn pex_named(&self) -> Vec<(ConnId, PexPeer)> {
        let mut named: Vec<(ConnId, PexPeer)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.dropped)
            .filter_map(|(c, p)| {
                let addr = p.listen?;
                let mut flags = 0;
                if p.is_seeder() {
                    flags |= pex_flags::SEED;
                }
                if p.outbound {
                    flags |= pex_flags::REACHABLE;
                }
                Some((*c, PexPeer { addr, flags }))
            })
            .collect();
        named.sort_unstable_by_key(|(c, p)| (p.addr, *c));
        named.dedup_by_key(|(_, p)| p.addr);
        named
    }

    /// The peer ids connected, as the tracker writes them.
    pub fn ids(&self) -> HashSet<String> {
        self.peers
            .values()
            .map(|p| crate::core::shared::peer_id_str(&p.peer_id))
            .collect()
    }

    /// Whether `peer` may join (`own_id` is ours, `max_total` the
    /// connections allowed): not banned, not a duplicate we keep the other
    /// of, and within the limits, if need be in place of the idlest peer.
    pub fn admit(
        &self,
        peer: &Peer,
        own_id: &[u8; 20],
        max_total: usize,
        live: bool,
        now: Instant,
    ) -> Admit {
        if self.bans.is_banned(peer.listen, Some(&peer.peer_id)) {
            return Admit::Refuse(CloseReason::Banned);
        }
        // Two peers that dial each other at once keep the connection opened
        // by the smaller peer id; both ends apply the same rule.
        if let Some((&other, old)) = self.peers.iter().find(|(_, p)| p.peer_id == peer.peer_id) {
            let keep_new =
                old.outbound != peer.outbound && (*own_id < peer.peer_id) == peer.outbound;
            return if keep_new {
                Admit::Join {
                    replace: Some((other, CloseReason::Duplicate)),
                }
            } else {
                Admit::Refuse(CloseReason::Duplicate)
            };
        }
        match make_room(&self.peers, peer.addr.ip(), max_total, live, now) {
            Ok(victim) => Admit::Join {
                replace: victim.map(|v| (v, CloseReason::MakingRoom)),
            },
            Err(why) => Admit::Refuse(why),
        }
    }

    /// The peers that had nothing new for us for `linger`: they are told
    /// NOT INTERESTED.
    pub fn expire_interest(&mut self, now: Instant, linger: Duration) -> Vec<ConnId> {
        let mut lost = Vec::new();
        for (c, p) in self.peers.iter_mut() {
            if p.interest_lost_at
                .is_some_and(|t| now.saturating_duration_since(t) >= linger)
            {
                p.interest_lost_at = None;
                p.am_interested = false;
                lost.push(*c);
            }
        }
        lost.sort_unstable();
        lost
    }
}

/// Whether a connection from `ip` fits among `peers` (at most `max_total`
/// in all, [`MAX_CONNS_PER_IP`] from one non-loopback address). `Ok(None)`:
/// it fits; `Ok(Some(c))`: it fits once `c`, the least useful peer (nothing
/// exchanged, not interested either way, idle the longest), is dropped.
fn make_room(
    peers: &HashMap<ConnId, Peer>,
    ip: IpAddr,
    max_total: usize,
    live: bool,
    now: Instant,
) -> Result<Option<ConnId>, CloseReason> {
    let idlest = |same_ip: bool| {
        peers
            .iter()
            .filter(|(_, p)| p.is_idle(live, now) && (!same_ip || p.addr.ip() == ip))
            .min_by_key(|(c, p)| (p.last_active, **c))
            .map(|(c, _)| *c)
    };
    if !ip.is_loopback() {
        let from_ip = peers.values().filter(|p| p.addr.ip() == ip).count();
        if from_ip >= MAX_CONNS_PER_IP {
            return idlest(true)
                .map(Some)
                .ok_or(CloseReason::TooManyFromAddress);
        }
    }
    if peers.len() >= max_total.max(1) {
        return idlest(false).map(Some).ok_or(CloseReason::TooManyPeers);
    }
    Ok(None)
}
