//! One connection thread per peer: the handshake, then a small poll loop over
//! a non-blocking socket and the coordinator's command channel. It keeps the
//! request pipeline full for the pieces the coordinator assigned, assembles
//! each piece in a reusable buffer, checks its SHA-1 and writes it to disk,
//! serves the peer's requests straight from disk, and answers `ut_metadata`.
//!
//! It never chooses a piece: it reports what it sees (bitfield, have, choke,
//! piece done/bad) and the coordinator answers with [`Command`]s.
//!
//! Why a poll loop and not blocking reads: two peers that upload to each other
//! with blocking writes can both block in `write` while neither reads, a
//! deadlock. Reading whenever bytes arrive, whatever the write side is doing,
//! rules that out with one thread per connection.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use log::{debug, info, warn};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::{
    self, Bitfield, ExtHandshake, Handshake, Message, MetadataMsg, HANDSHAKE_LEN, MAX_MESSAGE_LEN,
    METADATA_BLOCK, UT_METADATA_ID,
};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::core::geometry::{Block, PieceIndex};
use crate::core::msg::{CloseReason, Command, ConnError, ConnLink, Event, Input};
use crate::core::picker::ConnId;
use crate::net::shared::{MetaCtx, TorrentShared};
use crate::net::trace;
use minitorrent_common::hash::sha1;

const SOCK: Token = Token(0);
const WAKE: Token = Token(1);

/// Size of the read buffer (plus the largest frame) and the point past which
/// the write buffer is not refilled: large enough that a loopback transfer
/// makes few syscalls, small enough to bound memory per connection.
const RBUF_LEN: usize = 256 * 1024;
const WBUF_TARGET: usize = 256 * 1024;
/// Requests we keep outstanding at most, whatever the peer's `reqq` says.
const MAX_OUTSTANDING: usize = 256;
/// Outstanding requests when the peer does not state its `reqq`.
const DEFAULT_REQQ: usize = 128;
/// Our `reqq`: requests from one peer we queue before calling it a flood.
pub const OUR_REQQ: usize = 512;
/// Bytes waiting to be sent past which the peer is taken to flood us without
/// reading: blocks only refill the buffer up to `WBUF_TARGET`, so only
/// answers to a flood of small requests (`ut_metadata`) can get here.
const MAX_BACKLOG: usize = 4 << 20;
/// A `ut_metadata` request while this much waits to be sent is a flood: each
/// answers a ~30-byte request with up to 16 KiB, and a peer fetching the
/// metadata asks for a few blocks at a time and reads them.
const METADATA_BACKLOG: usize = 1 << 20;
/// While more than this waits to be sent, the peer's messages are left
/// unread (in the kernel's buffers, then in its own): nothing it sends can
/// make us queue more. Above `METADATA_BACKLOG`, so that a metadata flood is
/// closed by name rather than merely paused; an honest peer never gets here.
const READ_PAUSE: usize = 2 << 20;
/// Requests we cancelled or forgot (choke) whose blocks may still arrive.
const FORGOTTEN_MAX: usize = 4096;
/// The whole handshake, however slowly its bytes trickle in.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// Unchoked with requests outstanding and no block for this long: stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Choked while holding assigned pieces for this long: give them back.
const CHOKED_RELEASE: Duration = Duration::from_secs(10);
/// A peer that says NOT INTERESTED stays unchoked this long before we choke
/// it and free its upload slot. Between two leechers interest comes and goes
/// with every HAVE; choking at once would add a CHOKE and an UNCHOKE to each
/// of those turns for nothing.
const UNINTERESTED_CHOKE_AFTER: Duration = Duration::from_secs(10);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub fn next_conn_id() -> ConnId {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

fn violation(msg: impl Into<String>) -> ConnError {
    ConnError::Protocol(msg.into())
}

/// Reads the 68-byte handshake within [`HANDSHAKE_TIMEOUT`] in all: the
/// socket's read timeout alone restarts with every byte, so a peer sending
/// one byte every few seconds could hold the thread for minutes.
fn read_handshake(stream: &mut TcpStream) -> Result<Handshake, ConnError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut buf = [0u8; HANDSHAKE_LEN];
    let mut got = 0;
    while got < HANDSHAKE_LEN {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnError::Handshake(format!(
                "no complete handshake within {HANDSHAKE_TIMEOUT:?} ({got} of {HANDSHAKE_LEN} bytes)"
            )));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(ConnError::Handshake(
                    "connection closed during the handshake".into(),
                ))
            }
            Ok(n) => got += n,
            // A timeout goes round the loop, which reports the deadline.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(ConnError::Handshake(e.to_string())),
        }
        // aria2, qBittorrent and Transmission open with an encrypted (MSE/PE)
        // handshake when they may, then retry in plain: not worth a warning.
        if got > 0 && buf[0] != 19 {
            return Err(ConnError::Closing(CloseReason::NotPlain));
        }
    }
    Handshake::decode(&buf).map_err(|e| ConnError::Handshake(e.to_string()))
}

