//! One torrent's decisions, as a state machine with the time passed in:
//! [`Swarm::handle`] takes an [`Event`] (from a connection, the tracker
//! home, the storage) and `now`, and returns the [`Action`]s the
//! coordinator thread carries out (send a command to a connection, dial,
//! ask the tracker, open or finish the storage, tell the session).
//! [`Swarm::tick`] runs the timers. Nothing here touches a socket, a file, a
//! thread or the clock, so every rule is unit-tested with scripted events.
//!
//! - `peers`: who is connected, admission, bans and strikes;
//! - `pieces`: interest, assignment, endgame, verified and bad pieces,
//!   completion, and the metadata fetch;
//! - `discovery`: known addresses, dialling, tracker lookups.
//!
//! A torrent's lifecycle is one [`Stage`]: fetching metadata, checking the
//! data on disk, live (downloading or seeding), failed or stopped.

pub mod discovery;
pub mod peers;
mod pieces;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use minitorrent_common::metainfo::{Info, InfoHash};

use crate::core::metadata::MetadataFetch;
use crate::core::msg::{
    BoxError, CloseReason, Command, Event, Notice, Opened, Phase, TorrentStatus, Tracked,
};
use crate::core::picker::{ConnId, Picker};
use crate::core::shared::Meta;
use discovery::{Discovery, LOOKUP_EMPTY};
use peers::{Bans, Peer, Refusal, Strikes};

/// Bad pieces after which a peer is dropped for good.
pub const MAX_STRIKES: u32 = 3;
/// Without any peer for this long, the user is told that we keep trying.
pub const NO_PEERS_NOTICE: Duration = Duration::from_secs(10);
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

/// Downloading or seeding: the metadata is known and the storage open.
#[derive(Debug)]
struct Live {
    meta: Arc<Meta>,
    picker: Picker,
    seeding: bool,
    /// `Action::Finish` is out; nothing more is fetched meanwhile.
    finishing: bool,
    paths: Vec<PathBuf>,
}

#[derive(Debug)]
enum Stage {
    Metadata(MetadataFetch),
    /// The storage is being opened and checked (`Action::Open` is out);
    /// `from_peers` when the metadata came from peers (the session is told).
    Checking {
        total: u32,
        size: u64,
        from_peers: bool,
    },
    Live(Box<Live>),
    Failed(String),
    Stopped,
}

