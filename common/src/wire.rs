//! The BitTorrent peer wire protocol: the BEP 3 handshake and messages, the
//! BEP 10 extension handshake and BEP 9 `ut_metadata` messages, and bitfields.
//!
//! Everything here works on byte slices; the connection code reads a 4-byte
//! prefix, checks it with [`frame_len`], reads that many bytes and hands them to
//! [`Message::decode`]. Limits are strict so a misbehaving peer costs at most
//! one frame of memory. docs/PROTOCOL.md ("Peer wire") describes the layouts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::bencode::{self, BencodeError, Value};
use crate::hex;
use crate::metainfo::InfoHash;

pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;
/// Largest length prefix the codec accepts at all (a bitfield for 2^20 pieces,
/// or a 16 KiB block, fit well below it). Callers apply tighter per-torrent
/// limits with [`max_message_len`].
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Largest block a peer may request or send.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024;
/// Our `ut_metadata` message id in the extension handshake `m` dictionary.
pub const UT_METADATA_ID: u8 = 1;
/// Size of one metadata block (BEP 9).
pub const METADATA_BLOCK: usize = 16 * 1024;
/// Largest info dictionary we accept from a peer (BEP 9 `metadata_size` and
/// `total_size`). Real ones are a few hundred KiB at most; a larger claim is
/// more likely an attack on our memory than a torrent.
pub const MAX_METADATA_SIZE: u64 = 16 * 1024 * 1024;
/// Room allowed for the bencoded dictionary in front of a `ut_metadata` data
/// block. The three keys BEP 9 defines need at most 51 bytes; the rest is slack
/// for a client that adds a key of its own.
pub const METADATA_DICT_MAX: usize = 128;

/// Message ids (the byte after the length prefix).
pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const EXTENDED: u8 = 20;
}

/// Everything that can be wrong with bytes a peer sent. Each message names the
/// problem and the numbers involved, so a `--trace` log explains a disconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message length {len} exceeds the limit of {max}")]
    FrameTooLong { len: usize, max: usize },
    #[error("unknown message id {0}")]
    UnknownId(u8),
    #[error("{name} message must be {expected} bytes, got {got}")]
    WrongLength {
        name: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{name} message must be at least {min} bytes, got {got}")]
    TooShort {
        name: &'static str,
        min: usize,
        got: usize,
    },
    #[error("{name} length {length} is outside 1..={MAX_BLOCK_LEN}")]
    BadBlockLength { name: &'static str, length: u32 },
    #[error("piece message carries {0} bytes, more than the block limit of {MAX_BLOCK_LEN}")]
    PieceTooLong(usize),
    #[error("handshake protocol string length is {0}, expected 19")]
    BadProtocolLength(u8),
    #[error("handshake protocol string is not 'BitTorrent protocol'")]
    BadProtocol,
    #[error("bitfield has {got} bytes, expected {expected} for {pieces} pieces")]
    BitfieldSize {
        got: usize,
        expected: usize,
        pieces: usize,
    },
    #[error("bitfield for {0} pieces has spare bits set after the last piece")]
    BitfieldSpareBits(usize),
    #[error("{what} is not valid bencode: {err}")]
    Bencode {
        what: &'static str,
        err: BencodeError,
    },
    #[error("{0} is not a bencoded dictionary")]
    NotADict(&'static str),
    #[error("{what}: '{key}' must be {expected}")]
    FieldType {
        what: &'static str,
        key: String,
        expected: &'static str,
    },
    #[error("{what}: '{key}' is {value}, must be between {min} and {max}")]
    FieldRange {
        what: &'static str,
        key: String,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("{what} has no '{key}'")]
    MissingField {
        what: &'static str,
        key: &'static str,
    },
    /// BEP 9 asks receivers to ignore unknown types; the caller decides.
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownMetadataType(i64),
    #[error("ut_metadata {name} has {extra} bytes after its dictionary")]
    MetadataTrailing { name: &'static str, extra: usize },
    #[error("ut_metadata data block has {0} bytes, more than {METADATA_BLOCK}")]
    MetadataBlockTooLong(usize),
    #[error("ut_metadata piece {piece} is beyond total_size {total_size}")]
    MetadataPieceOutOfRange { piece: u32, total_size: u64 },
    #[error(
        "ut_metadata data for piece {piece} has {got} bytes, expected {expected} \
         (total_size {total_size})"
    )]
    MetadataBlockSize {
        piece: u32,
        got: usize,
        expected: usize,
        total_size: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
}

/// BEP 10: bit 0x10 of reserved byte 5 announces the extension protocol.
const EXTENSION_BYTE: usize = 5;
const EXTENSION_BIT: u8 = 0x10;

impl Handshake {
    /// A handshake announcing the extension protocol (reserved bit 0x10 of byte 5).
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENSION_BYTE] |= EXTENSION_BIT;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }
    /// Rejects a wrong protocol string length or name. Reserved bits are kept
    /// as sent: peers set bits for extensions we do not know.
    pub fn decode(buf: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        if buf[0] as usize != PROTOCOL.len() {
            return Err(WireError::BadProtocolLength(buf[0]));
        }
        if &buf[1..20] != PROTOCOL {
            return Err(WireError::BadProtocol);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&buf[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&buf[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&buf[48..68]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id,
        })
    }
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSION_BYTE] & EXTENSION_BIT != 0
    }
    /// One line for `--trace`, e.g.
    /// `HANDSHAKE info_hash=0123abcd… peer_id=-MT0100-… (extensions)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "HANDSHAKE info_hash={}… peer_id={}",
            hex::encode(&self.info_hash.0[..4]),
            peer_id_prefix(&self.peer_id)
        );
        if self.supports_extensions() {
            s.push_str(" (extensions)");
        }
        s
    }
}

