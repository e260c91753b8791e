//! The messages between the threads of the peer: connection (and session) →
//! coordinator ([`Event`]), coordinator → connection ([`Command`]),
//! coordinator → session ([`Notice`]), anyone → tracker home ([`TrackerMsg`]),
//! and the status snapshots the CLI and menu read. Plain data: defined here
//! so that neither side imports the other.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Sender;
use minitorrent_common::metainfo::{format_size, InfoHash};
use minitorrent_common::tracker_proto::PeerEntry;
use minitorrent_common::wire::{Bitfield, PexMsg};

use std::sync::Arc;

use crate::core::picker::ConnId;
use crate::core::shared::Meta;

/// An error from the I/O layer (disk, tracker) that the core only reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why we close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("banned peer")]
    Banned,
    #[error("torrent stopped")]
    TorrentStopped,
    #[error("too many peers")]
    TooManyPeers,
    #[error("too many connections from this address")]
    TooManyFromAddress,
    #[error("making room for a new peer")]
    MakingRoom,
    #[error("duplicate connection")]
    Duplicate,
    #[error("too many bad pieces")]
    BadPieces,
    #[error("both of us are seeders")]
    BothSeeders,
    #[error("bad metadata")]
    BadMetadata,
    #[error("flooding peer exchange messages")]
    PexFlood,
    #[error(
        "an encrypted (MSE/PE) handshake, and this peer runs with --encryption off \
         (clients that allow plain retry without it)"
    )]
    NotPlain,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("handshake: {0}")]
    Handshake(String),
    /// The peer closed (or reset) the connection before its handshake came:
    /// what a peer that accepts only encrypted connections does to ours.
    #[error("handshake: the peer closed the connection before its handshake")]
    HandshakeClosed,
    #[error("peer closed the connection")]
    Closed,
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("stalled: no block for {0:?}")]
    Stalled(Duration),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("storage: {0}")]
    Storage(BoxError),
    #[error("closed by us: {0}")]
    Closing(CloseReason),
    #[error("torrent stopped")]
    Stopped,
}

/// How a dial failed, as the user is told when every known peer fails
/// alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailKind {
    /// Nobody listens there (connection refused).
    Refused,
    /// No answer to the connect (a firewall, a wrong address, a peer gone).
    NoAnswer,
    /// Closed or reset before the handshake.
    ClosedInHandshake,
    /// A handshake that went wrong, with the reason.
    Handshake(String),
    Other,
}

impl ConnError {
    /// The kind of a failed dial.
    pub fn fail_kind(&self) -> FailKind {
        use std::io::ErrorKind as K;
        match self {
            ConnError::Connect(e) if e.kind() == K::ConnectionRefused => FailKind::Refused,
            ConnError::Connect(_) => FailKind::NoAnswer,
            ConnError::HandshakeClosed | ConnError::Closed => FailKind::ClosedInHandshake,
            ConnError::Io(e)
                if matches!(
                    e.kind(),
                    K::ConnectionReset | K::UnexpectedEof | K::BrokenPipe | K::ConnectionAborted
                ) =>
            {
                FailKind::ClosedInHandshake
            }
            ConnError::Handshake(why) => FailKind::Handshake(why.clone()),
            _ => FailKind::Other,
        }
    }

    /// Whether the peer misbehaved (worth a warning rather than a debug line).
    pub fn is_violation(&self) -> bool {
        matches!(self, ConnError::Protocol(_) | ConnError::Handshake(_))
    }
}

