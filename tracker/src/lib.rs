//! The minitorrent tracker as a library: the swarm registry, the request
//! handler and the UDP server, so that integration tests and the load
//! generator can use them directly. The `minitorrent-tracker` binary is a thin
//! command line over [`server`].
//!
//! Layers, each importing only those before it: [`registry`] (plain data, time
//! passed in) → [`config`] (what the command line sets) → [`handler`]
//! (datagram in, reply out, no socket) → [`server`] (sockets, poll loop,
//! threads). [`connection_id`], [`peer_id`] and [`io_batch`] import nothing
//! else from the crate. [`discover`] (LAN discovery's responder, on its own
//! port and thread) uses the handler's trace line and the server's stop
//! handle. [`stats`] (the live view's `STATS` window) imports the registry;
//! the handler records into it. [`catalogue`] (the persistent store and its
//! writer thread) imports only [`peer_id`]; the handler feeds it, the server
//! starts and stops it. [`metrics`] counts the workers' datagrams.
//! [`announce`] (one announce or scrape, whether a BEP 15 datagram or an
//! HTTP request carried it) imports the registry, the catalogue and
//! [`peer_id`]; the handler and the web server use it. [`web`] (the HTTP
//! server, on its own threads: the pages, their API and the HTTP tracker
//! protocol) reads the registry, the live view, the catalogue and the
//! counters, and announces through [`announce`]; nothing imports it.

pub mod announce;
pub mod catalogue;
pub mod config;
pub mod connection_id;
pub mod discover;
pub mod handler;
mod indexed;
pub mod io_batch;
pub mod metrics;
pub mod peer_id;
pub mod registry;
pub mod server;
pub mod stats;
pub mod token;
pub mod web;
