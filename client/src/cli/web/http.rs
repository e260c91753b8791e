//! The HTTP/1.1 server under the peer's web interface: it owns the
//! listening socket, the cap on open connections, reading each request head
//! within a size and a time budget, handing the request body to the handler
//! as a stream, and writing the response. It knows nothing of the pages; a
//! [`Handler`] does.
//!
//! Synchronous on purpose, std threads only: one accept thread and one
//! thread per connection, never more than [`bounds::MAX_CONNECTIONS`]. A
//! stalled or slow client holds its own thread and nothing else.
//!
//! Written by hand rather than taken from a crate because the synchronous
//! HTTP servers (tiny_http among them) bound neither the size of a head,
//! nor the number of connections, nor the time a client may take, as the
//! tracker's web server found out; and because uploads of files of several
//! GiB must go to disk while they arrive, which a server that reads whole
//! bodies into memory cannot do.
//!
//! Not spoken: chunked request bodies (`411`, send `Content-Length`),
//! HTTP/2, TLS, absolute-form request targets.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use log::{debug, error, warn};

/// Every limit the server enforces, so that what one client can cost is
/// written down in one place. [`Limits::default`] takes them all.
pub mod bounds {
    use std::time::Duration;

    /// Connections served at once, from everyone. A connection past it is
    /// answered `503` and closed by the accept thread itself.
    pub const MAX_CONNECTIONS: usize = 64;
    /// Connections served at once from one IP address. Browsers open about
    /// six per site, and every local tab shares the loopback address, so it
    /// is generous; it only stops one address from taking every slot.
    pub const MAX_PER_IP: usize = 32;
    /// Largest request head (request line and header lines) in bytes;
    /// larger gets `431`.
    pub const MAX_HEAD: usize = 16 * 1024;
    /// Most header lines in one request; more gets `431`.
    pub const MAX_HEADERS: usize = 64;
    /// Time from accepting a connection to having its first head whole;
    /// later gets `408`.
    pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
    /// How long a kept-alive connection may sit silent before its next
    /// request; then it is closed without a word. Once that request's first
    /// byte is in, the rest of its head has [`HEAD_DEADLINE`].
    pub const IDLE_DEADLINE: Duration = Duration::from_secs(10);
    /// Longest wait for the next byte of a request body; past it the
    /// handler's read fails with `TimedOut`.
    pub const BODY_IDLE: Duration = Duration::from_secs(30);
    /// Slowest average body rate accepted, in bytes a second, once
    /// [`RATE_GRACE`] is spent. Only time the handler spends waiting for
    /// the client counts, so a slow disk is not blamed on the upload.
    pub const MIN_BODY_RATE: u64 = 16 * 1024;
    /// Waiting time allowed before [`MIN_BODY_RATE`] is enforced, so that
    /// TCP slow start and a busy browser are not cut.
    pub const RATE_GRACE: Duration = Duration::from_secs(10);
    /// A response (or a `100 Continue`) must be written whole within this.
    pub const WRITE_DEADLINE: Duration = Duration::from_secs(60);
    /// Requests on one connection; the last one is answered with
    /// `Connection: close`.
    pub const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
    /// After a response that ends the connection, what the client still
    /// sends is read and dropped for this long, so that closing over unread
    /// bytes does not reset the connection before it read the response.
    pub const LINGER: Duration = Duration::from_secs(2);
    /// Longest single wait on the socket; deadlines and the body rate are
    /// checked between waits.
    pub const POLL_STEP: Duration = Duration::from_secs(1);
    /// Body bytes the handler left unread that are read and dropped to keep
    /// the connection alive; with more left, it is closed instead.
    pub const UNREAD_DRAIN: u64 = 64 * 1024;
    /// Bytes a refused connection has already sent that are dropped, with
    /// no wait, before it is closed (the accept thread must not block).
    pub const REFUSE_DRAIN: usize = 64 * 1024;
    /// Stack of a connection thread; the handler runs on it.
    pub const THREAD_STACK: usize = 1024 * 1024;
    /// Pause after a failed `accept` (out of descriptors, say) before the
    /// next one, so the accept thread does not spin.
    pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
    /// Failed `accept`s are logged at most once in this long.
    pub const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);
}

/// The limits one server runs with, each field the [`bounds`] constant of
/// the same name by default; tests shrink the times so that they run fast.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub max_head: usize,
    pub max_headers: usize,
    pub head_deadline: Duration,
    pub idle_deadline: Duration,
    pub body_idle: Duration,
    pub min_body_rate: u64,
    pub rate_grace: Duration,
    pub write_deadline: Duration,
    pub max_requests_per_connection: usize,
    pub linger: Duration,
    pub poll_step: Duration,
    pub unread_drain: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: bounds::MAX_CONNECTIONS,
            max_per_ip: bounds::MAX_PER_IP,
            max_head: bounds::MAX_HEAD,
            max_headers: bounds::MAX_HEADERS,
            head_deadline: bounds::HEAD_DEADLINE,
            idle_deadline: bounds::IDLE_DEADLINE,
            body_idle: bounds::BODY_IDLE,
            min_body_rate: bounds::MIN_BODY_RATE,
            rate_grace: bounds::RATE_GRACE,
            write_deadline: bounds::WRITE_DEADLINE,
            max_requests_per_connection: bounds::MAX_REQUESTS_PER_CONNECTION,
            linger: bounds::LINGER,
            poll_step: bounds::POLL_STEP,
            unread_drain: bounds::UNREAD_DRAIN,
        }
    }
}

