//! Which protocol a tracker speaks. What `--tracker-protocol` asks for
//! ([`TrackerProtocol`]) and how the tracker was written down turn into
//! `auto` or a forced protocol ([`effective_protocol`]); under `auto`,
//! [`probe`] asks the tracker in both protocols at once, and
//! [`ProtocolChoice`] keeps what the probes of one tracker found for as long
//! as its owner (the session's tracker home) lives: a protocol found is
//! remembered, silence is not.
//!
//! How the choice is made is written down in `docs/INTEROP.md`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{self, FileRef, MAX_DATAGRAM_SIZE};
use minitorrent_common::udp_tracker::{Request, Response};

use crate::net::trace;
use crate::net::tracker::bep15::{connected_socket, recv_until, Bep15Client, Recv, Schedule};
use crate::net::tracker::json;

/// What `--tracker-protocol` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TrackerProtocol {
    /// JSON for a bare HOST:PORT; a udp:// URL is probed once: JSON if it
    /// answers JSON, else BEP 15 if it answers a BEP 15 connect.
    #[default]
    Auto,
    /// Only the minitorrent JSON protocol.
    Json,
    /// Only the BitTorrent UDP tracker protocol (BEP 15).
    Bep15,
}

/// The protocol a session uses with its tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Bep15,
}

/// `--tracker-protocol auto` probes a tracker given as a `udp://` URL (in
/// `--tracker`, a .torrent's announce or a magnet's `tr`); a bare
/// `HOST:PORT` is minitorrent's own notation for its JSON tracker.
pub fn effective_protocol(
    choice: TrackerProtocol,
    flag: Option<&str>,
    announce: Option<&str>,
) -> TrackerProtocol {
    if choice != TrackerProtocol::Auto {
        return choice;
    }
    let given = flag.or(announce.filter(|a| json::resolve(a).is_ok()));
    match given {
        Some(t) if t.trim().starts_with("udp://") => TrackerProtocol::Auto,
        _ => TrackerProtocol::Json,
    }
}

/// One tracker's protocol: what the user asked for and what probing the
/// tracker found.
pub struct ProtocolChoice {
    addr: SocketAddr,
    /// Where datagrams leave from (`--bind`).
    local: IpAddr,
    asked: TrackerProtocol,
    /// Held across a probe, so torrents starting together wait for one
    /// probe instead of each sending their own.
    found: Mutex<Option<Protocol>>,
}