/// Most clients start the peer id with a readable tag such as `-MT0100-` and
/// fill the rest with random bytes; show the tag, or hex if there is none.
fn peer_id_prefix(peer_id: &[u8; 20]) -> String {
    let tag = &peer_id[..8];
    if tag.iter().all(|b| b.is_ascii_graphic()) {
        format!("{}…", String::from_utf8_lossy(tag))
    } else {
        format!("{}…", hex::encode(tag))
    }
}

/// One peer message (the frame after its 4-byte length prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    Port(u16),
    /// BEP 10: `id` 0 is the extension handshake, others are the ids we
    /// advertised in our `m` dictionary.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
}

impl Message {
    /// Appends the length prefix and the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Message::KeepAlive => {}
            Message::Choke => out.push(id::CHOKE),
            Message::Unchoke => out.push(id::UNCHOKE),
            Message::Interested => out.push(id::INTERESTED),
            Message::NotInterested => out.push(id::NOT_INTERESTED),
            Message::Have(index) => {
                out.push(id::HAVE);
                out.extend_from_slice(&index.to_be_bytes());
            }
            Message::Bitfield(bits) => {
                out.push(id::BITFIELD);
                out.extend_from_slice(bits);
            }
            Message::Request {
                index,
                begin,
                length,
            } => push_block_ref(out, id::REQUEST, *index, *begin, *length),
            Message::Cancel {
                index,
                begin,
                length,
            } => push_block_ref(out, id::CANCEL, *index, *begin, *length),
            Message::Piece { index, begin, data } => {
                out.push(id::PIECE);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Port(port) => {
                out.push(id::PORT);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Extended { id: ext, payload } => {
                out.push(id::EXTENDED);
                out.push(*ext);
                out.extend_from_slice(payload);
            }
        }
        // Frames we build are bounded by MAX_MESSAGE_LEN-sized inputs; a body
        // over 4 GiB would be a bug in our own code, not peer input.
        let body_len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&body_len.to_be_bytes());
    }

    /// Decodes one frame (without its length prefix). Wrong lengths for a
    /// message id, unknown ids and empty extended messages are errors.
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        let Some((&msg_id, body)) = frame.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let exact = |name: &'static str, expected: usize| {
            if frame.len() == expected {
                Ok(())
            } else {
                Err(WireError::WrongLength {
                    name,
                    expected,
                    got: frame.len(),
                })
            }
        };
        match msg_id {
            id::CHOKE => exact("choke", 1).map(|_| Message::Choke),
            id::UNCHOKE => exact("unchoke", 1).map(|_| Message::Unchoke),
            id::INTERESTED => exact("interested", 1).map(|_| Message::Interested),
            id::NOT_INTERESTED => exact("not interested", 1).map(|_| Message::NotInterested),
            id::HAVE => {
                exact("have", 5)?;
                Ok(Message::Have(be_u32(body, 0)))
            }
            id::BITFIELD => Ok(Message::Bitfield(body.to_vec())),
            id::REQUEST | id::CANCEL => {
                let name = if msg_id == id::REQUEST {
                    "request"
                } else {
                    "cancel"
                };
                exact(name, 13)?;
                let (index, begin, length) = (be_u32(body, 0), be_u32(body, 4), be_u32(body, 8));
                if length == 0 || length > MAX_BLOCK_LEN {
                    return Err(WireError::BadBlockLength { name, length });
                }
                Ok(if msg_id == id::REQUEST {
                    Message::Request {
                        index,
                        begin,
                        length,
                    }
                } else {
                    Message::Cancel {
                        index,
                        begin,
                        length,
                    }
                })
            }
            id::PIECE => {
                if frame.len() < 10 {
                    return Err(WireError::TooShort {
                        name: "piece",
                        min: 10,
                        got: frame.len(),
                    });
                }
                let data = &body[8..];
                if data.len() > MAX_BLOCK_LEN as usize {
                    return Err(WireError::PieceTooLong(data.len()));
                }
                Ok(Message::Piece {
                    index: be_u32(body, 0),
                    begin: be_u32(body, 4),
                    data: data.to_vec(),
                })
            }
            id::PORT => {
                exact("port", 3)?;
                Ok(Message::Port(u16::from_be_bytes([body[0], body[1]])))
            }
            id::EXTENDED => match body.split_first() {
                Some((&ext, payload)) => Ok(Message::Extended {
                    id: ext,
                    payload: payload.to_vec(),
                }),
                None => Err(WireError::TooShort {
                    name: "extended",
                    min: 2,
                    got: frame.len(),
                }),
            },
            other => Err(WireError::UnknownId(other)),
        }
    }

    /// One human-readable line for `--trace`; payloads summarised, never dumped,
    /// e.g. `PIECE 3 offset 16384 (16384 bytes)`.
    pub fn summary(&self) -> String {
        match self {
            Message::KeepAlive => "KEEP-ALIVE".into(),
            Message::Choke => "CHOKE".into(),
            Message::Unchoke => "UNCHOKE".into(),
            Message::Interested => "INTERESTED".into(),
            Message::NotInterested => "NOT INTERESTED".into(),
            Message::Have(index) => format!("HAVE {index}"),
            Message::Bitfield(bits) => format!("BITFIELD ({})", n_bytes(bits.len())),
            Message::Request {
                index,
                begin,
                length,
            } => format!("REQUEST piece {index} offset {begin} length {length}"),
            Message::Cancel {
                index,
                begin,
                length,
            } => format!("CANCEL piece {index} offset {begin} length {length}"),
            Message::Piece { index, begin, data } => {
                format!("PIECE {index} offset {begin} ({})", n_bytes(data.len()))
            }
            Message::Port(port) => format!("PORT {port}"),
            Message::Extended { id: 0, payload } => {
                format!("EXTENDED handshake ({})", n_bytes(payload.len()))
            }
            Message::Extended { id, payload } => {
                format!("EXTENDED id {id} ({})", n_bytes(payload.len()))
            }
        }
    }
}

