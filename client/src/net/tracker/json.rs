//! Talking to the minitorrent tracker: JSON datagrams over UDP (the shared
//! `tracker_proto` codecs), one request and one reply matched by `tid`,
//! retried with a doubling timeout, then a clear "unreachable" error.
//!
//! The client keeps the tracker's latest address token (handed out in every
//! `OK` and in the `token` `ERROR`) and sends it with every request; when
//! the tracker answers `token` (a reply over 3 times the request, for an
//! address that has not proved itself), it sends the request once more with
//! the new token, so callers never see it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{
    ErrorCode, FileRef, Reply, Request, Token, MAX_DATAGRAM_SIZE, MAX_REPLY_SIZE,
};

use crate::net::trace;

/// Default tracker when neither `--tracker` nor the torrent names one.
pub const DEFAULT_TRACKER: &str = "127.0.0.1:6969";
const TRIES: u32 = 4;
/// EXIT is sent on the way out: if the tracker is gone too (Ctrl-C in a
/// terminal stops both), the user should not wait the full retry schedule.
const EXIT_TRIES: u32 = 2;
const FIRST_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a `STATS` waits for its `OK` (it is sent once).
const STATS_TIMEOUT: Duration = Duration::from_millis(500);
/// The most one file of a `FILES` reply can take: a 255-character name
/// written with 6-byte escapes, plus the other fields. A reply shorter than
/// [`MAX_REPLY_SIZE`] by more than this was not cut short.
const MAX_FILE_ENTRY: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error(
        "tracker {addr} is unreachable: no answer after {tries} tries; is \
         minitorrent-tracker running at that address? (--tracker HOST:PORT names another)"
    )]
    Unreachable { addr: SocketAddr, tries: u32 },
    #[error("tracker {addr} says {code}: {message}")]
    Refused {
        addr: SocketAddr,
        code: ErrorCode,
        message: String,
    },
    #[error("tracker {addr} sent a bad reply: {why}")]
    BadReply { addr: SocketAddr, why: String },
    #[error("tracker {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("tracker address {given:?}: {why}")]
    BadAddress {
        given: String,
        #[source]
        why: AddressError,
    },
}

/// Why a tracker address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("only udp:// trackers (or HOST[:PORT]) are supported here")]
    NotUdp,
    #[error(
        "an HTTP tracker has no file names and takes only announces: searches and downloads \
         by name need a minitorrent tracker (HOST[:PORT] or udp://HOST:PORT); an HTTP tracker \
         serves `seed`, `share` and `get` of a .torrent, a magnet link or an info hash"
    )]
    HttpHere,
    #[error(
        "https:// trackers are not supported (minitorrent speaks http://, udp:// and its own \
         JSON protocol); use the tracker's http:// or udp:// address"
    )]
    Https,
    #[error("no host: give HOST, HOST:PORT or udp://HOST:PORT")]
    NoHost,
    #[error("{0:?} is not a host name or an IP address")]
    BadHost(String),
    #[error("{0:?} is not a port number (1 to 65535; leave it out for {DEFAULT_TRACKER_PORT})")]
    BadPort(String),
    #[error(transparent)]
    Resolve(io::Error),
    #[error("no address")]
    NoAddress,
}

impl TrackerError {
    /// The tracker's `ERROR` code, when it refused.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            TrackerError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The port of a tracker given without one (`--tracker HOST`, `udp://HOST`).
pub const DEFAULT_TRACKER_PORT: u16 = 6969;

/// `udp://host[:port][/announce]` or `host[:port]` → a socket address; a
/// missing port means [`DEFAULT_TRACKER_PORT`]. Host names are looked up
/// (an IPv4 address preferred).
pub fn resolve(tracker: &str) -> Result<SocketAddr, TrackerError> {
    let bad = |why| TrackerError::BadAddress {
        given: tracker.into(),
        why,
    };
    let (host, port) = split_tracker(tracker).map_err(bad)?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| bad(AddressError::Resolve(e)))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| bad(AddressError::NoAddress))
}