/// Why [`Server::bind`] failed, worded for the person who chose the address.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot serve the web interface on {addr}: port {port} is already in use by another \
         program; choose another port or address",
        port = addr.port()
    )]
    InUse { addr: SocketAddr },
    #[error(
        "cannot serve the web interface on {addr}: {ip} is not an address of this machine; \
         use one of its addresses, 127.0.0.1, or 0.0.0.0 for all of them",
        ip = addr.ip()
    )]
    NotLocal { addr: SocketAddr },
    #[error(
        "cannot serve the web interface on {addr}: not allowed to listen there (ports below \
         1024 need privileges); choose a port above 1023"
    )]
    Denied { addr: SocketAddr },
    #[error("cannot serve the web interface on {addr}: {source}")]
    Other {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A request as the handler sees it: the head, parsed. The body, if any,
/// comes separately as a [`Body`].
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded (`+` stays `+`), without the query. It may
    /// hold `..` or `%2F`-made slashes: a handler that maps it to files
    /// must check it.
    pub path: String,
    /// The request target exactly as sent, for a handler that must tell
    /// `/a%2Fb` from `/a/b`.
    pub target: String,
    /// The query in order, form-decoded (`+` is a space, `%XX` a byte,
    /// invalid UTF-8 becomes U+FFFD); a bare `key` has an empty value.
    pub query: Vec<(String, String)>,
    /// Header lines in order; names in lowercase, values trimmed.
    pub headers: Vec<(String, String)>,
    pub peer: SocketAddr,
    /// Length of the body; 0 when none was announced.
    pub content_length: u64,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response, sent whole with a `Content-Length`.
///
/// The server writes `Content-Length`, `Connection`, `Cache-Control:
/// no-store` and `X-Content-Type-Options: nosniff` itself. In `headers`,
/// `Content-Length` and `Transfer-Encoding` are dropped (the framing is the
/// server's), a `Cache-Control` replaces the default, and `Connection:
/// close` makes the server close after this response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Left out of the response when empty.
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// UTF-8 plain text.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", text.into())
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        // A Value has only string keys, so it always serialises.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status, "application/json", body)
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The answer to a failed read of the [`Body`]: `408` when the client
    /// was too slow, `400` when it went away or broke the connection.
    pub fn for_body_error(e: &io::Error) -> Response {
        let status = if e.kind() == io::ErrorKind::TimedOut {
            408
        } else {
            400
        };
        Response::text(status, format!("{e}\n"))
    }

    /// Whether the handler asked for the connection to end here.
    fn wants_close(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && has_token(v, "close"))
    }
}

/// What a web interface does with requests. Both calls run on the
/// connection's own thread; a panic in either becomes a `500` and closes
/// that connection, nothing more.
pub trait Handler: Send + Sync + 'static {
    /// Looks at the head alone, before any of the body is read. `Ok(n)`:
    /// bodies up to `n` bytes may go on to [`Handler::handle`] (a longer
    /// `Content-Length` is answered `413` by the server). `Err(response)`:
    /// it is sent at once, the body is never read, and a connection that
    /// announced a body is then closed.
    fn admit(&self, req: &Request) -> Result<u64, Response>;

    /// Answers the request, reading the body from `body` as it arrives.
    fn handle(&self, req: &Request, body: &mut Body<'_>) -> Response;
}

/// The body of a request, read from the socket while the handler runs.
///
/// Yields exactly `content_length` bytes and then end of file. A read
/// fails with `TimedOut` when no byte came for [`bounds::BODY_IDLE`] or
/// when, after [`bounds::RATE_GRACE`] of waiting, the body came slower than
/// [`bounds::MIN_BODY_RATE`] on average; with `UnexpectedEof` when the
/// client closed before the end. After a failure every read fails the same
/// way and the connection is closed after the response.
///
/// A `100 Continue` is sent before the first read if the client asked for
/// one, so a handler that refuses without reading never invites the body.
/// What the handler leaves unread is read and dropped afterwards when it is
/// at most [`bounds::UNREAD_DRAIN`] bytes (and the client was not waiting
/// for `100 Continue`); otherwise the connection is closed after the
/// response.
pub struct Body<'a> {
    conn: &'a mut Conn,
    length: u64,
    remaining: u64,
    /// The client waits for `100 Continue` before sending the body.
    continue_owed: bool,
    /// Time spent waiting on the socket for body bytes: the rate is
    /// measured against it.
    waited: Duration,
    /// Bytes that had to be waited for (those already buffered with the
    /// head came free).
    received: u64,
    /// Set when draining: no wait may go past it.
    cutoff: Option<Instant>,
    failure: Option<(io::ErrorKind, String)>,
}

