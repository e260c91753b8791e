//! BitTorrent v1 metainfo (`.torrent`): strict parsing, the layout of a new
//! torrent, and the info hash.
//!
//! Parsing is strict because a `.torrent` decides where bytes land on disk: every
//! field is type-checked, sizes must agree with the piece hashes, and every path
//! component is checked so that nothing can be written outside the download
//! directory. Limits (accepted when parsing):
//!
//! - `piece length`: a power of two from 16 KiB to 32 MiB (real clients create
//!   up to 16 MiB; a few use 32 MiB for huge torrents). 32 MiB is also the most
//!   the peer's piece geometry takes, so a torrent that parses can be fetched.
//!   A new torrent ([`Layout`]) only gets 16 KiB..=16 MiB.
//! - total length at most 1 TiB and at most 2^20 pieces; total length 0 is
//!   rejected.
//! - names must be UTF-8 (`name.utf-8`/`path.utf-8` are ignored).
//! - file paths must differ in more than letter case, or they would overwrite
//!   each other on Windows and macOS.
//!
//! Making a torrent is split in two so this crate reads no file: the caller
//! lists the files (path below the root, size) and hashes their bytes; the
//! `layout` submodule ([`Layout`], [`CreateOptions`], [`choose_piece_length`])
//! puts them in torrent order, picks the piece length and builds the info
//! dictionary. The peer's `create` module is that caller for files on disk.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::bencode::{self, BencodeError, Value};

mod layout;

pub use layout::{choose_piece_length, CreateOptions, Layout, NewFile};

/// Size of one block on the wire (BEP 3 convention).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Smallest piece length accepted (parsing and creation).
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;
/// Largest piece length a new torrent gets or [`CreateOptions`] accepts.
pub const MAX_CREATE_PIECE_LENGTH: u64 = 16 * 1024 * 1024;
/// Largest piece length accepted when parsing a torrent; the same limit as the
/// peer's piece geometry, so a torrent that parses can also be downloaded.
pub const MAX_PARSE_PIECE_LENGTH: u64 = 32 * 1024 * 1024;
/// Largest total length accepted (1 TiB).
pub const MAX_TOTAL_LENGTH: u64 = 1 << 40;
/// Largest number of pieces accepted.
pub const MAX_PIECES: usize = 1 << 20;

