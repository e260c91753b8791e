//! The routes: pages (compiled in), the JSON API, `/metrics` and
//! `/stats.json`. Each runs on a connection thread holding one of the
//! [`bounds::HANDLERS`](super::bounds::HANDLERS) handler permits.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use minitorrent_common::magnet::Magnet;
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use serde::Serialize;
use serde_json::{json, Value};

use super::http::{Request, Response};
use super::{bounds, multipart, Shared, WebContext, STATUSES};
use crate::catalogue::{EventKind, PublishError};
use crate::metrics::NAMES;
use crate::registry::{contains_ignore_case, SearchHit, MAX_SEARCH_HITS};

const INDEX_HTML: &str = include_str!("assets/index.html");
const INDEX_JS: &str = include_str!("assets/index.js");
const PUBLISH_HTML: &str = include_str!("assets/publish.html");
const STYLE_CSS: &str = include_str!("assets/style.css");
const SWARM_HTML: &str = include_str!("assets/swarm.html");
const SWARM_JS: &str = include_str!("assets/swarm.js");

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// Events shown with a swarm (newest first).
pub const SWARM_EVENTS: usize = 50;
/// Torrents `/api/torrents` lists when no `limit` is given.
pub const DEFAULT_LISTED: usize = 1000;
/// Most rows of `/api/swarms`: the first ones by name then info hash of the
/// live swarms and the published torrents that match, together.
pub const MAX_SWARMS_LISTED: usize = MAX_SEARCH_HITS;
/// The content type `POST /api/torrents` requires.
pub const TORRENT_TYPE: &str = "application/x-bittorrent";

/// Checks a request from its head alone, before its body is read: a `POST`
/// from a page of another site (its `Origin` is not this server: `403`),
/// and a `POST /api/torrents` that does not say it carries a `.torrent`
/// (`415`; an HTML form cannot send that type, so a page elsewhere cannot
/// publish through a visitor's browser). `None` to go on.
pub fn refuse_early(req: &Request) -> Option<Response> {
    if req.method != "POST" {
        return None;
    }
    if let Some(origin) = req.header("origin") {
        let host = req.header("host").unwrap_or("");
        if !same_origin(origin, host) {
            return Some(error(
                &req.path,
                403,
                &format!(
                    "refused: this POST comes from a page of {origin}, not of this server                      (http://{host}); publish from this server's own page, or from a script                      without an Origin header"
                ),
            ));
        }
    }
    if req.path == "/api/torrents" {
        let ct = req.header("content-type").unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(TORRENT_TYPE) {
            let got = if ct.is_empty() { "none" } else { ct };
            return Some(error(
                &req.path,
                415,
                &format!(
                    "the body must be a .torrent sent with Content-Type: {TORRENT_TYPE} (got                      {got}); e.g. curl -H 'Content-Type: {TORRENT_TYPE}' --data-binary @FILE.torrent"
                ),
            ));
        }
    }
    None
}

/// Whether an `Origin` header names this server as the client reached it:
/// `http://` and the `Host` header (host and port), ignoring case.
fn same_origin(origin: &str, host: &str) -> bool {
    !host.is_empty()
        && origin
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        && origin[7..].eq_ignore_ascii_case(host)
}

/// The largest body a request to `path` may carry.
pub fn body_limit(ctx: &WebContext, method: &str, path: &str) -> usize {
    let torrent = ctx.catalogue.limits().max_torrent_bytes;
    match (method, path) {
        ("POST", "/api/torrents") => torrent,
        ("POST", "/publish") => torrent + bounds::FORM_OVERHEAD,
        _ => bounds::MAX_SMALL_BODY,
    }
}

/// An error: JSON `{"error": …}` under `/api`, a small page elsewhere.
pub fn error(path: &str, status: u16, message: &str) -> Response {
    if path.starts_with("/api/") {
        Response::new(status, JSON, json!({ "error": message }).to_string())
    } else {
        Response::new(
            status,
            HTML,
            page(
                &format!("{status} {}", super::http::reason(status)),
                &format!(
                    "<p>{}</p><p><a href=\"/\">Back to the swarms</a></p>",
                    esc(message)
                ),
            ),
        )
    }
}

