//! The live view's data: what peers report in `STATS` (the pieces they have,
//! their rates, the bytes they moved to and from each other), kept for a
//! short recent window per swarm, and [`Stats::swarm`], which merges it with
//! the registry's copy of the swarm into what the web page shows
//! ([`SwarmLive`]).
//!
//! Display only: nothing here is ever used for a decision (who is listed,
//! who expires, what a reply says). It lives outside the registry, behind
//! its own single lock, taken by a worker only for a `STATS` (a few
//! microseconds) and by the web server only to copy one swarm; `REGISTER`,
//! `REQUEST`, `HEARTBEAT` and BEP 15 never take it.
//!
//! Bounds (a `STATS` from a registered peer can add at most one reporter per
//! file and [`MAX_STATS_EDGES`](minitorrent_common::tracker_proto::MAX_STATS_EDGES)
//! edges per file):
//!
//! | what | bound | when full |
//! | --- | --- | --- |
//! | swarms with stats | [`MAX_STATS_SWARMS`] | the swarm reported least recently is forgotten |
//! | reporters per swarm | [`MAX_REPORTERS`] | the one that reported least recently is forgotten |
//! | edges per swarm | [`MAX_EDGES`] | edges silent for the whole window go first; then the new edge is dropped (and counted) |
//! | window | [`WINDOW_SECS`] one-second buckets per edge | older buckets are reused |
//! | bitfield per reporter | `MAX_STATS_PIECES` bits (2 KiB) | larger files send none |
//!
//! A reporter silent for [`STALE_SECS`] is not shown, and is forgotten with
//! its edges the next time its swarm is reported or viewed. Worst case, all
//! tables full: 64 swarms × (128 reporters × ~2.2 KiB + 1024 edges ×
//! ~330 B) ≈ 40 MiB; a LAN class uses a few swarms and a few MB.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{StatsFile, MAX_STATS_PIECES};
use serde::Serialize;

use crate::registry::{Registry, SnapshotPeer};

/// Swarms whose `STATS` are kept at once.
pub const MAX_STATS_SWARMS: usize = 64;
/// Peers whose latest `STATS` is kept, per swarm.
pub const MAX_REPORTERS: usize = 128;
/// (from, to) pairs with bytes in the window, per swarm.
pub const MAX_EDGES: usize = 1024;
/// The window the edges' bytes are summed over: this many 1-second buckets.
pub const WINDOW_SECS: u32 = 10;
/// A reporter not heard from for this long is not shown any more.
pub const STALE_SECS: u32 = 30;

/// The stats of every swarm, shared by the worker threads and the web server.
pub struct Stats {
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    swarms: HashMap<InfoHash, SwarmWindow>,
    /// Edges refused because their swarm's table was full (for metrics).
    dropped_edges: u64,
}

#[derive(Default)]
struct SwarmWindow {
    /// Seconds since the epoch of the last `STATS` for this swarm.
    last: u32,
    reporters: Vec<Reporter>,
    edges: HashMap<(SocketAddr, SocketAddr), Edge>,
}

/// The latest `STATS` of one peer for one swarm.
struct Reporter {
    /// Its listening address: the `STATS`'s source IP and registered port.
    addr: SocketAddr,
    peer_id: String,
    last: u32,
    size: u64,
    done: u64,
    pieces: u32,
    have: Option<Box<[u8]>>,
    down: u64,
    up: u64,
}

/// Bytes from one address to another, per second of the window, as the
/// sender said (`sent`) and as the receiver said (`recv`): when both report
/// the same bytes, the larger sum is shown, not both added.
#[derive(Default)]
struct Edge {
    buckets: [Bucket; WINDOW_SECS as usize],
    last: u32,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    sec: u32,
    by_sender: u64,
    by_receiver: u64,
}

impl Edge {
    fn add(&mut self, sec: u32, by_sender: u64, by_receiver: u64) {
        let b = &mut self.buckets[(sec % WINDOW_SECS) as usize];
        if b.sec != sec {
            *b = Bucket {
                sec,
                ..Bucket::default()
            };
        }
        b.by_sender = b.by_sender.saturating_add(by_sender);
        b.by_receiver = b.by_receiver.saturating_add(by_receiver);
        self.last = self.last.max(sec);
    }

