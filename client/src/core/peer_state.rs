//! One connection's protocol state, with the time passed in: who chokes whom
//! and who is interested, whether the peer holds one of the torrent's upload
//! slots, the pieces we assemble from it (which blocks are wanted, requested,
//! received — the bytes stay in the connection thread's buffers), our
//! requests outstanding and the ones we forgot, the peer's requests waiting
//! to be served, and the timers; and, when both ends speak the BEP 6 fast
//! extension, the allowed-fast sets both ways and the explicit rejects.
//!
//! The connection thread (`net::conn`) tells a [`PeerState`] what the peer
//! sent and what time it is, and carries out what it decides: messages to
//! send and news for the coordinator come out of [`PeerState::poll_action`],
//! where to copy a block out of [`PeerState::on_block`], the reason to close
//! as an `Err`. It never chooses a piece: the coordinator assigns them
//! ([`PeerState::fetch`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minitorrent_common::metainfo::BLOCK_SIZE;
use minitorrent_common::wire::Message;

use crate::core::geometry::{Block, Geometry, PieceIndex};
use crate::core::msg::ConnError;
use crate::core::shared::Meta;

/// Our `reqq`: requests from one peer we queue before calling it a flood.
pub const OUR_REQQ: usize = 512;
/// Requests we keep outstanding at most, whatever the peer's `reqq` says.
const MAX_OUTSTANDING: usize = 256;
/// Outstanding requests when the peer does not state its `reqq`.
const DEFAULT_REQQ: usize = 128;
/// Requests we cancelled or forgot (choke) whose blocks may still arrive.
const FORGOTTEN_MAX: usize = 4096;
/// ALLOWED FAST pieces we keep from one peer at most; further ones are
/// ignored (BEP 6 suggests sets of 10).
pub const MAX_ALLOWED_FAST: usize = 64;
/// Silence on our side after which we send a keep-alive.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(60);
/// Silence on the peer's side after which we close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// Unchoked with requests outstanding and no block for this long: stalled.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Choked while holding assigned pieces for this long: give them back.
pub const CHOKED_RELEASE: Duration = Duration::from_secs(10);
/// A peer that says NOT INTERESTED stays unchoked this long before we choke
/// it and free its upload slot. Between two leechers interest comes and goes
/// with every HAVE; choking at once would add a CHOKE and an UNCHOKE to each
/// of those turns for nothing.
pub const UNINTERESTED_CHOKE_AFTER: Duration = Duration::from_secs(10);
/// The shell calls [`PeerState::tick`] at least this often; each tick also
/// retries for an upload slot another connection may have freed.
pub const TICK: Duration = Duration::from_secs(1);

/// A protocol violation by the peer: the connection closes, and the
/// coordinator does not dial the peer again.
pub fn violation(msg: impl Into<String>) -> ConnError {
    ConnError::Protocol(msg.into())
}

/// The torrent's upload slots, shared by all its connections (an atomic
/// counter in the I/O layer).
pub trait SlotPool {
    /// Takes a slot if one is free.
    fn take(&self) -> bool;
    fn give(&self);
}

/// What the connection thread is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the peer.
    Send(Message),
    /// Tell the coordinator the peer choked us (`Event::Choked`).
    Choked,
    /// Tell the coordinator the peer unchoked us (`Event::Unchoked`).
    Unchoked,
    /// Give this assigned piece back to the coordinator (`Event::Released`).
    Release(u32),
    /// The peer rejected a request for this assigned piece (BEP 6): it is
    /// given back to the coordinator at once (`Event::Rejected`).
    Rejected(u32),
}

/// Which of the connection thread's piece buffers holds a piece being
/// assembled. Ids are reused once a piece is done, cancelled or released,
/// so the thread keeps one buffer per id and never more than it needs.
pub type BufId = usize;

/// A piece the coordinator assigned: assemble it in buffer `buf`, of `len`
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewJob {
    pub buf: BufId,
    pub len: usize,
}

/// What to do with a block that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFate {
    /// Copy it into buffer `buf` at its offset. `done` when it completed the
    /// piece: check and write the buffer now (its id is free again, so it
    /// must be done with before the next [`PeerState::fetch`]).
    Keep {
        buf: BufId,
        done: Option<PieceIndex>,
    },
    /// A late answer to a request we cancelled or forgot: drop it.
    Wasted,
}

/// What became of a request from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFate {
    Queued,
    /// We choke the peer: the request is ignored, as BEP 3 says (with the
    /// fast extension, rejected).
    Choking,
    /// A piece we do not have: ignored (with the fast extension, rejected).
    NotHad,
    /// Fast extension: more than [`OUR_REQQ`] queued, rejected.
    TooMany,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Wanted,
    Requested,
    Received,
}

/// The bookkeeping of one piece being assembled.
struct Assembly {
    piece: PieceIndex,
    buf: BufId,
    blocks: Vec<BlockState>,
    received: u32,
    /// No block before this one is wanted: requests go out in order, so the
    /// next one is found without scanning the piece from the start.
    first_wanted: usize,
}

impl Assembly {
    /// Our requests for this piece that are not answered yet.
    fn requested<'a>(&'a self, g: &'a Geometry) -> impl Iterator<Item = Block> + 'a {
        self.blocks
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == BlockState::Requested)
            .map(|(b, _)| g.block(self.piece, b as u32))
    }
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

/// The pieces being assembled from this peer and our requests for them:
/// which blocks are wanted, requested or received, how many requests are
/// outstanding, and which ones we forgot or cancelled.
#[derive(Default)]
struct Assemblies {
    jobs: Vec<Assembly>,
    /// Buffer ids free for the next piece, and how many were handed out.
    free_bufs: Vec<BufId>,
    bufs: usize,
    outstanding: usize,
    forgotten: Forgotten,
}