fn n_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

fn push_block_ref(out: &mut Vec<u8>, msg_id: u8, index: u32, begin: u32, length: u32) {
    out.push(msg_id);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&begin.to_be_bytes());
    out.extend_from_slice(&length.to_be_bytes());
}

/// Callers check the length first, so the slice is always in range.
fn be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Validates a length prefix against `max` and returns the frame length.
/// Use [`max_message_len`] once the piece count is known and
/// [`MAX_MESSAGE_LEN`] before (a magnet download has no piece count yet).
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(WireError::FrameTooLong { len, max });
    }
    Ok(len)
}

/// Largest legal frame for a torrent with `num_pieces` pieces: the larger of a
/// 16 KiB piece message, the bitfield, and an extended metadata message.
///
/// `max(9 + 16384, 1 + ceil(num_pieces / 8), 2 + METADATA_DICT_MAX + 16384)`:
/// a piece message is id + index + begin + block; a bitfield is id + bits; a
/// `ut_metadata` data message is id 20 + extended id + dictionary + block.
/// With the constants as they are, the floor is 16514 bytes.
pub fn max_message_len(num_pieces: usize) -> usize {
    let piece = 9 + MAX_BLOCK_LEN as usize;
    let bitfield = 1 + num_pieces.div_ceil(8);
    let metadata = 2 + METADATA_DICT_MAX + METADATA_BLOCK;
    piece.max(bitfield).max(metadata)
}

