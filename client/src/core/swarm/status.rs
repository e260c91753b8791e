//! The swarm's status snapshot for the progress line and the menu: rates
//! over the last second or more, and what each stage knows of the size and
//! the pieces. Also the detail of a torrent's web page: its peers, its
//! piece map, its files, its rate history.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Stage, Swarm};
use crate::core::msg::{
    FileRow, PeerRow, Phase, PieceMark, TorrentDetail, TorrentStatus, TrackerNote, HISTORY,
};
use crate::core::picker::{ConnId, PieceState};
use crate::core::shared::client_name;

/// Download and upload rates, measured over at least a second, and the
/// last [`HISTORY`] of them.
#[derive(Debug)]
pub struct Rates {
    last: (Instant, u64, u64),
    rates: (f64, f64),
    history: VecDeque<(Instant, f64, f64)>,
    /// Samples kept: [`HISTORY`] for a torrent, none for a connection.
    keep: usize,
}

impl Rates {
    pub fn new(now: Instant) -> Rates {
        Rates {
            last: (now, 0, 0),
            rates: (0.0, 0.0),
            history: VecDeque::new(),
            keep: HISTORY,
        }
    }

    /// The rates alone, without a history (one connection's).
    pub fn without_history(now: Instant) -> Rates {
        Rates {
            keep: 0,
            ..Rates::new(now)
        }
    }

    /// The rates measured, oldest first, as (seconds before `now`, down, up).
    pub fn history(&self, now: Instant) -> Vec<(f64, f64, f64)> {
        self.history
            .iter()
            .map(|&(t, d, u)| (-now.saturating_duration_since(t).as_secs_f64(), d, u))
            .collect()
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
            if self.keep > 0 {
                if self.history.len() == self.keep {
                    self.history.pop_front();
                }
                self.history.push_back((now, self.rates.0, self.rates.1));
            }
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
        match &self.stage {
            // A torrent that stopped (paused, removed) or failed keeps
            // showing what it had.
            Stage::Stopped | Stage::Failed(_) => {
                if let Some(k) = &self.known {
                    (s.size, s.pieces_total, s.pieces_have, s.bytes_have) =
                        (k.size, k.pieces_total, k.pieces_have, k.bytes_have);
                    s.paths.clone_from(&k.paths);
                }
            }
            _ => self.known = Some(s.clone()),
        }
        s
    }
}

/// What the connection threads know of a connection and the swarm does not:
/// whether we choke it, and the bytes and rates of its pieces.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnFigures {
    pub am_choking: bool,
    pub downloaded: u64,
    pub uploaded: u64,
    pub down_rate: f64,
    pub up_rate: f64,
}

impl Swarm {
    /// Everything a torrent's page shows; `status` is [`Swarm::status`]'s
    /// at `now`, `conn` what the shell knows of each connection.
    pub fn detail(
        &self,
        status: TorrentStatus,
        now: Instant,
        mut conn: impl FnMut(ConnId) -> ConnFigures,
    ) -> TorrentDetail {
        let live = match &self.stage {
            Stage::Live(l) => Some(l),
            _ => None,
        };
        let pieces_total = live.map(|l| l.picker.num_pieces()).unwrap_or(0);
        let mut conns = self.peers.conns();
        conns.sort_unstable();
        let peers = conns
            .into_iter()
            .filter_map(|c| {
                let p = self.peers.get(c)?;
                let f = conn(c);
                let progress = match (&p.bits, pieces_total) {
                    (Some(b), n) if n > 0 && b.len() == n as usize => {
                        Some(b.count() as f64 / f64::from(n))
                    }
                    _ => None,
                };
                Some(PeerRow {
                    addr: p.addr,
                    client: client_name(&p.peer_id),
                    outbound: p.outbound,
                    progress,
                    am_choking: f.am_choking,
                    am_interested: p.am_interested,
                    peer_choking: !p.unchoked_us,
                    peer_interested: p.peer_interested,
                    downloaded: f.downloaded,
                    uploaded: f.uploaded,
                    down_rate: f.down_rate,
                    up_rate: f.up_rate,
                })
            })
            .collect();
        let (pieces, files) = match live {
            Some(l) => {
                let marks: Vec<PieceMark> = (0..l.picker.num_pieces())
                    .map(|i| match l.picker.state(i) {
                        Some(PieceState::Have) => PieceMark::Have,
                        Some(PieceState::InFlight) => PieceMark::InFlight,
                        _ => PieceMark::Missing,
                    })
                    .collect();
                let files = file_rows(&l.meta.info, &marks);
                (marks, files)
            }
            None => (Vec::new(), Vec::new()),
        };
        TorrentDetail {
            status,
            peers,
            pieces,
            files,
            history: self.rates.history(now),
            tracker: self.tracker_note.as_ref().map(|(at, answer)| TrackerNote {
                ago: now.saturating_duration_since(*at).as_secs_f64(),
                answer: answer.clone(),
            }),
        }
    }
}

/// Each file with the share of its bytes in verified pieces.
fn file_rows(info: &minitorrent_common::metainfo::Info, marks: &[PieceMark]) -> Vec<FileRow> {
    let plen = info.piece_length.max(1);
    info.files
        .iter()
        .map(|f| {
            let progress = if f.length == 0 {
                1.0
            } else {
                let (start, end) = (f.offset, f.offset + f.length);
                let mut have = 0u64;
                for i in start / plen..end.div_ceil(plen) {
                    if marks.get(i as usize) == Some(&PieceMark::Have) {
                        let (ps, pe) = (i * plen, (i + 1) * plen);
                        have += pe.min(end) - ps.max(start);
                    }
                }
                have as f64 / f.length as f64
            };
            FileRow {
                path: f.path.join("/"),
                size: f.length,
                progress,
            }
        })
        .collect()
}