impl Assemblies {
    fn fetch(&mut self, g: &Geometry, index: u32) -> Option<NewJob> {
        let piece = g.piece(index).ok()?;
        if self.jobs.iter().any(|j| j.piece == piece) {
            return None;
        }
        let buf = self.free_bufs.pop().unwrap_or_else(|| {
            self.bufs += 1;
            self.bufs - 1
        });
        self.jobs.push(Assembly {
            piece,
            buf,
            blocks: vec![BlockState::Wanted; g.num_blocks(piece) as usize],
            received: 0,
            first_wanted: 0,
        });
        let len = g.piece_len(piece) as usize;
        Some(NewJob { buf, len })
    }

    /// Drops piece `index`, and CANCELs what we asked for it.
    fn cancel(&mut self, g: &Geometry, index: u32, actions: &mut VecDeque<Action>) {
        let Some(pos) = self.jobs.iter().position(|j| j.piece.get() == index) else {
            return;
        };
        let mut job = self.jobs.swap_remove(pos);
        for blk in job.requested(g) {
            actions.push_back(Action::Send(Message::Cancel {
                index,
                begin: blk.begin,
                length: blk.len,
            }));
        }
        self.forget(&mut job, g);
        self.free_bufs.push(job.buf);
    }

    /// Gives every piece back to the coordinator but those `keep` names.
    fn release_all(
        &mut self,
        g: &Geometry,
        actions: &mut VecDeque<Action>,
        keep: impl Fn(u32) -> bool,
    ) {
        let (kept, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|j| keep(j.piece.get()));
        self.jobs = kept;
        for mut job in gone {
            self.forget(&mut job, g);
            actions.push_back(Action::Release(job.piece.get()));
            self.free_bufs.push(job.buf);
        }
    }

    /// The peer rejected our request for a block (BEP 6). `Some(true)`:
    /// it was outstanding, and is no longer; `Some(false)`: a request we
    /// cancelled or forgot; `None`: never asked.
    fn reject(&mut self, g: &Geometry, index: u32, begin: u32, len: u32) -> Option<bool> {
        let job = self.jobs.iter_mut().find(|j| j.piece.get() == index);
        if let Some(job) = job {
            let b = (begin / BLOCK_SIZE) as usize;
            if begin.is_multiple_of(BLOCK_SIZE)
                && job.blocks.get(b) == Some(&BlockState::Requested)
                && g.block(job.piece, b as u32).len == len
            {
                job.blocks[b] = BlockState::Wanted;
                job.first_wanted = job.first_wanted.min(b);
                self.outstanding -= 1;
                return Some(true);
            }
        }
        self.forgotten.remove(&(index, begin)).then_some(false)
    }

    /// The peer choked us: it dropped our requests.
    fn forget_all(&mut self, g: &Geometry) {
        let mut jobs = std::mem::take(&mut self.jobs);
        for job in &mut jobs {
            self.forget(job, g);
        }
        self.jobs = jobs;
    }

    /// Forgets our unanswered requests for `job`'s blocks: they are wanted
    /// again, and their blocks, should they arrive after all, are wasted
    /// rather than unsolicited.
    fn forget(&mut self, job: &mut Assembly, g: &Geometry) {
        for blk in job.requested(g) {
            self.forgotten.insert((blk.piece.get(), blk.begin));
            self.outstanding -= 1;
        }
        for st in &mut job.blocks {
            if *st == BlockState::Requested {
                *st = BlockState::Wanted;
            }
        }
        job.first_wanted = 0;
    }

    /// The next block to request while fewer than `max` are outstanding,
    /// among the pieces `may` allows.
    fn next_request(
        &mut self,
        g: &Geometry,
        max: usize,
        may: impl Fn(u32) -> bool,
    ) -> Option<Block> {
        if self.outstanding >= max {
            return None;
        }
        for job in &mut self.jobs {
            if !may(job.piece.get()) {
                continue;
            }
            let from = job.first_wanted;
            let Some(b) = job.blocks[from..]
                .iter()
                .position(|s| *s == BlockState::Wanted)
                .map(|i| from + i)
            else {
                job.first_wanted = job.blocks.len();
                continue;
            };
            job.blocks[b] = BlockState::Requested;
            job.first_wanted = b + 1;
            self.outstanding += 1;
            return Some(g.block(job.piece, b as u32));
        }
        None
    }

    fn on_block(
        &mut self,
        g: &Geometry,
        index: u32,
        begin: u32,
        len: usize,
    ) -> Result<BlockFate, ConnError> {
        let Some(j) = self.jobs.iter().position(|j| j.piece.get() == index) else {
            return self.unexpected_block(index, begin);
        };
        let job = &mut self.jobs[j];
        let b = (begin / BLOCK_SIZE) as usize;
        let expected = begin.is_multiple_of(BLOCK_SIZE)
            && b < job.blocks.len()
            && job.blocks[b] == BlockState::Requested
            && g.block(job.piece, b as u32).len as usize == len;
        if !expected {
            return self.unexpected_block(index, begin);
        }
        job.blocks[b] = BlockState::Received;
        job.received += 1;
        self.outstanding -= 1;
        let buf = job.buf;
        let mut done = None;
        if job.received as usize == job.blocks.len() {
            done = Some(self.jobs.swap_remove(j).piece);
            self.free_bufs.push(buf);
        }
        Ok(BlockFate::Keep { buf, done })
    }

    fn unexpected_block(&mut self, index: u32, begin: u32) -> Result<BlockFate, ConnError> {
        if self.forgotten.remove(&(index, begin)) {
            return Ok(BlockFate::Wasted);
        }
        Err(violation(format!(
            "unsolicited PIECE {index} offset {begin}"
        )))
    }
}

/// One connection's protocol state; see the module doc.
pub struct PeerState {
    /// Known once the info dictionary is.
    meta: Option<Arc<Meta>>,

    // Upload: the peer's interest, our choke, its slot and its requests.
    am_choking: bool,
    peer_interested: bool,
    holding_slot: bool,
    /// Since when an unchoked peer is not interested.
    uninterested_since: Option<Instant>,
    serve: VecDeque<Block>,
    /// The upload rate limit said to wait until then.
    serve_wait: Option<Instant>,

