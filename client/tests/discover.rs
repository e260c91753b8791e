//! LAN discovery on one machine: peers started without `--tracker` find a
//! tracker through the `DISCOVER` copy sent to 127.0.0.1, and a file moves
//! byte for byte; with `--no-discover` no datagram leaves the peer. Each
//! test uses its own free discovery port, never the default 6968, so no
//! other tracker on this machine answers. (The same between machines, in
//! network namespaces on a bridge, is in lan.rs.)

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use minitorrent_common::tracker_proto::Discover;

/// A UDP port nobody uses right now.
fn free_port() -> String {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.local_addr().unwrap().port().to_string()
}

#[test]
fn peers_without_tracker_find_it_and_a_file_moves() {
    let tmp = TempDir::new("discover");
    let port = free_port();
    let tracker = Tracker::start_with(&["--bind", "127.0.0.1:0", "--discover-port", &port]);
    let data = tmp.join("found.bin");
    let bytes = write_random(&data, 700_000);
    let found = format!("found tracker {} on the LAN", tracker.addr);

    let seeder = Proc::mt(
        "seeder",
        &["--discover-port", &port, "seed", data.to_str().unwrap()],
    );
    seeder.out.wait_for("seeding ", TIMEOUT);
    assert!(seeder.err.contains(&found), "{}", seeder.dump());
    assert!(
        seeder.out.contains(&format!("tracker {}", tracker.addr)),
        "{}",
        seeder.dump()
    );

    let dir = tmp.sub("leecher");
    let mut leecher = Proc::mt(
        "leecher",
        &[
            "--discover-port",
            &port,
            "--trace",
            "get",
            "found.bin",
            "--no-seed",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    let st = leecher.wait(TIMEOUT);
    assert!(st.success(), "{}\n{}", leecher.dump(), seeder.dump());
    assert!(leecher.err.contains(&found), "{}", leecher.dump());
    // --trace shows the DISCOVER sent to 127.0.0.1 and the tracker's reply.
    assert!(
        leecher
            .err
            .contains(&format!("→ 127.0.0.1:{port}  DISCOVER tid=")),
        "{}",
        leecher.dump()
    );
    assert!(
        leecher
            .err
            .contains(&format!("TRACKER {} web=http://", tracker.addr)),
        "{}",
        leecher.dump()
    );
    assert_eq!(std::fs::read(dir.join("found.bin")).unwrap(), bytes);
}

#[test]
fn no_discover_sends_nothing_and_no_answer_says_what_to_do() {
    let tmp = TempDir::new("nodiscover");
    let data = tmp.join("x.bin");
    write_random(&data, 1000);
    // Stands where a tracker's discovery socket would, and answers nothing.
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let create = |name: &'static str, extra: &[&str]| {
        let out = tmp.join(&format!("{name}.torrent"));
        let mut args = vec!["--discover-port", &port];
        args.extend_from_slice(extra);
        let out_s = out.to_str().unwrap().to_string();
        args.extend_from_slice(&["create", data.to_str().unwrap(), "-o", &out_s]);
        let mut p = Proc::mt(name, &args);
        let st = p.wait(TIMEOUT);
        assert!(st.success(), "{}", p.dump());
        (p, metainfo_of(&out))
    };

    let (p, m) = create("off", &["--no-discover"]);
    // The process has exited: whatever it sent is already queued here.
    listener.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        listener.recv_from(&mut buf).is_err(),
        "--no-discover sent a datagram"
    );
    assert!(!p.err.contains("no tracker answered"), "{}", p.dump());
    assert_eq!(m.announce.as_deref(), Some("udp://127.0.0.1:6969"));

    // Discovery on: the DISCOVER arrives, nobody answers, and the user is
    // told so and how to name a tracker.
    let (p, m) = create("on", &[]);
    listener
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    listener.set_nonblocking(false).unwrap();
    let (n, _) = listener.recv_from(&mut buf).expect("no DISCOVER arrived");
    assert!(Discover::decode(&buf[..n]).is_ok());
    assert!(
        p.err.contains("no tracker answered on the LAN"),
        "{}",
        p.dump()
    );
    assert!(p.err.contains("--tracker HOST"), "{}", p.dump());
    assert_eq!(m.announce.as_deref(), Some("udp://127.0.0.1:6969"));
}
