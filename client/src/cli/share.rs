//! `minitorrent share DIR`: seeds every file below DIR, each as its own
//! single-file torrent, like a shared folder, and keeps it current. Metainfo
//! is cached in `DIR/.minitorrent/` (`cache.json` keyed by relative path,
//! size and mtime, plus one `.torrent` per file), so a restart does not hash
//! unchanged files again.
//!
//! Each rescan ([`Watch::plan`], pure, with the times passed in) compares
//! what is in DIR with what was announced: a file whose size or modification
//! time changed, or that was deleted, is withdrawn (its torrent stopped, its
//! swarm left at the tracker); a new or changed file is hashed and announced
//! once it is stable (not modified for [`Timing::settle`], and unchanged
//! while it was hashed), under its new info hash, and its cached metainfo
//! replaced.
//!
//! Also here, for `seed` as well: the "hashing FILE… N %" lines
//! ([`hash_progress`]) and waiting while seeding ([`wait_seeding`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use crossbeam_channel::Receiver;
use log::{debug, warn};
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use serde::{Deserialize, Serialize};

use crate::core::msg::Notice;
use crate::net::open::OpenError;
use crate::net::storage::StorageError;
use crate::session::{Added, FileStamp, Session};

pub const CACHE_DIR: &str = ".minitorrent";
const CACHE_FILE: &str = "cache.json";
/// How often `share` looks at the folder again.
pub const RESCAN_EVERY: Duration = Duration::from_secs(10);
/// A file modified less than this long ago may still be being written: it
/// is hashed only once it has been left alone this long.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Hidden settings for tests: the rescan period and the settle time, in ms.
const RESCAN_ENV: &str = "MINITORRENT_SHARE_RESCAN_MS";
const SETTLE_ENV: &str = "MINITORRENT_SHARE_SETTLE_MS";

/// How often to rescan, and how long a file must be left alone.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub rescan: Duration,
    pub settle: Duration,
}

impl Timing {
    /// The defaults, or the hidden environment settings (for tests).
    pub fn from_env() -> Timing {
        let ms = |var: &str, default: Duration| match std::env::var(var) {
            Ok(v) => match v.trim().parse::<u64>() {
                Ok(n) => Duration::from_millis(n.max(1)),
                Err(_) => {
                    warn!("{var}={v:?} is not a number of milliseconds; using {default:?}");
                    default
                }
            },
            Err(_) => default,
        };
        Timing {
            rescan: ms(RESCAN_ENV, RESCAN_EVERY),
            settle: ms(SETTLE_ENV, SETTLE),
        }
    }
}

// ---- the decisions ----------------------------------------------------

/// Why a file's torrent is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Its size or modification time changed.
    Changed,
    /// It is no longer in the folder.
    Removed,
    /// Its torrent stopped on its own (its data failed a check while
    /// serving): hashed again, ignoring the cache.
    Stopped,
}

