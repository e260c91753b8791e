//! The JSON tracker thread: REGISTER the files we share, HEARTBEAT every
//! `interval`, REGISTER again when the tracker forgot us, EXIT on shutdown;
//! `STATS` every `stats_every` seconds while the tracker's `OK` asks for
//! them (a tracker that does not know `STATS` never does); the `.torrent`
//! of each file it seeds to the tracker's web page when an `OK` names one
//! (`publish`, which posts on a thread of its own);
//! and each torrent's `REQUEST` for peers, on a short-lived thread of its own.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::ErrorCode;

use crate::core::msg::{Event, Input, TrackerMsg};
use crate::core::tracker_list::TrackerList;
use crate::net::tracker::board::{json_url, Board};
use crate::net::tracker::json::{RegisterFile, Timers, TrackerClient, TrackerError};
use crate::net::tracker::publish::{Kept, Publisher};
use crate::net::tracker::stats::{self, Table};

/// Why a REGISTER did not go through.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The thread could not open its socket at start (logged then).
    #[error("no socket for tracker {0}")]
    NoSocket(SocketAddr),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

/// While the tracker does not answer, it is tried at most this often (the
/// swarm goes on with the peers it knows meanwhile).
pub const RETRY_UNREACHABLE: Duration = Duration::from_secs(30);

/// Whether the tracker answers: said once when it stops, once when it
/// comes back, and how long to wait before the next try.
#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
}

impl Outage {
    /// The tracker answered.
    fn answered(&mut self, addr: SocketAddr) {
        if self.since.take().is_some() {
            warn!("tracker {addr} answers again");
        }
    }

    /// It did not (`e`): warned the first time only.
    fn failed(&mut self, addr: SocketAddr, e: &dyn std::fmt::Display, now: Instant) {
        if self.since.is_none() {
            warn!(
                "{e}; trading goes on with the peers already known, and the tracker is tried \
                 again every {} s",
                RETRY_UNREACHABLE.as_secs()
            );
            self.since = Some(now);
        } else {
            debug!("tracker {addr} still unreachable: {e}");
        }
    }

    /// When to try next, `interval` after now when it answers.
    fn next(&self, interval: Duration, now: Instant) -> Instant {
        match self.since {
            Some(_) => now + interval.max(RETRY_UNREACHABLE),
            None => now + interval,
        }
    }
}

/// A socket for talking to `addr` from `local`; `None` (logged) when it
/// cannot be opened.
fn client_for(addr: SocketAddr, local: IpAddr) -> Option<TrackerClient> {
    match TrackerClient::from_ip(addr, local) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!("{e}");
            None
        }
    }
}

/// The tracker in use and what goes with it.
struct Link {
    addr: SocketAddr,
    client: Option<TrackerClient>,
    /// The tracker's web page, and what we published there.
    publisher: Publisher,
}

impl Link {
    fn to(addr: SocketAddr, local: IpAddr) -> Link {
        Link {
            addr,
            client: client_for(addr, local),
            publisher: Publisher::new(addr),
        }
    }
}

/// Failures in a row, to tell a tracker that does not answer (try the next
/// one now) from none answering (wait [`RETRY_UNREACHABLE`]).
#[derive(Debug, Default)]
struct Failover {
    in_a_row: usize,
    /// When to see whether the first tracker answers again.
    check_first: Option<Instant>,
}