/// SHA-1 of the bencoded `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<InfoHash, MetainfoError> {
        crate::hex::decode_20(s)
            .map(InfoHash)
            .map_err(|_| MetainfoError::BadInfoHash(shorten(s)))
    }
    /// SHA-1 of `info_bytes`.
    pub fn of(info_bytes: &[u8]) -> InfoHash {
        InfoHash(crate::hash::sha1(info_bytes))
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

/// Keeps error messages readable when the offending input is huge.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error("malformed bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("{0} is not a dictionary")]
    NotADict(&'static str),
    #[error("missing field {0}")]
    Missing(String),
    #[error("field {field} is not {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("field {0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("info has both length and files; a torrent is either one file or a directory")]
    LengthAndFiles,
    #[error("info has neither length nor files")]
    NoLengthOrFiles,
    #[error("info.files is empty")]
    NoFiles,
    #[error("{field} is negative ({value})")]
    NegativeLength { field: String, value: i64 },
    #[error("info.piece length {0} is not a power of two between 16 KiB and 32 MiB")]
    BadPieceLength(i64),
    #[error("piece length {0} is not a power of two between 16 KiB and 16 MiB")]
    BadCreatePieceLength(u64),
    #[error("info.pieces length {0} is not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    #[error("torrent has {0} pieces; the limit is 1048576 (2^20)")]
    TooManyPieces(usize),
    #[error(
        "info.pieces holds {actual} hashes but {total_length} bytes in pieces of \
         {piece_length} bytes need {expected}"
    )]
    PieceCountMismatch {
        actual: usize,
        expected: u64,
        total_length: u64,
        piece_length: u64,
    },
    #[error("total length {0} bytes exceeds the 1 TiB limit")]
    TooLarge(u64),
    #[error("torrent holds no data (total length 0)")]
    EmptyTorrent,
    #[error("info.private is {0}; it must be 0 or 1")]
    BadPrivate(i64),
    #[error("{field} '{}' {reason}", .component.escape_debug())]
    UnsafePath {
        /// `info.name` or `file path component`.
        field: &'static str,
        component: String,
        reason: &'static str,
    },
    #[error("file path in info.files[{0}] is an empty list")]
    EmptyPath(usize),
    #[error("file path '{}' appears more than once in info.files", .0.escape_debug())]
    DuplicatePath(String),
    #[error("file path '{}' is both a file and a directory in info.files", .0.escape_debug())]
    FileDirConflict(String),
    #[error(
        "file paths '{}' and '{}' in info.files differ only in case; on a \
         case-insensitive file system (Windows, macOS) they are the same path",
        .first.escape_debug(),
        .second.escape_debug()
    )]
    CaseCollision { first: String, second: String },
    #[error("info hash '{0}' is not 40 hex digits")]
    BadInfoHash(String),
    // What making a torrent from files can run into. This crate reads no
    // file; the peer's `create` reports these, in the same error type as the
    // layout rules so a caller handles one type.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0} holds no data (0 bytes); there is nothing to share")]
    NothingToShare(String),
    #[error("{path} is a {kind}; only regular files and directories can be shared")]
    UnsupportedFileType { path: String, kind: &'static str },
    #[error("file name {0} is not valid UTF-8")]
    NonUtf8FileName(String),
    #[error("{path} changed while it was being hashed (expected {expected} bytes)")]
    FileChanged { path: String, expected: u64 },
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
        Info::from_value(&bencode::decode(info_bytes)?)
    }

    fn from_value(v: &Value) -> Result<Info, MetainfoError> {
        if v.as_dict().is_none() {
            return Err(MetainfoError::NotADict("info"));
        }
        let name = req_str(v, "name", "info.name")?.to_string();
        check_name(&name)?;

        let pl = req_int(v, "piece length", "info.piece length")?;
        let piece_length = u64::try_from(pl)
            .ok()
            .filter(|&p| {
                p.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PARSE_PIECE_LENGTH).contains(&p)
            })
            .ok_or(MetainfoError::BadPieceLength(pl))?;

        let private = match v.get("private") {
            None => false,
            Some(p) => match p.as_int() {
                Some(0) => false,
                Some(1) => true,
                Some(n) => return Err(MetainfoError::BadPrivate(n)),
                None => return Err(wrong("info.private", "an integer")),
            },
        };

        let (files, multi_file) = match (v.get("length"), v.get("files")) {
            (Some(_), Some(_)) => return Err(MetainfoError::LengthAndFiles),
            (None, None) => return Err(MetainfoError::NoLengthOrFiles),
            (Some(_), None) => {
                let length = req_len(v, "length", "info.length")?;
                let entry = FileEntry {
                    path: vec![name.clone()],
                    length,
                    offset: 0,
                };
                (vec![entry], false)
            }
            (None, Some(list)) => (parse_files(list)?, true),
        };

        let total_length = files
            .last()
            .map_or(0, |f| f.offset.saturating_add(f.length));
        if total_length > MAX_TOTAL_LENGTH {
            return Err(MetainfoError::TooLarge(total_length));
        }
        if total_length == 0 {
            return Err(MetainfoError::EmptyTorrent);
        }

        let raw = req_bytes(v, "pieces", "info.pieces")?;
        if raw.len() % 20 != 0 {
            return Err(MetainfoError::PiecesNotMultipleOf20(raw.len()));
        }
        let actual = raw.len() / 20;
        if actual > MAX_PIECES {
            return Err(MetainfoError::TooManyPieces(actual));
        }
        let expected = total_length.div_ceil(piece_length);
        if actual as u64 != expected {
            return Err(MetainfoError::PieceCountMismatch {
                actual,
                expected,
                total_length,
                piece_length,
            });
        }
        let pieces = raw
            .chunks_exact(20)
            .map(|c| {
                let mut h = [0u8; 20];
                h.copy_from_slice(c);
                h
            })
            .collect();

        Ok(Info {
            name,
            piece_length,
            pieces,
            files,
            multi_file,
            private,
        })
    }

    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|f| f.length).sum()
    }
    pub fn num_pieces(&self) -> usize {
        self.pieces.len()
    }
    /// Length of piece `index` (the last one may be shorter); 0 when `index` is
    /// out of range, so a bad index from the network cannot panic here.
    pub fn piece_size(&self, index: usize) -> u64 {
        let n = self.pieces.len();
        if index >= n {
            return 0;
        }
        if index + 1 < n {
            return self.piece_length;
        }
        let before = self.piece_length.saturating_mul(n as u64 - 1);
        self.total_length().saturating_sub(before)
    }
    /// Where file `i` lives below a download directory: `dir/name` for a single
    /// file, `dir/name/a/b` for a multi-file torrent.
    pub fn file_path(&self, dir: &Path, i: usize) -> PathBuf {
        let mut p = dir.to_path_buf();
        if self.multi_file {
            p.push(&self.name);
            if let Some(f) = self.files.get(i) {
                p.extend(&f.path);
            }
        } else {
            p.push(&self.name);
        }
        p
    }
}

