//! The tracker's web page, JSON API and HTTP tracker protocol (docs/WEB.md),
//! on its own threads: the UDP workers never wait on HTTP, and HTTP uses
//! only what the UDP side already shares (the registry's shards one at a
//! time, the `STATS` window's lock for one copy, the catalogue's store and
//! its recorder, the workers' counters).
//!
//! - `http`: reading one request and writing one response, by hand and
//!   bounded; `multipart`: the publish form's upload.
//! - `routes`: the pages, the API, `/metrics`; `cache`: the `/api/swarms`
//!   answers of the last second; `http_tracker`: the HTTP tracker protocol
//!   (`/announce`, `/scrape`), which writes to the registry as a UDP worker
//!   does (one shard at a time, under a handler permit).
//! - this file: binding, the accept thread, one thread per connection
//!   under a fixed cap, and the [`bounds`].
//!
//! Why by hand and not with an HTTP server crate: the synchronous ones
//! (tiny_http was tried) read a header line without any length limit, start
//! a thread for every connection without any cap, have no read or write
//! timeouts, and stop accepting for good on the first accept error (such as
//! running out of file descriptors). Bounding that from outside means
//! reading and checking every request before the crate sees it, which is
//! most of an HTTP/1.1 server already.

mod cache;
mod http;
mod http_tracker;
pub mod multipart;
mod routes;

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::catalogue::{Catalogue, Recorder};
use crate::metrics::UdpMetrics;
use crate::registry::Registry;
use crate::server::StopHandle;
use crate::stats::StatsView;

/// Every limit of the web server (docs/STATE.md and docs/WEB.md list them).
pub mod bounds {
    use std::time::Duration;

    /// Connections open at once; past it a newcomer gets `503` and is closed.
    pub const MAX_CONNECTIONS: usize = 64;
    /// Connections open at once from one IP address (a browser opens about 6).
    pub const MAX_PER_IP: usize = 16;
    /// Bytes of one request's line and headers; past it `431`.
    pub const MAX_HEAD: usize = 16 << 10;
    /// Header lines of one request; past it `431`.
    pub const MAX_HEADERS: usize = 64;
    /// A new connection's first request head must arrive whole within this.
    pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
    /// A kept-alive connection may wait this long for its next request
    /// (and must then send its head whole within it).
    pub const IDLE_DEADLINE: Duration = Duration::from_secs(10);
    /// A request body must arrive whole within this…
    pub const BODY_DEADLINE: Duration = Duration::from_secs(60);
    /// …and without a pause longer than this…
    pub const BODY_IDLE: Duration = Duration::from_secs(10);
    /// …and, once [`RATE_GRACE`] is over, at this many bytes a second on
    /// average at least (so a stalled or trickling body is let go after
    /// 5 s; a 10 MiB one must still be whole within [`BODY_DEADLINE`], about
    /// 175 KiB/s).
    pub const MIN_BODY_RATE: usize = 32 << 10;
    /// How long a body may arrive slower than [`MIN_BODY_RATE`]: so a
    /// stalled or trickling upload gives its permit back after 5 s.
    pub const RATE_GRACE: Duration = Duration::from_secs(5);
    /// A response must be written whole within this.
    pub const WRITE_DEADLINE: Duration = Duration::from_secs(60);
    /// Longest single socket wait while reading or writing (deadlines are
    /// checked between waits).
    pub const READ_STEP: Duration = Duration::from_secs(1);
    /// Body of any request but a publication.
    pub const MAX_SMALL_BODY: usize = 64 << 10;
    /// Extra bytes a publish form may carry around the `.torrent` (its
    /// boundaries and part headers).
    pub const FORM_OVERHEAD: usize = 64 << 10;
    /// Requests answered at once (route handlers: registry scans, SQLite
    /// reads and writes); the others wait up to [`HANDLER_WAIT`].
    pub const HANDLERS: usize = 4;
    /// Bodies larger than [`MAX_SMALL_BODY`] held in memory at once (so at
    /// most 4 × (10 MiB + 64 KiB) of uploads, each read into one buffer of
    /// its exact length).
    pub const UPLOADS: usize = 4;
    /// Of those, from one IP address: a second upload from the same address
    /// waits (up to [`HANDLER_WAIT`]) for the first, without an upload
    /// permit, so one address cannot hold them all.
    pub const UPLOADS_PER_IP: usize = 1;
    /// How long a request waits for a handler or upload slot before `503`.
    pub const HANDLER_WAIT: Duration = Duration::from_secs(10);
    /// Requests on one kept-alive connection before it is closed.
    pub const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
    /// After a response that closes the connection, how long what the
    /// client still sends is read and thrown away (so it gets the response
    /// rather than a reset).
    pub const LINGER: Duration = Duration::from_secs(2);
    /// Stack of a connection thread.
    pub const THREAD_STACK: usize = 512 << 10;
    /// What a connection refused over the caps has already sent is read
    /// and thrown away, up to this much, without waiting.
    pub const REFUSE_DRAIN: usize = 64 << 10;
    /// How long one `/api/swarms?q=` answer is reused.
    pub const SWARMS_CACHE_TTL: Duration = Duration::from_secs(1);
    /// Answers of `/api/swarms` kept (the empty query and the latest others).
    pub const SWARMS_CACHE_QUERIES: usize = 8;
    /// Longest query whose answer is kept (longer ones are answered, not kept).
    pub const SWARMS_CACHE_KEY: usize = 256;
}

