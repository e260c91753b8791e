//! What reaches a connection — the peer's messages, the coordinator's
//! commands — handed to the protocol state or reported to the coordinator,
//! and what the state decides carried out.

use std::time::Instant;

use crossbeam_channel::TryRecvError;
use log::debug;
use minitorrent_common::wire::{
    self, allowed_fast_set, Bitfield, ExtHandshake, Message, MetadataMsg, PexMsg, ALLOWED_FAST_K,
};

use super::io::describe;
use super::serve::METADATA_BACKLOG;
use super::Conn;
use crate::core::msg::{Command, ConnError, Event};
use crate::core::peer_state::{violation, Action, RequestFate};
use crate::net::shared::MetaCtx;
use crate::net::trace;

/// HAVEs kept before the metadata is known, at most (a peer has no reason to
/// send more HAVEs than there are pieces; the count is not known yet).
const MAX_EARLY_HAVES: usize = 1 << 20;

/// A peer's pieces may be restated (BITFIELD, HAVE ALL, HAVE NONE) this
/// many times after the first; clients seen restate them once or twice.
pub const MAX_PIECE_SET_REPLACEMENTS: u32 = 16;

/// What the peer said it has before we knew how many pieces there are: kept,
/// then checked and reported once we know.
#[derive(Default)]
pub(super) struct EarlyNews {
    bitfield: Option<Vec<u8>>,
    haves: Vec<u32>,
    bitfield_seen: bool,
    /// BITFIELD / HAVE ALL / HAVE NONE after the first: each costs the
    /// coordinator a pass over every piece, so only
    /// [`MAX_PIECE_SET_REPLACEMENTS`] are taken.
    replacements: u32,
    /// HAVE ALL (true) or HAVE NONE (false) came before the metadata (the
    /// last of it and a BITFIELD wins).
    have_all: Option<bool>,
}

impl Conn {
    pub(super) fn report(&self, ev: Event) -> Result<(), ConnError> {
        self.t
            .events
            .send(ev.into())
            .map_err(|_| ConnError::Stopped)
    }

    /// Carries out what the protocol state decided.
    pub(super) fn apply_actions(&mut self) -> Result<(), ConnError> {
        let conn = self.id;
        while let Some(a) = self.state.poll_action() {
            match a {
                Action::Send(m) => self.wire.send(&m),
                Action::Choked => self.report(Event::Choked { conn })?,
                Action::Unchoked => self.report(Event::Unchoked { conn })?,
                Action::Release(index) => self.report(Event::Released { conn, index })?,
                Action::Rejected(index) => self.report(Event::Rejected { conn, index })?,
            }
        }
        Ok(())
    }