/// The host and port of a tracker address, without looking the host up:
/// `udp://` and a path after the port are dropped, an IPv6 address may be
/// bracketed (`[::1]:7000`) or bare (`::1`), and a missing port is
/// [`DEFAULT_TRACKER_PORT`].
pub fn split_tracker(tracker: &str) -> Result<(String, u16), AddressError> {
    let t = tracker.trim();
    let rest = t.strip_prefix("udp://").unwrap_or(t);
    if rest.starts_with("http://") {
        return Err(AddressError::HttpHere);
    }
    if rest.contains("://") {
        return Err(AddressError::NotUdp);
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.is_empty() {
        return Err(AddressError::NoHost);
    }
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(AddressError::BadPort("0".into()));
        }
        return Ok((a.ip().to_string(), a.port()));
    }
    // A bare IPv6 address: its colons are not a port separator.
    if let Ok(ip) = hostport.parse::<std::net::Ipv6Addr>() {
        return Ok((ip.to_string(), DEFAULT_TRACKER_PORT));
    }
    if let Some(inner) = hostport.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => Ok((ip.to_string(), DEFAULT_TRACKER_PORT)),
            Err(_) => Err(AddressError::BadHost(hostport.into())),
        };
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| AddressError::BadPort(port.into()))?;
            (host, port)
        }
        None => (hostport, DEFAULT_TRACKER_PORT),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !host_ok {
        return Err(AddressError::BadHost(host.into()));
    }
    Ok((host.to_string(), port))
}

pub use minitorrent_common::tracker_proto::{FileInfo as RegisterFile, FileSummary, PeerEntry};

/// A `PEERS` reply.
#[derive(Debug, Clone)]
pub struct PeersReply {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
    pub peers: Vec<PeerEntry>,
}

/// What the tracker hands out in its OK to REGISTER or HEARTBEAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    pub interval: Duration,
    pub timeout: Duration,
    /// Seconds between the `STATS` the tracker wants; 0 for none (an idle
    /// swarm, or a tracker that does not know `STATS`).
    pub stats_every: u32,
    /// The tracker's web page, where the `.torrent`s of seeded files are
    /// published (`publish`); `None` when it has none.
    pub web: Option<String>,
}

impl Timers {
    /// The fields of an `OK`; `None` for any other reply.
    fn of(reply: Reply) -> Result<Timers, Reply> {
        match reply {
            Reply::Ok {
                interval,
                timeout,
                stats_every,
                web,
                ..
            } => Ok(Timers {
                interval: Duration::from_secs(u64::from(interval.max(1))),
                timeout: Duration::from_secs(u64::from(timeout.max(1))),
                stats_every,
                web,
            }),
            other => Err(other),
        }
    }
}

pub struct TrackerClient {
    sock: UdpSocket,
    addr: SocketAddr,
    local: SocketAddr,
    tid: u32,
    tries: u32,
    first_timeout: Duration,
    /// Bytes of the last reply matched to a request.
    last_reply_len: usize,
    /// Leave an `OK` reply out of `--trace` (for `STATS`, which come every
    /// second: the request's line is enough).
    quiet_ok: bool,
    /// The latest address token the tracker handed out, sent with every
    /// request (one per tracker: a client talks to one).
    token: Option<Token>,
}

impl TrackerClient {
    pub fn new(addr: SocketAddr) -> Result<TrackerClient, TrackerError> {
        let any: IpAddr = if addr.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        TrackerClient::from_ip(addr, any)
    }

