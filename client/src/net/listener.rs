//! The listener thread: accepts peer connections, admits them within bounds
//! ([`InboundTable`]), and hands each to a connection thread that finds its
//! torrent by the info hash of its handshake.

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::mse::Encryption;

use crate::net::conn;
use crate::net::shared::TorrentHandle;

/// Inbound connections the listener keeps at once, handshaking or running:
/// each costs a thread, so a flood of connects must not cost a thread each.
pub const MAX_INBOUND: usize = 200;
/// Inbound connections from one IP address at once. A classroom demo runs
/// several peers on 127.0.0.1 (each peer sees at most one connection from
/// each of the others, plus one being torn down), so this stays well above
/// the number of peers of a demo or a test, and far below `MAX_INBOUND`.
pub const MAX_INBOUND_PER_IP: usize = 16;

/// The inbound connections the listener has admitted: whether each is still
/// in its handshake, since when, and (while handshaking) a handle to close
/// it. When a limit is reached, the connection that has been handshaking the
/// longest makes room: a real peer sends its handshake at once, so silent or
/// trickling connections are the ones that go, and a flood of them cannot
/// lock real peers out. Plain data; time passed in.
pub struct InboundTable {
    max_total: usize,
    max_per_ip: usize,
    next_id: u64,
    conns: HashMap<u64, InboundConn>,
}

struct InboundConn {
    ip: IpAddr,
    since: Instant,
    handshaking: bool,
    /// A clone of the socket, kept while handshaking, to close it.
    closer: Option<std::net::TcpStream>,
}

/// A handshaking connection closed to make room for a new one.
#[derive(Debug)]
pub struct Evicted {
    pub id: u64,
    pub stream: Option<std::net::TcpStream>,
}

/// What to do with a new inbound connection.
#[derive(Debug)]
pub enum Admission {
    /// Run it as connection `id`; first close `evict` (a connection that has
    /// been handshaking longer than any other that could make room).
    Accept { id: u64, evict: Option<Evicted> },
    /// Close it at once; the reason is for the log.
    Refuse(String),
}

impl InboundTable {
    pub fn new(max_total: usize, max_per_ip: usize) -> InboundTable {
        InboundTable {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            next_id: 0,
            conns: HashMap::new(),
        }
    }

    /// Admits a connection from `ip`; `closer` (a clone of its socket) lets
    /// a later connection evict it while it is handshaking.
    pub fn admit(
        &mut self,
        ip: IpAddr,
        now: Instant,
        closer: Option<std::net::TcpStream>,
    ) -> Admission {
        let from_ip = self.conns.values().filter(|c| c.ip == ip).count();
        let oldest_handshaking = |same_ip: bool| {
            self.conns
                .iter()
                .filter(|(_, c)| c.handshaking && (!same_ip || c.ip == ip))
                .min_by_key(|(id, c)| (c.since, **id))
                .map(|(id, _)| *id)
        };
        let victim = if from_ip >= self.max_per_ip {
            match oldest_handshaking(true) {
                Some(v) => Some(v),
                None => {
                    return Admission::Refuse(format!(
                        "{from_ip} connections from {ip} already (limit {})",
                        self.max_per_ip
                    ))
                }
            }
        } else if self.conns.len() >= self.max_total {
            match oldest_handshaking(false) {
                Some(v) => Some(v),
                None => {
                    return Admission::Refuse(format!(
                        "{} inbound connections already (limit {})",
                        self.conns.len(),
                        self.max_total
                    ))
                }
            }
        } else {
            None
        };
        let evict = victim.and_then(|id| {
            self.conns.remove(&id).map(|c| Evicted {
                id,
                stream: c.closer,
            })
        });
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            InboundConn {
                ip,
                since: now,
                handshaking: true,
                closer,
            },
        );
        Admission::Accept { id, evict }
    }

    /// The handshake of `id` arrived: it is a peer now, never evicted.
    pub fn handshake_done(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.handshaking = false;
            c.closer = None;
        }
    }

    /// Connection `id` ended (or was evicted already: then nothing happens).
    pub fn remove(&mut self, id: u64) {
        self.conns.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// Removes its connection from the table when the connection thread ends.
struct InboundSlot {
    table: Arc<Mutex<InboundTable>>,
    id: u64,
}

impl InboundSlot {
    fn handshake_done(&self) {
        if let Ok(mut t) = self.table.lock() {
            t.handshake_done(self.id);
        }
    }
}

impl Drop for InboundSlot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(self.id);
        }
    }
}