/// The tracker in use did not answer (`e`): with another one to try, the
/// link moves to it and true is returned (try it now); after a whole round
/// of them, the outage is told and false returned (wait).
#[allow(clippy::too_many_arguments)]
fn fail_over(
    list: &Mutex<TrackerList>,
    board: &Board,
    link: &mut Link,
    f: &mut Failover,
    outage: &mut Outage,
    e: &dyn std::fmt::Display,
    local: IpAddr,
) -> bool {
    board.failed(&json_url(link.addr), e);
    let Ok(mut l) = list.lock() else {
        outage.failed(link.addr, e, Instant::now());
        return false;
    };
    if l.len() < 2 {
        drop(l);
        outage.failed(link.addr, e, Instant::now());
        return false;
    }
    f.in_a_row += 1;
    let to = l.failed();
    let whole_round = f.in_a_row >= l.len();
    drop(l);
    if whole_round {
        f.in_a_row = 0;
        outage.failed(
            link.addr,
            &format!("{e} (and every other tracker too)"),
            Instant::now(),
        );
    } else if outage.since.is_some() {
        // Every tracker was found down already: said once, then quiet.
        debug!("{e}; trying the next tracker, {to}");
    } else {
        warn!("{e}; trying the next tracker, {to}");
    }
    *link = Link::to(to, local);
    board.using(&json_url(to));
    !whole_round
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    list: Arc<Mutex<TrackerList>>,
    board: Board,
    local: IpAddr,
    peer_id: String,
    port: u16,
    rx: Receiver<TrackerMsg>,
    torrents: Table,
    kept: Kept,
) {
    let first = list
        .lock()
        .map(|l| l.current())
        .unwrap_or_else(|p| p.into_inner().current());
    let mut link = Link::to(first, local);
    let mut failover = Failover::default();
    let mut files: BTreeMap<InfoHash, RegisterFile> = BTreeMap::new();
    let mut registered = false;
    let mut outage = Outage::default();
    let mut interval = Duration::from_secs(10);
    let mut next = Instant::now() + interval;
    // STATS: how often the tracker wants them (0: not now), when the next
    // round is due, and which files moved data in the last round.
    let mut stats = StatsClock::default();
    // An OK to REGISTER or HEARTBEAT: whether the tracker wants STATS, and
    // its web page to publish our .torrent files on.
    let heard = |t: &Timers,
                 stats: &mut StatsClock,
                 p: &mut Publisher,
                 files: &BTreeMap<InfoHash, RegisterFile>| {
        stats.asked(t.stats_every, &torrents, files);
        p.web(t.web.as_deref());
        p.publish(seeded(files), &kept, &torrents);
    };
    let register = |link: &mut Link,
                    files: &BTreeMap<InfoHash, RegisterFile>|
     -> Result<Timers, RegisterError> {
        let c = link
            .client
            .as_mut()
            .ok_or(RegisterError::NoSocket(link.addr))?;
        let list: Vec<RegisterFile> = files.values().cloned().collect();
        Ok(c.register(&peer_id, port, &list)?)
    };
    // The tracker in use answered: it leads its tier.
    let answered = |list: &Mutex<TrackerList>, f: &mut Failover, o: &mut Outage, addr| {
        f.in_a_row = 0;
        o.answered(addr);
        board.answered(&json_url(addr));
        if let Ok(mut l) = list.lock() {
            l.answered();
            if !l.at_first() && f.check_first.is_none() {
                f.check_first = Some(Instant::now() + RETRY_UNREACHABLE);
            }
        }
    };
    loop {
        let due = stats.due().map_or(next, |s| s.min(next));
        let wait = due.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(TrackerMsg::Update(t, reply)) => {
                files.insert(
                    t.info_hash,
                    RegisterFile {
                        info_hash: t.info_hash,
                        name: t.name.clone(),
                        size: t.size,
                        complete: t.complete,
                    },
                );
                // Each tracker in turn until one answers (or all were tried).
                let r = loop {
                    let r = register(&mut link, &files);
                    match &r {
                        Ok(timers) => {
                            registered = true;
                            answered(&list, &mut failover, &mut outage, link.addr);
                            interval = timers.interval;
                            heard(timers, &mut stats, &mut link.publisher, &files);
                            info!(
                                "registered {} with tracker {} ({})",
                                t.name,
                                link.addr,
                                if t.complete { "seeder" } else { "leecher" }
                            );
                            next = outage.next(interval, Instant::now());
                            break r;
                        }
                        Err(e) => {
                            registered = false;
                            if !fail_over(
                                &list,
                                &board,
                                &mut link,
                                &mut failover,
                                &mut outage,
                                e,
                                local,
                            ) {
                                next = outage.next(interval, Instant::now());
                                break r;
                            }
                        }
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(r.map(|_| ()).map_err(Into::into));
                }
            }
            Ok(TrackerMsg::Lookup { info_hash, reply }) => {
                let token = link.client.as_ref().and_then(TrackerClient::token);
                lookup(link.addr, local, token, info_hash, &peer_id, reply)
            }
            Ok(TrackerMsg::Forget(info_hash)) => {
                // Unless the session already took it up again (share
                // re-announcing the same content).
                let back = torrents.lock().is_ok_and(|t| t.contains_key(&info_hash));
                if !back {
                    kept.forget(&info_hash);
                }
                link.publisher.forget(&info_hash);
                let Some(gone) = files.remove(&info_hash) else {
                    continue;
                };
                // REGISTER only adds: leaving one swarm takes an EXIT, then a
                // REGISTER of the files we still share.
                if registered {
                    if let Some(c) = link.client.as_mut() {
                        if let Err(e) = c.exit(&peer_id) {
                            warn!("EXIT: {e}");
                        }
                    }
                    registered = false;
                    if !files.is_empty() {
                        match register(&mut link, &files) {
                            Ok(timers) => {
                                registered = true;
                                interval = timers.interval;
                                heard(&timers, &mut stats, &mut link.publisher, &files);
                            }
                            Err(e) => warn!("{e}"),
                        }
                    }
                    info!("withdrew {} from tracker {}", gone.name, link.addr);
                }
            }
            Ok(TrackerMsg::Shutdown(ack)) => {
                if registered {
                    if let Some(c) = link.client.as_mut() {
                        match c.exit(&peer_id) {
                            Ok(()) => info!("sent EXIT to tracker {}", link.addr),
                            Err(e) => warn!("EXIT: {e}"),
                        }
                    }
                }
                let _ = ack.send(());
                return;
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() < next => {
                // A STATS round (the heartbeat is not due yet).
                let Some(c) = link.client.as_mut().filter(|_| registered) else {
                    stats.asked(0, &torrents, &files);
                    continue;
                };
                stats.round(c, &peer_id, &torrents, &files);
            }
            Err(RecvTimeoutError::Timeout) => {
                next = outage.next(interval, Instant::now());
                if files.is_empty() {
                    continue;
                }
                // On a later tier: back to the first tracker once it
                // answers again (registered there, then gone from here).
                if registered && failover.check_first.is_some_and(|t| Instant::now() >= t) {
                    failover.check_first = None;
                    let first = list.lock().map(|l| (l.at_first(), l.first()));
                    if let Ok((false, first)) = first {
                        let mut back = Link::to(first, local);
                        match register(&mut back, &files) {
                            Ok(timers) => {
                                if let Some(c) = link.client.as_mut() {
                                    let _ = c.exit(&peer_id);
                                }
                                warn!(
                                    "tracker {first} answers again; back to it from {}",
                                    link.addr
                                );
                                link = back;
                                if let Ok(mut l) = list.lock() {
                                    l.back_to_first();
                                }
                                board.using(&json_url(first));
                                board.answered(&json_url(first));
                                interval = timers.interval;
                                heard(&timers, &mut stats, &mut link.publisher, &files);
                            }
                            Err(e) => {
                                board.failed(&json_url(first), &e);
                                debug!("first tracker {first} still does not answer: {e}");
                                failover.check_first = Some(Instant::now() + RETRY_UNREACHABLE);
                            }
                        }
                    }
                }
                let failure: Option<String> = if !registered {
                    match register(&mut link, &files) {
                        Ok(timers) => {
                            registered = true;
                            answered(&list, &mut failover, &mut outage, link.addr);
                            interval = timers.interval;
                            heard(&timers, &mut stats, &mut link.publisher, &files);
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    }
                } else if let Some(c) = link.client.as_mut() {
                    match c.heartbeat(&peer_id) {
                        Ok(Some(timers)) => {
                            debug!("heartbeat ok");
                            answered(&list, &mut failover, &mut outage, link.addr);
                            heard(&timers, &mut stats, &mut link.publisher, &files);
                            None
                        }
                        Ok(None) => {
                            info!("tracker {} forgot us; registering again", link.addr);
                            answered(&list, &mut failover, &mut outage, link.addr);
                            match register(&mut link, &files) {
                                Ok(timers) => {
                                    interval = timers.interval;
                                    heard(&timers, &mut stats, &mut link.publisher, &files);
                                    None
                                }
                                Err(e) => Some(e.to_string()),
                            }
                        }
                        // Registered again once it answers (it may have
                        // forgotten us meanwhile).
                        Err(e) => Some(format!("heartbeat: {e}")),
                    }
                } else {
                    None
                };
                next = match failure {
                    Some(e) => {
                        registered = false;
                        if fail_over(
                            &list,
                            &board,
                            &mut link,
                            &mut failover,
                            &mut outage,
                            &e,
                            local,
                        ) {
                            Instant::now()
                        } else {
                            outage.next(interval, Instant::now())
                        }
                    }
                    None => outage.next(interval, Instant::now()),
                };
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The files we seed (complete), as (info hash, name).
fn seeded(
    files: &BTreeMap<InfoHash, RegisterFile>,
) -> impl Iterator<Item = (&InfoHash, &str)> + '_ {
    files
        .values()
        .filter(|f| f.complete)
        .map(|f| (&f.info_hash, f.name.as_str()))
}

/// When `STATS` are due: every `every` seconds while the tracker's latest
/// `OK` asked for them.
#[derive(Default)]
struct StatsClock {
    every: u32,
    next: Option<Instant>,
    active: HashSet<InfoHash>,
}

impl StatsClock {
    fn due(&self) -> Option<Instant> {
        self.next.filter(|_| self.every > 0)
    }

    /// The tracker's latest `OK` said `every` (0: no STATS).
    fn asked(&mut self, every: u32, torrents: &Table, files: &BTreeMap<InfoHash, RegisterFile>) {
        if every == 0 {
            // Bytes moved while nobody asks are not reported later.
            stats::discard(torrents, files);
            self.active.clear();
            self.next = None;
        } else if self.every == 0 || self.next.is_none() {
            stats::discard(torrents, files);
            self.next = Some(Instant::now() + secs(every));
        }
        self.every = every;
    }

    /// Sends this round's `STATS` (if anything moved or downloads) and
    /// schedules the next.
    fn round(
        &mut self,
        c: &mut TrackerClient,
        peer_id: &str,
        torrents: &Table,
        files: &BTreeMap<InfoHash, RegisterFile>,
    ) {
        let Some(due) = self.due() else { return };
        if Instant::now() < due {
            return;
        }
        self.next = Some(Instant::now() + secs(self.every));
        for batch in stats::gather(torrents, files, &mut self.active) {
            match c.stats(peer_id, batch) {
                Ok(every) => {
                    if every == 0 {
                        self.asked(0, torrents, files);
                        return;
                    }
                    self.every = every;
                }
                // Lost, refused (the heartbeat will find out and register
                // again), or a tracker that never asked: no retry.
                Err(e) => {
                    debug!("STATS: {e}");
                    return;
                }
            }
        }
    }
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(u64::from(n.max(1)))
}

/// REQUESTs the peers of one torrent on a short-lived thread (a lost
/// datagram costs seconds of retries; the heartbeats must not wait for it)
/// and sends the answer to the torrent as `Event::Lookup`.
fn lookup(
    addr: SocketAddr,
    local: IpAddr,
    token: Option<minitorrent_common::tracker_proto::Token>,
    info_hash: InfoHash,
    me: &str,
    reply: Sender<Input>,
) {
    let me = me.to_string();
    let answer = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("tracker lookup".into())
        .spawn(move || {
            let ev = match TrackerClient::from_ip(addr, local)
                .map(|c| c.with_token(token))
                .and_then(|mut c| c.request_peers(Some(&info_hash), None, Some(&me)))
            {
                // Nobody but us: the seeder left (or changed the file).
                Ok(r) if r.peers.is_empty() && r.seeders == 0 => Event::Unlisted,
                Ok(r) => Event::Lookup(Ok(r.peers)),
                // Nobody registered it (yet: our own REGISTER, or a new
                // seeder's, may still be on its way): no peers for now, not
                // a failure.
                Err(e) if e.code() == Some(&ErrorCode::NotFound) => Event::Unlisted,
                Err(e) => Event::Lookup(Err(e.into())),
            };
            let _ = reply.send(ev.into());
        });
    if let Err(e) = spawned {
        warn!("cannot start a tracker lookup thread: {e}");
        let _ = answer.send(Event::Lookup(Err(Box::new(e))).into());
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_unreachable_tracker_is_tried_every_30_s_and_said_once() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let t0 = Instant::now();
        let mut o = Outage::default();
        let beat = Duration::from_secs(10);
        assert_eq!(o.next(beat, t0), t0 + beat);
        o.failed(addr, &"no answer", t0);
        assert_eq!(o.since, Some(t0));
        assert_eq!(o.next(beat, t0), t0 + RETRY_UNREACHABLE);
        // A second failure does not restart the outage.
        o.failed(addr, &"no answer", t0 + RETRY_UNREACHABLE);
        assert_eq!(o.since, Some(t0));
        o.answered(addr);
        assert_eq!(o.since, None);
        assert_eq!(o.next(beat, t0), t0 + beat);
    }

    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use minitorrent_common::tracker_proto::{Reply, Request};

    use crate::core::msg::{Phase, TorrentStatus, Tracked};
    use crate::core::ratelimit::RateLimit;
    use crate::net::shared::{TorrentHandle, TorrentShared};
    use crate::net::tracker::fake::{fake, hash};

    /// Runs the tracker thread for about 2.5 s against a fake tracker whose
    /// every `OK` says `stats_every: every`, while a seeded torrent keeps
    /// sending data to one peer; returns the requests the tracker got.
    fn requests_with(every: u32) -> Vec<Request> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (addr, h, stop) = fake(move |b| {
            let req = Request::decode(b).ok()?;
            let tid = req.tid();
            log.lock().unwrap().push(req);
            Some(
                Reply::Ok {
                    tid,
                    interval: 1,
                    timeout: 3,
                    stats_every: every,
                    web: None,
                }
                .encode(),
            )
        });
        let (events, _keep) = crossbeam_channel::unbounded();
        let shared = Arc::new(TorrentShared::new(
            hash(1),
            [0; 20],
            7000,
            events,
            Arc::new(RateLimit::new(0, Instant::now())),
            Arc::new(RateLimit::new(0, Instant::now())),
        ));
        let status = TorrentStatus {
            info_hash: hash(1),
            name: "a.bin".into(),
            size: Some(100),
            pieces_total: 1,
            pieces_have: 1,
            bytes_have: 100,
            downloaded: 0,
            uploaded: 0,
            peers: 1,
            down_rate: 0.0,
            up_rate: 10.0,
            phase: Phase::Seeding,
            paths: Vec::new(),
            problem: None,
        };
        let handle = TorrentHandle {
            shared: shared.clone(),
            status: Arc::new(Mutex::new(status)),
            magnet: String::new(),
            origin: crate::net::shared::Origin::Seed(".".into()),
            info_bytes: None,
        };
        let table: Table = Arc::new(Mutex::new(HashMap::from([(hash(1), handle)])));
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::spawn(move || {
            run(
                Arc::new(Mutex::new(TrackerList::single(addr))),
                Board::default(),
                "127.0.0.1".parse().unwrap(),
                "me".into(),
                7000,
                rx,
                table,
                Kept::default(),
            )
        });
        tx.send(TrackerMsg::Update(
            Tracked {
                info_hash: hash(1),
                name: "a.bin".into(),
                size: 100,
                complete: true,
            },
            None,
        ))
        .unwrap();
        let remote: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        for _ in 0..25 {
            shared.traffic.lock().unwrap().add(remote, 1000, 0);
            std::thread::sleep(Duration::from_millis(100));
        }
        let (ack, done) = crossbeam_channel::bounded(1);
        tx.send(TrackerMsg::Shutdown(ack)).unwrap();
        done.recv_timeout(Duration::from_secs(5)).unwrap();
        thread.join().unwrap();
        *stop.lock().unwrap() = true;
        h.join().unwrap();
        let got = seen.lock().unwrap().clone();
        got
    }

    #[test]
    fn stats_only_when_the_tracker_asks() {
        // A tracker that does not know STATS (or an idle swarm): none.
        let reqs = requests_with(0);
        assert!(reqs.iter().any(|r| matches!(r, Request::Register { .. })));
        assert!(
            !reqs.iter().any(|r| matches!(r, Request::Stats { .. })),
            "{reqs:?}"
        );

        // Asked every second: STATS naming the file and the peer it sent to.
        let reqs = requests_with(1);
        let stats: Vec<_> = reqs
            .iter()
            .filter_map(|r| match r {
                Request::Stats { files, .. } => Some(files),
                _ => None,
            })
            .collect();
        assert!(!stats.is_empty(), "{reqs:?}");
        let f = &stats[0][0];
        assert_eq!((f.info_hash, f.size, f.done, f.up), (hash(1), 100, 100, 10));
        assert_eq!(f.peers.len(), 1);
        assert_eq!(f.peers[0].addr, "127.0.0.1:7001".parse().unwrap());
        // Each byte is reported once: the STATS add up to at most what moved
        // (25 × 1000 bytes).
        let sent: u64 = stats
            .iter()
            .map(|f| f[0].peers.iter().map(|e| e.sent).sum::<u64>())
            .sum();
        assert!(sent > 0 && sent <= 25_000, "{sent}");
    }
}
