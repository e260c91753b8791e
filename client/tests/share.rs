//! A shared folder whose files change: a file rewritten in place is
//! withdrawn and announced again under its new info hash, a deleted file is
//! withdrawn, a leecher of the old hash is told it is gone, and a seeder
//! never serves bytes that changed under it as the old torrent's pieces.

mod common;

use std::time::Duration;

use common::*;

/// Rescan and settle times for `share` (ms): fast, so the tests are.
const RESCAN_MS: u64 = 200;
const SETTLE_MS: u64 = 400;

fn search(tracker: &Tracker, query: &str) -> String {
    let t = tracker.arg();
    let mut p = Proc::mt("search", &["search", query, "--tracker", &t]);
    assert!(p.wait(TIMEOUT).success(), "{}", p.dump());
    p.out.text()
}

#[test]
fn a_file_rewritten_in_place_is_announced_again_and_its_old_hash_is_gone() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("share-rewrite");
    let shared = tmp.sub("shared");
    let notes = shared.join("notes.bin");
    write_random(&notes, 300_000);
    let other = write_random(&shared.join("sub/other.bin"), 100_000);
    let mut sharer = start_share("share", &tracker, &shared, RESCAN_MS, SETTLE_MS, &[]);
    let old = seeding_hash(&sharer, "notes.bin");
    seeding_hash(&sharer, "other.bin");
    let torrents = shared.join(".minitorrent/torrents");
    assert!(torrents.join(format!("{old}.torrent")).exists());

    // Rewritten in place: same size, other bytes.
    let new_data = random_bytes(300_000);
    rewrite_in_place(&notes, &new_data);
    let line = sharer
        .out
        .wait_for("changed: notes.bin, re-announced as ", TIMEOUT);
    let new = hash_in(&line);
    assert_ne!(new, old, "{line}");
    assert!(
        sharer
            .out
            .contains("changed: notes.bin, withdrawn from the tracker"),
        "{}",
        sharer.dump()
    );

    // The tracker lists only the new version.
    let found = search(&tracker, "notes");
    assert!(found.contains(&new.to_hex()), "{found}");
    assert!(!found.contains(&old.to_hex()), "{found}");
    // The cached metainfo was replaced.
    assert!(torrents.join(format!("{new}.torrent")).exists());
    assert!(!torrents.join(format!("{old}.torrent")).exists());
    let cache = std::fs::read_to_string(shared.join(".minitorrent/cache.json")).unwrap();
    assert!(cache.contains(&new.to_hex()) && !cache.contains(&old.to_hex()));

    // A download by name gets the new content, byte for byte.
    let l = tmp.sub("l");
    get_ok("leecher", &tracker, "notes.bin", &l, &[]);
    assert_eq!(std::fs::read(l.join("notes.bin")).unwrap(), new_data);
    // The other file is still shared as it was.
    let l2 = tmp.sub("l2");
    get_ok("leecher2", &tracker, "other.bin", &l2, &[]);
    assert_eq!(std::fs::read(l2.join("other.bin")).unwrap(), other);

    // A leecher of the old hash is told it is gone.
    let mut stale = start_get("stale", &tracker, &old.to_hex(), &tmp.sub("o"), &[]);
    let told = stale.err.wait_for("no peer shares this file", TIMEOUT);
    assert!(told.contains(&old.to_hex()), "{told}");
    assert!(told.contains("minitorrent search"), "{told}");
    stale.kill();

    // A deleted file is withdrawn.
    std::fs::remove_file(shared.join("sub/other.bin")).unwrap();
    sharer.out.wait_for(
        "removed: sub/other.bin, withdrawn from the tracker",
        TIMEOUT,
    );
    // (The tracker thread sends EXIT, then REGISTER of the files left,
    // right after: between the two the tracker lists none of them.)
    wait_until("the tracker to list notes.bin alone", TIMEOUT, || {
        let found = search(&tracker, "");
        !found.contains("other.bin") && found.contains(&new.to_hex())
    });

    sharer.interrupt();
    assert!(sharer.wait(TIMEOUT).success(), "{}", sharer.dump());
}