    // Download: the peer's choke, our interest, the pieces and requests.
    peer_choking: bool,
    am_interested: bool,
    choked_since: Option<Instant>,
    peer_reqq: usize,
    down: Assemblies,

    last_recv: Instant,
    last_send: Instant,
    last_block: Instant,
    actions: VecDeque<Action>,
    /// Piece data served to the peer and received from it (whether kept or
    /// wasted), in bytes, since the connection began: for `STATS`.
    bytes_served: u64,
    bytes_received: u64,

    // BEP 6, when both handshakes set the fast bit.
    fast: bool,
    /// The allowed-fast set we computed for the peer: its requests for
    /// these pieces are served even while we choke it (at most
    /// `ALLOWED_FAST_K`).
    allowed_for_peer: Vec<u32>,
    /// The pieces the peer allows us while it chokes us (at most
    /// [`MAX_ALLOWED_FAST`]).
    allowed_by_peer: Vec<u32>,
}

impl PeerState {
    /// A connection that just finished its handshake at `now`.
    pub fn new(meta: Option<Arc<Meta>>, now: Instant) -> PeerState {
        PeerState {
            meta,
            am_choking: true,
            peer_interested: false,
            holding_slot: false,
            uninterested_since: None,
            serve: VecDeque::new(),
            serve_wait: None,
            peer_choking: true,
            am_interested: false,
            choked_since: None,
            peer_reqq: DEFAULT_REQQ,
            down: Assemblies::default(),
            last_recv: now,
            last_send: now,
            last_block: now,
            actions: VecDeque::new(),
            bytes_served: 0,
            bytes_received: 0,
            fast: false,
            allowed_for_peer: Vec::new(),
            allowed_by_peer: Vec::new(),
        }
    }

    // ---- the fast extension (BEP 6) --------------------------------------

    /// Both handshakes set the fast bit.
    pub fn enable_fast(&mut self) {
        self.fast = true;
    }

    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// The allowed-fast set we computed for the peer.
    pub fn set_allowed_for_peer(&mut self, set: Vec<u32>) {
        self.allowed_for_peer = set;
    }

    /// ALLOWED FAST from the peer: true when the piece is new to the set
    /// and kept (at most [`MAX_ALLOWED_FAST`], and inside the torrent once
    /// its size is known).
    pub fn on_allowed_fast(&mut self, index: u32) -> bool {
        let beyond = self
            .meta
            .as_ref()
            .is_some_and(|m| index >= m.geometry.num_pieces());
        if beyond
            || self.allowed_by_peer.len() >= MAX_ALLOWED_FAST
            || self.allowed_by_peer.contains(&index)
        {
            return false;
        }
        self.allowed_by_peer.push(index);
        true
    }

    /// The pieces the peer allows us while it chokes us.
    pub fn allowed_by_peer(&self) -> &[u32] {
        &self.allowed_by_peer
    }

    /// REJECT REQUEST from the peer. A reject of an outstanding request
    /// gives its piece back to the coordinator at once (CANCELling the
    /// piece's other requests) so it can be fetched again, from this peer
    /// or another; a reject of a request we cancelled or forgot is its
    /// answer; a reject of a request never sent is a violation.
    pub fn on_reject(
        &mut self,
        index: u32,
        begin: u32,
        length: u32,
        now: Instant,
    ) -> Result<(), ConnError> {
        let Some(m) = &self.meta else {
            return Err(violation("REJECT REQUEST before we have the metadata"));
        };
        match self.down.reject(&m.geometry, index, begin, length) {
            Some(true) => {
                self.last_block = now;
                if self.peer_choking {
                    // A piece allowed fast and then refused is not asked
                    // for again while choked.
                    self.allowed_by_peer.retain(|&i| i != index);
                }
                self.down.cancel(&m.geometry, index, &mut self.actions);
                self.actions.push_back(Action::Rejected(index));
                Ok(())
            }
            Some(false) => Ok(()),
            None => Err(violation(format!(
                "REJECT REQUEST for piece {index} offset {begin} we did not request"
            ))),
        }
    }

    fn reject(&mut self, b: Block) {
        self.actions.push_back(Action::Send(Message::RejectRequest {
            index: b.piece.get(),
            begin: b.begin,
            length: b.len,
        }));
    }

    /// (bytes served, bytes received) of piece data since the connection
    /// began.
    pub fn traffic(&self) -> (u64, u64) {
        (self.bytes_served, self.bytes_received)
    }

    /// The next thing to do, in the order decided.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The info dictionary is now known (it was not at the handshake).
    pub fn metadata_ready(&mut self, meta: Arc<Meta>, slots: &impl SlotPool) {
        self.meta = Some(meta);
        self.maybe_unchoke(slots);
    }

    /// The `reqq` of the peer's extension handshake.
    pub fn set_peer_reqq(&mut self, reqq: u32) {
        self.peer_reqq = (reqq as usize).max(1);
    }

    /// Bytes arrived from the peer.
    pub fn received(&mut self, now: Instant) {
        self.last_recv = now;
    }

    /// Bytes went out to the peer.
    pub fn sent(&mut self, now: Instant) {
        self.last_send = now;
    }

    // ---- choke and interest ------------------------------------------

    pub fn peer_choked(&mut self, now: Instant) {
        if self.peer_choking {
            return;
        }
        self.peer_choking = true;
        self.choked_since = Some(now);
        if self.fast {
            // BEP 6: a choke no longer drops our requests; the peer rejects
            // each one it will not answer. The stall timer waits for those.
            self.last_block = now;
        } else if let Some(m) = &self.meta {
            // The peer drops our queued requests; blocks already on the way
            // are still welcome.
            self.down.forget_all(&m.geometry);
        }
        self.actions.push_back(Action::Choked);
    }

    pub fn peer_unchoked(&mut self, now: Instant) {
        if self.peer_choking {
            self.peer_choking = false;
            self.choked_since = None;
            self.last_block = now;
            self.actions.push_back(Action::Unchoked);
        }
    }

    /// Whether the peer last said INTERESTED.
    pub fn is_peer_interested(&self) -> bool {
        self.peer_interested
    }

