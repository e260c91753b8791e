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
