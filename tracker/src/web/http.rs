//! HTTP/1.x by hand, bounded: reading one request (head, then body) from a
//! connection with deadlines and size caps, and writing one response. No
//! chunked request bodies (a request with `Transfer-Encoding` gets 411: send
//! `Content-Length`), no pipelining beyond one request at a time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::bounds;

/// One parsed request, its body read whole.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoding left to the routes.
    pub path: String,
    /// What followed `?`, raw.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
    /// The client wants the connection kept after the response.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, `+` and percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k) == name).then(|| form_decode(v))
        })
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a
/// byte; a bad escape is kept as it is; invalid UTF-8 becomes U+FFFD.
pub fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Why no request could be read. Each maps to the status the client gets
/// (or to closing quietly).
#[derive(Debug)]
pub enum ReadError {
    /// The connection closed, or stayed idle, before a request began.
    Closed,
    /// The head did not arrive in time (408).
    Timeout,
    /// The head is larger than [`bounds::MAX_HEAD`] or has too many lines (431).
    HeadTooLarge,
    /// Not HTTP (400), with the reason.
    Bad(String),
    /// Not HTTP/1.0 or 1.1 (505).
    Version,
    /// A chunked or otherwise encoded body (411).
    NeedLength,
    /// The body did not arrive in time, or the connection broke (408).
    BodyTimeout,
    /// The body arrived slower than [`bounds::MIN_BODY_RATE`] on average
    /// after [`bounds::RATE_GRACE`] (408).
    BodyTooSlow,
}

impl ReadError {
    /// The status and message sent back, or `None` to close quietly.
    pub fn reply(&self) -> Option<(u16, String)> {
        Some(match self {
            ReadError::Closed => return None,
            ReadError::Timeout => (408, "the request head did not arrive in time".into()),
            ReadError::HeadTooLarge => (
                431,
                format!(
                    "the request head is over {} bytes or {} lines",
                    bounds::MAX_HEAD,
                    bounds::MAX_HEADERS
                ),
            ),
            ReadError::Bad(why) => (400, format!("not an HTTP request: {why}")),
            ReadError::Version => (505, "only HTTP/1.0 and HTTP/1.1 are spoken here".into()),
            ReadError::NeedLength => (
                411,
                "send the body with a Content-Length header (no Transfer-Encoding)".into(),
            ),
            ReadError::BodyTimeout => (408, "the request body did not arrive in time".into()),
            ReadError::BodyTooSlow => (
                408,
                format!(
                    "the request body arrived slower than {} KiB/s; send it faster (or from a \
                     better connection)",
                    bounds::MIN_BODY_RATE >> 10
                ),
            ),
        })
    }
}

