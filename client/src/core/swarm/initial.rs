//! Initial seeding (BEP 16's super-seeding, automatic): while some piece
//! has never left a seeder, its upload is the swarm's bottleneck, and every
//! piece it sends twice is time everyone waits. So a torrent that starts
//! complete hides its pieces: its connections greet without a BITFIELD, and
//! each peer is shown (with HAVE) a few pieces that no peer has and nobody
//! else was shown. When the peer says HAVE for one, it gets the next; what
//! it got, it passes on to the others, who fetch it from it and not from us.
//! Once every piece is had by a peer or shown to one, there is nothing new
//! to give: every hidden peer is shown everything (HAVE for each piece) and
//! the torrent seeds as usual, its spare upload going to the last pieces.
//!
//! [`InitialSeeding`] keeps each piece's state; the peers' shown pieces are
//! in their [`Peer::shown`](super::peers::Peer).

use std::fmt;
use std::time::{Duration, Instant};

use minitorrent_common::wire::Bitfield;

use crate::core::shared::pipeline_bytes;

/// Piece data shown to one peer at once, at least 2 pieces (one arriving
/// while the next is asked for): the pieces a peer still holds alone when
/// the seed has shown everything must pass on to all the others, so the
/// less the better (on the emulated LAN of docs/BENCHMARKS.md 64 KiB ended
/// sooner than 128 and 256 KiB; 2 pieces of 32 KiB still kept the seed's
/// upload busy). A peer that takes them fast is shown what it would ask
/// for at its rate (`pieces_for_rate`), when that is more.
pub const SHOW_BYTES: u64 = 64 << 10;
/// Shown pieces, and for this long no HAVE for a piece nobody had and no
/// piece data sent to a hidden peer: initial seeding gives up and shows
/// everything.
pub const SHOW_STALL: Duration = Duration::from_secs(5);
/// Pieces shown to one peer at once at most; also what the only hidden
/// peer is shown: nobody else could take a piece from it twice, and the
/// next pieces are there while its `HAVE` for the last travels (on
/// loopback a peer takes a 1 MiB piece in a millisecond). When a second
/// peer comes, the first is not topped up again until it is within its
/// usual window.
pub const MAX_WINDOW: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// No peer is known to have it, and nobody was shown it.
    Fresh,
    /// Shown to this many peers, none of which has said it has it yet.
    Shown(u16),
    /// A peer said it has it.
    Had,
}

/// Which pieces have left us (or are on their way to a peer).
pub struct InitialSeeding {
    pieces: Vec<Piece>,
    fresh: usize,
    /// Where the search for the next fresh piece goes on.
    cursor: usize,
    window: usize,
    /// The pieces in `Piece::Shown`: at most a window per peer.
    shown: Vec<u32>,
    /// When the stall clock started: the last HAVE for a piece nobody had,
    /// the last piece data sent to a hidden peer, or the first tick with
    /// pieces waiting; `None` while nothing is waiting.
    progress: Option<Instant>,
}

impl fmt::Debug for InitialSeeding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InitialSeeding {{ {} of {} pieces fresh, {} shown, window {} }}",
            self.fresh,
            self.pieces.len(),
            self.shown.len(),
            self.window
        )
    }
}

impl InitialSeeding {
    pub fn new(num_pieces: usize, piece_len: u64) -> InitialSeeding {
        InitialSeeding {
            pieces: vec![Piece::Fresh; num_pieces],
            fresh: num_pieces,
            cursor: 0,
            window: window(piece_len),
            shown: Vec::new(),
            progress: None,
        }
    }

    /// Whether pieces were shown and none was had for `limit` until `now`.
    /// The clock starts at the first call with pieces waiting.
    pub fn stalled(&mut self, now: Instant, limit: Duration) -> bool {
        let since = *self.progress.get_or_insert(now);
        now.saturating_duration_since(since) >= limit
    }

    /// Nothing is waiting: the stall clock stops.
    pub fn quiet(&mut self) {
        self.progress = None;
    }

    /// The shown pieces are on their way (data went out): the stall clock
    /// starts again from `now`.
    pub fn progress(&mut self, now: Instant) {
        if self.progress.is_some() {
            self.progress = Some(now);
        }
    }

    /// Pieces shown to one peer at once.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Every piece is had by some peer: time to show everything.
    pub fn is_over(&self) -> bool {
        self.fresh == 0 && self.shown.is_empty()
    }

    /// A peer has piece `i`.
    pub fn had(&mut self, i: u32) {
        match self.pieces.get(i as usize) {
            Some(Piece::Fresh) => self.fresh -= 1,
            Some(Piece::Shown(_)) => self.shown.retain(|s| *s != i),
            _ => return,
        }
        self.pieces[i as usize] = Piece::Had;
        self.progress = None;
    }

    /// A peer has every piece set in `bits`.
    pub fn had_all(&mut self, bits: &Bitfield) {
        (0..bits.len())
            .filter(|&i| bits.get(i))
            .for_each(|i| self.had(i as u32));
    }

    /// A peer shown piece `i` left without it.
    pub fn unshown(&mut self, i: u32) {
        if let Some(Piece::Shown(c)) = self.pieces.get(i as usize).copied() {
            if c > 1 {
                self.pieces[i as usize] = Piece::Shown(c - 1);
            } else {
                self.pieces[i as usize] = Piece::Fresh;
                self.shown.retain(|s| *s != i);
                self.fresh += 1;
                self.cursor = self.cursor.min(i as usize);
            }
        }
    }

