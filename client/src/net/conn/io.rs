//! The socket side of a connection: the poll loop, the read buffer and the
//! frames in it, the write buffer and its flush.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use minitorrent_common::mse::Ciphers;
use minitorrent_common::wire::{self, ExtHandshake, Message, MetadataMsg, PexMsg, MAX_MESSAGE_LEN};
use mio::{Events, Interest, Poll, Token, Waker};

use super::Conn;
use crate::core::msg::ConnError;
use crate::core::peer_state::violation;
use crate::net::trace;

const SOCK: Token = Token(0);
const WAKE: Token = Token(1);

/// Size of the read buffer (plus the largest frame) and the point past which
/// the write buffer is not refilled: large enough that a loopback transfer
/// makes few syscalls, small enough to bound memory per connection.
const RBUF_LEN: usize = 256 * 1024;
pub(super) const WBUF_TARGET: usize = 256 * 1024;
/// Bytes waiting to be sent past which the peer is taken to flood us without
/// reading: blocks only refill the buffer up to `WBUF_TARGET`, so only
/// answers to a flood of small requests (`ut_metadata`) can get here.
const MAX_BACKLOG: usize = 4 << 20;
/// While more than this waits to be sent, the peer's messages are left
/// unread (in the kernel's buffers, then in its own): nothing it sends can
/// make us queue more. Above `serve::METADATA_BACKLOG`, so that a metadata
/// flood is closed by name rather than merely paused; an honest peer never
/// gets here.
const READ_PAUSE: usize = 2 << 20;
/// The longest a connection stops reading for the download limit before it
/// looks at the limit again.
const HOLD_MAX: Duration = Duration::from_secs(1);

/// The extended message ids the receiver of a message gave the extensions
/// we speak (in its extension handshake); `None` when it did not enable one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ExtIds {
    pub metadata: Option<u8>,
    pub pex: Option<u8>,
}

/// The trace line of a message; extension messages are decoded one level
/// further. `ids` are the receiver's extension ids; `pieces` the torrent's
/// piece count, once known.
pub(super) fn describe(m: &Message, ids: ExtIds, pieces: Option<usize>) -> String {
    let decoded = match m {
        Message::Bitfield(bits) => return trace::bitfield(bits, pieces),
        Message::Extended { id: 0, payload } => ExtHandshake::decode(payload).map(|h| h.summary()),
        Message::Extended { id, payload } if Some(*id) == ids.metadata => {
            MetadataMsg::decode(payload).map(|x| x.summary())
        }
        Message::Extended { id, payload } if Some(*id) == ids.pex => {
            PexMsg::decode(payload).map(|x| x.summary())
        }
        _ => return m.summary(),
    };
    decoded.unwrap_or_else(|_| m.summary())
}

/// The socket, its poll and its buffers.
pub(super) struct Wire {
    stream: mio::net::TcpStream,
    poll: Poll,
    events: Events,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// Incoming bytes are `rbuf[rstart..rend]`: whole frames and the start
    /// of the next one.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    max_frame: usize,
    /// Outgoing bytes are `wbuf[wpos..wend]`; `wbuf` keeps its length so
    /// that blocks are read from disk straight into it without zero-filling.
    pub(super) wbuf: Vec<u8>,
    wpos: usize,
    pub(super) wend: usize,
    /// With RC4 (MSE): the streams, and how far `wbuf` is encrypted
    /// already (`wbuf[wpos..wenc]`). Bytes are encrypted in place just
    /// before they are written, and decrypted in place as they are read.
    ciphers: Option<Ciphers>,
    wenc: usize,
    scratch: Vec<u8>,
    readable: bool,
    writable: bool,
    /// Under `--max-download-rate`: nothing more is read before this (the
    /// peer's data waits in the kernel, and TCP slows the sender).
    hold_until: Option<Instant>,
    /// The ids the peer gave our extensions in its extension handshake
    /// (what we send uses them)...
    pub(super) peer_ids: ExtIds,
    /// ...and the ids we gave them in ours (what we receive uses them).
    pub(super) our_ids: ExtIds,
    /// The torrent's piece count once the metadata is known (for the trace).
    pub(super) pieces: Option<usize>,
}