    /// Bytes in the window ending at `sec`.
    fn bytes(&self, sec: u32) -> u64 {
        let (mut s, mut r) = (0u64, 0u64);
        for b in &self.buckets {
            if in_window(b.sec, sec) && (b.by_sender > 0 || b.by_receiver > 0) {
                s = s.saturating_add(b.by_sender);
                r = r.saturating_add(b.by_receiver);
            }
        }
        s.max(r)
    }
}

fn in_window(at: u32, now: u32) -> bool {
    now.wrapping_sub(at) < WINDOW_SECS
}

/// How a peer talks to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerProtocol {
    /// Registered with the JSON protocol (`REGISTER`).
    Json,
    /// Announced with BEP 15; such peers send no `STATS`.
    Bep15,
    /// Announced over HTTP (`GET /announce`); no `STATS` either.
    Http,
    /// Not registered (seen only as the other end of a reported transfer).
    Unknown,
}

/// One peer of the live view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivePeer {
    /// Its listening address (as registered); for a peer seen only in
    /// another's `STATS`, the address that peer gave.
    pub addr: SocketAddr,
    /// Empty when unknown.
    pub peer_id: String,
    /// The client, decoded from the peer id's prefix (`-MN0100-` →
    /// `minitorrent 0.1.0.0`); empty when it cannot tell.
    pub client: String,
    pub seeder: bool,
    /// Verified bytes / size, 0 to 1: 1 for a seeder, else from its
    /// `STATS`, else `None`.
    pub progress: Option<f64>,
    /// Bytes per second, from its latest `STATS` (0 without one).
    pub down_rate: u64,
    pub up_rate: u64,
    pub protocol: PeerProtocol,
    /// True when its `STATS` are fresh (at most [`STALE_SECS`] old).
    pub reporting: bool,
}

/// Data moving from one peer to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveEdge {
    /// The sender's address (one of [`SwarmLive::peers`]).
    pub from: SocketAddr,
    /// The receiver's address.
    pub to: SocketAddr,
    /// Bytes of piece data in the last [`SwarmLive::window_secs`] seconds.
    pub bytes: u64,
}

/// Everything the live swarm page shows, copied; serializes to the JSON of
/// `/api/swarms/<info_hash>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwarmLive {
    /// 40 lowercase hex digits.
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    pub seeders: u32,
    pub leechers: u32,
    /// Pieces of the file, when a `STATS` bitfield told (0 while unknown,
    /// and for files over `MAX_STATS_PIECES` pieces).
    pub pieces: u32,
    pub peers: Vec<LivePeer>,
    /// Only edges with bytes in the window, largest first.
    pub edges: Vec<LiveEdge>,
    /// For each piece, how many peers hold it (peers whose `STATS` carry a
    /// bitfield, and seeders); empty while `pieces` is 0.
    pub availability: Vec<u32>,
    pub window_secs: u32,
    /// The registry had more peers than the view lists.
    pub truncated: bool,
}

