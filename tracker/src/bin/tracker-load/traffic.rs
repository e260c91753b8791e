//! The load generator's side of the socket: connecting, sending every setup
//! request until it is answered, and keeping a window of requests in flight
//! with `sendmmsg`/`recvmmsg` while counting replies and the tracker's CPU.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::bail;
use minitorrent_common::tracker_proto::{Reply, Request, Token};
use minitorrent_common::udp_tracker as udp;
use socket2::{Domain, Protocol, Socket, Type};

use crate::args::Args;

pub(crate) fn open_socket(tracker: SocketAddr) -> anyhow::Result<UdpSocket> {
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
pub(crate) fn send_all_reliably(
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

fn send_blocking(sock: &UdpSocket, bytes: &[u8]) -> io::Result<()> {
    loop {
        match sock.send(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn bep15_connect(sock: &UdpSocket) -> anyhow::Result<u64> {
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

/// A JSON address token for this socket's address, from the `OK` to a
/// `HEARTBEAT` of simulated peer 0 (registered by then): the JSON mix
/// sends it so that its `PEERS` replies, larger than 3 times a `REQUEST`,
/// are answered as a real peer's are.
pub(crate) fn json_token(sock: &UdpSocket) -> anyhow::Result<Token> {
    let req = Request::Heartbeat {
        tid: 0x00c0_ffee,
        peer_id: crate::packets::peer_id(0),
    }
    .encode();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..20 {
        send_blocking(sock, &req)?;
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if let Ok((r, Some(token))) = Reply::decode_with_token(&buf[..n]) {
                        if r.tid() == Some(0x00c0_ffee) {
                            return Ok(token);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    bail!(
        "the tracker hands out no JSON token (an OK without `token`: is it older than this tool?)"
    )
}

pub(crate) struct Outcome {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) elapsed: Duration,
    /// CPU seconds the tracker spent during the run, when its pid is known.
    pub(crate) tracker_cpu: Option<f64>,
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
pub(crate) fn blast(
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

/// Runs `f`, adding the tracker's CPU time over the measured part.
pub(crate) fn measured(
    args: &Args,
    f: impl FnOnce() -> io::Result<Outcome>,
) -> io::Result<Outcome> {
    let before = args.tracker_pid.and_then(cpu_seconds);
    let mut o = f()?;
    // The 300 ms tail after the run is idle for the tracker; fine to include.
    let after = args.tracker_pid.and_then(cpu_seconds);
    if let (Some(b), Some(a)) = (before, after) {
        o.tracker_cpu = Some(a - b);
    }
    Ok(o)
}

pub(crate) fn report(what: &str, o: &Outcome) {
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
