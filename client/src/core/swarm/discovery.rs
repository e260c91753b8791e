//! Finding peers for one torrent: the addresses we know (from the tracker,
//! a magnet link, other peers' `ut_pex`), which of them to dial and when,
//! and when to ask the tracker again; and whether the tracker still lists
//! the torrent at all ([`Listing`]). Bounded: at most [`MAX_KNOWN`]
//! addresses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;

use super::peers::PeerTable;
use crate::core::msg::FailKind;
use crate::core::picker::ConnId;

/// Ask the tracker again this often while no peer is connected...
pub const LOOKUP_EMPTY: Duration = Duration::from_secs(3);
/// ...and this often while downloading with fewer peers than allowed.
pub const LOOKUP_MORE: Duration = Duration::from_secs(15);
/// A lookup not answered within this long is taken as lost.
pub const LOOKUP_LOST: Duration = Duration::from_secs(60);
/// After a lookup the tracker did not answer, the next one waits this long
/// (the swarm goes on with the peers it knows meanwhile).
pub const LOOKUP_UNREACHABLE: Duration = Duration::from_secs(30);
/// Failed dials after which an address is left alone until listed again.
pub const MAX_CONNECT_FAILURES: u32 = 6;
/// Addresses remembered at most; when full, the one that failed most (then
/// the least recently listed) is forgotten for a new one.
pub const MAX_KNOWN: usize = 2000;
/// Outbound connection ids start here, so they never meet the listener's
/// (which count up from 1).
const DIAL_IDS: ConnId = 1 << 62;

#[derive(Debug)]
struct Known {
    conn: Option<ConnId>,
    failures: u32,
    next_try: Instant,
    listed_at: Instant,
    peer_id: Option<String>,
    /// How its last dial failed (cleared when one succeeds).
    failed_as: Option<FailKind>,
}

/// Known addresses, dials in progress, and the tracker lookup schedule.
#[derive(Debug)]
pub struct Discovery {
    known: HashMap<SocketAddr, Known>,
    connecting: HashMap<ConnId, SocketAddr>,
    next_dial: ConnId,
    lookup_sent: Option<Instant>,
    last_lookup: Option<Instant>,
    /// A lookup has succeeded once: later failures are warnings.
    lookup_ok: bool,
    /// The last lookup got no answer: the next waits [`LOOKUP_UNREACHABLE`].
    lookup_failed: bool,
    pub listing: Listing,
}

impl Default for Discovery {
    fn default() -> Discovery {
        Discovery {
            known: HashMap::new(),
            connecting: HashMap::new(),
            next_dial: DIAL_IDS,
            lookup_sent: None,
            last_lookup: None,
            lookup_ok: false,
            lookup_failed: false,
            listing: Listing::default(),
        }
    }
}

impl Discovery {
    pub fn known_len(&self) -> usize {
        self.known.len()
    }
    pub fn connecting_len(&self) -> usize {
        self.connecting.len()
    }
    pub fn lookup_ok(&self) -> bool {
        self.lookup_ok
    }

    /// An address listed by the tracker (with its peer id) or learnt elsewhere.
    pub fn add(&mut self, addr: SocketAddr, peer_id: Option<String>, now: Instant) {
        if !self.known.contains_key(&addr) && self.known.len() >= MAX_KNOWN {
            let victim = self
                .known
                .iter()
                .filter(|(_, k)| k.conn.is_none())
                .max_by_key(|(_, k)| (k.failures, std::cmp::Reverse(k.listed_at)))
                .map(|(a, _)| *a);
            match victim {
                Some(v) => {
                    self.known.remove(&v);
                }
                None => return,
            }
        }
        let k = self.known.entry(addr).or_insert(Known {
            conn: None,
            failures: 0,
            next_try: now,
            listed_at: now,
            peer_id: None,
            failed_as: None,
        });
        k.listed_at = now;
        if peer_id.is_some() {
            // Only the tracker's lists name peer ids.
            self.listing.listed();
            k.peer_id = peer_id;
        }
        // Listed again: worth another try soon, even after many failures
        // (it may have restarted).
        if k.failures > 0 && k.conn.is_none() {
            k.failures = k.failures.min(MAX_CONNECT_FAILURES / 2);
            k.next_try = k.next_try.min(now + Duration::from_secs(2));
        }
    }

