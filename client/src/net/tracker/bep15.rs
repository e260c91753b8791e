//! Announcing to any BitTorrent UDP tracker (BEP 15): the client side of
//! connect / announce / scrape over the shared `udp_tracker` codec, the
//! choice between our JSON protocol and BEP 15 for one tracker (remembered
//! per tracker address for the life of the process), and the announcer
//! thread that replaces the JSON REGISTER/HEARTBEAT thread when a session's
//! tracker speaks only BEP 15.
//!
//! How the choice is made is written down in `docs/INTEROP.md`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{self, FileRef, PeerEntry, MAX_DATAGRAM_SIZE};
use minitorrent_common::udp_tracker::{
    AnnounceRequest, Event, Request, Response, ScrapeStats, ACTION_ANNOUNCE,
};

use crate::core::msg::{BoxError, Event as TorrentEvent, Phase, Tracked, TrackerMsg};
use crate::net::shared::TorrentHandle;
use crate::net::trace;

/// What `--tracker-protocol` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TrackerProtocol {
    /// JSON for a bare HOST:PORT; a udp:// URL is probed once: JSON if it
    /// answers JSON, else BEP 15 if it answers a BEP 15 connect.
    #[default]
    Auto,
    /// Only the minitorrent JSON protocol.
    Json,
    /// Only the BitTorrent UDP tracker protocol (BEP 15).
    Bep15,
}

/// The protocol a session uses with its tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Bep15,
}

/// How long to wait for each try of a request; the wait doubles per try.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub first: Duration,
    pub tries: u32,
}

impl Schedule {
    /// BEP 15 retransmits after 15·2ⁿ s for n up to 8 (over an hour in all);
    /// we stop after n = 1, so a request gives up after 45 s.
    pub const BEP15: Schedule = Schedule {
        first: Duration::from_secs(15),
        tries: 2,
    };
    /// The probe uses the JSON client's timing (250 ms doubling, 3.75 s).
    pub const PROBE: Schedule = Schedule {
        first: Duration::from_millis(250),
        tries: 4,
    };
    /// `stopped` on the way out: one short try, never holding up an exit.
    pub const FAREWELL: Schedule = Schedule {
        first: Duration::from_millis(500),
        tries: 1,
    };

    fn total(&self) -> Duration {
        (0..self.tries).map(|n| self.first * (1 << n)).sum()
    }
}

