//! The UDP server: binds the sockets, runs one mio event loop per worker
//! thread, and answers each datagram through a [`Handler`].
//!
//! [`Handler`] is the protocol logic without sockets (datagram in, reply out,
//! in [`crate::handler`]); [`Tracker`] is the I/O shell around it. Each
//! worker owns a socket bound to the same address (`SO_REUSEPORT` when there
//! are several, so the kernel spreads clients over them), reads until
//! `WouldBlock` in batches (`recvmmsg`/`sendmmsg`, [`crate::io_batch`]),
//! answers each datagram at once into reused buffers, and sweeps its share of
//! the registry when the poll times out (and between reads when busy, so a
//! flood cannot postpone expiry). All workers share one [`Registry`] and one
//! set of connection-id keys, so any worker can answer any datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::catalogue::{Catalogue, OpenError};
use crate::config::Config;
use crate::connection_id::ConnectionIds;
use crate::handler::Handler;
use crate::io_batch::{RecvBatch, SendBatch};
use crate::metrics::{UdpMetrics, WorkerCounters};
use crate::registry::{Limits, Registry};
use crate::stats::{Stats, StatsView};
use crate::token::AddressTokens;

/// Kernel socket buffers: large enough to ride out bursts from many peers.
const SOCKET_BUFFER: usize = 4 << 20;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// Stops a running [`Tracker`] from another thread (e.g. the Ctrl-C handler).
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    wakers: Arc<Vec<Waker>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        for w in self.wakers.iter() {
            let _ = w.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// A bound tracker, ready to [`run`](Tracker::run).
pub struct Tracker {
    workers: Vec<Worker>,
    local_addr: SocketAddr,
    registry: Arc<Registry>,
    conn_ids: Arc<ConnectionIds>,
    /// The JSON protocol's address tokens, shared so that any worker
    /// accepts what another issued.
    tokens: Arc<AddressTokens>,
    stats: Arc<Stats>,
    stop: StopHandle,
    catalogue: Arc<Catalogue>,
    metrics: UdpMetrics,
}

struct Worker {
    poll: Poll,
    socket: UdpSocket,
}

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: the port is already in use (is another tracker running?)")]
    InUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: no local interface has that address")]
    NotAvailable { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Other { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Catalogue(#[from] OpenError),
}

fn bind_error(addr: SocketAddr, e: io::Error) -> BindError {
    match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse { addr },
        io::ErrorKind::AddrNotAvailable => BindError::NotAvailable { addr },
        _ => BindError::Other { addr, source: e },
    }
}

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<StdUdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    // Best effort: a smaller buffer only means more drops under a flood.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn set_reuse_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "several workers need SO_REUSEPORT, which this system lacks; use --workers 1",
    ))
}

