//! The swarm's piece decisions: interest, which connection fetches which
//! piece (rarest first, endgame), verified and bad pieces, completion; and
//! before that, fetching the info dictionary from peers (BEP 9).

use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use minitorrent_common::metainfo::Info;
use minitorrent_common::wire::Bitfield;

use super::{Action, Live, Stage, Swarm, MAX_STRIKES, MAX_SUMMARY_PEERS, OTHER_PEERS};
use crate::core::geometry::Geometry;
use crate::core::metadata::MetadataError;
use crate::core::msg::{BoxError, CloseReason, Command, Notice, Opened, Summary};
use crate::core::picker::{ConnId, Picker};
use crate::core::shared::pieces_per_peer;
use crate::core::swarm::INTEREST_LINGER;

impl Swarm {
    fn live_mut(&mut self) -> Option<&mut Live> {
        match &mut self.stage {
            Stage::Live(l) => Some(l),
            _ => None,
        }
    }

    /// Enters the live stage with the storage opened and checked.
    pub(super) fn go_live(&mut self, o: Opened) {
        let have: Vec<bool> = (0..o.meta.have.len()).map(|i| o.meta.have.get(i)).collect();
        let mut picker = Picker::new(&have);
        // Bitfields that arrived while the storage was being checked.
        for p in self.peers.values_mut() {
            if let Some(b) = &p.bits {
                if b.len() == have.len() {
                    picker.peer_added(|i| b.get(i));
                    p.missing = (0..b.len()).filter(|&i| b.get(i) && !have[i]).count() as u32;
                } else {
                    p.bits = None;
                }
            }
        }
        self.name = o.meta.info.name.clone();
        self.pieces_on_disk = o.on_disk;
        let seeding = picker.is_complete() && !self.cfg.download;
        self.stage = Stage::Live(Box::new(Live {
            meta: o.meta,
            picker,
            seeding,
            finishing: false,
            paths: o.paths,
        }));
    }

    pub(super) fn on_opened(&mut self, r: Result<Opened, BoxError>) {
        if !matches!(self.stage, Stage::Checking { .. }) {
            return;
        }
        let o = match r {
            Ok(o) => o,
            Err(e) => return self.fail(e.to_string()),
        };
        let (size, total, on_disk) = (
            o.meta.geometry.total_len(),
            o.meta.geometry.num_pieces(),
            o.on_disk,
        );
        if on_disk > 0 {
            info!(
                "{}: resume: {on_disk} of {total} pieces already verified on disk",
                o.meta.info.name
            );
        }
        let from_peers = matches!(
            self.stage,
            Stage::Checking {
                from_peers: true,
                ..
            }
        );
        self.go_live(o);
        if from_peers {
            self.out.push(Action::Notify(Notice::MetadataReceived {
                info_hash: self.cfg.info_hash,
                name: self.name.clone(),
                size,
                pieces_on_disk: on_disk,
                pieces_total: total,
            }));
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in &conns {
            self.send(*c, Command::MetadataReady);
        }
        let complete = self.live_mut().is_some_and(|l| l.picker.is_complete());
        if complete {
            self.complete();
            return;
        }
        if from_peers {
            // A .torrent's download registered when it started.
            self.track(false);
        }
        for c in conns {
            self.update_interest(c);
        }
        self.assign_all();
    }

    pub(super) fn on_bitfield(&mut self, conn: ConnId, bits: Bitfield) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let Stage::Live(l) = &mut self.stage else {
            // Kept until the storage check is done (the connection holds
            // it back while the metadata is unknown).
            p.bits = Some(bits);
            return;
        };
        if let Some(old) = &p.bits {
            l.picker.peer_removed(|i| old.get(i));
        }
        l.picker.peer_added(|i| bits.get(i));
        p.missing = (0..bits.len())
            .filter(|&i| bits.get(i) && !l.picker.have(i as u32))
            .count() as u32;
        let seeder = bits.all();
        p.bits = Some(bits);
        if seeder && l.seeding {
            self.close(conn, CloseReason::BothSeeders);
            return;
        }
        self.update_interest(conn);
        self.assign(conn);
    }

    pub(super) fn on_have(&mut self, conn: ConnId, index: u32) {
        let Stage::Live(l) = &mut self.stage else {
            return;
        };
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let n = l.picker.num_pieces() as usize;
        let bits = p.bits.get_or_insert_with(|| Bitfield::new(n));
        if bits.get(index as usize) {
            return;
        }
        bits.set(index as usize);
        l.picker.peer_has(index);
        if !l.picker.have(index) {
            p.missing += 1;
        }
        if bits.all() && l.seeding {
            self.close(conn, CloseReason::BothSeeders);
            return;
        }
        self.update_interest(conn);
        self.assign(conn);
    }

