//! One torrent: the state shared with its connection threads
//! ([`TorrentShared`], [`MetaCtx`]), the messages between them ([`Event`],
//! [`Command`]) and the coordinator thread that owns the piece picker and the
//! peer set. The coordinator decides which piece each connection fetches,
//! which peers to connect to, when to ask the tracker again, and when the
//! download is complete; it never touches a socket.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::{Info, InfoHash};
use minitorrent_common::wire::Bitfield;

use crate::core::geometry::Geometry;
use crate::core::metadata::{MetadataError, MetadataFetch};
use crate::core::msg::{
    BoxError, CloseReason, Command, ConnLink, Event, Input, Notice, Phase, Summary, TorrentStatus,
    Tracked, TrackerMsg,
};
use crate::core::picker::{ConnId, Picker};
use crate::core::shared::{pieces_per_peer, HaveSet, Meta};
use crate::net::conn;
use crate::net::shared::{MetaCtx, TorrentHandle, TorrentShared};
use crate::net::storage::{Found, Storage};
use crate::net::trace;
use crate::net::tracker::json::PeerEntry;

/// How the coordinator reaches the rest of the session.
#[derive(Clone)]
pub struct SessionLink {
    /// Whether to ask the tracker home for peers (a BEP 15 announcer
    /// delivers them on its own schedule).
    pub lookups: bool,
    pub tracker_updates: Sender<TrackerMsg>,
    pub notices: Sender<Notice>,
    pub torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>,
}

#[derive(Debug, Clone)]
pub struct TorrentOpts {
    pub max_peers: usize,
    pub dir: PathBuf,
    pub name_hint: Option<String>,
    /// A download (reports completion) rather than a seed.
    pub download: bool,
}

/// Ask the tracker again this often while no peer is connected...
const LOOKUP_EMPTY: Duration = Duration::from_secs(3);
/// ...and this often while downloading with fewer peers than allowed.
const LOOKUP_MORE: Duration = Duration::from_secs(15);
/// Without any peer for this long, the user is told that we keep trying.
const NO_PEERS_NOTICE: Duration = Duration::from_secs(10);
/// Bad pieces after which a peer is dropped for good.
pub const MAX_STRIKES: u32 = 3;
/// Failed dials after which an address is left alone until listed again.
const MAX_CONNECT_FAILURES: u32 = 6;
const TICK: Duration = Duration::from_millis(250);
/// We stay interested in a leecher this long after it stopped having a piece
/// we lack. Between two leechers that lasts only until its next HAVE, so
/// saying NOT INTERESTED at once would make every HAVE a new
/// INTERESTED / NOT INTERESTED turn.
const INTEREST_LINGER: Duration = Duration::from_secs(5);

struct Peer {
    addr: SocketAddr,
    local: SocketAddr,
    key: String,
    key_id: u64,
    peer_id: [u8; 20],
    outbound: bool,
    link: Option<ConnLink>,
    bits: Option<Bitfield>,
    /// Pieces this peer has that we lack.
    missing: u32,
    am_interested: bool,
    /// Since when `am_interested` is no longer true of this peer's pieces.
    interest_lost_at: Option<Instant>,
    unchoked_us: bool,
    assigned: HashSet<u32>,
    ut_metadata: bool,
    metadata_size: Option<u64>,
}

impl Peer {
    fn send(&self, c: Command) {
        if let Some(l) = &self.link {
            l.send(c);
        }
    }
    fn has(&self, i: usize) -> bool {
        self.bits.as_ref().is_some_and(|b| b.get(i))
    }
}

struct Known {
    conn: Option<ConnId>,
    failures: u32,
    next_try: Instant,
    peer_id: Option<String>,
}

