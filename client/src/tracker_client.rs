//! Talking to the minitorrent tracker: JSON datagrams over UDP, one request
//! and one reply matched by `tid`, retried with a doubling timeout. Owns the
//! encoding of our requests and the decoding of the tracker's replies into
//! the types below, so the rest of the peer does not see the wire format.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use serde_json::{json, Value};

use crate::trace;

/// Default tracker when neither `--tracker` nor the torrent names one.
pub const DEFAULT_TRACKER: &str = "127.0.0.1:6969";
const TRIES: u32 = 4;
const FIRST_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("tracker {addr} is unreachable: no answer after {tries} tries")]
    Unreachable { addr: SocketAddr, tries: u32 },
    #[error("tracker {addr} says {code}: {message}")]
    Refused {
        addr: SocketAddr,
        code: String,
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
    #[error("tracker address {0:?}: {1}")]
    BadAddress(String, String),
}

impl TrackerError {
    pub fn code(&self) -> Option<&str> {
        match self {
            TrackerError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// `udp://host:port[/announce]` or `host:port` → a socket address.
pub fn resolve(tracker: &str) -> Result<SocketAddr, TrackerError> {
    let t = tracker.trim();
    let rest = t.strip_prefix("udp://").unwrap_or(t);
    if rest.contains("://") {
        return Err(TrackerError::BadAddress(
            tracker.into(),
            "only udp:// trackers (or HOST:PORT) are supported".into(),
        ));
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    let mut addrs = hostport
        .to_socket_addrs()
        .map_err(|e| TrackerError::BadAddress(tracker.into(), e.to_string()))?;
    addrs
        .find(|a| a.is_ipv4())
        .or_else(|| hostport.to_socket_addrs().ok().and_then(|mut a| a.next()))
        .ok_or_else(|| TrackerError::BadAddress(tracker.into(), "no address".into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    pub addr: SocketAddr,
    pub peer_id: String,
    pub complete: bool,
}

#[derive(Debug, Clone)]
pub struct PeersReply {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub seeders: u64,
    pub leechers: u64,
    pub peers: Vec<PeerEntry>,
}

#[derive(Debug, Clone)]
pub struct FileListing {
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    pub seeders: u64,
    pub leechers: u64,
}

/// A file in a REGISTER.
#[derive(Debug, Clone)]
pub struct RegisterFile {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub complete: bool,
}

/// Timers the tracker hands out in its OK to REGISTER.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub interval: Duration,
    pub timeout: Duration,
}

pub struct TrackerClient {
    sock: UdpSocket,
    addr: SocketAddr,
    local: SocketAddr,
    tid: u64,
    tries: u32,
    first_timeout: Duration,
}

impl TrackerClient {
    pub fn new(addr: SocketAddr) -> Result<TrackerClient, TrackerError> {
        let io = |source| TrackerError::Io { addr, source };
        let bind: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).map_err(io)?;
        sock.connect(addr).map_err(io)?;
        let local = sock.local_addr().map_err(io)?;
        Ok(TrackerClient {
            sock,
            addr,
            local,
            tid: fastrand::u64(1..1 << 40),
            tries: TRIES,
            first_timeout: FIRST_TIMEOUT,
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

    /// Sends `req` (its `tid` filled in) and waits for the matching reply.
    fn call(&mut self, mut req: Value) -> Result<Value, TrackerError> {
        self.tid += 1;
        let tid = self.tid;
        req["tid"] = json!(tid);
        let bytes = serde_json::to_vec(&req).map_err(|e| self.bad(e.to_string()))?;
        let mut timeout = self.first_timeout;
        let mut buf = vec![0u8; 65536];
        for _ in 0..self.tries {
            trace::tracker(self.local, self.addr, || summary(&req));
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
                let Ok(reply) = serde_json::from_slice::<Value>(&buf[..n]) else {
                    log::debug!("tracker {}: undecodable datagram ignored", self.addr);
                    continue;
                };
                if reply.get("tid").and_then(Value::as_u64) != Some(tid) {
                    continue;
                }
                trace::tracker(self.addr, self.local, || summary(&reply));
                if reply.get("type").and_then(Value::as_str) == Some("ERROR") {
                    let s = |k: &str| {
                        reply
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    return Err(TrackerError::Refused {
                        addr: self.addr,
                        code: s("code"),
                        message: s("message"),
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

    fn expect_type(&self, v: &Value, t: &str) -> Result<(), TrackerError> {
        match v.get("type").and_then(Value::as_str) {
            Some(x) if x == t => Ok(()),
            other => Err(self.bad(format!("expected {t}, got {other:?}"))),
        }
    }

    pub fn register(
        &mut self,
        peer_id: &str,
        port: u16,
        files: &[RegisterFile],
    ) -> Result<Timers, TrackerError> {
        let files: Vec<Value> = files
            .iter()
            .map(|f| {
                json!({"info_hash": f.info_hash.to_hex(), "name": f.name, "size": f.size,
                       "complete": f.complete})
            })
            .collect();
        let r = self.call(json!({"type": "REGISTER", "peer_id": peer_id, "port": port,
                                 "files": files}))?;
        self.expect_type(&r, "OK")?;
        let secs = |k: &str, d: u64| {
            Duration::from_secs(r.get(k).and_then(Value::as_u64).unwrap_or(d).max(1))
        };
        Ok(Timers {
            interval: secs("interval", 10),
            timeout: secs("timeout", 30),
        })
    }

    /// HEARTBEAT; `Ok(false)` when the tracker forgot us (re-REGISTER).
    pub fn heartbeat(&mut self, peer_id: &str) -> Result<bool, TrackerError> {
        match self.call(json!({"type": "HEARTBEAT", "peer_id": peer_id})) {
            Ok(r) => self.expect_type(&r, "OK").map(|_| true),
            Err(e) if e.code() == Some("unknown_peer") => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn exit(&mut self, peer_id: &str) -> Result<(), TrackerError> {
        let r = self.call(json!({"type": "EXIT", "peer_id": peer_id}))?;
        self.expect_type(&r, "OK")
    }

    /// REQUEST by info hash or by name.
    pub fn request_peers(
        &mut self,
        info_hash: Option<&InfoHash>,
        name: Option<&str>,
        asker: Option<&str>,
    ) -> Result<PeersReply, TrackerError> {
        let mut req = json!({"type": "REQUEST"});
        if let Some(ih) = info_hash {
            req["info_hash"] = json!(ih.to_hex());
        }
        if let Some(n) = name {
            req["name"] = json!(n);
        }
        if let Some(a) = asker {
            req["peer_id"] = json!(a);
        }
        let r = self.call(req)?;
        self.expect_type(&r, "PEERS")?;
        let ih = r
            .get("info_hash")
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad("PEERS without info_hash"))?;
        let info_hash =
            InfoHash::from_hex(ih).map_err(|e| self.bad(format!("PEERS info_hash: {e}")))?;
        let mut peers = Vec::new();
        for p in r
            .get("peers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(addr) = p
                .get("addr")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<SocketAddr>().ok())
            else {
                log::debug!("tracker listed a peer without a usable address: {p}");
                continue;
            };
            peers.push(PeerEntry {
                addr,
                peer_id: p
                    .get("peer_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                complete: p.get("complete").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        let u = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
        Ok(PeersReply {
            info_hash,
            name: r
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            size: u("size"),
            seeders: u("seeders"),
            leechers: u("leechers"),
            peers,
        })
    }

    pub fn search(&mut self, query: &str) -> Result<Vec<FileListing>, TrackerError> {
        let r = self.call(json!({"type": "SEARCH", "query": query}))?;
        self.expect_type(&r, "FILES")?;
        let mut out = Vec::new();
        for f in r
            .get("files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let u = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.push(FileListing {
                info_hash: s("info_hash"),
                name: s("name"),
                size: u("size"),
                seeders: u("seeders"),
                leechers: u("leechers"),
            });
        }
        Ok(out)
    }
}

/// One line for `--trace`.
fn summary(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(resolve("nonsense").is_err());
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
        assert!(!c.heartbeat("me").unwrap());
        h.join().unwrap();
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