/// A connection's reading side: the socket and what was read past the
/// previous request.
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    buf: Vec<u8>,
    /// The socket's read and write timeouts as last set: each is set only
    /// when it changes (two system calls saved per request on a kept-alive
    /// connection, most of what an HTTP announce costs besides its read and
    /// write).
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// The timeout of one socket wait: what is left until `deadline`, at most
/// [`bounds::READ_STEP`] (so deadlines are checked between waits) and at
/// least 1 ms (zero would mean none). `None` once the deadline has passed.
fn step(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| left.min(bounds::READ_STEP).max(Duration::from_millis(1)))
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            stream,
            peer,
            buf: Vec::new(),
            read_timeout: None,
            write_timeout: None,
        }
    }

    fn set_read_timeout(&mut self, t: Duration) -> io::Result<()> {
        if self.read_timeout != Some(t) {
            self.stream.set_read_timeout(Some(t))?;
            self.read_timeout = Some(t);
        }
        Ok(())
    }

    fn set_write_timeout(&mut self, t: Duration) -> io::Result<()> {
        if self.write_timeout != Some(t) {
            self.stream.set_write_timeout(Some(t))?;
            self.write_timeout = Some(t);
        }
        Ok(())
    }

    /// Reads more into `buf` (at most `max` bytes held), waiting until
    /// `deadline`. `Ok(false)` when the peer closed.
    fn fill(&mut self, deadline: Instant, max: usize) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        loop {
            // Each read waits at most until the deadline (and at most the
            // socket's poll step, so a trickle cannot stretch it).
            let Some(wait) = step(deadline) else {
                return Err(io::ErrorKind::TimedOut.into());
            };
            self.set_read_timeout(wait)?;
            let room = max.saturating_sub(self.buf.len()).clamp(1, chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if crate::io_batch::is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next request's head (within [`bounds::HEAD_DEADLINE`] on
    /// a new connection, [`bounds::IDLE_DEADLINE`] on a kept one) and
    /// returns it with the length of the body still to read.
    pub fn read_head(&mut self, first: bool) -> Result<(Request, usize), ReadError> {
        let deadline = Instant::now()
            + if first {
                bounds::HEAD_DEADLINE
            } else {
                bounds::IDLE_DEADLINE
            };
        let mut scan = HeadScan::default();
        let end = loop {
            if let Some(i) = scan.end(&self.buf) {
                break i;
            }
            if self.buf.len() >= bounds::MAX_HEAD {
                return Err(ReadError::HeadTooLarge);
            }
            let was_empty = self.buf.is_empty();
            match self.fill(deadline, bounds::MAX_HEAD) {
                Ok(true) => {}
                Ok(false) if was_empty => return Err(ReadError::Closed),
                Ok(false) => return Err(ReadError::Bad("the connection closed mid-head".into())),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(if self.buf.is_empty() {
                        ReadError::Closed
                    } else {
                        ReadError::Timeout
                    })
                }
                Err(_) => return Err(ReadError::Closed),
            }
        };
        let head = self.buf[..end].to_vec();
        self.buf.drain(..end + 4);
        let req = parse_head(&head, self.peer)?;
        if req.header("transfer-encoding").is_some() {
            return Err(ReadError::NeedLength);
        }
        let length = match content_length(&req.headers)? {
            Some(n) => n,
            None if req.method == "POST" || req.method == "PUT" => {
                return Err(ReadError::NeedLength)
            }
            None => 0,
        };
        Ok((req, length))
    }

    /// Reads `length` bytes of body into `req` within
    /// [`bounds::BODY_DEADLINE`], without a pause over
    /// [`bounds::BODY_IDLE`], and after [`bounds::RATE_GRACE`] at
    /// [`bounds::MIN_BODY_RATE`] on average at least, first sending
    /// `100 Continue` when the client waits for it. The caller checked
    /// `length` against its limit. The body is read into one buffer of
    /// exactly its length, and handed over without a copy.
    pub fn read_body(&mut self, req: &mut Request, length: usize) -> Result<(), ReadError> {
        if length > self.buf.len()
            && req
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            let _ = self.set_write_timeout(bounds::READ_STEP);
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.buf
            .reserve_exact(length.saturating_sub(self.buf.len()));
        let start = Instant::now();
        let deadline = start + bounds::BODY_DEADLINE;
        let mut last_progress = start;
        let already = self.buf.len().min(length);
        while self.buf.len() < length {
            let now = Instant::now();
            let received = self.buf.len().min(length) - already;
            if too_slow(received, now.saturating_duration_since(start)) {
                return Err(ReadError::BodyTooSlow);
            }
            let idle_end = last_progress + bounds::BODY_IDLE;
            if now >= deadline || now >= idle_end {
                return Err(ReadError::BodyTimeout);
            }
            // Back at least every READ_STEP, to check the rate.
            let step = deadline.min(idle_end).min(now + bounds::READ_STEP);
            match self.fill(step, length) {
                Ok(true) => last_progress = Instant::now(),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                _ => return Err(ReadError::BodyTimeout),
            }
        }
        req.body = if self.buf.len() == length {
            std::mem::take(&mut self.buf)
        } else {
            // What follows the body (a pipelined request) stays; the body
            // keeps the buffer it was read into.
            let rest = self.buf.split_off(length);
            std::mem::replace(&mut self.buf, rest)
        };
        Ok(())
    }
}

/// Whether `received` body bytes after `elapsed` are below
/// [`bounds::MIN_BODY_RATE`] on average, once [`bounds::RATE_GRACE`] is over.
pub fn too_slow(received: usize, elapsed: Duration) -> bool {
    elapsed >= bounds::RATE_GRACE
        && (received as u128) * 1000 < (bounds::MIN_BODY_RATE as u128) * elapsed.as_millis()
}

