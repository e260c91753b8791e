//! The client side of the BitTorrent UDP tracker protocol (BEP 15): one
//! socket to one tracker, connect / announce / scrape over the shared
//! `udp_tracker` codec, the connection id kept for its minute, and each
//! request retried along a [`Schedule`]. Which protocol a tracker speaks is
//! `probe`'s business; what to announce and when is `announcer`'s.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::{
    AnnounceRequest, Event, Request, Response, ScrapeStats, ACTION_ANNOUNCE,
};

use crate::net::trace;

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

    pub fn total(&self) -> Duration {
        (0..self.tries).map(|n| self.first * (1 << n)).sum()
    }
}

/// A connection id may be used for one minute after it was received.
const CONNECTION_ID_LIFE: Duration = Duration::from_secs(60);

/// Why a BEP 15 request failed. `Clone` (the I/O error is shared) so that
/// every torrent waiting on one announce gets the error itself.
#[derive(Debug, Clone, thiserror::Error)]
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
        source: Arc<io::Error>,
    },
}

/// The answer to an announce.
#[derive(Debug, Clone)]
pub struct AnnounceReply {
    pub interval: Duration,
    /// Announcing sooner is pointless, and some trackers ban for it
    /// (an HTTP reply's `min interval`).
    pub min_interval: Option<Duration>,
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
    /// The path and query of the tracker's `udp://` URL, sent after each
    /// announce as BEP 41 URLData (a passkey tracker needs them).
    pub url_data: Vec<u8>,
}

fn unconnected_bind(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

/// A UDP socket connected to `addr`, sending from `local` (the address the
/// peer listens on, `--bind`) so that the tracker hands out an address the
/// peer accepts connections on; an unspecified `local`, or one of the
/// other address family, lets the system choose.
pub(super) fn connected_socket(
    addr: SocketAddr,
    local: IpAddr,
) -> io::Result<(UdpSocket, SocketAddr)> {
    let from = if local.is_unspecified() || local.is_ipv4() != addr.is_ipv4() {
        unconnected_bind(addr)
    } else {
        SocketAddr::new(local, 0)
    };
    let sock = UdpSocket::bind(from)?;
    sock.connect(addr)?;
    let local = sock.local_addr()?;
    Ok((sock, local))
}

/// Outcome of waiting for one datagram.
pub(super) enum Recv {
    Got(usize),
    TimedOut,
}

/// Waits until `deadline` for one datagram. A refused port (ICMP) counts as
/// silence: the tracker may be starting.
pub(super) fn recv_until(sock: &UdpSocket, buf: &mut [u8], deadline: Instant) -> io::Result<Recv> {
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
        Bep15Client::bound(addr, unconnected_bind(addr).ip())
    }

    /// A client whose datagrams leave from `local` (see [`connected_socket`]).
    pub fn bound(addr: SocketAddr, local: IpAddr) -> Result<Bep15Client, Bep15Error> {
        let (sock, local) = connected_socket(addr, local).map_err(|e| Bep15Error::Io {
            addr,
            source: Arc::new(e),
        })?;
        Ok(Bep15Client {
            sock,
            addr,
            local,
            connection: None,
            schedule: Schedule::BEP15,
            url_data: Vec::new(),
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
            source: Arc::new(source),
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
        let mut bytes = req.encode();
        if matches!(req, Request::Announce(_)) {
            bytes.extend_from_slice(&minitorrent_common::udp_tracker::url_data_options(
                &self.url_data,
            ));
        }
        match self.sock.send(&bytes) {
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
                min_interval: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tracker::fake::{bep15_only, fake, hash, FAST};
    use std::sync::Mutex;

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
            peer_id: *b"-MN0100-abcdefghijkl",
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
}