    /// An address a peer told us of (`ut_pex`): remembered like one the
    /// tracker lists, except that an address already known keeps its
    /// failures and back-off (a peer's word is no reason to dial a dead
    /// address sooner, and another peer could otherwise have us dial one
    /// address again and again).
    pub fn learnt(&mut self, addr: SocketAddr, now: Instant) {
        if !self.known.contains_key(&addr) {
            self.add(addr, None, now);
        }
    }

    /// Addresses to dial now, at most `room`, skipping peers already
    /// connected (by peer id or listen address) and those the bans refuse.
    /// Each gets a connection id.
    pub fn dials(
        &mut self,
        room: usize,
        peers: &PeerTable,
        now: Instant,
        rng: &mut fastrand::Rng,
    ) -> Vec<(ConnId, SocketAddr)> {
        let connected_ids = peers.ids();
        let connected_addrs = peers.listens();
        let banned = |a: SocketAddr, id: Option<&str>| peers.bans.is_listed_banned(a, id);
        let room = room.saturating_sub(self.connecting.len());
        if room == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(a, k)| {
                k.conn.is_none()
                    && !connected_addrs.contains(a)
                    && k.next_try <= now
                    && k.failures < MAX_CONNECT_FAILURES
                    && !k
                        .peer_id
                        .as_ref()
                        .is_some_and(|id| connected_ids.contains(id))
                    && !banned(**a, k.peer_id.as_deref())
            })
            .map(|(a, _)| *a)
            .collect();
        candidates.sort();
        rng.shuffle(&mut candidates);
        candidates.truncate(room);
        let mut out = Vec::with_capacity(candidates.len());
        for addr in candidates {
            let conn = self.next_dial;
            self.next_dial += 1;
            if let Some(k) = self.known.get_mut(&addr) {
                k.conn = Some(conn);
                k.next_try = now + Duration::from_secs(5);
            }
            self.connecting.insert(conn, addr);
            out.push((conn, addr));
        }
        out
    }

    /// A connection (dialled or not) finished its handshake.
    pub fn connected(&mut self, conn: ConnId, addr: SocketAddr, outbound: bool) {
        self.listing.listed();
        self.connecting.remove(&conn);
        if outbound {
            if let Some(k) = self.known.get_mut(&addr) {
                k.conn = Some(conn);
                k.failures = 0;
                k.failed_as = None;
            }
        }
    }

    /// A connection was refused after its handshake (banned, a duplicate,
    /// no room): like a failed dial, it is tried again later, backing off.
    pub fn refused(&mut self, conn: ConnId, addr: SocketAddr, outbound: bool, now: Instant) {
        self.connecting.remove(&conn);
        if outbound {
            self.connect_failed(conn, addr, now);
        }
    }

    /// A dial failed (`how`, when known): try again later, backing off.
    pub fn connect_failed(&mut self, conn: ConnId, addr: SocketAddr, now: Instant) {
        self.dial_failed(conn, addr, None, now);
    }

    /// [`Discovery::connect_failed`], remembering how.
    pub fn dial_failed(
        &mut self,
        conn: ConnId,
        addr: SocketAddr,
        how: Option<FailKind>,
        now: Instant,
    ) {
        self.connecting.remove(&conn);
        if let Some(k) = self.known.get_mut(&addr) {
            k.conn = None;
            k.failed_as = how.or(k.failed_as.take());
            k.failures += 1;
            k.next_try = now + Duration::from_secs(2u64 << k.failures.min(5));
        }
    }

    /// When every known address failed its last dial the same way: how, and
    /// how many addresses. `None` while one is connected or being dialled,
    /// has not been tried, or failed otherwise.
    pub fn failing_alike(&self) -> Option<(FailKind, usize)> {
        let mut kinds = self.known.values().map(|k| match (&k.conn, &k.failed_as) {
            (None, Some(f)) => Some(f),
            _ => None,
        });
        let first = kinds.next()??;
        for k in kinds {
            if k? != first {
                return None;
            }
        }
        Some((first.clone(), self.known.len()))
    }

    /// A connection ended (also one refused before it joined the peer table).
    pub fn gone(&mut self, conn: ConnId, now: Instant) {
        self.connecting.remove(&conn);
        for k in self.known.values_mut() {
            if k.conn == Some(conn) {
                k.conn = None;
                k.next_try = now + Duration::from_secs(5);
            }
        }
    }

    /// Whether to ask the tracker now, given how many peers we have.
    pub fn lookup_due(&mut self, peers: usize, max_peers: usize, now: Instant) -> bool {
        if let Some(sent) = self.lookup_sent {
            if now.saturating_duration_since(sent) < LOOKUP_LOST {
                return false;
            }
            self.lookup_sent = None;
        }
        let every = if peers == 0 {
            LOOKUP_EMPTY
        } else if peers < max_peers {
            LOOKUP_MORE
        } else {
            return false;
        };
        let every = if self.lookup_failed {
            every.max(LOOKUP_UNREACHABLE)
        } else {
            every
        };
        if self
            .last_lookup
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return false;
        }
        self.last_lookup = Some(now);
        self.lookup_sent = Some(now);
        true
    }

    /// A lookup was answered (successfully when `ok`). True when this
    /// failure starts an outage (the one to tell the user of).
    pub fn lookup_answered(&mut self, ok: bool) -> bool {
        self.lookup_sent = None;
        if ok {
            self.lookup_ok = true;
        }
        let starts = !ok && !self.lookup_failed;
        self.lookup_failed = !ok;
        starts
    }
}

