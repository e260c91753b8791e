//! The catalogue in SQLite: one database file in WAL mode (or an in-memory
//! database for `--db none`), its schema, the migrations that bring an older
//! file up to date, and the checks that refuse a damaged, foreign or newer
//! file at start instead of resetting it.
//!
//! Every change is one transaction with `synchronous = FULL`: a transaction
//! that returned is on disk (the WAL is synced at each commit), and a
//! `kill -9` or power cut loses at most the transaction in progress, never
//! the file. The writer commits about once a second, so the syncs cost
//! nothing on the request path.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use minitorrent_common::metainfo::InfoHash;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

use super::limits::CatalogueLimits;
use super::store::{
    Batch, EventKind, NewTorrent, Store, StoreError, Stored, SwarmEvent, TorrentEntry,
};
use crate::peer_id::PeerId;

/// `PRAGMA application_id` of a minitorrent catalogue ("MTCT"), so another
/// program's SQLite file is refused rather than written into.
pub const APPLICATION_ID: i32 = 0x4D54_4354;

/// The schema, one migration per version: `MIGRATIONS[i]` takes a database
/// from version `i` to `i + 1` (`PRAGMA user_version`). Append, never edit:
/// a file made by an older tracker runs the ones it lacks, in order, each in
/// its own transaction.
pub const MIGRATIONS: &[&str] = &[
    // 1: published torrents, completed counts, the event log.
    "CREATE TABLE torrents (
         info_hash      BLOB PRIMARY KEY NOT NULL,
         name           TEXT NOT NULL,
         size           INTEGER NOT NULL,
         published_at   INTEGER NOT NULL,
         published_from TEXT NOT NULL,
         bytes          BLOB NOT NULL
     );
     CREATE INDEX torrents_by_time ON torrents (published_at);
     CREATE TABLE completions (
         info_hash BLOB PRIMARY KEY NOT NULL,
         completed INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE events (
         id        INTEGER PRIMARY KEY,
         info_hash BLOB NOT NULL,
         at        INTEGER NOT NULL,
         kind      TEXT NOT NULL,
         addr      TEXT NOT NULL,
         peer_id   TEXT NOT NULL
     );
     CREATE INDEX events_by_swarm ON events (info_hash, id);",
];

/// The schema version this build writes.
pub fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Why the catalogue database cannot be used. Each message names the file
/// and what to do; none of these leads to a reset.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the catalogue database {path} is damaged or not an SQLite database ({detail}); \
         the tracker will not overwrite it: move it aside (or restore a backup) and start again, \
         or choose another file with --db PATH (--db none keeps nothing)"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path} is an SQLite database but not a minitorrent tracker catalogue; \
         the tracker will not write into it: choose another file with --db PATH"
    )]
    Foreign { path: PathBuf },
    #[error(
        "the catalogue database {path} has schema version {found}, newer than this tracker \
         knows (up to {known}): it was written by a newer minitorrent-tracker; run that \
         version, or choose another file with --db PATH"
    )]
    Newer {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("cannot open the catalogue database {path}: {detail}; check that its directory exists and is writable, or choose another file with --db PATH")]
    Io { path: PathBuf, detail: String },
    #[error("cannot bring the catalogue database {path} up to schema version {to}: {detail}; the file is unchanged, move it aside or choose another with --db PATH")]
    Migration {
        path: PathBuf,
        to: u32,
        detail: String,
    },
    #[error(
        "the catalogue database {path} is in use by another minitorrent-tracker (it holds \
         {path}.lock); stop that one, or give this one its own file with --db PATH \
         (--db none keeps nothing)"
    )]
    InUse { path: PathBuf },
}

/// Takes an exclusive lock on `PATH.lock` (created if missing) for as long
/// as the returned file stays open: two trackers writing their counts into
/// one database would overwrite each other's totals.
fn lock_file(path: &Path) -> Result<std::fs::File, OpenError> {
    use std::os::unix::io::AsRawFd;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| OpenError::Io {
            path: path.to_path_buf(),
            detail: format!("{}: {e}", PathBuf::from(&name).display()),
        })?;
    // SAFETY: flock on a file descriptor this function owns; no memory is shared.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
            OpenError::InUse {
                path: path.to_path_buf(),
            }
        } else {
            OpenError::Io {
                path: path.to_path_buf(),
                detail: format!("locking {}: {e}", PathBuf::from(&name).display()),
            }
        });
    }
    Ok(f)
}

/// SQLite behind the [`Store`] interface.
pub struct SqliteStore {
    conn: Connection,
    /// The lock on `PATH.lock` of a file database ([`lock_file`]).
    _lock: Option<std::fs::File>,
    name: String,
    /// Rows in `events`, kept here so trimming needs no `count(*)`.
    event_rows: usize,
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and migrates it to
    /// the current schema.
    pub fn open(path: &Path) -> Result<SqliteStore, OpenError> {
        SqliteStore::open_with(path, MIGRATIONS)
    }

