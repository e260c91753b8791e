//! The interactive menu driven through a pipe, and `share DIR`.

mod common;

use std::path::Path;
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
    seeder.out.wait_for("8) exit", TIMEOUT);
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
    // Then the tracker in use, which has answered (no error).
    let line = leecher
        .out
        .wait_for(&format!("tracker udp://{t} (json) in use"), TIMEOUT);
    assert!(!line.contains("last error"), "{line}");
    leecher.send_line("5");
    leecher.send_line("1");
    leecher
        .out
        .wait_for("magnet: magnet:?xt=urn:btih:", TIMEOUT);

    // End of input: a clean exit (EXIT sent to the tracker).
    leecher.close_stdin();
    assert!(leecher.wait(TIMEOUT).success(), "{}", leecher.dump());
    assert!(leecher.err.contains("sent EXIT"), "{}", leecher.dump());
    seeder.send_line("8");
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
fn menu_pauses_resumes_limits_and_removes() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("menu-control");
    let data = tmp.sub("s").join("pause-me.bin");
    write_random(&data, 200_000);
    let t = tracker.arg();
    let mut m = Proc::spawn(
        "menu-control",
        &minitorrent_bin(),
        &["--tracker", &t],
        &[],
        true,
    );
    m.send_line(&format!("1 {}", data.display()));
    m.out.wait_for("seeding pause-me.bin", TIMEOUT);
    m.send_line("pause pause-me.bin");
    m.out.wait_for("paused pause-me.bin", TIMEOUT);
    m.send_line("4");
    m.out.wait_for("[paused]", TIMEOUT);
    m.send_line("resume pause-me.bin");
    m.out.wait_for("resumed pause-me.bin", TIMEOUT);
    m.send_line("4");
    m.out.wait_for("[seeding]", TIMEOUT);
    m.send_line("limit down 2M");
    let l = m.out.wait_for("limits: ", TIMEOUT);
    assert!(l.contains("upload unlimited, download 1.9 MiB/s"), "{l}");
    m.send_line("pause nothing.bin");
    m.out.wait_for("no torrent called \"nothing.bin\"", TIMEOUT);
    m.send_line("remove pause-me.bin");
    m.out.wait_for("removed pause-me.bin", TIMEOUT);
    assert!(data.exists(), "remove without --delete keeps the file");
    m.close_stdin();
    assert!(m.wait(TIMEOUT).success(), "{}", m.dump());
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
    let cache = shared.join(".minitorrent/cache.json");
    wait_until("the metainfo cache", TIMEOUT, || cache.exists());
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
    sharer
        .err
        .wait_for("a.bin unchanged, using the cached metainfo", TIMEOUT);
    let l2 = tmp.sub("l2");
    get_ok("leecher2", &tracker, "a.bin", &l2, &[]);
    assert_eq!(std::fs::read(l2.join("a.bin")).unwrap(), a);
    sharer.interrupt();
    assert!(sharer.wait(Duration::from_secs(30)).success());
}

/// A seeder of `path`, registered; returns it, its listening port and the
/// info hash it printed.
fn seed(name: &'static str, tracker: &Tracker, path: &Path) -> (Proc, u16, String) {
    let t = tracker.arg();
    let p = Proc::mt(name, &["seed", path.to_str().unwrap(), "--tracker", &t]);
    let line = p
        .out
        .wait_match(
            |l| l.starts_with("seeding ") && l.contains("info hash"),
            TIMEOUT,
        )
        .unwrap_or_else(|| panic!("seeder did not start\n{}", p.dump()));
    let hash = line.rsplit(' ').next().unwrap().to_string();
    let port = p.port();
    (p, port, hash)
}

/// A menu peer reading its commands from a pipe.
fn menu(name: &'static str, tracker: &Tracker, dir: &Path) -> Proc {
    let t = tracker.arg();
    Proc::spawn(
        name,
        &minitorrent_bin(),
        &["--tracker", &t, "--dir", dir.to_str().unwrap()],
        &[],
        true,
    )
}

