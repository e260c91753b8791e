//! The command line of `tracker-load`: what to send, how much, for how long.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "tracker-load",
    about = "Load generator for minitorrent-tracker (benchmark)"
)]
pub(crate) struct Args {
    /// The tracker's address (its "listening on" line).
    #[arg(long)]
    pub(crate) tracker: SocketAddr,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Mode::Json)]
    pub(crate) mode: Mode,
    /// Simulated peers (each gets its own peer id; all share this host's IP).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) peers: usize,
    /// Distinct files (swarms); each peer registers one.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) files: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Requests kept in flight.
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// The tracker's process id: report its CPU time per reply (from /proc).
    #[arg(long)]
    pub(crate) tracker_pid: Option<u32>,
    /// How `fill` registers peers.
    #[arg(long, value_enum, default_value_t = Via::Bep15)]
    pub(crate) via: Via,
    /// Percent of REQUEST, HEARTBEAT and REGISTER in the json mix.
    #[arg(long, default_value = "60,30,10")]
    pub(crate) mix: String,
    /// `http-announce`: the tracker's web page address (its "web page on"
    /// line without `http://`), where it answers `GET /announce`.
    #[arg(long)]
    pub(crate) web: Option<SocketAddr>,
    /// `http-announce`: kept-alive connections, one request in flight on
    /// each (the tracker takes at most 16 from one address).
    #[arg(long, default_value_t = 8)]
    pub(crate) connections: usize,
    /// Handler modes: feed a catalogue at this database (a file, or `none`
    /// for memory), as the tracker does; default: no catalogue.
    #[arg(long)]
    pub(crate) db: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    Bep15,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// BEP 15: one connect, every peer announces once, then announces only
    /// (each peer to its own swarm, default num_want).
    Announce,
    /// BEP 15 connect requests only.
    Connect,
    /// HTTP tracker announces (`GET /announce` on `--web`) over
    /// `--connections` kept-alive connections: every peer announces once,
    /// then random peers announce (as in `announce`).
    HttpAnnounce,
    /// Register --peers peers (via --via) and report the tracker's memory
    /// (VmRSS, needs --tracker-pid) per peer. Run the tracker with a long
    /// --peer-timeout so nobody expires meanwhile.
    Fill,
    /// The JSON protocol: REQUEST / HEARTBEAT / REGISTER mix.
    Json,
    /// The JSON mix fed straight to the tracker's request handler in this
    /// process, without sockets: the user-space cost per request. `--tracker`
    /// is ignored.
    Handler,
    /// BEP 15 announces (as in `announce`) fed straight to the tracker's
    /// request handler in this process, without sockets. `--tracker` is
    /// ignored.
    HandlerAnnounce,
    /// BEP 15 scrapes of 10 random swarms each (after the announces of
    /// `announce`) fed straight to the tracker's request handler in this
    /// process, without sockets. `--tracker` is ignored.
    HandlerScrape,
}