/// A connection id may be used for one minute after it was received.
const CONNECTION_ID_LIFE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Bep15Error {
    #[error("BEP 15 tracker {addr} is unreachable: no answer after {tries} tries ({secs:.2} s)")]
    Unreachable {
        addr: SocketAddr,
        tries: u32,
        secs: f64,
    },
    #[error("BEP 15 tracker {addr} refused: {message}")]
    Refused { addr: SocketAddr, message: String },
    #[error("BEP 15 tracker {addr} sent a bad reply: {why}")]
    BadReply { addr: SocketAddr, why: String },
    #[error("BEP 15 tracker {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The answer to an announce.
#[derive(Debug, Clone)]
pub struct AnnounceReply {
    pub interval: Duration,
    pub seeders: u32,
    pub leechers: u32,
    pub peers: Vec<SocketAddr>,
}

/// What we tell the tracker about one torrent.
#[derive(Debug, Clone)]
pub struct AnnounceArgs {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub downloaded: u64,
    pub uploaded: u64,
    pub left: u64,
    pub event: Event,
    pub key: u32,
}

/// One socket talking BEP 15 to one tracker; keeps the connection id.
pub struct Bep15Client {
    sock: UdpSocket,
    addr: SocketAddr,
    local: SocketAddr,
    connection: Option<(u64, Instant)>,
    pub schedule: Schedule,
}

fn unconnected_bind(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

fn connected_socket(addr: SocketAddr) -> io::Result<(UdpSocket, SocketAddr)> {
    let sock = UdpSocket::bind(unconnected_bind(addr))?;
    sock.connect(addr)?;
    let local = sock.local_addr()?;
    Ok((sock, local))
}

/// Outcome of waiting for one datagram.
enum Recv {
    Got(usize),
    TimedOut,
}

/// Waits until `deadline` for one datagram. A refused port (ICMP) counts as
/// silence: the tracker may be starting.
fn recv_until(sock: &UdpSocket, buf: &mut [u8], deadline: Instant) -> io::Result<Recv> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Recv::TimedOut);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv(buf) {
            Ok(n) => return Ok(Recv::Got(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Recv::TimedOut)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()).min(left));
                return Ok(Recv::TimedOut);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Bep15Client {
    pub fn new(addr: SocketAddr) -> Result<Bep15Client, Bep15Error> {
        let (sock, local) =
            connected_socket(addr).map_err(|source| Bep15Error::Io { addr, source })?;
        Ok(Bep15Client {
            sock,
            addr,
            local,
            connection: None,
            schedule: Schedule::BEP15,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the tracker most likely sees us at (no NAT in between).
    pub fn local_ip(&self) -> IpAddr {
        self.local.ip()
    }

    fn io(&self, source: io::Error) -> Bep15Error {
        Bep15Error::Io {
            addr: self.addr,
            source,
        }
    }

    fn live_connection(&self) -> Option<u64> {
        self.connection
            .filter(|(_, t)| t.elapsed() < CONNECTION_ID_LIFE)
            .map(|(id, _)| id)
    }

    /// Sends `req` once and waits until `deadline` for the reply with its
    /// transaction id. `Ok(None)`: nothing in time.
    fn send_wait(&self, req: &Request, deadline: Instant) -> Result<Option<Response>, Bep15Error> {
        let tx = req.transaction_id();
        trace::tracker(self.local, self.addr, || req.summary());
        match self.sock.send(&req.encode()) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(self.io(e)),
        }
        let mut buf = vec![0u8; 2048];
        loop {
            let n = match recv_until(&self.sock, &mut buf, deadline).map_err(|e| self.io(e))? {
                Recv::Got(n) => n,
                Recv::TimedOut => return Ok(None),
            };
            let b = &buf[..n];
            if be32(b, 4) != Some(tx) {
                continue;
            }
            let r = Response::decode(b, self.addr.is_ipv6()).map_err(|e| {
                let why = if b.len() == 8 && be32(b, 0) == Some(ACTION_ANNOUNCE) {
                    "an announce reply with no interval and no peers: the tracker does not \
                     track this torrent (opentracker answers so for a torrent missing from \
                     its whitelist)"
                        .to_string()
                } else {
                    e.to_string()
                };
                Bep15Error::BadReply {
                    addr: self.addr,
                    why,
                }
            })?;
            trace::tracker(self.addr, self.local, || r.summary());
            if let Response::Error { message, .. } = r {
                return Err(Bep15Error::Refused {
                    addr: self.addr,
                    message,
                });
            }
            return Ok(Some(r));
        }
    }

    /// One request with connect-as-needed, retried along the schedule. A try
    /// that gets no answer also forgets the connection id: a tracker that
    /// no longer accepts it stays silent (as ours does).
    fn request(&mut self, build: impl Fn(u64, u32) -> Request) -> Result<Response, Bep15Error> {
        let mut wait = self.schedule.first;
        let mut timeouts = 0;
        while timeouts < self.schedule.tries {
            let deadline = Instant::now() + wait;
            let id = match self.live_connection() {
                Some(id) => Some(id),
                None => {
                    let req = Request::Connect {
                        transaction_id: fastrand::u32(..),
                    };
                    match self.send_wait(&req, deadline)? {
                        Some(Response::Connect { connection_id, .. }) => {
                            self.connection = Some((connection_id, Instant::now()));
                            Some(connection_id)
                        }
                        Some(other) => {
                            return Err(Bep15Error::BadReply {
                                addr: self.addr,
                                why: format!("expected a connect reply, got {}", other.summary()),
                            })
                        }
                        None => None,
                    }
                }
            };
            if let Some(id) = id {
                let req = build(id, fastrand::u32(..));
                if let Some(r) = self.send_wait(&req, deadline)? {
                    return Ok(r);
                }
                self.connection = None;
            }
            timeouts += 1;
            wait *= 2;
        }
        Err(Bep15Error::Unreachable {
            addr: self.addr,
            tries: self.schedule.tries,
            secs: self.schedule.total().as_secs_f64(),
        })
    }

    /// Just the connect: proves the tracker speaks BEP 15.
    pub fn connect(&mut self) -> Result<u64, Bep15Error> {
        self.connection = None;
        let mut wait = self.schedule.first;
        for _ in 0..self.schedule.tries {
            let req = Request::Connect {
                transaction_id: fastrand::u32(..),
            };
            match self.send_wait(&req, Instant::now() + wait)? {
                Some(Response::Connect { connection_id, .. }) => {
                    self.connection = Some((connection_id, Instant::now()));
                    return Ok(connection_id);
                }
                Some(other) => {
                    return Err(Bep15Error::BadReply {
                        addr: self.addr,
                        why: format!("expected a connect reply, got {}", other.summary()),
                    })
                }
                None => wait *= 2,
            }
        }
        Err(Bep15Error::Unreachable {
            addr: self.addr,
            tries: self.schedule.tries,
            secs: self.schedule.total().as_secs_f64(),
        })
    }

    pub fn announce(&mut self, a: &AnnounceArgs) -> Result<AnnounceReply, Bep15Error> {
        let r = self.request(|connection_id, transaction_id| {
            Request::Announce(AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: a.info_hash,
                peer_id: a.peer_id,
                downloaded: a.downloaded,
                left: a.left,
                uploaded: a.uploaded,
                event: a.event,
                ip: std::net::Ipv4Addr::UNSPECIFIED,
                key: a.key,
                num_want: -1,
                port: a.port,
            })
        })?;
        match r {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceReply {
                interval: Duration::from_secs(u64::from(interval)),
                seeders,
                leechers,
                peers,
            }),
            other => Err(Bep15Error::BadReply {
                addr: self.addr,
                why: format!("expected an announce reply, got {}", other.summary()),
            }),
        }
    }

    pub fn scrape(&mut self, hashes: &[InfoHash]) -> Result<Vec<ScrapeStats>, Bep15Error> {
        let r = self.request(|connection_id, transaction_id| Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes: hashes.to_vec(),
        })?;
        match r {
            Response::Scrape { stats, .. } if stats.len() == hashes.len() => Ok(stats),
            other => Err(Bep15Error::BadReply {
                addr: self.addr,
                why: format!(
                    "expected a scrape reply for {} hashes, got {}",
                    hashes.len(),
                    other.summary()
                ),
            }),
        }
    }
}