/// The number the menu gave the candidate with info hash `hash`
/// (" 2. notes.pdf  …  info hash HEX").
fn number_of(p: &Proc, hash: &str) -> String {
    let line = p.out.wait_for(&format!("info hash {hash}"), TIMEOUT);
    let n = line
        .trim_start()
        .split('.')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(n.parse::<usize>().is_ok(), "no number in {line:?}");
    n
}

#[test]
fn menu_asks_which_of_two_files_with_one_name() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("menu-pick");
    let a = tmp.join("a/notes.pdf");
    let b = tmp.join("b/notes.pdf");
    write_random(&a, 200_000);
    write_random(&b, 450_003);
    let (mut sa, port_a, ha) = seed("seed-a", &tracker, &a);
    let (mut sb, _, hb) = seed("seed-b", &tracker, &b);

    let l = tmp.sub("l");
    let mut m = menu("menu-pick", &tracker, &l);
    // Download: the list, a wrong answer asked again, cancel, then a pick.
    m.send_line("2 notes.pdf");
    m.out.wait_for(
        "2 different files are called \"notes.pdf\"; which one?",
        TIMEOUT,
    );
    let nb = number_of(&m, &hb);
    number_of(&m, &ha);
    m.send_line("9");
    m.out.wait_for("pick a number from 1 to 2", TIMEOUT);
    m.send_line("");
    m.out.wait_for("cancelled", TIMEOUT);
    assert!(std::fs::read_dir(&l).unwrap().next().is_none());
    m.send_line("2 notes.pdf");
    wait_until("the list a second time", TIMEOUT, || {
        m.out.text().matches("which one?").count() == 2
    });
    m.send_line(&nb);
    m.out.wait_for("downloading notes.pdf", TIMEOUT);
    m.out.wait_for("download complete: notes.pdf", TIMEOUT);
    assert_same_file(&b, &l.join("notes.pdf"));

    // The seeders of the other one: its seeder's address, complete.
    m.send_line("6 notes.pdf");
    wait_until("the list a third time", TIMEOUT, || {
        m.out.text().matches("which one?").count() == 3
    });
    m.send_line(&ha);
    m.out
        .wait_for(&format!("info hash {ha}: 1 seeder, 0 leechers"), TIMEOUT);
    m.out
        .wait_for(&format!("127.0.0.1:{port_a}  complete"), TIMEOUT);

    m.send_line("8");
    assert!(m.wait(TIMEOUT).success(), "{}", m.dump());
    sa.interrupt();
    sb.interrupt();
    assert!(sa.wait(TIMEOUT).success());
    assert!(sb.wait(TIMEOUT).success());
}

#[test]
fn menu_lists_seeders_shows_status_and_asks_before_quitting() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("menu-quit");
    let data = tmp.join("s/solo.bin");
    write_random(&data, 100_000);
    let (mut seeder, port, _) = seed("seeder", &tracker, &data);

    let l = tmp.sub("l");
    let mut m = menu("menu-quit", &tracker, &l);
    // One file of that name: its peers at once, the seeder complete.
    m.send_line("6");
    m.send_line("solo.bin");
    m.out.wait_for("solo.bin (97.7 KiB) info hash", TIMEOUT);
    m.out
        .wait_for(&format!("127.0.0.1:{port}  complete"), TIMEOUT);

    // A download that cannot finish: nobody shares this info hash.
    let nobody = "00112233445566778899aabbccddeeff00112233";
    m.send_line(&format!("2 {nobody}"));
    m.out.wait_for(&format!("info hash {nobody}"), TIMEOUT);
    m.send_line("7");
    m.out.wait_for("fetching metadata", TIMEOUT);
    // A prompt ends no line: the answer's output completes it.
    m.send_line("8");
    m.send_line("n");
    m.out.wait_for(
        "a download is running; quit anyway? [y/N] not quitting",
        TIMEOUT,
    );
    // Still serving the menu.
    m.send_line("4");
    m.out.wait_for(nobody, TIMEOUT);
    m.send_line("quit");
    m.send_line("y");
    assert!(m.wait(TIMEOUT).success(), "{}", m.dump());
    assert!(m.out.contains("quit anyway? [y/N] exiting"), "{}", m.dump());
    seeder.interrupt();
    assert!(seeder.wait(TIMEOUT).success());
}
