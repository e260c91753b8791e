//! Making a .torrent from files on disk.
//!
//! [`create`] shares a regular file or a directory: it walks the tree, reads
//! and hashes every byte, and leaves every format rule (file order, piece
//! length, names, the info dictionary) to `minitorrent_common::metainfo::Layout`,
//! which reads no file itself. Inside a directory, files are taken in byte
//! order of their `/`-joined relative path (the order `mktorrent` uses, so both
//! produce the same info hash); empty files are included, empty directories
//! cannot be represented in v1 and leave no trace. Symbolic links and special
//! files (sockets, FIFOs, devices) inside a directory are an error rather than
//! being skipped or followed: following could leave the shared tree or loop,
//! and skipping would share less than the user asked for. The path given to
//! [`create`] itself may be a symlink; it is followed because the user named it.

use std::fs;
use std::io::Read;
use std::path::Path;

use minitorrent_common::hash::Sha1;
use minitorrent_common::metainfo::{self, CreateOptions, Layout, Metainfo, MetainfoError, NewFile};

use crate::net::storage::FileStamp;

/// Read buffer used while hashing; files are streamed, never held whole.
const HASH_BUF_SIZE: usize = 64 * 1024;

/// Hashes a file or a directory (multi-file, files in sorted path order) into a
/// metainfo.
pub fn create(path: &Path, opts: &CreateOptions) -> Result<Metainfo, MetainfoError> {
    create_with(path, opts, &mut |_, _| {}).map(|(m, _)| m)
}

/// [`create`], calling `progress(bytes hashed, total bytes)` as it goes (once
/// at the start, after every read, and with both equal at the end), and
/// returning each file's [`FileStamp`] (in torrent order) as it was while it
/// was hashed: a file whose stamp differs after its read than before changed
/// while it was hashed, which is an error.
pub fn create_with(
    path: &Path,
    opts: &CreateOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Metainfo, Vec<FileStamp>), MetainfoError> {
    // As before the split: the options are checked before anything is read,
    // and the name before the walk.
    opts.check()?;
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    let name = torrent_name(path)?;
    metainfo::check_name(&name)?;

    let layout = if meta.is_file() {
        Layout::single(name, meta.len(), opts)?
    } else if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut Vec::new(), &mut files)?;
        Layout::directory(name, files, opts)?
    } else {
        return Err(MetainfoError::UnsupportedFileType {
            path: path.display().to_string(),
            kind: file_kind(&meta.file_type()),
        });
    };
    if layout.total_length() == 0 {
        return Err(MetainfoError::NothingToShare(path.display().to_string()));
    }
    let (pieces, stamps) = hash_pieces(path, &layout, progress)?;
    Ok((layout.into_metainfo(pieces)?, stamps))
}

fn io_error(path: &Path, e: std::io::Error) -> MetainfoError {
    MetainfoError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn torrent_name(path: &Path) -> Result<String, MetainfoError> {
    // "." or "dir/.." have no file name of their own; use the real directory's.
    let owned;
    let base = match path.file_name() {
        Some(n) => n,
        None => {
            owned = fs::canonicalize(path).map_err(|e| io_error(path, e))?;
            owned
                .file_name()
                .ok_or_else(|| MetainfoError::UnsupportedFileType {
                    path: path.display().to_string(),
                    kind: "file system root",
                })?
        }
    };
    base.to_str()
        .map(str::to_string)
        .ok_or_else(|| MetainfoError::NonUtf8FileName(path.display().to_string()))
}

fn file_kind(ft: &fs::FileType) -> &'static str {
    if ft.is_symlink() {
        return "symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device";
        }
    }
    "special file"
}

fn walk(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<NewFile>) -> Result<(), MetainfoError> {
    let rd = fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let p = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| MetainfoError::NonUtf8FileName(p.display().to_string()))?;
        metainfo::check_path_component(&name)?;
        // symlink_metadata: a link is reported as a link, never followed.
        let meta = fs::symlink_metadata(&p).map_err(|e| io_error(&p, e))?;
        let ft = meta.file_type();
        prefix.push(name);
        if ft.is_dir() {
            walk(&p, prefix, out)?;
        } else if ft.is_file() {
            out.push(NewFile {
                path: prefix.clone(),
                length: meta.len(),
            });
        } else {
            return Err(MetainfoError::UnsupportedFileType {
                path: p.display().to_string(),
                kind: file_kind(&ft),
            });
        }
        prefix.pop();
    }
    Ok(())
}

/// SHA-1 of every piece of the concatenated files below `root`, in layout
/// order, streamed through one fixed buffer; and each file's stamp.
fn hash_pieces(
    root: &Path,
    layout: &Layout,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Vec<u8>, Vec<FileStamp>), MetainfoError> {
    let piece_length = layout.piece_length();
    let total = layout.total_length();
    let mut hashed: u64 = 0;
    progress(0, total);
    let mut stamps = Vec::with_capacity(layout.files().len());
    let mut out = Vec::new();
    let mut buf = vec![0u8; HASH_BUF_SIZE];
    let mut hasher = Sha1::new();
    let mut in_piece: u64 = 0;
    for s in layout.files() {
        // A single file is the path itself; a directory's files lie below it
        // (where the walk found them).
        let mut path = root.to_path_buf();
        if layout.is_multi_file() {
            path.extend(&s.path);
        }
        let mut f = fs::File::open(&path).map_err(|e| io_error(&path, e))?;
        let stamp = |f: &fs::File| {
            f.metadata()
                .map(|m| FileStamp::of(&m))
                .map_err(|e| io_error(&path, e))
        };
        let before = stamp(&f)?;
        let mut read_total: u64 = 0;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&path, e)),
            };
            read_total += n as u64;
            if read_total > s.length {
                break;
            }
            hashed += n as u64;
            progress(hashed, total);
            let mut chunk = &buf[..n];
            while !chunk.is_empty() {
                let room = (piece_length - in_piece).min(chunk.len() as u64) as usize;
                hasher.update(&chunk[..room]);
                in_piece += room as u64;
                chunk = &chunk[room..];
                if in_piece == piece_length {
                    out.extend_from_slice(&hasher.finish_reset());
                    in_piece = 0;
                }
            }
        }
        if read_total != s.length || stamp(&f)? != before {
            return Err(MetainfoError::FileChanged {
                path: path.display().to_string(),
                expected: s.length,
            });
        }
        stamps.push(before);
    }
    if in_piece > 0 {
        out.extend_from_slice(&hasher.finish_reset());
    }
    progress(total, total);
    Ok((out, stamps))
}
