//! The BEP 15 announcer: the thread that takes the place of the JSON
//! REGISTER/HEARTBEAT thread when a session's tracker speaks only BEP 15.
//! It owns one [`Bep15Client`] and what it last told the tracker about each
//! torrent, decides when each torrent is due for an announce, and hands the
//! peers from each reply to the torrent through [`Swarms`].
//!
//! What it sends and when is written down in `docs/INTEROP.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::PeerEntry;
use minitorrent_common::udp_tracker::Event;

use crate::core::msg::{BoxError, Event as TorrentEvent, Phase, Tracked, TrackerMsg};
use crate::net::shared::TorrentHandle;
use crate::net::tracker::bep15::{AnnounceArgs, Bep15Client, Schedule};

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
    replies: Vec<Sender<Result<(), BoxError>>>,
}

/// Settings of the announcer thread.
pub struct AnnouncerConfig {
    pub tracker: SocketAddr,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub max_peers: usize,
    pub schedule: Schedule,
}

/// The BEP 15 counterpart of the session's JSON tracker thread: announces
/// `started` for every torrent it is told about (and for metadata fetches),
/// `completed` when a download finishes, `none` at the tracker's interval
/// (sooner while a download lacks peers), `stopped` when a torrent goes away
/// and on shutdown. Peers from each reply go to the torrent.
pub fn run_announcer(cfg: AnnouncerConfig, swarms: impl Swarms, rx: Receiver<TrackerMsg>) {
    let addr = cfg.tracker;
    let mut client = match Bep15Client::new(addr) {
        Ok(c) => c,
        Err(e) => {
            warn!("{e}");
            // Answer every request with the error until shutdown.
            for m in rx {
                match m {
                    TrackerMsg::Update(_, Some(r)) => {
                        let _ = r.send(Err(Box::new(e.clone())));
                    }
                    TrackerMsg::Update(_, None) | TrackerMsg::Forget(_) => {}
                    TrackerMsg::Lookup { reply, .. } => {
                        let _ = reply.send(TorrentEvent::Lookup(Err(Box::new(e.clone()))).into());
                    }
                    TrackerMsg::Shutdown(ack) => {
                        let _ = ack.send(());
                        return;
                    }
                }
            }
            return;
        }
    };
    client.schedule = cfg.schedule;
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
                client.schedule = Schedule::FAREWELL;
                for (ih, s) in &state {
                    if s.announced.is_some() {
                        farewell(&mut client, &cfg, key, ih, s);
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
                if s.announced.is_some() {
                    let keep = client.schedule;
                    client.schedule = Schedule::FAREWELL;
                    farewell(&mut client, &cfg, key, &ih, &s);
                    client.schedule = keep;
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
        let due: Vec<InfoHash> = state
            .iter()
            .filter(|(ih, s)| is_due(s, views.get(ih), cfg.max_peers, now))
            .map(|(ih, _)| *ih)
            .collect();
        for ih in due {
            let Some(s) = state.get_mut(&ih) else {
                continue;
            };
            announce_one(&mut client, &cfg, key, &ih, s, views.get(&ih), &swarms);
        }
    }
}

fn is_complete(s: &Swarm) -> bool {
    s.tracked.as_ref().is_some_and(|t| t.complete)
}

fn is_due(s: &Swarm, v: Option<&SwarmView>, max_peers: usize, now: Instant) -> bool {
    if !s.replies.is_empty() || s.announced.is_none() && s.last_try.is_none() {
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
    now >= last + every
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

fn announce_one(
    client: &mut Bep15Client,
    cfg: &AnnouncerConfig,
    key: u32,
    ih: &InfoHash,
    s: &mut Swarm,
    v: Option<&SwarmView>,
    swarms: &impl Swarms,
) {
    let complete = is_complete(s);
    let event = match s.announced {
        None => Event::Started,
        Some(false) if complete => Event::Completed,
        _ => Event::None,
    };
    let args = args_for(cfg, key, ih, s, v, event);
    s.last_try = Some(Instant::now());
    let me = SocketAddr::new(client.local_ip(), cfg.port);
    match client.announce(&args) {
        Ok(r) => {
            debug!(
                "announced {ih} ({}) to {}: {} seeders, {} leechers, {} peers",
                event.as_str(),
                cfg.tracker,
                r.seeders,
                r.leechers,
                r.peers.len()
            );
            if s.announced.is_none() {
                info!(
                    "announced {ih} to BEP 15 tracker {} ({})",
                    cfg.tracker,
                    if complete { "seeder" } else { "leecher" }
                );
            }
            s.announced = Some(complete);
            s.interval = Some(r.interval.clamp(MIN_INTERVAL, MAX_INTERVAL));
            // Some trackers (opentracker) list the announcer itself.
            let peers = r
                .peers
                .into_iter()
                .filter(|p| *p != me)
                .map(|addr| PeerEntry {
                    addr,
                    // BEP 15 replies carry no peer id; the handshake does.
                    peer_id: String::new(),
                    complete: false,
                })
                .collect();
            swarms.deliver(ih, Ok(peers));
            for r in s.replies.drain(..) {
                let _ = r.send(Ok(()));
            }
        }
        Err(e) => {
            warn!("announce {ih}: {e}");
            if v.is_some_and(|v| v.wants_peers) {
                swarms.deliver(ih, Err(Box::new(e.clone())));
            }
            for r in s.replies.drain(..) {
                let _ = r.send(Err(Box::new(e.clone())));
            }
        }
    }
}

fn farewell(client: &mut Bep15Client, cfg: &AnnouncerConfig, key: u32, ih: &InfoHash, s: &Swarm) {
    let args = args_for(cfg, key, ih, s, None, Event::Stopped);
    match client.announce(&args) {
        Ok(_) => info!("sent stopped for {ih} to BEP 15 tracker {}", cfg.tracker),
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
            tracker: addr,
            peer_id: *b"-MT0100-abcdefghijkl",
            port: 7004,
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
}