fn json_ok(status: u16, v: &impl Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => Response::new(status, JSON, b),
        Err(e) => error("/api/", 500, &format!("cannot encode the reply: {e}")),
    }
}

/// HTML-escapes text for an element or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · minitorrent</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">minitorrent</a> <nav><a href=\"/\">Swarms</a> \
         <a href=\"/publish\">Publish a .torrent</a></nav></header><main><h1>{t}</h1>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// `<40 hex digits>` as an info hash.
fn parse_hash(s: &str) -> Option<InfoHash> {
    if s.len() != 40 {
        return None;
    }
    InfoHash::from_hex(s).ok()
}

/// Answers one request.
pub fn handle(shared: &Shared, req: &Request) -> Response {
    let ctx = &shared.ctx;
    let path = req.path.as_str();
    let get = req.method == "GET" || req.method == "HEAD";
    let post = req.method == "POST";
    let not_allowed = |allow: &str| {
        error(
            path,
            405,
            &format!("{} is not allowed here; use {allow}", req.method),
        )
        .with_header("Allow", allow)
    };
    match path {
        "/" | "/index.html" => {
            if get {
                Response::new(200, HTML, INDEX_HTML)
            } else {
                not_allowed("GET")
            }
        }
        "/assets/style.css" if get => Response::new(200, "text/css; charset=utf-8", STYLE_CSS),
        "/assets/index.js" if get => Response::new(200, "text/javascript; charset=utf-8", INDEX_JS),
        "/assets/swarm.js" if get => Response::new(200, "text/javascript; charset=utf-8", SWARM_JS),
        "/publish" if get => Response::new(200, HTML, PUBLISH_HTML),
        "/publish" if post => publish_form(shared, req),
        "/publish" => not_allowed("GET, POST"),
        "/api/swarms" if get => swarms(shared, req),
        "/api/torrents" if get => torrents(req, ctx),
        "/api/torrents" if post => publish_raw(shared, req),
        "/api/torrents" => not_allowed("GET, POST"),
        "/metrics" if get => Response::new(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(shared),
        ),
        "/stats.json" if get => json_ok(200, &stats_json(shared)),
        "/announce" if req.method == "GET" => super::http_tracker::announce(shared, req),
        "/scrape" if req.method == "GET" => super::http_tracker::scrape(shared, req),
        "/announce" | "/scrape" => not_allowed("GET"),
        _ => {
            if let Some(h) = path.strip_prefix("/swarm/") {
                if !get {
                    return not_allowed("GET");
                }
                return match parse_hash(h) {
                    Some(_) => Response::new(200, HTML, SWARM_HTML),
                    None => error(
                        path,
                        404,
                        "a swarm page's address ends in a 40-digit hex info hash",
                    ),
                };
            }
            if let Some(h) = path.strip_prefix("/api/swarms/") {
                if !get {
                    return not_allowed("GET");
                }
                return match parse_hash(h) {
                    Some(h) => swarm(shared, &h),
                    None => error(
                        path,
                        404,
                        "expected /api/swarms/<40 hex digits of the info hash>",
                    ),
                };
            }
            if let Some(h) = path
                .strip_prefix("/torrents/")
                .and_then(|h| h.strip_suffix(".torrent"))
            {
                if !get {
                    return not_allowed("GET");
                }
                return match parse_hash(h) {
                    Some(h) => torrent_file(ctx, &h),
                    None => error(path, 404, "expected /torrents/<40 hex digits>.torrent"),
                };
            }
            if path.starts_with("/assets/") || path.starts_with("/api/") || get {
                error(path, 404, &format!("nothing at {path}"))
            } else {
                not_allowed("GET")
            }
        }
    }
}

/// `magnet:?xt=…&dn=NAME&tr=udp://TRACKER/announce`.
fn magnet(shared: &Shared, h: &InfoHash, name: &str) -> String {
    Magnet {
        info_hash: *h,
        name: (!name.is_empty()).then(|| name.to_string()),
        trackers: vec![shared.announce.clone()],
        peers: Vec::new(),
    }
    .to_uri()
}

