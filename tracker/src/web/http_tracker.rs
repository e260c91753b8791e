//! The HTTP tracker protocol's two routes: `GET /announce` (BEP 3, compact
//! peers BEP 23, IPv6 peers in `peers6` BEP 7) and `GET /scrape` (BEP 48),
//! over the same registry as the JSON protocol and BEP 15, through
//! [`crate::announce`] as the UDP workers go. Each runs on a connection
//! thread holding one of the handler permits, like every route, and locks
//! one registry shard per swarm it touches, as a UDP worker does.
//!
//! Every answer is bencoded with status 200, a refusal too (as a `failure
//! reason`: BEP 3 clients read it from a 200, and aria2 and libtorrent
//! treat any other status as a broken tracker and show no reason).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use log::debug;
use minitorrent_common::http_tracker::{
    encode_announce, encode_announce_dicts, encode_failure, encode_scrape, parse_scrape,
    AnnounceHeader, AnnounceRequest, AnnounceResponse, Peer, ScrapeFile, DEFAULT_NUMWANT,
};
use minitorrent_common::metainfo::InfoHash;
use minitorrent_common::udp_tracker::peer_id_bytes;

use super::http::{Request, Response};
use super::Shared;
use crate::announce::{self, Announce};
use crate::handler::trace_line;
use crate::registry::{AnnounceProtocol, Family};

/// What trackers send bencoded replies as.
const BENCODED: &str = "text/plain";

/// `GET /announce?…`: joins, refreshes or leaves the swarm as the
/// connection's source IP with the announced port, and lists up to
/// `numwant` (default [`DEFAULT_NUMWANT`], at most `--max-peers`) other
/// peers of either address family: IPv4 in `peers`, IPv6 in `peers6`.
pub fn announce(shared: &Shared, req: &Request) -> Response {
    let ctx = &shared.ctx;
    shared.counters.announces.fetch_add(1, Ordering::Relaxed);
    let a = match AnnounceRequest::parse(&req.query) {
        Ok(a) => a,
        Err(e) => return failure(shared, req, "announce", &e.to_string()),
    };
    if ctx.trace {
        trace_line('←', req.peer, &a.summary());
    }
    if log::log_enabled!(log::Level::Debug) {
        debug!("{} → {}", req.peer, a.summary());
    }
    let interval = ctx.interval;
    let mut out = Vec::with_capacity(128 + 6 * ctx.max_peers.min(DEFAULT_NUMWANT));
    let (compact, with_ids) = (a.compact, !a.no_peer_id);
    let announced = announce::announce(
        &ctx.registry,
        Some(&shared.recorder),
        &Announce {
            addr: SocketAddr::new(req.peer.ip().to_canonical(), a.port),
            peer_id: &a.peer_id,
            info_hash: a.info_hash,
            left: a.left,
            event: a.event,
            want: a.numwant.unwrap_or(DEFAULT_NUMWANT).min(ctx.max_peers),
            protocol: AnnounceProtocol::Http,
        },
        Family::Any,
        &mut fastrand::Rng::new(),
        Instant::now(),
        |counts, picks| {
            let h = AnnounceHeader {
                interval,
                min_interval: interval,
                complete: counts.seeders,
                incomplete: counts.leechers,
            };
            if compact {
                encode_announce(&mut out, &h, picks.addrs());
            } else {
                encode_announce_dicts(
                    &mut out,
                    &h,
                    picks.map(|p| Peer {
                        addr: p.addr,
                        // Back to the 20 bytes a BEP 15 or HTTP announcer
                        // sent; a JSON peer's id as it gave it.
                        peer_id: with_ids.then(|| {
                            peer_id_bytes(p.peer_id)
                                .map_or_else(|| p.peer_id.as_bytes().to_vec(), |b| b.to_vec())
                        }),
                    }),
                );
            }
        },
    );
    if let Err(e) = announced {
        return failure(shared, req, "announce", &e.to_string());
    }
    if ctx.trace {
        let line = match AnnounceResponse::decode(&out) {
            Ok(r) => r.summary(),
            Err(e) => format!("(undecodable reply: {e})"),
        };
        trace_line('→', req.peer, &line);
    }
    Response::new(200, BENCODED, out)
}

/// `GET /scrape?info_hash=…&info_hash=…`: seeders (`complete`), leechers
/// (`incomplete`) and completed downloads (`downloaded`, the catalogue's
/// count) of each swarm named, 1 to
/// [`MAX_SCRAPE_HASHES`](minitorrent_common::http_tracker::MAX_SCRAPE_HASHES).
pub fn scrape(shared: &Shared, req: &Request) -> Response {
    let ctx = &shared.ctx;
    shared.counters.scrapes.fetch_add(1, Ordering::Relaxed);
    let hashes = match parse_scrape(&req.query) {
        Ok(h) => h,
        Err(e) => return failure(shared, req, "scrape", &e.to_string()),
    };
    let files: Vec<(InfoHash, ScrapeFile)> = hashes
        .iter()
        .map(|h| {
            let (c, downloaded) = announce::scrape(&ctx.registry, Some(&shared.recorder), h);
            let file = ScrapeFile {
                complete: c.seeders,
                downloaded,
                incomplete: c.leechers,
            };
            (*h, file)
        })
        .collect();
    if ctx.trace {
        let mut line = format!("SCRAPE {} info hash(es)", hashes.len());
        let mut reply = String::from("SCRAPE reply");
        for (i, (h, f)) in files.iter().take(3).enumerate() {
            let _ = write!(line, " {}…", &h.to_hex()[..12]);
            reply.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(reply, "{}S/{}L/{}C", f.complete, f.incomplete, f.downloaded);
        }
        trace_line('←', req.peer, &format!("{line} (HTTP)"));
        trace_line('→', req.peer, &format!("{reply} (HTTP)"));
    }
    Response::new(200, BENCODED, encode_scrape(files))
}

/// A refusal: `failure reason`, status 200.
fn failure(shared: &Shared, req: &Request, what: &str, reason: &str) -> Response {
    shared.counters.refusals.fetch_add(1, Ordering::Relaxed);
    debug!("{}: HTTP {what} refused: {reason}", req.peer);
    if shared.ctx.trace {
        let line = format!("{} failure reason: {reason} (HTTP)", what.to_uppercase());
        trace_line('→', req.peer, &line);
    }
    Response::new(200, BENCODED, encode_failure(reason))
}
