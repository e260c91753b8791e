//! The BitTorrent UDP tracker protocol (BEP 15): connect, announce, scrape and
//! error packets, for both sides.
//!
//! A client encodes [`Request`]s and decodes [`Response`]s; a tracker decodes
//! requests and encodes responses. All integers are big-endian. No I/O here.
//! Decoding is strict about lengths and values and names what is wrong; it
//! tolerates the BEP 41 options that may follow the 98 bytes of an announce.

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};

use crate::compact;
use crate::metainfo::InfoHash;

/// The magic number that opens every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;
/// Length of a connect request (and of a connect response).
pub const CONNECT_LEN: usize = 16;
/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;
/// At most this many info hashes in one scrape (what fits a 1500-byte packet).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Bytes per peer in an announce response: IPv4 address and port, or IPv6.
pub use crate::compact::{PEER_V4_LEN, PEER_V6_LEN};

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Completed,
    Started,
    Stopped,
}

impl Event {
    pub fn to_u32(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    pub fn from_u32(v: u32) -> Option<Event> {
        Some(match v {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Event::None => "none",
            Event::Completed => "completed",
            Event::Started => "started",
            Event::Stopped => "stopped",
        }
    }
}

/// An announce request: join, refresh or leave a swarm, and ask for peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub downloaded: u64,
    /// Bytes still missing; 0 means the announcer is a seeder.
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// The address the client claims (0 = use the packet's source). Our
    /// tracker ignores it.
    pub ip: Ipv4Addr,
    pub key: u32,
    /// How many peers the client wants; -1 (or any negative) = tracker default.
    pub num_want: i32,
    pub port: u16,
}

/// A packet from a client to a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce(AnnounceRequest),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// Counts of one swarm in a scrape response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub seeders: u32,
    /// Downloads completed. Trackers that do not count them send 0.
    pub completed: u32,
    pub leechers: u32,
}

/// A packet from a tracker to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        leechers: u32,
        seeders: u32,
        /// All IPv4 on an IPv4 socket, all IPv6 on an IPv6 one.
        peers: Vec<SocketAddr>,
    },
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

/// What is wrong with a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    #[error("{what} is {len} bytes, shorter than {need}")]
    TooShort {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("connect request has protocol id {0:#x}, not 0x41727101980")]
    BadProtocolId(u64),
    #[error("unknown action {0}")]
    UnknownAction(u32),
    #[error("unknown announce event {0}")]
    BadEvent(u32),
    #[error("announce port is 0")]
    PortZero,
    #[error("scrape names no info hash")]
    NoInfoHash,
    #[error("scrape names {0} info hashes, more than {MAX_SCRAPE_HASHES}")]
    TooManyInfoHashes(usize),
    #[error("{what} has {extra} stray bytes after its {unit}-byte entries")]
    Ragged {
        what: &'static str,
        extra: usize,
        unit: usize,
    },
    #[error("a {0} packet is not a valid {1}")]
    WrongDirection(&'static str, &'static str),
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn hash_at(b: &[u8], at: usize) -> InfoHash {
    let mut h = [0u8; 20];
    h.copy_from_slice(&b[at..at + 20]);
    InfoHash(h)
}

fn need(what: &'static str, b: &[u8], need: usize) -> Result<(), UdpError> {
    if b.len() < need {
        Err(UdpError::TooShort {
            what,
            len: b.len(),
            need,
        })
    } else {
        Ok(())
    }
}

/// The first 16 bytes every request starts with: connection id (or protocol
/// id), action and transaction id. Lets a tracker check the connection id
/// before decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub connection_id: u64,
    pub action: u32,
    pub transaction_id: u32,
}

impl RequestHeader {
    pub fn decode(b: &[u8]) -> Result<RequestHeader, UdpError> {
        need("request", b, 16)?;
        Ok(RequestHeader {
            connection_id: be64(b, 0),
            action: be32(b, 8),
            transaction_id: be32(b, 12),
        })
    }
}