fn torrent_url(h: &InfoHash) -> String {
    format!("/torrents/{}.torrent", h.to_hex())
}

#[derive(Serialize)]
struct SwarmRow {
    info_hash: String,
    name: String,
    size: u64,
    seeders: u32,
    leechers: u32,
    completed: u64,
    magnet: String,
    torrent: Option<String>,
}

/// `GET /api/swarms?q=`: the swarms `SEARCH` would find, and the published
/// torrents whose name matches the same way (no peer: 0 seeders and
/// leechers), sorted by name then info hash, at most [`MAX_SWARMS_LISTED`].
/// Each query's answer is reused for [`bounds::SWARMS_CACHE_TTL`], so
/// however many pages poll, the registry is scanned at most once a second
/// per query, and one scan at a time.
fn swarms(shared: &Shared, req: &Request) -> Response {
    let q = req.param("q").unwrap_or_default();
    let key = super::cache::key(&q);
    let cached = |now| {
        key.as_deref()
            .and_then(|k| super::lock(&shared.swarms_cache).get(k, now))
    };
    if let Some(body) = cached(Instant::now()) {
        return Response::new(200, JSON, body.to_vec());
    }
    let _scan = super::lock(&shared.swarms_scan);
    // Another request may have made it while this one waited.
    if let Some(body) = cached(Instant::now()) {
        return Response::new(200, JSON, body.to_vec());
    }
    let rows = swarm_rows(shared, &q);
    let body: Arc<[u8]> = match serde_json::to_vec(&json!({ "swarms": rows })) {
        Ok(b) => b.into(),
        Err(e) => return error("/api/", 500, &format!("cannot encode the reply: {e}")),
    };
    if let Some(k) = key {
        super::lock(&shared.swarms_cache).put(k, body.clone(), Instant::now());
    }
    Response::new(200, JSON, body.to_vec())
}

/// The rows of `/api/swarms?q=`: the live swarms (the registry's `SEARCH`,
/// at most [`MAX_SEARCH_HITS`]) and the published torrents not live among
/// the catalogue's newest [`limits::MAX_LISTED`](crate::catalogue::limits::MAX_LISTED)
/// (one bounded listing call) whose name contains `q` ignoring case; sorted
/// by name then info hash and cut to [`MAX_SWARMS_LISTED`].
fn swarm_rows(shared: &Shared, q: &str) -> Vec<SwarmRow> {
    let ctx = &shared.ctx;
    let mut hits: Vec<SearchHit> = Vec::new();
    ctx.registry.search(q, &mut hits);
    let hashes: Vec<InfoHash> = hits.iter().map(|h| h.info_hash).collect();
    // Without the catalogue's answer the rows still list, without links.
    let held = ctx
        .catalogue
        .published(&hashes)
        .unwrap_or_else(|_| vec![false; hashes.len()]);
    let live: HashSet<InfoHash> = hashes.iter().copied().collect();
    let needle = q.to_lowercase();
    let published = if ctx.catalogue.stats().torrents == 0 {
        Vec::new()
    } else {
        ctx.catalogue
            .torrents(0, crate::catalogue::limits::MAX_LISTED)
            .unwrap_or_default()
    };
    let mut rows: Vec<SwarmRow> = hits
        .iter()
        .zip(held)
        .map(|(h, held)| SwarmRow {
            info_hash: h.info_hash.to_hex(),
            name: h.name.clone(),
            size: h.size,
            seeders: h.seeders,
            leechers: h.leechers,
            completed: ctx.catalogue.completed(&h.info_hash),
            magnet: magnet(shared, &h.info_hash, &h.name),
            torrent: held.then(|| torrent_url(&h.info_hash)),
        })
        .collect();
    rows.extend(
        published
            .iter()
            .filter(|t| !live.contains(&t.info_hash) && contains_ignore_case(&t.name, &needle))
            .map(|t| SwarmRow {
                info_hash: t.info_hash.to_hex(),
                name: t.name.clone(),
                size: t.size,
                seeders: 0,
                leechers: 0,
                completed: ctx.catalogue.completed(&t.info_hash),
                magnet: magnet(shared, &t.info_hash, &t.name),
                torrent: Some(torrent_url(&t.info_hash)),
            }),
    );
    rows.sort_unstable_by(|a, b| a.name.cmp(&b.name).then(a.info_hash.cmp(&b.info_hash)));
    rows.truncate(MAX_SWARMS_LISTED);
    rows
}