fn wrong(field: &str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        field: field.to_string(),
        expected,
    }
}

fn req<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a Value, MetainfoError> {
    v.get(key)
        .ok_or_else(|| MetainfoError::Missing(field.to_string()))
}

fn req_int(v: &Value, key: &str, field: &str) -> Result<i64, MetainfoError> {
    req(v, key, field)?
        .as_int()
        .ok_or_else(|| wrong(field, "an integer"))
}

fn req_len(v: &Value, key: &str, field: &str) -> Result<u64, MetainfoError> {
    let n = req_int(v, key, field)?;
    u64::try_from(n).map_err(|_| MetainfoError::NegativeLength {
        field: field.to_string(),
        value: n,
    })
}

fn req_bytes<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a [u8], MetainfoError> {
    req(v, key, field)?
        .as_bytes()
        .ok_or_else(|| wrong(field, "a byte string"))
}

fn as_utf8<'a>(v: &'a Value, field: &str) -> Result<&'a str, MetainfoError> {
    let b = v.as_bytes().ok_or_else(|| wrong(field, "a byte string"))?;
    std::str::from_utf8(b).map_err(|_| MetainfoError::NotUtf8(field.to_string()))
}

fn req_str<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a str, MetainfoError> {
    as_utf8(req(v, key, field)?, field)
}

fn opt_str(v: &Value, key: &str) -> Result<Option<String>, MetainfoError> {
    v.get(key)
        .map(|s| as_utf8(s, key).map(str::to_string))
        .transpose()
}

fn parse_files(list: &Value) -> Result<Vec<FileEntry>, MetainfoError> {
    let list = list
        .as_list()
        .ok_or_else(|| wrong("info.files", "a list"))?;
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    for (i, f) in list.iter().enumerate() {
        if f.as_dict().is_none() {
            return Err(wrong(&format!("info.files[{i}]"), "a dictionary"));
        }
        let length = req_len(f, "length", &format!("info.files[{i}].length"))?;
        let path_field = format!("info.files[{i}].path");
        let comps = req(f, "path", &path_field)?
            .as_list()
            .ok_or_else(|| wrong(&path_field, "a list"))?;
        if comps.is_empty() {
            return Err(MetainfoError::EmptyPath(i));
        }
        let mut path = Vec::with_capacity(comps.len());
        for c in comps {
            let c = as_utf8(c, &path_field)?;
            check_path_component(c)?;
            path.push(c.to_string());
        }
        files.push(FileEntry {
            path,
            length,
            offset,
        });
        // Each length fits in i64, so checking after every step cannot overflow.
        offset = offset.saturating_add(length);
        if offset > MAX_TOTAL_LENGTH {
            return Err(MetainfoError::TooLarge(offset));
        }
    }
    check_unique(&files)?;
    Ok(files)
}

