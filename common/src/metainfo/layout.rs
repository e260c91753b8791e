//! The layout of a new torrent: its options, its piece length, the order of
//! its files and its info dictionary, worked out from a list of files.
//!
//! Nothing here reads a file. The caller lists the files (one file, or a
//! directory's files as path components below the root, with their sizes),
//! hashes their concatenation in the order [`Layout::files`] gives, and hands
//! the hashes to [`Layout::into_metainfo`]. Inside a directory, files are taken
//! in byte order of their `/`-joined relative path (the order `mktorrent`
//! uses, so both produce the same info hash); empty files are included.

use super::{
    check_name, check_path_component, Metainfo, MetainfoError, MAX_CREATE_PIECE_LENGTH,
    MAX_TOTAL_LENGTH, MIN_PIECE_LENGTH,
};
use crate::bencode::{self, Value};

/// Options for a new torrent.
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

impl CreateOptions {
    /// Checks the options on their own, so a caller can refuse them before it
    /// reads anything: a piece length, when given, must be a power of two
    /// from 16 KiB to 16 MiB.
    pub fn check(&self) -> Result<(), MetainfoError> {
        if let Some(pl) = self.piece_length {
            if !pl.is_power_of_two() || !(MIN_PIECE_LENGTH..=MAX_CREATE_PIECE_LENGTH).contains(&pl)
            {
                return Err(MetainfoError::BadCreatePieceLength(pl));
            }
        }
        Ok(())
    }
}

/// Piece length for `total` bytes: a power of two from 16 KiB to 16 MiB giving
/// about 1,000–2,000 pieces.
///
/// It is the smallest such power of two giving at most 2,000 pieces, so unless
/// clamped at either end the count lands in 1,001..=2,000.
pub fn choose_piece_length(total: u64) -> u64 {
    const TARGET_MAX_PIECES: u64 = 2000;
    let mut pl = MIN_PIECE_LENGTH;
    while pl < MAX_CREATE_PIECE_LENGTH && total.div_ceil(pl) > TARGET_MAX_PIECES {
        pl *= 2;
    }
    pl
}

/// One file of a new torrent, as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Path components below the torrent's root (`["a", "b.bin"]` for
    /// `a/b.bin`); `[name]` for a single-file torrent.
    pub path: Vec<String>,
    pub length: u64,
}

/// A new torrent before its bytes are hashed: name, files in torrent order,
/// total size and piece length, every name checked by the rules parsing
/// applies.
///
/// A layout may hold no bytes (no files, or only empty ones); a torrent
/// cannot, so [`Layout::into_metainfo`] then fails with
/// [`MetainfoError::EmptyTorrent`]. A caller with a better message for that
/// checks [`Layout::total_length`] first.
#[derive(Debug, Clone)]
pub struct Layout {
    name: String,
    multi_file: bool,
    files: Vec<NewFile>,
    total_length: u64,
    piece_length: u64,
    opts: CreateOptions,
}

impl Layout {
    /// A torrent of one file called `name`, `length` bytes long.
    pub fn single(
        name: String,
        length: u64,
        opts: &CreateOptions,
    ) -> Result<Layout, MetainfoError> {
        let files = vec![NewFile {
            path: vec![name.clone()],
            length,
        }];
        Layout::new(name, false, files, opts)
    }

    /// A torrent of the directory `name` holding `files`, given in any order.
    pub fn directory(
        name: String,
        files: Vec<NewFile>,
        opts: &CreateOptions,
    ) -> Result<Layout, MetainfoError> {
        Layout::new(name, true, files, opts)
    }

    fn new(
        name: String,
        multi_file: bool,
        mut files: Vec<NewFile>,
        opts: &CreateOptions,
    ) -> Result<Layout, MetainfoError> {
        opts.check()?;
        check_name(&name)?;
        if multi_file {
            for c in files.iter().flat_map(|f| &f.path) {
                check_path_component(c)?;
            }
            // Byte order of the '/'-joined path, as mktorrent sorts, so both
            // tools give the same info hash for the same directory.
            files.sort_by_cached_key(|f| f.path.join("/"));
        }
        let total_length = files
            .iter()
            .fold(0u64, |total, f| total.saturating_add(f.length));
        if total_length > MAX_TOTAL_LENGTH {
            return Err(MetainfoError::TooLarge(total_length));
        }
        let piece_length = opts
            .piece_length
            .unwrap_or_else(|| choose_piece_length(total_length));
        Ok(Layout {
            name,
            multi_file,
            files,
            total_length,
            piece_length,
            opts: opts.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// True for a directory: the torrent gets a `files` list.
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }
    /// The files in torrent order: the order their bytes are hashed in.
    pub fn files(&self) -> &[NewFile] {
        &self.files
    }
    pub fn total_length(&self) -> u64 {
        self.total_length
    }
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// The torrent, given `pieces`: the SHA-1 of every piece of the files'
    /// concatenation in [`Layout::files`] order, 20 bytes each, back to back.
    /// The info dictionary is parsed back before it is returned, so it obeys
    /// every rule a downloader will apply.
    pub fn into_metainfo(self, pieces: Vec<u8>) -> Result<Metainfo, MetainfoError> {
        // Every length fits in i64: the total was checked against 1 TiB.
        let mut entries: Vec<(&str, Value)> = Vec::new();
        if self.multi_file {
            let files = self
                .files
                .iter()
                .map(|f| {
                    bencode::dict([
                        ("length", Value::Int(f.length as i64)),
                        (
                            "path",
                            Value::List(
                                f.path.iter().map(|c| bencode::bytes(c.as_str())).collect(),
                            ),
                        ),
                    ])
                })
                .collect();
            entries.push(("files", Value::List(files)));
        } else {
            entries.push(("length", Value::Int(self.total_length as i64)));
        }
        entries.push(("name", bencode::bytes(self.name.as_str())));
        entries.push(("piece length", Value::Int(self.piece_length as i64)));
        entries.push(("pieces", bencode::bytes(pieces)));
        if self.opts.private {
            entries.push(("private", Value::Int(1)));
        }
        let info_bytes = bencode::dict(entries).encode();

        let opts = self.opts;
        let mut m = Metainfo::from_info_bytes(info_bytes, opts.announce)?;
        m.comment = opts.comment;
        m.created_by = opts.created_by;
        m.creation_date = opts.creation_date;
        Ok(m)
    }
}