/// `GET /api/swarms/<ih>`: the live view, the completed count, links and
/// the newest events.
fn swarm(shared: &Shared, h: &InfoHash) -> Response {
    let ctx = &shared.ctx;
    let live = ctx.view.swarm(h, Instant::now());
    let published = ctx
        .catalogue
        .published(&[*h])
        .is_ok_and(|v| v.first() == Some(&true));
    let events = ctx.catalogue.events(h, SWARM_EVENTS).unwrap_or_default();
    let mut v = match live {
        Some(l) => match serde_json::to_value(&l) {
            Ok(v) => v,
            Err(e) => return error("/api/", 500, &format!("cannot encode the swarm: {e}")),
        },
        None if published => {
            // No peer now, but the catalogue knows the file.
            let (name, size) = ctx
                .catalogue
                .torrent(h)
                .ok()
                .flatten()
                .and_then(|b| Metainfo::from_bytes(&b).ok())
                .map(|m| (m.info.name.clone(), m.info.total_length()))
                .unwrap_or_default();
            empty_swarm(h, &name, size)
        }
        None if !events.is_empty() => empty_swarm(h, "", 0),
        None => {
            return error(
                "/api/",
                404,
                &format!(
                    "no swarm with info hash {}: no peer has registered it (or all left) and no .torrent of it was published",
                    h.to_hex()
                ),
            )
        }
    };
    let name = v["name"].as_str().unwrap_or("").to_string();
    if let Value::Object(o) = &mut v {
        o.insert("completed".into(), ctx.catalogue.completed(h).into());
        o.insert("magnet".into(), magnet(shared, h, &name).into());
        o.insert("torrent".into(), published.then(|| torrent_url(h)).into());
        let ev: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({
                    "at_ms": e.at_ms,
                    "kind": match e.kind {
                        EventKind::Completion => "completed",
                        k => k.as_str(),
                    },
                    "peer": e.addr.to_string(),
                    "peer_id": e.peer_id.as_str(),
                })
            })
            .collect();
        o.insert("events".into(), ev.into());
    }
    json_ok(200, &v)
}

fn empty_swarm(h: &InfoHash, name: &str, size: u64) -> Value {
    json!({
        "info_hash": h.to_hex(), "name": name, "size": size, "seeders": 0, "leechers": 0,
        "pieces": 0, "peers": [], "edges": [], "availability": [],
        "window_secs": crate::stats::WINDOW_SECS, "truncated": false,
    })
}