    pub fn peer_interested(&mut self, slots: &impl SlotPool) {
        self.peer_interested = true;
        self.uninterested_since = None;
        self.maybe_unchoke(slots);
    }

    pub fn peer_not_interested(&mut self, now: Instant) {
        self.peer_interested = false;
        if !self.am_choking && self.uninterested_since.is_none() {
            self.uninterested_since = Some(now);
        }
    }

    /// The coordinator tells the peer whether we are interested.
    pub fn set_interested(&mut self, yes: bool) {
        self.am_interested = yes;
        self.actions.push_back(Action::Send(if yes {
            Message::Interested
        } else {
            Message::NotInterested
        }));
    }

    /// Unchokes an interested peer when an upload slot is free.
    fn maybe_unchoke(&mut self, slots: &impl SlotPool) {
        if self.peer_interested && self.am_choking && self.meta.is_some() && slots.take() {
            self.holding_slot = true;
            self.am_choking = false;
            self.actions.push_back(Action::Send(Message::Unchoke));
        }
    }

    /// Chokes the peer: its queued requests are dropped (BEP 3) or, with the
    /// fast extension, rejected one by one after the CHOKE, except those
    /// for pieces in its allowed-fast set, which are still served.
    fn choke(&mut self) {
        self.am_choking = true;
        self.actions.push_back(Action::Send(Message::Choke));
        if !self.fast {
            self.serve.clear();
            return;
        }
        let queued = std::mem::take(&mut self.serve);
        for b in queued {
            if self.allowed_for_peer.contains(&b.piece.get()) {
                self.serve.push_back(b);
            } else {
                self.reject(b);
            }
        }
    }

    /// The connection ends: gives the upload slot back if it holds one.
    pub fn close(&mut self, slots: &impl SlotPool) {
        self.give_back_slot(slots);
    }

    fn give_back_slot(&mut self, slots: &impl SlotPool) {
        if self.holding_slot {
            self.holding_slot = false;
            slots.give();
        }
    }

    // ---- timers --------------------------------------------------------

    /// We hold off reading for our own download limit: whatever the peer
    /// sends waits in the socket, so its silence is not a stall.
    pub fn holding_back(&mut self, now: Instant) {
        self.last_block = now;
    }

    /// Runs the timers; an `Err` closes the connection.
    pub fn tick(&mut self, now: Instant, slots: &impl SlotPool) -> Result<(), ConnError> {
        if now.duration_since(self.last_recv) > IDLE_TIMEOUT {
            return Err(ConnError::Idle(IDLE_TIMEOUT));
        }
        // With the fast extension, requests stay outstanding through a
        // choke (allowed-fast ones, or ones the peer has yet to reject).
        if (!self.peer_choking || self.fast)
            && self.down.outstanding > 0
            && now.duration_since(self.last_block) > STALL_TIMEOUT
        {
            return Err(ConnError::Stalled(STALL_TIMEOUT));
        }
        if let (Some(since), Some(m)) = (self.choked_since, &self.meta) {
            if !self.down.jobs.is_empty() && now.duration_since(since) > CHOKED_RELEASE {
                // Pieces the peer allows us fast are still being fetched.
                let allowed = &self.allowed_by_peer;
                self.down
                    .release_all(&m.geometry, &mut self.actions, |i| allowed.contains(&i));
            }
        }
        if let Some(since) = self.uninterested_since {
            if self.peer_interested || self.am_choking {
                self.uninterested_since = None;
            } else if now.duration_since(since) > UNINTERESTED_CHOKE_AFTER {
                self.uninterested_since = None;
                self.choke();
                self.give_back_slot(slots);
            }
        }
        self.maybe_unchoke(slots);
        if now.duration_since(self.last_send) > KEEPALIVE_EVERY {
            self.actions.push_back(Action::Send(Message::KeepAlive));
            self.last_send = now;
        }
        Ok(())
    }

    /// How long the shell may sleep before the next [`PeerState::tick`].
    pub fn timeout(&self, now: Instant) -> Duration {
        match self.serve_wait {
            // A wait already over must not shorten the sleep: whether we
            // can serve now is the shell's `busy` test (serving may wait
            // for room in the write buffer, which only a writable socket
            // brings).
            Some(t) if !self.serve.is_empty() && t > now => TICK.min(t - now),
            _ => TICK,
        }
    }

    // ---- pieces we fetch -----------------------------------------------

    /// The coordinator assigns piece `index`. `None` if there is nothing to
    /// set up: already assembling it, out of range, or no metadata yet (then
    /// the piece is given back).
    pub fn fetch(&mut self, index: u32) -> Option<NewJob> {
        let Some(m) = &self.meta else {
            self.actions.push_back(Action::Release(index));
            return None;
        };
        self.down.fetch(&m.geometry, index)
    }

    /// The coordinator takes piece `index` back (it arrived from someone
    /// else): CANCEL what we asked for it.
    pub fn cancel(&mut self, index: u32) {
        if let Some(m) = &self.meta {
            self.down.cancel(&m.geometry, index, &mut self.actions);
        }
    }

    /// The next block to request, while the peer lets us and its `reqq`
    /// (at most `MAX_OUTSTANDING`) leaves room.
    /// While choked, only pieces of the peer's allowed-fast set are asked
    /// for (fast extension).
    pub fn next_request(&mut self) -> Option<Block> {
        if self.peer_choking && (!self.fast || self.allowed_by_peer.is_empty()) {
            return None;
        }
        let g = &self.meta.as_ref()?.geometry;
        let (choked, allowed) = (self.peer_choking, &self.allowed_by_peer);
        self.down
            .next_request(g, self.peer_reqq.min(MAX_OUTSTANDING), |i| {
                !choked || allowed.contains(&i)
            })
    }

