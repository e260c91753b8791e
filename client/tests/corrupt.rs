//! What a leecher tells its user when it cannot go on: every peer that has
//! the file sends corrupt data (a seeder whose copy no longer matches the
//! torrent), or the metadata is still being fetched. Real `minitorrent`
//! processes and a fake corrupt seeder on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

const PIECE: u32 = 32 * 1024;
const MAX_STRIKES: u32 = 3;

/// The strike numbers in the leecher's "strike N of 3" lines, in order.
fn strikes(text: &str) -> Vec<u32> {
    text.lines()
        .filter_map(|l| {
            let rest = &l[l.find("(strike ")? + "(strike ".len()..];
            let (n, of) = rest.split_once(" of ")?;
            assert!(of.starts_with("3)"), "limit misquoted: {l}");
            n.parse().ok()
        })
        .collect()
}

#[test]
fn a_leecher_whose_only_seeder_sends_corrupt_data_says_so() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("corrupt-only");
    let s = tmp.sub("s");
    let data = s.join("c.bin");
    write_random(&data, 2 * 1024 * 1024);
    let torrent = tmp.join("c.torrent");
    create_torrent(&data, &torrent, &tracker, PIECE);
    // The only peer with the file: every piece it sends fails the SHA-1
    // check (what a seeder whose file changed under it sends).
    let (bad_port, accepted) = start_corrupt_seeder(&tracker, &torrent, "c.bin", 2 * 1024 * 1024);
    let l = tmp.sub("l");
    let mut g = start_get("leecher", &tracker, torrent.to_str().unwrap(), &l, &[]);
    let said = g
        .err
        .wait_for("every peer that has this file sent corrupt data", TIMEOUT);
    assert!(
        said.contains("its seeder's copy no longer matches the torrent")
            && said.contains("(1 peer dropped after 3 bad pieces each)")
            && said.contains("share it again"),
        "{said}"
    );
    // The plain progress line (stderr is not a terminal) says it too.
    g.err
        .wait_for("ETA -, 0 peers: every peer that has", TIMEOUT);
    // Past the "no peer yet" notice's delay: that is never what it says.
    std::thread::sleep(Duration::from_secs(11));
    let err = g.err.text();
    assert!(
        !err.contains("no peer to download from yet"),
        "{}",
        g.dump()
    );
    // Strikes 1, 2, 3 and one drop, though the peer had many more pieces
    // in flight when it was dropped (all of them bad).
    assert_eq!(strikes(&err), vec![1, 2, MAX_STRIKES], "{}", g.dump());
    let drops = format!("dropping 127.0.0.1:{bad_port} after 3 bad pieces");
    assert_eq!(err.matches(&drops).count(), 1, "{}", g.dump());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "dialled again");
    assert!(
        !l.join("c.bin").exists(),
        "a wrong file presented as complete"
    );
    assert!(!g.out.contains("done:"), "{}", g.dump());
    g.interrupt();
    assert_eq!(g.wait(TIMEOUT).code(), Some(130), "{}", g.dump());
}

#[test]
fn progress_while_fetching_metadata_says_so() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("corrupt-meta");
    let s = tmp.sub("s");
    let data = s.join("m.bin");
    write_random(&data, 1024 * 1024);
    let torrent = tmp.join("m.torrent");
    let magnet = create_torrent(&data, &torrent, &tracker, PIECE);
    // A peer that never gives the metadata (it has no extension protocol).
    start_corrupt_seeder(&tracker, &torrent, "m.bin", 1024 * 1024);
    let l = tmp.sub("l");
    let mut g = start_get("leecher", &tracker, &magnet, &l, &[]);
    let line = g.err.wait_for("fetching metadata from 1 peer…", TIMEOUT);
    assert!(!line.contains("0 B") && !line.contains('%'), "{line}");
    let err = g.err.text();
    assert!(
        !err.contains("0 B/0 B") && !err.contains("100.0%"),
        "{}",
        g.dump()
    );
    g.interrupt();
    assert_eq!(g.wait(TIMEOUT).code(), Some(130), "{}", g.dump());
}