impl ProtocolChoice {
    pub fn new(addr: SocketAddr, asked: TrackerProtocol, local: IpAddr) -> ProtocolChoice {
        ProtocolChoice {
            addr,
            local,
            asked,
            found: Mutex::new(None),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address datagrams to the tracker leave from.
    pub fn local(&self) -> IpAddr {
        self.local
    }

    /// What `--tracker-protocol` asked for, after [`effective_protocol`].
    pub fn asked(&self) -> TrackerProtocol {
        self.asked
    }

    /// Whether the protocol is known: asked for, or found by a probe (a
    /// silent tracker leaves it unknown).
    pub fn known(&self) -> bool {
        self.asked != TrackerProtocol::Auto || self.found().is_some()
    }

    fn found(&self) -> MutexGuard<'_, Option<Protocol>> {
        // Only a plain `Option` behind it: a panic elsewhere leaves it whole.
        self.found.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The protocol to use for a torrent: the forced one, else the one
    /// found earlier, else a probe with the torrent's `info_hash`. A tracker
    /// that answers nothing gets JSON and its usual "unreachable" errors.
    pub fn decide(&self, info_hash: InfoHash, peer_id: &str) -> Protocol {
        let (addr, local) = (self.addr, self.local);
        self.decide_with(|| {
            let found = probe(addr, local, info_hash, peer_id, Schedule::PROBE);
            if let Some(p) = found {
                info!(
                    "tracker {addr} speaks {}",
                    match p {
                        Protocol::Json => "the minitorrent JSON protocol",
                        Protocol::Bep15 => "only BEP 15 (the BitTorrent UDP tracker protocol)",
                    }
                );
            }
            found
        })
    }

    /// [`decide`](Self::decide) with the probe given: remembers what it
    /// finds, forgets silence (the next torrent probes again).
    fn decide_with(&self, probe: impl FnOnce() -> Option<Protocol>) -> Protocol {
        match self.asked {
            TrackerProtocol::Json => Protocol::Json,
            TrackerProtocol::Bep15 => Protocol::Bep15,
            TrackerProtocol::Auto => {
                let mut found = self.found();
                if let Some(p) = *found {
                    return p;
                }
                *found = probe();
                found.unwrap_or(Protocol::Json)
            }
        }
    }

    /// Whether a tracker that did not answer JSON answers BEP 15 (to explain
    /// a failed name lookup or search). Remembers a yes.
    pub fn answers_bep15(&self) -> bool {
        let (addr, local) = (self.addr, self.local);
        self.answers_bep15_with(|| {
            Bep15Client::bound(addr, local)
                .map(|mut c| {
                    c.schedule = Schedule {
                        first: Duration::from_millis(250),
                        tries: 2,
                    };
                    c.connect().is_ok()
                })
                .unwrap_or(false)
        })
    }

    fn answers_bep15_with(&self, connect: impl FnOnce() -> bool) -> bool {
        let mut found = self.found();
        match *found {
            Some(Protocol::Bep15) => return true,
            // It answered JSON before: a JSON request left unanswered now
            // was lost, and must not switch the session to BEP 15.
            Some(Protocol::Json) => return false,
            None => {}
        }
        let yes = connect();
        if yes {
            *found = Some(Protocol::Bep15);
        }
        yes
    }
}

/// Asks `addr` in both protocols at once from one socket: a JSON `REQUEST`
/// for `info_hash` (a question the peer asks anyway) and a BEP 15 connect.
/// Any JSON reply means JSON; a connect reply with no JSON reply by the end
/// of that try means BEP 15; silence along the whole schedule is `None`.
pub fn probe(
    addr: SocketAddr,
    from: IpAddr,
    info_hash: InfoHash,
    peer_id: &str,
    schedule: Schedule,
) -> Option<Protocol> {
    let (sock, local) = match connected_socket(addr, from) {
        Ok(s) => s,
        Err(e) => {
            warn!("tracker {addr}: {e}");
            return None;
        }
    };
    let tid = fastrand::u32(1..1 << 30);
    let json = tracker_proto::Request::Request {
        tid,
        file: FileRef::InfoHash(info_hash),
        peer_id: Some(peer_id.to_string()),
    };
    let json_bytes = json.encode();
    let tx = fastrand::u32(..);
    let connect = Request::Connect { transaction_id: tx };
    let mut buf = vec![0u8; MAX_DATAGRAM_SIZE + 1];
    let mut wait = schedule.first;
    for _ in 0..schedule.tries {
        trace::tracker(local, addr, || json.summary());
        trace::tracker(local, addr, || connect.summary());
        let _ = sock.send(&json_bytes);
        let _ = sock.send(&connect.encode());
        let deadline = Instant::now() + wait;
        let mut bep15 = false;
        loop {
            let n = match recv_until(&sock, &mut buf, deadline) {
                Ok(Recv::Got(n)) => n,
                Ok(Recv::TimedOut) => break,
                Err(e) => {
                    warn!("tracker {addr}: {e}");
                    return None;
                }
            };
            let b = &buf[..n];
            if b.first() == Some(&b'{') {
                if let Ok(r) = tracker_proto::Reply::decode(b) {
                    if r.tid() == Some(tid) {
                        trace::tracker(addr, local, || r.summary());
                        return Some(Protocol::Json);
                    }
                }
            } else if let Ok(r @ Response::Connect { .. }) = Response::decode(b, addr.is_ipv6()) {
                if r.transaction_id() == tx {
                    trace::tracker(addr, local, || r.summary());
                    bep15 = true;
                }
            }
        }
        if bep15 {
            return Some(Protocol::Bep15);
        }
        wait *= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tracker::fake::{bep15_only, fake, hash, FAST};
    use std::net::UdpSocket;

    #[test]
    fn probe_tells_the_protocols_apart() {
        let (addr, h, stop) = fake(bep15_only);
        assert_eq!(
            probe(addr, any(), hash(1), "me", FAST),
            Some(Protocol::Bep15)
        );
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        // Both protocols (like our tracker): JSON wins.
        let (addr, h, stop) = fake(|b| {
            if b.first() == Some(&b'{') {
                let v: serde_json::Value = serde_json::from_slice(b).ok()?;
                let r = serde_json::json!({"type": "ERROR", "tid": v["tid"],
                    "code": "not_found", "message": "no"});
                Some(r.to_string().into_bytes())
            } else {
                bep15_only(b)
            }
        });
        assert_eq!(
            probe(addr, any(), hash(1), "me", FAST),
            Some(Protocol::Json)
        );
        *stop.lock().unwrap() = true;
        h.join().unwrap();

        // Nobody home.
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let t = Instant::now();
        assert_eq!(probe(addr, any(), hash(1), "me", FAST), None);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    fn any() -> IpAddr {
        IpAddr::from([0, 0, 0, 0])
    }

    fn no_probe() -> Option<Protocol> {
        panic!("probed although the protocol was known")
    }

    #[test]
    fn a_forced_protocol_is_used_without_probing() {
        let c = ProtocolChoice::new(addr(), TrackerProtocol::Json, any());
        assert_eq!(c.decide_with(no_probe), Protocol::Json);
        let c = ProtocolChoice::new(addr(), TrackerProtocol::Bep15, any());
        assert_eq!(c.decide_with(no_probe), Protocol::Bep15);
    }

    #[test]
    fn auto_probes_once_and_keeps_what_it_found() {
        for found in [Protocol::Json, Protocol::Bep15] {
            let c = ProtocolChoice::new(addr(), TrackerProtocol::Auto, any());
            assert_eq!(c.decide_with(|| Some(found)), found);
            assert_eq!(c.decide_with(no_probe), found);
        }
    }

    #[test]
    fn silence_means_json_and_the_next_torrent_probes_again() {
        let c = ProtocolChoice::new(addr(), TrackerProtocol::Auto, any());
        assert_eq!(c.decide_with(|| None), Protocol::Json);
        assert_eq!(c.decide_with(|| Some(Protocol::Bep15)), Protocol::Bep15);
        assert_eq!(c.decide_with(no_probe), Protocol::Bep15);
    }

    #[test]
    fn a_bep15_answer_is_remembered_a_silence_is_not() {
        let c = ProtocolChoice::new(addr(), TrackerProtocol::Auto, any());
        assert!(!c.answers_bep15_with(|| false));
        assert!(c.answers_bep15_with(|| true));
        assert!(c.answers_bep15_with(|| panic!("asked again")));
        assert_eq!(c.decide_with(no_probe), Protocol::Bep15);
        // Two choices own two memories: nothing is shared through the process.
        let other = ProtocolChoice::new(addr(), TrackerProtocol::Auto, any());
        assert_eq!(other.decide_with(|| None), Protocol::Json);
    }

    #[test]
    fn a_json_answer_is_not_undone_by_a_lost_request() {
        let c = ProtocolChoice::new(addr(), TrackerProtocol::Auto, any());
        assert_eq!(c.decide_with(|| Some(Protocol::Json)), Protocol::Json);
        assert!(!c.answers_bep15_with(|| panic!("no BEP 15 connect once JSON answered")));
        assert_eq!(c.decide_with(no_probe), Protocol::Json);
    }

    #[test]
    fn only_a_udp_url_is_probed() {
        use TrackerProtocol::*;
        let udp = Some("udp://127.0.0.1:6969/announce");
        let bare = Some("127.0.0.1:6969");
        assert_eq!(effective_protocol(Auto, udp, None), Auto);
        assert_eq!(effective_protocol(Auto, bare, None), Json);
        assert_eq!(effective_protocol(Auto, None, udp), Auto);
        assert_eq!(effective_protocol(Auto, None, bare), Json);
        assert_eq!(effective_protocol(Auto, None, None), Json);
        // The flag wins over the announce.
        assert_eq!(effective_protocol(Auto, bare, udp), Json);
        // An announce we cannot use is ignored like an absent one.
        assert_eq!(
            effective_protocol(Auto, None, Some("http://127.0.0.1:1/announce")),
            Json
        );
        // A forced protocol stays forced.
        assert_eq!(effective_protocol(Json, udp, udp), Json);
        assert_eq!(effective_protocol(Bep15, bare, None), Bep15);
    }
}
