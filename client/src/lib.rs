//! The minitorrent peer as a library, in layers whose imports point down
//! only: `cli` (main glue, menu, progress, shared folder) → `session` (the
//! facade every shell uses) → `net` (threads and sockets: coordinator and
//! connection threads, listener, storage, tracker traffic) → `core` (no
//! sockets, no threads, no clock: messages, shared state, the decisions).
//! `main.rs` only calls [`cli::main`].
//!
//! The invariants of the download state and who owns which piece of it are
//! written down in `docs/STATE.md`.

pub mod cli;
pub mod core;
pub mod net;
pub mod session;

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
