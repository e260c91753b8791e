//! All tracker traffic, in one home. [`Trackers`] is the part a session
//! holds: the tracker's address, the protocol choice for it (`probe`,
//! probed once and kept here rather than per process), the JSON
//! REGISTER/HEARTBEAT thread (`register`, started with the session), and the
//! BEP 15 announcer (`announcer`, started when a torrent's tracker turns out
//! to speak only BEP 15). A torrent reaches it through the
//! `Sender<TrackerMsg>` of its [`Route`]; the session through the methods
//! below (register now, look a name up, search, shut down). Under them, the
//! two clients: `json` (our JSON datagrams) and `bep15` (BEP 15).

pub mod announcer;
pub mod bep15;
#[cfg(test)]
mod fake;
pub mod json;
pub mod probe;
pub mod register;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::Sender;
use log::warn;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::ErrorCode;

use crate::core::msg::{BoxError, Tracked, TrackerMsg};
use crate::net::shared::TorrentHandle;
use crate::net::tracker::announcer::AnnouncerConfig;
use crate::net::tracker::bep15::Schedule;
use crate::net::tracker::json::TrackerClient;
use crate::net::tracker::probe::ProtocolChoice;

pub use json::{FileSummary, PeerEntry, PeersReply, TrackerError};
pub use probe::{effective_protocol, Protocol, TrackerProtocol};

/// A BEP 15 announce may take 45 s before giving up.
const REGISTER_WAIT: Duration = Duration::from_secs(50);
/// Each tracker thread gets this long to say goodbye (EXIT, `stopped`).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Why the tracker home could not do what the session asked.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "tracker {addr} speaks only the BitTorrent UDP tracker protocol (BEP 15), which \
         has no file names, so {what} needs a minitorrent tracker; download from a \
         .torrent, a magnet link or an info hash instead"
    )]
    NoNames {
        addr: SocketAddr,
        what: &'static str,
    },
    #[error("the tracker knows no file called {0:?}")]
    NoSuchName(String),
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
    pub tracker: SocketAddr,
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

/// The tracker home of one session: one tracker, its protocol choice, and
/// the threads that talk to it.
pub struct Trackers {
    choice: ProtocolChoice,
    cfg: HomeConfig,
    /// The peer id as the JSON protocol writes it.
    id: String,
    swarms: Table,
    json: Sender<TrackerMsg>,
    /// The BEP 15 announcer, started when the tracker turns out to need it.
    bep15: Mutex<Option<Sender<TrackerMsg>>>,
}