/// One torrent's swarm, as seen from our peer.
pub struct Swarm {
    cfg: SwarmConfig,
    stage: Stage,
    /// The pending `Start::Check`, handed out by [`Swarm::start`].
    to_open: Option<(Info, Vec<u8>)>,
    name: String,
    peers: HashMap<ConnId, Peer>,
    discovery: Discovery,
    bans: Bans,
    strikes: Strikes,
    /// Verified bytes per peer name, at most [`MAX_SUMMARY_PEERS`] names.
    from_peers: HashMap<String, u64>,
    started: Instant,
    pieces_on_disk: u32,
    pieces_fetched: u32,
    alone_since: Option<Instant>,
    told_alone: bool,
    last_rate: (Instant, u64, u64),
    rates: (f64, f64),
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
            stage: Stage::Metadata(MetadataFetch::new(cfg.info_hash)),
            to_open: None,
            name,
            peers: HashMap::new(),
            discovery: Discovery::default(),
            bans: Bans::default(),
            strikes: Strikes::default(),
            from_peers: HashMap::new(),
            started: now,
            pieces_on_disk: 0,
            pieces_fetched: 0,
            alone_since: None,
            told_alone: false,
            last_rate: (now, 0, 0),
            rates: (0.0, 0.0),
            rng: fastrand::Rng::with_seed(crate::core::shared::seed_of(&cfg.info_hash.0)),
            out: Vec::new(),
            now,
            cfg,
        };
        match start {
            Start::Magnet => {}
            Start::Check { info, info_bytes } => {
                s.name = info.name.clone();
                s.stage = Stage::Checking {
                    total: info.num_pieces() as u32,
                    size: info.total_length(),
                    from_peers: false,
                };
                s.to_open = Some((info, info_bytes));
            }
            Start::Ready(o) => s.go_live(o),
        }
        s
    }

    /// The first actions: open and check the data, or finish a download
    /// that was already complete on disk, or tell the tracker we leech.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        self.now = now;
        if let Some((info, info_bytes)) = self.to_open.take() {
            // Registered before the first lookup, so that leechers starting
            // together find each other in the tracker's first answer.
            if self.cfg.download {
                self.out.push(Action::Track(Tracked {
                    info_hash: self.cfg.info_hash,
                    name: info.name.clone(),
                    size: info.total_length(),
                    complete: false,
                }));
            }
            self.out.push(Action::Open { info, info_bytes });
        }
        if let Stage::Live(l) = &self.stage {
            if self.cfg.download {
                if l.picker.is_complete() {
                    // Everything was already on disk: finish (rename) and report.
                    self.complete();
                } else {
                    self.track(false);
                }
            }
        }
        self.maybe_lookup(now);
        self.take()
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

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, conn: ConnId, c: Command) {
        self.out.push(Action::Send(conn, c));
    }

    fn close(&mut self, conn: ConnId, why: CloseReason) {
        if self.peers.contains_key(&conn) {
            self.send(conn, Command::Close(why));
        }
    }

    fn trace(&mut self, at: SocketAddr, line: impl FnOnce() -> String) {
        if self.cfg.trace {
            self.out.push(Action::Trace { at, line: line() });
        }
    }

    fn wants_peers(&self) -> bool {
        match &self.stage {
            Stage::Metadata(_) | Stage::Checking { .. } => true,
            Stage::Live(l) => !l.seeding,
            Stage::Failed(_) | Stage::Stopped => false,
        }
    }

    /// Handles one event; returns what to do about it.
    pub fn handle(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        self.now = now;
        if let Some(c) = event_conn(&ev) {
            if let Some(p) = self.peers.get_mut(&c) {
                p.last_active = now;
            }
        }
        match ev {
            Event::Connected {
                conn,
                addr,
                local,
                peer_id,
                outbound,
            } => self.on_connected(conn, addr, local, peer_id, outbound, now),
            Event::ConnectFailed { conn, addr, error } => {
                self.discovery.connect_failed(conn, addr, now);
                debug!("{}: connect to {addr} failed: {error}", self.name);
            }
            Event::Ext {
                conn,
                metadata_size,
                ut_metadata,
                listen_port,
            } => self.on_ext(conn, metadata_size, ut_metadata, listen_port, now),
            Event::Bitfield { conn, bits } => self.on_bitfield(conn, bits),
            Event::Have { conn, index } => self.on_have(conn, index),
            Event::Unchoked { conn } => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.unchoked_us = true;
                }
                self.assign(conn);
            }
            Event::Choked { conn } => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.unchoked_us = false;
                }
            }
            Event::PeerInterest { conn, interested } => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.peer_interested = interested;
                }
            }
            Event::PieceDone { conn, index } => self.on_piece_done(conn, index),
            Event::PieceBad { conn, index } => self.on_piece_bad(conn, index),
            Event::Released { conn, index } => self.on_released(conn, index),
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
            } => self.on_metadata_data(conn, piece, total_size, data, now),
            Event::MetadataReject { conn, .. } => {
                if let Stage::Metadata(f) = &mut self.stage {
                    f.forget(conn);
                }
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.ut_metadata = false;
                }
                self.request_metadata_all(now);
            }
            Event::Gone { conn, error } => {
                let violation = error.is_violation();
                self.on_gone(conn, &error.to_string(), violation, now);
            }
            Event::Lookup(r) => self.on_lookup(r, now),
            Event::AddPeers(addrs) => {
                for a in addrs {
                    self.discovery.add(a, None, now);
                }
                self.maybe_connect(now);
            }
            Event::Opened(r) => self.on_opened(r),
            Event::Finished(r) => self.on_finished(r, now),
        }
        self.take()
    }

    /// The timers: the "no peer yet" notice, lingering interest, lookups,
    /// dials and metadata requests.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.now = now;
        if self.wants_peers() && self.peers.is_empty() {
            let alone = *self.alone_since.get_or_insert(now);
            if !self.told_alone && now.saturating_duration_since(alone) >= NO_PEERS_NOTICE {
                self.told_alone = true;
                warn!(
                    "{}: no peer to download from yet; asking the tracker every {} s (Ctrl-C to stop)",
                    self.name,
                    LOOKUP_EMPTY.as_secs()
                );
            }
        } else {
            self.alone_since = None;
        }
        self.expire_interest(now);
        self.maybe_lookup(now);
        self.maybe_connect(now);
        self.request_metadata_all(now);
        self.take()
    }

    /// The torrent stops: every connection is closed and the files flushed.
    pub fn stop(&mut self) -> Vec<Action> {
        self.stop_as(Stage::Stopped);
        self.take()
    }

    fn stop_as(&mut self, stage: Stage) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
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

    fn track(&mut self, complete: bool) {
        if let Stage::Live(l) = &self.stage {
            self.out.push(Action::Track(Tracked {
                info_hash: self.cfg.info_hash,
                name: l.meta.info.name.clone(),
                size: l.meta.geometry.total_len(),
                complete,
            }));
        }
    }

    fn on_connected(
        &mut self,
        conn: ConnId,
        addr: SocketAddr,
        local: SocketAddr,
        peer_id: [u8; 20],
        outbound: bool,
        now: Instant,
    ) {
        self.discovery.connected(conn, addr, outbound);
        let peer = Peer::new(addr, local, peer_id, outbound, now);
        let reject = |s: &mut Swarm, why: CloseReason| {
            debug!("peer {addr}: {why}");
            s.out.push(Action::Send(conn, Command::Close(why)));
        };
        if self.bans.is_banned(peer.listen, Some(&peer_id)) {
            return reject(self, CloseReason::Banned);
        }
        if self.is_over() {
            return reject(self, CloseReason::TorrentStopped);
        }
        // Two peers that dial each other at once keep the connection opened
        // by the smaller peer id; both ends apply the same rule.
        if let Some((&other, old)) = self.peers.iter().find(|(_, p)| p.peer_id == peer_id) {
            let keep_new = old.outbound != outbound && (self.cfg.peer_id < peer_id) == outbound;
            if keep_new {
                debug!("peer {addr}: duplicate connection, keeping the new one");
                self.close(other, CloseReason::Duplicate);
                self.on_gone(other, "duplicate connection", false, now);
            } else {
                return reject(self, CloseReason::Duplicate);
            }
        }
        match peers::make_room(&self.peers, addr.ip(), self.max_conns(), now) {
            Ok(None) => {}
            Ok(Some(victim)) => {
                debug!(
                    "{}: dropping an idle peer to make room for {addr}",
                    self.name
                );
                self.close(victim, CloseReason::MakingRoom);
                self.on_gone(victim, "making room", false, now);
            }
            Err(Refusal::TooManyFromAddress) => {
                return reject(self, CloseReason::TooManyFromAddress)
            }
            Err(Refusal::TooManyPeers) => return reject(self, CloseReason::TooManyPeers),
        }
        info!(
            "{}: connected to {} {addr} ({})",
            self.name,
            if outbound { "outbound" } else { "inbound" },
            String::from_utf8_lossy(&peer_id)
        );
        self.peers.insert(conn, peer);
        if matches!(self.stage, Stage::Live(_)) {
            // A connection that started before the storage was open (its
            // `Connected` queued behind `Opened`) missed the word that sent
            // the others theirs; one that started after ignores it.
            self.send(conn, Command::MetadataReady);
        }
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
        now: Instant,
    ) {
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        p.ut_metadata = ut_metadata;
        p.metadata_size = metadata_size;
        if let (false, Some(port)) = (p.outbound, listen_port.filter(|p| *p != 0)) {
            p.listen = Some(SocketAddr::new(p.addr.ip(), port));
            if self.bans.is_banned(p.listen, Some(&p.peer_id)) {
                self.close(conn, CloseReason::Banned);
                return;
            }
        }
        if let (Stage::Metadata(f), Some(size)) = (&mut self.stage, metadata_size) {
            if let Err(e) = f.offer_size(conn, size) {
                debug!("{}: {e}", self.name);
            }
        }
        self.request_metadata(conn, now);
    }

    fn on_gone(&mut self, conn: ConnId, reason: &str, violation: bool, now: Instant) {
        if let Stage::Metadata(f) = &mut self.stage {
            f.forget(conn);
        }
        self.discovery.gone(conn, now);
        let Some(p) = self.peers.remove(&conn) else {
            return;
        };
        debug!("{}: peer {} gone: {reason}", self.name, p.addr);
        if violation {
            // A peer that broke the protocol is not dialled again.
            self.bans.ban(p.listen, &p.peer_id);
        }
        if let Stage::Live(l) = &mut self.stage {
            if let Some(b) = &p.bits {
                l.picker.peer_removed(|i| b.get(i));
            }
            for i in &p.assigned {
                l.picker.release(*i, conn);
            }
        }
        self.assign_all();
        self.request_metadata_all(now);
    }

    fn on_lookup(
        &mut self,
        r: Result<Vec<minitorrent_common::tracker_proto::PeerEntry>, BoxError>,
        now: Instant,
    ) {
        self.discovery.lookup_answered(r.is_ok());
        match r {
            Ok(list) => {
                let me = crate::core::shared::peer_id_str(&self.cfg.peer_id);
                for e in list {
                    if e.peer_id == me {
                        continue;
                    }
                    self.discovery.add(e.addr, Some(e.peer_id), now);
                }
                self.maybe_connect(now);
            }
            Err(e) => {
                if !self.discovery.lookup_ok()
                    && self.peers.is_empty()
                    && self.discovery.known_len() == 0
                {
                    self.fail(e.to_string());
                } else {
                    warn!("{}: {e}", self.name);
                }
            }
        }
    }

    fn maybe_connect(&mut self, now: Instant) {
        if !self.wants_peers() {
            return;
        }
        let connected_ids: HashSet<String> = self
            .peers
            .values()
            .map(|p| crate::core::shared::peer_id_str(&p.peer_id))
            .collect();
        let room = self.cfg.max_peers.saturating_sub(self.peers.len());
        let bans = &self.bans;
        let dials = self.discovery.dials(
            room,
            &connected_ids,
            |a, id| {
                bans.is_banned(Some(a), None)
                    || id.is_some_and(|id| {
                        <[u8; 20]>::try_from(id.as_bytes())
                            .is_ok_and(|b| bans.is_banned(None, Some(&b)))
                    })
            },
            now,
            &mut self.rng,
        );
        for (conn, addr) in dials {
            self.out.push(Action::Dial { conn, addr });
        }
    }

    fn maybe_lookup(&mut self, now: Instant) {
        if !self.cfg.lookups || !self.wants_peers() {
            return;
        }
        if self
            .discovery
            .lookup_due(self.peers.len(), self.cfg.max_peers, now)
        {
            self.out.push(Action::Lookup);
        }
    }

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
        let (t0, d0, u0) = self.last_rate;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt >= 1.0 {
            self.rates = (
                downloaded.saturating_sub(d0) as f64 / dt,
                uploaded.saturating_sub(u0) as f64 / dt,
            );
            self.last_rate = (now, downloaded, uploaded);
        }
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
            peers: self.peers.len(),
            down_rate: self.rates.0,
            up_rate: self.rates.1,
            phase,
            paths: Vec::new(),
        };
        if let Stage::Checking { total, size, .. } = &self.stage {
            s.size = Some(*size);
            s.pieces_total = *total;
        }
        if let Stage::Live(l) = &self.stage {
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
        s
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
        | Event::MetadataData { conn, .. }
        | Event::MetadataReject { conn, .. } => Some(*conn),
        _ => None,
    }
}
