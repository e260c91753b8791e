//! One connection thread per peer: the handshake, then a small poll loop over
//! a non-blocking socket and the coordinator's command channel. It keeps the
//! request pipeline full for the pieces the coordinator assigned, assembles
//! each piece in a reusable buffer, checks its SHA-1 and writes it to disk,
//! serves the peer's requests straight from disk, and answers `ut_metadata`.
//!
//! It never chooses a piece: it reports what it sees (bitfield, have, choke,
//! piece done/bad) and the coordinator answers with [`Command`]s. Nor does it
//! decide when to choke, request, give pieces back or give up on the peer:
//! that is the connection's protocol state ([`PeerState`]), which this thread
//! feeds with what arrives and the time, and obeys.
//!
//! Why a poll loop and not blocking reads: two peers that upload to each other
//! with blocking writes can both block in `write` while neither reads, a
//! deadlock. Reading whenever bytes arrive, whatever the write side is doing,
//! rules that out with one thread per connection.
//!
//! - `mod.rs`: the handshake, the thread's entry points, the start.
//! - `crypt.rs`: the setup below the handshake: MSE/PE and its RC4 streams.
//! - `io.rs`: the poll loop, the read and write buffers, frames, flush.
//! - `messages.rs`: what arrives (messages, commands) and what the state decides.
//! - `pieces.rs`: the piece buffers, the PIECE fast path, SHA-1 and write.
//! - `serve.rs`: answering requests from disk, and `ut_metadata` requests.

mod crypt;
mod io;
mod messages;
mod pieces;
mod serve;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::mse::{Encryption, Methods, Opening};
use minitorrent_common::wire::{
    ExtHandshake, Handshake, Message, HANDSHAKE_LEN, UT_METADATA_ID, UT_PEX_ID,
};

use crate::core::msg::{CloseReason, Command, ConnError, ConnLink, Event, Input};
use crate::core::peer_state::{PeerState, SlotPool, OUR_REQQ};
use crate::core::picker::ConnId;
use crate::core::traffic::ConnTraffic;
use crate::net::shared::{MetaCtx, TorrentShared};
use crate::net::trace;
use crypt::Link;
use io::{ExtIds, Wire};
use messages::EarlyNews;
use pieces::PieceBufs;

/// The whole handshake, however slowly its bytes trickle in.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub fn next_conn_id() -> ConnId {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

impl SlotPool for TorrentShared {
    fn take(&self) -> bool {
        self.take_upload_slot()
    }
    fn give(&self) {
        self.give_upload_slot()
    }
}

/// Reads the peer's 68-byte BitTorrent handshake (through the RC4 stream
/// when MSE selected it). The link's deadline bounds the whole setup: the
/// socket's read timeout alone restarts with every byte, so a peer sending
/// one byte every few seconds could hold the thread for minutes.
fn read_handshake(link: &mut Link, doing: &str) -> Result<Handshake, ConnError> {
    let buf = link.read_exact(HANDSHAKE_LEN, doing)?;
    // aria2, qBittorrent and Transmission open with an encrypted (MSE/PE)
    // handshake when they may, then retry in plain: not worth a warning.
    if buf[0] != 19 && link.mse.is_none() {
        return Err(ConnError::Closing(CloseReason::NotPlain));
    }
    let mut hs = [0u8; HANDSHAKE_LEN];
    hs.copy_from_slice(&buf);
    Handshake::decode(&hs).map_err(|e| ConnError::Handshake(e.to_string()))
}

/// A dial that failed during the MSE handshake (`--encryption prefer`
/// then tries plain) or after it.
enum DialError {
    Mse(ConnError),
    Bt(ConnError),
}

/// Connects to `addr` and, when `offer` is given, runs MSE with our
/// BitTorrent handshake as its initial payload; then reads the peer's.
fn dial(
    t: &TorrentShared,
    addr: SocketAddr,
    offer: Option<Methods>,
) -> Result<(Link, Handshake), DialError> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| DialError::Mse(ConnError::Connect(e)))?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let bt = |e: std::io::Error| DialError::Bt(e.into());
    s.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(bt)?;
    s.set_write_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(bt)?;
    let ours = Handshake::new(t.info_hash, t.peer_id);
    let local = s.local_addr().map_err(bt)?;
    trace::peer(local, addr, || ours.summary());
    let mut link = match offer {
        None => {
            let mut link = Link::plain(s, deadline, Vec::new());
            link.write_all(&ours.encode()).map_err(DialError::Bt)?;
            link
        }
        Some(offer) => {
            let link = crypt::initiate(s, deadline, t.info_hash, offer, &ours.encode())
                .map_err(DialError::Mse)?;
            let how = link.describe();
            trace::note(local, || format!("MSE handshake with {addr} done: {how}"));
            link
        }
    };
    // A peer that requires encryption closes a plain dial without a word
    // (`HandshakeClosed`: the swarm says so when every peer does it).
    let theirs = read_handshake(&mut link, "the handshake").map_err(DialError::Bt)?;
    trace::peer(addr, local, || theirs.summary());
    if theirs.info_hash != t.info_hash {
        return Err(DialError::Bt(ConnError::Handshake(format!(
            "wrong info hash {} (wanted {})",
            theirs.info_hash, t.info_hash
        ))));
    }
    if theirs.peer_id == t.peer_id {
        return Err(DialError::Bt(ConnError::Handshake(
            "connected to ourselves".into(),
        )));
    }
    Ok((link, theirs))
}

