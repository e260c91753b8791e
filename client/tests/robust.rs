//! A peer that abuses what the protocol allows gets its connection closed
//! instead of costing us unbounded memory or a thread.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use minitorrent_common::wire::{self, ExtHandshake, Handshake, Message, MetadataMsg};

#[test]
fn a_peer_flooding_metadata_requests_without_reading_is_closed() {
    let sw = swarm("mdflood", 1024 * 1024, 16 * 1024);
    let (ih, port) = (sw.ih, sw.seeder.port());

    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(&Handshake::new(ih, *b"-XX0000-flood0000000").encode())
        .unwrap();
    let mut out = Vec::new();
    Message::Extended {
        id: 0,
        payload: ExtHandshake::ours(None, None, "flood").encode(),
    }
    .encode(&mut out);
    // Each ~30-byte request asks for the whole info dictionary (about 1.3 KB
    // here): 50,000 of them would queue about 65 MB of answers we never read.
    let req = {
        let mut r = Vec::new();
        Message::Extended {
            id: wire::UT_METADATA_ID,
            payload: MetadataMsg::Request { piece: 0 }.encode(),
        }
        .encode(&mut r);
        r
    };
    for _ in 0..50_000 {
        out.extend_from_slice(&req);
    }
    let writer = std::thread::spawn(move || {
        // The seeder closes the connection somewhere in the middle.
        let _ = c.write_all(&out);
        let _ = c.shutdown(Shutdown::Write);
        c
    });
    let mut c = writer.join().unwrap();
    // Whatever the seeder had sent before closing, then the end: without the
    // limit it would still be answering (tens of MB), and not close.
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                assert!(
                    total < 40 << 20,
                    "{total} bytes of answers: the flood was served"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after the flood ({total} bytes read): {e}"),
        }
    }
    sw.seeder
        .err
        .wait_for("bytes of answers wait unread", TIMEOUT);
}

#[test]
fn a_handshake_trickling_in_byte_by_byte_is_cut_off() {
    let sw = swarm_with("slowhs", "g.bin", 100_000, 16 * 1024, &[]);
    let (ih, port) = (sw.ih, sw.seeder.port());

    let hs = Handshake::new(ih, *b"-XX0000-slow00000000").encode();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One byte every half second, each well within the socket's read
    // timeout: the whole handshake would take 34 s. The seeder must give up
    // after its handshake timeout (10 s) all the same.
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 128];
    for (i, b) in hs.iter().enumerate().take(hs.len() - 1) {
        if c.write_all(&[*b]).is_err() {
            return;
        }
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => panic!("the seeder answered a handshake of {} bytes", i + 1),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
    panic!("the seeder was still waiting for the handshake after 33 s");
}