/// Two entries writing the same file, or a file where another entry needs a
/// directory, would overwrite each other's data on disk. Paths are also
/// compared in lowercase: on a case-insensitive file system `A` and `a` are one
/// file, and the second would overwrite the first after both were verified.
fn check_unique(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut seen = HashSet::with_capacity(files.len());
    let mut dirs = HashSet::new();
    for f in files {
        let joined = f.path.join("/");
        if !seen.insert(joined.clone()) {
            return Err(MetainfoError::DuplicatePath(joined));
        }
        for k in 1..f.path.len() {
            dirs.insert(f.path[..k].join("/"));
        }
    }
    if let Some(p) = files
        .iter()
        .map(|f| f.path.join("/"))
        .find(|p| dirs.contains(p))
    {
        return Err(MetainfoError::FileDirConflict(p));
    }

    // Exact clashes are reported above with their own messages; what is left
    // here differs only in case. Directories that differ only in case merge
    // into one directory, which is harmless unless a file inside clashes
    // (caught as a file clash) or a file takes the directory's name.
    let mut folded: HashMap<String, String> = HashMap::with_capacity(files.len());
    let mut folded_dirs: HashMap<String, String> = HashMap::new();
    for f in files {
        let joined = f.path.join("/");
        match folded.entry(joined.to_lowercase()) {
            Entry::Occupied(e) => {
                return Err(MetainfoError::CaseCollision {
                    first: e.get().clone(),
                    second: joined,
                })
            }
            Entry::Vacant(e) => {
                e.insert(joined);
            }
        }
        for k in 1..f.path.len() {
            let dir = f.path[..k].join("/");
            folded_dirs.entry(dir.to_lowercase()).or_insert(dir);
        }
    }
    for f in files {
        let joined = f.path.join("/");
        if let Some(dir) = folded_dirs.get(&joined.to_lowercase()) {
            return Err(MetainfoError::CaseCollision {
                first: dir.clone(),
                second: joined,
            });
        }
    }
    Ok(())
}

/// Checks a torrent's name (`info.name`) by the rules parsing applies, so
/// whoever lists files for a new torrent can stop at the first name no
/// downloader would accept.
pub fn check_name(name: &str) -> Result<(), MetainfoError> {
    check_component("info.name", name)
}

/// Checks one component of a file's path below the torrent's root by the
/// rules parsing applies.
pub fn check_path_component(c: &str) -> Result<(), MetainfoError> {
    check_component("file path component", c)
}

