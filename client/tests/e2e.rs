//! End to end: real seeders, leechers and tracker on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;

const PIECE: u32 = 32 * 1024;

#[test]
fn one_seeder_one_leecher_from_torrent_magnet_and_name() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("1to1");
    let sdir = tmp.sub("seed");
    let data = sdir.join("data.bin");
    write_random(&data, 5 * 1024 * 1024 + 12345);
    let torrent = tmp.join("data.torrent");
    let magnet = create_torrent(&data, &torrent, &tracker, PIECE);
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &sdir, &[]);

    let l1 = tmp.sub("l1");
    let p = get_ok("torrent", &tracker, torrent.to_str().unwrap(), &l1, &[]);
    assert_same_file(&data, &l1.join("data.bin"));
    assert!(!l1.join("data.bin.part").exists());
    let done = p.out.wait_for("done: data.bin", TIMEOUT);
    assert!(done.contains(" fetched at "), "{done}");
    assert!(done.contains("/s from 1 peer, "), "{done}");

    let l2 = tmp.sub("l2");
    let p = get_ok("magnet", &tracker, &magnet, &l2, &["--trace"]);
    assert!(p.out.contains("metadata received"), "{}", p.dump());
    // --trace: every message decoded, one line each, with both ends.
    for pat in [
        "tracker 127.0.0.1:",
        "PEERS data.bin",
        "HANDSHAKE info_hash=",
        "EXT-HANDSHAKE m={ut_metadata:1, ut_pex:2}",
        "METADATA DATA piece 0",
        "REQUEST piece 0 offset 0 length 16384",
        "PIECE 0 offset 0 (16384 bytes)",
    ] {
        assert!(p.err.contains(pat), "no {pat:?} in the trace\n{}", p.dump());
    }
    assert_same_file(&data, &l2.join("data.bin"));

    let l3 = tmp.sub("l3");
    let stats = tmp.join("stats.json");
    get_ok(
        "name",
        &tracker,
        "data.bin",
        &l3,
        &["--stats", stats.to_str().unwrap()],
    );
    assert_same_file(&data, &l3.join("data.bin"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(json["size"], 5 * 1024 * 1024 + 12345);
    let from = json["bytes_from_peers"].as_object().unwrap();
    let total: u64 = from.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 5 * 1024 * 1024 + 12345);
}

#[test]
fn two_seeders_three_leechers_at_once() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("swarm");
    let s1 = tmp.sub("s1");
    let s2 = tmp.sub("s2");
    let data = s1.join("swarm.bin");
    write_random(&data, 6 * 1024 * 1024);
    std::fs::copy(&data, s2.join("swarm.bin")).unwrap();
    let torrent = tmp.join("swarm.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    // Slow seeders make the leechers trade among themselves too.
    let _a = seed_torrent(
        "seed1",
        &tracker,
        &torrent,
        &s1,
        &["--max-upload-rate", "3M"],
    );
    let _b = seed_torrent(
        "seed2",
        &tracker,
        &torrent,
        &s2,
        &["--max-upload-rate", "3M"],
    );
    let dirs: Vec<_> = (0..3).map(|i| tmp.sub(&format!("l{i}"))).collect();
    let mut leechers: Vec<Proc> = dirs
        .iter()
        .map(|d| start_get("leecher", &tracker, torrent.to_str().unwrap(), d, &[]))
        .collect();
    for (l, d) in leechers.iter_mut().zip(&dirs) {
        let st = l.wait(TIMEOUT);
        assert!(st.success(), "{}", l.dump());
        assert_same_file(&data, &d.join("swarm.bin"));
    }
}

