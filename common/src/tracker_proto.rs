//! The tracker's JSON protocol: one JSON object per UDP datagram.
//!
//! This module owns the request and reply types, their encoding to JSON bytes,
//! their strict decoding from bytes, and the protocol's limits and defaults.
//! `docs/PROTOCOL.md` describes the same messages for people. No I/O: the tracker
//! and the peer both call `decode` on what they received and `encode` on what
//! they send.
//!
//! Decoding is strict about what it knows (types, ranges, hex, lengths) and
//! tolerant of fields it does not know, so a newer peer can add fields without
//! breaking an older tracker. A [`DecodeError`] carries the request's `tid`
//! whenever it was readable, so the tracker can echo it in its `ERROR` reply.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::metainfo::{format_size, InfoHash};

/// Largest datagram either side accepts (64 KiB). Longer ones are `bad_request`.
pub const MAX_DATAGRAM_SIZE: usize = 64 * 1024;
/// Largest reply the tracker sends: the largest UDP payload over IPv4, so a
/// reply always fits one datagram. `SEARCH` results are cut to fit it.
pub const MAX_REPLY_SIZE: usize = 65_507;
/// Seconds between heartbeats the tracker asks for in `OK`.
pub const DEFAULT_INTERVAL_SECS: u32 = 10;
/// Seconds of silence after which the tracker forgets a peer.
pub const DEFAULT_TIMEOUT_SECS: u32 = 30;
/// A `peer_id` is 1 to this many characters.
pub const MAX_PEER_ID_CHARS: usize = 64;
/// A file `name` is 1 to this many characters.
pub const MAX_NAME_CHARS: usize = 255;
/// A `SEARCH` query is at most this many characters.
pub const MAX_QUERY_CHARS: usize = 255;

const REQUEST_TYPES: &str = "REGISTER, REQUEST, SEARCH, HEARTBEAT or EXIT";
const REPLY_TYPES: &str = "OK, PEERS, FILES or ERROR";

/// One file a peer shares or downloads, as announced in `REGISTER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub info_hash: InfoHash,
    pub name: String,
    /// Total size in bytes.
    pub size: u64,
    /// True when the peer has the whole file (a seeder), false while it downloads.
    pub complete: bool,
}

/// What a `REQUEST` asks about: a swarm by info hash, or by exact file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRef {
    InfoHash(InfoHash),
    Name(String),
}

/// A message from a peer to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Join (or refresh) the swarms of `files`. Additive: files registered
    /// earlier stay registered.
    Register {
        tid: u32,
        peer_id: String,
        /// The peer's TCP port; the tracker pairs it with the datagram's source IP.
        port: u16,
        files: Vec<FileInfo>,
    },
    /// Ask for the peers of one swarm. `peer_id` names the asker so it is left
    /// out of the list.
    Request {
        tid: u32,
        file: FileRef,
        peer_id: Option<String>,
    },
    /// List files whose name contains `query` (case-insensitive; empty lists all).
    Search { tid: u32, query: String },
    /// "I am still here": refreshes every registration of the peer.
    Heartbeat { tid: u32, peer_id: String },
    /// Leave every swarm now.
    Exit { tid: u32, peer_id: String },
}

/// One peer in a `PEERS` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// Where the peer accepts TCP connections (source IP of its datagrams plus
    /// its registered port).
    pub addr: SocketAddr,
    pub peer_id: String,
    pub complete: bool,
}

/// One file in a `FILES` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

/// The `code` of an `ERROR` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// The datagram could not be understood; `message` says why.
    BadRequest,
    /// No swarm has that info hash or name.
    NotFound,
    /// The tracker does not know this (source IP, peer_id): it expired, the
    /// tracker restarted, or it registered from another address. Re-register.
    UnknownPeer,
    /// A code this version does not know (kept so newer trackers stay readable).
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> ErrorCode {
        match s {
            "bad_request" => ErrorCode::BadRequest,
            "not_found" => ErrorCode::NotFound,
            "unknown_peer" => ErrorCode::UnknownPeer,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message from the tracker to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answer to `REGISTER`, `HEARTBEAT` and `EXIT`: heartbeat every `interval`
    /// seconds; silence for `timeout` seconds means the peer is forgotten.
    Ok {
        tid: u32,
        interval: u32,
        timeout: u32,
    },
    /// Answer to `REQUEST`. `seeders`/`leechers` count the whole swarm; `peers`
    /// is at most the tracker's `--max-peers`, without the asker.
    Peers {
        tid: u32,
        info_hash: InfoHash,
        name: String,
        size: u64,
        seeders: u32,
        leechers: u32,
        peers: Vec<PeerEntry>,
    },
    /// Answer to `SEARCH`.
    Files { tid: u32, files: Vec<FileSummary> },
    /// `tid` is `None` when the request's tid could not be read.
    Error {
        tid: Option<u32>,
        code: ErrorCode,
        message: String,
    },
}

/// Why a datagram could not be decoded, and the tid to echo if it was readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    pub tid: Option<u32>,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("datagram is {0} bytes, over the {MAX_DATAGRAM_SIZE}-byte limit")]
    TooLarge(usize),
    #[error("datagram is empty")]
    Empty,
    #[error("datagram is not valid UTF-8 (bad byte at offset {0})")]
    NotUtf8(usize),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    #[error("missing field `{0}`")]
    MissingField(String),
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("unknown message type `{found}` (expected {expected})")]
    UnknownType {
        found: String,
        expected: &'static str,
    },
    #[error("field `{field}` {problem}")]
    BadValue { field: String, problem: String },
    /// Anything else the JSON parser rejected (e.g. a duplicate field).
    #[error("{0}")]
    Invalid(String),
}

impl DecodeError {
    fn new(tid: Option<u32>, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { tid, kind }
    }
    fn missing(tid: u32, field: impl fmt::Display) -> DecodeError {
        DecodeError::new(Some(tid), DecodeErrorKind::MissingField(field.to_string()))
    }
    fn bad(tid: u32, field: impl fmt::Display, problem: impl Into<String>) -> DecodeError {
        DecodeError::new(
            Some(tid),
            DecodeErrorKind::BadValue {
                field: field.to_string(),
                problem: problem.into(),
            },
        )
    }
}

// ---------------------------------------------------------------------------
// Constructors and accessors

impl Request {
    pub fn tid(&self) -> u32 {
        match self {
            Request::Register { tid, .. }
            | Request::Request { tid, .. }
            | Request::Search { tid, .. }
            | Request::Heartbeat { tid, .. }
            | Request::Exit { tid, .. } => *tid,
        }
    }

    /// The wire name of the message type (`"REGISTER"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Request::Register { .. } => "REGISTER",
            Request::Request { .. } => "REQUEST",
            Request::Search { .. } => "SEARCH",
            Request::Heartbeat { .. } => "HEARTBEAT",
            Request::Exit { .. } => "EXIT",
        }
    }
}

impl Reply {
    /// `OK` with the default interval and timeout.
    pub fn ok(tid: u32) -> Reply {
        Reply::Ok {
            tid,
            interval: DEFAULT_INTERVAL_SECS,
            timeout: DEFAULT_TIMEOUT_SECS,
        }
    }

    pub fn error(tid: Option<u32>, code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Error {
            tid,
            code,
            message: message.into(),
        }
    }

    /// The `bad_request` reply for a datagram that failed to decode.
    pub fn bad_request(err: &DecodeError) -> Reply {
        Reply::error(err.tid, ErrorCode::BadRequest, err.to_string())
    }