/// Why the web server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "cannot serve the web page on {addr}: TCP port {port} is already in use (another tracker \
         or web server?); pick another with --web HOST:OTHERPORT, or run without it: --web off",
        port = addr.port()
    )]
    InUse { addr: SocketAddr },
    #[error(
        "cannot serve the web page on {addr}: no local interface has that address; \
         give --web an address of this machine (or 0.0.0.0:PORT), or --web off"
    )]
    NotAvailable { addr: SocketAddr },
    #[error(
        "cannot serve the web page on {addr}: {source}; try another --web HOST:PORT, or --web off"
    )]
    Other { addr: SocketAddr, source: io::Error },
}

/// What the pages read; the binary fills it from the bound tracker.
#[derive(Clone)]
pub struct WebContext {
    pub registry: Arc<Registry>,
    pub view: StatsView,
    pub catalogue: Arc<Catalogue>,
    pub udp: UdpMetrics,
    /// The tracker's UDP address as peers reach it (for magnet links).
    pub tracker: SocketAddr,
    /// Most peers in one announce reply (`--max-peers`).
    pub max_peers: usize,
    /// Seconds between announces an HTTP announce reply asks for: the
    /// JSON heartbeat interval, as BEP 15 replies say.
    pub interval: u32,
    /// `--trace`: one line per HTTP tracker request and reply.
    pub trace: bool,
}

