//! The BEP 15 announcer: the thread that takes the place of the JSON
//! REGISTER/HEARTBEAT thread when a session's tracker speaks only BEP 15.
//! It owns one [`Bep15Client`] and what it last told the tracker about each
//! torrent, decides when each torrent is due for an announce, and hands the
//! peers from each reply to the torrent through [`Swarms`].
//!
//! What it sends and when is written down in `docs/INTEROP.md`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::PeerEntry;
use minitorrent_common::udp_tracker::Event;

use crate::core::msg::{BoxError, Event as TorrentEvent, Phase, Tracked, TrackerMsg};
use crate::core::tracker_list::TrackerList;
use crate::net::shared::TorrentHandle;
use crate::net::tracker::bep15::{AnnounceArgs, AnnounceReply, Bep15Client, Bep15Error, Schedule};
use crate::net::tracker::board::Board;
use crate::net::tracker::endpoint::Endpoint;
use crate::net::tracker::http::{HttpClient, HttpTrackerError, HTTP_TIMEOUT};

/// One torrent as the announcer sees it.
#[derive(Debug, Clone)]
pub struct SwarmView {
    pub info_hash: InfoHash,
    /// Fetching metadata or downloading.
    pub wants_peers: bool,
    pub peers: usize,
    /// `None` while the metadata is unknown.
    pub size: Option<u64>,
    pub bytes_have: u64,
    pub downloaded: u64,
    pub uploaded: u64,
}

/// The announcer's window on the session's torrents.
pub trait Swarms {
    fn views(&self) -> Vec<SwarmView>;
    /// Peers found (or why none could be): goes to the torrent like the
    /// answer to a JSON `REQUEST`.
    fn deliver(&self, info_hash: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>);
}

impl Swarms for Arc<Mutex<HashMap<InfoHash, TorrentHandle>>> {
    fn views(&self) -> Vec<SwarmView> {
        let Ok(t) = self.lock() else {
            return Vec::new();
        };
        t.values()
            .filter_map(|h| {
                let s = h.status.lock().ok()?;
                Some(SwarmView {
                    info_hash: s.info_hash,
                    wants_peers: matches!(
                        s.phase,
                        Phase::Metadata | Phase::Checking { .. } | Phase::Downloading
                    ),
                    peers: s.peers,
                    size: s.size,
                    bytes_have: s.bytes_have,
                    downloaded: s.downloaded,
                    uploaded: s.uploaded,
                })
            })
            .collect()
    }

    fn deliver(&self, info_hash: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>) {
        let shared = self
            .lock()
            .ok()
            .and_then(|t| t.get(info_hash).map(|h| h.shared.clone()));
        if let Some(s) = shared {
            let _ = s.events.send(TorrentEvent::Lookup(r).into());
        }
    }
}

/// Announce more often than the tracker's interval while a download lacks
/// peers, like the JSON client's lookups.
const AGAIN_NO_PEERS: Duration = Duration::from_secs(3);
const AGAIN_FEW_PEERS: Duration = Duration::from_secs(15);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Swarm {
    tracked: Option<Tracked>,
    /// What the last successful announce said: `Some(true)` as a seeder.
    announced: Option<bool>,
    last_try: Option<Instant>,
    interval: Option<Duration>,
    /// The tracker's `min interval`: never sooner than this.
    min_interval: Option<Duration>,
    /// After a refusal, nothing is announced before this (unless someone
    /// waits for an answer).
    backoff_until: Option<Instant>,
    replies: Vec<Sender<Result<(), BoxError>>>,
}

/// Settings of the announcer thread.
pub struct AnnouncerConfig {
    /// The trackers in BEP 12 order: BEP 15 addresses and HTTP URLs.
    pub list: TrackerList<Endpoint>,
    /// Where the tracker in use and each one's last error are shown.
    pub board: Board,
    pub peer_id: [u8; 20],
    pub port: u16,
    /// Where announces leave from (`--bind`): trackers hand out the source
    /// address.
    pub local: IpAddr,
    pub max_peers: usize,
    pub schedule: Schedule,
}

/// Why an announce failed, whatever the protocol.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    Udp(#[from] Bep15Error),
    #[error(transparent)]
    Http(#[from] HttpTrackerError),
}

impl AnnounceError {
    /// The tracker could not be reached or is no tracker: try the next one.
    /// A refusal is about the torrent, not the tracker.
    fn unreachable(&self) -> bool {
        !matches!(
            self,
            AnnounceError::Udp(Bep15Error::Refused { .. })
                | AnnounceError::Http(HttpTrackerError::Refused { .. })
        )
    }
}