    pub fn tid(&self) -> Option<u32> {
        match self {
            Reply::Ok { tid, .. } | Reply::Peers { tid, .. } | Reply::Files { tid, .. } => {
                Some(*tid)
            }
            Reply::Error { tid, .. } => *tid,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Reply::Ok { .. } => "OK",
            Reply::Peers { .. } => "PEERS",
            Reply::Files { .. } => "FILES",
            Reply::Error { .. } => "ERROR",
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding

impl Request {
    /// The request as one JSON datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the JSON datagram to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let mut o = JsonObject::begin(buf);
        o.str("type", self.type_name());
        o.uint("tid", u64::from(self.tid()));
        match self {
            Request::Register {
                peer_id,
                port,
                files,
                ..
            } => {
                o.str("peer_id", peer_id);
                o.uint("port", u64::from(*port));
                o.key("files");
                o.buf.push(b'[');
                for (i, f) in files.iter().enumerate() {
                    if i > 0 {
                        o.buf.push(b',');
                    }
                    let mut fo = JsonObject::begin(o.buf);
                    fo.hex("info_hash", &f.info_hash);
                    fo.str("name", &f.name);
                    fo.uint("size", f.size);
                    fo.bool("complete", f.complete);
                    fo.end();
                }
                o.buf.push(b']');
            }
            Request::Request { file, peer_id, .. } => {
                match file {
                    FileRef::InfoHash(h) => o.hex("info_hash", h),
                    FileRef::Name(n) => o.str("name", n),
                }
                if let Some(p) = peer_id {
                    o.str("peer_id", p);
                }
            }
            Request::Search { query, .. } => o.str("query", query),
            Request::Heartbeat { peer_id, .. } | Request::Exit { peer_id, .. } => {
                o.str("peer_id", peer_id)
            }
        }
        o.end();
    }
}

/// A peer as the tracker lists it, borrowed from wherever the tracker keeps it.
#[derive(Debug, Clone, Copy)]
pub struct PeerView<'a> {
    pub addr: SocketAddr,
    pub peer_id: &'a str,
    pub complete: bool,
}

/// The swarm fields of a `PEERS` reply, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SwarmView<'a> {
    pub info_hash: &'a InfoHash,
    pub name: &'a str,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

/// One file of a `FILES` reply, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct FileView<'a> {
    pub info_hash: &'a InfoHash,
    pub name: &'a str,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
}

/// Appends a `PEERS` reply to `buf` without building a [`Reply`] first, so the
/// tracker can answer straight from its registry, stopping before the peer that
/// would make the reply longer than `max_len` bytes. Returns how many peers it
/// wrote. [`Reply::encode_into`] uses this too, so both produce the same bytes.
pub fn encode_peers_reply<'a>(
    buf: &mut Vec<u8>,
    tid: u32,
    swarm: &SwarmView<'_>,
    peers: impl IntoIterator<Item = PeerView<'a>>,
    max_len: usize,
) -> usize {
    let start = buf.len();
    let mut o = JsonObject::begin(buf);
    o.str("type", "PEERS");
    o.uint("tid", u64::from(tid));
    o.hex("info_hash", swarm.info_hash);
    o.str("name", swarm.name);
    o.uint("size", swarm.size);
    o.uint("seeders", u64::from(swarm.seeders));
    o.uint("leechers", u64::from(swarm.leechers));
    o.key("peers");
    o.buf.push(b'[');
    let mut count = 0;
    for p in peers {
        let before = o.buf.len();
        if count > 0 {
            o.buf.push(b',');
        }
        // Written with whole constant fragments: this loop is the tracker's
        // hottest encoding path.
        o.buf.extend_from_slice(b"{\"addr\":");
        write_socket_addr(o.buf, &p.addr);
        o.buf.extend_from_slice(b",\"peer_id\":");
        write_json_str(o.buf, p.peer_id);
        o.buf.extend_from_slice(if p.complete {
            b",\"complete\":true}"
        } else {
            b",\"complete\":false}"
        });
        // 2 bytes still to come: "]}".
        if o.buf.len() - start + 2 > max_len {
            o.buf.truncate(before);
            break;
        }
        count += 1;
    }
    o.buf.push(b']');
    o.end();
    count
}

/// Appends a `FILES` reply to `buf`, stopping before the entry that would make
/// the reply longer than `max_len` bytes. Returns how many files it wrote.
pub fn encode_files_reply<'a>(
    buf: &mut Vec<u8>,
    tid: u32,
    files: impl IntoIterator<Item = FileView<'a>>,
    max_len: usize,
) -> usize {
    let start = buf.len();
    let mut o = JsonObject::begin(buf);
    o.str("type", "FILES");
    o.uint("tid", u64::from(tid));
    o.key("files");
    o.buf.push(b'[');
    let mut count = 0;
    for f in files {
        let before = o.buf.len();
        if count > 0 {
            o.buf.push(b',');
        }
        let mut fo = JsonObject::begin(o.buf);
        fo.hex("info_hash", f.info_hash);
        fo.str("name", f.name);
        fo.uint("size", f.size);
        fo.uint("seeders", u64::from(f.seeders));
        fo.uint("leechers", u64::from(f.leechers));
        fo.end();
        // 2 bytes still to come: "]}".
        if o.buf.len() - start + 2 > max_len {
            o.buf.truncate(before);
            break;
        }
        count += 1;
    }
    o.buf.push(b']');
    o.end();
    count
}

/// Appends an `ERROR` reply to `buf`.
pub fn encode_error_reply(buf: &mut Vec<u8>, tid: Option<u32>, code: &ErrorCode, message: &str) {
    let mut o = JsonObject::begin(buf);
    o.str("type", "ERROR");
    match tid {
        Some(t) => o.uint("tid", u64::from(t)),
        None => o.null("tid"),
    }
    o.str("code", code.as_str());
    o.str("message", message);
    o.end();
}

/// Appends an `OK` reply to `buf`.
pub fn encode_ok_reply(buf: &mut Vec<u8>, tid: u32, interval: u32, timeout: u32) {
    let mut o = JsonObject::begin(buf);
    o.str("type", "OK");
    o.uint("tid", u64::from(tid));
    o.uint("interval", u64::from(interval));
    o.uint("timeout", u64::from(timeout));
    o.end();
}

impl Reply {
    /// The reply as one JSON datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the JSON datagram to `buf`. `FILES` is not cut here; the tracker
    /// uses [`encode_files_reply`] with [`MAX_REPLY_SIZE`].
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        match self {
            Reply::Ok {
                tid,
                interval,
                timeout,
            } => encode_ok_reply(buf, *tid, *interval, *timeout),
            Reply::Peers {
                tid,
                info_hash,
                name,
                size,
                seeders,
                leechers,
                peers,
            } => {
                let swarm = SwarmView {
                    info_hash,
                    name,
                    size: *size,
                    seeders: *seeders,
                    leechers: *leechers,
                };
                encode_peers_reply(
                    buf,
                    *tid,
                    &swarm,
                    peers.iter().map(|p| PeerView {
                        addr: p.addr,
                        peer_id: &p.peer_id,
                        complete: p.complete,
                    }),
                    usize::MAX,
                );
            }
            Reply::Files { tid, files } => {
                encode_files_reply(
                    buf,
                    *tid,
                    files.iter().map(|f| FileView {
                        info_hash: &f.info_hash,
                        name: &f.name,
                        size: f.size,
                        seeders: f.seeders,
                        leechers: f.leechers,
                    }),
                    usize::MAX,
                );
            }
            Reply::Error { tid, code, message } => encode_error_reply(buf, *tid, code, message),
        }
    }
}