#[test]
fn a_leecher_of_the_old_version_gets_no_bad_piece_and_is_told_it_is_gone() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("share-midway");
    let shared = tmp.sub("shared");
    let notes = shared.join("notes.bin");
    let old_data = write_random(&notes, 1_000_000);
    // Slow enough that the download is under way when the file changes.
    let mut sharer = start_share(
        "share",
        &tracker,
        &shared,
        RESCAN_MS,
        SETTLE_MS,
        &["--max-upload-rate", "100k"],
    );
    let old = seeding_hash(&sharer, "notes.bin");
    let dir = tmp.sub("l");
    let mut leecher = start_get("leecher", &tracker, &old.to_hex(), &dir, &[]);
    leecher.out.wait_for("metadata received", TIMEOUT);
    wait_until("the first pieces", TIMEOUT, || {
        allocated(&dir.join("notes.bin.part")) > 0
    });

    let mut new_data = old_data.clone();
    new_data.reverse();
    rewrite_in_place(&notes, &new_data);
    let line = sharer
        .out
        .wait_for("changed: notes.bin, re-announced as ", TIMEOUT);
    assert_ne!(hash_in(&line), old);

    let told = leecher
        .err
        .wait_for("no peer shares this file any more", TIMEOUT);
    assert!(told.contains(&old.to_hex()), "{told}");
    // Every piece it got was a piece of the old version: none failed.
    assert!(
        !leecher.err.contains("failed the SHA-1 check"),
        "{}",
        leecher.dump()
    );
    assert!(!dir.join("notes.bin").exists(), "never complete");
    leecher.kill();
    sharer.interrupt();
    assert!(sharer.wait(TIMEOUT).success(), "{}", sharer.dump());
}

#[test]
fn a_seeder_never_serves_bytes_that_changed_under_it() {
    const PIECE: usize = 32 * 1024;
    let tracker = Tracker::start();
    let tmp = TempDir::new("seed-changed");
    let path = tmp.join("f.bin");
    let data = write_random(&path, 4 * PIECE);
    let t = tracker.arg();
    let mut seeder = Proc::mt(
        "seeder",
        &[
            "seed",
            path.to_str().unwrap(),
            "--tracker",
            &t,
            "--piece-length",
            &PIECE.to_string(),
        ],
    );
    let ih = seeding_hash(&seeder, "f.bin");
    // It said what it was hashing (stderr is a pipe here: quarter lines;
    // read by its own thread, which may lag behind stdout's).
    seeder.err.wait_for("f.bin… 100 %", TIMEOUT);
    assert!(seeder.err.contains("f.bin… 0 %"), "{}", seeder.dump());

    let mut c = wire_leecher(seeder.port(), ih);
    let blk = 16 * 1024;
    assert_eq!(
        fetch_block(&mut c, 0, 0, blk as u32),
        Fetched::Data(data[..blk].to_vec())
    );

    // Piece 1 changes on disk; piece 0 does not.
    std::thread::sleep(Duration::from_millis(50));
    let changed: Vec<u8> = data[PIECE..2 * PIECE].iter().map(|b| !b).collect();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&changed, PIECE as u64).unwrap();
    }
    // Piece 0 still matches the torrent: served, as it was hashed.
    assert_eq!(
        fetch_block(&mut c, 0, blk as u32, blk as u32),
        Fetched::Data(data[blk..PIECE].to_vec())
    );
    // Piece 1 does not: never served; the seeder stops serving.
    assert_eq!(fetch_block(&mut c, 1, 0, blk as u32), Fetched::Closed);
    seeder
        .err
        .wait_for("no longer seeded under its old info hash", TIMEOUT);
    // It was the only file: the seeder ends, saying why.
    let st = seeder.wait(TIMEOUT);
    assert!(!st.success(), "{}", seeder.dump());
    assert!(
        seeder.err.contains("nothing left to seed"),
        "{}",
        seeder.dump()
    );
    // And the tracker no longer lists the old hash.
    let found = search(&tracker, "f.bin");
    assert!(!found.contains(&ih.to_hex()), "{found}");
}
