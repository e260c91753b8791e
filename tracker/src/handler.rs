//! The request handler: one datagram in, one reply out, no socket. It tells
//! JSON from BEP 15, decodes (common/), asks or updates the [`Registry`],
//! encodes the reply into the caller's buffer, and writes the `--trace` and
//! log lines. The socket workers ([`crate::server`]) own one [`Handler`] each.
//!
//! A JSON reply more than 3 times its request goes only to a request with
//! a valid address token ([`crate::token`]); `bound_reply` applies the rule.
//!
//! One port serves both protocols: a datagram starting with `{` is JSON; one of
//! at least 16 bytes whose action field (bytes 8–11) is 0–3 is BEP 15;
//! anything else is answered as malformed JSON.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info};
use minitorrent_common::tracker_proto::{
    self as proto, encode_error_reply, encode_files_reply, encode_ok_reply, encode_peers_reply,
    encode_token_reply, ErrorCode, FileRef, FileView, Reply, Request, SwarmView,
    AMPLIFICATION_FACTOR, DEFAULT_STATS_EVERY_SECS, MAX_REPLY_SIZE,
};
use minitorrent_common::udp_tracker as udp;

use crate::announce::{self, Announce};
use crate::catalogue::{EventKind, Recorder};
use crate::config::Config;
use crate::connection_id::ConnectionIds;
use crate::registry::{
    AnnounceProtocol, Family, RegisterError, Registry, SearchHit, SwarmChange, SweepReport,
};
use crate::stats::Stats;
use crate::token::{AddressTokens, Check};
use minitorrent_common::metainfo::InfoHash;

/// JSON error code for a `REGISTER` that would create a swarm past
/// `--max-swarms`: the request is fine, the tracker is full.
pub const FULL: &str = "full";

/// Answers datagrams from the registry. One per worker thread; owns its
/// scratch buffers so answering does not allocate for the common requests.
pub struct Handler {
    registry: Arc<Registry>,
    conn_ids: Arc<ConnectionIds>,
    /// The JSON protocol's address tokens (see [`within_bound`]).
    tokens: Arc<AddressTokens>,
    max_peers: usize,
    interval: u32,
    timeout: u32,
    trace: bool,
    rng: fastrand::Rng,
    hits: Vec<SearchHit>,
    /// The catalogue's feed (events, completed counts), when there is one.
    recorder: Option<Recorder>,
    /// Swarms a `REGISTER` or `EXIT` changed, gathered under the registry's
    /// locks and reported to the catalogue after.
    changes: Vec<(InfoHash, SwarmChange)>,
    /// Where `STATS` go; without it the tracker never asks for them.
    stats: Option<Arc<Stats>>,
    /// Scratch for `STATS`: which of its files the sender registered.
    registered: Vec<bool>,
    /// The web page named in every `OK` (`config.web_url`).
    web: Option<String>,
    /// The token of the request being answered when it is the current one
    /// for its source IP: its `OK` hands it back without hashing again.
    current_token: Option<proto::Token>,
}

/// The web page named in `OK`: its URL, except that a web page bound to
/// every interface is named `http://0.0.0.0:PORT/`, which a peer reads as
/// "the IP you reach this tracker at" (one machine has several addresses,
/// and each peer knows the one it uses).
fn ok_web_url(config: &Config) -> Option<String> {
    match config.web {
        Some(a) if a.ip().is_unspecified() && config.web_url.is_some() => Some(match a {
            SocketAddr::V4(_) => format!("http://0.0.0.0:{}/", a.port()),
            SocketAddr::V6(_) => format!("http://[::]:{}/", a.port()),
        }),
        _ => config.web_url.clone(),
    }
}

impl Handler {
    pub fn new(
        registry: Arc<Registry>,
        conn_ids: Arc<ConnectionIds>,
        tokens: Arc<AddressTokens>,
        config: &Config,
    ) -> Handler {
        Handler {
            registry,
            conn_ids,
            tokens,
            max_peers: config.max_peers,
            interval: config.interval_secs(),
            timeout: config.timeout_secs(),
            trace: config.trace,
            rng: fastrand::Rng::new(),
            hits: Vec::new(),
            recorder: None,
            changes: Vec::new(),
            stats: None,
            registered: Vec::new(),
            web: ok_web_url(config),
            current_token: None,
        }
    }

