//! The BitTorrent HTTP tracker protocol, for both sides: the query of a
//! `GET /announce` (BEP 3) or `GET /scrape` (BEP 48), and the bencoded
//! replies — compact peers (BEP 23), IPv6 peers in `peers6` (BEP 7), the
//! peer dictionaries of a non-compact reply, and `failure reason`. No I/O.
//!
//! A query is read from its *raw* text: `info_hash` and `peer_id` are 20
//! arbitrary bytes, percent-encoded, so decoding the whole query as UTF-8
//! first would spoil them. Parsing is strict (a bad escape, a number with a
//! sign or a letter, a hash of 19 bytes, a parameter given twice are
//! errors naming the parameter) and bounded ([`MAX_QUERY`],
//! [`MAX_SCRAPE_HASHES`]); parameters this module does not read (`key`,
//! `ip`, `supportcrypto`, …) are skipped.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::bencode::{self, BencodeError, Value};
use crate::compact::{self, PEER_V4_LEN};
use crate::metainfo::InfoHash;
use crate::percent;
use crate::udp_tracker::{peer_id_text, short_hex};

pub use crate::udp_tracker::Event;

/// Longest query read (the text after `?`). An announce takes about 250
/// bytes; 50 scrape hashes, each `info_hash=` and up to 60 characters of
/// escapes, about 3,600.
pub const MAX_QUERY: usize = 4096;
/// Most info hashes in one scrape: what [`MAX_QUERY`] holds however they
/// are encoded.
pub const MAX_SCRAPE_HASHES: usize = 50;
/// Peers a tracker lists when the announce gives no `numwant` (BEP 3's
/// usual default); a tracker caps any `numwant` at its own maximum.
pub const DEFAULT_NUMWANT: usize = 50;

/// What is wrong with a query; the tracker sends it as `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is {0} bytes, more than the {MAX_QUERY} this tracker reads")]
    TooLong(usize),
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {0} is given more than once")]
    Repeated(&'static str),
    #[error("parameter {0} has a bad percent escape ('%' must be followed by two hex digits)")]
    BadEscape(&'static str),
    #[error("{name} must be 20 bytes, percent-encoded; it is {len}")]
    BadLength { name: &'static str, len: usize },
    #[error("{name} must be a whole number (digits only, at most 20); got {value:?}")]
    BadNumber { name: &'static str, value: String },
    #[error("port must be 1 to 65535; got {0}")]
    PortRange(u64),
    #[error("port 0 is not a port peers can connect to")]
    PortZero,
    #[error("unknown event {0:?}: expected started, completed, stopped or none")]
    BadEvent(String),
    #[error("the scrape names no info_hash (this tracker does not list every swarm)")]
    NoInfoHash,
    #[error("the scrape names {0} info hashes, more than the {MAX_SCRAPE_HASHES} allowed")]
    TooManyInfoHashes(usize),
}

/// What is wrong with a tracker's reply (the client's side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The tracker answered with a `failure reason`.
    #[error("the tracker refused: {0}")]
    Failure(String),
    #[error("not a tracker reply: {0}")]
    Bencode(#[from] BencodeError),
    #[error("the reply is not a dictionary")]
    NotDict,
    #[error("the reply has no {0}")]
    Missing(&'static str),
    #[error("the reply's {0} is malformed")]
    Malformed(&'static str),
}

/// The parameters of a `GET /announce` that a tracker uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    /// Where the peer accepts connections (never 0).
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still missing; 0 means the announcer is a seeder.
    pub left: u64,
    /// `started`, `completed`, `stopped`, or none (absent, empty, `empty`,
    /// or BEP 21's `paused`).
    pub event: Event,
    /// `None` (absent or negative): the tracker's default.
    pub numwant: Option<usize>,
    /// BEP 23: false only for `compact=0`.
    pub compact: bool,
    /// `no_peer_id=1`: leave peer ids out of a non-compact reply.
    pub no_peer_id: bool,
}

/// The pairs of a query, keys decoded (a key with a bad escape matches
/// nothing), values raw. Empty pieces (`a=1&&b=2`) are skipped.
fn pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, &str)> {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent::decode(k.as_bytes(), true).unwrap_or_default(), v)
    })
}

fn set<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), QueryError> {
    if slot.replace(v).is_some() {
        return Err(QueryError::Repeated(name));
    }
    Ok(())
}

