//! LAN discovery, the peer's side: find a tracker when none was named.
//!
//! [`discover`] sends one `DISCOVER` datagram (docs/PROTOCOL.md) to
//! 255.255.255.255, to the broadcast address of every IPv4 interface that is
//! up, to the multicast group out of every interface, and to 127.0.0.1 (a
//! tracker on this machine), all on the discovery port; then it collects the
//! `TRACKER` replies that carry its `tid` for up to `wait`, returning soon
//! after the first one. It sends again once if nothing answered within a
//! third of `wait`. Replies are merged by tracker address (at most
//! [`MAX_FOUND`] kept), and the several addresses one tracker on this very
//! machine answers with (127.0.0.1 and the LAN address) count once.
//!
//! Whether `pick_tracker` discovers at all, and on which port, is a
//! process-wide setting like `--trace`: [`configure`] (from `--no-discover`
//! and `--discover-port`), on port 6968 unless told otherwise.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use minitorrent_common::tracker_proto::DISCOVER_PORT;
use minitorrent_common::tracker_proto::{Discover, TrackerHere, DISCOVER_GROUP, MAX_DISCOVER_SIZE};
use socket2::{Domain, Protocol, Socket, Type};

use crate::net::trace;

/// How long `pick_tracker` waits for answers.
pub const DISCOVER_WAIT: Duration = Duration::from_secs(1);
/// After the first answer, how long the others get to arrive.
const GRACE: Duration = Duration::from_millis(200);
/// Most trackers one discovery reports.
pub const MAX_FOUND: usize = 32;

/// A tracker that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its address, to use as `--tracker`.
    pub tracker: SocketAddr,
    /// Its web page, when it has one.
    pub web: Option<String>,
    /// Where the answer came from (the tracker's discovery socket).
    pub from: SocketAddr,
}

/// 0: off; else the port + 1.
static SETTING: AtomicU32 = AtomicU32::new(DISCOVER_PORT as u32 + 1);

/// Turns discovery on (on `port`) or off for this process.
pub fn configure(on: bool, port: u16) {
    let v = if on { u32::from(port) + 1 } else { 0 };
    SETTING.store(v, Ordering::Relaxed);
}

/// The discovery port, or `None` when discovery is off.
pub fn setting() -> Option<u16> {
    match SETTING.load(Ordering::Relaxed) {
        0 => None,
        v => u16::try_from(v - 1).ok(),
    }
}

/// An IPv4 interface that is up.
#[derive(Debug, Clone, Copy)]
struct Iface {
    addr: Ipv4Addr,
    /// Its subnet's broadcast address, when it has one.
    broadcast: Option<Ipv4Addr>,
    loopback: bool,
    multicast: bool,
}

/// Sends `DISCOVER` on `port` every way a tracker on the LAN or on this
/// machine can hear it, and returns the trackers that answered within
/// `wait` (sooner once one answered). An error means nothing could be sent
/// at all.
pub fn discover(port: u16, wait: Duration) -> io::Result<Vec<Found>> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_broadcast(true)?;
    // Multicast stays on the LAN, and reaches a tracker on this machine.
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
    let sock: UdpSocket = s.into();
    let ifaces = interfaces();
    let tid = fastrand::u32(1..);
    let msg = Discover { tid };
    let start = Instant::now();
    send_all(&sock, &msg, port, &ifaces)?;

    let mut found: Vec<Found> = Vec::new();
    let mut end = start + wait;
    let resend_at = start + wait / 3;
    let mut resent = false;
    let mut buf = [0u8; MAX_DISCOVER_SIZE + 1];
    let local = sock.local_addr()?;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !resent && found.is_empty() && now >= resend_at {
            resent = true;
            // The first copies may have been lost; this one failing is no
            // reason to stop listening.
            let _ = send_all(&sock, &msg, port, &ifaces);
        }
        let until = if resent || !found.is_empty() {
            end
        } else {
            resend_at.min(end)
        };
        let left = until
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(left))?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let reply = match TrackerHere::decode(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                trace::tracker(from, local, || {
                    format!("malformed discovery reply ({n} bytes): {e}; ignored")
                });
                continue;
            }
        };
        if reply.tid != tid {
            continue;
        }
        trace::tracker(from, local, || reply.summary());
        let mut tracker = reply.tracker;
        // A tracker that does not know its own address: use the one it
        // answered from.
        if tracker.ip().is_unspecified() {
            tracker.set_ip(from.ip());
        }
        if found.is_empty() {
            end = end.min(Instant::now() + GRACE);
        }
        if found.len() < MAX_FOUND {
            found.push(Found {
                tracker,
                web: reply.web,
                from,
            });
        }
    }
    let own: Vec<IpAddr> = ifaces.iter().map(|i| IpAddr::V4(i.addr)).collect();
    Ok(merge(found, &own))
}