fn choices() -> &'static Mutex<HashMap<SocketAddr, Protocol>> {
    static CHOICES: OnceLock<Mutex<HashMap<SocketAddr, Protocol>>> = OnceLock::new();
    CHOICES.get_or_init(Mutex::default)
}

/// What an earlier probe found for `addr` in this process.
pub fn remembered(addr: SocketAddr) -> Option<Protocol> {
    choices().lock().ok()?.get(&addr).copied()
}

fn remember(addr: SocketAddr, p: Protocol) {
    if let Ok(mut m) = choices().lock() {
        m.insert(addr, p);
    }
}

/// Asks `addr` in both protocols at once from one socket: a JSON `REQUEST`
/// for `info_hash` (a question the peer asks anyway) and a BEP 15 connect.
/// Any JSON reply means JSON; a connect reply with no JSON reply by the end
/// of that try means BEP 15; silence along the whole schedule is `None`.
pub fn probe(
    addr: SocketAddr,
    info_hash: InfoHash,
    peer_id: &str,
    schedule: Schedule,
) -> Option<Protocol> {
    let (sock, local) = match connected_socket(addr) {
        Ok(s) => s,
        Err(e) => {
            warn!("tracker {addr}: {e}");
            return None;
        }
    };
    let tid = fastrand::u32(1..1 << 30);
    let json = tracker_proto::Request::Request {
        tid,
        file: FileRef::InfoHash(info_hash),
        peer_id: Some(peer_id.to_string()),
    };
    let json_bytes = json.encode();
    let tx = fastrand::u32(..);
    let connect = Request::Connect { transaction_id: tx };
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE + 1];
    let mut wait = schedule.first;
    for _ in 0..schedule.tries {
        trace::tracker(local, addr, || json.summary());
        trace::tracker(local, addr, || connect.summary());
        let _ = sock.send(&json_bytes);
        let _ = sock.send(&connect.encode());
        let deadline = Instant::now() + wait;
        let mut bep15 = false;
        loop {
            let n = match recv_until(&sock, &mut buf, deadline) {
                Ok(Recv::Got(n)) => n,
                Ok(Recv::TimedOut) => break,
                Err(e) => {
                    warn!("tracker {addr}: {e}");
                    return None;
                }
            };
            let b = &buf[..n];
            if b.first() == Some(&b'{') {
                if let Ok(r) = tracker_proto::Reply::decode(b) {
                    if r.tid() == Some(tid) {
                        trace::tracker(addr, local, || r.summary());
                        return Some(Protocol::Json);
                    }
                }
            } else if let Ok(r @ Response::Connect { .. }) = Response::decode(b, addr.is_ipv6()) {
                if r.transaction_id() == tx {
                    trace::tracker(addr, local, || r.summary());
                    bep15 = true;
                }
            }
        }
        if bep15 {
            return Some(Protocol::Bep15);
        }
        wait *= 2;
    }
    None
}