impl Stats {
    pub fn new(epoch: Instant) -> Stats {
        Stats {
            epoch,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop the tracker: the tables stay
        // valid between operations.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sec(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_secs() as u32
    }

    /// Records one file of a `STATS` from the peer listening at `reporter`.
    pub fn record(&self, reporter: SocketAddr, peer_id: &str, file: &StatsFile, now: Instant) {
        let sec = self.sec(now);
        let mut inner = self.lock();
        let Inner {
            swarms,
            dropped_edges,
        } = &mut *inner;
        if !swarms.contains_key(&file.info_hash) && swarms.len() >= MAX_STATS_SWARMS {
            if let Some(oldest) = swarms
                .iter()
                .max_by_key(|(_, w)| sec.wrapping_sub(w.last))
                .map(|(h, _)| *h)
            {
                swarms.remove(&oldest);
            }
        }
        let w = swarms.entry(file.info_hash).or_default();
        w.last = sec;
        w.prune(sec);
        let have = file.have.as_ref().map(|h| h.clone().into_boxed_slice());
        let fresh = Reporter {
            addr: reporter,
            peer_id: peer_id.to_string(),
            last: sec,
            size: file.size,
            done: file.done,
            pieces: file.pieces,
            have,
            down: file.down,
            up: file.up,
        };
        match w.reporters.iter_mut().find(|r| r.addr == reporter) {
            Some(r) => *r = fresh,
            None => {
                if w.reporters.len() >= MAX_REPORTERS {
                    if let Some(i) = (0..w.reporters.len())
                        .max_by_key(|&i| sec.wrapping_sub(w.reporters[i].last))
                    {
                        w.reporters.swap_remove(i);
                    }
                }
                w.reporters.push(fresh);
            }
        }
        for e in &file.peers {
            if e.sent > 0 {
                w.add_edge((reporter, e.addr), sec, e.sent, 0, dropped_edges);
            }
            if e.recv > 0 {
                w.add_edge((e.addr, reporter), sec, 0, e.recv, dropped_edges);
            }
        }
    }

    /// Edges refused so far because their swarm's table was full.
    pub fn dropped_edges(&self) -> u64 {
        self.lock().dropped_edges
    }

    /// Swarms with stats now (at most [`MAX_STATS_SWARMS`]).
    pub fn swarms(&self) -> usize {
        self.lock().swarms.len()
    }

    /// The live view of one swarm: the registry's peers (copied under its
    /// shard lock) merged with the recent `STATS` (copied under this lock),
    /// the locks taken one after the other. `None` when the registry has no
    /// peer in it.
    pub fn swarm(
        &self,
        registry: &Registry,
        info_hash: &InfoHash,
        now: Instant,
    ) -> Option<SwarmLive> {
        let snap = registry.snapshot(info_hash, now)?;
        let sec = self.sec(now);
        let mut reports: Vec<ReportCopy> = Vec::new();
        let mut edges: Vec<LiveEdge> = Vec::new();
        {
            let mut inner = self.lock();
            if let Some(w) = inner.swarms.get_mut(info_hash) {
                w.prune(sec);
                for r in &w.reporters {
                    if sec.wrapping_sub(r.last) <= STALE_SECS {
                        reports.push(ReportCopy {
                            addr: r.addr,
                            peer_id: r.peer_id.clone(),
                            size: r.size,
                            done: r.done,
                            pieces: r.pieces,
                            have: r.have.clone(),
                            down: r.down,
                            up: r.up,
                        });
                    }
                }
                for (&(from, to), e) in &w.edges {
                    let bytes = e.bytes(sec);
                    if bytes > 0 {
                        edges.push(LiveEdge { from, to, bytes });
                    }
                }
            }
        }
        Some(merge(
            &snap.peers,
            snap.truncated,
            reports,
            edges,
            SwarmHeader {
                info_hash: snap.info_hash,
                name: snap.name,
                size: snap.size,
                seeders: snap.seeders,
                leechers: snap.leechers,
            },
        ))
    }
}

impl SwarmWindow {
    /// Forgets reporters silent for [`STALE_SECS`], and their edges.
    fn prune(&mut self, sec: u32) {
        let before = self.reporters.len();
        self.reporters
            .retain(|r| sec.wrapping_sub(r.last) <= STALE_SECS);
        if self.reporters.len() != before || self.edges.len() >= MAX_EDGES {
            self.edges.retain(|_, e| in_window(e.last, sec));
        }
    }

