//! Hostile peers that try to exhaust a seeder's memory or threads, or to
//! derail a magnet download: the seeder stays small and keeps serving, and
//! downloads complete. The hostile peers are written here with std::net and
//! the shared wire codecs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::wire::{self, ExtHandshake, Handshake, Message, MetadataMsg};

fn peer_id(tag: &str) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    let tag = format!("{tag}{:05}", fastrand::u32(..100_000));
    id[8..8 + tag.len().min(12)].copy_from_slice(&tag.as_bytes()[..tag.len().min(12)]);
    id
}

#[test]
fn a_peer_flooding_metadata_requests_without_reading_costs_bounded_memory() {
    // 4 MiB in 16 KiB pieces: a 5 KB info dictionary, so each 30-byte
    // request asks for 170 times its size.
    let sw = swarm("mdrss", 4 << 20, 16 * 1024);
    let port = sw.seeder.port();
    let pid = sw.seeder.child.id();
    let rss_before = proc_status(pid, "VmRSS");

    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&Handshake::new(sw.ih, peer_id("flood")).encode())
        .unwrap();
    let mut ext = ExtHandshake::default();
    ext.m.insert("ut_metadata".into(), 3);
    c.write_all(&frame(&Message::Extended {
        id: 0,
        payload: ext.encode(),
    }))
    .unwrap();
    let req = frame(&Message::Extended {
        id: wire::UT_METADATA_ID,
        payload: MetadataMsg::Request { piece: 0 }.encode(),
    });
    let burst: Vec<u8> = req.iter().copied().cycle().take(req.len() * 2000).collect();
    // Writes requests for a few seconds and never reads.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    c.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let flooder = std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0usize;
        while !stop2.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(4) {
            match c.write(&burst) {
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        sent
    });
    let mut peak = 0;
    while !flooder.is_finished() {
        let rss = proc_status(pid, "VmRSS");
        peak = peak.max(rss);
        if rss > rss_before + 64 * 1024 {
            stop.store(true, Ordering::SeqCst);
            let _ = flooder.join();
            panic!("seeder VmRSS {rss} kB (was {rss_before} kB) under a metadata flood");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = flooder.join().unwrap();
    let rss = proc_status(pid, "VmRSS");
    assert!(
        rss < rss_before + 64 * 1024,
        "seeder VmRSS {rss} kB (was {rss_before} kB) after {sent} bytes of requests"
    );
    eprintln!("flood: {sent} bytes of requests sent; seeder VmRSS {rss_before} -> peak {peak} kB");
    // The seeder still serves a normal leecher, magnet and all.
    sw.leech_ok("l", &sw.magnet);
}

#[test]
fn a_handshake_sent_one_byte_every_two_seconds_is_cut_off() {
    let sw = swarm("loris", 100_000, 16 * 1024);
    let port = sw.seeder.port();
    let hs = Handshake::new(sw.ih, peer_id("loris")).encode();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    for b in hs.iter().take(hs.len() - 1) {
        if c.write_all(&[*b]).is_err() || closed_within(&mut c, Duration::from_secs(2)) {
            let took = started.elapsed();
            assert!(took < Duration::from_secs(13), "closed only after {took:?}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still open after 15 s of a trickling handshake"
        );
    }
    panic!("the seeder waited for the whole trickling handshake");
}

#[test]
fn a_flood_of_silent_connections_costs_no_thread_each_and_locks_nobody_out() {
    let sw = swarm("silent", 1 << 20, 16 * 1024);
    let port = sw.seeder.port();
    let pid = sw.seeder.child.id();
    let threads_before = proc_status(pid, "Threads");
    let mut silent: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // All but the last few are closed at once (refused, or evicted by the
    // next one), long before any handshake timeout.
    let mut closed = 0;
    for s in silent.iter_mut().take(250) {
        if closed_within(s, Duration::from_secs(5)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 250, "silent connections kept open");
    // The threads of the closed ones are on their way out; well before
    // any handshake timeout (10 s), few are left.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let threads = proc_status(pid, "Threads");
        if threads < threads_before + 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{threads} threads (were {threads_before}) with 300 silent connections"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Someone keeps opening silent connections while a real leecher comes.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let opener = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                silent.push(s);
            }
            if silent.len() > 400 {
                silent.drain(..100);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    sw.leech_ok("l", sw.torrent.to_str().unwrap());
    stop.store(true, Ordering::SeqCst);
    opener.join().unwrap();
}

#[test]
fn a_peer_announcing_a_false_metadata_size_does_not_stop_a_magnet_download() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("mdlie");
    let s = tmp.sub("s");
    let data = s.join("f.bin");
    let size = 600_000;
    write_random(&data, size);
    let torrent = tmp.join("f.torrent");
    let magnet = create_torrent(&data, &torrent, &tracker, 16 * 1024);
    let ih = metainfo_of(&torrent).info_hash;

    // The liar: claims a 100-byte info dictionary and never sends it. It
    // is the only peer the leecher knows at first, so its size is the
    // first one offered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let liar_port = listener.local_addr().unwrap().port();
    let (asked_tx, asked_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { return };
            let asked_tx = asked_tx.clone();
            std::thread::spawn(move || {
                let mut hs = [0u8; wire::HANDSHAKE_LEN];
                if c.read_exact(&mut hs).is_err() {
                    return;
                }
                let mut ext = ExtHandshake::default();
                ext.m.insert("ut_metadata".into(), 3);
                ext.metadata_size = Some(100);
                let mut out = Handshake::new(ih, peer_id("liar")).encode().to_vec();
                out.extend(frame(&Message::Extended {
                    id: 0,
                    payload: ext.encode(),
                }));
                if c.write_all(&out).is_err() {
                    return;
                }
                while let Ok(m) = read_msg(&mut c) {
                    if matches!(m, Message::Extended { id: 3, .. }) {
                        let _ = asked_tx.send(());
                    }
                }
            });
        }
    });
    register_seeder(
        &tracker,
        ih,
        "-XX0000-liar00000000",
        "f.bin",
        size,
        liar_port,
    );
    let l = tmp.sub("l");
    let mut g = start_get("leecher", &tracker, &magnet, &l, &[]);
    asked_rx
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("the leecher never asked the liar\n{}", g.dump()));
    // Only now does the honest seeder appear.
    let _seeder = seed_torrent("seeder", &tracker, &torrent, &s, &[]);
    let st = g.wait(TIMEOUT);
    assert!(st.success(), "get failed: {st}\n{}", g.dump());
    assert_same_file(&data, &l.join("f.bin"));
}

