//! Reading tracker messages from bytes, strictly.
//!
//! This file owns `Request::decode` and `Reply::decode`, the field limits they
//! enforce, and the wording of every [`DecodeError`].
//!
//! The fast path deserializes into a struct of optional, borrowed fields and
//! then validates it. When serde rejects the datagram, a slower path looks at
//! it as a `serde_json::Value` to name the field that is wrong and to recover
//! the tid.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{
    DecodeError, DecodeErrorKind, ErrorCode, FileInfo, FileRef, FileSummary, PeerEntry, Reply,
    Request, StatsEdge, StatsFile, Token, MAX_DATAGRAM_SIZE, MAX_NAME_CHARS, MAX_PEER_ID_CHARS,
    MAX_QUERY_CHARS, MAX_STATS_EDGES, MAX_STATS_FILES, MAX_STATS_PIECES, MAX_WEB_CHARS,
};
use crate::metainfo::InfoHash;

const REQUEST_TYPES: &str = "REGISTER, REQUEST, SEARCH, HEARTBEAT, EXIT or STATS";
const REPLY_TYPES: &str = "OK, PEERS, FILES or ERROR";

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
    #[serde(borrow)]
    token: Option<JStr<'a>>,
}

/// A file of `REGISTER` or of `STATS` (each reads the fields it knows).
#[derive(Deserialize)]
struct RawRegFile<'a> {
    #[serde(borrow)]
    info_hash: Option<JStr<'a>>,
    #[serde(borrow)]
    name: Option<JStr<'a>>,
    size: Option<u64>,
    complete: Option<bool>,
    done: Option<u64>,
    pieces: Option<u32>,
    #[serde(borrow)]
    have: Option<JStr<'a>>,
    down: Option<u64>,
    up: Option<u64>,
    #[serde(borrow)]
    peers: Option<Vec<RawEdge<'a>>>,
    truncated: Option<bool>,
}

#[derive(Deserialize)]
struct RawEdge<'a> {
    #[serde(borrow)]
    addr: Option<JStr<'a>>,
    sent: Option<u64>,
    recv: Option<u64>,
}

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<JStr<'a>>,
    tid: Option<u32>,
    interval: Option<u32>,
    timeout: Option<u32>,
    stats_every: Option<u32>,
    #[serde(borrow)]
    web: Option<JStr<'a>>,
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
    #[serde(borrow)]
    token: Option<JStr<'a>>,
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

