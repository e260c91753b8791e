//! Compact peer addresses: the IP address then the port, big-endian, 6 bytes
//! for IPv4 (BEP 23) and 18 for IPv6 (BEP 7). BEP 15 announce replies and
//! peer exchange (BEP 11) carry lists of them, one family per list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes of one IPv4 entry.
pub const PEER_V4_LEN: usize = 6;
/// Bytes of one IPv6 entry.
pub const PEER_V6_LEN: usize = 18;

/// The entry size of a family.
pub fn entry_len(ipv6: bool) -> usize {
    if ipv6 {
        PEER_V6_LEN
    } else {
        PEER_V4_LEN
    }
}

/// Appends `addr` if it is of the family of the list (`ipv6`); true if it
/// was.
pub fn push(buf: &mut Vec<u8>, addr: SocketAddr, ipv6: bool) -> bool {
    let [p0, p1] = addr.port().to_be_bytes();
    // Whole fixed-size entries: one copy each, no length bookkeeping.
    match (addr.ip(), ipv6) {
        (IpAddr::V4(ip), false) => {
            let [a, b, c, d] = ip.octets();
            buf.extend_from_slice(&[a, b, c, d, p0, p1]);
            true
        }
        (IpAddr::V6(ip), true) => {
            let mut e = [0u8; PEER_V6_LEN];
            e[..16].copy_from_slice(&ip.octets());
            e[16] = p0;
            e[17] = p1;
            buf.extend_from_slice(&e);
            true
        }
        _ => false,
    }
}

/// The addresses of a list of one family. `Err(extra)`: the list is not a
/// whole number of entries, `extra` bytes are left over.
pub fn decode(body: &[u8], ipv6: bool) -> Result<Vec<SocketAddr>, usize> {
    let unit = entry_len(ipv6);
    let extra = body.len() % unit;
    if extra > 0 {
        return Err(extra);
    }
    Ok(body
        .chunks_exact(unit)
        .map(|c| {
            let port = u16::from_be_bytes([c[unit - 2], c[unit - 1]]);
            let ip = if ipv6 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&c[..16]);
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            };
            SocketAddr::new(ip, port)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_their_own_family_only() {
        let v4: SocketAddr = "10.1.2.3:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:51413".parse().unwrap();
        let mut b = Vec::new();
        assert!(push(&mut b, v4, false));
        assert!(!push(&mut b, v6, false));
        assert_eq!(b, [10, 1, 2, 3, 0x1a, 0xe1]);
        assert_eq!(decode(&b, false), Ok(vec![v4]));
        let mut b6 = Vec::new();
        assert!(push(&mut b6, v6, true));
        assert!(!push(&mut b6, v4, true));
        assert_eq!(b6.len(), PEER_V6_LEN);
        assert_eq!(decode(&b6, true), Ok(vec![v6]));
        // The family is the list's, not the entry's: 18 bytes are three IPv4 entries.
        assert_eq!(decode(&b6, false).map(|v| v.len()), Ok(3));
        assert_eq!(decode(&b[..5], false), Err(5));
        assert_eq!(decode(&b6[..17], true), Err(17));
        assert_eq!(decode(&[], true), Ok(Vec::new()));
    }
}