/// Finds the blank line that ends a request head, resuming where the
/// previous search stopped (3 bytes back, in case `\r\n\r\n` was cut
/// between two reads): linear in the head however it is split.
#[derive(Default)]
struct HeadScan {
    from: usize,
    /// Bytes looked at so far (for the tests).
    examined: usize,
}

impl HeadScan {
    fn end(&mut self, buf: &[u8]) -> Option<usize> {
        let from = self.from.min(buf.len());
        self.examined += buf.len() - from;
        let found = find(&buf[from..], b"\r\n\r\n").map(|i| from + i);
        self.from = buf.len().saturating_sub(3);
        found
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The request line and headers.
pub fn parse_head(head: &[u8], peer: SocketAddr) -> Result<Request, ReadError> {
    let text =
        std::str::from_utf8(head).map_err(|_| ReadError::Bad("the head is not text".into()))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(
            "the request line is not METHOD TARGET VERSION".into(),
        ));
    };
    if !is_token(method) || method.len() > 16 {
        return Err(ReadError::Bad("bad method".into()));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ReadError::Bad(
            "the target must be a path starting with /".into(),
        ));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(ReadError::Version),
        _ => return Err(ReadError::Bad("no HTTP version".into())),
    };
    let mut headers = Vec::new();
    for l in lines {
        if headers.len() >= bounds::MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(ReadError::Bad("a header line has no ':'".into()));
        };
        if !is_token(name) {
            return Err(ReadError::Bad("bad header name".into()));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let conn = headers
        .iter()
        .find(|(n, _)| n == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    let keep_alive = match conn.as_deref() {
        Some(v) if v.contains("close") => false,
        Some(v) if v.contains("keep-alive") => true,
        _ => http11,
    };
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        peer,
        keep_alive,
    })
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, ReadError> {
    let mut found: Option<usize> = None;
    for (n, v) in headers {
        if n != "content-length" {
            continue;
        }
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadError::Bad("Content-Length is not a number".into()));
        }
        // Anything past usize is over every limit anyway.
        let n = v.parse::<usize>().unwrap_or(usize::MAX);
        if found.is_some_and(|f| f != n) {
            return Err(ReadError::Bad(
                "two different Content-Length headers".into(),
            ));
        }
        found = Some(n);
    }
    Ok(found)
}

/// A response, written whole with `Content-Length`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Bodies up to this size go out in the same write as the head (one system
/// call and one TCP segment for a small answer such as an announce).
const JOIN_BODY: usize = 16 << 10;