pub struct Coordinator {
    t: Arc<TorrentShared>,
    rx: Receiver<Input>,
    links: HashMap<ConnId, ConnLink>,
    link: SessionLink,
    opts: TorrentOpts,
    meta: Option<Arc<MetaCtx>>,
    picker: Option<Picker>,
    fetch: MetadataFetch,
    peers: HashMap<ConnId, Peer>,
    known: HashMap<SocketAddr, Known>,
    connecting: HashMap<ConnId, SocketAddr>,
    key_ids: HashMap<String, u64>,
    strikes: HashMap<u64, u32>,
    /// Banned peers, by every name we know them by: the address they are
    /// dialled at (`IP:port`, the port from the extension handshake for an
    /// inbound peer) and `id:PEER_ID`. A peer that changes one of the two
    /// is still refused by the other.
    banned: HashSet<String>,
    from_peers: HashMap<String, u64>,
    status: Arc<Mutex<TorrentStatus>>,
    phase: Phase,
    name: String,
    started: Instant,
    pieces_on_disk: u32,
    pieces_fetched: u32,
    lookup_running: bool,
    last_lookup: Option<Instant>,
    lookup_ok: bool,
    last_rate: (Instant, u64, u64),
    alone_since: Option<Instant>,
    told_alone: bool,
}