#[test]
fn seeder_killed_mid_transfer() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("kill");
    let s1 = tmp.sub("s1");
    let s2 = tmp.sub("s2");
    let data = s1.join("k.bin");
    write_random(&data, 6 * 1024 * 1024);
    std::fs::copy(&data, s2.join("k.bin")).unwrap();
    let torrent = tmp.join("k.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    let mut a = seed_torrent(
        "seed1",
        &tracker,
        &torrent,
        &s1,
        &["--max-upload-rate", "1M"],
    );
    let _b = seed_torrent(
        "seed2",
        &tracker,
        &torrent,
        &s2,
        &["--max-upload-rate", "1M"],
    );
    let l = tmp.sub("l");
    let mut g = start_get("leecher", &tracker, torrent.to_str().unwrap(), &l, &[]);
    // Both seeders connected and some data written: then one dies.
    wait_until("two peers connected", TIMEOUT, || {
        g.err.text().matches("connected to outbound").count() >= 2
    });
    let part = l.join("k.bin.part");
    wait_until("1 MiB on disk", TIMEOUT, || allocated(&part) >= 1 << 20);
    a.kill();
    let st = g.wait(TIMEOUT);
    assert!(st.success(), "{}", g.dump());
    assert_same_file(&data, &l.join("k.bin"));
}

#[test]
fn resume_fetches_only_missing_pieces() {
    let sw = swarm_with(
        "resume",
        "r.bin",
        6 * 1024 * 1024,
        PIECE,
        &["--max-upload-rate", "3M"],
    );
    let (tracker, tmp, data, torrent) = (&sw.tracker, &sw.tmp, &sw.data, &sw.torrent);
    let l = tmp.sub("l");
    let mut g = start_get("first", tracker, torrent.to_str().unwrap(), &l, &[]);
    let part = l.join("r.bin.part");
    wait_until("2 MiB on disk", TIMEOUT, || allocated(&part) >= 2 << 20);
    g.kill(); // a crash: no clean shutdown
    assert!(
        !l.join("r.bin").exists(),
        "an unfinished file must not carry the final name"
    );
    // Ctrl-C: a clean stop (EXIT sent, files flushed), still no final name.
    let mut g = start_get("second", tracker, torrent.to_str().unwrap(), &l, &[]);
    g.err.wait_for("resume:", TIMEOUT);
    wait_until("4 MiB on disk", TIMEOUT, || allocated(&part) >= 4 << 20);
    g.interrupt();
    let st = g.wait(TIMEOUT);
    assert_eq!(st.code(), Some(130), "{}", g.dump());
    assert!(g.err.contains("sent EXIT"), "{}", g.dump());
    assert!(!l.join("r.bin").exists());
    let stats = tmp.join("stats.json");
    let g = get_ok(
        "third",
        tracker,
        torrent.to_str().unwrap(),
        &l,
        &["--stats", stats.to_str().unwrap()],
    );
    assert_same_file(data, &l.join("r.bin"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let on_disk = json["pieces_verified_on_disk"].as_u64().unwrap();
    let fetched = json["pieces_fetched"].as_u64().unwrap();
    let total = json["pieces_total"].as_u64().unwrap();
    assert!(on_disk >= 128, "only {on_disk} pieces kept\n{}", g.dump());
    assert_eq!(on_disk + fetched, total, "{}", g.dump());
    // The rate is that of the bytes fetched this time, not of the file.
    let got = json["bytes_from_peers"].as_object().unwrap();
    let got: u64 = got.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(json["bytes_fetched"].as_u64(), Some(got), "{}", g.dump());
    assert_eq!(got, fetched * u64::from(PIECE), "{}", g.dump());
    let rate = json["mib_per_s"].as_f64().unwrap() * 1024.0 * 1024.0;
    let secs = json["fetch_seconds"].as_f64().unwrap();
    assert!((rate * secs - got as f64).abs() < 1.0, "{}", g.dump());
}

#[test]
fn multi_file_torrent() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("multi");
    let s = tmp.sub("s");
    let root = s.join("album");
    write_random(&root.join("a.bin"), 700_000);
    write_random(&root.join("sub/b.bin"), 1_500_000);
    write_random(&root.join("sub/deeper/c.txt"), 33);
    std::fs::write(root.join("empty"), b"").unwrap();
    let torrent = tmp.join("album.torrent");
    create_torrent(&root, &torrent, &tracker, PIECE);
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    let l = tmp.sub("l");
    get_ok("leecher", &tracker, torrent.to_str().unwrap(), &l, &[]);
    for f in ["a.bin", "sub/b.bin", "sub/deeper/c.txt", "empty"] {
        assert_same_file(&root.join(f), &l.join("album").join(f));
    }
}

#[test]
fn seeding_a_path_and_keeps_seeding_after_download() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("autoseed");
    let s = tmp.sub("s");
    let data = s.join("auto.bin");
    write_random(&data, 2 * 1024 * 1024);
    // Seed the path itself (hashed on start).
    let t = tracker.arg();
    let mut seeder = Proc::mt("seeder", &["seed", data.to_str().unwrap(), "--tracker", &t]);
    seeder.out.wait_for("seeding auto.bin", TIMEOUT);
    // Leecher 1 downloads and keeps seeding.
    let l1 = tmp.sub("l1");
    let mut g1 = Proc::mt(
        "l1",
        &[
            "get",
            "auto.bin",
            "--dir",
            l1.to_str().unwrap(),
            "--tracker",
            &t,
        ],
    );
    g1.out.wait_for("seeding auto.bin", TIMEOUT);
    assert_same_file(&data, &l1.join("auto.bin"));
    // The original seeder leaves; leecher 2 gets the file from leecher 1.
    seeder.interrupt();
    assert!(seeder.wait(TIMEOUT).success(), "{}", seeder.dump());
    let l2 = tmp.sub("l2");
    get_ok("l2", &tracker, "auto.bin", &l2, &[]);
    assert_same_file(&data, &l2.join("auto.bin"));
    g1.interrupt();
    assert!(g1.wait(TIMEOUT).success(), "{}", g1.dump());
}