impl Wire {
    /// Makes the socket non-blocking and registers it; the waker wakes the
    /// poll from another thread.
    /// `ciphers`: the RC4 streams when MSE selected them; `pending`: stream
    /// bytes the handshake read past its end (already decrypted).
    pub(super) fn new(
        s: TcpStream,
        pieces: Option<usize>,
        ciphers: Option<Ciphers>,
        pending: Vec<u8>,
    ) -> Result<(Wire, Waker), ConnError> {
        let max_frame = pieces.map_or(MAX_MESSAGE_LEN, wire::max_message_len);
        let local = s.local_addr()?;
        let remote = s.peer_addr()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(s);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut stream, SOCK, Interest::READABLE | Interest::WRITABLE)?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let mut rbuf = vec![0; RBUF_LEN + MAX_MESSAGE_LEN.max(max_frame) + 4];
        if pending.len() > rbuf.len() {
            rbuf.resize(pending.len(), 0);
        }
        rbuf[..pending.len()].copy_from_slice(&pending);
        let wire = Wire {
            stream,
            poll,
            events: Events::with_capacity(16),
            local,
            remote,
            rbuf,
            rstart: 0,
            rend: pending.len(),
            max_frame,
            wbuf: vec![0; WBUF_TARGET + 64 * 1024],
            wpos: 0,
            wend: 0,
            ciphers,
            wenc: 0,
            scratch: Vec::with_capacity(1024),
            readable: true,
            writable: true,
            hold_until: None,
            peer_ids: ExtIds::default(),
            our_ids: ExtIds::default(),
            pieces,
        };
        Ok((wire, waker))
    }

    /// The piece count, now known, and with it the largest frame allowed.
    pub(super) fn set_pieces(&mut self, pieces: usize) {
        self.pieces = Some(pieces);
        let max_frame = wire::max_message_len(pieces);
        self.max_frame = max_frame;
        // A frame must fit the read buffer whole (a huge bitfield could
        // exceed the size chosen before the piece count was known).
        let need = RBUF_LEN + max_frame + 4;
        if self.rbuf.len() < need {
            self.rbuf.resize(need, 0);
        }
    }

    /// Appends the message to the bytes to send.
    pub(super) fn send(&mut self, m: &Message) {
        trace::peer(self.local, self.remote, || {
            describe(m, self.peer_ids, self.pieces)
        });
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        m.encode(&mut scratch);
        self.reserve(scratch.len()).copy_from_slice(&scratch);
        self.scratch = scratch;
    }

    /// Room for `n` more bytes to send, to be filled by the caller.
    pub(super) fn reserve(&mut self, n: usize) -> &mut [u8] {
        let at = self.wend;
        if at + n > self.wbuf.len() {
            self.wbuf.resize(at + n, 0);
        }
        self.wend += n;
        &mut self.wbuf[at..at + n]
    }

    /// Bytes waiting to be sent.
    pub(super) fn backlog(&self) -> usize {
        self.wend - self.wpos
    }

    fn may_read(&self) -> bool {
        self.readable && self.backlog() <= READ_PAUSE && self.hold_until.is_none()
    }

    /// Reads what the socket has, up to the end of the buffer (or `max`
    /// bytes); 0 when it has nothing more for now.
    fn read(&mut self, max: Option<usize>) -> Result<usize, ConnError> {
        if self.rend == self.rbuf.len() {
            // Only reachable when a partial frame sits at the end.
            self.compact();
        }
        let end = match max {
            Some(m) => self.rbuf.len().min(self.rend + m),
            None => self.rbuf.len(),
        };
        loop {
            return match self.stream.read(&mut self.rbuf[self.rend..end]) {
                Ok(0) => Err(ConnError::Closed),
                Ok(n) => {
                    if let Some(c) = self.ciphers.as_mut() {
                        c.decrypt.apply(&mut self.rbuf[self.rend..self.rend + n]);
                    }
                    self.rend += n;
                    Ok(n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    Ok(0)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e.into()),
            };
        }
    }

    fn compact(&mut self) {
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
    }

    /// Where the next whole frame (after its length prefix) sits in `rbuf`.
    fn next_frame(&mut self) -> Result<Option<(usize, usize)>, ConnError> {
        let avail = self.rend - self.rstart;
        if avail >= 4 {
            let mut prefix = [0u8; 4];
            prefix.copy_from_slice(&self.rbuf[self.rstart..self.rstart + 4]);
            let len = wire::frame_len(prefix, self.max_frame)
                .map_err(|e| violation(format!("length prefix: {e}")))?;
            if avail >= 4 + len {
                let start = self.rstart + 4;
                self.rstart += 4 + len;
                return Ok(Some((start, len)));
            }
            if self.rstart + 4 + len > self.rbuf.len() {
                self.compact();
            }
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(None)
    }

    /// Writes what the socket takes; true if anything went out.
    fn flush(&mut self) -> Result<bool, ConnError> {
        let mut sent = false;
        if let Some(c) = self.ciphers.as_mut() {
            c.encrypt.apply(&mut self.wbuf[self.wenc..self.wend]);
            self.wenc = self.wend;
        }
        while self.wpos < self.wend {
            match self.stream.write(&self.wbuf[self.wpos..self.wend]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.wpos += n;
                    sent = true;
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
            self.wenc = 0;
        } else if self.wpos >= WBUF_TARGET {
            self.wbuf.copy_within(self.wpos..self.wend, 0);
            self.wend -= self.wpos;
            self.wenc = self.wenc.saturating_sub(self.wpos);
            self.wpos = 0;
        }
        Ok(sent)
    }

    /// Sleeps until the socket or the waker has news, or `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<(), ConnError> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for ev in self.events.iter() {
            if ev.token() == SOCK {
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.readable = true;
                }
                if ev.is_writable() || ev.is_write_closed() {
                    self.writable = true;
                }
            }
        }
        Ok(())
    }
}