const EDGE_FIELDS: &[(&str, Kind)] = &[
    ("addr", Kind::Str),
    ("sent", Kind::U64),
    ("recv", Kind::U64),
];
const REG_FILE_FIELDS: &[(&str, Kind)] = &[
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("size", Kind::U64),
    ("complete", Kind::Bool),
    ("done", Kind::U64),
    ("pieces", Kind::U32),
    ("have", Kind::Str),
    ("down", Kind::U64),
    ("up", Kind::U64),
    ("peers", Kind::Array(EDGE_FIELDS)),
    ("truncated", Kind::Bool),
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
    ("token", Kind::Str),
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
    ("stats_every", Kind::U32),
    ("web", Kind::Str),
    ("info_hash", Kind::Str),
    ("name", Kind::Str),
    ("size", Kind::U64),
    ("seeders", Kind::U32),
    ("leechers", Kind::U32),
    ("peers", Kind::Array(PEER_FIELDS)),
    ("files", Kind::Array(SUMMARY_FIELDS)),
    ("code", Kind::Str),
    ("message", Kind::Str),
    ("token", Kind::Str),
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

/// The `web` of an `OK`: absent or null is `None`; else 1 to
/// [`MAX_WEB_CHARS`] characters, none of them a control character. Whether
/// the peer may use it (an `http://` URL on the tracker's own IP) is the
/// peer's decision, not the codec's.
fn web_field(tid: u32, v: &Option<JStr<'_>>) -> Result<Option<String>, DecodeError> {
    let Some(w) = v else { return Ok(None) };
    let n = w.0.chars().count();
    if n == 0 || n > MAX_WEB_CHARS {
        return Err(DecodeError::bad(
            tid,
            "web",
            format!("must be 1 to {MAX_WEB_CHARS} characters, found {n}"),
        ));
    }
    if w.0.chars().any(char::is_control) {
        return Err(DecodeError::bad(
            tid,
            "web",
            "must not contain control characters",
        ));
    }
    Ok(Some(w.0.to_string()))
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

/// The `token` field, when there is one: [`Token::HEX_LEN`] hex digits.
fn token_field(tid: Option<u32>, v: &Option<JStr<'_>>) -> Result<Option<Token>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    match Token::parse(&v.0) {
        Some(t) => Ok(Some(t)),
        None => Err(DecodeError::new(
            tid,
            DecodeErrorKind::BadValue {
                field: "token".to_string(),
                problem: format!(
                    "must be {} hex digits, as the tracker handed it out",
                    Token::HEX_LEN
                ),
            },
        )),
    }
}

impl Request {
    /// Decodes one datagram received by the tracker (any `token` is
    /// checked and dropped; see [`Request::decode_with_token`]).
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        Request::decode_with_token(bytes).map(|(r, _)| r)
    }

    /// Decodes one datagram received by the tracker, and its `token`.
    pub fn decode_with_token(bytes: &[u8]) -> Result<(Request, Option<Token>), DecodeError> {
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
        let token = token_field(Some(tid), &raw.token)?;
        let req = match kind {
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
            "STATS" => {
                let peer_id =
                    peer_id_field(tid, "peer_id", req_str(tid, "peer_id", &raw.peer_id)?)?;
                let Some(raw_files) = raw.files else {
                    return Err(DecodeError::missing(tid, "files"));
                };
                stats_files(tid, &raw_files).map(|files| Request::Stats {
                    tid,
                    peer_id,
                    files,
                })
            }
            other => Err(DecodeError::new(
                Some(tid),
                DecodeErrorKind::UnknownType {
                    found: other.chars().take(40).collect(),
                    expected: REQUEST_TYPES,
                },
            )),
        }?;
        Ok((req, token))
    }
}

/// The files of a `STATS`, checked against the caps.
fn stats_files(tid: u32, raw_files: &[RawRegFile<'_>]) -> Result<Vec<StatsFile>, DecodeError> {
    let n = raw_files.len();
    if n == 0 || n > MAX_STATS_FILES {
        return Err(DecodeError::bad(
            tid,
            "files",
            format!("must list 1 to {MAX_STATS_FILES} files, found {n} (send several STATS)"),
        ));
    }
    let mut files: Vec<StatsFile> = Vec::with_capacity(n);
    for (i, f) in raw_files.iter().enumerate() {
        let field = |sub: &'static str| Item("files", i, sub);
        let info_hash = hash_field(
            tid,
            field("info_hash"),
            req_str(tid, field("info_hash"), &f.info_hash)?,
        )?;
        if files.iter().any(|g| g.info_hash == info_hash) {
            return Err(DecodeError::bad(
                tid,
                field("info_hash"),
                "names a file already listed in this STATS",
            ));
        }
        let size = req(tid, field("size"), f.size)?;
        let done = req(tid, field("done"), f.done)?;
        if done > size {
            return Err(DecodeError::bad(
                tid,
                field("done"),
                format!("must be at most `size` ({size}), found {done}"),
            ));
        }
        let pieces = req(tid, field("pieces"), f.pieces)?;
        let have = match &f.have {
            None => None,
            Some(h) => Some(bitfield_field(tid, field("have"), &h.0, pieces)?),
        };
        let raw_edges = f.peers.as_deref().unwrap_or_default();
        if raw_edges.len() > MAX_STATS_EDGES {
            return Err(DecodeError::bad(
                tid,
                field("peers"),
                format!(
                    "must list at most {MAX_STATS_EDGES} peers, found {} (list the busiest and set `truncated`)",
                    raw_edges.len()
                ),
            ));
        }
        let mut peers = Vec::with_capacity(raw_edges.len());
        for (j, e) in raw_edges.iter().enumerate() {
            let sub = |s: &'static str| EdgeItem(i, j, s);
            let addr_s = req_str(tid, sub("addr"), &e.addr)?;
            let addr = addr_s.parse::<SocketAddr>().map_err(|_| {
                DecodeError::bad(
                    tid,
                    sub("addr"),
                    format!(
                        "must be IP:PORT, found {}",
                        describe(&Value::String(addr_s.to_string()))
                    ),
                )
            })?;
            peers.push(StatsEdge {
                addr,
                sent: req(tid, sub("sent"), e.sent)?,
                recv: req(tid, sub("recv"), e.recv)?,
            });
        }
        files.push(StatsFile {
            info_hash,
            size,
            done,
            pieces,
            have,
            down: req(tid, field("down"), f.down)?,
            up: req(tid, field("up"), f.up)?,
            peers,
            truncated: f.truncated.unwrap_or(false),
        });
    }
    Ok(files)
}

/// `files[1].peers[3].addr`, formatted only when an error names it.
#[derive(Clone, Copy)]
struct EdgeItem(usize, usize, &'static str);

impl fmt::Display for EdgeItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "files[{}].peers[{}].{}", self.0, self.1, self.2)
    }
}

