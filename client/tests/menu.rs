//! The interactive menu driven through a pipe, and `share DIR`.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn menu_through_a_pipe_seed_then_download_by_name() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("menu");
    let s = tmp.sub("s");
    let data = s.join("menu-file.bin");
    write_random(&data, 3 * 1024 * 1024 + 7);
    let t = tracker.arg();

    let mut seeder = Proc::spawn(
        "menu-seeder",
        &minitorrent_bin(),
        &["--tracker", &t],
        &[],
        true,
    );
    seeder.out.wait_for("6) exit", TIMEOUT);
    seeder.send_line("1");
    seeder.send_line(data.to_str().unwrap());
    seeder.out.wait_for("seeding menu-file.bin", TIMEOUT);

    let l = tmp.sub("l");
    let mut leecher = Proc::spawn(
        "menu-leecher",
        &minitorrent_bin(),
        &["--tracker", &t, "--dir", l.to_str().unwrap()],
        &[],
        true,
    );
    leecher.send_line("3");
    leecher.send_line("menu");
    leecher.out.wait_for("seeders 1", TIMEOUT);
    leecher.send_line("2");
    leecher.send_line("menu-file.bin");
    leecher
        .out
        .wait_for("download complete: menu-file.bin", TIMEOUT);
    leecher.out.wait_for("now seeding menu-file.bin", TIMEOUT);
    assert_same_file(&data, &l.join("menu-file.bin"));
    leecher.send_line("4");
    leecher.out.wait_for("[seeding]", TIMEOUT);
    leecher.send_line("5");
    leecher.send_line("1");
    leecher
        .out
        .wait_for("magnet: magnet:?xt=urn:btih:", TIMEOUT);

    // End of input: a clean exit (EXIT sent to the tracker).
    leecher.close_stdin();
    assert!(leecher.wait(TIMEOUT).success(), "{}", leecher.dump());
    assert!(leecher.err.contains("sent EXIT"), "{}", leecher.dump());
    seeder.send_line("6");
    assert!(seeder.wait(TIMEOUT).success(), "{}", seeder.dump());
}

#[test]
fn menu_waits_for_downloads_at_end_of_input() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("menu-eof");
    let s = tmp.sub("s");
    let data = s.join("eof.bin");
    write_random(&data, 1024 * 1024);
    let t = tracker.arg();
    let mut seeder = Proc::mt("seeder", &["seed", data.to_str().unwrap(), "--tracker", &t]);
    seeder.out.wait_for("seeding eof.bin", TIMEOUT);
    let l = tmp.sub("l");
    // All input at once, then end of input, as `printf ... | minitorrent` does.
    let mut leecher = Proc::spawn(
        "leecher",
        &minitorrent_bin(),
        &["--tracker", &t, "--dir", l.to_str().unwrap()],
        &[],
        true,
    );
    leecher.send_line("2 eof.bin");
    leecher.close_stdin();
    assert!(leecher.wait(TIMEOUT).success(), "{}", leecher.dump());
    assert!(
        leecher.out.contains("download complete: eof.bin"),
        "{}",
        leecher.dump()
    );
    assert_same_file(&data, &l.join("eof.bin"));
    seeder.interrupt();
    assert!(seeder.wait(TIMEOUT).success());
}

#[test]
fn share_a_directory_and_reuse_the_cache() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("share");
    let shared = tmp.sub("shared");
    let a = write_random(&shared.join("a.bin"), 400_000);
    write_random(&shared.join("sub/b.bin"), 300_000);
    let t = tracker.arg();
    let mut sharer = Proc::mt(
        "share",
        &["share", shared.to_str().unwrap(), "--tracker", &t],
    );
    sharer.out.wait_for("seeding a.bin", TIMEOUT);
    sharer.out.wait_for("seeding b.bin", TIMEOUT);
    assert!(shared.join(".minitorrent/cache.json").exists());
    let l = tmp.sub("l");
    get_ok("leecher", &tracker, "b.bin", &l, &[]);
    assert_same_file(&shared.join("sub/b.bin"), &l.join("b.bin"));
    sharer.interrupt();
    assert!(sharer.wait(TIMEOUT).success(), "{}", sharer.dump());

    // Restart: unchanged files come from the cache, not hashed again.
    let mut sharer = Proc::mt(
        "share2",
        &["share", shared.to_str().unwrap(), "--tracker", &t],
    );
    sharer.out.wait_for("seeding a.bin", TIMEOUT);
    sharer.out.wait_for("seeding b.bin", TIMEOUT);
    assert!(
        sharer
            .err
            .contains("a.bin unchanged, using the cached metainfo"),
        "{}",
        sharer.dump()
    );
    let l2 = tmp.sub("l2");
    get_ok("leecher2", &tracker, "a.bin", &l2, &[]);
    assert_eq!(std::fs::read(l2.join("a.bin")).unwrap(), a);
    sharer.interrupt();
    assert!(sharer.wait(Duration::from_secs(30)).success());
}