/// The protocol to use with `addr` for a torrent: the forced one, else the
/// remembered one, else a probe (remembered when it found one). A tracker
/// that answers nothing gets JSON and its usual "unreachable" errors.
pub fn decide(
    addr: SocketAddr,
    choice: TrackerProtocol,
    info_hash: InfoHash,
    peer_id: &str,
) -> Protocol {
    match choice {
        TrackerProtocol::Json => Protocol::Json,
        TrackerProtocol::Bep15 => Protocol::Bep15,
        TrackerProtocol::Auto => {
            if let Some(p) = remembered(addr) {
                return p;
            }
            match probe(addr, info_hash, peer_id, Schedule::PROBE) {
                Some(p) => {
                    info!(
                        "tracker {addr} speaks {}",
                        match p {
                            Protocol::Json => "the minitorrent JSON protocol",
                            Protocol::Bep15 => "only BEP 15 (the BitTorrent UDP tracker protocol)",
                        }
                    );
                    remember(addr, p);
                    p
                }
                None => Protocol::Json,
            }
        }
    }
}

/// Whether a tracker that did not answer JSON answers BEP 15 (to explain a
/// failed name lookup or search). Remembers a yes.
pub fn answers_bep15(addr: SocketAddr) -> bool {
    if remembered(addr) == Some(Protocol::Bep15) {
        return true;
    }
    let ok = Bep15Client::new(addr)
        .map(|mut c| {
            c.schedule = Schedule {
                first: Duration::from_millis(250),
                tries: 2,
            };
            c.connect().is_ok()
        })
        .unwrap_or(false);
    if ok {
        remember(addr, Protocol::Bep15);
    }
    ok
}

/// Names exist only in the JSON protocol.
pub fn no_names_error(addr: SocketAddr, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "tracker {addr} speaks only the BitTorrent UDP tracker protocol (BEP 15), which \
         has no file names, so {what} needs a minitorrent tracker; download from a \
         .torrent, a magnet link or an info hash instead"
    )
}

/// One torrent as the announcer sees it.
#[derive(Debug, Clone)]
pub struct SwarmView {
    pub info_hash: InfoHash,
    /// Fetching metadata or downloading.
    pub wants_peers: bool,
    pub peers: usize,
    /// `None` while the metadata is unknown.
    pub size: Option<u64>,
    pub bytes_have: u64,
    pub downloaded: u64,
    pub uploaded: u64,
}

/// The announcer's window on the session's torrents.
pub trait Swarms {
    fn views(&self) -> Vec<SwarmView>;
    /// Peers found (or why none could be): goes to the torrent like the
    /// answer to a JSON `REQUEST`.
    fn deliver(&self, info_hash: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>);
}

impl Swarms for Arc<Mutex<HashMap<InfoHash, TorrentHandle>>> {
    fn views(&self) -> Vec<SwarmView> {
        let Ok(t) = self.lock() else {
            return Vec::new();
        };
        t.values()
            .filter_map(|h| {
                let s = h.status.lock().ok()?;
                Some(SwarmView {
                    info_hash: s.info_hash,
                    wants_peers: matches!(s.phase, Phase::Metadata | Phase::Downloading),
                    peers: s.peers,
                    size: s.size,
                    bytes_have: s.bytes_have,
                    downloaded: s.downloaded,
                    uploaded: s.uploaded,
                })
            })
            .collect()
    }