    /// A PIECE message of `len` bytes arrived at `now`. It must answer an
    /// outstanding request of ours, or one we cancelled or forgot (wasted);
    /// anything else is a violation.
    pub fn on_block(
        &mut self,
        index: u32,
        begin: u32,
        len: usize,
        now: Instant,
    ) -> Result<BlockFate, ConnError> {
        let Some(m) = &self.meta else {
            return Err(violation("PIECE before we have the metadata"));
        };
        let fate = self.down.on_block(&m.geometry, index, begin, len)?;
        self.bytes_received += len as u64;
        if fate != BlockFate::Wasted {
            self.last_block = now;
        }
        Ok(fate)
    }

    // ---- the peer's requests -------------------------------------------

    pub fn on_request(
        &mut self,
        index: u32,
        begin: u32,
        length: u32,
    ) -> Result<RequestFate, ConnError> {
        let Some(m) = &self.meta else {
            return Err(violation("REQUEST before we have the metadata"));
        };
        let block = m
            .geometry
            .check_block(index, begin, length)
            .map_err(|e| violation(format!("REQUEST outside the torrent: {e}")))?;
        // With the fast extension every request we do not queue is
        // answered with a REJECT REQUEST.
        let fate = if self.am_choking && !(self.fast && self.allowed_for_peer.contains(&index)) {
            RequestFate::Choking
        } else if !m.have.get(index as usize) {
            RequestFate::NotHad
        } else if self.serve.len() >= OUR_REQQ {
            if !self.fast {
                return Err(violation(format!("more than {OUR_REQQ} requests queued")));
            }
            RequestFate::TooMany
        } else {
            self.serve.push_back(block);
            return Ok(RequestFate::Queued);
        };
        if self.fast {
            self.reject(block);
        }
        Ok(fate)
    }

    /// CANCEL from the peer: the request is dropped (with the fast
    /// extension, and answered with a REJECT REQUEST, BEP 6).
    pub fn on_cancel(&mut self, index: u32, begin: u32, length: u32) {
        let before = self.serve.len();
        self.serve
            .retain(|b| !(b.piece.get() == index && b.begin == begin && b.len == length));
        if self.fast && self.serve.len() < before {
            self.actions.push_back(Action::Send(Message::RejectRequest {
                index,
                begin,
                length,
            }));
        }
    }

    /// Whether a queued request can be answered at `now`.
    pub fn serve_ready(&self, now: Instant) -> bool {
        !self.serve.is_empty() && self.serve_wait.is_none_or(|t| t <= now)
    }

    pub fn serving(&self) -> bool {
        !self.serve.is_empty()
    }

    /// The next request to answer at `now`, if `take` (the upload rate
    /// limit) grants its bytes; when it says to wait, nothing is served
    /// until then.
    pub fn next_to_serve(
        &mut self,
        now: Instant,
        take: impl FnOnce(usize) -> Result<(), Duration>,
    ) -> Option<Block> {
        let blk = *self.serve.front()?;
        if self.serve_wait.is_some_and(|t| t > now) {
            return None;
        }
        self.serve_wait = None;
        if let Err(wait) = take(blk.len as usize) {
            self.serve_wait = Some(now + wait);
            return None;
        }
        self.bytes_served += u64::from(blk.len);
        self.serve.pop_front()
    }

    // ---- for the curious (status, tests) -------------------------------

    pub fn am_choking(&self) -> bool {
        self.am_choking
    }
    pub fn peer_choking(&self) -> bool {
        self.peer_choking
    }
    pub fn am_interested(&self) -> bool {
        self.am_interested
    }
    pub fn holding_slot(&self) -> bool {
        self.holding_slot
    }
    /// Our requests not answered yet.
    pub fn outstanding(&self) -> usize {
        self.down.outstanding
    }
    /// Pieces being assembled.
    pub fn pieces(&self) -> usize {
        self.down.jobs.len()
    }
    /// The peer's requests waiting to be answered.
    pub fn queued(&self) -> usize {
        self.serve.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use minitorrent_common::metainfo::{FileEntry, Info};

    use super::*;
    use crate::core::shared::HaveSet;

    /// `n` pieces of two blocks each; `have` says whether we have them all.
    fn meta(n: u32, have: bool) -> Arc<Meta> {
        let piece_len = 2 * BLOCK_SIZE as u64;
        let total = n as u64 * piece_len;
        Arc::new(Meta {
            info: Info {
                name: "t".into(),
                piece_length: piece_len,
                pieces: vec![[0; 20]; n as usize],
                files: vec![FileEntry {
                    path: vec!["t".into()],
                    length: total,
                    offset: 0,
                }],
                multi_file: false,
                private: false,
            },
            info_bytes: Vec::new(),
            geometry: Geometry::new(total, piece_len, n as usize).unwrap(),
            have: HaveSet::new(&vec![have; n as usize]),
        })
    }

    /// The torrent's upload slots: `max` of them, `taken` in use.
    struct Slots {
        taken: Cell<usize>,
        max: usize,
    }

    impl Slots {
        fn new(max: usize) -> Slots {
            Slots {
                taken: Cell::new(0),
                max,
            }
        }
    }

    impl SlotPool for Slots {
        fn take(&self) -> bool {
            let ok = self.taken.get() < self.max;
            if ok {
                self.taken.set(self.taken.get() + 1);
            }
            ok
        }
        fn give(&self) {
            self.taken.set(self.taken.get() - 1);
        }
    }

    fn secs(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_secs(n)
    }

    fn actions(s: &mut PeerState) -> Vec<Action> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    fn requests(s: &mut PeerState) -> Vec<Block> {
        std::iter::from_fn(|| s.next_request()).collect()
    }

    /// A peer that unchoked us, with pieces 0 and 1 assigned and all their
    /// blocks requested.
    fn downloading(t0: Instant) -> PeerState {
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        assert_eq!(s.fetch(0), Some(NewJob { buf: 0, len: 32768 }));
        assert_eq!(s.fetch(1), Some(NewJob { buf: 1, len: 32768 }));
        assert_eq!(s.fetch(1), None, "assigned twice");
        assert!(requests(&mut s).is_empty(), "choked: nothing requested");
        s.set_interested(true);
        assert_eq!(actions(&mut s), [Action::Send(Message::Interested)]);
        assert!(s.am_interested() && s.peer_choking());
        s.peer_unchoked(t0);
        assert_eq!(actions(&mut s), [Action::Unchoked]);
        assert_eq!(requests(&mut s).len(), 4);
        assert_eq!(s.outstanding(), 4);
        s
    }

    #[test]
    fn a_piece_is_assembled_from_its_requested_blocks() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        let keep = |buf, done| Some(BlockFate::Keep { buf, done });
        assert_eq!(s.on_block(1, 16384, 16384, t0).ok(), keep(1, None));
        assert_eq!(s.on_block(0, 0, 16384, t0).ok(), keep(0, None));
        let p1 = meta(4, false).geometry.piece(1).unwrap();
        assert_eq!(s.on_block(1, 0, 16384, t0).ok(), keep(1, Some(p1)));
        assert_eq!((s.outstanding(), s.pieces()), (1, 1));
        // The buffer of the finished piece is the next one handed out.
        assert_eq!(s.fetch(2), Some(NewJob { buf: 1, len: 32768 }));
        // A block received twice, or of the wrong length, was not asked for.
        assert!(matches!(
            s.on_block(0, 0, 16384, t0),
            Err(ConnError::Protocol(_))
        ));
        let mut s = downloading(t0);
        assert!(s.on_block(0, 0, 100, t0).is_err());
        assert!(s.on_block(0, 5, 16384, t0).is_err());
    }