    /// An in-memory database (`--db none`): the same code, nothing kept.
    pub fn in_memory() -> Result<SqliteStore, OpenError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| OpenError::Io {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        SqliteStore::setup(conn, &path, "memory".into(), MIGRATIONS, false)
    }

    /// [`open`](Self::open) with a given list of migrations (tests check
    /// upgrades with it).
    pub fn open_with(path: &Path, migrations: &[&str]) -> Result<SqliteStore, OpenError> {
        let lock = lock_file(path)?;
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        let mut store =
            SqliteStore::setup(conn, path, path.display().to_string(), migrations, true)?;
        store._lock = Some(lock);
        Ok(store)
    }

    fn setup(
        mut conn: Connection,
        path: &Path,
        name: String,
        migrations: &[&str],
        file: bool,
    ) -> Result<SqliteStore, OpenError> {
        let fail = |e: rusqlite::Error| open_error(path, e);
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        // The first read: a file that is not SQLite fails here.
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(fail)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(fail)?;
        if app_id != APPLICATION_ID && !(app_id == 0 && version == 0 && tables == 0) {
            return Err(OpenError::Foreign {
                path: path.to_path_buf(),
            });
        }
        let known = migrations.len() as u32;
        if version > known {
            return Err(OpenError::Newer {
                path: path.to_path_buf(),
                found: version,
                known,
            });
        }
        if tables > 0 {
            let check: String = conn
                .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
                .map_err(fail)?;
            if check != "ok" {
                return Err(OpenError::Corrupt {
                    path: path.to_path_buf(),
                    detail: check,
                });
            }
        }
        if file {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(fail)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(OpenError::Io {
                    path: path.to_path_buf(),
                    detail: format!(
                        "the file system does not allow WAL mode (journal mode {mode})"
                    ),
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
            let to = i as u32 + 1;
            let mig = |e: rusqlite::Error| OpenError::Migration {
                path: path.to_path_buf(),
                to,
                detail: e.to_string(),
            };
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(mig)?;
            // Read again under the lock: another process may have migrated.
            let now: u32 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(mig)?;
            if now >= to {
                continue;
            }
            tx.execute_batch(sql).map_err(mig)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(mig)?;
            tx.pragma_update(None, "user_version", to).map_err(mig)?;
            tx.commit().map_err(mig)?;
        }
        let event_rows: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(fail)?;
        Ok(SqliteStore {
            conn,
            _lock: None,
            name,
            event_rows: event_rows.max(0) as usize,
        })
    }

    /// The schema version of the open database.
    pub fn version(&self) -> Result<u32, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.failed(e))
    }

    /// The connection, for tests that look at the tables directly.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn failed(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Failed {
            db: self.name.clone(),
            message: e.to_string(),
        }
    }
}

fn open_error(path: &Path, e: rusqlite::Error) -> OpenError {
    if is_corruption(&e) {
        OpenError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        OpenError::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    }
}