/// The 13-byte header (length prefix, id 7, index, begin) of a piece message
/// carrying `len` bytes, so a seeder can write header and data without copying.
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[0..4].copy_from_slice(&len.saturating_add(9).to_be_bytes());
    h[4] = id::PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

/// BEP 10 extension handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Extension name → message id (`ut_metadata` → 1 for us); id 0 disables.
    /// A decoded entry with id 0 stays in the map as 0 (the peer turned that
    /// extension off); use [`ExtHandshake::ut_metadata_id`] to ask whether
    /// metadata can be fetched.
    pub m: BTreeMap<String, u8>,
    pub metadata_size: Option<u64>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listening TCP port.
    pub p: Option<u16>,
    pub reqq: Option<u32>,
}

const EXT_WHAT: &str = "extension handshake";

impl ExtHandshake {
    /// Ours: `ut_metadata` under [`UT_METADATA_ID`], plus whatever we know.
    pub fn ours(metadata_size: Option<u64>, port: Option<u16>, version: &str) -> ExtHandshake {
        ExtHandshake {
            m: BTreeMap::from([("ut_metadata".to_string(), UT_METADATA_ID)]),
            metadata_size,
            v: Some(version.to_string()),
            p: port,
            reqq: None,
        }
    }

    /// The peer's id for `ut_metadata` messages, if it enabled the extension.
    pub fn ut_metadata_id(&self) -> Option<u8> {
        self.m.get("ut_metadata").copied().filter(|&id| id != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let m = bencode::dict(
            self.m
                .iter()
                .map(|(name, id)| (name.as_bytes().to_vec(), Value::Int(i64::from(*id)))),
        );
        let mut entries: Vec<(&str, Value)> = vec![("m", m)];
        if let Some(size) = self.metadata_size {
            entries.push((
                "metadata_size",
                Value::Int(size.min(i64::MAX as u64) as i64),
            ));
        }
        if let Some(v) = &self.v {
            entries.push(("v", bencode::bytes(v.as_bytes())));
        }
        if let Some(p) = self.p {
            entries.push(("p", Value::Int(i64::from(p))));
        }
        if let Some(reqq) = self.reqq {
            entries.push(("reqq", Value::Int(i64::from(reqq))));
        }
        bencode::dict(entries).encode()
    }

    /// Unknown keys are ignored; wrong types for known keys are errors.
    /// `metadata_size` 0 reads as absent (no info dictionary is empty), a
    /// non-UTF-8 `v` is decoded lossily, and `m` entries whose name is not
    /// UTF-8 are skipped: they cannot name an extension we speak.
    pub fn decode(payload: &[u8]) -> Result<ExtHandshake, WireError> {
        let value = bencode::decode(payload).map_err(|err| WireError::Bencode {
            what: EXT_WHAT,
            err,
        })?;
        let dict = value.as_dict().ok_or(WireError::NotADict(EXT_WHAT))?;
        let mut hs = ExtHandshake::default();
        if let Some(m) = dict.get(&b"m"[..]) {
            let m = m
                .as_dict()
                .ok_or_else(|| field_type(EXT_WHAT, "m", "a dictionary"))?;
            for (name, id) in m {
                let Ok(name) = std::str::from_utf8(name) else {
                    continue;
                };
                let key = format!("m.{name}");
                let id = int_in(EXT_WHAT, &key, id, 0, 255)?;
                hs.m.insert(name.to_string(), id as u8);
            }
        }
        if let Some(size) = dict.get(&b"metadata_size"[..]) {
            let size = int_in(EXT_WHAT, "metadata_size", size, 0, MAX_METADATA_SIZE as i64)?;
            hs.metadata_size = (size != 0).then_some(size as u64);
        }
        if let Some(v) = dict.get(&b"v"[..]) {
            let v = v
                .as_bytes()
                .ok_or_else(|| field_type(EXT_WHAT, "v", "a byte string"))?;
            hs.v = Some(String::from_utf8_lossy(v).into_owned());
        }
        if let Some(p) = dict.get(&b"p"[..]) {
            hs.p = Some(int_in(EXT_WHAT, "p", p, 1, i64::from(u16::MAX))? as u16);
        }
        if let Some(reqq) = dict.get(&b"reqq"[..]) {
            hs.reqq = Some(int_in(EXT_WHAT, "reqq", reqq, 0, i64::from(u32::MAX))? as u32);
        }
        Ok(hs)
    }

    /// One line for `--trace`, e.g.
    /// `EXT-HANDSHAKE m={ut_metadata:1} metadata_size=5012 v="minitorrent 0.1.0" p=6881`.
    pub fn summary(&self) -> String {
        let m: Vec<String> = self.m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut s = format!("EXT-HANDSHAKE m={{{}}}", m.join(", "));
        if let Some(size) = self.metadata_size {
            let _ = write!(s, " metadata_size={size}");
        }
        if let Some(v) = &self.v {
            let _ = write!(s, " v={v:?}");
        }
        if let Some(p) = self.p {
            let _ = write!(s, " p={p}");
        }
        if let Some(reqq) = self.reqq {
            let _ = write!(s, " reqq={reqq}");
        }
        s
    }
}

fn field_type(what: &'static str, key: &str, expected: &'static str) -> WireError {
    WireError::FieldType {
        what,
        key: key.to_string(),
        expected,
    }
}

/// An integer value within `min..=max`, or the error naming `key`.
fn int_in(what: &'static str, key: &str, v: &Value, min: i64, max: i64) -> Result<i64, WireError> {
    let n = v
        .as_int()
        .ok_or_else(|| field_type(what, key, "an integer"))?;
    if n < min || n > max {
        return Err(WireError::FieldRange {
            what,
            key: key.to_string(),
            value: n,
            min,
            max,
        });
    }
    Ok(n)
}

/// BEP 9 `ut_metadata` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    Reject {
        piece: u32,
    },
}