#[test]
fn a_banned_peer_cannot_come_back_under_another_listen_port() {
    let tracker = Tracker::start();
    let tmp = TempDir::new("reban");
    let s = tmp.sub("s");
    let data = s.join("f.bin");
    write_random(&data, 200_000);
    let torrent = tmp.join("f.torrent");
    create_torrent(&data, &torrent, &tracker, 16 * 1024);
    let ih = metainfo_of(&torrent).info_hash;
    let t = tracker.arg();
    let seeder = Proc::spawn(
        "seeder",
        &minitorrent_bin(),
        &[
            "seed",
            torrent.to_str().unwrap(),
            "--dir",
            s.to_str().unwrap(),
            "--tracker",
            &t,
        ],
        &[("RUST_LOG", "debug")],
        false,
    );
    seeder
        .out
        .wait_match(|l| l.starts_with("seeding "), TIMEOUT)
        .unwrap_or_else(|| panic!("seeder did not start\n{}", seeder.dump()));
    let port = seeder.port();
    let id = peer_id("reban");
    // The connection, or None if the seeder closed it during the handshake.
    let hello = |listen_port: u16| -> Option<TcpStream> {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&Handshake::new(ih, id).encode()).ok()?;
        let mut hs = [0u8; wire::HANDSHAKE_LEN];
        c.read_exact(&mut hs).ok()?;
        let ext = ExtHandshake {
            p: Some(listen_port),
            ..Default::default()
        };
        c.write_all(&frame(&Message::Extended {
            id: 0,
            payload: ext.encode(),
        }))
        .ok()?;
        Some(c)
    };
    // A protocol violation (a bitfield of the wrong size): closed, banned.
    let mut c = hello(1111).expect("the first handshake");
    c.write_all(&frame(&Message::Bitfield(vec![0xff; 1])))
        .unwrap();
    assert!(closed_within(&mut c, Duration::from_secs(10)));
    seeder.err.wait_for("gone: protocol violation", TIMEOUT);
    // Back with the same peer id but another port in its extension
    // handshake: still refused.
    let back = hello(2222);
    assert!(
        back.is_none_or(|mut c| closed_within(&mut c, Duration::from_secs(10))),
        "the banned peer was let back in\n{}",
        seeder.dump()
    );
}