/// A `have` bitfield: exactly `ceil(pieces / 8)` bytes in hex, spare bits 0.
fn bitfield_field(
    tid: u32,
    field: impl fmt::Display + Copy,
    s: &str,
    pieces: u32,
) -> Result<Vec<u8>, DecodeError> {
    if pieces == 0 || pieces > MAX_STATS_PIECES {
        return Err(DecodeError::bad(
            tid,
            field,
            format!("is allowed only for 1 to {MAX_STATS_PIECES} pieces, and `pieces` is {pieces}"),
        ));
    }
    let bytes = pieces.div_ceil(8) as usize;
    if s.len() != 2 * bytes {
        return Err(DecodeError::bad(
            tid,
            field,
            format!(
                "must be {} hex digits for {pieces} pieces, found {} characters",
                2 * bytes,
                s.chars().count()
            ),
        ));
    }
    let mut out = Vec::with_capacity(bytes);
    for pair in s.as_bytes().chunks_exact(2) {
        match (crate::hex::digit(pair[0]), crate::hex::digit(pair[1])) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return Err(DecodeError::bad(tid, field, "must be hex digits only")),
        }
    }
    let spare = (bytes * 8) as u32 - pieces;
    if spare > 0 && out[bytes - 1] & ((1u8 << spare) - 1) != 0 {
        return Err(DecodeError::bad(
            tid,
            field,
            format!("has bits set past piece {}", pieces - 1),
        ));
    }
    Ok(out)
}

impl Reply {
    /// Decodes one datagram received from the tracker (any `token` is
    /// checked and dropped; see [`Reply::decode_with_token`]).
    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        Reply::decode_with_token(bytes).map(|(r, _)| r)
    }

    /// Decodes one datagram received from the tracker, and the `token` it
    /// hands out (in an `OK` or a `token` `ERROR`).
    pub fn decode_with_token(bytes: &[u8]) -> Result<(Reply, Option<Token>), DecodeError> {
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
        let token = token_field(raw.tid, &raw.token)?;
        if kind == "ERROR" {
            // The only reply whose tid may be null.
            let code =
                req_str(0, "code", &raw.code).map_err(|e| DecodeError { tid: raw.tid, ..e })?;
            let message = raw
                .message
                .as_ref()
                .map(|m| m.0.to_string())
                .unwrap_or_default();
            let error = Reply::Error {
                tid: raw.tid,
                code: ErrorCode::parse(code),
                message,
            };
            return Ok((error, token));
        }
        let Some(tid) = raw.tid else {
            return Err(DecodeError::new(
                None,
                DecodeErrorKind::MissingField("tid".to_string()),
            ));
        };
        let reply = match kind {
            "OK" => Ok(Reply::Ok {
                tid,
                interval: req(tid, "interval", raw.interval)?,
                timeout: req(tid, "timeout", raw.timeout)?,
                stats_every: raw.stats_every.unwrap_or(0),
                web: web_field(tid, &raw.web)?,
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
        }?;
        Ok((reply, token))
    }
}
