//! The routes of the peer's web interface: the pages (compiled in) and the
//! JSON API they use (docs/CLIENT.md). Each handler is a few calls on the
//! [`Session`]; errors are `{"error": "..."}` with a 4xx or 5xx status that
//! names the problem.

use std::io::Read;
use std::sync::Arc;

use anyhow::Error;
use minitorrent_common::metainfo::{InfoHash, Metainfo};
use serde_json::{json, Value};

use super::http::{Body, Handler, Request, Response};
use super::{bounds, upload, Web};
use crate::cli::source::{self, Source};
use crate::core::msg::{Phase, TorrentDetail, TorrentStatus};
use crate::net::tracker::{HomeError, TrackerError};
use crate::session::{AmbiguousName, Session, TorrentError};

const INDEX_HTML: &str = include_str!("assets/index.html");
const TORRENT_HTML: &str = include_str!("assets/torrent.html");
const STYLE_CSS: &str = include_str!("assets/style.css");
const COMMON_JS: &str = include_str!("assets/common.js");
const INDEX_JS: &str = include_str!("assets/index.js");
const TORRENT_JS: &str = include_str!("assets/torrent.js");

const TORRENT_TYPE: &str = "application/x-bittorrent";

pub struct Routes(pub Arc<Web>);

fn error(status: u16, message: impl std::fmt::Display) -> Response {
    Response::json(status, &json!({ "error": message.to_string() }))
}

fn ok(status: u16, v: Value) -> Response {
    Response::json(status, &v)
}

/// The status of what `e` says, for errors of the session.
fn session_error(e: &Error) -> Response {
    let status = if e.downcast_ref::<AmbiguousName>().is_some() {
        409
    } else if let Some(t) = e.downcast_ref::<TorrentError>() {
        match t {
            TorrentError::AlreadyActive(_) | TorrentError::AlreadyRunning(_) => 409,
            TorrentError::NotInSession(_) => 404,
        }
    } else {
        match e.downcast_ref::<HomeError>() {
            Some(HomeError::NoSuchName { .. }) => 404,
            Some(HomeError::NoAnswer) | Some(HomeError::Json(TrackerError::Unreachable { .. })) => {
                502
            }
            // A REGISTER's error crosses from the tracker thread boxed:
            // only its words tell an unreachable tracker.
            Some(HomeError::Refused(b)) if b.to_string().contains("unreachable") => 502,
            _ => 400,
        }
    };
    error(status, crate::cli::error_chain(e))
}

fn parse_hash(s: &str) -> Option<InfoHash> {
    (s.len() == 40)
        .then(|| InfoHash::from_hex(s).ok())
        .flatten()
}

/// Whether the request comes from a page of ours: a browser names the page
/// that sent a POST in `Origin`; another site's page must not change our
/// torrents (cross-site request forgery).
fn same_origin(req: &Request) -> bool {
    match (req.header("origin"), req.header("host")) {
        (None, _) => true,
        (Some(o), Some(h)) => o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(h)),
        (Some(_), None) => false,
    }
}

