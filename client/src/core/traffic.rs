//! Bytes moved with each remote peer, for the tracker's live view (`STATS`):
//! each connection's running totals ([`ConnTraffic`], written by its thread,
//! read by the coordinator), and a torrent's bytes not yet reported per
//! remote address ([`TrafficTable`], filled by the coordinator, emptied by
//! the tracker thread when it sends `STATS`). Plain data and atomics: no
//! clock, no threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Remote addresses a [`TrafficTable`] holds at once; bytes for more are
/// added to the [`TrafficTable::overflow`] count instead (and reported as
/// `truncated`).
pub const MAX_TRAFFIC_PEERS: usize = 256;

/// One connection's piece bytes since it began, served and received. The
/// connection thread stores its totals; the coordinator loads them.
#[derive(Debug, Default)]
pub struct ConnTraffic {
    served: AtomicU64,
    received: AtomicU64,
    /// We choke the peer (for the torrent's page).
    choking: AtomicBool,
}

impl ConnTraffic {
    pub fn store(&self, (served, received): (u64, u64)) {
        self.served.store(served, Ordering::Relaxed);
        self.received.store(received, Ordering::Relaxed);
    }

    pub fn set_choking(&self, yes: bool) {
        self.choking.store(yes, Ordering::Relaxed);
    }

    pub fn choking(&self) -> bool {
        self.choking.load(Ordering::Relaxed)
    }

    pub fn load(&self) -> (u64, u64) {
        (
            self.served.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Bytes sent to and received from each remote address since they were last
/// taken, at most [`MAX_TRAFFIC_PEERS`] addresses.
#[derive(Debug, Default)]
pub struct TrafficTable {
    pending: HashMap<SocketAddr, (u64, u64)>,
    /// Bytes that found no room, since the last take.
    overflow: u64,
}

impl TrafficTable {
    pub fn add(&mut self, addr: SocketAddr, sent: u64, received: u64) {
        if sent == 0 && received == 0 {
            return;
        }
        let room = self.pending.len() < MAX_TRAFFIC_PEERS;
        match self.pending.get_mut(&addr) {
            Some(e) => {
                e.0 = e.0.saturating_add(sent);
                e.1 = e.1.saturating_add(received);
            }
            None if room => {
                self.pending.insert(addr, (sent, received));
            }
            None => self.overflow = self.overflow.saturating_add(sent + received),
        }
    }

    /// Everything since the last take, busiest first, and whether some
    /// bytes found no room.
    pub fn take(&mut self) -> (Vec<(SocketAddr, u64, u64)>, bool) {
        let mut all: Vec<_> = self.pending.drain().map(|(a, (s, r))| (a, s, r)).collect();
        all.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        let overflowed = self.overflow > 0;
        self.overflow = 0;
        (all, overflowed)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.overflow == 0
    }
}

/// What moved on one connection since `before`: the growth of its totals
/// (a total that went down — it cannot — counts as 0).
pub fn delta(before: (u64, u64), now: (u64, u64)) -> (u64, u64) {
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
    }

    #[test]
    fn adds_up_per_address_and_empties_on_take() {
        let mut t = TrafficTable::default();
        t.add(addr(1), 10, 0);
        t.add(addr(2), 0, 500);
        t.add(addr(1), 5, 7);
        t.add(addr(3), 0, 0);
        let (all, overflowed) = t.take();
        assert_eq!(all, vec![(addr(2), 0, 500), (addr(1), 15, 7)]);
        assert!(!overflowed && t.is_empty());
        assert_eq!(t.take().0, Vec::new());
    }

    #[test]
    fn bounded() {
        let mut t = TrafficTable::default();
        for i in 0..(MAX_TRAFFIC_PEERS as u32 + 10) {
            t.add(addr(i), 1, 1);
        }
        // Known addresses still add up when full.
        t.add(addr(0), 1, 0);
        let (all, overflowed) = t.take();
        assert_eq!(all.len(), MAX_TRAFFIC_PEERS);
        assert_eq!(all[0], (addr(0), 2, 1));
        assert!(overflowed);
    }

    #[test]
    fn deltas_of_running_totals() {
        let c = ConnTraffic::default();
        c.store((100, 40));
        assert_eq!(delta((60, 40), c.load()), (40, 0));
        assert_eq!(delta((200, 0), c.load()), (0, 40));
    }
}
