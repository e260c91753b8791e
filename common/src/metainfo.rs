//! BitTorrent v1 metainfo (`.torrent`): strict parsing, creation from a file or a
//! directory, and the info hash.
// STUB: the signatures below are the agreed API; bodies are filled in by the metainfo work.
#![allow(unused_variables)]

use std::fmt;
use std::path::{Path, PathBuf};

/// Size of one block on the wire (BEP 3 convention).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// SHA-1 of the bencoded `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        todo!()
    }
    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<InfoHash, MetainfoError> {
        todo!()
    }
    /// SHA-1 of `info_bytes`.
    pub fn of(info_bytes: &[u8]) -> InfoHash {
        todo!()
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    /// Placeholder; the real variants name each problem.
    #[error("{0}")]
    Invalid(String),
}

/// One file of the torrent, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's root; validated: none empty, none
    /// `.`/`..`, no separators, nothing absolute. For a single-file torrent this
    /// is `[name]`.
    pub path: Vec<String>,
    pub length: u64,
    /// Byte offset of this file within the concatenation of all files.
    pub offset: u64,
}

/// The parsed `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    pub files: Vec<FileEntry>,
    /// True when the torrent has a `files` list (a directory).
    pub multi_file: bool,
    pub private: bool,
}

impl Info {
    /// Parses a raw bencoded info dictionary (as fetched with BEP 9).
    pub fn from_bytes(info_bytes: &[u8]) -> Result<Info, MetainfoError> {
        todo!()
    }
    pub fn total_length(&self) -> u64 {
        todo!()
    }
    pub fn num_pieces(&self) -> usize {
        self.pieces.len()
    }
    /// Length of piece `index` (the last one may be shorter).
    pub fn piece_size(&self, index: usize) -> u64 {
        todo!()
    }
    /// Where file `i` lives below a download directory: `dir/name` for a single
    /// file, `dir/name/a/b` for a multi-file torrent.
    pub fn file_path(&self, dir: &Path, i: usize) -> PathBuf {
        todo!()
    }
}

/// A whole `.torrent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    pub info: Info,
    /// The `info` dictionary exactly as it appeared in the file.
    pub info_bytes: Vec<u8>,
    pub info_hash: InfoHash,
}

impl Metainfo {
    /// Strictly parses a `.torrent` file's bytes.
    pub fn from_bytes(buf: &[u8]) -> Result<Metainfo, MetainfoError> {
        todo!()
    }
    /// Builds a metainfo around an info dictionary fetched from peers (BEP 9).
    pub fn from_info_bytes(
        info_bytes: Vec<u8>,
        announce: Option<String>,
    ) -> Result<Metainfo, MetainfoError> {
        todo!()
    }
    /// Bencodes the whole torrent (the info dictionary byte for byte as held).
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
    /// A JSON view for `minitorrent info --json` (hashes as hex).
    pub fn to_json(&self) -> serde_json::Value {
        todo!()
    }
}

/// Options for [`create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// e.g. `udp://127.0.0.1:6969`
    pub announce: Option<String>,
    /// Power of two between 16 KiB and 16 MiB; `None` chooses from the size.
    pub piece_length: Option<u64>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    pub private: bool,
}

/// Piece length for `total` bytes: a power of two from 16 KiB to 16 MiB giving
/// about 1,000–2,000 pieces.
pub fn choose_piece_length(total: u64) -> u64 {
    todo!()
}

/// Hashes a file or a directory (multi-file, files in sorted path order) into a
/// metainfo.
pub fn create(path: &Path, opts: &CreateOptions) -> Result<Metainfo, MetainfoError> {
    todo!()
}
