//! The UDP server: binds the sockets, runs one mio event loop per worker
//! thread, and answers each datagram through a [`Handler`].
//!
//! [`Handler`] is the protocol logic without sockets (datagram in, reply out)
//! so it is unit-tested directly; [`Tracker`] is the I/O shell around it. Each
//! worker owns a socket bound to the same address (`SO_REUSEPORT` when there
//! are several, so the kernel spreads clients over them), reads until
//! `WouldBlock`, answers each datagram at once into reused buffers, and sweeps
//! its share of the registry when the poll times out (and between reads when
//! busy, so a flood cannot postpone expiry). All workers share one
//! [`Registry`] and one set of connection-id keys, so any worker can answer any
//! datagram.
//!
//! One port serves both protocols: a datagram starting with `{` is JSON; one of
//! at least 16 bytes whose action field (bytes 8–11) is 0–3 is BEP 15;
//! anything else is answered as malformed JSON.

use std::io::{self, Write as _};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use minitorrent_common::tracker_proto::{
    self as proto, encode_error_reply, encode_files_reply, encode_ok_reply, encode_peers_reply,
    ErrorCode, FileRef, FileView, Reply, Request, SwarmView, DEFAULT_INTERVAL_SECS, MAX_REPLY_SIZE,
};
use minitorrent_common::udp_tracker as udp;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::connection_id::ConnectionIds;
use crate::io_batch::{RecvBatch, SendBatch};
use crate::peer_id::peer_id_from_bytes;
use crate::registry::{
    AnnounceEvent, Family, Limits, RegisterError, Registry, SearchHit, SweepReport, MAX_SWARMS,
};

/// JSON error code for a `REGISTER` that would create a swarm past
/// `--max-swarms`: the request is fine, the tracker is full.
pub const FULL: &str = "full";

/// Longest wait between two sweeps.
const MAX_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Kernel socket buffers: large enough to ride out bursts from many peers.
const SOCKET_BUFFER: usize = 4 << 20;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// Everything the server needs to know; the command line fills it in.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub peer_timeout: Duration,
    pub max_peers: usize,
    pub trace: bool,
    /// Worker threads, each with its own socket on the same port.
    pub workers: usize,
    /// Most swarms held at once; a new one past it is refused.
    pub max_swarms: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::from(([0, 0, 0, 0], 6969)),
            peer_timeout: Duration::from_secs(u64::from(proto::DEFAULT_TIMEOUT_SECS)),
            max_peers: 50,
            trace: false,
            workers: 1,
            max_swarms: MAX_SWARMS,
        }
    }
}

impl Config {
    /// Heartbeat interval announced in `OK`: the default 10 s, or a third of
    /// a shorter timeout (at least 1 s), so a peer heartbeats about three
    /// times per timeout.
    pub fn interval_secs(&self) -> u32 {
        let third = (self.peer_timeout.as_secs() / 3).max(1);
        third.min(u64::from(DEFAULT_INTERVAL_SECS)) as u32
    }

    pub fn timeout_secs(&self) -> u32 {
        self.peer_timeout.as_secs().min(u64::from(u32::MAX)) as u32
    }

    fn sweep_every(&self) -> Duration {
        (self.peer_timeout / 2).min(MAX_SWEEP_EVERY)
    }
}

/// Answers datagrams from the registry. One per worker thread; owns its
/// scratch buffers so answering does not allocate for the common requests.
pub struct Handler {
    registry: Arc<Registry>,
    conn_ids: Arc<ConnectionIds>,
    max_peers: usize,
    interval: u32,
    timeout: u32,
    trace: bool,
    rng: fastrand::Rng,
    hits: Vec<SearchHit>,
}