/// One thing a rescan does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stop seeding `rel`'s torrent and leave its swarm.
    Withdraw {
        rel: String,
        info_hash: InfoHash,
        why: Why,
    },
    /// `rel` changed recently (it may still be being written): it is hashed
    /// once it settles. Said once per change.
    Wait { rel: String },
    /// Hash `rel`, seen stable at `stamp`, and announce it. `fresh`: do not
    /// take the cached metainfo. `previous`: the info hash it had.
    Announce {
        rel: String,
        stamp: FileStamp,
        fresh: bool,
        previous: Option<InfoHash>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Announced {
    info_hash: InfoHash,
    stamp: FileStamp,
}

#[derive(Debug, Clone, Copy)]
struct Settling {
    stamp: FileStamp,
    since: Instant,
}

/// What the folder's files were when announced, and which wait to settle.
/// Bounded by the files in the folder: an entry whose file is gone is
/// dropped at the next rescan.
#[derive(Debug)]
pub struct Watch {
    settle: Duration,
    announced: BTreeMap<String, Announced>,
    settling: BTreeMap<String, Settling>,
    /// Files withdrawn while still present: their old info hash.
    replaced: BTreeMap<String, InfoHash>,
    /// Files to hash again whatever the cache says.
    fresh: BTreeSet<String>,
}

impl Watch {
    pub fn new(settle: Duration) -> Watch {
        Watch {
            settle,
            announced: BTreeMap::new(),
            settling: BTreeMap::new(),
            replaced: BTreeMap::new(),
            fresh: BTreeSet::new(),
        }
    }

    /// What to do now, given the files found in the folder (`seen`:
    /// relative path → stamp), which announced torrents still run (`alive`),
    /// the wall-clock time `wall_ns` (ns since the epoch, to compare with
    /// modification times) and the monotonic `now`.
    ///
    /// A file is stable when its modification time is at least `settle` in
    /// the past, or (a clock that disagrees with the file system's) when the
    /// same stamp has been seen for `settle`. Empty files are never
    /// announced.
    pub fn plan(
        &mut self,
        seen: &BTreeMap<String, FileStamp>,
        alive: impl Fn(&InfoHash) -> bool,
        wall_ns: i128,
        now: Instant,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        let announced: Vec<(String, Announced)> = self
            .announced
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (rel, a) in announced {
            let why = match seen.get(&rel) {
                None => Why::Removed,
                Some(st) if *st != a.stamp => Why::Changed,
                Some(_) if !alive(&a.info_hash) => Why::Stopped,
                Some(_) => continue,
            };
            self.announced.remove(&rel);
            match why {
                Why::Removed => {}
                Why::Stopped => {
                    self.fresh.insert(rel.clone());
                    self.replaced.insert(rel.clone(), a.info_hash);
                }
                Why::Changed => {
                    self.replaced.insert(rel.clone(), a.info_hash);
                }
            }
            steps.push(Step::Withdraw {
                rel,
                info_hash: a.info_hash,
                why,
            });
        }
        self.settling.retain(|rel, _| seen.contains_key(rel));
        self.replaced.retain(|rel, _| seen.contains_key(rel));
        self.fresh.retain(|rel| seen.contains_key(rel));
        let settle_ns = self.settle.as_nanos() as i128;
        for (rel, st) in seen {
            if self.announced.contains_key(rel) {
                continue;
            }
            let old_enough = wall_ns.saturating_sub(st.mtime_ns) >= settle_ns;
            let s = match self.settling.get(rel) {
                Some(s) if s.stamp == *st => *s,
                was => {
                    // Said when it starts settling, not at each change.
                    if was.is_none() && !old_enough && st.len > 0 {
                        steps.push(Step::Wait { rel: rel.clone() });
                    }
                    let s = Settling {
                        stamp: *st,
                        since: now,
                    };
                    self.settling.insert(rel.clone(), s);
                    s
                }
            };
            let stable = old_enough || now.saturating_duration_since(s.since) >= self.settle;
            if !stable {
                continue;
            }
            self.settling.remove(rel);
            if st.len == 0 {
                continue;
            }
            steps.push(Step::Announce {
                rel: rel.clone(),
                stamp: *st,
                fresh: self.fresh.remove(rel),
                previous: self.replaced.remove(rel),
            });
        }
        steps
    }

    /// `rel` is announced as `info_hash`, hashed while it had `stamp`.
    pub fn announced(&mut self, rel: &str, info_hash: InfoHash, stamp: FileStamp) {
        self.announced
            .insert(rel.to_string(), Announced { info_hash, stamp });
    }

    /// `rel` was found changing while it was hashed or opened (or could not
    /// be announced for now): it waits to settle again, keeping what an
    /// [`Step::Announce`] carried.
    pub fn retry(&mut self, rel: &str, fresh: bool, previous: Option<InfoHash>, now: Instant) {
        if fresh {
            self.fresh.insert(rel.to_string());
        }
        if let Some(p) = previous {
            self.replaced.insert(rel.to_string(), p);
        }
        // A stamp no file has: seen anew (and settling) at the next rescan.
        self.settling.insert(
            rel.to_string(),
            Settling {
                stamp: FileStamp {
                    len: u64::MAX,
                    mtime_ns: i128::MIN,
                    ctime_ns: i128::MIN,
                    dev: u64::MAX,
                    ino: u64::MAX,
                },
                since: now,
            },
        );
    }

    /// The torrent of `info_hash` stopped on its own: returns its file,
    /// which is to be hashed again.
    pub fn stopped(&mut self, info_hash: &InfoHash) -> Option<String> {
        let rel = self
            .announced
            .iter()
            .find(|(_, a)| a.info_hash == *info_hash)
            .map(|(r, _)| r.clone())?;
        self.announced.remove(&rel);
        self.fresh.insert(rel.clone());
        self.replaced.insert(rel.clone(), *info_hash);
        Some(rel)
    }

    /// Whether a file waits to settle (the next rescan comes sooner).
    pub fn waiting(&self) -> bool {
        !self.settling.is_empty()
    }

    pub fn announced_count(&self) -> usize {
        self.announced.len()
    }
}

// ---- the folder and its cache -------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    /// The inode change time and number (see [`FileStamp`]); a cache
    /// written before they were kept has 0 here, so its files are hashed
    /// again once.
    #[serde(default)]
    ctime_ns: u128,
    #[serde(default)]
    ino: u64,
    info_hash: String,
}

