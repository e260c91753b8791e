//! Answering the peer: blocks read from disk straight into the write buffer,
//! within the upload rate limit, and `ut_metadata` requests.

use std::time::Instant;

use minitorrent_common::wire::{self, Message, MetadataMsg, METADATA_BLOCK};

use super::io::{Wire, WBUF_TARGET};
use crate::core::msg::ConnError;
use crate::core::peer_state::{violation, PeerState};
use crate::net::shared::{MetaCtx, TorrentShared};
use crate::net::trace;

/// A `ut_metadata` request while this much waits to be sent is a flood: each
/// answers a ~30-byte request with up to 16 KiB, and a peer fetching the
/// metadata asks for a few blocks at a time and reads them.
pub(super) const METADATA_BACKLOG: usize = 1 << 20;

impl Wire {
    /// Refills the write buffer up to `WBUF_TARGET` with answers to the
    /// requests `state` has queued.
    pub(super) fn serve(
        &mut self,
        state: &mut PeerState,
        m: &MetaCtx,
        t: &TorrentShared,
    ) -> Result<(), ConnError> {
        let now = Instant::now();
        while self.backlog() < WBUF_TARGET {
            let Some(blk) = state.next_to_serve(now, |n| t.rate.take(n, now)) else {
                break;
            };
            let out = self.reserve(13 + blk.len as usize);
            out[..13].copy_from_slice(&wire::piece_header(blk.piece.get(), blk.begin, blk.len));
            if let Err(e) = m.storage.read_block(blk, &mut out[13..]) {
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
            t.add_uploaded(blk.len as u64);
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
        let Some(peer_id) = self.peer_ut_metadata else {
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