/// The bound listening socket, ready to [`spawn`](WebServer::spawn).
pub struct WebServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl WebServer {
    /// Binds `addr` (port 0: a free port).
    pub fn bind(addr: SocketAddr) -> Result<WebServer, WebError> {
        let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => WebError::InUse { addr },
            io::ErrorKind::AddrNotAvailable => WebError::NotAvailable { addr },
            _ => WebError::Other { addr, source: e },
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| WebError::Other { addr, source: e })?;
        Ok(WebServer { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give people and peers: `http://IP:PORT/`, with this
    /// machine's outgoing address in place of an unspecified one.
    pub fn url(&self) -> String {
        url_for(self.addr)
    }

    /// Starts the accept thread; connections get threads of their own.
    /// They serve until the process exits (after the tracker stops, no new
    /// connection is accepted).
    pub fn spawn(self, ctx: WebContext, stop: StopHandle) -> io::Result<()> {
        let t = ctx.tracker;
        let announce = match public_ip(t.ip()) {
            IpAddr::V6(v6) => format!("udp://[{v6}]:{}/announce", t.port()),
            IpAddr::V4(v4) => format!("udp://{v4}:{}/announce", t.port()),
        };
        let recorder = ctx.catalogue.recorder();
        let shared = Arc::new(Shared {
            ctx,
            recorder,
            announce,
            slots: Mutex::new(Slots::default()),
            handlers: Semaphore::new(bounds::HANDLERS),
            uploads: Semaphore::new(bounds::UPLOADS),
            uploaders: Uploaders::default(),
            swarms_cache: Mutex::new(cache::SwarmsCache::new(
                bounds::SWARMS_CACHE_QUERIES,
                bounds::SWARMS_CACHE_TTL,
            )),
            swarms_scan: Mutex::new(()),
            counters: HttpCounters::default(),
            started: Instant::now(),
        });
        std::thread::Builder::new()
            .name("web-accept".into())
            .spawn(move || accept_loop(self.listener, shared, stop))?;
        Ok(())
    }
}

/// `http://IP:PORT/` for a bound address.
pub fn url_for(addr: SocketAddr) -> String {
    let ip = public_ip(addr.ip());
    match ip {
        IpAddr::V6(v6) => format!("http://[{v6}]:{}/", addr.port()),
        IpAddr::V4(v4) => format!("http://{v4}:{}/", addr.port()),
    }
}

/// `ip`, or when it is unspecified the address this machine sends from
/// (found by connecting a UDP socket, which sends nothing), or loopback.
pub fn public_ip(ip: IpAddr) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let probe = match ip {
        IpAddr::V4(_) => SocketAddr::from(([192, 0, 2, 1], 9)),
        IpAddr::V6(_) => SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(), 9),
    };
    let found = crate::discover::facing(probe)
        .ok()
        .filter(|ip| !ip.is_unspecified());
    found.unwrap_or(match ip {
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    })
}

pub(crate) struct Shared {
    ctx: WebContext,
    /// The catalogue's feed, for HTTP announces (events, completed counts).
    recorder: Recorder,
    /// The tracker as magnet links name it: `udp://IP:PORT/announce`.
    announce: String,
    slots: Mutex<Slots>,
    handlers: Semaphore,
    uploads: Semaphore,
    /// Uploads in progress by IP address (the [`bounds::UPLOADS_PER_IP`]).
    uploaders: Uploaders,
    /// Recent `/api/swarms` answers (docs/WEB.md: one scan a second per
    /// query at most).
    swarms_cache: Mutex<cache::SwarmsCache>,
    /// Held while an `/api/swarms` answer is computed: one scan at a time.
    swarms_scan: Mutex<()>,
    counters: HttpCounters,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The HTTP side's own counters (for `/metrics`).
#[derive(Default)]
pub(crate) struct HttpCounters {
    /// Responses by status, in [`STATUSES`] order, the last for any other.
    responses: [AtomicU64; STATUSES.len() + 1],
    refused: AtomicU64,
    accept_errors: AtomicU64,
    accepted: AtomicU64,
    /// HTTP tracker requests: `/announce`, `/scrape`, and those of either
    /// answered with a `failure reason`.
    announces: AtomicU64,
    scrapes: AtomicU64,
    refusals: AtomicU64,
}

pub(crate) const STATUSES: [u16; 16] = [
    200, 201, 303, 400, 403, 404, 405, 408, 411, 413, 415, 431, 500, 503, 505, 304,
];

impl HttpCounters {
    fn status(&self, s: u16) {
        let i = STATUSES
            .iter()
            .position(|&x| x == s)
            .unwrap_or(STATUSES.len());
        self.responses[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Connections open, in all and per IP.
#[derive(Default)]
struct Slots {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in [`Slots`], given back when dropped.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = lock(&self.shared.slots);
        s.open = s.open.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

fn take_slot(shared: &Arc<Shared>, ip: IpAddr) -> Option<Slot> {
    let mut s = lock(&shared.slots);
    let here = s.per_ip.get(&ip).copied().unwrap_or(0);
    if s.open >= bounds::MAX_CONNECTIONS || here >= bounds::MAX_PER_IP {
        return None;
    }
    s.open += 1;
    *s.per_ip.entry(ip).or_insert(0) += 1;
    Some(Slot {
        shared: shared.clone(),
        ip,
    })
}

/// A counting semaphore; a permit is given back when dropped.
struct Semaphore {
    state: Mutex<Permits>,
    cv: Condvar,
}

struct Permits {
    free: usize,
    /// Threads waiting for a permit: a permit given back wakes one only
    /// when there is one (notifying a condition variable is a system call
    /// even when nobody waits, and every request takes a permit).
    waiting: usize,
}

struct Permit<'a>(&'a Semaphore);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.free += 1;
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.0.cv.notify_one();
        }
    }
}

impl Semaphore {
    fn new(n: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(Permits {
                free: n,
                waiting: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn acquire(&self, wait: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + wait;
        let mut st = lock(&self.state);
        while st.free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st.waiting += 1;
            st = self
                .cv
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiting -= 1;
        }
        st.free -= 1;
        Some(Permit(self))
    }
}

/// Uploads in progress by IP address: at most [`bounds::UPLOADS_PER_IP`]
/// each. One entry per connection reading an upload, so at most
/// [`bounds::MAX_CONNECTIONS`] entries.
#[derive(Default)]
struct Uploaders {
    busy: Mutex<HashMap<IpAddr, usize>>,
    cv: Condvar,
}

/// An address's upload turn, given back when dropped.
struct UploaderTurn<'a> {
    of: &'a Uploaders,
    ip: IpAddr,
}

impl Drop for UploaderTurn<'_> {
    fn drop(&mut self) {
        let mut busy = lock(&self.of.busy);
        if let Some(n) = busy.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.ip);
            }
        }
        drop(busy);
        self.of.cv.notify_all();
    }
}