/// Writes one JSON object field by field; keys are our own ASCII constants.
struct JsonObject<'b> {
    buf: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> JsonObject<'b> {
    fn begin(buf: &'b mut Vec<u8>) -> JsonObject<'b> {
        buf.push(b'{');
        JsonObject { buf, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        write_json_str(self.buf, v);
    }
    fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        write_u64(self.buf, v);
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.buf
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }
    fn null(&mut self, k: &str) {
        self.key(k);
        self.buf.extend_from_slice(b"null");
    }
    fn hex(&mut self, k: &str, h: &InfoHash) {
        self.key(k);
        self.buf.push(b'"');
        crate::hex::push_hex(self.buf, &h.0);
        self.buf.push(b'"');
    }
    fn end(self) {
        self.buf.push(b'}');
    }
}

fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    // Most strings (names, peer ids) need no escaping; copy those directly.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// "00" to "99": two digits per division, as integer formatting libraries do.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn write_u64(buf: &mut Vec<u8>, mut v: u64) {
    if v < 10 {
        buf.push(b'0' + v as u8);
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i] = DIGIT_PAIRS[pair];
        digits[i + 1] = DIGIT_PAIRS[pair + 1];
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        digits[i] = DIGIT_PAIRS[pair];
        digits[i + 1] = DIGIT_PAIRS[pair + 1];
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    // Byte pushes rather than extend_from_slice: for a handful of bytes a
    // memcpy call costs more than the copy.
    for &d in &digits[i..] {
        buf.push(d);
    }
}

/// Decimal digits of 0..=255: IPv4 octets are written on every peer of every
/// reply, so they get a table.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, te, o) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + te, b'0' + o], 3)
        } else if i >= 10 {
            ([b'0' + te, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        i += 1;
    }
    t
};

fn write_socket_addr(buf: &mut Vec<u8>, addr: &SocketAddr) {
    buf.push(b'"');
    match addr {
        SocketAddr::V4(a) => {
            for (i, octet) in a.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                let (digits, len) = &OCTETS[usize::from(octet)];
                for &d in &digits[..usize::from(*len)] {
                    buf.push(d);
                }
            }
            buf.push(b':');
            write_u64(buf, u64::from(a.port()));
        }
        SocketAddr::V6(a) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail.
            let _ = write!(buf, "{a}");
        }
    }
    buf.push(b'"');
}

// ---------------------------------------------------------------------------
// Decoding
//
// The fast path deserializes into a struct of optional, borrowed fields and then
// validates it. When serde rejects the datagram, a slower path looks at it as a
// `serde_json::Value` to name the field that is wrong and to recover the tid.

/// A JSON string, borrowed from the datagram unless it had escapes.
struct JStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JStr<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JStr<'de>, E> {
                Ok(JStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<JStr<'de>, E> {
                Ok(JStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<JStr<'de>, E> {
                Ok(JStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<JStr<'a>>,
    tid: Option<u32>,
    #[serde(borrow)]
    peer_id: Option<JStr<'a>>,
    port: Option<u16>,
    #[serde(borrow)]
    files: Option<Vec<RawRegFile<'a>>>,
    #[serde(borrow)]
    info_hash: Option<JStr<'a>>,
    #[serde(borrow)]
    name: Option<JStr<'a>>,
    #[serde(borrow)]
    query: Option<JStr<'a>>,
}

#[derive(Deserialize)]
struct RawRegFile<'a> {
    #[serde(borrow)]
    info_hash: Option<JStr<'a>>,
    #[serde(borrow)]
    name: Option<JStr<'a>>,
    size: Option<u64>,
    complete: Option<bool>,
}

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<JStr<'a>>,
    tid: Option<u32>,
    interval: Option<u32>,
    timeout: Option<u32>,
    #[serde(borrow)]
    info_hash: Option<JStr<'a>>,
    #[serde(borrow)]
    name: Option<JStr<'a>>,
    size: Option<u64>,
    seeders: Option<u32>,
    leechers: Option<u32>,
    #[serde(borrow)]
    peers: Option<Vec<RawPeer<'a>>>,
    #[serde(borrow)]
    files: Option<Vec<RawFileSummary<'a>>>,
    #[serde(borrow)]
    code: Option<JStr<'a>>,
    #[serde(borrow)]
    message: Option<JStr<'a>>,
}

#[derive(Deserialize)]
struct RawPeer<'a> {
    #[serde(borrow)]
    addr: Option<JStr<'a>>,
    #[serde(borrow)]
    peer_id: Option<JStr<'a>>,
    complete: Option<bool>,
}

#[derive(Deserialize)]
struct RawFileSummary<'a> {
    #[serde(borrow)]
    info_hash: Option<JStr<'a>>,
    #[serde(borrow)]
    name: Option<JStr<'a>>,
    size: Option<u64>,
    seeders: Option<u32>,
    leechers: Option<u32>,
}

/// The JSON kind a known field must have; used to explain serde's rejections.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    U16,
    U32,
    U64,
    Bool,
    Array(&'static [(&'static str, Kind)]),
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::U16 => "an integer from 0 to 65535",
            Kind::U32 => "an integer from 0 to 4294967295",
            Kind::U64 => "a non-negative integer",
            Kind::Bool => "true or false",
            Kind::Array(_) => "an array of objects",
        }
    }

    fn matches(self, v: &Value) -> bool {
        let max = match self {
            Kind::Str => return v.is_string(),
            Kind::Bool => return v.is_boolean(),
            Kind::Array(_) => return v.is_array(),
            Kind::U16 => u64::from(u16::MAX),
            Kind::U32 => u64::from(u32::MAX),
            Kind::U64 => u64::MAX,
        };
        v.as_u64().is_some_and(|n| n <= max)
    }
}