impl Request {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect { transaction_id } | Request::Scrape { transaction_id, .. } => {
                *transaction_id
            }
            Request::Announce(a) => a.transaction_id,
        }
    }

    /// Decodes a request. Bytes after an announce's 98 (BEP 41 options) are
    /// ignored; so are bytes after a connect request's 16.
    pub fn decode(b: &[u8]) -> Result<Request, UdpError> {
        let h = RequestHeader::decode(b)?;
        match h.action {
            ACTION_CONNECT => {
                if h.connection_id != PROTOCOL_ID {
                    return Err(UdpError::BadProtocolId(h.connection_id));
                }
                Ok(Request::Connect {
                    transaction_id: h.transaction_id,
                })
            }
            ACTION_ANNOUNCE => {
                need("announce request", b, ANNOUNCE_LEN)?;
                let event = be32(b, 80);
                let event = Event::from_u32(event).ok_or(UdpError::BadEvent(event))?;
                let mut peer_id = [0u8; 20];
                peer_id.copy_from_slice(&b[36..56]);
                Ok(Request::Announce(AnnounceRequest {
                    connection_id: h.connection_id,
                    transaction_id: h.transaction_id,
                    info_hash: hash_at(b, 16),
                    peer_id,
                    downloaded: be64(b, 56),
                    left: be64(b, 64),
                    uploaded: be64(b, 72),
                    event,
                    ip: Ipv4Addr::from(be32(b, 84)),
                    key: be32(b, 88),
                    num_want: be32(b, 92) as i32,
                    port: u16::from_be_bytes([b[96], b[97]]),
                }))
            }
            ACTION_SCRAPE => {
                let body = &b[16..];
                if body.is_empty() {
                    return Err(UdpError::NoInfoHash);
                }
                let extra = body.len() % 20;
                if extra > 0 {
                    return Err(UdpError::Ragged {
                        what: "scrape request",
                        extra,
                        unit: 20,
                    });
                }
                let n = body.len() / 20;
                if n > MAX_SCRAPE_HASHES {
                    return Err(UdpError::TooManyInfoHashes(n));
                }
                Ok(Request::Scrape {
                    connection_id: h.connection_id,
                    transaction_id: h.transaction_id,
                    info_hashes: (0..n).map(|i| hash_at(body, i * 20)).collect(),
                })
            }
            ACTION_ERROR => Err(UdpError::WrongDirection("error", "request")),
            other => Err(UdpError::UnknownAction(other)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(ANNOUNCE_LEN);
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the packet to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        match self {
            Request::Connect { transaction_id } => {
                buf.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                buf.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                buf.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce(a) => {
                buf.extend_from_slice(&a.connection_id.to_be_bytes());
                buf.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                buf.extend_from_slice(&a.transaction_id.to_be_bytes());
                buf.extend_from_slice(&a.info_hash.0);
                buf.extend_from_slice(&a.peer_id);
                buf.extend_from_slice(&a.downloaded.to_be_bytes());
                buf.extend_from_slice(&a.left.to_be_bytes());
                buf.extend_from_slice(&a.uploaded.to_be_bytes());
                buf.extend_from_slice(&a.event.to_u32().to_be_bytes());
                buf.extend_from_slice(&a.ip.octets());
                buf.extend_from_slice(&a.key.to_be_bytes());
                buf.extend_from_slice(&a.num_want.to_be_bytes());
                buf.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                buf.extend_from_slice(&connection_id.to_be_bytes());
                buf.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                buf.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes {
                    buf.extend_from_slice(&h.0);
                }
            }
        }
    }

    /// One line for people, e.g. `ANNOUNCE 5a2b0c6e1f0d… peer=-qB4650-… port=6881 left=0 event=started want=50`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match self {
            Request::Connect { .. } => s.push_str("CONNECT"),
            Request::Announce(a) => {
                let _ = write!(
                    s,
                    "ANNOUNCE {} peer={} port={} left={} event={} want={}",
                    short_hex(&a.info_hash.0),
                    peer_id_text(&a.peer_id),
                    a.port,
                    a.left,
                    a.event.as_str(),
                    a.num_want
                );
            }
            Request::Scrape { info_hashes, .. } => {
                let _ = write!(s, "SCRAPE {} info hash", info_hashes.len());
                if info_hashes.len() != 1 {
                    s.push_str("es");
                }
                for h in info_hashes.iter().take(3) {
                    let _ = write!(s, " {}", short_hex(&h.0));
                }
            }
        }
        let _ = write!(s, " (BEP 15) tx={:08x}", self.transaction_id());
        s
    }
}

