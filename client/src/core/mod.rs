//! The peer's decisions, with no sockets, no threads and no clock: the
//! messages between threads, the state they share, piece geometry, the piece
//! picker, the metadata fetch, the upload rate limit, one connection's
//! protocol state (choke, interest, requests, timers), and a torrent's swarm
//! (`swarm/`: which peer fetches what, who may join, when to dial and ask
//! the tracker), and the bytes moved with each remote peer for the
//! tracker's live view (`traffic`), a torrent's trackers in BEP 12 order
//! (`tracker_list`). Everything here takes the time as an argument, so every
//! rule is unit-tested with a fake clock.

pub mod geometry;
pub mod metadata;
pub mod msg;
pub mod peer_state;
pub mod picker;
pub mod ratelimit;
pub mod shared;
pub mod swarm;
pub mod tracker_list;
pub mod traffic;
