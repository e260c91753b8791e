//! Piece state of one torrent and the choice of what to fetch next.
//!
//! Every piece is exactly one of: [`PieceState::Have`] (verified on disk),
//! [`PieceState::InFlight`] (assigned to one or more connections),
//! [`PieceState::Queued`] (wanted, assigned to nobody) or
//! [`PieceState::NotNeeded`]. A piece is `InFlight` exactly when its owner list
//! is non-empty. Only the coordinator thread owns a `Picker`.
//!
//! Choice: rarest first among the pieces the peer has, uniformly at random
//! among equally rare ones. Endgame starts only when no queued piece is
//! had by any connected peer (every missing piece that can be fetched is
//! being fetched by someone): it hands a peer a piece already in flight
//! elsewhere (at most [`MAX_OWNERS`] owners), and on completion the other
//! owners are told to cancel. Earlier, a peer that has nothing queued for
//! us simply waits: a duplicate fetched in the middle of a download costs
//! the download link bytes that a piece nobody fetches could have used.
//! Pieces no peer has (a seed in initial seeding has not shown them yet)
//! do not hold endgame back.

use std::collections::HashMap;

/// Identifies one connection (a connection thread) within the process.
pub type ConnId = u64;

/// At most this many connections fetch the same piece in endgame.
pub const MAX_OWNERS: usize = 3;
/// Peers remembered per piece as having sent it bad; the oldest is
/// forgotten first (a peer is banned after 3 bad pieces anyway).
pub const MAX_FAILED_BY: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceState {
    Have,
    InFlight,
    Queued,
    NotNeeded,
}

#[derive(Debug)]
pub struct Picker {
    state: Vec<PieceState>,
    owners: Vec<Vec<ConnId>>,
    availability: Vec<u32>,
    /// Peers (by the coordinator's peer key) that sent a bad copy of a piece.
    failed_by: HashMap<u32, Vec<u64>>,
    have: u32,
    queued: u32,
    rng: fastrand::Rng,
}

impl Picker {
    /// `have[i]` tells which pieces are already verified.
    pub fn new(have: &[bool]) -> Picker {
        let n = have.len();
        let state: Vec<PieceState> = have
            .iter()
            .map(|h| {
                if *h {
                    PieceState::Have
                } else {
                    PieceState::Queued
                }
            })
            .collect();
        let hv = have.iter().filter(|h| **h).count() as u32;
        Picker {
            state,
            owners: vec![Vec::new(); n],
            availability: vec![0; n],
            failed_by: HashMap::new(),
            have: hv,
            queued: n as u32 - hv,
            rng: fastrand::Rng::new(),
        }
    }

    pub fn num_pieces(&self) -> u32 {
        self.state.len() as u32
    }
    pub fn have_count(&self) -> u32 {
        self.have
    }
    pub fn queued_count(&self) -> u32 {
        self.queued
    }
    pub fn state(&self, i: u32) -> Option<PieceState> {
        self.state.get(i as usize).copied()
    }
    pub fn have(&self, i: u32) -> bool {
        self.state(i) == Some(PieceState::Have)
    }
    pub fn owners(&self, i: u32) -> &[ConnId] {
        self.owners.get(i as usize).map(|v| &v[..]).unwrap_or(&[])
    }
    /// Every needed piece is verified.
    pub fn is_complete(&self) -> bool {
        self.state
            .iter()
            .all(|s| matches!(s, PieceState::Have | PieceState::NotNeeded))
    }
    pub fn availability(&self, i: u32) -> u32 {
        self.availability.get(i as usize).copied().unwrap_or(0)
    }

    pub fn peer_added(&mut self, has: impl Fn(usize) -> bool) {
        for (i, a) in self.availability.iter_mut().enumerate() {
            if has(i) {
                *a += 1;
            }
        }
    }
    pub fn peer_removed(&mut self, has: impl Fn(usize) -> bool) {
        for (i, a) in self.availability.iter_mut().enumerate() {
            if has(i) {
                *a = a.saturating_sub(1);
            }
        }
    }
    pub fn peer_has(&mut self, i: u32) {
        if let Some(a) = self.availability.get_mut(i as usize) {
            *a += 1;
        }
    }

    fn failed(&self, i: usize, key: u64) -> bool {
        self.failed_by
            .get(&(i as u32))
            .is_some_and(|v| v.contains(&key))
    }

