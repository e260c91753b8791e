//! Stateless address tokens for the JSON protocol.
//!
//! A token proves that a source IP receives the tracker's datagrams: the
//! tracker hands it out in a reply, so only someone who reads replies sent
//! to that IP can send it back. Replies more than
//! [`AMPLIFICATION_FACTOR`](minitorrent_common::tracker_proto::AMPLIFICATION_FACTOR)
//! times their request go only to requests carrying a valid one, so a
//! forged source address gets small replies only (no reflection attack).
//!
//! Like BEP 15 connection ids ([`crate::connection_id`]) the tracker keeps
//! nothing per address: a token is a keyed hash (SipHash under a random
//! per-process key) of the IP and of the current period of
//! [`ROTATION`]. Hashing the period in amounts to a secret that rotates
//! every period without any thread rotating it; a token is accepted during
//! the period it was issued in and the next one (the previous secret is
//! still accepted), so it lives from [`ROTATION`] to twice that.
//!
//! Keyed by IP alone, not IP and port: a reflection attack aims at a host,
//! and a host that receives on one port is that host (its NAT's ports
//! change; the peer's sockets too). An IPv4-mapped IPv6 source is its IPv4
//! address.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use minitorrent_common::tracker_proto::Token;

/// How often the secret rotates; a token is accepted for one to two of
/// these.
pub const ROTATION: Duration = Duration::from_secs(120);

pub struct AddressTokens {
    key: RandomState,
    epoch: Instant,
}

impl AddressTokens {
    /// Tokens whose periods count from `epoch` (the tracker's start).
    pub fn new(epoch: Instant) -> AddressTokens {
        AddressTokens {
            key: RandomState::new(),
            epoch,
        }
    }

    fn period(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / ROTATION.as_secs()
    }

    fn mac(&self, period: u64, ip: IpAddr) -> Token {
        // One write of a fixed-size block, as for connection ids (each write
        // is a SipHash buffer update): this runs for most requests. The
        // period wraps after 2^32 × 2 minutes. IPv4 and IPv6 blocks differ
        // in length, which SipHash mixes in.
        let p = period as u32;
        let mut s = self.key.build_hasher();
        match ip.to_canonical() {
            IpAddr::V4(a) => s.write_u64(u64::from(p) << 32 | u64::from(a.to_bits())),
            IpAddr::V6(a) => {
                let mut b = [0u8; 20];
                b[..4].copy_from_slice(&p.to_le_bytes());
                b[4..].copy_from_slice(&a.octets());
                s.write(&b);
            }
        }
        Token(s.finish())
    }

    /// The token for `ip` now.
    pub fn issue(&self, ip: IpAddr, now: Instant) -> Token {
        self.mac(self.period(now), ip)
    }

    /// True when `token` was issued to `ip` in this period or the previous
    /// one.
    pub fn is_valid(&self, token: Token, ip: IpAddr, now: Instant) -> bool {
        self.check(token, ip, now) != Check::Invalid
    }

    /// How `token` fares for `ip` now: [`Check::Current`] when it is the
    /// token [`issue`](AddressTokens::issue) would give (no need to hash
    /// again for a reply that hands one out).
    pub fn check(&self, token: Token, ip: IpAddr, now: Instant) -> Check {
        let p = self.period(now);
        if token == self.mac(p, ip) {
            Check::Current
        } else if p > 0 && token == self.mac(p - 1, ip) {
            Check::Previous
        } else {
            Check::Invalid
        }
    }
}

/// What [`AddressTokens::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Issued in this period: what `issue` gives now.
    Current,
    /// Issued in the previous period: still accepted.
    Previous,
    /// Expired, issued to another IP or by another process, or made up.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clock is the `now` passed in: t0 plus whatever the test says.

    #[test]
    fn a_token_is_valid_for_its_address() {
        let t0 = Instant::now();
        let tokens = AddressTokens::new(t0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = tokens.issue(ip, t0);
        assert!(tokens.is_valid(t, ip, t0));
        assert!(tokens.is_valid(t, ip, t0 + Duration::from_secs(5)));
        // The same token all through a period.
        assert_eq!(tokens.issue(ip, t0 + ROTATION - Duration::from_secs(1)), t);
        // An IPv4-mapped IPv6 source is the same host.
        assert!(tokens.is_valid(t, "::ffff:192.0.2.1".parse().unwrap(), t0));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let t6 = tokens.issue(v6, t0);
        assert!(tokens.is_valid(t6, v6, t0));
        assert!(!tokens.is_valid(t6, ip, t0));
    }

    #[test]
    fn a_token_is_not_valid_for_another_address() {
        let t0 = Instant::now();
        let tokens = AddressTokens::new(t0);
        let t = tokens.issue("192.0.2.1".parse().unwrap(), t0);
        for other in ["192.0.2.2", "10.0.0.1", "::1", "2001:db8::c000:201"] {
            assert!(!tokens.is_valid(t, other.parse().unwrap(), t0), "{other}");
        }
        assert!(!tokens.is_valid(Token(t.0 ^ 1), "192.0.2.1".parse().unwrap(), t0));
        // Another tracker process (another key) does not accept it.
        let restarted = AddressTokens::new(t0);
        assert!(!restarted.is_valid(t, "192.0.2.1".parse().unwrap(), t0));
    }

    #[test]
    fn the_previous_secret_is_still_accepted_then_the_token_expires() {
        let t0 = Instant::now();
        let tokens = AddressTokens::new(t0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Issued at the very end of period 0.
        let late = t0 + ROTATION - Duration::from_secs(1);
        let t = tokens.issue(ip, late);
        // The secret rotated: new tokens differ, the old one still works.
        let next = t0 + ROTATION;
        assert_ne!(tokens.issue(ip, next), t);
        assert!(tokens.is_valid(t, ip, next));
        assert_eq!(tokens.check(t, ip, late), Check::Current);
        assert_eq!(tokens.check(t, ip, next), Check::Previous);
        assert!(tokens.is_valid(t, ip, next + ROTATION - Duration::from_secs(1)));
        // Two rotations later it is refused.
        assert!(!tokens.is_valid(t, ip, t0 + 2 * ROTATION));
        assert_eq!(tokens.check(t, ip, t0 + 2 * ROTATION), Check::Invalid);
        assert!(!tokens.is_valid(t, ip, t0 + 10 * ROTATION));
        // A token from the future (a later period) is refused now.
        let future = tokens.issue(ip, t0 + 3 * ROTATION);
        assert!(!tokens.is_valid(future, ip, t0));
    }
}
