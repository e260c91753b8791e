//! `tracker-load`: a load generator for minitorrent-tracker. A benchmark tool,
//! not a test: it registers thousands of simulated peers, then keeps a window
//! of requests in flight from one thread over loopback for a fixed time and
//! prints replies per second and how many requests went unanswered.
//!
//! Run it through `scripts/bench-tracker.sh`, which pins the tracker and this
//! tool to different cores.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{FileInfo, FileRef, Reply, Request};
use minitorrent_common::udp_tracker as udp;
use minitorrent_tracker::config::Config;
use minitorrent_tracker::connection_id::ConnectionIds;
use minitorrent_tracker::handler::Handler;
use minitorrent_tracker::registry::Registry;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Parser, Debug)]
#[command(
    name = "tracker-load",
    about = "Load generator for minitorrent-tracker (benchmark)"
)]
struct Args {
    /// The tracker's address (its "listening on" line).
    #[arg(long)]
    tracker: SocketAddr,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Mode::Json)]
    mode: Mode,
    /// Simulated peers (each gets its own peer id; all share this host's IP).
    #[arg(long, default_value_t = 10_000)]
    peers: usize,
    /// Distinct files (swarms); each peer registers one.
    #[arg(long, default_value_t = 1_000)]
    files: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests kept in flight.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// The tracker's process id: report its CPU time per reply (from /proc).
    #[arg(long)]
    tracker_pid: Option<u32>,
    /// How `fill` registers peers.
    #[arg(long, value_enum, default_value_t = Via::Bep15)]
    via: Via,
    /// Percent of REQUEST, HEARTBEAT and REGISTER in the json mix.
    #[arg(long, default_value = "60,30,10")]
    mix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Via {
    Bep15,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// BEP 15: one connect, every peer announces once, then announces only
    /// (each peer to its own swarm, default num_want).
    Announce,
    /// BEP 15 connect requests only.
    Connect,
    /// Register --peers peers (via --via) and report the tracker's memory
    /// (VmRSS, needs --tracker-pid) per peer. Run the tracker with a long
    /// --peer-timeout so nobody expires meanwhile.
    Fill,
    /// The JSON protocol: REQUEST / HEARTBEAT / REGISTER mix.
    Json,
    /// The JSON mix fed straight to the tracker's request handler in this
    /// process, without sockets: the user-space cost per request. `--tracker`
    /// is ignored.
    Handler,
    /// BEP 15 announces (as in `announce`) fed straight to the tracker's
    /// request handler in this process, without sockets. `--tracker` is
    /// ignored.
    HandlerAnnounce,
    /// BEP 15 scrapes of 10 random swarms each (after the announces of
    /// `announce`) fed straight to the tracker's request handler in this
    /// process, without sockets. `--tracker` is ignored.
    HandlerScrape,
}

fn hash_of(file: usize) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&(file as u64).to_be_bytes());
    h[8..16].copy_from_slice(
        &(file as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_le_bytes(),
    );
    InfoHash(h)
}

fn peer_id(i: usize) -> String {
    format!("-LD0001-{i:012}")
}