    /// Chooses a piece for connection `conn` (peer `key`) among the pieces
    /// `has` says the peer has, and marks it in flight for `conn`.
    pub fn pick(&mut self, conn: ConnId, key: u64, has: impl Fn(usize) -> bool) -> Option<u32> {
        // Rarest queued piece this peer has not sent us bad before.
        let mut best: Option<usize> = None;
        let mut best_avail = u32::MAX;
        let mut ties = 0u32;
        let mut failed_fallback: Option<usize> = None;
        // A queued piece some connected peer has: no endgame yet.
        let mut fetchable = false;
        if self.queued > 0 {
            for i in 0..self.state.len() {
                if self.state[i] != PieceState::Queued {
                    continue;
                }
                fetchable |= self.availability[i] > 0;
                if !has(i) {
                    continue;
                }
                if self.failed(i, key) {
                    failed_fallback.get_or_insert(i);
                    continue;
                }
                let a = self.availability[i];
                if a < best_avail {
                    best = Some(i);
                    best_avail = a;
                    ties = 1;
                } else if a == best_avail {
                    ties += 1;
                    if self.rng.u32(..ties) == 0 {
                        best = Some(i);
                    }
                }
            }
        }
        // Endgame (no queued piece that anyone has): share a piece
        // already in flight with the fewest owners.
        if best.is_none() && !fetchable {
            let mut fewest = MAX_OWNERS;
            for i in 0..self.state.len() {
                if self.state[i] != PieceState::InFlight
                    || !has(i)
                    || self.owners[i].contains(&conn)
                    || self.failed(i, key)
                {
                    continue;
                }
                let o = self.owners[i].len();
                if o < fewest {
                    fewest = o;
                    best = Some(i);
                    ties = 1;
                } else if o == fewest && o < MAX_OWNERS {
                    ties += 1;
                    if self.rng.u32(..ties) == 0 {
                        best = Some(i);
                    }
                }
            }
        }
        // Last resort: a piece this peer once sent bad (it has more tries
        // before it is dropped, and nobody else may have the piece).
        let i = best.or(failed_fallback)?;
        if self.state[i] == PieceState::Queued {
            self.queued -= 1;
        }
        self.state[i] = PieceState::InFlight;
        self.owners[i].push(conn);
        Some(i as u32)
    }

    fn remove_owner(&mut self, i: usize, conn: ConnId) {
        self.owners[i].retain(|c| *c != conn);
        if self.owners[i].is_empty() && self.state[i] == PieceState::InFlight {
            self.state[i] = PieceState::Queued;
            self.queued += 1;
        }
    }

    /// `conn` gives the piece back (disconnect, choke, cancel).
    pub fn release(&mut self, i: u32, conn: ConnId) {
        if (i as usize) < self.state.len() {
            self.remove_owner(i as usize, conn);
        }
    }

    /// The piece arrived with a bad hash from `conn` (peer `key`).
    pub fn failed_piece(&mut self, i: u32, conn: ConnId, key: u64) {
        if (i as usize) < self.state.len() {
            let v = self.failed_by.entry(i).or_default();
            if !v.contains(&key) {
                if v.len() >= MAX_FAILED_BY {
                    v.remove(0);
                }
                v.push(key);
            }
            self.remove_owner(i as usize, conn);
        }
    }

    /// The piece is verified and written. Returns the other connections that
    /// still had it in flight (to be told to cancel). False in the first
    /// element when the piece was already had (a duplicate in endgame).
    pub fn completed(&mut self, i: u32, conn: ConnId) -> (bool, Vec<ConnId>) {
        let Some(s) = self.state.get(i as usize).copied() else {
            return (false, Vec::new());
        };
        let others: Vec<ConnId> = std::mem::take(&mut self.owners[i as usize])
            .into_iter()
            .filter(|c| *c != conn)
            .collect();
        match s {
            PieceState::Have => (false, others),
            _ => {
                if s == PieceState::Queued {
                    self.queued -= 1;
                }
                self.state[i as usize] = PieceState::Have;
                self.have += 1;
                self.failed_by.remove(&i);
                (true, others)
            }
        }
    }

