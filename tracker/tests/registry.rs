//! The swarm registry through its public API: registering, listing,
//! expiry with the time passed in, search, BEP 15 announces over the same
//! swarms, the caps, and threads sharing it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{FileInfo, FileRef};
use minitorrent_tracker::peer_id::PeerId;
use minitorrent_tracker::registry::{
    AnnounceEvent, AnnounceProtocol, Family, Limits, PeerList, Picks, RegisterError,
    RegisterOutcome, Registry, RegistryStats, SwarmCounts, TrackerFull, UnknownPeer,
    MAX_SEARCH_HITS,
};

const T: Duration = Duration::from_secs(30);

fn h(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

fn file(b: u8, name: &str, complete: bool) -> FileInfo {
    FileInfo {
        info_hash: h(b),
        name: name.into(),
        size: 1000 + u64::from(b),
        complete,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Fixture {
    reg: Registry,
    t0: Instant,
    rng: fastrand::Rng,
    out: PeerList,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_shards(4)
    }
    fn with_shards(shards: usize) -> Fixture {
        Fixture::with_limits(shards, Limits::default())
    }
    fn with_limits(shards: usize, limits: Limits) -> Fixture {
        let t0 = Instant::now();
        Fixture {
            reg: Registry::with_limits(T, shards, t0, limits),
            t0,
            rng: fastrand::Rng::with_seed(7),
            out: PeerList::default(),
        }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    /// A JSON REGISTER from `addr` at `ms`, which must succeed.
    fn register(
        &self,
        addr: &str,
        id: &str,
        port: u16,
        files: &[FileInfo],
        ms: u64,
    ) -> RegisterOutcome {
        self.reg
            .register(ip(addr), id, port, files, self.at(ms))
            .unwrap()
    }
    /// BEP 15 announce of swarm `b` from `addr` as `id`; `Err` when refused.
    fn announce(
        &mut self,
        addr: &str,
        id: &str,
        b: u8,
        event: AnnounceEvent,
        ms: u64,
    ) -> Result<(), TrackerFull> {
        self.announce_with(addr, id, b, true, event, Family::Any, ms, |_, _| ())
    }
    /// `announce` with the announcer's completeness, the address family
    /// wanted and what to do with the answer.
    #[allow(clippy::too_many_arguments)]
    fn announce_with<R>(
        &mut self,
        addr: &str,
        id: &str,
        b: u8,
        complete: bool,
        event: AnnounceEvent,
        family: Family,
        ms: u64,
        visit: impl FnOnce(SwarmCounts, Picks<'_>) -> R,
    ) -> Result<R, TrackerFull> {
        let now = self.at(ms);
        self.reg.announce(
            addr.parse().unwrap(),
            PeerId::new(id),
            &h(b),
            complete,
            event,
            AnnounceProtocol::Bep15,
            50,
            family,
            &mut self.rng,
            now,
            &mut false,
            visit,
        )
    }
    /// The number of swarms as counted, checked against the swarms held.
    fn swarms(&self) -> usize {
        let counted = self.reg.swarm_count();
        assert_eq!(counted, self.reg.stats().swarms, "swarm counter drifted");
        counted
    }
    fn list(
        &mut self,
        b: u8,
        asker: Option<(&str, &str)>,
        max: usize,
        ms: u64,
    ) -> Option<PeerList> {
        let now = self.at(ms);
        let asker = asker.map(|(i, id)| (ip(i), id));
        self.reg
            .list_peers(
                &FileRef::InfoHash(h(b)),
                asker,
                max,
                Family::Any,
                &mut self.rng,
                now,
                &mut self.out,
            )
            .then(|| self.out.clone())
    }
    fn ids(&mut self, b: u8, ms: u64) -> Vec<String> {
        let mut v: Vec<String> = self
            .list(b, None, 1000, ms)
            .map(|l| l.peers.iter().map(|p| p.peer_id.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

#[test]
fn register_then_list_by_hash_and_name() {
    let mut f = Fixture::new();
    let o = f.register("10.0.0.1", "seed", 7001, &[file(1, "report.pdf", true)], 0);
    assert_eq!(
        o,
        RegisterOutcome {
            new_peer: true,
            joined: 1
        }
    );
    f.register(
        "10.0.0.2",
        "leech",
        7002,
        &[file(1, "report.pdf", false)],
        0,
    );
    let l = f.list(1, None, 50, 1).unwrap();
    assert_eq!(
        (l.seeders, l.leechers, l.size, l.name.as_str()),
        (1, 1, 1001, "report.pdf")
    );
    let mut addrs: Vec<String> = l.peers.iter().map(|p| p.addr.to_string()).collect();
    addrs.sort();
    assert_eq!(addrs, ["10.0.0.1:7001", "10.0.0.2:7002"]);
    assert_eq!(f.reg.find_by_name("report.pdf"), Some(h(1)));
    assert_eq!(f.reg.find_by_name("REPORT.PDF"), None);
    assert!(f.list(2, None, 50, 1).is_none());
    let by_name = f.reg.list_peers(
        &FileRef::Name("report.pdf".into()),
        None,
        50,
        Family::Any,
        &mut f.rng,
        f.t0,
        &mut f.out,
    );
    assert!(by_name);
    assert_eq!(f.out.info_hash, h(1));
}

#[test]
fn the_asker_is_left_out_only_from_its_own_ip() {
    let mut f = Fixture::new();
    f.register("10.0.0.1", "a", 1, &[file(1, "x", true)], 0);
    f.register("10.0.0.2", "b", 2, &[file(1, "x", false)], 0);
    let l = f.list(1, Some(("10.0.0.2", "b")), 50, 0).unwrap();
    assert_eq!(l.peers.len(), 1);
    assert_eq!(l.peers[0].peer_id.as_str(), "a");
    // Counts still include the asker.
    assert_eq!((l.seeders, l.leechers), (1, 1));
    // Same peer_id from another IP is not the asker.
    let l = f.list(1, Some(("10.0.0.9", "b")), 50, 0).unwrap();
    assert_eq!(l.peers.len(), 2);
}

#[test]
fn register_is_additive_and_updates_complete() {
    let mut f = Fixture::new();
    f.register("10.0.0.1", "p", 1, &[file(1, "a", false)], 0);
    let o = f.register("10.0.0.1", "p", 1, &[file(2, "b", true)], 10);
    assert_eq!(
        o,
        RegisterOutcome {
            new_peer: false,
            joined: 1
        }
    );
    assert_eq!(f.ids(1, 10), ["p"]);
    assert_eq!(f.ids(2, 10), ["p"]);
    assert_eq!(f.list(1, None, 50, 10).unwrap().leechers, 1);
    f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 20);
    let l = f.list(1, None, 50, 20).unwrap();
    assert_eq!((l.seeders, l.leechers), (1, 0));
    assert!(l.peers[0].complete);
    // A new port applies to every swarm of the peer.
    f.register("10.0.0.1", "p", 9, &[], 30);
    assert_eq!(f.list(2, None, 50, 30).unwrap().peers[0].addr.port(), 9);
    assert_eq!(
        f.reg.stats(),
        RegistryStats {
            swarms: 2,
            entries: 2,
            registered: 1
        }
    );
}

#[test]
fn a_peer_is_ip_plus_peer_id() {
    let mut f = Fixture::new();
    f.register("127.0.0.1", "p", 1, &[file(1, "a", true)], 0);
    assert_eq!(
        f.reg.heartbeat(ip("127.0.0.2"), "p", f.at(1)),
        Err(UnknownPeer)
    );
    assert_eq!(f.reg.exit(ip("127.0.0.2"), "p", f.at(1)), Err(UnknownPeer));
    assert_eq!(f.ids(1, 1), ["p"]);
    // The same peer_id from another IP is another peer.
    f.register("127.0.0.2", "p", 2, &[file(1, "a", true)], 2);
    assert_eq!(f.list(1, None, 50, 2).unwrap().peers.len(), 2);
    assert_eq!(f.reg.exit(ip("127.0.0.1"), "p", f.at(3)), Ok(1));
    let l = f.list(1, None, 50, 3).unwrap();
    assert_eq!(l.peers.len(), 1);
    assert_eq!(l.peers[0].addr, "127.0.0.2:2".parse().unwrap());
}

#[test]
fn exit_leaves_every_swarm_and_empty_swarms_vanish() {
    let mut f = Fixture::new();
    f.register(
        "10.0.0.1",
        "p",
        1,
        &[file(1, "a", true), file(2, "b", true)],
        0,
    );
    f.register("10.0.0.2", "q", 1, &[file(2, "b", true)], 0);
    assert_eq!(f.reg.exit(ip("10.0.0.1"), "p", f.at(1)), Ok(1));
    assert!(f.list(1, None, 50, 1).is_none());
    assert_eq!(f.ids(2, 1), ["q"]);
    let mut hits = Vec::new();
    f.reg.search("", &mut hits);
    assert_eq!(
        hits.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(f.reg.find_by_name("a"), None);
    assert_eq!(f.reg.exit(ip("10.0.0.1"), "p", f.at(2)), Err(UnknownPeer));
    assert_eq!(
        f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(2)),
        Err(UnknownPeer)
    );
}

#[test]
fn peers_expire_after_the_timeout_unless_heard_from() {
    let mut f = Fixture::new();
    f.register("10.0.0.1", "quiet", 1, &[file(1, "a", true)], 0);
    f.register(
        "10.0.0.2",
        "chatty",
        2,
        &[file(1, "a", true), file(2, "b", true)],
        0,
    );
    // Just before the timeout nothing expires.
    let r = f.reg.sweep(f.at(29_999));
    assert!(r.expired.is_empty());
    assert_eq!(
        f.reg.heartbeat(ip("10.0.0.2"), "chatty", f.at(29_999)),
        Ok(())
    );
    // At the timeout the quiet one goes; a listing skips it even before the sweep.
    assert_eq!(f.ids(1, 30_000), ["chatty"]);
    let r = f.reg.sweep(f.at(30_000));
    assert_eq!(r.expired.len(), 1);
    assert_eq!(r.expired[0].1.as_str(), "quiet");
    assert_eq!(r.entries_removed, 1);
    assert_eq!(
        f.reg.heartbeat(ip("10.0.0.1"), "quiet", f.at(30_001)),
        Err(UnknownPeer)
    );
    // The heartbeat kept the other alive in both swarms until 29_999 + 30_000.
    assert_eq!(f.ids(2, 59_998), ["chatty"]);
    let r = f.reg.sweep(f.at(59_999));
    assert_eq!(
        (r.expired.len(), r.entries_removed, r.swarms_removed),
        (1, 2, 2)
    );
    let mut hits = Vec::new();
    f.reg.search("", &mut hits);
    assert!(hits.is_empty());
    assert_eq!(f.reg.stats(), RegistryStats::default());
}

#[test]
fn heartbeat_after_the_timeout_is_unknown_even_before_a_sweep() {
    let f = Fixture::new();
    f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
    assert_eq!(
        f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(30_000)),
        Err(UnknownPeer)
    );
    assert_eq!(f.reg.stats(), RegistryStats::default());
    // Re-registering brings it back.
    let o = f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 30_001);
    assert!(o.new_peer);
    assert_eq!(f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(30_002)), Ok(()));
}

#[test]
fn register_after_expiry_starts_afresh() {
    let mut f = Fixture::new();
    f.register("10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
    let o = f.register("10.0.0.1", "p", 1, &[file(2, "b", true)], 40_000);
    assert!(o.new_peer);
    assert!(f.list(1, None, 50, 40_000).is_none());
    assert_eq!(f.ids(2, 40_000), ["p"]);
}

#[test]
fn max_peers_picks_a_random_subset() {
    let mut f = Fixture::new();
    for i in 0..100u16 {
        f.reg
            .register(
                ip("10.0.0.1"),
                &format!("p{i}"),
                1000 + i,
                &[file(1, "a", true)],
                f.at(0),
            )
            .unwrap();
    }
    let mut seen = HashSet::new();
    let mut first_sets = HashSet::new();
    for _ in 0..200 {
        let l = f.list(1, Some(("10.0.0.1", "p0")), 10, 1).unwrap();
        assert_eq!(l.peers.len(), 10);
        let ids: HashSet<String> = l.peers.iter().map(|p| p.peer_id.to_string()).collect();
        assert_eq!(ids.len(), 10, "no duplicates");
        assert!(!ids.contains("p0"), "asker excluded");
        let mut sorted: Vec<_> = ids.iter().cloned().collect();
        sorted.sort();
        first_sets.insert(sorted);
        seen.extend(ids);
    }
    // Every other peer shows up sometimes, and the sets vary.
    assert_eq!(seen.len(), 99);
    assert!(first_sets.len() > 50, "{}", first_sets.len());
    assert_eq!(f.list(1, None, 100, 1).unwrap().peers.len(), 100);
    assert_eq!(f.list(1, None, 0, 1).unwrap().peers.len(), 0);
}

#[test]
fn search_ignores_case_and_sorts() {
    let f = Fixture::new();
    f.register(
        "10.0.0.1",
        "p",
        1,
        &[
            file(1, "Report.pdf", true),
            file(2, "notes.txt", true),
            file(3, "ÉTÉ report", false),
        ],
        0,
    );
    let mut hits = Vec::new();
    f.reg.search("REP", &mut hits);
    assert_eq!(
        hits.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Report.pdf", "ÉTÉ report"]
    );
    f.reg.search("été", &mut hits);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].seeders, hits[0].leechers, hits[0].size),
        (0, 1, 1003)
    );
    f.reg.search("", &mut hits);
    assert_eq!(hits.len(), 3);
    f.reg.search("zzz", &mut hits);
    assert!(hits.is_empty());
}

#[test]
fn same_name_prefers_the_better_seeded_swarm() {
    let f = Fixture::new();
    f.register("10.0.0.1", "a", 1, &[file(1, "same", false)], 0);
    f.register("10.0.0.2", "b", 1, &[file(2, "same", true)], 0);
    assert_eq!(f.reg.find_by_name("same"), Some(h(2)));
    f.reg.exit(ip("10.0.0.2"), "b", f.at(1)).unwrap();
    assert_eq!(f.reg.find_by_name("same"), Some(h(1)));
}

#[test]
fn many_peers_across_shards_stay_consistent() {
    // Exercise swap_remove bookkeeping: add, remove every third, re-find all.
    let mut f = Fixture::with_shards(3);
    for i in 0..300u16 {
        f.reg
            .register(
                ip("10.0.0.1"),
                &format!("p{i}"),
                i + 1,
                &[file((i % 5) as u8, "n", i % 2 == 0)],
                f.at(0),
            )
            .unwrap();
    }
    for i in (0..300u16).step_by(3) {
        f.reg
            .exit(ip("10.0.0.1"), &format!("p{i}"), f.at(1))
            .unwrap();
    }
    for i in 0..300u16 {
        let r = f.reg.heartbeat(ip("10.0.0.1"), &format!("p{i}"), f.at(2));
        assert_eq!(r.is_ok(), i % 3 != 0, "p{i}");
    }
    let total: usize = (0..5).map(|b| f.ids(b, 2).len()).sum();
    assert_eq!(total, 200);
    for b in 0..5 {
        let l = f.list(b, None, 1000, 2).unwrap();
        let seeders = l.peers.iter().filter(|p| p.complete).count() as u32;
        assert_eq!(l.seeders, seeders);
        assert_eq!(l.seeders + l.leechers, l.peers.len() as u32);
    }
}

#[test]
fn announce_shares_swarms_with_json_peers() {
    let mut f = Fixture::new();
    f.register("10.0.0.1", "json", 7001, &[file(1, "a", true)], 0);
    struct Out {
        seeders: u32,
        leechers: u32,
        peers: Vec<SocketAddr>,
    }
    let mut out = Out {
        seeders: 0,
        leechers: 0,
        peers: vec![],
    };
    fn collect(out: &mut Out) -> impl FnOnce(SwarmCounts, Picks<'_>) + '_ {
        move |c, picks| {
            *out = Out {
                seeders: c.seeders,
                leechers: c.leechers,
                peers: picks.map(|p| p.addr).collect(),
            };
        }
    }
    f.announce_with(
        "10.0.0.2:6881",
        "-qB0001-abcdefghijkl",
        1,
        false,
        AnnounceEvent::Update,
        Family::V4,
        1,
        collect(&mut out),
    )
    .unwrap();
    assert_eq!((out.seeders, out.leechers), (1, 1));
    assert_eq!(out.peers.len(), 1);
    assert_eq!(out.peers[0], "10.0.0.1:7001".parse::<SocketAddr>().unwrap());
    assert_eq!(f.ids(1, 1), ["-qB0001-abcdefghijkl", "json"]);
    assert_eq!(
        f.reg.counts(&h(1)),
        SwarmCounts {
            seeders: 1,
            leechers: 1
        }
    );
    // IPv6 listings hold only IPv6 peers.
    f.announce_with(
        "[2001:db8::1]:6881",
        "v6",
        1,
        true,
        AnnounceEvent::Update,
        Family::V6,
        1,
        collect(&mut out),
    )
    .unwrap();
    assert!(out.peers.is_empty());
    assert_eq!(out.seeders, 2);
    // Stopped leaves; a swarm created by announce has no name until registered.
    f.announce_with(
        "10.0.0.2:6881",
        "-qB0001-abcdefghijkl",
        1,
        false,
        AnnounceEvent::Stopped,
        Family::V4,
        2,
        collect(&mut out),
    )
    .unwrap();
    assert_eq!(
        f.reg.counts(&h(1)),
        SwarmCounts {
            seeders: 2,
            leechers: 0
        }
    );
    f.announce_with(
        "10.0.0.3:1",
        "x",
        9,
        false,
        AnnounceEvent::Update,
        Family::V4,
        2,
        collect(&mut out),
    )
    .unwrap();
    assert_eq!(f.list(9, None, 50, 2).unwrap().name, "");
    f.register("10.0.0.4", "namer", 1, &[file(9, "named", true)], 3);
    assert_eq!(f.list(9, None, 50, 3).unwrap().name, "named");
    assert_eq!(f.reg.find_by_name("named"), Some(h(9)));
}

#[test]
fn ipv4_mapped_addresses_are_ipv4() {
    let mut f = Fixture::new();
    f.register("::ffff:10.0.0.1", "p", 1, &[file(1, "a", true)], 0);
    assert_eq!(
        f.list(1, None, 50, 0).unwrap().peers[0].addr,
        "10.0.0.1:1".parse().unwrap()
    );
    assert_eq!(f.reg.heartbeat(ip("10.0.0.1"), "p", f.at(1)), Ok(()));
}

#[test]
fn threads_share_the_registry_without_losing_entries() {
    let t0 = Instant::now();
    let reg = std::sync::Arc::new(Registry::new(T, 8, t0));
    let threads: Vec<_> = (0..4u8)
        .map(|w| {
            let reg = reg.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(u64::from(w));
                let ip: IpAddr = IpAddr::from([10, 0, 0, w]);
                for i in 0..500u32 {
                    let id = format!("p{i}");
                    let f = [
                        file((i % 7) as u8, "shared", i % 2 == 0),
                        file(100 + w, "mine", true),
                    ];
                    reg.register(ip, &id, 1, &f, t0).unwrap();
                    assert_eq!(reg.heartbeat(ip, &id, t0), Ok(()));
                    reg.announce(
                        SocketAddr::new(ip, 2),
                        PeerId::new(&format!("bt{i}")),
                        &h((i % 7) as u8),
                        false,
                        AnnounceEvent::Update,
                        AnnounceProtocol::Bep15,
                        10,
                        Family::V4,
                        &mut rng,
                        t0,
                        &mut false,
                        |_, picks| picks.count(),
                    )
                    .unwrap();
                    if i % 5 == 0 {
                        assert_eq!(reg.exit(ip, &id, t0), Ok(1));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Per thread: 400 JSON peers in 2 swarms each, 500 announcers.
    let st = reg.stats();
    assert_eq!(st.registered, 4 * 400);
    assert_eq!(st.entries, 4 * (400 * 2 + 500));
    assert_eq!(st.swarms, 7 + 4);
    // Everything expires together.
    let r = reg.sweep(t0 + T);
    assert_eq!(r.expired.len(), 1600);
    assert_eq!(reg.stats(), RegistryStats::default());
}

fn files(range: std::ops::Range<u8>) -> Vec<FileInfo> {
    range.map(|b| file(b, &format!("f{b}"), true)).collect()
}

#[test]
fn the_file_cap_refuses_a_register_and_keeps_earlier_files() {
    let limits = Limits {
        max_files_per_peer: 5,
        max_swarms: 100,
    };
    let mut f = Fixture::with_limits(4, limits);
    let p = ip("10.0.0.1");
    f.reg.register(p, "p", 1, &files(0..3), f.at(0)).unwrap();
    // 3 held + 3 new (one of the four is held already) = 6 > 5.
    let e = f
        .reg
        .register(p, "p", 2, &files(2..6), f.at(1))
        .unwrap_err();
    assert_eq!(
        e,
        RegisterError::TooManyFiles {
            limit: 5,
            have: 3,
            adding: 3
        }
    );
    assert!(e.to_string().contains("at most 5 files"), "{e}");
    for b in 0..3 {
        assert_eq!(f.ids(b, 2), ["p"]);
    }
    assert!(f.list(3, None, 50, 2).is_none());
    // Refused means nothing changed, not even the port.
    assert_eq!(f.list(0, None, 50, 2).unwrap().peers[0].addr.port(), 1);
    assert_eq!(f.swarms(), 3);
    // Up to the cap is fine; a file mentioned twice counts once; files
    // already held do not count again.
    let mut up_to = files(0..5);
    up_to.push(file(4, "f4", false));
    f.reg.register(p, "p", 1, &up_to, f.at(3)).unwrap();
    assert_eq!(f.list(4, None, 50, 3).unwrap().leechers, 1);
    f.reg.register(p, "p", 1, &files(0..5), f.at(4)).unwrap();
    assert!(matches!(
        f.reg.register(p, "p", 1, &files(5..6), f.at(5)),
        Err(RegisterError::TooManyFiles { have: 5, .. })
    ));
    // The cap is per peer: another peer id may register its own files.
    f.reg.register(p, "q", 1, &files(5..10), f.at(5)).unwrap();
    // After EXIT the peer starts from nothing.
    f.reg.exit(p, "p", f.at(6)).unwrap();
    f.reg.register(p, "p", 1, &files(20..25), f.at(7)).unwrap();
    assert_eq!(f.swarms(), 10);
}

#[test]
fn a_file_left_through_bep15_stopped_is_not_counted_twice() {
    let limits = Limits {
        max_files_per_peer: 2,
        max_swarms: 100,
    };
    let mut f = Fixture::with_limits(2, limits);
    let p = ip("10.0.0.1");
    f.reg.register(p, "p", 1, &files(1..3), f.at(0)).unwrap();
    f.announce("10.0.0.1:1", "p", 1, AnnounceEvent::Stopped, 1)
        .unwrap();
    assert!(f.list(1, None, 50, 1).is_none());
    f.reg.register(p, "p", 1, &files(1..3), f.at(2)).unwrap();
    assert_eq!(f.ids(1, 2), ["p"]);
    assert_eq!(f.list(1, None, 50, 2).unwrap().peers.len(), 1);
    assert_eq!(f.swarms(), 2);
}

#[test]
fn a_bep15_announce_takes_over_one_swarm_entry_of_a_json_peer() {
    let mut f = Fixture::new();
    let p = ip("10.0.0.1");
    f.reg.register(p, "p", 1, &files(1..3), f.at(0)).unwrap();
    f.announce("10.0.0.1:7", "p", 1, AnnounceEvent::Update, 1_000)
        .unwrap();
    assert_eq!(f.list(1, None, 50, 1_000).unwrap().peers[0].addr.port(), 7);
    // The heartbeat refreshes the JSON entries only; the announced one
    // expires 30 s after its announce.
    f.reg.heartbeat(p, "p", f.at(20_000)).unwrap();
    assert!(f.ids(1, 31_000).is_empty());
    assert_eq!(f.ids(2, 31_000), ["p"]);
    // A REGISTER naming the file puts the entry back under the record.
    f.reg
        .register(p, "p", 9, &files(1..2), f.at(32_000))
        .unwrap();
    f.reg.heartbeat(p, "p", f.at(60_000)).unwrap();
    assert_eq!(f.list(1, None, 50, 61_000).unwrap().peers[0].addr.port(), 9);
    assert_eq!(f.list(2, None, 50, 61_000).unwrap().peers[0].addr.port(), 9);
    assert_eq!(f.reg.exit(p, "p", f.at(61_000)), Ok(9));
    assert_eq!(f.swarms(), 0);
}

#[test]
fn the_swarm_cap_refuses_new_swarms_only() {
    let limits = Limits {
        max_files_per_peer: 100,
        max_swarms: 3,
    };
    let mut f = Fixture::with_limits(4, limits);
    f.reg
        .register(ip("10.0.0.1"), "p", 1, &files(1..3), f.at(0))
        .unwrap();
    // Would create swarms 3 and 4: one too many. Nothing happens at all.
    let e = f
        .reg
        .register(ip("10.0.0.2"), "q", 1, &files(2..5), f.at(1))
        .unwrap_err();
    assert_eq!(e, RegisterError::Full(TrackerFull { limit: 3 }));
    assert!(e.to_string().contains("limit of 3 swarms"), "{e}");
    assert_eq!(
        f.reg.heartbeat(ip("10.0.0.2"), "q", f.at(1)),
        Err(UnknownPeer)
    );
    assert_eq!(f.ids(2, 1), ["p"]);
    assert!(f.list(3, None, 50, 1).is_none());
    assert_eq!(f.swarms(), 2);
    // Joining existing swarms and creating one that fits work.
    f.reg
        .register(ip("10.0.0.2"), "q", 1, &files(1..4), f.at(2))
        .unwrap();
    assert_eq!(f.swarms(), 3);
    f.reg
        .register(ip("10.0.0.3"), "r", 1, &files(1..4), f.at(2))
        .unwrap();
    // BEP 15 cannot start a fourth swarm but can join the three.
    assert_eq!(
        f.announce("10.0.0.4:1", "bt", 9, AnnounceEvent::Update, 3),
        Err(TrackerFull { limit: 3 })
    );
    assert!(f.list(9, None, 50, 3).is_none());
    f.announce("10.0.0.4:1", "bt", 1, AnnounceEvent::Update, 3)
        .unwrap();
    // Swarms that go away free their place: EXIT, stopped, expiry.
    f.announce("10.0.0.4:1", "bt", 1, AnnounceEvent::Stopped, 4)
        .unwrap();
    f.reg.exit(ip("10.0.0.1"), "p", f.at(4)).unwrap();
    f.reg.exit(ip("10.0.0.2"), "q", f.at(4)).unwrap();
    assert_eq!(f.swarms(), 3);
    f.reg.exit(ip("10.0.0.3"), "r", f.at(4)).unwrap();
    assert_eq!(f.swarms(), 0);
    f.announce("10.0.0.4:1", "bt", 9, AnnounceEvent::Update, 5)
        .unwrap();
    f.reg
        .register(ip("10.0.0.1"), "p", 1, &files(1..3), f.at(5))
        .unwrap();
    assert_eq!(f.swarms(), 3);
    f.reg.sweep(f.at(5 + 30_000));
    assert_eq!(f.swarms(), 0);
    f.reg
        .register(ip("10.0.0.1"), "p", 1, &files(1..4), f.at(40_000))
        .unwrap();
    assert_eq!(f.swarms(), 3);
}

#[test]
fn search_keeps_the_first_hits_by_name() {
    let f = Fixture::new();
    // 2,600 swarms in one peer's REGISTERs, named in an order unlike the hashes.
    let n = 2_600u32;
    let all: Vec<FileInfo> = (0..n)
        .map(|i| {
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&i.to_le_bytes());
            FileInfo {
                info_hash: InfoHash(hash),
                name: format!("n{:05}", (i * 7919) % n),
                size: 1,
                complete: true,
            }
        })
        .collect();
    for chunk in all.chunks(500) {
        f.reg
            .register(ip("10.0.0.1"), "p", 1, chunk, f.at(0))
            .unwrap();
    }
    let mut hits = Vec::new();
    f.reg.search("N0", &mut hits);
    assert_eq!(hits.len(), MAX_SEARCH_HITS);
    for (i, hit) in hits.iter().enumerate() {
        assert_eq!(hit.name, format!("n{i:05}"));
    }
    f.reg.search("n025", &mut hits);
    assert_eq!(hits.len(), 100);
}
