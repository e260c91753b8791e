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