    fn deliver(&self, info_hash: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>) {
        let shared = self
            .lock()
            .ok()
            .and_then(|t| t.get(info_hash).map(|h| h.shared.clone()));
        if let Some(s) = shared {
            let _ = s.events.send(TorrentEvent::Lookup(r).into());
        }
    }
}

/// Announce more often than the tracker's interval while a download lacks
/// peers, like the JSON client's lookups.
const AGAIN_NO_PEERS: Duration = Duration::from_secs(3);
const AGAIN_FEW_PEERS: Duration = Duration::from_secs(15);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Swarm {
    tracked: Option<Tracked>,
    /// What the last successful announce said: `Some(true)` as a seeder.
    announced: Option<bool>,
    last_try: Option<Instant>,
    interval: Option<Duration>,
    replies: Vec<Sender<Result<(), BoxError>>>,
}

/// Settings of the announcer thread.
pub struct AnnouncerConfig {
    pub tracker: SocketAddr,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub max_peers: usize,
    pub schedule: Schedule,
}

/// The BEP 15 counterpart of the session's JSON tracker thread: announces
/// `started` for every torrent it is told about (and for metadata fetches),
/// `completed` when a download finishes, `none` at the tracker's interval
/// (sooner while a download lacks peers), `stopped` when a torrent goes away
/// and on shutdown. Peers from each reply go to the torrent.
pub fn run_announcer(cfg: AnnouncerConfig, swarms: impl Swarms, rx: Receiver<TrackerMsg>) {
    let addr = cfg.tracker;
    let mut client = match Bep15Client::new(addr) {
        Ok(c) => c,
        Err(e) => {
            warn!("{e}");
            // Answer every request with the error until shutdown.
            for m in rx {
                match m {
                    TrackerMsg::Update(_, Some(r)) => {
                        let _ = r.send(Err(e.to_string().into()));
                    }
                    TrackerMsg::Update(_, None) => {}
                    TrackerMsg::Lookup { reply, .. } => {
                        let _ = reply.send(TorrentEvent::Lookup(Err(e.to_string().into())).into());
                    }
                    TrackerMsg::Shutdown(ack) => {
                        let _ = ack.send(());
                        return;
                    }
                }
            }
            return;
        }
    };
    client.schedule = cfg.schedule;
    let key = fastrand::u32(..);
    let mut state: HashMap<InfoHash, Swarm> = HashMap::new();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(TrackerMsg::Update(t, reply)) => {
                let s = state.entry(t.info_hash).or_default();
                s.tracked = Some(t);
                s.replies.extend(reply);
            }
            // Peers come with each announce, on the announcer's schedule
            // (sooner while a download lacks peers).
            Ok(TrackerMsg::Lookup { .. }) => {}
            Ok(TrackerMsg::Shutdown(ack)) => {
                client.schedule = Schedule::FAREWELL;
                for (ih, s) in &state {
                    if s.announced.is_some() {
                        farewell(&mut client, &cfg, key, ih, s);
                    }
                }
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let views: HashMap<InfoHash, SwarmView> = swarms
            .views()
            .into_iter()
            .map(|v| (v.info_hash, v))
            .collect();
        // A torrent that left the session (removed, failed) leaves the swarm.
        let gone: Vec<InfoHash> = state
            .iter()
            .filter(|(ih, s)| !views.contains_key(ih) && s.replies.is_empty())
            .map(|(ih, _)| *ih)
            .collect();
        for ih in gone {
            if let Some(s) = state.remove(&ih) {
                if s.announced.is_some() {
                    let keep = client.schedule;
                    client.schedule = Schedule::FAREWELL;
                    farewell(&mut client, &cfg, key, &ih, &s);
                    client.schedule = keep;
                }
            }
        }
        for v in views.values() {
            // Metadata fetches have no Tracked yet but need peers.
            if v.size.is_none() {
                state.entry(v.info_hash).or_default();
            }
        }
        let now = Instant::now();
        let due: Vec<InfoHash> = state
            .iter()
            .filter(|(ih, s)| is_due(s, views.get(ih), cfg.max_peers, now))
            .map(|(ih, _)| *ih)
            .collect();
        for ih in due {
            let Some(s) = state.get_mut(&ih) else {
                continue;
            };
            announce_one(&mut client, &cfg, key, &ih, s, views.get(&ih), &swarms);
        }
    }
}