impl Conn {
    pub(super) fn run(mut self) -> Result<(), ConnError> {
        // Messages that came with the end of an MSE handshake (a BITFIELD
        // in the same segment): handled now, not at the peer's next word.
        if self.wire.rend > self.wire.rstart {
            self.process_frames(Instant::now())?;
        }
        loop {
            self.drain_commands()?;
            if let Some(t) = self.wire.hold_until {
                let now = Instant::now();
                if now >= t {
                    // Read again only once the session's bucket is out of
                    // debt: other connections may have taken the tokens.
                    self.wire.hold_until = match self.state.outstanding() {
                        0 => None,
                        _ => self.t.down_rate.owed(now).map(|w| now + w.min(HOLD_MAX)),
                    };
                }
            }
            if self.wire.may_read() {
                self.read_some()?;
            }
            let backlog = self.wire.backlog();
            if backlog > MAX_BACKLOG {
                return Err(violation(format!(
                    "{backlog} bytes of answers waiting: the peer sends requests but does not read"
                )));
            }
            self.fill_requests();
            self.fill_serve()?;
            if self.wire.writable && self.wire.backlog() > 0 {
                self.flush()?;
                if self.wire.backlog() == 0 {
                    self.fill_serve()?;
                    self.flush()?;
                }
            }
            let now = Instant::now();
            if self.wire.hold_until.is_some() {
                self.state.holding_back(now);
            }
            self.traffic.store(self.state.traffic());
            self.traffic.set_choking(self.state.am_choking());
            self.state.tick(now, &*self.t)?;
            self.apply_actions()?;
            let serve_ready = self.state.serve_ready(now);
            let w = &self.wire;
            let busy = w.may_read() || (w.writable && (w.backlog() > 0 || serve_ready));
            let timeout = if busy {
                Duration::ZERO
            } else {
                let t = self.state.timeout(now);
                match w.hold_until {
                    Some(until) if w.readable => t.min(until.saturating_duration_since(now)),
                    _ => t,
                }
            };
            self.wire.wait(timeout)?;
        }
    }

    fn fill_serve(&mut self) -> Result<(), ConnError> {
        match &self.meta {
            Some(m) if self.state.serving() => self.wire.serve(&mut self.state, m, &self.t),
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), ConnError> {
        if self.wire.flush()? {
            self.state.sent(Instant::now());
        }
        Ok(())
    }

    fn read_some(&mut self) -> Result<(), ConnError> {
        let mut budget = 4 * RBUF_LEN;
        loop {
            // Only a connection we fetch from is slowed by the download
            // limit: one that only asks us for blocks must not wait on it.
            let limited = self.state.outstanding() > 0;
            let chunk = if limited {
                self.t.down_rate.chunk()
            } else {
                None
            };
            let n = self.wire.read(chunk)?;
            if n == 0 {
                return Ok(());
            }
            let now = Instant::now();
            self.state.received(now);
            let wait = if limited {
                self.t.down_rate.charge(n, now)
            } else {
                None
            };
            if let Some(wait) = wait {
                // At most a second at a time, so that a new limit (or none)
                // applies within a second.
                self.wire.hold_until = Some(now + wait.min(HOLD_MAX));
                return self.process_frames(now);
            }
            self.process_frames(now)?;
            budget = budget.saturating_sub(n);
            if budget == 0 {
                return Ok(());
            }
        }
    }

    fn process_frames(&mut self, now: Instant) -> Result<(), ConnError> {
        while let Some((start, len)) = self.wire.next_frame()? {
            // The frame is lent out of the buffer while it is handled.
            let rbuf = std::mem::take(&mut self.wire.rbuf);
            let r = self.on_frame(&rbuf[start..start + len], now);
            self.wire.rbuf = rbuf;
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use minitorrent_common::wire::{PexPeer, UT_METADATA_ID, UT_PEX_ID};

    use super::*;

    #[test]
    fn extension_messages_are_traced_decoded_by_the_receivers_ids() {
        let pex = PexMsg {
            added: vec![PexPeer {
                addr: "127.0.0.1:7001".parse().unwrap(),
                flags: 0,
            }],
            ..PexMsg::default()
        };
        let m = Message::Extended {
            id: UT_PEX_ID,
            payload: pex.encode(),
        };
        let ours = ExtIds {
            metadata: Some(UT_METADATA_ID),
            pex: Some(UT_PEX_ID),
        };
        assert_eq!(
            describe(&m, ours, None),
            "PEX added 1: 127.0.0.1:7001; dropped 0"
        );
        let meta = Message::Extended {
            id: UT_METADATA_ID,
            payload: MetadataMsg::Request { piece: 3 }.encode(),
        };
        assert_eq!(describe(&meta, ours, None), "METADATA REQUEST piece 3");
        // An id the receiver did not give ut_pex, or a payload that does
        // not decode: the frame.
        let other = ExtIds {
            metadata: Some(UT_METADATA_ID),
            pex: None,
        };
        assert_eq!(describe(&m, other, None), m.summary());
        let bad = Message::Extended {
            id: UT_PEX_ID,
            payload: b"d5:added1:xe".to_vec(),
        };
        assert_eq!(describe(&bad, ours, None), bad.summary());
    }
}