pub fn listen_loop(
    listener: TcpListener,
    torrents: Arc<Mutex<HashMap<InfoHash, TorrentHandle>>>,
    encryption: Encryption,
) {
    let limits = Arc::new(Mutex::new(InboundTable::new(
        MAX_INBOUND,
        MAX_INBOUND_PER_IP,
    )));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Ok(addr) = stream.peer_addr() else {
            continue;
        };
        let admission = match limits.lock() {
            Ok(mut l) => l.admit(addr.ip(), Instant::now(), stream.try_clone().ok()),
            Err(_) => Admission::Refuse("inbound table poisoned".into()),
        };
        let id = match admission {
            Admission::Refuse(why) => {
                debug!("peer {addr}: refused: {why}");
                drop(stream);
                continue;
            }
            Admission::Accept { id, evict } => {
                if let Some(old) = evict.and_then(|e| e.stream) {
                    let who = old
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|_| "?".into());
                    debug!("peer {who}: closed: still no handshake, and {addr} needs its slot");
                    // Wakes its thread's blocked read, which then ends.
                    let _ = old.shutdown(std::net::Shutdown::Both);
                }
                id
            }
        };
        let slot = InboundSlot {
            table: limits.clone(),
            id,
        };
        let table = torrents.clone();
        let served = torrents.clone();
        let conn = conn::next_conn_id();
        let spawned = std::thread::Builder::new()
            .name("peer in".into())
            .spawn(move || {
                let slot = slot;
                // An encrypted handshake names its torrent only through
                // SHA1("req2", info hash): it is tried against each we serve.
                let served = || {
                    served
                        .lock()
                        .map(|t| t.keys().copied().collect())
                        .unwrap_or_default()
                };
                conn::run_inbound(stream, conn, encryption, served, |ih| {
                    slot.handshake_done();
                    table.lock().ok()?.get(ih).map(|h| h.shared.clone())
                })
            });
        if let Err(e) = spawned {
            warn!("cannot start a connection thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(a: Admission) -> (u64, Option<u64>) {
        match a {
            Admission::Accept { id, evict } => (id, evict.map(|e| e.id)),
            Admission::Refuse(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn a_full_ip_makes_room_by_closing_its_oldest_handshake() {
        let mut t = InboundTable::new(100, 3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let (a, _) = accepted(t.admit(ip, s(0), None));
        let (b, _) = accepted(t.admit(ip, s(1), None));
        let (c, _) = accepted(t.admit(ip, s(2), None));
        let (_, none) = accepted(t.admit(other, s(3), None));
        assert_eq!(none, None, "another IP has its own limit");
        // `a` became a peer: never evicted; `b` is the oldest still silent.
        t.handshake_done(a);
        let (d, ev) = accepted(t.admit(ip, s(4), None));
        assert_eq!(ev, Some(b));
        assert_eq!(t.len(), 4);
        // The evicted connection's thread ending later changes nothing.
        t.remove(b);
        assert_eq!(t.len(), 4);
        t.handshake_done(c);
        t.handshake_done(d);
        match t.admit(ip, s(5), None) {
            Admission::Refuse(why) => assert!(why.contains("10.0.0.1"), "{why}"),
            Admission::Accept { .. } => panic!("admitted past the limit of peers"),
        }
        // A peer leaving frees its place.
        t.remove(c);
        assert_eq!(accepted(t.admit(ip, s(6), None)).1, None);
    }

    #[test]
    fn the_global_limit_evicts_the_oldest_handshake_of_any_ip() {
        let mut t = InboundTable::new(4, 16);
        let t0 = Instant::now();
        let ips: Vec<IpAddr> = (1..=5u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let mut ids = Vec::new();
        for (n, ip) in ips.iter().take(4).enumerate() {
            ids.push(accepted(t.admit(*ip, t0 + Duration::from_secs(n as u64), None)).0);
        }
        t.handshake_done(ids[0]);
        let (_, ev) = accepted(t.admit(ips[4], t0 + Duration::from_secs(9), None));
        assert_eq!(ev, Some(ids[1]), "the oldest still handshaking");
        assert_eq!(t.len(), 4);
        for id in &ids[2..] {
            t.handshake_done(*id);
        }
        let last = t.conns.keys().copied().max().unwrap();
        t.handshake_done(last);
        assert!(matches!(
            t.admit(ips[0], t0 + Duration::from_secs(10), None),
            Admission::Refuse(_)
        ));
    }
}
