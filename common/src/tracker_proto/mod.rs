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
//!
//! The files split the work: this one holds the types, limits and accessors;
//! `encode.rs` writes messages as JSON bytes, `decode.rs` reads and checks
//! them, and `summary.rs` turns them into one line for `--trace`;
//! `discover.rs` holds LAN discovery's `DISCOVER` and `TRACKER`, which
//! travel on their own port and are not `Request`s or `Reply`s. The
//! submodules are private and everything public is re-exported here, so
//! callers name `tracker_proto::X` and never the file it lives in.

use std::fmt;
use std::net::SocketAddr;

use crate::metainfo::InfoHash;

mod decode;
mod discover;
mod encode;
mod summary;

pub use discover::{
    Discover, TrackerHere, DISCOVER_GROUP, DISCOVER_PORT, MAX_DISCOVER_SIZE, MAX_WEB_CHARS,
};
pub use encode::{
    encode_error_reply, encode_files_reply, encode_ok_reply, encode_peers_reply,
    encode_token_reply, FileView, PeerView, SwarmView,
};
pub use summary::short_hash;

/// Largest datagram either side accepts (64 KiB). Longer ones are `bad_request`.
pub const MAX_DATAGRAM_SIZE: usize = 64 * 1024;
/// Largest reply the tracker sends: the largest UDP payload over IPv4, so a
/// reply always fits one datagram. `SEARCH` results are cut to fit it.
pub const MAX_REPLY_SIZE: usize = 65_507;
/// The most a reply to a request without a valid [`Token`] may be larger
/// than that request (UDP payload bytes): `reply ≤ 3 × request`. Larger
/// replies go only to an address that proved, with a token, that it
/// receives the tracker's datagrams, so nobody can use the tracker to
/// flood a forged source address (a reflection attack). `ERROR`s are not
/// held to it (see `docs/PROTOCOL.md`, "Tokens").
pub const AMPLIFICATION_FACTOR: usize = 3;
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

/// A `STATS` datagram names 1 to this many files; a peer with more active
/// files sends several `STATS`.
pub const MAX_STATS_FILES: usize = 4;
/// A `STATS` file lists at most this many remote peers (`peers`); a peer
/// connected to more lists the busiest and sets `truncated`.
pub const MAX_STATS_EDGES: usize = 64;
/// A `STATS` file's `have` bitfield covers at most this many pieces (4096 hex
/// digits); a file with more pieces sends no bitfield (only `done`).
pub const MAX_STATS_PIECES: u32 = 16_384;
/// Seconds between `STATS` the tracker asks for while a swarm of the peer
/// has a leecher (`stats_every` in `OK`).
pub const DEFAULT_STATS_EVERY_SECS: u32 = 1;

/// An address token: proof that the address a request comes from receives
/// the tracker's datagrams. The tracker hands one out in every `OK` and in
/// its `token` `ERROR`; a peer sends it back as the `token` field of any
/// request. On the wire: 16 lowercase hex digits. Only the tracker that
/// issued it can tell whether it is valid (a keyed hash of the IP address
/// and the time, like a BEP 15 connection id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

impl Token {
    /// Number of hex digits on the wire.
    pub const HEX_LEN: usize = 16;

    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Exactly [`Token::HEX_LEN`] hex digits (either case).
    pub fn parse(s: &str) -> Option<Token> {
        if s.len() != Token::HEX_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Token)
    }
}

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

/// One file of a `STATS` report: what the peer has, how fast it moves, and
/// the bytes exchanged with each remote peer since its previous `STATS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsFile {
    pub info_hash: InfoHash,
    /// Total size in bytes (0 while a magnet's metadata is unknown).
    pub size: u64,
    /// Verified bytes the peer has (at most `size`).
    pub done: u64,
    /// Number of pieces; 0 while unknown.
    pub pieces: u32,
    /// The pieces the peer has, in BitTorrent's bitfield order (piece 0 is
    /// the high bit of the first byte; spare bits zero): `ceil(pieces / 8)`
    /// bytes, written as hex. `None` when `pieces` is 0 or over
    /// [`MAX_STATS_PIECES`].
    pub have: Option<Vec<u8>>,
    /// Download and upload rates, bytes per second.
    pub down: u64,
    pub up: u64,
    /// Bytes exchanged with each remote peer since the previous `STATS`; at
    /// most [`MAX_STATS_EDGES`].
    pub peers: Vec<StatsEdge>,
    /// True when the peer exchanged data with more remote peers than
    /// `peers` lists.
    pub truncated: bool,
}

/// The bytes one peer exchanged with one remote peer since its previous `STATS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsEdge {
    /// The remote peer's listening address when known (the one it
    /// registered, or gave in its extension handshake), else the address
    /// of the connection.
    pub addr: SocketAddr,
    /// Bytes of piece data sent to it.
    pub sent: u64,
    /// Bytes of piece data received from it.
    pub recv: u64,
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
    /// What the peer has and moved, for display only; identified like
    /// `HEARTBEAT` (source IP + peer_id). 1 to [`MAX_STATS_FILES`] files.
    Stats {
        tid: u32,
        peer_id: String,
        files: Vec<StatsFile>,
    },
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
    /// The reply would be more than [`AMPLIFICATION_FACTOR`] times the
    /// request and the request carried no valid token for its source
    /// address: send it again with the token this `ERROR` carries.
    Token,
    /// A code this version does not know (kept so newer trackers stay readable).
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::Token => "token",
            ErrorCode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> ErrorCode {
        match s {
            "bad_request" => ErrorCode::BadRequest,
            "not_found" => ErrorCode::NotFound,
            "unknown_peer" => ErrorCode::UnknownPeer,
            "token" => ErrorCode::Token,
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
    /// Answer to `REGISTER`, `HEARTBEAT`, `EXIT` and `STATS`: heartbeat every
    /// `interval` seconds; silence for `timeout` seconds means the peer is
    /// forgotten; send `STATS` every `stats_every` seconds (0, and absent
    /// on the wire, when the tracker wants none). `web` is the tracker's web
    /// page (`http://IP:PORT/`), where a peer publishes the `.torrent` of
    /// each file it seeds; `None`, and absent on the wire, when it has none.
    Ok {
        tid: u32,
        interval: u32,
        timeout: u32,
        stats_every: u32,
        web: Option<String>,
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

// Constructors and accessors

impl Request {
    pub fn tid(&self) -> u32 {
        match self {
            Request::Register { tid, .. }
            | Request::Request { tid, .. }
            | Request::Search { tid, .. }
            | Request::Heartbeat { tid, .. }
            | Request::Exit { tid, .. }
            | Request::Stats { tid, .. } => *tid,
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
            Request::Stats { .. } => "STATS",
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
            stats_every: 0,
            web: None,
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
