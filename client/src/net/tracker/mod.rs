//! All tracker traffic, in one home. [`Trackers`] is the part a session
//! holds: the tracker's address, the protocol choice for it (`probe`,
//! probed once and kept here rather than per process), the JSON
//! REGISTER/HEARTBEAT thread (`register`, started with the session; it
//! also sends `STATS` built by `stats` while the tracker asks, and
//! publishes the `.torrent` of each seeded file on the tracker's web page
//! through `publish`), and the
//! BEP 15 announcer (`announcer`, started when a torrent's tracker turns out
//! to speak only BEP 15). A torrent reaches it through the
//! `Sender<TrackerMsg>` of its [`Route`]; the session through the methods
//! below (register now, look a name up, search, shut down). Under them, the
//! two clients: `json` (our JSON datagrams) and `bep15` (BEP 15). Before
//! any of it, [`pick_tracker`] chooses the tracker, asking the LAN
//! (`discover`) when nothing names one.

pub mod announcer;
pub mod bep15;
pub mod board;
pub mod discover;
pub mod endpoint;
#[cfg(test)]
mod fake;
pub mod http;
pub mod json;
pub mod probe;
pub mod publish;
pub mod register;
pub mod stats;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::Sender;
use log::warn;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::ErrorCode;

use crate::core::msg::{BoxError, Tracked, TrackerMsg};
use crate::core::tracker_list::TrackerList;
use crate::net::shared::TorrentHandle;
use crate::net::tracker::announcer::AnnouncerConfig;
use crate::net::tracker::bep15::Schedule;
use crate::net::tracker::board::{Board, TrackerState};
use crate::net::tracker::endpoint::Endpoint;
use crate::net::tracker::json::TrackerClient;
use crate::net::tracker::probe::ProtocolChoice;
use crate::net::tracker::publish::Kept;

pub use json::{FileSummary, PeerEntry, PeersReply, TrackerError};

/// What the tracker knows under one exact name.
#[derive(Debug, Clone)]
pub enum NameMatch {
    /// One swarm has that name: its peers, as a REQUEST by name answered.
    One(PeersReply),
    /// Several swarms share the name (a file re-shared after it changed,
    /// two people's `notes.pdf`): the user must choose. Sorted by info hash.
    Several(Vec<FileSummary>),
}
pub use probe::{effective_protocol, Protocol, TrackerProtocol};

