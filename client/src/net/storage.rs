//! Where the torrent's bytes live on disk: the file layout (a piece or block at
//! a torrent offset maps to segments of one or more files), positioned reads and
//! writes (`pread`/`pwrite` through `FileExt`, so connection threads share the
//! open files without locks), `.part` names for unfinished files, verifying what
//! is already on disk, and the rename that marks a download complete.
//!
//! Invariant: a file carries its final name only when every piece of the
//! torrent has been verified (or it was given to us as a seed). While a
//! download runs its files are `NAME.part`; [`Storage::finish`] syncs them and
//! renames them.
//!
//! A file we did not write ourselves (a seed's, or a finished download's that
//! the user may edit) carries a [`FileStamp`]: its size and modification time
//! when its pieces were hashed or verified. Serving checks the stamp after
//! reading ([`Storage::unchanged`]); data read from a file whose stamp no
//! longer matches is sent only once its piece verifies again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use minitorrent_common::metainfo::Info;

use crate::core::geometry::{Block, Geometry, PieceIndex};
use minitorrent_common::hash::sha1;

/// Threads that hash existing data at most (see [`Storage::verify`]).
pub const MAX_VERIFY_THREADS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is missing (looked for the torrent's data here)")]
    Missing { path: PathBuf },
    #[error("{path} has {actual} bytes but the torrent says {expected}")]
    WrongSize {
        path: PathBuf,
        actual: u64,
        expected: u64,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} already exists and does not match the torrent; move it away or choose another --dir")]
    Mismatch { path: PathBuf },
    /// Something else sits where a download's file goes (not its `.part`).
    #[error(
        "{path} already exists and is a different file ({found}, the download has {expected} \
         bytes); move it away or choose another --dir"
    )]
    Occupied {
        path: PathBuf,
        found: String,
        expected: u64,
    },
    #[error("torrent layout: {0}")]
    Layout(String),
    #[error(
        "{path} changed on disk since it was hashed ({what}); it no longer matches \
         this torrent"
    )]
    Changed { path: PathBuf, what: String },
}

/// A file as it was when its pieces were hashed or verified: its size, its
/// modification time, and its inode change time and number (`fstat` of the
/// open file). A write changes the modification time, but a user or a tool
/// can set that back (`touch -r`, `cp -p`, `rsync -t`, or two writes within
/// one tick of a coarse file system); the change time cannot be set by hand
/// and moves on every write and every `utimes`, and a file replaced by
/// another has another inode. So a different stamp means the data may
/// differ, and the same stamp that nothing touched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i128,
    /// The inode change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    /// Device and inode number.
    pub dev: u64,
    pub ino: u64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// What differs from `earlier`, for a message.
    pub fn describe_change(&self, earlier: &FileStamp) -> String {
        if self.len != earlier.len {
            format!("{} bytes, was {}", self.len, earlier.len)
        } else if (self.dev, self.ino) != (earlier.dev, earlier.ino) {
            "replaced by another file of the same size".into()
        } else {
            "modified, same size".into()
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The final path of file `i` below `dir` (same rule as `Info::file_path`).
pub fn file_path(info: &Info, dir: &Path, i: usize) -> PathBuf {
    let mut p = dir.to_path_buf();
    if info.multi_file {
        p.push(&info.name);
    }
    if let Some(f) = info.files.get(i) {
        for c in &f.path {
            p.push(c);
        }
    }
    p
}

/// `x.bin` → `x.bin.part`
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_os_string();
    s.push(".part");
    PathBuf::from(s)
}

#[derive(Debug)]
struct StoreFile {
    final_path: PathBuf,
    offset: u64,
    length: u64,
    file: File,
    /// `Some(part path)` while the file still has its `.part` name.
    part: Mutex<Option<PathBuf>>,
    /// Set once the file's pieces are verified and we no longer write it
    /// (see the module doc).
    stamp: OnceLock<FileStamp>,
}

impl StoreFile {
    fn new(
        final_path: PathBuf,
        offset: u64,
        length: u64,
        file: File,
        part: Option<PathBuf>,
    ) -> Self {
        StoreFile {
            final_path,
            offset,
            length,
            file,
            part: Mutex::new(part),
            stamp: OnceLock::new(),
        }
    }

    /// The open file's stamp now.
    fn stamp_now(&self) -> Result<FileStamp, StorageError> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| io_err("stat", &self.final_path)(e))?;
        Ok(FileStamp::of(&meta))
    }

    fn current_path(&self) -> PathBuf {
        match self.part.lock() {
            Ok(p) => p.clone().unwrap_or_else(|| self.final_path.clone()),
            Err(_) => self.final_path.clone(),
        }
    }
}