/// Appends an announce response; `peers` must all be of the family the
/// response is for (`ipv6`); others are skipped.
pub fn encode_announce_response(
    buf: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
    peers: impl IntoIterator<Item = SocketAddr>,
    ipv6: bool,
) {
    buf.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    buf.extend_from_slice(&transaction_id.to_be_bytes());
    buf.extend_from_slice(&interval.to_be_bytes());
    buf.extend_from_slice(&leechers.to_be_bytes());
    buf.extend_from_slice(&seeders.to_be_bytes());
    for p in peers {
        compact::push(buf, p, ipv6);
    }
}

impl Response {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Decodes a response. `ipv6` says whether it came over IPv6 (announce
    /// responses then carry 18-byte peers, else 6-byte ones).
    pub fn decode(b: &[u8], ipv6: bool) -> Result<Response, UdpError> {
        need("response", b, 8)?;
        let action = be32(b, 0);
        let transaction_id = be32(b, 4);
        match action {
            ACTION_CONNECT => {
                need("connect response", b, CONNECT_LEN)?;
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: be64(b, 8),
                })
            }
            ACTION_ANNOUNCE => {
                need("announce response", b, 20)?;
                let peers = compact::decode(&b[20..], ipv6).map_err(|extra| UdpError::Ragged {
                    what: "announce response",
                    extra,
                    unit: compact::entry_len(ipv6),
                })?;
                Ok(Response::Announce {
                    transaction_id,
                    interval: be32(b, 8),
                    leechers: be32(b, 12),
                    seeders: be32(b, 16),
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let body = &b[8..];
                let extra = body.len() % 12;
                if extra > 0 {
                    return Err(UdpError::Ragged {
                        what: "scrape response",
                        extra,
                        unit: 12,
                    });
                }
                Ok(Response::Scrape {
                    transaction_id,
                    stats: body
                        .chunks_exact(12)
                        .map(|c| ScrapeStats {
                            seeders: be32(c, 0),
                            completed: be32(c, 4),
                            leechers: be32(c, 8),
                        })
                        .collect(),
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(&b[8..]).into_owned(),
            }),
            other => Err(UdpError::UnknownAction(other)),
        }
    }

    /// Appends the packet to `buf`. An announce response skips peers of the
    /// other family than `ipv6` says.
    pub fn encode_into(&self, buf: &mut Vec<u8>, ipv6: bool) {
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => encode_connect_response(buf, *transaction_id, *connection_id),
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => encode_announce_response(
                buf,
                *transaction_id,
                *interval,
                *leechers,
                *seeders,
                peers.iter().copied(),
                ipv6,
            ),
            Response::Scrape {
                transaction_id,
                stats,
            } => encode_scrape_response(buf, *transaction_id, stats.iter().copied()),
            Response::Error {
                transaction_id,
                message,
            } => encode_error_response(buf, *transaction_id, message),
        }
    }

    pub fn encode(&self, ipv6: bool) -> Vec<u8> {
        let mut buf = Vec::with_capacity(64);
        self.encode_into(&mut buf, ipv6);
        buf
    }

    /// One line for people, e.g. `ANNOUNCE reply 1 seeder, 2 leechers, 2 peers: 10.0.0.1:6881, …`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match self {
            Response::Connect { connection_id, .. } => {
                let _ = write!(s, "CONNECT reply connection_id={connection_id:016x}");
            }
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => {
                let _ = write!(
                    s,
                    "ANNOUNCE reply interval={interval}s {seeders} seeders, {leechers} leechers, {} peers",
                    peers.len()
                );
                for (i, p) in peers.iter().take(3).enumerate() {
                    s.push_str(if i == 0 { ": " } else { ", " });
                    let _ = write!(s, "{p}");
                }
                if peers.len() > 3 {
                    s.push_str(", …");
                }
            }
            Response::Scrape { stats, .. } => {
                s.push_str("SCRAPE reply");
                for (i, st) in stats.iter().take(3).enumerate() {
                    s.push_str(if i == 0 { " " } else { ", " });
                    let _ = write!(s, "{}S/{}L/{}C", st.seeders, st.leechers, st.completed);
                }
            }
            Response::Error { message, .. } => {
                let _ = write!(s, "ERROR reply: {message}");
            }
        }
        let _ = write!(s, " (BEP 15) tx={:08x}", self.transaction_id());
        s
    }
}

