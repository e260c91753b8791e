//! One torrent's decisions, as a state machine with the time passed in:
//! [`Swarm::handle`] takes an [`Event`] (from a connection, the tracker
//! home, the storage) and `now`, and returns the [`Action`]s the
//! coordinator thread carries out (send a command to a connection, dial,
//! ask the tracker, open or finish the storage, tell the session).
//! [`Swarm::tick`] runs the timers. Nothing here touches a socket, a file, a
//! thread or the clock, so every rule is unit-tested with scripted events.
//!
//! - `peers`: who is connected ([`PeerTable`]), admission, bans, strikes;
//! - `pieces`: a live torrent's interest, assignment, endgame, verified and
//!   bad pieces, completion;
//! - `initial`: initial seeding (BEP 16), the pieces a new seed shows;
//! - `fetch`: the metadata fetch before that;
//! - `discovery`: known addresses, dialling, tracker lookups;
//! - `pex`: peer exchange (BEP 11) with each peer that speaks it;
//! - `status`: the snapshot for the progress line and the menu.
//!
//! `Swarm` itself routes each event to the part it concerns and owns the
//! lifecycle and the connections' coming and going.
//!
//! A torrent's lifecycle is one [`Stage`]: fetching metadata, checking the
//! data on disk, live (downloading or seeding), failed or stopped.

pub mod discovery;
mod fetch;
mod initial;
pub mod peers;
pub mod pex;
mod pieces;
mod stage;
mod status;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use minitorrent_common::metainfo::{Info, InfoHash};
use minitorrent_common::tracker_proto::PeerEntry;
use minitorrent_common::wire::PexMsg;

use crate::core::metadata::MetadataFetch;
use crate::core::msg::{
    count, BoxError, CloseReason, Command, Event, FailKind, Notice, Opened, Phase, TorrentStatus,
    Tracked,
};
use crate::core::picker::ConnId;
use discovery::{Discovery, LOOKUP_EMPTY};
use fetch::Fetching;
use peers::{Admit, Peer, PeerTable};
use pex::{PexOut, PexVerdict};
use pieces::{Ctx, Live};
use stage::Stage;
pub use status::{ConnFigures, Rates};

/// Bad pieces after which a peer is dropped for good.
pub const MAX_STRIKES: u32 = 3;
/// Without any peer for this long, the user is told that we keep trying.
pub const NO_PEERS_NOTICE: Duration = Duration::from_secs(10);
/// Every peer that had pieces we lack was dropped for corrupt data, and
/// no other came for this long: the user is told (a peer that is just
/// connecting may still bring the pieces, so not at once).
pub const CORRUPT_NOTICE: Duration = Duration::from_secs(2);
/// We stay interested in a leecher this long after it stopped having a piece
/// we lack. Between two leechers that lasts only until its next HAVE, so
/// saying NOT INTERESTED at once would make every HAVE a new
/// INTERESTED / NOT INTERESTED turn.
pub const INTEREST_LINGER: Duration = Duration::from_secs(5);
/// Peers named in a download's summary at most; the bytes of any further
/// peer are added to the last line.
pub const MAX_SUMMARY_PEERS: usize = 256;
const OTHER_PEERS: &str = "other peers";

/// What a swarm is set up with.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    /// Peers to dial at most; connections (both ways) are at most twice that.
    pub max_peers: usize,
    /// A download (reports completion) rather than a seed.
    pub download: bool,
    pub name_hint: Option<String>,
    /// Whether to ask the tracker home for peers (a BEP 15 announcer
    /// delivers them on its own schedule).
    pub lookups: bool,
    /// Emit `Action::Trace` lines (piece verdicts) for `--trace`.
    pub trace: bool,
    /// Our listening port: an address a peer tells us of with this port
    /// and the IP of our end of one of our connections is ours.
    pub listen_port: Option<u16>,
}