/// A BEP 15 announce may take 45 s before giving up (this much per
/// tracker tried, up to four).
const REGISTER_WAIT: Duration = Duration::from_secs(50);
/// Each tracker thread gets this long to say goodbye (EXIT, `stopped`).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Why the tracker home could not do what the session asked.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "tracker {tracker} speaks only {protocol}, which has no file names, so {what} \
         needs a minitorrent tracker; download from a .torrent, a magnet link or an info \
         hash instead"
    )]
    NoNames {
        tracker: String,
        protocol: &'static str,
        what: &'static str,
    },
    #[error(
        "the tracker at {tracker} knows no file called {name:?}; is its seeder running? \
         `minitorrent search PART` lists the files whose name contains PART \
         (`minitorrent search` lists them all)"
    )]
    NoSuchName { name: String, tracker: SocketAddr },
    #[error(
        "the tracker lists more files like {0:?} than one reply holds, so it cannot tell \
         whether one file has that name; download it by its info hash \
         (`minitorrent search` shows them)"
    )]
    TooManyToTell(String),
    #[error(transparent)]
    Json(#[from] TrackerError),
    /// A REGISTER (or BEP 15 announce) the tracker thread reported failed.
    #[error(transparent)]
    Refused(BoxError),
    #[error("tracker thread did not answer")]
    NoAnswer,
    #[error("starting the {0} thread")]
    Thread(&'static str, #[source] io::Error),
}

/// What the tracker home needs to know about the session.
#[derive(Debug, Clone)]
pub struct HomeConfig {
    /// The tracker named first, as the JSON protocol and the protocol
    /// probe reach it (for an HTTP tracker, its host and port).
    pub tracker: SocketAddr,
    /// Every tracker in BEP 12 tiers, the one named first in the first
    /// tier; empty for `tracker` alone. The JSON thread fails over among
    /// the `udp://` ones (`tracker` first); the announcer among them all.
    pub tiers: Vec<Vec<Endpoint>>,
    pub protocol: TrackerProtocol,
    pub peer_id: [u8; 20],
    /// Where the peer listens: its port is announced, and JSON datagrams
    /// leave from its address.
    pub listen: SocketAddr,
    pub max_peers: usize,
}

/// How one torrent reaches the tracker home.
pub struct Route {
    /// Takes the torrent's `Update`s and `Lookup`s.
    pub updates: Sender<TrackerMsg>,
    /// Whether the torrent should send `Lookup`s (a BEP 15 announcer
    /// delivers peers on its own schedule).
    pub lookups: bool,
}

/// The session's torrents, as the announcer reads them.
type Table = Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>;

/// The tracker home of one session: its trackers, the protocol choice, and
/// the threads that talk to them.
pub struct Trackers {
    choice: ProtocolChoice,
    cfg: HomeConfig,
    /// The peer id as the JSON protocol writes it.
    id: String,
    swarms: Table,
    json: Sender<TrackerMsg>,
    /// The BEP 15 announcer, started when the tracker turns out to need it.
    bep15: Mutex<Option<Sender<TrackerMsg>>>,
    /// The `.torrent`s of the session's files, for the tracker's web page.
    kept: Kept,
    /// The JSON trackers in BEP 12 order and the one in use (the JSON
    /// thread moves it when one does not answer).
    list: Arc<Mutex<TrackerList>>,
    /// Every tracker, for the announcer.
    announce_list: TrackerList<Endpoint>,
    /// An `http://` tracker among them: every torrent goes to the
    /// announcer, which speaks to each tracker in its own protocol.
    announcer_only: bool,
    /// Which tracker is in use and how each one did.
    board: Board,
}

/// Most trackers taken from a torrent (the rest are left out, with a
/// warning).
pub use board::MAX_TRACKERS;

impl Trackers {
    /// Starts the JSON tracker thread; `swarms` is the session's table of
    /// torrents, which the BEP 15 announcer reads if it is ever started.
    pub fn start(cfg: HomeConfig, swarms: Table) -> Result<Trackers, HomeError> {
        let (json, rx) = crossbeam_channel::unbounded();
        let id = crate::core::shared::peer_id_str(&cfg.peer_id);
        let (ip, port) = (cfg.listen.ip(), cfg.listen.port());
        let mut rng = fastrand::Rng::new();
        let everyone = if cfg.tiers.is_empty() {
            vec![vec![Endpoint::udp(cfg.tracker)]]
        } else {
            cfg.tiers.clone()
        };
        let announcer_only = everyone
            .iter()
            .flatten()
            .any(|e| matches!(e, Endpoint::Http(_)));
        // The JSON thread's: the first tier is the tracker named first,
        // alone: tried first; then the other udp:// ones.
        let mut tiers = vec![vec![cfg.tracker]];
        tiers.extend(everyone.iter().map(|tier| {
            tier.iter()
                .filter_map(|e| match e {
                    Endpoint::Udp(a, _) if *a != cfg.tracker => Some(*a),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }));
        let l =
            TrackerList::new(tiers, &mut rng).unwrap_or_else(|| TrackerList::single(cfg.tracker));
        let announce_list = TrackerList::new(everyone, &mut rng)
            .unwrap_or_else(|| TrackerList::single(Endpoint::udp(cfg.tracker)));
        let board = Board::default();
        if announcer_only {
            board.set(
                announce_list
                    .all()
                    .iter()
                    .map(|e| (e.to_string(), e.protocol())),
            );
        } else {
            board.set(l.all().into_iter().map(|a| (board::json_url(a), "json")));
        }
        let list = Arc::new(Mutex::new(l));
        let thread_board = board.clone();
        let thread_list = list.clone();
        let thread_id = id.clone();
        let torrents = swarms.clone();
        let kept = Kept::default();
        let thread_kept = kept.clone();
        std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || {
                register::run(
                    thread_list,
                    thread_board,
                    ip,
                    thread_id,
                    port,
                    rx,
                    torrents,
                    thread_kept,
                )
            })
            .map_err(|e| HomeError::Thread("tracker", e))?;
        Ok(Trackers {
            choice: ProtocolChoice::new(cfg.tracker, cfg.protocol, cfg.listen.ip()),
            cfg,
            id,
            swarms,
            json,
            bep15: Mutex::new(None),
            kept,
            list,
            announce_list,
            announcer_only,
            board,
        })
    }

    /// Every tracker: which is in use, and the last error of each.
    pub fn states(&self) -> Vec<TrackerState> {
        self.board.snapshot()
    }

    pub fn board(&self) -> Board {
        self.board.clone()
    }

    /// The tracker to write in the `.torrent`s and magnet links the session
    /// makes: the JSON tracker in use, or (for the announcer) the first
    /// tracker as written, passkey and all.
    pub fn announce_url(&self) -> String {
        if !self.announcer_only {
            return board::json_url(self.addr());
        }
        match self.cfg.tiers.first().and_then(|t| t.first()) {
            Some(e) => e.url(),
            None => board::json_url(self.cfg.tracker),
        }
    }

    /// The tracker in use as written (`udp://…`, `http://…`).
    pub fn in_use(&self) -> String {
        self.board
            .in_use()
            .unwrap_or_else(|| board::json_url(self.addr()))
    }

    /// Keeps the `.torrent` of a file the session seeds or downloads, to
    /// publish it on the tracker's web page when the file is seeded (a file
    /// without one gets a `.torrent` made from its info dictionary).
    pub fn keep_torrent(&self, info_hash: InfoHash, torrent: Vec<u8>) {
        self.kept.keep(info_hash, torrent);
    }

    /// The tracker in use: the first one, or the one the JSON thread moved
    /// to when that did not answer.
    pub fn addr(&self) -> SocketAddr {
        self.list
            .lock()
            .map(|l| l.current())
            .unwrap_or(self.cfg.tracker)
    }

    /// Every JSON tracker, in the order they are tried.
    pub fn all(&self) -> Vec<SocketAddr> {
        self.list
            .lock()
            .map(|l| l.all())
            .unwrap_or_else(|_| vec![self.cfg.tracker])
    }

    /// The protocol spoken with the tracker in use: `json`, `bep15` or
    /// `http`.
    pub fn protocol_name(&self) -> &'static str {
        if let Some(t) = self.board.snapshot().into_iter().find(|t| t.in_use) {
            if t.protocol != "json" {
                return t.protocol;
            }
        }
        if self
            .bep15
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return "bep15";
        }
        match self.choice.asked() {
            TrackerProtocol::Bep15 => "bep15",
            TrackerProtocol::Json => "json",
            TrackerProtocol::Auto => "json",
        }
    }

    /// The way in for a new torrent. May probe the tracker first (seconds,
    /// once), so call it before taking any lock.
    pub fn route(&self, info_hash: InfoHash) -> Result<Route, HomeError> {
        if self.announcer_only {
            return Ok(Route {
                updates: self.announcer()?,
                lookups: false,
            });
        }
        Ok(match self.choice.decide(info_hash, &self.id) {
            // The first tracker is silent but others are named: the
            // announcer tries them all (BEP 15 answers from ours too).
            Protocol::Json if !self.choice.known() && self.announce_list.len() > 1 => Route {
                updates: self.announcer()?,
                lookups: false,
            },
            Protocol::Json => Route {
                updates: self.json.clone(),
                lookups: true,
            },
            Protocol::Bep15 => Route {
                updates: self.announcer()?,
                lookups: false,
            },
        })
    }

    /// The sender to the BEP 15 announcer thread, started on first use.
    fn announcer(&self) -> Result<Sender<TrackerMsg>, HomeError> {
        let mut slot = self.bep15.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = AnnouncerConfig {
            list: self.announce_list.clone(),
            board: self.board.clone(),
            peer_id: self.cfg.peer_id,
            port: self.cfg.listen.port(),
            local: self.cfg.listen.ip(),
            max_peers: self.cfg.max_peers,
            schedule: Schedule::BEP15,
        };
        let swarms = self.swarms.clone();
        std::thread::Builder::new()
            .name("bep15 announcer".into())
            .spawn(move || announcer::run_announcer(cfg, swarms, rx))
            .map_err(|e| HomeError::Thread("announcer", e))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Registers (or announces) `tracked` and waits for the tracker's answer.
    pub fn register_now(&self, tracked: Tracked) -> Result<(), HomeError> {
        // Once the announcer runs, the tracker is known to speak BEP 15
        // (or HTTP, which it always does when named first).
        let running = self
            .bep15
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let updates = match running {
            Some(tx) => tx,
            None if self.announcer_only => self.announcer()?,
            None => self.json.clone(),
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = updates.send(TrackerMsg::Update(tracked, Some(tx)));
        // Failing over costs up to one wait per tracker.
        let trackers = self.announce_list.len().clamp(1, 4) as u32;
        match rx.recv_timeout(REGISTER_WAIT * trackers) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HomeError::Refused(e)),
            Err(_) => Err(HomeError::NoAnswer),
        }
    }

    /// The torrent left the session: stop being listed for it.
    pub fn forget(&self, info_hash: InfoHash) {
        let _ = self.json.send(TrackerMsg::Forget(info_hash));
    }

    /// Asks the tracker which files are called exactly `name`: a REQUEST
    /// by name (which picks one swarm), then a SEARCH for the others.
    pub fn find_name(&self, name: &str) -> Result<NameMatch, HomeError> {
        const WHAT: &str = "a download by name";
        self.names(WHAT)?;
        let mut c = TrackerClient::from_ip(self.addr(), self.cfg.listen.ip())?;
        let reply = c
            .request_peers(None, Some(name), Some(&self.id))
            .map_err(|e| match e.code() {
                Some(ErrorCode::NotFound) => HomeError::NoSuchName {
                    name: name.to_string(),
                    tracker: self.addr(),
                },
                _ => explain(&self.choice, e, WHAT),
            })?;
        let same = c
            .search_exact(name)
            .map_err(|e| explain(&self.choice, e, WHAT))?;
        name_match(reply, same)
    }

    /// The peers of one swarm as the tracker lists them (ourselves
    /// included), with whether each is complete.
    pub fn peers_of(&self, info_hash: InfoHash) -> Result<PeersReply, HomeError> {
        const WHAT: &str = "listing a file's peers";
        self.names(WHAT)?;
        let mut c = TrackerClient::from_ip(self.addr(), self.cfg.listen.ip())?;
        c.request_peers(Some(&info_hash), None, None)
            .map_err(|e| explain(&self.choice, e, WHAT))
    }

    pub fn search(&self, query: &str) -> Result<Vec<FileSummary>, HomeError> {
        self.names("SEARCH")?;
        search_with(&self.choice, query)
    }

    /// Names need the JSON protocol: an error for a session whose tracker
    /// speaks BEP 15 or HTTP.
    fn names(&self, what: &'static str) -> Result<(), HomeError> {
        if self.announcer_only {
            return Err(HomeError::NoNames {
                tracker: self.in_use(),
                protocol: "the BitTorrent tracker protocols (HTTP, BEP 15)",
                what,
            });
        }
        if self.choice.asked() == TrackerProtocol::Bep15 {
            return Err(no_names(&self.choice, what));
        }
        Ok(())
    }

    /// EXIT to a JSON tracker, `stopped` to a BEP 15 one, each within a
    /// bound.
    pub fn shutdown(&self) {
        let bep15 = self
            .bep15
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        for thread in std::iter::once(self.json.clone()).chain(bep15) {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if thread.send(TrackerMsg::Shutdown(tx)).is_ok() {
                let _ = rx.recv_timeout(SHUTDOWN_WAIT);
            }
        }
    }
}

