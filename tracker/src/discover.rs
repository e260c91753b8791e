//! LAN discovery, the tracker's side: a responder on its own thread that
//! answers `DISCOVER` datagrams with a `TRACKER` reply naming the tracker's
//! address, so a peer started without `--tracker` finds it.
//!
//! The responder owns one blocking UDP socket bound to `0.0.0.0:PORT`
//! (`--discover-port`, default [`DISCOVER_PORT`]) with `SO_REUSEADDR` and
//! `SO_REUSEPORT`, so several trackers (and tests) on one machine can share
//! the port: broadcasts and multicasts reach all of them, a unicast datagram
//! one of them. It joins [`DISCOVER_GROUP`] on every IPv4 interface that is
//! up. Per datagram the work is bounded: one read of at most
//! [`MAX_DISCOVER_SIZE`] bytes, a decode, and for a tracker bound to
//! `0.0.0.0` one throwaway socket to learn which local address faces the
//! requester. No table is kept.
//!
//! Who gets an answer is [`answers`]: private, link-local and loopback
//! sources only, unless `--discover-public`; a tracker bound to loopback
//! answers only loopback. Anything that is not a well-formed `DISCOVER` is
//! ignored (never answered: the port is shared with every tracker on the LAN
//! and a reply to noise would only add noise); `--trace` shows it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use log::{debug, warn};
use minitorrent_common::tracker_proto::{
    Discover, TrackerHere, DISCOVER_GROUP, DISCOVER_PORT, MAX_DISCOVER_SIZE,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::handler::trace_line;
use crate::server::StopHandle;

/// How often the responder looks at the stop flag while nothing arrives.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// What the responder needs to know.
#[derive(Debug, Clone)]
pub struct DiscoverConfig {
    /// The UDP port to listen on for `DISCOVER`.
    pub port: u16,
    /// The tracker's own address (with the port actually bound): what the
    /// reply names, and whether it is loopback-only.
    pub tracker: SocketAddr,
    /// Answer requesters at public addresses too (`--discover-public`).
    pub public: bool,
    pub trace: bool,
    /// The tracker's web page, when it has one.
    pub web: Option<String>,
}

impl DiscoverConfig {
    pub fn new(tracker: SocketAddr) -> DiscoverConfig {
        DiscoverConfig {
            port: DISCOVER_PORT,
            tracker,
            public: false,
            trace: false,
            web: None,
        }
    }
}

/// A bound responder, ready to [`spawn`](Responder::spawn).
pub struct Responder {
    socket: UdpSocket,
    cfg: DiscoverConfig,
    /// The interfaces whose multicast group membership succeeded.
    joined: Vec<Ipv4Addr>,
}

/// Whether a `DISCOVER` from `src` gets an answer from a tracker bound to
/// `bound`: a loopback-bound tracker answers only loopback; otherwise
/// private (RFC 1918, IPv6 unique local), link-local and loopback sources,
/// and any source when `public` is set. Carrier-grade NAT space
/// (100.64.0.0/10) is not a LAN and gets no answer without `public`.
pub fn answers(src: IpAddr, bound: IpAddr, public: bool) -> bool {
    let src = canonical(src);
    if canonical(bound).is_loopback() {
        return src.is_loopback();
    }
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    public || is_lan(src)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn is_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        }
    }
}

/// The address the reply names: the tracker's own IP when it is bound to
/// one, else the local address that faces `requester`, with the tracker's
/// port either way. `None` for a tracker bound to one IP that is not the
/// one facing `requester` (the request came in on another interface: a VPN,
/// a second network card): that LAN is not the one it serves, and the
/// address it would name may not be reachable from there. A requester on
/// this machine (loopback) always gets the bound address.
pub fn reply_addr(tracker: SocketAddr, requester: SocketAddr) -> io::Result<Option<SocketAddr>> {
    let facing = facing(requester)?;
    if tracker.ip().is_unspecified() {
        return Ok(Some(SocketAddr::new(facing, tracker.port())));
    }
    if canonical(requester.ip()).is_loopback() || facing == canonical(tracker.ip()) {
        return Ok(Some(tracker));
    }
    Ok(None)
}

/// The local address the system would send from to reach `requester`.
pub fn facing(requester: SocketAddr) -> io::Result<IpAddr> {
    let probe = UdpSocket::bind(SocketAddr::new(
        match requester {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        },
        0,
    ))?;
    // Connecting a UDP socket sends nothing: the kernel only picks a route.
    probe.connect(requester)?;
    Ok(canonical(probe.local_addr()?.ip()))
}