    /// An `OK` with this tracker's timers, `stats_every`, web page and a
    /// fresh token for `src` (so a registered peer always has one).
    fn ok(&self, out: &mut Vec<u8>, src: SocketAddr, now: Instant, tid: u32, stats_every: u32) {
        let web = self.web.as_deref();
        let token = Some(
            self.current_token
                .unwrap_or_else(|| self.tokens.issue(src.ip(), now)),
        );
        encode_ok_reply(
            out,
            tid,
            self.interval,
            self.timeout,
            stats_every,
            web,
            token,
        );
    }

    /// Keeps the `STATS` peers send in `stats`, and asks for them in `OK`.
    pub fn with_stats(mut self, stats: Arc<Stats>) -> Handler {
        self.stats = Some(stats);
        self
    }

    /// The `stats_every` of an `OK` to this JSON peer: 0 unless the tracker
    /// keeps stats and one of the peer's swarms has a leecher.
    fn stats_every(&self, src: SocketAddr, peer_id: &str) -> u32 {
        if self.stats.is_some() && self.registry.wants_stats(src.ip(), peer_id) {
            DEFAULT_STATS_EVERY_SECS
        } else {
            0
        }
    }

    /// Feeds the catalogue: swarm events for its log, completed downloads
    /// for its counts (which BEP 15 scrape then reports).
    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Answers one datagram from `src` into `out` (cleared first). Returns
    /// false when there is nothing to send.
    pub fn handle(
        &mut self,
        src: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        out.clear();
        if looks_like_bep15(data) {
            return self.handle_bep15(src, data, now, out);
        }
        self.handle_json(src, data, now, out);
        !out.is_empty()
    }

    /// A BEP 15 packet: connect, announce or scrape. Returns false (no reply)
    /// for a bad connect magic or an invalid or expired connection id, so a
    /// spoofed source gets nothing.
    fn handle_bep15(
        &mut self,
        src: SocketAddr,
        data: &[u8],
        now: Instant,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(head) = udp::RequestHeader::decode(data) else {
            return false;
        };
        let tid = head.transaction_id;
        let ipv6 = src.ip().to_canonical().is_ipv6();
        if head.action == udp::ACTION_CONNECT {
            if head.connection_id != udp::PROTOCOL_ID {
                self.drop_bep15(src, data, "connect with a wrong protocol id");
                return false;
            }
            if self.trace {
                trace_line(
                    '←',
                    src,
                    &udp::Request::Connect {
                        transaction_id: tid,
                    }
                    .summary(),
                );
            }
            let id = self.conn_ids.issue(src.ip(), now);
            udp::encode_connect_response(out, tid, id);
            self.trace_bep15_reply(src, out, ipv6);
            return true;
        }
        if !self.conn_ids.is_valid(head.connection_id, src.ip(), now) {
            self.drop_bep15(src, data, "invalid or expired connection id");
            return false;
        }
        let req = match udp::Request::decode(data) {
            Ok(r) => r,
            Err(e) => {
                if self.trace {
                    trace_line(
                        '←',
                        src,
                        &format!("malformed BEP 15 ({} bytes): {e}", data.len()),
                    );
                }
                debug!("{src} sent a malformed BEP 15 packet: {e}");
                udp::encode_error_response(out, tid, &e.to_string());
                self.trace_bep15_reply(src, out, ipv6);
                return true;
            }
        };
        if self.trace {
            trace_line('←', src, &req.summary());
        }
        if log::log_enabled!(log::Level::Debug) {
            debug!("{src} → {}", req.summary());
        }
        match &req {
            udp::Request::Announce(a) => {
                if a.port == 0 {
                    udp::encode_error_response(
                        out,
                        tid,
                        "port 0 is not a port peers can connect to",
                    );
                } else {
                    let want = if a.num_want <= 0 {
                        self.max_peers
                    } else {
                        (a.num_want as usize).min(self.max_peers)
                    };
                    let family = if ipv6 { Family::V6 } else { Family::V4 };
                    let interval = self.interval;
                    let announced = announce::announce(
                        &self.registry,
                        self.recorder.as_ref(),
                        &Announce {
                            addr: SocketAddr::new(src.ip(), a.port),
                            peer_id: &a.peer_id,
                            info_hash: a.info_hash,
                            left: a.left,
                            event: a.event,
                            want,
                            protocol: AnnounceProtocol::Bep15,
                        },
                        family,
                        &mut self.rng,
                        now,
                        |counts, picks| {
                            udp::encode_announce_response(
                                out,
                                tid,
                                interval,
                                counts.leechers,
                                counts.seeders,
                                picks.addrs(),
                                ipv6,
                            )
                        },
                    );
                    if let Err(e) = announced {
                        debug!("{src}: BEP 15 announce refused: {e}");
                        out.clear();
                        udp::encode_error_response(out, tid, &e.to_string());
                    }
                }
            }
            udp::Request::Scrape { info_hashes, .. } => {
                let registry = &self.registry;
                let recorder = self.recorder.as_ref();
                let stats = info_hashes.iter().map(|h| {
                    let (c, completed) = announce::scrape(registry, recorder, h);
                    udp::ScrapeStats {
                        seeders: c.seeders,
                        completed: u32::try_from(completed).unwrap_or(u32::MAX),
                        leechers: c.leechers,
                    }
                });
                udp::encode_scrape_response(out, tid, stats);
            }
            // Handled above: a connect never carries a connection id.
            udp::Request::Connect { .. } => return false,
        }
        self.trace_bep15_reply(src, out, ipv6);
        true
    }