/// What is known when a torrent starts.
#[derive(Debug)]
pub enum Start {
    /// Only the info hash: the metadata comes from peers (BEP 9).
    Magnet,
    /// The info dictionary: the data on disk is checked first.
    Check { info: Info, info_bytes: Vec<u8> },
    /// Storage open and checked (a seed, or data checked by the caller).
    Ready(Opened),
}

/// What the coordinator thread must do.
#[derive(Debug)]
pub enum Action {
    /// Send a command to a connection (and wake it).
    Send(ConnId, Command),
    /// Connect to `addr` as connection `conn`.
    Dial { conn: ConnId, addr: SocketAddr },
    /// Ask the tracker home for peers.
    Lookup,
    /// Tell the tracker home what we share.
    Track(Tracked),
    /// Open the storage below the download directory and check what is
    /// already there, off the coordinator thread; answer `Event::Opened`.
    Open { info: Info, info_bytes: Vec<u8> },
    /// Sync the files and give them their final names; answer `Event::Finished`.
    Finish,
    /// Flush the files (the torrent stops).
    Sync,
    /// Tell the session.
    Notify(Notice),
    /// A `--trace` line about a decision (not a message): `at` is our end.
    Trace { at: SocketAddr, line: String },
}

/// One torrent's swarm, as seen from our peer.
pub struct Swarm {
    cfg: SwarmConfig,
    stage: Stage,
    /// The pending `Start::Check`, handed out by [`Swarm::start`].
    to_open: Option<(Info, Vec<u8>)>,
    name: String,
    peers: PeerTable,
    discovery: Discovery,
    started: Instant,
    alone_since: Option<Instant>,
    told_alone: bool,
    /// Since when every peer that had pieces we lack was dropped for
    /// corrupt data (and no other has any).
    corrupt_since: Option<Instant>,
    /// What the user was told about it, once it lasted
    /// [`CORRUPT_NOTICE`]; shown in the status until a peer with pieces
    /// comes (told again when one more peer is dropped).
    corrupt: Option<String>,
    /// What the user was told when the tracker stopped listing this
    /// torrent with nobody connected; shown in the status until a peer
    /// connects.
    unlisted: Option<String>,
    rates: Rates,
    /// The tracker's last answer to a lookup, and when.
    tracker_note: Option<(Instant, Result<String, String>)>,
    /// The last status taken while running: what a stopped or failed
    /// torrent still shows of its size and pieces.
    known: Option<TorrentStatus>,
    /// The torrent is private (BEP 27): no peer exchange. Known with the
    /// info dictionary.
    private: bool,
    rng: fastrand::Rng,
    out: Vec<Action>,
    /// The time of the event being handled.
    now: Instant,
}

impl Swarm {
    pub fn new(cfg: SwarmConfig, start: Start, now: Instant) -> Swarm {
        let name = cfg
            .name_hint
            .clone()
            .unwrap_or_else(|| cfg.info_hash.to_hex());
        let mut s = Swarm {
            stage: Stage::Metadata(Fetching(MetadataFetch::new(cfg.info_hash))),
            to_open: None,
            name,
            peers: PeerTable::default(),
            discovery: Discovery::default(),
            started: now,
            alone_since: None,
            told_alone: false,
            corrupt_since: None,
            corrupt: None,
            unlisted: None,
            rates: Rates::new(now),
            tracker_note: None,
            known: None,
            private: false,
            rng: fastrand::Rng::with_seed(crate::core::shared::seed_of(&cfg.info_hash.0)),
            out: Vec::new(),
            now,
            cfg,
        };
        match start {
            Start::Magnet => {}
            Start::Check { info, info_bytes } => {
                s.name = info.name.clone();
                s.private = info.private;
                s.stage = Stage::Checking {
                    total: info.num_pieces() as u32,
                    size: info.total_length(),
                    from_peers: false,
                };
                s.to_open = Some((info, info_bytes));
            }
            Start::Ready(o) => {
                s.name = o.meta.info.name.clone();
                s.private = o.meta.info.private;
                s.stage = Stage::Live(Box::new(Live::new(o, s.cfg.download, &mut s.peers, now)));
            }
        }
        s
    }