    /// Interest follows what the peer has that we lack. It is said at once
    /// when it starts, and when it ends because we need nothing more; when
    /// it ends because we caught up with a leecher, only after
    /// [`INTEREST_LINGER`] without a new piece from it (see `tick`).
    pub(super) fn update_interest(&mut self, conn: ConnId) {
        let downloading = matches!(&self.stage, Stage::Live(l) if !l.seeding);
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let want = downloading && p.missing > 0;
        let mut say = None;
        if want {
            p.interest_lost_at = None;
            if !p.am_interested {
                p.am_interested = true;
                say = Some(true);
            }
        } else if p.am_interested {
            if downloading {
                p.interest_lost_at.get_or_insert(self.now);
            } else {
                p.am_interested = false;
                p.interest_lost_at = None;
                say = Some(false);
            }
        }
        if let Some(yes) = say {
            self.send(conn, Command::Interested(yes));
        }
    }

    /// NOT INTERESTED to the peers that had nothing new for us for
    /// [`INTEREST_LINGER`].
    pub(super) fn expire_interest(&mut self, now: Instant) {
        let mut lost = Vec::new();
        for (c, p) in self.peers.iter_mut() {
            if p.interest_lost_at
                .is_some_and(|t| now.saturating_duration_since(t) >= INTEREST_LINGER)
            {
                p.interest_lost_at = None;
                p.am_interested = false;
                lost.push(*c);
            }
        }
        for c in lost {
            self.send(c, Command::Interested(false));
        }
    }

    /// Hands pieces to `conn` until it holds as many as it should.
    pub(super) fn assign(&mut self, conn: ConnId) {
        let Stage::Live(l) = &mut self.stage else {
            return;
        };
        if l.seeding || l.finishing {
            return;
        }
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if !p.unchoked_us || p.bits.is_none() {
            return;
        }
        let cap = pieces_per_peer(l.meta.geometry.nominal_piece_len());
        while p.assigned.len() < cap {
            let Some(i) = l.picker.pick(conn, p.key, |i| p.has(i)) else {
                break;
            };
            p.assigned.insert(i);
            self.out.push(Action::Send(conn, Command::Fetch(i)));
        }
    }

    pub(super) fn assign_all(&mut self) {
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for c in conns {
            self.assign(c);
        }
    }

