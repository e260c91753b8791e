//! What the simulated peers send: their info hashes and peer ids, the JSON
//! requests and BEP 15 announces, and how to tell which request a reply answers.

use std::net::Ipv4Addr;

use anyhow::{bail, Context};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::tracker_proto::{FileInfo, FileRef, Reply, Request, Token};
use minitorrent_common::udp_tracker as udp;

pub(crate) fn hash_of(file: usize) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&(file as u64).to_be_bytes());
    h[8..16].copy_from_slice(
        &(file as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_le_bytes(),
    );
    InfoHash(h)
}

pub(crate) fn peer_id(i: usize) -> String {
    format!("-LD0001-{i:012}")
}

/// The 20-byte BEP 15 peer id of simulated peer `i` (printable, so it shows
/// as itself in JSON replies).
pub(crate) fn bep15_peer_id(i: usize) -> [u8; 20] {
    let mut id = [0u8; 20];
    id.copy_from_slice(peer_id(i).as_bytes());
    id
}

pub(crate) fn register_request(tid: u32, i: usize, files: usize) -> Request {
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

pub(crate) fn parse_mix(mix: &str) -> anyhow::Result<Vec<u32>> {
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

/// 65536 pre-encoded requests in the proportions of `mix`, each carrying
/// `token` as a peer does.
pub(crate) fn json_pool(
    mix: &[u32],
    peers: usize,
    files: usize,
    token: Option<Token>,
) -> Vec<Vec<u8>> {
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
            req.encode_with_token(token)
        })
        .collect()
}

pub(crate) fn announce_packet(
    connection_id: u64,
    tid: u32,
    i: usize,
    files: usize,
    out: &mut Vec<u8>,
) {
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

/// 65,536 pre-encoded announces of random peers, each to its own swarm.
pub(crate) fn announce_pool(connection_id: u64, peers: usize, files: usize) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(42);
    (0..65_536u32)
        .map(|k| {
            let mut p = Vec::with_capacity(udp::ANNOUNCE_LEN);
            announce_packet(connection_id, k, rng.usize(0..peers), files, &mut p);
            p
        })
        .collect()
}

pub(crate) fn json_ok_tid(reply: &[u8]) -> Option<u32> {
    match Reply::decode(reply) {
        Ok(Reply::Ok { tid, .. }) => Some(tid),
        _ => None,
    }
}

pub(crate) fn bep15_announce_tid(reply: &[u8]) -> Option<u32> {
    // Announce replies only: action 1 in bytes 0-3, transaction id in 4-7.
    (reply.len() >= 20 && reply[..4] == [0, 0, 0, 1])
        .then(|| u32::from_be_bytes([reply[4], reply[5], reply[6], reply[7]]))
}
