//! `http-announce`: HTTP tracker announces (`GET /announce`) to the
//! tracker's web port over a few kept-alive connections, each with one
//! request in flight as a BitTorrent client has, driven from one thread
//! with mio. The tracker closes a connection after 1,000 requests; the
//! connection is then opened again, as a client would.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use minitorrent_common::http_tracker::{AnnounceRequest, Event};

use crate::args::Args;
use crate::packets::{bep15_peer_id, hash_of};
use crate::traffic::{measured, report, Outcome};

/// `GET /announce?…` of simulated peer `i`, as the BEP 15 announce mode's
/// peer `i` (same swarm, id, port and seeder or not).
fn announce_request(i: usize, files: usize, event: Event, out: &mut Vec<u8>) {
    let a = AnnounceRequest {
        info_hash: hash_of(i % files),
        peer_id: bep15_peer_id(i),
        port: 10_000 + (i % 50_000) as u16,
        uploaded: 0,
        downloaded: 0,
        left: if i % 3 == 1 { 0 } else { 1 << 20 },
        event,
        numwant: None,
        compact: true,
        no_peer_id: true,
    };
    out.clear();
    out.extend_from_slice(b"GET /announce?");
    out.extend_from_slice(a.to_query().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: tracker-load\r\nUser-Agent: tracker-load\r\n\r\n");
}

/// One kept-alive connection with at most one request in flight.
struct Conn {
    stream: TcpStream,
    /// The request being sent, and how much of it is written.
    out: Vec<u8>,
    written: usize,
    /// A request is written and its response not yet read.
    waiting: bool,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Counts {
    sent: u64,
    answered: u64,
    /// Answered with something else than `200` and a bencoded reply with
    /// peers (a `failure reason`, a `503`).
    refused: u64,
    reconnects: u64,
}

/// The length of the first whole response in `buf`, whether it is a good
/// announce reply, and whether the server closes after it.
fn whole_response(buf: &[u8]) -> Option<(usize, bool, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut len = 0;
    let mut close = false;
    for line in head.lines().skip(1) {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if n.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        } else if n.eq_ignore_ascii_case("connection") {
            close = v.trim().eq_ignore_ascii_case("close");
        }
    }
    let total = end + 4 + len;
    if buf.len() < total {
        return None;
    }
    let ok = head.starts_with("HTTP/1.1 200") && buf[end + 4..total].starts_with(b"d8:complete");
    Some((total, ok, close))
}

struct Driver {
    poll: Poll,
    addr: SocketAddr,
    conns: Vec<Conn>,
}

impl Driver {
    fn new(addr: SocketAddr, n: usize) -> anyhow::Result<Driver> {
        let poll = Poll::new()?;
        let mut d = Driver {
            poll,
            addr,
            conns: Vec::with_capacity(n),
        };
        for i in 0..n {
            let c = d.open(i)?;
            d.conns.push(c);
        }
        Ok(d)
    }

    fn open(&self, i: usize) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        self.poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(Conn {
            stream,
            out: Vec::with_capacity(512),
            written: 0,
            waiting: false,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes what is left of connection `i`'s request. A connection still
    /// opening is written to once it says it is writable.
    fn flush(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.conns[i];
        while c.written < c.out.len() {
            match c.stream.write(&c.out[c.written..]) {
                Ok(n) => c.written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    return Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues the next request on connection `i`, if `next` has one.
    fn send(
        &mut self,
        i: usize,
        next: &mut impl FnMut(&mut Vec<u8>) -> bool,
        n: &mut Counts,
    ) -> io::Result<()> {
        let c = &mut self.conns[i];
        if !next(&mut c.out) {
            return Ok(());
        }
        c.written = 0;
        c.waiting = true;
        n.sent += 1;
        self.flush(i)
    }

    /// Opens connection `i` again (the server closed it) and resends the
    /// request it was waiting for, if any.
    fn reopen(&mut self, i: usize, n: &mut Counts) -> io::Result<()> {
        let _ = self.poll.registry().deregister(&mut self.conns[i].stream);
        let fresh = self.open(i)?;
        let old = std::mem::replace(&mut self.conns[i], fresh);
        n.reconnects += 1;
        if old.waiting {
            let c = &mut self.conns[i];
            c.out = old.out;
            c.waiting = true;
            self.flush(i)?;
        }
        Ok(())
    }

    /// Reads what connection `i` has and handles every whole response.
    fn read(
        &mut self,
        i: usize,
        next: &mut impl FnMut(&mut Vec<u8>) -> bool,
        n: &mut Counts,
    ) -> io::Result<()> {
        let mut chunk = [0u8; 16 << 10];
        let mut closed = false;
        loop {
            match self.conns[i].stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(k) => self.conns[i].buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
                    ) =>
                {
                    closed = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        while let Some((len, ok, close)) = whole_response(&self.conns[i].buf) {
            let c = &mut self.conns[i];
            c.buf.drain(..len);
            c.waiting = false;
            c.out.clear();
            n.answered += 1;
            if !ok {
                n.refused += 1;
            }
            if close {
                closed = true;
                break;
            }
            self.send(i, next, n)?;
        }
        if closed {
            let was_idle = !self.conns[i].waiting;
            self.reopen(i, n)?;
            if was_idle {
                self.send(i, next, n)?;
            }
        }
        Ok(())
    }

    /// Keeps every connection busy with the requests `next` writes until
    /// it has no more and all are answered, or until `until`.
    fn run(
        &mut self,
        mut next: impl FnMut(&mut Vec<u8>) -> bool,
        until: Option<Instant>,
        give_up: Instant,
    ) -> anyhow::Result<Counts> {
        let mut n = Counts::default();
        for i in 0..self.conns.len() {
            self.send(i, &mut next, &mut n)?;
        }
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(n);
            }
            if self.conns.iter().all(|c| !c.waiting) {
                return Ok(n);
            }
            if now >= give_up {
                bail!(
                    "the tracker stopped answering: {} of {} requests answered",
                    n.answered,
                    n.sent
                );
            }
            match self.poll.poll(&mut events, Some(Duration::from_millis(10))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if ev.is_writable() {
                    self.flush(i)?;
                }
                if ev.is_readable() || ev.is_read_closed() {
                    self.read(i, &mut next, &mut n)?;
                }
            }
        }
    }
}

pub(crate) fn run_http_announce(args: &Args) -> anyhow::Result<()> {
    let web = args
        .web
        .context("http-announce needs --web ADDR:PORT (the tracker's web page)")?;
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let mut d = Driver::new(web, args.connections.max(1))
        .with_context(|| format!("cannot connect to {web}"))?;
    // Every peer announces once (started), so the swarms are full.
    let t0 = Instant::now();
    let mut k = 0;
    let setup = d.run(
        |out| {
            if k == peers {
                return false;
            }
            announce_request(k, files, Event::Started, out);
            k += 1;
            true
        },
        None,
        t0 + Duration::from_secs(110),
    )?;
    if setup.refused > 0 {
        bail!(
            "{} of {} setup announces were refused (is --web the tracker's web port?)",
            setup.refused,
            setup.answered
        );
    }
    println!(
        "announced {peers} peers in {files} swarms over HTTP in {:.2} s ({} connections)",
        t0.elapsed().as_secs_f64(),
        args.connections.max(1)
    );
    // Then random peers announce (no event), from a pool of pre-built
    // requests, as the BEP 15 mode does.
    let mut rng = fastrand::Rng::with_seed(42);
    let pool: Vec<Vec<u8>> = (0..65_536)
        .map(|_| {
            let mut out = Vec::new();
            announce_request(rng.usize(0..peers), files, Event::None, &mut out);
            out
        })
        .collect();
    let mut at = 0;
    let duration = Duration::from_secs_f64(args.duration);
    let mut counts = Counts::default();
    let o = measured(args, || {
        let start = Instant::now();
        let c = d
            .run(
                |out| {
                    out.clear();
                    out.extend_from_slice(&pool[at]);
                    at = (at + 1) % pool.len();
                    true
                },
                Some(start + duration),
                start + duration + Duration::from_secs(30),
            )
            .map_err(io::Error::other)?;
        let elapsed = start.elapsed();
        counts = c;
        // The few requests still in flight at the end are not lost.
        Ok(Outcome {
            sent: counts.answered,
            received: counts.answered,
            elapsed,
            tracker_cpu: None,
        })
    })?;
    report("HTTP announce", &o);
    println!(
        "  {} connections kept alive ({} reopened after the tracker's 1,000 requests each); \
         {} in flight at the end; {} refused",
        args.connections.max(1),
        counts.reconnects,
        counts.sent - counts.answered,
        counts.refused
    );
    if counts.refused > 0 {
        bail!("{} announces were refused", counts.refused);
    }
    Ok(())
}
