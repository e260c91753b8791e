//! Answering the peer: blocks read from disk straight into the write buffer,
//! within the upload rate limit, never a block of a file that changed since
//! it was verified unless its piece verifies again; and `ut_metadata`
//! requests.

use std::time::Instant;

use minitorrent_common::wire::{self, Message, MetadataMsg, METADATA_BLOCK};

use super::io::{Wire, WBUF_TARGET};
use crate::core::msg::{ConnError, Event};
use crate::core::peer_state::{violation, PeerState};
use crate::net::shared::{MetaCtx, TorrentShared};
use crate::net::storage::StorageError;
use crate::net::trace;

/// Why a connection of a torrent whose data changed stops serving.
const NOT_SERVED: &str = "the torrent's data changed on disk; its pieces are no longer served";

/// A `ut_metadata` request while this much waits to be sent is a flood: each
/// answers a ~30-byte request with up to 16 KiB, and a peer fetching the
/// metadata asks for a few blocks at a time and reads them.
pub(super) const METADATA_BACKLOG: usize = 1 << 20;

impl Wire {
    /// Refills the write buffer up to `WBUF_TARGET` with answers to the
    /// requests `state` has queued.
    ///
    /// Blocks are read straight into the write buffer; then (one `fstat` per
    /// file read, not per block) the files must still carry the stamps they
    /// were verified with. If one changed, the batch goes out only after
    /// [`Wire::reverify`]: the stamp is checked after the reads, so any write
    /// that reached the bytes read had already changed it.
    pub(super) fn serve(
        &mut self,
        state: &mut PeerState,
        m: &MetaCtx,
        t: &TorrentShared,
    ) -> Result<(), ConnError> {
        if m.storage.is_changed() {
            return Err(ConnError::Storage(NOT_SERVED.into()));
        }
        let now = Instant::now();
        let mark = self.wend;
        let mut files: Option<(usize, usize)> = None;
        let mut bytes = 0u64;
        while self.backlog() < WBUF_TARGET {
            let Some(blk) = state.next_to_serve(now, |n| t.rate.take(n, now)) else {
                break;
            };
            let out = self.reserve(13 + blk.len as usize);
            out[..13].copy_from_slice(&wire::piece_header(blk.piece.get(), blk.begin, blk.len));
            let read = m.storage.read_block(blk, &mut out[13..]);
            let (a, b) = m.storage.files_of(blk);
            if let Err(e) = read {
                self.wend = mark;
                // A file cut short is a file changed.
                return Err(match m.storage.unchanged(a, b) {
                    Err(change) => withdraw(m, t, change, blk.piece.get()),
                    Ok(()) => ConnError::Storage(Box::new(e)),
                });
            }
            files = Some(files.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
            bytes += blk.len as u64;
        }
        let Some((first, last)) = files else {
            return Ok(());
        };
        if let Err(change) = m.storage.unchanged(first, last) {
            self.reverify(mark, m, t, change)?;
        }
        if trace::enabled() {
            self.trace_pieces(mark);
        }
        t.add_uploaded(bytes);
        Ok(())
    }

    /// The PIECE messages written since `mark`: (offset of the header in
    /// `wbuf`, index, begin, length).
    fn pieces_since(&self, mark: usize) -> impl Iterator<Item = (usize, u32, u32, usize)> + '_ {
        let mut at = mark;
        std::iter::from_fn(move || {
            let h = self.wbuf.get(at..at + 13)?;
            let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let len = (word(0) as usize).saturating_sub(9);
            let item = (at, word(5), word(9), len);
            at += 13 + len;
            (at <= self.wend).then_some(item)
        })
    }

    fn trace_pieces(&self, mark: usize) {
        for (_, index, begin, len) in self.pieces_since(mark) {
            trace::peer(self.local, self.remote, || {
                Message::Piece {
                    index,
                    begin,
                    data: vec![0; len],
                }
                .summary()
            });
        }
    }

    /// A file changed since it was verified: each block written since `mark`
    /// is sent only if its piece, read again, still matches the torrent's
    /// SHA-1, and with the bytes of that verified read. A piece that does
    /// not match is never sent: the batch is dropped, the coordinator told
    /// (once per torrent; it withdraws the torrent) and the connection
    /// closed.
    fn reverify(
        &mut self,
        mark: usize,
        m: &MetaCtx,
        t: &TorrentShared,
        change: StorageError,
    ) -> Result<(), ConnError> {
        let blocks: Vec<_> = self.pieces_since(mark).collect();
        let mut piece = Vec::new();
        let mut verified = None;
        for (at, index, begin, len) in blocks {
            if verified != Some(index) {
                // A piece that cannot be read again (the file shrank or
                // went away) counts as changed, like one that reads wrong.
                let ok = match (m.geometry.piece(index), m.info.pieces.get(index as usize)) {
                    (Ok(p), Some(hash)) => {
                        m.storage.verify_piece(p, hash, &mut piece).unwrap_or(false)
                    }
                    _ => false,
                };
                if !ok {
                    self.wend = mark;
                    return Err(withdraw(m, t, change, index));
                }
                verified = Some(index);
            }
            let (b, n) = (begin as usize, len);
            match piece.get(b..b + n) {
                Some(src) => self.wbuf[at + 13..at + 13 + n].copy_from_slice(src),
                None => {
                    self.wend = mark;
                    return Err(ConnError::Storage(NOT_SERVED.into()));
                }
            }
        }
        Ok(())
    }

    /// Answers a `ut_metadata` request: the block when we have the info
    /// dictionary, a reject otherwise.
    pub(super) fn answer_metadata(
        &mut self,
        piece: u32,
        meta: Option<&MetaCtx>,
    ) -> Result<(), ConnError> {
        let Some(peer_id) = self.peer_ids.metadata else {
            return Ok(());
        };
        let backlog = self.backlog();
        if backlog > METADATA_BACKLOG {
            return Err(violation(format!(
                "ut_metadata request while {backlog} bytes of answers wait unread"
            )));
        }
        let reply = match meta {
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
        Ok(())
    }
}

/// Piece `index` no longer matches the torrent because of `change`: the
/// coordinator is told (once per torrent; it withdraws the torrent) and this
/// connection closes.
fn withdraw(m: &MetaCtx, t: &TorrentShared, change: StorageError, index: u32) -> ConnError {
    if m.storage.mark_changed() {
        let why = format!("{change} (piece {index})");
        let _ = t.events.send(Event::DataChanged(why).into());
    }
    ConnError::Storage(Box::new(change))
}