/// Connection (and session) → coordinator.
pub enum Event {
    Connected {
        conn: ConnId,
        addr: SocketAddr,
        /// Our end of the connection (for `--trace`).
        local: SocketAddr,
        peer_id: [u8; 20],
        outbound: bool,
        /// We greeted without a BITFIELD (initial seeding): the peer
        /// knows of no piece of ours until HAVEs show it some.
        hid_pieces: bool,
        /// The round-trip time to the peer, measured before any piece
        /// traffic (the kernel's, where it tells).
        rtt: Option<Duration>,
    },
    ConnectFailed {
        conn: ConnId,
        addr: SocketAddr,
        error: ConnError,
    },
    Ext {
        conn: ConnId,
        metadata_size: Option<u64>,
        ut_metadata: bool,
        /// The peer speaks `ut_pex` (and we offered it).
        ut_pex: bool,
        listen_port: Option<u16>,
    },
    /// A `ut_pex` message from the peer (BEP 11), decoded and bounded.
    Pex {
        conn: ConnId,
        msg: PexMsg,
    },
    Bitfield {
        conn: ConnId,
        bits: Bitfield,
    },
    Have {
        conn: ConnId,
        index: u32,
    },
    Unchoked {
        conn: ConnId,
    },
    Choked {
        conn: ConnId,
    },
    /// Verified and written to disk.
    PieceDone {
        conn: ConnId,
        index: u32,
    },
    /// Arrived with the wrong SHA-1; nothing was written.
    PieceBad {
        conn: ConnId,
        index: u32,
    },
    /// The connection gives an assigned piece back.
    Released {
        conn: ConnId,
        index: u32,
    },
    /// The peer rejected a request for an assigned piece (BEP 6): the
    /// connection gave it back.
    Rejected {
        conn: ConnId,
        index: u32,
    },
    /// The peer allows us this piece while it chokes us (BEP 6 ALLOWED
    /// FAST; the connection keeps at most `MAX_ALLOWED_FAST` per peer).
    AllowedFast {
        conn: ConnId,
        index: u32,
    },
    WriteFailed {
        conn: ConnId,
        index: u32,
        error: BoxError,
    },
    MetadataData {
        conn: ConnId,
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    MetadataReject {
        conn: ConnId,
        piece: u32,
    },
    Gone {
        conn: ConnId,
        error: ConnError,
    },
    /// A tracker lookup finished.
    Lookup(Result<Vec<PeerEntry>, BoxError>),
    /// A tracker lookup finished: the tracker lists no peer but us for the
    /// info hash (`not_found`, or no seeder and nobody else). An empty
    /// answer, and a sign the file is gone (its seeder left or changed it).
    Unlisted,
    /// Our copy of the data no longer matches the torrent (a file changed
    /// on disk under a seed); the text says which file and how.
    DataChanged(String),
    /// Peer addresses learnt elsewhere (magnet `x.pe`, an earlier lookup).
    AddPeers(Vec<SocketAddr>),
    /// The peer said INTERESTED (true) or NOT INTERESTED (false) to us.
    PeerInterest {
        conn: ConnId,
        interested: bool,
    },
    /// The storage is open and the data already on disk checked (the
    /// answer to `Action::Open`).
    Opened(Result<Opened, BoxError>),
    /// The files are synced and renamed to their final names (the answer to
    /// `Action::Finish`).
    Finished(Result<(), BoxError>),
}

/// A torrent's storage, opened and checked.
#[derive(Debug)]
pub struct Opened {
    pub meta: Arc<Meta>,
    /// Pieces found verified on disk.
    pub on_disk: u32,
    /// The files' final names.
    pub paths: Vec<PathBuf>,
}

/// How the coordinator thread reaches one connection thread: its command
/// channel and the function that wakes its poll; and the connection's byte
/// totals, which it keeps up to date.
#[derive(Clone)]
pub struct ConnLink {
    pub cmd: Sender<Command>,
    pub wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    pub traffic: std::sync::Arc<crate::core::traffic::ConnTraffic>,
}

impl ConnLink {
    pub fn send(&self, c: Command) {
        if self.cmd.send(c).is_ok() {
            (self.wake)();
        }
    }
}

/// What a coordinator thread receives: events for the core, and what only
/// the thread itself handles.
pub enum Input {
    Event(Event),
    /// Sent by a connection right before its `Event::Connected`.
    Link {
        conn: ConnId,
        link: ConnLink,
    },
    Status(Sender<TorrentStatus>),
    /// Everything the torrent's own web page shows.
    Detail(Sender<TorrentDetail>),
    Shutdown(Sender<()>),
}

impl From<Event> for Input {
    fn from(e: Event) -> Input {
        Input::Event(e)
    }
}

/// Coordinator → connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Download this piece.
    Fetch(u32),
    /// Stop fetching this piece (it arrived from someone else).
    Cancel(u32),
    /// Tell the peer we have this piece.
    Have(u32),
    /// Tell the peer (which we greeted without a BITFIELD) of every piece
    /// we have: initial seeding is over.
    HaveAll,
    Interested(bool),
    MetadataRequest(u32),
    /// Send the peer this `ut_pex` message.
    Pex(PexMsg),
    /// `TorrentShared::meta` is now set.
    MetadataReady,
    Close(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Metadata,
    /// Hashing the data already on disk: `done` of `total` pieces.
    Checking {
        done: u32,
        total: u32,
    },
    Downloading,
    Seeding,
    Failed(String),
    Stopped,
    /// Paused by the user: no connection, not at the tracker.
    Paused,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Metadata => f.write_str("fetching metadata"),
            Phase::Checking { done, total } => {
                write!(
                    f,
                    "checking existing data ({done} of {})",
                    count(*total, "piece")
                )
            }
            Phase::Downloading => f.write_str("downloading"),
            Phase::Seeding => f.write_str("seeding"),
            Phase::Failed(e) => write!(f, "failed: {e}"),
            Phase::Stopped => f.write_str("stopped"),
            Phase::Paused => f.write_str("paused"),
        }
    }
}