/// One swarm, or the choice among several: the swarm a REQUEST by name
/// picked and the swarms a SEARCH found with exactly that name.
fn name_match(reply: PeersReply, same: json::ExactMatches) -> Result<NameMatch, HomeError> {
    let mut all = same.files;
    if !all.iter().any(|f| f.info_hash == reply.info_hash) {
        // Registered between the two requests, or a SEARCH cut short.
        all.push(FileSummary {
            info_hash: reply.info_hash,
            name: reply.name.clone(),
            size: reply.size,
            seeders: reply.seeders,
            leechers: reply.leechers,
        });
    }
    if all.len() > 1 {
        all.sort_by_key(|f| f.info_hash);
        return Ok(NameMatch::Several(all));
    }
    if !same.complete {
        return Err(HomeError::TooManyToTell(reply.name));
    }
    Ok(NameMatch::One(reply))
}

/// SEARCH at `tracker` without a session; a BEP 15 tracker gets a clear
/// "no names" error.
pub fn search(
    tracker: SocketAddr,
    protocol: TrackerProtocol,
    bind: std::net::IpAddr,
    query: &str,
) -> Result<Vec<FileSummary>, HomeError> {
    search_with(&ProtocolChoice::new(tracker, protocol, bind), query)
}

fn search_with(choice: &ProtocolChoice, query: &str) -> Result<Vec<FileSummary>, HomeError> {
    const WHAT: &str = "SEARCH";
    if choice.asked() == TrackerProtocol::Bep15 {
        return Err(no_names(choice, WHAT));
    }
    let mut c = TrackerClient::from_ip(choice.addr(), choice.local())?;
    c.search(query).map_err(|e| explain(choice, e, WHAT))
}