impl Handler {
    pub fn new(registry: Arc<Registry>, conn_ids: Arc<ConnectionIds>, config: &Config) -> Handler {
        Handler {
            registry,
            conn_ids,
            max_peers: config.max_peers,
            interval: config.interval_secs(),
            timeout: config.timeout_secs(),
            trace: config.trace,
            rng: fastrand::Rng::new(),
            hits: Vec::new(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Answers one datagram from `src` into `out` (cleared first). Returns
    /// false when there is nothing to send.
    pub fn handle(
        &mut self,
        src: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        if looks_like_bep15(data) {
            return self.handle_bep15(src, data, now, out);
        }
        self.handle_json(src, data, now, out);
        true
    }

    /// A BEP 15 packet: connect, announce or scrape. Returns false (no reply)
    /// for a bad connect magic or an invalid or expired connection id, so a
    /// spoofed source gets nothing.
    fn handle_bep15(
        &mut self,
        src: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(head) = udp::RequestHeader::decode(data) else {
            return false;
        };
        let tid = head.transaction_id;
        let ipv6 = src.ip().to_canonical().is_ipv6();
        if head.action == udp::ACTION_CONNECT {
            if head.connection_id != udp::PROTOCOL_ID {
                self.drop_bep15(src, data, "connect with a wrong protocol id");
                return false;
            }
            if self.trace {
                trace_line(
                    '←',
                    src,
                    &udp::Request::Connect {
                        transaction_id: tid,
                    }
                    .summary(),
                );
            }
            let id = self.conn_ids.issue(src.ip(), now);
            udp::encode_connect_response(out, tid, id);
            self.trace_bep15_reply(src, out, ipv6);
            return true;
        }
        if !self.conn_ids.is_valid(head.connection_id, src.ip(), now) {
            self.drop_bep15(src, data, "invalid or expired connection id");
            return false;
        }
        let req = match udp::Request::decode(data) {
            Ok(r) => r,
            Err(e) => {
                if self.trace {
                    trace_line(
                        '←',
                        src,
                        &format!("malformed BEP 15 ({} bytes): {e}", data.len()),
                    );
                }
                debug!("{src} sent a malformed BEP 15 packet: {e}");
                udp::encode_error_response(out, tid, &e.to_string());
                self.trace_bep15_reply(src, out, ipv6);
                return true;
            }
        };
        if self.trace {
            trace_line('←', src, &req.summary());
        }
        if log::log_enabled!(log::Level::Debug) {
            debug!("{src} → {}", req.summary());
        }
        match &req {
            udp::Request::Announce(a) => {
                if a.port == 0 {
                    udp::encode_error_response(
                        out,
                        tid,
                        "port 0 is not a port peers can connect to",
                    );
                } else {
                    let want = if a.num_want <= 0 {
                        self.max_peers
                    } else {
                        (a.num_want as usize).min(self.max_peers)
                    };
                    let event = if a.event == udp::Event::Stopped {
                        AnnounceEvent::Stopped
                    } else {
                        AnnounceEvent::Update
                    };
                    let family = if ipv6 { Family::V6 } else { Family::V4 };
                    let interval = self.interval;
                    let announced = self.registry.announce(
                        SocketAddr::new(src.ip(), a.port),
                        peer_id_from_bytes(&a.peer_id),
                        &a.info_hash,
                        a.left == 0,
                        event,
                        want,
                        family,
                        &mut self.rng,
                        now,
                        |counts, picks| {
                            udp::encode_announce_response(
                                out,
                                tid,
                                interval,
                                counts.leechers,
                                counts.seeders,
                                picks.addrs(),
                                ipv6,
                            )
                        },
                    );
                    if let Err(e) = announced {
                        debug!("{src}: BEP 15 announce refused: {e}");
                        out.clear();
                        udp::encode_error_response(out, tid, &e.to_string());
                    }
                }
            }
            udp::Request::Scrape { info_hashes, .. } => {
                out.extend_from_slice(&udp::ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&tid.to_be_bytes());
                for h in info_hashes {
                    let c = self.registry.counts(h);
                    // Downloads are not counted: "completed" is always 0.
                    for v in [c.seeders, 0, c.leechers] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            // Handled above: a connect never carries a connection id.
            udp::Request::Connect { .. } => return false,
        }
        self.trace_bep15_reply(src, out, ipv6);
        true
    }

    fn drop_bep15(&self, src: SocketAddr, data: &[u8], why: &str) {
        if self.trace {
            trace_line(
                '←',
                src,
                &format!("BEP 15 packet ({} bytes) dropped: {why}", data.len()),
            );
        }
        debug!("{src}: BEP 15 packet dropped: {why}");
    }

    fn trace_bep15_reply(&self, dst: SocketAddr, out: &[u8], ipv6: bool) {
        if self.trace {
            let line = match udp::Response::decode(out, ipv6) {
                Ok(r) => r.summary(),
                Err(e) => format!("(undecodable reply: {e})"),
            };
            trace_line('→', dst, &line);
        }
    }

    fn handle_json(&mut self, src: SocketAddr, data: &[u8], now: Instant, out: &mut Vec<u8>) {
        let req = match Request::decode(data) {
            Ok(r) => r,
            Err(e) => {
                if self.trace {
                    trace_line('←', src, &format!("malformed ({} bytes): {e}", data.len()));
                }
                debug!("{src} sent a malformed datagram: {e}");
                encode_error_reply(out, e.tid, &ErrorCode::BadRequest, &e.to_string());
                self.trace_reply(src, out);
                return;
            }
        };
        if self.trace {
            trace_line('←', src, &req.summary());
        }
        if log::log_enabled!(log::Level::Debug) {
            debug!("{src} → {}", req.summary());
        }
        match &req {
            Request::Register {
                tid,
                peer_id,
                port,
                files,
            } => match self.registry.register(src.ip(), peer_id, *port, files, now) {
                Ok(o) => {
                    if o.new_peer || o.joined > 0 {
                        info!(
                            "peer {peer_id} at {} {} ({} new swarm entr{}): {}",
                            SocketAddr::new(src.ip(), *port),
                            if o.new_peer { "registered" } else { "updated" },
                            o.joined,
                            if o.joined == 1 { "y" } else { "ies" },
                            file_names(files)
                        );
                    }
                    encode_ok_reply(out, *tid, self.interval, self.timeout);
                }
                Err(e) => {
                    debug!("{src}: REGISTER of {peer_id} refused: {e}");
                    let code = match e {
                        RegisterError::TooManyFiles { .. } => ErrorCode::BadRequest,
                        RegisterError::Full(_) => ErrorCode::Other(FULL.to_string()),
                    };
                    encode_error_reply(out, Some(*tid), &code, &e.to_string());
                }
            },
            Request::Request { tid, file, peer_id } => {
                let asker = peer_id.as_deref().map(|p| (src.ip(), p));
                let found = self.registry.visit_peers(
                    file,
                    asker,
                    self.max_peers,
                    Family::Any,
                    &mut self.rng,
                    now,
                    |h, picks| {
                        let swarm = SwarmView {
                            info_hash: h.info_hash,
                            name: h.name,
                            size: h.size,
                            seeders: h.seeders,
                            leechers: h.leechers,
                        };
                        encode_peers_reply(out, *tid, &swarm, picks, MAX_REPLY_SIZE);
                    },
                );
                if found.is_none() {
                    let message = match file {
                        FileRef::InfoHash(h) => {
                            format!("no peer shares info hash {}", h.to_hex())
                        }
                        FileRef::Name(n) => format!("no peer shares a file named \"{n}\""),
                    };
                    encode_error_reply(out, Some(*tid), &ErrorCode::NotFound, &message);
                }
            }
            Request::Search { tid, query } => {
                self.registry.search(query, &mut self.hits);
                let files = self.hits.iter().map(|h| FileView {
                    info_hash: &h.info_hash,
                    name: &h.name,
                    size: h.size,
                    seeders: h.seeders,
                    leechers: h.leechers,
                });
                encode_files_reply(out, *tid, files, MAX_REPLY_SIZE);
            }
            Request::Heartbeat { tid, peer_id } => {
                match self.registry.heartbeat(src.ip(), peer_id, now) {
                    Ok(()) => encode_ok_reply(out, *tid, self.interval, self.timeout),
                    Err(_) => unknown_peer(out, *tid, src, peer_id),
                }
            }
            Request::Exit { tid, peer_id } => match self.registry.exit(src.ip(), peer_id, now) {
                Ok(port) => {
                    info!("peer {peer_id} at {} left", SocketAddr::new(src.ip(), port));
                    encode_ok_reply(out, *tid, self.interval, self.timeout);
                }
                Err(_) => unknown_peer(out, *tid, src, peer_id),
            },
        }
        self.trace_reply(src, out);
    }

    fn trace_reply(&self, dst: SocketAddr, out: &[u8]) {
        if self.trace {
            // Decoding our own reply keeps the trace honest about the bytes sent.
            let line = match Reply::decode(out) {
                Ok(r) => r.summary(),
                Err(e) => format!("(undecodable reply: {e})"),
            };
            trace_line('→', dst, &line);
        }
    }

    /// Sweeps this worker's share of the registry and logs who expired.
    pub fn sweep(&self, part: usize, parts: usize, now: Instant) -> SweepReport {
        let mut report = SweepReport::default();
        self.registry.sweep_part(part, parts, now, &mut report);
        for (ip, id, port) in &report.expired {
            info!(
                "peer {id} at {} expired (silent for {} s)",
                SocketAddr::new(*ip, *port),
                self.timeout
            );
        }
        if report.entries_removed > 0 {
            debug!(
                "sweep removed {} swarm entries and {} swarms",
                report.entries_removed, report.swarms_removed
            );
        }
        report
    }
}

/// BEP 15 requests are at least 16 bytes with an action (bytes 8–11) of 0–3.
/// JSON text never has NUL bytes there, and never starts with anything but
/// `{` or whitespace; our connection ids start with a byte ≥ 0x80.
fn looks_like_bep15(d: &[u8]) -> bool {
    d.len() >= 16 && d[0] != b'{' && d[8..11] == [0, 0, 0] && d[11] <= 3
}

/// The `REGISTER` file names for the log: the first few, then how many more,
/// so a 600-file datagram does not make a 150 KB log line.
fn file_names(files: &[proto::FileInfo]) -> String {
    const SHOWN: usize = 5;
    let mut s = files
        .iter()
        .take(SHOWN)
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        s.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    s
}

fn unknown_peer(out: &mut Vec<u8>, tid: u32, src: SocketAddr, peer_id: &str) {
    let message = format!(
        "peer {peer_id} is not registered from {} (expired, never registered, or the tracker restarted): send REGISTER",
        src.ip()
    );
    encode_error_reply(out, Some(tid), &ErrorCode::UnknownPeer, &message);
}

/// `HH:MM:SS.mmm` in UTC.
pub fn clock() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    minitorrent_common::trace::hms_millis(since)
}

/// One `--trace` line on stderr: time, direction, the other side, the message.
pub fn trace_line(dir: char, peer: SocketAddr, summary: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{} tracker {dir} {peer:<21} {summary}", clock());
}

/// Stops a running [`Tracker`] from another thread (e.g. the Ctrl-C handler).
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wakers: Arc<Vec<Waker>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        for w in self.wakers.iter() {
            let _ = w.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// A bound tracker, ready to [`run`](Tracker::run).
pub struct Tracker {
    workers: Vec<Worker>,
    local_addr: SocketAddr,
    registry: Arc<Registry>,
    conn_ids: Arc<ConnectionIds>,
    stop: StopHandle,
}

struct Worker {
    poll: Poll,
    socket: UdpSocket,
}

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: the port is already in use (is another tracker running?)")]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: no local interface has that address")]
    NotAvailable { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Other { addr: SocketAddr, source: io::Error },
}

fn bind_error(addr: SocketAddr, e: io::Error) -> BindError {
    match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse { addr },
        io::ErrorKind::AddrNotAvailable => BindError::NotAvailable { addr },
        _ => BindError::Other { addr, source: e },
    }
}

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<StdUdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    // Best effort: a smaller buffer only means more drops under a flood.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "several workers need SO_REUSEPORT, which this system lacks; use --workers 1",
    ))
}