    fn add_edge(
        &mut self,
        key: (SocketAddr, SocketAddr),
        sec: u32,
        by_sender: u64,
        by_receiver: u64,
        dropped: &mut u64,
    ) {
        if key.0 == key.1 {
            return;
        }
        if !self.edges.contains_key(&key) && self.edges.len() >= MAX_EDGES {
            self.edges.retain(|_, e| in_window(e.last, sec));
            if self.edges.len() >= MAX_EDGES {
                *dropped += 1;
                return;
            }
        }
        self.edges
            .entry(key)
            .or_default()
            .add(sec, by_sender, by_receiver);
    }
}

struct ReportCopy {
    addr: SocketAddr,
    peer_id: String,
    size: u64,
    done: u64,
    pieces: u32,
    have: Option<Box<[u8]>>,
    down: u64,
    up: u64,
}

struct SwarmHeader {
    info_hash: InfoHash,
    name: String,
    size: u64,
    seeders: u32,
    leechers: u32,
}

/// The registry's peers and the reports, as one list of peers with edges
/// between them. An edge end that is no listed peer's address is moved to
/// the one listed peer with that IP when there is exactly one (a remote
/// peer seen through its connection's port); otherwise it stays a peer of
/// its own, shown as `unknown`.
fn merge(
    registered: &[SnapshotPeer],
    truncated: bool,
    reports: Vec<ReportCopy>,
    mut edges: Vec<LiveEdge>,
    h: SwarmHeader,
) -> SwarmLive {
    let mut peers: Vec<LivePeer> = registered
        .iter()
        .map(|p| LivePeer {
            addr: p.addr,
            peer_id: p.peer_id.clone(),
            client: client_name(&p.peer_id),
            seeder: p.complete,
            progress: p.complete.then_some(1.0),
            down_rate: 0,
            up_rate: 0,
            protocol: if p.json {
                PeerProtocol::Json
            } else if p.http {
                PeerProtocol::Http
            } else {
                PeerProtocol::Bep15
            },
            reporting: false,
        })
        .collect();
    let mut index: HashMap<SocketAddr, usize> =
        peers.iter().enumerate().map(|(i, p)| (p.addr, i)).collect();
    // Reports of peers the registry no longer lists are not shown.
    let mut bitfields: Vec<(usize, Box<[u8]>)> = Vec::new();
    let mut pieces = 0u32;
    for r in reports {
        let Some(&i) = index.get(&r.addr) else {
            continue;
        };
        if peers[i].peer_id != r.peer_id {
            continue;
        }
        let p = &mut peers[i];
        p.reporting = true;
        p.down_rate = r.down;
        p.up_rate = r.up;
        // The registry's word wins for a seeder: a report may be a second
        // older than its REGISTER as complete.
        if r.size > 0 && !p.seeder {
            p.progress = Some((r.done as f64 / r.size as f64).clamp(0.0, 1.0));
        }
        // Only a bitfield tells the piece count here: `pieces` alone may be
        // anything up to 2^32 (a file too large for a bitfield), too many
        // to count availability for.
        if let Some(b) = r.have {
            if r.pieces > 0 && r.pieces <= MAX_STATS_PIECES {
                pieces = pieces.max(r.pieces);
                bitfields.push((i, b));
            }
        }
    }
    // Edge ends: a listed address, else the only listed peer at that IP.
    let mut by_ip: HashMap<IpAddr, Option<SocketAddr>> = HashMap::new();
    for p in &peers {
        by_ip
            .entry(p.addr.ip())
            .and_modify(|v| *v = None)
            .or_insert(Some(p.addr));
    }
    let resolve = |a: SocketAddr| -> SocketAddr {
        if index.contains_key(&a) {
            return a;
        }
        by_ip.get(&a.ip()).copied().flatten().unwrap_or(a)
    };
    let mut merged: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
    for e in edges.drain(..) {
        let (from, to) = (resolve(e.from), resolve(e.to));
        if from != to {
            let b = merged.entry((from, to)).or_default();
            *b = (*b).max(e.bytes);
        }
    }
    let mut edges: Vec<LiveEdge> = merged
        .into_iter()
        .map(|((from, to), bytes)| LiveEdge { from, to, bytes })
        .collect();
    edges.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(a.from.cmp(&b.from))
            .then(a.to.cmp(&b.to))
    });
    for e in &edges {
        for a in [e.from, e.to] {
            if let std::collections::hash_map::Entry::Vacant(v) = index.entry(a) {
                v.insert(peers.len());
                peers.push(LivePeer {
                    addr: a,
                    peer_id: String::new(),
                    client: String::new(),
                    seeder: false,
                    progress: None,
                    down_rate: 0,
                    up_rate: 0,
                    protocol: PeerProtocol::Unknown,
                    reporting: false,
                });
            }
        }
    }
    let mut availability = vec![0u32; pieces as usize];
    if pieces > 0 {
        let mut counted = vec![false; peers.len()];
        for (i, b) in &bitfields {
            counted[*i] = true;
            for (piece, slot) in availability.iter_mut().enumerate() {
                if b.get(piece / 8)
                    .is_some_and(|byte| byte & (0x80 >> (piece % 8)) != 0)
                {
                    *slot += 1;
                }
            }
        }
        let whole = peers
            .iter()
            .enumerate()
            .filter(|(i, p)| p.seeder && !counted[*i])
            .count() as u32;
        for slot in &mut availability {
            *slot += whole;
        }
    }
    SwarmLive {
        info_hash: h.info_hash.to_hex(),
        name: h.name,
        size: h.size,
        seeders: h.seeders,
        leechers: h.leechers,
        pieces,
        peers,
        edges,
        availability,
        window_secs: WINDOW_SECS,
        truncated,
    }
}