/// Rejects anything that could make a path leave the download directory or
/// mean something different on another operating system.
fn check_component(field: &'static str, c: &str) -> Result<(), MetainfoError> {
    let reason = if c.is_empty() {
        Some("is empty")
    } else if c == "." {
        Some("refers to the directory itself")
    } else if c == ".." {
        Some("escapes the download directory")
    } else if c.starts_with('/') || c.starts_with('\\') {
        Some("is an absolute path")
    } else if c.contains('/') || c.contains('\\') {
        Some("contains a path separator")
    } else if c.contains('\0') {
        Some("contains a NUL byte")
    } else if c.len() >= 2 && c.as_bytes()[0].is_ascii_alphabetic() && c.as_bytes()[1] == b':' {
        Some("starts with a Windows drive prefix")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(MetainfoError::UnsafePath {
            field,
            component: c.to_string(),
            reason,
        }),
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
        let top = bencode::decode(buf)?;
        if top.as_dict().is_none() {
            return Err(MetainfoError::NotADict("the torrent file"));
        }
        let span = bencode::dict_value_span(buf, b"info")?
            .ok_or_else(|| MetainfoError::Missing("info".to_string()))?;
        let info = Info::from_value(req(&top, "info", "info")?)?;
        let info_bytes = buf[span].to_vec();

        let announce = opt_str(&top, "announce")?;
        let announce_list = match top.get("announce-list") {
            None => Vec::new(),
            Some(l) => {
                let tiers = l
                    .as_list()
                    .ok_or_else(|| wrong("announce-list", "a list of lists"))?;
                tiers
                    .iter()
                    .map(|tier| {
                        tier.as_list()
                            .ok_or_else(|| wrong("announce-list", "a list of lists"))?
                            .iter()
                            .map(|u| as_utf8(u, "announce-list").map(str::to_string))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let creation_date = match top.get("creation date") {
            None => None,
            Some(d) => Some(
                d.as_int()
                    .ok_or_else(|| wrong("creation date", "an integer"))?,
            ),
        };
        Ok(Metainfo {
            announce,
            announce_list,
            comment: opt_str(&top, "comment")?,
            created_by: opt_str(&top, "created by")?,
            creation_date,
            info,
            info_hash: InfoHash::of(&info_bytes),
            info_bytes,
        })
    }

    /// Builds a metainfo around an info dictionary fetched from peers (BEP 9).
    pub fn from_info_bytes(
        info_bytes: Vec<u8>,
        announce: Option<String>,
    ) -> Result<Metainfo, MetainfoError> {
        let info = Info::from_bytes(&info_bytes)?;
        Ok(Metainfo {
            announce,
            announce_list: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            info,
            info_hash: InfoHash::of(&info_bytes),
            info_bytes,
        })
    }

    /// Bencodes the whole torrent (the info dictionary byte for byte as held).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Built by hand because the info dictionary must be copied verbatim,
        // not re-encoded; keys are written in sorted order.
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        out.push(b'd');
        let field = |key: &str, v: Value, out: &mut Vec<u8>| {
            bencode::bytes(key).encode_into(out);
            v.encode_into(out);
        };
        if let Some(a) = &self.announce {
            field("announce", bencode::bytes(a.as_str()), &mut out);
        }
        if !self.announce_list.is_empty() {
            let tiers = self
                .announce_list
                .iter()
                .map(|t| Value::List(t.iter().map(|u| bencode::bytes(u.as_str())).collect()))
                .collect();
            field("announce-list", Value::List(tiers), &mut out);
        }
        if let Some(c) = &self.comment {
            field("comment", bencode::bytes(c.as_str()), &mut out);
        }
        if let Some(c) = &self.created_by {
            field("created by", bencode::bytes(c.as_str()), &mut out);
        }
        if let Some(d) = self.creation_date {
            field("creation date", Value::Int(d), &mut out);
        }
        bencode::bytes("info").encode_into(&mut out);
        out.extend_from_slice(&self.info_bytes);
        out.push(b'e');
        out
    }

    /// A JSON view for `minitorrent info --json` (hashes as hex).
    pub fn to_json(&self) -> serde_json::Value {
        let info = &self.info;
        let files: Vec<serde_json::Value> = info
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path.join("/"),
                    "length": f.length,
                    "offset": f.offset,
                })
            })
            .collect();
        let pieces: Vec<String> = info.pieces.iter().map(|p| crate::hex::encode(p)).collect();
        serde_json::json!({
            "name": info.name,
            "info_hash": self.info_hash.to_hex(),
            "announce": self.announce,
            "announce_list": self.announce_list,
            "comment": self.comment,
            "created_by": self.created_by,
            "creation_date": self.creation_date,
            "private": info.private,
            "multi_file": info.multi_file,
            "piece_length": info.piece_length,
            "num_pieces": info.num_pieces(),
            "total_length": info.total_length(),
            "files": files,
            "pieces": pieces,
        })
    }
}

/// Human-readable size with binary units: "512 B", "4.0 MiB", "1.5 GiB".
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up while one decimal would round to 1024.0 or more.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