/// Connects to `addr` for `torrent`, shakes hands (encrypted first under
/// `--encryption prefer`, plain if the peer will not; encrypted only under
/// `require`) and runs the connection until it ends. Reports
/// `Event::ConnectFailed` or `Event::Gone`.
pub fn run_outbound(t: Arc<TorrentShared>, conn: ConnId, addr: SocketAddr) {
    let policy = t.encryption;
    let result = match dial(&t, addr, policy.outbound_methods()) {
        // A peer that cannot be reached is not tried again in plain.
        Err(DialError::Mse(e))
            if policy == Encryption::Prefer && !matches!(e, ConnError::Connect(_)) =>
        {
            debug!("peer {addr}: encrypted handshake failed ({e}); trying plain");
            dial(&t, addr, None)
        }
        Err(DialError::Mse(e)) if policy == Encryption::Require => {
            if !matches!(e, ConnError::Connect(_)) {
                warn!(
                    "peer {addr}: no encrypted connection ({e}); with --encryption require \
                     only peers that speak MSE/PE with RC4 are used"
                );
            }
            Err(DialError::Mse(e))
        }
        r => r,
    };
    match result {
        Ok((link, hs)) => run(t, conn, link, hs, true),
        Err(DialError::Mse(e) | DialError::Bt(e)) => {
            debug!("peer {addr}: {e}");
            let _ = t.events.send(
                Event::ConnectFailed {
                    conn,
                    addr,
                    error: e,
                }
                .into(),
            );
        }
    }
}

/// Handles an accepted connection: tells a plain handshake from an
/// encrypted one by its first bytes, runs MSE when it is one (finding the
/// torrent among `served`), reads the BitTorrent handshake, finds the
/// torrent by info hash with `lookup`, answers and runs the connection.
pub fn run_inbound(
    mut s: TcpStream,
    conn: ConnId,
    policy: Encryption,
    served: impl FnOnce() -> Vec<InfoHash>,
    lookup: impl FnOnce(&InfoHash) -> Option<Arc<TorrentShared>>,
) {
    let addr = match s.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let setup = || -> Result<(Arc<TorrentShared>, Handshake, Link), ConnError> {
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let local = s.local_addr()?;
        let (opening, first) = crypt::opening(&mut s, deadline)?;
        let mut link = match (opening, policy.inbound_methods()) {
            (Opening::Encrypted, None) => return Err(ConnError::Closing(CloseReason::NotPlain)),
            (Opening::Encrypted, Some(accept)) => {
                let link = crypt::respond(s, deadline, &first, &served(), accept)?;
                let how = link.describe();
                trace::note(local, || format!("MSE handshake with {addr} done: {how}"));
                link
            }
            _ if !policy.allows_plain() => {
                return Err(ConnError::Handshake(
                    "a plain (unencrypted) BitTorrent handshake, refused: this peer runs with \
                     --encryption require and accepts encrypted (MSE/PE, RC4) connections only"
                        .into(),
                ))
            }
            _ => Link::plain(s, deadline, first),
        };
        let theirs = read_handshake(&mut link, "the handshake")?;
        trace::peer(addr, local, || theirs.summary());
        if let Some(skey) = link.skey.filter(|k| *k != theirs.info_hash) {
            return Err(ConnError::Handshake(format!(
                "the encrypted handshake named torrent {skey}, the BitTorrent handshake {}",
                theirs.info_hash
            )));
        }
        let t = lookup(&theirs.info_hash).ok_or_else(|| {
            ConnError::Handshake(format!("unknown info hash {}", theirs.info_hash))
        })?;
        if theirs.peer_id == t.peer_id {
            return Err(ConnError::Handshake("connected to ourselves".into()));
        }
        let ours = Handshake::new(t.info_hash, t.peer_id);
        trace::peer(local, addr, || ours.summary());
        link.write_all(&ours.encode())?;
        Ok((t, theirs, link))
    };
    match setup() {
        Ok((t, hs, link)) => run(t, conn, link, hs, false),
        Err(e) => {
            if e.is_violation() {
                warn!("peer {addr}: closing: {e}");
            } else {
                debug!("peer {addr}: {e}");
            }
        }
    }
}

fn run(t: Arc<TorrentShared>, conn: ConnId, link: Link, hs: Handshake, outbound: bool) {
    let remote = match link.s.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let result = Conn::start(t.clone(), conn, link, hs, outbound).and_then(|c| c.run());
    let error = result.err().unwrap_or(ConnError::Closed);
    match &error {
        e if e.is_violation() => warn!("peer {remote}: closing: {e}"),
        ConnError::Stalled(_) | ConnError::Storage(_) => info!("peer {remote}: closing: {error}"),
        _ => debug!("peer {remote}: {error}"),
    }
    let _ = t.events.send(Event::Gone { conn, error }.into());
}

