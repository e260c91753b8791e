//! A running peer: the TCP listener thread (routes each inbound connection to
//! its torrent by info hash), the tracker home (`net::tracker`: all traffic
//! with the tracker, in JSON or BEP 15), and the table of torrents with their
//! coordinator threads. This is the API the CLI and the menu use.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{Receiver, Sender};
use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::{self, Info, InfoHash, Metainfo};
pub use minitorrent_common::mse::Encryption;

use crate::core::msg::{
    Event, Input, Notice, Opened, Phase, TorrentDetail, TorrentStatus, Tracked, TrackerMsg,
};
pub use crate::core::ratelimit::MIN_DOWNLOAD_RATE;
use crate::core::ratelimit::{check_download_rate, RateLimit};
use crate::core::swarm::{Start, Swarm, SwarmConfig};
use crate::net::coordinator::{Coordinator, SessionLink};
use crate::net::listener;
use crate::net::open::{self, SeedCheck};
pub use crate::net::shared::Origin;
use crate::net::shared::{MetaCtx, TorrentHandle, TorrentShared};
pub use crate::net::storage::FileStamp;
use crate::net::trace;
use crate::net::tracker::{HomeConfig, HomeError, Trackers};

pub use crate::net::tracker::board::{words as tracker_words, Board as TrackerBoard, TrackerState};
pub use crate::net::tracker::endpoint::{self as tracker_endpoint, Endpoint};
pub use crate::net::tracker::{
    effective_protocol, pick_tracker, search, FileSummary, NameMatch, PeersReply, TrackerProtocol,
    MAX_TRACKERS,
};

/// How long a download by name waits for a name the tracker does not know
/// yet (its seeder may still be hashing the file)...
pub const NAME_WAIT: Duration = Duration::from_secs(10);
/// ...asking again this often.
pub const NAME_RETRY: Duration = Duration::from_millis(500);

/// Why the session cannot do what was asked with one of its torrents.
#[derive(Debug, thiserror::Error)]
pub enum TorrentError {
    #[error("{0} is already active in this session")]
    AlreadyActive(InfoHash),
    #[error("{0} is already running")]
    AlreadyRunning(InfoHash),
    #[error("{0} is not in this session")]
    NotInSession(InfoHash),
}

/// A download by a name several swarms share: refused, with the candidates
/// for the user to choose from by info hash.
#[derive(Debug, Clone)]
pub struct AmbiguousName {
    pub name: String,
    /// Sorted by info hash.
    pub candidates: Vec<FileSummary>,
    /// The tracker that listed them, repeated in the suggested commands so
    /// that one pasted as it is asks the same tracker.
    pub tracker: SocketAddr,
}

impl std::fmt::Display for AmbiguousName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} different files are called {:?} at the tracker, so nothing was downloaded; \
             choose one by its info hash:",
            self.candidates.len(),
            self.name
        )?;
        for c in &self.candidates {
            write!(
                f,
                "\n  {}\n      minitorrent get {} --tracker {}",
                candidate_line(c),
                c.info_hash,
                self.tracker
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for AmbiguousName {}

/// One swarm of a name: size, seeders, leechers and info hash.
pub fn candidate_line(c: &FileSummary) -> String {
    format!(
        "{}  {} ({} bytes)  {}, {}  info hash {}",
        c.name,
        metainfo::format_size(c.size),
        c.size,
        count(u64::from(c.seeders), "seeder"),
        count(u64::from(c.leechers), "leecher"),
        c.info_hash
    )
}

/// "1 seeder", "2 seeders".
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub dir: PathBuf,
    pub max_peers: usize,
    /// Bytes per second for all uploads together; 0: unlimited.
    pub max_upload_rate: u64,
    /// Bytes per second for all downloads together; 0: unlimited.
    pub max_download_rate: u64,
    /// JSON, BEP 15, or find out (see `net::tracker::probe`).
    pub tracker_protocol: TrackerProtocol,
    /// Every tracker in BEP 12 tiers (a torrent's announce-list), the one
    /// named first in the first tier; empty for the session's tracker
    /// alone.
    pub trackers: Vec<Vec<Endpoint>>,
    /// `--encryption`: MSE/PE for incoming and outgoing connections.
    pub encryption: Encryption,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 0,
            dir: PathBuf::from("."),
            max_peers: 8,
            max_upload_rate: 0,
            max_download_rate: 0,
            tracker_protocol: TrackerProtocol::Auto,
            trackers: Vec::new(),
            encryption: Encryption::default(),
        }
    }
}

/// What a torrent starts from.
enum Begin {
    /// An info hash: the metadata comes from peers.
    Magnet,
    /// A .torrent's info dictionary: check the download directory first.
    Check(Info, Vec<u8>),
    /// A seed's storage, opened (and checked when asked).
    Seed(MetaCtx),
}