    /// Checks the module invariants; used by tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut have = 0;
        let mut queued = 0;
        for (i, s) in self.state.iter().enumerate() {
            let owned = !self.owners[i].is_empty();
            match s {
                PieceState::InFlight if !owned => return Err(format!("{i} in flight, no owner")),
                PieceState::Have | PieceState::Queued | PieceState::NotNeeded if owned => {
                    return Err(format!("{i} is {s:?} but owned by {:?}", self.owners[i]))
                }
                PieceState::Have => have += 1,
                PieceState::Queued => queued += 1,
                _ => {}
            }
        }
        if have != self.have || queued != self.queued {
            return Err(format!(
                "counts: have {have}/{} queued {queued}/{}",
                self.have, self.queued
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarest_first() {
        let mut p = Picker::new(&[false; 4]);
        p.peer_added(|_| true);
        p.peer_added(|i| i == 2 || i == 3);
        p.peer_added(|i| i == 3);
        // Piece 0 and 1 have availability 1, 2 has 2, 3 has 3.
        let a = p.pick(1, 1, |_| true).unwrap();
        assert!(a == 0 || a == 1);
        let b = p.pick(1, 1, |_| true).unwrap();
        assert_eq!(a + b, 1);
        assert_eq!(p.pick(1, 1, |_| true), Some(2));
        assert_eq!(p.pick(1, 1, |_| true), Some(3));
        assert_eq!(
            p.pick(1, 1, |_| true),
            None,
            "no duplicate for the same conn"
        );
        p.check_invariants().unwrap();
    }

    #[test]
    fn random_among_equals() {
        let mut seen = [0u32; 8];
        for _ in 0..400 {
            let mut p = Picker::new(&[false; 8]);
            p.peer_added(|_| true);
            seen[p.pick(1, 1, |_| true).unwrap() as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 10), "{seen:?}");
    }

    #[test]
    fn only_pieces_the_peer_has_and_not_had() {
        let mut p = Picker::new(&[true, false, false]);
        assert_eq!(p.pick(1, 1, |i| i == 0), None);
        assert_eq!(p.pick(1, 1, |i| i != 1), Some(2));
        p.check_invariants().unwrap();
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let mut p = Picker::new(&[false; 2]);
        assert_eq!(p.pick(1, 1, |i| i == 0), Some(0));
        assert_eq!(p.pick(1, 1, |i| i == 1), Some(1));
        // Conn 2 arrives: nothing queued, so it shares a piece in flight.
        let d = p.pick(2, 2, |_| true).unwrap();
        assert_eq!(p.queued_count(), 0);
        assert_eq!(p.owners(d), &[1, 2]);
        let (new, others) = p.completed(d, 2);
        assert!(new);
        assert_eq!(others, vec![1]);
        let (new, _) = p.completed(d, 1);
        assert!(!new, "the loser's copy is a duplicate");
        p.check_invariants().unwrap();
        // Owners are capped.
        let mut p = Picker::new(&[false]);
        for c in 0..10 {
            let got = p.pick(c, c, |_| true);
            assert_eq!(got.is_some(), (c as usize) < MAX_OWNERS);
        }
    }

    #[test]
    fn no_endgame_while_a_queued_piece_is_had_by_a_peer() {
        let mut p = Picker::new(&[false; 3]);
        p.peer_added(|_| true);
        assert_eq!(p.pick(1, 1, |i| i == 0), Some(0));
        // Conn 2's peer has only piece 0 (in flight at conn 1), and piece 1
        // or 2 is still queued for someone else: conn 2 waits.
        assert_eq!(p.pick(2, 2, |i| i == 0), None);
        assert_eq!(p.owners(0), &[1]);
        assert_eq!(p.pick(3, 3, |_| true).map(|i| i >= 1), Some(true));
        assert_eq!(p.pick(3, 3, |_| true).map(|i| i >= 1), Some(true));
        // Now every piece is in flight: endgame.
        assert_eq!(p.pick(2, 2, |i| i == 0), Some(0));
        assert_eq!(p.owners(0), &[1, 2]);
        p.check_invariants().unwrap();
    }

    #[test]
    fn pieces_nobody_has_do_not_hold_endgame_back() {
        let mut p = Picker::new(&[false; 3]);
        // Two peers have piece 0 only; pieces 1 and 2 are nowhere yet.
        p.peer_added(|i| i == 0);
        p.peer_added(|i| i == 0);
        assert_eq!(p.pick(1, 1, |i| i == 0), Some(0));
        assert_eq!(p.queued_count(), 2);
        assert_eq!(p.pick(2, 2, |i| i == 0), Some(0), "endgame");
        assert_eq!(p.owners(0), &[1, 2]);
        // Piece 1 shows up at a third peer: a queued piece someone has, so
        // no more endgame for others until it is in flight.
        p.peer_has(1);
        assert_eq!(p.pick(3, 3, |i| i == 0), None);
        assert_eq!(p.pick(3, 3, |i| i == 1), Some(1));
        assert_eq!(p.pick(3, 3, |i| i == 0), Some(0));
        p.check_invariants().unwrap();
    }

    #[test]
    fn release_and_failure_requeue() {
        let mut p = Picker::new(&[false; 2]);
        p.peer_added(|_| true);
        p.peer_added(|_| true);
        let a = p.pick(1, 10, |_| true).unwrap();
        p.release(a, 1);
        assert_eq!(p.state(a), Some(PieceState::Queued));
        let a = p.pick(1, 10, |i| i == 0).unwrap();
        assert_eq!(a, 0);
        p.failed_piece(0, 1, 10);
        assert_eq!(p.state(0), Some(PieceState::Queued));
        // Peer 10 is offered the other piece first, peer 20 gets piece 0.
        assert_eq!(p.pick(1, 10, |_| true), Some(1));
        assert_eq!(p.pick(2, 20, |i| i == 0), Some(0));
        p.release(0, 2);
        // Only peer 10 is left with piece 0: it may try again.
        assert_eq!(p.pick(1, 10, |i| i == 0), Some(0));
        p.check_invariants().unwrap();
        assert!(!p.is_complete());
        p.completed(0, 1);
        p.completed(1, 1);
        assert!(p.is_complete());
        p.check_invariants().unwrap();
    }

    #[test]
    fn random_operations_keep_invariants() {
        let n = 50;
        let mut p = Picker::new(&vec![false; n]);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5000 {
            let conn = rng.u64(0..5);
            match rng.u8(0..4) {
                0 => {
                    p.pick(conn, conn, |i| !(i as u64 + conn).is_multiple_of(3));
                }
                1 => p.release(rng.u32(0..n as u32), conn),
                2 => {
                    let i = rng.u32(0..n as u32);
                    if p.owners(i).contains(&conn) {
                        p.completed(i, conn);
                    }
                }
                _ => p.failed_piece(rng.u32(0..n as u32), conn, conn),
            }
            p.check_invariants().unwrap();
        }
    }
}