impl Uploaders {
    /// Waits until `ip` has fewer than [`bounds::UPLOADS_PER_IP`] uploads
    /// going, until `deadline`.
    fn acquire(&self, ip: IpAddr, deadline: Instant) -> Option<UploaderTurn<'_>> {
        let mut busy = lock(&self.busy);
        while busy.get(&ip).copied().unwrap_or(0) >= bounds::UPLOADS_PER_IP {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            busy = self
                .cv
                .wait_timeout(busy, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *busy.entry(ip).or_insert(0) += 1;
        Some(UploaderTurn { of: self, ip })
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: StopHandle) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = listener.accept();
        if stop.is_stopped() {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = take_slot(&shared, peer.ip()) else {
                    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                    shared.counters.status(503);
                    refuse(stream);
                    continue;
                };
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("web-conn".into())
                    .stack_size(bounds::THREAD_STACK)
                    .spawn(move || {
                        let _slot = slot;
                        serve(&s, stream, peer);
                    });
                if let Err(e) = spawned {
                    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                    debug!("web: cannot start a connection thread: {e}");
                }
            }
            Err(e) => {
                // Out of file descriptors, a connection reset before it was
                // accepted…: wait a little and go on, never stop serving.
                shared
                    .counters
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                let quiet =
                    matches!(last_warning, Some(t) if t.elapsed() < Duration::from_secs(10));
                if !quiet {
                    warn!("web: cannot accept a connection: {e}");
                    last_warning = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Tells a connection over the caps to come back later, without ever
/// waiting on it: writes the `503`, closes the sending side (so the client
/// sees the end of the response), and reads and throws away what the client
/// has already sent (up to [`bounds::REFUSE_DRAIN`]), so that closing does
/// not reset the connection over unread bytes and lose the `503`. What the
/// client sends after that can still reset it: waiting for it would stall
/// the accept thread (docs/WEB.md).
fn refuse(stream: TcpStream) {
    use std::io::Read as _;
    let _ = stream.set_nonblocking(true);
    let body = "the tracker's web server has too many connections open; try again in a moment\n";
    let _ = (&stream).write_all(
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 8192];
    let mut drained = 0;
    while drained < bounds::REFUSE_DRAIN {
        match (&stream).read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// Serves one connection: requests one after the other until it closes,
/// breaks a bound, or asks to close.
fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut conn = http::Conn::new(stream, peer);
    for n in 0..bounds::MAX_REQUESTS_PER_CONNECTION {
        let (mut req, length) = match conn.read_head(n == 0) {
            Ok(r) => r,
            Err(e) => {
                if let Some((status, msg)) = e.reply() {
                    let resp = http::Response::new(status, "text/plain; charset=utf-8", msg + "\n");
                    finish(shared, &mut conn, &resp, false, false);
                }
                return;
            }
        };
        let limit = routes::body_limit(&shared.ctx, &req.method, &req.path);
        if length > limit {
            let resp = routes::error(
                &req.path,
                413,
                &format!(
                    "the body is {length} bytes; {} accepts at most {limit}",
                    req.path
                ),
            );
            // The body is not read: the connection cannot go on.
            finish(shared, &mut conn, &resp, req.method == "HEAD", false);
            return;
        }
        if let Some(resp) = routes::refuse_early(&req) {
            // Refused from the head alone: the body is not read, so the
            // connection cannot go on.
            finish(shared, &mut conn, &resp, false, false);
            return;
        }
        let upload = if length > bounds::MAX_SMALL_BODY {
            // One upload at a time from one address, then one of the
            // permits: an address cannot hold them all.
            let deadline = Instant::now() + bounds::HANDLER_WAIT;
            let turn = shared.uploaders.acquire(peer.ip(), deadline);
            let permit = turn.as_ref().and_then(|_| {
                shared
                    .uploads
                    .acquire(deadline.saturating_duration_since(Instant::now()))
            });
            match (turn, permit) {
                (Some(t), Some(p)) => Some((t, p)),
                (turn, _) => {
                    let why = if turn.is_none() {
                        "another upload from your address is still going on; send one \
                         .torrent at a time, or try again in a moment"
                    } else {
                        "too many uploads at once; try again in a moment"
                    };
                    let resp = routes::error(&req.path, 503, why).with_header("Retry-After", "2");
                    finish(shared, &mut conn, &resp, false, false);
                    return;
                }
            }
        } else {
            None
        };
        let read = conn.read_body(&mut req, length);
        if let Err(e) = read {
            // Give the upload back before telling the client.
            drop(upload);
            if let Some((status, msg)) = e.reply() {
                let resp = routes::error(&req.path, status, &msg);
                finish(shared, &mut conn, &resp, false, false);
            }
            return;
        }
        let resp = match shared.handlers.acquire(bounds::HANDLER_WAIT) {
            Some(_permit) => routes::handle(shared, &req),
            None => routes::error(
                &req.path,
                503,
                "the web server is busy; try again in a moment",
            ),
        };
        drop(req.body);
        drop(upload);
        let keep = req.keep_alive && n + 1 < bounds::MAX_REQUESTS_PER_CONNECTION;
        if !finish(shared, &mut conn, &resp, req.method == "HEAD", keep) || !keep {
            return;
        }
    }
}

/// Writes the response and counts it; false when the connection broke.
fn finish(
    shared: &Shared,
    conn: &mut http::Conn,
    resp: &http::Response,
    head_only: bool,
    keep: bool,
) -> bool {
    shared.counters.status(resp.status);
    match conn.write_response(resp, head_only, keep) {
        Ok(()) => {
            if !keep {
                linger(&conn.stream);
            }
            true
        }
        Err(e) => {
            debug!("web: writing to {}: {e}", conn.peer);
            false
        }
    }
}

/// Closes our side, then reads and discards what the client still sends
/// for up to [`bounds::LINGER`]: closing a socket with unread bytes (a body
/// refused with 413, the rest of a head too large) resets the connection,
/// and the client could lose the response before reading it.
fn linger(stream: &TcpStream) {
    use std::io::Read as _;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + bounds::LINGER;
    let mut sink = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let _ = stream.set_read_timeout(Some(left));
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