#[derive(Debug, Clone)]
struct TorrentOpts {
    max_peers: usize,
    origin: Origin,
    name_hint: Option<String>,
    /// A download (reports completion) rather than a seed.
    download: bool,
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
    cfg: Config,
    torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>,
    trackers: Trackers,
    notices_tx: Sender<Notice>,
    notices_rx: Receiver<Notice>,
    rate: Arc<RateLimit>,
    down_rate: Arc<RateLimit>,
    /// Torrents that do not run: paused, or stopped by an error (at most
    /// [`MAX_IDLE`]).
    idle: Arc<Mutex<IdleTable>>,
    /// Files being hashed to be seeded, with their progress (at most
    /// [`MAX_HASHING`] shown).
    hashing: Arc<Mutex<Vec<HashJob>>>,
    /// Torrents the user removed (at most [`MAX_DISMISSED`]).
    dismissed: Mutex<Dismissed>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Torrents kept in the session's list while they do not run; past it, the
/// oldest torrent stopped by an error is forgotten (paused ones are kept).
pub const MAX_IDLE: usize = 1000;
/// Hashing jobs listed at once (the others still run, unlisted).
pub const MAX_HASHING: usize = 256;

/// A file being hashed before it is seeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashJob {
    pub path: PathBuf,
    pub done: u64,
    pub total: u64,
}

/// A torrent of the session that does not run.
#[derive(Debug, Clone)]
struct Idle {
    /// Its last status, with the phase `Paused` or `Failed`.
    status: TorrentStatus,
    origin: Origin,
    /// Its metainfo, unless it is a magnet paused before the metadata came.
    meta: Option<Metainfo>,
    /// The stamps of its files when it was verified complete: resuming a
    /// complete torrent whose files still have them needs no hashing.
    stamps: Option<Vec<FileStamp>>,
    magnet: String,
}

#[derive(Debug, Default)]
struct IdleTable {
    map: HashMap<InfoHash, Idle>,
    /// Insertion order, for evicting the oldest failed one.
    order: Vec<InfoHash>,
}

impl IdleTable {
    /// Whether one more can be listed: there is room, or a failed one to
    /// forget.
    fn has_room(&self) -> bool {
        self.map.len() < MAX_IDLE
            || self
                .map
                .values()
                .any(|i| matches!(i.status.phase, Phase::Failed(_)))
    }

    fn insert(&mut self, ih: InfoHash, idle: Idle) {
        self.order.retain(|h| *h != ih);
        if self.map.len() >= MAX_IDLE && !self.map.contains_key(&ih) {
            let victim = self.order.iter().position(|h| {
                self.map
                    .get(h)
                    .is_some_and(|i| matches!(i.status.phase, Phase::Failed(_)))
            });
            match victim {
                Some(i) => {
                    let h = self.order.remove(i);
                    self.map.remove(&h);
                }
                None => return,
            }
        }
        self.order.push(ih);
        self.map.insert(ih, idle);
    }

    fn remove(&mut self, ih: &InfoHash) -> Option<Idle> {
        self.order.retain(|h| h != ih);
        self.map.remove(ih)
    }
}

/// What a remove took away.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// The files (and emptied directories) deleted, when asked to.
    pub deleted: Vec<PathBuf>,
    /// Files not deleted, each with why: outside the directory, or used by
    /// another torrent.
    pub kept: Vec<String>,
}

/// Torrents removed from the session remembered (their files not shared
/// again by the shared folder); past it the oldest is forgotten.
pub const MAX_DISMISSED: usize = 1000;
/// Torrents running at once in a session; past it adding one is refused.
pub const MAX_TORRENTS: usize = 1000;

/// A torrent of the session that holds a file.
#[derive(Debug, Clone)]
pub struct FileUser {
    pub info_hash: InfoHash,
    pub name: String,
    /// It seeds the file (rather than downloads into it).
    pub seed: bool,
}

/// Removed torrents and their files, each with its stamp when removed
/// (`None`: absent then), the oldest forgotten first.
#[derive(Debug, Default)]
struct Dismissed {
    map: HashMap<InfoHash, Vec<(PathBuf, Option<FileStamp>)>>,
    order: std::collections::VecDeque<InfoHash>,
}

impl Dismissed {
    fn insert(&mut self, ih: InfoHash, paths: &[PathBuf]) {
        let stamped = paths
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    std::fs::metadata(p).ok().map(|m| FileStamp::of(&m)),
                )
            })
            .collect();
        if self.map.insert(ih, stamped).is_none() {
            self.order.push_back(ih);
        }
        while self.map.len() > MAX_DISMISSED {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, ih: &InfoHash) {
        if self.map.remove(ih).is_some() {
            self.order.retain(|h| h != ih);
        }
    }
}

/// `path` with its directory made canonical (the file itself may not
/// exist): two names of one file compare equal.
fn normalized(path: &Path) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

