//! `minitorrent share DIR`: seeds every file below DIR, each as its own
//! single-file torrent, like a shared folder. Metainfo is cached in
//! `DIR/.minitorrent/` (`cache.json` keyed by relative path, size and mtime,
//! plus one `.torrent` per file), so a restart does not hash unchanged files
//! again. A rescan picks up files added later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use log::{debug, warn};
use minitorrent_common::metainfo::Metainfo;
use serde::{Deserialize, Serialize};

use crate::session::{self, Added, Session};

pub const CACHE_DIR: &str = ".minitorrent";
const CACHE_FILE: &str = "cache.json";
/// How often `share` looks for new files.
pub const RESCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    info_hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    files: BTreeMap<String, Entry>,
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Regular files below `dir`, skipping hidden names (and so the cache) and
/// unfinished `.part` downloads, in sorted order.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".part") {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Seeds every file of `dir` not already seeded by this session, calling
/// `each` for each one added. Returns how many were added.
pub fn share_dir(s: &Session, dir: &Path, mut each: impl FnMut(&Added)) -> Result<usize> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let cache_dir = dir.join(CACHE_DIR);
    let torrents_dir = cache_dir.join("torrents");
    std::fs::create_dir_all(&torrents_dir)
        .with_context(|| format!("creating {}", torrents_dir.display()))?;
    let cache_path = cache_dir.join(CACHE_FILE);
    let mut cache: Cache = std::fs::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut files = Vec::new();
    walk(dir, &mut files).with_context(|| format!("listing {}", dir.display()))?;
    let mut added = 0;
    let mut changed = false;
    for path in files {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                warn!("share: skipping {}: {e}", path.display());
                continue;
            }
        };
        if meta.len() == 0 {
            debug!("share: skipping empty file {}", path.display());
            continue;
        }
        let key = Entry {
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            info_hash: String::new(),
        };
        let cached = cache.files.get(&rel).and_then(|e| {
            if e.size != key.size || e.mtime_ns != key.mtime_ns {
                return None;
            }
            let t = torrents_dir.join(format!("{}.torrent", e.info_hash));
            let m = Metainfo::from_bytes(&std::fs::read(t).ok()?).ok()?;
            (m.info_hash.to_hex() == e.info_hash && m.info.name == file_name(&path)).then_some(m)
        });
        if let Some(m) = &cached {
            if s.handle(&m.info_hash).is_some() {
                continue;
            }
            log::info!("share: {rel} unchanged, using the cached metainfo");
        }
        let m = match cached {
            Some(m) => m,
            None => match session::create_metainfo(&path, None, Some(s.tracker_addr())) {
                Ok(m) => {
                    let t = torrents_dir.join(format!("{}.torrent", m.info_hash));
                    if let Err(e) = std::fs::write(&t, m.to_bytes()) {
                        warn!("share: cannot cache {}: {e}", t.display());
                    }
                    cache.files.insert(
                        rel.clone(),
                        Entry {
                            info_hash: m.info_hash.to_hex(),
                            ..key
                        },
                    );
                    changed = true;
                    m
                }
                Err(e) => {
                    warn!(
                        "share: skipping {}: {}",
                        path.display(),
                        super::error_chain(&e)
                    );
                    continue;
                }
            },
        };
        if s.handle(&m.info_hash).is_some() {
            continue;
        }
        let root = path.parent().unwrap_or(dir).to_path_buf();
        match s.seed_metainfo(m, &root, false) {
            Ok(a) => {
                added += 1;
                each(&a);
            }
            Err(e) if e.to_string().contains("unreachable") => return Err(e),
            Err(e) => warn!(
                "share: cannot seed {}: {}",
                path.display(),
                super::error_chain(&e)
            ),
        }
    }
    if changed {
        cache.version = 1;
        let tmp = cache_dir.join(format!("{CACHE_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(&cache).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, &cache_path))
        {
            warn!("share: cannot write {}: {e}", cache_path.display());
        }
    }
    Ok(added)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
