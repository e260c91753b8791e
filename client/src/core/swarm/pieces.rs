//! A live torrent's piece decisions ([`Live`]): interest, which connection
//! fetches which piece (rarest first, endgame), verified and bad pieces,
//! completion and the summary of a finished download.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::Bitfield;

use super::initial::{window_for_rate, InitialSeeding, MAX_WINDOW, SHOW_STALL};
use super::peers::PeerTable;
use super::{Action, MAX_STRIKES, MAX_SUMMARY_PEERS, OTHER_PEERS};
use crate::core::msg::{
    count, BoxError, CloseReason, Command, Event, Notice, Opened, Summary, Tracked,
};
use crate::core::picker::{ConnId, Picker};
use crate::core::shared::{pieces_for_rate, Meta};

/// What a piece decision works with besides the pieces: the peers, where
/// the actions go, the time, and what names the torrent.
pub(super) struct Ctx<'a> {
    pub peers: &'a mut PeerTable,
    pub out: &'a mut Vec<Action>,
    pub now: Instant,
    pub trace: bool,
    pub name: &'a str,
    pub info_hash: InfoHash,
}

impl Ctx<'_> {
    fn send(&mut self, conn: ConnId, c: Command) {
        self.out.push(Action::Send(conn, c));
    }
    fn trace(&mut self, at: SocketAddr, line: impl FnOnce() -> String) {
        if self.trace {
            self.out.push(Action::Trace { at, line: line() });
        }
    }
}

/// Downloading or seeding: the metadata is known and the storage open.
#[derive(Debug)]
pub(super) struct Live {
    pub meta: Arc<Meta>,
    pub picker: Picker,
    pub seeding: bool,
    /// `Action::Finish` is out; nothing more is fetched meanwhile.
    pub finishing: bool,
    pub paths: Vec<PathBuf>,
    pub pieces_on_disk: u32,
    pub pieces_fetched: u32,
    /// Since when pieces can be fetched (the storage open and checked):
    /// the summary's rate is measured from here.
    since: Instant,
    /// Verified bytes per peer name, at most [`MAX_SUMMARY_PEERS`] names.
    from_peers: HashMap<String, u64>,
    /// A torrent that starts complete shows its pieces a few at a time
    /// until every piece has left it (see `initial`).
    pub initial: Option<InitialSeeding>,
}