    /// The first actions: open and check the data, or finish a download
    /// that was already complete on disk, or tell the tracker we leech.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.now = now;
        if let Some((info, info_bytes)) = self.to_open.take() {
            self.out.push(Action::Open { info, info_bytes });
        }
        let download = self.cfg.download;
        let (stage, mut cx) = self.parts();
        if let (Stage::Live(l), true) = (stage, download) {
            if l.is_complete() {
                // Everything was already on disk: finish (rename) and report.
                l.complete(&mut cx);
            } else {
                cx.out.push(Action::Track(l.tracked(cx.info_hash, false)));
            }
        }
        self.maybe_lookup();
        self.take()
    }

    /// The stage, and what its parts work with.
    fn parts(&mut self) -> (&mut Stage, Ctx<'_>) {
        (
            &mut self.stage,
            Ctx {
                peers: &mut self.peers,
                out: &mut self.out,
                now: self.now,
                trace: self.cfg.trace,
                name: &self.name,
                info_hash: self.cfg.info_hash,
            },
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn phase(&self) -> Phase {
        match &self.stage {
            Stage::Metadata(_) => Phase::Metadata,
            Stage::Checking { total, .. } => Phase::Checking {
                done: 0,
                total: *total,
            },
            Stage::Live(l) if l.seeding => Phase::Seeding,
            Stage::Live(_) => Phase::Downloading,
            Stage::Failed(e) => Phase::Failed(e.clone()),
            Stage::Stopped => Phase::Stopped,
        }
    }

    /// Failed or stopped: the coordinator thread may end.
    pub fn is_over(&self) -> bool {
        matches!(self.stage, Stage::Failed(_) | Stage::Stopped)
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// How the tracker's live view names the peer on connection `conn`: its
    /// listen address when known, else the connection's remote address.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.peers.get(conn).map(|p| p.listen.unwrap_or(p.addr))
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, conn: ConnId, c: Command) {
        self.out.push(Action::Send(conn, c));
    }

    fn close(&mut self, conn: ConnId, why: CloseReason) {
        if self.peers.contains(conn) {
            self.send(conn, Command::Close(why));
        }
    }

    fn wants_peers(&self) -> bool {
        match &self.stage {
            // A .torrent's download contacts peers once its data is checked
            // and it is registered; a magnet's keeps those it fetched from.
            Stage::Metadata(_) => true,
            Stage::Checking { from_peers, .. } => *from_peers,
            Stage::Live(l) => !l.seeding,
            Stage::Failed(_) | Stage::Stopped => false,
        }
    }

    /// Handles one event; returns what to do about it.
    pub fn handle(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        self.now = now;
        if let Some(p) = event_conn(&ev).and_then(|c| self.peers.get_mut(c)) {
            p.last_active = now;
        }
        match ev {
            Event::Connected {
                conn,
                addr,
                local,
                peer_id,
                outbound,
                hid_pieces,
                rtt,
            } => {
                let mut peer = Peer::new(addr, local, peer_id, outbound, now);
                peer.hidden = hid_pieces;
                peer.rtt = rtt;
                self.on_connected(conn, peer)
            }
            Event::ConnectFailed { conn, addr, error } => {
                self.discovery
                    .dial_failed(conn, addr, Some(error.fail_kind()), now);
                debug!("{}: connect to {addr} failed: {error}", self.name);
            }
            Event::Ext {
                conn,
                metadata_size,
                ut_metadata,
                ut_pex,
                listen_port,
            } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    if ut_pex && !self.private && p.pex_out.is_none() {
                        p.pex_out = Some(PexOut::new(now));
                    }
                }
                self.on_ext(conn, metadata_size, ut_metadata, listen_port)
            }
            Event::Pex { conn, msg } => self.on_pex(conn, msg),
            Event::Unchoked { conn } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    p.unchoked_us = true;
                    // A new chance for the pieces it refused.
                    p.rejected.clear();
                }
                self.on_live_event(Event::Unchoked { conn });
            }
            Event::Choked { conn } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    p.unchoked_us = false;
                    // Time choked is not slowness.
                    p.rate.idle();
                }
            }
            Event::PeerInterest { conn, interested } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    p.peer_interested = interested;
                }
            }
            ev @ (Event::Bitfield { .. }
            | Event::Have { .. }
            | Event::PieceDone { .. }
            | Event::PieceBad { .. }
            | Event::Released { .. }
            | Event::Rejected { .. }
            | Event::Finished(_)) => self.on_live_event(ev),
            Event::AllowedFast { conn, index } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    p.allow_fast(index);
                }
                self.on_live_event(Event::AllowedFast { conn, index });
            }
            Event::WriteFailed { error, .. } => {
                self.fail(format!(
                    "download stopped, nothing marked complete: {error}"
                ));
            }
            Event::MetadataData {
                conn,
                piece,
                total_size,
                data,
            } => {
                if let (Stage::Metadata(f), mut cx) = self.parts() {
                    if let Some(bytes) = f.on_data(&mut cx, conn, piece, total_size, data) {
                        self.on_metadata(bytes);
                    }
                }
            }
            Event::MetadataReject { conn, .. } => {
                if let Some(p) = self.peers.get_mut(conn) {
                    p.ut_metadata = false;
                }
                if let (Stage::Metadata(f), mut cx) = self.parts() {
                    f.forget(conn);
                    f.request_all(&mut cx);
                }
            }
            Event::Gone { conn, error } => {
                self.on_gone(conn, &error.to_string(), error.is_violation());
            }
            Event::Lookup(r) => self.on_lookup(r),
            Event::Unlisted => {
                self.on_lookup(Ok(Vec::new()));
                self.tracker_note = Some((now, Ok("not listed".into())));
                if self.wants_peers() && self.peers.is_empty() {
                    let (name, ih) = (&self.name, &self.cfg.info_hash);
                    if let Some(line) = self.discovery.listing.unlisted(name, ih) {
                        warn!("{line}");
                        // Said instead of "no peer to download from yet".
                        self.told_alone = true;
                        let prefix = format!("{name}: ");
                        let why = line.strip_prefix(&prefix).unwrap_or(&line);
                        self.unlisted = Some(why.to_string());
                    }
                }
            }
            Event::DataChanged(why) => self.fail(why),
            Event::AddPeers(addrs) => {
                for a in addrs {
                    self.discovery.add(a, None, now);
                }
                self.maybe_connect();
            }
            Event::Opened(r) => self.on_opened(r),
        }
        self.take()
    }

    /// The timers: the "no peer yet" and "only corrupt peers" notices,
    /// lingering interest, lookups, dials, peer exchange, metadata
    /// requests and a stalled initial seeding.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.now = now;
        match self.corrupt_only() {
            Some(why) => {
                let since = *self.corrupt_since.get_or_insert(now);
                // Told once, and again if one more peer was dropped.
                if self.corrupt.as_ref() != Some(&why)
                    && now.saturating_duration_since(since) >= CORRUPT_NOTICE
                {
                    let meanwhile = if self.cfg.lookups {
                        format!(
                            "asking the tracker every {} s for another peer",
                            LOOKUP_EMPTY.as_secs()
                        )
                    } else {
                        "waiting for another peer".to_string()
                    };
                    warn!(
                        "{}: {why}. Ask whoever shares it to share it again, then download \
                         the new version; meanwhile {meanwhile} (Ctrl-C to stop)",
                        self.name
                    );
                    self.corrupt = Some(why);
                }
            }
            None => {
                self.corrupt_since = None;
                self.corrupt = None;
                self.tell_alone(now);
            }
        }
        for c in self.peers.expire_interest(now, INTEREST_LINGER) {
            self.send(c, Command::Interested(false));
        }
        self.maybe_lookup();
        self.maybe_connect();
        self.send_pex();
        match self.parts() {
            (Stage::Metadata(f), mut cx) => f.request_all(&mut cx),
            (Stage::Live(l), mut cx) => l.tick(&mut cx),
            _ => {}
        }
        self.take()
    }

    /// After [`NO_PEERS_NOTICE`] without any peer, the user is told once
    /// that we keep trying.
    fn tell_alone(&mut self, now: Instant) {
        if !(self.wants_peers() && self.peers.is_empty()) {
            self.alone_since = None;
            self.unlisted = None;
            return;
        }
        let alone = *self.alone_since.get_or_insert(now);
        if !self.told_alone && now.saturating_duration_since(alone) >= NO_PEERS_NOTICE {
            self.told_alone = true;
            let again = if self.cfg.lookups {
                format!("asking the tracker every {} s", LOOKUP_EMPTY.as_secs())
            } else {
                "asking the tracker again".to_string()
            };
            match self.discovery.failing_alike() {
                Some((how, n)) => warn!(
                    "{}: {}; {again} (Ctrl-C to stop)",
                    self.name,
                    failing_words(&how, n)
                ),
                None => warn!(
                    "{}: no peer to download from yet; {again} (Ctrl-C to stop)",
                    self.name
                ),
            }
        }
    }

    /// Why a download cannot go on when every peer that had pieces we lack
    /// was dropped for sending corrupt data (and no other peer has any):
    /// the words for the user, or `None` while some peer can still help.
    fn corrupt_only(&self) -> Option<String> {
        let downloading = matches!(&self.stage, Stage::Live(l) if !l.seeding && !l.finishing);
        let dropped = self.peers.dropped_corrupt;
        if !downloading || dropped == 0 || self.peers.any_source() {
            return None;
        }
        Some(format!(
            "every peer that has this file sent corrupt data ({} dropped after {} each): \
             its seeder's copy no longer matches the torrent",
            count(dropped, "peer"),
            count(MAX_STRIKES, "bad piece")
        ))
    }

    /// The torrent stops: every connection is closed and the files flushed.
    pub fn stop(&mut self) -> Vec<Action> {
        self.stop_as(Stage::Stopped);
        self.take()
    }

    fn stop_as(&mut self, stage: Stage) {
        for c in self.peers.conns() {
            self.send(c, Command::Close(CloseReason::TorrentStopped));
        }
        if matches!(self.stage, Stage::Live(_)) {
            self.out.push(Action::Sync);
        }
        if !matches!(self.stage, Stage::Failed(_)) {
            self.stage = stage;
        }
    }

    fn fail(&mut self, error: String) {
        warn!("{}: {error}", self.name);
        self.out.push(Action::Notify(Notice::Failed {
            info_hash: self.cfg.info_hash,
            name: self.name.clone(),
            error: error.clone(),
        }));
        self.stop_as(Stage::Failed(error.clone()));
        self.stage = Stage::Failed(error);
    }

    /// An event about pieces, for a live torrent. A bitfield that arrives
    /// before is kept until the storage is checked (the connection holds
    /// it back while the metadata is unknown).
    fn on_live_event(&mut self, ev: Event) {
        let started = self.started;
        match self.parts() {
            (Stage::Live(l), mut cx) => {
                if let Err(e) = l.handle(&mut cx, ev, started) {
                    self.fail(e);
                }
            }
            (_, cx) => {
                if let Event::Bitfield { conn, bits } = ev {
                    if let Some(p) = cx.peers.get_mut(conn) {
                        p.bits = Some(bits);
                    }
                }
            }
        }
    }

    fn on_connected(&mut self, conn: ConnId, peer: Peer) {
        let (addr, outbound) = (peer.addr, peer.outbound);
        let live = matches!(self.stage, Stage::Live(_));
        let admit = if self.is_over() {
            Admit::Refuse(CloseReason::TorrentStopped)
        } else {
            let max = self.max_conns();
            self.peers
                .admit(&peer, &self.cfg.peer_id, max, live, self.now)
        };
        match admit {
            Admit::Refuse(why) => {
                debug!("peer {addr}: {why}");
                self.discovery.refused(conn, addr, outbound, self.now);
                self.send(conn, Command::Close(why));
                return;
            }
            Admit::Join {
                replace: Some((old, why)),
            } => {
                debug!("{}: closing {old} ({why}) for {addr}", self.name);
                self.close(old, why);
                self.on_gone(old, &why.to_string(), false);
            }
            Admit::Join { replace: None } => {}
        }
        self.discovery.connected(conn, addr, outbound);
        info!(
            "{}: connected to {} {addr} ({})",
            self.name,
            if outbound { "outbound" } else { "inbound" },
            minitorrent_common::wire::peer_id_display(&peer.peer_id)
        );
        self.peers.insert(conn, peer);
        if matches!(self.stage, Stage::Live(_)) {
            // A connection that started before the storage was open (its
            // `Connected` queued behind `Opened`) missed the word that sent
            // the others theirs; one that started after ignores it.
            self.send(conn, Command::MetadataReady);
        }
        if let (Stage::Live(l), mut cx) = self.parts() {
            l.peer_joined(&mut cx, conn);
        }
    }

    /// Piece data went out to the peer on `conn` (the coordinator reads the
    /// connections' counters on its tick): during initial seeding, pieces
    /// shown are on their way, so it is not a stall.
    pub fn served(&mut self, conn: ConnId, now: Instant) {
        if let Stage::Live(l) = &mut self.stage {
            if self.peers.get(conn).is_some_and(|p| p.hidden) {
                l.served(now);
            }
        }
    }

    /// Whether a connection starting now greets without a BITFIELD
    /// (initial seeding: its pieces are shown with HAVEs).
    pub fn hides_pieces(&self) -> bool {
        matches!(&self.stage, Stage::Live(l) if l.initial.is_some())
    }

    /// Peers that are not idle (see `Peer::is_idle`).
    fn useful_peers(&self) -> usize {
        let live = matches!(self.stage, Stage::Live(_));
        self.peers.useful(live, self.now)
    }

    /// Connections (both ways) at most.
    fn max_conns(&self) -> usize {
        self.cfg.max_peers.max(1) * 2
    }

    fn on_ext(
        &mut self,
        conn: ConnId,
        metadata_size: Option<u64>,
        ut_metadata: bool,
        listen_port: Option<u16>,
    ) {
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        p.ut_metadata = ut_metadata;
        p.metadata_size = metadata_size;
        if let (false, Some(port)) = (p.outbound, listen_port.filter(|p| *p != 0)) {
            p.listen = Some(SocketAddr::new(p.addr.ip(), port));
            let (listen, id) = (p.listen, p.peer_id);
            if self.peers.bans.is_banned(listen, Some(&id)) {
                self.close(conn, CloseReason::Banned);
                return;
            }
        }
        if let (Stage::Metadata(f), mut cx) = self.parts() {
            f.offer(&mut cx, conn, metadata_size);
        }
    }

    fn on_gone(&mut self, conn: ConnId, reason: &str, violation: bool) {
        self.discovery.gone(conn, self.now);
        let Some(p) = self.peers.remove(conn) else {
            if let Stage::Metadata(f) = &mut self.stage {
                f.forget(conn);
            }
            return;
        };
        debug!("{}: peer {} gone: {reason}", self.name, p.addr);
        if violation {
            // A peer that broke the protocol is not dialled again.
            self.peers.bans.ban(p.listen, &p.peer_id);
        }
        match self.parts() {
            (Stage::Live(l), mut cx) => {
                l.peer_gone(conn, p.bits.as_ref(), p.assigned.iter().copied(), &p.shown);
                l.assign_all(&mut cx);
            }
            (Stage::Metadata(f), mut cx) => {
                f.forget(conn);
                f.request_all(&mut cx);
            }
            _ => {}
        }
    }

    /// The whole info dictionary arrived: on to checking the storage.
    fn on_metadata(&mut self, bytes: Vec<u8>) {
        match self.stage.metadata_complete(bytes, &mut self.out) {
            Ok((name, private)) => {
                self.name = name;
                self.private = private;
            }
            Err(e) => self.fail(e),
        }
    }

    /// Tells each peer that speaks `ut_pex` and is due of the peers that
    /// came and went since its last message (never itself, and loopback
    /// addresses only to a peer on loopback).
    fn send_pex(&mut self) {
        if self.private || self.is_over() {
            return;
        }
        let now = self.now;
        let mut named = None;
        for conn in self.peers.conns() {
            let Some(p) = self.peers.get(conn) else {
                continue;
            };
            if !p.pex_out.as_ref().is_some_and(|o| o.is_due(now)) {
                continue;
            }
            let named = named.get_or_insert_with(|| self.peers.pex_named());
            let (own, to_loopback) = (p.listen, p.addr.ip().is_loopback());
            let current: Vec<_> = named
                .iter()
                .filter(|(c, x)| {
                    *c != conn && Some(x.addr) != own && (to_loopback || !x.addr.ip().is_loopback())
                })
                .map(|(_, x)| *x)
                .collect();
            let msg = self
                .peers
                .get_mut(conn)
                .and_then(|p| p.pex_out.as_mut())
                .and_then(|o| o.due(&current, now));
            if let Some(msg) = msg {
                self.send(conn, Command::Pex(msg));
            }
        }
    }

    /// A `ut_pex` message from the peer on `conn`: the peers it added, if
    /// it keeps to the rate, become known addresses (not ours, and only
    /// [`pex::usable`] ones) and may be dialled. Dropped peers are not
    /// forgotten: they may only have left that peer.
    fn on_pex(&mut self, conn: ConnId, msg: PexMsg) {
        if self.private {
            return;
        }
        let Some(p) = self.peers.get_mut(conn) else {
            return;
        };
        let from = p.name();
        match p.pex_in.arrived(self.now) {
            PexVerdict::Take => {}
            PexVerdict::Ignore => {
                debug!(
                    "{}: peer {from}: ut_pex message too soon, ignored",
                    self.name
                );
                return;
            }
            PexVerdict::Abuse => {
                info!(
                    "{}: peer {from}: closing: it floods ut_pex messages",
                    self.name
                );
                self.close(conn, CloseReason::PexFlood);
                return;
            }
        }
        let from_loopback = p.addr.ip().is_loopback();
        let ours = self.own_addrs();
        let mut learnt = 0;
        // `::ffff:a.b.c.d` is the IPv4 address it maps: checked, and known,
        // as that.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        for a in msg.added.iter().map(|x| canonical(x.addr)) {
            if pex::usable(a, from_loopback) && !ours.contains(&a) {
                self.discovery.learnt(a, self.now);
                learnt += 1;
            }
        }
        debug!(
            "{}: peer {from} named {} (usable: {learnt})",
            self.name,
            count(msg.added.len() as u64, "peer")
        );
        self.maybe_connect();
    }

    /// The addresses we listen on as far as we know them: our listening
    /// port on the IP of our end of each connection.
    fn own_addrs(&self) -> Vec<SocketAddr> {
        let Some(port) = self.cfg.listen_port else {
            return Vec::new();
        };
        let mut v: Vec<SocketAddr> = self
            .peers
            .conns()
            .into_iter()
            .filter_map(|c| self.peers.get(c))
            .map(|p| SocketAddr::new(p.local.ip(), port))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn on_opened(&mut self, r: Result<Opened, BoxError>) {
        let download = self.cfg.download;
        let (stage, mut cx) = self.parts();
        match stage.opened(&mut cx, r, download) {
            Ok(Some(name)) => {
                self.name = name;
                // Registered (by `opened`) before this lookup, so that
                // leechers starting together find each other at once.
                self.maybe_lookup();
                self.maybe_connect();
            }
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    fn on_lookup(&mut self, r: Result<Vec<PeerEntry>, BoxError>) {
        let outage = self.discovery.lookup_answered(r.is_ok());
        let note = match &r {
            Ok(list) => Ok(crate::core::msg::count(list.len() as u64, "peer")),
            Err(e) => Err(e.to_string()),
        };
        self.tracker_note = Some((self.now, note));
        match r {
            Ok(list) => {
                let me = crate::core::shared::peer_id_str(&self.cfg.peer_id);
                for e in list.into_iter().filter(|e| e.peer_id != me) {
                    self.discovery.add(e.addr, Some(e.peer_id), self.now);
                }
                self.maybe_connect();
            }
            Err(e) => {
                if !self.discovery.lookup_ok()
                    && self.peers.is_empty()
                    && self.discovery.known_len() == 0
                {
                    self.fail(e.to_string());
                } else if outage {
                    warn!(
                        "{}: {e}; going on with the peers already known, asking again every {} s",
                        self.name,
                        discovery::LOOKUP_UNREACHABLE.as_secs()
                    );
                } else {
                    debug!("{}: {e}", self.name);
                }
            }
        }
    }

    fn maybe_connect(&mut self) {
        if self.wants_peers() {
            // Idle connections do not count: they must not starve a download.
            let room = self.cfg.max_peers.saturating_sub(self.useful_peers());
            let dials = self
                .discovery
                .dials(room, &self.peers, self.now, &mut self.rng);
            for (conn, addr) in dials {
                self.out.push(Action::Dial { conn, addr });
            }
        }
    }

    fn maybe_lookup(&mut self) {
        if !self.cfg.lookups || !self.wants_peers() {
            return;
        }
        let useful = self.useful_peers();
        if self
            .discovery
            .lookup_due(useful, self.cfg.max_peers, self.now)
        {
            self.out.push(Action::Lookup);
        }
    }
}

/// The connection an event is about, if any.
fn event_conn(ev: &Event) -> Option<ConnId> {
    match ev {
        Event::Ext { conn, .. }
        | Event::Bitfield { conn, .. }
        | Event::Have { conn, .. }
        | Event::Unchoked { conn }
        | Event::Choked { conn }
        | Event::PeerInterest { conn, .. }
        | Event::PieceDone { conn, .. }
        | Event::PieceBad { conn, .. }
        | Event::Released { conn, .. }
        | Event::Rejected { conn, .. }
        | Event::AllowedFast { conn, .. }
        | Event::MetadataData { conn, .. }
        | Event::MetadataReject { conn, .. } => Some(*conn),
        _ => None,
    }
}

/// What to tell the user when every known peer (`n`) failed the same way.
pub fn failing_words(how: &FailKind, n: usize) -> String {
    let every = if n == 1 {
        "the only known peer".to_string()
    } else {
        format!("every known peer ({n})")
    };
    match how {
        FailKind::Refused => format!(
            "{every} refused the connection: nothing listens at its address any more (the \
             peer stopped, or its port changed)"
        ),
        FailKind::NoAnswer => format!(
            "{every} did not answer the connection (a firewall, an address we cannot reach, \
             or a peer gone)"
        ),
        FailKind::ClosedInHandshake => format!(
            "{every} closed the connection during the handshake: a peer that accepts \
             only encrypted connections does that to a plain one (--encryption prefer \
             dials encrypted first), one that speaks only plain does it to an encrypted \
             one (--encryption require), and a full one to anyone"
        ),
        FailKind::Handshake(why) => format!("{every} failed the handshake: {why}"),
        FailKind::Other => format!("{every} failed to connect"),
    }
}