impl Trackers {
    /// Starts the JSON tracker thread; `swarms` is the session's table of
    /// torrents, which the BEP 15 announcer reads if it is ever started.
    pub fn start(cfg: HomeConfig, swarms: Table) -> Result<Trackers, HomeError> {
        let (json, rx) = crossbeam_channel::unbounded();
        let id = crate::core::shared::peer_id_str(&cfg.peer_id);
        let (tracker, ip, port) = (cfg.tracker, cfg.listen.ip(), cfg.listen.port());
        let thread_id = id.clone();
        std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || register::run(tracker, ip, thread_id, port, rx))
            .map_err(|e| HomeError::Thread("tracker", e))?;
        Ok(Trackers {
            choice: ProtocolChoice::new(cfg.tracker, cfg.protocol),
            cfg,
            id,
            swarms,
            json,
            bep15: Mutex::new(None),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.cfg.tracker
    }

    /// The way in for a new torrent. May probe the tracker first (seconds,
    /// once), so call it before taking any lock.
    pub fn route(&self, info_hash: InfoHash) -> Result<Route, HomeError> {
        Ok(match self.choice.decide(info_hash, &self.id) {
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
            tracker: self.cfg.tracker,
            peer_id: self.cfg.peer_id,
            port: self.cfg.listen.port(),
            max_peers: self.cfg.max_peers,
            schedule: Schedule::BEP15,
        };
        let swarms = self.swarms.clone();
        std::thread::Builder::new()
            .name("bep15 announcer".into())
            .spawn(move || announcer::run_announcer(cfg, swarms, rx))
            .map_err(|e| HomeError::Thread("BEP 15 announcer", e))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Registers (or announces) `tracked` and waits for the tracker's answer.
    pub fn register_now(&self, tracked: Tracked) -> Result<(), HomeError> {
        // Once the announcer runs, the tracker is known to speak BEP 15.
        let updates = self
            .bep15
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| self.json.clone());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = updates.send(TrackerMsg::Update(tracked, Some(tx)));
        match rx.recv_timeout(REGISTER_WAIT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HomeError::Refused(e)),
            Err(_) => Err(HomeError::NoAnswer),
        }
    }

    /// The torrent left the session: stop being listed for it.
    pub fn forget(&self, info_hash: InfoHash) {
        let _ = self.json.send(TrackerMsg::Forget(info_hash));
    }

    /// Asks the tracker which file is called `name` and who has it.
    pub fn lookup_name(&self, name: &str) -> Result<PeersReply, HomeError> {
        const WHAT: &str = "a download by name";
        if self.choice.asked() == TrackerProtocol::Bep15 {
            return Err(no_names(&self.choice, WHAT));
        }
        let mut c = TrackerClient::new(self.cfg.tracker)?;
        c.request_peers(None, Some(name), Some(&self.id))
            .map_err(|e| match e.code() {
                Some(ErrorCode::NotFound) => HomeError::NoSuchName(name.to_string()),
                _ => explain(&self.choice, e, WHAT),
            })
    }

    pub fn search(&self, query: &str) -> Result<Vec<FileSummary>, HomeError> {
        search_with(&self.choice, query)
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

/// SEARCH at `tracker` without a session; a BEP 15 tracker gets a clear
/// "no names" error.
pub fn search(
    tracker: SocketAddr,
    protocol: TrackerProtocol,
    query: &str,
) -> Result<Vec<FileSummary>, HomeError> {
    search_with(&ProtocolChoice::new(tracker, protocol), query)
}

fn search_with(choice: &ProtocolChoice, query: &str) -> Result<Vec<FileSummary>, HomeError> {
    const WHAT: &str = "SEARCH";
    if choice.asked() == TrackerProtocol::Bep15 {
        return Err(no_names(choice, WHAT));
    }
    let mut c = TrackerClient::new(choice.addr())?;
    c.search(query).map_err(|e| explain(choice, e, WHAT))
}

/// Names exist only in the JSON protocol.
fn no_names(choice: &ProtocolChoice, what: &'static str) -> HomeError {
    HomeError::NoNames {
        addr: choice.addr(),
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

/// The tracker to use: `--tracker`, else the torrent's announce, else the
/// default.
pub fn pick_tracker(
    flag: Option<&str>,
    announce: Option<&str>,
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
            protocol,
            peer_id: *b"-MT0100-abcdefghijkl",
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
        let e = search(nobody(), TrackerProtocol::Bep15, "x").unwrap_err();
        assert!(
            matches!(e, HomeError::NoNames { what: "SEARCH", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("no file names"), "{e}");
        let t = home(nobody(), TrackerProtocol::Bep15);
        let e = t.lookup_name("x").unwrap_err();
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
        let e = t.lookup_name("x.txt").unwrap_err();
        assert!(
            matches!(&e, HomeError::NoSuchName(n) if n == "x.txt"),
            "{e}"
        );
        t.shutdown();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    #[test]
    fn the_flag_wins_then_the_announce_then_the_default() {
        let flag = Some("127.0.0.1:7000");
        let announce = Some("udp://127.0.0.1:7001/announce");
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(pick_tracker(flag, announce).unwrap(), at("127.0.0.1:7000"));
        assert_eq!(pick_tracker(None, announce).unwrap(), at("127.0.0.1:7001"));
        assert_eq!(
            pick_tracker(None, Some("http://127.0.0.1:1/announce")).unwrap(),
            at(json::DEFAULT_TRACKER)
        );
        assert!(matches!(
            pick_tracker(Some("http://x:1"), announce),
            Err(TrackerError::BadAddress {
                why: json::AddressError::NotUdp,
                ..
            })
        ));
    }
}