impl Entry {
    fn matches(&self, st: &FileStamp) -> bool {
        self.size == st.len
            && self.mtime_ns == st.mtime_ns.max(0) as u128
            && self.ctime_ns == st.ctime_ns.max(0) as u128
            && self.ino == st.ino
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    files: BTreeMap<String, Entry>,
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

fn wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// A shared folder: its cache and what was announced from it.
pub struct Share<'a> {
    s: &'a Session,
    dir: PathBuf,
    torrents_dir: PathBuf,
    cache_path: PathBuf,
    cache: Cache,
    cache_dirty: bool,
    watch: Watch,
}

impl<'a> Share<'a> {
    pub fn open(s: &'a Session, dir: &Path, settle: Duration) -> Result<Share<'a>> {
        if !dir.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        let cache_dir = dir.join(CACHE_DIR);
        let torrents_dir = cache_dir.join("torrents");
        std::fs::create_dir_all(&torrents_dir)
            .with_context(|| format!("creating {}", torrents_dir.display()))?;
        let cache_path = cache_dir.join(CACHE_FILE);
        let cache: Cache = std::fs::read(&cache_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Share {
            s,
            dir: dir.to_path_buf(),
            torrents_dir,
            cache_path,
            cache,
            cache_dirty: false,
            watch: Watch::new(settle),
        })
    }

    /// The files in the folder now: relative path → stamp. Files another
    /// torrent of the session holds (a download that finished here, a file
    /// being hashed for the web page) are not the folder's to announce.
    fn scan(&self) -> Result<BTreeMap<String, FileStamp>> {
        let mut files = Vec::new();
        walk(&self.dir, &mut files).with_context(|| format!("listing {}", self.dir.display()))?;
        let claimed = self.s.claimed_paths();
        let mut seen = BTreeMap::new();
        for path in files {
            let rel = path
                .strip_prefix(&self.dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if !self.watch.announced.contains_key(&rel)
                && path.canonicalize().is_ok_and(|c| claimed.contains(&c))
            {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) => {
                    seen.insert(rel, FileStamp::of(&m));
                }
                Err(e) => warn!("share: skipping {}: {e}", path.display()),
            }
        }
        Ok(seen)
    }

    /// Looks at the folder and carries out what changed. An unreachable
    /// tracker is an error; a file that cannot be shared is a warning.
    pub fn rescan(&mut self) -> Result<()> {
        let seen = self.scan()?;
        let s = self.s;
        // A torrent the user paused or removed is left as it is.
        let steps = self.watch.plan(
            &seen,
            |ih| s.handle(ih).is_some() || s.held_back(ih),
            wall_ns(),
            Instant::now(),
        );
        let mut result = Ok(());
        for step in steps {
            match step {
                Step::Withdraw {
                    rel,
                    info_hash,
                    why,
                } => {
                    s.withdraw(&info_hash);
                    match why {
                        Why::Changed => {
                            println!("changed: {rel}, withdrawn from the tracker (was {info_hash})")
                        }
                        Why::Removed => {
                            println!(
                                "removed: {rel}, withdrawn from the tracker (was {info_hash})"
                            );
                            self.forget_cached(&rel);
                        }
                        Why::Stopped => {
                            println!("withdrawn: {rel} (was {info_hash}) stopped; hashing it again")
                        }
                    }
                }
                Step::Wait { rel } => println!(
                    "waiting: {rel} was modified less than {} s ago; it is hashed once it \
                     stops changing",
                    self.watch.settle.as_secs_f64()
                ),
                Step::Announce {
                    rel,
                    stamp,
                    fresh,
                    previous,
                } => {
                    if let Err(e) = self.announce(&rel, stamp, fresh, previous) {
                        // The tracker is unreachable: no use going on now.
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        let _ = std::io::stdout().flush();
        self.save_cache();
        result
    }

    /// The cached metainfo of `rel` if it was made from the file as it is
    /// (`stamp`).
    fn cached(&self, rel: &str, path: &Path, stamp: &FileStamp) -> Option<Metainfo> {
        let e = self.cache.files.get(rel).filter(|e| e.matches(stamp))?;
        let t = self.torrents_dir.join(format!("{}.torrent", e.info_hash));
        let m = Metainfo::from_bytes(&std::fs::read(t).ok()?).ok()?;
        (m.info_hash.to_hex() == e.info_hash && m.info.name == file_name(path)).then_some(m)
    }

    /// Hashes (or takes from the cache) and seeds `rel`, seen stable at
    /// `stamp`. Only an unreachable tracker is an error.
    fn announce(
        &mut self,
        rel: &str,
        stamp: FileStamp,
        fresh: bool,
        previous: Option<InfoHash>,
    ) -> Result<()> {
        let path = self.dir.join(rel);
        let s = self.s;
        let cached = if fresh {
            None
        } else {
            self.cached(rel, &path, &stamp)
        };
        let (m, stamps) = match cached {
            Some(m) => {
                log::info!("share: {rel} unchanged, using the cached metainfo");
                (m, vec![stamp])
            }
            None => {
                let mut progress = hash_progress(rel);
                match s.hash_path(&path, None, &mut progress) {
                    Ok((m, stamps)) if stamps == [stamp] => {
                        self.cache_metainfo(rel, &m, stamp);
                        (m, stamps)
                    }
                    Ok(_) => {
                        debug!(
                            "share: {rel} changed since it was listed; waiting for it to settle"
                        );
                        self.watch.retry(rel, fresh, previous, Instant::now());
                        return Ok(());
                    }
                    Err(e) => {
                        let chain = super::error_chain(&e);
                        if chain.contains("changed while it was being hashed") {
                            debug!("share: {chain}");
                            self.watch.retry(rel, fresh, previous, Instant::now());
                        } else {
                            warn!("share: skipping {}: {chain}", path.display());
                        }
                        return Ok(());
                    }
                }
            }
        };
        if s.handle(&m.info_hash).is_some() {
            debug!("share: {rel}: {} is already seeded", m.info_hash);
            return Ok(());
        }
        let root = path.parent().unwrap_or(&self.dir).to_path_buf();
        let info_hash = m.info_hash;
        match s.seed_hashed(m, &root, stamps) {
            Ok(a) => {
                self.watch.announced(rel, info_hash, stamp);
                match previous {
                    Some(p) if p == info_hash => {
                        println!("changed: {rel}, re-announced as {info_hash} (same content)")
                    }
                    Some(_) => println!("changed: {rel}, re-announced as {info_hash}"),
                    None => {}
                }
                print_seeding(&a);
                Ok(())
            }
            Err(e) if e.to_string().contains("unreachable") => Err(e),
            Err(e) => {
                let changed = matches!(
                    e.downcast_ref::<OpenError>(),
                    Some(OpenError::Storage(StorageError::Changed { .. }))
                );
                if changed {
                    debug!("share: {rel}: {}", super::error_chain(&e));
                    self.watch.retry(rel, fresh, previous, Instant::now());
                } else {
                    warn!(
                        "share: cannot seed {}: {}",
                        path.display(),
                        super::error_chain(&e)
                    );
                }
                Ok(())
            }
        }
    }

    /// Announces `rel` now, without waiting for it to settle: a file the
    /// web page has just written whole. A torrent announced for an older
    /// version of it is withdrawn first.
    pub fn add_now(&mut self, rel: &str) -> Result<()> {
        let path = self.dir.join(rel);
        let md = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
        let stamp = FileStamp::of(&md);
        self.watch.settling.remove(rel);
        let previous = self.watch.announced.remove(rel).map(|a| a.info_hash);
        if let Some(old) = previous {
            self.s.withdraw(&old);
        }
        let r = self.announce(rel, stamp, true, previous);
        let _ = std::io::stdout().flush();
        self.save_cache();
        r
    }

    /// Caches `m` for `rel` (made while the file had `stamp`), replacing
    /// the metainfo cached for an older version.
    fn cache_metainfo(&mut self, rel: &str, m: &Metainfo, stamp: FileStamp) {
        let t = self.torrents_dir.join(format!("{}.torrent", m.info_hash));
        if let Err(e) = std::fs::write(&t, m.to_bytes()) {
            warn!("share: cannot cache {}: {e}", t.display());
        }
        let entry = Entry {
            size: stamp.len,
            mtime_ns: stamp.mtime_ns.max(0) as u128,
            ctime_ns: stamp.ctime_ns.max(0) as u128,
            ino: stamp.ino,
            info_hash: m.info_hash.to_hex(),
        };
        if let Some(old) = self.cache.files.insert(rel.to_string(), entry) {
            if old.info_hash != m.info_hash.to_hex() {
                self.remove_torrent_file(&old.info_hash);
            }
        }
        self.cache_dirty = true;
    }

    fn forget_cached(&mut self, rel: &str) {
        if let Some(old) = self.cache.files.remove(rel) {
            self.remove_torrent_file(&old.info_hash);
            self.cache_dirty = true;
        }
    }

    /// Deletes a cached .torrent no cache entry names any more.
    fn remove_torrent_file(&self, info_hash: &str) {
        if self.cache.files.values().any(|e| e.info_hash == info_hash) {
            return;
        }
        let t = self.torrents_dir.join(format!("{info_hash}.torrent"));
        if let Err(e) = std::fs::remove_file(&t) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!("share: cannot remove {}: {e}", t.display());
            }
        }
    }

    fn save_cache(&mut self) {
        if !self.cache_dirty {
            return;
        }
        self.cache_dirty = false;
        self.cache.version = 1;
        let cache_dir = self.cache_path.parent().unwrap_or(&self.dir);
        let tmp = cache_dir.join(format!("{CACHE_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(&self.cache).unwrap_or_default();
        if let Err(e) =
            std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, &self.cache_path))
        {
            warn!("share: cannot write {}: {e}", self.cache_path.display());
        }
    }

    /// A notice from the session: a torrent of ours that stopped (its data
    /// no longer matched while serving) is withdrawn and hashed again.
    /// Returns true when a rescan is due now.
    fn notice(&mut self, n: Notice) -> bool {
        let Notice::Failed {
            info_hash, error, ..
        } = n
        else {
            return false;
        };
        match self.watch.stopped(&info_hash) {
            Some(rel) => {
                // Hashed again below: its error row is not the user's to clear.
                self.s.withdraw(&info_hash);
                println!("changed: {rel}, withdrawn from the tracker (was {info_hash}): {error}");
                let _ = std::io::stdout().flush();
                true
            }
            None => false,
        }
    }
}

/// `share DIR` until Ctrl-C: the first scan, then a rescan every
/// `Timing::rescan` (sooner while a file settles, and at once when a
/// torrent's data is found changed while serving).
pub fn run(s: &Session, dir: &Path, ctrlc: &Receiver<()>) -> Result<()> {
    run_with(s, dir, ctrlc, &crossbeam_channel::never())
}

/// [`run`], also announcing at once each file named on `added` (relative
/// to `dir`, written whole by the web page).
pub fn run_with(
    s: &Session,
    dir: &Path,
    ctrlc: &Receiver<()>,
    added: &Receiver<String>,
) -> Result<()> {
    let timing = Timing::from_env();
    let mut added = added.clone();
    let mut share = Share::open(s, dir, timing.settle)?;
    share.rescan()?;
    if share.watch.announced_count() == 0 && !share.watch.waiting() {
        println!(
            "nothing to share yet in {}; watching for new files",
            dir.display()
        );
        let _ = std::io::stdout().flush();
    }
    let next_after = |w: &Watch| {
        let wait = if w.waiting() {
            timing.settle.min(timing.rescan)
        } else {
            timing.rescan
        };
        Instant::now() + wait
    };
    let mut next = next_after(&share.watch);
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(ctrlc) -> _ => return Ok(()),
            recv(s.notices()) -> n => {
                if let Ok(n) = n {
                    if share.notice(n) {
                        next = Instant::now();
                    }
                }
            }
            recv(added) -> rel => match rel {
                Ok(rel) => {
                    if let Err(e) = share.add_now(&rel) {
                        warn!("share: {rel}: {}", super::error_chain(&e));
                    }
                }
                // No web page (any more) to send files: stop listening.
                Err(_) => added = crossbeam_channel::never(),
            },
            default(wait) => {
                if let Err(e) = share.rescan() {
                    warn!("share: {}", super::error_chain(&e));
                }
                next = next_after(&share.watch);
            }
        }
    }
}

/// `seed`: waits for Ctrl-C. When a seeded file changes on disk under its
/// torrent (found while serving it), says that it is no longer seeded under
/// its old info hash; an error once nothing is left to seed.
pub fn wait_seeding(s: &Session, ctrlc: &Receiver<()>) -> Result<()> {
    // The notice may come before the torrent has left the session's table.
    let mut gone = BTreeSet::new();
    loop {
        crossbeam_channel::select! {
            recv(ctrlc) -> _ => return Ok(()),
            recv(s.notices()) -> n => match n {
                Ok(Notice::Failed { info_hash, name, error }) => {
                    eprintln!(
                        "minitorrent: {name} changed and is no longer seeded under its old \
                         info hash {info_hash}: {error}; seed it again to share the new version"
                    );
                    gone.insert(info_hash);
                    if s.handles().iter().all(|h| gone.contains(&h.shared.info_hash)) {
                        bail!("nothing left to seed");
                    }
                }
                Ok(_) => {}
                Err(_) => return Ok(()),
            },
        }
    }
}

fn print_seeding(a: &Added) {
    super::print_seeding(a)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---- "hashing FILE… N %" -----------------------------------------------

/// Terminal updates come at most this often.
const TTY_EVERY: Duration = Duration::from_millis(250);

/// When a hashing progress line is due. On a terminal: the first at once,
/// then when the percentage changed and [`TTY_EVERY`] passed, and 100 %.
/// Otherwise (a pipe, a log): one line at each of 0, 25, 50, 75 and 100 %.
#[derive(Debug)]
struct Marks {
    tty: bool,
    last: Option<(Instant, u32)>,
    next_mark: u32,
}

impl Marks {
    fn new(tty: bool) -> Marks {
        Marks {
            tty,
            last: None,
            next_mark: 0,
        }
    }

    /// The percentage to print now, if any.
    fn due(&mut self, pct: u32, now: Instant) -> Option<u32> {
        if self.tty {
            let due = match self.last {
                None => true,
                Some((_, p)) if p == pct => false,
                Some(_) if pct == 100 => true,
                Some((t, _)) => now.saturating_duration_since(t) >= TTY_EVERY,
            };
            if due {
                self.last = Some((now, pct));
            }
            return due.then_some(pct);
        }
        if pct < self.next_mark {
            return None;
        }
        let mark = pct / 25 * 25;
        self.next_mark = mark + 25;
        Some(mark)
    }
}

/// A progress callback for hashing `label` (`(bytes hashed, total)`) that
/// prints "hashing LABEL… N %" on stderr (see [`Marks`]).
pub fn hash_progress(label: &str) -> impl FnMut(u64, u64) {
    let label = label.to_string();
    let tty = std::io::stderr().is_terminal();
    let mut marks = Marks::new(tty);
    move |done, total| {
        let pct = if total == 0 {
            100
        } else {
            (done.min(total) as u128 * 100 / total as u128) as u32
        };
        let Some(p) = marks.due(pct, Instant::now()) else {
            return;
        };
        let mut err = std::io::stderr().lock();
        let _ = match (tty, p == 100) {
            (true, false) => write!(err, "\rhashing {label}… {p} %"),
            (true, true) => writeln!(err, "\rhashing {label}… {p} %"),
            (false, _) => writeln!(err, "hashing {label}… {p} %"),
        };
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    fn st(len: u64, mtime_s: i128) -> FileStamp {
        FileStamp {
            len,
            mtime_ns: mtime_s * S,
            ctime_ns: mtime_s * S,
            dev: 1,
            ino: 1,
        }
    }

    fn ih(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    fn seen(files: &[(&str, FileStamp)]) -> BTreeMap<String, FileStamp> {
        files.iter().map(|(r, s)| (r.to_string(), *s)).collect()
    }

    fn announce_of(steps: &[Step]) -> Vec<(&str, FileStamp, bool, Option<InfoHash>)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Announce {
                    rel,
                    stamp,
                    fresh,
                    previous,
                } => Some((rel.as_str(), *stamp, *fresh, *previous)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn new_files_are_announced_once_stable() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        // Wall clock at 100 s: old.bin was written at 50 s, new.bin at 99 s.
        let files = seen(&[("old.bin", st(10, 50)), ("new.bin", st(20, 99))]);
        let steps = w.plan(&files, |_| true, 100 * S, t0);
        assert_eq!(
            steps,
            vec![
                Step::Wait {
                    rel: "new.bin".into()
                },
                Step::Announce {
                    rel: "old.bin".into(),
                    stamp: st(10, 50),
                    fresh: false,
                    previous: None
                }
            ]
        );
        w.announced("old.bin", ih(1), st(10, 50));
        assert!(w.waiting());
        // One second later new.bin is still too young; nothing to do.
        let steps = w.plan(&files, |_| true, 101 * S, t0 + Duration::from_secs(1));
        assert!(steps.is_empty(), "{steps:?}");
        // At 102 s it is 3 s old: announced, and said "wait" only once.
        let steps = w.plan(&files, |_| true, 102 * S, t0 + Duration::from_secs(2));
        assert_eq!(
            announce_of(&steps),
            vec![("new.bin", st(20, 99), false, None)]
        );
        assert_eq!(steps.len(), 1);
        w.announced("new.bin", ih(2), st(20, 99));
        assert!(!w.waiting());
        // Unchanged and running: nothing.
        assert!(w
            .plan(&files, |_| true, 200 * S, t0 + Duration::from_secs(100))
            .is_empty());
    }

    #[test]
    fn a_file_still_being_written_waits_until_it_stops_changing() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        let mut wall = 100 * S;
        // Growing by a chunk every second, its mtime always "now".
        for i in 0..5u64 {
            let f = seen(&[("big.iso", st(1000 * (i + 1), 100 + i as i128))]);
            let steps = w.plan(&f, |_| true, wall, t0 + Duration::from_secs(i));
            assert!(announce_of(&steps).is_empty(), "{i}: {steps:?}");
            let said = if i == 0 { 1 } else { 0 };
            assert_eq!(steps.len(), said, "\"wait\" is said once: {steps:?}");
            wall += S;
        }
        // Writing stopped at 104 s; at 107 s it is stable.
        let f = seen(&[("big.iso", st(5000, 104))]);
        assert!(w
            .plan(&f, |_| true, 106 * S, t0 + Duration::from_secs(6))
            .is_empty());
        let steps = w.plan(&f, |_| true, 107 * S, t0 + Duration::from_secs(7));
        assert_eq!(
            announce_of(&steps),
            vec![("big.iso", st(5000, 104), false, None)]
        );
    }

    #[test]
    fn a_clock_behind_the_file_system_still_settles_by_observation() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        // The file's mtime is in our future (another machine's clock).
        let f = seen(&[("x", st(5, 500))]);
        assert!(announce_of(&w.plan(&f, |_| true, 100 * S, t0)).is_empty());
        let later = t0 + Duration::from_secs(2);
        assert!(announce_of(&w.plan(&f, |_| true, 102 * S, later)).is_empty());
        let later = t0 + Duration::from_secs(3);
        let steps = w.plan(&f, |_| true, 103 * S, later);
        assert_eq!(announce_of(&steps), vec![("x", st(5, 500), false, None)]);
    }

    #[test]
    fn a_changed_file_is_withdrawn_at_once_and_announced_again_when_stable() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        w.announced("notes.pdf", ih(1), st(100, 10));
        // Rewritten in place at 99 s, same size.
        let f = seen(&[("notes.pdf", st(100, 99))]);
        let steps = w.plan(&f, |_| true, 100 * S, t0);
        assert_eq!(
            steps,
            vec![
                Step::Withdraw {
                    rel: "notes.pdf".into(),
                    info_hash: ih(1),
                    why: Why::Changed
                },
                Step::Wait {
                    rel: "notes.pdf".into()
                }
            ]
        );
        let steps = w.plan(&f, |_| true, 102 * S, t0 + Duration::from_secs(2));
        assert_eq!(
            announce_of(&steps),
            vec![("notes.pdf", st(100, 99), false, Some(ih(1)))]
        );
        // Changed again long after: withdrawn and announced in one rescan.
        w.announced("notes.pdf", ih(2), st(100, 99));
        let f = seen(&[("notes.pdf", st(120, 150))]);
        let steps = w.plan(&f, |_| true, 200 * S, t0 + Duration::from_secs(100));
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(matches!(
            steps[0],
            Step::Withdraw {
                why: Why::Changed,
                ..
            }
        ));
        assert_eq!(
            announce_of(&steps),
            vec![("notes.pdf", st(120, 150), false, Some(ih(2)))]
        );
    }

    #[test]
    fn a_deleted_file_is_withdrawn_and_forgotten() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        w.announced("a", ih(1), st(1, 1));
        w.announced("b", ih(2), st(1, 1));
        let steps = w.plan(&seen(&[("b", st(1, 1))]), |_| true, 100 * S, t0);
        assert_eq!(
            steps,
            vec![Step::Withdraw {
                rel: "a".into(),
                info_hash: ih(1),
                why: Why::Removed
            }]
        );
        assert_eq!(w.announced_count(), 1);
        // Back later: a new file, with no "previous" hash.
        let steps = w.plan(
            &seen(&[("a", st(1, 50)), ("b", st(1, 1))]),
            |_| true,
            100 * S,
            t0,
        );
        assert_eq!(announce_of(&steps), vec![("a", st(1, 50), false, None)]);
    }