#[test]
fn rerun_of_a_complete_download_fetches_nothing() {
    let sw = swarm_with("rerun", "x.bin", 1024 * 1024, PIECE, &[]);
    let Swarm {
        tracker,
        tmp,
        data: _,
        torrent,
        ..
    } = &sw;
    let l = tmp.sub("l");
    get_ok("first", tracker, torrent.to_str().unwrap(), &l, &[]);
    let p = get_ok("again", tracker, torrent.to_str().unwrap(), &l, &[]);
    let done = p.out.wait_for("done:", TIMEOUT);
    assert!(
        done.contains("0 pieces fetched, 32 already on disk"),
        "{done}"
    );
    let _ = Duration::ZERO;
}

#[test]
fn leecher_waits_for_a_seeder_to_appear() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("later");
    let s = tmp.sub("s");
    let data = s.join("later.bin");
    write_random(&data, 1024 * 1024);
    let torrent = tmp.join("later.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    let l = tmp.sub("l");
    // Nobody has the file yet: the leecher registers and keeps asking.
    let mut g = start_get("leecher", &tracker, torrent.to_str().unwrap(), &l, &[]);
    g.err.wait_for("registered later.bin with tracker", TIMEOUT);
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    let st = g.wait(TIMEOUT);
    assert!(st.success(), "{}", g.dump());
    assert_same_file(&data, &l.join("later.bin"));
}

#[test]
fn a_restarted_tracker_learns_the_seeder_again() {
    // A short peer timeout makes the tracker ask for a heartbeat every second.
    let mut first = Tracker::start_with(&["--bind", "127.0.0.1:0", "--peer-timeout", "3"]);
    let addr = first.arg();
    let tmp = TempDir::new("retrack");
    let s = tmp.sub("s");
    let data = s.join("re.bin");
    write_random(&data, 300_000);
    let mut seeder = Proc::mt(
        "seeder",
        &["seed", data.to_str().unwrap(), "--tracker", &addr],
    );
    seeder.out.wait_for("seeding re.bin", TIMEOUT);
    first.proc.kill();
    let second = Tracker::start_with(&["--bind", &addr, "--peer-timeout", "3"]);
    // The seeder's next HEARTBEAT gets unknown_peer, and it registers again.
    seeder.err.wait_for("forgot us; registering again", TIMEOUT);
    let l = tmp.sub("l");
    get_ok("leecher", &second, "re.bin", &l, &[]);
    assert_same_file(&data, &l.join("re.bin"));
    seeder.interrupt();
    assert!(seeder.wait(TIMEOUT).success());
}