/// The blocks of requests we cancelled or forgot (on a choke) that the peer
/// may still send: a late block for one of them is wasted, not a protocol
/// violation. Bounded, forgetting the oldest first: a peer that honours
/// CANCEL and drops requests on CHOKE never sends most of them, and a full
/// set that refused new entries would, after enough chokes, turn a
/// perfectly normal late block into a reason to ban the peer.
#[derive(Default)]
struct Forgotten {
    /// Block → when it was forgotten (a counter), so that evicting an old
    /// entry from `order` never drops a newer entry for the same block.
    set: HashMap<(u32, u32), u64>,
    order: VecDeque<((u32, u32), u64)>,
    clock: u64,
}

impl Forgotten {
    fn insert(&mut self, b: (u32, u32)) {
        if self.set.contains_key(&b) {
            return;
        }
        self.clock += 1;
        self.set.insert(b, self.clock);
        self.order.push_back((b, self.clock));
        while self.order.len() > FORGOTTEN_MAX {
            if let Some((old, at)) = self.order.pop_front() {
                if self.set.get(&old) == Some(&at) {
                    self.set.remove(&old);
                }
            }
        }
    }
    /// True (once) if the block was forgotten.
    fn remove(&mut self, b: &(u32, u32)) -> bool {
        // `order` keeps the stale entry until it reaches the front; it is
        // bounded all the same.
        self.set.remove(b).is_some()
    }
}