    fn drop_bep15(&self, src: SocketAddr, data: &[u8], why: &str) {
        if self.trace {
            trace_line(
                '←',
                src,
                &format!("BEP 15 packet ({} bytes) dropped: {why}", data.len()),
            );
        }
        debug!("{src}: BEP 15 packet dropped: {why}");
    }

    fn trace_bep15_reply(&self, dst: SocketAddr, out: &[u8], ipv6: bool) {
        if self.trace {
            let line = match udp::Response::decode(out, ipv6) {
                Ok(r) => r.summary(),
                Err(e) => format!("(undecodable reply: {e})"),
            };
            trace_line('→', dst, &line);
        }
    }

    fn handle_json(&mut self, src: SocketAddr, data: &[u8], now: Instant, out: &mut Vec<u8>) {
        let (req, token) = match Request::decode_with_token(data) {
            Ok(r) => r,
            Err(e) => {
                if self.trace {
                    trace_line('←', src, &format!("malformed ({} bytes): {e}", data.len()));
                }
                debug!("{src} sent a malformed datagram: {e}");
                encode_error_reply(out, e.tid, &ErrorCode::BadRequest, &e.to_string());
                self.trace_reply(src, out);
                return;
            }
        };
        let check = token.map(|t| self.tokens.check(t, src.ip(), now));
        let proven = matches!(check, Some(Check::Current | Check::Previous));
        self.current_token = token.filter(|_| check == Some(Check::Current));
        if let Request::Stats {
            tid,
            peer_id,
            files,
        } = &req
        {
            self.handle_stats(src, *tid, peer_id, files, now, out);
            self.bound_reply(src, data.len(), proven, *tid, now, out);
            if self.trace {
                // One line for the STATS and its answer: they come every
                // second from every active peer.
                let answer = match Reply::decode(out) {
                    Ok(r) => r.summary(),
                    Err(e) => format!("(undecodable reply: {e})"),
                };
                trace_line('←', src, &format!("{} ⇒ {answer}", req.summary()));
            }
            return;
        }
        if self.trace {
            let note = match token {
                Some(_) if proven => Some("token=valid"),
                Some(_) => Some("token=invalid"),
                None => None,
            };
            trace_line('←', src, &req.summary_noting(note));
        }
        if log::log_enabled!(log::Level::Debug) {
            debug!("{src} → {}", req.summary());
        }
        match &req {
            Request::Register {
                tid,
                peer_id,
                port,
                files,
            } => match self.register(src, peer_id, *port, files, now) {
                Ok(o) => {
                    if o.new_peer || o.joined > 0 {
                        info!(
                            "peer {peer_id} at {} {} ({} new swarm entr{}): {}",
                            SocketAddr::new(src.ip(), *port),
                            if o.new_peer { "registered" } else { "updated" },
                            o.joined,
                            if o.joined == 1 { "y" } else { "ies" },
                            file_names(files)
                        );
                    }
                    let every = self.stats_every(src, peer_id);
                    self.ok(out, src, now, *tid, every);
                }
                Err(e) => {
                    debug!("{src}: REGISTER of {peer_id} refused: {e}");
                    let code = match e {
                        RegisterError::TooManyFiles { .. } => ErrorCode::BadRequest,
                        RegisterError::Full(_) => ErrorCode::Other(FULL.to_string()),
                    };
                    encode_error_reply(out, Some(*tid), &code, &e.to_string());
                }
            },
            Request::Request { tid, file, peer_id } => {
                let asker = peer_id.as_deref().map(|p| (src.ip(), p));
                let found = self.registry.visit_peers(
                    file,
                    asker,
                    self.max_peers,
                    Family::Any,
                    &mut self.rng,
                    now,
                    |h, picks| {
                        let swarm = SwarmView {
                            info_hash: h.info_hash,
                            name: h.name,
                            size: h.size,
                            seeders: h.seeders,
                            leechers: h.leechers,
                        };
                        encode_peers_reply(out, *tid, &swarm, picks, MAX_REPLY_SIZE);
                    },
                );
                if found.is_none() {
                    let message = match file {
                        FileRef::InfoHash(h) => {
                            format!("no peer shares info hash {}", h.to_hex())
                        }
                        FileRef::Name(n) => format!("no peer shares a file named \"{n}\""),
                    };
                    encode_error_reply(out, Some(*tid), &ErrorCode::NotFound, &message);
                }
            }
            Request::Search { tid, query } => {
                self.registry.search(query, &mut self.hits);
                let files = self.hits.iter().map(|h| FileView {
                    info_hash: &h.info_hash,
                    name: &h.name,
                    size: h.size,
                    seeders: h.seeders,
                    leechers: h.leechers,
                });
                encode_files_reply(out, *tid, files, MAX_REPLY_SIZE);
            }
            Request::Heartbeat { tid, peer_id } => {
                match self.registry.heartbeat(src.ip(), peer_id, now) {
                    Ok(()) => {
                        let every = self.stats_every(src, peer_id);
                        self.ok(out, src, now, *tid, every)
                    }
                    Err(_) => unknown_peer(out, *tid, src, peer_id),
                }
            }
            // Answered above.
            Request::Stats { .. } => {}
            Request::Exit { tid, peer_id } => match self.exit(src, peer_id, now) {
                Ok(port) => {
                    info!("peer {peer_id} at {} left", SocketAddr::new(src.ip(), port));
                    self.ok(out, src, now, *tid, 0);
                }
                Err(_) => unknown_peer(out, *tid, src, peer_id),
            },
        }
        self.bound_reply(src, data.len(), proven, req.tid(), now, out);
        self.trace_reply(src, out);
    }