    /// A client whose datagrams leave from `local` (the address the peer
    /// listens on), so the address the tracker hands out is one the peer
    /// accepts connections on. An unspecified `local`, or one of the other
    /// address family, lets the system choose.
    pub fn from_ip(addr: SocketAddr, local: IpAddr) -> Result<TrackerClient, TrackerError> {
        let io = |source| TrackerError::Io { addr, source };
        let local = if local.is_unspecified() || local.is_ipv4() != addr.is_ipv4() {
            if addr.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            }
        } else {
            local
        };
        let sock = UdpSocket::bind(SocketAddr::new(local, 0)).map_err(io)?;
        sock.connect(addr).map_err(io)?;
        let local = sock.local_addr().map_err(io)?;
        Ok(TrackerClient {
            sock,
            addr,
            local,
            tid: fastrand::u32(1..1 << 30),
            tries: TRIES,
            first_timeout: FIRST_TIMEOUT,
            last_reply_len: 0,
            quiet_ok: false,
            token: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn bad(&self, why: impl Into<String>) -> TrackerError {
        TrackerError::BadReply {
            addr: self.addr,
            why: why.into(),
        }
    }

    /// The latest address token, to hand to another client of the same
    /// tracker (a token is for the IP, not the socket).
    pub fn token(&self) -> Option<Token> {
        self.token
    }

    /// Starts with `token` (from the session's tracker thread), so that a
    /// short-lived client pays no extra round trip for a large reply.
    pub fn with_token(mut self, token: Option<Token>) -> TrackerClient {
        self.token = token;
        self
    }

    fn next_tid(&mut self) -> u32 {
        self.tid = self.tid.wrapping_add(1).max(1);
        self.tid
    }

    /// Sends `req` with the token and waits for the reply with the same
    /// `tid`, retrying with a doubling timeout. An `ERROR` reply becomes
    /// `Refused`. A `token` `ERROR` that hands out a new token (ours was
    /// missing, expired, or from before the tracker restarted) is answered
    /// by sending `req` once more with it.
    fn call(&mut self, req: Request) -> Result<Reply, TrackerError> {
        let sent_with = self.token;
        match self.call_once(&req) {
            Err(e) if e.code() == Some(&ErrorCode::Token) && self.token != sent_with => {
                log::debug!(
                    "tracker {}: {} needs an address token; sending it again with one",
                    self.addr,
                    req.type_name()
                );
                self.call_once(&req)
            }
            r => r,
        }
    }

    fn call_once(&mut self, req: &Request) -> Result<Reply, TrackerError> {
        let tid = req.tid();
        let bytes = req.encode_with_token(self.token);
        let mut timeout = self.first_timeout;
        let mut buf = vec![0u8; MAX_DATAGRAM_SIZE + 1];
        for _ in 0..self.tries {
            trace::tracker(self.local, self.addr, || {
                req.summary_noting(self.token.map(|_| "+token"))
            });
            let deadline = Instant::now() + timeout;
            if let Err(e) = self.sock.send(&bytes) {
                if e.kind() != io::ErrorKind::ConnectionRefused {
                    return Err(TrackerError::Io {
                        addr: self.addr,
                        source: e,
                    });
                }
            }
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let _ = self.sock.set_read_timeout(Some(left));
                let n = match self.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        // Nobody listens (yet): wait out this try.
                        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(TrackerError::Io {
                            addr: self.addr,
                            source: e,
                        })
                    }
                };
                let (reply, token) = match Reply::decode_with_token(&buf[..n]) {
                    Ok(r) => r,
                    Err(e) => {
                        log::debug!("tracker {}: undecodable datagram ignored: {e}", self.addr);
                        continue;
                    }
                };
                // An ERROR without a tid answers a request the tracker could
                // not even read; the socket is connected and one request is in
                // flight, so it is ours, and better shown than retried.
                let unreadable = matches!(reply, Reply::Error { tid: None, .. });
                if reply.tid() != Some(tid) && !unreadable {
                    continue;
                }
                if token.is_some() {
                    self.token = token;
                }
                if !(self.quiet_ok && matches!(reply, Reply::Ok { .. })) {
                    trace::tracker(self.addr, self.local, || reply.summary());
                }
                self.last_reply_len = n;
                if let Reply::Error { code, message, .. } = reply {
                    return Err(TrackerError::Refused {
                        addr: self.addr,
                        code,
                        message,
                    });
                }
                return Ok(reply);
            }
            timeout *= 2;
        }
        Err(TrackerError::Unreachable {
            addr: self.addr,
            tries: self.tries,
        })
    }

    fn unexpected(&self, r: &Reply, wanted: &str) -> TrackerError {
        self.bad(format!("expected {wanted}, got {}", r.type_name()))
    }

    pub fn register(
        &mut self,
        peer_id: &str,
        port: u16,
        files: &[RegisterFile],
    ) -> Result<Timers, TrackerError> {
        let tid = self.next_tid();
        let r = self.call(Request::Register {
            tid,
            peer_id: peer_id.to_string(),
            port,
            files: files.to_vec(),
        })?;
        Timers::of(r).map_err(|other| self.unexpected(&other, "OK"))
    }

    /// HEARTBEAT: what the tracker's `OK` says (`stats_every`, `web`), or
    /// `None` when the tracker forgot us (re-REGISTER).
    pub fn heartbeat(&mut self, peer_id: &str) -> Result<Option<Timers>, TrackerError> {
        let tid = self.next_tid();
        match self.call(Request::Heartbeat {
            tid,
            peer_id: peer_id.to_string(),
        }) {
            Ok(r) => Timers::of(r)
                .map(Some)
                .map_err(|other| self.unexpected(&other, "OK")),
            Err(e) if e.code() == Some(&ErrorCode::UnknownPeer) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One `STATS`, sent once (a lost one is not worth a retry: the next
    /// comes a second later); returns the `stats_every` of the `OK`. Only
    /// the request shows in `--trace`, and an `OK` does not.
    pub fn stats(
        &mut self,
        peer_id: &str,
        files: Vec<minitorrent_common::tracker_proto::StatsFile>,
    ) -> Result<u32, TrackerError> {
        let tid = self.next_tid();
        let (tries, first) = (self.tries, self.first_timeout);
        self.tries = 1;
        self.first_timeout = STATS_TIMEOUT;
        self.quiet_ok = true;
        let reply = self.call(Request::Stats {
            tid,
            peer_id: peer_id.to_string(),
            files,
        });
        (self.tries, self.first_timeout, self.quiet_ok) = (tries, first, false);
        match reply? {
            Reply::Ok { stats_every, .. } => Ok(stats_every),
            other => Err(self.unexpected(&other, "OK")),
        }
    }

    pub fn exit(&mut self, peer_id: &str) -> Result<(), TrackerError> {
        let tid = self.next_tid();
        let tries = self.tries;
        self.tries = EXIT_TRIES.min(tries);
        let reply = self.call(Request::Exit {
            tid,
            peer_id: peer_id.to_string(),
        });
        self.tries = tries;
        match reply? {
            Reply::Ok { .. } => Ok(()),
            other => Err(self.unexpected(&other, "OK")),
        }
    }

    /// REQUEST by info hash, else by name.
    pub fn request_peers(
        &mut self,
        info_hash: Option<&InfoHash>,
        name: Option<&str>,
        asker: Option<&str>,
    ) -> Result<PeersReply, TrackerError> {
        let file = match (info_hash, name) {
            (Some(ih), _) => FileRef::InfoHash(*ih),
            (None, Some(n)) => FileRef::Name(n.to_string()),
            (None, None) => return Err(self.bad("REQUEST needs an info hash or a name")),
        };
        let tid = self.next_tid();
        match self.call(Request::Request {
            tid,
            file,
            peer_id: asker.map(str::to_string),
        })? {
            Reply::Peers {
                info_hash,
                name,
                size,
                seeders,
                leechers,
                peers,
                ..
            } => Ok(PeersReply {
                info_hash,
                name,
                size,
                seeders,
                leechers,
                peers,
            }),
            other => Err(self.unexpected(&other, "PEERS")),
        }
    }

    pub fn search(&mut self, query: &str) -> Result<Vec<FileSummary>, TrackerError> {
        let tid = self.next_tid();
        match self.call(Request::Search {
            tid,
            query: query.to_string(),
        })? {
            Reply::Files { files, .. } => Ok(files),
            other => Err(self.unexpected(&other, "FILES")),
        }
    }

    /// The swarms called exactly `name` (case-sensitive, as a REQUEST by
    /// name matches), from a SEARCH for it (which matches substrings,
    /// ignoring case).
    pub fn search_exact(&mut self, name: &str) -> Result<ExactMatches, TrackerError> {
        let files = self.search(name)?;
        let complete = exact_list_complete(&files, name, self.last_reply_len);
        Ok(ExactMatches {
            files: files.into_iter().filter(|f| f.name == name).collect(),
            complete,
        })
    }
}

/// The swarms of one exact name, as a SEARCH listed them.
#[derive(Debug, Clone)]
pub struct ExactMatches {
    pub files: Vec<FileSummary>,
    /// False when the SEARCH reply was full and may have been cut before
    /// the last swarm of that name.
    pub complete: bool,
}

/// Whether a `FILES` reply of `reply_len` bytes holds every swarm called
/// `name`. The tracker sorts by name (byte order) and cuts a full reply at
/// its end, so the swarms called `name` are all there unless the reply
/// was full and nothing in it sorts after `name`.
fn exact_list_complete(files: &[FileSummary], name: &str, reply_len: usize) -> bool {
    reply_len + MAX_FILE_ENTRY < MAX_REPLY_SIZE || files.iter().any(|f| f.name.as_str() > name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn resolves_forms() {
        assert_eq!(
            resolve("udp://127.0.0.1:6969/announce").unwrap(),
            "127.0.0.1:6969".parse().unwrap()
        );
        assert_eq!(
            resolve("127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert!(resolve("http://x:1/announce").is_err());
        assert!(resolve("no such host!").is_err());
    }

    #[test]
    fn a_tracker_without_a_port_is_on_6969() {
        let ok = |t: &str, host: &str, port: u16| {
            assert_eq!(split_tracker(t).unwrap(), (host.to_string(), port), "{t:?}")
        };
        ok("192.168.1.10", "192.168.1.10", 6969);
        ok("192.168.1.10:7000", "192.168.1.10", 7000);
        ok("udp://192.168.1.10", "192.168.1.10", 6969);
        ok("udp://192.168.1.10/announce", "192.168.1.10", 6969);
        ok("udp://lab-pc.local:7000/announce", "lab-pc.local", 7000);
        ok("lab-pc", "lab-pc", 6969);
        ok(" lab-pc ", "lab-pc", 6969);
        ok("::1", "::1", 6969);
        ok("[::1]", "::1", 6969);
        ok("[::1]:7000", "::1", 7000);
        ok("udp://[fe80::1]/announce", "fe80::1", 6969);
        assert_eq!(
            resolve("127.0.0.1").unwrap(),
            "127.0.0.1:6969".parse().unwrap()
        );
        assert_eq!(
            resolve("udp://127.0.0.1/announce").unwrap(),
            "127.0.0.1:6969".parse().unwrap()
        );
        assert_eq!(resolve("[::1]").unwrap(), "[::1]:6969".parse().unwrap());
    }

    #[test]
    fn bad_tracker_addresses_say_why() {
        let why = |t: &str| split_tracker(t).unwrap_err().to_string();
        assert!(why("").contains("no host"), "{}", why(""));
        assert!(why("udp://").contains("no host"));
        assert!(why("host:port").contains("\"port\" is not a port number"));
        assert!(why("host:70000").contains("not a port number"));
        assert!(why("127.0.0.1:0").contains("not a port number"));
        assert!(why(":7000").contains("not a host name"));
        assert!(why("a b").contains("not a host name"));
        assert!(why("[zz]").contains("not a host name"));
        assert!(why("http://x:1/announce").contains("HTTP tracker has no file names"));
        assert!(why("ws://x:1").contains("only udp://"));
    }

    #[test]
    fn talks_to_a_fake_tracker() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // First datagram is dropped to exercise the retry.
            let _ = srv.recv_from(&mut buf).unwrap();
            let (n, from) = srv.recv_from(&mut buf).unwrap();
            let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
            assert_eq!(req["type"], "REQUEST");
            assert_eq!(req["name"], "a.txt");
            let reply = json!({"type": "PEERS", "tid": req["tid"], "info_hash": "ab".repeat(20),
                "name": "a.txt", "size": 5, "seeders": 1, "leechers": 0,
                "peers": [{"addr": "127.0.0.1:7001", "peer_id": "x", "complete": true}]});
            // A stale reply first: must be ignored.
            srv.send_to(br#"{"type":"OK","tid":1}"#, from).unwrap();
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
            let (n, from) = srv.recv_from(&mut buf).unwrap();
            let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
            let reply = json!({"type": "ERROR", "tid": req["tid"], "code": "unknown_peer", "message": "who?"});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
        });
        let mut c = TrackerClient::new(addr).unwrap();
        let r = c.request_peers(None, Some("a.txt"), None).unwrap();
        assert_eq!(r.peers.len(), 1);
        assert_eq!(r.info_hash.0, [0xab; 20]);
        assert_eq!(c.heartbeat("me").unwrap(), None);
        h.join().unwrap();
    }

    #[test]
    fn a_token_error_is_answered_by_sending_again_with_the_token() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut recv = || {
                let (n, from) = srv.recv_from(&mut buf).unwrap();
                (serde_json::from_slice::<Value>(&buf[..n]).unwrap(), from)
            };
            // SEARCH without a token: the token ERROR.
            let (req, from) = recv();
            assert_eq!(req["type"], "SEARCH");
            assert!(req.get("token").is_none(), "{req}");
            let reply = json!({"type": "ERROR", "tid": req["tid"], "code": "token",
                "message": "upgrade minitorrent", "token": "00000000000000aa"});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
            // Sent again with it: FILES.
            let (again, from) = recv();
            assert_eq!(again["token"], "00000000000000aa");
            assert_eq!(again["tid"], req["tid"]);
            let reply = json!({"type": "FILES", "tid": again["tid"], "files": []});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
            // A HEARTBEAT carries it; its OK hands out a newer one.
            let (hb, from) = recv();
            assert_eq!(hb["token"], "00000000000000aa");
            let reply = json!({"type": "OK", "tid": hb["tid"], "interval": 10, "timeout": 30,
                "token": "00000000000000bb"});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
            // Which the next request carries. A token ERROR that hands out
            // the token just sent is not retried: it is shown.
            let (req, from) = recv();
            assert_eq!(req["token"], "00000000000000bb");
            let reply = json!({"type": "ERROR", "tid": req["tid"], "code": "token",
                "message": "no", "token": "00000000000000bb"});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
        });
        let mut c = TrackerClient::new(addr).unwrap();
        assert!(c.search("").unwrap().is_empty());
        assert!(c.heartbeat("me").unwrap().is_some());
        let e = c.search("x").unwrap_err();
        assert_eq!(e.code(), Some(&ErrorCode::Token), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn an_error_without_tid_is_a_refusal_not_silence() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (_, from) = srv.recv_from(&mut buf).unwrap();
            let reply =
                json!({"type": "ERROR", "tid": null, "code": "bad_request", "message": "not JSON"});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
        });
        let mut c = TrackerClient::new(addr).unwrap();
        let e = c.search("x").unwrap_err();
        assert!(
            matches!(&e, TrackerError::Refused { code, .. } if *code == ErrorCode::BadRequest),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn exit_gives_up_sooner_than_other_requests() {
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let mut c = TrackerClient::new(addr).unwrap();
        c.first_timeout = Duration::from_millis(20);
        match c.exit("me").unwrap_err() {
            TrackerError::Unreachable { tries, .. } => assert_eq!(tries, EXIT_TRIES),
            e => panic!("{e}"),
        }
        // The usual schedule is back for the next request.
        match c.search("x").unwrap_err() {
            TrackerError::Unreachable { tries, .. } => assert_eq!(tries, TRIES),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn datagrams_leave_from_the_listening_address() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, from) = srv.recv_from(&mut buf).unwrap();
            let req: Value = serde_json::from_slice(&buf[..n]).unwrap();
            let reply = json!({"type": "FILES", "tid": req["tid"], "files": []});
            srv.send_to(reply.to_string().as_bytes(), from).unwrap();
            from.ip()
        });
        let mut c = TrackerClient::from_ip(addr, "127.0.0.2".parse().unwrap()).unwrap();
        assert!(c.search("").unwrap().is_empty());
        assert_eq!(h.join().unwrap(), "127.0.0.2".parse::<IpAddr>().unwrap());
        // An address of the other family falls back to the system's choice.
        assert!(TrackerClient::from_ip(addr, "::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_full_search_reply_proves_a_name_complete_only_past_it() {
        let f = |name: &str| FileSummary {
            info_hash: InfoHash([1; 20]),
            name: name.into(),
            size: 1,
            seeders: 1,
            leechers: 0,
        };
        let files = [f("A.PDF"), f("a.pdf"), f("a.pdf")];
        // A reply far from full was not cut.
        assert!(exact_list_complete(&files, "a.pdf", 300));
        // A full one may end just before another "a.pdf"...
        assert!(!exact_list_complete(&files, "a.pdf", MAX_REPLY_SIZE - 100));
        // ...unless something sorting after "a.pdf" made it in.
        let more = [f("a.pdf"), f("a.pdf.old")];
        assert!(exact_list_complete(&more, "a.pdf", MAX_REPLY_SIZE - 100));
    }

    #[test]
    fn unreachable_is_bounded() {
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let mut c = TrackerClient::new(addr).unwrap();
        c.first_timeout = Duration::from_millis(20);
        let t = Instant::now();
        let e = c.search("x").unwrap_err();
        assert!(matches!(e, TrackerError::Unreachable { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