/// Binds one socket per worker on the same address.
fn bind_sockets(addr: SocketAddr, workers: usize) -> Result<Vec<StdUdpSocket>, BindError> {
    if workers <= 1 {
        return Ok(vec![
            bind_socket(addr, false).map_err(|e| bind_error(addr, e))?
        ]);
    }
    // A plain bind first: it fails if anything holds the port, including a
    // tracker whose own sockets allow sharing it, so two trackers never split
    // one port's traffic. Then the shared sockets take the port it found.
    for attempt in 0..3 {
        let probe = bind_socket(addr, false).map_err(|e| bind_error(addr, e))?;
        let actual = probe.local_addr().map_err(|e| bind_error(addr, e))?;
        drop(probe);
        let mut sockets = Vec::with_capacity(workers);
        let mut failed = None;
        for _ in 0..workers {
            match bind_socket(actual, true) {
                Ok(s) => sockets.push(s),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => return Ok(sockets),
            // Someone took the free port between the probe and us: pick again.
            Some(e) if addr.port() == 0 && attempt < 2 => {
                debug!("port {} taken meanwhile: {e}", actual.port())
            }
            Some(e) => return Err(bind_error(addr, e)),
        }
    }
    Err(BindError::InUse { addr })
}

impl Tracker {
    /// Binds the UDP sockets (one per worker). Port 0 picks a free port; see
    /// [`local_addr`](Tracker::local_addr).
    pub fn bind(config: &Config) -> Result<Tracker, BindError> {
        let addr = config.bind;
        let other = |e| BindError::Other { addr, source: e };
        let sockets = bind_sockets(addr, config.workers)?;
        let local_addr = sockets[0].local_addr().map_err(other)?;
        let mut workers = Vec::with_capacity(sockets.len());
        let mut wakers = Vec::with_capacity(sockets.len());
        for std_socket in sockets {
            let poll = Poll::new().map_err(other)?;
            wakers.push(Waker::new(poll.registry(), WAKE).map_err(other)?);
            let mut socket = UdpSocket::from_std(std_socket);
            poll.registry()
                .register(&mut socket, SOCKET, Interest::READABLE)
                .map_err(other)?;
            workers.push(Worker { poll, socket });
        }
        let epoch = Instant::now();
        let shards = (16 * workers.len()).max(16);
        Ok(Tracker {
            workers,
            local_addr,
            registry: Arc::new(Registry::with_limits(
                config.peer_timeout,
                shards,
                epoch,
                Limits {
                    max_swarms: config.max_swarms,
                    ..Limits::default()
                },
            )),
            conn_ids: Arc::new(ConnectionIds::new(epoch)),
            stop: StopHandle {
                flag: Arc::new(AtomicBool::new(false)),
                wakers: Arc::new(wakers),
            },
        })
    }

    /// The address actually bound (with the real port when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves until [`StopHandle::stop`] is called.
    pub fn run(self, config: &Config) -> io::Result<()> {
        let parts = self.workers.len();
        let mut threads = Vec::new();
        let mut workers = self.workers.into_iter().enumerate();
        let first = workers.next();
        for (i, w) in workers {
            let handler = Handler::new(self.registry.clone(), self.conn_ids.clone(), config);
            let stop = self.stop.clone();
            let sweep_every = config.sweep_every();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tracker-worker-{i}"))
                    .spawn(move || w.run(handler, &stop, i, parts, sweep_every))?,
            );
        }
        let mut result = Ok(());
        if let Some((i, w)) = first {
            let handler = Handler::new(self.registry.clone(), self.conn_ids.clone(), config);
            result = w.run(handler, &self.stop, i, parts, config.sweep_every());
            if result.is_err() {
                // One worker failing takes the others down with it.
                self.stop.stop();
            }
        }
        for t in threads {
            match t.join() {
                Ok(r) => result = result.and(r),
                Err(_) => result = result.and(Err(io::Error::other("a worker thread panicked"))),
            }
        }
        result
    }
}