impl Session {
    /// Binds the listening port and starts the listener and tracker threads.
    pub fn start(cfg: Config, tracker: SocketAddr) -> Result<Session> {
        check_download_rate(cfg.max_download_rate)
            .map_err(|e| anyhow!("--max-download-rate: {e}"))?;
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
        let peer_id = crate::core::shared::new_peer_id();
        let torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>> = Arc::default();
        let (notices_tx, notices_rx) = crossbeam_channel::unbounded();
        let rate = Arc::new(RateLimit::new(cfg.max_upload_rate, Instant::now()));
        let down_rate = Arc::new(RateLimit::new(cfg.max_download_rate, Instant::now()));

        let table = torrents.clone();
        let encryption = cfg.encryption;
        std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || listener::listen_loop(listener, table, encryption))
            .context("starting the listener thread")?;
        let trackers = Trackers::start(
            HomeConfig {
                tracker,
                tiers: cfg.trackers.clone(),
                protocol: cfg.tracker_protocol,
                peer_id,
                listen,
                max_peers: cfg.max_peers,
            },
            torrents.clone(),
        )?;
        Ok(Session {
            peer_id,
            listen,
            cfg,
            torrents,
            trackers,
            notices_tx,
            notices_rx,
            rate,
            down_rate,
            idle: Arc::default(),
            hashing: Arc::default(),
            dismissed: Mutex::default(),
            threads: Mutex::new(Vec::new()),
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }
    pub fn tracker_addr(&self) -> SocketAddr {
        self.trackers.addr()
    }
    /// `json`, `bep15` or `http`: how the session speaks with its tracker.
    pub fn tracker_protocol_name(&self) -> &'static str {
        self.trackers.protocol_name()
    }
    /// The tracker in use, as written (`udp://…`, `http://…`).
    pub fn tracker_in_use(&self) -> String {
        self.trackers.in_use()
    }
    /// Every tracker of the session: which is in use and the last error of
    /// each.
    pub fn tracker_states(&self) -> Vec<TrackerState> {
        self.trackers.states()
    }
    /// A reader of [`Session::tracker_states`] that outlives a borrow.
    pub fn tracker_board(&self) -> TrackerBoard {
        self.trackers.board()
    }
    pub fn peer_id(&self) -> String {
        crate::core::shared::peer_id_str(&self.peer_id)
    }
    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }
    /// Completion, metadata and failure notices from all torrents.
    pub fn notices(&self) -> &Receiver<Notice> {
        &self.notices_rx
    }

    /// The tracker as a torrent's `announce` (and a magnet link's `tr`).
    fn announce(&self) -> String {
        self.trackers.announce_url()
    }

    fn magnet_for(&self, info_hash: InfoHash, name: Option<String>) -> String {
        Magnet {
            info_hash,
            name,
            trackers: vec![self.announce()],
            peers: Vec::new(),
        }
        .to_uri()
    }

    fn spawn(
        &self,
        info_hash: InfoHash,
        begin: Begin,
        opts: TorrentOpts,
        initial_peers: Vec<SocketAddr>,
    ) -> Result<Added> {
        // Before taking the table: a probe may take seconds.
        let route = self.trackers.route(info_hash)?;
        let mut table = self
            .torrents
            .lock()
            .map_err(|_| anyhow!("session table poisoned"))?;
        if table.contains_key(&info_hash) {
            return Err(TorrentError::AlreadyActive(info_hash).into());
        }
        if table.len() >= MAX_TORRENTS {
            bail!(
                "this peer runs {MAX_TORRENTS} torrents already, its most; remove some before \
                 adding more"
            );
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(
            TorrentShared::new(
                info_hash,
                self.peer_id,
                self.listen.port(),
                tx,
                self.rate.clone(),
                self.down_rate.clone(),
            )
            .with_encryption(self.cfg.encryption),
        );
        let info = match &begin {
            Begin::Magnet => None,
            Begin::Check(info, _) => Some(info),
            Begin::Seed(ctx) => Some(&ctx.info),
        };
        let info_bytes = match &begin {
            Begin::Magnet => None,
            Begin::Check(_, b) => Some(Arc::new(b.clone())),
            Begin::Seed(ctx) => Some(Arc::new(ctx.info_bytes.clone())),
        };
        let name = info
            .map(|i| i.name.clone())
            .or_else(|| opts.name_hint.clone());
        let (size, pieces) = (
            info.map(|i| i.total_length()),
            info.map(|i| i.num_pieces() as u32),
        );
        let start = match begin {
            Begin::Magnet => Start::Magnet,
            Begin::Check(info, info_bytes) => Start::Check { info, info_bytes },
            Begin::Seed(ctx) => {
                let ctx = Arc::new(ctx);
                let _ = shared.meta.set(ctx.clone());
                Start::Ready(Opened {
                    meta: ctx.meta.clone(),
                    on_disk: 0,
                    paths: ctx.storage.final_paths(),
                })
            }
        };
        let magnet = self.magnet_for(info_hash, name.clone());
        let mut swarm = Swarm::new(
            SwarmConfig {
                info_hash,
                peer_id: self.peer_id,
                max_peers: opts.max_peers,
                download: opts.download,
                name_hint: name.clone(),
                lookups: route.lookups,
                trace: trace::enabled(),
                listen_port: Some(self.listen.port()),
            },
            start,
            Instant::now(),
        );
        let status = Arc::new(Mutex::new(swarm.status(Instant::now(), 0, 0, 0)));
        let (table_ref, me) = (self.torrents.clone(), shared.clone());
        let forget = route.updates.clone();
        let (idle, announce) = (self.idle.clone(), self.announce());
        let link = SessionLink {
            tracker_updates: route.updates,
            notices: self.notices_tx.clone(),
            // A failed torrent leaves the table (unless it was replaced)
            // and the tracker's lists.
            on_failure: Box::new(move || {
                if let Ok(mut t) = table_ref.lock() {
                    if t.get(&info_hash)
                        .is_some_and(|h| Arc::ptr_eq(&h.shared, &me))
                    {
                        if let Some(h) = t.remove(&info_hash) {
                            // Kept in the list, with its error, until
                            // removed or resumed.
                            let entry = idle_entry(&h, &announce);
                            if let Ok(mut idle) = idle.lock() {
                                idle.insert(info_hash, entry);
                            }
                        }
                        let _ = forget.send(TrackerMsg::Forget(info_hash));
                    }
                }
            }),
        };
        let added = Added {
            info_hash,
            name: name.unwrap_or_else(|| info_hash.to_hex()),
            size,
            pieces,
            magnet: magnet.clone(),
        };
        let dir = opts.origin.root().to_path_buf();
        let coord = Coordinator::new(shared.clone(), rx, swarm, link, dir, status.clone());
        table.insert(
            info_hash,
            TorrentHandle {
                shared: shared.clone(),
                status,
                magnet,
                origin: opts.origin,
                info_bytes,
            },
        );
        drop(table);
        if let Ok(mut idle) = self.idle.lock() {
            idle.remove(&info_hash);
        }
        if let Ok(mut d) = self.dismissed.lock() {
            d.remove(&info_hash);
        }
        if !initial_peers.is_empty() {
            // Queued before the coordinator starts, so known before its
            // first tracker lookup can fail (a dead tracker fails a
            // download that knows no peer).
            let _ = shared.events.send(Event::AddPeers(initial_peers).into());
        }
        let h = std::thread::Builder::new()
            .name(format!("torrent {}", &info_hash.to_hex()[..8]))
            .spawn(move || coord.run())
            .context("starting the torrent thread")?;
        if let Ok(mut t) = self.threads.lock() {
            t.push(h);
        }
        Ok(added)
    }

    fn seed_opts(&self, name: &str, root: &Path) -> TorrentOpts {
        TorrentOpts {
            max_peers: self.cfg.max_peers,
            origin: Origin::Seed(root.to_path_buf()),
            name_hint: Some(name.to_string()),
            download: false,
        }
    }

    /// Seeds a file or a directory: hashes it and registers it.
    pub fn seed_path(&self, path: &Path, piece_length: Option<u64>) -> Result<Added> {
        self.seed_path_with(path, piece_length, &mut |_, _| {})
    }

    /// [`Session::seed_path`], calling `progress(bytes hashed, total)` while
    /// it hashes.
    pub fn seed_path_with(
        &self,
        path: &Path,
        piece_length: Option<u64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Added> {
        let (m, stamps) = self.hash_path(path, piece_length, progress)?;
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        self.seed_hashed(m, &root, stamps)
    }

    /// Seeds the data of `m` found below `root`; with `check`, every piece
    /// is verified first, else the caller vouches for the files as they are
    /// now.
    pub fn seed_metainfo(&self, m: Metainfo, root: &Path, check: bool) -> Result<Added> {
        let how = if check {
            SeedCheck::Verify
        } else {
            let info = &m.info;
            let stamps = (0..info.files.len())
                .map(|i| {
                    let p = crate::net::storage::file_path(info, root, i);
                    std::fs::metadata(&p)
                        .map(|md| FileStamp::of(&md))
                        .with_context(|| format!("{}", p.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            SeedCheck::Hashed(stamps)
        };
        self.seed_opened(m, root, how)
    }

    /// Seeds the data of `m` below `root`, hashed just now (or earlier, and
    /// cached) while its files had `stamps` (in torrent order): a file that
    /// changed since is an error naming it.
    pub fn seed_hashed(&self, m: Metainfo, root: &Path, stamps: Vec<FileStamp>) -> Result<Added> {
        self.seed_opened(m, root, SeedCheck::Hashed(stamps))
    }

    fn seed_opened(&self, m: Metainfo, root: &Path, how: SeedCheck) -> Result<Added> {
        let name = m.info.name.clone();
        self.trackers.keep_torrent(m.info_hash, m.to_bytes());
        let meta = open::open_seed(m.info, m.info_bytes, root, how)?;
        let opts = self.seed_opts(&name, root);
        let added = self.spawn(m.info_hash, Begin::Seed(meta), opts, Vec::new())?;
        let seeding = Tracked {
            info_hash: added.info_hash,
            name: added.name.clone(),
            size: added.size.unwrap_or(0),
            complete: true,
        };
        if let Err(e) = self.trackers.register_now(seeding) {
            self.remove(&added.info_hash);
            return Err(e.into());
        }
        Ok(added)
    }

    fn download_opts(&self, name_hint: Option<String>) -> TorrentOpts {
        TorrentOpts {
            max_peers: self.cfg.max_peers,
            origin: Origin::Download(self.cfg.dir.clone()),
            name_hint,
            download: true,
        }
    }

    /// Downloads the torrent described by `m` into the session's directory,
    /// keeping what is already verified there.
    pub fn download_metainfo(&self, m: Metainfo) -> Result<Added> {
        let name = m.info.name.clone();
        self.trackers.keep_torrent(m.info_hash, m.to_bytes());
        self.spawn(
            m.info_hash,
            Begin::Check(m.info, m.info_bytes),
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
        self.spawn(
            info_hash,
            Begin::Magnet,
            self.download_opts(name_hint),
            peers,
        )
    }

    /// Downloads a magnet link.
    pub fn download_magnet(&self, magnet: &Magnet) -> Result<Added> {
        let peers: Vec<SocketAddr> = magnet.peers.iter().filter_map(|p| p.parse().ok()).collect();
        self.download_info_hash(magnet.info_hash, magnet.name.clone(), peers)
    }

    /// Asks the tracker which files are called exactly `name`. A name it
    /// does not know yet (its seeder may still be hashing) is asked again
    /// every [`NAME_RETRY`] for up to `wait`; `waiting` is called once, when
    /// the first answer was "not found".
    pub fn find_name(
        &self,
        name: &str,
        wait: Duration,
        mut waiting: impl FnMut(),
    ) -> Result<NameMatch> {
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            match self.trackers.find_name(name) {
                Err(HomeError::NoSuchName { .. }) if Instant::now() + NAME_RETRY <= deadline => {
                    if !told {
                        waiting();
                        told = true;
                    }
                    std::thread::sleep(NAME_RETRY);
                }
                r => return Ok(r?),
            }
        }
    }

    /// Downloads a file by its name on the tracker, waiting up to
    /// [`NAME_WAIT`] for the name to appear. A name several swarms share is
    /// refused with an [`AmbiguousName`] error listing them; nothing is
    /// started.
    pub fn download_name(&self, name: &str, waiting: impl FnMut()) -> Result<Added> {
        let reply = match self.find_name(name, NAME_WAIT, waiting)? {
            NameMatch::One(reply) => reply,
            NameMatch::Several(candidates) => {
                return Err(AmbiguousName {
                    name: name.to_string(),
                    candidates,
                    tracker: self.tracker_addr(),
                }
                .into())
            }
        };
        let me = self.peer_id();
        let peers = reply
            .peers
            .iter()
            .filter(|p| p.peer_id != me)
            .map(|p| p.addr)
            .collect();
        self.download_info_hash(reply.info_hash, Some(reply.name.clone()), peers)
    }

    /// The peers of one swarm as the tracker lists them, each complete or
    /// not (ourselves included).
    pub fn peers_of(&self, info_hash: InfoHash) -> Result<PeersReply> {
        Ok(self.trackers.peers_of(info_hash)?)
    }

    pub fn search(&self, query: &str) -> Result<Vec<FileSummary>> {
        Ok(self.trackers.search(query)?)
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

    /// Stops a torrent (its connections closed, its files flushed) and
    /// withdraws it from the tracker: its swarm is left (EXIT, then
    /// REGISTER of the files still shared). True if it was in the session.
    pub fn withdraw(&self, info_hash: &InfoHash) -> bool {
        self.remove(info_hash)
    }

    fn remove(&self, info_hash: &InfoHash) -> bool {
        let was_idle = self
            .idle
            .lock()
            .ok()
            .and_then(|mut i| i.remove(info_hash))
            .is_some();
        let was = self.stop(info_hash).is_some();
        self.trackers.forget(*info_hash);
        was || was_idle
    }

    /// Takes a running torrent out of the table and stops it (connections
    /// closed, files flushed), within a bound.
    fn stop(&self, info_hash: &InfoHash) -> Option<TorrentHandle> {
        let h = self.torrents.lock().ok()?.remove(info_hash)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = h.shared.events.send(Input::Shutdown(tx));
        let _ = rx.recv_timeout(Duration::from_secs(5));
        Some(h)
    }

    /// Pauses a torrent: its connections close, its files are flushed, the
    /// tracker stops listing it; it stays in the list (`Phase::Paused`)
    /// until resumed or removed. Pausing a paused torrent does nothing.
    pub fn pause(&self, info_hash: &InfoHash) -> Result<TorrentStatus> {
        let Some(h) = self.handle(info_hash) else {
            let idle = self.idle.lock().ok();
            return match idle.and_then(|i| i.map.get(info_hash).cloned()) {
                Some(i) if i.status.phase == Phase::Paused => Ok(i.status),
                Some(i) => bail!(
                    "{} is not running (it stopped with an error); resume it to try again, \
                     or remove it",
                    i.status.name
                ),
                None => return Err(TorrentError::NotInSession(*info_hash).into()),
            };
        };
        // Listed as paused before it stops, so that the shared folder never
        // sees it neither running nor held back.
        let mut entry = idle_entry(&h, &self.announce());
        entry.status.phase = Phase::Paused;
        (
            entry.status.down_rate,
            entry.status.up_rate,
            entry.status.peers,
        ) = (0.0, 0.0, 0);
        let status = entry.status.clone();
        match self.idle.lock() {
            Ok(mut idle) if idle.has_room() => idle.insert(*info_hash, entry),
            _ => bail!("{MAX_IDLE} torrents are paused already; resume or remove some first"),
        }
        if let Some(h) = self.stop(info_hash) {
            // What it verified while it stopped.
            if let Ok(mut idle) = self.idle.lock() {
                if let Some(e) = idle.map.get_mut(info_hash) {
                    let later = idle_entry(&h, &self.announce());
                    e.stamps = later.stamps.or(e.stamps.take());
                    e.meta = later.meta.or(e.meta.take());
                    e.status.pieces_have = later.status.pieces_have.max(e.status.pieces_have);
                    e.status.bytes_have = later.status.bytes_have.max(e.status.bytes_have);
                }
            }
        }
        self.trackers.forget(*info_hash);
        Ok(status)
    }

    /// Starts a paused torrent (or one stopped by an error) again: a
    /// complete one whose files are unchanged seeds at once; otherwise its
    /// data on disk is checked again, as after a restart.
    pub fn resume(&self, info_hash: &InfoHash) -> Result<Added> {
        let Some(i) = self
            .idle
            .lock()
            .ok()
            .and_then(|i| i.map.get(info_hash).cloned())
        else {
            if self.handle(info_hash).is_some() {
                return Err(TorrentError::AlreadyRunning(*info_hash).into());
            }
            return Err(TorrentError::NotInSession(*info_hash).into());
        };
        let name = Some(i.status.name.clone());
        let r = match (i.meta, i.origin) {
            (Some(m), Origin::Seed(root)) => {
                let how = match i.stamps {
                    Some(st) => SeedCheck::Hashed(st),
                    None => SeedCheck::Verify,
                };
                match self.seed_opened(m.clone(), &root, how) {
                    Err(e) if e.downcast_ref::<open::OpenError>().is_some() => {
                        // Changed while paused: hash it all again.
                        self.seed_opened(m, &root, SeedCheck::Verify)
                    }
                    r => r,
                }
            }
            (Some(m), Origin::Download(_)) => {
                let complete =
                    i.status.pieces_total > 0 && i.status.pieces_have == i.status.pieces_total;
                match i.stamps.filter(|_| complete) {
                    Some(st) => match self.seed_opened(
                        m.clone(),
                        &self.cfg.dir.clone(),
                        SeedCheck::Hashed(st),
                    ) {
                        Err(e) if e.downcast_ref::<open::OpenError>().is_some() => {
                            self.download_metainfo(m)
                        }
                        r => r,
                    },
                    None => self.download_metainfo(m),
                }
            }
            (None, _) => self.download_info_hash(*info_hash, name, Vec::new()),
        };
        if r.is_ok() {
            if let Ok(mut idle) = self.idle.lock() {
                idle.remove(info_hash);
            }
        }
        r
    }

    /// Removes a torrent, running or not. With `delete_in`, its files are
    /// deleted too, but only those inside that directory and used by no
    /// other torrent of the session (a download's unfinished `.part` files
    /// included, and the directories of a multi-file torrent once empty);
    /// the others are kept and named in [`Removed::kept`]. A file kept in a
    /// shared folder is not shared again until it changes.
    pub fn remove_torrent(
        &self,
        info_hash: &InfoHash,
        delete_in: Option<&Path>,
    ) -> Result<Removed> {
        // Remembered as removed before it stops (see `pause`).
        let before = self
            .handle(info_hash)
            .and_then(|h| h.status.lock().ok().map(|s| s.paths.clone()));
        let idle_paths = self
            .idle
            .lock()
            .ok()
            .and_then(|i| i.map.get(info_hash).map(|e| e.status.paths.clone()));
        if let Some(paths) = before.as_ref().or(idle_paths.as_ref()) {
            if let Ok(mut d) = self.dismissed.lock() {
                d.insert(*info_hash, paths);
            }
        }
        let idle = self.idle.lock().ok().and_then(|mut i| i.remove(info_hash));
        let running = self.stop(info_hash);
        let (origin, info, _) = match (&running, &idle) {
            (Some(h), _) => {
                let bytes = h
                    .shared
                    .meta
                    .get()
                    .map(|m| m.info_bytes.clone())
                    .or_else(|| h.info_bytes.as_ref().map(|b| b.to_vec()));
                let paths = h.status.lock().map(|s| s.paths.clone()).unwrap_or_default();
                (
                    h.origin.clone(),
                    bytes.and_then(|b| Info::from_bytes(&b).ok()),
                    paths,
                )
            }
            (None, Some(i)) => (
                i.origin.clone(),
                i.meta.as_ref().map(|m| m.info.clone()),
                i.status.paths.clone(),
            ),
            (None, None) => {
                if let Ok(mut d) = self.dismissed.lock() {
                    d.remove(info_hash);
                }
                return Err(TorrentError::NotInSession(*info_hash).into());
            }
        };
        self.trackers.forget(*info_hash);
        let mut removed = Removed::default();
        let (Some(dir), Some(info)) = (delete_in, info) else {
            // Nothing to delete, or a magnet without its metadata: no files.
            return Ok(removed);
        };
        let Ok(dir) = dir.canonicalize() else {
            return Ok(removed);
        };
        let in_use = self.paths_of_others(info_hash);
        let root = origin.root().to_path_buf();
        for i in 0..info.files.len() {
            let p = crate::net::storage::file_path(&info, &root, i);
            let mut candidates = vec![p.clone()];
            if matches!(origin, Origin::Download(_)) {
                candidates.push(crate::net::storage::part_path(&p));
            }
            for f in candidates {
                let Some(n) = normalized(&f) else { continue };
                if !n.starts_with(&dir) {
                    removed
                        .kept
                        .push(format!("{} (outside {})", f.display(), dir.display()));
                } else if let Some(other) = in_use.get(&n) {
                    removed
                        .kept
                        .push(format!("{} (a file of {} too)", f.display(), other.name));
                } else {
                    match std::fs::remove_file(&n) {
                        Ok(()) => removed.deleted.push(f),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => bail!("cannot delete {}: {e}", f.display()),
                    }
                }
            }
        }
        if info.multi_file {
            // Deepest first; a directory that still holds other files stays.
            let top = root.join(&info.name);
            let mut dirs: Vec<PathBuf> = removed
                .deleted
                .iter()
                .flat_map(|f| f.ancestors().skip(1))
                .filter(|d| d.starts_with(&top))
                .map(Path::to_path_buf)
                .collect();
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            dirs.dedup();
            for d in dirs {
                if std::fs::remove_dir(&d).is_ok() {
                    removed.deleted.push(d);
                }
            }
        }
        Ok(removed)
    }

    /// The files of every torrent but `except`, running or idle
    /// (normalized), each with its torrent.
    fn paths_of_others(&self, except: &InfoHash) -> HashMap<PathBuf, FileUser> {
        let mut out = HashMap::new();
        let mut add = |st: &TorrentStatus, origin: &Origin| {
            if st.info_hash == *except {
                return;
            }
            for p in &st.paths {
                for f in [p.clone(), crate::net::storage::part_path(p)] {
                    if let Some(n) = normalized(&f) {
                        let user = FileUser {
                            info_hash: st.info_hash,
                            name: st.name.clone(),
                            seed: matches!(origin, Origin::Seed(_)),
                        };
                        out.insert(n, user);
                    }
                }
            }
        };
        for h in self.handles() {
            if let Ok(st) = h.status.lock().map(|s| s.clone()) {
                add(&st, &h.origin);
            }
        }
        if let Ok(idle) = self.idle.lock() {
            for i in idle.map.values() {
                add(&i.status, &i.origin);
            }
        }
        out
    }

    /// The torrent of this session (running or idle) one of whose files is
    /// `path` (or its `.part`): an upload must not take its place unless
    /// that torrent seeds it and the upload replaces it.
    pub fn torrent_using(&self, path: &Path) -> Option<FileUser> {
        let n = normalized(path)?;
        let none = InfoHash([0; 20]);
        self.paths_of_others(&none).remove(&n)
    }

    /// Held back by the user: paused, or removed from the session. The
    /// shared folder leaves such a torrent alone instead of announcing its
    /// file again.
    pub fn held_back(&self, info_hash: &InfoHash) -> bool {
        let paused = self.idle.lock().is_ok_and(|i| {
            i.map
                .get(info_hash)
                .is_some_and(|e| e.status.phase == Phase::Paused)
        });
        paused
            || self
                .dismissed
                .lock()
                .is_ok_and(|d| d.map.contains_key(info_hash))
    }

    /// The upload and download limits, bytes per second (0: unlimited).
    pub fn limits(&self) -> (u64, u64) {
        (self.rate.rate(), self.down_rate.rate())
    }

    /// Changes the limits from now on (`None`: unchanged; 0: unlimited). A
    /// download limit below [`MIN_DOWNLOAD_RATE`] is refused.
    pub fn set_limits(&self, up: Option<u64>, down: Option<u64>) -> Result<()> {
        if let Some(r) = down {
            check_download_rate(r).map_err(|e| anyhow!(e))?;
        }
        let now = Instant::now();
        if let Some(r) = up {
            self.rate.set_rate(r, now);
        }
        if let Some(r) = down {
            self.down_rate.set_rate(r, now);
        }
        Ok(())
    }

    /// Every torrent of the session with its status: running, paused, and
    /// stopped by an error, sorted by name.
    pub fn all_statuses(&self) -> Vec<TorrentStatus> {
        let mut v = self.statuses();
        if let Ok(idle) = self.idle.lock() {
            v.extend(idle.map.values().map(|i| i.status.clone()));
        }
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.info_hash.0.cmp(&b.info_hash.0)));
        v
    }

    /// The status of one torrent, running or not.
    pub fn status_of(&self, info_hash: &InfoHash) -> Option<TorrentStatus> {
        if let Some(h) = self.handle(info_hash) {
            return h.status.lock().ok().map(|s| s.clone());
        }
        let idle = self.idle.lock().ok()?;
        idle.map.get(info_hash).map(|i| i.status.clone())
    }

    /// A torrent's magnet link, running or not.
    pub fn magnet_of(&self, info_hash: &InfoHash) -> Option<String> {
        if let Some(h) = self.handle(info_hash) {
            return Some(h.magnet);
        }
        let idle = self.idle.lock().ok()?;
        idle.map.get(info_hash).map(|i| i.magnet.clone())
    }

    /// Everything a torrent's page shows. A torrent that does not run has
    /// only its status; a running one answers within a second or is shown
    /// as its status alone.
    pub fn detail(&self, info_hash: &InfoHash) -> Option<TorrentDetail> {
        let Some(h) = self.handle(info_hash) else {
            return self.status_of(info_hash).map(TorrentDetail::status_only);
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = h.shared.events.send(Input::Detail(tx));
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(d) => Some(d),
            Err(_) => Some(TorrentDetail::status_only(h.status.lock().ok()?.clone())),
        }
    }

    /// A torrent's `.torrent` file, once its metadata is known.
    pub fn torrent_file(&self, info_hash: &InfoHash) -> Option<Vec<u8>> {
        if let Some(h) = self.handle(info_hash) {
            let bytes = h
                .shared
                .meta
                .get()
                .map(|m| m.info_bytes.clone())
                .or_else(|| h.info_bytes.as_ref().map(|b| b.to_vec()))?;
            let mi = Metainfo::from_info_bytes(bytes, Some(self.announce())).ok()?;
            return Some(mi.to_bytes());
        }
        let idle = self.idle.lock().ok()?;
        idle.map
            .get(info_hash)?
            .meta
            .as_ref()
            .map(Metainfo::to_bytes)
    }

    /// The files being hashed to be seeded, and how far each is.
    pub fn hashing(&self) -> Vec<HashJob> {
        self.hashing.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Hashes a file or directory into a metainfo for this session's
    /// tracker, listed in [`Session::hashing`] meanwhile.
    pub fn hash_path(
        &self,
        path: &Path,
        piece_length: Option<u64>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Metainfo, Vec<FileStamp>)> {
        let jobs = self.hashing.clone();
        let listed = match jobs.lock() {
            Ok(mut j) if j.len() < MAX_HASHING => {
                j.push(HashJob {
                    path: path.to_path_buf(),
                    done: 0,
                    total: 0,
                });
                true
            }
            _ => false,
        };
        let mut last = Instant::now();
        let mut report = |done: u64, total: u64| {
            progress(done, total);
            if listed && (last.elapsed() >= Duration::from_millis(100) || done == total) {
                last = Instant::now();
                if let Ok(mut j) = jobs.lock() {
                    if let Some(job) = j.iter_mut().find(|j| j.path == path) {
                        (job.done, job.total) = (done, total);
                    }
                }
            }
        };
        let r = create_metainfo_with(path, piece_length, Some(self.announce()), &mut report);
        if listed {
            if let Ok(mut j) = self.hashing.lock() {
                if let Some(i) = j.iter().position(|j| j.path == path) {
                    j.remove(i);
                }
            }
        }
        r
    }

    /// The files (canonical) of the torrents of the session, running,
    /// paused or removed, and the files being hashed: the shared folder does
    /// not announce them on its own.
    pub fn claimed_paths(&self) -> std::collections::HashSet<PathBuf> {
        let mut set = std::collections::HashSet::new();
        for h in self.handles() {
            if let Ok(st) = h.status.lock() {
                for p in &st.paths {
                    if let Ok(c) = p.canonicalize() {
                        set.insert(c);
                    }
                }
            }
        }
        if let Ok(idle) = self.idle.lock() {
            let paused = idle
                .map
                .values()
                .filter(|i| i.status.phase == Phase::Paused);
            for p in paused.flat_map(|i| &i.status.paths) {
                if let Ok(c) = p.canonicalize() {
                    set.insert(c);
                }
            }
        }
        if let Ok(d) = self.dismissed.lock() {
            // Until the file changes: a new version is the folder's again.
            for (p, stamp) in d.map.values().flatten() {
                let now = std::fs::metadata(p).ok().map(|m| FileStamp::of(&m));
                if now.is_some() && now == *stamp {
                    if let Ok(c) = p.canonicalize() {
                        set.insert(c);
                    }
                }
            }
        }
        for j in self.hashing() {
            if let Ok(c) = j.path.canonicalize() {
                set.insert(c);
            }
        }
        set
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
            if h.shared.events.send(Input::Shutdown(tx)).is_ok() {
                acks.push(rx);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for rx in acks {
            let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        self.trackers.shutdown();
    }
}

/// A torrent that stops running, as the list keeps it: its last status,
/// how it started, its metainfo and, when complete, its files' stamps.
fn idle_entry(h: &TorrentHandle, announce: &str) -> Idle {
    let mut status = h
        .status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    (status.down_rate, status.up_rate, status.peers) = (0.0, 0.0, 0);
    let meta = h.shared.meta.get();
    let info_bytes = meta
        .map(|m| m.info_bytes.clone())
        .or_else(|| h.info_bytes.as_ref().map(|b| b.to_vec()));
    Idle {
        status,
        origin: h.origin.clone(),
        meta: info_bytes
            .and_then(|b| Metainfo::from_info_bytes(b, Some(announce.to_string())).ok()),
        stamps: meta.and_then(|m| m.storage.stamps()),
        magnet: h.magnet.clone(),
    }
}

/// Hashes a file or directory into a metainfo.
pub fn create_metainfo(
    path: &Path,
    piece_length: Option<u64>,
    announce: Option<String>,
) -> Result<Metainfo> {
    create_metainfo_with(path, piece_length, announce, &mut |_, _| {}).map(|(m, _)| m)
}

/// [`create_metainfo`], calling `progress(bytes hashed, total)` while it
/// hashes, and returning the files' stamps as they were while hashed (for
/// [`Session::seed_hashed`]).
pub fn create_metainfo_with(
    path: &Path,
    piece_length: Option<u64>,
    announce: Option<String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Metainfo, Vec<FileStamp>)> {
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let opts = metainfo::CreateOptions {
        announce,
        piece_length,
        created_by: Some(crate::core::shared::CLIENT_NAME.into()),
        creation_date: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64),
        ..Default::default()
    };
    crate::net::create::create_with(path, &opts, progress)
        .with_context(|| format!("hashing {}", path.display()))
}

/// Reads and parses a .torrent file.
pub fn read_torrent(path: &Path) -> Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid .torrent", path.display()))
}