const REG_FILE_FIELDS: &[(&str, Kind)] = &[
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("size", Kind::U64),
    ("complete", Kind::Bool),
];
const REQUEST_FIELDS: &[(&str, Kind)] = &[
    ("type", Kind::Str),
    ("tid", Kind::U32),
    ("peer_id", Kind::Str),
    ("port", Kind::U16),
    ("files", Kind::Array(REG_FILE_FIELDS)),
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("query", Kind::Str),
];
const PEER_FIELDS: &[(&str, Kind)] = &[
    ("addr", Kind::Str),
    ("peer_id", Kind::Str),
    ("complete", Kind::Bool),
];
const SUMMARY_FIELDS: &[(&str, Kind)] = &[
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("size", Kind::U64),
    ("seeders", Kind::U32),
    ("leechers", Kind::U32),
];
const REPLY_FIELDS: &[(&str, Kind)] = &[
    ("type", Kind::Str),
    ("tid", Kind::U32),
    ("interval", Kind::U32),
    ("timeout", Kind::U32),
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("size", Kind::U64),
    ("seeders", Kind::U32),
    ("leechers", Kind::U32),
    ("peers", Kind::Array(PEER_FIELDS)),
    ("files", Kind::Array(SUMMARY_FIELDS)),
    ("code", Kind::Str),
    ("message", Kind::Str),
];

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(20).collect();
            if short.len() < s.len() {
                format!("string \"{short}…\"")
            } else {
                format!("string \"{short}\"")
            }
        }
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks size and UTF-8, before any JSON parsing.
fn precheck(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() > MAX_DATAGRAM_SIZE {
        return Err(DecodeError::new(
            None,
            DecodeErrorKind::TooLarge(bytes.len()),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::new(None, DecodeErrorKind::Empty));
    }
    Ok(())
}

/// The slow path after serde rejected `bytes`: UTF-8 first, then the JSON.
fn explain(
    bytes: &[u8],
    serde_err: &serde_json::Error,
    fields: &[(&'static str, Kind)],
) -> DecodeError {
    // serde_json checks UTF-8 itself (so valid datagrams are scanned once);
    // only here, on failure, is the whole datagram checked to say so.
    match std::str::from_utf8(bytes) {
        Ok(text) => diagnose(text, serde_err, fields),
        Err(e) => DecodeError::new(None, DecodeErrorKind::NotUtf8(e.valid_up_to())),
    }
}

/// Explains why serde rejected `text`: names the offending field when it can.
fn diagnose(
    text: &str,
    serde_err: &serde_json::Error,
    fields: &[(&'static str, Kind)],
) -> DecodeError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return DecodeError::new(None, DecodeErrorKind::NotJson(e.to_string())),
    };
    let Some(obj) = value.as_object() else {
        return DecodeError::new(None, DecodeErrorKind::NotObject(kind_name(&value)));
    };
    let tid = obj
        .get("tid")
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok());
    let wrong = |field: String, kind: Kind, v: &Value| {
        DecodeError::new(
            tid,
            DecodeErrorKind::WrongType {
                field,
                expected: kind.expected(),
                found: describe(v),
            },
        )
    };
    for &(name, kind) in fields {
        let Some(v) = obj.get(name) else { continue };
        if v.is_null() {
            continue;
        }
        if !kind.matches(v) {
            return wrong(name.to_string(), kind, v);
        }
        if let (Kind::Array(item_fields), Some(items)) = (kind, v.as_array()) {
            for (i, item) in items.iter().enumerate() {
                let Some(item_obj) = item.as_object() else {
                    return DecodeError::new(
                        tid,
                        DecodeErrorKind::WrongType {
                            field: format!("{name}[{i}]"),
                            expected: "an object",
                            found: describe(item),
                        },
                    );
                };
                for &(sub, sub_kind) in item_fields {
                    if let Some(sv) = item_obj.get(sub) {
                        if !sv.is_null() && !sub_kind.matches(sv) {
                            return wrong(format!("{name}[{i}].{sub}"), sub_kind, sv);
                        }
                    }
                }
            }
        }
    }
    // Not a type problem we know how to name (e.g. a duplicate field): pass on
    // serde's own words.
    DecodeError::new(tid, DecodeErrorKind::Invalid(serde_err.to_string()))
}

/// `files[2].name`: a field inside an array item, formatted only when an
/// error names it (formatting on every decode showed up in profiles).
#[derive(Clone, Copy)]
struct Item(&'static str, usize, &'static str);

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}].{}", self.0, self.1, self.2)
    }
}

