//! Writing tracker messages as JSON bytes.
//!
//! This file owns the encoders: `Request::encode`, `Reply::encode`, and the
//! reply writers the tracker calls straight from its registry with borrowed
//! views (`encode_peers_reply`, `encode_files_reply`), which cut a reply to fit
//! one datagram. JSON is written by hand, field by field, because the `PEERS`
//! reply is the tracker's hottest path; [`Reply::encode_into`] goes through the
//! same writers, so both produce the same bytes.

use std::net::SocketAddr;

use super::{ErrorCode, FileRef, Reply, Request, Token};
use crate::metainfo::InfoHash;

impl Request {
    /// The request as one JSON datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(&mut buf);
        buf
    }

    /// The request as one JSON datagram carrying `token` (when given) as
    /// its `token` field.
    pub fn encode_with_token(&self, token: Option<Token>) -> Vec<u8> {
        let mut buf = Vec::with_capacity(160);
        self.encode_into_with_token(&mut buf, token);
        buf
    }

    /// Appends the JSON datagram to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        self.encode_into_with_token(buf, None)
    }

    /// Appends the JSON datagram, with `token` when given, to `buf`.
    pub fn encode_into_with_token(&self, buf: &mut Vec<u8>, token: Option<Token>) {
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
            Request::Stats { peer_id, files, .. } => {
                o.str("peer_id", peer_id);
                o.key("files");
                o.buf.push(b'[');
                for (i, f) in files.iter().enumerate() {
                    if i > 0 {
                        o.buf.push(b',');
                    }
                    let mut fo = JsonObject::begin(o.buf);
                    fo.hex("info_hash", &f.info_hash);
                    fo.uint("size", f.size);
                    fo.uint("done", f.done);
                    fo.uint("pieces", u64::from(f.pieces));
                    if let Some(have) = &f.have {
                        fo.key("have");
                        fo.buf.push(b'"');
                        crate::hex::push_hex(fo.buf, have);
                        fo.buf.push(b'"');
                    }
                    fo.uint("down", f.down);
                    fo.uint("up", f.up);
                    fo.key("peers");
                    fo.buf.push(b'[');
                    for (j, e) in f.peers.iter().enumerate() {
                        if j > 0 {
                            fo.buf.push(b',');
                        }
                        fo.buf.extend_from_slice(b"{\"addr\":");
                        write_socket_addr(fo.buf, &e.addr);
                        fo.buf.extend_from_slice(b",\"sent\":");
                        write_u64(fo.buf, e.sent);
                        fo.buf.extend_from_slice(b",\"recv\":");
                        write_u64(fo.buf, e.recv);
                        fo.buf.push(b'}');
                    }
                    fo.buf.push(b']');
                    if f.truncated {
                        fo.bool("truncated", true);
                    }
                    fo.end();
                }
                o.buf.push(b']');
            }
        }
        if let Some(t) = token {
            o.token(t);
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

/// Appends an `OK` reply to `buf`; `stats_every` is written only when not
/// 0, `web` (the tracker's web page) only when there is one.
pub fn encode_ok_reply(
    buf: &mut Vec<u8>,
    tid: u32,
    interval: u32,
    timeout: u32,
    stats_every: u32,
    web: Option<&str>,
    token: Option<Token>,
) {
    let mut o = JsonObject::begin(buf);
    o.str("type", "OK");
    o.uint("tid", u64::from(tid));
    o.uint("interval", u64::from(interval));
    o.uint("timeout", u64::from(timeout));
    if stats_every > 0 {
        o.uint("stats_every", u64::from(stats_every));
    }
    if let Some(web) = web {
        o.str("web", web);
    }
    if let Some(t) = token {
        o.token(t);
    }
    o.end();
}

/// What the `token` `ERROR` says, longest first: the tracker sends the
/// longest that keeps the reply within [`AMPLIFICATION_FACTOR`] times the
/// request. A peer that knows tokens never shows it; an older one shows it
/// to its user, so each one says what to do.
///
/// [`AMPLIFICATION_FACTOR`]: super::AMPLIFICATION_FACTOR
pub const TOKEN_MESSAGES: [&str; 5] = [
    "this reply would be over 3 times the size of your request, and the tracker sends that \
     only to an address that proved it receives its replies: send the request again with \
     this token; a minitorrent that does not know tokens is too old: upgrade it",
    "send the request again with this token (an older minitorrent: upgrade it)",
    "upgrade minitorrent: send this token back",
    "upgrade minitorrent",
    "",
];

/// Appends the `token` `ERROR` (code `token`, carrying `token`) to `buf`,
/// with the longest of [`TOKEN_MESSAGES`] that keeps it within `max_len`
/// bytes. Returns false, leaving `buf` as it was, when not even the one
/// without a message fits.
pub fn encode_token_reply(buf: &mut Vec<u8>, tid: u32, token: Token, max_len: usize) -> bool {
    let start = buf.len();
    for message in TOKEN_MESSAGES {
        let mut o = JsonObject::begin(buf);
        o.str("type", "ERROR");
        o.uint("tid", u64::from(tid));
        o.str("code", ErrorCode::Token.as_str());
        o.str("message", message);
        o.token(token);
        o.end();
        if buf.len() - start <= max_len {
            return true;
        }
        buf.truncate(start);
    }
    false
}

impl Reply {
    /// The reply as one JSON datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(128);
        self.encode_into(&mut buf);
        buf
    }

    /// Appends the JSON datagram to `buf`. `FILES` is not cut here; the tracker
    /// uses [`encode_files_reply`] with [`MAX_REPLY_SIZE`](super::MAX_REPLY_SIZE).
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        match self {
            Reply::Ok {
                tid,
                interval,
                timeout,
                stats_every,
                web,
            } => encode_ok_reply(
                buf,
                *tid,
                *interval,
                *timeout,
                *stats_every,
                web.as_deref(),
                None,
            ),
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
    fn token(&mut self, t: Token) {
        self.key("token");
        self.buf.push(b'"');
        crate::hex::push_hex(self.buf, &t.0.to_be_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