impl Body<'_> {
    /// The announced length (`Content-Length`).
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether a read failed because of the client (timeout, early close,
    /// broken connection): lets a handler that copies the body to a file
    /// tell the client's fault from the disk's.
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failure = Some((e.kind(), e.to_string()));
        e
    }

    fn send_continue(&mut self) -> io::Result<()> {
        self.continue_owed = false;
        let deadline = Instant::now() + self.conn.limits.write_deadline;
        let step = self.conn.limits.poll_step;
        write_parts(
            &mut self.conn.stream,
            &[b"HTTP/1.1 100 Continue\r\n\r\n"],
            deadline,
            step,
        )
    }

    /// Waits for the next bytes of the body straight from the socket.
    fn wait_for(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let lim = self.conn.limits;
        let began = Instant::now();
        let mut idle_end = began + lim.body_idle;
        if let Some(c) = self.cutoff {
            idle_end = idle_end.min(c);
        }
        loop {
            let now = Instant::now();
            let waited = self.waited + now.duration_since(began);
            if waited >= lim.rate_grace && below_rate(self.received, waited, lim.min_body_rate) {
                self.waited = waited;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the request body arrived too slowly: {} bytes in {:.1} s, under the \
                         minimum of {} KiB/s ({} of {} bytes received)",
                        self.received,
                        waited.as_secs_f64(),
                        lim.min_body_rate / 1024,
                        self.length - self.remaining,
                        self.length
                    ),
                ));
            }
            if now >= idle_end {
                self.waited = waited;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the request body stalled: nothing for {:.1} s ({} of {} bytes received)",
                        now.duration_since(began).as_secs_f64(),
                        self.length - self.remaining,
                        self.length
                    ),
                ));
            }
            let step = (idle_end - now)
                .min(lim.poll_step)
                .max(Duration::from_millis(1));
            self.conn.stream.set_read_timeout(Some(step))?;
            match self.conn.stream.read(out) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the client closed the connection after {} of {} body bytes",
                            self.length - self.remaining,
                            self.length
                        ),
                    ))
                }
                Ok(n) => {
                    self.waited += began.elapsed();
                    self.received += n as u64;
                    return Ok(n);
                }
                Err(e) if is_wait(&e) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reading the request body: {e}"),
                    ))
                }
            }
        }
    }

    /// Ends the body once the handler is done: true when the connection is
    /// positioned at the next request and may be kept.
    fn finish(mut self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        if self.remaining == 0 {
            return true;
        }
        // A client still waiting for `100 Continue` may send the body later
        // or never: nothing tells where its next request would start.
        if self.continue_owed || self.remaining > self.conn.limits.unread_drain {
            return false;
        }
        self.cutoff = Some(Instant::now() + self.conn.limits.linger);
        let mut sink = [0u8; 8192];
        while self.remaining > 0 {
            if self.read(&mut sink).is_err() {
                return false;
            }
        }
        true
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failure {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        if self.remaining == 0 || out.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(out.len(), |r| r.min(out.len()));
        let n = if self.conn.pending.is_empty() {
            if self.continue_owed {
                if let Err(e) = self.send_continue() {
                    return Err(self.fail(e));
                }
            }
            match self.wait_for(&mut out[..want]) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            }
        } else {
            let n = want.min(self.conn.pending.len());
            out[..n].copy_from_slice(&self.conn.pending[..n]);
            self.conn.pending.drain(..n);
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Whether `bytes` over `waited` is under `rate` bytes a second.
fn below_rate(bytes: u64, waited: Duration, rate: u64) -> bool {
    u128::from(bytes) * 1000 < u128::from(rate) * waited.as_millis()
}

/// A socket wait that ended without data or error: go round again.
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The bound listening socket; [`Server::spawn`] starts serving on it.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Server {
    /// Binds `addr`; port 0 takes a free port.
    pub fn bind(addr: SocketAddr) -> Result<Server, BindError> {
        let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { addr },
            io::ErrorKind::AddrNotAvailable => BindError::NotLocal { addr },
            io::ErrorKind::PermissionDenied => BindError::Denied { addr },
            _ => BindError::Other { addr, source: e },
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| BindError::Other { addr, source: e })?;
        Ok(Server {
            listener,
            addr: bound,
        })
    }

    /// The bound address (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves with the [`bounds`] until the process exits.
    pub fn spawn(self, handler: Arc<dyn Handler>) -> io::Result<()> {
        self.spawn_with(handler, Limits::default())
    }

    /// Serves with other limits (tests use short times).
    pub fn spawn_with(self, handler: Arc<dyn Handler>, limits: Limits) -> io::Result<()> {
        let gate = Arc::new(Gate {
            limits,
            open: Mutex::new(Open::default()),
        });
        std::thread::Builder::new()
            .name("web-accept".into())
            .spawn(move || accept_loop(&self.listener, &handler, &gate))?;
        Ok(())
    }
}

fn accept_loop(listener: &TcpListener, handler: &Arc<dyn Handler>, gate: &Arc<Gate>) {
    let mut next_warning = Instant::now();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors, or a connection reset while queued:
                // the listener itself is fine, so wait a little and go on.
                if Instant::now() >= next_warning {
                    warn!("web: cannot accept a connection: {e}");
                    next_warning = Instant::now() + bounds::ACCEPT_WARN_EVERY;
                } else {
                    debug!("web: cannot accept a connection: {e}");
                }
                std::thread::sleep(bounds::ACCEPT_BACKOFF);
                continue;
            }
        };
        let ticket = match Gate::enter(gate, peer.ip()) {
            Ok(t) => t,
            Err(full) => {
                debug!("web: refusing {peer}: {}", full.message());
                refuse(&stream, full);
                continue;
            }
        };
        let limits = gate.limits;
        let handler = Arc::clone(handler);
        let started = std::thread::Builder::new()
            .name("web-conn".into())
            .stack_size(bounds::THREAD_STACK)
            .spawn(move || {
                let _ticket = ticket;
                serve(Conn::new(stream, peer, limits), &*handler);
            });
        // The closure, stream and ticket included, is dropped on failure:
        // the client sees the connection close and the slot is free again.
        if let Err(e) = started {
            warn!("web: cannot start a thread for {peer}: {e}");
        }
    }
}

/// Counts open connections against [`Limits::max_connections`] and
/// [`Limits::max_per_ip`].
struct Gate {
    limits: Limits,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Which cap a connection ran into.
#[derive(Debug, Clone, Copy)]
enum Full {
    Everyone,
    ThisAddress,
}

impl Full {
    fn message(self) -> &'static str {
        match self {
            Full::Everyone => {
                "the web interface has too many connections open; try again shortly\n"
            }
            Full::ThisAddress => {
                "too many connections from your address are open; close some tabs or try again \
                 shortly\n"
            }
        }
    }
}

/// A connection's place in the [`Gate`], freed when dropped.
struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    // The counts stay consistent even if a holder panicked: every update
    // is a single step.
    open.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    fn enter(gate: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, Full> {
        // One client reached over IPv4 and IPv4-mapped IPv6 is one address.
        let ip = ip.to_canonical();
        let mut open = lock(&gate.open);
        if open.total >= gate.limits.max_connections {
            return Err(Full::Everyone);
        }
        if open
            .by_ip
            .get(&ip)
            .is_some_and(|&n| n >= gate.limits.max_per_ip)
            || gate.limits.max_per_ip == 0
        {
            return Err(Full::ThisAddress);
        }
        *open.by_ip.entry(ip).or_default() += 1;
        open.total += 1;
        Ok(Ticket {
            gate: Arc::clone(gate),
            ip,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = lock(&self.gate.open);
        open.total = open.total.saturating_sub(1);
        let now_zero = match open.by_ip.get_mut(&self.ip) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if now_zero {
            open.by_ip.remove(&self.ip);
        }
    }
}

/// Answers a connection over the caps from the accept thread, which must
/// never wait on a client: one non-blocking write of a `503`, the sending
/// side shut, and whatever already arrived dropped so that the close does
/// not turn into a reset that would hide the `503`.
fn refuse(stream: &TcpStream, full: Full) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let resp = Response::text(503, full.message()).with_header("Retry-After", "2");
    let mut bytes = wire_head(&resp, false);
    bytes.extend_from_slice(&resp.body);
    let mut s = stream;
    let _ = s.write(&bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut scratch = [0u8; 4096];
    let mut dropped = 0;
    while dropped < bounds::REFUSE_DRAIN {
        match s.read(&mut scratch) {
            Ok(n) if n > 0 => dropped += n,
            _ => break,
        }
    }
}

/// One connection: the socket, and what was read past the last head.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes after the previous head: the start of its body, or of the
    /// next request. Never more than [`Limits::max_head`].
    pending: Vec<u8>,
    limits: Limits,
}

/// What a head turned out to be, besides the request.
struct Head {
    req: Request,
    keep_alive: bool,
    expect_continue: bool,
}

/// A request refused from its head: the status and the reason, for the
/// client. The connection is closed after it.
#[derive(Debug)]
struct Refusal {
    status: u16,
    why: String,
}

fn refusal(status: u16, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
    }
}