    /// A piece to show a peer, now marked shown; `skip` rules out what the
    /// peer has or was shown already. A fresh piece first, in index order
    /// (the file leaves us front to back); when none is left, a piece
    /// shown to the fewest others that none of them has said it has yet:
    /// the last pieces go out twice rather than wait on one slow peer.
    pub fn show(&mut self, skip: impl Fn(usize) -> bool) -> Option<u32> {
        if self.fresh > 0 {
            let n = self.pieces.len();
            let mut i = self.cursor;
            while i < n {
                if self.pieces[i] == Piece::Fresh && !skip(i) {
                    self.pieces[i] = Piece::Shown(1);
                    self.shown.push(i as u32);
                    self.fresh -= 1;
                    return Some(i as u32);
                }
                // Only pieces that are no longer fresh move the cursor: a
                // fresh one this peer has is still for the next peer.
                if i == self.cursor && self.pieces[i] != Piece::Fresh {
                    self.cursor += 1;
                }
                i += 1;
            }
            // Every fresh piece is one the peer has: it needs none of ours
            // that are fresh, so fall through to the shown ones.
            self.cursor = self.first_fresh();
        }
        let (i, c) = self
            .shown
            .iter()
            .filter(|i| !skip(**i as usize))
            .filter_map(|i| match self.pieces[*i as usize] {
                Piece::Shown(c) => Some((*i, c)),
                _ => None,
            })
            .min_by_key(|(_, c)| *c)?;
        self.pieces[i as usize] = Piece::Shown(c.saturating_add(1));
        Some(i)
    }

    fn first_fresh(&self) -> usize {
        self.pieces
            .iter()
            .position(|p| *p == Piece::Fresh)
            .unwrap_or(self.pieces.len())
    }
}

/// Pieces shown to one peer at once for pieces of `piece_len` bytes:
/// [`SHOW_BYTES`] of them, at least 2 (one arriving while the next is
/// asked for).
pub fn window(piece_len: u64) -> usize {
    (SHOW_BYTES / piece_len.max(1)).clamp(2, MAX_WINDOW as u64) as usize
}

/// Pieces shown at once to a peer that takes its shown pieces at `rate`
/// bytes/s over a round trip `rtt`: what it requests at that rate
/// ([`pipeline_bytes`]) when that is more than `base`, at most
/// [`MAX_WINDOW`] pieces.
pub fn window_for_rate(base: usize, piece_len: u64, rate: f64, rtt: Option<Duration>) -> usize {
    let want = pipeline_bytes(Some(rate), rtt).div_ceil(piece_len.max(1));
    (want.min(MAX_WINDOW as u64) as usize).max(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_piece_is_shown_once_front_to_back() {
        let mut s = InitialSeeding::new(5, 16 << 10);
        assert_eq!(s.window(), 4);
        assert_eq!(s.show(|_| false), Some(0));
        assert_eq!(s.show(|_| false), Some(1));
        // The peer already has piece 2: skipped, shown to someone else.
        assert_eq!(s.show(|i| i == 2), Some(3));
        assert_eq!(s.show(|_| false), Some(2));
        assert_eq!(s.show(|_| false), Some(4));
        // Nothing fresh: a piece shown to the fewest, never one the peer
        // has or was shown.
        assert_eq!(s.show(|i| i != 3), Some(3));
        assert_eq!(s.show(|i| i == 0), Some(1));
        assert!(!s.is_over());
        for i in 0..5 {
            s.had(i);
        }
        assert!(s.is_over());
        assert_eq!(s.show(|_| false), None);
    }

    #[test]
    fn a_piece_had_by_a_peer_is_never_shown_and_a_lost_one_is_shown_again() {
        let mut s = InitialSeeding::new(3, 1 << 20);
        assert_eq!(s.window(), 2);
        s.had(1);
        assert_eq!(s.show(|_| false), Some(0));
        assert_eq!(s.show(|_| false), Some(2));
        // Shown to a second peer (nothing fresh), then both leave.
        assert_eq!(s.show(|i| i == 2), Some(0));
        s.unshown(0);
        s.unshown(0);
        // Fresh again: the next peer gets it before any shown piece.
        assert_eq!(s.show(|_| false), Some(0));
        // A piece had stays had; out of range is ignored.
        s.unshown(1);
        s.had(7);
        s.unshown(7);
        s.had(0);
        s.had(0);
        assert!(!s.is_over(), "piece 2 is only shown");
        s.had(2);
        assert!(s.is_over());
    }

    #[test]
    fn a_fast_peer_is_shown_what_it_requests_within_bounds() {
        let kib = 1024u64;
        // 5 MB/s over a LAN: 60 ms of it plus 32 KiB is 332 kB, 11 pieces
        // of 32 KiB.
        assert_eq!(window_for_rate(2, 32 * kib, 5e6, None), 11);
        // A slow peer keeps the base window.
        assert_eq!(window_for_rate(2, 32 * kib, 1e3, None), 2);
        assert_eq!(window_for_rate(8, 32 * kib, 1e3, None), 8);
        // Loopback: 1 GB/s of 1 MiB pieces is 58; 5 GB/s is capped.
        assert_eq!(window_for_rate(2, 1 << 20, 1e9, None), 58);
        assert_eq!(window_for_rate(2, 1 << 20, 5e9, None), MAX_WINDOW);
        assert_eq!(window(1 << 20), 2);
        assert_eq!(window(16 * kib), 4);
        assert_eq!(window(1), MAX_WINDOW);
    }

    #[test]
    fn a_peer_that_has_every_fresh_piece_gets_a_shown_one() {
        let mut s = InitialSeeding::new(3, 1 << 20);
        assert_eq!(s.show(|_| false), Some(0));
        assert_eq!(s.show(|i| i == 1 || i == 2), Some(0));
        assert_eq!(s.show(|_| false), Some(1));
        assert_eq!(s.show(|_| false), Some(2));
    }
}
