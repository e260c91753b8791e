//! The minitorrent tracker as a library: the swarm registry and the UDP server,
//! so that integration tests and the load generator can use them directly. The
//! `minitorrent-tracker` binary is a thin command line over [`server`].

pub mod connection_id;
mod indexed;
pub mod io_batch;
pub mod peer_id;
pub mod registry;
pub mod server;