/// Why no request came.
enum NoHead {
    /// The client closed or stayed silent before starting one: close
    /// without answering.
    Quiet,
    Refused(Refusal),
}

/// Where the end of a head is, found incrementally as bytes arrive so
/// that a head sent a byte at a time is still scanned once.
#[derive(Default)]
struct HeadScan {
    /// Next byte to look at.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Complete lines so far.
    lines: usize,
}

enum Scanned {
    /// The head is `buf[..head_len]`; the request continues at `next`.
    End {
        head_len: usize,
        next: usize,
    },
    /// An empty line before any request line (allowed by RFC 9112, and
    /// sent by some clients after a body): drop `buf[..skip]`.
    Blank {
        skip: usize,
    },
    /// More lines than any accepted head has.
    TooManyLines,
    NeedMore,
}

impl HeadScan {
    fn advance(&mut self, buf: &[u8], max_lines: usize) -> Scanned {
        while let Some(off) = buf[self.pos..].iter().position(|&b| b == b'\n') {
            let nl = self.pos + off;
            self.pos = nl + 1;
            let line = &buf[self.line_start..nl];
            // A bare LF ends a line too (RFC 9112 allows it), so `\n\n`
            // ends a head as `\r\n\r\n` does.
            if line.is_empty() || line == b"\r" {
                if self.lines == 0 {
                    return Scanned::Blank { skip: nl + 1 };
                }
                return Scanned::End {
                    head_len: self.line_start,
                    next: nl + 1,
                };
            }
            self.lines += 1;
            if self.lines > max_lines {
                return Scanned::TooManyLines;
            }
            self.line_start = nl + 1;
        }
        self.pos = buf.len();
        Scanned::NeedMore
    }
}

impl Conn {
    fn new(stream: TcpStream, peer: SocketAddr, limits: Limits) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            peer,
            pending: Vec::new(),
            limits,
        }
    }

    /// Reads the next head. On a new connection all of it must come within
    /// [`Limits::head_deadline`]; on a kept one the first byte may take
    /// [`Limits::idle_deadline`] and the rest then has the head deadline.
    fn read_head(&mut self, kept: bool) -> Result<Head, NoHead> {
        let lim = self.limits;
        let mut deadline = Instant::now()
            + if kept {
                lim.idle_deadline
            } else {
                lim.head_deadline
            };
        // Once per request: leading blank lines must not restart the clock.
        let mut clock_from_first_byte = kept;
        let mut scan = HeadScan::default();
        let too_large = || {
            refusal(
                431,
                format!(
                    "the request head is over {} bytes or {} header lines\n",
                    lim.max_head, lim.max_headers
                ),
            )
        };
        loop {
            if clock_from_first_byte && !self.pending.is_empty() {
                clock_from_first_byte = false;
                deadline = Instant::now() + lim.head_deadline;
            }
            match scan.advance(&self.pending, lim.max_headers + 1) {
                Scanned::End { head_len, next } => {
                    let parsed = parse_head(&self.pending[..head_len], self.peer, &lim);
                    self.pending.drain(..next);
                    return parsed.map_err(NoHead::Refused);
                }
                Scanned::Blank { skip } => {
                    self.pending.drain(..skip);
                    scan = HeadScan::default();
                    continue;
                }
                Scanned::TooManyLines => return Err(NoHead::Refused(too_large())),
                Scanned::NeedMore => {}
            }
            if self.pending.len() >= lim.max_head {
                return Err(NoHead::Refused(too_large()));
            }
            let now = Instant::now();
            if now >= deadline {
                if self.pending.is_empty() {
                    return Err(NoHead::Quiet);
                }
                return Err(NoHead::Refused(refusal(
                    408,
                    format!(
                        "the request head did not arrive whole within {} s\n",
                        lim.head_deadline.as_secs_f64()
                    ),
                )));
            }
            let step = (deadline - now)
                .min(lim.poll_step)
                .max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(step)).is_err() {
                return Err(NoHead::Quiet);
            }
            let mut chunk = [0u8; 4096];
            let room = lim
                .max_head
                .saturating_sub(self.pending.len())
                .min(chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) if self.pending.is_empty() => return Err(NoHead::Quiet),
                // A half-closed client can still read why.
                Ok(0) => {
                    return Err(NoHead::Refused(refusal(
                        400,
                        "the connection was closed in the middle of the request head\n",
                    )))
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if is_wait(&e) => {}
                Err(_) => return Err(NoHead::Quiet),
            }
        }
    }

    /// Writes `resp`; when the connection is not kept, lingers and lets it
    /// close. False when the client could not be written to.
    fn respond(&mut self, resp: &Response, head_only: bool, keep: bool) -> bool {
        let head = wire_head(resp, keep);
        let body: &[u8] = if head_only || no_body(resp.status) {
            &[]
        } else {
            &resp.body
        };
        let deadline = Instant::now() + self.limits.write_deadline;
        let written = write_parts(
            &mut self.stream,
            &[&head, body],
            deadline,
            self.limits.poll_step,
        );
        if let Err(e) = written {
            debug!("web: writing a response to {}: {e}", self.peer);
            return false;
        }
        if !keep {
            self.linger();
        }
        true
    }

    /// Shuts our side and drops what the client still sends, for at most
    /// [`Limits::linger`], so that the close does not reset a connection
    /// whose client has not read the response yet.
    fn linger(&mut self) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let until = Instant::now() + self.limits.linger;
        let mut scratch = [0u8; 8192];
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// One request and its response; true when the connection goes on.
    fn exchange(&mut self, handler: &dyn Handler, head: Head, last: bool) -> bool {
        let Head {
            req,
            keep_alive,
            expect_continue,
        } = head;
        let head_only = req.method == "HEAD";
        let keep_wanted = keep_alive && !last;
        let admitted = match catch_unwind(AssertUnwindSafe(|| handler.admit(&req))) {
            Ok(a) => a,
            Err(p) => {
                error!(
                    "web: the handler panicked admitting {} {}: {}",
                    req.method,
                    req.path,
                    panic_text(&*p)
                );
                self.respond(&internal_error(), head_only, false);
                return false;
            }
        };
        let allowed = match admitted {
            Ok(n) => n,
            Err(resp) => {
                // Without a body there is nothing left unread, and a 404
                // for a favicon should not cost the browser its connection.
                let keep = keep_wanted && req.content_length == 0 && !resp.wants_close();
                return self.respond(&resp, head_only, keep) && keep;
            }
        };
        if req.content_length > allowed {
            let resp = Response::text(
                413,
                format!(
                    "the request body is {} bytes; {} accepts at most {allowed}\n",
                    req.content_length, req.path
                ),
            );
            self.respond(&resp, head_only, false);
            return false;
        }
        let mut body = Body {
            continue_owed: expect_continue && req.content_length > 0 && self.pending.is_empty(),
            conn: self,
            length: req.content_length,
            remaining: req.content_length,
            waited: Duration::ZERO,
            received: 0,
            cutoff: None,
            failure: None,
        };
        let handled = catch_unwind(AssertUnwindSafe(|| handler.handle(&req, &mut body)));
        let (resp, positioned) = match handled {
            Ok(resp) => (resp, body.finish()),
            Err(p) => {
                error!(
                    "web: the handler panicked answering {} {}: {}",
                    req.method,
                    req.path,
                    panic_text(&*p)
                );
                (internal_error(), false)
            }
        };
        let keep = keep_wanted && positioned && !resp.wants_close();
        self.respond(&resp, head_only, keep) && keep
    }
}

