//! Threads and sockets: the coordinator thread of each torrent (carries out
//! what the core decides), one thread per peer connection, the listener,
//! the storage of pieces on disk, and all tracker traffic.

pub mod conn;
pub mod coordinator;
pub mod create;
pub mod listener;
pub mod open;
pub mod shared;
pub mod storage;
pub mod trace;
pub mod tracker;
