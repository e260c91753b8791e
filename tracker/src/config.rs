//! What the tracker is told at start: the command line fills in a [`Config`].
//! The request handler reads the reply limits, intervals and `--trace` from
//! it; the socket workers the address, the worker count and the sweep period;
//! the discovery responder (started by the binary) its port and flags; the
//! web server ([`crate::web`]) its address.

use std::net::SocketAddr;
use std::time::Duration;

use minitorrent_common::tracker_proto::{
    DEFAULT_INTERVAL_SECS, DEFAULT_TIMEOUT_SECS, DISCOVER_PORT,
};

use crate::catalogue::DbLocation;
use crate::registry::MAX_SWARMS;

/// Longest wait between two sweeps.
const MAX_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Everything the server needs to know; the command line fills it in.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub peer_timeout: Duration,
    pub max_peers: usize,
    pub trace: bool,
    /// Worker threads, each with its own socket on the same port.
    pub workers: usize,
    /// Most swarms held at once; a new one past it is refused.
    pub max_swarms: usize,
    /// Answer LAN discovery (`DISCOVER`); `--no-discover` turns it off.
    pub discover: bool,
    /// The UDP port discovery listens on (`--discover-port`).
    pub discover_port: u16,
    /// Answer `DISCOVER` from public addresses too (`--discover-public`).
    pub discover_public: bool,
    /// The catalogue's database (`--db`); memory only by default here, the
    /// command line's default is a file.
    pub db: DbLocation,
    /// Where the web page listens (`--web`); `None` for `--web off`.
    pub web: Option<SocketAddr>,
    /// The web page's URL as peers are told it (`http://IP:PORT/`), once the
    /// web server is bound; `None` without a web page.
    pub web_url: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::from(([0, 0, 0, 0], 6969)),
            peer_timeout: Duration::from_secs(u64::from(DEFAULT_TIMEOUT_SECS)),
            max_peers: 50,
            trace: false,
            workers: 1,
            max_swarms: MAX_SWARMS,
            discover: true,
            discover_port: DISCOVER_PORT,
            discover_public: false,
            db: DbLocation::Memory,
            web: None,
            web_url: None,
        }
    }
}

impl Config {
    /// Heartbeat interval announced in `OK`: the default 10 s, or a third of
    /// a shorter timeout (at least 1 s), so a peer heartbeats about three
    /// times per timeout.
    pub fn interval_secs(&self) -> u32 {
        let third = (self.peer_timeout.as_secs() / 3).max(1);
        third.min(u64::from(DEFAULT_INTERVAL_SECS)) as u32
    }

    pub fn timeout_secs(&self) -> u32 {
        self.peer_timeout.as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// How often each worker sweeps its share of the registry.
    pub(crate) fn sweep_every(&self) -> Duration {
        (self.peer_timeout / 2).min(MAX_SWEEP_EVERY)
    }
}
