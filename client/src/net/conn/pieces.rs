//! The pieces a connection assembles: their buffers, the PIECE fast path
//! (a block goes from the read buffer straight into its piece's buffer), the
//! SHA-1 check and the write to disk. Which blocks are wanted, requested or
//! received is the protocol state's ([`PeerState`](crate::core::peer_state::PeerState)).

use std::time::Instant;

use minitorrent_common::hash::sha1;
use minitorrent_common::wire::Message;

use super::Conn;
use crate::core::geometry::PieceIndex;
use crate::core::msg::{ConnError, Event};
use crate::core::peer_state::{BlockFate, BufId, NewJob};
use crate::core::picker::ConnId;
use crate::net::shared::MetaCtx;

/// One buffer per [`BufId`] the protocol state hands out, kept for the next
/// piece when one is done: a connection holds at most
/// `pieces_per_peer(piece_length)` pieces, so it never has more buffers.
#[derive(Default)]
pub(super) struct PieceBufs(Vec<Vec<u8>>);

impl PieceBufs {
    pub(super) fn prepare(&mut self, job: NewJob) {
        if self.0.len() <= job.buf {
            self.0.resize_with(job.buf + 1, Vec::new);
        }
        self.0[job.buf].resize(job.len, 0);
    }

    /// Checks the SHA-1 of the piece assembled in `buf` and writes it if it
    /// matches; says what to report.
    fn finish(&self, buf: BufId, piece: PieceIndex, m: &MetaCtx, conn: ConnId) -> Event {
        let index = piece.get();
        let data = &self.0[buf][..m.geometry.piece_len(piece) as usize];
        let ok = m
            .info
            .pieces
            .get(index as usize)
            .is_some_and(|h| *h == sha1(data));
        if !ok {
            return Event::PieceBad { conn, index };
        }
        match m.storage.write_piece(piece, data) {
            Ok(()) => Event::PieceDone { conn, index },
            Err(e) => Event::WriteFailed {
                conn,
                index,
                error: Box::new(e),
            },
        }
    }
}

impl Conn {
    /// A block arrived at `now`: into its piece's buffer, and when that
    /// completes the piece, check and write it.
    pub(super) fn on_block(
        &mut self,
        index: u32,
        begin: u32,
        data: &[u8],
        now: Instant,
    ) -> Result<(), ConnError> {
        match self.state.on_block(index, begin, data.len(), now)? {
            BlockFate::Wasted => self.t.add_wasted(),
            BlockFate::Keep { buf, done } => {
                let at = begin as usize;
                self.bufs.0[buf][at..at + data.len()].copy_from_slice(data);
                self.t.add_downloaded(data.len() as u64);
                if let (Some(piece), Some(m)) = (done, &self.meta) {
                    self.report(self.bufs.finish(buf, piece, m, self.id))?;
                }
            }
        }
        Ok(())
    }

    /// Keeps the request pipeline full, as far as the state allows.
    pub(super) fn fill_requests(&mut self) {
        while let Some(blk) = self.state.next_request() {
            self.wire.send(&Message::Request {
                index: blk.piece.get(),
                begin: blk.begin,
                length: blk.len,
            });
        }
    }
}
