//! The BEP 6 allowed-fast set: the pieces a peer may fetch from us while we
//! choke it, derived from its address and the info hash so that both ends
//! can compute the same set.

use std::net::IpAddr;

use crate::hash::sha1;
use crate::metainfo::InfoHash;

/// Pieces in the allowed-fast set we give a peer (BEP 6 suggests 10).
pub const ALLOWED_FAST_K: usize = 10;

/// The canonical allowed-fast set of BEP 6 for a peer at `ip`: `k` distinct
/// piece indices below `num_pieces` (fewer when the torrent has fewer
/// pieces), in the order the algorithm yields them.
///
/// `x` starts as the peer's IPv4 address masked to /24 followed by the info
/// hash; each round replaces `x` by its SHA-1 and takes its five 4-byte
/// big-endian words modulo `num_pieces`, skipping repeats. BEP 6 defines it
/// for IPv4 only: an IPv6 address (other than an IPv4-mapped one) gets an
/// empty set.
pub fn allowed_fast_set(ip: IpAddr, info_hash: &InfoHash, num_pieces: u32, k: usize) -> Vec<u32> {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return Vec::new(),
        },
    };
    let k = k.min(num_pieces as usize);
    let mut set = Vec::with_capacity(k);
    let mut x = Vec::with_capacity(24);
    let o = v4.octets();
    x.extend_from_slice(&[o[0], o[1], o[2], 0]);
    x.extend_from_slice(&info_hash.0);
    while set.len() < k {
        let digest = sha1(&x);
        for word in digest.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x.clear();
        x.extend_from_slice(&digest);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_reference_example_of_bep_6() {
        let ih = InfoHash([0xAA; 20]);
        let seven = allowed_fast_set(ip("80.4.4.200"), &ih, 1313, 7);
        assert_eq!(seven, [1059, 431, 808, 1217, 287, 376, 1188]);
        let nine = allowed_fast_set(ip("80.4.4.200"), &ih, 1313, 9);
        assert_eq!(nine, [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]);
        // The address is masked to /24.
        assert_eq!(allowed_fast_set(ip("80.4.4.7"), &ih, 1313, 7), seven);
        assert_eq!(
            allowed_fast_set(ip("::ffff:80.4.4.200"), &ih, 1313, 7),
            seven
        );
        assert_ne!(allowed_fast_set(ip("80.4.5.200"), &ih, 1313, 7), seven);
    }

    #[test]
    fn small_torrents_get_every_piece_and_ipv6_none() {
        let ih = InfoHash([1; 20]);
        let mut all = allowed_fast_set(ip("10.0.0.1"), &ih, 3, ALLOWED_FAST_K);
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2]);
        assert!(allowed_fast_set(ip("10.0.0.1"), &ih, 0, ALLOWED_FAST_K).is_empty());
        assert!(allowed_fast_set(ip("2001:db8::1"), &ih, 100, ALLOWED_FAST_K).is_empty());
        let set = allowed_fast_set(ip("10.0.0.1"), &ih, 100, ALLOWED_FAST_K);
        assert_eq!(set.len(), ALLOWED_FAST_K);
        assert!(set.iter().all(|&i| i < 100));
    }
}
