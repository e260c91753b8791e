//! A running peer: the TCP listener thread (routes each inbound connection to
//! its torrent by info hash), the tracker thread (REGISTER, HEARTBEAT every
//! `interval`, re-REGISTER on `unknown_peer`, EXIT on shutdown), and the
//! table of torrents with their coordinator threads. This is the API the CLI
//! and the menu use.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::{self, InfoHash, Metainfo};

use crate::peer;
use crate::ratelimit::RateLimit;
use crate::torrent::{
    self, Coordinator, Event, MetaCtx, Notice, Phase, SessionLink, TorrentOpts, TorrentShared,
    TorrentStatus, Tracked,
};
use crate::tracker_client::{self, FileSummary, PeersReply, RegisterFile, TrackerClient};
use crate::udp_announce::{self, Protocol, TrackerProtocol};

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub dir: PathBuf,
    pub max_peers: usize,
    /// Bytes per second for all uploads together; 0: unlimited.
    pub max_upload_rate: u64,
    /// JSON, BEP 15, or find out (see `udp_announce`).
    pub tracker_protocol: TrackerProtocol,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 0,
            dir: PathBuf::from("."),
            max_peers: 8,
            max_upload_rate: 0,
            tracker_protocol: TrackerProtocol::Auto,
        }
    }
}

/// Session-side handle of a torrent.
#[derive(Clone)]
pub struct TorrentHandle {
    pub shared: Arc<TorrentShared>,
    pub status: Arc<Mutex<TorrentStatus>>,
    pub magnet: String,
}

/// Messages to the tracker thread.
pub enum TrackerMsg {
    /// Add or update a file; the reply (if asked) says whether the REGISTER
    /// went through.
    Update(Tracked, Option<Sender<Result<(), String>>>),
    Shutdown(Sender<()>),
}

/// What adding a torrent returns.
#[derive(Debug, Clone)]
pub struct Added {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: Option<u64>,
    pub pieces: Option<u32>,
    pub magnet: String,
}

pub struct Session {
    peer_id: [u8; 20],
    listen: SocketAddr,
    tracker: SocketAddr,
    cfg: Config,
    torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>,
    tracker_tx: Sender<TrackerMsg>,
    notices_tx: Sender<Notice>,
    notices_rx: Receiver<Notice>,
    rate: Arc<RateLimit>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The BEP 15 announcer, started when the tracker turns out to need it.
    bep15_tx: Mutex<Option<Sender<TrackerMsg>>>,
}