/// A snapshot for progress display and the menu.
#[derive(Debug, Clone)]
pub struct TorrentStatus {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: Option<u64>,
    pub pieces_total: u32,
    pub pieces_have: u32,
    pub bytes_have: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub peers: usize,
    pub down_rate: f64,
    pub up_rate: f64,
    pub phase: Phase,
    pub paths: Vec<PathBuf>,
    /// Why the download makes no progress, in words for the user (every
    /// peer that has the file sent corrupt data); `None` while it can.
    pub problem: Option<String>,
}

/// One connected peer, for a torrent's page.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    pub addr: SocketAddr,
    /// The client, from its peer id (`libtorrent 2.0.8`).
    pub client: String,
    /// We dialled it.
    pub outbound: bool,
    /// Share of the torrent it has, once we know both.
    pub progress: Option<f64>,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// Piece bytes received from it and sent to it.
    pub downloaded: u64,
    pub uploaded: u64,
    pub down_rate: f64,
    pub up_rate: f64,
}

/// What a piece is, on a torrent's piece map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceMark {
    Have,
    InFlight,
    Missing,
}

impl PieceMark {
    /// `h`, `f`, `m`: the piece map as a string (docs/CLIENT.md).
    pub fn letter(self) -> char {
        match self {
            PieceMark::Have => 'h',
            PieceMark::InFlight => 'f',
            PieceMark::Missing => 'm',
        }
    }
}

/// One file of a torrent and how much of it is verified.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    /// Relative to the torrent's directory (its name, for one file).
    pub path: String,
    pub size: u64,
    pub progress: f64,
}

/// The tracker's last answer about a torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerNote {
    /// When, as seconds before the detail was taken.
    pub ago: f64,
    /// `Ok("3 peers")` or the error.
    pub answer: Result<String, String>,
}

/// Everything a torrent's page shows, taken on demand from its coordinator.
#[derive(Debug, Clone)]
pub struct TorrentDetail {
    pub status: TorrentStatus,
    pub peers: Vec<PeerRow>,
    /// One [`PieceMark`] per piece; empty before the metadata.
    pub pieces: Vec<PieceMark>,
    pub files: Vec<FileRow>,
    /// Download and upload rates of the last [`HISTORY`] seconds, oldest
    /// first, as (seconds before now, down, up).
    pub history: Vec<(f64, f64, f64)>,
    pub tracker: Option<TrackerNote>,
}

