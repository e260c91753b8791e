//! Stateless BEP 15 connection ids.
//!
//! A connection id proves that the client can receive packets at its source
//! address, so the tracker never sends a large reply to a spoofed one. Instead
//! of remembering ids, the tracker makes each one from the time it was issued
//! and a keyed hash (SipHash under a random per-process key) of the client's
//! IP and that time, and recomputes the hash to check it. Ids are accepted for
//! [`VALIDITY`] and work on every worker thread.
//!
//! Layout (big-endian u64): bit 63 set, bits 32–62 the issue time in seconds
//! since the tracker started, bits 0–31 the hash. The set top bit means the
//! first byte on the wire is never `{` (0x7B), which starts every JSON
//! datagram, nor 0x00, which starts a connect request.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a connection id is accepted (BEP 15 says two minutes).
pub const VALIDITY: Duration = Duration::from_secs(120);

const TOP: u32 = 0x8000_0000;

pub struct ConnectionIds {
    key: RandomState,
    epoch: Instant,
}

impl ConnectionIds {
    pub fn new(epoch: Instant) -> ConnectionIds {
        ConnectionIds {
            key: RandomState::new(),
            epoch,
        }
    }

    fn secs(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_secs() as u32) & !TOP
    }

    fn mac(&self, t: u32, ip: IpAddr) -> u32 {
        // One write of a fixed-size block rather than hashing the tuple field
        // by field (each a separate SipHash buffer update): a third of the
        // cost, on every announce. IPv4 and IPv6 inputs differ in length, and
        // SipHash mixes the length in, so they never collide by construction.
        let mut s = self.key.build_hasher();
        match ip.to_canonical() {
            IpAddr::V4(a) => s.write_u64(u64::from(t) << 32 | u64::from(a.to_bits())),
            IpAddr::V6(a) => {
                let mut b = [0u8; 20];
                b[..4].copy_from_slice(&t.to_le_bytes());
                b[4..].copy_from_slice(&a.octets());
                s.write(&b);
            }
        }
        let h = s.finish();
        (h ^ (h >> 32)) as u32
    }

    /// A fresh id for a client at `ip`.
    pub fn issue(&self, ip: IpAddr, now: Instant) -> u64 {
        let t = self.secs(now);
        (u64::from(t | TOP) << 32) | u64::from(self.mac(t, ip))
    }

    /// True when `id` was issued to `ip` within the last [`VALIDITY`].
    pub fn is_valid(&self, id: u64, ip: IpAddr, now: Instant) -> bool {
        let stamp = (id >> 32) as u32;
        if stamp & TOP == 0 {
            return false;
        }
        let t = stamp & !TOP;
        // Masked difference: an id "from the future" looks ancient.
        let age = self.secs(now).wrapping_sub(t) & !TOP;
        u64::from(age) <= VALIDITY.as_secs() && id as u32 == self.mac(t, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_tied_to_the_address_and_expire() {
        let t0 = Instant::now();
        let ids = ConnectionIds::new(t0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let id = ids.issue(ip, t0);
        assert!(ids.is_valid(id, ip, t0));
        assert!(ids.is_valid(id, ip, t0 + VALIDITY));
        assert!(!ids.is_valid(id, ip, t0 + VALIDITY + Duration::from_secs(1)));
        assert!(!ids.is_valid(id, "10.0.0.2".parse().unwrap(), t0));
        assert!(!ids.is_valid(id ^ 1, ip, t0));
        assert!(!ids.is_valid(id & !(1 << 63), ip, t0));
        // An IPv4-mapped IPv6 source is the same client.
        assert!(ids.is_valid(id, "::ffff:10.0.0.1".parse().unwrap(), t0));
        // Another process (key) does not accept it.
        assert!(!ConnectionIds::new(t0).is_valid(id, ip, t0));
        // Issued later, not valid earlier.
        let later = ids.issue(ip, t0 + Duration::from_secs(100));
        assert!(!ids.is_valid(later, ip, t0));
    }

    #[test]
    fn the_first_byte_is_never_json_or_a_connect() {
        let t0 = Instant::now();
        let ids = ConnectionIds::new(t0);
        for s in [0u64, 1, 1000, 1 << 24, (1 << 31) - 1, 1 << 31] {
            let id = ids.issue("::1".parse().unwrap(), t0 + Duration::from_secs(s));
            let first = id.to_be_bytes()[0];
            assert!(first >= 0x80, "{first:#x}");
        }
    }
}
