//! LAN discovery against the real tracker binary: `DISCOVER` on the
//! discovery port gets a `TRACKER` reply naming the tracker, `--trace` shows
//! both, noise and `--no-discover` get silence, and a discovery port that
//! cannot be had leaves the tracker running. Each test uses its own free
//! discovery port, never the default, so no other tracker on this machine
//! answers.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::tracker_proto::{Discover, Reply, Request, TrackerHere};

/// A UDP port nobody uses right now.
fn free_port() -> u16 {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.local_addr().unwrap().port()
}

fn asker() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Sends `DISCOVER` to 127.0.0.1:`port` up to 5 times; the reply, if any.
fn discover(port: u16, tid: u32) -> Option<TrackerHere> {
    let s = asker();
    let mut buf = [0u8; 2048];
    for _ in 0..5 {
        s.send_to(&Discover { tid }.encode(), ("127.0.0.1", port))
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                break;
            };
            assert_eq!(from.port(), port, "the reply comes from the discovery port");
            let reply = TrackerHere::decode(&buf[..n])
                .unwrap_or_else(|e| panic!("bad reply {:?}: {e}", &buf[..n]));
            if reply.tid == tid {
                return Some(reply);
            }
        }
    }
    None
}

#[test]
fn a_loopback_tracker_names_itself_and_traces_both_datagrams() {
    let port = free_port();
    let t = TrackerProc::start(&["--discover-port", &port.to_string(), "--trace"]);
    t.wait_stderr(&format!("answering LAN discovery on UDP port {port}"));
    let reply = discover(port, 41).expect("no TRACKER reply");
    assert_eq!(reply.tracker, t.addr);
    assert_eq!(reply.web, t.web, "the reply names the web page");
    t.wait_stderr("DISCOVER tid=41");
    let web = t.web.as_deref().unwrap_or("none");
    t.wait_stderr(&format!("TRACKER {} web={web} tid=41", t.addr));

    // Noise is ignored (and traced), and the responder goes on answering.
    let s = asker();
    for junk in [
        &b"hello"[..],
        br#"{"type":"TRACKER","tid":1,"tracker":"127.0.0.1:1"}"#,
        &Request::Search {
            tid: 5,
            query: String::new(),
        }
        .encode(),
        &[b'{'; 3000],
    ] {
        s.send_to(junk, ("127.0.0.1", port)).unwrap();
    }
    let mut buf = [0u8; 2048];
    assert!(
        s.recv_from(&mut buf).is_err(),
        "noise on the discovery port got an answer"
    );
    t.wait_stderr("discovery port: malformed (5 bytes)");
    assert_eq!(discover(port, 42).map(|r| r.tracker), Some(t.addr));
}

#[test]
fn a_tracker_on_every_interface_names_the_address_facing_the_asker() {
    let port = free_port();
    let t = TrackerProc::start_on("0.0.0.0:0", &["--discover-port", &port.to_string()]);
    let reply = discover(port, 7).expect("no TRACKER reply");
    let want: SocketAddr = format!("127.0.0.1:{}", t.addr.port()).parse().unwrap();
    assert_eq!(reply.tracker, want);
    // That address works: the tracker answers a SEARCH there.
    let c = Client::new(reply.tracker);
    let search = Request::Search {
        tid: 8,
        query: String::new(),
    };
    assert!(matches!(c.ask(&search), Reply::Files { .. }));
}

#[test]
fn no_discover_means_silence() {
    let port = free_port();
    let t = TrackerProc::start(&["--discover-port", &port.to_string(), "--no-discover"]);
    t.wait_stderr("LAN discovery off (--no-discover)");
    assert_eq!(discover(port, 3), None);
}

#[test]
fn a_taken_discovery_port_is_one_warning_and_the_tracker_runs() {
    // A socket without SO_REUSEPORT holds the port: the tracker cannot
    // share it.
    let holder = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let t = TrackerProc::start(&["--discover-port", &port.to_string()]);
    let warning = t.wait_stderr("cannot answer LAN discovery");
    assert!(warning.contains(&format!("UDP port {port}")), "{warning}");
    assert!(warning.contains("--tracker"), "{warning}");
    let c = Client::new(t.addr);
    let search = Request::Search {
        tid: 1,
        query: String::new(),
    };
    assert!(matches!(c.ask(&search), Reply::Files { .. }));
    let warnings = t
        .stderr()
        .iter()
        .filter(|l| l.contains("discovery"))
        .count();
    assert_eq!(warnings, 1, "{:?}", t.stderr());
}

#[test]
fn two_trackers_share_one_discovery_port() {
    let port = free_port();
    let p = port.to_string();
    let a = TrackerProc::start(&["--discover-port", &p]);
    let b = TrackerProc::start(&["--discover-port", &p]);
    for t in [&a, &b] {
        t.wait_stderr(&format!("answering LAN discovery on UDP port {port}"));
        assert!(
            !t.stderr().iter().any(|l| l.contains("cannot answer")),
            "{:?}",
            t.stderr()
        );
    }
    // A unicast DISCOVER reaches one of them.
    let r = discover(port, 9).expect("no TRACKER reply");
    assert!(r.tracker == a.addr || r.tracker == b.addr, "{r:?}");
}