fn is_complete(s: &Swarm) -> bool {
    s.tracked.as_ref().is_some_and(|t| t.complete)
}

fn is_due(s: &Swarm, v: Option<&SwarmView>, max_peers: usize, now: Instant) -> bool {
    if !s.replies.is_empty() || s.announced.is_none() && s.last_try.is_none() {
        return true;
    }
    if is_complete(s) && s.announced == Some(false) {
        return true;
    }
    let Some(last) = s.last_try else { return true };
    let interval = s.interval.unwrap_or(AGAIN_FEW_PEERS);
    let every = match v {
        Some(v) if v.wants_peers && !is_complete(s) && v.peers == 0 => AGAIN_NO_PEERS,
        Some(v) if v.wants_peers && !is_complete(s) && v.peers < max_peers => {
            AGAIN_FEW_PEERS.min(interval)
        }
        _ => interval,
    };
    now >= last + every
}

fn args_for(
    cfg: &AnnouncerConfig,
    key: u32,
    ih: &InfoHash,
    s: &Swarm,
    v: Option<&SwarmView>,
    event: Event,
) -> AnnounceArgs {
    let left = if is_complete(s) {
        0
    } else {
        let size = s
            .tracked
            .as_ref()
            .map(|t| t.size)
            .or(v.and_then(|v| v.size));
        let have = v.map(|v| v.bytes_have).unwrap_or(0);
        // Unknown size (metadata fetch) or a status lagging behind the
        // coordinator: still a leecher until told complete.
        size.map(|n| n.saturating_sub(have)).unwrap_or(0).max(1)
    };
    AnnounceArgs {
        info_hash: *ih,
        peer_id: cfg.peer_id,
        port: cfg.port,
        downloaded: v.map(|v| v.downloaded).unwrap_or(0),
        uploaded: v.map(|v| v.uploaded).unwrap_or(0),
        left,
        event,
        key,
    }
}

fn announce_one(
    client: &mut Bep15Client,
    cfg: &AnnouncerConfig,
    key: u32,
    ih: &InfoHash,
    s: &mut Swarm,
    v: Option<&SwarmView>,
    swarms: &impl Swarms,
) {
    let complete = is_complete(s);
    let event = match s.announced {
        None => Event::Started,
        Some(false) if complete => Event::Completed,
        _ => Event::None,
    };
    let args = args_for(cfg, key, ih, s, v, event);
    s.last_try = Some(Instant::now());
    let me = SocketAddr::new(client.local_ip(), cfg.port);
    match client.announce(&args) {
        Ok(r) => {
            debug!(
                "announced {ih} ({}) to {}: {} seeders, {} leechers, {} peers",
                event.as_str(),
                cfg.tracker,
                r.seeders,
                r.leechers,
                r.peers.len()
            );
            if s.announced.is_none() {
                info!(
                    "announced {ih} to BEP 15 tracker {} ({})",
                    cfg.tracker,
                    if complete { "seeder" } else { "leecher" }
                );
            }
            s.announced = Some(complete);
            s.interval = Some(r.interval.clamp(MIN_INTERVAL, MAX_INTERVAL));
            // Some trackers (opentracker) list the announcer itself.
            let peers = r
                .peers
                .into_iter()
                .filter(|p| *p != me)
                .map(|addr| PeerEntry {
                    addr,
                    // BEP 15 replies carry no peer id; the handshake does.
                    peer_id: String::new(),
                    complete: false,
                })
                .collect();
            swarms.deliver(ih, Ok(peers));
            for r in s.replies.drain(..) {
                let _ = r.send(Ok(()));
            }
        }
        Err(e) => {
            warn!("announce {ih}: {e}");
            if v.is_some_and(|v| v.wants_peers) {
                swarms.deliver(ih, Err(e.to_string().into()));
            }
            for r in s.replies.drain(..) {
                let _ = r.send(Err(e.to_string().into()));
            }
        }
    }
}