    /// The anti-reflection rule: a reply to a request without a valid token
    /// for its source IP may be at most [`AMPLIFICATION_FACTOR`] times the
    /// request; a larger one is replaced by the `token` `ERROR`, which hands
    /// out a token and fits the bound (or by nothing, when not even that
    /// fits: never for a well-formed request). `ERROR`s are kept as they are
    /// (see [`within_bound`]).
    fn bound_reply(
        &self,
        src: SocketAddr,
        request_len: usize,
        proven: bool,
        tid: u32,
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        if proven || within_bound(request_len, out) {
            return;
        }
        debug!(
            "{src}: a {}-byte reply to a {request_len}-byte request without a valid token: \
             sending a token instead",
            out.len()
        );
        out.clear();
        let token = self.tokens.issue(src.ip(), now);
        if !encode_token_reply(out, tid, token, bound(request_len)) && self.trace {
            trace_line(
                '→',
                src,
                "nothing: even a token ERROR would be over the bound",
            );
        }
    }

    /// `REGISTER`, reporting joins and completions to the catalogue.
    fn register(
        &mut self,
        src: SocketAddr,
        peer_id: &str,
        port: u16,
        files: &[proto::FileInfo],
        now: Instant,
    ) -> Result<crate::registry::RegisterOutcome, RegisterError> {
        let Some(r) = &self.recorder else {
            return self.registry.register(src.ip(), peer_id, port, files, now);
        };
        let changes = &mut self.changes;
        changes.clear();
        let outcome =
            self.registry
                .register_observed(src.ip(), peer_id, port, files, now, |h, c| {
                    changes.push((*h, c))
                });
        if !changes.is_empty() {
            let addr = SocketAddr::new(src.ip(), port);
            let id = crate::peer_id::PeerId::new(peer_id);
            for (h, c) in changes.drain(..) {
                match c {
                    SwarmChange::Joined => r.event(EventKind::Register, h, addr, id.clone()),
                    SwarmChange::Completed => r.completed(h, addr, id.clone()),
                }
            }
        }
        outcome
    }

    /// `EXIT`, reporting each swarm left to the catalogue.
    fn exit(
        &mut self,
        src: SocketAddr,
        peer_id: &str,
        now: Instant,
    ) -> Result<u16, crate::registry::UnknownPeer> {
        let Some(r) = &self.recorder else {
            return self.registry.exit(src.ip(), peer_id, now);
        };
        let changes = &mut self.changes;
        changes.clear();
        let port = self.registry.exit_observed(src.ip(), peer_id, now, |h| {
            changes.push((*h, SwarmChange::Joined))
        })?;
        let addr = SocketAddr::new(src.ip(), port);
        let id = crate::peer_id::PeerId::new(peer_id);
        for (h, _) in changes.drain(..) {
            r.event(EventKind::Exit, h, addr, id.clone());
        }
        Ok(port)
    }