/// `GET /api/torrents?offset=&limit=`: published torrents, newest first.
fn torrents(req: &Request, ctx: &WebContext) -> Response {
    let num = |k: &str, d: usize| {
        req.param(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(d)
    };
    let (offset, limit) = (num("offset", 0), num("limit", DEFAULT_LISTED));
    match ctx.catalogue.torrents(offset, limit) {
        Ok(list) => {
            let rows: Vec<Value> = list
                .iter()
                .map(|t| {
                    json!({
                        "info_hash": t.info_hash.to_hex(),
                        "name": t.name,
                        "size": t.size,
                        "published_at_ms": t.published_at_ms,
                        "from": t.published_from,
                        "torrent": torrent_url(&t.info_hash),
                        "torrent_bytes": t.torrent_bytes,
                    })
                })
                .collect();
            json_ok(200, &json!({ "torrents": rows }))
        }
        Err(e) => error("/api/", 500, &e.to_string()),
    }
}

/// The status of a refused publication: 413 too large, 400 not a
/// `.torrent`, 503 the catalogue full or failing.
fn publish_status(e: &PublishError) -> u16 {
    match e {
        PublishError::TooLarge { .. } => 413,
        e if e.is_bad_input() => 400,
        _ => 503,
    }
}

/// `POST /api/torrents`: the body is the `.torrent`.
fn publish_raw(shared: &Shared, req: &Request) -> Response {
    let ctx = &shared.ctx;
    if req.body.is_empty() {
        return error(
            "/api/",
            400,
            "the body is empty: send the .torrent file's bytes (Content-Type: application/x-bittorrent)",
        );
    }
    match ctx.catalogue.publish(&req.body, req.peer) {
        Ok(p) => {
            // The list shows it at once, not a second later.
            super::lock(&shared.swarms_cache).clear();
            json_ok(
                201,
                &json!({
                    "info_hash": p.info_hash.to_hex(),
                    "name": p.name,
                    "size": p.size,
                    "new": p.new,
                    "torrent": torrent_url(&p.info_hash),
                    "magnet": magnet(shared, &p.info_hash, &p.name),
                }),
            )
        }
        Err(e) => error("/api/", publish_status(&e), &e.to_string()),
    }
}

/// `POST /publish`: the form's upload, answered with a page.
fn publish_form(shared: &Shared, req: &Request) -> Response {
    let ctx = &shared.ctx;
    let fail = |status: u16, msg: &str| {
        Response::new(
            status,
            HTML,
            page(
                "Not published",
                &format!(
                    "<p class=\"error\">{}</p><p>Nothing was stored. <a href=\"/publish\">Try another file</a></p>",
                    esc(msg)
                ),
            ),
        )
    };
    let ct = req.header("content-type").unwrap_or("");
    let b = match multipart::boundary(ct) {
        Ok(b) => b,
        Err(e) => return fail(400, &e),
    };
    let parts = match multipart::parts(&req.body, &b) {
        Ok(p) => p,
        Err(e) => return fail(400, &e),
    };
    let Some(part) = parts
        .iter()
        .find(|p| p.name == "torrent")
        .or_else(|| parts.iter().find(|p| p.filename.is_some()))
    else {
        return fail(
            400,
            "the form carries no file: choose a .torrent file first",
        );
    };
    if part.data.is_empty() {
        return fail(400, "the file is empty: choose a .torrent file first");
    }
    match ctx.catalogue.publish(part.data, req.peer) {
        Ok(p) => {
            super::lock(&shared.swarms_cache).clear();
            let ih = p.info_hash.to_hex();
            let m = magnet(shared, &p.info_hash, &p.name);
            let body = format!(
                "<p class=\"ok\">{what} <b>{name}</b> ({size} bytes).</p>\
                 <dl><dt>Info hash</dt><dd><code>{ih}</code></dd>\
                 <dt>.torrent</dt><dd><a href=\"{url}\">{url}</a></dd>\
                 <dt>Magnet link</dt><dd><a href=\"{m}\">{me}</a></dd>\
                 <dt>Swarm</dt><dd><a href=\"/swarm/{ih}\">/swarm/{ih}</a></dd></dl>\
                 <p><a href=\"/publish\">Publish another</a> · <a href=\"/\">All swarms</a></p>",
                what = if p.new {
                    "Published"
                } else {
                    "Already published (the first copy is kept):"
                },
                name = esc(&p.name),
                size = p.size,
                url = torrent_url(&p.info_hash),
                m = esc(&m),
                me = esc(&m),
            );
            Response::new(
                if p.new { 201 } else { 200 },
                HTML,
                page("Published", &body),
            )
        }
        Err(e) => fail(publish_status(&e), &e.to_string()),
    }
}

/// `GET /torrents/<ih>.torrent`: the bytes as published.
fn torrent_file(ctx: &WebContext, h: &InfoHash) -> Response {
    match ctx.catalogue.torrent(h) {
        Ok(Some(bytes)) => {
            let name = Metainfo::from_bytes(&bytes)
                .map(|m| m.info.name)
                .unwrap_or_default();
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(100)
                .collect();
            let file = if safe.trim().is_empty() {
                h.to_hex()
            } else {
                safe
            };
            Response::new(200, "application/x-bittorrent", bytes).with_header(
                "Content-Disposition",
                format!("attachment; filename=\"{file}.torrent\""),
            )
        }
        Ok(None) => error(
            "/torrents/",
            404,
            &format!("no .torrent of {} was published here", h.to_hex()),
        ),
        Err(e) => error("/torrents/", 500, &e.to_string()),
    }
}

/// Every figure of `/metrics`, as (name, labels, help, kind, value).
fn figures(shared: &Shared) -> Vec<(String, String, &'static str, &'static str, u64)> {
    let ctx = &shared.ctx;
    let mut f = Vec::new();
    let udp = ctx.udp.snapshot();
    for (i, (metric, proto, kind)) in NAMES.iter().enumerate() {
        let (name, help) = match *metric {
            "requests" => ("minitorrent_udp_requests_total", "Datagrams received, by protocol and type."),
            "replies" => ("minitorrent_udp_replies_total", "Replies sent, by protocol and type."),
            "dropped" => ("minitorrent_udp_dropped_total", "BEP 15 packets not answered (bad connect magic, invalid or expired connection id)."),
            _ => ("minitorrent_udp_bad_requests_total", "JSON datagrams answered with ERROR bad_request (malformed or refused)."),
        };
        let labels = if kind.is_empty() {
            format!("protocol=\"{proto}\"")
        } else {
            format!("protocol=\"{proto}\",type=\"{kind}\"")
        };
        f.push((name.to_string(), labels, help, "counter", udp[i]));
    }
    let reg = ctx.registry.stats();
    f.push((
        "minitorrent_swarms".into(),
        String::new(),
        "Swarms tracked.",
        "gauge",
        reg.swarms as u64,
    ));
    f.push((
        "minitorrent_peer_entries".into(),
        String::new(),
        "Peer entries in all swarms (peer × swarm).",
        "gauge",
        reg.entries as u64,
    ));
    f.push((
        "minitorrent_registered_peers".into(),
        String::new(),
        "JSON peers registered.",
        "gauge",
        reg.registered as u64,
    ));
    f.push((
        "minitorrent_stats_swarms".into(),
        String::new(),
        "Swarms with STATS in the live window.",
        "gauge",
        ctx.view.stats.swarms() as u64,
    ));
    f.push((
        "minitorrent_stats_dropped_edges_total".into(),
        String::new(),
        "STATS edges dropped because their swarm's table was full.",
        "counter",
        ctx.view.stats.dropped_edges(),
    ));
    let cat = ctx.catalogue.stats();
    for (name, help, kind, v) in [
        (
            "minitorrent_catalogue_torrents",
            "Published .torrent files held.",
            "gauge",
            cat.torrents as u64,
        ),
        (
            "minitorrent_catalogue_counted_swarms",
            "Info hashes with a completed-download count.",
            "gauge",
            cat.counted as u64,
        ),
        (
            "minitorrent_catalogue_counts_refused_total",
            "Completions not counted: the count table was full.",
            "counter",
            cat.counts_refused,
        ),
        (
            "minitorrent_catalogue_events_written_total",
            "Swarm log events written.",
            "counter",
            cat.events_written,
        ),
        (
            "minitorrent_catalogue_events_dropped_total",
            "Swarm log events dropped (queue full or write failed).",
            "counter",
            cat.events_dropped,
        ),
        (
            "minitorrent_catalogue_events_queued",
            "Swarm log events waiting for the writer.",
            "gauge",
            cat.events_queued as u64,
        ),
        (
            "minitorrent_catalogue_write_errors_total",
            "Failed catalogue writes.",
            "counter",
            cat.write_errors,
        ),
    ] {
        f.push((name.into(), String::new(), help, kind, v));
    }
    let c = &shared.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    for (i, s) in STATUSES.iter().enumerate() {
        f.push((
            "minitorrent_http_responses_total".into(),
            format!("code=\"{s}\""),
            "HTTP responses, by status.",
            "counter",
            load(&c.responses[i]),
        ));
    }
    f.push((
        "minitorrent_http_responses_total".into(),
        "code=\"other\"".into(),
        "HTTP responses, by status.",
        "counter",
        load(&c.responses[STATUSES.len()]),
    ));
    f.push((
        "minitorrent_http_connections_total".into(),
        String::new(),
        "HTTP connections accepted.",
        "counter",
        load(&c.accepted),
    ));
    f.push((
        "minitorrent_http_connections_refused_total".into(),
        String::new(),
        "HTTP connections refused (over the connection caps).",
        "counter",
        load(&c.refused),
    ));
    f.push((
        "minitorrent_http_accept_errors_total".into(),
        String::new(),
        "Failed accepts (e.g. out of file descriptors).",
        "counter",
        load(&c.accept_errors),
    ));
    for (kind, n) in [("announce", &c.announces), ("scrape", &c.scrapes)] {
        f.push((
            "minitorrent_http_tracker_requests_total".into(),
            format!("type=\"{kind}\""),
            "HTTP tracker protocol requests (GET /announce, GET /scrape).",
            "counter",
            load(n),
        ));
    }
    f.push((
        "minitorrent_http_tracker_failures_total".into(),
        String::new(),
        "HTTP tracker requests answered with a failure reason (malformed, port 0, tracker full).",
        "counter",
        load(&c.refusals),
    ));
    let open = super::lock(&shared.slots).open as u64;
    f.push((
        "minitorrent_http_connections_open".into(),
        String::new(),
        "HTTP connections open.",
        "gauge",
        open,
    ));
    f.push((
        "minitorrent_uptime_seconds".into(),
        String::new(),
        "Seconds since the web server started.",
        "gauge",
        shared.started.elapsed().as_secs(),
    ));
    f
}

/// Prometheus text format.
fn metrics(shared: &Shared) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for (name, labels, help, kind, v) in figures(shared) {
        if name != last {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            last = name.clone();
        }
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
    out
}

/// The same figures as JSON: `{"name{labels}": value, …}` flattened, in
/// `/metrics` order.
fn stats_json(shared: &Shared) -> Value {
    let mut o = serde_json::Map::new();
    for (name, labels, _, _, v) in figures(shared) {
        let key = if labels.is_empty() {
            name
        } else {
            format!("{name}{{{labels}}}")
        };
        o.insert(key, v.into());
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
            keep_alive: false,
        }
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let ok = [("host", "10.0.0.1:8080"), ("content-type", TORRENT_TYPE)];
        assert!(
            refuse_early(&post("/api/torrents", &ok)).is_none(),
            "no Origin"
        );
        for origin in ["http://10.0.0.1:8080", "HTTP://10.0.0.1:8080"] {
            let mut h = ok.to_vec();
            h.push(("origin", origin));
            assert!(
                refuse_early(&post("/api/torrents", &h)).is_none(),
                "{origin}"
            );
        }
        for origin in [
            "http://evil.example",
            "https://10.0.0.1:8080",
            "http://10.0.0.1:8081",
            "null",
            "",
        ] {
            let mut h = ok.to_vec();
            h.push(("origin", origin));
            for path in ["/api/torrents", "/publish"] {
                let r = refuse_early(&post(path, &h)).expect(origin);
                assert_eq!(r.status, 403, "{origin}");
                assert!(String::from_utf8_lossy(&r.body).contains("not of this server"));
            }
        }
        // An Origin and no Host: nothing to match.
        let r = refuse_early(&post("/publish", &[("origin", "http://a:1")])).unwrap();
        assert_eq!(r.status, 403);
    }

    #[test]
    fn a_publication_must_say_it_is_a_torrent() {
        for ct in [
            TORRENT_TYPE,
            "Application/X-BitTorrent",
            "application/x-bittorrent; charset=binary",
        ] {
            assert!(
                refuse_early(&post("/api/torrents", &[("content-type", ct)])).is_none(),
                "{ct}"
            );
        }
        for ct in [
            None,
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
        ] {
            let h: Vec<(&str, &str)> = ct.iter().map(|c| ("content-type", *c)).collect();
            let r = refuse_early(&post("/api/torrents", &h)).unwrap();
            assert_eq!(r.status, 415);
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                body.contains("Content-Type: application/x-bittorrent"),
                "{body}"
            );
        }
        // The form keeps its multipart type; GETs are not checked.
        let form = [("content-type", "multipart/form-data; boundary=x")];
        assert!(refuse_early(&post("/publish", &form)).is_none());
        let mut get = post("/api/torrents", &[("origin", "http://elsewhere")]);
        get.method = "GET".into();
        assert!(refuse_early(&get).is_none());
    }
}
