//! A seeding peer under connection floods: idle connections that hold every
//! place, tens of thousands of short connections, a violator that comes
//! back under another peer id. The seeder stays small, real leechers get
//! in, and nobody innocent is banned. The attackers are written here with
//! std::net, socket2 and the shared wire codecs.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::wire::{self, ExtHandshake, Handshake, Message};
use socket2::{Domain, Socket, Type};

fn peer_id(n: u32) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    id[8..].copy_from_slice(format!("{n:012}").as_bytes());
    id
}

/// Connects from `from` (any loopback address, a port or 0) to the
/// seeder; with `reset`, closing sends a RST and leaves no TIME_WAIT behind.
fn connect_from(from: &str, port: u16, reset: bool) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let local: SocketAddr = if from.contains(':') {
        from.parse().unwrap()
    } else {
        format!("{from}:0").parse().unwrap()
    };
    s.set_reuse_address(true)?;
    s.bind(&local.into())?;
    if reset {
        s.set_linger(Some(Duration::ZERO))?;
    }
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends our handshake and reads the seeder's; None if it closed on us.
fn shake(s: &mut TcpStream, ih: InfoHash, id: [u8; 20]) -> Option<()> {
    s.write_all(&Handshake::new(ih, id).encode()).ok()?;
    let mut hs = [0u8; wire::HANDSHAKE_LEN];
    s.read_exact(&mut hs).ok()
}

#[test]
fn idle_connections_from_one_host_do_not_lock_a_leecher_out() {
    let sw = swarm("idle", 1 << 20, 16 * 1024);
    let port = sw.seeder.port();
    // 20 connections from another host (127.0.0.2) that shake hands and
    // then only send keep-alives: more than the seeder's places.
    let stop = Arc::new(AtomicBool::new(false));
    let admitted = Arc::new(AtomicUsize::new(0));
    let mut idlers = Vec::new();
    for n in 0..20 {
        let (stop, admitted, ih) = (stop.clone(), admitted.clone(), sw.ih);
        idlers.push(std::thread::spawn(move || {
            let Ok(mut c) = connect_from("127.0.0.2", port, false) else {
                return;
            };
            if shake(&mut c, ih, peer_id(n)).is_none() {
                return;
            }
            admitted.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                if c.write_all(&frame(&Message::KeepAlive)).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }));
    }
    wait_until("the idle connections to shake hands", TIMEOUT, || {
        admitted.load(Ordering::SeqCst) >= 16
    });
    // Past the grace a newcomer gets before it may be displaced.
    std::thread::sleep(Duration::from_secs(3));
    let dir = sw.tmp.sub("l");
    let t0 = Instant::now();
    get_ok(
        "leecher",
        &sw.tracker,
        sw.torrent.to_str().unwrap(),
        &dir,
        &[],
    );
    let took = t0.elapsed();
    stop.store(true, Ordering::SeqCst);
    assert_same_file(&sw.data, &dir.join("f.bin"));
    // Normal time is well under a second; a leecher locked out until the
    // idlers time out would take minutes (get_ok's bound).
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}\n{}",
        sw.seeder.dump()
    );
    for t in idlers {
        let _ = t.join();
    }
}

