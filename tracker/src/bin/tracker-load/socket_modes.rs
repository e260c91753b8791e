//! The modes that load a running tracker over loopback: the JSON mix, BEP 15
//! announces and connects, and filling it to measure its memory.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use minitorrent_common::udp_tracker as udp;

use crate::args::{Args, Via};
use crate::packets::{
    announce_packet, announce_pool, bep15_announce_tid, json_ok_tid, json_pool, parse_mix,
    register_request,
};
use crate::traffic::{bep15_connect, blast, json_token, measured, report, send_all_reliably};

pub(crate) fn run_json(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
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

    let token = json_token(sock)?;
    let pool = json_pool(&mix, peers, files, Some(token));
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

pub(crate) fn run_announce(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
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
    let pool = announce_pool(cid, peers, files);
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

pub(crate) fn run_connect(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
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

pub(crate) fn run_fill(args: &Args, sock: &UdpSocket) -> anyhow::Result<()> {
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