impl Coordinator {
    /// `meta` is given when the metainfo is known up front (a .torrent or a
    /// seed); `have` is what is verified on disk.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        t: Arc<TorrentShared>,
        rx: Receiver<Input>,
        link: SessionLink,
        opts: TorrentOpts,
        meta: Option<Arc<MetaCtx>>,
        pieces_on_disk: u32,
        status: Arc<Mutex<TorrentStatus>>,
    ) -> Coordinator {
        let name = meta
            .as_ref()
            .map(|m| m.info.name.clone())
            .or_else(|| opts.name_hint.clone())
            .unwrap_or_else(|| t.info_hash.to_hex());
        let picker = meta.as_ref().map(|m| {
            let have: Vec<bool> = (0..m.have.len()).map(|i| m.have.get(i)).collect();
            Picker::new(&have)
        });
        let phase = match &picker {
            None => Phase::Metadata,
            Some(p) if p.is_complete() => Phase::Seeding,
            Some(_) => Phase::Downloading,
        };
        let now = Instant::now();
        Coordinator {
            fetch: MetadataFetch::new(t.info_hash),
            t,
            rx,
            links: HashMap::new(),
            link,
            opts,
            meta,
            picker,
            peers: HashMap::new(),
            known: HashMap::new(),
            connecting: HashMap::new(),
            key_ids: HashMap::new(),
            strikes: HashMap::new(),
            banned: HashSet::new(),
            from_peers: HashMap::new(),
            status,
            phase,
            name,
            started: now,
            pieces_on_disk,
            pieces_fetched: 0,
            lookup_running: false,
            last_lookup: None,
            lookup_ok: false,
            last_rate: (now, 0, 0),
            alone_since: None,
            told_alone: false,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Runs until shutdown or a fatal error.
    pub fn run(mut self) {
        if self.meta.is_some() {
            if self.opts.download && self.phase == Phase::Seeding {
                // Everything was already on disk: finish (rename) and report.
                self.phase = Phase::Downloading;
                self.complete();
            } else if self.opts.download {
                self.track(false);
            }
        }
        self.maybe_lookup();
        self.publish_status();
        let ticker = crossbeam_channel::tick(TICK);
        loop {
            crossbeam_channel::select! {
                recv(self.rx) -> ev => match ev {
                    Ok(Input::Shutdown(ack)) => {
                        self.stop(Phase::Stopped);
                        let _ = ack.send(());
                        return;
                    }
                    Ok(Input::Link { conn, link }) => {
                        self.links.insert(conn, link);
                    }
                    Ok(Input::Status(reply)) => {
                        self.publish_status();
                        if let Ok(s) = self.status.lock() {
                            let _ = reply.send(s.clone());
                        }
                    }
                    Ok(Input::Event(ev)) => self.on_event(ev),
                    Err(_) => return,
                },
                recv(ticker) -> _ => self.on_tick(),
            }
            if matches!(self.phase, Phase::Failed(_)) {
                self.link
                    .torrents
                    .lock()
                    .map(|mut m| m.remove(&self.t.info_hash))
                    .ok();
                self.publish_status();
                return;
            }
        }
    }

    fn stop(&mut self, phase: Phase) {
        for p in self.peers.values() {
            p.send(Command::Close(CloseReason::TorrentStopped));
        }
        if let Some(m) = &self.meta {
            if let Err(e) = m.storage.sync() {
                warn!("{}: {e}", self.name);
            }
        }
        if !matches!(self.phase, Phase::Failed(_)) {
            self.phase = phase;
        }
        self.publish_status();
    }

    fn fail(&mut self, error: String) {
        warn!("{}: {error}", self.name);
        let _ = self.link.notices.send(Notice::Failed {
            info_hash: self.t.info_hash,
            name: self.name.clone(),
            error: error.clone(),
        });
        self.stop(Phase::Failed(error.clone()));
        self.phase = Phase::Failed(error);
    }

    fn track(&self, complete: bool) {
        if let Some(m) = &self.meta {
            let _ = self.link.tracker_updates.send(TrackerMsg::Update(
                Tracked {
                    info_hash: self.t.info_hash,
                    name: m.info.name.clone(),
                    size: m.geometry.total_len(),
                    complete,
                },
                None,
            ));
        }
    }

    fn ban(&mut self, key: &str, peer_id: &[u8; 20]) {
        self.banned.insert(key.to_string());
        self.banned.insert(id_key(peer_id));
    }

    fn key_id(&mut self, key: &str) -> u64 {
        let n = self.key_ids.len() as u64;
        *self.key_ids.entry(key.to_string()).or_insert(n)
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Connected {
                conn,
                addr,
                local,
                peer_id,
                outbound,
            } => self.on_connected(conn, (addr, local), peer_id, outbound),
            Event::ConnectFailed { conn, addr, error } => {
                self.connecting.remove(&conn);
                if let Some(k) = self.known.get_mut(&addr) {
                    k.conn = None;
                    k.failures += 1;
                    k.next_try = Instant::now() + Duration::from_secs(2u64 << k.failures.min(5));
                }
                debug!("{}: connect to {addr} failed: {error}", self.name);
            }
            Event::Ext {
                conn,
                metadata_size,
                ut_metadata,
                listen_port,
            } => {
                let Some(p) = self.peers.get_mut(&conn) else {
                    return;
                };
                p.ut_metadata = ut_metadata;
                p.metadata_size = metadata_size;
                if let (false, Some(port)) = (p.outbound, listen_port) {
                    let key = SocketAddr::new(p.addr.ip(), port).to_string();
                    p.key = key.clone();
                    let peer_id = p.peer_id;
                    let id = self.key_id(&key);
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.key_id = id;
                    }
                    if self.banned.contains(&key) || self.banned.contains(&id_key(&peer_id)) {
                        self.close(conn, CloseReason::Banned);
                        return;
                    }
                }
                if self.meta.is_none() {
                    if let Some(size) = metadata_size {
                        if let Err(e) = self.fetch.offer_size(conn, size) {
                            debug!("{}: {e}", self.name);
                        }
                    }
                    self.request_metadata(conn);
                }
            }
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
            Event::PieceDone { conn, index } => self.on_piece_done(conn, index),
            Event::PieceBad { conn, index } => self.on_piece_bad(conn, index),
            Event::Released { conn, index } => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.assigned.remove(&index);
                }
                if let Some(pk) = &mut self.picker {
                    pk.release(index, conn);
                }
                self.assign_all();
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
            } => self.on_metadata_data(conn, piece, total_size, data),
            Event::MetadataReject { conn, .. } => {
                self.fetch.forget(conn);
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.ut_metadata = false;
                }
                self.request_metadata_all();
            }
            Event::Gone { conn, error } => {
                let violation = error.is_violation();
                self.on_gone(conn, &error.to_string(), violation)
            }
            Event::Lookup(r) => self.on_lookup(r),
            Event::AddPeers(addrs) => {
                for a in addrs {
                    self.add_known(a, None);
                }
                self.maybe_connect();
            }
        }
    }

    fn on_connected(
        &mut self,
        conn: ConnId,
        (addr, local): (SocketAddr, SocketAddr),
        peer_id: [u8; 20],
        outbound: bool,
    ) {
        let link = self.links.remove(&conn);
        self.connecting.remove(&conn);
        let key = addr.to_string();
        let key_id = self.key_id(&key);
        let peer = Peer {
            addr,
            local,
            key,
            key_id,
            peer_id,
            outbound,
            link,
            bits: None,
            missing: 0,
            am_interested: false,
            interest_lost_at: None,
            unchoked_us: false,
            assigned: HashSet::new(),
            ut_metadata: false,
            metadata_size: None,
        };
        let reject = |why: CloseReason| {
            debug!("peer {addr}: {why}");
            peer.send(Command::Close(why));
        };
        if self.banned.contains(&peer.key) || self.banned.contains(&id_key(&peer_id)) {
            return reject(CloseReason::Banned);
        }
        if matches!(self.phase, Phase::Failed(_) | Phase::Stopped) {
            return reject(CloseReason::TorrentStopped);
        }
        if self.peers.len() >= self.opts.max_peers.max(1) * 2 {
            return reject(CloseReason::TooManyPeers);
        }
        // Two peers that dial each other at once keep the connection opened
        // by the smaller peer id; both ends apply the same rule.
        if let Some((&other, old)) = self.peers.iter().find(|(_, p)| p.peer_id == peer_id) {
            let keep_new = old.outbound != outbound && (self.t.peer_id < peer_id) == outbound;
            if keep_new {
                debug!("peer {addr}: duplicate connection, keeping the new one");
                self.close(other, CloseReason::Duplicate);
                self.on_gone(other, "duplicate connection", false);
            } else {
                return reject(CloseReason::Duplicate);
            }
        }
        if outbound {
            if let Some(k) = self.known.get_mut(&addr) {
                k.conn = Some(conn);
                k.failures = 0;
            }
        }
        info!(
            "{}: connected to {} {addr} ({})",
            self.name,
            if outbound { "outbound" } else { "inbound" },
            String::from_utf8_lossy(&peer_id)
        );
        self.peers.insert(conn, peer);
    }

    fn close(&mut self, conn: ConnId, why: CloseReason) {
        if let Some(p) = self.peers.get(&conn) {
            p.send(Command::Close(why));
        }
    }

    fn on_gone(&mut self, conn: ConnId, reason: &str, violation: bool) {
        self.fetch.forget(conn);
        // Also for a connection refused before it joined the peer table.
        for k in self.known.values_mut() {
            if k.conn == Some(conn) {
                k.conn = None;
                k.next_try = Instant::now() + Duration::from_secs(5);
            }
        }
        let Some(p) = self.peers.remove(&conn) else {
            return;
        };
        debug!("{}: peer {} gone: {reason}", self.name, p.addr);
        if violation {
            // A peer that broke the protocol is not dialled again.
            self.ban(&p.key, &p.peer_id);
        }
        if let Some(pk) = &mut self.picker {
            if let Some(b) = &p.bits {
                pk.peer_removed(|i| b.get(i));
            }
            for i in &p.assigned {
                pk.release(*i, conn);
            }
        }
        self.assign_all();
        self.request_metadata_all();
    }

    fn on_bitfield(&mut self, conn: ConnId, bits: Bitfield) {
        let Some(pk) = &mut self.picker else { return };
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if let Some(old) = &p.bits {
            pk.peer_removed(|i| old.get(i));
        }
        pk.peer_added(|i| bits.get(i));
        p.missing = (0..bits.len())
            .filter(|&i| bits.get(i) && !pk.have(i as u32))
            .count() as u32;
        let seeder = bits.all();
        p.bits = Some(bits);
        if seeder && self.phase == Phase::Seeding {
            self.close(conn, CloseReason::BothSeeders);
            return;
        }
        self.update_interest(conn);
        self.assign(conn);
    }

    fn on_have(&mut self, conn: ConnId, index: u32) {
        let Some(pk) = &mut self.picker else { return };
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let n = pk.num_pieces() as usize;
        let bits = p.bits.get_or_insert_with(|| Bitfield::new(n));
        if bits.get(index as usize) {
            return;
        }
        bits.set(index as usize);
        pk.peer_has(index);
        if !pk.have(index) {
            p.missing += 1;
        }
        let seeder = bits.all();
        if seeder && self.phase == Phase::Seeding {
            self.close(conn, CloseReason::BothSeeders);
            return;
        }
        self.update_interest(conn);
        self.assign(conn);
    }

    /// Interest follows what the peer has that we lack. It is said at once
    /// when it starts, and when it ends because we need nothing more; when it
    /// ends because we caught up with a leecher, only after
    /// [`INTEREST_LINGER`] without a new piece from it (see `on_tick`).
    fn update_interest(&mut self, conn: ConnId) {
        let downloading = self.phase == Phase::Downloading;
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        let want = downloading && p.missing > 0;
        if want {
            p.interest_lost_at = None;
            if !p.am_interested {
                p.am_interested = true;
                p.send(Command::Interested(true));
            }
        } else if p.am_interested {
            if downloading {
                p.interest_lost_at.get_or_insert_with(Instant::now);
            } else {
                p.am_interested = false;
                p.interest_lost_at = None;
                p.send(Command::Interested(false));
            }
        }
    }

    /// NOT INTERESTED to the peers that had nothing new for us for
    /// [`INTEREST_LINGER`].
    fn expire_interest(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            if p.interest_lost_at
                .is_some_and(|t| now.duration_since(t) >= INTEREST_LINGER)
            {
                p.interest_lost_at = None;
                p.am_interested = false;
                p.send(Command::Interested(false));
            }
        }
    }

    /// Hands pieces to `conn` until it holds as many as it should.
    fn assign(&mut self, conn: ConnId) {
        if self.phase != Phase::Downloading {
            return;
        }
        let (Some(pk), Some(m)) = (&mut self.picker, &self.meta) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&conn) else {
            return;
        };
        if !p.unchoked_us || p.bits.is_none() {
            return;
        }
        let cap = pieces_per_peer(m.geometry.nominal_piece_len());
        while p.assigned.len() < cap {
            let Some(i) = pk.pick(conn, p.key_id, |i| p.has(i)) else {
                break;
            };
            p.assigned.insert(i);
            p.send(Command::Fetch(i));
        }
    }

    fn assign_all(&mut self) {
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.assign(c);
        }
    }

    fn on_piece_done(&mut self, conn: ConnId, index: u32) {
        let (Some(pk), Some(m)) = (&mut self.picker, self.meta.clone()) else {
            return;
        };
        let (new, others) = pk.completed(index, conn);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.assigned.remove(&index);
            let bytes = m
                .geometry
                .piece(index)
                .map(|x| m.geometry.piece_len(x))
                .unwrap_or(0);
            let dup = if new { "" } else { ", already had" };
            trace::note(p.local, || {
                format!(
                    "piece {index} SHA-1 ok ({bytes} bytes from {}{dup})",
                    p.addr
                )
            });
        }
        for o in others {
            if let Some(op) = self.peers.get_mut(&o) {
                op.assigned.remove(&index);
                op.send(Command::Cancel(index));
            }
        }
        if !new {
            self.assign(conn);
            return;
        }
        m.have.set(index as usize);
        self.pieces_fetched += 1;
        let bytes = m
            .geometry
            .piece(index)
            .map(|p| m.geometry.piece_len(p) as u64)
            .unwrap_or(0);
        if let Some(p) = self.peers.get(&conn) {
            *self.from_peers.entry(p.key.clone()).or_default() += bytes;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in &conns {
            if let Some(p) = self.peers.get_mut(c) {
                if p.has(index as usize) {
                    p.missing = p.missing.saturating_sub(1);
                } else {
                    p.send(Command::Have(index));
                }
            }
        }
        if pk.is_complete() {
            self.complete();
            return;
        }
        for c in conns {
            self.update_interest(c);
        }
        self.assign(conn);
    }

    fn on_piece_bad(&mut self, conn: ConnId, index: u32) {
        let Some(pk) = &mut self.picker else { return };
        let Some(p) = self.peers.get_mut(&conn) else {
            pk.release(index, conn);
            return;
        };
        p.assigned.remove(&index);
        pk.failed_piece(index, conn, p.key_id);
        let strikes = self.strikes.entry(p.key_id).or_default();
        *strikes += 1;
        warn!(
            "{}: piece {index} from {} failed the SHA-1 check ({} of {MAX_STRIKES})",
            self.name, p.key, strikes
        );
        let n = *strikes;
        trace::note(p.local, || {
            let end = if n >= MAX_STRIKES { ": dropped" } else { "" };
            format!(
                "piece {index} SHA-1 MISMATCH from {} (strike {n}/{MAX_STRIKES}{end})",
                p.addr
            )
        });
        if *strikes >= MAX_STRIKES {
            warn!(
                "{}: dropping {} after {MAX_STRIKES} bad pieces",
                self.name, p.key
            );
            let (key, id) = (p.key.clone(), p.peer_id);
            self.ban(&key, &id);
            self.close(conn, CloseReason::BadPieces);
        } else {
            self.assign(conn);
        }
        self.assign_all();
    }

    fn complete(&mut self) {
        let Some(m) = self.meta.clone() else { return };
        if let Err(e) = m.storage.finish() {
            self.fail(format!("could not finish the download: {e}"));
            return;
        }
        self.phase = Phase::Seeding;
        let mut from: Vec<(String, u64)> = self
            .from_peers
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        from.sort();
        let summary = Summary {
            info_hash: self.t.info_hash,
            name: m.info.name.clone(),
            size: m.geometry.total_len(),
            elapsed: self.started.elapsed(),
            peers_used: from.iter().filter(|(_, b)| *b > 0).count(),
            pieces_total: m.geometry.num_pieces(),
            pieces_fetched: self.pieces_fetched,
            pieces_on_disk: self.pieces_on_disk,
            from_peers: from,
            paths: m.storage.final_paths(),
        };
        info!("{}: complete, seeding", self.name);
        self.track(true);
        let _ = self.link.notices.send(Notice::Completed(summary));
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            let seeder = self
                .peers
                .get(&c)
                .is_some_and(|p| p.bits.as_ref().is_some_and(|b| b.all()));
            if seeder {
                self.close(c, CloseReason::BothSeeders);
            } else {
                self.update_interest(c);
            }
        }
        self.publish_status();
    }

    fn request_metadata(&mut self, conn: ConnId) {
        if self.meta.is_some() {
            return;
        }
        let Some(p) = self.peers.get(&conn) else {
            return;
        };
        if !p.ut_metadata {
            return;
        }
        if self.fetch.is_asking(conn) {
            return;
        }
        if let Some(piece) = self.fetch.next_request(conn, Instant::now()) {
            p.send(Command::MetadataRequest(piece));
        }
    }

    fn request_metadata_all(&mut self) {
        if self.meta.is_some() {
            return;
        }
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for c in conns {
            self.request_metadata(c);
        }
    }

    fn on_metadata_data(&mut self, conn: ConnId, piece: u32, total: u64, data: Vec<u8>) {
        if self.meta.is_some() {
            return;
        }
        match self.fetch.received(conn, piece, total, data) {
            Ok(Some(bytes)) => self.on_metadata(bytes),
            Ok(None) => self.request_metadata(conn),
            Err(MetadataError::HashMismatch) => {
                warn!(
                    "{}: metadata did not match the info hash; asking again",
                    self.name
                );
                self.request_metadata_all();
            }
            // Not a reason to close: a late answer to a withdrawn request,
            // or a peer whose size differs from the one being fetched
            // (which may be the wrong one); its claim is forgotten.
            Err(e @ (MetadataError::Unsolicited { .. } | MetadataError::SizeMismatch { .. })) => {
                debug!("{}: metadata block ignored: {e}", self.name);
                self.request_metadata_all();
            }
            Err(e) => {
                warn!("{}: bad metadata from a peer: {e}", self.name);
                self.close(conn, CloseReason::BadMetadata);
            }
        }
    }

    fn on_metadata(&mut self, bytes: Vec<u8>) {
        let info = match Info::from_bytes(&bytes) {
            Ok(i) => i,
            Err(e) => {
                self.fail(format!(
                    "the metadata from peers is not a valid info dictionary: {e}"
                ));
                return;
            }
        };
        let (meta, on_disk) = match open_download(info, bytes, &self.opts.dir) {
            Ok(x) => x,
            Err(e) => {
                self.fail(e);
                return;
            }
        };
        self.name = meta.info.name.clone();
        self.pieces_on_disk = on_disk;
        let have: Vec<bool> = (0..meta.have.len()).map(|i| meta.have.get(i)).collect();
        let picker = Picker::new(&have);
        let meta = Arc::new(meta);
        let _ = self.t.meta.set(meta.clone());
        info!(
            "{}: metadata received: {} bytes in {} pieces",
            self.name,
            meta.geometry.total_len(),
            meta.geometry.num_pieces()
        );
        let _ = self.link.notices.send(Notice::MetadataReceived {
            info_hash: self.t.info_hash,
            name: self.name.clone(),
            size: meta.geometry.total_len(),
            pieces_on_disk: on_disk,
            pieces_total: meta.geometry.num_pieces(),
        });
        self.phase = Phase::Downloading;
        let complete = picker.is_complete();
        self.picker = Some(picker);
        self.meta = Some(meta);
        self.track(false);
        for p in self.peers.values() {
            p.send(Command::MetadataReady);
        }
        if complete {
            self.complete();
        }
        self.publish_status();
    }

    fn add_known(&mut self, addr: SocketAddr, peer_id: Option<String>) {
        let k = self.known.entry(addr).or_insert(Known {
            conn: None,
            failures: 0,
            next_try: Instant::now(),
            peer_id: None,
        });
        if peer_id.is_some() {
            k.peer_id = peer_id;
        }
        // Listed again by the tracker: worth another try soon, even after
        // many failures (it may have restarted).
        if k.failures > 0 && k.conn.is_none() {
            k.failures = k.failures.min(MAX_CONNECT_FAILURES / 2);
            k.next_try = k.next_try.min(Instant::now() + Duration::from_secs(2));
        }
    }

    fn on_lookup(&mut self, r: Result<Vec<PeerEntry>, BoxError>) {
        self.lookup_running = false;
        match r {
            Ok(list) => {
                self.lookup_ok = true;
                let me = crate::peer_id_str(&self.t.peer_id);
                for e in list {
                    if e.peer_id == me {
                        continue;
                    }
                    self.add_known(e.addr, Some(e.peer_id));
                }
                self.maybe_connect();
            }
            Err(e) => {
                if !self.lookup_ok && self.peers.is_empty() && self.known.is_empty() {
                    self.fail(e.to_string());
                } else {
                    warn!("{}: {e}", self.name);
                }
            }
        }
    }

    fn wants_peers(&self) -> bool {
        matches!(self.phase, Phase::Metadata | Phase::Downloading)
    }

    fn maybe_connect(&mut self) {
        if !self.wants_peers() {
            return;
        }
        let now = Instant::now();
        let connected_ids: HashSet<String> = self
            .peers
            .values()
            .map(|p| crate::peer_id_str(&p.peer_id))
            .collect();
        let mut candidates: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(a, k)| {
                k.conn.is_none()
                    && k.next_try <= now
                    && k.failures < MAX_CONNECT_FAILURES
                    && !k
                        .peer_id
                        .as_ref()
                        .is_some_and(|id| connected_ids.contains(id))
                    && !self.banned.contains(&a.to_string())
                    && !k
                        .peer_id
                        .as_ref()
                        .is_some_and(|id| self.banned.contains(&format!("id:{id}")))
            })
            .map(|(a, _)| *a)
            .collect();
        fastrand::shuffle(&mut candidates);
        for addr in candidates {
            if self.peers.len() + self.connecting.len() >= self.opts.max_peers {
                break;
            }
            let conn = conn::next_conn_id();
            if let Some(k) = self.known.get_mut(&addr) {
                k.conn = Some(conn);
                k.next_try = now + Duration::from_secs(5);
            }
            self.connecting.insert(conn, addr);
            let t = self.t.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("peer {addr}"))
                .spawn(move || conn::run_outbound(t, conn, addr));
            if let Err(e) = spawned {
                warn!("cannot start a connection thread: {e}");
                self.connecting.remove(&conn);
            }
        }
    }

    fn maybe_lookup(&mut self) {
        if !self.wants_peers() || self.lookup_running {
            return;
        }
        if !self.link.lookups {
            return;
        }
        let every = if self.peers.is_empty() {
            LOOKUP_EMPTY
        } else if self.peers.len() < self.opts.max_peers {
            LOOKUP_MORE
        } else {
            return;
        };
        if self.last_lookup.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_lookup = Some(Instant::now());
        self.lookup_running = true;
        let asked = self.link.tracker_updates.send(TrackerMsg::Lookup {
            info_hash: self.t.info_hash,
            reply: self.t.events.clone(),
        });
        if asked.is_err() {
            self.lookup_running = false;
        }
    }

    fn on_tick(&mut self) {
        if self.wants_peers() && self.peers.is_empty() {
            let alone = *self.alone_since.get_or_insert_with(Instant::now);
            if !self.told_alone && alone.elapsed() >= NO_PEERS_NOTICE {
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
        self.expire_interest(Instant::now());
        self.maybe_lookup();
        self.maybe_connect();
        self.request_metadata_all();
        self.publish_status();
    }

    fn publish_status(&mut self) {
        let now = Instant::now();
        let down = self.t.downloaded();
        let up = self.t.uploaded();
        let (t0, d0, u0) = self.last_rate;
        let dt = now.duration_since(t0).as_secs_f64();
        let Ok(mut s) = self.status.lock() else {
            return;
        };
        if dt >= 1.0 {
            s.down_rate = (down - d0) as f64 / dt;
            s.up_rate = (up - u0) as f64 / dt;
            self.last_rate = (now, down, up);
        }
        s.name = self.name.clone();
        s.phase = self.phase.clone();
        s.peers = self.peers.len();
        s.downloaded = down;
        s.uploaded = up;
        if let (Some(m), Some(pk)) = (&self.meta, &self.picker) {
            s.size = Some(m.geometry.total_len());
            s.pieces_total = m.geometry.num_pieces();
            s.pieces_have = pk.have_count();
            let full = pk.have_count() as u64 * m.geometry.nominal_piece_len();
            s.bytes_have = if pk.is_complete() {
                m.geometry.total_len()
            } else {
                full.min(m.geometry.total_len())
            };
            if s.paths.is_empty() {
                s.paths = m.storage.final_paths();
            }
        }
    }
}

/// The name of a peer id in the ban list.
fn id_key(peer_id: &[u8; 20]) -> String {
    format!("id:{}", crate::peer_id_str(peer_id))
}

/// Opens the download's storage below `dir` and checks what is already
/// there. Returns the context and how many pieces were verified on disk.
pub fn open_download(
    info: Info,
    info_bytes: Vec<u8>,
    dir: &std::path::Path,
) -> Result<(MetaCtx, u32), String> {
    let geometry = Geometry::from_info(&info).map_err(|e| format!("{}: {e}", info.name))?;
    let (storage, found) = Storage::open_download(&info, dir).map_err(|e| e.to_string())?;
    let have = match found {
        Found::Nothing => vec![false; geometry.num_pieces() as usize],
        Found::Something => {
            let have = storage.verify(&info.pieces, |_, _| {});
            let bad = storage.unverified_final_files(&have);
            if let Some(p) = bad.first() {
                return Err(
                    crate::net::storage::StorageError::Mismatch { path: p.clone() }.to_string(),
                );
            }
            have
        }
    };
    let on_disk = have.iter().filter(|h| **h).count() as u32;
    if on_disk > 0 {
        info!(
            "{}: resume: {on_disk} of {} pieces already verified on disk",
            info.name,
            geometry.num_pieces()
        );
    }
    Ok((
        MetaCtx {
            meta: Arc::new(Meta {
                have: HaveSet::new(&have),
                info,
                info_bytes,
                geometry,
            }),
            storage,
        },
        on_disk,
    ))
}

/// Opens complete data for seeding below `root`, hashing it when `check`.
pub fn open_seed(
    info: Info,
    info_bytes: Vec<u8>,
    root: &std::path::Path,
    check: bool,
) -> Result<MetaCtx, String> {
    let geometry = Geometry::from_info(&info).map_err(|e| format!("{}: {e}", info.name))?;
    let storage = Storage::open_seed(&info, root).map_err(|e| e.to_string())?;
    let have = if check {
        let have = storage.verify(&info.pieces, |_, _| {});
        let bad = have.iter().filter(|h| !**h).count();
        if bad > 0 {
            return Err(format!(
                "{}: {bad} of {} pieces do not match the torrent's hashes (run `minitorrent get` to repair it)",
                storage.final_paths().first().map(|p| p.display().to_string()).unwrap_or_default(),
                have.len()
            ));
        }
        have
    } else {
        vec![true; geometry.num_pieces() as usize]
    };
    Ok(MetaCtx {
        meta: Arc::new(Meta {
            have: HaveSet::new(&have),
            info,
            info_bytes,
            geometry,
        }),
        storage,
    })
}