    pub(super) fn on_released(&mut self, conn: ConnId, index: u32) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.assigned.remove(&index);
        }
        if let Some(l) = self.live_mut() {
            l.picker.release(index, conn);
        }
        self.assign_all();
    }

    pub(super) fn on_piece_done(&mut self, conn: ConnId, index: u32) {
        let Stage::Live(l) = &mut self.stage else {
            return;
        };
        let (new, others) = l.picker.completed(index, conn);
        let geometry: &Geometry = &l.meta.geometry;
        let bytes = geometry
            .piece(index)
            .map(|x| geometry.piece_len(x) as u64)
            .unwrap_or(0);
        if new {
            l.meta.have.set(index as usize);
        }
        let complete = l.picker.is_complete();
        let mut note = None;
        if let Some(p) = self.peers.get_mut(&conn) {
            p.assigned.remove(&index);
            let dup = if new { "" } else { ", already had" };
            note = Some((
                p.local,
                format!(
                    "piece {index} SHA-1 ok ({bytes} bytes from {}{dup})",
                    p.addr
                ),
            ));
        }
        if let Some((at, line)) = note {
            self.trace(at, || line);
        }
        for o in others {
            if let Some(op) = self.peers.get_mut(&o) {
                op.assigned.remove(&index);
                self.out.push(Action::Send(o, Command::Cancel(index)));
            }
        }
        if !new {
            self.assign(conn);
            return;
        }
        self.pieces_fetched += 1;
        if let Some(p) = self.peers.get_mut(&conn) {
            p.pieces_from += 1;
            let name = p.name();
            self.count_from(name, bytes);
        }
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for c in &conns {
            if let Some(p) = self.peers.get_mut(c) {
                if p.has(index as usize) {
                    p.missing = p.missing.saturating_sub(1);
                } else {
                    self.out.push(Action::Send(*c, Command::Have(index)));
                }
            }
        }
        if complete {
            self.complete();
            return;
        }
        for c in conns {
            self.update_interest(c);
        }
        self.assign(conn);
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

    pub(super) fn on_piece_bad(&mut self, conn: ConnId, index: u32) {
        let Stage::Live(l) = &mut self.stage else {
            return;
        };
        let Some(p) = self.peers.get_mut(&conn) else {
            l.picker.release(index, conn);
            return;
        };
        p.assigned.remove(&index);
        l.picker.failed_piece(index, conn, p.key);
        let n = self.strikes.add(&p.peer_id);
        let (name, at, addr, listen, id) = (p.name(), p.local, p.addr, p.listen, p.peer_id);
        warn!(
            "{}: piece {index} from {name} failed the SHA-1 check ({} of {MAX_STRIKES})",
            self.name,
            n.min(MAX_STRIKES)
        );
        self.trace(at, || {
            let end = if n >= MAX_STRIKES { ": dropped" } else { "" };
            format!(
                "piece {index} SHA-1 MISMATCH from {addr} (strike {}/{MAX_STRIKES}{end})",
                n.min(MAX_STRIKES)
            )
        });
        if n >= MAX_STRIKES {
            warn!(
                "{}: dropping {name} after {MAX_STRIKES} bad pieces",
                self.name
            );
            self.bans.ban(listen, &id);
            self.close(conn, CloseReason::BadPieces);
        } else {
            self.assign(conn);
        }
        self.assign_all();
    }

    /// Every piece is verified: finish the files (the coordinator answers
    /// with `Event::Finished`).
    pub(super) fn complete(&mut self) {
        let Some(l) = self.live_mut() else { return };
        if l.finishing || l.seeding {
            return;
        }
        l.finishing = true;
        self.out.push(Action::Finish);
    }

    pub(super) fn on_finished(&mut self, r: Result<(), BoxError>, now: Instant) {
        let Stage::Live(l) = &mut self.stage else {
            return;
        };
        if !l.finishing {
            return;
        }
        l.finishing = false;
        if let Err(e) = r {
            return self.fail(format!("could not finish the download: {e}"));
        }
        l.seeding = true;
        let g = &l.meta.geometry;
        let mut from: Vec<(String, u64)> = self
            .from_peers
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        from.sort();
        let summary = Summary {
            info_hash: self.cfg.info_hash,
            name: l.meta.info.name.clone(),
            size: g.total_len(),
            elapsed: now.saturating_duration_since(self.started),
            peers_used: from.iter().filter(|(_, b)| *b > 0).count(),
            pieces_total: g.num_pieces(),
            pieces_fetched: self.pieces_fetched,
            pieces_on_disk: self.pieces_on_disk,
            from_peers: from,
            paths: l.paths.clone(),
        };
        info!("{}: complete, seeding", self.name);
        self.track(true);
        self.out.push(Action::Notify(Notice::Completed(summary)));
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for c in conns {
            if self.peers.get(&c).is_some_and(|p| p.is_seeder()) {
                self.close(c, CloseReason::BothSeeders);
            } else {
                self.update_interest(c);
            }
        }
    }

    pub(super) fn request_metadata(&mut self, conn: ConnId, now: Instant) {
        let Stage::Metadata(f) = &mut self.stage else {
            return;
        };
        if !self.peers.get(&conn).is_some_and(|p| p.ut_metadata) || f.is_asking(conn) {
            return;
        }
        if let Some(piece) = f.next_request(conn, now) {
            self.send(conn, Command::MetadataRequest(piece));
        }
    }

    pub(super) fn request_metadata_all(&mut self, now: Instant) {
        if !matches!(self.stage, Stage::Metadata(_)) {
            return;
        }
        let mut conns: Vec<ConnId> = self.peers.keys().copied().collect();
        conns.sort_unstable();
        for c in conns {
            self.request_metadata(c, now);
        }
    }

    pub(super) fn on_metadata_data(
        &mut self,
        conn: ConnId,
        piece: u32,
        total: u64,
        data: Vec<u8>,
        now: Instant,
    ) {
        let Stage::Metadata(f) = &mut self.stage else {
            return;
        };
        match f.received(conn, piece, total, data) {
            Ok(Some(bytes)) => self.on_metadata(bytes),
            Ok(None) => self.request_metadata(conn, now),
            Err(MetadataError::HashMismatch) => {
                warn!(
                    "{}: metadata did not match the info hash; asking again",
                    self.name
                );
                self.request_metadata_all(now);
            }
            // Not a reason to close: a late answer to a withdrawn request,
            // or a peer whose size differs from the one being fetched
            // (which may be the wrong one); its claim is forgotten.
            Err(e @ (MetadataError::Unsolicited { .. } | MetadataError::SizeMismatch { .. })) => {
                debug!("{}: metadata block ignored: {e}", self.name);
                self.request_metadata_all(now);
            }
            Err(e) => {
                warn!("{}: bad metadata from a peer: {e}", self.name);
                self.close(conn, CloseReason::BadMetadata);
            }
        }
    }

    /// The whole info dictionary arrived and matches the info hash: check
    /// that it is usable, then have the storage opened and checked.
    fn on_metadata(&mut self, bytes: Vec<u8>) {
        let info = match Info::from_bytes(&bytes) {
            Ok(i) => i,
            Err(e) => {
                return self.fail(format!(
                    "the metadata from peers is not a valid info dictionary: {e}"
                ))
            }
        };
        if let Err(e) = Geometry::from_info(&info) {
            return self.fail(format!("{}: {e}", info.name));
        }
        info!(
            "{}: metadata received: {} bytes in {} pieces",
            info.name,
            info.total_length(),
            info.num_pieces()
        );
        self.name = info.name.clone();
        self.stage = Stage::Checking {
            total: info.num_pieces() as u32,
            size: info.total_length(),
            from_peers: true,
        };
        self.out.push(Action::Open {
            info,
            info_bytes: bytes,
        });
    }

    /// The shared metadata, once live (for tests and the shell).
    pub fn meta(&self) -> Option<Arc<crate::core::shared::Meta>> {
        match &self.stage {
            Stage::Live(l) => Some(l.meta.clone()),
            _ => None,
        }
    }
}