/// Whether the tracker still lists a download's torrent. When its only
/// seeder leaves, or changes the file (and so shares it under a new info
/// hash), the tracker forgets the info hash; the download says so plainly
/// instead of waiting in silence.
#[derive(Debug, Default)]
pub struct Listing {
    /// The tracker listed a peer, or a peer connected, at some point.
    seen: bool,
    /// Lookups in a row that found the torrent unlisted.
    misses: u32,
    told: bool,
}

impl Listing {
    /// The tracker listed a peer, or a peer connected.
    pub fn listed(&mut self) {
        self.seen = true;
        self.misses = 0;
        self.told = false;
    }

    /// A lookup found the torrent unlisted while we have no peer. Returns
    /// the line to tell the user, once each time the torrent disappears: at
    /// once if it was listed before, else at the second such lookup in a
    /// row (a seeder starting at the same time may not have registered yet).
    pub fn unlisted(&mut self, name: &str, info_hash: &InfoHash) -> Option<String> {
        self.misses = self.misses.saturating_add(1);
        if self.told || !(self.seen || self.misses >= 2) {
            return None;
        }
        self.told = true;
        let search = if *name == info_hash.to_hex() {
            "run `minitorrent search` to find the current version".to_string()
        } else {
            format!("run `minitorrent search {name}` to find the current version")
        };
        Some(if self.seen {
            format!(
                "{name}: no peer shares this file any more: the tracker no longer lists \
                 info hash {info_hash} (its seeder left or the file changed); {search}"
            )
        } else {
            format!(
                "{name}: no peer shares this file: the tracker does not list info hash \
                 {info_hash} (its seeder left, the file changed, or it was never shared); \
                 {search}"
            )
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn lookups_wait_30_s_after_the_tracker_did_not_answer() {
        let t0 = Instant::now();
        let mut d = Discovery::default();
        assert!(d.lookup_due(0, 8, t0));
        assert!(d.lookup_answered(false), "the first failure is told");
        assert!(!d.lookup_due(0, 8, t0 + LOOKUP_EMPTY));
        assert!(!d.lookup_due(0, 8, t0 + LOOKUP_UNREACHABLE - Duration::from_millis(1)));
        assert!(d.lookup_due(0, 8, t0 + LOOKUP_UNREACHABLE));
        assert!(!d.lookup_answered(false), "a second one is not");
        let t1 = t0 + LOOKUP_UNREACHABLE;
        assert!(d.lookup_due(0, 8, t1 + LOOKUP_UNREACHABLE));
        assert!(!d.lookup_answered(true));
        let t2 = t1 + LOOKUP_UNREACHABLE;
        assert!(
            d.lookup_due(0, 8, t2 + LOOKUP_EMPTY),
            "back to the usual pace"
        );
    }

    use super::*;

    /// Without any tracker: a known peer whose connection ends is dialled
    /// again 5 s later; one that cannot be reached is tried again, backing
    /// off, until [`MAX_CONNECT_FAILURES`].
    #[test]
    fn a_known_peer_that_drops_is_dialled_again() {
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(3);
        let peers = PeerTable::default();
        let mut d = Discovery::default();
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        d.add(a, None, t0);
        let dials = d.dials(4, &peers, t0, &mut rng);
        assert_eq!(dials.len(), 1);
        let (conn, addr) = dials[0];
        assert_eq!(addr, a);
        d.connected(conn, a, true);
        assert!(d.dials(4, &peers, t0, &mut rng).is_empty(), "connected");
        d.gone(conn, t0 + Duration::from_secs(60));
        let later = t0 + Duration::from_secs(60);
        assert!(d.dials(4, &peers, later, &mut rng).is_empty());
        let again = d.dials(4, &peers, later + Duration::from_secs(5), &mut rng);
        assert_eq!(again.iter().map(|x| x.1).collect::<Vec<_>>(), vec![a]);
        // Down for good: tried with growing waits, then left alone.
        let mut now = later + Duration::from_secs(5);
        let mut conn = again[0].0;
        let mut tries = 1;
        loop {
            d.connect_failed(conn, a, now);
            now += Duration::from_secs(3600);
            match d.dials(4, &peers, now, &mut rng).first() {
                Some(&(c, _)) => {
                    conn = c;
                    tries += 1;
                }
                None => break,
            }
        }
        assert_eq!(tries, MAX_CONNECT_FAILURES);
    }

    /// Every known address failing its last dial the same way is told as
    /// such; a mix, an address not tried yet or one being dialled is not.
    #[test]
    fn failures_alike_are_told_apart_from_a_mix() {
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(5);
        let peers = PeerTable::default();
        let mut d = Discovery::default();
        assert_eq!(d.failing_alike(), None, "nobody known");
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:7001".parse().unwrap(),
            "127.0.0.1:7002".parse().unwrap(),
        );
        d.add(a, None, t0);
        d.add(b, None, t0);
        let dials = d.dials(4, &peers, t0, &mut rng);
        assert_eq!(d.failing_alike(), None, "being dialled");
        let conn_of = |x| dials.iter().find(|d| d.1 == x).unwrap().0;
        d.dial_failed(conn_of(a), a, Some(FailKind::ClosedInHandshake), t0);
        assert_eq!(d.failing_alike(), None, "one still being dialled");
        d.dial_failed(conn_of(b), b, Some(FailKind::ClosedInHandshake), t0);
        assert_eq!(d.failing_alike(), Some((FailKind::ClosedInHandshake, 2)));
        // The next round: one is refused instead.
        let later = t0 + Duration::from_secs(60);
        let dials = d.dials(4, &peers, later, &mut rng);
        let conn_of = |x| dials.iter().find(|d| d.1 == x).unwrap().0;
        d.dial_failed(conn_of(a), a, Some(FailKind::Refused), later);
        d.dial_failed(conn_of(b), b, Some(FailKind::ClosedInHandshake), later);
        assert_eq!(d.failing_alike(), None, "a mix");
    }

    #[test]
    fn a_torrent_the_tracker_forgot_is_reported_once_per_disappearance() {
        let ih = InfoHash([7; 20]);
        let mut l = Listing::default();
        // Never listed: the first miss may be a seeder still registering.
        assert_eq!(l.unlisted("a.bin", &ih), None);
        let line = l.unlisted("a.bin", &ih).unwrap();
        assert!(line.contains("does not list info hash 0707"), "{line}");
        assert!(line.contains("minitorrent search a.bin"), "{line}");
        assert_eq!(l.unlisted("a.bin", &ih), None, "said once");
        // Listed, then gone: said at once, "any more".
        l.listed();
        let line = l.unlisted("a.bin", &ih).unwrap();
        assert!(line.contains("no peer shares this file any more"), "{line}");
        assert!(line.contains("no longer lists info hash 0707"), "{line}");
        assert_eq!(l.unlisted("a.bin", &ih), None);
        // A magnet without a name suggests a plain search.
        let mut l = Listing::default();
        l.listed();
        let line = l.unlisted(&ih.to_hex(), &ih).unwrap();
        assert!(line.ends_with("run `minitorrent search` to find the current version"));
    }
}
