//! The modes that feed the tracker's request handler in this process, without
//! sockets: the user-space cost per request, steadier than a run over loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use minitorrent_common::tracker_proto::Reply;
use minitorrent_common::udp_tracker as udp;
use minitorrent_tracker::catalogue::{Catalogue, DbLocation};
use minitorrent_tracker::config::Config;
use minitorrent_tracker::connection_id::ConnectionIds;
use minitorrent_tracker::handler::Handler;
use minitorrent_tracker::registry::Registry;
use minitorrent_tracker::token::AddressTokens;

use crate::args::Args;
use crate::packets::{
    announce_packet, announce_pool, hash_of, json_pool, parse_mix, register_request,
};

/// The tracker's request handler in this process, without sockets, over a
/// fresh registry: what the handler modes measure. With `--db`, it feeds a
/// catalogue there (its writer thread runs beside), as the tracker does.
fn local_handler(db: Option<&str>) -> anyhow::Result<Handler> {
    let config = Config::default();
    let registry = Arc::new(Registry::new(config.peer_timeout, 16, Instant::now()));
    let conn_ids = Arc::new(ConnectionIds::new(Instant::now()));
    let tokens = Arc::new(AddressTokens::new(Instant::now()));
    let mut handler = Handler::new(registry, conn_ids, tokens, &config);
    if let Some(db) = db {
        let catalogue = Catalogue::open(&DbLocation::parse(db))?;
        handler.set_recorder(catalogue.recorder());
        // Lives until the process ends, like the tracker's.
        std::mem::forget(catalogue);
    }
    Ok(handler)
}

/// The address the handler modes' requests come from.
const LOCAL_SRC: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

pub(crate) fn run_handler(args: &Args) -> anyhow::Result<()> {
    let mix = parse_mix(&args.mix)?;
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let mut handler = local_handler(args.db.as_deref())?;
    let src = LOCAL_SRC;
    let mut out = Vec::with_capacity(65536);
    for i in 0..peers {
        handler.handle(
            src,
            &register_request(i as u32, i, files).encode(),
            Instant::now(),
            &mut out,
        );
    }
    // The token of the last OK: the mix sends it, as a peer does.
    let token = Reply::decode_with_token(&out).ok().and_then(|(_, t)| t);
    let pool = json_pool(&mix, peers, files, token);
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while start.elapsed().as_secs_f64() < args.duration {
        let now = Instant::now();
        for d in pool.iter().take(4096) {
            handler.handle(src, d, now, &mut out);
            bytes += out.len() as u64;
        }
        n += 4096;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds() - cpu_start;
    println!(
        "handler only, json mix {}: {n} requests in {secs:.2} s ({cpu:.2} s CPU) = {:.2} us CPU each, {:.0} reply bytes avg",
        args.mix,
        cpu * 1e6 / n as f64,
        bytes as f64 / n as f64
    );
    Ok(())
}

/// [`local_handler`] after every peer announced once (as in `announce`),
/// and the connection id it issued.
fn announced_handler(
    peers: usize,
    files: usize,
    db: Option<&str>,
) -> anyhow::Result<(Handler, u64)> {
    let mut handler = local_handler(db)?;
    let mut out = Vec::with_capacity(65536);
    let connect = udp::Request::Connect { transaction_id: 1 }.encode();
    if !handler.handle(LOCAL_SRC, &connect, Instant::now(), &mut out) {
        bail!("the handler did not answer a connect");
    }
    let cid = match udp::Response::decode(&out, false)? {
        udp::Response::Connect { connection_id, .. } => connection_id,
        r => bail!("unexpected reply to connect: {r:?}"),
    };
    let mut p = Vec::with_capacity(udp::ANNOUNCE_LEN);
    for i in 0..peers {
        p.clear();
        announce_packet(cid, i as u32, i, files, &mut p);
        handler.handle(LOCAL_SRC, &p, Instant::now(), &mut out);
    }
    Ok((handler, cid))
}

pub(crate) fn run_handler_announce(args: &Args) -> anyhow::Result<()> {
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let (mut handler, cid) = announced_handler(peers, files, args.db.as_deref())?;
    let pool = announce_pool(cid, peers, files);
    time_chunks(&mut handler, &pool, args.duration).print("BEP 15 announce");
    Ok(())
}

/// Info hashes in each scrape of `handler-scrape`.
const SCRAPE_HASHES: usize = 10;

pub(crate) fn run_handler_scrape(args: &Args) -> anyhow::Result<()> {
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let (mut handler, cid) = announced_handler(peers, files, args.db.as_deref())?;
    let mut rng = fastrand::Rng::with_seed(42);
    let pool: Vec<Vec<u8>> = (0..65_536u32)
        .map(|k| {
            udp::Request::Scrape {
                connection_id: cid,
                transaction_id: k,
                info_hashes: (0..SCRAPE_HASHES)
                    .map(|_| hash_of(rng.usize(0..files)))
                    .collect(),
            }
            .encode()
        })
        .collect();
    time_chunks(&mut handler, &pool, args.duration)
        .print(&format!("BEP 15 scrape of {SCRAPE_HASHES} swarms"));
    Ok(())
}

/// What [`time_chunks`] measured.
struct Timed {
    requests: u64,
    bytes: u64,
    secs: f64,
    cpu: f64,
}

impl Timed {
    fn print(&self, what: &str) {
        println!(
            "handler only, {what}: {} requests in {:.2} s ({:.2} s CPU) = {:.3} us CPU each, {:.0} reply bytes avg",
            self.requests,
            self.secs,
            self.cpu,
            self.cpu * 1e6 / self.requests as f64,
            self.bytes as f64 / self.requests as f64
        );
    }
}

/// Answers `pool` 4,096 packets at a time, cycling through it, for `secs`
/// (at most 100: connection ids live two minutes). Runs at least one chunk,
/// so `--duration 0` makes a fixed amount of work (for instruction counts
/// under valgrind: --toggle-collect=*answer_chunk*).
fn time_chunks(handler: &mut Handler, pool: &[Vec<u8>], secs: f64) -> Timed {
    let secs = secs.min(100.0);
    let mut out = Vec::with_capacity(65536);
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut requests = 0u64;
    let mut bytes = 0u64;
    let mut k = 0;
    loop {
        bytes += answer_chunk(handler, LOCAL_SRC, &pool[k..k + 4096], &mut out);
        k = (k + 4096) % pool.len();
        requests += 4096;
        if start.elapsed().as_secs_f64() >= secs {
            break;
        }
    }
    Timed {
        requests,
        bytes,
        secs: start.elapsed().as_secs_f64(),
        cpu: thread_cpu_seconds() - cpu_start,
    }
}

/// Answers `packets`; returns the reply bytes.
#[inline(never)]
fn answer_chunk(
    handler: &mut Handler,
    src: SocketAddr,
    packets: &[Vec<u8>],
    out: &mut Vec<u8>,
) -> u64 {
    let now = Instant::now();
    let mut bytes = 0;
    for d in packets {
        if handler.handle(src, d, now, out) {
            bytes += out.len() as u64;
        }
    }
    bytes
}

/// CPU seconds this thread has used (excludes time other processes had the core).
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