impl Conn {
    /// Writes `resp` (without its body for `HEAD`), within
    /// [`bounds::WRITE_DEADLINE`].
    pub fn write_response(
        &mut self,
        resp: &Response,
        head_only: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: {}\r\n",
            resp.status,
            reason(resp.status),
            resp.content_type,
            resp.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (n, v) in &resp.headers {
            // Values are ours; a stray line break would split the head.
            let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let deadline = Instant::now() + bounds::WRITE_DEADLINE;
        let body: &[u8] = if head_only { &[] } else { &resp.body };
        if body.len() <= JOIN_BODY {
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            self.write_until(&all, deadline)?;
        } else {
            self.write_until(head.as_bytes(), deadline)?;
            self.write_until(body, deadline)?;
        }
        self.stream.flush()
    }

    fn write_until(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        while !data.is_empty() {
            let Some(wait) = step(deadline) else {
                return Err(io::ErrorKind::TimedOut.into());
            };
            self.set_write_timeout(wait)?;
            match self.stream.write(&data[..data.len().min(64 << 10)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if crate::io_batch::is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%2Fd"), "a b c/d");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%C3%A9"), "é");
        assert_eq!(form_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn heads_parse_and_garbage_does_not() {
        let r = parse_head(
            b"GET /api/swarms?q=a+b HTTP/1.1\r\nHost: x\r\nConnection: close",
            peer(),
        )
        .unwrap();
        assert_eq!(r.path, "/api/swarms");
        assert_eq!(r.param("q").as_deref(), Some("a b"));
        assert_eq!(r.header("host"), Some("x"));
        assert!(!r.keep_alive);
        assert!(parse_head(b"GET / HTTP/1.0", peer()).is_ok_and(|r| !r.keep_alive));
        for bad in [
            &b"\x00\x01\x02"[..],
            b"GET / HTTP/1.1 extra",
            b"GET nopath HTTP/1.1",
            b"GET / HTTP/1.1\r\nno colon",
            b"G(T / HTTP/1.1",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert!(
                matches!(parse_head(bad, peer()), Err(ReadError::Bad(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0", peer()),
            Err(ReadError::Version)
        ));
        let h = vec![("content-length".to_string(), "12".to_string()); 2];
        assert_eq!(content_length(&h).unwrap(), Some(12));
        let h = vec![
            ("content-length".to_string(), "12".to_string()),
            ("content-length".to_string(), "13".to_string()),
        ];
        assert!(content_length(&h).is_err());
        let h = vec![("content-length".to_string(), "-1".to_string())];
        assert!(content_length(&h).is_err());
    }

    #[test]
    fn a_head_fed_one_byte_at_a_time_is_found_in_linear_time() {
        let head = b"POST /api/torrents HTTP/1.1\r\nHost: a:1\r\nContent-Length: 3\r\n\r\nabc";
        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let mut scan = HeadScan::default();
        let mut buf = Vec::new();
        let mut found = None;
        for &b in head.iter() {
            buf.push(b);
            if let Some(i) = scan.end(&buf) {
                found = Some((i, buf.len()));
                break;
            }
        }
        // Found as soon as its last byte came, at the right place.
        assert_eq!(found, Some((end, end + 4)));
        // Each byte looked at about once (searching from byte 0 after every
        // read would look at n²/2 of them).
        assert!(scan.examined <= 4 * (end + 4), "{}", scan.examined);
        let req = parse_head(&buf[..end], peer()).unwrap();
        assert_eq!(req.header("content-length"), Some("3"));
    }

    #[test]
    fn a_head_sent_one_byte_at_a_time_over_a_socket_is_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            for b in b"GET /api/swarms?q=x HTTP/1.1\r\nHost: h:2\r\n\r\nGET / HTTP/1.1\r\n\r\n" {
                s.write_all(&[*b]).unwrap();
            }
            s
        });
        let (stream, peer) = listener.accept().unwrap();
        let mut conn = Conn::new(stream, peer);
        let (req, len) = conn.read_head(true).unwrap();
        assert_eq!((req.path.as_str(), len), ("/api/swarms", 0));
        assert_eq!(req.header("host"), Some("h:2"));
        let (req, _) = conn.read_head(false).unwrap();
        assert_eq!(req.path, "/");
        drop(writer.join().unwrap());
    }

    #[test]
    fn the_body_rate_is_checked_after_the_grace() {
        let s = Duration::from_secs(1);
        assert!(!too_slow(0, bounds::RATE_GRACE - Duration::from_millis(1)));
        assert!(too_slow(0, bounds::RATE_GRACE));
        let at = 6 * s;
        assert!(too_slow(6 * bounds::MIN_BODY_RATE - 1, at));
        assert!(!too_slow(6 * bounds::MIN_BODY_RATE, at));
    }

    #[test]
    fn a_body_is_handed_over_and_what_follows_it_kept() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n")
            .unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let mut conn = Conn::new(stream, peer);
        let (mut req, len) = conn.read_head(true).unwrap();
        conn.read_body(&mut req, len).unwrap();
        assert_eq!(req.body, b"hello");
        let (req, _) = conn.read_head(false).unwrap();
        assert_eq!(req.path, "/y");
        // Exactly the body: the buffer itself is handed over.
        c.write_all(b"POST /z HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
            .unwrap();
        let (mut req, len) = conn.read_head(false).unwrap();
        c.write_all(b"abc").unwrap();
        conn.read_body(&mut req, len).unwrap();
        assert_eq!(req.body, b"abc");
        assert!(conn.buf.is_empty());
    }
}