/// The client for the tracker in use.
enum Client {
    Udp(Bep15Client),
    Http(HttpClient),
}

impl Client {
    fn open(e: &Endpoint, schedule: Schedule, local: IpAddr) -> Result<Client, AnnounceError> {
        Ok(match e {
            Endpoint::Udp(addr, path) => {
                let mut c = Bep15Client::bound(*addr, local)?;
                c.url_data = path.as_bytes().to_vec();
                c.schedule = schedule;
                Client::Udp(c)
            }
            Endpoint::Http(url) => {
                let mut c = Client::Http(HttpClient::new(url, local));
                c.set_schedule(schedule);
                c
            }
        })
    }

    fn set_schedule(&mut self, schedule: Schedule) {
        match self {
            Client::Udp(c) => c.schedule = schedule,
            Client::Http(c) => c.timeout = schedule.total().min(HTTP_TIMEOUT),
        }
    }

    fn announce(&mut self, a: &AnnounceArgs) -> Result<AnnounceReply, AnnounceError> {
        Ok(match self {
            Client::Udp(c) => c.announce(a)?,
            Client::Http(c) => c.announce(a)?,
        })
    }

    /// Whether `p` is ourselves (some trackers list the announcer too).
    fn is_me(&self, p: SocketAddr, port: u16) -> bool {
        match self {
            Client::Udp(c) => p == SocketAddr::new(c.local_ip(), port),
            // The address an HTTP tracker sees is not known here.
            Client::Http(_) => {
                p.port() == port && (p.ip().is_loopback() || p.ip().is_unspecified())
            }
        }
    }
}

/// The tracker in use, and how the others stand.
struct InUse {
    list: TrackerList<Endpoint>,
    local: IpAddr,
    /// The schedule for a tracker that has answered (BEP 15's 45 s with
    /// one tracker, the probe's 3.75 s with several); one that has not yet
    /// gets [`first_contact`]'s, so a dead tracker costs seconds.
    schedule: Schedule,
    board: Board,
    client: Result<Client, AnnounceError>,
    /// Trackers that failed in a row: a whole round of them is an outage.
    in_a_row: usize,
    /// During an outage, nothing is announced before this.
    pause_until: Option<Instant>,
    /// Said once per outage.
    outage: bool,
    /// On a later tracker: when to see whether the first answers again.
    check_first: Option<Instant>,
}

impl InUse {
    fn current(&self) -> Endpoint {
        self.list.current()
    }

    fn switch_to(&mut self, e: &Endpoint) {
        self.client = Client::open(e, first_contact(self.schedule), self.local);
        self.board.using(&e.to_string());
    }

    /// The tracker in use answered.
    fn answered(&mut self, now: Instant) {
        let cur = self.current();
        if self.outage {
            warn!("tracker {cur} answers again");
            self.outage = false;
        }
        self.in_a_row = 0;
        self.list.answered();
        self.board.answered(&cur.to_string());
        if let Ok(c) = self.client.as_mut() {
            c.set_schedule(self.schedule);
        }
        if !self.list.at_first() && self.check_first.is_none() {
            self.check_first = Some(now + RETRY_UNREACHABLE);
        }
    }

    /// The tracker in use could not be reached (`e`): the next one is taken
    /// (true: announce again now), or after a whole round the outage is
    /// said once and the announcer waits [`RETRY_UNREACHABLE`] (false).
    fn failed(&mut self, e: &AnnounceError, now: Instant) -> bool {
        let cur = self.current();
        self.board.failed(&cur.to_string(), e);
        self.in_a_row += 1;
        let whole_round = self.in_a_row >= self.list.len();
        let next = self.list.failed();
        if whole_round {
            self.in_a_row = 0;
            if !self.outage {
                let others = if self.list.len() > 1 {
                    " (and every other tracker too)"
                } else {
                    ""
                };
                warn!(
                    "{e}{others}; trading goes on with the peers already known, and the \
                     trackers are tried again every {} s",
                    RETRY_UNREACHABLE.as_secs()
                );
                self.outage = true;
            } else {
                debug!("{e}; still no tracker answers");
            }
            self.pause_until = Some(now + RETRY_UNREACHABLE);
        } else if self.outage {
            debug!("{e}; trying the next tracker, {next}");
        } else {
            warn!("{e}; trying the next tracker, {next}");
        }
        // A fresh client even for the same tracker: one that could not be
        // opened (no route at start) is tried anew.
        self.switch_to(&next);
        if self.list.at_first() {
            self.check_first = None;
        }
        !whole_round
    }
}