/// The connection's round-trip time as the kernel measured it so far
/// (Linux `TCP_INFO`): right after the handshake, before any piece
/// traffic, it is close to the path's base delay. `None` elsewhere.
fn tcp_rtt(s: &TcpStream) -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a zeroed tcp_info is a valid value of a plain C struct;
        // getsockopt writes at most `len` bytes into it.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        (r == 0 && info.tcpi_rtt > 0).then(|| Duration::from_micros(info.tcpi_rtt.into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = s;
        None
    }
}

/// Our first messages after the handshake: the bitfield (it must come
/// first, and only when we have something and do not `hide` it for initial
/// seeding; with the fast extension, HAVE ALL for a seed and HAVE NONE for
/// nothing shown, BEP 6), then the extension handshake if the peer speaks
/// BEP 10; and
/// the ids it gives our extensions (none without BEP 10; no `ut_pex` for a
/// torrent known to be private, BEP 27).
fn greeting(
    meta: Option<&MetaCtx>,
    hide: bool,
    hs: &Handshake,
    listen_port: u16,
) -> (Vec<Message>, ExtIds) {
    let mut out = Vec::new();
    let shown = meta.filter(|m| m.have.count() > 0 && !hide);
    match shown {
        Some(m) if hs.supports_fast() && m.have.count() == m.geometry.num_pieces() as usize => {
            out.push(Message::HaveAll)
        }
        Some(m) => out.push(Message::Bitfield(m.have.to_bytes())),
        None if hs.supports_fast() => out.push(Message::HaveNone),
        None => {}
    }
    let mut ids = ExtIds::default();
    if hs.supports_extensions() {
        let mut ext = ExtHandshake::ours(
            meta.map(|m| m.info_bytes.len() as u64),
            Some(listen_port),
            crate::core::shared::CLIENT_NAME,
        );
        if meta.is_some_and(|m| m.info.private) {
            ext.m.remove("ut_pex");
        }
        ext.reqq = Some(OUR_REQQ as u32);
        ids.metadata = Some(UT_METADATA_ID);
        ids.pex = ext.ut_pex_id().map(|_| UT_PEX_ID);
        out.push(Message::Extended {
            id: 0,
            payload: ext.encode(),
        });
    }
    (out, ids)
}

/// One connection after the handshake: the socket side ([`Wire`]), the
/// protocol state ([`PeerState`]) and the pieces being assembled.
struct Conn {
    id: ConnId,
    t: Arc<TorrentShared>,
    meta: Option<Arc<MetaCtx>>,
    cmds: Receiver<Command>,
    wire: Wire,
    state: PeerState,
    bufs: PieceBufs,
    early: EarlyNews,
    /// The totals the coordinator reads for `STATS` (see `publish_traffic`).
    traffic: Arc<ConnTraffic>,
}

impl Conn {
    fn start(
        t: Arc<TorrentShared>,
        id: ConnId,
        link: Link,
        hs: Handshake,
        outbound: bool,
    ) -> Result<Conn, ConnError> {
        let meta = t.meta.get().cloned();
        let pieces = meta.as_ref().map(|m| m.geometry.num_pieces() as usize);
        let rtt = tcp_rtt(&link.s);
        let (wire, waker) = Wire::new(link.s, pieces, link.ciphers, link.pending)?;
        let (local, remote) = (wire.local, wire.remote);
        let (cmd_tx, cmds) = crossbeam_channel::unbounded();
        let mut c = Conn {
            id,
            t: t.clone(),
            state: PeerState::new(meta.as_ref().map(|m| m.meta.clone()), Instant::now()),
            meta,
            cmds,
            wire,
            bufs: PieceBufs::default(),
            early: EarlyNews::default(),
            traffic: Arc::default(),
        };
        let hid_pieces = t.hides_pieces() && c.meta.is_some();
        let (hello, ids) = greeting(c.meta.as_deref(), hid_pieces, &hs, t.listen_port);
        c.wire.our_ids = ids;
        for m in hello {
            c.wire.send(&m);
        }
        if hs.supports_fast() {
            c.state.enable_fast();
            c.offer_allowed_fast(hid_pieces);
        }
        let link = ConnLink {
            cmd: cmd_tx,
            wake: Arc::new(move || {
                let _ = waker.wake();
            }),
            traffic: c.traffic.clone(),
        };
        t.events
            .send(Input::Link { conn: id, link })
            .map_err(|_| ConnError::Stopped)?;
        t.events
            .send(
                Event::Connected {
                    conn: id,
                    addr: remote,
                    local,
                    peer_id: hs.peer_id,
                    outbound,
                    hid_pieces,
                    rtt,
                }
                .into(),
            )
            .map_err(|_| ConnError::Stopped)?;
        Ok(c)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The last bytes, before the coordinator hears `Gone`.
        self.traffic.store(self.state.traffic());
        self.state.close(&*self.t);
    }
}