    #[test]
    fn a_torrent_that_stopped_is_hashed_again_ignoring_the_cache() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        w.announced("a", ih(1), st(1, 1));
        let f = seen(&[("a", st(1, 1))]);
        let steps = w.plan(&f, |h| *h != ih(1), 100 * S, t0);
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(
            announce_of(&steps),
            vec![("a", st(1, 1), true, Some(ih(1)))]
        );
        // Told by a notice instead: the same, at the next rescan.
        w.announced("a", ih(3), st(1, 1));
        assert_eq!(w.stopped(&ih(3)), Some("a".to_string()));
        assert_eq!(w.stopped(&ih(3)), None);
        let steps = w.plan(&f, |_| true, 100 * S, t0);
        assert_eq!(
            announce_of(&steps),
            vec![("a", st(1, 1), true, Some(ih(3)))]
        );
    }

    #[test]
    fn a_file_that_changed_while_hashed_is_retried_once_it_settles() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        let f = seen(&[("a", st(1, 1))]);
        assert_eq!(announce_of(&w.plan(&f, |_| true, 100 * S, t0)).len(), 1);
        w.retry("a", true, Some(ih(9)), t0);
        assert!(w.waiting());
        // Seen anew: its mtime is old, so it goes again at once, keeping
        // "fresh" and the previous hash.
        let g = seen(&[("a", st(2, 2))]);
        let steps = w.plan(&g, |_| true, 100 * S, t0 + Duration::from_millis(10));
        assert_eq!(
            announce_of(&steps),
            vec![("a", st(2, 2), true, Some(ih(9)))]
        );
    }

    #[test]
    fn empty_files_are_not_announced() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(3));
        let steps = w.plan(&seen(&[("e", st(0, 1))]), |_| true, 100 * S, t0);
        assert!(steps.is_empty(), "{steps:?}");
        // An announced file emptied is withdrawn, and not announced again.
        w.announced("a", ih(1), st(5, 1));
        let steps = w.plan(&seen(&[("a", st(0, 50))]), |_| true, 100 * S, t0);
        assert_eq!(steps.len(), 1, "{steps:?}");
    }

    #[test]
    fn progress_lines_on_a_pipe_come_at_each_quarter() {
        let t = Instant::now();
        let mut m = Marks::new(false);
        let got: Vec<u32> = [0, 1, 10, 25, 26, 49, 60, 99, 100]
            .iter()
            .filter_map(|p| m.due(*p, t))
            .collect();
        assert_eq!(got, vec![0, 25, 50, 75, 100]);
        // A small file: 0 then 100 at once.
        let mut m = Marks::new(false);
        let got: Vec<u32> = [0, 100].iter().filter_map(|p| m.due(*p, t)).collect();
        assert_eq!(got, vec![0, 100]);
    }

    #[test]
    fn progress_on_a_terminal_is_throttled() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut m = Marks::new(true);
        assert_eq!(m.due(0, t), Some(0));
        assert_eq!(m.due(1, t + ms(100)), None);
        assert_eq!(m.due(2, t + ms(250)), Some(2));
        assert_eq!(m.due(2, t + ms(600)), None, "same value: nothing new");
        assert_eq!(m.due(100, t + ms(610)), Some(100), "the end always shows");
        assert_eq!(m.due(100, t + ms(900)), None);
    }
}
