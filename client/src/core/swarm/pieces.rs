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

use super::peers::PeerTable;
use super::{Action, MAX_STRIKES, MAX_SUMMARY_PEERS, OTHER_PEERS};
use crate::core::msg::{
    count, BoxError, CloseReason, Command, Event, Notice, Opened, Summary, Tracked,
};
use crate::core::picker::{ConnId, Picker};
use crate::core::shared::{pieces_per_peer, Meta};

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
        Live {
            seeding: picker.is_complete() && !download,
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
        p.bits = Some(bits);
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
        if bits.all() && self.seeding {
            cx.send(conn, Command::Close(CloseReason::BothSeeders));
            return;
        }
        self.update_interest(cx, conn);
        self.assign(cx, conn);
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

    /// Hands pieces to `conn` until it holds as many as it should.
    pub fn assign(&mut self, cx: &mut Ctx, conn: ConnId) {
        if self.seeding || self.finishing {
            return;
        }
        let Some(p) = cx.peers.get_mut(conn) else {
            return;
        };
        if !p.unchoked_us || p.bits.is_none() || p.dropped {
            return;
        }
        let cap = pieces_per_peer(self.meta.geometry.nominal_piece_len());
        while p.assigned.len() < cap {
            let Some(i) = self.picker.pick(conn, p.key, |i| p.has(i)) else {
                break;
            };
            p.assigned.insert(i);
            cx.out.push(Action::Send(conn, Command::Fetch(i)));
        }
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

    /// A peer left: what it had no longer counts, what it held is queued.
    pub fn peer_gone(
        &mut self,
        conn: ConnId,
        bits: Option<&Bitfield>,
        held: impl Iterator<Item = u32>,
    ) {
        if let Some(b) = bits {
            self.picker.peer_removed(|i| b.get(i));
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
        let conns = cx.peers.conns();
        for c in &conns {
            if let Some(p) = cx.peers.get_mut(*c) {
                if p.has(index as usize) {
                    p.missing = p.missing.saturating_sub(1);
                } else {
                    cx.send(*c, Command::Have(index));
                }
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