/// What [`Storage::open_download`] found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing existed: every piece is missing, no need to hash.
    Nothing,
    /// Some data exists (final or `.part` files): hash it to see what is there.
    Something,
}

#[derive(Debug)]
pub struct Storage {
    files: Vec<StoreFile>,
    geometry: Geometry,
    /// A piece no longer matches the torrent: nothing more is served.
    changed: AtomicBool,
}

impl Storage {
    fn layout(info: &Info) -> Result<Geometry, StorageError> {
        let mut off = 0u64;
        for f in &info.files {
            if f.offset != off {
                return Err(StorageError::Layout(format!(
                    "file {:?} starts at {} instead of {}",
                    f.path, f.offset, off
                )));
            }
            off = off
                .checked_add(f.length)
                .ok_or_else(|| StorageError::Layout("total length overflows".into()))?;
        }
        Geometry::from_info(info).map_err(|e| StorageError::Layout(e.to_string()))
    }

    /// Opens the data of a complete torrent for seeding, read-only: every file
    /// must exist below `root` with its exact size. Pieces are not checked here
    /// (see [`Storage::verify`]).
    pub fn open_seed(info: &Info, root: &Path) -> Result<Storage, StorageError> {
        let geometry = Self::layout(info)?;
        let mut files = Vec::with_capacity(info.files.len());
        for (i, f) in info.files.iter().enumerate() {
            let path = file_path(info, root, i);
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StorageError::Missing { path })
                }
                Err(e) => return Err(io_err("stat", &path)(e)),
            };
            if !meta.is_file() {
                return Err(StorageError::NotAFile { path });
            }
            if meta.len() != f.length {
                return Err(StorageError::WrongSize {
                    path,
                    actual: meta.len(),
                    expected: f.length,
                });
            }
            let file = File::open(&path).map_err(io_err("open", &path))?;
            files.push(StoreFile::new(path, f.offset, f.length, file, None));
        }
        Ok(Storage::new(files, geometry))
    }

    fn new(files: Vec<StoreFile>, geometry: Geometry) -> Storage {
        Storage {
            files,
            geometry,
            changed: AtomicBool::new(false),
        }
    }

    /// The files' stamps now, in torrent order.
    /// The stamps recorded when every file was verified complete; `None`
    /// while any file is unfinished.
    pub fn stamps(&self) -> Option<Vec<FileStamp>> {
        self.files.iter().map(|f| f.stamp.get().copied()).collect()
    }

    pub fn stamps_now(&self) -> Result<Vec<FileStamp>, StorageError> {
        self.files.iter().map(StoreFile::stamp_now).collect()
    }

    /// Records the stamps the files had when their pieces were hashed or
    /// verified (`expected`, in torrent order). Fails, naming the file, if
    /// one is not like that any more: its data may not be what was hashed.
    pub fn set_stamps(&self, expected: &[FileStamp]) -> Result<(), StorageError> {
        if expected.len() != self.files.len() {
            return Err(StorageError::Layout(format!(
                "{} file stamps for {} files",
                expected.len(),
                self.files.len()
            )));
        }
        for (sf, want) in self.files.iter().zip(expected) {
            let now = sf.stamp_now()?;
            if now != *want {
                return Err(StorageError::Changed {
                    path: sf.final_path.clone(),
                    what: now.describe_change(want),
                });
            }
            let _ = sf.stamp.set(now);
        }
        Ok(())
    }

    /// The range of files (indices, inclusive) that hold the bytes of `block`.
    pub fn files_of(&self, block: Block) -> (usize, usize) {
        let start = self.geometry.piece_offset(block.piece) + block.begin as u64;
        let end = start + block.len.max(1) as u64;
        let first = self
            .files
            .partition_point(|sf| sf.offset + sf.length <= start);
        let last = self.files.partition_point(|sf| sf.offset < end);
        (first, last.saturating_sub(1).max(first))
    }

    /// Whether files `first..=last` still carry the stamps they were verified
    /// with (files without a stamp, which we write ourselves, count as
    /// unchanged). `Err` names the first changed file and how. One `fstat`
    /// per stamped file.
    pub fn unchanged(&self, first: usize, last: usize) -> Result<(), StorageError> {
        for sf in self.files.iter().take(last.saturating_add(1)).skip(first) {
            let Some(want) = sf.stamp.get() else {
                continue;
            };
            let now = sf.stamp_now()?;
            if now != *want {
                return Err(StorageError::Changed {
                    path: sf.final_path.clone(),
                    what: now.describe_change(want),
                });
            }
        }
        Ok(())
    }

    /// Reads piece `p` into `buf` and checks it against `hash`.
    pub fn verify_piece(
        &self,
        p: PieceIndex,
        hash: &[u8; 20],
        buf: &mut Vec<u8>,
    ) -> Result<bool, StorageError> {
        self.read_piece(p, buf)?;
        Ok(sha1(buf) == *hash)
    }

    /// Marks the data as no longer matching the torrent; true the first time.
    pub fn mark_changed(&self) -> bool {
        !self.changed.swap(true, Ordering::AcqRel)
    }

    /// Whether a piece was found not to match the torrent any more.
    pub fn is_changed(&self) -> bool {
        self.changed.load(Ordering::Acquire)
    }

    /// Opens (creating where needed) the files of a download below `dir`. A
    /// file that already has its final name and size is reused (a finished or
    /// half-renamed earlier run); otherwise its `.part` file is opened or
    /// created at full (sparse) size.
    pub fn open_download(info: &Info, dir: &Path) -> Result<(Storage, Found), StorageError> {
        let geometry = Self::layout(info)?;
        let mut files = Vec::with_capacity(info.files.len());
        let mut found = Found::Nothing;
        for (i, f) in info.files.iter().enumerate() {
            let final_path = file_path(info, dir, i);
            let part = part_path(&final_path);
            if let Some(parent) = final_path.parent() {
                std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
            let (file, part) = match std::fs::metadata(&final_path) {
                Ok(meta) => {
                    if !meta.is_file() || meta.len() != f.length {
                        let found = if meta.is_file() {
                            format!("{} bytes", meta.len())
                        } else if meta.is_dir() {
                            "a directory".to_string()
                        } else {
                            "not a regular file".to_string()
                        };
                        return Err(StorageError::Occupied {
                            path: final_path,
                            found,
                            expected: f.length,
                        });
                    }
                    found = Found::Something;
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&final_path)
                        .map_err(io_err("open", &final_path))?;
                    (file, None)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if part.exists() {
                        found = Found::Something;
                    }
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&part)
                        .map_err(io_err("open", &part))?;
                    let len = file.metadata().map_err(io_err("stat", &part))?.len();
                    if len != f.length {
                        file.set_len(f.length).map_err(io_err("resize", &part))?;
                    }
                    (file, Some(part))
                }
                Err(e) => return Err(io_err("stat", &final_path)(e)),
            };
            files.push(StoreFile::new(final_path, f.offset, f.length, file, part));
        }
        Ok((Storage::new(files, geometry), found))
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Final paths of the files, in torrent order.
    pub fn final_paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| f.final_path.clone()).collect()
    }

    /// Calls `f(file, offset in file, range of buf)` for each file segment of
    /// the torrent range `[offset, offset + len)`.
    fn segments(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&StoreFile, u64, std::ops::Range<usize>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let end = offset + len as u64;
        let first = self
            .files
            .partition_point(|sf| sf.offset + sf.length <= offset);
        let mut done = 0usize;
        for sf in &self.files[first..] {
            if sf.offset >= end {
                break;
            }
            if sf.length == 0 {
                continue;
            }
            let start = offset + done as u64;
            let in_file = start - sf.offset;
            let n = (sf.length - in_file).min(end - start) as usize;
            f(sf, in_file, done..done + n)?;
            done += n;
            if done == len {
                break;
            }
        }
        if done != len {
            return Err(StorageError::Layout(format!(
                "range {offset}+{len} is beyond the torrent's {} bytes",
                self.geometry.total_len()
            )));
        }
        Ok(())
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let len = buf.len();
        self.segments(offset, len, |sf, at, r| {
            sf.file
                .read_exact_at(&mut buf[r], at)
                .map_err(|e| io_err("read", &sf.current_path())(e))
        })
    }

    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), StorageError> {
        self.segments(offset, buf.len(), |sf, at, r| {
            sf.file
                .write_all_at(&buf[r], at)
                .map_err(|e| io_err("write", &sf.current_path())(e))
        })
    }

    /// Reads one block into `buf` (which must be `block.len` long).
    pub fn read_block(&self, block: Block, buf: &mut [u8]) -> Result<(), StorageError> {
        let off = self.geometry.piece_offset(block.piece) + block.begin as u64;
        self.read_at(off, &mut buf[..block.len as usize])
    }

    pub fn read_piece(&self, p: PieceIndex, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        buf.resize(self.geometry.piece_len(p) as usize, 0);
        self.read_at(self.geometry.piece_offset(p), buf)
    }

    pub fn write_piece(&self, p: PieceIndex, data: &[u8]) -> Result<(), StorageError> {
        self.write_at(self.geometry.piece_offset(p), data)
    }

    /// Hashes every piece on disk and returns which ones match `hashes`.
    /// Pieces that cannot be read (short file, I/O error) count as missing.
    /// `done` counts the pieces checked so far (for a progress display).
    pub fn verify(&self, hashes: &[[u8; 20]], done: &AtomicU32) -> Vec<bool> {
        self.verify_until(hashes, done, &AtomicBool::new(false))
    }

    /// [`Storage::verify`], giving up (the rest counted as missing) once
    /// `cancel` is set: a torrent paused or removed while it was checked.
    pub fn verify_until(
        &self,
        hashes: &[[u8; 20]],
        done: &AtomicU32,
        cancel: &AtomicBool,
    ) -> Vec<bool> {
        let n = self.geometry.num_pieces();
        // Reading and hashing run at disk or SHA-1 speed: one thread per
        // core (up to 4), each on its own contiguous range of pieces so the
        // kernel's read-ahead still sees sequential reads.
        let threads = std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1)
            .clamp(1, MAX_VERIFY_THREADS)
            .min(n.max(1) as usize) as u32;
        let per = n.div_ceil(threads.max(1));
        let check = |range: std::ops::Range<u32>| -> Vec<bool> {
            let mut buf = Vec::new();
            range
                .map(|i| {
                    if cancel.load(Ordering::Relaxed) {
                        return false;
                    }
                    let ok = self.geometry.piece(i).is_ok_and(|p| {
                        self.read_piece(p, &mut buf).is_ok()
                            && hashes.get(p.usize()).is_some_and(|h| *h == sha1(&buf))
                    });
                    done.fetch_add(1, Ordering::Relaxed);
                    ok
                })
                .collect()
        };
        if threads <= 1 {
            return check(0..n);
        }
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads)
                .map(|k| {
                    let range = (k * per).min(n)..((k + 1) * per).min(n);
                    s.spawn(move || check(range))
                })
                .collect();
            let mut have = Vec::with_capacity(n as usize);
            for (k, part) in parts.into_iter().enumerate() {
                match part.join() {
                    Ok(v) => have.extend(v),
                    // A hashing thread cannot panic on data; should it,
                    // its pieces count as missing and are fetched again.
                    Err(_) => {
                        let range = (k as u32 * per).min(n)..((k as u32 + 1) * per).min(n);
                        have.extend(range.map(|_| false));
                    }
                }
            }
            have
        })
    }

    /// Files that carry their final name while some piece overlapping them is
    /// not verified: data we did not write ourselves, which we must not
    /// overwrite or present as complete.
    pub fn unverified_final_files(&self, have: &[bool]) -> Vec<PathBuf> {
        let plen = self.geometry.nominal_piece_len();
        let mut out = Vec::new();
        for sf in &self.files {
            let is_final = sf.part.lock().map(|p| p.is_none()).unwrap_or(false);
            if !is_final || sf.length == 0 {
                continue;
            }
            let first = sf.offset / plen;
            let last = (sf.offset + sf.length - 1) / plen;
            if (first..=last).any(|i| !have.get(i as usize).copied().unwrap_or(false)) {
                out.push(sf.final_path.clone());
            }
        }
        out
    }

    /// True when every file has its final name.
    pub fn is_final(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.part.lock().map(|p| p.is_none()).unwrap_or(false))
    }

    /// Flushes written data to disk.
    pub fn sync(&self) -> Result<(), StorageError> {
        for sf in &self.files {
            sf.file
                .sync_data()
                .map_err(|e| io_err("sync", &sf.current_path())(e))?;
        }
        Ok(())
    }

    /// Marks the download complete: syncs every file, then renames each
    /// `.part` file to its final name. Only call when every piece is verified.
    pub fn finish(&self) -> Result<(), StorageError> {
        self.sync()?;
        for sf in &self.files {
            let mut part = sf
                .part
                .lock()
                .map_err(|_| StorageError::Layout("storage lock poisoned".into()))?;
            if let Some(p) = part.as_ref() {
                if sf.final_path.exists() {
                    return Err(StorageError::Mismatch {
                        path: sf.final_path.clone(),
                    });
                }
                std::fs::rename(p, &sf.final_path).map_err(io_err("rename", p))?;
                *part = None;
            }
        }
        // Every piece is verified and we write no more: from now on the
        // files are served like a seed's, and checked the same way.
        for sf in &self.files {
            if let Ok(st) = sf.stamp_now() {
                let _ = sf.stamp.set(st);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitorrent_common::metainfo::FileEntry;

    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mt-storage-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn info_for(files: &[(&str, u64)], piece_length: u64, data: &[u8], multi: bool) -> Info {
        let mut off = 0;
        let files: Vec<FileEntry> = files
            .iter()
            .map(|(n, l)| {
                let e = FileEntry {
                    path: n.split('/').map(String::from).collect(),
                    length: *l,
                    offset: off,
                };
                off += l;
                e
            })
            .collect();
        let pieces = data.chunks(piece_length as usize).map(sha1).collect();
        Info {
            name: if multi {
                "dir".into()
            } else {
                files[0].path[0].clone()
            },
            piece_length,
            pieces,
            files,
            multi_file: multi,
            private: false,
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|_| fastrand::u8(..)).collect()
    }

    #[test]
    fn multi_file_roundtrip_and_finish() {
        let dir = temp_dir("multi");
        let d = data(100_000);
        let info = info_for(&[("a/x", 30_000), ("e", 0), ("b", 70_000)], 16384, &d, true);
        let (st, found) = Storage::open_download(&info, &dir).unwrap();
        assert_eq!(found, Found::Nothing);
        let g = *st.geometry();
        for p in g.pieces() {
            let off = g.piece_offset(p) as usize;
            st.write_piece(p, &d[off..off + g.piece_len(p) as usize])
                .unwrap();
        }
        let have = st.verify(&info.pieces, &AtomicU32::new(0));
        assert!(have.iter().all(|h| *h));
        assert!(dir.join("dir/a/x.part").exists());
        assert!(!dir.join("dir/a/x").exists());
        st.finish().unwrap();
        assert!(st.is_final());
        let mut got = std::fs::read(dir.join("dir/a/x")).unwrap();
        got.extend(std::fs::read(dir.join("dir/e")).unwrap());
        got.extend(std::fs::read(dir.join("dir/b")).unwrap());
        assert_eq!(got, d);
        // Reading a block that spans two files.
        let mut buf = vec![0u8; 16384];
        let b = g.check_block(1, 0, 16384).unwrap();
        st.read_block(b, &mut buf).unwrap();
        assert_eq!(&buf[..], &d[16384..32768]);
        // Seeding the finished data.
        let seed = Storage::open_seed(&info, &dir).unwrap();
        assert!(seed
            .verify(&info.pieces, &AtomicU32::new(0))
            .iter()
            .all(|h| *h));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_sees_partial_data() {
        let dir = temp_dir("resume");
        let d = data(50_000);
        let info = info_for(&[("f.bin", 50_000)], 16384, &d, false);
        {
            let (st, _) = Storage::open_download(&info, &dir).unwrap();
            let p = st.geometry().piece(1).unwrap();
            st.write_piece(p, &d[16384..32768]).unwrap();
            let p = st.geometry().piece(3).unwrap();
            st.write_piece(p, &d[49152..]).unwrap();
        }
        let (st, found) = Storage::open_download(&info, &dir).unwrap();
        assert_eq!(found, Found::Something);
        assert_eq!(
            st.verify(&info.pieces, &AtomicU32::new(0)),
            vec![false, true, false, true]
        );
        assert!(st.unverified_final_files(&[false; 4]).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn seed_errors_name_the_file() {
        let dir = temp_dir("seed");
        let d = data(1000);
        let info = info_for(&[("f.bin", 1000)], 16384, &d, false);
        let e = Storage::open_seed(&info, &dir).unwrap_err();
        assert!(e.to_string().contains("f.bin"), "{e}");
        std::fs::write(dir.join("f.bin"), &d[..10]).unwrap();
        let e = Storage::open_seed(&info, &dir).unwrap_err();
        assert!(matches!(e, StorageError::WrongSize { .. }), "{e}");
        // A foreign file under the final name is not trusted.
        std::fs::write(dir.join("f.bin"), vec![0u8; 1000]).unwrap();
        let (st, _) = Storage::open_download(&info, &dir).unwrap();
        let have = st.verify(&info.pieces, &AtomicU32::new(0));
        assert_eq!(st.unverified_final_files(&have).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_different_file_at_the_download_path_says_what_to_do() {
        let dir = temp_dir("occupied");
        let d = data(1000);
        let info = info_for(&[("f.bin", 1000)], 16384, &d, false);
        std::fs::write(dir.join("f.bin"), b"hello").unwrap();
        let e = Storage::open_download(&info, &dir).err().unwrap();
        assert!(matches!(e, StorageError::Occupied { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("f.bin") && msg.contains("5 bytes"), "{msg}");
        assert!(
            msg.contains("move it away or choose another --dir"),
            "{msg}"
        );
        std::fs::remove_file(dir.join("f.bin")).unwrap();
        std::fs::create_dir(dir.join("f.bin")).unwrap();
        let e = Storage::open_download(&info, &dir).err().unwrap();
        assert!(e.to_string().contains("a directory"), "{e}");
        // Nothing was created beside it.
        assert!(!dir.join("f.bin.part").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_change_hidden_behind_the_old_modification_time_is_still_caught() {
        use std::os::unix::fs::FileExt;
        let dir = temp_dir("stamp-hidden");
        let d = data(40_000);
        let info = info_for(&[("f.bin", 40_000)], 16384, &d, false);
        std::fs::write(dir.join("f.bin"), &d).unwrap();
        let st = Storage::open_seed(&info, &dir).unwrap();
        let stamps = st.stamps_now().unwrap();
        st.set_stamps(&stamps).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join("f.bin"))
            .unwrap();
        let old_mtime = f.metadata().unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Same size, and the modification time put back (`touch -r`).
        let flipped: Vec<u8> = d[..100].iter().map(|b| !b).collect();
        f.write_all_at(&flipped, 0).unwrap();
        f.set_modified(old_mtime).unwrap();
        let now = FileStamp::of(&f.metadata().unwrap());
        assert_eq!(now.len, stamps[0].len);
        assert_eq!(now.mtime_ns, stamps[0].mtime_ns);
        let e = st.unchanged(0, 0).unwrap_err();
        assert!(matches!(e, StorageError::Changed { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_seed_file_changed_after_it_was_stamped_is_caught() {
        use std::os::unix::fs::FileExt;
        let dir = temp_dir("stamp");
        let d = data(40_000);
        let info = info_for(&[("f.bin", 40_000)], 16384, &d, false);
        std::fs::write(dir.join("f.bin"), &d).unwrap();
        let st = Storage::open_seed(&info, &dir).unwrap();
        let stamps = st.stamps_now().unwrap();
        st.set_stamps(&stamps).unwrap();
        assert!(st.unchanged(0, 0).is_ok());
        // Piece 1 rewritten in place, same size.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let f = OpenOptions::new()
            .write(true)
            .open(dir.join("f.bin"))
            .unwrap();
        let flipped: Vec<u8> = d[16384..32768].iter().map(|b| !b).collect();
        f.write_all_at(&flipped, 16384).unwrap();
        let e = st.unchanged(0, 0).unwrap_err();
        assert!(matches!(e, StorageError::Changed { .. }), "{e}");
        assert!(e.to_string().contains("f.bin"), "{e}");
        assert!(e.to_string().contains("modified, same size"), "{e}");
        // Piece 0 still verifies, piece 1 does not.
        let g = *st.geometry();
        let mut buf = Vec::new();
        let p0 = g.piece(0).unwrap();
        let p1 = g.piece(1).unwrap();
        assert!(st.verify_piece(p0, &info.pieces[0], &mut buf).unwrap());
        assert!(!st.verify_piece(p1, &info.pieces[1], &mut buf).unwrap());
        // Stamps the file no longer has are refused when opening.
        let again = Storage::open_seed(&info, &dir).unwrap();
        assert!(matches!(
            again.set_stamps(&stamps),
            Err(StorageError::Changed { .. })
        ));
        assert!(matches!(
            again.set_stamps(&[]),
            Err(StorageError::Layout(_))
        ));
        assert!(!st.is_changed());
        assert!(st.mark_changed(), "the first time");
        assert!(!st.mark_changed());
        assert!(st.is_changed());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn blocks_map_to_the_files_that_hold_them() {
        let dir = temp_dir("files-of");
        let d = data(40_000);
        let info = info_for(&[("a", 10_000), ("e", 0), ("b", 30_000)], 16384, &d, true);
        let (st, _) = Storage::open_download(&info, &dir).unwrap();
        let g = *st.geometry();
        let blk = |i, b, n| g.check_block(i, b, n).unwrap();
        assert_eq!(st.files_of(blk(0, 0, 16384)), (0, 2));
        assert_eq!(st.files_of(blk(0, 0, 1000)), (0, 0));
        assert_eq!(st.files_of(blk(1, 0, 16384)), (2, 2));
        assert_eq!(st.files_of(blk(2, 0, 40_000 - 32768)), (2, 2));
        // A download's files carry no stamp: our own writes are no change.
        st.write_piece(g.piece(0).unwrap(), &d[..16384]).unwrap();
        assert!(st.unchanged(0, 2).is_ok());
        // Once finished they do.
        for p in g.pieces() {
            let off = g.piece_offset(p) as usize;
            st.write_piece(p, &d[off..off + g.piece_len(p) as usize])
                .unwrap();
        }
        st.finish().unwrap();
        assert!(st.unchanged(0, 2).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("dir/b"), vec![1u8; 30_000]).unwrap();
        assert!(st.unchanged(0, 0).is_ok(), "a is unchanged");
        assert!(st.unchanged(0, 2).is_err(), "b changed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