fn check_chars(
    tid: u32,
    field: impl fmt::Display + Copy,
    s: &str,
    min: usize,
    max: usize,
) -> Result<(), DecodeError> {
    // ASCII (the usual case) needs no char decoding.
    let n = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    if n < min || n > max {
        return Err(DecodeError::bad(
            tid,
            field,
            format!("must be {min} to {max} characters, found {n}"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(DecodeError::bad(
            tid,
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn req_str<'x>(
    tid: u32,
    field: impl fmt::Display,
    v: &'x Option<JStr<'_>>,
) -> Result<&'x str, DecodeError> {
    match v {
        Some(s) => Ok(&s.0),
        None => Err(DecodeError::missing(tid, field)),
    }
}

fn req<T: Copy>(tid: u32, field: impl fmt::Display, v: Option<T>) -> Result<T, DecodeError> {
    v.ok_or_else(|| DecodeError::missing(tid, field))
}

fn peer_id_field(
    tid: u32,
    field: impl fmt::Display + Copy,
    s: &str,
) -> Result<String, DecodeError> {
    check_chars(tid, field, s, 1, MAX_PEER_ID_CHARS)?;
    Ok(s.to_string())
}

fn name_field(tid: u32, field: impl fmt::Display + Copy, s: &str) -> Result<String, DecodeError> {
    check_chars(tid, field, s, 1, MAX_NAME_CHARS)?;
    Ok(s.to_string())
}

fn hash_field(tid: u32, field: impl fmt::Display, s: &str) -> Result<InfoHash, DecodeError> {
    crate::hex::decode_20(s).map(InfoHash).map_err(|_| {
        DecodeError::bad(
            tid,
            field,
            format!(
                "must be 40 hex digits, found {}",
                describe(&Value::String(s.to_string()))
            ),
        )
    })
}

impl Request {
    /// Decodes one datagram received by the tracker.
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        precheck(bytes)?;
        let raw: RawRequest<'_> = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => return Err(explain(bytes, &e, REQUEST_FIELDS)),
        };
        let kind = raw.kind.as_ref().map(|k| &*k.0);
        let Some(tid) = raw.tid else {
            return Err(DecodeError::new(
                None,
                DecodeErrorKind::MissingField("tid".to_string()),
            ));
        };
        let Some(kind) = kind else {
            return Err(DecodeError::missing(tid, "type"));
        };
        match kind {
            "REGISTER" => {
                let peer_id =
                    peer_id_field(tid, "peer_id", req_str(tid, "peer_id", &raw.peer_id)?)?;
                let port = req(tid, "port", raw.port)?;
                if port == 0 {
                    return Err(DecodeError::bad(
                        tid,
                        "port",
                        "must be from 1 to 65535, found 0",
                    ));
                }
                let Some(raw_files) = raw.files else {
                    return Err(DecodeError::missing(tid, "files"));
                };
                let mut files = Vec::with_capacity(raw_files.len());
                for (i, f) in raw_files.iter().enumerate() {
                    let field = |sub: &'static str| Item("files", i, sub);
                    let info_hash = hash_field(
                        tid,
                        field("info_hash"),
                        req_str(tid, field("info_hash"), &f.info_hash)?,
                    )?;
                    let name =
                        name_field(tid, field("name"), req_str(tid, field("name"), &f.name)?)?;
                    let size = req(tid, field("size"), f.size)?;
                    let complete = req(tid, field("complete"), f.complete)?;
                    files.push(FileInfo {
                        info_hash,
                        name,
                        size,
                        complete,
                    });
                }
                Ok(Request::Register {
                    tid,
                    peer_id,
                    port,
                    files,
                })
            }
            "REQUEST" => {
                let file = match (&raw.info_hash, &raw.name) {
                    (Some(h), None) => FileRef::InfoHash(hash_field(tid, "info_hash", &h.0)?),
                    (None, Some(n)) => FileRef::Name(name_field(tid, "name", &n.0)?),
                    (Some(_), Some(_)) => {
                        return Err(DecodeError::new(
                            Some(tid),
                            DecodeErrorKind::Invalid(
                                "give either `info_hash` or `name`, not both".to_string(),
                            ),
                        ))
                    }
                    (None, None) => return Err(DecodeError::missing(tid, "info_hash` or `name")),
                };
                let peer_id = match &raw.peer_id {
                    Some(p) => Some(peer_id_field(tid, "peer_id", &p.0)?),
                    None => None,
                };
                Ok(Request::Request { tid, file, peer_id })
            }
            "SEARCH" => {
                let query = req_str(tid, "query", &raw.query)?;
                let n = query.chars().count();
                if n > MAX_QUERY_CHARS {
                    return Err(DecodeError::bad(
                        tid,
                        "query",
                        format!("must be at most {MAX_QUERY_CHARS} characters, found {n}"),
                    ));
                }
                Ok(Request::Search {
                    tid,
                    query: query.to_string(),
                })
            }
            "HEARTBEAT" | "EXIT" => {
                let peer_id =
                    peer_id_field(tid, "peer_id", req_str(tid, "peer_id", &raw.peer_id)?)?;
                Ok(if kind == "EXIT" {
                    Request::Exit { tid, peer_id }
                } else {
                    Request::Heartbeat { tid, peer_id }
                })
            }
            other => Err(DecodeError::new(
                Some(tid),
                DecodeErrorKind::UnknownType {
                    found: other.chars().take(40).collect(),
                    expected: REQUEST_TYPES,
                },
            )),
        }
    }
}

impl Reply {
    /// Decodes one datagram received from the tracker.
    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        precheck(bytes)?;
        let raw: RawReply<'_> = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => return Err(explain(bytes, &e, REPLY_FIELDS)),
        };
        let Some(kind) = raw.kind.as_ref().map(|k| &*k.0) else {
            return Err(DecodeError::new(
                raw.tid,
                DecodeErrorKind::MissingField("type".to_string()),
            ));
        };
        if kind == "ERROR" {
            // The only reply whose tid may be null.
            let code =
                req_str(0, "code", &raw.code).map_err(|e| DecodeError { tid: raw.tid, ..e })?;
            let message = raw
                .message
                .as_ref()
                .map(|m| m.0.to_string())
                .unwrap_or_default();
            return Ok(Reply::Error {
                tid: raw.tid,
                code: ErrorCode::parse(code),
                message,
            });
        }
        let Some(tid) = raw.tid else {
            return Err(DecodeError::new(
                None,
                DecodeErrorKind::MissingField("tid".to_string()),
            ));
        };
        match kind {
            "OK" => Ok(Reply::Ok {
                tid,
                interval: req(tid, "interval", raw.interval)?,
                timeout: req(tid, "timeout", raw.timeout)?,
            }),
            "PEERS" => {
                let info_hash =
                    hash_field(tid, "info_hash", req_str(tid, "info_hash", &raw.info_hash)?)?;
                let name = req_str(tid, "name", &raw.name)?.to_string();
                let Some(raw_peers) = raw.peers else {
                    return Err(DecodeError::missing(tid, "peers"));
                };
                let mut peers = Vec::with_capacity(raw_peers.len());
                for (i, p) in raw_peers.iter().enumerate() {
                    let field = |sub: &'static str| Item("peers", i, sub);
                    let addr_s = req_str(tid, field("addr"), &p.addr)?;
                    let addr = addr_s.parse::<SocketAddr>().map_err(|_| {
                        DecodeError::bad(
                            tid,
                            field("addr"),
                            format!("must be IP:PORT, found \"{addr_s}\""),
                        )
                    })?;
                    peers.push(PeerEntry {
                        addr,
                        peer_id: req_str(tid, field("peer_id"), &p.peer_id)?.to_string(),
                        complete: req(tid, field("complete"), p.complete)?,
                    });
                }
                Ok(Reply::Peers {
                    tid,
                    info_hash,
                    name,
                    size: req(tid, "size", raw.size)?,
                    seeders: req(tid, "seeders", raw.seeders)?,
                    leechers: req(tid, "leechers", raw.leechers)?,
                    peers,
                })
            }
            "FILES" => {
                let Some(raw_files) = raw.files else {
                    return Err(DecodeError::missing(tid, "files"));
                };
                let mut files = Vec::with_capacity(raw_files.len());
                for (i, f) in raw_files.iter().enumerate() {
                    let field = |sub: &'static str| Item("files", i, sub);
                    files.push(FileSummary {
                        info_hash: hash_field(
                            tid,
                            field("info_hash"),
                            req_str(tid, field("info_hash"), &f.info_hash)?,
                        )?,
                        name: req_str(tid, field("name"), &f.name)?.to_string(),
                        size: req(tid, field("size"), f.size)?,
                        seeders: req(tid, field("seeders"), f.seeders)?,
                        leechers: req(tid, field("leechers"), f.leechers)?,
                    });
                }
                Ok(Reply::Files { tid, files })
            }
            other => Err(DecodeError::new(
                Some(tid),
                DecodeErrorKind::UnknownType {
                    found: other.chars().take(40).collect(),
                    expected: REPLY_TYPES,
                },
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// One-line summaries for --trace

/// The first 12 hex digits of an info hash and an ellipsis: enough to tell
/// swarms apart in a trace.
pub fn short_hash(h: &InfoHash) -> String {
    let mut s = h.to_hex();
    s.truncate(12);
    s.push('…');
    s
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Request {
    /// One line for people, e.g.
    /// `REGISTER report.pdf (4.0 MiB, complete) peer=-MT0100-abc port=6881 tid=1`.
    pub fn summary(&self) -> String {
        let mut s = String::from(self.type_name());
        match self {
            Request::Register {
                peer_id,
                port,
                files,
                ..
            } => {
                if files.is_empty() {
                    s.push_str(" (no files)");
                } else if files.len() > 1 {
                    let _ = write!(s, " {}:", plural(files.len(), "file", "files"));
                }
                for (i, f) in files.iter().take(3).enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(
                        s,
                        " {} ({}, {})",
                        f.name,
                        format_size(f.size),
                        if f.complete {
                            "complete"
                        } else {
                            "downloading"
                        }
                    );
                }
                if files.len() > 3 {
                    let _ = write!(s, " and {} more", files.len() - 3);
                }
                let _ = write!(s, " peer={peer_id} port={port}");
            }
            Request::Request { file, peer_id, .. } => {
                match file {
                    FileRef::InfoHash(h) => {
                        let _ = write!(s, " {}", short_hash(h));
                    }
                    FileRef::Name(n) => {
                        let _ = write!(s, " \"{n}\"");
                    }
                }
                if let Some(p) = peer_id {
                    let _ = write!(s, " peer={p}");
                }
            }
            Request::Search { query, .. } => {
                let _ = write!(s, " \"{query}\"");
            }
            Request::Heartbeat { peer_id, .. } | Request::Exit { peer_id, .. } => {
                let _ = write!(s, " peer={peer_id}");
            }
        }
        let _ = write!(s, " tid={}", self.tid());
        s
    }
}

impl Reply {
    /// One line for people, e.g.
    /// `PEERS report.pdf (4.0 MiB) 1 seeder, 0 leechers: 127.0.0.1:7001 tid=2`.
    pub fn summary(&self) -> String {
        let mut s = String::from(self.type_name());
        match self {
            Reply::Ok {
                interval, timeout, ..
            } => {
                let _ = write!(s, " interval={interval}s timeout={timeout}s");
            }
            Reply::Peers {
                name,
                size,
                seeders,
                leechers,
                peers,
                ..
            } => {
                let _ = write!(
                    s,
                    " {name} ({}) {}, {}: ",
                    format_size(*size),
                    plural(*seeders as usize, "seeder", "seeders"),
                    plural(*leechers as usize, "leecher", "leechers"),
                );
                if peers.is_empty() {
                    s.push_str("no other peers");
                }
                for (i, p) in peers.iter().take(3).enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{}", p.addr);
                }
                if peers.len() > 3 {
                    let _ = write!(s, " and {} more", peers.len() - 3);
                }
            }
            Reply::Files { files, .. } => {
                let _ = write!(s, " {}", plural(files.len(), "file", "files"));
                for (i, f) in files.iter().take(3).enumerate() {
                    s.push_str(if i == 0 { ": " } else { ", " });
                    let _ = write!(s, "{} ({}S/{}L)", f.name, f.seeders, f.leechers);
                }
                if files.len() > 3 {
                    let _ = write!(s, " and {} more", files.len() - 3);
                }
            }
            Reply::Error { code, message, .. } => {
                let _ = write!(s, " {code}: {message}");
            }
        }
        match self.tid() {
            Some(t) => {
                let _ = write!(s, " tid={t}");
            }
            None => s.push_str(" tid=null"),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(byte: u8) -> InfoHash {
        InfoHash([byte; 20])
    }

    fn hex_of(byte: u8) -> String {
        h(byte).to_hex()
    }

    fn err(bytes: &[u8]) -> DecodeError {
        match Request::decode(bytes) {
            Ok(r) => panic!("expected an error, decoded {r:?}"),
            Err(e) => e,
        }
    }

    fn err_str(s: &str) -> DecodeError {
        err(s.as_bytes())
    }

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Register {
                tid: 1,
                peer_id: "-MT0100-abcdefghijkl".into(),
                port: 6881,
                files: vec![
                    FileInfo {
                        info_hash: h(0xab),
                        name: "report.pdf".into(),
                        size: 4 * 1024 * 1024,
                        complete: true,
                    },
                    FileInfo {
                        info_hash: h(0x01),
                        name: "naïve \"quoted\" \\ name\n".replace('\n', ""),
                        size: 0,
                        complete: false,
                    },
                ],
            },
            Request::Register {
                tid: u32::MAX,
                peer_id: "p".into(),
                port: 65535,
                files: vec![],
            },
            Request::Request {
                tid: 2,
                file: FileRef::InfoHash(h(0xcd)),
                peer_id: Some("me".into()),
            },
            Request::Request {
                tid: 3,
                file: FileRef::Name("a.txt".into()),
                peer_id: None,
            },
            Request::Search {
                tid: 4,
                query: "".into(),
            },
            Request::Search {
                tid: 5,
                query: "Rep".into(),
            },
            Request::Heartbeat {
                tid: 6,
                peer_id: "x".repeat(64),
            },
            Request::Exit {
                tid: 0,
                peer_id: "ünïcødé".into(),
            },
        ]
    }

    #[test]
    fn every_request_round_trips() {
        for r in all_requests() {
            let bytes = r.encode();
            assert_eq!(
                Request::decode(&bytes).unwrap(),
                r,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            // And it is plain JSON any tool can read.
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["type"], r.type_name());
            assert_eq!(v["tid"], r.tid());
        }
    }

    fn all_replies() -> Vec<Reply> {
        vec![
            Reply::ok(1),
            Reply::Ok {
                tid: 9,
                interval: 5,
                timeout: 15,
            },
            Reply::Peers {
                tid: 2,
                info_hash: h(0xab),
                name: "report.pdf".into(),
                size: 123,
                seeders: 1,
                leechers: 1,
                peers: vec![
                    PeerEntry {
                        addr: "127.0.0.1:6881".parse().unwrap(),
                        peer_id: "a".into(),
                        complete: true,
                    },
                    PeerEntry {
                        addr: "[::1]:7000".parse().unwrap(),
                        peer_id: "b\"c".into(),
                        complete: false,
                    },
                ],
            },
            Reply::Peers {
                tid: 2,
                info_hash: h(0),
                name: "".into(),
                size: 0,
                seeders: 0,
                leechers: 0,
                peers: vec![],
            },
            Reply::Files {
                tid: 3,
                files: vec![FileSummary {
                    info_hash: h(7),
                    name: "x".into(),
                    size: u64::MAX,
                    seeders: 3,
                    leechers: 4,
                }],
            },
            Reply::Files {
                tid: 3,
                files: vec![],
            },
            Reply::error(Some(4), ErrorCode::UnknownPeer, "who?"),
            Reply::error(None, ErrorCode::BadRequest, "not JSON"),
            Reply::error(Some(5), ErrorCode::NotFound, ""),
            Reply::error(Some(6), ErrorCode::Other("busy".into()), "later"),
        ]
    }

    #[test]
    fn every_reply_round_trips() {
        for r in all_replies() {
            let bytes = r.encode();
            assert_eq!(
                Reply::decode(&bytes).unwrap(),
                r,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
        }
    }

    #[test]
    fn decodes_the_documented_examples() {
        let reg = format!(
            r#"{{"type":"REGISTER","tid":1,"peer_id":"-MT0100-abc","port":6881,"files":[{{"info_hash":"{}","name":"a.txt","size":123,"complete":true}}]}}"#,
            hex_of(0xab).to_uppercase()
        );
        let r = Request::decode(reg.as_bytes()).unwrap();
        assert_eq!(
            r,
            Request::Register {
                tid: 1,
                peer_id: "-MT0100-abc".into(),
                port: 6881,
                files: vec![FileInfo {
                    info_hash: h(0xab),
                    name: "a.txt".into(),
                    size: 123,
                    complete: true
                }]
            }
        );
        let ok = Reply::decode(br#"{"type":"OK","tid":1,"interval":10,"timeout":30}"#).unwrap();
        assert_eq!(ok, Reply::ok(1));
        // Unknown fields and surrounding whitespace are tolerated.
        let s = Request::decode(
            b" {\"type\":\"SEARCH\",\"tid\":3,\"query\":\"rep\",\"extra\":[1,2]}\n",
        )
        .unwrap();
        assert_eq!(
            s,
            Request::Search {
                tid: 3,
                query: "rep".into()
            }
        );
        // Escaped strings decode too.
        let e = Request::decode(br#"{"type":"EXIT","tid":5,"peer_id":"a\u0062c"}"#).unwrap();
        assert_eq!(
            e,
            Request::Exit {
                tid: 5,
                peer_id: "abc".into()
            }
        );
    }

    #[test]
    fn too_large_is_rejected_before_parsing() {
        let big = vec![b' '; MAX_DATAGRAM_SIZE + 1];
        let e = err(&big);
        assert_eq!(e.kind, DecodeErrorKind::TooLarge(MAX_DATAGRAM_SIZE + 1));
        assert_eq!(e.tid, None);
        assert!(e.to_string().contains("65537 bytes"), "{e}");
    }

    #[test]
    fn empty_and_whitespace_are_rejected() {
        assert_eq!(err(b"").kind, DecodeErrorKind::Empty);
        assert_eq!(err(b" \n").kind, DecodeErrorKind::Empty);
    }

    #[test]
    fn not_utf8_is_rejected() {
        let e = err(b"{\"type\":\"SEARCH\",\"tid\":1,\"query\":\"\xff\"}");
        assert_eq!(e.kind, DecodeErrorKind::NotUtf8(34));
    }

    #[test]
    fn not_json_is_rejected() {
        for bad in [
            "hello",
            "{",
            "{\"tid\":1,}",
            "{\"tid\":1} trailing",
            "{'tid':1}",
        ] {
            let e = err_str(bad);
            assert!(
                matches!(e.kind, DecodeErrorKind::NotJson(_)),
                "{bad}: {e:?}"
            );
            assert_eq!(e.tid, None);
            assert!(e.to_string().starts_with("not JSON: "), "{e}");
        }
    }

    #[test]
    fn non_objects_are_rejected() {
        assert_eq!(
            err_str("[1,2]").kind,
            DecodeErrorKind::NotObject("an array")
        );
        assert_eq!(err_str("42").kind, DecodeErrorKind::NotObject("a number"));
        assert_eq!(
            err_str("\"REGISTER\"").kind,
            DecodeErrorKind::NotObject("a string")
        );
        assert_eq!(err_str("null").kind, DecodeErrorKind::NotObject("null"));
    }

    #[test]
    fn missing_tid_or_type() {
        let e = err_str(r#"{"type":"SEARCH","query":""}"#);
        assert_eq!(e.kind, DecodeErrorKind::MissingField("tid".into()));
        assert_eq!(e.tid, None);
        let e = err_str(r#"{"type":"SEARCH","tid":null,"query":""}"#);
        assert_eq!(e.kind, DecodeErrorKind::MissingField("tid".into()));
        let e = err_str(r#"{"tid":7,"query":""}"#);
        assert_eq!(e.kind, DecodeErrorKind::MissingField("type".into()));
        assert_eq!(e.tid, Some(7));
    }

    #[test]
    fn wrong_tid_types_are_named_and_not_echoed() {
        for bad in [r#""7""#, "-1", "1.5", "4294967296", "true", "[7]"] {
            let e = err_str(&format!(r#"{{"type":"SEARCH","tid":{bad},"query":""}}"#));
            assert_eq!(e.tid, None, "{bad}");
            match &e.kind {
                DecodeErrorKind::WrongType { field, .. } => assert_eq!(field, "tid"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_field_types_are_named_and_tid_echoed() {
        let hx = hex_of(1);
        let cases = [
            (r#"{"type":5,"tid":3}"#.to_string(), "type"),
            (
                r#"{"type":"HEARTBEAT","tid":3,"peer_id":42}"#.to_string(),
                "peer_id",
            ),
            (
                r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":"6881","files":[]}"#.to_string(),
                "port",
            ),
            (
                r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":70000,"files":[]}"#.to_string(),
                "port",
            ),
            (
                r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":-1,"files":[]}"#.to_string(),
                "port",
            ),
            (
                r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":{}}"#.to_string(),
                "files",
            ),
            (
                r#"{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[7]}"#.to_string(),
                "files[0]",
            ),
            (
                format!(
                    r#"{{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1,"complete":true}},{{"info_hash":"{hx}","name":"b","size":-5,"complete":true}}]}}"#
                ),
                "files[1].size",
            ),
            (
                format!(
                    r#"{{"type":"REGISTER","tid":3,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1,"complete":"yes"}}]}}"#
                ),
                "files[0].complete",
            ),
            (
                r#"{"type":"SEARCH","tid":3,"query":["a"]}"#.to_string(),
                "query",
            ),
            (
                r#"{"type":"REQUEST","tid":3,"info_hash":1}"#.to_string(),
                "info_hash",
            ),
        ];
        for (text, field_name) in cases {
            let e = err_str(&text);
            assert_eq!(e.tid, Some(3), "{text}");
            match &e.kind {
                DecodeErrorKind::WrongType { field, .. } => assert_eq!(field, field_name, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
            assert!(e.to_string().contains(field_name), "{e}");
        }
    }

    #[test]
    fn unknown_type_is_rejected() {
        let e = err_str(r#"{"type":"HELLO","tid":8}"#);
        assert_eq!(e.tid, Some(8));
        assert!(
            matches!(e.kind, DecodeErrorKind::UnknownType { ref found, .. } if found == "HELLO")
        );
        // Types are case-sensitive.
        let e = err_str(r#"{"type":"register","tid":8}"#);
        assert!(matches!(e.kind, DecodeErrorKind::UnknownType { .. }));
    }

    #[test]
    fn bad_hex_is_rejected() {
        let too_short = "ab".repeat(19);
        let not_hex = format!("{}zz", "ab".repeat(19));
        for bad in [too_short.as_str(), not_hex.as_str(), "", "0x12"] {
            let e = err_str(&format!(
                r#"{{"type":"REQUEST","tid":2,"info_hash":"{bad}"}}"#
            ));
            assert_eq!(e.tid, Some(2));
            assert!(
                matches!(e.kind, DecodeErrorKind::BadValue { ref field, .. } if field == "info_hash"),
                "{bad}: {e:?}"
            );
            let e = err_str(&format!(
                r#"{{"type":"REGISTER","tid":2,"peer_id":"p","port":1,"files":[{{"info_hash":"{bad}","name":"a","size":1,"complete":true}}]}}"#
            ));
            assert!(
                matches!(e.kind, DecodeErrorKind::BadValue { ref field, .. } if field == "files[0].info_hash"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let hx = hex_of(1);
        let cases = [
            (
                r#"{"type":"REGISTER","tid":1,"port":1,"files":[]}"#.to_string(),
                "peer_id",
            ),
            (
                r#"{"type":"REGISTER","tid":1,"peer_id":"p","files":[]}"#.to_string(),
                "port",
            ),
            (
                r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":1}"#.to_string(),
                "files",
            ),
            (
                r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{"name":"a","size":1,"complete":true}]}"#.to_string(),
                "files[0].info_hash",
            ),
            (
                format!(
                    r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","size":1,"complete":true}}]}}"#
                ),
                "files[0].name",
            ),
            (
                format!(
                    r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","complete":true}}]}}"#
                ),
                "files[0].size",
            ),
            (
                format!(
                    r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"a","size":1}}]}}"#
                ),
                "files[0].complete",
            ),
            (
                r#"{"type":"REQUEST","tid":1}"#.to_string(),
                "info_hash` or `name",
            ),
            (r#"{"type":"SEARCH","tid":1}"#.to_string(), "query"),
            (r#"{"type":"HEARTBEAT","tid":1}"#.to_string(), "peer_id"),
            (
                r#"{"type":"EXIT","tid":1,"peer_id":null}"#.to_string(),
                "peer_id",
            ),
        ];
        for (text, field) in cases {
            let e = err_str(&text);
            assert_eq!(e.tid, Some(1), "{text}");
            assert_eq!(
                e.kind,
                DecodeErrorKind::MissingField(field.into()),
                "{text}"
            );
            assert!(e.to_string().contains("missing field"), "{e}");
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        let long_id = "x".repeat(65);
        let long_name = "n".repeat(256);
        let long_query = "q".repeat(256);
        let hx = hex_of(1);
        let cases = [
            r#"{"type":"HEARTBEAT","tid":1,"peer_id":""}"#.to_string(),
            format!(r#"{{"type":"HEARTBEAT","tid":1,"peer_id":"{long_id}"}}"#),
            r#"{"type":"EXIT","tid":1,"peer_id":"a\u0000b"}"#.to_string(),
            r#"{"type":"REGISTER","tid":1,"peer_id":"p","port":0,"files":[]}"#.to_string(),
            format!(
                r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"","size":1,"complete":true}}]}}"#
            ),
            format!(
                r#"{{"type":"REGISTER","tid":1,"peer_id":"p","port":1,"files":[{{"info_hash":"{hx}","name":"{long_name}","size":1,"complete":true}}]}}"#
            ),
            r#"{"type":"REQUEST","tid":1,"name":""}"#.to_string(),
            r#"{"type":"REQUEST","tid":1,"name":"a","peer_id":""}"#.to_string(),
            format!(r#"{{"type":"SEARCH","tid":1,"query":"{long_query}"}}"#),
        ];
        for text in cases {
            let e = err_str(&text);
            assert_eq!(e.tid, Some(1), "{text}");
            assert!(
                matches!(e.kind, DecodeErrorKind::BadValue { .. }),
                "{text}: {e:?}"
            );
        }
        // 64 multi-byte characters are fine: the limit counts characters.
        let id = "é".repeat(64);
        assert!(Request::decode(
            format!(r#"{{"type":"EXIT","tid":1,"peer_id":"{id}"}}"#).as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn request_with_both_hash_and_name_is_rejected() {
        let e = err_str(&format!(
            r#"{{"type":"REQUEST","tid":4,"info_hash":"{}","name":"a"}}"#,
            hex_of(1)
        ));
        assert_eq!(e.tid, Some(4));
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn duplicate_fields_are_rejected() {
        let e = err_str(r#"{"type":"SEARCH","tid":4,"query":"a","query":"b"}"#);
        assert_eq!(e.tid, Some(4));
        assert!(e.to_string().contains("duplicate field"), "{e}");
    }

    #[test]
    fn bad_request_reply_echoes_tid_and_message() {
        let e = err_str(r#"{"type":"NOPE","tid":11}"#);
        let reply = Reply::bad_request(&e);
        let v: Value = serde_json::from_slice(&reply.encode()).unwrap();
        assert_eq!(v["type"], "ERROR");
        assert_eq!(v["tid"], 11);
        assert_eq!(v["code"], "bad_request");
        assert!(v["message"].as_str().unwrap().contains("NOPE"));
        let e = err_str("not json");
        let v: Value = serde_json::from_slice(&Reply::bad_request(&e).encode()).unwrap();
        assert!(v["tid"].is_null());
    }

    #[test]
    fn malformed_replies_are_rejected() {
        let cases = [
            r#"{"type":"OK","tid":1}"#,
            r#"{"type":"OK","interval":1,"timeout":1}"#,
            r#"{"type":"PEERS","tid":1,"info_hash":"zz","name":"a","size":1,"seeders":0,"leechers":0,"peers":[]}"#,
            r#"{"type":"FILES","tid":1}"#,
            r#"{"type":"ERROR","tid":1}"#,
            r#"{"type":"WHAT","tid":1}"#,
            r#"{"tid":1}"#,
            r#"[]"#,
        ];
        for c in cases {
            assert!(Reply::decode(c.as_bytes()).is_err(), "{c}");
        }
        let bad_addr = format!(
            r#"{{"type":"PEERS","tid":1,"info_hash":"{}","name":"a","size":1,"seeders":0,"leechers":0,"peers":[{{"addr":"nowhere","peer_id":"p","complete":true}}]}}"#,
            hex_of(1)
        );
        let e = Reply::decode(bad_addr.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("peers[0].addr"), "{e}");
        let e =
            Reply::decode(br#"{"type":"OK","tid":1,"interval":"10","timeout":30}"#).unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
    }

    #[test]
    fn files_reply_is_cut_to_fit() {
        let files: Vec<FileSummary> = (0..2000)
            .map(|i| FileSummary {
                info_hash: h((i % 256) as u8),
                name: format!("file number {i} with a longish name.dat"),
                size: i,
                seeders: 1,
                leechers: 2,
            })
            .collect();
        let mut buf = Vec::new();
        let n = encode_files_reply(
            &mut buf,
            9,
            files.iter().map(|f| FileView {
                info_hash: &f.info_hash,
                name: &f.name,
                size: f.size,
                seeders: f.seeders,
                leechers: f.leechers,
            }),
            MAX_REPLY_SIZE,
        );
        assert!(n > 100 && n < 2000, "{n}");
        assert!(buf.len() <= MAX_REPLY_SIZE);
        match Reply::decode(&buf).unwrap() {
            Reply::Files { tid, files: got } => {
                assert_eq!(tid, 9);
                assert_eq!(got.len(), n);
                assert_eq!(got[..], files[..n]);
            }
            other => panic!("{other:?}"),
        }
        // A tiny limit still produces valid JSON with no files.
        let mut buf = Vec::new();
        let n = encode_files_reply(
            &mut buf,
            1,
            files.iter().map(|f| FileView {
                info_hash: &f.info_hash,
                name: &f.name,
                size: f.size,
                seeders: f.seeders,
                leechers: f.leechers,
            }),
            40,
        );
        assert_eq!(n, 0);
        assert_eq!(
            Reply::decode(&buf).unwrap(),
            Reply::Files {
                tid: 1,
                files: vec![]
            }
        );
    }

    #[test]
    fn summaries_are_one_readable_line() {
        let reqs = all_requests();
        let s = reqs[0].summary();
        assert!(
            s.starts_with("REGISTER 2 files: report.pdf (4.0 MiB, complete)"),
            "{s}"
        );
        assert!(s.contains("peer=-MT0100-abcdefghijkl"), "{s}");
        let single = Request::Register {
            tid: 1,
            peer_id: "-MT0100-x".into(),
            port: 7001,
            files: vec![FileInfo {
                info_hash: h(1),
                name: "report.pdf".into(),
                size: 4 * 1024 * 1024,
                complete: true,
            }],
        };
        assert_eq!(
            single.summary(),
            "REGISTER report.pdf (4.0 MiB, complete) peer=-MT0100-x port=7001 tid=1"
        );
        for r in reqs {
            assert!(!r.summary().contains('\n'));
        }
        for r in all_replies() {
            let s = r.summary();
            assert!(s.starts_with(r.type_name()), "{s}");
            assert!(!s.contains('\n'));
        }
    }

    #[test]
    fn numbers_and_addresses_are_written_exactly() {
        for v in [
            0u64,
            7,
            9,
            10,
            42,
            99,
            100,
            101,
            255,
            999,
            1000,
            65535,
            123456789,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            write_u64(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes());
        }
        for a in [
            "0.0.0.0:0",
            "1.2.3.4:5",
            "10.100.255.9:65535",
            "127.0.0.1:6881",
            "[::1]:7000",
            "[2001:db8::ff]:1",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            let mut b = Vec::new();
            write_socket_addr(&mut b, &addr);
            assert_eq!(String::from_utf8(b).unwrap(), format!("\"{a}\""));
        }
    }

    #[test]
    fn peers_reply_is_cut_to_fit() {
        let peers: Vec<PeerEntry> = (0..2000u32)
            .map(|i| PeerEntry {
                addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881)),
                peer_id: format!("-MT0100-{i:012}"),
                complete: i % 2 == 0,
            })
            .collect();
        let swarm = SwarmView {
            info_hash: &InfoHash([1; 20]),
            name: "x",
            size: 1,
            seeders: 1000,
            leechers: 1000,
        };
        let mut buf = Vec::new();
        let views = peers.iter().map(|p| PeerView {
            addr: p.addr,
            peer_id: &p.peer_id,
            complete: p.complete,
        });
        let n = encode_peers_reply(&mut buf, 5, &swarm, views, MAX_REPLY_SIZE);
        assert!(n > 500 && n < 2000, "{n}");
        assert!(buf.len() <= MAX_REPLY_SIZE);
        match Reply::decode(&buf).unwrap() {
            Reply::Peers { peers: got, .. } => assert_eq!(got[..], peers[..n]),
            other => panic!("{other:?}"),
        }
    }
}