    /// `STATS`: identified like `HEARTBEAT` (source IP + peer_id); the files
    /// the sender registered are recorded for display, the others ignored.
    /// It refreshes nothing in the registry.
    fn handle_stats(
        &mut self,
        src: SocketAddr,
        tid: u32,
        peer_id: &str,
        files: &[proto::StatsFile],
        now: Instant,
        out: &mut Vec<u8>,
    ) {
        let Some(stats) = self.stats.clone() else {
            encode_error_reply(
                out,
                Some(tid),
                &ErrorCode::BadRequest,
                "this tracker keeps no STATS (its OK never asks for them)",
            );
            return;
        };
        let hashes: Vec<_> = files.iter().map(|f| f.info_hash).collect();
        let mut registered = std::mem::take(&mut self.registered);
        match self
            .registry
            .stats_sender(src.ip(), peer_id, &hashes, now, &mut registered)
        {
            Ok(port) => {
                let reporter = SocketAddr::new(src.ip(), port);
                for (f, known) in files.iter().zip(&registered) {
                    if *known {
                        stats.record(reporter, peer_id, f, now);
                    }
                }
                let every = self.stats_every(src, peer_id);
                self.ok(out, src, now, tid, every);
            }
            Err(_) => unknown_peer(out, tid, src, peer_id),
        }
        self.registered = registered;
    }

    fn trace_reply(&self, dst: SocketAddr, out: &[u8]) {
        if self.trace && !out.is_empty() {
            // Decoding our own reply keeps the trace honest about the bytes sent.
            let line = match Reply::decode(out) {
                Ok(r) => r.summary(),
                Err(e) => format!("(undecodable reply: {e})"),
            };
            trace_line('→', dst, &line);
        }
    }

    /// Sweeps this worker's share of the registry and logs who expired.
    pub fn sweep(&self, part: usize, parts: usize, now: Instant) -> SweepReport {
        let mut report = SweepReport {
            collect_entries: self.recorder.is_some(),
            ..SweepReport::default()
        };
        self.registry.sweep_part(part, parts, now, &mut report);
        if let Some(r) = &self.recorder {
            for (h, ip, id, port) in report.expired_entries.drain(..) {
                r.event(EventKind::Expiry, h, SocketAddr::new(ip, port), id);
            }
        }
        for (ip, id, port) in &report.expired {
            info!(
                "peer {id} at {} expired (silent for {} s)",
                SocketAddr::new(*ip, *port),
                self.timeout
            );
        }
        if report.entries_removed > 0 {
            debug!(
                "sweep removed {} swarm entries and {} swarms",
                report.entries_removed, report.swarms_removed
            );
        }
        report
    }
}

/// The most a reply to an unproven `request_len`-byte request may be.
pub fn bound(request_len: usize) -> usize {
    AMPLIFICATION_FACTOR.saturating_mul(request_len)
}

/// Whether `reply` may go to the source of a `request_len`-byte request
/// that carried no valid token: when it is at most [`bound`], or an
/// `ERROR`. An `ERROR` is small whatever the tracker knows (fixed words
/// plus a few fields of the request, a few hundred bytes at most); only
/// `FILES`, `PEERS` and `OK` can be held to the bound by a token, since a
/// request too short to carry one is never well-formed.
pub fn within_bound(request_len: usize, reply: &[u8]) -> bool {
    reply.len() <= bound(request_len) || reply.starts_with(b"{\"type\":\"ERROR\"")
}

/// BEP 15 requests are at least 16 bytes with an action (bytes 8–11) of 0–3.
/// JSON text never has NUL bytes there, and never starts with anything but
/// `{` or whitespace; our connection ids start with a byte ≥ 0x80.
fn looks_like_bep15(d: &[u8]) -> bool {
    d.len() >= 16 && d[0] != b'{' && d[8..11] == [0, 0, 0] && d[11] <= 3
}

/// The `REGISTER` file names for the log: the first few, then how many more,
/// so a 600-file datagram does not make a 150 KB log line.
fn file_names(files: &[proto::FileInfo]) -> String {
    const SHOWN: usize = 5;
    let mut s = files
        .iter()
        .take(SHOWN)
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        s.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    s
}

