//! `get NAME` when the name is not one file: several swarms share it (it is
//! refused, nothing is written, the candidates are listed), or the tracker
//! does not know it yet (the download waits for it a few seconds).

mod common;

use std::net::UdpSocket;
use std::path::Path;

use common::*;

/// A seeder of `path`, registered; returns it and the info hash it printed.
fn seed(name: &'static str, tracker: &Tracker, path: &Path) -> (Proc, String) {
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
    assert_eq!(hash.len(), 40, "{line}");
    (p, hash)
}

/// An address where no tracker answers.
fn dead_udp_port() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_name_two_files_share_is_refused_and_each_is_got_by_its_hash() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("ambiguous");
    let a = tmp.join("a/notes.pdf");
    let b = tmp.join("b/notes.pdf");
    write_random(&a, 300_000);
    write_random(&b, 700_001);
    let (mut sa, ha) = seed("seed-a", &tracker, &a);
    let (mut sb, hb) = seed("seed-b", &tracker, &b);
    assert_ne!(ha, hb);

    // By name: refused, both listed with the command to pick each, nothing
    // written to the download directory.
    let l = tmp.sub("l");
    let mut get = start_get("get-name", &tracker, "notes.pdf", &l, &[]);
    let st = get.wait(TIMEOUT);
    assert!(!st.success(), "{}", get.dump());
    let err = get.err.text();
    assert!(
        err.contains("2 different files are called \"notes.pdf\""),
        "{err}"
    );
    for (h, size) in [(&ha, "300000 bytes"), (&hb, "700001 bytes")] {
        assert!(
            err.contains(&format!("minitorrent get {h} --tracker ")),
            "{err}"
        );
        let line = err
            .lines()
            .find(|l| l.contains(&format!("info hash {h}")))
            .unwrap_or_else(|| panic!("no line for {h}:\n{err}"));
        assert!(
            line.contains(size) && line.contains("1 seeder, 0 leechers"),
            "{line}"
        );
    }
    assert!(!get.out.contains("downloading"), "{}", get.dump());
    assert!(entries(&l).is_empty(), "{:?}", entries(&l));

    // By info hash: the right file, byte for byte. The higher hash is the
    // one a REQUEST by name would not pick (equal seeders: lowest first).
    let (want, data) = if ha > hb { (&ha, &a) } else { (&hb, &b) };
    get_ok("get-hash", &tracker, want, &l, &[]);
    assert_same_file(data, &l.join("notes.pdf"));

    // The other one, into a directory where a different file already has
    // its name: refused, saying what to do, the file left alone.
    let (other, other_data) = if ha > hb { (&hb, &b) } else { (&ha, &a) };
    let mut clash = start_get("get-clash", &tracker, other, &l, &[]);
    assert!(!clash.wait(TIMEOUT).success(), "{}", clash.dump());
    let err = clash.err.text();
    assert!(
        err.contains("notes.pdf already exists")
            && err.contains("move it away or choose another --dir"),
        "{err}"
    );
    assert_same_file(data, &l.join("notes.pdf"));
    let l2 = tmp.sub("l2");
    get_ok("get-other", &tracker, other, &l2, &[]);
    assert_same_file(other_data, &l2.join("notes.pdf"));

    sa.interrupt();
    sb.interrupt();
    assert!(sa.wait(TIMEOUT).success());
    assert!(sb.wait(TIMEOUT).success());
}

#[test]
fn get_by_name_waits_for_a_seeder_still_starting() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("wait-name");
    let data = tmp.join("s/late.bin");
    write_random(&data, 1024 * 1024 + 3);
    let l = tmp.sub("l");
    // The leecher first: the tracker does not know the name yet.
    let mut get = start_get("get-late", &tracker, "late.bin", &l, &[]);
    get.out
        .wait_for("waiting for late.bin to appear at the tracker", TIMEOUT);
    let (mut seeder, _) = seed("seed-late", &tracker, &data);
    let st = get.wait(TIMEOUT);
    assert!(st.success(), "{}", get.dump());
    assert!(get.out.contains("SHA-1 verified"), "{}", get.dump());
    let said = get.out.text().matches("waiting for late.bin").count();
    assert_eq!(said, 1, "said once\n{}", get.dump());
    assert_same_file(&data, &l.join("late.bin"));
    seeder.interrupt();
    assert!(seeder.wait(TIMEOUT).success());
}

#[test]
fn a_name_nobody_shares_suggests_search_after_the_wait() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("no-name");
    let l = tmp.sub("l");
    let mut get = start_get("get-none", &tracker, "never.bin", &l, &[]);
    let st = get.wait(TIMEOUT);
    assert!(!st.success(), "{}", get.dump());
    assert!(
        get.out.contains("waiting for never.bin to appear"),
        "{}",
        get.dump()
    );
    let err = get.err.text();
    assert!(
        err.contains("knows no file called \"never.bin\"") && err.contains("minitorrent search"),
        "{err}"
    );
    assert!(entries(&l).is_empty(), "{:?}", entries(&l));
}

#[test]
fn an_unreachable_tracker_says_where_it_was_looked_for() {
    let tmp = TempDir::new("no-tracker");
    let l = tmp.sub("l");
    let dead = dead_udp_port();
    let mut get = Proc::mt(
        "get-dead",
        &[
            "get",
            "x.bin",
            "--dir",
            l.to_str().unwrap(),
            "--tracker",
            &dead,
        ],
    );
    assert!(!get.wait(TIMEOUT).success(), "{}", get.dump());
    let err = get.err.text();
    assert!(
        err.contains(&format!("tracker {dead} is unreachable"))
            && err.contains("is minitorrent-tracker running at that address?")
            && err.contains("--tracker"),
        "{err}"
    );
}
