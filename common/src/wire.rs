//! The BitTorrent peer wire protocol: the BEP 3 handshake and messages, the
//! BEP 10 extension handshake and BEP 9 `ut_metadata` messages, and bitfields.
// STUB: the signatures below are the agreed API; bodies are filled in by the wire work.
#![allow(unused_variables)]

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Placeholder; the real variants name each problem.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// A handshake announcing the extension protocol (reserved bit 0x10 of byte 5).
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Handshake {
        todo!()
    }
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        todo!()
    }
    /// Rejects a wrong protocol string length or name.
    pub fn decode(buf: &[u8; HANDSHAKE_LEN]) -> Result<Handshake, WireError> {
        todo!()
    }
    pub fn supports_extensions(&self) -> bool {
        todo!()
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
        todo!()
    }
    /// Decodes one frame (without its length prefix). Wrong lengths for a
    /// message id, unknown ids and empty extended messages are errors.
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        todo!()
    }
    /// One human-readable line for `--trace`; payloads summarised, never dumped,
    /// e.g. `PIECE 3 offset 16384 (16384 bytes)`.
    pub fn summary(&self) -> String {
        todo!()
    }
}

/// Validates a length prefix against `max` and returns the frame length.
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, WireError> {
    todo!()
}

/// Largest legal frame for a torrent with `num_pieces` pieces: the larger of a
/// 16 KiB piece message, the bitfield, and an extended metadata message.
pub fn max_message_len(num_pieces: usize) -> usize {
    todo!()
}

/// The 13-byte header (length prefix, id 7, index, begin) of a piece message
/// carrying `len` bytes, so a seeder can write header and data without copying.
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; 13] {
    todo!()
}

/// BEP 10 extension handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// Extension name → message id (`ut_metadata` → 1 for us); id 0 disables.
    pub m: BTreeMap<String, u8>,
    pub metadata_size: Option<u64>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's listening TCP port.
    pub p: Option<u16>,
    pub reqq: Option<u32>,
}

impl ExtHandshake {
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }
    /// Unknown keys are ignored; wrong types for known keys are errors.
    pub fn decode(payload: &[u8]) -> Result<ExtHandshake, WireError> {
        todo!()
    }
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

impl MetadataMsg {
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }
    pub fn decode(payload: &[u8]) -> Result<MetadataMsg, WireError> {
        todo!()
    }
}

/// A fixed-length set of piece indices, stored as BEP 3 bitfield bytes
/// (high bit of byte 0 is piece 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: usize,
}

impl Bitfield {
    pub fn new(len: usize) -> Bitfield {
        todo!()
    }
    /// Rejects a wrong byte count or set spare bits.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Result<Bitfield, WireError> {
        todo!()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// False for an index out of range.
    pub fn get(&self, i: usize) -> bool {
        todo!()
    }
    /// Ignores an index out of range.
    pub fn set(&mut self, i: usize) {
        todo!()
    }
    pub fn count(&self) -> usize {
        todo!()
    }
    pub fn all(&self) -> bool {
        todo!()
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
