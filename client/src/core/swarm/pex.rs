//! Peer exchange (BEP 11, `ut_pex`) for one torrent, per connection: what a
//! peer that speaks it is told of the others and when ([`PexOut`]), and
//! which of its own messages we take ([`PexIn`]); and which addresses a
//! message may bring ([`usable`]). `Swarm` decides who is named (connected
//! peers whose listen address is known) and what becomes of what we learn
//! (known addresses, then dials).
//!
//! Bounded: at most `MAX_PEX_ADDED` (50) added and `MAX_PEX_DROPPED` (50)
//! dropped peers per message, one message per [`PEX_INTERVAL`] each way
//! (the first [`PEX_FIRST`] after the peer's extension handshake), what a
//! connection was told at most the peers connected plus the dropped ones
//! not yet said.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use minitorrent_common::wire::{PexMsg, PexPeer, MAX_PEX_ADDED, MAX_PEX_DROPPED};

/// One message a minute to each peer, and as many from it (BEP 11).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// The first message goes this long after the peer's extension handshake:
/// soon, so that a peer that knows nobody else finds the swarm at once,
/// but not before the peer has shown it is staying.
pub const PEX_FIRST: Duration = Duration::from_secs(3);
/// Messages a peer may send beyond one per [`PEX_INTERVAL`] (a first
/// message right after the handshake, a timer that runs a little fast).
pub const PEX_BURST: u32 = 2;
/// The messages a peer may send at once.
const BUCKET: u32 = 1 + PEX_BURST;
/// Messages ignored within one interval past which the peer is closed: no
/// honest client sends that many.
pub const PEX_ABUSE: u32 = 20;

/// What one connection was told (the addresses named as added and not
/// since dropped), and when it hears next.
#[derive(Debug)]
pub struct PexOut {
    next: Instant,
    told: HashSet<SocketAddr>,
}

impl PexOut {
    /// The peer negotiated `ut_pex` at `now`.
    pub fn new(now: Instant) -> PexOut {
        PexOut {
            next: now + PEX_FIRST,
            told: HashSet::new(),
        }
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// The message due at `now`, given the peers to name now (`current`,
    /// in the order to name them): those not told yet as added, those told
    /// and gone as dropped, at most the limits of each (the rest wait for
    /// the next message). `None` when it is not time, or nothing changed.
    pub fn due(&mut self, current: &[PexPeer], now: Instant) -> Option<PexMsg> {
        if !self.is_due(now) {
            return None;
        }
        self.next = now + PEX_INTERVAL;
        let added: Vec<PexPeer> = current
            .iter()
            .filter(|p| !self.told.contains(&p.addr))
            .take(MAX_PEX_ADDED)
            .copied()
            .collect();
        let now_named: HashSet<SocketAddr> = current.iter().map(|p| p.addr).collect();
        let mut dropped: Vec<SocketAddr> = self
            .told
            .iter()
            .filter(|a| !now_named.contains(a))
            .copied()
            .collect();
        dropped.sort_unstable();
        dropped.truncate(MAX_PEX_DROPPED);
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        for a in &dropped {
            self.told.remove(a);
        }
        self.told.extend(added.iter().map(|p| p.addr));
        Some(PexMsg {
            added,
            dropped,
            ignored: 0,
        })
    }
}

/// What to do with a message the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PexVerdict {
    Take,
    /// Too soon after the last ones: ignored.
    Ignore,
    /// Far too many: close the connection.
    Abuse,
}

/// The messages a peer may still send: a token bucket of `1 + PEX_BURST`,
/// one token back every [`PEX_INTERVAL`].
#[derive(Debug)]
pub struct PexIn {
    tokens: u32,
    /// When the last token came back (or the bucket was last full).
    since: Instant,
    /// Messages ignored since then.
    ignored: u32,
}

impl PexIn {
    pub fn new(now: Instant) -> PexIn {
        PexIn {
            tokens: BUCKET,
            since: now,
            ignored: 0,
        }
    }

    /// A message arrived at `now`.
    pub fn arrived(&mut self, now: Instant) -> PexVerdict {
        let elapsed = now.saturating_duration_since(self.since);
        let back = (elapsed.as_millis() / PEX_INTERVAL.as_millis()) as u32;
        if back > 0 {
            self.ignored = 0;
            self.since += PEX_INTERVAL * back;
            self.tokens = self.tokens.saturating_add(back);
        }
        if self.tokens >= BUCKET {
            // Full: no credit builds up beyond it.
            self.tokens = BUCKET;
            self.since = now;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            return PexVerdict::Take;
        }
        self.ignored += 1;
        if self.ignored > PEX_ABUSE {
            PexVerdict::Abuse
        } else {
            PexVerdict::Ignore
        }
    }
}