fn open_socket(tracker: SocketAddr) -> anyhow::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(tracker),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    let local: SocketAddr = if tracker.is_ipv4() {
        "127.0.0.1:0".parse()?
    } else {
        "[::1]:0".parse()?
    };
    socket.bind(&local.into())?;
    socket.connect(&tracker.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Sends packet `i` (written by `make`) for every `i < n` until each has a
/// reply whose transaction id (read by `tid_of`) is `i`: a window at a time,
/// resending what got lost.
fn send_all_reliably(
    sock: &UdpSocket,
    n: usize,
    window: usize,
    make: impl Fn(usize, &mut Vec<u8>),
    tid_of: impl Fn(&[u8]) -> Option<u32>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 70_000];
    let mut packet = Vec::with_capacity(256);
    let mut done = vec![false; n];
    let mut remaining = n;
    let deadline = Instant::now() + Duration::from_secs(110);
    while remaining > 0 {
        if Instant::now() > deadline {
            bail!("setup timed out with {remaining} of {n} requests unanswered");
        }
        let pending: Vec<usize> = (0..n).filter(|&i| !done[i]).collect();
        for chunk in pending.chunks(window.max(1)) {
            for &i in chunk {
                packet.clear();
                make(i, &mut packet);
                send_blocking(sock, &packet)?;
            }
            let wait_until = Instant::now() + Duration::from_millis(200);
            let mut got = 0;
            while got < chunk.len() && Instant::now() < wait_until {
                match sock.recv(&mut buf) {
                    Ok(len) => {
                        if let Some(tid) = tid_of(&buf[..len]) {
                            let i = tid as usize;
                            if i < n && !done[i] {
                                done[i] = true;
                                remaining -= 1;
                                got += 1;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

fn json_ok_tid(reply: &[u8]) -> Option<u32> {
    match Reply::decode(reply) {
        Ok(Reply::Ok { tid, .. }) => Some(tid),
        _ => None,
    }
}

fn bep15_announce_tid(reply: &[u8]) -> Option<u32> {
    // Announce replies only: action 1 in bytes 0-3, transaction id in 4-7.
    (reply.len() >= 20 && reply[..4] == [0, 0, 0, 1])
        .then(|| u32::from_be_bytes([reply[4], reply[5], reply[6], reply[7]]))
}

fn send_blocking(sock: &UdpSocket, bytes: &[u8]) -> io::Result<()> {
    loop {
        match sock.send(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
}

struct Outcome {
    sent: u64,
    received: u64,
    elapsed: Duration,
    /// CPU seconds the tracker spent during the run, when its pid is known.
    tracker_cpu: Option<f64>,
}

const BATCH: usize = 32;
const REPLY_SLOT: usize = 4096;

/// Sends `pool[next..]` (wrapping) with one `sendmmsg`, at most `max`.
/// Returns how many the kernel took.
fn send_batch(
    sock: &UdpSocket,
    pool: &[Vec<u8>],
    next: &mut usize,
    max: usize,
) -> io::Result<usize> {
    let count = max.min(BATCH);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero iovec/mmsghdr are valid; the pointers target `pool`,
    // which outlives the call and is only read by the kernel.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut j = *next;
    for i in 0..count {
        iovs[i].iov_base = pool[j].as_ptr() as *mut libc::c_void;
        iovs[i].iov_len = pool[j].len();
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
        j = (j + 1) % pool.len();
    }
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        };
    }
    *next = (*next + n as usize) % pool.len();
    Ok(n as usize)
}

/// Receives up to BATCH replies with one `recvmmsg`; returns how many.
fn recv_batch(sock: &UdpSocket, bufs: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as in send_batch; the pointers target `bufs` (BATCH slots).
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovs[i].iov_base = bufs[i * REPLY_SLOT..].as_mut_ptr().cast();
        iovs[i].iov_len = REPLY_SLOT;
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

/// Cycles through `pool` keeping up to `window` requests unanswered, for
/// `duration`; then waits a moment for stragglers.
fn blast(
    sock: &UdpSocket,
    pool: &[Vec<u8>],
    window: usize,
    duration: Duration,
) -> io::Result<Outcome> {
    let mut bufs = vec![0u8; BATCH * REPLY_SLOT];
    let (mut sent, mut received, mut written_off) = (0u64, 0u64, 0u64);
    let mut next = 0;
    let start = Instant::now();
    let mut last_progress = start;
    loop {
        let now = Instant::now();
        if now - start >= duration {
            break;
        }
        let room = (window as u64).saturating_sub(sent - received - written_off) as usize;
        sent += send_batch(sock, pool, &mut next, room)? as u64;
        let got = recv_batch(sock, &mut bufs)?;
        if got > 0 {
            received += got as u64;
            last_progress = now;
        } else if now - last_progress > Duration::from_millis(50) {
            // A full window with no reply for a while: the rest was lost.
            written_off = sent - received;
            last_progress = now;
        }
    }
    let elapsed = start.elapsed();
    let tail = Instant::now() + Duration::from_millis(300);
    while Instant::now() < tail {
        match recv_batch(sock, &mut bufs)? {
            0 => std::thread::sleep(Duration::from_millis(1)),
            n => received += n as u64,
        }
    }
    Ok(Outcome {
        sent,
        received,
        elapsed,
        tracker_cpu: None,
    })
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

/// CPU seconds (user + system) the process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of those.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / if hz > 0.0 { hz } else { 100.0 })
}

fn report(what: &str, o: &Outcome) {
    let secs = o.elapsed.as_secs_f64();
    let lost = o.sent.saturating_sub(o.received);
    println!(
        "{what}: {} requests, {} replies in {:.2} s = {:.0} replies/s; lost {} ({:.3}%)",
        o.sent,
        o.received,
        secs,
        o.received as f64 / secs,
        lost,
        if o.sent > 0 {
            lost as f64 * 100.0 / o.sent as f64
        } else {
            0.0
        }
    );
    if let Some(cpu) = o.tracker_cpu {
        if o.received > 0 && cpu > 0.0 {
            let per = cpu / o.received as f64;
            println!(
                "  tracker CPU: {:.2} s busy of {:.2} s ({:.0}%), {:.2} us per reply = {:.0} replies/s per fully used core",
                cpu,
                secs,
                cpu * 100.0 / secs,
                per * 1e6,
                1.0 / per
            );
        }
    }
}

fn register_request(tid: u32, i: usize, files: usize) -> Request {
    let file = i % files;
    Request::Register {
        tid,
        peer_id: peer_id(i),
        port: 10_000 + (i % 50_000) as u16,
        files: vec![FileInfo {
            info_hash: hash_of(file),
            name: format!("file-{file:06}.bin"),
            size: 1 << 20,
            complete: i % 3 == 1,
        }],
    }
}

fn run_json(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
    let mix = parse_mix(&args.mix)?;
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let t0 = Instant::now();
    send_all_reliably(
        sock,
        peers,
        args.window,
        |i, out| register_request(i as u32, i, files).encode_into(out),
        json_ok_tid,
    )?;
    println!(
        "registered {peers} peers in {files} swarms in {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    let pool = json_pool(&mix, peers, files);
    let o = measured(args, || {
        blast(
            sock,
            &pool,
            args.window,
            Duration::from_secs_f64(args.duration),
        )
    })?;
    report(&format!("json mix {}", args.mix), &o);
    Ok(())
}

fn parse_mix(mix: &str) -> anyhow::Result<Vec<u32>> {
    let mix: Vec<u32> = mix
        .split(',')
        .map(|s| s.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .context("--mix must be three numbers, e.g. 60,30,10")?;
    if mix.len() != 3 || mix.iter().sum::<u32>() == 0 {
        bail!("--mix must be three numbers with a positive sum, e.g. 60,30,10");
    }
    Ok(mix)
}

/// 65536 pre-encoded requests in the proportions of `mix`.
fn json_pool(mix: &[u32], peers: usize, files: usize) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(42);
    let total: u32 = mix.iter().sum();
    (0..65_536u32)
        .map(|k| {
            let tid = 1_000_000 + k;
            let i = rng.usize(0..peers);
            let roll = rng.u32(0..total);
            let req = if roll < mix[0] {
                Request::Request {
                    tid,
                    file: FileRef::InfoHash(hash_of(rng.usize(0..files))),
                    peer_id: Some(peer_id(i)),
                }
            } else if roll < mix[0] + mix[1] {
                Request::Heartbeat {
                    tid,
                    peer_id: peer_id(i),
                }
            } else {
                register_request(tid, i, files)
            };
            req.encode()
        })
        .collect()
}

/// The 20-byte BEP 15 peer id of simulated peer `i` (printable, so it shows
/// as itself in JSON replies).
fn bep15_peer_id(i: usize) -> [u8; 20] {
    let mut id = [0u8; 20];
    id.copy_from_slice(peer_id(i).as_bytes());
    id
}

fn bep15_connect(sock: &UdpSocket) -> anyhow::Result<u64> {
    let req = udp::Request::Connect {
        transaction_id: 0x00c0_ffee,
    }
    .encode();
    let mut buf = [0u8; 64];
    for _ in 0..20 {
        send_blocking(sock, &req)?;
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if let Ok(udp::Response::Connect {
                        transaction_id: 0x00c0_ffee,
                        connection_id,
                    }) = udp::Response::decode(&buf[..n], false)
                    {
                        return Ok(connection_id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    bail!("the tracker does not answer BEP 15 connect")
}

fn announce_packet(connection_id: u64, tid: u32, i: usize, files: usize, out: &mut Vec<u8>) {
    udp::Request::Announce(udp::AnnounceRequest {
        connection_id,
        transaction_id: tid,
        info_hash: hash_of(i % files),
        peer_id: bep15_peer_id(i),
        downloaded: 0,
        left: if i % 3 == 1 { 0 } else { 1 << 20 },
        uploaded: 0,
        event: udp::Event::None,
        ip: Ipv4Addr::UNSPECIFIED,
        key: i as u32,
        num_want: -1,
        port: 10_000 + (i % 50_000) as u16,
    })
    .encode_into(out)
}

fn run_announce(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let cid = bep15_connect(sock)?;
    let t0 = Instant::now();
    send_all_reliably(
        sock,
        peers,
        args.window,
        |i, out| announce_packet(cid, i as u32, i, files, out),
        bep15_announce_tid,
    )?;
    println!(
        "announced {peers} peers in {files} swarms in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let mut rng = fastrand::Rng::with_seed(42);
    let pool: Vec<Vec<u8>> = (0..65_536u32)
        .map(|k| {
            let mut p = Vec::with_capacity(udp::ANNOUNCE_LEN);
            announce_packet(cid, k, rng.usize(0..peers), files, &mut p);
            p
        })
        .collect();
    // Connection ids live two minutes; the setup took some of that.
    let secs = args
        .duration
        .min(100.0 - t0.elapsed().as_secs_f64())
        .max(1.0);
    let o = measured(args, || {
        blast(sock, &pool, args.window, Duration::from_secs_f64(secs))
    })?;
    report("BEP 15 announce", &o);
    Ok(())
}

fn run_connect(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
    let pool: Vec<Vec<u8>> = (0..4096u32)
        .map(|k| udp::Request::Connect { transaction_id: k }.encode())
        .collect();
    let o = measured(args, || {
        blast(
            sock,
            &pool,
            args.window,
            Duration::from_secs_f64(args.duration),
        )
    })?;
    report("BEP 15 connect", &o);
    Ok(())
}

/// Resident memory of a process in bytes, from /proc/PID/status.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn run_fill(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
    let Some(pid) = args.tracker_pid else {
        bail!("fill needs --tracker-pid to read the tracker's memory");
    };
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let before = rss_bytes(pid).context("cannot read the tracker's VmRSS")?;
    let t0 = Instant::now();
    match args.via {
        Via::Bep15 => {
            let cid = bep15_connect(sock)?;
            send_all_reliably(
                sock,
                peers,
                args.window,
                |i, out| announce_packet(cid, i as u32, i, files, out),
                bep15_announce_tid,
            )?;
        }
        Via::Json => send_all_reliably(
            sock,
            peers,
            args.window,
            |i, out| register_request(i as u32, i, files).encode_into(out),
            json_ok_tid,
        )?,
    }
    let took = t0.elapsed().as_secs_f64();
    // Let the tracker finish what is queued before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes(pid).context("cannot read the tracker's VmRSS")?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "registered {peers} peers via {:?} in {files} swarms in {took:.1} s ({:.0}/s)",
        args.via,
        peers as f64 / took
    );
    println!(
        "tracker VmRSS: {:.1} MiB before, {:.1} MiB after: {:.0} bytes per peer added ({:.0} bytes per peer of the whole process)",
        mib(before),
        mib(after),
        after.saturating_sub(before) as f64 / peers as f64,
        after as f64 / peers as f64
    );
    Ok(())
}

/// The tracker's request handler in this process, without sockets, over a
/// fresh registry: what the handler modes measure.
fn local_handler() -> Handler {
    let config = Config::default();
    let registry = Arc::new(Registry::new(config.peer_timeout, 16, Instant::now()));
    let conn_ids = Arc::new(ConnectionIds::new(Instant::now()));
    Handler::new(registry, conn_ids, &config)
}

/// The address the handler modes' requests come from.
const LOCAL_SRC: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);

fn run_handler(args: &Args) -> anyhow::Result<()> {
    let mix = parse_mix(&args.mix)?;
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let mut handler = local_handler();
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
    let pool = json_pool(&mix, peers, files);
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
fn announced_handler(peers: usize, files: usize) -> anyhow::Result<(Handler, u64)> {
    let mut handler = local_handler();
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

fn run_handler_announce(args: &Args) -> anyhow::Result<()> {
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let (mut handler, cid) = announced_handler(peers, files)?;
    let mut rng = fastrand::Rng::with_seed(42);
    let pool: Vec<Vec<u8>> = (0..65_536u32)
        .map(|k| {
            let mut p = Vec::with_capacity(udp::ANNOUNCE_LEN);
            announce_packet(cid, k, rng.usize(0..peers), files, &mut p);
            p
        })
        .collect();
    let t = time_chunks(&mut handler, &pool, args.duration);
    println!(
        "handler only, BEP 15 announce: {} requests in {:.2} s ({:.2} s CPU) = {:.3} us CPU each, {:.0} reply bytes avg",
        t.requests,
        t.secs,
        t.cpu,
        t.cpu * 1e6 / t.requests as f64,
        t.bytes as f64 / t.requests as f64
    );
    Ok(())
}

/// Info hashes in each scrape of `handler-scrape`.
const SCRAPE_HASHES: usize = 10;

fn run_handler_scrape(args: &Args) -> anyhow::Result<()> {
    let (peers, files) = (args.peers.max(1), args.files.max(1));
    let (mut handler, cid) = announced_handler(peers, files)?;
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
    let t = time_chunks(&mut handler, &pool, args.duration);
    println!(
        "handler only, BEP 15 scrape of {SCRAPE_HASHES} swarms: {} requests in {:.2} s ({:.2} s CPU) = {:.3} us CPU each, {:.0} reply bytes avg",
        t.requests,
        t.secs,
        t.cpu,
        t.cpu * 1e6 / t.requests as f64,
        t.bytes as f64 / t.requests as f64
    );
    Ok(())
}

/// What [`time_chunks`] measured.
struct Timed {
    requests: u64,
    bytes: u64,
    secs: f64,
    cpu: f64,
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

/// Runs `f`, adding the tracker's CPU time over the measured part.
fn measured(args: &Args, f: impl FnOnce() -> io::Result<Outcome>) -> io::Result<Outcome> {
    let before = args.tracker_pid.and_then(cpu_seconds);
    let mut o = f()?;
    // The 300 ms tail after the run is idle for the tracker; fine to include.
    let after = args.tracker_pid.and_then(cpu_seconds);
    if let (Some(b), Some(a)) = (before, after) {
        o.tracker_cpu = Some(a - b);
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == Mode::Handler {
        return run_handler(&args);
    }
    if args.mode == Mode::HandlerAnnounce {
        return run_handler_announce(&args);
    }
    if args.mode == Mode::HandlerScrape {
        return run_handler_scrape(&args);
    }
    let sock = open_socket(args.tracker)?;
    match args.mode {
        Mode::Json => run_json(&args, &sock),
        Mode::Announce => run_announce(&args, &sock),
        Mode::Connect => run_connect(&args, &sock),
        Mode::Fill => run_fill(&args, &sock),
        Mode::Handler | Mode::HandlerAnnounce | Mode::HandlerScrape => Ok(()),
    }
}
