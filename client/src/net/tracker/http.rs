//! The HTTP tracker client: one `GET /announce` (BEP 3) per call, compact
//! peers (BEP 23) and `peers6` (BEP 7) read by `common::http_tracker`.
//!
//! A small HTTP/1.0 client of its own rather than ureq: the connection must
//! leave from the peer's `--bind` address (an HTTP tracker hands out the
//! source address of the connection), which ureq cannot choose. Plain
//! `http://` only, one request per connection (`Connection: close`), no
//! redirects, no proxy; [`HTTP_TIMEOUT`] for the whole exchange, at most
//! [`MAX_HEAD`] bytes of head and [`MAX_REPLY`] of body.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use minitorrent_common::http_tracker::{AnnounceRequest, AnnounceResponse, ReplyError};
use socket2::{Domain, Socket, Type};

use crate::net::trace;
use crate::net::tracker::bep15::{AnnounceArgs, AnnounceReply};

/// The whole announce: connect, send, read the reply.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// A reply body longer than this is an error (200 compact peers take
/// 1.2 kB; 200 peer dictionaries about 15 kB).
pub const MAX_REPLY: usize = 1 << 20;
/// The status line and headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Peers asked for in each announce (the tracker may cap it).
pub const NUMWANT: usize = 50;
/// Peers taken from one reply, whatever the tracker sent.
pub const MAX_PEERS_PER_REPLY: usize = 200;

/// Why an HTTP announce failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpTrackerError {
    #[error("HTTP tracker {url} is unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("HTTP tracker {url} answered HTTP {status}{}", snippet(.body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("HTTP tracker {url} refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("HTTP tracker {url} sent a bad reply: {why}")]
    BadReply { url: String, why: String },
}

fn snippet(body: &str) -> String {
    let t: String = body.trim().chars().take(120).collect();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// One HTTP tracker, as its announce URL is written (path and query kept:
/// a passkey in the query goes with every announce).
pub struct HttpClient {
    url: String,
    /// Where connections leave from (`--bind`); unspecified: any.
    local: IpAddr,
    /// For the whole exchange: [`HTTP_TIMEOUT`], or less (a farewell).
    pub timeout: Duration,
}

/// The parts of an `http://` URL a request needs.
pub(super) struct Target {
    /// As written, for the `Host` header.
    host_header: String,
    pub(super) host: String,
    pub(super) port: u16,
    /// Path and query, at least `/`.
    path: String,
}

pub(super) fn target(url: &str) -> Option<Target> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), 80),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some(Target {
        host_header: hostport.to_string(),
        host,
        port,
        path,
    })
}

/// What went wrong on the way, for [`HttpTrackerError::Unreachable`].
type Why = String;

impl HttpClient {
    pub fn new(url: &str, local: IpAddr) -> HttpClient {
        HttpClient {
            url: url.to_string(),
            local,
            timeout: HTTP_TIMEOUT,
        }
    }

    /// The announce URL with `a`'s query added (after the URL's own query,
    /// if it has one).
    pub fn query_url(&self, a: &AnnounceArgs) -> String {
        let q = request(a).to_query();
        let base = self.url.split('#').next().unwrap_or(&self.url);
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{q}&key={:08x}", a.key)
    }

    pub fn announce(&self, a: &AnnounceArgs) -> Result<AnnounceReply, HttpTrackerError> {
        let full = self.query_url(a);
        let shown = shown_url(&self.url);
        trace::tracker_http(&shown, true, || request(a).summary());
        let (status, body) = self
            .get(&full)
            .map_err(|why| HttpTrackerError::Unreachable {
                url: shown.clone(),
                why,
            })?;
        if status != 200 {
            // A failure reason may still come with another status.
            if let Err(ReplyError::Failure(reason)) = AnnounceResponse::decode(&body) {
                return Err(HttpTrackerError::Refused { url: shown, reason });
            }
            return Err(HttpTrackerError::Status {
                url: shown,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        let r = AnnounceResponse::decode(&body).map_err(|e| match e {
            ReplyError::Failure(reason) => HttpTrackerError::Refused {
                url: shown.clone(),
                reason,
            },
            e => HttpTrackerError::BadReply {
                url: shown.clone(),
                why: e.to_string(),
            },
        })?;
        trace::tracker_http(&shown, false, || r.summary());
        let secs = |n: u32| Duration::from_secs(u64::from(n));
        Ok(AnnounceReply {
            interval: secs(r.interval),
            min_interval: r.min_interval.map(secs),
            seeders: r.complete,
            leechers: r.incomplete,
            peers: r
                .peers
                .into_iter()
                .take(MAX_PEERS_PER_REPLY)
                .map(|p| p.addr)
                .collect(),
        })
    }

    /// One `GET`: the status and the body.
    fn get(&self, url: &str) -> Result<(u16, Vec<u8>), Why> {
        let t = target(url).ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
        let deadline = Instant::now() + self.timeout.min(HTTP_TIMEOUT);
        let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot look up {}: {e}", t.host))?
            .collect();
        let mut last = format!("{} has no address", t.host);
        for addr in addrs {
            match self.exchange(addr, &t, deadline) {
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(last)
    }

    fn exchange(
        &self,
        addr: SocketAddr,
        t: &Target,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), Why> {
        let left = || {
            let d = deadline.saturating_duration_since(Instant::now());
            if d.is_zero() {
                Err(format!(
                    "no reply within {:.1} s",
                    self.timeout.as_secs_f64()
                ))
            } else {
                Ok(d)
            }
        };
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        if !self.local.is_unspecified() && self.local.is_ipv4() == addr.is_ipv4() {
            sock.bind(&SocketAddr::new(self.local, 0).into())
                .map_err(|e| format!("cannot send from {}: {e}", self.local))?;
        }
        sock.connect_timeout(&addr.into(), left()?)
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let mut s: TcpStream = sock.into();
        let req = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: {}\r\nAccept-Encoding: identity\r\n\
             Connection: close\r\n\r\n",
            t.path,
            t.host_header,
            crate::core::shared::CLIENT_NAME
        );
        s.set_write_timeout(Some(left()?))
            .and_then(|()| s.write_all(req.as_bytes()))
            .map_err(|e| format!("sending to {addr}: {e}"))?;
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            s.set_read_timeout(Some(left()?))
                .map_err(|e| format!("reading from {addr}: {e}"))?;
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() > MAX_HEAD + MAX_REPLY {
                        return Err(format!("the reply is longer than {MAX_REPLY} bytes"));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "no reply within {:.1} s",
                        self.timeout.as_secs_f64()
                    ))
                }
                Err(e) => return Err(format!("reading from {addr}: {e}")),
            }
        }
        parse_reply(&got)
    }
}