fn internal_error() -> Response {
    Response::text(
        500,
        "internal error in the web interface (see the peer's log)\n",
    )
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// Serves one connection until it closes, breaks a bound, or the client
/// (or the handler) asks to close.
fn serve(mut conn: Conn, handler: &dyn Handler) {
    let most = conn.limits.max_requests_per_connection;
    for n in 0..most {
        let head = match conn.read_head(n > 0) {
            Ok(h) => h,
            Err(NoHead::Quiet) => return,
            Err(NoHead::Refused(r)) => {
                debug!("web: {} from {}: {}", r.status, conn.peer, r.why.trim_end());
                conn.respond(&Response::text(r.status, r.why), false, false);
                return;
            }
        };
        if !conn.exchange(handler, head, n + 1 == most) {
            return;
        }
    }
}

/// A header name or method: an RFC 9110 token.
fn is_token(s: &str) -> bool {
    const PUNCTUATION: &[u8] = b"!#$%&'*+-.^_`|~";
    let allowed = |b: u8| b.is_ascii_alphanumeric() || PUNCTUATION.contains(&b);
    s.bytes().all(allowed) && !s.is_empty()
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Parses a head (request line and header lines, each ending in LF or
/// CRLF) and works out how the body is framed.
fn parse_head(raw: &[u8], peer: SocketAddr, lim: &Limits) -> Result<Head, Refusal> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| refusal(400, "the request head is not UTF-8 text\n"))?;
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(refusal(
            400,
            "the request line must be METHOD TARGET HTTP/1.1, separated by single spaces\n",
        ));
    };
    if !is_token(method) || method.len() > 32 {
        return Err(refusal(400, "the request method is not a valid token\n"));
    }
    if !target.starts_with('/') || target.chars().any(char::is_control) {
        return Err(refusal(
            400,
            "the request target must be a path starting with /\n",
        ));
    }
    let http11 = match version.strip_prefix("HTTP/") {
        Some("1.1") => true,
        Some("1.0") => false,
        Some(_) => return Err(refusal(505, "only HTTP/1.1 and HTTP/1.0 are served here\n")),
        None => return Err(refusal(400, "the request line has no HTTP version\n")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= lim.max_headers {
            return Err(refusal(
                431,
                format!("more than {} header lines\n", lim.max_headers),
            ));
        }
        if line.starts_with([' ', '\t']) {
            return Err(refusal(400, "folded header lines are not accepted\n"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(refusal(400, "a header line has no ':'\n"));
        };
        // A space before the colon is a smuggling trick (RFC 9112 §5.1).
        if !is_token(name) {
            return Err(refusal(400, "a header name is not a valid token\n"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(refusal(400, "a header value holds control characters\n"));
        }
        headers.push((name.to_ascii_lowercase(), value.to_string()));
    }
    let content_length = body_length(method, &headers)?;
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = String::from_utf8(percent_decode(raw_path, false))
        .map_err(|_| refusal(400, "the path is not UTF-8 once percent-decoded\n"))?;
    let query = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
    let any_says = |name: &str, token: &str| {
        headers
            .iter()
            .any(|(n, v)| n == name && has_token(v, token))
    };
    // HTTP/1.0 keep-alive is an old extension; closing is always correct.
    let keep_alive = http11 && !any_says("connection", "close");
    let expect_continue = http11 && any_says("expect", "100-continue");
    Ok(Head {
        req: Request {
            method: method.to_string(),
            path,
            target: target.to_string(),
            query,
            headers,
            peer,
            content_length,
        },
        keep_alive,
        expect_continue,
    })
}

/// The body's length from `Content-Length`. Bodies framed any other way
/// are refused: without a length, where the next request begins is
/// unknown, and chunked uploads are not worth their parser here.
fn body_length(method: &str, headers: &[(String, String)]) -> Result<u64, Refusal> {
    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(refusal(
            411,
            "chunked or otherwise encoded request bodies are not supported; send the body \
             with a Content-Length header instead of Transfer-Encoding\n",
        ));
    }
    let mut length: Option<u64> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refusal(400, "Content-Length is not a number\n"));
        }
        // Too many digits for u64 is over any limit: 413 will say so.
        let n = v.parse::<u64>().unwrap_or(u64::MAX);
        if length.is_some_and(|l| l != n) {
            return Err(refusal(400, "two different Content-Length headers\n"));
        }
        length = Some(n);
    }
    match length {
        Some(n) => Ok(n),
        // A request with neither header has no body (RFC 9112, 6.3): a
        // bodiless POST such as `curl -X POST` is fine. An upload without
        // a length is a mistake worth naming.
        None if method == "PUT" => Err(refusal(
            411,
            "Content-Length required: send the length of the body (an empty body is \
             Content-Length: 0)\n",
        )),
        None => Ok(0),
    }
}

/// `%XX` to the byte it names (a malformed escape stays as it is), and
/// `+` to a space when `plus_is_space`.
fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(if plus_is_space && b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn form_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s, true)).into_owned()
}