fn unknown_peer(out: &mut Vec<u8>, tid: u32, src: SocketAddr, peer_id: &str) {
    let message = format!(
        "peer {peer_id} is not registered from {} (expired, never registered, or the tracker restarted): send REGISTER",
        src.ip()
    );
    encode_error_reply(out, Some(tid), &ErrorCode::UnknownPeer, &message);
}

/// `HH:MM:SS.mmm` in UTC.
pub fn clock() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    minitorrent_common::trace::hms_millis(since)
}

/// One `--trace` line on stderr: time, direction, the other side, the message.
pub fn trace_line(dir: char, peer: SocketAddr, summary: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{} tracker {dir} {peer:<21} {summary}", clock());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use minitorrent_common::metainfo::InfoHash;
    use minitorrent_common::tracker_proto::{FileInfo, PeerEntry, Token};

    fn handler(config: &Config) -> Handler {
        handler_since(config, Instant::now())
    }

    /// A handler whose clock (registry, tokens) starts at `now`.
    fn handler_since(config: &Config, now: Instant) -> Handler {
        Handler::new(
            Arc::new(Registry::new(config.peer_timeout, 2, now)),
            Arc::new(ConnectionIds::new(now)),
            Arc::new(AddressTokens::new(now)),
            config,
        )
    }

    /// The reply to `req` from `src`, sent with a valid token as a peer's
    /// would be.
    fn ask(h: &mut Handler, src: &str, req: &Request) -> Reply {
        let mut out = Vec::new();
        let src: SocketAddr = src.parse().unwrap();
        let token = h.tokens.issue(src.ip(), Instant::now());
        assert!(h.handle(
            src,
            &req.encode_with_token(Some(token)),
            Instant::now(),
            &mut out
        ));
        Reply::decode(&out).unwrap()
    }

    fn register(h: &mut Handler, src: &str, id: &str, port: u16, name: &str, byte: u8) -> Reply {
        ask(
            h,
            src,
            &Request::Register {
                tid: 1,
                peer_id: id.into(),
                port,
                files: vec![FileInfo {
                    info_hash: InfoHash([byte; 20]),
                    name: name.into(),
                    size: 10,
                    complete: true,
                }],
            },
        )
    }

    #[test]
    fn register_request_uses_the_source_ip_and_given_port() {
        let mut h = handler(&Config::default());
        assert_eq!(
            register(&mut h, "192.0.2.7:40000", "p", 7001, "a.txt", 1),
            Reply::ok(1)
        );
        let r = ask(
            &mut h,
            "192.0.2.8:40000",
            &Request::Request {
                tid: 2,
                file: FileRef::Name("a.txt".into()),
                peer_id: None,
            },
        );
        match r {
            Reply::Peers {
                tid,
                peers,
                seeders,
                ..
            } => {
                assert_eq!((tid, seeders), (2, 1));
                assert_eq!(
                    peers,
                    vec![PeerEntry {
                        addr: "192.0.2.7:7001".parse().unwrap(),
                        peer_id: "p".into(),
                        complete: true
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_timeouts_shorten_the_interval() {
        let mut c = Config::default();
        assert_eq!((c.interval_secs(), c.timeout_secs()), (10, 30));
        c.peer_timeout = Duration::from_secs(1);
        assert_eq!((c.interval_secs(), c.timeout_secs()), (1, 1));
        c.peer_timeout = Duration::from_secs(12);
        assert_eq!(c.interval_secs(), 4);
        let mut h = handler(&c);
        assert_eq!(
            register(&mut h, "127.0.0.1:1", "p", 1, "a", 1),
            Reply::Ok {
                tid: 1,
                interval: 4,
                timeout: 12,
                stats_every: 0,
                web: None
            }
        );
    }

    #[test]
    fn search_reply_is_capped_to_one_datagram() {
        let mut h = handler(&Config::default());
        let long = "n".repeat(200);
        for i in 0..600u32 {
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            let req = Request::Register {
                tid: 1,
                peer_id: "p".into(),
                port: 1,
                files: vec![FileInfo {
                    info_hash: InfoHash(hash),
                    name: format!("{long}{i:04}"),
                    size: 1,
                    complete: true,
                }],
            };
            ask(&mut h, "127.0.0.1:1", &req);
        }
        let mut out = Vec::new();
        let req = Request::Search {
            tid: 3,
            query: String::new(),
        };
        let token = h.tokens.issue("127.0.0.1".parse().unwrap(), Instant::now());
        h.handle(
            "127.0.0.1:2".parse().unwrap(),
            &req.encode_with_token(Some(token)),
            Instant::now(),
            &mut out,
        );
        assert!(out.len() <= MAX_REPLY_SIZE);
        match Reply::decode(&out).unwrap() {
            Reply::Files { files, .. } => {
                assert!(files.len() > 100 && files.len() < 600, "{}", files.len());
                // Sorted by name, so the first ones are kept.
                assert!(files[0].name.ends_with("0000"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_file_and_unknown_peer() {
        let mut h = handler(&Config::default());
        let r = ask(
            &mut h,
            "127.0.0.1:1",
            &Request::Request {
                tid: 4,
                file: FileRef::InfoHash(InfoHash([9; 20])),
                peer_id: None,
            },
        );
        assert!(
            matches!(
                r,
                Reply::Error {
                    tid: Some(4),
                    code: ErrorCode::NotFound,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = ask(
            &mut h,
            "127.0.0.1:1",
            &Request::Heartbeat {
                tid: 5,
                peer_id: "ghost".into(),
            },
        );
        assert!(
            matches!(
                r,
                Reply::Error {
                    tid: Some(5),
                    code: ErrorCode::UnknownPeer,
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn dispatch_between_json_and_bep15() {
        assert!(!looks_like_bep15(
            b"{\"type\":\"SEARCH\",\"tid\":1,\"query\":\"\"}"
        ));
        assert!(!looks_like_bep15(b"  {\"type\":\"SEARCH\",\"tid\":1}"));
        assert!(!looks_like_bep15(b"short"));
        assert!(!looks_like_bep15(b"this is not json at all"));
        assert!(looks_like_bep15(
            &udp::Request::Connect { transaction_id: 1 }.encode()
        ));
        let mut scrape = vec![0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1];
        assert!(looks_like_bep15(&scrape));
        scrape[0] = b'{';
        assert!(!looks_like_bep15(&scrape));
        // A BEP-15-shaped packet without a valid connection id gets nothing;
        // text that is neither gets a JSON error.
        let mut h = handler(&Config::default());
        let mut out = Vec::new();
        scrape[0] = 0x80;
        assert!(!h.handle(
            "127.0.0.1:1".parse().unwrap(),
            &scrape,
            Instant::now(),
            &mut out
        ));
        assert!(h.handle(
            "127.0.0.1:1".parse().unwrap(),
            b"hello",
            Instant::now(),
            &mut out
        ));
        assert!(matches!(
            Reply::decode(&out),
            Ok(Reply::Error {
                code: ErrorCode::BadRequest,
                ..
            })
        ));
    }

    /// A tracker with 300 files of long names and one swarm of 300 peers,
    /// all registered from 192.0.2.1, listing up to 1000 peers, and kept an
    /// hour.
    fn loaded(now: Instant) -> Handler {
        let c = Config {
            max_peers: 1000,
            // Peers outlive the tokens the tests let expire.
            peer_timeout: Duration::from_secs(3600),
            ..Config::default()
        };
        let mut h = handler_since(&c, now);
        let mut out = Vec::new();
        for i in 0..300u32 {
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            let req = Request::Register {
                tid: i,
                peer_id: format!("peer-{i}"),
                port: 1000 + i as u16,
                files: vec![
                    FileInfo {
                        info_hash: InfoHash(hash),
                        name: format!("{}{i:04}", "n".repeat(150)),
                        size: 1,
                        complete: true,
                    },
                    FileInfo {
                        info_hash: InfoHash([0xee; 20]),
                        name: "big swarm".into(),
                        size: 1,
                        complete: false,
                    },
                ],
            };
            h.handle("192.0.2.1:5".parse().unwrap(), &req.encode(), now, &mut out);
        }
        h
    }

    /// The raw reply to `req` (with `token`) from `src` at `now`.
    fn raw(
        h: &mut Handler,
        src: &str,
        req: &Request,
        token: Option<Token>,
        now: Instant,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        h.handle(
            src.parse().unwrap(),
            &req.encode_with_token(token),
            now,
            &mut out,
        );
        out
    }

    fn is_token_error(reply: &[u8]) -> bool {
        matches!(
            Reply::decode_with_token(reply),
            Ok((
                Reply::Error {
                    code: ErrorCode::Token,
                    ..
                },
                Some(_)
            ))
        )
    }

    #[test]
    fn the_reply_size_rule() {
        // Within 3× of the request, or an ERROR.
        assert!(within_bound(36, &[b' '; 108]));
        assert!(!within_bound(36, &[b' '; 109]));
        let mut e = Vec::new();
        encode_error_reply(&mut e, None, &ErrorCode::BadRequest, &"x".repeat(300));
        assert!(within_bound(2, &e));
        // The token ERROR fits the bound of the shortest request there is
        // (36 bytes), with the largest tid, and says more when it can.
        let shortest = Request::Search {
            tid: u32::MAX,
            query: String::new(),
        }
        .encode();
        let mut out = Vec::new();
        assert!(encode_token_reply(
            &mut out,
            u32::MAX,
            Token(u64::MAX),
            bound(36)
        ));
        assert!(out.len() <= bound(36) && out.len() <= bound(shortest.len()));
        let mut long = Vec::new();
        assert!(encode_token_reply(&mut long, 1, Token(1), bound(200)));
        assert!(long.len() > out.len());
        assert!(!encode_token_reply(&mut Vec::new(), 1, Token(1), 20));
    }

    #[test]
    fn large_replies_need_a_token_for_the_source_ip() {
        let t0 = Instant::now();
        let mut h = loaded(t0);
        let search = Request::Search {
            tid: 9,
            query: String::new(),
        };
        let request = Request::Request {
            tid: 10,
            file: FileRef::InfoHash(InfoHash([0xee; 20])),
            peer_id: None,
        };
        for req in [&search, &request] {
            let len = req.encode().len();
            // No token: the token ERROR, within 3×.
            let r = raw(&mut h, "198.51.100.7:9", req, None, t0);
            assert!(
                r.len() <= bound(len) && is_token_error(&r),
                "{len} → {}",
                r.len()
            );
            // A token of another address: the same.
            let other = h.tokens.issue("192.0.2.1".parse().unwrap(), t0);
            let r = raw(&mut h, "198.51.100.7:9", req, Some(other), t0);
            let with_token = req.encode_with_token(Some(other)).len();
            assert!(r.len() <= bound(with_token) && is_token_error(&r));
            // Its own (any port of the IP): the whole reply, far over 3×.
            let own = h.tokens.issue("198.51.100.7".parse().unwrap(), t0);
            let r = raw(&mut h, "198.51.100.7:10", req, Some(own), t0);
            assert!(r.len() > 20 * len && !is_token_error(&r), "{}", r.len());
            // Still after one rotation, no longer after two.
            let later = t0 + crate::token::ROTATION;
            let r = raw(&mut h, "198.51.100.7:9", req, Some(own), later);
            assert!(!is_token_error(&r));
            let expired = t0 + 2 * crate::token::ROTATION;
            let r = raw(&mut h, "198.51.100.7:9", req, Some(own), expired);
            assert!(
                r.len() <= bound(with_token) && is_token_error(&r),
                "{}",
                String::from_utf8_lossy(&r[..r.len().min(300)])
            );
            // ...whose token is a fresh one that works.
            let (_, fresh) = Reply::decode_with_token(&r).unwrap();
            assert_ne!(fresh, Some(own));
            let r = raw(&mut h, "198.51.100.7:9", req, fresh, expired);
            assert!(r.len() > 20 * len && !is_token_error(&r));
        }
    }

    #[test]
    fn ok_hands_out_a_token_for_the_sender() {
        let now = Instant::now();
        let mut h = handler(&Config::default());
        let req = Request::Register {
            tid: 1,
            peer_id: "p".into(),
            port: 7001,
            files: vec![],
        };
        let r = raw(&mut h, "192.0.2.9:4000", &req, None, now);
        let (reply, token) = Reply::decode_with_token(&r).unwrap();
        assert!(matches!(reply, Reply::Ok { .. }), "{reply:?}");
        let token = token.unwrap();
        assert!(h.tokens.is_valid(token, "192.0.2.9".parse().unwrap(), now));
        assert!(!h.tokens.is_valid(token, "192.0.2.10".parse().unwrap(), now));
    }

    #[test]
    fn malformed_input_gets_bad_request() {
        let mut h = handler(&Config::default());
        let mut out = Vec::new();
        h.handle(
            "127.0.0.1:1".parse().unwrap(),
            b"{\"type\":\"NOPE\",\"tid\":6}",
            Instant::now(),
            &mut out,
        );
        match Reply::decode(&out).unwrap() {
            Reply::Error { tid, code, message } => {
                assert_eq!((tid, code), (Some(6), ErrorCode::BadRequest));
                assert!(message.contains("NOPE"));
            }
            other => panic!("{other:?}"),
        }
    }
}
