//! The BitTorrent peer wire protocol: the BEP 3 handshake and messages, the
//! BEP 10 extension handshake, BEP 9 `ut_metadata` and BEP 11 `ut_pex`
//! messages, and bitfields.
//!
//! Everything here works on byte slices; the connection code reads a 4-byte
//! prefix, checks it with [`frame_len`], reads that many bytes and hands them to
//! [`Message::decode`]. Limits are strict so a misbehaving peer costs at most
//! one frame of memory. docs/PROTOCOL.md ("Peer wire") describes the layouts.
//!
//! This file owns what every part shares: the limits, the message ids,
//! [`WireError`] and the framing (length prefix, per-torrent frame limit, the
//! piece header a seeder writes before its data). The rest lives beside it:
//!
//! - `handshake`: the 68-byte BEP 3 [`Handshake`];
//! - `message`: one length-prefixed [`Message`], its encoding and `--trace` line;
//! - `ext`: the BEP 10 [`ExtHandshake`] and BEP 9 [`MetadataMsg`] payloads;
//! - `pex`: the BEP 11 [`PexMsg`] payload;
//! - `bitfield`: the [`Bitfield`] of pieces a peer has.
//!
//! The submodules are private; every type is re-exported here, so callers
//! write `wire::Message`, never `wire::message::Message`.

mod bitfield;
mod ext;
mod handshake;
mod message;
mod pex;

pub use bitfield::Bitfield;
pub use ext::{ExtHandshake, MetadataMsg};
pub use handshake::{peer_id_display, Handshake};
pub use message::Message;
pub use pex::{pex_flags, PexMsg, PexPeer};

use crate::bencode::BencodeError;

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
/// Our `ut_pex` message id in the extension handshake `m` dictionary.
pub const UT_PEX_ID: u8 = 2;
/// Added peers in one `ut_pex` message at most: we send no more, and keep no
/// more of one we receive (BEP 11 suggests 50).
pub const MAX_PEX_ADDED: usize = 50;
/// Dropped peers in one `ut_pex` message at most, likewise.
pub const MAX_PEX_DROPPED: usize = 50;
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
    #[error("ut_pex '{key}' has {len} bytes, not a whole number of {unit}-byte entries ({extra} left over)")]
    PexList {
        key: &'static str,
        len: usize,
        unit: usize,
        extra: usize,
    },
    #[error("ut_pex '{key}' has {got} flag bytes for {expected} added peers")]
    PexFlags {
        key: &'static str,
        got: usize,
        expected: usize,
    },
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

/// `n bytes`, singular for one; shared by the `--trace` summaries.
fn n_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}