const META_WHAT: &str = "ut_metadata message";
/// The last metadata piece index a [`MAX_METADATA_SIZE`] info dictionary has.
const MAX_METADATA_PIECE: i64 = (MAX_METADATA_SIZE.div_ceil(METADATA_BLOCK as u64) - 1) as i64;

impl MetadataMsg {
    /// The payload of an extended message (after the extended id byte).
    pub fn encode(&self) -> Vec<u8> {
        let (msg_type, piece) = match self {
            MetadataMsg::Request { piece } => (0, piece),
            MetadataMsg::Data { piece, .. } => (1, piece),
            MetadataMsg::Reject { piece } => (2, piece),
        };
        let mut entries = vec![
            ("msg_type", Value::Int(msg_type)),
            ("piece", Value::Int(i64::from(*piece))),
        ];
        if let MetadataMsg::Data { total_size, .. } = self {
            entries.push((
                "total_size",
                Value::Int((*total_size).min(i64::MAX as u64) as i64),
            ));
        }
        let mut out = bencode::dict(entries).encode();
        if let MetadataMsg::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }

    /// Checks the whole message, including that a data block has exactly the
    /// size its piece index and `total_size` imply (16 KiB, shorter for the
    /// last piece). [`WireError::UnknownMetadataType`] is worth ignoring
    /// rather than disconnecting, as BEP 9 asks.
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, WireError> {
        let (value, dict_len) =
            bencode::decode_prefix(payload).map_err(|err| WireError::Bencode {
                what: META_WHAT,
                err,
            })?;
        if value.as_dict().is_none() {
            return Err(WireError::NotADict(META_WHAT));
        }
        let rest = &payload[dict_len..];
        let msg_type = value
            .get("msg_type")
            .ok_or(WireError::MissingField {
                what: META_WHAT,
                key: "msg_type",
            })?
            .as_int()
            .ok_or_else(|| field_type(META_WHAT, "msg_type", "an integer"))?;
        let name = match msg_type {
            0 => "request",
            1 => "data",
            2 => "reject",
            other => return Err(WireError::UnknownMetadataType(other)),
        };
        let piece = value.get("piece").ok_or(WireError::MissingField {
            what: META_WHAT,
            key: "piece",
        })?;
        let piece = int_in(META_WHAT, "piece", piece, 0, MAX_METADATA_PIECE)? as u32;
        if msg_type != 1 {
            if !rest.is_empty() {
                return Err(WireError::MetadataTrailing {
                    name,
                    extra: rest.len(),
                });
            }
            return Ok(if msg_type == 0 {
                MetadataMsg::Request { piece }
            } else {
                MetadataMsg::Reject { piece }
            });
        }
        let total_size = value.get("total_size").ok_or(WireError::MissingField {
            what: "ut_metadata data message",
            key: "total_size",
        })?;
        let total_size = int_in(
            META_WHAT,
            "total_size",
            total_size,
            1,
            MAX_METADATA_SIZE as i64,
        )? as u64;
        if rest.len() > METADATA_BLOCK {
            return Err(WireError::MetadataBlockTooLong(rest.len()));
        }
        let start = u64::from(piece) * METADATA_BLOCK as u64;
        if start >= total_size {
            return Err(WireError::MetadataPieceOutOfRange { piece, total_size });
        }
        let expected = (total_size - start).min(METADATA_BLOCK as u64) as usize;
        if rest.len() != expected {
            return Err(WireError::MetadataBlockSize {
                piece,
                got: rest.len(),
                expected,
                total_size,
            });
        }
        Ok(MetadataMsg::Data {
            piece,
            total_size,
            data: rest.to_vec(),
        })
    }