pub fn encode_connect_response(buf: &mut Vec<u8>, transaction_id: u32, connection_id: u64) {
    buf.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    buf.extend_from_slice(&transaction_id.to_be_bytes());
    buf.extend_from_slice(&connection_id.to_be_bytes());
}

/// Appends a scrape response: the counts of each swarm asked about, in the
/// order asked. Takes the counts one at a time, so a tracker answers straight
/// from its registry into a reused buffer, without building a [`Response`].
pub fn encode_scrape_response(
    buf: &mut Vec<u8>,
    transaction_id: u32,
    stats: impl IntoIterator<Item = ScrapeStats>,
) {
    buf.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    buf.extend_from_slice(&transaction_id.to_be_bytes());
    for s in stats {
        // One copy per entry, as for announce peers.
        let mut e = [0u8; 12];
        e[..4].copy_from_slice(&s.seeders.to_be_bytes());
        e[4..8].copy_from_slice(&s.completed.to_be_bytes());
        e[8..].copy_from_slice(&s.leechers.to_be_bytes());
        buf.extend_from_slice(&e);
    }
}

pub fn encode_error_response(buf: &mut Vec<u8>, transaction_id: u32, message: &str) {
    buf.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    buf.extend_from_slice(&transaction_id.to_be_bytes());
    buf.extend_from_slice(message.as_bytes());
}

/// BEP 41 option: the path and query of a `udp://` tracker URL.
pub const OPTION_URL_DATA: u8 = 0x2;

/// The BEP 41 options that carry `path_query` (what follows `HOST:PORT` in
/// the tracker's URL, e.g. `/announce?passkey=abc`) after an announce's 98
/// bytes: URLData options of at most 255 bytes each, in order. Empty for an
/// empty path.
pub fn url_data_options(path_query: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path_query.len() + path_query.len() / 255 + 2);
    for chunk in path_query.chunks(255) {
        out.push(OPTION_URL_DATA);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out
}

/// A 20-byte peer id as text: URL-style percent-encoding, where ASCII letters,
/// digits and `-._~` stand for themselves and any other byte is `%XX`.
/// Reversible, at most 60 characters; typical `-XX1234-` ids stay readable.
/// The tracker shows BEP 15 announcers to JSON peers with this.
pub fn peer_id_text(bytes: &[u8; 20]) -> String {
    let mut s = String::with_capacity(20);
    crate::percent::encode_into(bytes, &mut s);
    s
}

/// The inverse of [`peer_id_text`]: the 20 bytes a peer id shown as text
/// stands for, when it decodes to exactly 20 (a BEP 15 or HTTP announcer's
/// id); `None` for other text (a JSON peer's id of another length).
pub fn peer_id_bytes(text: &str) -> Option<[u8; 20]> {
    crate::percent::decode(text.as_bytes(), false)
        .ok()?
        .try_into()
        .ok()
}

pub(crate) fn short_hex(b: &[u8; 20]) -> String {
    let mut s = String::with_capacity(13);
    for x in &b[..6] {
        let _ = write!(s, "{x:02x}");
    }
    s.push('…');
    s
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