impl Responder {
    /// Binds the discovery port and joins the multicast group on every
    /// IPv4 interface that is up (a failed join is a warning).
    pub fn bind(cfg: DiscoverConfig) -> io::Result<Responder> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        #[cfg(unix)]
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.port)).into())?;
        let mut joined = Vec::new();
        for ip in ipv4_interfaces() {
            match s.join_multicast_v4(&DISCOVER_GROUP, &ip) {
                Ok(()) => joined.push(ip),
                Err(e) => warn!(
                    "discovery: cannot join multicast group {DISCOVER_GROUP} on {ip}: {e}; \
                     peers there can still find the tracker by broadcast"
                ),
            }
        }
        let socket: UdpSocket = s.into();
        socket.set_read_timeout(Some(STOP_CHECK))?;
        Ok(Responder {
            socket,
            cfg,
            joined,
        })
    }

    /// The address and port the responder is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The interfaces where the multicast group was joined.
    pub fn joined(&self) -> &[Ipv4Addr] {
        &self.joined
    }

    /// Runs the responder on its own thread until `stop`.
    pub fn spawn(self, stop: StopHandle) -> io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("discovery".into())
            .spawn(move || self.run(&stop))
    }

    fn run(self, stop: &StopHandle) {
        let mut buf = [0u8; MAX_DISCOVER_SIZE + 1];
        while !stop.is_stopped() {
            match self.socket.recv_from(&mut buf) {
                Ok((n, src)) => self.answer(&buf[..n], src),
                Err(e) if crate::io_batch::is_transient(&e) => {}
                Err(e) => {
                    // E.g. an ICMP error from an earlier reply: not fatal.
                    debug!("discovery: receive: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    /// One datagram: decode, check the source, reply.
    fn answer(&self, data: &[u8], src: SocketAddr) {
        let trace = |dir, what: &str| {
            if self.cfg.trace {
                trace_line(dir, src, what);
            }
        };
        // A datagram longer than the buffer arrives cut to its size + 1 and
        // fails the size check.
        let req = match Discover::decode(data) {
            Ok(r) => r,
            Err(e) => {
                trace(
                    '←',
                    &format!(
                        "discovery port: malformed ({} bytes): {e}; ignored",
                        data.len()
                    ),
                );
                return;
            }
        };
        trace('←', &req.summary());
        if !answers(src.ip(), self.cfg.tracker.ip(), self.cfg.public) {
            trace(
                '←',
                &format!(
                    "not answered: {} is not on a LAN this tracker serves{}",
                    src.ip(),
                    if self.cfg.public {
                        ""
                    } else {
                        " (--discover-public answers everyone)"
                    }
                ),
            );
            return;
        }
        let tracker = match reply_addr(self.cfg.tracker, src) {
            Ok(Some(a)) => a,
            Ok(None) => {
                trace(
                    '←',
                    &format!(
                        "not answered: {} is reached through another interface than {}, \
                         the address this tracker is bound to",
                        src.ip(),
                        self.cfg.tracker.ip()
                    ),
                );
                return;
            }
            Err(e) => {
                debug!("discovery: no route back to {src}: {e}");
                return;
            }
        };
        let reply = TrackerHere {
            tid: req.tid,
            tracker,
            web: self.cfg.web.clone(),
        };
        match self.socket.send_to(&reply.encode(), src) {
            Ok(_) => trace('→', &reply.summary()),
            Err(e) => debug!("discovery: cannot answer {src}: {e}"),
        }
    }
}

/// The IPv4 address of every interface that is up (loopback included), each
/// once.
pub fn ipv4_interfaces() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `head` with a list we free below.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            warn!(
                "discovery: cannot list the network interfaces: {}",
                io::Error::last_os_error()
            );
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getifaddrs returned, not
            // yet freed; `ifa_addr` is null or points to a sockaddr whose
            // family says how to read it.
            let ifa = unsafe { &*cur };
            cur = ifa.ifa_next;
            let up = ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
            if !up || ifa.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: as above.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) != libc::AF_INET {
                continue;
            }
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        // SAFETY: `head` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(head) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_lan_tracker_answers_lan_sources_only() {
        let any = ip("0.0.0.0");
        for lan in [
            "10.1.2.3",
            "172.16.0.9",
            "172.31.255.255",
            "192.168.1.20",
            "169.254.10.1",
            "127.0.0.1",
            "127.8.0.1",
            "fd00::5",
            "fe80::1",
            "::1",
            "::ffff:192.168.1.20",
        ] {
            assert!(answers(ip(lan), any, false), "{lan} should get an answer");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "100.64.0.1", // carrier-grade NAT: not a LAN
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "0.0.0.0",
            "239.255.69.69",
        ] {
            assert!(!answers(ip(public), any, false), "{public} should not");
        }
        // A tracker bound to one LAN address follows the same rule.
        assert!(answers(ip("192.168.1.20"), ip("192.168.1.10"), false));
        assert!(!answers(ip("8.8.8.8"), ip("192.168.1.10"), false));
    }

    #[test]
    fn discover_public_answers_everyone_but_nonsense() {
        let any = ip("0.0.0.0");
        assert!(answers(ip("8.8.8.8"), any, true));
        assert!(answers(ip("100.64.0.1"), any, true));
        assert!(answers(ip("2001:db8::1"), ip("::"), true));
        assert!(!answers(ip("0.0.0.0"), any, true));
        assert!(!answers(ip("224.0.0.1"), any, true));
    }

    #[test]
    fn a_loopback_tracker_answers_only_loopback() {
        for bound in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(answers(ip("127.0.0.1"), ip(bound), false));
            assert!(answers(ip("127.0.0.1"), ip(bound), true));
            assert!(!answers(ip("192.168.1.20"), ip(bound), false));
            assert!(!answers(ip("192.168.1.20"), ip(bound), true), "{bound}");
        }
    }

    #[test]
    fn the_reply_names_the_bound_ip_or_the_one_facing_the_requester() {
        let bound: SocketAddr = "10.0.0.5:7000".parse().unwrap();
        let req: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        // A requester on this machine gets the bound address.
        assert_eq!(reply_addr(bound, req).unwrap(), Some(bound));
        let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let here: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(reply_addr(any, req).unwrap(), Some(here));
        let any6: SocketAddr = "[::]:7000".parse().unwrap();
        assert_eq!(reply_addr(any6, req).unwrap(), Some(here));
        // Bound to 127.0.0.2 and asked from an address reached through
        // another interface (or no route at all, on a machine without one):
        // no answer.
        let b2: SocketAddr = "127.0.0.2:7000".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        if let Ok(r) = reply_addr(b2, other) {
            assert_eq!(
                r, None,
                "the route to 192.0.2.1 does not leave from 127.0.0.2"
            );
        }
    }

    #[test]
    fn interfaces_include_loopback() {
        // Every machine that runs the tests has a loopback interface up.
        assert!(ipv4_interfaces().contains(&Ipv4Addr::LOCALHOST));
    }
}