/// Binds one socket per worker on the same address.
fn bind_sockets(addr: SocketAddr, workers: usize) -> Result<Vec<StdUdpSocket>, BindError> {
    if workers <= 1 {
        return Ok(vec![
            bind_socket(addr, false).map_err(|e| bind_error(addr, e))?
        ]);
    }
    // A plain bind first: it fails if anything holds the port, including a
    // tracker whose own sockets allow sharing it, so two trackers never split
    // one port's traffic. Then the shared sockets take the port it found.
    for attempt in 0..3 {
        let probe = bind_socket(addr, false).map_err(|e| bind_error(addr, e))?;
        let actual = probe.local_addr().map_err(|e| bind_error(addr, e))?;
        drop(probe);
        let mut sockets = Vec::with_capacity(workers);
        let mut failed = None;
        for _ in 0..workers {
            match bind_socket(actual, true) {
                Ok(s) => sockets.push(s),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => return Ok(sockets),
            // Someone took the free port between the probe and us: pick again.
            Some(e) if addr.port() == 0 && attempt < 2 => {
                debug!("port {} taken meanwhile: {e}", actual.port())
            }
            Some(e) => return Err(bind_error(addr, e)),
        }
    }
    Err(BindError::InUse { addr })
}

impl Tracker {
    /// Opens the catalogue (`config.db`) and starts its writer, then binds
    /// the UDP sockets (one per worker). Port 0 picks a free port; see
    /// [`local_addr`](Tracker::local_addr).
    pub fn bind(config: &Config) -> Result<Tracker, BindError> {
        // First, so a damaged database stops the start before any socket.
        let catalogue = Arc::new(Catalogue::open(&config.db)?);
        let addr = config.bind;
        let other = |e| BindError::Other { addr, source: e };
        let sockets = bind_sockets(addr, config.workers)?;
        let local_addr = sockets[0].local_addr().map_err(other)?;
        let mut workers = Vec::with_capacity(sockets.len());
        let mut wakers = Vec::with_capacity(sockets.len());
        for std_socket in sockets {
            let poll = Poll::new().map_err(other)?;
            wakers.push(Waker::new(poll.registry(), WAKE).map_err(other)?);
            let mut socket = UdpSocket::from_std(std_socket);
            poll.registry()
                .register(&mut socket, SOCKET, Interest::READABLE)
                .map_err(other)?;
            workers.push(Worker { poll, socket });
        }
        let epoch = Instant::now();
        let shards = (16 * workers.len()).max(16);
        let metrics = UdpMetrics::new(workers.len());
        Ok(Tracker {
            workers,
            local_addr,
            registry: Arc::new(Registry::with_limits(
                config.peer_timeout,
                shards,
                epoch,
                Limits {
                    max_swarms: config.max_swarms,
                    ..Limits::default()
                },
            )),
            conn_ids: Arc::new(ConnectionIds::new(epoch)),
            tokens: Arc::new(AddressTokens::new(epoch)),
            stats: Arc::new(Stats::new(epoch)),
            stop: StopHandle {
                flag: Arc::new(AtomicBool::new(false)),
                wakers: Arc::new(wakers),
            },
            catalogue,
            metrics,
        })
    }

    /// The address actually bound (with the real port when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The catalogue (published torrents, completed counts, the event log),
    /// for the HTTP side. [`run`](Tracker::run) closes it when it returns.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.clone()
    }

    /// What the live view reads: the `STATS` window and the registry
    /// (see [`StatsView::swarm`]).
    pub fn stats_view(&self) -> StatsView {
        StatsView {
            stats: self.stats.clone(),
            registry: self.registry.clone(),
        }
    }

    /// The workers' datagram counters (for `/metrics`).
    pub fn metrics(&self) -> UdpMetrics {
        self.metrics.clone()
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves until [`StopHandle::stop`] is called, then commits what the
    /// catalogue has pending and stops its writer.
    pub fn run(self, config: &Config) -> io::Result<()> {
        let parts = self.workers.len();
        let mut threads = Vec::new();
        let mut workers = self.workers.into_iter().enumerate();
        let first = workers.next();
        // Each worker's handler, over the shared registry and keys.
        let new_handler = || {
            let mut h = Handler::new(
                self.registry.clone(),
                self.conn_ids.clone(),
                self.tokens.clone(),
                config,
            )
            .with_stats(self.stats.clone());
            h.set_recorder(self.catalogue.recorder());
            h
        };
        for (i, w) in workers {
            let handler = new_handler();
            let stop = self.stop.clone();
            let sweep_every = config.sweep_every();
            let counters = self.metrics.worker(i).unwrap_or_default();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tracker-worker-{i}"))
                    .spawn(move || w.run(handler, &counters, &stop, i, parts, sweep_every))?,
            );
        }
        let mut result = Ok(());
        if let Some((i, w)) = first {
            let handler = new_handler();
            let counters = self.metrics.worker(i).unwrap_or_default();
            result = w.run(
                handler,
                &counters,
                &self.stop,
                i,
                parts,
                config.sweep_every(),
            );
            if result.is_err() {
                // One worker failing takes the others down with it.
                self.stop.stop();
            }
        }
        for t in threads {
            match t.join() {
                Ok(r) => result = result.and(r),
                Err(_) => result = result.and(Err(io::Error::other("a worker thread panicked"))),
            }
        }
        self.catalogue.close();
        result
    }
}

impl Worker {
    fn run(
        mut self,
        mut handler: Handler,
        counters: &WorkerCounters,
        stop: &StopHandle,
        part: usize,
        parts: usize,
        sweep_every: Duration,
    ) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut rb = RecvBatch::default();
        let mut sb = SendBatch::default();
        let mut next_sweep = Instant::now() + sweep_every;
        loop {
            let timeout = next_sweep.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if stop.is_stopped() {
                return Ok(());
            }
            let mut errors = 0;
            let mut batches = 0u32;
            loop {
                match rb.recv(&self.socket) {
                    Ok(n) => {
                        let now = Instant::now();
                        for i in 0..n {
                            let Some((src, data)) = rb.get(i) else {
                                continue;
                            };
                            let out = sb.next_buf();
                            let replied = handler.handle(src, data, now, out);
                            counters.record(data, replied.then_some(out.as_slice()));
                            if replied {
                                sb.commit(&rb, i, &self.socket);
                            }
                        }
                        sb.flush(&self.socket);
                        batches = batches.wrapping_add(1);
                        // Under a flood the socket never drains: check for
                        // stop and sweep now and then anyway.
                        if batches & 63 == 0 {
                            if stop.is_stopped() {
                                return Ok(());
                            }
                            if now >= next_sweep {
                                handler.sweep(part, parts, now);
                                next_sweep = now + sweep_every;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // E.g. an ICMP error from an earlier reply; keep serving.
                        debug!("receive error: {e}");
                        errors += 1;
                        if errors > 64 {
                            warn!("many receive errors in a row, last: {e}");
                            break;
                        }
                    }
                }
            }
            let now = Instant::now();
            if now >= next_sweep {
                handler.sweep(part, parts, now);
                next_sweep = now + sweep_every;
            }
        }
    }
}