    /// One line for `--trace`, e.g. `METADATA DATA piece 0 of 20000 (16384 bytes)`.
    pub fn summary(&self) -> String {
        match self {
            MetadataMsg::Request { piece } => format!("METADATA REQUEST piece {piece}"),
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => format!(
                "METADATA DATA piece {piece} of {total_size} ({})",
                n_bytes(data.len())
            ),
            MetadataMsg::Reject { piece } => format!("METADATA REJECT piece {piece}"),
        }
    }
}

/// A fixed-length set of piece indices, stored as BEP 3 bitfield bytes
/// (high bit of byte 0 is piece 0). Spare bits in the last byte are always 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: usize,
}

impl Bitfield {
    pub fn new(len: usize) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8)],
            len,
        }
    }
    /// Every piece set (a seeder's bitfield).
    pub fn full(len: usize) -> Bitfield {
        let mut b = Bitfield::new(len);
        b.set_all();
        b
    }
    /// Rejects a wrong byte count or set spare bits.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Result<Bitfield, WireError> {
        let expected = len.div_ceil(8);
        if bytes.len() != expected {
            return Err(WireError::BitfieldSize {
                got: bytes.len(),
                expected,
                pieces: len,
            });
        }
        if let Some(&last) = bytes.last() {
            if last & !last_byte_mask(len) != 0 {
                return Err(WireError::BitfieldSpareBits(len));
            }
        }
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
        })
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// False for an index out of range.
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bytes[i / 8] & bit(i) != 0
    }
    /// Ignores an index out of range.
    pub fn set(&mut self, i: usize) {
        if i < self.len {
            self.bytes[i / 8] |= bit(i);
        }
    }
    /// Ignores an index out of range.
    pub fn clear(&mut self, i: usize) {
        if i < self.len {
            self.bytes[i / 8] &= !bit(i);
        }
    }
    pub fn set_all(&mut self) {
        self.bytes.fill(0xff);
        if let Some(last) = self.bytes.last_mut() {
            *last = last_byte_mask(self.len);
        }
    }
    pub fn count(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// True when every piece is set (also for an empty bitfield).
    pub fn all(&self) -> bool {
        self.count() == self.len
    }
    /// Set indices in ascending order; skips whole empty bytes.
    pub fn iter_set(&self) -> impl Iterator<Item = usize> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(byte, &b)| {
                (0..8)
                    .filter(move |bit_i| b & (0x80 >> bit_i) != 0)
                    .map(move |bit_i| byte * 8 + bit_i)
            })
    }
    /// Unset indices in ascending order; skips whole full bytes.
    pub fn iter_unset(&self) -> impl Iterator<Item = usize> + '_ {
        let len = self.len;
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0xff)
            .flat_map(|(byte, &b)| {
                (0..8)
                    .filter(move |bit_i| b & (0x80 >> bit_i) == 0)
                    .map(move |bit_i| byte * 8 + bit_i)
            })
            .take_while(move |&i| i < len)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn bit(i: usize) -> u8 {
    0x80 >> (i % 8)
}

/// The bits of the last byte that belong to pieces (`0xff` when `len` is a
/// multiple of 8).
fn last_byte_mask(len: usize) -> u8 {
    match len % 8 {
        0 => 0xff,
        r => !(0xffu8 >> r),
    }
}