/// Names exist only in the JSON protocol.
fn no_names(choice: &ProtocolChoice, what: &'static str) -> HomeError {
    HomeError::NoNames {
        tracker: choice.addr().to_string(),
        protocol: "the BitTorrent UDP tracker protocol (BEP 15)",
        what,
    }
}

/// A JSON request that got no answer may have gone to a BEP 15 tracker: say
/// so rather than "unreachable".
fn explain(choice: &ProtocolChoice, e: TrackerError, what: &'static str) -> HomeError {
    if matches!(e, TrackerError::Unreachable { .. }) && choice.answers_bep15() {
        return no_names(choice, what);
    }
    e.into()
}

/// The tracker to use: `--tracker`, else the torrent's announce, else one
/// found on the LAN (unless discovery is off, see [`discover::configure`]),
/// else the default. Says on stderr which tracker discovery found, or that
/// none answered.
pub fn pick_tracker(
    flag: Option<&str>,
    announce: Option<&str>,
) -> Result<SocketAddr, TrackerError> {
    pick_with(flag, announce, discover::setting(), |port| {
        let result = discover::discover(port, discover::DISCOVER_WAIT);
        let (found, msg) = discover::outcome(&result, port, json::DEFAULT_TRACKER);
        // On stderr, whether found or not: stdout carries what scripts parse
        // (`search`, `create`), and a closed stderr is no reason to stop.
        let _ = writeln!(std::io::stderr(), "{msg}");
        found
    })
}