impl TorrentDetail {
    /// Only the status: a torrent that does not run, or whose coordinator
    /// did not answer in time.
    pub fn status_only(status: TorrentStatus) -> TorrentDetail {
        TorrentDetail {
            status,
            peers: Vec::new(),
            pieces: Vec::new(),
            files: Vec::new(),
            history: Vec::new(),
            tracker: None,
        }
    }
}

/// Seconds of rate history a torrent keeps for its page.
pub const HISTORY: usize = 120;

/// What a finished download reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    /// From the start of the download (metadata and check included).
    pub elapsed: Duration,
    /// From the moment the data on disk was checked and pieces could be
    /// fetched: what the rate is measured over.
    pub fetch_elapsed: Duration,
    pub peers_used: usize,
    pub pieces_total: u32,
    pub pieces_fetched: u32,
    pub pieces_on_disk: u32,
    /// Verified bytes received from each peer (its listening address when known).
    pub from_peers: Vec<(String, u64)>,
    pub paths: Vec<PathBuf>,
}

impl Summary {
    /// Verified bytes received from peers (not those found on disk).
    pub fn bytes_fetched(&self) -> u64 {
        self.from_peers.iter().map(|(_, b)| *b).sum()
    }

    /// Bytes per second of the bytes fetched (after a resume, only those),
    /// over the time spent fetching.
    pub fn rate(&self) -> f64 {
        self.bytes_fetched() as f64 / self.fetch_elapsed.as_secs_f64().max(1e-6)
    }

    /// The one line printed when a download completes (scripts parse it:
    /// it starts with `done: NAME, SIZE bytes` and ends with
    /// `N pieces fetched, M already on disk, SHA-1 verified`).
    pub fn line(&self) -> String {
        let fetched = self.bytes_fetched();
        let got = if fetched == 0 {
            "nothing fetched".to_string()
        } else {
            format!(
                "{} fetched at {} from {}",
                format_size(fetched),
                format_rate(self.rate()),
                count(self.peers_used as u64, "peer")
            )
        };
        format!(
            "done: {}, {} bytes ({}) in {:.2} s, {got}, {} fetched, {} already on disk, SHA-1 verified",
            self.name,
            self.size,
            format_size(self.size),
            self.elapsed.as_secs_f64(),
            count(self.pieces_fetched, "piece"),
            self.pieces_on_disk
        )
    }

