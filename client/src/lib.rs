//! The minitorrent peer as a library: the download engine (storage, piece
//! picker, per-torrent coordinator, connection threads), the tracker client,
//! and the session that ties them together. `main.rs` is a thin CLI over it.
//!
//! The invariants of the download state and who owns which piece of it are
//! written down in `docs/STATE.md`.

pub mod create;
pub mod geometry;
pub mod menu;
pub mod metadata;
pub mod peer;
pub mod picker;
pub mod progress;
pub mod ratelimit;
pub mod session;
pub mod share;
pub mod storage;
pub mod torrent;
pub mod trace;
pub mod tracker_client;
pub mod udp_announce;

/// Our client's prefix in the peer id (Azureus style) and in `v` of the
/// extension handshake.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-MT0100-";
pub const CLIENT_NAME: &str = concat!("minitorrent ", env!("CARGO_PKG_VERSION"));

/// A fresh peer id: `-MT0100-` followed by 12 random alphanumerics.
pub fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for b in &mut id[8..] {
        *b = fastrand::alphanumeric() as u8;
    }
    id
}

/// The peer id as text for the tracker; ours is always ASCII, a foreign one
/// is shown lossily.
pub fn peer_id_str(id: &[u8; 20]) -> String {
    String::from_utf8_lossy(id).into_owned()
}