/// Statuses whose responses never carry a body.
fn no_body(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Reason phrases of the statuses a handler is likely to use.
const REASONS: &[(u16, &str)] = &[
    (100, "Continue"),
    (200, "OK"),
    (201, "Created"),
    (202, "Accepted"),
    (204, "No Content"),
    (206, "Partial Content"),
    (301, "Moved Permanently"),
    (302, "Found"),
    (303, "See Other"),
    (304, "Not Modified"),
    (307, "Temporary Redirect"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (408, "Request Timeout"),
    (409, "Conflict"),
    (411, "Length Required"),
    (413, "Content Too Large"),
    (415, "Unsupported Media Type"),
    (416, "Range Not Satisfiable"),
    (429, "Too Many Requests"),
    (431, "Request Header Fields Too Large"),
    (500, "Internal Server Error"),
    (501, "Not Implemented"),
    (503, "Service Unavailable"),
    (505, "HTTP Version Not Supported"),
    (507, "Insufficient Storage"),
];

fn reason(status: u16) -> &'static str {
    REASONS
        .iter()
        .find(|(code, _)| *code == status)
        .map_or("Unknown", |(_, phrase)| phrase)
}

/// The status line and headers of `resp`, blank line included.
fn wire_head(resp: &Response, keep: bool) -> Vec<u8> {
    let mut h = String::with_capacity(256);
    let _ = write!(h, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    // HEAD gets the length the body would have had.
    if !no_body(resp.status) {
        let _ = write!(h, "Content-Length: {}\r\n", resp.body.len());
    }
    if !resp.content_type.is_empty() {
        let _ = write!(h, "Content-Type: {}\r\n", clean_value(&resp.content_type));
    }
    let own = |name: &str| {
        resp.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    // Pages show live state: a cached copy would be stale.
    if !own("cache-control") {
        h.push_str("Cache-Control: no-store\r\n");
    }
    h.push_str("X-Content-Type-Options: nosniff\r\n");
    let _ = write!(
        h,
        "Connection: {}\r\n",
        if keep { "keep-alive" } else { "close" }
    );
    for (name, value) in &resp.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        let ours = name.eq_ignore_ascii_case("x-content-type-options");
        if framing || ours || !is_token(name) {
            continue;
        }
        let _ = write!(h, "{name}: {}\r\n", clean_value(value));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// A header value with nothing that could end the line early.
fn clean_value(v: &str) -> String {
    v.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// Writes the parts one after the other within `deadline`, each socket
/// wait at most `step`.
fn write_parts(
    stream: &mut TcpStream,
    parts: &[&[u8]],
    deadline: Instant,
    step: Duration,
) -> io::Result<()> {
    for part in parts {
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not take the response in time",
                ));
            }
            stream.set_write_timeout(Some(left.min(step).max(Duration::from_millis(1))))?;
            match stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fast() -> Limits {
        Limits {
            head_deadline: Duration::from_millis(400),
            idle_deadline: Duration::from_millis(400),
            body_idle: Duration::from_millis(300),
            rate_grace: Duration::from_millis(300),
            min_body_rate: 1024,
            write_deadline: Duration::from_secs(1),
            linger: Duration::from_millis(200),
            poll_step: Duration::from_millis(50),
            ..Limits::default()
        }
    }

    /// FNV-1a, to check a streamed body without keeping it.
    fn fnv(hash: u64, data: &[u8]) -> u64 {
        data.iter().fold(hash, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }
    const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

    #[derive(Default)]
    struct TestHandler {
        handled: AtomicUsize,
    }

    impl Handler for TestHandler {
        fn admit(&self, req: &Request) -> Result<u64, Response> {
            match req.path.as_str() {
                "/forbidden" => Err(Response::text(403, "keep out\n")),
                "/upload" => Ok(8 << 20),
                "/small" => Ok(16),
                "/ignore" => Ok(1 << 20),
                _ => Ok(0),
            }
        }

        fn handle(&self, req: &Request, body: &mut Body<'_>) -> Response {
            self.handled.fetch_add(1, Ordering::SeqCst);
            match req.path.as_str() {
                "/upload" | "/small" => {
                    let mut buf = vec![0u8; 64 << 10];
                    let (mut len, mut hash) = (0u64, FNV_START);
                    loop {
                        match body.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                len += n as u64;
                                hash = fnv(hash, &buf[..n]);
                            }
                            Err(e) => {
                                assert!(body.failed());
                                return Response::text(400, format!("{:?}: {e}", e.kind()));
                            }
                        }
                    }
                    Response::text(200, format!("{len} {hash:016x}"))
                }
                "/ignore" => Response::text(200, "left unread"),
                "/panic" => panic!("the test handler panics on purpose"),
                "/json" => Response::json(201, &serde_json::json!({"ok": true})),
                _ => {
                    let params: Vec<String> =
                        req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    Response::text(
                        200,
                        format!("{} {} {}", req.method, req.path, params.join("&")),
                    )
                    .with_header("X-Test", "yes")
                }
            }
        }
    }

    fn start(limits: Limits) -> (SocketAddr, Arc<TestHandler>) {
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr();
        let handler = Arc::new(TestHandler::default());
        server.spawn_with(handler.clone(), limits).unwrap();
        (addr, handler)
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    struct Client {
        r: BufReader<TcpStream>,
    }

    impl Client {
        fn connect(addr: SocketAddr) -> Client {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            Client {
                r: BufReader::new(s),
            }
        }

        fn send(&mut self, bytes: &[u8]) {
            self.r.get_mut().write_all(bytes).unwrap();
        }

        fn reply(&mut self, head_only: bool) -> Reply {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            let status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("not a status line: {line:?}"));
            let mut headers = Vec::new();
            loop {
                line.clear();
                self.r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (n, v) = l.split_once(':').unwrap();
                headers.push((n.to_string(), v.trim().to_string()));
            }
            let mut reply = Reply {
                status,
                headers,
                body: Vec::new(),
            };
            let len: usize = reply
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            if !head_only {
                reply.body = vec![0; len];
                self.r.read_exact(&mut reply.body).unwrap();
            }
            reply
        }

        fn closed(&mut self) -> bool {
            let mut b = [0u8; 1];
            matches!(self.r.read(&mut b), Ok(0))
        }
    }

    fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
        let mut c = Client::connect(addr);
        c.send(raw);
        c.reply(false)
    }

    #[test]
    fn get_decodes_path_and_query() {
        let (addr, _) = start(fast());
        let r = exchange(
            addr,
            b"GET /echo/a%20b+c?x=1+2&y=%C3%A9&flag&&z=a%3Db HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "GET /echo/a b+c x=1 2&y=é&flag=&z=a=b");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.header("x-test"), Some("yes"));
        let r = exchange(addr, b"GET /json HTTP/1.1\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (201, r#"{"ok":true}"#));
        assert_eq!(r.header("content-type"), Some("application/json"));
        // Unknown methods are the handler's business.
        let r = exchange(addr, b"BREW /pot HTTP/1.1\r\n\r\n");
        assert_eq!(r.text(), "BREW /pot ");
    }

    #[test]
    fn a_put_body_is_streamed_to_the_handler() {
        let (addr, _) = start(fast());
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut c = Client::connect(addr);
        c.send(
            format!(
                "PUT /upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        c.send(&data);
        let r = c.reply(false);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.text(),
            format!("{} {:016x}", data.len(), fnv(FNV_START, &data))
        );
        // The connection is positioned at the next request.
        c.send(b"GET /after HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).text(), "GET /after ");
    }

    #[test]
    fn a_body_without_length_gets_411() {
        let (addr, handler) = start(fast());
        let r = exchange(addr, b"PUT /upload HTTP/1.1\r\n\r\nabc");
        assert_eq!(r.status, 411);
        assert!(r.text().contains("Content-Length required"), "{}", r.text());
        let mut c = Client::connect(addr);
        c.send(b"PUT /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let r = c.reply(false);
        assert_eq!(r.status, 411);
        assert!(r.text().contains("Transfer-Encoding"), "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed());
        assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn too_long_a_body_gets_413_unread_and_admit_can_refuse() {
        let (addr, handler) = start(fast());
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut w = c.try_clone().unwrap();
        // A client that sends its body without waiting for an answer.
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(b"PUT /small HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n");
            let chunk = [b'x'; 16 << 10];
            for _ in 0..16 {
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            r: BufReader::new(c),
        };
        let r = c.reply(false);
        assert_eq!(r.status, 413);
        assert!(r.text().contains("at most 16"), "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
        let _ = writer.join();

        let r = exchange(
            addr,
            b"PUT /forbidden HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!((r.status, r.text().as_str()), (403, "keep out\n"));
        assert_eq!(r.header("connection"), Some("close"));
        // Refused without a body: the connection stays.
        let mut c = Client::connect(addr);
        c.send(b"GET /forbidden HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).status, 403);
        c.send(b"GET /still HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).status, 200);
        assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_huge_head_gets_431() {
        let (addr, _) = start(fast());
        let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 20 << 10));
        raw.extend_from_slice(b"\r\n\r\n");
        let r = exchange(addr, &raw);
        assert_eq!(r.status, 431);
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=bounds::MAX_HEADERS {
            raw.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(exchange(addr, &raw).status, 431);
    }

    #[test]
    fn garbage_gets_400_and_the_server_goes_on() {
        let (addr, handler) = start(fast());
        for bad in [
            &b"\x00\x01\x02\xff\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nName : v\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET /%FF HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"G@T / HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
        ] {
            let r = exchange(addr, bad);
            assert_eq!(
                r.status,
                400,
                "{:?}: {}",
                String::from_utf8_lossy(bad),
                r.text()
            );
        }
        assert_eq!(exchange(addr, b"GET / HTTP/2.0\r\n\r\n").status, 505);
        assert_eq!(handler.handled.load(Ordering::SeqCst), 0);
        assert_eq!(exchange(addr, b"GET /ok HTTP/1.1\r\n\r\n").status, 200);
    }

    #[test]
    fn keep_alive_serves_requests_in_turn_and_close_is_honoured() {
        let (addr, _) = start(fast());
        let mut c = Client::connect(addr);
        // Two at once (pipelined), a HEAD, then bare-LF lines.
        c.send(b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).text(), "GET /one ");
        assert_eq!(c.reply(false).text(), "GET /two ");
        c.send(b"HEAD /three HTTP/1.1\r\n\r\n");
        let r = c.reply(true);
        assert_eq!(r.header("content-length"), Some("12"));
        c.send(b"GET /four HTTP/1.1\nHost: x\n\n");
        assert_eq!(c.reply(false).text(), "GET /four ");
        c.send(b"GET /five HTTP/1.1\r\nConnection: close\r\n\r\n");
        let r = c.reply(false);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed());

        let mut c = Client::connect(addr);
        c.send(b"GET /old HTTP/1.0\r\n\r\n");
        assert_eq!(c.reply(false).header("connection"), Some("close"));
        assert!(c.closed());
    }

    #[test]
    fn the_last_request_allowed_on_a_connection_closes_it() {
        let (addr, _) = start(Limits {
            max_requests_per_connection: 2,
            ..fast()
        });
        let mut c = Client::connect(addr);
        c.send(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).header("connection"), Some("keep-alive"));
        assert_eq!(c.reply(false).header("connection"), Some("close"));
        assert!(c.closed());
    }

    #[test]
    fn a_stalled_head_does_not_block_others_and_gets_408() {
        let (addr, _) = start(fast());
        let mut stalled = Client::connect(addr);
        stalled.send(b"GET /slow HTT");
        let t = Instant::now();
        assert_eq!(exchange(addr, b"GET /quick HTTP/1.1\r\n\r\n").status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        let r = stalled.reply(false);
        assert_eq!(r.status, 408);
        // An idle kept-alive connection is closed without a word.
        let mut idle = Client::connect(addr);
        idle.send(b"GET /a HTTP/1.1\r\n\r\n");
        idle.reply(false);
        assert!(idle.closed());
    }

    #[test]
    fn a_body_that_stops_midway_is_an_error_for_the_handler() {
        let (addr, _) = start(fast());
        // The client stalls.
        let mut c = Client::connect(addr);
        c.send(b"PUT /upload HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
        c.send(&[1u8; 100]);
        let r = c.reply(false);
        assert_eq!(r.status, 400);
        assert!(r.text().starts_with("TimedOut: "), "{}", r.text());
        assert!(r.text().contains("100 of 1000"), "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
        // The client goes away (half-closing, so it can still read).
        let mut c = Client::connect(addr);
        c.send(b"PUT /upload HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
        c.send(&[1u8; 100]);
        c.r.get_ref().shutdown(Shutdown::Write).unwrap();
        let r = c.reply(false);
        assert!(r.text().starts_with("UnexpectedEof: "), "{}", r.text());
    }

    #[test]
    fn a_trickling_body_is_cut_for_its_rate() {
        let (addr, _) = start(Limits {
            min_body_rate: 1 << 20,
            ..fast()
        });
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(b"PUT /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
            for _ in 0..100 {
                if w.write_all(&[7u8; 10]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let t = Instant::now();
        let r = Client {
            r: BufReader::new(s),
        }
        .reply(false);
        assert!(r.text().contains("too slowly"), "{}", r.text());
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    #[test]
    fn an_unread_body_is_drained_when_small_else_the_connection_closes() {
        let (addr, _) = start(fast());
        let mut c = Client::connect(addr);
        c.send(b"POST /ignore HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
        c.send(&[0u8; 1000]);
        let r = c.reply(false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        c.send(b"GET /next HTTP/1.1\r\n\r\n");
        assert_eq!(c.reply(false).text(), "GET /next ");

        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(b"POST /ignore HTTP/1.1\r\nContent-Length: 500000\r\n\r\n");
            let _ = w.write_all(&[0u8; 500_000]);
        });
        let mut c = Client {
            r: BufReader::new(s),
        };
        let r = c.reply(false);
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    }

    #[test]
    fn over_the_caps_connections_get_503() {
        let (addr, _) = start(Limits {
            max_connections: 2,
            ..fast()
        });
        let _a = Client::connect(addr);
        let _b = Client::connect(addr);
        let mut c = Client::connect(addr);
        let r = c.reply(false);
        assert_eq!(r.status, 503);
        assert!(r.text().contains("too many connections"), "{}", r.text());
        assert!(c.closed());

        let (addr, _) = start(Limits {
            max_per_ip: 1,
            ..fast()
        });
        let first = Client::connect(addr);
        let r = Client::connect(addr).reply(false);
        assert_eq!(r.status, 503);
        assert!(r.text().contains("your address"), "{}", r.text());
        // The slot comes back when the first one closes.
        drop(first);
        let t = Instant::now();
        loop {
            let mut c = Client::connect(addr);
            c.send(b"GET /x HTTP/1.1\r\n\r\n");
            if c.reply(false).status == 200 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(1));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn expect_100_continue_is_answered_when_the_body_is_read() {
        let (addr, _) = start(fast());
        let mut c = Client::connect(addr);
        c.send(b"PUT /upload HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(c.reply(false).status, 100);
        c.send(b"hello");
        let r = c.reply(false);
        assert_eq!(r.text(), format!("5 {:016x}", fnv(FNV_START, b"hello")));
        // Refused from the head: no invitation, a final answer at once.
        let mut c = Client::connect(addr);
        c.send(b"PUT /forbidden HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(c.reply(false).status, 403);
    }

    #[test]
    fn a_panicking_handler_gets_500_and_the_server_goes_on() {
        let (addr, _) = start(fast());
        let r = exchange(addr, b"GET /panic HTTP/1.1\r\n\r\n");
        assert_eq!((r.status, r.header("connection")), (500, Some("close")));
        assert_eq!(exchange(addr, b"GET /fine HTTP/1.1\r\n\r\n").status, 200);
    }

    #[test]
    fn bind_errors_say_what_is_wrong() {
        let taken = Server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = taken.local_addr();
        let e = Server::bind(addr).err().unwrap();
        assert!(matches!(e, BindError::InUse { .. }), "{e:?}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        assert!(e.to_string().contains("already in use"), "{e}");
        // TEST-NET-1: never an address of this machine.
        let e = Server::bind("192.0.2.1:0".parse().unwrap()).err().unwrap();
        assert!(matches!(e, BindError::NotLocal { .. }), "{e:?}");
    }

    #[test]
    fn decoding() {
        let cases = [
            ("x+y", "x y"),
            ("%41%42c", "ABc"),
            ("%e2%82%AC+5", "\u{20ac} 5"),
            ("50%+off", "50% off"),
            ("%G1%", "%G1%"),
            ("%80x", "\u{fffd}x"),
        ];
        for (raw, want) in cases {
            assert_eq!(form_decode(raw), want, "{raw}");
        }
        assert_eq!(percent_decode("/a+b%2F..", false), b"/a+b/..");
    }

    #[test]
    fn random_heads_never_panic() {
        let lim = Limits::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let alphabet = b"GET /?%=&+: \r\nHTTP/1.1\t\x00\xc3\xa9\xffContent-Length0123";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let mut raw = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                raw.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse_head(&raw, peer, &lim);
            let mut scan = HeadScan::default();
            let _ = scan.advance(&raw, lim.max_headers);
        }
    }

    #[test]
    fn a_head_is_scanned_once_however_it_is_split() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        let mut scan = HeadScan::default();
        let mut found = None;
        for end in 1..=raw.len() {
            if let Scanned::End { head_len, next } = scan.advance(&raw[..end], 8) {
                found = Some((head_len, next, end));
                break;
            }
        }
        assert_eq!(found, Some((25, 27, 27)));
    }
}
