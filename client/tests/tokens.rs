//! The tracker's address tokens are invisible to users: with a catalogue
//! so large that SEARCH replies need a token, `minitorrent search` and
//! `minitorrent get NAME` still work in one command, and the tracker's
//! trace shows the exchange (an `ERROR token`, then the same request with
//! a valid token).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use minitorrent_common::tracker_proto::{FileInfo, Reply, Request};

/// Registers `n` files whose names start with `prefix`, from a peer that
/// is not running (nobody dials it: nobody asks for these files).
fn fill_catalogue(tracker: &Tracker, prefix: &str, n: usize) {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let long = "-old-lecture-recording".repeat(5);
    for (tid, chunk) in (0..n).collect::<Vec<_>>().chunks(100).enumerate() {
        let files = chunk
            .iter()
            .map(|&i| {
                let mut h = [0u8; 20];
                h[..8].copy_from_slice(&(i as u64).to_be_bytes());
                h[19] = 0xa5;
                FileInfo {
                    info_hash: minitorrent_common::metainfo::InfoHash(h),
                    name: format!("{prefix}{long}-{i:04}"),
                    size: 1 << 20,
                    complete: true,
                }
            })
            .collect();
        let req = Request::Register {
            tid: tid as u32 + 1,
            peer_id: "-XX0001-catalogue000".into(),
            port: 9,
            files,
        };
        udp.send_to(&req.encode(), tracker.addr).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (n, _) = udp.recv_from(&mut buf).unwrap();
        assert!(
            matches!(Reply::decode(&buf[..n]), Ok(Reply::Ok { .. })),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[test]
fn search_and_get_by_name_work_in_one_command_when_replies_need_a_token() {
    let tracker = Tracker::start_with(&["--bind", "127.0.0.1:0", "--trace"]);
    let tmp = TempDir::new("tokens");
    let dir = tmp.sub("s");
    let data = dir.join("notes.bin");
    write_random(&data, 300_000);
    let torrent = tmp.join("notes.torrent");
    create_torrent(&data, &torrent, &tracker, 32 * 1024);
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &dir, &[]);
    // 300 other files whose names contain "notes.bin": both the SEARCH of
    // `search notes` and the one `get notes.bin` makes to check the name
    // is not ambiguous get a FILES far over 3 times their size.
    fill_catalogue(&tracker, "notes.bin", 300);

    let t = tracker.arg();
    let mut search = Proc::mt("search", &["search", "notes", "--tracker", &t]);
    let st = search.wait(TIMEOUT);
    assert!(st.success(), "search failed: {st}\n{}", search.dump());
    let out = search.out.text();
    assert!(out.contains("notes.bin"), "{}", search.dump());
    assert!(!search.err.contains("token"), "{}", search.dump());

    let got = tmp.sub("got");
    let get = get_ok("get", &tracker, "notes.bin", &got, &[]);
    assert_same_file(&data, &got.join("notes.bin"));
    assert!(!get.err.contains("token"), "{}", get.dump());

    // The tokens were needed, and given.
    let trace = tracker.proc.err.text();
    assert!(
        trace.contains("ERROR token:"),
        "no token ERROR in the tracker's trace\n{trace}"
    );
    assert!(
        trace
            .lines()
            .any(|l| l.contains("← ") && l.contains("SEARCH") && l.contains("token=valid")),
        "no SEARCH with a valid token\n{trace}"
    );
    assert!(
        trace
            .lines()
            .any(|l| l.contains("→ ") && l.contains("FILES") && l.contains("and 2")),
        "no large FILES sent\n{trace}"
    );
}