fn hash_from(blob: Vec<u8>) -> Option<InfoHash> {
    <[u8; 20]>::try_from(blob.as_slice()).ok().map(InfoHash)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn publish(
        &mut self,
        t: &NewTorrent<'_>,
        limits: &CatalogueLimits,
    ) -> Result<Stored, StoreError> {
        let name = self.name.clone();
        let fail = |e: rusqlite::Error| StoreError::Failed {
            db: name.clone(),
            message: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let there: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM torrents WHERE info_hash = ?1",
                [&t.info_hash.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        if there.is_some() {
            return Ok(Stored::AlreadyThere);
        }
        let (count, bytes): (i64, i64) = tx
            .query_row(
                "SELECT count(*), coalesce(sum(length(bytes)), 0) FROM torrents",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(fail)?;
        if count.max(0) as usize >= limits.max_torrents {
            return Err(StoreError::TooManyTorrents {
                limit: limits.max_torrents,
            });
        }
        let held = bytes.max(0) as u64;
        let adding = t.bytes.len() as u64;
        if held + adding > limits.max_published_bytes {
            return Err(StoreError::TooManyBytes {
                held,
                adding,
                limit: limits.max_published_bytes,
            });
        }
        tx.execute(
            "INSERT INTO torrents (info_hash, name, size, published_at, published_from, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &t.info_hash.0[..],
                t.name,
                to_i64(t.size),
                to_i64(t.published_at_ms),
                t.published_from.to_string(),
                t.bytes
            ],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Stored::New)
    }

    fn torrent(&mut self, h: &InfoHash) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT bytes FROM torrents WHERE info_hash = ?1",
                [&h.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.failed(e))
    }

    fn torrents(&mut self, offset: usize, limit: usize) -> Result<Vec<TorrentEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT info_hash, name, size, published_at, published_from, length(bytes)
                 FROM torrents ORDER BY published_at DESC, rowid DESC LIMIT ?1 OFFSET ?2",
            )
            .map_err(|e| self.failed(e))?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        let rows = rows.map_err(|e| self.failed(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(h, name, size, at, from, len)| {
                Some(TorrentEntry {
                    info_hash: hash_from(h)?,
                    name,
                    size: size.max(0) as u64,
                    published_at_ms: at.max(0) as u64,
                    published_from: from,
                    torrent_bytes: len.max(0) as u64,
                })
            })
            .collect())
    }

    fn torrent_count(&mut self) -> Result<usize, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM torrents", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .map_err(|e| self.failed(e))
    }

    fn has_torrents(&mut self, hashes: &[InfoHash]) -> Result<Vec<bool>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM torrents WHERE info_hash = ?1")
            .map_err(|e| self.failed(e))?;
        let found = hashes
            .iter()
            .map(|h| stmt.exists([&h.0[..]]))
            .collect::<Result<Vec<bool>, _>>();
        drop(stmt);
        found.map_err(|e| self.failed(e))
    }

    fn load_completed(&mut self, max: usize) -> Result<Vec<(InfoHash, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT info_hash, completed FROM completions ORDER BY completed DESC LIMIT ?1",
            )
            .map_err(|e| self.failed(e))?;
        let rows = stmt
            .query_map([max as i64], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        let rows = rows.map_err(|e| self.failed(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(h, n)| Some((hash_from(h)?, n.max(0) as u64)))
            .collect())
    }

    fn write(&mut self, batch: &Batch, limits: &CatalogueLimits) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let name = self.name.clone();
        let fail = |e: rusqlite::Error| StoreError::Failed {
            db: name.clone(),
            message: e.to_string(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut rows = self.event_rows;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (info_hash, at, kind, addr, peer_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(fail)?;
            for e in &batch.events {
                insert
                    .execute(params![
                        &e.info_hash.0[..],
                        to_i64(e.at_ms),
                        e.kind.as_str(),
                        e.addr.to_string(),
                        e.peer_id.as_str()
                    ])
                    .map_err(fail)?;
                rows += 1;
            }
            let mut count = tx
                .prepare_cached(
                    "INSERT INTO completions (info_hash, completed) VALUES (?1, ?2)
                     ON CONFLICT (info_hash) DO UPDATE SET completed = excluded.completed",
                )
                .map_err(fail)?;
            for (h, n) in &batch.completed {
                count.execute(params![&h.0[..], to_i64(*n)]).map_err(fail)?;
            }
            // Newest `events_per_swarm` kept in each swarm written to.
            let mut trim = tx
                .prepare_cached(
                    "DELETE FROM events WHERE info_hash = ?1 AND id <
                       (SELECT id FROM events WHERE info_hash = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                )
                .map_err(fail)?;
            let keep = limits.events_per_swarm.max(1) as i64 - 1;
            let mut seen = HashSet::new();
            for e in &batch.events {
                if seen.insert(e.info_hash) {
                    let gone = trim
                        .execute(params![&e.info_hash.0[..], keep])
                        .map_err(fail)?;
                    rows = rows.saturating_sub(gone);
                }
            }
            // Then the oldest overall, past `max_events`.
            if rows > limits.max_events {
                let excess = rows - limits.max_events;
                let gone = tx
                    .execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?1)",
                        [excess as i64],
                    )
                    .map_err(fail)?;
                rows = rows.saturating_sub(gone);
            }
        }
        tx.commit().map_err(fail)?;
        self.event_rows = rows;
        Ok(())
    }

    fn events(&mut self, h: &InfoHash, limit: usize) -> Result<Vec<SwarmEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at, kind, addr, peer_id FROM events WHERE info_hash = ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.failed(e))?;
        let rows = stmt
            .query_map(params![&h.0[..], limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        let rows = rows.map_err(|e| self.failed(e))?;
        // A row that does not parse (edited by hand) is left out, not fatal.
        Ok(rows
            .into_iter()
            .filter_map(|(at, kind, addr, peer_id)| {
                Some(SwarmEvent {
                    at_ms: at.max(0) as u64,
                    info_hash: *h,
                    kind: EventKind::parse(&kind)?,
                    addr: addr.parse::<SocketAddr>().ok()?,
                    peer_id: PeerId::new(&peer_id),
                })
            })
            .collect())
    }
}