impl Worker {
    fn run(
        mut self,
        mut handler: Handler,
        stop: &StopHandle,
        part: usize,
        parts: usize,
        sweep_every: Duration,
    ) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut rb = RecvBatch::default();
        let mut sb = SendBatch::default();
        let mut next_sweep = Instant::now() + sweep_every;
        loop {
            let timeout = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if stop.is_stopped() {
                return Ok(());
            }
            let mut errors = 0;
            let mut batches = 0u32;
            loop {
                match rb.recv(&self.socket) {
                    Ok(n) => {
                        let now = Instant::now();
                        for i in 0..n {
                            let Some((src, data)) = rb.get(i) else {
                                continue;
                            };
                            if handler.handle(src, data, now, sb.next_buf()) {
                                sb.commit(&rb, i, &self.socket);
                            }
                        }
                        sb.flush(&self.socket);
                        batches = batches.wrapping_add(1);
                        // Under a flood the socket never drains: check for
                        // stop and sweep now and then anyway.
                        if batches & 63 == 0 {
                            if stop.is_stopped() {
                                return Ok(());
                            }
                            if now >= next_sweep {
                                handler.sweep(part, parts, now);
                                next_sweep = now + sweep_every;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // E.g. an ICMP error from an earlier reply; keep serving.
                        debug!("receive error: {e}");
                        errors += 1;
                        if errors > 64 {
                            warn!("many receive errors in a row, last: {e}");
                            break;
                        }
                    }
                }
            }
            let now = Instant::now();
            if now >= next_sweep {
                handler.sweep(part, parts, now);
                next_sweep = now + sweep_every;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitorrent_common::metainfo::InfoHash;
    use minitorrent_common::tracker_proto::{FileInfo, PeerEntry};

    fn handler(config: &Config) -> Handler {
        let now = Instant::now();
        Handler::new(
            Arc::new(Registry::new(config.peer_timeout, 2, now)),
            Arc::new(ConnectionIds::new(now)),
            config,
        )
    }

    fn ask(h: &mut Handler, src: &str, req: &Request) -> Reply {
        let mut out = Vec::new();
        assert!(h.handle(
            src.parse().unwrap(),
            &req.encode(),
            Instant::now(),
            &mut out
        ));
        Reply::decode(&out).unwrap()
    }

    fn register(h: &mut Handler, src: &str, id: &str, port: u16, name: &str, byte: u8) -> Reply {
        ask(
            h,
            src,
            &Request::Register {
                tid: 1,
                peer_id: id.into(),
                port,
                files: vec![FileInfo {
                    info_hash: InfoHash([byte; 20]),
                    name: name.into(),
                    size: 10,
                    complete: true,
                }],
            },
        )
    }

    #[test]
    fn register_request_uses_the_source_ip_and_given_port() {
        let mut h = handler(&Config::default());
        assert_eq!(
            register(&mut h, "192.0.2.7:40000", "p", 7001, "a.txt", 1),
            Reply::ok(1)
        );
        let r = ask(
            &mut h,
            "192.0.2.8:40000",
            &Request::Request {
                tid: 2,
                file: FileRef::Name("a.txt".into()),
                peer_id: None,
            },
        );
        match r {
            Reply::Peers {
                tid,
                peers,
                seeders,
                ..
            } => {
                assert_eq!((tid, seeders), (2, 1));
                assert_eq!(
                    peers,
                    vec![PeerEntry {
                        addr: "192.0.2.7:7001".parse().unwrap(),
                        peer_id: "p".into(),
                        complete: true
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_timeouts_shorten_the_interval() {
        let mut c = Config::default();
        assert_eq!((c.interval_secs(), c.timeout_secs()), (10, 30));
        c.peer_timeout = Duration::from_secs(1);
        assert_eq!((c.interval_secs(), c.timeout_secs()), (1, 1));
        c.peer_timeout = Duration::from_secs(12);
        assert_eq!(c.interval_secs(), 4);
        let mut h = handler(&c);
        assert_eq!(
            register(&mut h, "127.0.0.1:1", "p", 1, "a", 1),
            Reply::Ok {
                tid: 1,
                interval: 4,
                timeout: 12
            }
        );
    }

    #[test]
    fn search_reply_is_capped_to_one_datagram() {
        let mut h = handler(&Config::default());
        let long = "n".repeat(200);
        for i in 0..600u32 {
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            let req = Request::Register {
                tid: 1,
                peer_id: "p".into(),
                port: 1,
                files: vec![FileInfo {
                    info_hash: InfoHash(hash),
                    name: format!("{long}{i:04}"),
                    size: 1,
                    complete: true,
                }],
            };
            ask(&mut h, "127.0.0.1:1", &req);
        }
        let mut out = Vec::new();
        let req = Request::Search {
            tid: 3,
            query: String::new(),
        };
        h.handle(
            "127.0.0.1:2".parse().unwrap(),
            &req.encode(),
            Instant::now(),
            &mut out,
        );
        assert!(out.len() <= MAX_REPLY_SIZE);
        match Reply::decode(&out).unwrap() {
            Reply::Files { files, .. } => {
                assert!(files.len() > 100 && files.len() < 600, "{}", files.len());
                // Sorted by name, so the first ones are kept.
                assert!(files[0].name.ends_with("0000"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_file_and_unknown_peer() {
        let mut h = handler(&Config::default());
        let r = ask(
            &mut h,
            "127.0.0.1:1",
            &Request::Request {
                tid: 4,
                file: FileRef::InfoHash(InfoHash([9; 20])),
                peer_id: None,
            },
        );
        assert!(
            matches!(
                r,
                Reply::Error {
                    tid: Some(4),
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = ask(
            &mut h,
            "127.0.0.1:1",
            &Request::Heartbeat {
                tid: 5,
                peer_id: "ghost".into(),
            },
        );
        assert!(
            matches!(
                r,
                Reply::Error {
                    tid: Some(5),
                    code: ErrorCode::UnknownPeer,
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn dispatch_between_json_and_bep15() {
        assert!(!looks_like_bep15(
            b"{\"type\":\"SEARCH\",\"tid\":1,\"query\":\"\"}"
        ));
        assert!(!looks_like_bep15(b"  {\"type\":\"SEARCH\",\"tid\":1}"));
        assert!(!looks_like_bep15(b"short"));
        assert!(!looks_like_bep15(b"this is not json at all"));
        assert!(looks_like_bep15(
            &udp::Request::Connect { transaction_id: 1 }.encode()
        ));
        let mut scrape = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1];
        assert!(looks_like_bep15(&scrape));
        scrape[0] = b'{';
        assert!(!looks_like_bep15(&scrape));
        // A BEP-15-shaped packet without a valid connection id gets nothing;
        // text that is neither gets a JSON error.
        let mut h = handler(&Config::default());
        let mut out = Vec::new();
        scrape[0] = 0x80;
        assert!(!h.handle(
            "127.0.0.1:1".parse().unwrap(),
            &scrape,
            Instant::now(),
            &mut out
        ));
        assert!(h.handle(
            "127.0.0.1:1".parse().unwrap(),
            b"hello",
            Instant::now(),
            &mut out
        ));
        assert!(matches!(
            Reply::decode(&out),
            Ok(Reply::Error {
                code: ErrorCode::BadRequest,
                ..
            })
        ));
    }

    #[test]
    fn malformed_input_gets_bad_request() {
        let mut h = handler(&Config::default());
        let mut out = Vec::new();
        h.handle(
            "127.0.0.1:1".parse().unwrap(),
            b"{\"type\":\"NOPE\",\"tid\":6}",
            Instant::now(),
            &mut out,
        );
        match Reply::decode(&out).unwrap() {
            Reply::Error { tid, code, message } => {
                assert_eq!((tid, code), (Some(6), ErrorCode::BadRequest));
                assert!(message.contains("NOPE"));
            }
            other => panic!("{other:?}"),
        }
    }
}