    pub(super) fn on_frame(&mut self, frame: &[u8], now: Instant) -> Result<(), ConnError> {
        // Blocks are most of the traffic: copy them straight from the read
        // buffer into the piece being assembled instead of through the
        // decoded message's own Vec. The layout (id, index, begin, data) is
        // BEP 3's; anything short goes through the codec to get its error.
        if frame.len() > 9 && frame[0] == wire::id::PIECE {
            let index = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
            let begin = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]);
            let data = &frame[9..];
            if trace::enabled() {
                trace::peer(self.wire.remote, self.wire.local, || {
                    Message::Piece {
                        index,
                        begin,
                        data: data.to_vec(),
                    }
                    .summary()
                });
            }
            return self.on_block(index, begin, data, now);
        }
        let msg = Message::decode(frame).map_err(|e| violation(e.to_string()))?;
        trace::peer(self.wire.remote, self.wire.local, || {
            describe(&msg, self.wire.our_ids, self.wire.pieces)
        });
        if msg.is_fast() && !self.state.is_fast() {
            // Without the fast bit on both sides these ids mean nothing,
            // like any id we do not know.
            return Err(violation(format!(
                "{} without the fast extension negotiated",
                msg.summary()
            )));
        }
        match msg {
            Message::KeepAlive | Message::Port(_) => {}
            Message::Choke => self.state.peer_choked(now),
            Message::Unchoke => self.state.peer_unchoked(now),
            Message::Interested | Message::NotInterested => {
                let was = self.state.is_peer_interested();
                let interested = matches!(msg, Message::Interested);
                if interested {
                    self.state.peer_interested(&*self.t);
                } else {
                    self.state.peer_not_interested(now);
                }
                // The swarm keeps a peer that wants something when it must
                // make room; it hears of changes only.
                if interested != was {
                    self.report(Event::PeerInterest {
                        conn: self.id,
                        interested,
                    })?;
                }
            }
            Message::Have(index) => self.on_have(index)?,
            Message::Bitfield(bytes) => self.on_bitfield(bytes)?,
            Message::Request {
                index,
                begin,
                length,
            } => {
                let fate = self.state.on_request(index, begin, length)?;
                if fate == RequestFate::NotHad {
                    debug!(
                        "peer {}: REQUEST for piece {index} we do not have",
                        self.wire.remote
                    );
                }
                // With the fast extension each request we refuse costs a
                // REJECT: a peer sending them without reading the answers
                // is a flood.
                let backlog = self.wire.backlog();
                if self.state.is_fast() && fate != RequestFate::Queued && backlog > METADATA_BACKLOG
                {
                    return Err(violation(format!(
                        "requests while {backlog} bytes of answers wait unread"
                    )));
                }
            }
            Message::Piece { index, begin, data } => self.on_block(index, begin, &data, now)?,
            Message::Cancel {
                index,
                begin,
                length,
            } => self.state.on_cancel(index, begin, length),
            Message::Extended { id, payload } => self.on_extended(id, &payload)?,
            Message::HaveAll | Message::HaveNone => {
                self.on_have_all(matches!(msg, Message::HaveAll))?
            }
            Message::RejectRequest {
                index,
                begin,
                length,
            } => self.state.on_reject(index, begin, length, now)?,
            Message::AllowedFast(index) => {
                if self.state.on_allowed_fast(index) && self.meta.is_some() {
                    self.report(Event::AllowedFast {
                        conn: self.id,
                        index,
                    })?;
                }
            }
            // Advice we do not follow: the picker's rarest-first order
            // stands. Nothing is kept.
            Message::SuggestPiece(_) => {}
        }
        self.apply_actions()
    }

    /// HAVE ALL (`all`) or HAVE NONE: in place of a BITFIELD. BEP 6 sends
    /// it first; one that comes later replaces what the peer said before,
    /// as a later BITFIELD does (aria2, for one, sends a HAVE ALL after
    /// other news of its pieces).
    fn on_have_all(&mut self, all: bool) -> Result<(), ConnError> {
        self.count_replacement()?;
        if self.early.bitfield_seen {
            debug!(
                "peer {}: a later {} replaces its pieces",
                self.wire.remote,
                if all { "HAVE ALL" } else { "HAVE NONE" }
            );
        }
        self.early.bitfield_seen = true;
        let Some(m) = &self.meta else {
            self.early.bitfield = None;
            self.early.have_all = Some(all);
            return Ok(());
        };
        let n = m.geometry.num_pieces() as usize;
        self.report_have_all(all, n)
    }

    /// One more set of the peer's pieces; past the bound, a violation (a
    /// peer flipping between HAVE ALL and HAVE NONE would keep the
    /// coordinator busy for every peer of the torrent).
    fn count_replacement(&mut self) -> Result<(), ConnError> {
        if self.early.bitfield_seen {
            self.early.replacements += 1;
            if self.early.replacements > MAX_PIECE_SET_REPLACEMENTS {
                return Err(violation(format!(
                    "more than {MAX_PIECE_SET_REPLACEMENTS} BITFIELD / HAVE ALL / HAVE NONE \
                     messages after the first"
                )));
            }
        }
        Ok(())
    }

    fn report_have_all(&self, all: bool, n: usize) -> Result<(), ConnError> {
        let bits = if all {
            Bitfield::full(n)
        } else {
            Bitfield::new(n)
        };
        self.report(Event::Bitfield {
            conn: self.id,
            bits,
        })
    }

    /// Fast extension: computes the peer's allowed-fast set (BEP 6, from
    /// its IPv4 address and the info hash) and sends ALLOWED FAST for those
    /// of its pieces we have. Nothing for an IPv6 peer, before the
    /// metadata, or while we hide our pieces (initial seeding).
    pub(super) fn offer_allowed_fast(&mut self, hide: bool) {
        let Some(m) = self.meta.clone() else {
            return;
        };
        if !self.state.is_fast() || hide {
            return;
        }
        let set = allowed_fast_set(
            self.wire.remote.ip(),
            &self.t.info_hash,
            m.geometry.num_pieces(),
            ALLOWED_FAST_K,
        );
        for &i in &set {
            if m.have.get(i as usize) {
                self.wire.send(&Message::AllowedFast(i));
            }
        }
        self.state.set_allowed_for_peer(set);
    }

    fn on_have(&mut self, index: u32) -> Result<(), ConnError> {
        let Some(m) = &self.meta else {
            if self.early.haves.len() > MAX_EARLY_HAVES {
                return Err(violation("too many HAVEs"));
            }
            self.early.haves.push(index);
            return Ok(());
        };
        let n = m.geometry.num_pieces();
        if index >= n {
            return Err(violation(format!("HAVE {index} beyond {n} pieces")));
        }
        self.report(Event::Have {
            conn: self.id,
            index,
        })
    }

    fn on_bitfield(&mut self, bytes: Vec<u8>) -> Result<(), ConnError> {
        // BEP 3 sends it once, right after the handshake; some clients send
        // it again later, which simply replaces the first.
        self.count_replacement()?;
        if self.early.bitfield_seen {
            debug!(
                "peer {}: another BITFIELD replaces the first",
                self.wire.remote
            );
        }
        self.early.bitfield_seen = true;
        let Some(m) = &self.meta else {
            self.early.have_all = None;
            self.early.bitfield = Some(bytes);
            return Ok(());
        };
        self.report_bitfield(&bytes, m.geometry.num_pieces() as usize)
    }

    fn report_bitfield(&self, bytes: &[u8], num_pieces: usize) -> Result<(), ConnError> {
        let bits = Bitfield::from_bytes(bytes, num_pieces)
            .map_err(|e| violation(format!("bitfield: {e}")))?;
        self.report(Event::Bitfield {
            conn: self.id,
            bits,
        })
    }

    fn on_extended(&mut self, id: u8, payload: &[u8]) -> Result<(), ConnError> {
        if id == 0 {
            let ext = ExtHandshake::decode(payload)
                .map_err(|e| violation(format!("extension handshake: {e}")))?;
            self.wire.peer_ids.metadata = ext.ut_metadata_id();
            self.wire.peer_ids.pex = ext.ut_pex_id();
            if let Some(q) = ext.reqq {
                self.state.set_peer_reqq(q);
            }
            return self.report(Event::Ext {
                conn: self.id,
                metadata_size: ext.metadata_size,
                ut_metadata: self.wire.peer_ids.metadata.is_some(),
                ut_pex: self.wire.peer_ids.pex.is_some() && self.wire.our_ids.pex.is_some(),
                listen_port: ext.p,
            });
        }
        if Some(id) == self.wire.our_ids.pex {
            // Bounded by the codec (at most 50 added, 50 dropped); the
            // swarm decides whether it comes too soon. A malformed one is
            // only ignored: PEX is advice, and other clients' quirks in it
            // are no reason to lose the peer's pieces.
            return match PexMsg::decode(payload) {
                Ok(msg) => self.report(Event::Pex { conn: self.id, msg }),
                Err(e) => {
                    log::debug!("peer {}: ut_pex ignored: {e}", self.wire.remote);
                    Ok(())
                }
            };
        }
        if Some(id) != self.wire.our_ids.metadata {
            return Ok(());
        }
        let msg =
            MetadataMsg::decode(payload).map_err(|e| violation(format!("ut_metadata: {e}")))?;
        match msg {
            MetadataMsg::Request { piece } => {
                self.wire.answer_metadata(piece, self.meta.as_deref())
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => self.report(Event::MetadataData {
                conn: self.id,
                piece,
                total_size,
                data,
            }),
            MetadataMsg::Reject { piece } => self.report(Event::MetadataReject {
                conn: self.id,
                piece,
            }),
        }
    }

    pub(super) fn drain_commands(&mut self) -> Result<(), ConnError> {
        loop {
            match self.cmds.try_recv() {
                Ok(c) => self.on_command(c)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err(ConnError::Stopped),
            }
        }
    }

    fn on_command(&mut self, c: Command) -> Result<(), ConnError> {
        match c {
            Command::Fetch(index) => {
                if let Some(job) = self.state.fetch(index) {
                    self.bufs.prepare(job);
                }
            }
            Command::Cancel(index) => self.state.cancel(index),
            Command::Have(index) => self.wire.send(&Message::Have(index)),
            Command::HaveAll => {
                if let Some(m) = self.meta.clone() {
                    self.send_haves(&m);
                }
            }
            Command::Interested(yes) => self.state.set_interested(yes),
            Command::MetadataRequest(piece) => {
                if let Some(id) = self.wire.peer_ids.metadata {
                    self.wire.send(&Message::Extended {
                        id,
                        payload: MetadataMsg::Request { piece }.encode(),
                    });
                }
            }
            Command::Pex(msg) => {
                if let Some(id) = self.wire.peer_ids.pex {
                    self.wire.send(&Message::Extended {
                        id,
                        payload: msg.encode(),
                    });
                }
            }
            Command::MetadataReady => self.on_metadata_ready()?,
            Command::Close(why) => return Err(ConnError::Closing(why)),
        }
        self.apply_actions()
    }

    /// A HAVE for every piece we have: instead of the BITFIELD the peer did
    /// not get after the handshake.
    fn send_haves(&mut self, m: &MetaCtx) {
        for i in 0..m.geometry.num_pieces() {
            if m.have.get(i as usize) {
                self.wire.send(&Message::Have(i));
            }
        }
    }

    fn on_metadata_ready(&mut self) -> Result<(), ConnError> {
        if self.meta.is_some() {
            return Ok(());
        }
        let Some(m) = self.t.meta.get().cloned() else {
            return Ok(());
        };
        let n = m.geometry.num_pieces() as usize;
        self.wire.set_pieces(n);
        // We could not send a bitfield after the handshake; HAVE does the job.
        self.send_haves(&m);
        self.state.metadata_ready(m.meta.clone(), &*self.t);
        self.meta = Some(m);
        self.offer_allowed_fast(self.t.hides_pieces());
        self.apply_actions()?;
        if let Some(bytes) = self.early.bitfield.take() {
            self.report_bitfield(&bytes, n)?;
        }
        if let Some(all) = self.early.have_all.take() {
            self.report_have_all(all, n)?;
        }
        // ALLOWED FAST that came before we knew the piece count: those
        // inside the torrent are passed on now.
        for index in self.state.allowed_by_peer().to_vec() {
            if (index as usize) < n {
                self.report(Event::AllowedFast {
                    conn: self.id,
                    index,
                })?;
            }
        }
        for index in std::mem::take(&mut self.early.haves) {
            self.on_have(index)?;
        }
        Ok(())
    }
}