impl Live {
    /// The storage is open and checked; bitfields that arrived meanwhile
    /// count now.
    pub fn new(o: Opened, download: bool, peers: &mut PeerTable, now: Instant) -> Live {
        let have: Vec<bool> = (0..o.meta.have.len()).map(|i| o.meta.have.get(i)).collect();
        let mut picker = Picker::new(&have);
        for p in peers.values_mut() {
            if let Some(b) = &p.bits {
                if b.len() == have.len() {
                    picker.peer_added(|i| b.get(i));
                    p.missing = (0..b.len()).filter(|&i| b.get(i) && !have[i]).count() as u32;
                } else {
                    p.bits = None;
                }
            }
        }
        let seeding = picker.is_complete() && !download;
        let mut initial =
            seeding.then(|| InitialSeeding::new(have.len(), o.meta.geometry.nominal_piece_len()));
        if let Some(init) = &mut initial {
            for b in peers.values_mut().filter_map(|p| p.bits.as_ref()) {
                init.had_all(b);
            }
        }
        Live {
            seeding,
            initial,
            picker,
            meta: o.meta,
            finishing: false,
            paths: o.paths,
            pieces_on_disk: o.on_disk,
            pieces_fetched: 0,
            since: now,
            from_peers: HashMap::new(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    fn downloading(&self) -> bool {
        !self.seeding
    }

    pub fn tracked(&self, info_hash: InfoHash, complete: bool) -> Tracked {
        Tracked {
            info_hash,
            name: self.meta.info.name.clone(),
            size: self.meta.geometry.total_len(),
            complete,
        }
    }

    /// Just opened: every peer learns that the metadata is known, then
    /// interest and pieces follow (or the download is already complete).
    pub fn start(&mut self, cx: &mut Ctx) {
        for c in cx.peers.conns() {
            cx.send(c, Command::MetadataReady);
        }
        if self.is_complete() {
            self.complete(cx);
            return;
        }
        for c in cx.peers.conns() {
            self.update_interest(cx, c);
        }
        self.assign_all(cx);
    }

    /// The events about pieces; returns the error to fail the download with.
    pub fn handle(&mut self, cx: &mut Ctx, ev: Event, started: Instant) -> Result<(), String> {
        match ev {
            Event::Bitfield { conn, bits } => self.on_bitfield(cx, conn, bits),
            Event::Have { conn, index } => self.on_have(cx, conn, index),
            Event::Unchoked { conn } => self.assign(cx, conn),
            Event::PieceDone { conn, index } => self.on_piece_done(cx, conn, index),
            Event::PieceBad { conn, index } => self.on_piece_bad(cx, conn, index),
            Event::Released { conn, index } => self.on_released(cx, conn, index),
            Event::Rejected { conn, index } => self.on_rejected(cx, conn, index),
            Event::AllowedFast { conn, .. } => self.assign(cx, conn),
            Event::Finished(r) => return self.on_finished(cx, r, started),
            _ => {}
        }
        Ok(())
    }

    pub fn on_bitfield(&mut self, cx: &mut Ctx, conn: ConnId, bits: Bitfield) {
        let Some(p) = cx.peers.get_mut(conn) else {
            return;
        };
        if let Some(old) = &p.bits {
            self.picker.peer_removed(|i| old.get(i));
        }
        self.picker.peer_added(|i| bits.get(i));
        p.missing = (0..bits.len())
            .filter(|&i| bits.get(i) && !self.picker.have(i as u32))
            .count() as u32;
        let seeder = bits.all();
        if let Some(init) = &mut self.initial {
            init.had_all(&bits);
        }
        p.bits = Some(bits);
        self.show(cx, conn);
        if seeder && self.seeding {
            cx.send(conn, Command::Close(CloseReason::BothSeeders));
            return;
        }
        self.update_interest(cx, conn);
        self.assign(cx, conn);
    }

    pub fn on_have(&mut self, cx: &mut Ctx, conn: ConnId, index: u32) {
        let Some(p) = cx.peers.get_mut(conn) else {
            return;
        };
        let n = self.picker.num_pieces() as usize;
        let bits = p.bits.get_or_insert_with(|| Bitfield::new(n));
        if bits.get(index as usize) {
            return;
        }
        bits.set(index as usize);
        self.picker.peer_has(index);
        if !self.picker.have(index) {
            p.missing += 1;
        }
        if let Some(init) = &mut self.initial {
            init.had(index);
            // How fast a hidden peer takes what it is shown sizes its
            // window on a fast link, as it sizes requests (`assign`).
            if p.hidden && p.shown.contains(&index) {
                p.rate.add(self.meta.geometry.nominal_piece_len(), cx.now);
            }
        }
        let seeder = bits.all();
        self.show(cx, conn);
        if seeder && self.seeding {
            cx.send(conn, Command::Close(CloseReason::BothSeeders));
            return;
        }
        self.update_interest(cx, conn);
        self.assign(cx, conn);
    }

    /// A peer joined: a hidden one (greeted without our BITFIELD) is shown
    /// its first pieces, or everything if initial seeding is over.
    pub fn peer_joined(&mut self, cx: &mut Ctx, conn: ConnId) {
        if self.initial.is_some() {
            self.show(cx, conn);
        } else if let Some(p) = cx.peers.get_mut(conn).filter(|p| p.hidden) {
            p.hidden = false;
            cx.send(conn, Command::HaveAll);
        }
    }

    /// Piece data went out to a hidden peer: the pieces shown are being
    /// fetched.
    pub fn served(&mut self, now: Instant) {
        if let Some(init) = &mut self.initial {
            init.progress(now);
        }
    }

    /// The timer of initial seeding: when pieces are shown and for
    /// [`SHOW_STALL`] no peer has said HAVE for a piece nobody had and no
    /// piece data went out to a hidden peer (a client that keeps its HAVEs
    /// from a peer it believes has the piece would never be shown more),
    /// every piece is shown to everyone.
    ///
    /// It also gives a peer that holds no piece another go at the pieces
    /// it rejected (BEP 6): once a tick, not at once, so a peer that keeps
    /// refusing a piece is asked at most once per tick.
    pub fn tick(&mut self, cx: &mut Ctx) {
        for c in cx.peers.conns() {
            let retry = cx
                .peers
                .get_mut(c)
                .filter(|p| p.assigned.is_empty() && !p.rejected.is_empty());
            if let Some(p) = retry {
                p.rejected.clear();
                self.assign(cx, c);
            }
        }
        let Some(init) = &mut self.initial else {
            return;
        };
        let waiting = cx
            .peers
            .values_mut()
            .any(|p| p.hidden && !p.shown.is_empty());
        if !waiting {
            init.quiet();
        } else if init.stalled(cx.now, SHOW_STALL) {
            info!(
                "{}: no peer said it got a piece we showed it for {} s: showing all",
                cx.name,
                SHOW_STALL.as_secs()
            );
            self.end_initial(cx);
        }
    }

    /// Initial seeding: tops up what the hidden peer `conn` is shown to a
    /// window of pieces it does not have; ends initial seeding once every
    /// piece is had by some peer.
    fn show(&mut self, cx: &mut Ctx, conn: ConnId) {
        let Some(init) = &mut self.initial else {
            return;
        };
        let alone = cx.peers.values_mut().filter(|p| p.hidden).count() == 1;
        if let Some(p) = cx.peers.get_mut(conn).filter(|p| p.hidden) {
            let bits = p.bits.take();
            let has = |i: usize| bits.as_ref().is_some_and(|b| b.get(i));
            p.shown.retain(|i| !has(*i as usize));
            let plen = self.meta.geometry.nominal_piece_len();
            let window = match p.rate.bytes_per_sec() {
                _ if alone => MAX_WINDOW,
                Some(r) => window_for_rate(init.window(), plen, r, p.rtt),
                None => init.window(),
            };
            while p.shown.len() < window {
                let shown = &p.shown;
                let Some(i) = init.show(|i| has(i) || shown.contains(&(i as u32))) else {
                    break;
                };
                p.shown.push(i);
                cx.out.push(Action::Send(conn, Command::Have(i)));
            }
            p.rate.waiting(!p.shown.is_empty(), cx.now);
            p.bits = bits;
        }
        if init.is_over() {
            info!(
                "{}: every piece has reached a peer: initial seeding over, showing all",
                cx.name
            );
            self.end_initial(cx);
        }
    }

    /// Initial seeding is over: every hidden peer is shown every piece.
    fn end_initial(&mut self, cx: &mut Ctx) {
        self.initial = None;
        for c in cx.peers.conns() {
            // A seeder among them is being closed: nothing to show.
            if let Some(p) = cx.peers.get_mut(c).filter(|p| p.hidden && !p.is_seeder()) {
                p.hidden = false;
                p.shown.clear();
                let at = p.local;
                cx.send(c, Command::HaveAll);
                cx.trace(at, || "initial seeding over: HAVE for every piece".into());
            }
        }
    }

    pub fn update_interest(&self, cx: &mut Ctx, conn: ConnId) {
        let (downloading, now) = (self.downloading(), cx.now);
        let say = cx
            .peers
            .get_mut(conn)
            .and_then(|p| p.update_interest(downloading, now));
        if let Some(yes) = say {
            cx.send(conn, Command::Interested(yes));
        }
    }

    /// Hands pieces to `conn` until it holds as many as its measured rate
    /// calls for ([`pieces_for_rate`]): a peer is never asked for more than
    /// it delivers in a fraction of a second, so the last pieces are not
    /// queued behind a slow peer's backlog.
    pub fn assign(&mut self, cx: &mut Ctx, conn: ConnId) {
        if self.seeding || self.finishing {
            return;
        }
        let Some(p) = cx.peers.get_mut(conn) else {
            return;
        };
        // A peer that chokes us may still give us its allowed-fast pieces.
        let choked_for_all = !p.unchoked_us && p.allowed_fast.is_empty();
        if choked_for_all || p.bits.is_none() || p.dropped {
            return;
        }
        let cap = pieces_for_rate(
            self.meta.geometry.nominal_piece_len(),
            p.rate.bytes_per_sec(),
            p.rtt,
        );
        while p.assigned.len() < cap {
            let Some(i) = self.picker.pick(conn, p.key, |i| p.may_fetch(i)) else {
                break;
            };
            p.assigned.insert(i);
            cx.out.push(Action::Send(conn, Command::Fetch(i)));
        }
        p.rate.waiting(!p.assigned.is_empty(), cx.now);
    }

    pub fn assign_all(&mut self, cx: &mut Ctx) {
        for c in cx.peers.conns() {
            self.assign(cx, c);
        }
    }

    /// A connection gave a piece back (a long choke).
    pub fn on_released(&mut self, cx: &mut Ctx, conn: ConnId, index: u32) {
        if let Some(p) = cx.peers.get_mut(conn) {
            p.assigned.remove(&index);
        }
        self.picker.release(index, conn);
        self.assign_all(cx);
    }

    /// The peer rejected a request for a piece it held (BEP 6): the piece
    /// goes back to the picker at once, for another peer (or this one
    /// later: see [`Live::tick`]).
    pub fn on_rejected(&mut self, cx: &mut Ctx, conn: ConnId, index: u32) {
        if let Some(p) = cx.peers.get_mut(conn) {
            p.rejected(index);
        }
        self.picker.release(index, conn);
        self.assign_all(cx);
    }

    /// A peer left: what it had no longer counts, what it held is queued.
    pub fn peer_gone(
        &mut self,
        conn: ConnId,
        bits: Option<&Bitfield>,
        held: impl Iterator<Item = u32>,
        shown: &[u32],
    ) {
        if let Some(b) = bits {
            self.picker.peer_removed(|i| b.get(i));
        }
        if let Some(init) = &mut self.initial {
            shown.iter().for_each(|i| init.unshown(*i));
        }
        for i in held {
            self.picker.release(i, conn);
        }
    }

    pub fn on_piece_done(&mut self, cx: &mut Ctx, conn: ConnId, index: u32) {
        let (new, others) = self.picker.completed(index, conn);
        let g = &self.meta.geometry;
        let bytes = g.piece(index).map(|x| g.piece_len(x) as u64).unwrap_or(0);
        if new {
            self.meta.have.set(index as usize);
            // Good data from a peer in good standing: peers dropped before
            // it say nothing about the file any more (see `corrupt_only`).
            if cx.peers.get_mut(conn).is_some_and(|p| !p.dropped) {
                cx.peers.dropped_corrupt = 0;
            }
        }
        if let Some(p) = cx.peers.get_mut(conn) {
            p.assigned.remove(&index);
            p.rate.add(bytes, cx.now);
            let (at, from) = (p.local, p.addr);
            let dup = if new { "" } else { ", already had" };
            cx.trace(at, || {
                format!("piece {index} SHA-1 ok ({bytes} bytes from {from}{dup})")
            });
        }
        for o in others {
            if let Some(op) = cx.peers.get_mut(o) {
                op.assigned.remove(&index);
                cx.send(o, Command::Cancel(index));
            }
        }
        if !new {
            self.assign(cx, conn);
            return;
        }
        self.pieces_fetched += 1;
        if let Some(p) = cx.peers.get_mut(conn) {
            p.pieces_from += 1;
            let name = p.name();
            self.count_from(name, bytes);
        }
        // HAVE goes to every peer, even one that has the piece: a seed
        // that shows its pieces a few at a time (initial seeding, BEP 16)
        // learns from it that the piece arrived and shows the next.
        let conns = cx.peers.conns();
        for c in &conns {
            if let Some(p) = cx.peers.get_mut(*c) {
                if p.has(index as usize) {
                    p.missing = p.missing.saturating_sub(1);
                }
                cx.send(*c, Command::Have(index));
            }
        }
        if self.is_complete() {
            self.complete(cx);
            return;
        }
        for c in conns {
            self.update_interest(cx, c);
        }
        self.assign(cx, conn);
    }

    /// Adds verified bytes to a peer's line of the summary (bounded).
    fn count_from(&mut self, name: String, bytes: u64) {
        let key =
            if self.from_peers.contains_key(&name) || self.from_peers.len() < MAX_SUMMARY_PEERS {
                name
            } else {
                OTHER_PEERS.to_string()
            };
        *self.from_peers.entry(key).or_default() += bytes;
    }

    /// A piece failed its SHA-1 check: a strike for the peer that sent it,
    /// dropped and banned at [`MAX_STRIKES`]. Pieces that were already
    /// assembled when the peer was dropped still arrive (bad, like the
    /// others) before its connection closes: they only go back to the
    /// queue, so the count said never goes past [`MAX_STRIKES`] and the
    /// peer is dropped once.
    pub fn on_piece_bad(&mut self, cx: &mut Ctx, conn: ConnId, index: u32) {
        let Some(p) = cx.peers.get_mut(conn) else {
            self.picker.release(index, conn);
            return;
        };
        p.assigned.remove(&index);
        self.picker.failed_piece(index, conn, p.key);
        let (name, at, addr, listen, id) = (p.name(), p.local, p.addr, p.listen, p.peer_id);
        if p.dropped {
            debug!(
                "{}: piece {index} from {name} failed the SHA-1 check (already dropped)",
                cx.name
            );
            self.assign_all(cx);
            return;
        }
        // A strike count forgotten meanwhile (the table is bounded) may
        // have been above the limit when the ban was forgotten: never say
        // more than the limit.
        let n = cx.peers.strikes.add(&id, listen).min(MAX_STRIKES);
        let dropped = n >= MAX_STRIKES;
        warn!(
            "{}: piece {index} from {name} failed the SHA-1 check (strike {n} of {MAX_STRIKES})",
            cx.name
        );
        cx.trace(at, || {
            let end = if dropped { ": dropped" } else { "" };
            format!("piece {index} SHA-1 MISMATCH from {addr} (strike {n}/{MAX_STRIKES}{end})")
        });
        if dropped {
            warn!(
                "{}: dropping {name} after {}: it sends corrupt data",
                cx.name,
                count(MAX_STRIKES, "bad piece")
            );
            cx.peers.bans.ban(listen, &id);
            cx.peers.dropped_corrupt += 1;
            if let Some(p) = cx.peers.get_mut(conn) {
                p.dropped = true;
            }
            cx.send(conn, Command::Close(CloseReason::BadPieces));
        } else {
            self.assign(cx, conn);
        }
        self.assign_all(cx);
    }

    /// Every piece is verified: finish the files (the coordinator answers
    /// with `Event::Finished`).
    pub fn complete(&mut self, cx: &mut Ctx) {
        if self.finishing || self.seeding {
            return;
        }
        self.finishing = true;
        cx.out.push(Action::Finish);
    }

    /// The files have their final names (or could not get them: the error
    /// for the swarm to fail with). From now on we seed.
    pub fn on_finished(
        &mut self,
        cx: &mut Ctx,
        r: Result<(), BoxError>,
        started: Instant,
    ) -> Result<(), String> {
        if !self.finishing {
            return Ok(());
        }
        self.finishing = false;
        r.map_err(|e| format!("could not finish the download: {e}"))?;
        self.seeding = true;
        info!("{}: complete, seeding", cx.name);
        cx.out.push(Action::Track(self.tracked(cx.info_hash, true)));
        let summary = self.summary(cx.info_hash, cx.now, started);
        cx.out.push(Action::Notify(Notice::Completed(summary)));
        for c in cx.peers.conns() {
            if cx.peers.get(c).is_some_and(|p| p.is_seeder()) {
                cx.send(c, Command::Close(CloseReason::BothSeeders));
            } else {
                self.update_interest(cx, c);
            }
        }
        Ok(())
    }

    fn summary(&self, info_hash: InfoHash, now: Instant, started: Instant) -> Summary {
        let g = &self.meta.geometry;
        let mut from: Vec<(String, u64)> = self
            .from_peers
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        from.sort();
        Summary {
            info_hash,
            name: self.meta.info.name.clone(),
            size: g.total_len(),
            elapsed: now.saturating_duration_since(started),
            fetch_elapsed: now.saturating_duration_since(self.since),
            peers_used: from.iter().filter(|(_, b)| *b > 0).count(),
            pieces_total: g.num_pieces(),
            pieces_fetched: self.pieces_fetched,
            pieces_on_disk: self.pieces_on_disk,
            from_peers: from,
            paths: self.paths.clone(),
        }
    }
}
