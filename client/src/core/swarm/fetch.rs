//! Fetching the info dictionary from peers (BEP 9) while only the info hash
//! is known: whom to ask for which block, what to make of an answer.

use log::{debug, warn};

use super::pieces::Ctx;
use crate::core::metadata::{MetadataError, MetadataFetch};
use crate::core::msg::{CloseReason, Command};
use crate::core::picker::ConnId;

/// The metadata fetch of a swarm in its first stage.
#[derive(Debug)]
pub(super) struct Fetching(pub MetadataFetch);

impl Fetching {
    /// Asks `conn` for the next block it may give, if it speaks
    /// `ut_metadata` and has no request of ours outstanding.
    pub fn request(&mut self, cx: &mut Ctx, conn: ConnId) {
        if !cx.peers.get(conn).is_some_and(|p| p.ut_metadata) || self.0.is_asking(conn) {
            return;
        }
        if let Some(piece) = self.0.next_request(conn, cx.now) {
            cx.out
                .push(super::Action::Send(conn, Command::MetadataRequest(piece)));
        }
    }

    pub fn request_all(&mut self, cx: &mut Ctx) {
        for c in cx.peers.conns() {
            self.request(cx, c);
        }
    }

    /// The size `conn` announced in its extension handshake.
    pub fn offer(&mut self, cx: &mut Ctx, conn: ConnId, size: Option<u64>) {
        if let Some(size) = size {
            if let Err(e) = self.0.offer_size(conn, size) {
                debug!("{}: {e}", cx.name);
            }
        }
        self.request(cx, conn);
    }

    /// A block arrived; returns the whole dictionary once it is complete
    /// and matches the info hash.
    pub fn on_data(
        &mut self,
        cx: &mut Ctx,
        conn: ConnId,
        piece: u32,
        total: u64,
        data: Vec<u8>,
    ) -> Option<Vec<u8>> {
        match self.0.received(conn, piece, total, data) {
            Ok(Some(bytes)) => return Some(bytes),
            Ok(None) => self.request(cx, conn),
            Err(MetadataError::HashMismatch) => {
                warn!(
                    "{}: metadata did not match the info hash; asking again",
                    cx.name
                );
                self.request_all(cx);
            }
            // Not a reason to close: a late answer to a withdrawn request,
            // or a peer whose size differs from the one being fetched
            // (which may be the wrong one); its claim is forgotten.
            Err(e @ (MetadataError::Unsolicited { .. } | MetadataError::SizeMismatch { .. })) => {
                debug!("{}: metadata block ignored: {e}", cx.name);
                self.request_all(cx);
            }
            Err(e) => {
                warn!("{}: bad metadata from a peer: {e}", cx.name);
                cx.out.push(super::Action::Send(
                    conn,
                    Command::Close(CloseReason::BadMetadata),
                ));
            }
        }
        None
    }

    /// `conn` will not give metadata (rejected, or gone).
    pub fn forget(&mut self, conn: ConnId) {
        self.0.forget(conn);
    }
}
