//! How the registry names peers and swarms: an IP address as 16 bytes (IPv4
//! as IPv4-mapped IPv6), the address family a listing admits, and the keyed
//! hashes of info hashes and of (IP, peer_id) that place swarms and peers in
//! their tables and shards.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use minitorrent_common::metainfo::InfoHash;

use crate::peer_id::PeerId;

/// An IP address as 16 bytes (IPv4 as IPv4-mapped IPv6), so peer entries have
/// one fixed size whatever the family.
pub(super) type Ip16 = [u8; 16];

#[inline]
pub(super) fn ip16(ip: IpAddr) -> Ip16 {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

#[inline]
pub(super) fn ip_from16(b: &Ip16) -> IpAddr {
    // The same as `Ipv6Addr::to_canonical`, but whole words at a time rather
    // than the byte shuffling that showed up in reply building.
    if is_v4(b) {
        IpAddr::V4(Ipv4Addr::from([b[12], b[13], b[14], b[15]]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*b))
    }
}

#[inline]
fn is_v4(b: &Ip16) -> bool {
    b[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
}

/// Which peers a listing may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    #[inline]
    pub(super) fn admits(self, ip: &Ip16) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => is_v4(ip),
            Family::V6 => !is_v4(ip),
        }
    }
}

#[inline]
pub(super) fn peer_hash(hasher: &KeyedHash, ip: &Ip16, id: &PeerId) -> u64 {
    hasher.peer(ip, id.as_bytes())
}

/// The registry's hash of info hashes and of (IP, peer_id): keyed with random
/// per-process keys, so a client cannot choose info hashes or peer ids that
/// pile up in one bucket or shard, yet far cheaper than SipHash on these
/// short fixed-size inputs (it is on every announce's path three times). It
/// is the folded multiply of wyhash and foldhash: a 64×64→128-bit product of
/// key-masked words, its halves xored. It only spreads the tables; it is not
/// a MAC (connection ids keep SipHash).
pub(crate) struct KeyedHash {
    k: [u64; 4],
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl KeyedHash {
    pub(crate) fn new() -> KeyedHash {
        let s = RandomState::new();
        KeyedHash {
            // Odd keys: a multiplier is never zero.
            k: [0u64, 1, 2, 3].map(|i| s.hash_one(i) | 1),
        }
    }

    #[inline]
    pub(crate) fn swarm(&self, h: &InfoHash) -> u64 {
        let b = &h.0;
        let tail = u64::from(u32::from_le_bytes([b[16], b[17], b[18], b[19]]));
        let x = fold(word(b, 0) ^ self.k[0], word(b, 8) ^ self.k[1]);
        fold(x ^ tail ^ self.k[2], self.k[3])
    }

    #[inline]
    pub(super) fn peer(&self, ip: &Ip16, id: &[u8]) -> u64 {
        let mut x = fold(word(ip, 0) ^ self.k[0], word(ip, 8) ^ self.k[1]);
        // 16 bytes a round; the length goes in too, so ids that differ only
        // by trailing zero bytes differ.
        let mut chunks = id.chunks_exact(16);
        for c in &mut chunks {
            x = fold(x ^ word(c, 0) ^ self.k[2], word(c, 8) ^ self.k[3]);
        }
        let mut rest = [0u8; 16];
        let r = chunks.remainder();
        rest[..r.len()].copy_from_slice(r);
        x = fold(x ^ word(&rest, 0) ^ self.k[2], word(&rest, 8) ^ self.k[3]);
        fold(x ^ id.len() as u64 ^ self.k[0], self.k[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_keyed_hash_depends_on_key_and_every_input_byte() {
        let (a, b) = (KeyedHash::new(), KeyedHash::new());
        assert_ne!(a.swarm(&h(1)), b.swarm(&h(1)));
        let me = ip16(ip("10.0.0.1"));
        assert_ne!(a.peer(&me, b"p"), b.peer(&me, b"p"));
        for i in 0..20 {
            let mut x = h(1);
            x.0[i] ^= 1;
            assert_ne!(a.swarm(&x), a.swarm(&h(1)), "byte {i}");
        }
        let long = [b'x'; 40];
        for n in 0..40 {
            assert_ne!(a.peer(&me, &long[..n]), a.peer(&me, &long[..n + 1]));
            let mut other = long;
            other[n] = b'y';
            assert_ne!(a.peer(&me, &long), a.peer(&me, &other), "byte {n}");
        }
        assert_ne!(a.peer(&me, b"p"), a.peer(&ip16(ip("10.0.0.2")), b"p"));
        assert_eq!(ip_from16(&me), ip("10.0.0.1"));
        assert_eq!(ip_from16(&ip16(ip("::1"))), ip("::1"));
    }
}