/// The status and body of a whole HTTP/1.x reply.
fn parse_reply(got: &[u8]) -> Result<(u16, Vec<u8>), Why> {
    let end = got
        .windows(4)
        .take(MAX_HEAD)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            if got.is_empty() {
                "the connection closed without a reply".to_string()
            } else {
                "not an HTTP reply (no end of headers)".to_string()
            }
        })?;
    let head = String::from_utf8_lossy(&got[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next());
    let status: u16 = match (
        version.starts_with("HTTP/1."),
        code.and_then(|c| c.parse().ok()),
    ) {
        (true, Some(c)) => c,
        _ => return Err(format!("not an HTTP reply: {status_line:?}")),
    };
    let mut body = got[end + 4..].to_vec();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && !v.eq_ignore_ascii_case("identity") {
            return Err(format!("a {v} reply to an HTTP/1.0 request"));
        }
        if k.eq_ignore_ascii_case("content-length") {
            let n: usize = v
                .parse()
                .map_err(|_| format!("a bad Content-Length: {v:?}"))?;
            if n > body.len() {
                return Err(format!(
                    "the reply was cut short ({} of {n} bytes)",
                    body.len()
                ));
            }
            body.truncate(n);
        }
    }
    if body.len() > MAX_REPLY {
        return Err(format!("the reply is longer than {MAX_REPLY} bytes"));
    }
    Ok((status, body))
}

/// An announce URL as people are shown it (logs, errors, status): its query
/// (which may hold a personal passkey) left out.
pub fn shown_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

fn request(a: &AnnounceArgs) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        port: a.port,
        uploaded: a.uploaded,
        downloaded: a.downloaded,
        left: a.left,
        event: a.event,
        numwant: Some(NUMWANT),
        compact: true,
        no_peer_id: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_a_request_needs() {
        let t = target("http://10.0.0.1:8080/announce?passkey=x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.1", 8080));
        assert_eq!(t.path, "/announce?passkey=x");
        assert_eq!(t.host_header, "10.0.0.1:8080");
        let t = target("http://tracker.example/announce").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("tracker.example", 80));
        let t = target("http://[::1]:6969?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 6969, "/?x=1")
        );
        assert!(target("http://:80/").is_none());
        assert!(target("http://h:0/").is_none());
        assert!(target("http://h:99999/").is_none());
        assert!(target("udp://h:1").is_none());
    }

    #[test]
    fn the_query_follows_the_urls_own() {
        let args = AnnounceArgs {
            info_hash: minitorrent_common::metainfo::InfoHash([0xab; 20]),
            peer_id: *b"-MN0100-abcdefghijkl",
            port: 6881,
            downloaded: 1,
            uploaded: 2,
            left: 3,
            event: minitorrent_common::udp_tracker::Event::Started,
            key: 0x1234,
        };
        let any = IpAddr::from([0, 0, 0, 0]);
        let q = HttpClient::new("http://h/announce?passkey=abc", any).query_url(&args);
        assert!(
            q.starts_with("http://h/announce?passkey=abc&info_hash=%AB"),
            "{q}"
        );
        assert!(q.ends_with("&key=00001234"), "{q}");
        assert!(q.contains("&event=started") && q.contains("&left=3"), "{q}");
        let q = HttpClient::new("http://h/announce", any).query_url(&args);
        assert!(q.starts_with("http://h/announce?info_hash="), "{q}");
    }

    #[test]
    fn replies_are_read_strictly() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        assert_eq!(parse_reply(ok).unwrap(), (200, b"hello".to_vec()));
        let no_len = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\ngone";
        assert_eq!(parse_reply(no_len).unwrap(), (404, b"gone".to_vec()));
        for bad in [
            &b""[..],
            b"garbage",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + MAX_REPLY + 1, b'x');
        assert!(parse_reply(&big).is_err());
        let mut long_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        long_head.resize(MAX_HEAD + 100, b'a');
        long_head.extend_from_slice(b"\r\n\r\n");
        assert!(parse_reply(&long_head).is_err());
    }
}