/// The client a peer id names, from the common prefixes: Azureus style
/// (`-MN0100-…`: two letters and four version characters between dashes)
/// for a few well-known clients, else empty.
pub fn client_name(peer_id: &str) -> String {
    let b = peer_id.as_bytes();
    if b.len() < 8 || b[0] != b'-' || b[7] != b'-' {
        return String::new();
    }
    let code = &peer_id[1..3];
    let name = match code {
        "MN" => "minitorrent",
        "qB" => "qBittorrent",
        "TR" => "Transmission",
        "UT" => "µTorrent",
        "UM" => "µTorrent Mac",
        "DE" => "Deluge",
        "lt" => "libtorrent (rakshasa)",
        "LT" => "libtorrent",
        "AZ" => "Vuze",
        "BC" => "BitComet",
        "KT" => "KTorrent",
        "BI" => "BiglyBT",
        "WW" => "WebTorrent",
        "FD" => "Free Download Manager",
        "AG" | "A~" => "Ares",
        _ => return String::new(),
    };
    let version: Vec<String> = peer_id[3..7]
        .chars()
        .map(|c| match c.to_digit(36) {
            Some(d) => d.to_string(),
            None => c.to_string(),
        })
        .collect();
    format!("{name} {}", version.join("."))
}

/// What the web server holds: the stats and the registry they are merged
/// with. Cheap to clone.
#[derive(Clone)]
pub struct StatsView {
    pub stats: Arc<Stats>,
    pub registry: Arc<Registry>,
}