impl Session {
    /// Binds the listening port and starts the listener and tracker threads.
    pub fn start(cfg: Config, tracker: SocketAddr) -> Result<Session> {
        let bind = SocketAddr::new(cfg.bind, cfg.port);
        let listener = TcpListener::bind(bind).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow!(
                    "cannot listen on {bind}: port {} is in use (use --port 0 for any free port)",
                    cfg.port
                )
            } else {
                anyhow!("cannot listen on {bind}: {e}")
            }
        })?;
        let listen = listener.local_addr().context("listening socket")?;
        let peer_id = crate::new_peer_id();
        let torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>> = Arc::default();
        let (tracker_tx, tracker_rx) = crossbeam_channel::unbounded();
        let (notices_tx, notices_rx) = crossbeam_channel::unbounded();
        let rate = Arc::new(RateLimit::new(cfg.max_upload_rate));

        let table = torrents.clone();
        std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || listen_loop(listener, table))
            .context("starting the listener thread")?;
        let id = crate::peer_id_str(&peer_id);
        let port = listen.port();
        let tracker_thread = std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || tracker_loop(tracker, listen.ip(), id, port, tracker_rx))
            .context("starting the tracker thread")?;
        Ok(Session {
            peer_id,
            listen,
            tracker,
            cfg,
            torrents,
            tracker_tx,
            notices_tx,
            notices_rx,
            rate,
            threads: Mutex::new(vec![tracker_thread]),
            bep15_tx: Mutex::new(None),
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }
    pub fn tracker_addr(&self) -> SocketAddr {
        self.tracker
    }
    pub fn peer_id(&self) -> String {
        crate::peer_id_str(&self.peer_id)
    }
    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }
    /// Completion, metadata and failure notices from all torrents.
    pub fn notices(&self) -> &Receiver<Notice> {
        &self.notices_rx
    }

    fn magnet_for(&self, info_hash: InfoHash, name: Option<String>) -> String {
        Magnet {
            info_hash,
            name,
            trackers: vec![format!("udp://{}", self.tracker)],
            peers: Vec::new(),
        }
        .to_uri()
    }

    fn spawn(
        &self,
        info_hash: InfoHash,
        meta: Option<MetaCtx>,
        pieces_on_disk: u32,
        opts: TorrentOpts,
        initial_peers: Vec<SocketAddr>,
    ) -> Result<Added> {
        // Decided before taking the table: a probe may take seconds. A BEP 15
        // tracker is asked for peers by the announcer, not by the torrent's
        // own JSON REQUESTs.
        let bep15 = self.protocol_for(info_hash) == Protocol::Bep15;
        let mut table = self
            .torrents
            .lock()
            .map_err(|_| anyhow!("session table poisoned"))?;
        if table.contains_key(&info_hash) {
            bail!("{info_hash} is already active in this session");
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(TorrentShared::new(
            info_hash,
            self.peer_id,
            self.listen.port(),
            tx,
            self.rate.clone(),
        ));
        let meta = meta.map(Arc::new);
        if let Some(m) = &meta {
            let _ = shared.meta.set(m.clone());
        }
        let name = meta
            .as_ref()
            .map(|m| m.info.name.clone())
            .or_else(|| opts.name_hint.clone());
        let status = Arc::new(Mutex::new(TorrentStatus {
            info_hash,
            name: name.clone().unwrap_or_else(|| info_hash.to_hex()),
            size: meta.as_ref().map(|m| m.geometry.total_len()),
            pieces_total: meta.as_ref().map(|m| m.geometry.num_pieces()).unwrap_or(0),
            pieces_have: pieces_on_disk,
            bytes_have: 0,
            downloaded: 0,
            uploaded: 0,
            peers: 0,
            down_rate: 0.0,
            up_rate: 0.0,
            phase: Phase::Metadata,
            paths: Vec::new(),
        }));
        let magnet = self.magnet_for(info_hash, name.clone());
        let link = SessionLink {
            tracker: (!bep15).then_some(self.tracker),
            tracker_updates: if bep15 {
                self.bep15_announcer()?
            } else {
                self.tracker_tx.clone()
            },
            notices: self.notices_tx.clone(),
            torrents: self.torrents.clone(),
        };
        let added = Added {
            info_hash,
            name: name.unwrap_or_else(|| info_hash.to_hex()),
            size: meta.as_ref().map(|m| m.geometry.total_len()),
            pieces: meta.as_ref().map(|m| m.geometry.num_pieces()),
            magnet: magnet.clone(),
        };
        let coord = Coordinator::new(
            shared.clone(),
            rx,
            link,
            opts,
            meta,
            pieces_on_disk,
            status.clone(),
        );
        table.insert(
            info_hash,
            TorrentHandle {
                shared: shared.clone(),
                status,
                magnet,
            },
        );
        drop(table);
        let h = std::thread::Builder::new()
            .name(format!("torrent {}", &info_hash.to_hex()[..8]))
            .spawn(move || coord.run())
            .context("starting the torrent thread")?;
        if let Ok(mut t) = self.threads.lock() {
            t.push(h);
        }
        if !initial_peers.is_empty() {
            let _ = shared.events.send(Event::AddPeers(initial_peers));
        }
        Ok(added)
    }

    fn register_now(&self, added: &Added) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let updates = match self.bep15_tx.lock().ok().and_then(|t| t.clone()) {
            Some(t) => t,
            None => self.tracker_tx.clone(),
        };
        let _ = updates.send(TrackerMsg::Update(
            Tracked {
                info_hash: added.info_hash,
                name: added.name.clone(),
                size: added.size.unwrap_or(0),
                complete: true,
            },
            Some(tx),
        ));
        // A BEP 15 announce may take 45 s before giving up.
        match rx.recv_timeout(Duration::from_secs(50)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("tracker thread did not answer"),
        }
    }

    fn seed_opts(&self, name: &str) -> TorrentOpts {
        TorrentOpts {
            max_peers: self.cfg.max_peers,
            dir: self.cfg.dir.clone(),
            name_hint: Some(name.to_string()),
            download: false,
        }
    }

    /// Seeds a file or a directory: hashes it and registers it.
    pub fn seed_path(&self, path: &Path, piece_length: Option<u64>) -> Result<Added> {
        let m = create_metainfo(path, piece_length, Some(self.tracker))?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        self.seed_metainfo(m, &root, false)
    }

    /// Seeds the data of `m` found below `root`; with `check`, every piece
    /// is verified first.
    pub fn seed_metainfo(&self, m: Metainfo, root: &Path, check: bool) -> Result<Added> {
        let name = m.info.name.clone();
        let meta = torrent::open_seed(m.info, m.info_bytes, root, check).map_err(|e| anyhow!(e))?;
        let opts = self.seed_opts(&name);
        let added = self.spawn(m.info_hash, Some(meta), 0, opts, Vec::new())?;
        if let Err(e) = self.register_now(&added) {
            self.remove(&added.info_hash);
            return Err(e);
        }
        Ok(added)
    }

    fn download_opts(&self, name_hint: Option<String>) -> TorrentOpts {
        TorrentOpts {
            max_peers: self.cfg.max_peers,
            dir: self.cfg.dir.clone(),
            name_hint,
            download: true,
        }
    }

    /// Downloads the torrent described by `m` into the session's directory,
    /// keeping what is already verified there.
    pub fn download_metainfo(&self, m: Metainfo) -> Result<Added> {
        let name = m.info.name.clone();
        let (meta, on_disk) =
            torrent::open_download(m.info, m.info_bytes, &self.cfg.dir).map_err(|e| anyhow!(e))?;
        self.spawn(
            m.info_hash,
            Some(meta),
            on_disk,
            self.download_opts(Some(name)),
            Vec::new(),
        )
    }

    /// Downloads from an info hash alone: the metadata comes from peers.
    pub fn download_info_hash(
        &self,
        info_hash: InfoHash,
        name_hint: Option<String>,
        peers: Vec<SocketAddr>,
    ) -> Result<Added> {
        self.spawn(info_hash, None, 0, self.download_opts(name_hint), peers)
    }

    /// Downloads a magnet link.
    pub fn download_magnet(&self, magnet: &Magnet) -> Result<Added> {
        let peers: Vec<SocketAddr> = magnet.peers.iter().filter_map(|p| p.parse().ok()).collect();
        self.download_info_hash(magnet.info_hash, magnet.name.clone(), peers)
    }

    /// Asks the tracker which file is called `name` and who has it.
    pub fn lookup_name(&self, name: &str) -> Result<PeersReply> {
        if self.cfg.tracker_protocol == TrackerProtocol::Bep15 {
            return Err(udp_announce::no_names_error(
                self.tracker,
                "a download by name",
            ));
        }
        let mut c = TrackerClient::new(self.tracker)?;
        c.request_peers(None, Some(name), Some(&self.peer_id()))
            .map_err(|e| match e.code() {
                Some("not_found") => anyhow!("the tracker knows no file called {name:?}"),
                _ => self.json_error(e, "a download by name"),
            })
    }

    /// The protocol for this session's tracker, probed with `info_hash`.
    fn protocol_for(&self, info_hash: InfoHash) -> Protocol {
        udp_announce::decide(
            self.tracker,
            self.cfg.tracker_protocol,
            info_hash,
            &self.peer_id(),
        )
    }

    /// A JSON request that got no answer may have gone to a BEP 15 tracker:
    /// say so rather than "unreachable".
    fn json_error(&self, e: tracker_client::TrackerError, what: &str) -> anyhow::Error {
        let silent = matches!(e, tracker_client::TrackerError::Unreachable { .. });
        if silent && udp_announce::answers_bep15(self.tracker) {
            return udp_announce::no_names_error(self.tracker, what);
        }
        anyhow!(e)
    }

    /// The sender to the BEP 15 announcer thread, started on first use.
    fn bep15_announcer(&self) -> Result<Sender<TrackerMsg>> {
        let mut slot = self
            .bep15_tx
            .lock()
            .map_err(|_| anyhow!("session poisoned"))?;
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = udp_announce::AnnouncerConfig {
            tracker: self.tracker,
            peer_id: self.peer_id,
            port: self.listen.port(),
            max_peers: self.cfg.max_peers,
            schedule: udp_announce::Schedule::BEP15,
        };
        let swarms = self.torrents.clone();
        let h = std::thread::Builder::new()
            .name("bep15 announcer".into())
            .spawn(move || udp_announce::run_announcer(cfg, swarms, rx))
            .context("starting the BEP 15 announcer thread")?;
        if let Ok(mut t) = self.threads.lock() {
            t.push(h);
        }
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Downloads a file by its name on the tracker.
    pub fn download_name(&self, name: &str) -> Result<Added> {
        let reply = self.lookup_name(name)?;
        let me = self.peer_id();
        let peers = reply
            .peers
            .iter()
            .filter(|p| p.peer_id != me)
            .map(|p| p.addr)
            .collect();
        self.download_info_hash(reply.info_hash, Some(reply.name.clone()), peers)
    }

    pub fn search(&self, query: &str) -> Result<Vec<FileSummary>> {
        search(self.tracker, self.cfg.tracker_protocol, query)
    }

    pub fn handles(&self) -> Vec<TorrentHandle> {
        self.torrents
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn handle(&self, info_hash: &InfoHash) -> Option<TorrentHandle> {
        self.torrents.lock().ok()?.get(info_hash).cloned()
    }

    pub fn statuses(&self) -> Vec<TorrentStatus> {
        let mut v: Vec<TorrentStatus> = self
            .handles()
            .iter()
            .filter_map(|h| h.status.lock().ok().map(|s| s.clone()))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn remove(&self, info_hash: &InfoHash) {
        let h = self
            .torrents
            .lock()
            .ok()
            .and_then(|mut t| t.remove(info_hash));
        if let Some(h) = h {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = h.shared.events.send(Event::Shutdown(tx));
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Stops every torrent (files flushed), sends EXIT to the tracker and
    /// waits for the threads, each within a bound.
    pub fn shutdown(&self) {
        let handles: Vec<TorrentHandle> = self
            .torrents
            .lock()
            .map(|mut t| t.drain().map(|(_, h)| h).collect())
            .unwrap_or_default();
        let mut acks = Vec::new();
        for h in handles {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if h.shared.events.send(Event::Shutdown(tx)).is_ok() {
                acks.push(rx);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for rx in acks {
            let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.tracker_tx.send(TrackerMsg::Shutdown(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
        let bep15 = self.bep15_tx.lock().ok().and_then(|mut t| t.take());
        if let Some(b) = bep15 {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if b.send(TrackerMsg::Shutdown(tx)).is_ok() {
                let _ = rx.recv_timeout(Duration::from_secs(10));
            }
        }
    }
}

/// Hashes a file or directory into a metainfo.
pub fn create_metainfo(
    path: &Path,
    piece_length: Option<u64>,
    tracker: Option<SocketAddr>,
) -> Result<Metainfo> {
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let opts = metainfo::CreateOptions {
        announce: tracker.map(|t| format!("udp://{t}")),
        piece_length,
        created_by: Some(crate::CLIENT_NAME.into()),
        creation_date: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64),
        ..Default::default()
    };
    crate::create::create(path, &opts).with_context(|| format!("hashing {}", path.display()))
}

/// Reads and parses a .torrent file.
pub fn read_torrent(path: &Path) -> Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", path.display()))
}

/// Inbound connections the listener keeps at once, handshaking or running:
/// each costs a thread, so a flood of connects must not cost a thread each.
pub const MAX_INBOUND: usize = 200;
/// Inbound connections from one IP address at once. A classroom demo runs
/// several peers on 127.0.0.1 (each peer sees at most one connection from
/// each of the others, plus one being torn down), so this stays well above
/// the number of peers of a demo or a test, and far below `MAX_INBOUND`.
pub const MAX_INBOUND_PER_IP: usize = 16;

/// The inbound connections the listener has admitted: whether each is still
/// in its handshake, since when, and (while handshaking) a handle to close
/// it. When a limit is reached, the connection that has been handshaking the
/// longest makes room: a real peer sends its handshake at once, so silent or
/// trickling connections are the ones that go, and a flood of them cannot
/// lock real peers out. Plain data; time passed in.
pub struct InboundTable {
    max_total: usize,
    max_per_ip: usize,
    next_id: u64,
    conns: HashMap<u64, InboundConn>,
}

struct InboundConn {
    ip: IpAddr,
    since: Instant,
    handshaking: bool,
    /// A clone of the socket, kept while handshaking, to close it.
    closer: Option<std::net::TcpStream>,
}

/// A handshaking connection closed to make room for a new one.
#[derive(Debug)]
pub struct Evicted {
    pub id: u64,
    pub stream: Option<std::net::TcpStream>,
}

/// What to do with a new inbound connection.
#[derive(Debug)]
pub enum Admission {
    /// Run it as connection `id`; first close `evict` (a connection that has
    /// been handshaking longer than any other that could make room).
    Accept { id: u64, evict: Option<Evicted> },
    /// Close it at once; the reason is for the log.
    Refuse(String),
}

impl InboundTable {
    pub fn new(max_total: usize, max_per_ip: usize) -> InboundTable {
        InboundTable {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            next_id: 0,
            conns: HashMap::new(),
        }
    }

    /// Admits a connection from `ip`; `closer` (a clone of its socket) lets
    /// a later connection evict it while it is handshaking.
    pub fn admit(
        &mut self,
        ip: IpAddr,
        now: Instant,
        closer: Option<std::net::TcpStream>,
    ) -> Admission {
        let from_ip = self.conns.values().filter(|c| c.ip == ip).count();
        let oldest_handshaking = |same_ip: bool| {
            self.conns
                .iter()
                .filter(|(_, c)| c.handshaking && (!same_ip || c.ip == ip))
                .min_by_key(|(id, c)| (c.since, **id))
                .map(|(id, _)| *id)
        };
        let victim = if from_ip >= self.max_per_ip {
            match oldest_handshaking(true) {
                Some(v) => Some(v),
                None => {
                    return Admission::Refuse(format!(
                        "{from_ip} connections from {ip} already (limit {})",
                        self.max_per_ip
                    ))
                }
            }
        } else if self.conns.len() >= self.max_total {
            match oldest_handshaking(false) {
                Some(v) => Some(v),
                None => {
                    return Admission::Refuse(format!(
                        "{} inbound connections already (limit {})",
                        self.conns.len(),
                        self.max_total
                    ))
                }
            }
        } else {
            None
        };
        let evict = victim.and_then(|id| {
            self.conns.remove(&id).map(|c| Evicted {
                id,
                stream: c.closer,
            })
        });
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            InboundConn {
                ip,
                since: now,
                handshaking: true,
                closer,
            },
        );
        Admission::Accept { id, evict }
    }

    /// The handshake of `id` arrived: it is a peer now, never evicted.
    pub fn handshake_done(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.handshaking = false;
            c.closer = None;
        }
    }

    /// Connection `id` ended (or was evicted already: then nothing happens).
    pub fn remove(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// Removes its connection from the table when the connection thread ends.
struct InboundSlot {
    table: Arc<Mutex<InboundTable>>,
    id: u64,
}

impl InboundSlot {
    fn handshake_done(&self) {
        if let Ok(mut t) = self.table.lock() {
            t.handshake_done(self.id);
        }
    }
}

impl Drop for InboundSlot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(self.id);
        }
    }
}

fn listen_loop(listener: TcpListener, torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>) {
    let limits = Arc::new(Mutex::new(InboundTable::new(
        MAX_INBOUND,
        MAX_INBOUND_PER_IP,
    )));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Ok(addr) = stream.peer_addr() else {
            continue;
        };
        let admission = match limits.lock() {
            Ok(mut l) => l.admit(addr.ip(), Instant::now(), stream.try_clone().ok()),
            Err(_) => Admission::Refuse("inbound table poisoned".into()),
        };
        let id = match admission {
            Admission::Refuse(why) => {
                debug!("peer {addr}: refused: {why}");
                drop(stream);
                continue;
            }
            Admission::Accept { id, evict } => {
                if let Some(old) = evict.and_then(|e| e.stream) {
                    let who = old
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|_| "?".into());
                    debug!("peer {who}: closed: still no handshake, and {addr} needs its slot");
                    // Wakes its thread's blocked read, which then ends.
                    let _ = old.shutdown(std::net::Shutdown::Both);
                }
                id
            }
        };
        let slot = InboundSlot {
            table: limits.clone(),
            id,
        };
        let table = torrents.clone();
        let conn = peer::next_conn_id();
        let spawned = std::thread::Builder::new()
            .name("peer in".into())
            .spawn(move || {
                let slot = slot;
                peer::run_inbound(stream, conn, |ih| {
                    slot.handshake_done();
                    table.lock().ok()?.get(ih).map(|h| h.shared.clone())
                })
            });
        if let Err(e) = spawned {
            warn!("cannot start a connection thread: {e}");
        }
    }
}

fn tracker_loop(
    addr: SocketAddr,
    local: IpAddr,
    peer_id: String,
    port: u16,
    rx: Receiver<TrackerMsg>,
) {
    let mut client = match TrackerClient::from_ip(addr, local) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!("{e}");
            None
        }
    };
    let mut files: BTreeMap<InfoHash, RegisterFile> = BTreeMap::new();
    let mut registered = false;
    let mut interval = Duration::from_secs(10);
    let mut next = Instant::now() + interval;
    let register = |c: &mut Option<TrackerClient>,
                    files: &BTreeMap<InfoHash, RegisterFile>|
     -> Result<Duration, String> {
        let c = c
            .as_mut()
            .ok_or_else(|| format!("no socket for tracker {addr}"))?;
        let list: Vec<RegisterFile> = files.values().cloned().collect();
        c.register(&peer_id, port, &list)
            .map(|t| t.interval)
            .map_err(|e| e.to_string())
    };
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(TrackerMsg::Update(t, reply)) => {
                files.insert(
                    t.info_hash,
                    RegisterFile {
                        info_hash: t.info_hash,
                        name: t.name.clone(),
                        size: t.size,
                        complete: t.complete,
                    },
                );
                let r = register(&mut client, &files);
                match &r {
                    Ok(i) => {
                        registered = true;
                        interval = *i;
                        info!(
                            "registered {} with tracker {addr} ({})",
                            t.name,
                            if t.complete { "seeder" } else { "leecher" }
                        );
                    }
                    Err(e) => {
                        registered = false;
                        warn!("{e}");
                    }
                }
                next = Instant::now() + interval;
                if let Some(reply) = reply {
                    let _ = reply.send(r.map(|_| ()));
                }
            }
            Ok(TrackerMsg::Shutdown(ack)) => {
                if registered {
                    if let Some(c) = client.as_mut() {
                        match c.exit(&peer_id) {
                            Ok(()) => info!("sent EXIT to tracker {addr}"),
                            Err(e) => warn!("EXIT: {e}"),
                        }
                    }
                }
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                next = Instant::now() + interval;
                if files.is_empty() {
                    continue;
                }
                if !registered {
                    match register(&mut client, &files) {
                        Ok(i) => {
                            registered = true;
                            interval = i;
                        }
                        Err(e) => warn!("{e}"),
                    }
                    continue;
                }
                let Some(c) = client.as_mut() else { continue };
                match c.heartbeat(&peer_id) {
                    Ok(true) => debug!("heartbeat ok"),
                    Ok(false) => {
                        info!("tracker {addr} forgot us; registering again");
                        match register(&mut client, &files) {
                            Ok(i) => interval = i,
                            Err(e) => {
                                registered = false;
                                warn!("{e}");
                            }
                        }
                    }
                    Err(e) => warn!("heartbeat: {e}"),
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// SEARCH at `tracker`; a BEP 15 tracker gets a clear "no names" error.
pub fn search(
    tracker: SocketAddr,
    proto: TrackerProtocol,
    query: &str,
) -> Result<Vec<FileSummary>> {
    if proto == TrackerProtocol::Bep15 {
        return Err(udp_announce::no_names_error(tracker, "SEARCH"));
    }
    let mut c = TrackerClient::new(tracker)?;
    c.search(query).map_err(|e| {
        if matches!(e, tracker_client::TrackerError::Unreachable { .. })
            && udp_announce::answers_bep15(tracker)
        {
            udp_announce::no_names_error(tracker, "SEARCH")
        } else {
            anyhow!(e)
        }
    })
}

/// `--tracker-protocol auto` probes a tracker given as a `udp://` URL (in
/// `--tracker`, a .torrent's announce or a magnet's `tr`); a bare
/// `HOST:PORT` is minitorrent's own notation for its JSON tracker.
pub fn effective_protocol(
    choice: TrackerProtocol,
    flag: Option<&str>,
    announce: Option<&str>,
) -> TrackerProtocol {
    if choice != TrackerProtocol::Auto {
        return choice;
    }
    let given = flag.or(announce.filter(|a| tracker_client::resolve(a).is_ok()));
    match given {
        Some(t) if t.trim().starts_with("udp://") => TrackerProtocol::Auto,
        _ => TrackerProtocol::Json,
    }
}

/// The tracker to use: `--tracker`, else the torrent's announce, else the
/// default.
pub fn pick_tracker(flag: Option<&str>, announce: Option<&str>) -> Result<SocketAddr> {
    if let Some(t) = flag {
        return Ok(tracker_client::resolve(t)?);
    }
    if let Some(a) = announce {
        match tracker_client::resolve(a) {
            Ok(addr) => return Ok(addr),
            Err(e) => warn!("ignoring the torrent's announce: {e}"),
        }
    }
    Ok(tracker_client::resolve(tracker_client::DEFAULT_TRACKER)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(a: Admission) -> (u64, Option<u64>) {
        match a {
            Admission::Accept { id, evict } => (id, evict.map(|e| e.id)),
            Admission::Refuse(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn a_full_ip_makes_room_by_closing_its_oldest_handshake() {
        let mut t = InboundTable::new(100, 3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let (a, _) = accepted(t.admit(ip, s(0), None));
        let (b, _) = accepted(t.admit(ip, s(1), None));
        let (c, _) = accepted(t.admit(ip, s(2), None));
        let (_, none) = accepted(t.admit(other, s(3), None));
        assert_eq!(none, None, "another IP has its own limit");
        // `a` became a peer: never evicted; `b` is the oldest still silent.
        t.handshake_done(a);
        let (d, ev) = accepted(t.admit(ip, s(4), None));
        assert_eq!(ev, Some(b));
        assert_eq!(t.len(), 4);
        // The evicted connection's thread ending later changes nothing.
        t.remove(b);
        assert_eq!(t.len(), 4);
        t.handshake_done(c);
        t.handshake_done(d);
        match t.admit(ip, s(5), None) {
            Admission::Refuse(why) => assert!(why.contains("10.0.0.1"), "{why}"),
            Admission::Accept { .. } => panic!("admitted past the limit of peers"),
        }
        // A peer leaving frees its place.
        t.remove(c);
        assert_eq!(accepted(t.admit(ip, s(6), None)).1, None);
    }

    #[test]
    fn the_global_limit_evicts_the_oldest_handshake_of_any_ip() {
        let mut t = InboundTable::new(4, 16);
        let t0 = Instant::now();
        let ips: Vec<IpAddr> = (1..=5u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let mut ids = Vec::new();
        for (n, ip) in ips.iter().take(4).enumerate() {
            ids.push(accepted(t.admit(*ip, t0 + Duration::from_secs(n as u64), None)).0);
        }
        t.handshake_done(ids[0]);
        let (_, ev) = accepted(t.admit(ips[4], t0 + Duration::from_secs(9), None));
        assert_eq!(ev, Some(ids[1]), "the oldest still handshaking");
        assert_eq!(t.len(), 4);
        for id in &ids[2..] {
            t.handshake_done(*id);
        }
        let last = t.conns.keys().copied().max().unwrap();
        t.handshake_done(last);
        assert!(matches!(
            t.admit(ips[0], t0 + Duration::from_secs(10), None),
            Admission::Refuse(_)
        ));
    }
}