/// [`pick_tracker`] with the discovery setting and the discovery itself
/// passed in.
fn pick_with(
    flag: Option<&str>,
    announce: Option<&str>,
    discovery: Option<u16>,
    find: impl FnOnce(u16) -> Option<SocketAddr>,
) -> Result<SocketAddr, TrackerError> {
    if let Some(t) = flag {
        return json::resolve(t);
    }
    if let Some(a) = announce {
        match json::resolve(a) {
            Ok(addr) => return Ok(addr),
            Err(e) => warn!("ignoring the torrent's announce: {e}"),
        }
    }
    if let Some(found) = discovery.and_then(find) {
        return Ok(found);
    }
    json::resolve(json::DEFAULT_TRACKER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::msg::{Event, Input};
    use crate::net::tracker::fake::{fake, hash};
    use std::net::UdpSocket;
    use std::sync::{Arc, Mutex};

    fn home(tracker: SocketAddr, protocol: TrackerProtocol) -> Trackers {
        let cfg = HomeConfig {
            tracker,
            tiers: Vec::new(),
            protocol,
            peer_id: *b"-MN0100-abcdefghijkl",
            listen: "127.0.0.1:7009".parse().unwrap(),
            max_peers: 8,
        };
        Trackers::start(cfg, Table::default()).unwrap()
    }

    fn nobody() -> SocketAddr {
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        dead.local_addr().unwrap()
    }

    #[test]
    fn each_protocol_has_its_route() {
        let t = home(nobody(), TrackerProtocol::Json);
        let r = t.route(hash(1)).unwrap();
        assert!(r.lookups);
        assert!(r.updates.same_channel(&t.json));
        t.shutdown();

        // One announcer for every BEP 15 torrent, asked for no lookups.
        let t = home(nobody(), TrackerProtocol::Bep15);
        let a = t.route(hash(1)).unwrap();
        let b = t.route(hash(2)).unwrap();
        assert!(!a.lookups && !b.lookups);
        assert!(a.updates.same_channel(&b.updates));
        assert!(!a.updates.same_channel(&t.json));
        t.shutdown();
        assert!(t.bep15.lock().unwrap().is_none());
    }

    #[test]
    fn a_forgotten_torrent_leaves_the_trackers_lists() {
        // A JSON tracker that says OK to everything and records what it got.
        let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let log = seen.clone();
        let (addr, _h, stop) = fake(move |b| {
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            let r =
                serde_json::json!({"type": "OK", "tid": v["tid"], "interval": 10, "timeout": 30});
            log.lock().unwrap().push(v);
            Some(r.to_string().into_bytes())
        });
        let t = home(addr, TrackerProtocol::Json);
        let tracked = |b: u8| Tracked {
            info_hash: hash(b),
            name: format!("f{b}"),
            size: 100,
            complete: true,
        };
        t.register_now(tracked(1)).unwrap();
        t.register_now(tracked(2)).unwrap();
        t.forget(hash(9)); // never registered: nothing is sent
        t.forget(hash(1));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let kinds = || -> Vec<String> {
            seen.lock()
                .unwrap()
                .iter()
                .map(|v| v["type"].as_str().unwrap_or("").to_string())
                .collect()
        };
        while kinds().len() < 4 {
            assert!(std::time::Instant::now() < deadline, "{:?}", kinds());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(kinds(), ["REGISTER", "REGISTER", "EXIT", "REGISTER"]);
        let last = seen.lock().unwrap()[3].clone();
        let names: Vec<&str> = last["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["f2"],
            "only the file still shared is registered again"
        );
        t.shutdown();
        *stop.lock().unwrap() = true;
    }

    /// A JSON tracker that answers every REQUEST with `ERROR code`.
    fn refusing(code: &'static str) -> impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static {
        move |b| {
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            let r = serde_json::json!({"type": "ERROR", "tid": v["tid"],
                "code": code, "message": "no"});
            Some(r.to_string().into_bytes())
        }
    }

    fn lookup(t: &Trackers) -> Result<Vec<PeerEntry>, BoxError> {
        let r = t.route(hash(3)).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        r.updates
            .send(TrackerMsg::Lookup {
                info_hash: hash(3),
                reply: tx,
            })
            .unwrap();
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Input::Event(Event::Lookup(r)) => r,
            Input::Event(Event::Unlisted) => Ok(Vec::new()),
            _ => panic!("not a lookup answer"),
        }
    }

    #[test]
    fn an_unknown_torrent_has_no_peers_yet_other_refusals_are_errors() {
        let (addr, h, stop) = fake(refusing("not_found"));
        let t = home(addr, TrackerProtocol::Json);
        assert!(lookup(&t).unwrap().is_empty());
        t.shutdown();
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        let (addr, h, stop) = fake(refusing("bad_request"));
        let t = home(addr, TrackerProtocol::Json);
        let e = lookup(&t).unwrap_err();
        // The error itself travels, not its text.
        let e = e.downcast_ref::<TrackerError>().unwrap();
        assert_eq!(e.code(), Some(&ErrorCode::BadRequest));
        t.shutdown();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    #[test]
    fn names_need_a_json_tracker() {
        let e = search(nobody(), TrackerProtocol::Bep15, [0, 0, 0, 0].into(), "x").unwrap_err();
        assert!(
            matches!(e, HomeError::NoNames { what: "SEARCH", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("no file names"), "{e}");
        let t = home(nobody(), TrackerProtocol::Bep15);
        let e = t.find_name("x").unwrap_err();
        assert!(
            matches!(
                e,
                HomeError::NoNames {
                    what: "a download by name",
                    ..
                }
            ),
            "{e}"
        );
        t.shutdown();

        let (addr, h, stop) = fake(refusing("not_found"));
        let t = home(addr, TrackerProtocol::Json);
        let e = t.find_name("x.txt").unwrap_err();
        assert!(
            matches!(&e, HomeError::NoSuchName { name, .. } if name == "x.txt"),
            "{e}"
        );
        assert!(e.to_string().contains("minitorrent search"), "{e}");
        t.shutdown();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    fn summary(b: u8, name: &str) -> FileSummary {
        FileSummary {
            info_hash: hash(b),
            name: name.into(),
            size: u64::from(b) * 100,
            seeders: 1,
            leechers: 0,
        }
    }

    fn picked(b: u8, name: &str) -> PeersReply {
        PeersReply {
            info_hash: hash(b),
            name: name.into(),
            size: u64::from(b) * 100,
            seeders: 1,
            leechers: 0,
            peers: Vec::new(),
        }
    }

    fn exact(files: Vec<FileSummary>, complete: bool) -> json::ExactMatches {
        json::ExactMatches { files, complete }
    }

    #[test]
    fn a_name_is_one_swarm_only_when_no_other_has_it() {
        // The swarm REQUEST picked is the only one: downloaded as today.
        let one = name_match(picked(2, "n.pdf"), exact(vec![summary(2, "n.pdf")], true));
        assert!(matches!(one, Ok(NameMatch::One(r)) if r.info_hash == hash(2)));

        // Two swarms share the name: both listed, in info hash order.
        let two = name_match(
            picked(7, "n.pdf"),
            exact(vec![summary(7, "n.pdf"), summary(3, "n.pdf")], true),
        );
        match two {
            Ok(NameMatch::Several(v)) => {
                let hashes: Vec<InfoHash> = v.iter().map(|f| f.info_hash).collect();
                assert_eq!(hashes, [hash(3), hash(7)]);
            }
            other => panic!("{other:?}"),
        }

        // A swarm that appeared after the SEARCH still counts.
        let late = name_match(picked(5, "n.pdf"), exact(vec![summary(3, "n.pdf")], true));
        assert!(matches!(late, Ok(NameMatch::Several(v)) if v.len() == 2));

        // A SEARCH cut short cannot prove the name unique: no guess.
        let cut = name_match(picked(2, "n.pdf"), exact(vec![summary(2, "n.pdf")], false));
        assert!(matches!(cut, Err(HomeError::TooManyToTell(_))), "{cut:?}");
        // ...but two swarms found are two, cut or not.
        let cut2 = name_match(picked(2, "n.pdf"), exact(vec![summary(4, "n.pdf")], false));
        assert!(matches!(cut2, Ok(NameMatch::Several(_))));
    }

    #[test]
    fn find_name_asks_by_name_then_searches_for_the_others() {
        // A tracker with two swarms called "n.pdf" and one called "N.PDF".
        let (addr, h, stop) = fake(|b| {
            let v: serde_json::Value = serde_json::from_slice(b).ok()?;
            let file = |byte: u8, name: &str| {
                serde_json::json!({"info_hash": hash(byte).to_hex(), "name": name,
                    "size": 10, "seeders": 1, "leechers": 0})
            };
            let r = match v["type"].as_str()? {
                "REQUEST" => serde_json::json!({"type": "PEERS", "tid": v["tid"],
                    "info_hash": hash(1).to_hex(), "name": "n.pdf", "size": 10,
                    "seeders": 1, "leechers": 0, "peers": []}),
                "SEARCH" => serde_json::json!({"type": "FILES", "tid": v["tid"],
                    "files": [file(9, "N.PDF"), file(1, "n.pdf"), file(2, "n.pdf")]}),
                _ => return None,
            };
            Some(r.to_string().into_bytes())
        });
        let t = home(addr, TrackerProtocol::Json);
        match t.find_name("n.pdf").unwrap() {
            NameMatch::Several(v) => {
                assert_eq!(v.len(), 2, "{v:?}");
                assert!(v.iter().all(|f| f.name == "n.pdf"));
            }
            other => panic!("{other:?}"),
        }
        t.shutdown();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    #[test]
    fn the_flag_wins_then_the_announce_then_the_lan_then_the_default() {
        let flag = Some("127.0.0.1:7000");
        let announce = Some("udp://127.0.0.1:7001/announce");
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        let lan = |port: u16| {
            assert_eq!(port, 7500, "discovery on the configured port");
            Some(at("10.0.0.1:6969"))
        };
        let never = |_: u16| -> Option<SocketAddr> { panic!("discovery when not needed") };
        let nobody = |_: u16| None;
        assert_eq!(
            pick_with(flag, announce, Some(7500), never).unwrap(),
            at("127.0.0.1:7000")
        );
        assert_eq!(
            pick_with(None, announce, Some(7500), never).unwrap(),
            at("127.0.0.1:7001")
        );
        // No usable announce: the LAN, else the default.
        let http = Some("http://127.0.0.1:1/announce");
        assert_eq!(
            pick_with(None, http, Some(7500), lan).unwrap(),
            at("10.0.0.1:6969")
        );
        assert_eq!(
            pick_with(None, None, Some(7500), lan).unwrap(),
            at("10.0.0.1:6969")
        );
        assert_eq!(
            pick_with(None, http, Some(7500), nobody).unwrap(),
            at(json::DEFAULT_TRACKER)
        );
        // --no-discover: no discovery at all.
        assert_eq!(
            pick_with(None, None, None, never).unwrap(),
            at(json::DEFAULT_TRACKER)
        );
        assert!(matches!(
            pick_with(Some("http://x:1"), announce, Some(7500), never),
            Err(TrackerError::BadAddress {
                why: json::AddressError::HttpHere,
                ..
            })
        ));
    }
}