/// Connects to `addr` for `torrent`, shakes hands and runs the connection
/// until it ends. Reports `Event::ConnectFailed` or `Event::Gone`.
pub fn run_outbound(t: Arc<TorrentShared>, conn: ConnId, addr: SocketAddr) {
    let setup = || -> Result<(TcpStream, Handshake), ConnError> {
        let mut s =
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(ConnError::Connect)?;
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let ours = Handshake::new(t.info_hash, t.peer_id);
        let local = s.local_addr()?;
        trace::peer(local, addr, || ours.summary());
        s.write_all(&ours.encode())?;
        let theirs = read_handshake(&mut s)?;
        trace::peer(addr, local, || theirs.summary());
        if theirs.info_hash != t.info_hash {
            return Err(ConnError::Handshake(format!(
                "wrong info hash {} (wanted {})",
                theirs.info_hash, t.info_hash
            )));
        }
        if theirs.peer_id == t.peer_id {
            return Err(ConnError::Handshake("connected to ourselves".into()));
        }
        Ok((s, theirs))
    };
    match setup() {
        Ok((s, hs)) => run(t, conn, s, hs, true),
        Err(e) => {
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

/// Handles an accepted connection: reads the handshake, finds the torrent by
/// info hash with `lookup`, answers and runs the connection.
pub fn run_inbound(
    mut s: TcpStream,
    conn: ConnId,
    lookup: impl FnOnce(&InfoHash) -> Option<Arc<TorrentShared>>,
) {
    let addr = match s.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let setup = |s: &mut TcpStream| -> Result<(Arc<TorrentShared>, Handshake), ConnError> {
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let local = s.local_addr()?;
        let theirs = read_handshake(s)?;
        trace::peer(addr, local, || theirs.summary());
        let t = lookup(&theirs.info_hash).ok_or_else(|| {
            ConnError::Handshake(format!("unknown info hash {}", theirs.info_hash))
        })?;
        if theirs.peer_id == t.peer_id {
            return Err(ConnError::Handshake("connected to ourselves".into()));
        }
        let ours = Handshake::new(t.info_hash, t.peer_id);
        trace::peer(local, addr, || ours.summary());
        s.write_all(&ours.encode())?;
        Ok((t, theirs))
    };
    match setup(&mut s) {
        Ok((t, hs)) => run(t, conn, s, hs, false),
        Err(e) => {
            if e.is_violation() {
                warn!("peer {addr}: closing: {e}");
            } else {
                debug!("peer {addr}: {e}");
            }
        }
    }
}

fn run(t: Arc<TorrentShared>, conn: ConnId, s: TcpStream, hs: Handshake, outbound: bool) {
    let remote = match s.peer_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let result = Conn::start(t.clone(), conn, s, hs, outbound).and_then(|c| c.run());
    let error = result.err().unwrap_or(ConnError::Closed);
    match &error {
        e if e.is_violation() => warn!("peer {remote}: closing: {e}"),
        ConnError::Stalled(_) | ConnError::Storage(_) => info!("peer {remote}: closing: {error}"),
        _ => debug!("peer {remote}: {error}"),
    }
    let _ = t.events.send(Event::Gone { conn, error }.into());
}

/// The trace line of a message; extension messages are decoded one level
/// further. `ut_metadata` is the id the receiver gave that extension.
fn describe(m: &Message, ut_metadata: Option<u8>) -> String {
    match m {
        Message::Extended { id: 0, payload } => ExtHandshake::decode(payload)
            .map(|h| h.summary())
            .unwrap_or_else(|_| m.summary()),
        Message::Extended { id, payload } if Some(*id) == ut_metadata => {
            MetadataMsg::decode(payload)
                .map(|x| x.summary())
                .unwrap_or_else(|_| m.summary())
        }
        _ => m.summary(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Wanted,
    Requested,
    Received,
}

/// A piece being assembled.
struct Job {
    piece: PieceIndex,
    len: u32,
    buf: Vec<u8>,
    blocks: Vec<BlockState>,
    received: u32,
}

struct Conn {
    id: ConnId,
    t: Arc<TorrentShared>,
    meta: Option<Arc<MetaCtx>>,
    stream: mio::net::TcpStream,
    poll: Poll,
    cmds: Receiver<Command>,
    local: SocketAddr,
    remote: SocketAddr,

    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// Outgoing bytes are `wbuf[wpos..wend]`; `wbuf` keeps its length so
    /// that blocks are read from disk straight into it without zero-filling.
    wbuf: Vec<u8>,
    wpos: usize,
    wend: usize,
    scratch: Vec<u8>,
    readable: bool,
    writable: bool,
    max_frame: usize,

    peer_choking: bool,
    peer_interested: bool,
    am_choking: bool,
    holding_slot: bool,
    /// Since when an unchoked peer is not interested.
    uninterested_since: Option<Instant>,
    peer_ut_metadata: Option<u8>,
    peer_reqq: usize,
    messages_seen: u64,
    pending_bitfield: Option<Vec<u8>>,
    pending_haves: Vec<u32>,
    bitfield_seen: bool,

    jobs: Vec<Job>,
    pool: Vec<Vec<u8>>,
    outstanding: usize,
    cancelled: Forgotten,

    serve: VecDeque<Block>,
    rate_wait: Option<Instant>,

    last_recv: Instant,
    last_send: Instant,
    last_block: Instant,
    choked_since: Option<Instant>,
}

impl Conn {
    fn start(
        t: Arc<TorrentShared>,
        id: ConnId,
        s: TcpStream,
        hs: Handshake,
        outbound: bool,
    ) -> Result<Conn, ConnError> {
        let local = s.local_addr()?;
        let remote = s.peer_addr()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(s);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut stream, SOCK, Interest::READABLE | Interest::WRITABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (cmd_tx, cmds) = crossbeam_channel::unbounded();
        let meta = t.meta.get().cloned();
        let now = Instant::now();
        let max_frame = meta
            .as_ref()
            .map(|m| wire::max_message_len(m.geometry.num_pieces() as usize))
            .unwrap_or(MAX_MESSAGE_LEN);
        let mut c = Conn {
            id,
            t: t.clone(),
            max_frame,
            meta,
            stream,
            poll,
            cmds,
            local,
            remote,
            rbuf: vec![0; RBUF_LEN + MAX_MESSAGE_LEN.max(max_frame) + 4],
            rstart: 0,
            rend: 0,
            wbuf: vec![0; WBUF_TARGET + 64 * 1024],
            wpos: 0,
            wend: 0,
            scratch: Vec::with_capacity(1024),
            readable: true,
            writable: true,
            peer_choking: true,
            peer_interested: false,
            am_choking: true,
            holding_slot: false,
            uninterested_since: None,
            peer_ut_metadata: None,
            peer_reqq: DEFAULT_REQQ,
            messages_seen: 0,
            pending_bitfield: None,
            pending_haves: Vec::new(),
            bitfield_seen: false,
            jobs: Vec::new(),
            pool: Vec::new(),
            outstanding: 0,
            cancelled: Forgotten::default(),
            serve: VecDeque::new(),
            rate_wait: None,
            last_recv: now,
            last_send: now,
            last_block: now,
            choked_since: None,
        };
        // Our bitfield must be the first message after the handshake.
        if let Some(m) = &c.meta {
            if m.have.count() > 0 {
                c.send(&Message::Bitfield(m.have.to_bytes()));
            }
        }
        if hs.supports_extensions() {
            let mut ext = ExtHandshake::default();
            ext.m.insert("ut_metadata".into(), UT_METADATA_ID);
            ext.metadata_size = c.meta.as_ref().map(|m| m.info_bytes.len() as u64);
            ext.v = Some(crate::CLIENT_NAME.into());
            ext.p = Some(t.listen_port);
            ext.reqq = Some(OUR_REQQ as u32);
            c.send(&Message::Extended {
                id: 0,
                payload: ext.encode(),
            });
        }
        let link = ConnLink {
            cmd: cmd_tx,
            wake: Arc::new(move || {
                let _ = waker.wake();
            }),
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
                }
                .into(),
            )
            .map_err(|_| ConnError::Stopped)?;
        Ok(c)
    }

    fn report(&self, ev: Event) -> Result<(), ConnError> {
        self.t
            .events
            .send(ev.into())
            .map_err(|_| ConnError::Stopped)
    }

    fn send(&mut self, m: &Message) {
        trace::peer(self.local, self.remote, || {
            describe(m, self.peer_ut_metadata)
        });
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        m.encode(&mut scratch);
        let at = self.reserve(scratch.len());
        self.wbuf[at..at + scratch.len()].copy_from_slice(&scratch);
        self.scratch = scratch;
    }

    /// Makes room for `n` more outgoing bytes; returns where they go.
    fn reserve(&mut self, n: usize) -> usize {
        let at = self.wend;
        if at + n > self.wbuf.len() {
            self.wbuf.resize(at + n, 0);
        }
        self.wend += n;
        at
    }

    fn pending_out(&self) -> bool {
        self.wpos < self.wend
    }

    fn may_read(&self) -> bool {
        self.readable && self.wend - self.wpos <= READ_PAUSE
    }

    fn run(mut self) -> Result<(), ConnError> {
        let mut events = Events::with_capacity(16);
        loop {
            self.drain_commands()?;
            if self.may_read() {
                self.read_some()?;
            }
            let backlog = self.wend - self.wpos;
            if backlog > MAX_BACKLOG {
                return Err(violation(format!(
                    "{backlog} bytes of answers waiting: the peer sends requests but does not read"
                )));
            }
            self.fill_requests();
            self.fill_serve()?;
            if self.writable && self.pending_out() {
                self.flush()?;
                if !self.pending_out() {
                    self.fill_serve()?;
                    self.flush()?;
                }
            }
            let now = Instant::now();
            let timeout = self.check_timers(now)?;
            let serve_ready = !self.serve.is_empty() && self.rate_wait.is_none_or(|t| t <= now);
            let busy = self.may_read() || (self.writable && (self.pending_out() || serve_ready));
            let timeout = if busy { Duration::ZERO } else { timeout };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for ev in events.iter() {
                if ev.token() == SOCK {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.readable = true;
                    }
                    if ev.is_writable() || ev.is_write_closed() {
                        self.writable = true;
                    }
                }
            }
        }
    }

    /// Timers; returns how long the poll may sleep.
    fn check_timers(&mut self, now: Instant) -> Result<Duration, ConnError> {
        if now.duration_since(self.last_recv) > IDLE_TIMEOUT {
            return Err(ConnError::Idle(IDLE_TIMEOUT));
        }
        if !self.peer_choking
            && self.outstanding > 0
            && now.duration_since(self.last_block) > STALL_TIMEOUT
        {
            return Err(ConnError::Stalled(STALL_TIMEOUT));
        }
        if let Some(since) = self.choked_since {
            if !self.jobs.is_empty() && now.duration_since(since) > CHOKED_RELEASE {
                self.release_all_jobs()?;
            }
        }
        if let Some(since) = self.uninterested_since {
            if self.peer_interested || self.am_choking {
                self.uninterested_since = None;
            } else if now.duration_since(since) > UNINTERESTED_CHOKE_AFTER {
                self.uninterested_since = None;
                self.am_choking = true;
                self.serve.clear();
                self.send(&Message::Choke);
                self.give_back_slot();
            }
        }
        self.maybe_unchoke();
        if now.duration_since(self.last_send) > KEEPALIVE_EVERY {
            self.send(&Message::KeepAlive);
            self.last_send = now;
        }
        let mut wait = Duration::from_secs(1);
        if let Some(t) = self.rate_wait {
            wait = wait.min(t.saturating_duration_since(now));
        }
        Ok(wait)
    }

    fn release_all_jobs(&mut self) -> Result<(), ConnError> {
        for job in std::mem::take(&mut self.jobs) {
            self.forget_job_requests(&job);
            self.report(Event::Released {
                conn: self.id,
                index: job.piece.get(),
            })?;
            self.pool.push(job.buf);
        }
        Ok(())
    }

    fn forget_job_requests(&mut self, job: &Job) {
        let Some(m) = &self.meta else { return };
        for (b, st) in job.blocks.iter().enumerate() {
            if *st == BlockState::Requested {
                let blk = m.geometry.block(job.piece, b as u32);
                self.cancelled.insert((job.piece.get(), blk.begin));
                self.outstanding -= 1;
            }
        }
    }

    fn drain_commands(&mut self) -> Result<(), ConnError> {
        loop {
            match self.cmds.try_recv() {
                Ok(c) => self.on_command(c)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err(ConnError::Stopped),
            }
        }
    }

    fn on_command(&mut self, c: Command) -> Result<(), ConnError> {
        match c {
            Command::Fetch(index) => {
                let Some(m) = self.meta.clone() else {
                    return self.report(Event::Released {
                        conn: self.id,
                        index,
                    });
                };
                let Ok(piece) = m.geometry.piece(index) else {
                    return Ok(());
                };
                if self.jobs.iter().any(|j| j.piece == piece) {
                    return Ok(());
                }
                let len = m.geometry.piece_len(piece);
                let mut buf = self.pool.pop().unwrap_or_default();
                buf.resize(len as usize, 0);
                self.jobs.push(Job {
                    piece,
                    len,
                    buf,
                    blocks: vec![BlockState::Wanted; m.geometry.num_blocks(piece) as usize],
                    received: 0,
                });
            }
            Command::Cancel(index) => {
                if let Some(pos) = self.jobs.iter().position(|j| j.piece.get() == index) {
                    let job = self.jobs.swap_remove(pos);
                    if let Some(m) = self.meta.clone() {
                        for (b, st) in job.blocks.iter().enumerate() {
                            if *st == BlockState::Requested {
                                let blk = m.geometry.block(job.piece, b as u32);
                                self.send(&Message::Cancel {
                                    index,
                                    begin: blk.begin,
                                    length: blk.len,
                                });
                            }
                        }
                    }
                    self.forget_job_requests(&job);
                    self.pool.push(job.buf);
                }
            }
            Command::Have(index) => self.send(&Message::Have(index)),
            Command::Interested(yes) => self.send(&if yes {
                Message::Interested
            } else {
                Message::NotInterested
            }),
            Command::MetadataRequest(piece) => {
                if let Some(id) = self.peer_ut_metadata {
                    self.send(&Message::Extended {
                        id,
                        payload: MetadataMsg::Request { piece }.encode(),
                    });
                }
            }
            Command::MetadataReady => self.on_metadata_ready()?,
            Command::Close(why) => return Err(ConnError::Closing(why)),
        }
        Ok(())
    }

    fn on_metadata_ready(&mut self) -> Result<(), ConnError> {
        if self.meta.is_some() {
            return Ok(());
        }
        let Some(m) = self.t.meta.get().cloned() else {
            return Ok(());
        };
        let n = m.geometry.num_pieces() as usize;
        self.max_frame = wire::max_message_len(n);
        // A frame must fit the read buffer whole (a huge bitfield could
        // exceed the size chosen before the piece count was known).
        let need = RBUF_LEN + self.max_frame + 4;
        if self.rbuf.len() < need {
            self.rbuf.resize(need, 0);
        }
        // We could not send a bitfield after the handshake; HAVE does the job.
        for i in 0..n {
            if m.have.get(i) {
                self.send(&Message::Have(i as u32));
            }
        }
        self.meta = Some(m);
        self.maybe_unchoke();
        if let Some(bytes) = self.pending_bitfield.take() {
            let bits =
                Bitfield::from_bytes(&bytes, n).map_err(|e| violation(format!("bitfield: {e}")))?;
            self.report(Event::Bitfield {
                conn: self.id,
                bits,
            })?;
        }
        for index in std::mem::take(&mut self.pending_haves) {
            if index as usize >= n {
                return Err(violation(format!("HAVE {index} beyond {n} pieces")));
            }
            self.report(Event::Have {
                conn: self.id,
                index,
            })?;
        }
        Ok(())
    }

    fn read_some(&mut self) -> Result<(), ConnError> {
        let mut budget = 4 * RBUF_LEN;
        loop {
            if self.rend == self.rbuf.len() {
                // Only reachable when a partial frame sits at the end.
                self.compact();
            }
            let n = match self.stream.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.rend += n;
            self.last_recv = Instant::now();
            self.process_frames()?;
            budget = budget.saturating_sub(n);
            if budget == 0 {
                return Ok(());
            }
        }
    }

    fn compact(&mut self) {
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
    }

    fn process_frames(&mut self) -> Result<(), ConnError> {
        loop {
            let avail = self.rend - self.rstart;
            if avail < 4 {
                break;
            }
            let mut prefix = [0u8; 4];
            prefix.copy_from_slice(&self.rbuf[self.rstart..self.rstart + 4]);
            let len = wire::frame_len(prefix, self.max_frame)
                .map_err(|e| violation(format!("length prefix: {e}")))?;
            if avail < 4 + len {
                if self.rstart + 4 + len > self.rbuf.len() {
                    self.compact();
                }
                break;
            }
            let start = self.rstart + 4;
            self.rstart += 4 + len;
            let rbuf = std::mem::take(&mut self.rbuf);
            let r = self.on_frame(&rbuf[start..start + len]);
            self.rbuf = rbuf;
            r?;
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &[u8]) -> Result<(), ConnError> {
        // Blocks are most of the traffic: copy them straight from the read
        // buffer into the piece being assembled instead of through the
        // decoded message's own Vec. The layout (id, index, begin, data) is
        // BEP 3's; anything short goes through the codec to get its error.
        if frame.len() > 9 && frame[0] == wire::id::PIECE {
            let index = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
            let begin = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]);
            let data = &frame[9..];
            if trace::enabled() {
                trace::peer(self.remote, self.local, || {
                    Message::Piece {
                        index,
                        begin,
                        data: data.to_vec(),
                    }
                    .summary()
                });
            }
            self.messages_seen += 1;
            return self.on_block(index, begin, data);
        }
        let msg = Message::decode(frame).map_err(|e| violation(e.to_string()))?;
        trace::peer(self.remote, self.local, || {
            describe(&msg, Some(UT_METADATA_ID))
        });
        self.messages_seen += 1;
        match msg {
            Message::KeepAlive | Message::Port(_) => {}
            Message::Choke => {
                if !self.peer_choking {
                    self.peer_choking = true;
                    self.choked_since = Some(Instant::now());
                    // The peer drops our queued requests; blocks already on
                    // the way are still welcome.
                    let jobs = std::mem::take(&mut self.jobs);
                    for mut job in jobs {
                        self.forget_job_requests(&job);
                        for st in &mut job.blocks {
                            if *st == BlockState::Requested {
                                *st = BlockState::Wanted;
                            }
                        }
                        self.jobs.push(job);
                    }
                    self.report(Event::Choked { conn: self.id })?;
                }
            }
            Message::Unchoke => {
                if self.peer_choking {
                    self.peer_choking = false;
                    self.choked_since = None;
                    self.last_block = Instant::now();
                    self.report(Event::Unchoked { conn: self.id })?;
                }
            }
            Message::Interested => {
                self.peer_interested = true;
                self.uninterested_since = None;
                self.maybe_unchoke();
            }
            Message::NotInterested => {
                self.peer_interested = false;
                if !self.am_choking && self.uninterested_since.is_none() {
                    self.uninterested_since = Some(Instant::now());
                }
            }
            Message::Have(index) => match &self.meta {
                Some(m) => {
                    if index >= m.geometry.num_pieces() {
                        return Err(violation(format!(
                            "HAVE {index} beyond {} pieces",
                            m.geometry.num_pieces()
                        )));
                    }
                    self.report(Event::Have {
                        conn: self.id,
                        index,
                    })?;
                }
                None => {
                    if self.pending_haves.len() > 1 << 20 {
                        return Err(violation("too many HAVEs"));
                    }
                    self.pending_haves.push(index);
                }
            },
            Message::Bitfield(bytes) => {
                // BEP 3 sends it once, right after the handshake; some clients
                // send it again later, which simply replaces the first.
                if self.bitfield_seen {
                    debug!("peer {}: another BITFIELD replaces the first", self.remote);
                }
                self.bitfield_seen = true;
                match &self.meta {
                    Some(m) => {
                        let bits = Bitfield::from_bytes(&bytes, m.geometry.num_pieces() as usize)
                            .map_err(|e| violation(format!("bitfield: {e}")))?;
                        self.report(Event::Bitfield {
                            conn: self.id,
                            bits,
                        })?;
                    }
                    None => self.pending_bitfield = Some(bytes),
                }
            }
            Message::Request {
                index,
                begin,
                length,
            } => self.on_request(index, begin, length)?,
            Message::Piece { index, begin, data } => self.on_block(index, begin, &data)?,
            Message::Cancel {
                index,
                begin,
                length,
            } => self
                .serve
                .retain(|b| !(b.piece.get() == index && b.begin == begin && b.len == length)),
            Message::Extended { id, payload } => self.on_extended(id, &payload)?,
        }
        Ok(())
    }

    /// Unchokes an interested peer when an upload slot is free (also called
    /// from the timers: a slot freed by another connection, or the metadata
    /// that just arrived, lets a waiting peer in).
    fn maybe_unchoke(&mut self) {
        if self.peer_interested
            && self.am_choking
            && self.meta.is_some()
            && self.t.take_upload_slot()
        {
            self.holding_slot = true;
            self.am_choking = false;
            self.send(&Message::Unchoke);
        }
    }

    fn give_back_slot(&mut self) {
        if self.holding_slot {
            self.holding_slot = false;
            self.t.give_upload_slot();
        }
    }

    fn on_request(&mut self, index: u32, begin: u32, length: u32) -> Result<(), ConnError> {
        let Some(m) = &self.meta else {
            return Err(violation("REQUEST before we have the metadata"));
        };
        let block = m
            .geometry
            .check_block(index, begin, length)
            .map_err(|e| violation(format!("REQUEST outside the torrent: {e}")))?;
        if self.am_choking {
            return Ok(());
        }
        if !m.have.get(index as usize) {
            debug!(
                "peer {}: REQUEST for piece {index} we do not have",
                self.remote
            );
            return Ok(());
        }
        if self.serve.len() >= OUR_REQQ {
            return Err(violation(format!("more than {OUR_REQQ} requests queued")));
        }
        self.serve.push_back(block);
        Ok(())
    }

    fn on_block(&mut self, index: u32, begin: u32, data: &[u8]) -> Result<(), ConnError> {
        let Some(m) = self.meta.clone() else {
            return Err(violation("PIECE before we have the metadata"));
        };
        let Some(j) = self.jobs.iter().position(|j| j.piece.get() == index) else {
            return self.unexpected_block(index, begin);
        };
        let b = (begin / wire::MAX_BLOCK_LEN) as usize;
        let job = &mut self.jobs[j];
        let expected = (begin.is_multiple_of(wire::MAX_BLOCK_LEN) && b < job.blocks.len())
            .then(|| m.geometry.block(job.piece, b as u32));
        match expected {
            Some(blk)
                if job.blocks[b] == BlockState::Requested && blk.len as usize == data.len() => {}
            _ => return self.unexpected_block(index, begin),
        }
        job.buf[begin as usize..begin as usize + data.len()].copy_from_slice(data);
        job.blocks[b] = BlockState::Received;
        job.received += 1;
        self.outstanding -= 1;
        self.last_block = Instant::now();
        self.t.add_downloaded(data.len() as u64);
        if job.received as usize == job.blocks.len() {
            let job = self.jobs.swap_remove(j);
            self.finish_job(&m, job)?;
        }
        Ok(())
    }

    fn unexpected_block(&mut self, index: u32, begin: u32) -> Result<(), ConnError> {
        if self.cancelled.remove(&(index, begin)) {
            self.t.add_wasted();
            return Ok(());
        }
        Err(violation(format!(
            "unsolicited PIECE {index} offset {begin}"
        )))
    }

    fn finish_job(&mut self, m: &MetaCtx, job: Job) -> Result<(), ConnError> {
        let index = job.piece.get();
        let ok = m
            .info
            .pieces
            .get(index as usize)
            .is_some_and(|h| *h == sha1(&job.buf[..job.len as usize]));
        let ev = if !ok {
            Event::PieceBad {
                conn: self.id,
                index,
            }
        } else {
            match m
                .storage
                .write_piece(job.piece, &job.buf[..job.len as usize])
            {
                Ok(()) => Event::PieceDone {
                    conn: self.id,
                    index,
                },
                Err(e) => Event::WriteFailed {
                    conn: self.id,
                    index,
                    error: Box::new(e),
                },
            }
        };
        self.pool.push(job.buf);
        self.report(ev)
    }

    fn fill_requests(&mut self) {
        if self.peer_choking || self.jobs.is_empty() {
            return;
        }
        let Some(m) = self.meta.clone() else { return };
        let max = self.peer_reqq.min(MAX_OUTSTANDING);
        let mut j = 0;
        while self.outstanding < max && j < self.jobs.len() {
            let job = &mut self.jobs[j];
            let Some(b) = job.blocks.iter().position(|s| *s == BlockState::Wanted) else {
                j += 1;
                continue;
            };
            job.blocks[b] = BlockState::Requested;
            let blk = m.geometry.block(job.piece, b as u32);
            self.outstanding += 1;
            self.send(&Message::Request {
                index: blk.piece.get(),
                begin: blk.begin,
                length: blk.len,
            });
        }
    }

    fn fill_serve(&mut self) -> Result<(), ConnError> {
        if self.serve.is_empty() {
            return Ok(());
        }
        let Some(m) = self.meta.clone() else {
            return Ok(());
        };
        let now = Instant::now();
        if self.rate_wait.is_some_and(|t| t > now) {
            return Ok(());
        }
        self.rate_wait = None;
        while self.wend - self.wpos < WBUF_TARGET {
            let Some(blk) = self.serve.front().copied() else {
                break;
            };
            if let Err(wait) = self.t.rate.take(blk.len as usize, now) {
                self.rate_wait = Some(now + wait);
                break;
            }
            self.serve.pop_front();
            let at = self.reserve(13 + blk.len as usize);
            self.wbuf[at..at + 13].copy_from_slice(&wire::piece_header(
                blk.piece.get(),
                blk.begin,
                blk.len,
            ));
            if let Err(e) = m.storage.read_block(blk, &mut self.wbuf[at + 13..]) {
                return Err(ConnError::Storage(Box::new(e)));
            }
            trace::peer(self.local, self.remote, || {
                Message::Piece {
                    index: blk.piece.get(),
                    begin: blk.begin,
                    data: vec![0; blk.len as usize],
                }
                .summary()
            });
            self.t.add_uploaded(blk.len as u64);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnError> {
        while self.wpos < self.wend {
            match self.stream.write(&self.wbuf[self.wpos..self.wend]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.wpos += n;
                    self.last_send = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.wpos == self.wend {
            self.wpos = 0;
            self.wend = 0;
        } else if self.wpos >= WBUF_TARGET {
            self.wbuf.copy_within(self.wpos..self.wend, 0);
            self.wend -= self.wpos;
            self.wpos = 0;
        }
        Ok(())
    }

    fn on_extended(&mut self, id: u8, payload: &[u8]) -> Result<(), ConnError> {
        if id == 0 {
            let ext = ExtHandshake::decode(payload)
                .map_err(|e| violation(format!("extension handshake: {e}")))?;
            self.peer_ut_metadata = ext.m.get("ut_metadata").copied().filter(|id| *id != 0);
            if let Some(q) = ext.reqq {
                self.peer_reqq = (q as usize).max(1);
            }
            return self.report(Event::Ext {
                conn: self.id,
                metadata_size: ext.metadata_size,
                ut_metadata: self.peer_ut_metadata.is_some(),
                listen_port: ext.p,
            });
        }
        if id != UT_METADATA_ID {
            return Ok(());
        }
        let msg =
            MetadataMsg::decode(payload).map_err(|e| violation(format!("ut_metadata: {e}")))?;
        match msg {
            MetadataMsg::Request { piece } => {
                let Some(peer_id) = self.peer_ut_metadata else {
                    return Ok(());
                };
                let backlog = self.wend - self.wpos;
                if backlog > METADATA_BACKLOG {
                    return Err(violation(format!(
                        "ut_metadata request while {backlog} bytes of answers wait unread"
                    )));
                }
                let reply = match &self.meta {
                    Some(m) if (piece as usize) * METADATA_BLOCK < m.info_bytes.len() => {
                        let start = piece as usize * METADATA_BLOCK;
                        let end = (start + METADATA_BLOCK).min(m.info_bytes.len());
                        MetadataMsg::Data {
                            piece,
                            total_size: m.info_bytes.len() as u64,
                            data: m.info_bytes[start..end].to_vec(),
                        }
                    }
                    _ => MetadataMsg::Reject { piece },
                };
                self.send(&Message::Extended {
                    id: peer_id,
                    payload: reply.encode(),
                });
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => self.report(Event::MetadataData {
                conn: self.id,
                piece,
                total_size,
                data,
            })?,
            MetadataMsg::Reject { piece } => self.report(Event::MetadataReject {
                conn: self.id,
                piece,
            })?,
        }
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.give_back_slot();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_blocks_keep_the_newest_when_full() {
        let mut f = Forgotten::default();
        // Far more than fit: requests forgotten over many chokes that the
        // peer (rightly) never answered.
        for i in 0..(FORGOTTEN_MAX as u32 * 3) {
            f.insert((i, 0));
        }
        assert!(f.set.len() <= FORGOTTEN_MAX && f.order.len() <= FORGOTTEN_MAX);
        // The latest one is still recognised when its block arrives late...
        let last = FORGOTTEN_MAX as u32 * 3 - 1;
        assert!(f.remove(&(last, 0)));
        // ...once only.
        assert!(!f.remove(&(last, 0)));
        assert!(!f.remove(&(0, 0)), "the oldest make room");
        // Inserting again after a removal works, and duplicates count once.
        f.insert((7, 16384));
        f.insert((7, 16384));
        assert!(f.remove(&(7, 16384)));
        // Forgotten, answered, forgotten again: evicting the first entry
        // must not drop the second.
        let mut f = Forgotten::default();
        f.insert((1, 0));
        assert!(f.remove(&(1, 0)));
        f.insert((1, 0));
        for i in 0..FORGOTTEN_MAX as u32 - 1 {
            f.insert((100 + i, 0));
        }
        assert!(f.remove(&(1, 0)));
    }
}