/// Every destination once; an error only when not one send went out.
fn send_all(sock: &UdpSocket, msg: &Discover, port: u16, ifaces: &[Iface]) -> io::Result<()> {
    let bytes = msg.encode();
    let local = sock.local_addr()?;
    let mut sent = 0;
    let mut last_err = None;
    let mut send = |dst: Ipv4Addr, via: Option<Ipv4Addr>| {
        let to = SocketAddr::from((dst, port));
        if let Some(ip) = via {
            if let Err(e) = socket2::SockRef::from(sock).set_multicast_if_v4(&ip) {
                log::debug!("discovery: cannot send multicast out of {ip}: {e}");
                last_err = Some(e);
                return;
            }
        }
        match sock.send_to(&bytes, to) {
            Ok(_) => {
                sent += 1;
                let from = via.map_or(local, |ip| SocketAddr::from((ip, local.port())));
                trace::tracker(from, to, || msg.summary());
            }
            Err(e) => {
                log::debug!("discovery: cannot send to {to}: {e}");
                trace::tracker(local, to, || format!("{} not sent: {e}", msg.summary()));
                last_err = Some(e);
            }
        }
    };
    let mut dsts: Vec<Ipv4Addr> = vec![Ipv4Addr::BROADCAST];
    for i in ifaces.iter().filter(|i| !i.loopback) {
        if let Some(b) = i.broadcast {
            if !dsts.contains(&b) {
                dsts.push(b);
            }
        }
    }
    for d in dsts {
        send(d, None);
    }
    let mut via: Vec<Ipv4Addr> = ifaces
        .iter()
        .filter(|i| i.multicast && !i.loopback)
        .map(|i| i.addr)
        .collect();
    via.dedup();
    if via.is_empty() {
        // No interface says it does multicast: let the kernel choose.
        send(DISCOVER_GROUP, None);
    }
    for ip in via {
        send(DISCOVER_GROUP, Some(ip));
    }
    send(Ipv4Addr::LOCALHOST, None);
    match (sent, last_err) {
        (0, Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// One entry per tracker, in the order they answered. A tracker on this
/// machine answers with 127.0.0.1 (to the copy sent there) and with its LAN
/// address (to the broadcast and multicast copies): same port, both
/// addresses ours, so one tracker, named by its LAN address, which other
/// machines can reach too.
fn merge(found: Vec<Found>, own: &[IpAddr]) -> Vec<Found> {
    let ours = |ip: IpAddr| ip.is_loopback() || own.contains(&ip);
    let mut out: Vec<Found> = Vec::new();
    for f in found {
        if out.iter().any(|g| g.tracker == f.tracker) {
            continue;
        }
        let same_machine = out.iter_mut().find(|g| {
            ours(g.tracker.ip()) && ours(f.tracker.ip()) && g.tracker.port() == f.tracker.port()
        });
        match same_machine {
            Some(g) => {
                if g.tracker.ip().is_loopback() && !f.tracker.ip().is_loopback() {
                    g.tracker = f.tracker;
                    g.from = f.from;
                }
                if g.web.is_none() {
                    g.web = f.web;
                }
            }
            None => out.push(f),
        }
    }
    out
}

/// What `pick_tracker` tells the user about a discovery's outcome: the
/// tracker to use, if any, and the message (for stdout when one was found,
/// else for stderr).
pub fn outcome(
    result: &io::Result<Vec<Found>>,
    port: u16,
    fallback: &str,
) -> (Option<SocketAddr>, String) {
    let how = format!(
        "name one with --tracker HOST (is minitorrent-tracker running, with UDP port {port} open in its \
         firewall? does this machine's firewall let in UDP replies from port {port}? see docs/LAN.md)"
    );
    match result {
        Err(e) => (
            None,
            format!("minitorrent: cannot look for a tracker on the LAN ({e}); trying {fallback}; {how}"),
        ),
        Ok(found) if found.is_empty() => (
            None,
            format!("minitorrent: no tracker answered on the LAN (discovery on UDP port {port}); trying {fallback}; {how}"),
        ),
        Ok(found) => {
            let first = &found[0];
            let mut msg = format!(
                "found tracker {} on the LAN (answered from {})",
                first.tracker, first.from
            );
            if let Some(w) = &first.web {
                msg.push_str(&format!(", web page {w}"));
            }
            if found.len() > 1 {
                let others: Vec<String> = found[1..]
                    .iter()
                    .map(|f| format!("{} (from {})", f.tracker, f.from))
                    .collect();
                msg.push_str(&format!(
                    "\nother trackers answered too: {}; to use one of them, pick it with --tracker HOST:PORT",
                    others.join(", ")
                ));
            }
            (Some(first.tracker), msg)
        }
    }
}

/// The IPv4 interfaces that are up.
fn interfaces() -> Vec<Iface> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `head` with a list we free below.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            log::debug!(
                "discovery: cannot list the network interfaces: {}",
                io::Error::last_os_error()
            );
            return out;
        }
        let v4 = |sa: *const libc::sockaddr| -> Option<Ipv4Addr> {
            if sa.is_null() {
                return None;
            }
            // SAFETY: a non-null address from getifaddrs; its family says
            // how to read it, and AF_INET is a sockaddr_in.
            unsafe {
                if i32::from((*sa).sa_family) != libc::AF_INET {
                    return None;
                }
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            }
        };
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: a node of the list getifaddrs returned, not yet freed.
            let ifa = unsafe { &*cur };
            cur = ifa.ifa_next;
            let flags = ifa.ifa_flags;
            let has = |f: libc::c_int| flags & (f as libc::c_uint) != 0;
            if !has(libc::IFF_UP) {
                continue;
            }
            let Some(addr) = v4(ifa.ifa_addr) else {
                continue;
            };
            let broadcast = if has(libc::IFF_BROADCAST) {
                v4(ifa.ifa_netmask).map(|m| Ipv4Addr::from(u32::from(addr) | !u32::from(m)))
            } else {
                None
            };
            out.push(Iface {
                addr,
                broadcast,
                loopback: has(libc::IFF_LOOPBACK),
                multicast: has(libc::IFF_MULTICAST),
            });
        }
        // SAFETY: `head` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(head) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(tracker: &str, from: &str) -> Found {
        Found {
            tracker: tracker.parse().unwrap(),
            web: None,
            from: from.parse().unwrap(),
        }
    }

    #[test]
    fn the_setting_round_trips() {
        // The only test that touches the process-wide setting.
        assert_eq!(setting(), Some(DISCOVER_PORT));
        configure(false, 7000);
        assert_eq!(setting(), None);
        configure(true, 65535);
        assert_eq!(setting(), Some(65535));
        configure(true, DISCOVER_PORT);
    }

    #[test]
    fn one_tracker_on_this_machine_counts_once_by_its_lan_address() {
        let own = [IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))];
        let got = merge(
            vec![
                f("127.0.0.1:6969", "127.0.0.1:6968"),
                f("192.168.1.10:6969", "192.168.1.10:6968"),
                f("192.168.1.10:6969", "192.168.1.10:6968"),
                f("192.168.1.20:6969", "192.168.1.20:6968"),
                // Another tracker on this machine, on another port.
                f("127.0.0.1:7000", "127.0.0.1:6968"),
            ],
            &own,
        );
        assert_eq!(
            got,
            vec![
                f("192.168.1.10:6969", "192.168.1.10:6968"),
                f("192.168.1.20:6969", "192.168.1.20:6968"),
                f("127.0.0.1:7000", "127.0.0.1:6968"),
            ]
        );
        // Trackers elsewhere are never merged, whatever their port.
        let two = merge(
            vec![
                f("192.168.1.20:6969", "192.168.1.20:6968"),
                f("192.168.1.30:6969", "192.168.1.30:6968"),
            ],
            &own,
        );
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn the_user_is_told_what_was_found_and_what_to_do() {
        let (addr, msg) = outcome(&Ok(vec![]), 6968, "127.0.0.1:6969");
        assert_eq!(addr, None);
        assert!(msg.contains("no tracker answered on the LAN"), "{msg}");
        assert!(msg.contains("--tracker HOST"), "{msg}");
        assert!(msg.contains("127.0.0.1:6969"), "{msg}");

        let one = vec![f("10.0.0.1:6969", "10.0.0.1:6968")];
        let (addr, msg) = outcome(&Ok(one), 6968, "127.0.0.1:6969");
        assert_eq!(addr, Some("10.0.0.1:6969".parse().unwrap()));
        assert_eq!(
            msg,
            "found tracker 10.0.0.1:6969 on the LAN (answered from 10.0.0.1:6968)"
        );

        let two = vec![
            f("10.0.0.1:6969", "10.0.0.1:6968"),
            f("10.0.0.2:6969", "10.0.0.2:6968"),
        ];
        let (addr, msg) = outcome(&Ok(two), 6968, "127.0.0.1:6969");
        assert_eq!(addr, Some("10.0.0.1:6969".parse().unwrap()));
        assert!(msg.contains("10.0.0.2:6969 (from 10.0.0.2:6968)"), "{msg}");
        assert!(msg.contains("--tracker"), "{msg}");

        let err = Err(io::Error::other("no network"));
        let (addr, msg) = outcome(&err, 6968, "127.0.0.1:6969");
        assert_eq!(addr, None);
        assert!(msg.contains("no network"), "{msg}");
    }

    #[test]
    fn a_tracker_on_loopback_is_found() {
        // A fake responder on a free port of 127.0.0.1 (not the real
        // discovery port, so no other tracker on this machine answers).
        let resp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = resp.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            resp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (n, src) = resp.recv_from(&mut buf).unwrap();
            let d = Discover::decode(&buf[..n]).unwrap();
            // Noise first: a reply to someone else, and garbage.
            resp.send_to(b"{}", src).unwrap();
            let other = TrackerHere {
                tid: d.tid.wrapping_add(1),
                tracker: "127.0.0.1:1".parse().unwrap(),
                web: None,
            };
            resp.send_to(&other.encode(), src).unwrap();
            let ours = TrackerHere {
                tid: d.tid,
                tracker: "0.0.0.0:7001".parse().unwrap(),
                web: Some("http://127.0.0.1:8080/".into()),
            };
            resp.send_to(&ours.encode(), src).unwrap();
        });
        let found = discover(port, Duration::from_secs(3)).unwrap();
        h.join().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        // The unspecified address became the one it answered from.
        assert_eq!(found[0].tracker, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(found[0].web.as_deref(), Some("http://127.0.0.1:8080/"));
        assert_eq!(found[0].from.port(), port);
    }
}