    /// The lines under [`Summary::line`]: verified bytes from each peer.
    pub fn peer_lines(&self) -> Vec<String> {
        self.from_peers
            .iter()
            .map(|(peer, bytes)| format!("  from {peer}: {bytes} bytes ({})", format_size(*bytes)))
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let peers: serde_json::Map<String, serde_json::Value> = self
            .from_peers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect();
        serde_json::json!({
            "name": self.name,
            "info_hash": self.info_hash.to_hex(),
            "size": self.size,
            "seconds": self.elapsed.as_secs_f64(),
            "bytes_fetched": self.bytes_fetched(),
            "fetch_seconds": self.fetch_elapsed.as_secs_f64(),
            "mib_per_s": self.rate() / MIB,
            "peers_used": self.peers_used,
            "pieces_total": self.pieces_total,
            "pieces_fetched": self.pieces_fetched,
            "pieces_verified_on_disk": self.pieces_on_disk,
            "bytes_from_peers": peers,
        })
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// A rate with binary units, like [`format_size`]: "512 B/s",
/// "1.5 MiB/s".
pub fn format_rate(bytes_per_s: f64) -> String {
    let b = if bytes_per_s.is_finite() && bytes_per_s > 0.0 {
        bytes_per_s.round() as u64
    } else {
        0
    };
    format!("{}/s", format_size(b))
}

/// A count and its noun, singular or plural: "1 peer", "0 pieces",
/// "2 bad pieces". The noun takes an "s" (every noun the peer counts does).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What the coordinator tells the session.
#[derive(Debug, Clone)]
pub enum Notice {
    MetadataReceived {
        info_hash: InfoHash,
        name: String,
        size: u64,
        pieces_on_disk: u32,
        pieces_total: u32,
    },
    Completed(Summary),
    Failed {
        info_hash: InfoHash,
        name: String,
        error: String,
    },
}

/// A file the tracker should list for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub complete: bool,
}

/// Messages to the tracker home.
pub enum TrackerMsg {
    /// Add or update a file; the reply (if asked) says whether the REGISTER
    /// went through.
    Update(Tracked, Option<Sender<Result<(), BoxError>>>),
    /// Find peers for a torrent now; the answer goes to `reply` as
    /// `Event::Lookup`. A tracker home that learns peers on its own
    /// schedule (BEP 15 announces) may take it as a hint to announce sooner.
    Lookup {
        info_hash: InfoHash,
        reply: Sender<Input>,
    },
    /// The torrent is gone from the session (removed, failed): the tracker
    /// is to stop listing us for it.
    Forget(InfoHash),
    Shutdown(Sender<()>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(size: u64, from: &[u64], on_disk: u32, fetched: u32) -> Summary {
        Summary {
            info_hash: InfoHash([1; 20]),
            name: "f.bin".into(),
            size,
            elapsed: Duration::from_millis(2500),
            fetch_elapsed: Duration::from_secs(2),
            peers_used: from.iter().filter(|b| **b > 0).count(),
            pieces_total: on_disk + fetched,
            pieces_fetched: fetched,
            pieces_on_disk: on_disk,
            from_peers: from
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("127.0.0.1:{}", 7000 + i), *b))
                .collect(),
            paths: Vec::new(),
        }
    }

    #[test]
    fn counts_say_one_in_the_singular() {
        assert_eq!(count(0u32, "peer"), "0 peers");
        assert_eq!(count(1u32, "peer"), "1 peer");
        assert_eq!(count(2u64, "bad piece"), "2 bad pieces");
    }

    #[test]
    fn rates_use_binary_units() {
        assert_eq!(format_rate(0.0), "0 B/s");
        assert_eq!(format_rate(f64::NAN), "0 B/s");
        assert_eq!(format_rate(-3.0), "0 B/s");
        assert_eq!(format_rate(512.4), "512 B/s");
        assert_eq!(format_rate(1.5 * 1024.0 * 1024.0), "1.5 MiB/s");
    }

    #[test]
    fn the_summary_line_gives_the_rate_of_the_bytes_fetched() {
        let mib = 1024 * 1024;
        // A fresh download from one peer: 4 MiB in 2 s of fetching.
        let s = summary(4 * mib, &[4 * mib], 0, 1);
        assert_eq!(
            s.line(),
            "done: f.bin, 4194304 bytes (4.0 MiB) in 2.50 s, 4.0 MiB fetched at 2.0 MiB/s \
             from 1 peer, 1 piece fetched, 0 already on disk, SHA-1 verified"
        );
        // A resume: half was on disk, the rate is that of the other half.
        let s = summary(4 * mib, &[mib, mib], 2, 2);
        assert!(
            s.line().contains(
                "2.0 MiB fetched at 1.0 MiB/s from 2 peers, 2 pieces fetched, 2 already on disk"
            ),
            "{}",
            s.line()
        );
        assert_eq!(s.to_json()["mib_per_s"], 1.0);
        assert_eq!(s.to_json()["bytes_fetched"], 2 * mib);
        // Everything on disk: nothing fetched, no rate.
        let s = summary(4 * mib, &[], 4, 0);
        assert!(
            s.line()
                .contains("in 2.50 s, nothing fetched, 0 pieces fetched, 4 already on disk"),
            "{}",
            s.line()
        );
        assert_eq!(
            summary(mib, &[mib], 0, 1).peer_lines(),
            vec!["  from 127.0.0.1:7000: 1048576 bytes (1.0 MiB)"]
        );
    }
}