fn decoded(name: &'static str, raw: &str) -> Result<Vec<u8>, QueryError> {
    percent::decode(raw.as_bytes(), true).map_err(|_| QueryError::BadEscape(name))
}

fn twenty(name: &'static str, raw: &str) -> Result<[u8; 20], QueryError> {
    let v = decoded(name, raw)?;
    let len = v.len();
    v.try_into()
        .map_err(|_| QueryError::BadLength { name, len })
}

fn shown(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

fn number(name: &'static str, raw: &str) -> Result<u64, QueryError> {
    let v = decoded(name, raw)?;
    let bad = || QueryError::BadNumber {
        name,
        value: shown(&v),
    };
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(&v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

impl AnnounceRequest {
    /// Reads the raw query (the text after `?`, not yet decoded).
    pub fn parse(query: &str) -> Result<AnnounceRequest, QueryError> {
        if query.len() > MAX_QUERY {
            return Err(QueryError::TooLong(query.len()));
        }
        let (mut info_hash, mut peer_id, mut port) = (None, None, None);
        let (mut uploaded, mut downloaded, mut left) = (None, None, None);
        let (mut event, mut numwant, mut compact, mut no_peer_id) = (None, None, None, None);
        for (key, raw) in pairs(query) {
            match key.as_slice() {
                b"info_hash" => set(&mut info_hash, "info_hash", twenty("info_hash", raw)?)?,
                b"peer_id" => set(&mut peer_id, "peer_id", twenty("peer_id", raw)?)?,
                b"port" => set(&mut port, "port", number("port", raw)?)?,
                b"uploaded" => set(&mut uploaded, "uploaded", number("uploaded", raw)?)?,
                b"downloaded" => set(&mut downloaded, "downloaded", number("downloaded", raw)?)?,
                b"left" => set(&mut left, "left", number("left", raw)?)?,
                b"event" => {
                    let v = decoded("event", raw)?;
                    let e = match v.as_slice() {
                        b"started" => Event::Started,
                        b"completed" => Event::Completed,
                        b"stopped" => Event::Stopped,
                        b"" | b"empty" | b"none" | b"paused" => Event::None,
                        other => return Err(QueryError::BadEvent(shown(other))),
                    };
                    set(&mut event, "event", e)?
                }
                b"numwant" => {
                    // Some clients send -1 for "the tracker's default".
                    let n = match raw.strip_prefix('-') {
                        Some(rest) => number("numwant", rest).map(|_| None)?,
                        None => Some(number("numwant", raw)?),
                    };
                    set(&mut numwant, "numwant", n)?
                }
                b"compact" => set(&mut compact, "compact", raw != "0")?,
                b"no_peer_id" => set(&mut no_peer_id, "no_peer_id", raw == "1")?,
                _ => {}
            }
        }
        let port = port.ok_or(QueryError::Missing("port"))?;
        let req = AnnounceRequest {
            info_hash: InfoHash(info_hash.ok_or(QueryError::Missing("info_hash"))?),
            peer_id: peer_id.ok_or(QueryError::Missing("peer_id"))?,
            port: match u16::try_from(port) {
                Ok(0) => return Err(QueryError::PortZero),
                Ok(p) => p,
                Err(_) => return Err(QueryError::PortRange(port)),
            },
            uploaded: uploaded.unwrap_or(0),
            downloaded: downloaded.unwrap_or(0),
            left: left.ok_or(QueryError::Missing("left"))?,
            event: event.unwrap_or(Event::None),
            numwant: numwant
                .flatten()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            compact: compact.unwrap_or(true),
            no_peer_id: no_peer_id.unwrap_or(false),
        };
        Ok(req)
    }

    /// The query a client sends (without the `?`).
    pub fn to_query(&self) -> String {
        let mut q = String::with_capacity(256);
        q.push_str("info_hash=");
        percent::encode_into(&self.info_hash.0, &mut q);
        q.push_str("&peer_id=");
        percent::encode_into(&self.peer_id, &mut q);
        let _ = write!(
            q,
            "&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact)
        );
        if self.event != Event::None {
            let _ = write!(q, "&event={}", self.event.as_str());
        }
        if let Some(n) = self.numwant {
            let _ = write!(q, "&numwant={n}");
        }
        if self.no_peer_id {
            q.push_str("&no_peer_id=1");
        }
        q
    }

    /// One line for people, e.g. `ANNOUNCE 5a2b0c6e1f0d… peer=-qB4650-… port=6881 left=0 event=started want=50 (HTTP)`.
    pub fn summary(&self) -> String {
        let want = self
            .numwant
            .map_or_else(|| "default".to_string(), |n| n.to_string());
        format!(
            "ANNOUNCE {} peer={} port={} left={} event={} want={want}{} (HTTP)",
            short_hex(&self.info_hash.0),
            peer_id_text(&self.peer_id),
            self.port,
            self.left,
            self.event.as_str(),
            if self.compact { "" } else { " compact=0" },
        )
    }
}

/// The info hashes of a `GET /scrape` query (raw, as for
/// [`AnnounceRequest::parse`]), in the order given: 1 to
/// [`MAX_SCRAPE_HASHES`].
pub fn parse_scrape(query: &str) -> Result<Vec<InfoHash>, QueryError> {
    if query.len() > MAX_QUERY {
        return Err(QueryError::TooLong(query.len()));
    }
    let mut hashes = Vec::new();
    for (key, raw) in pairs(query) {
        if key == b"info_hash" {
            if hashes.len() == MAX_SCRAPE_HASHES {
                let n = pairs(query).filter(|(k, _)| k == b"info_hash").count();
                return Err(QueryError::TooManyInfoHashes(n));
            }
            hashes.push(InfoHash(twenty("info_hash", raw)?));
        }
    }
    if hashes.is_empty() {
        return Err(QueryError::NoInfoHash);
    }
    Ok(hashes)
}

/// The query of a scrape of `hashes` (without the `?`).
pub fn scrape_query(hashes: &[InfoHash]) -> String {
    let mut q = String::new();
    for (i, h) in hashes.iter().enumerate() {
        q.push_str(if i == 0 { "info_hash=" } else { "&info_hash=" });
        percent::encode_into(&h.0, &mut q);
    }
    q
}

/// One peer of an announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Only in a non-compact reply, and not with `no_peer_id=1`.
    pub peer_id: Option<Vec<u8>>,
}

/// The counts and timers of an announce reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceHeader {
    /// Seconds until the next announce.
    pub interval: u32,
    /// Announcing more often than this is pointless.
    pub min_interval: u32,
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// An announce reply, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    pub interval: u32,
    pub min_interval: Option<u32>,
    pub complete: u32,
    pub incomplete: u32,
    /// From `peers` (compact or dictionaries) and `peers6`, in that order.
    pub peers: Vec<Peer>,
}

fn push_int(out: &mut Vec<u8>, key: &[u8], v: u64) {
    push_str(out, key);
    let _ = write!(Bytes(out), "i{v}e");
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    let _ = write!(Bytes(out), "{}:", s.len());
    out.extend_from_slice(s);
}

/// `write!` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The head of an announce reply, up to its peers (keys in bencode order).
fn push_header(out: &mut Vec<u8>, h: &AnnounceHeader) {
    out.push(b'd');
    push_int(out, b"complete", u64::from(h.complete));
    push_int(out, b"incomplete", u64::from(h.incomplete));
    push_int(out, b"interval", u64::from(h.interval));
    push_int(out, b"min interval", u64::from(h.min_interval));
}

/// Appends a compact announce reply (BEP 23): IPv4 peers in `peers`, 6
/// bytes each, IPv6 peers in `peers6` (BEP 7, only when there are some),
/// 18 bytes each. Takes the peers one at a time, so a tracker answers
/// straight from its registry.
pub fn encode_announce(
    out: &mut Vec<u8>,
    h: &AnnounceHeader,
    peers: impl IntoIterator<Item = SocketAddr>,
) {
    let mut v4: Vec<u8> = Vec::with_capacity(PEER_V4_LEN * DEFAULT_NUMWANT);
    let mut v6: Vec<u8> = Vec::new();
    for p in peers {
        // An IPv4-mapped address (a dual-stack socket) is an IPv4 peer.
        let p = SocketAddr::new(p.ip().to_canonical(), p.port());
        if !compact::push(&mut v4, p, false) {
            compact::push(&mut v6, p, true);
        }
    }
    push_header(out, h);
    push_str(out, b"peers");
    push_str(out, &v4);
    if !v6.is_empty() {
        push_str(out, b"peers6");
        push_str(out, &v6);
    }
    out.push(b'e');
}

/// Appends a non-compact announce reply (`compact=0`): `peers` is a list of
/// dictionaries (`ip` as text, `port`, and `peer id` when given), IPv4 and
/// IPv6 alike.
pub fn encode_announce_dicts(
    out: &mut Vec<u8>,
    h: &AnnounceHeader,
    peers: impl IntoIterator<Item = Peer>,
) {
    push_header(out, h);
    push_str(out, b"peers");
    out.push(b'l');
    for p in peers {
        out.push(b'd');
        let ip = p.addr.ip().to_canonical().to_string();
        push_str(out, b"ip");
        push_str(out, ip.as_bytes());
        if let Some(id) = &p.peer_id {
            push_str(out, b"peer id");
            push_str(out, id);
        }
        push_int(out, b"port", u64::from(p.addr.port()));
        out.push(b'e');
    }
    out.push(b'e');
    out.push(b'e');
}

/// A reply that refuses the request: `d14:failure reason…e`. Trackers send
/// it with status 200, which is where BEP 3 clients read it.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(reason.len() + 24);
    out.push(b'd');
    push_str(&mut out, b"failure reason");
    push_str(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

fn dict_of(body: &[u8]) -> Result<Value, ReplyError> {
    let v = bencode::decode(body)?;
    if v.as_dict().is_none() {
        return Err(ReplyError::NotDict);
    }
    if let Some(f) = v.get("failure reason") {
        let reason = f
            .as_bytes()
            .ok_or(ReplyError::Malformed("failure reason"))?;
        return Err(ReplyError::Failure(
            String::from_utf8_lossy(reason).into_owned(),
        ));
    }
    Ok(v)
}

fn count(v: &Value, key: &'static str) -> Result<Option<u32>, ReplyError> {
    v.get(key)
        .map(|x| {
            x.as_int()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or(ReplyError::Malformed(key))
        })
        .transpose()
}

fn compact_peers(b: &[u8], ipv6: bool, what: &'static str) -> Result<Vec<Peer>, ReplyError> {
    let addrs = compact::decode(b, ipv6).map_err(|_| ReplyError::Malformed(what))?;
    Ok(addrs
        .into_iter()
        .map(|addr| Peer {
            addr,
            peer_id: None,
        })
        .collect())
}

fn dict_peer(d: &Value) -> Option<Peer> {
    let ip: IpAddr = d.get("ip")?.as_str()?.parse().ok()?;
    let port = u16::try_from(d.get("port")?.as_int()?).ok()?;
    Some(Peer {
        addr: SocketAddr::new(ip, port),
        peer_id: d
            .get("peer id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
    })
}

impl AnnounceResponse {
    /// Reads an announce reply; a `failure reason` is [`ReplyError::Failure`].
    pub fn decode(body: &[u8]) -> Result<AnnounceResponse, ReplyError> {
        let v = dict_of(body)?;
        let mut peers = match v.get("peers") {
            None => Vec::new(),
            Some(Value::Bytes(b)) => compact_peers(b, false, "peers")?,
            Some(Value::List(l)) => l
                .iter()
                .map(|d| dict_peer(d).ok_or(ReplyError::Malformed("peers")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ReplyError::Malformed("peers")),
        };
        if let Some(p6) = v.get("peers6") {
            let b = p6.as_bytes().ok_or(ReplyError::Malformed("peers6"))?;
            peers.extend(compact_peers(b, true, "peers6")?);
        }
        Ok(AnnounceResponse {
            interval: count(&v, "interval")?.ok_or(ReplyError::Missing("interval"))?,
            min_interval: count(&v, "min interval")?,
            complete: count(&v, "complete")?.unwrap_or(0),
            incomplete: count(&v, "incomplete")?.unwrap_or(0),
            peers,
        })
    }

    /// The reply's bytes: compact unless `compact` is false.
    pub fn encode(&self, compact: bool) -> Vec<u8> {
        let h = AnnounceHeader {
            interval: self.interval,
            min_interval: self.min_interval.unwrap_or(self.interval),
            complete: self.complete,
            incomplete: self.incomplete,
        };
        let mut out = Vec::new();
        if compact {
            encode_announce(&mut out, &h, self.peers.iter().map(|p| p.addr));
        } else {
            encode_announce_dicts(&mut out, &h, self.peers.iter().cloned());
        }
        out
    }

    /// One line for people, e.g. `ANNOUNCE reply interval=10s 1 seeders, 2 leechers, 2 peers: 10.0.0.1:6881, … (HTTP)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "ANNOUNCE reply interval={}s {} seeders, {} leechers, {} peers",
            self.interval,
            self.complete,
            self.incomplete,
            self.peers.len()
        );
        for (i, p) in self.peers.iter().take(3).enumerate() {
            s.push_str(if i == 0 { ": " } else { ", " });
            let _ = write!(s, "{}", p.addr);
        }
        if self.peers.len() > 3 {
            s.push_str(", …");
        }
        s.push_str(" (HTTP)");
        s
    }
}

/// One swarm of a scrape reply (BEP 48).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeFile {
    /// Seeders.
    pub complete: u32,
    /// Downloads completed.
    pub downloaded: u64,
    /// Leechers.
    pub incomplete: u32,
}

/// A scrape reply: `files`, keyed by the raw 20-byte info hash (each once,
/// in byte order, as bencode wants).
pub fn encode_scrape(files: impl IntoIterator<Item = (InfoHash, ScrapeFile)>) -> Vec<u8> {
    let files = bencode::dict(files.into_iter().map(|(h, f)| {
        (
            h.0.to_vec(),
            bencode::dict([
                ("complete", Value::Int(i64::from(f.complete))),
                (
                    "downloaded",
                    Value::Int(i64::try_from(f.downloaded).unwrap_or(i64::MAX)),
                ),
                ("incomplete", Value::Int(i64::from(f.incomplete))),
            ]),
        )
    }));
    bencode::dict([("files", files)]).encode()
}

/// Reads a scrape reply, in info-hash order.
pub fn decode_scrape(body: &[u8]) -> Result<Vec<(InfoHash, ScrapeFile)>, ReplyError> {
    let v = dict_of(body)?;
    let files = v
        .get("files")
        .ok_or(ReplyError::Missing("files"))?
        .as_dict()
        .ok_or(ReplyError::Malformed("files"))?;
    files
        .iter()
        .map(|(k, f)| {
            let h: [u8; 20] = k
                .as_slice()
                .try_into()
                .map_err(|_| ReplyError::Malformed("files"))?;
            let downloaded = f
                .get("downloaded")
                .map(|d| {
                    d.as_int()
                        .and_then(|i| u64::try_from(i).ok())
                        .ok_or(ReplyError::Malformed("downloaded"))
                })
                .transpose()?;
            Ok((
                InfoHash(h),
                ScrapeFile {
                    complete: count(f, "complete")?.unwrap_or(0),
                    downloaded: downloaded.unwrap_or(0),
                    incomplete: count(f, "incomplete")?.unwrap_or(0),
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that a UTF-8 decode of the query, or a lenient decoder, would
    /// spoil: NUL, 0xFF, `%`, `+`, `&`, `=`, `?`.
    fn nasty() -> [u8; 20] {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(&[0x00, 0xff, b'%', b'+', b'&', b'=', b'?', 0x80]);
        h[8..].copy_from_slice(b"abcdefghijkl");
        h
    }

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash(nasty()),
            peer_id: *b"-AR1360-\x01\x02xyzabcdefg",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: Some(12),
            compact: true,
            no_peer_id: false,
        }
    }

    #[test]
    fn an_announce_round_trips_through_its_raw_query() {
        let r = request();
        let q = r.to_query();
        assert!(
            q.starts_with("info_hash=%00%FF%25%2B%26%3D%3F%80abcdefghijkl&peer_id=-AR1360-%01%02")
        );
        assert_eq!(AnnounceRequest::parse(&q).unwrap(), r);
        let mut quiet = r.clone();
        quiet.event = Event::None;
        quiet.numwant = None;
        quiet.compact = false;
        quiet.no_peer_id = true;
        assert_eq!(AnnounceRequest::parse(&quiet.to_query()).unwrap(), quiet);
        assert!(r
            .summary()
            .contains("port=6881 left=3 event=started want=12 (HTTP)"));
    }

    #[test]
    fn what_clients_send_is_read() {
        // As aria2 sends it: lower-case escapes, extra parameters, no_peer_id.
        let q = "info_hash=%00%ff%25%2b%26%3d%3f%80abcdefghijkl&peer_id=-aria2-0000000000000&uploaded=0\
                 &downloaded=0&left=100&compact=1&key=abc&numwant=50&no_peer_id=1&port=6881\
                 &event=started&supportcrypto=1&ip=10.9.9.9";
        let a = AnnounceRequest::parse(q).unwrap();
        assert_eq!(a.info_hash.0, nasty());
        assert_eq!(&a.peer_id, b"-aria2-0000000000000");
        assert_eq!((a.port, a.left, a.numwant), (6881, 100, Some(50)));
        assert!(a.compact && a.no_peer_id);
        // `+` is a space, as in forms; -1 is "the default"; an empty event
        // is none; uploaded and downloaded may be left out.
        let mut h = [b' '; 20];
        h[19] = b'x';
        let q = format!(
            "info_hash={}x&peer_id=-qB4650-abcdefghijkl&port=1&left=0&numwant=-1&event=",
            "+".repeat(19)
        );
        let a = AnnounceRequest::parse(&q).unwrap();
        assert_eq!((a.info_hash.0, a.numwant, a.event), (h, None, Event::None));
        assert_eq!((a.uploaded, a.downloaded), (0, 0));
    }

    #[test]
    fn bad_announces_name_what_is_wrong() {
        let good = request().to_query();
        let with = |from: &str, to: &str| {
            assert!(good.contains(from), "{from}");
            AnnounceRequest::parse(&good.replacen(from, to, 1)).unwrap_err()
        };
        let short = "info_hash=%00%FF%25%2B%26%3D%3F%80abcdefghijk&";
        let long = "info_hash=%00%FF%25%2B%26%3D%3F%80abcdefghijklm&";
        let hash = "info_hash=%00%FF%25%2B%26%3D%3F%80abcdefghijkl&";
        assert_eq!(
            with(hash, short),
            QueryError::BadLength {
                name: "info_hash",
                len: 19
            }
        );
        assert_eq!(
            with(hash, long),
            QueryError::BadLength {
                name: "info_hash",
                len: 21
            }
        );
        assert_eq!(with(hash, ""), QueryError::Missing("info_hash"));
        assert_eq!(
            with(hash, "info_hash=%0G"),
            QueryError::BadEscape("info_hash")
        );
        assert_eq!(with("port=6881", "port=0"), QueryError::PortZero);
        assert_eq!(
            with("port=6881", "port=65536"),
            QueryError::PortRange(65536)
        );
        assert_eq!(with("&port=6881", ""), QueryError::Missing("port"));
        assert_eq!(with("&left=3", ""), QueryError::Missing("left"));
        for (from, to, name) in [
            ("left=3", "left=abc", "left"),
            ("left=3", "left=-3", "left"),
            ("left=3", "left=", "left"),
            ("left=3", "left=99999999999999999999", "left"),
            ("uploaded=1", "uploaded=1.5", "uploaded"),
            ("port=6881", "port=+1", "port"),
            ("numwant=12", "numwant=ten", "numwant"),
            ("numwant=12", "numwant=-x", "numwant"),
        ] {
            assert!(
                matches!(with(from, to), QueryError::BadNumber { name: n, .. } if n == name),
                "{to}"
            );
        }
        assert_eq!(
            with("event=started", "event=bogus"),
            QueryError::BadEvent("bogus".into())
        );
        assert_eq!(
            with("port=6881", "port=6881&port=6882"),
            QueryError::Repeated("port")
        );
        let huge = format!("{good}&pad={}", "x".repeat(MAX_QUERY));
        assert_eq!(
            AnnounceRequest::parse(&huge),
            Err(QueryError::TooLong(huge.len()))
        );
        assert!(QueryError::PortZero.to_string().contains("port 0"));
    }

    #[test]
    fn scrapes_are_bounded() {
        let hashes: Vec<InfoHash> = (0..3).map(|i| InfoHash([i; 20])).collect();
        assert_eq!(parse_scrape(&scrape_query(&hashes)).unwrap(), hashes);
        assert_eq!(parse_scrape(""), Err(QueryError::NoInfoHash));
        assert_eq!(parse_scrape("x=1"), Err(QueryError::NoInfoHash));
        let many: Vec<InfoHash> = (0..=MAX_SCRAPE_HASHES as u8)
            .map(|i| InfoHash([i; 20]))
            .collect();
        let q = scrape_query(&many[..MAX_SCRAPE_HASHES]);
        assert!(q.len() <= MAX_QUERY);
        assert_eq!(parse_scrape(&q).unwrap().len(), MAX_SCRAPE_HASHES);
        assert_eq!(
            parse_scrape(&scrape_query(&many)),
            Err(QueryError::TooManyInfoHashes(MAX_SCRAPE_HASHES + 1))
        );
        assert!(matches!(
            parse_scrape("info_hash=abc"),
            Err(QueryError::BadLength { len: 3, .. })
        ));
        // 50 hashes that need escaping everywhere still fit the query.
        let worst: Vec<InfoHash> = (0..MAX_SCRAPE_HASHES)
            .map(|_| InfoHash([0xff; 20]))
            .collect();
        assert!(scrape_query(&worst).len() <= MAX_QUERY);
    }

    #[test]
    fn announce_replies_round_trip_compact_and_not() {
        let h = AnnounceHeader {
            interval: 10,
            min_interval: 5,
            complete: 1,
            incomplete: 2,
        };
        let v4: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:6882".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:6883".parse().unwrap();
        let mut out = Vec::new();
        encode_announce(&mut out, &h, [v4, mapped, v6]);
        // Canonical bencode: what the generic encoder makes of it.
        assert_eq!(bencode::decode(&out).unwrap().encode(), out);
        assert!(out.windows(9).any(|w| w == b"5:peers12"));
        let r = AnnounceResponse::decode(&out).unwrap();
        let addrs: Vec<String> = r.peers.iter().map(|p| p.addr.to_string()).collect();
        assert_eq!(
            addrs,
            ["10.0.0.1:6881", "10.0.0.2:6882", "[2001:db8::1]:6883"]
        );
        assert_eq!(
            (r.interval, r.min_interval, r.complete, r.incomplete),
            (10, Some(5), 1, 2)
        );
        // No IPv6 peer: no peers6.
        let mut out = Vec::new();
        encode_announce(&mut out, &h, [v4]);
        assert!(!out.windows(8).any(|w| w == b"6:peers6"));

        let peers = vec![
            Peer {
                addr: v4,
                peer_id: Some(b"-qB4650-\x00bcdefghijkl".to_vec()),
            },
            Peer {
                addr: v6,
                peer_id: None,
            },
        ];
        let mut out = Vec::new();
        encode_announce_dicts(&mut out, &h, peers.clone());
        assert_eq!(bencode::decode(&out).unwrap().encode(), out);
        assert_eq!(AnnounceResponse::decode(&out).unwrap().peers, peers);
        assert!(AnnounceResponse::decode(&out)
            .unwrap()
            .summary()
            .contains("2 peers: 10.0.0.1:6881"));
    }

    #[test]
    fn failures_and_scrapes_decode() {
        let f = encode_failure("port 0 is not a port peers can connect to");
        assert_eq!(
            f,
            b"d14:failure reason41:port 0 is not a port peers can connect toe".to_vec()
        );
        assert_eq!(
            AnnounceResponse::decode(&f),
            Err(ReplyError::Failure(
                "port 0 is not a port peers can connect to".into()
            ))
        );
        assert_eq!(
            decode_scrape(&f).unwrap_err(),
            ReplyError::Failure("port 0 is not a port peers can connect to".into())
        );
        assert_eq!(AnnounceResponse::decode(b"le"), Err(ReplyError::NotDict));
        assert_eq!(
            AnnounceResponse::decode(b"de"),
            Err(ReplyError::Missing("interval"))
        );
        let a = ScrapeFile {
            complete: 1,
            downloaded: 7,
            incomplete: 2,
        };
        let b = ScrapeFile::default();
        let body = encode_scrape([
            (InfoHash([9; 20]), a),
            (InfoHash([1; 20]), b),
            (InfoHash([9; 20]), a),
        ]);
        assert_eq!(
            decode_scrape(&body).unwrap(),
            vec![(InfoHash([1; 20]), b), (InfoHash([9; 20]), a)]
        );
    }
}
