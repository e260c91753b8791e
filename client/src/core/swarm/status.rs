//! The swarm's status snapshot for the progress line and the menu: rates
//! over the last second or more, and what each stage knows of the size and
//! the pieces.

use std::time::Instant;

use super::{Stage, Swarm};
use crate::core::msg::{Phase, TorrentStatus};

/// Download and upload rates, measured over at least a second.
#[derive(Debug)]
pub(super) struct Rates {
    last: (Instant, u64, u64),
    rates: (f64, f64),
}

impl Rates {
    pub fn new(now: Instant) -> Rates {
        Rates {
            last: (now, 0, 0),
            rates: (0.0, 0.0),
        }
    }

    /// Bytes per second down and up, given the counters at `now`.
    pub fn update(&mut self, now: Instant, downloaded: u64, uploaded: u64) -> (f64, f64) {
        let (t0, d0, u0) = self.last;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt >= 1.0 {
            self.rates = (
                downloaded.saturating_sub(d0) as f64 / dt,
                uploaded.saturating_sub(u0) as f64 / dt,
            );
            self.last = (now, downloaded, uploaded);
        }
        self.rates
    }
}

impl Stage {
    /// Fills in the size, pieces and paths this stage knows.
    pub(super) fn fill(&self, s: &mut TorrentStatus) {
        match self {
            Stage::Checking { total, size, .. } => {
                s.size = Some(*size);
                s.pieces_total = *total;
            }
            Stage::Live(l) => {
                let g = &l.meta.geometry;
                s.size = Some(g.total_len());
                s.pieces_total = g.num_pieces();
                s.pieces_have = l.picker.have_count();
                s.bytes_have = if l.picker.is_complete() {
                    g.total_len()
                } else {
                    (l.picker.have_count() as u64 * g.nominal_piece_len()).min(g.total_len())
                };
                s.paths = l.paths.clone();
            }
            Stage::Metadata(_) | Stage::Failed(_) | Stage::Stopped => {}
        }
    }
}

impl Swarm {
    /// A snapshot for the progress display and the menu. `downloaded` and
    /// `uploaded` are the torrent's byte counters, `checked` how many pieces
    /// the storage check has hashed so far.
    pub fn status(
        &mut self,
        now: Instant,
        downloaded: u64,
        uploaded: u64,
        checked: u32,
    ) -> TorrentStatus {
        let (down_rate, up_rate) = self.rates.update(now, downloaded, uploaded);
        let mut phase = self.phase();
        if let Phase::Checking { done, .. } = &mut phase {
            *done = checked;
        }
        let mut s = TorrentStatus {
            info_hash: self.cfg.info_hash,
            name: self.name.clone(),
            size: None,
            pieces_total: 0,
            pieces_have: 0,
            bytes_have: 0,
            downloaded,
            uploaded,
            peers: self.peer_count(),
            down_rate,
            up_rate,
            phase,
            paths: Vec::new(),
            problem: self.corrupt.clone().or_else(|| self.unlisted.clone()),
        };
        self.stage.fill(&mut s);
        s
    }
}