/// The schedule for a tracker that has not answered yet: the probe's
/// (3.75 s in all), or `configured` when that is shorter.
fn first_contact(configured: Schedule) -> Schedule {
    if configured.total() < Schedule::PROBE.total() {
        configured
    } else {
        Schedule::PROBE
    }
}

/// While no tracker answers, each is tried at most this often (the swarm
/// goes on with the peers it knows meanwhile).
pub const RETRY_UNREACHABLE: Duration = Duration::from_secs(30);

/// The BEP 15 and HTTP counterpart of the session's JSON tracker thread:
/// announces `started` for every torrent it is told about (and for
/// metadata fetches), `completed` when a download finishes, `none` at the
/// tracker's interval (sooner while a download lacks peers), `stopped` when
/// a torrent goes away and on shutdown. Peers from each reply go to the
/// torrent. A tracker that cannot be reached hands over to the next one in
/// BEP 12 order, and the first one is tried again every 30 s.
pub fn run_announcer(cfg: AnnouncerConfig, swarms: impl Swarms, rx: Receiver<TrackerMsg>) {
    let first = cfg.list.current();
    cfg.board
        .set(cfg.list.all().iter().map(|e| (e.to_string(), e.protocol())));
    let mut t = InUse {
        client: Client::open(&first, first_contact(cfg.schedule), cfg.local),
        list: cfg.list.clone(),
        local: cfg.local,
        // With others to take over, a tracker that stops answering is
        // left after seconds (as JSON's 3.75 s), not BEP 15's 45 s: the
        // swarm moves on within about one interval.
        schedule: if cfg.list.len() > 1 {
            first_contact(cfg.schedule)
        } else {
            cfg.schedule
        },
        board: cfg.board.clone(),
        in_a_row: 0,
        pause_until: None,
        outage: false,
        check_first: None,
    };
    let key = fastrand::u32(..);
    let mut state: HashMap<InfoHash, Swarm> = HashMap::new();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(TrackerMsg::Update(t, reply)) => {
                let s = state.entry(t.info_hash).or_default();
                s.tracked = Some(t);
                s.replies.extend(reply);
            }
            // Peers come with each announce, on the announcer's schedule
            // (sooner while a download lacks peers).
            Ok(TrackerMsg::Lookup { .. }) => {}
            // A torrent that left the session leaves the swarm below, when
            // the session's table no longer lists it.
            Ok(TrackerMsg::Forget(_)) => {}
            Ok(TrackerMsg::Shutdown(ack)) => {
                if let Ok(c) = t.client.as_mut() {
                    c.set_schedule(Schedule::FAREWELL);
                    for (ih, s) in &state {
                        if s.announced.is_some() {
                            farewell(c, &cfg, key, ih, s);
                        }
                    }
                }
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let views: HashMap<InfoHash, SwarmView> = swarms
            .views()
            .into_iter()
            .map(|v| (v.info_hash, v))
            .collect();
        // A torrent that left the session (removed, failed) leaves the swarm.
        let gone: Vec<InfoHash> = state
            .iter()
            .filter(|(ih, s)| !views.contains_key(ih) && s.replies.is_empty())
            .map(|(ih, _)| *ih)
            .collect();
        for ih in gone {
            if let Some(s) = state.remove(&ih) {
                if let (Some(_), Ok(c)) = (s.announced, t.client.as_mut()) {
                    c.set_schedule(Schedule::FAREWELL);
                    farewell(c, &cfg, key, &ih, &s);
                    c.set_schedule(t.schedule);
                }
            }
        }
        for v in views.values() {
            // Metadata fetches have no Tracked yet but need peers.
            if v.size.is_none() {
                state.entry(v.info_hash).or_default();
            }
        }
        let now = Instant::now();
        if t.pause_until.is_some_and(|p| now < p) {
            continue;
        }
        t.pause_until = None;
        if !t.list.at_first() && t.check_first.is_some_and(|c| now >= c) {
            back_to_first(&mut t, &cfg, key, &mut state, &views, &swarms);
        }
        let due: Vec<InfoHash> = state
            .iter()
            .filter(|(ih, s)| is_due(s, views.get(ih), cfg.max_peers, now))
            .map(|(ih, _)| *ih)
            .collect();
        for ih in due {
            let Some(s) = state.get_mut(&ih) else {
                continue;
            };
            let v = views.get(&ih);
            let to = t.current();
            let r = match t.client.as_mut() {
                Ok(c) => announce_one(c, &to, &cfg, key, &ih, s, v, &swarms),
                Err(e) => Err(e.clone()),
            };
            match r {
                Ok(()) => t.answered(Instant::now()),
                Err(e) if !e.unreachable() => {
                    t.board.failed(&t.current().to_string(), &e);
                    refused(&ih, s, v, &swarms, &e);
                }
                Err(e) => {
                    s.last_try = Some(Instant::now());
                    if t.failed(&e, Instant::now()) {
                        // Another tracker: every torrent announces to it
                        // (`started`) at the next tick.
                        for s in state.values_mut() {
                            s.announced = None;
                            s.last_try = None;
                            s.backoff_until = None;
                        }
                    } else {
                        // No tracker answers: who waits is told why.
                        for (ih, s) in state.iter_mut() {
                            s.announced = None;
                            refused(ih, s, views.get(ih), &swarms, &e);
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// On a later tracker: announces one torrent to the first tracker, and
/// moves back to it (every torrent announcing `started` there, `stopped`
/// sent to the one left) if it answers.
fn back_to_first(
    t: &mut InUse,
    cfg: &AnnouncerConfig,
    key: u32,
    state: &mut HashMap<InfoHash, Swarm>,
    views: &HashMap<InfoHash, SwarmView>,
    swarms: &impl Swarms,
) {
    t.check_first = Some(Instant::now() + RETRY_UNREACHABLE);
    let first = t.list.first();
    let Some((ih, s)) = state.iter().find(|(_, s)| s.announced.is_some()) else {
        return;
    };
    let mut trial = Swarm {
        tracked: s.tracked.clone(),
        ..Swarm::default()
    };
    let ih = *ih;
    let still_down = |t: &mut InUse, e: &AnnounceError| {
        debug!("first tracker {first} still does not answer: {e}");
        t.board.failed(&first.to_string(), e);
    };
    let mut c = match Client::open(&first, Schedule::PROBE, cfg.local) {
        Ok(c) => c,
        Err(e) => return still_down(t, &e),
    };
    // A refusal is an answer too: the tracker is back.
    match announce_one(
        &mut c,
        &first,
        cfg,
        key,
        &ih,
        &mut trial,
        views.get(&ih),
        swarms,
    ) {
        Err(e) if e.unreachable() => return still_down(t, &e),
        _ => {}
    }
    let left = t.current();
    warn!("tracker {first} answers again; back to it from {left}");
    if let Ok(old) = t.client.as_mut() {
        old.set_schedule(Schedule::FAREWELL);
        for (ih, s) in state.iter().filter(|(_, s)| s.announced.is_some()) {
            farewell(old, cfg, key, ih, s);
        }
    }
    c.set_schedule(t.schedule);
    t.client = Ok(c);
    t.list.back_to_first();
    t.board.using(&first.to_string());
    t.board.answered(&first.to_string());
    t.check_first = None;
    t.in_a_row = 0;
    for s in state.values_mut() {
        s.announced = None;
        s.last_try = None;
        s.backoff_until = None;
    }
}

fn is_complete(s: &Swarm) -> bool {
    s.tracked.as_ref().is_some_and(|t| t.complete)
}

fn is_due(s: &Swarm, v: Option<&SwarmView>, max_peers: usize, now: Instant) -> bool {
    if !s.replies.is_empty() {
        return true;
    }
    if s.backoff_until.is_some_and(|b| now < b) {
        return false;
    }
    if s.announced.is_none() && s.last_try.is_none() {
        return true;
    }
    if is_complete(s) && s.announced == Some(false) {
        return true;
    }
    let Some(last) = s.last_try else { return true };
    let interval = s.interval.unwrap_or(AGAIN_FEW_PEERS);
    let every = match v {
        Some(v) if v.wants_peers && !is_complete(s) && v.peers == 0 => AGAIN_NO_PEERS,
        Some(v) if v.wants_peers && !is_complete(s) && v.peers < max_peers => {
            AGAIN_FEW_PEERS.min(interval)
        }
        _ => interval,
    };
    now >= last + every.max(s.min_interval.unwrap_or_default())
}

fn args_for(
    cfg: &AnnouncerConfig,
    key: u32,
    ih: &InfoHash,
    s: &Swarm,
    v: Option<&SwarmView>,
    event: Event,
) -> AnnounceArgs {
    let left = if is_complete(s) {
        0
    } else {
        let size = s
            .tracked
            .as_ref()
            .map(|t| t.size)
            .or(v.and_then(|v| v.size));
        let have = v.map(|v| v.bytes_have).unwrap_or(0);
        // Unknown size (metadata fetch) or a status lagging behind the
        // coordinator: still a leecher until told complete.
        size.map(|n| n.saturating_sub(have)).unwrap_or(0).max(1)
    };
    AnnounceArgs {
        info_hash: *ih,
        peer_id: cfg.peer_id,
        port: cfg.port,
        downloaded: v.map(|v| v.downloaded).unwrap_or(0),
        uploaded: v.map(|v| v.uploaded).unwrap_or(0),
        left,
        event,
        key,
    }
}

/// One announce of one torrent; the peers go to the torrent and whoever
/// waits for the announce is told it went through. An error is returned
/// for the caller to judge (the next tracker, or tell the torrent).
#[allow(clippy::too_many_arguments)]
fn announce_one(
    client: &mut Client,
    to: &Endpoint,
    cfg: &AnnouncerConfig,
    key: u32,
    ih: &InfoHash,
    s: &mut Swarm,
    v: Option<&SwarmView>,
    swarms: &impl Swarms,
) -> Result<(), AnnounceError> {
    let complete = is_complete(s);
    let event = match s.announced {
        None => Event::Started,
        Some(false) if complete => Event::Completed,
        _ => Event::None,
    };
    let args = args_for(cfg, key, ih, s, v, event);
    s.last_try = Some(Instant::now());
    let r = client.announce(&args)?;
    debug!(
        "announced {ih} ({}): {} seeders, {} leechers, {} peers",
        event.as_str(),
        r.seeders,
        r.leechers,
        r.peers.len()
    );
    if s.announced.is_none() {
        info!(
            "announced {ih} to tracker {to} ({})",
            if complete { "seeder" } else { "leecher" }
        );
    }
    s.announced = Some(complete);
    s.backoff_until = None;
    s.interval = Some(r.interval.clamp(MIN_INTERVAL, MAX_INTERVAL));
    s.min_interval = r.min_interval.map(|m| m.min(MAX_INTERVAL));
    let peers = r
        .peers
        .into_iter()
        .filter(|p| !client.is_me(*p, cfg.port))
        .map(|addr| PeerEntry {
            addr,
            // BEP 15 and compact HTTP replies carry no peer id; the
            // handshake does.
            peer_id: String::new(),
            complete: false,
        })
        .collect();
    swarms.deliver(ih, Ok(peers));
    // Shown before whoever waits hears of it.
    cfg.board.answered(&to.to_string());
    for r in s.replies.drain(..) {
        let _ = r.send(Ok(()));
    }
    Ok(())
}

/// The announce failed (`e`): a download waiting for peers and whoever
/// waits for the announce are told why.
fn refused(
    ih: &InfoHash,
    s: &mut Swarm,
    v: Option<&SwarmView>,
    swarms: &impl Swarms,
    e: &AnnounceError,
) {
    debug!("announce {ih}: {e}");
    // Not again at every tick (a tracker that says "slow down").
    s.backoff_until = Some(Instant::now() + AGAIN_FEW_PEERS);
    if v.is_some_and(|v| v.wants_peers) {
        swarms.deliver(ih, Err(Box::new(e.clone())));
    }
    for r in s.replies.drain(..) {
        let _ = r.send(Err(Box::new(e.clone())));
    }
}

fn farewell(client: &mut Client, cfg: &AnnouncerConfig, key: u32, ih: &InfoHash, s: &Swarm) {
    let args = args_for(cfg, key, ih, s, None, Event::Stopped);
    match client.announce(&args) {
        Ok(_) => info!("sent stopped for {ih} to the tracker"),
        Err(e) => debug!("stopped {ih}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tracker::fake::{bep15_only, fake, hash, FAST};
    use minitorrent_common::udp_tracker::Request;

    type Delivered = (InfoHash, Result<Vec<PeerEntry>, BoxError>);

    struct FakeSwarms {
        views: Mutex<Vec<SwarmView>>,
        got: Mutex<Vec<Delivered>>,
    }

    impl Swarms for Arc<FakeSwarms> {
        fn views(&self) -> Vec<SwarmView> {
            self.views.lock().unwrap().clone()
        }
        fn deliver(&self, ih: &InfoHash, r: Result<Vec<PeerEntry>, BoxError>) {
            self.got.lock().unwrap().push((*ih, r));
        }
    }

    #[test]
    fn announcer_sends_started_completed_stopped() {
        let events = Arc::new(Mutex::new(Vec::<(Event, u64)>::new()));
        let ev2 = events.clone();
        let (addr, h, stop) = fake(move |b| {
            if let Ok(Request::Announce(a)) = Request::decode(b) {
                ev2.lock().unwrap().push((a.event, a.left));
            }
            bep15_only(b)
        });
        let swarms = Arc::new(FakeSwarms {
            views: Mutex::new(vec![SwarmView {
                info_hash: hash(4),
                wants_peers: true,
                peers: 0,
                size: Some(100),
                bytes_have: 40,
                downloaded: 40,
                uploaded: 0,
            }]),
            got: Mutex::default(),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = AnnouncerConfig {
            list: TrackerList::single(Endpoint::udp(addr)),
            board: Board::default(),
            peer_id: *b"-MN0100-abcdefghijkl",
            port: 7004,
            local: IpAddr::from([127, 0, 0, 1]),
            max_peers: 8,
            schedule: FAST,
        };
        let s2 = swarms.clone();
        let t = std::thread::spawn(move || run_announcer(cfg, s2, rx));
        let tracked = |complete| Tracked {
            info_hash: hash(4),
            name: "x".into(),
            size: 100,
            complete,
        };
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Update(tracked(false), Some(rtx)))
            .unwrap();
        rrx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        // Peers delivered without ourselves (127.0.0.1:7004).
        let got = swarms.got.lock().unwrap();
        let peers = got[0].1.as_ref().unwrap().clone();
        drop(got);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].addr, "127.0.0.1:7001".parse().unwrap());

        tx.send(TrackerMsg::Update(tracked(true), None)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.0 == Event::Completed)
        {
            assert!(Instant::now() < deadline, "no completed announce");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (atx, arx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Shutdown(atx)).unwrap();
        arx.recv_timeout(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        let ev = events.lock().unwrap().clone();
        assert_eq!(ev.first(), Some(&(Event::Started, 60)));
        assert!(ev.contains(&(Event::Completed, 0)), "{ev:?}");
        assert_eq!(ev.last(), Some(&(Event::Stopped, 0)));
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }

    /// Two trackers, the first dead: the announce goes to the second at
    /// once (whoever waits gets the answer), the board names it in use and
    /// keeps the first one's error; the second is asked `started`.
    #[test]
    fn a_dead_first_tracker_hands_over_to_the_next() {
        let dead = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let events = Arc::new(Mutex::new(Vec::<Event>::new()));
        let ev2 = events.clone();
        let (addr, h, stop) = fake(move |b| {
            if let Ok(Request::Announce(a)) = Request::decode(b) {
                ev2.lock().unwrap().push(a.event);
            }
            bep15_only(b)
        });
        let swarms = Arc::new(FakeSwarms {
            views: Mutex::new(vec![SwarmView {
                info_hash: hash(5),
                wants_peers: false,
                peers: 0,
                size: Some(100),
                bytes_have: 100,
                downloaded: 0,
                uploaded: 0,
            }]),
            got: Mutex::default(),
        });
        let board = Board::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let list = TrackerList::new(
            vec![vec![Endpoint::udp(dead)], vec![Endpoint::udp(addr)]],
            &mut rng,
        )
        .unwrap();
        let cfg = AnnouncerConfig {
            list,
            board: board.clone(),
            peer_id: *b"-MN0100-abcdefghijkl",
            port: 7005,
            local: IpAddr::from([127, 0, 0, 1]),
            max_peers: 8,
            schedule: FAST,
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let s2 = swarms.clone();
        let t = std::thread::spawn(move || run_announcer(cfg, s2, rx));
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Update(
            Tracked {
                info_hash: hash(5),
                name: "x".into(),
                size: 100,
                complete: true,
            },
            Some(rtx),
        ))
        .unwrap();
        rrx.recv_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("the second tracker answered");
        let states = board.snapshot();
        assert_eq!(states.len(), 2);
        assert!(!states[0].in_use && states[1].in_use, "{states:?}");
        assert!(states[1].answered && states[1].last_error.is_none());
        assert!(
            states[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("unreachable")),
            "{states:?}"
        );
        assert_eq!(events.lock().unwrap().first(), Some(&Event::Started));
        let (atx, arx) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Shutdown(atx)).unwrap();
        arx.recv_timeout(Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
    }
}