#[test]
fn fifty_thousand_short_connections_leave_the_seeders_memory_flat() {
    let sw = swarm("short", 256 * 1024, 16 * 1024);
    let port = sw.seeder.port();
    let pid = sw.seeder.child.id();
    let ih = sw.ih;
    // Each connection: handshake, extension handshake (with a listen port),
    // INTERESTED, and once unchoked (so the seeder's torrent has taken it
    // in) close; one in three first breaks the protocol (a bitfield of the
    // wrong size), which gets it banned.
    let run = |from: u32, count: u32| {
        let workers: Vec<_> = (0..4u32)
            .map(|w| {
                std::thread::spawn(move || {
                    let mut served = 0u32;
                    for n in (from + w..from + count).step_by(4) {
                        let Ok(mut c) = connect_from("127.0.0.1", port, true) else {
                            continue;
                        };
                        if shake(&mut c, ih, peer_id(n)).is_none() {
                            continue;
                        }
                        let ext = ExtHandshake {
                            p: Some(10_000 + (n % 50_000) as u16),
                            ..Default::default()
                        };
                        let hello = [
                            frame(&Message::Extended {
                                id: 0,
                                payload: ext.encode(),
                            }),
                            frame(&Message::Interested),
                        ]
                        .concat();
                        if c.write_all(&hello).is_err() {
                            continue;
                        }
                        let unchoked = loop {
                            match read_msg(&mut c) {
                                Ok(Message::Unchoke) => break true,
                                Ok(_) => continue,
                                Err(_) => break false,
                            }
                        };
                        if !unchoked {
                            continue;
                        }
                        served += 1;
                        if n % 3 == 0 {
                            let _ = c.write_all(&frame(&Message::Bitfield(vec![0xff; 40])));
                            closed_within(&mut c, Duration::from_secs(5));
                        }
                    }
                    served
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum::<u32>()
    };
    // A first round settles the allocator's arenas and thread caches.
    let warm = run(0, 5_000);
    assert!(warm > 4_000, "only {warm} of 5000 connections unchoked");
    let before = proc_status(pid, "VmRSS");
    let served = run(5_000, 45_000);
    assert!(
        served > 40_000,
        "only {served} of 45000 handshakes answered"
    );
    // Threads of the last connections may still be ending.
    wait_until("the connection threads to end", TIMEOUT, || {
        proc_status(pid, "Threads") < 20
    });
    let after = proc_status(pid, "VmRSS");
    eprintln!("seeder resident memory: {before} kB before, {after} kB after");
    assert!(
        after <= before + 4 * 1024,
        "resident memory grew from {before} kB to {after} kB over 45,000 connections"
    );
    // And it still serves.
    sw.leech_ok("after", sw.torrent.to_str().unwrap());
}

#[test]
fn a_violators_later_well_behaved_connection_under_another_peer_id_is_served() {
    let sw = swarm("again", 64 * 1024, 16 * 1024);
    let port = sw.seeder.port();
    let mut c = connect_from("127.0.0.1", port, true).unwrap();
    let from = c.local_addr().unwrap();
    shake(&mut c, sw.ih, peer_id(1)).expect("the first handshake");
    c.write_all(&frame(&Message::Bitfield(vec![0xff; 9])))
        .unwrap();
    assert!(
        closed_within(&mut c, Duration::from_secs(10)),
        "a violator is closed"
    );
    sw.seeder.err.wait_for("protocol violation", TIMEOUT);
    // The reset clears the connection on both ends, so the same source port
    // can be used again at once.
    drop(c);
    // The same host comes back, even from the same source port (an
    // ephemeral port names no peer), under another peer id, and behaves.
    let mut c = connect_from(&from.to_string(), port, false).unwrap();
    shake(&mut c, sw.ih, peer_id(2)).expect("the second handshake");
    c.write_all(&frame(&Message::Interested)).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "never unchoked\n{}",
            sw.seeder.dump()
        );
        match read_msg(&mut c) {
            Ok(Message::Unchoke) => break,
            Ok(_) => continue,
            Err(e) => panic!("closed: {e}\n{}", sw.seeder.dump()),
        }
    }
    c.write_all(&frame(&Message::Request {
        index: 1,
        begin: 0,
        length: 16 * 1024,
    }))
    .unwrap();
    let want = std::fs::read(&sw.data).unwrap();
    loop {
        match read_msg(&mut c) {
            Ok(Message::Piece { index, begin, data }) => {
                assert_eq!((index, begin), (1, 0));
                assert_eq!(data, want[16 * 1024..32 * 1024]);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("closed: {e}\n{}", sw.seeder.dump()),
        }
    }
}