impl StatsView {
    /// [`Stats::swarm`] for this tracker.
    pub fn swarm(&self, info_hash: &InfoHash, now: Instant) -> Option<SwarmLive> {
        self.stats.swarm(&self.registry, info_hash, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitorrent_common::tracker_proto::StatsEdge;

    #[test]
    fn client_names() {
        assert_eq!(client_name("-MN0100-abcdefghijkl"), "minitorrent 0.1.0.0");
        assert_eq!(client_name("-qB4650-xxxxxxxxxxxx"), "qBittorrent 4.6.5.0");
        assert_eq!(client_name("-ZZ0100-xxxxxxxxxxxx"), "");
        assert_eq!(client_name("peer-a"), "");
        assert_eq!(client_name("-é"), "");
    }

    #[test]
    fn an_edge_reported_by_both_ends_is_counted_once() {
        let mut e = Edge::default();
        e.add(100, 1000, 0);
        e.add(100, 0, 900);
        e.add(101, 500, 0);
        e.add(101, 0, 700);
        assert_eq!(e.bytes(101), 1600);
        // Out of the window: forgotten.
        assert_eq!(e.bytes(100 + WINDOW_SECS + 1), 0);
        // A bucket reused a window later starts from zero.
        e.add(110, 5, 0);
        assert_eq!(e.bytes(110), 700);
    }

    fn header() -> SwarmHeader {
        SwarmHeader {
            info_hash: InfoHash([1; 20]),
            name: "f".into(),
            size: 100,
            seeders: 1,
            leechers: 1,
        }
    }

    fn listed(addr: &str, id: &str, complete: bool) -> SnapshotPeer {
        SnapshotPeer {
            addr: addr.parse().unwrap(),
            peer_id: id.into(),
            complete,
            json: true,
            http: false,
        }
    }

    fn report(addr: &str, id: &str, pieces: u32, have: Option<&[u8]>) -> ReportCopy {
        ReportCopy {
            addr: addr.parse().unwrap(),
            peer_id: id.into(),
            size: 100,
            done: 50,
            pieces,
            have: have.map(|h| h.to_vec().into_boxed_slice()),
            down: 7,
            up: 8,
        }
    }

    #[test]
    fn a_huge_piece_count_without_bitfield_counts_no_availability() {
        let live = merge(
            &[listed("10.0.0.1:1", "a", false)],
            false,
            vec![report("10.0.0.1:1", "a", u32::MAX, None)],
            Vec::new(),
            header(),
        );
        assert_eq!((live.pieces, live.availability.len()), (0, 0));
        assert_eq!(live.peers[0].progress, Some(0.5));
    }

    #[test]
    fn edge_ends_are_matched_by_ip_when_only_one_peer_has_it() {
        let edges = vec![
            // The seeder seen through the leecher's connection port.
            LiveEdge {
                from: "10.0.0.1:6881".parse().unwrap(),
                to: "10.0.0.2:51000".parse().unwrap(),
                bytes: 10,
            },
            // And an address nobody registered.
            LiveEdge {
                from: "10.0.0.9:1".parse().unwrap(),
                to: "10.0.0.2:7000".parse().unwrap(),
                bytes: 5,
            },
        ];
        let live = merge(
            &[
                listed("10.0.0.1:6881", "s", true),
                listed("10.0.0.2:7000", "l", false),
            ],
            false,
            vec![
                report("10.0.0.2:7000", "l", 4, Some(&[0b1000_0000])),
                // A report from a peer id the registry lists with another
                // id at that address is not shown.
                report("10.0.0.1:6881", "impostor", 4, Some(&[0xf0])),
            ],
            edges,
            header(),
        );
        let pairs: Vec<(String, String, u64)> = live
            .edges
            .iter()
            .map(|e| (e.from.to_string(), e.to.to_string(), e.bytes))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("10.0.0.1:6881".into(), "10.0.0.2:7000".into(), 10),
                ("10.0.0.9:1".into(), "10.0.0.2:7000".into(), 5),
            ]
        );
        assert_eq!(live.peers.len(), 3);
        assert_eq!(live.peers[2].protocol, PeerProtocol::Unknown);
        assert!(!live.peers[0].reporting);
        // The seeder (no bitfield of its own) counts for every piece.
        assert_eq!(live.availability, vec![2, 1, 1, 1]);
    }

    #[test]
    fn tables_stay_within_their_bounds() {
        let now = Instant::now();
        let stats = Stats::new(now);
        let edge = |i: usize| StatsEdge {
            addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1)),
            sent: 1,
            recv: 1,
        };
        let file = |h: u8, first: usize| StatsFile {
            info_hash: InfoHash([h; 20]),
            size: 1,
            done: 0,
            pieces: 0,
            have: None,
            down: 0,
            up: 0,
            peers: (first..first + 64).map(edge).collect(),
            truncated: false,
        };
        for i in 0..(MAX_REPORTERS + 20) {
            let reporter = SocketAddr::from(([127, 0, (i >> 8) as u8, i as u8], 7000));
            stats.record(reporter, "p", &file(1, i * 64), now);
        }
        {
            let inner = stats.lock();
            let w = &inner.swarms[&InfoHash([1; 20])];
            assert_eq!(w.reporters.len(), MAX_REPORTERS);
            assert_eq!(w.edges.len(), MAX_EDGES);
        }
        assert!(stats.dropped_edges() > 0);
        for h in 0..MAX_STATS_SWARMS as u8 {
            stats.record("127.0.0.1:1".parse().unwrap(), "p", &file(h, 0), now);
        }
        stats.record(
            "127.0.0.1:1".parse().unwrap(),
            "p",
            &StatsFile {
                info_hash: InfoHash([
                    7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                ]),
                ..file(0, 0)
            },
            now,
        );
        assert_eq!(stats.swarms(), MAX_STATS_SWARMS);
    }
}
