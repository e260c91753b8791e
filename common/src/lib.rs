//! Protocol formats shared by the minitorrent tracker and peer.
//!
//! Nothing in this crate opens a socket or a file, starts a thread or reads the
//! clock, so every rule here is unit-tested with plain byte strings. Each format
//! is a type with `encode`/`decode` (or `parse`) and an error type that says what
//! was wrong. Making a torrent is no exception: `metainfo::Layout` works from a
//! list of files and their piece hashes, and the peer reads the files.

pub mod bencode;
pub mod compact;
pub mod hash;
pub mod hex;
pub mod http_tracker;
pub mod magnet;
pub mod metainfo;
pub mod mse;
pub mod percent;
pub mod trace;
pub mod tracker_proto;
pub mod udp_tracker;
pub mod wire;