fn farewell(client: &mut Bep15Client, cfg: &AnnouncerConfig, key: u32, ih: &InfoHash, s: &Swarm) {
    let args = args_for(cfg, key, ih, s, None, Event::Stopped);
    match client.announce(&args) {
        Ok(_) => info!("sent stopped for {ih} to BEP 15 tracker {}", cfg.tracker),
        Err(e) => debug!("stopped {ih}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitorrent_common::udp_tracker::encode_connect_response;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    /// A fake tracker on 127.0.0.1 that answers with `answer(request bytes)`.
    fn fake(
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<()>, Arc<Mutex<bool>>) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(Mutex::new(false));
        let stop2 = stop.clone();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !*stop2.lock().unwrap() {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if let Some(r) = answer(&buf[..n]) {
                        sock.send_to(&r, from).unwrap();
                    }
                }
            }
        });
        (addr, h, stop)
    }

    fn bep15_only(b: &[u8]) -> Option<Vec<u8>> {
        match Request::decode(b).ok()? {
            Request::Connect { transaction_id } => {
                let mut out = Vec::new();
                encode_connect_response(&mut out, transaction_id, 0x8000_0000_0000_0042);
                Some(out)
            }
            Request::Announce(a) => Some(
                Response::Announce {
                    transaction_id: a.transaction_id,
                    interval: 7,
                    leechers: 1,
                    seeders: 1,
                    peers: vec![
                        "127.0.0.1:7001".parse().unwrap(),
                        SocketAddr::new("127.0.0.1".parse().unwrap(), a.port),
                    ],
                }
                .encode(false),
            ),
            Request::Scrape {
                transaction_id,
                info_hashes,
                ..
            } => Some(
                Response::Scrape {
                    transaction_id,
                    stats: vec![ScrapeStats::default(); info_hashes.len()],
                }
                .encode(false),
            ),
        }
    }

    const FAST: Schedule = Schedule {
        first: Duration::from_millis(100),
        tries: 3,
    };

    #[test]
    fn probe_tells_the_protocols_apart() {
        let (addr, h, stop) = fake(bep15_only);
        assert_eq!(probe(addr, hash(1), "me", FAST), Some(Protocol::Bep15));
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        // Both protocols (like our tracker): JSON wins.
        let (addr, h, stop) = fake(|b| {
            if b.first() == Some(&b'{') {
                let v: serde_json::Value = serde_json::from_slice(b).ok()?;
                let r = serde_json::json!({"type": "ERROR", "tid": v["tid"],
                    "code": "not_found", "message": "no"});
                Some(r.to_string().into_bytes())
            } else {
                bep15_only(b)
            }
        });
        assert_eq!(probe(addr, hash(1), "me", FAST), Some(Protocol::Json));
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        // Nobody home.
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let t = Instant::now();
        assert_eq!(probe(addr, hash(1), "me", FAST), None);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn announce_connects_and_retries_on_silence() {
        // Drops the first announce: the client must connect again and retry.
        let dropped = Arc::new(Mutex::new(0u32));
        let d2 = dropped.clone();
        let (addr, h, stop) = fake(move |b| {
            if let Ok(Request::Announce(_)) = Request::decode(b) {
                let mut d = d2.lock().unwrap();
                *d += 1;
                if *d == 1 {
                    return None;
                }
            }
            bep15_only(b)
        });
        let mut c = Bep15Client::new(addr).unwrap();
        c.schedule = FAST;
        let args = AnnounceArgs {
            info_hash: hash(2),
            peer_id: *b"-MT0100-abcdefghijkl",
            port: 7002,
            downloaded: 0,
            uploaded: 0,
            left: 10,
            event: Event::Started,
            key: 1,
        };
        let r = c.announce(&args).unwrap();
        assert_eq!(r.interval, Duration::from_secs(7));
        assert_eq!(r.peers.len(), 2);
        assert_eq!(*dropped.lock().unwrap(), 2);
        let st = c.scrape(&[hash(2), hash(3)]).unwrap();
        assert_eq!(st.len(), 2);
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    #[test]
    fn errors_name_the_problem() {
        // opentracker's answer for a torrent off its whitelist: 8 bytes.
        let (addr, h, stop) = fake(|b| match Request::decode(b).ok()? {
            Request::Announce(a) => {
                let mut out = ACTION_ANNOUNCE.to_be_bytes().to_vec();
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                Some(out)
            }
            _ => bep15_only(b),
        });
        let mut c = Bep15Client::new(addr).unwrap();
        c.schedule = FAST;
        let args = AnnounceArgs {
            info_hash: hash(2),
            peer_id: [b'x'; 20],
            port: 7002,
            downloaded: 0,
            uploaded: 0,
            left: 10,
            event: Event::Started,
            key: 1,
        };
        let e = c.announce(&args).unwrap_err().to_string();
        assert!(e.contains("whitelist"), "{e}");
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let mut c = Bep15Client::new(addr).unwrap();
        c.schedule = Schedule {
            first: Duration::from_millis(20),
            tries: 2,
        };
        let e = c.announce(&args).unwrap_err();
        assert!(matches!(e, Bep15Error::Unreachable { tries: 2, .. }), "{e}");
    }

    #[test]
    fn stale_connection_ids_are_not_reused() {
        let mut c = Bep15Client::new("127.0.0.1:9".parse().unwrap()).unwrap();
        c.connection = Some((5, Instant::now()));
        assert_eq!(c.live_connection(), Some(5));
        c.connection = Some((5, Instant::now() - CONNECTION_ID_LIFE));
        assert_eq!(c.live_connection(), None);
    }

    type Delivered = (InfoHash, Result<Vec<PeerEntry>, BoxError>);

    struct FakeSwarms {
        views: Mutex<Vec<SwarmView>>,
        got: Mutex<Vec<Delivered>>,
    }

    impl Swarms for Arc<FakeSwarms> {
        fn views(&self) -> Vec<SwarmView> {
            self.views.lock().unwrap().clone()
        }
        fn deliver(&self, ih: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>) {
            self.got.lock().unwrap().push((*ih, r));
        }
    }

    #[test]
    fn announcer_sends_started_completed_stopped() {
        let events = Arc::new(Mutex::new(Vec::<(Event, u64)>::new()));
        let ev2 = events.clone();
        let (addr, h, stop) = fake(move |b| {
            if let Ok(Request::Announce(a)) = Request::decode(b) {
                ev2.lock().unwrap().push((a.event, a.left));
            }
            bep15_only(b)
        });
        let swarms = Arc::new(FakeSwarms {
            views: Mutex::new(vec![SwarmView {
                info_hash: hash(4),
                wants_peers: true,
                peers: 0,
                size: Some(100),
                bytes_have: 40,
                downloaded: 40,
                uploaded: 0,
            }]),
            got: Mutex::default(),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = AnnouncerConfig {
            tracker: addr,
            peer_id: *b"-MT0100-abcdefghijkl",
            port: 7004,
            max_peers: 8,
            schedule: FAST,
        };
        let s2 = swarms.clone();
        let t = std::thread::spawn(move || run_announcer(cfg, s2, rx));
        let tracked = |complete| Tracked {
            info_hash: hash(4),
            name: "x".into(),
            size: 100,
            complete,
        };
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Update(tracked(false), Some(rtx)))
            .unwrap();
        rrx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        // Peers delivered without ourselves (127.0.0.1:7004).
        let got = swarms.got.lock().unwrap();
        let peers = got[0].1.as_ref().unwrap().clone();
        drop(got);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].addr, "127.0.0.1:7001".parse().unwrap());

        tx.send(TrackerMsg::Update(tracked(true), None)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.0 == Event::Completed)
        {
            assert!(Instant::now() < deadline, "no completed announce");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (atx, arx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Shutdown(atx)).unwrap();
        arx.recv_timeout(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        let ev = events.lock().unwrap().clone();
        assert_eq!(ev.first(), Some(&(Event::Started, 60)));
        assert!(ev.contains(&(Event::Completed, 0)), "{ev:?}");
        assert_eq!(ev.last(), Some(&(Event::Stopped, 0)));
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }
}
