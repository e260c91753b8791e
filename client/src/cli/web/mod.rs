//! The peer's own web interface (`minitorrent web`, `--web` on `seed`,
//! `get`, `share` and the menu): a page to share files from the browser,
//! find and add torrents, and watch and control every transfer. One more
//! shell over the [`Session`], beside the command line and the menu: every
//! page is HTML and JavaScript compiled into the binary, and reads and
//! changes the session only through the JSON API in [`api`] (docs/CLIENT.md
//! documents it).
//!
//! - `http`: the bounded HTTP/1.1 server (its own threads, request bodies
//!   streamed);
//! - `api`: the routes;
//! - `upload`: names checked and files streamed into the shared directory;
//! - this file: starting it, who may use it (loopback only, or a password),
//!   and the bounds.

mod api;
pub mod http;
mod upload;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use crossbeam_channel::Sender;

use crate::session::Session;

/// Every limit of the peer's web server beyond those of [`http::bounds`].
pub mod bounds {
    /// The largest file one upload may carry (64 GiB); the disk's free space
    /// is the other bound.
    pub const MAX_UPLOAD: u64 = 64 << 30;
    /// Uploads written at once; another gets `503` until one ends.
    pub const UPLOADS: usize = 4;
    /// A `.torrent` sent to `/api/add-torrent` (read into memory).
    pub const MAX_TORRENT_BODY: u64 = 10 << 20;
    /// `.torrent`s read at once; another gets `503`.
    pub const TORRENT_BODIES: usize = 2;
    /// Any JSON body (`/api/add`, `/api/limits`).
    pub const MAX_JSON_BODY: u64 = 16 << 10;
    /// Uploaded files waiting to be hashed and seeded; past it an upload
    /// gets `503` before it is sent.
    pub const SHARE_QUEUE: usize = 64;
    /// A wrong password is answered this much later (guessing is slow).
    pub const WRONG_PASSWORD_DELAY: std::time::Duration = std::time::Duration::from_millis(250);
    /// Longest name of an uploaded file, its directories included.
    pub const MAX_NAME: usize = 1024;
    /// Longest search query passed on to the tracker.
    pub const MAX_QUERY: usize = 256;
}

/// The default address of the page: this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// The password's environment variable (safer than `--password` on a
/// shared machine, where the command line is public).
pub const PASSWORD_ENV: &str = "MINITORRENT_WEB_PASSWORD";

/// What happens to a file uploaded from the page once it is whole.
#[derive(Clone)]
pub enum Sharer {
    /// The shared folder's loop announces it (and keeps its cache): the
    /// relative name is sent there (a channel of [`bounds::SHARE_QUEUE`]).
    Folder(Sender<String>),
    /// Hashed and seeded by the session, one at a time, on a thread of the
    /// page's own.
    Direct,
}

/// Who may use the page.
#[derive(Clone)]
pub struct Access {
    /// HTTP Basic password (any user name); `None`: loopback only.
    pub password: Option<String>,
}

/// What the routes work with.
pub struct Web {
    pub session: Arc<Session>,
    /// Where uploads go (the shared folder, or the download directory).
    pub dir: PathBuf,
    /// Files uploaded whole, by their name below `dir`, to be hashed and
    /// seeded (at most [`bounds::SHARE_QUEUE`] waiting).
    pub share: Sender<String>,
    pub access: Access,
    uploads: AtomicUsize,
    torrent_bodies: AtomicUsize,
}

/// One upload slot, given back when dropped.
pub struct UploadSlot<'a>(&'a AtomicUsize);

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Web {
    /// Takes an upload slot if one of [`bounds::UPLOADS`] is free.
    pub fn upload_slot(&self) -> Option<UploadSlot<'_>> {
        take_slot(&self.uploads, bounds::UPLOADS)
    }

    /// Takes a slot to read a `.torrent` into memory, if one of
    /// [`bounds::TORRENT_BODIES`] is free.
    pub fn torrent_slot(&self) -> Option<UploadSlot<'_>> {
        take_slot(&self.torrent_bodies, bounds::TORRENT_BODIES)
    }
}

fn take_slot(count: &AtomicUsize, max: usize) -> Option<UploadSlot<'_>> {
    let n = count.fetch_add(1, Ordering::AcqRel);
    let slot = UploadSlot(count);
    (n < max).then_some(slot)
}

/// Checks that the page may listen on `addr` with `password`: a page that
/// can add and delete files listens beyond this machine only behind a
/// password.
pub fn check_access(addr: SocketAddr, password: Option<&str>) -> Result<Access> {
    let password = password.filter(|p| !p.is_empty()).map(str::to_string);
    if !addr.ip().is_loopback() && password.is_none() {
        bail!(
            "the web interface on {addr} would be reachable from other machines, and it can add \
             and delete files: give it a password with --password PASSWORD (or the {PASSWORD_ENV} \
             environment variable), or keep it on this machine with --web 127.0.0.1:{}",
            addr.port()
        );
    }
    Ok(Access { password })
}

/// The password from `--password`, else from [`PASSWORD_ENV`].
pub fn password(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| std::env::var(PASSWORD_ENV).ok())
        .filter(|p| !p.is_empty())
}

/// Starts the page on `addr`; returns the address it listens on.
pub fn start(
    session: Arc<Session>,
    addr: SocketAddr,
    access: Access,
    dir: &Path,
    sharer: Sharer,
) -> Result<SocketAddr> {
    let server = http::Server::bind(addr).map_err(|e| anyhow::anyhow!("{e}"))?;
    let local = server.local_addr();
    upload::sweep(dir);
    let share = match sharer {
        Sharer::Folder(tx) => tx,
        Sharer::Direct => {
            let (tx, rx) = crossbeam_channel::bounded::<String>(bounds::SHARE_QUEUE);
            let (s, root) = (session.clone(), dir.to_path_buf());
            std::thread::Builder::new()
                .name("web share".into())
                .spawn(move || {
                    // One file at a time: hashing is disk- and CPU-bound.
                    for rel in rx {
                        let path = root.join(&rel);
                        match s.seed_path(&path, None) {
                            Ok(a) => log::info!("web: seeding {} ({})", a.name, a.info_hash),
                            Err(e) => log::warn!(
                                "web: cannot seed {}: {}",
                                path.display(),
                                super::error_chain(&e)
                            ),
                        }
                    }
                })
                .map_err(|e| anyhow::anyhow!("cannot start the web interface's threads: {e}"))?;
            tx
        }
    };
    let web = Arc::new(Web {
        session,
        dir: dir.to_path_buf(),
        share,
        access,
        uploads: AtomicUsize::new(0),
        torrent_bodies: AtomicUsize::new(0),
    });
    server
        .spawn(Arc::new(api::Routes(web)))
        .map_err(|e| anyhow::anyhow!("cannot start the web interface's threads: {e}"))?;
    Ok(local)
}

/// The URL to open: an unspecified address is reached as loopback.
pub fn url_for(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => format!("http://127.0.0.1:{}/", addr.port()),
        IpAddr::V6(v6) if v6.is_unspecified() => format!("http://[::1]:{}/", addr.port()),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}/", addr.port()),
        IpAddr::V4(v4) => format!("http://{v4}:{}/", addr.port()),
    }
}