/// Whether an address a peer told us of is worth dialling: a real port on
/// a unicast address, and loopback only from a peer on loopback itself
/// (from anyone else it names a machine of theirs, and would have us dial
/// our own).
pub fn usable(addr: SocketAddr, from_loopback: bool) -> bool {
    // An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
    let ip = addr.ip().to_canonical();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && !broadcast
        && (from_loopback || !ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PexPeer {
        PexPeer {
            addr: s.parse().unwrap(),
            flags: 0,
        }
    }

    #[test]
    fn a_peer_is_told_once_a_minute_of_who_came_and_who_went() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut out = PexOut::new(t0);
        let (a, b, c) = (p("10.0.0.1:1"), p("10.0.0.2:1"), p("10.0.0.3:1"));
        assert_eq!(out.due(&[a, b], t0 + s(2)), None, "not yet");
        let m = out.due(&[a, b], t0 + s(3)).unwrap();
        assert_eq!((m.added, m.dropped), (vec![a, b], vec![]));
        // Within the minute nothing goes out, whatever changed.
        assert_eq!(out.due(&[a, c], t0 + s(62)), None);
        let m = out.due(&[a, c], t0 + s(63)).unwrap();
        assert_eq!((m.added, m.dropped), (vec![c], vec![b.addr]));
        // Nothing new: no message, and the next look is a minute later.
        assert_eq!(out.due(&[a, c], t0 + s(123)), None);
        assert_eq!(out.due(&[c], t0 + s(124)), None);
        let m = out.due(&[c], t0 + s(183)).unwrap();
        assert_eq!((m.added, m.dropped), (vec![], vec![a.addr]));
    }

    #[test]
    fn at_most_50_added_and_50_dropped_go_out_the_rest_next_time() {
        let t0 = Instant::now();
        let many: Vec<PexPeer> = (0..120)
            .map(|i| p(&format!("10.0.{}.{}:6881", i / 200, i % 200 + 1)))
            .collect();
        let mut out = PexOut::new(t0);
        let mut t = t0 + PEX_FIRST;
        let mut told = 0;
        for want in [50, 50, 20] {
            let m = out.due(&many, t).unwrap();
            assert_eq!((m.added.len(), m.dropped.len()), (want, 0));
            told += m.added.len();
            t += PEX_INTERVAL;
        }
        assert_eq!(told, 120);
        // All gone: dropped 50 at a time.
        for want in [50, 50, 20] {
            let m = out.due(&[], t).unwrap();
            assert_eq!((m.added.len(), m.dropped.len()), (0, want));
            t += PEX_INTERVAL;
        }
        assert!(out.told.is_empty());
        assert_eq!(out.due(&[], t), None);
    }

    #[test]
    fn a_peer_may_send_one_message_a_minute_and_a_small_burst() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = PexIn::new(t0);
        for _ in 0..=PEX_BURST {
            assert_eq!(r.arrived(t0), PexVerdict::Take);
        }
        assert_eq!(r.arrived(t0 + s(1)), PexVerdict::Ignore);
        assert_eq!(r.arrived(t0 + s(59)), PexVerdict::Ignore);
        // A token back every minute, one message each.
        assert_eq!(r.arrived(t0 + s(60)), PexVerdict::Take);
        assert_eq!(r.arrived(t0 + s(61)), PexVerdict::Ignore);
        assert_eq!(r.arrived(t0 + s(120)), PexVerdict::Take);
        // A long silence refills the burst, no more.
        let later = t0 + s(3600);
        for _ in 0..=PEX_BURST {
            assert_eq!(r.arrived(later), PexVerdict::Take);
        }
        assert_eq!(r.arrived(later), PexVerdict::Ignore);
        // A flood: ignored, then abuse.
        let mut f = PexIn::new(t0);
        for _ in 0..=PEX_BURST {
            assert_eq!(f.arrived(t0), PexVerdict::Take);
        }
        for _ in 0..PEX_ABUSE {
            assert_eq!(f.arrived(t0 + s(1)), PexVerdict::Ignore);
        }
        assert_eq!(f.arrived(t0 + s(1)), PexVerdict::Abuse);
        // The peer keeping to once a minute from then on is taken again.
        assert_eq!(f.arrived(t0 + s(60)), PexVerdict::Take);
    }

    #[test]
    fn only_unicast_addresses_with_a_port_are_usable_loopback_from_loopback() {
        let u = |s: &str, lo: bool| usable(s.parse().unwrap(), lo);
        assert!(!u("[::ffff:127.0.0.1]:6881", false), "mapped loopback");
        assert!(!u("[::ffff:0.0.0.0]:6881", false));
        assert!(!u("[::ffff:255.255.255.255]:6881", false));
        assert!(u("[::ffff:10.0.0.2]:6881", false));
        assert!(u("10.0.0.1:6881", false));
        assert!(u("[2001:db8::1]:6881", false));
        assert!(u("127.0.0.1:6881", true));
        assert!(!u("127.0.0.1:6881", false));
        assert!(!u("[::1]:6881", false));
        assert!(!u("10.0.0.1:0", true));
        assert!(!u("0.0.0.0:6881", true));
        assert!(!u("[::]:6881", true));
        assert!(!u("224.0.0.1:6881", true));
        assert!(!u("[ff02::1]:6881", true));
        assert!(!u("255.255.255.255:6881", true));
    }
}
