//! A swarm that goes on without its tracker: the tracker is killed in the
//! middle of a download from two seeders, and the download completes from
//! the peers it already knows, byte for byte.

mod common;

use common::*;

#[test]
fn a_download_completes_from_known_peers_when_the_tracker_dies() {
    let mut s = swarm("tracker-down", 12_000_000, 64 * 1024);
    let second = seed_torrent("seeder2", &s.tracker, &s.torrent, &s.dir, &[]);
    let l = s.tmp.sub("l");
    // Slow enough that the tracker dies while pieces are still missing.
    let mut leecher = start_get(
        "leecher",
        &s.tracker,
        s.torrent.to_str().unwrap(),
        &l,
        &["--max-download-rate", "2M", "--no-discover"],
    );
    wait_until("two peers and the first pieces", TIMEOUT, || {
        leecher.err.contains("2 peers") && allocated(&l.join("f.bin.part")) > 0
    });
    s.tracker.proc.kill();
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert!(leecher.out.contains("SHA-1 verified"), "{}", leecher.dump());
    assert!(
        leecher.out.contains("from 2 peers"),
        "both seeders kept serving: {}",
        leecher.dump()
    );
    assert_same_file(&s.data, &l.join("f.bin"));
    drop(second);
}

/// A torrent with two trackers: the first is killed in the middle of a
/// download; the download completes, and the peers move to the second
/// tracker within a heartbeat or so (the trackers ask for one a second).
#[test]
fn peers_move_to_the_second_tracker_when_the_first_dies() {
    let fast = ["--bind", "127.0.0.1:0", "--peer-timeout", "3"];
    let mut t1 = Tracker::start_with(&fast);
    let t2 = Tracker::start_with(&fast);
    let tmp = TempDir::new("two-trackers");
    let dir = tmp.sub("s");
    let data = dir.join("f.bin");
    write_random(&data, 12_000_000);
    let torrent = tmp.join("f.torrent");
    let (a1, a2) = (t1.arg(), t2.arg());
    let mut c = Proc::mt(
        "create",
        &[
            "create",
            data.to_str().unwrap(),
            "-o",
            torrent.to_str().unwrap(),
            "--no-discover",
            "--tracker",
            &a1,
            "--tracker",
            &a2,
        ],
    );
    assert!(c.wait(TIMEOUT).success(), "{}", c.dump());
    let t = torrent.to_str().unwrap();
    // No --tracker: the torrent's trackers are used, the first one first.
    let seeder = Proc::mt(
        "seeder",
        &["seed", t, "--dir", dir.to_str().unwrap(), "--no-discover"],
    );
    seeder.out.wait_for("seeding ", TIMEOUT);
    let l = tmp.sub("l");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "get",
            t,
            "--no-seed",
            "--dir",
            l.to_str().unwrap(),
            "--no-discover",
            "--max-download-rate",
            "1M",
        ],
    );
    wait_until("the first pieces", TIMEOUT, || {
        allocated(&l.join("f.bin.part")) > 0
    });
    assert!(
        search(&t2).is_empty() || !search(&t2).contains("seeders 1"),
        "nobody registered with the second tracker yet"
    );
    t1.proc.kill();
    // The seeder (and the leecher) register with the second tracker.
    wait_until("the seeder listed by the second tracker", TIMEOUT, || {
        search(&t2).contains("seeders 1")
    });
    assert!(
        seeder.err.contains("trying the next tracker"),
        "{}",
        seeder.dump()
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert_same_file(&data, &l.join("f.bin"));
}

/// `minitorrent search` against a tracker: its output.
fn search(t: &Tracker) -> String {
    let mut p = Proc::mt(
        "search",
        &["search", "--tracker", &t.arg(), "--no-discover"],
    );
    p.wait(TIMEOUT);
    p.out.text()
}

/// The first tracker of a torrent is down when a seeder starts: it
/// registers with the second one at once.
#[test]
fn a_seed_registers_with_the_second_tracker_when_the_first_is_down() {
    let mut t1 = Tracker::start();
    let t2 = Tracker::start();
    let tmp = TempDir::new("first-down");
    let data = tmp.join("f.bin");
    write_random(&data, 100_000);
    let torrent = tmp.join("f.torrent");
    let (a1, a2) = (t1.arg(), t2.arg());
    let (d, t) = (data.to_str().unwrap(), torrent.to_str().unwrap());
    let mut c = Proc::mt(
        "create",
        &[
            "create",
            d,
            "-o",
            t,
            "--no-discover",
            "--tracker",
            &a1,
            "--tracker",
            &a2,
        ],
    );
    assert!(c.wait(TIMEOUT).success(), "{}", c.dump());
    t1.proc.kill();
    let seeder = Proc::mt(
        "seeder",
        &[
            "seed",
            t,
            "--dir",
            tmp.path().to_str().unwrap(),
            "--no-discover",
        ],
    );
    seeder.out.wait_for("seeding f.bin", TIMEOUT);
    assert!(search(&t2).contains("seeders 1"), "{}", seeder.dump());
}

/// The tracker dies, and then the only seeder drops in the middle of the
/// download: when the seeder comes back on the same address (registered
/// with another tracker, which the leecher does not know), the leecher
/// dials it again from its own memory and completes.
#[test]
fn a_seeder_that_drops_is_dialled_again_without_a_tracker() {
    let mut s = swarm("redial", 8_000_000, 64 * 1024);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let seed_args = ["--port", port.as_str(), "--no-discover"];
    // The swarm's own seeder steps aside: one seeder, on a known port.
    s.seeder.kill();
    let mut seeder = seed_torrent("seeder", &s.tracker, &s.torrent, &s.dir, &seed_args);
    let l = s.tmp.sub("l");
    let mut leecher = start_get(
        "leecher",
        &s.tracker,
        s.torrent.to_str().unwrap(),
        &l,
        &["--max-download-rate", "1M", "--no-discover"],
    );
    wait_until("the first pieces", TIMEOUT, || {
        allocated(&l.join("f.bin.part")) > 0
    });
    s.tracker.proc.kill();
    seeder.kill();
    assert!(
        !leecher.out.contains("SHA-1 verified"),
        "{}",
        leecher.dump()
    );
    let elsewhere = Tracker::start();
    let back = seed_torrent("seeder-again", &elsewhere, &s.torrent, &s.dir, &seed_args);
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}", leecher.dump());
    assert_same_file(&s.data, &l.join("f.bin"));
    drop(back);
}