/// Without a password the page answers only to names of this machine, so
/// that a web site whose name resolves to 127.0.0.1 (DNS rebinding) cannot
/// use it.
fn loopback_host(req: &Request) -> bool {
    let Some(host) = req.header("host") else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// HTTP Basic credentials carrying `password` (any user name).
fn authorized(req: &Request, password: &str) -> bool {
    let Some(v) = req.header("authorization") else {
        return false;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return false;
    };
    let Some(raw) = base64_decode(b64.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(raw) else {
        return false;
    };
    let given = text.split_once(':').map(|(_, p)| p).unwrap_or("");
    // Compared in constant time for equal lengths.
    given.len() == password.len()
        && given
            .bytes()
            .zip(password.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() > 1024 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        match chunk.len() {
            4 => out.extend_from_slice(&bytes),
            3 => out.extend_from_slice(&bytes[..2]),
            2 => out.push(bytes[0]),
            _ => return None,
        }
    }
    Some(out)
}

impl Handler for Routes {
    fn admit(&self, req: &Request) -> Result<u64, Response> {
        let web = &self.0;
        match &web.access.password {
            Some(p) if !authorized(req, p) => {
                if req.header("authorization").is_some() {
                    // A wrong guess costs its connection a moment.
                    std::thread::sleep(bounds::WRONG_PASSWORD_DELAY);
                }
                return Err(error(
                    401,
                    "this page needs its password (the one given to --password)",
                )
                .with_header("WWW-Authenticate", "Basic realm=\"minitorrent\""));
            }
            Some(_) => {}
            None if !loopback_host(req) => {
                return Err(error(
                    403,
                    "this page answers only to localhost and 127.0.0.1; to reach it from other \
                     machines, start it with --password",
                ))
            }
            None => {}
        }
        let changes = !matches!(req.method.as_str(), "GET" | "HEAD");
        if changes && !same_origin(req) {
            return Err(error(
                403,
                "a page of another site may not change this peer's torrents",
            ));
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("PUT", "/api/upload") => {
                let rel = upload::check_name(req.param("name").unwrap_or(""))
                    .map_err(|e| error(e.status, e.message))?;
                if req.content_length == 0 {
                    return Err(error(
                        400,
                        format!("{} is empty, and empty files are not shared", rel.display()),
                    ));
                }
                if req.content_length > bounds::MAX_UPLOAD {
                    return Err(error(
                        413,
                        format!(
                            "the file is larger than the page takes ({} bytes); share it with \
                             `minitorrent seed` instead",
                            bounds::MAX_UPLOAD
                        ),
                    ));
                }
                let (at, exists) =
                    upload::target(&web.dir, &rel).map_err(|e| error(e.status, e.message))?;
                check_in_use(web, &rel, &at, req.param("overwrite") == Some("1"))
                    .map_err(|e| error(e.status, e.message))?;
                if web.share.is_full() {
                    return Err(error(
                        503,
                        format!(
                            "{} uploaded files wait to be hashed; try again in a moment",
                            bounds::SHARE_QUEUE
                        ),
                    ));
                }
                if exists && req.param("overwrite") != Some("1") {
                    return Err(error(
                        409,
                        format!(
                            "{} already exists; send it again with overwrite=1 to replace it",
                            rel.display()
                        ),
                    ));
                }
                Ok(bounds::MAX_UPLOAD)
            }
            _ if changes => {
                let max = if req.path == "/api/add-torrent" {
                    bounds::MAX_TORRENT_BODY
                } else {
                    bounds::MAX_JSON_BODY
                };
                if req.content_length > max {
                    return Err(error(
                        413,
                        format!("the request body is larger than {max} bytes"),
                    ));
                }
                Ok(max)
            }
            _ => Ok(0),
        }
    }

    fn handle(&self, req: &Request, body: &mut Body<'_>) -> Response {
        let web = &self.0;
        let s = &*web.session;
        let path = req.path.as_str();
        let method = req.method.as_str();
        let get = matches!(method, "GET" | "HEAD");
        if get {
            let asset = match path {
                "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX_HTML)),
                "/assets/style.css" => Some(("text/css; charset=utf-8", STYLE_CSS)),
                "/assets/common.js" => Some(("text/javascript; charset=utf-8", COMMON_JS)),
                "/assets/index.js" => Some(("text/javascript; charset=utf-8", INDEX_JS)),
                "/assets/torrent.js" => Some(("text/javascript; charset=utf-8", TORRENT_JS)),
                p if p.starts_with("/torrent/") => Some(("text/html; charset=utf-8", TORRENT_HTML)),
                _ => None,
            };
            if let Some((ty, text)) = asset {
                return Response::new(200, ty, text.as_bytes().to_vec());
            }
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            (_, ["api", "session"]) if get => session_info(web),
            (_, ["api", "torrents"]) if get => torrents(web),
            (_, ["api", "torrents", h]) if get => match parse_hash(h) {
                Some(ih) => match s.detail(&ih) {
                    Some(d) => ok(200, detail_json(s, &d)),
                    None => not_in_session(&ih),
                },
                None => bad_hash(h),
            },
            (_, ["api", "torrents", h, "torrent"]) if get => match parse_hash(h) {
                Some(ih) => torrent_file(s, &ih),
                None => bad_hash(h),
            },
            (_, ["api", "search"]) if get => search(s, req.param("q").unwrap_or("")),
            (_, ["api", "limits"]) if get => limits(s),
            ("POST", ["api", "limits"]) => set_limits(s, body),
            ("POST", ["api", "add"]) => add(s, body),
            ("POST", ["api", "add-torrent"]) => match web.torrent_slot() {
                Some(_slot) => add_torrent(s, body, req.content_length),
                None => error(
                    503,
                    format!(
                        "{} .torrent files are being read already; try again in a moment",
                        bounds::TORRENT_BODIES
                    ),
                ),
            },
            ("PUT", ["api", "upload"]) => upload(web, req, body),
            ("POST", ["api", "torrents", h, action]) => match parse_hash(h) {
                Some(ih) => control(s, &ih, action),
                None => bad_hash(h),
            },
            ("DELETE", ["api", "torrents", h]) => match parse_hash(h) {
                Some(ih) => remove(web, &ih, req.param("delete") == Some("1")),
                None => bad_hash(h),
            },
            (_, ["api", ..]) => error(
                if get { 404 } else { 405 },
                format!("no such API call: {method} {path} (docs/CLIENT.md lists them)"),
            ),
            _ => error(404, format!("no page at {path}; the main page is /")),
        }
    }
}

fn bad_hash(h: &str) -> Response {
    error(
        400,
        format!("{h:?} is not an info hash (40 hexadecimal digits)"),
    )
}

fn not_in_session(ih: &InfoHash) -> Response {
    error(
        404,
        format!("{ih} is not in this peer (removed, or never added)"),
    )
}

fn session_info(web: &Web) -> Response {
    let s = &*web.session;
    let (up, down) = s.limits();
    let dir = web.dir.canonicalize().unwrap_or_else(|_| web.dir.clone());
    ok(
        200,
        json!({
            "peer_id": s.peer_id(),
            "listen": s.listen_addr().to_string(),
            "tracker": s.tracker_in_use(),
            "trackers": s.tracker_states(),
            "dir": dir.display().to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "limits": {"up": up, "down": down},
            "max_upload": bounds::MAX_UPLOAD,
        }),
    )
}

/// The state word of a phase (the API's `state`).
fn state(p: &Phase) -> &'static str {
    match p {
        Phase::Metadata => "metadata",
        Phase::Checking { .. } => "checking",
        Phase::Downloading => "downloading",
        Phase::Seeding => "seeding",
        Phase::Failed(_) => "error",
        Phase::Stopped => "stopped",
        Phase::Paused => "paused",
    }
}

/// One torrent's row.
fn row(s: &Session, st: &TorrentStatus) -> Value {
    let ih = st.info_hash;
    let progress = match (st.size, st.pieces_total) {
        (Some(size), _) if size > 0 => st.bytes_have as f64 / size as f64,
        (_, n) if n > 0 => f64::from(st.pieces_have) / f64::from(n),
        _ => 0.0,
    };
    let progress = match st.phase {
        Phase::Seeding => 1.0,
        _ => progress.clamp(0.0, 1.0),
    };
    let eta = match (st.size, &st.phase) {
        (Some(size), Phase::Downloading) if st.down_rate > 1.0 => {
            Some(size.saturating_sub(st.bytes_have) as f64 / st.down_rate)
        }
        _ => None,
    };
    let has_meta = st.size.is_some() && !matches!(st.phase, Phase::Checking { .. });
    json!({
        "info_hash": ih.to_hex(),
        "name": st.name,
        "size": st.size,
        "state": state(&st.phase),
        "state_text": st.phase.to_string(),
        "error": match &st.phase {
            Phase::Failed(e) => Some(e.clone()),
            _ => st.problem.clone(),
        },
        "progress": progress,
        "pieces_have": st.pieces_have,
        "pieces_total": st.pieces_total,
        "down_rate": st.down_rate,
        "up_rate": st.up_rate,
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "ratio": st.size.filter(|&n| n > 0).map(|n| st.uploaded as f64 / n as f64),
        "eta": eta,
        "peers": st.peers,
        "magnet": s.magnet_of(&ih).unwrap_or_default(),
        "torrent_url": has_meta.then(|| format!("/api/torrents/{}/torrent", ih.to_hex())),
    })
}

fn torrents(web: &Web) -> Response {
    let s = &*web.session;
    let rows: Vec<Value> = s.all_statuses().iter().map(|st| row(s, st)).collect();
    let root = web.dir.canonicalize().unwrap_or_else(|_| web.dir.clone());
    let hashing: Vec<Value> = s
        .hashing()
        .iter()
        .map(|j| {
            let p = j.path.canonicalize().unwrap_or_else(|_| j.path.clone());
            let name = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
            json!({"name": name, "done": j.done, "total": j.total})
        })
        .collect();
    ok(200, json!({"torrents": rows, "hashing": hashing}))
}

fn detail_json(s: &Session, d: &TorrentDetail) -> Value {
    let mut v = row(s, &d.status);
    let peers: Vec<Value> = d
        .peers
        .iter()
        .map(|p| {
            json!({
                "addr": p.addr.to_string(),
                "client": p.client,
                "outbound": p.outbound,
                "progress": p.progress,
                "down_rate": p.down_rate,
                "up_rate": p.up_rate,
                "downloaded": p.downloaded,
                "uploaded": p.uploaded,
                "am_choking": p.am_choking,
                "am_interested": p.am_interested,
                "peer_choking": p.peer_choking,
                "peer_interested": p.peer_interested,
            })
        })
        .collect();
    let pieces: String = d.pieces.iter().map(|m| m.letter()).collect();
    let files: Vec<Value> = d
        .files
        .iter()
        .map(|f| json!({"path": f.path, "size": f.size, "progress": f.progress}))
        .collect();
    // One row per tracker; the one in use carries this torrent's last
    // answer from it.
    let trackers: Vec<Value> = s
        .tracker_states()
        .into_iter()
        .map(|t| {
            let this = d.tracker.as_ref().filter(|_| t.in_use);
            json!({
                "url": t.url,
                "protocol": t.protocol,
                "in_use": t.in_use,
                "last_answer": this.and_then(|a| a.answer.as_ref().ok().cloned())
                    .or_else(|| t.answered.then(|| "answered".to_string())),
                "last_error": this
                    .and_then(|a| a.answer.as_ref().err().cloned())
                    .or(t.last_error),
                "seconds_ago": this.map(|a| a.ago),
            })
        })
        .collect();
    let history: Vec<Value> = d
        .history
        .iter()
        .map(|&(t, down, up)| json!([t, down, up]))
        .collect();
    if let Value::Object(m) = &mut v {
        m.insert("peers_list".into(), Value::Array(peers));
        m.insert("pieces".into(), Value::String(pieces));
        m.insert("files".into(), Value::Array(files));
        m.insert("trackers".into(), Value::Array(trackers));
        m.insert("history".into(), Value::Array(history));
    }
    v
}

fn torrent_file(s: &Session, ih: &InfoHash) -> Response {
    match s.torrent_file(ih) {
        Some(bytes) => {
            let name = s
                .status_of(ih)
                .map(|st| st.name)
                .unwrap_or_else(|| ih.to_hex());
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() && c != '"' && c != '\\' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            Response::new(200, TORRENT_TYPE, bytes).with_header(
                "Content-Disposition",
                format!("attachment; filename=\"{safe}.torrent\""),
            )
        }
        None if s.status_of(ih).is_some() => error(
            404,
            "this torrent's metadata is not known yet (it is still being fetched from peers)",
        ),
        None => not_in_session(ih),
    }
}

fn search(s: &Session, q: &str) -> Response {
    if q.len() > bounds::MAX_QUERY {
        return error(
            400,
            format!("the search is longer than {} bytes", bounds::MAX_QUERY),
        );
    }
    match s.search(q) {
        Ok(files) => {
            let v: Vec<Value> = files
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "size": f.size,
                        "seeders": f.seeders,
                        "leechers": f.leechers,
                        "info_hash": f.info_hash.to_hex(),
                        "active": s.status_of(&f.info_hash).is_some(),
                    })
                })
                .collect();
            ok(200, json!({ "files": v }))
        }
        Err(e) => error(502, crate::cli::error_chain(&e)),
    }
}

