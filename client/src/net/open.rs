//! Opening a torrent's storage: for a download, below the download
//! directory, checking what is already there (resume); for a seed, the
//! complete data below its root, checked when asked, and the files' stamps
//! as they were when hashed. The check hashes on
//! several threads and counts its progress in an atomic the status reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

use minitorrent_common::metainfo::Info;

use crate::core::geometry::{Geometry, GeometryError};
use crate::core::shared::{HaveSet, Meta};
use crate::net::shared::MetaCtx;
use crate::net::storage::{FileStamp, Found, Storage, StorageError};

/// Why a torrent's storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{name}: {source}")]
    Geometry {
        name: String,
        #[source]
        source: GeometryError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "{}: {bad} of {total} pieces do not match the torrent's hashes \
         (run `minitorrent get` to repair it)",
        path.display()
    )]
    SeedMismatch {
        path: PathBuf,
        bad: usize,
        total: usize,
    },
}

fn geometry(info: &Info) -> Result<Geometry, OpenError> {
    Geometry::from_info(info).map_err(|source| OpenError::Geometry {
        name: info.name.clone(),
        source,
    })
}

fn ctx(
    info: Info,
    info_bytes: Vec<u8>,
    geometry: Geometry,
    storage: Storage,
    have: &[bool],
) -> MetaCtx {
    MetaCtx {
        meta: Arc::new(Meta {
            have: HaveSet::new(have),
            info,
            info_bytes,
            geometry,
        }),
        storage,
    }
}

/// Opens the download's storage below `dir` and checks what is already
/// there, counting checked pieces in `checked`. Returns the context and how
/// many pieces were verified on disk.
pub fn open_download(
    info: Info,
    info_bytes: Vec<u8>,
    dir: &Path,
    checked: &AtomicU32,
    cancel: &AtomicBool,
) -> Result<(MetaCtx, u32), OpenError> {
    let geometry = geometry(&info)?;
    let (storage, found) = Storage::open_download(&info, dir)?;
    let have = match found {
        Found::Nothing => vec![false; geometry.num_pieces() as usize],
        Found::Something => {
            let have = storage.verify_until(&info.pieces, checked, cancel);
            if let Some(p) = storage.unverified_final_files(&have).first() {
                return Err(StorageError::Mismatch { path: p.clone() }.into());
            }
            have
        }
    };
    let on_disk = have.iter().filter(|h| **h).count() as u32;
    Ok((ctx(info, info_bytes, geometry, storage, &have), on_disk))
}

/// How far a seed's data is trusted when it is opened.
#[derive(Debug, Clone)]
pub enum SeedCheck {
    /// Hash every piece first (a .torrent's data found on disk).
    Verify,
    /// Hashed just now: each file must still have the stamp it had then
    /// (in torrent order), else it changed after it was hashed.
    Hashed(Vec<FileStamp>),
}

/// Opens complete data for seeding below `root`. The files' stamps (size,
/// modification time) are recorded as they were when the pieces were
/// hashed or verified; serving checks them (see `net::storage`).
pub fn open_seed(
    info: Info,
    info_bytes: Vec<u8>,
    root: &Path,
    check: SeedCheck,
) -> Result<MetaCtx, OpenError> {
    let geometry = geometry(&info)?;
    let storage = Storage::open_seed(&info, root)?;
    let have = match check {
        SeedCheck::Verify => {
            let before = storage.stamps_now()?;
            let have = storage.verify(&info.pieces, &AtomicU32::new(0));
            let bad = have.iter().filter(|h| !**h).count();
            if bad > 0 {
                return Err(OpenError::SeedMismatch {
                    path: storage.final_paths().first().cloned().unwrap_or_default(),
                    bad,
                    total: have.len(),
                });
            }
            // A write during the check may have been missed by it.
            storage.set_stamps(&before)?;
            have
        }
        SeedCheck::Hashed(stamps) => {
            storage.set_stamps(&stamps)?;
            vec![true; geometry.num_pieces() as usize]
        }
    };
    Ok(ctx(info, info_bytes, geometry, storage, &have))
}