    #[test]
    fn a_choke_longer_than_10_s_gives_the_pieces_back() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        s.peer_choked(secs(t0, 1));
        assert_eq!(actions(&mut s), [Action::Choked]);
        assert_eq!(s.outstanding(), 0, "the peer dropped our requests");
        s.tick(secs(t0, 11), &Slots::new(16)).unwrap();
        assert!(actions(&mut s).is_empty(), "10 s are not over yet");
        s.tick(secs(t0, 12), &Slots::new(16)).unwrap();
        assert_eq!(actions(&mut s), [Action::Release(0), Action::Release(1)]);
        assert_eq!(s.pieces(), 0);
        // A block the peer sent before it choked us is wasted, not unsolicited.
        assert_eq!(
            s.on_block(0, 0, 16384, secs(t0, 12)).ok(),
            Some(BlockFate::Wasted)
        );
    }

    #[test]
    fn a_short_choke_keeps_the_pieces_and_asks_again() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        s.peer_choked(secs(t0, 1));
        s.tick(secs(t0, 5), &Slots::new(16)).unwrap();
        s.peer_unchoked(secs(t0, 5));
        s.tick(secs(t0, 30), &Slots::new(16)).unwrap();
        assert_eq!(actions(&mut s), [Action::Choked, Action::Unchoked]);
        assert_eq!(
            requests(&mut s).len(),
            4,
            "the forgotten requests go out again"
        );
        assert_eq!(s.pieces(), 2);
    }

    #[test]
    fn no_block_for_15_s_with_requests_outstanding_is_a_stall() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        let slots = Slots::new(16);
        s.on_block(0, 0, 16384, secs(t0, 10)).unwrap();
        s.tick(secs(t0, 25), &slots).unwrap();
        assert!(matches!(
            s.tick(secs(t0, 26), &slots),
            Err(ConnError::Stalled(STALL_TIMEOUT))
        ));
        // Choked, or nothing asked: waiting is no stall.
        let mut s = downloading(t0);
        s.peer_choked(t0);
        s.tick(secs(t0, 60), &slots).unwrap();
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.peer_unchoked(t0);
        s.tick(secs(t0, 60), &slots).unwrap();
    }

    #[test]
    fn a_silent_peer_is_dropped_after_150_s() {
        let t0 = Instant::now();
        let mut s = PeerState::new(None, t0);
        let slots = Slots::new(16);
        s.received(secs(t0, 10));
        s.tick(secs(t0, 160), &slots).unwrap();
        assert!(matches!(
            s.tick(secs(t0, 161), &slots),
            Err(ConnError::Idle(IDLE_TIMEOUT))
        ));
    }

    #[test]
    fn a_keep_alive_goes_out_after_60_s_of_silence() {
        let t0 = Instant::now();
        let mut s = PeerState::new(None, t0);
        let slots = Slots::new(16);
        s.tick(secs(t0, 60), &slots).unwrap();
        assert!(actions(&mut s).is_empty());
        s.tick(secs(t0, 61), &slots).unwrap();
        assert_eq!(actions(&mut s), [Action::Send(Message::KeepAlive)]);
        s.tick(secs(t0, 62), &slots).unwrap();
        assert!(actions(&mut s).is_empty(), "once a minute");
        s.sent(secs(t0, 100));
        s.received(secs(t0, 100));
        s.tick(secs(t0, 150), &slots).unwrap();
        assert!(actions(&mut s).is_empty(), "anything sent counts");
        s.tick(secs(t0, 161), &slots).unwrap();
        assert_eq!(actions(&mut s), [Action::Send(Message::KeepAlive)]);
    }

    #[test]
    fn an_uninterested_peer_is_choked_after_10_s_and_its_slot_freed() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.peer_interested(&slots);
        assert_eq!(actions(&mut s), [Action::Send(Message::Unchoke)]);
        assert!(!s.am_choking() && s.holding_slot());
        assert_eq!(s.on_request(0, 0, 16384).ok(), Some(RequestFate::Queued));
        s.peer_not_interested(secs(t0, 1));
        s.tick(secs(t0, 11), &slots).unwrap();
        assert!(actions(&mut s).is_empty() && !s.am_choking());
        s.tick(secs(t0, 12), &slots).unwrap();
        assert_eq!(actions(&mut s), [Action::Send(Message::Choke)]);
        assert!(s.am_choking() && !s.holding_slot());
        assert_eq!(slots.taken.get(), 0);
        assert_eq!(s.queued(), 0, "a choke drops the peer's requests");
    }

    #[test]
    fn a_peer_interested_again_within_10_s_stays_unchoked() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.peer_interested(&slots);
        s.peer_not_interested(secs(t0, 1));
        s.peer_interested(&slots);
        s.peer_not_interested(secs(t0, 9));
        s.tick(secs(t0, 12), &slots).unwrap();
        s.peer_interested(&slots);
        s.tick(secs(t0, 30), &slots).unwrap();
        assert_eq!(actions(&mut s), [Action::Send(Message::Unchoke)]);
        assert!(!s.am_choking() && s.holding_slot());
        assert_eq!(slots.taken.get(), 1);
        s.close(&slots);
        assert_eq!(slots.taken.get(), 0, "closing gives the slot back");
    }

    #[test]
    fn upload_slots_are_shared_and_retried() {
        let t0 = Instant::now();
        let slots = Slots::new(1);
        let mut a = PeerState::new(Some(meta(4, true)), t0);
        let mut b = PeerState::new(None, t0);
        a.peer_interested(&slots);
        b.peer_interested(&slots);
        assert!(!a.am_choking() && b.am_choking());
        b.metadata_ready(meta(4, true), &slots);
        assert!(b.am_choking(), "no slot free");
        a.close(&slots);
        b.tick(secs(t0, 1), &slots).unwrap();
        assert!(!b.am_choking(), "the freed slot is taken on the next tick");
        assert_eq!(actions(&mut b), [Action::Send(Message::Unchoke)]);
    }

    #[test]
    fn requests_while_choked_are_ignored_and_a_flood_is_a_violation() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(None, t0);
        assert!(s.on_request(0, 0, 16384).is_err(), "no metadata yet");
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        assert_eq!(s.on_request(0, 0, 16384).ok(), Some(RequestFate::Choking));
        assert_eq!(s.queued(), 0);
        assert!(s.on_request(9, 0, 16384).is_err(), "outside the torrent");
        s.peer_interested(&slots);
        for i in 0..OUR_REQQ {
            let (index, begin) = ((i % 4) as u32, 0);
            assert_eq!(
                s.on_request(index, begin, 100).ok(),
                Some(RequestFate::Queued)
            );
        }
        assert!(matches!(
            s.on_request(0, 0, 16384),
            Err(ConnError::Protocol(e)) if e.contains("requests queued")
        ));
        s.on_cancel(0, 0, 100);
        assert_eq!(s.queued(), OUR_REQQ - OUR_REQQ / 4);
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.peer_interested(&slots);
        assert_eq!(s.on_request(0, 0, 16384).ok(), Some(RequestFate::NotHad));
    }

    #[test]
    fn serving_waits_for_the_rate_limit() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.peer_interested(&slots);
        s.on_request(0, 0, 16384).unwrap();
        s.on_request(1, 0, 16384).unwrap();
        assert!(s.serve_ready(t0));
        let first = s.next_to_serve(t0, |_| Ok(())).map(|b| b.piece.get());
        assert_eq!(first, Some(0));
        let wait = Duration::from_millis(300);
        assert_eq!(s.next_to_serve(t0, |_| Err(wait)), None);
        assert!(!s.serve_ready(t0) && s.serve_ready(t0 + wait));
        assert_eq!(s.timeout(t0), wait);
        // Once the wait is over, while nothing can be written (the write
        // buffer full, so nobody asks for the next block), the poll still
        // sleeps a whole tick instead of spinning.
        assert_eq!(s.timeout(t0 + wait * 2), TICK);
        assert_eq!(s.next_to_serve(t0, |_| Ok(())), None, "still waiting");
        let second = s.next_to_serve(t0 + wait, |_| Ok(()));
        assert_eq!(second.map(|b| b.piece.get()), Some(1));
        assert_eq!(s.timeout(t0), TICK, "nothing left to serve");
    }

    #[test]
    fn a_block_for_a_cancelled_request_is_wasted_an_unsolicited_one_a_violation() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        s.cancel(1);
        assert_eq!(
            actions(&mut s),
            [
                Action::Send(Message::Cancel {
                    index: 1,
                    begin: 0,
                    length: 16384
                }),
                Action::Send(Message::Cancel {
                    index: 1,
                    begin: 16384,
                    length: 16384
                }),
            ]
        );
        assert_eq!(s.outstanding(), 2);
        assert_eq!(s.on_block(1, 0, 16384, t0).ok(), Some(BlockFate::Wasted));
        assert!(
            matches!(s.on_block(1, 0, 16384, t0), Err(ConnError::Protocol(_))),
            "wasted once only"
        );
        assert!(matches!(
            s.on_block(3, 0, 16384, t0),
            Err(ConnError::Protocol(e)) if e.contains("unsolicited")
        ));
        let mut s = PeerState::new(None, t0);
        assert!(s.on_block(0, 0, 16384, t0).is_err(), "no metadata yet");
        assert_eq!(s.fetch(0), None);
        assert_eq!(actions(&mut s), [Action::Release(0)], "given back at once");
    }

    #[test]
    fn requests_respect_the_peers_reqq() {
        let t0 = Instant::now();
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.set_peer_reqq(3);
        s.fetch(0);
        s.fetch(1);
        s.peer_unchoked(t0);
        assert_eq!(requests(&mut s).len(), 3);
        s.on_block(0, 0, 16384, t0).unwrap();
        let next = requests(&mut s);
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].piece.get(), next[0].begin), (1, 16384));
    }

    fn reject(index: u32, begin: u32) -> Action {
        Action::Send(Message::RejectRequest {
            index,
            begin,
            length: 16384,
        })
    }

    #[test]
    fn fast_a_choke_rejects_the_queued_requests_but_allowed_fast_ones() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.enable_fast();
        s.set_allowed_for_peer(vec![2]);
        s.peer_interested(&slots);
        assert_eq!(actions(&mut s), [Action::Send(Message::Unchoke)]);
        s.on_request(0, 0, 16384).unwrap();
        s.on_request(2, 0, 16384).unwrap();
        s.on_request(1, 16384, 16384).unwrap();
        s.peer_not_interested(t0);
        s.tick(secs(t0, 11), &slots).unwrap();
        assert_eq!(
            actions(&mut s),
            [Action::Send(Message::Choke), reject(0, 0), reject(1, 16384)],
            "CHOKE first, then one REJECT per request"
        );
        assert_eq!(s.queued(), 1, "the allowed-fast request is still served");
        // Choked: a new request is rejected unless allowed fast.
        assert_eq!(s.on_request(3, 0, 16384).ok(), Some(RequestFate::Choking));
        assert_eq!(actions(&mut s), [reject(3, 0)]);
        assert_eq!(
            s.on_request(2, 16384, 16384).ok(),
            Some(RequestFate::Queued)
        );
        assert_eq!(s.queued(), 2);
        // A CANCEL is answered with a REJECT.
        s.on_cancel(2, 0, 16384);
        assert_eq!(actions(&mut s), [reject(2, 0)]);
        s.on_cancel(2, 0, 16384);
        assert!(
            actions(&mut s).is_empty(),
            "nothing queued, nothing to reject"
        );
        // Without the fast extension, the same choke drops them silently.
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.set_allowed_for_peer(vec![2]);
        s.peer_interested(&slots);
        s.on_request(2, 0, 16384).unwrap();
        s.peer_not_interested(t0);
        s.tick(secs(t0, 11), &slots).unwrap();
        assert_eq!(
            actions(&mut s),
            [Action::Send(Message::Unchoke), Action::Send(Message::Choke)]
        );
        assert_eq!(s.queued(), 0);
        assert_eq!(s.on_request(2, 0, 16384).ok(), Some(RequestFate::Choking));
        assert!(actions(&mut s).is_empty());
    }

    #[test]
    fn fast_requests_we_will_not_serve_are_rejected() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.enable_fast();
        s.peer_interested(&slots);
        actions(&mut s);
        assert_eq!(s.on_request(1, 0, 16384).ok(), Some(RequestFate::NotHad));
        assert_eq!(actions(&mut s), [reject(1, 0)]);
        let mut s = PeerState::new(Some(meta(4, true)), t0);
        s.enable_fast();
        s.peer_interested(&slots);
        actions(&mut s);
        for i in 0..OUR_REQQ {
            assert_eq!(
                s.on_request((i % 4) as u32, 0, 100).ok(),
                Some(RequestFate::Queued)
            );
        }
        assert!(actions(&mut s).is_empty());
        assert_eq!(s.on_request(0, 0, 16384).ok(), Some(RequestFate::TooMany));
        assert_eq!(actions(&mut s), [reject(0, 0)]);
    }

    #[test]
    fn fast_a_rejected_block_goes_back_at_once() {
        let t0 = Instant::now();
        let mut s = downloading(t0);
        s.enable_fast();
        s.on_reject(0, 16384, 16384, t0).unwrap();
        assert_eq!(
            actions(&mut s),
            [
                Action::Send(Message::Cancel {
                    index: 0,
                    begin: 0,
                    length: 16384
                }),
                Action::Rejected(0)
            ],
            "the piece's other request is cancelled, the piece given back"
        );
        assert_eq!((s.outstanding(), s.pieces()), (2, 1));
        // The cancelled request's answer may be a REJECT too...
        s.on_reject(0, 0, 16384, t0).unwrap();
        assert!(actions(&mut s).is_empty());
        // ...but a reject of a request never sent is a violation.
        assert!(matches!(
            s.on_reject(3, 0, 16384, t0),
            Err(ConnError::Protocol(e)) if e.contains("did not request")
        ));
        assert!(s.on_reject(0, 0, 16384, t0).is_err(), "answered once only");
        // Assigned again, the piece is asked for again.
        s.fetch(0);
        let again = requests(&mut s);
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|b| b.piece.get() == 0));
    }

    #[test]
    fn fast_a_choked_peer_fetches_its_allowed_fast_pieces() {
        let t0 = Instant::now();
        let slots = Slots::new(16);
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.enable_fast();
        assert!(s.on_allowed_fast(2));
        assert!(!s.on_allowed_fast(2), "once");
        assert!(!s.on_allowed_fast(4), "beyond the torrent");
        s.fetch(2);
        s.fetch(1);
        let reqs = requests(&mut s);
        assert_eq!(reqs.len(), 2, "choked, but piece 2 is allowed fast");
        assert!(reqs.iter().all(|b| b.piece.get() == 2));
        // The choke timer gives back piece 1, not the allowed-fast one.
        s.peer_unchoked(t0);
        s.peer_choked(secs(t0, 1));
        assert_eq!(s.outstanding(), 2, "a fast choke drops nothing");
        s.tick(secs(t0, 12), &slots).unwrap();
        assert_eq!(
            actions(&mut s),
            [Action::Unchoked, Action::Choked, Action::Release(1)]
        );
        assert_eq!(s.pieces(), 1);
        // Outstanding while choked and nothing comes: a stall.
        assert!(matches!(
            s.tick(secs(t0, 17), &slots),
            Err(ConnError::Stalled(_))
        ));
        // Without the fast extension, nothing is asked while choked.
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        assert!(s.on_allowed_fast(2));
        s.fetch(2);
        assert!(requests(&mut s).is_empty());
        // At most MAX_ALLOWED_FAST are kept.
        let mut s = PeerState::new(None, t0);
        for i in 0..1000 {
            s.on_allowed_fast(i);
        }
        assert_eq!(s.allowed_by_peer().len(), MAX_ALLOWED_FAST);
    }

    #[test]
    fn fast_a_rejected_allowed_fast_piece_is_not_asked_again_while_choked() {
        let t0 = Instant::now();
        let mut s = PeerState::new(Some(meta(4, false)), t0);
        s.enable_fast();
        s.on_allowed_fast(2);
        s.fetch(2);
        assert_eq!(requests(&mut s).len(), 2);
        s.on_reject(2, 0, 16384, t0).unwrap();
        assert_eq!(actions(&mut s).last(), Some(&Action::Rejected(2)));
        assert!(s.allowed_by_peer().is_empty());
        s.fetch(2);
        assert!(requests(&mut s).is_empty());
    }

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