/// Reads a small JSON body into `T` (unknown fields are skipped without
/// being kept).
fn json_body<T: serde::de::DeserializeOwned>(
    body: &mut Body<'_>,
    what: &str,
) -> Result<T, Response> {
    let mut buf = Vec::new();
    body.take(bounds::MAX_JSON_BODY)
        .read_to_end(&mut buf)
        .map_err(|e| error(400, format!("the request body did not arrive: {e}")))?;
    serde_json::from_slice(&buf).map_err(|e| error(400, format!("give {what}: {e}")))
}

/// A rate in a JSON body: bytes per second, or a string like `"500k"`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RateValue {
    Bytes(u64),
    Text(String),
}

#[derive(serde::Deserialize)]
struct LimitsBody {
    up: Option<RateValue>,
    down: Option<RateValue>,
}

#[derive(serde::Deserialize)]
struct AddBody {
    source: String,
}

fn limits(s: &Session) -> Response {
    let (up, down) = s.limits();
    ok(200, json!({"up": up, "down": down}))
}

fn set_limits(s: &Session, body: &mut Body<'_>) -> Response {
    const WHAT: &str =
        "{\"up\": RATE, \"down\": RATE} in bytes per second or like \"500k\", 0 for none";
    let v: LimitsBody = match json_body(body, WHAT) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let rate = |k: &str, r: Option<RateValue>| -> Result<Option<u64>, Response> {
        match r {
            None => Ok(None),
            Some(RateValue::Bytes(n)) => Ok(Some(n)),
            Some(RateValue::Text(t)) => crate::cli::config::parse_rate(&t)
                .map(Some)
                .map_err(|e| error(400, format!("{k}: {e}"))),
        }
    };
    let (up, down) = match (rate("up", v.up), rate("down", v.down)) {
        (Ok(u), Ok(d)) => (u, d),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if let Err(e) = s.set_limits(up, down) {
        return error(400, crate::cli::error_chain(&e));
    }
    limits(s)
}

fn added_row(s: &Session, ih: &InfoHash) -> Response {
    match s.status_of(ih) {
        Some(st) => ok(201, row(s, &st)),
        None => error(500, "the torrent stopped as soon as it started"),
    }
}

fn add(s: &Session, body: &mut Body<'_>) -> Response {
    let v: AddBody = match json_body(
        body,
        "{\"source\": ...}: a magnet link, an info hash or a name",
    ) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let src = match source::classify(&v.source) {
        // A path on this machine is not the browser's to name.
        Ok(Source::Torrent(p)) => Source::Name(p.display().to_string()),
        Ok(src) => src,
        Err(e) => return error(400, crate::cli::error_chain(&e)),
    };
    let r = match src {
        Source::Magnet(m) => s.download_magnet(&m),
        Source::InfoHash(ih) => s.download_info_hash(ih, None, Vec::new()),
        Source::Name(n) => s.download_name(&n, || {}),
        Source::Torrent(_) => return error(400, "upload the .torrent itself"),
    };
    match r {
        Ok(a) => added_row(s, &a.info_hash),
        Err(e) => session_error(&e),
    }
}

fn add_torrent(s: &Session, body: &mut Body<'_>, len: u64) -> Response {
    let mut buf = Vec::with_capacity(len.min(bounds::MAX_TORRENT_BODY) as usize);
    if let Err(e) = body.take(bounds::MAX_TORRENT_BODY).read_to_end(&mut buf) {
        return error(400, format!("the .torrent did not arrive: {e}"));
    }
    let m = match Metainfo::from_bytes(&buf) {
        Ok(m) => m,
        Err(e) => return error(400, format!("this is not a .torrent file: {e}")),
    };
    match s.download_metainfo(m) {
        Ok(a) => added_row(s, &a.info_hash),
        Err(e) => session_error(&e),
    }
}

fn control(s: &Session, ih: &InfoHash, action: &str) -> Response {
    let r = match action {
        "pause" => s.pause(ih).map(|_| ()),
        "resume" => s.resume(ih).map(|_| ()),
        _ => return error(404, format!("no action {action:?}: use pause or resume")),
    };
    match r {
        Ok(()) => match s.status_of(ih) {
            Some(st) => ok(200, row(s, &st)),
            None => not_in_session(ih),
        },
        Err(e) => session_error(&e),
    }
}

fn remove(web: &Web, ih: &InfoHash, delete: bool) -> Response {
    match web
        .session
        .remove_torrent(ih, delete.then_some(web.dir.as_path()))
    {
        Ok(r) => ok(
            200,
            json!({
                "removed": ih.to_hex(),
                "deleted": r.deleted.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "kept": r.kept,
            }),
        ),
        Err(e) => session_error(&e),
    }
}

/// An upload may replace a file a torrent of this peer seeds (that seed
/// stops first), when asked to; never one a download writes or holds.
fn check_in_use(
    web: &Web,
    rel: &std::path::Path,
    at: &std::path::Path,
    overwrite: bool,
) -> Result<(), upload::UploadError> {
    match web.session.torrent_using(at) {
        Some(u) if !u.seed => Err(upload::UploadError {
            status: 409,
            message: format!(
                "{} is a file of {}, which this peer downloads; remove that torrent first, or \
                 choose another name",
                rel.display(),
                u.name
            ),
        }),
        Some(u) if !overwrite => Err(upload::UploadError {
            status: 409,
            message: format!(
                "{} already exists (this peer seeds it as {}); send it again with overwrite=1 \
                 to replace it",
                rel.display(),
                u.name
            ),
        }),
        _ => Ok(()),
    }
}

fn upload(web: &Web, req: &Request, body: &mut Body<'_>) -> Response {
    let Some(_slot) = web.upload_slot() else {
        return error(
            503,
            format!(
                "{} uploads are already running; try again when one ends",
                bounds::UPLOADS
            ),
        );
    };
    let name = req.param("name").unwrap_or("");
    let overwrite = req.param("overwrite") == Some("1");
    let r = (|| {
        let rel = upload::check_name(name)?;
        let tmp = upload::receive(&web.dir, body, req.content_length)?;
        // Checked again: the folder may have changed while the bytes came.
        let (at, exists) = match upload::target(&web.dir, &rel) {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = check_in_use(web, &rel, &at, overwrite) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if exists && !overwrite {
            let _ = std::fs::remove_file(&tmp);
            return Err(upload::UploadError {
                status: 409,
                message: format!(
                    "{} already exists; send it again with overwrite=1 to replace it",
                    rel.display()
                ),
            });
        }
        if overwrite {
            // The seed of the old version stops before its file is replaced.
            if let Some(u) = web.session.torrent_using(&at) {
                web.session.withdraw(&u.info_hash);
            }
        }
        upload::place(&tmp, &at, overwrite)?;
        Ok((rel, at))
    })();
    let rel = match r {
        Ok((rel, _)) => rel,
        Err(e) => return error(e.status, e.message),
    };
    let rel_text = rel.to_string_lossy().into_owned();
    if web.share.try_send(rel_text.clone()).is_err() {
        // The shared folder's rescan still finds it; a page of `seed` or
        // `get` can only say so.
        log::warn!("web: too many files wait to be hashed; {rel_text} waits for a rescan");
    }
    ok(201, json!({"name": rel_text, "size": req.content_length}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("dTpzZWNyZXQ=").unwrap(), b"u:secret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("!!!!").is_none());
        assert!(base64_decode("Y").is_none());
    }
}
