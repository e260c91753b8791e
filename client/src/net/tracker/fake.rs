//! Test helpers: a fake tracker on 127.0.0.1 and a BEP 15-only answer for
//! it, shared by the client, probe and announcer tests.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::{encode_connect_response, Request, Response, ScrapeStats};

use crate::net::tracker::bep15::Schedule;

pub(super) fn hash(b: u8) -> InfoHash {
    InfoHash([b; 20])
}

/// A fake tracker on 127.0.0.1 that answers with `answer(request bytes)`.
pub(super) fn fake(
    answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<()>, Arc<Mutex<bool>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(Mutex::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !*stop2.lock().unwrap() {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                if let Some(r) = answer(&buf[..n]) {
                    sock.send_to(&r, from).unwrap();
                }
            }
        }
    });
    (addr, h, stop)
}

pub(super) fn bep15_only(b: &[u8]) -> Option<Vec<u8>> {
    match Request::decode(b).ok()? {
        Request::Connect { transaction_id } => {
            let mut out = Vec::new();
            encode_connect_response(&mut out, transaction_id, 0x8000_0000_0000_0042);
            Some(out)
        }
        Request::Announce(a) => Some(
            Response::Announce {
                transaction_id: a.transaction_id,
                interval: 7,
                leechers: 1,
                seeders: 1,
                peers: vec![
                    "127.0.0.1:7001".parse().unwrap(),
                    SocketAddr::new("127.0.0.1".parse().unwrap(), a.port),
                ],
            }
            .encode(false),
        ),
        Request::Scrape {
            transaction_id,
            info_hashes,
            ..
        } => Some(
            Response::Scrape {
                transaction_id,
                stats: vec![ScrapeStats::default(); info_hashes.len()],
            }
            .encode(false),
        ),
    }
}

pub(super) const FAST: Schedule = Schedule {
    first: Duration::from_millis(100),
    tries: 3,
};
